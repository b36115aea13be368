//! Named counters of the slow path. The list below is the only place a counter is declared;
//! every dropped or ignored input bumps exactly one of them.

macro_rules! counters {
    ($( $(#[doc = $doc:literal])+ $name:ident, )*) => {
        /// Plain `u64` counters, one per outcome. Read a field, or walk them all with
        /// [`iter`](Self::iter) to export them.
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct SlowPathCounters {
            $( $(#[doc = $doc])+ pub $name: u64, )*
        }

        impl SlowPathCounters {
            /// Every counter name, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$(stringify!($name)),*];

            /// `(name, value)` for every counter, in declaration order.
            pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
                [$((stringify!($name), self.$name)),*].into_iter()
            }

            /// The value of the counter called `name`, if there is one.
            pub fn get(&self, name: &str) -> Option<u64> {
                self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
            }
        }
    };
}

counters! {
    // ---- inputs ----
    /// Frames handed to `handle_frame`.
    frames_received,
    /// Frame too short or not parseable at the layer its punt reason names.
    malformed_frame,
    /// Frame punted on a port that is not configured.
    unknown_port,
    /// Frame arrived on a port that is administratively down.
    port_down,
    /// Punt reason that the slow path does not handle.
    unhandled_punt_reason,
    /// Packets too big for their way out (`MtuExceeded`): answered with ICMP Fragmentation
    /// Needed / Packet Too Big (unless suppressed or rate-limited).
    mtu_exceeded,
    /// Frame of an EtherType other than ARP, IPv4 or IPv6.
    unsupported_ethertype,
    /// ARP or ND message from a neighbour that claims one of our addresses.
    address_conflict,

    // ---- ARP ----
    /// ARP requests answered.
    arp_replies_sent,
    /// ARP request for an address that is not ours.
    arp_not_for_us,
    /// ARP packet that is not Ethernet/IPv4, or has an unknown operation.
    arp_unsupported,
    /// ARP packet whose sender is a broadcast, multicast or our own address.
    arp_bad_sender,
    /// ARP reply for a neighbour we have no entry for (Linux `arp_accept=0`).
    arp_unsolicited_reply,

    // ---- Neighbor Discovery ----
    /// Neighbor Advertisements sent in answer to a solicitation.
    nd_advertisements_sent,
    /// ND message with a hop limit other than 255 (RFC 4861 §7.1).
    nd_bad_hop_limit,
    /// ND message with an invalid code, length or option (RFC 4861 §7.1).
    nd_invalid,
    /// Neighbor Solicitation for a target that is not ours.
    nd_not_for_us,
    /// Neighbor Advertisement for a neighbour we have no entry for.
    nd_unsolicited_advert,
    /// ICMPv6 message of a type the slow path does not handle.
    nd_unhandled,

    // ---- neighbour table ----
    /// Solicitations (ARP requests, NS) sent to resolve or re-probe a neighbour.
    neighbor_probes_sent,
    /// Solicitation not sent: the port has no IPv4 address to send an ARP request from.
    solicit_no_source,
    /// Neighbours that did not answer `max_probes` solicitations.
    neighbor_resolution_failed,
    /// New dynamic entry refused because the table holds `max_entries` (a frame that
    /// needed it is dropped).
    neighbor_table_full,
    /// Learned mapping ignored because the neighbour is configured statically.
    neighbor_static_ignored,
    /// Dynamic entries removed by an interface going down.
    neighbor_flushed,
    /// Held packets sent after their neighbour resolved.
    held_released,
    /// Held packet dropped to make room for a newer one.
    held_dropped_overflow,
    /// Held packet dropped because its neighbour failed to resolve.
    held_dropped_failed,
    /// Held packet dropped because its port went down.
    held_dropped_port_down,

    // ---- routing of punted and local packets ----
    /// `NeighborMiss` punt or local packet with no route to its destination.
    no_route,
    /// Route points at a port that is not configured or is down.
    route_port_unusable,
    /// `NeighborMiss` punt whose next hop is one of our own addresses.
    next_hop_is_local,
    /// Next hop is multicast, broadcast or unspecified: nothing to resolve.
    unresolvable_next_hop,

    // ---- IP for us ----
    /// IPv4 header checksum wrong.
    ipv4_bad_checksum,
    /// ICMP or ICMPv6 checksum wrong.
    icmp_bad_checksum,
    /// Echo replies sent (IPv4 and IPv6).
    echo_replies_sent,
    /// Packet for one of our addresses that nothing consumes yet (UDP 1280, TCP, …).
    local_unhandled,
    /// Locally built IP packets handed to `send_ip` (BFD of the peer paths).
    ip_originated,
    /// `send_ip` packet that is not a well-formed IPv4 or IPv6 packet from one of our
    /// addresses.
    ip_originated_invalid,
    /// `Local` punt whose destination is not one of our addresses.
    local_not_ours,
    /// Echo request from an address that names no single host; not answered.
    bad_source_address,

    // ---- ICMP errors ----
    /// Time Exceeded and Destination Unreachable messages sent.
    icmp_errors_sent,
    /// ICMP error suppressed by the token bucket.
    icmp_error_rate_limited,
    /// ICMP error not sent because RFC 1812 §4.3.2.7 / RFC 4443 §2.4 (e) forbid it.
    icmp_error_suppressed,
    /// ICMP error not sent because the ingress port has no address of the family.
    icmp_error_no_source,

    // ---- outputs ----
    /// Transmit dropped because the queue was full (the caller is not polling).
    transmit_queue_full,
    /// Event dropped because the queue was full (the caller is not polling).
    event_queue_full,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_iter_matches_fields() {
        let c = SlowPathCounters {
            arp_not_for_us: 7,
            ..SlowPathCounters::default()
        };
        let names: Vec<_> = c.iter().map(|(n, _)| n).collect();
        assert_eq!(names, SlowPathCounters::NAMES);
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len());
        assert_eq!(c.get("arp_not_for_us"), Some(7));
        assert_eq!(c.get("no_such_counter"), None);
    }
}

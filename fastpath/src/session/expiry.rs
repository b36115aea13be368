//! Idle timeouts per protocol, the TCP guard timer (docs/background.md §1.7), and the
//! [`Sweeper`] that reclaims expired sessions a bounded slice at a time.

use std::time::Duration;

use super::table::{millis, ExpiryView, SessionTable, TimeoutClass};
use super::types::{SessionView, TcpFlags};
use crate::time::Instant;

/// Inactivity timeouts. The SVR sources give no values (§1.7: "No timer values are given"),
/// so these are ours, chosen to match common stateful-firewall practice (Linux conntrack
/// uses 5 days / 120 s / 30 s / 60 s / 10 s for the same cases; we are shorter for
/// established TCP because a session costs a table entry and a wayport pair):
///
/// | field | default | applies to |
/// | --- | --- | --- |
/// | `tcp_established` | 1800 s | TCP with packets seen from both sides |
/// | `tcp_half_open` | 30 s | TCP seen from one side only (SYN without answer) |
/// | `tcp_guard` | 10 s | after FIN both ways or an RST, counted from that moment |
/// | `udp` | 60 s | UDP |
/// | `icmp` | 10 s | ICMP and ICMPv6 |
/// | `other` | 60 s | any other protocol |
///
/// The protocol is that of the LAN key (the original packet), so a UDP-transformed TCP session
/// still times out as TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimeouts {
    /// TCP, both sides seen.
    pub tcp_established: Duration,
    /// TCP, one side seen.
    pub tcp_half_open: Duration,
    /// TCP after FIN both ways or RST.
    pub tcp_guard: Duration,
    /// UDP.
    pub udp: Duration,
    /// ICMP / ICMPv6.
    pub icmp: Duration,
    /// Other protocols.
    pub other: Duration,
}

impl Default for SessionTimeouts {
    fn default() -> Self {
        SessionTimeouts {
            tcp_established: Duration::from_secs(1800),
            tcp_half_open: Duration::from_secs(30),
            tcp_guard: Duration::from_secs(10),
            udp: Duration::from_secs(60),
            icmp: Duration::from_secs(10),
            other: Duration::from_secs(60),
        }
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl SessionTimeouts {
    fn idle_ms(&self, class: TimeoutClass, flags: TcpFlags) -> u64 {
        ms(match class {
            TimeoutClass::Tcp if flags.both_seen() => self.tcp_established,
            TimeoutClass::Tcp => self.tcp_half_open,
            TimeoutClass::Udp => self.udp,
            TimeoutClass::Icmp => self.icmp,
            TimeoutClass::Other => self.other,
        })
    }

    /// The timeout that applies to session `v` now: its protocol's idle timeout (TCP:
    /// established once both sides were seen, half-open before), or `tcp_guard` once its
    /// guard period started.
    pub fn timeout_of(&self, v: &SessionView) -> Duration {
        if v.session.tcp.closing() && v.guard_start_ms.is_some() {
            return self.tcp_guard;
        }
        Duration::from_millis(self.idle_ms(
            TimeoutClass::of_proto(v.session.lan_key.proto()),
            v.session.tcp,
        ))
    }

    /// Milliseconds at `now_ms` until session `v` expires (0: expired, the sweeper has not
    /// reached it yet): the sooner of its idle timeout and the end of its guard period.
    pub fn remaining_ms(&self, v: &SessionView, now_ms: u64) -> u64 {
        let class = TimeoutClass::of_proto(v.session.lan_key.proto());
        let idle = self
            .idle_ms(class, v.session.tcp)
            .saturating_sub(now_ms.saturating_sub(v.last_seen_ms));
        match v.guard_start_ms {
            Some(g) if v.session.tcp.closing() => {
                idle.min(ms(self.tcp_guard).saturating_sub(now_ms.saturating_sub(g)))
            }
            _ => idle,
        }
    }

    /// Expired: idle for the class timeout, or in the guard period for `tcp_guard`.
    pub(crate) fn expired(&self, v: &ExpiryView, now_ms: u64) -> bool {
        if now_ms.saturating_sub(v.last_seen_ms) >= self.idle_ms(v.class, v.flags) {
            return true;
        }
        // guard_ms is 0 until the closing flag's owner wrote it (a moment after the flag).
        v.flags.closing()
            && v.guard_ms != 0
            && now_ms.saturating_sub(v.guard_ms - 1) >= ms(self.tcp_guard)
    }
}

/// Reclaims expired sessions in small steps on the slow path.
///
/// Each [`Sweeper::sweep`] call looks at `budget` arena entries after the previous call's
/// last one (wrapping), so its cost is bounded and workers never wait for it: removal is the
/// same lock-free [`SessionTable::remove`] a worker would call. To visit every entry once per
/// period `P` with calls every `I`, use `budget = capacity × I / P`
/// ([`Sweeper::budget_for`]); a session then disappears at most `P` after it expired.
///
/// A packet that arrives while its session is being judged can be lost to the removal (the
/// last-seen time is read, then the session is removed); the next packet creates a new
/// session, which is what happens after any timeout.
#[derive(Debug, Clone)]
pub struct Sweeper {
    timeouts: SessionTimeouts,
    cursor: usize,
}

impl Sweeper {
    /// A sweeper starting at arena entry 0.
    pub fn new(timeouts: SessionTimeouts) -> Sweeper {
        Sweeper {
            timeouts,
            cursor: 0,
        }
    }

    /// The timeouts in force.
    pub fn timeouts(&self) -> &SessionTimeouts {
        &self.timeouts
    }

    /// The arena entry the next call starts at.
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// Entries per call so that calls every `interval` visit all `capacity` entries once per
    /// `pass` (at least 1).
    pub fn budget_for(capacity: usize, interval: Duration, pass: Duration) -> usize {
        let per = interval.as_nanos().saturating_mul(capacity as u128) / pass.as_nanos().max(1);
        usize::try_from(per)
            .unwrap_or(usize::MAX)
            .clamp(1, capacity.max(1))
    }

    /// Examines at most `budget` entries (and at most one full pass) and removes the
    /// expired sessions among them; returns how many it removed.
    pub fn sweep(&mut self, table: &SessionTable, now: Instant, budget: usize) -> usize {
        let cap = table.capacity();
        if cap == 0 {
            return 0;
        }
        let now_ms = millis(now);
        let mut removed = 0;
        for _ in 0..budget.min(cap) {
            if self.cursor >= cap {
                self.cursor = 0;
            }
            // cap ≤ u32::MAX (the table's capacity is a u32), so the cast is exact.
            if let Some(v) = table.expiry_view(self.cursor as u32) {
                if self.timeouts.expired(&v, now_ms) && table.remove(v.id) {
                    removed += 1;
                }
            }
            self.cursor += 1;
        }
        removed
    }
}

-- Pktgen-DPDK script for the DUT testbed (testbed/pktgen/README.md, "Driving the same testbed
-- with Pktgen-DPDK"): port 0 = LAN memif, port 1 = WAN memif; encrypt direction, as
-- svr-pktgen sends it. Written against Pktgen-DPDK's Lua API; not run in our CI (Pktgen-DPDK
-- is not packaged for Debian 12).
package.path = package.path .. ";?.lua;test/?.lua;app/?.lua;"
require "Pktgen"

local lan, wan = "0", "1"
-- Range mode: 1024 flows by source port, everything else fixed.
pktgen.range.dst_mac(lan, "start", "02:00:00:00:d0:01")
pktgen.range.src_ip(lan, "start", "10.1.1.1")
pktgen.range.src_ip(lan, "inc", "0.0.0.0")
pktgen.range.dst_ip(lan, "start", "10.2.0.2")
pktgen.range.dst_ip(lan, "inc", "0.0.0.0")
pktgen.range.src_port(lan, "start", 1024)
pktgen.range.src_port(lan, "inc", 1)
pktgen.range.src_port(lan, "min", 1024)
pktgen.range.src_port(lan, "max", 2047)
pktgen.range.dst_port(lan, "start", 5001)
pktgen.range.dst_port(lan, "inc", 0)
pktgen.range.ip_proto(lan, "udp")
pktgen.range.pkt_size(lan, "start", 64)   -- with FCS: 60 B in the mbuf
pktgen.range.pkt_size(lan, "inc", 0)
pktgen.set_range(lan, "on")
pktgen.set(lan, "rate", 100)              -- percent of the link; memif has no line rate

pktgen.clr()
pktgen.start(lan)
pktgen.delay(10000)
pktgen.stop(lan)
pktgen.delay(500)
prints("LAN (sent)", pktgen.portStats(lan, "port"))
prints("WAN (received, SVR-encrypted)", pktgen.portStats(wan, "port"))

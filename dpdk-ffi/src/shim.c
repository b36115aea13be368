/*
 * Exported bodies for DPDK static-inline functions and macros (see shim.h).
 * Each function is a one-line forward; none adds checks of its own unless its
 * comment says so. Compiled by build.rs with `pkg-config --cflags libdpdk`.
 */
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_prefetch.h>
#include <rte_ring.h>

#include "shim.h"

/** rte_eth_rx_burst: receive up to nb_pkts mbufs from an RX queue; returns the number written. */
uint16_t svr_rte_eth_rx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **rx_pkts, uint16_t nb_pkts)
{
	return rte_eth_rx_burst(port_id, queue_id, rx_pkts, nb_pkts);
}

/** rte_eth_tx_burst: hand up to nb_pkts mbufs to a TX queue; the first N returned are owned by the driver. */
uint16_t svr_rte_eth_tx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **tx_pkts, uint16_t nb_pkts)
{
	return rte_eth_tx_burst(port_id, queue_id, tx_pkts, nb_pkts);
}

/** RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP (built from RTE_BIT64, which bindgen cannot evaluate). */
uint64_t svr_rte_eth_rss_hf_ip_tcp_udp(void)
{
	return RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP;
}

/** rte_pktmbuf_alloc: take one reset mbuf from the pool, or NULL if the pool is empty. */
struct rte_mbuf *svr_rte_pktmbuf_alloc(struct rte_mempool *mp)
{
	return rte_pktmbuf_alloc(mp);
}

/** rte_pktmbuf_free: free a (possibly chained) mbuf back to its pool; NULL is ignored. */
void svr_rte_pktmbuf_free(struct rte_mbuf *m)
{
	rte_pktmbuf_free(m);
}

/** rte_pktmbuf_append: grow the last segment by len bytes; pointer to the new bytes, or NULL if no tailroom. */
char *svr_rte_pktmbuf_append(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_append(m, len);
}

/** rte_pktmbuf_prepend: grow the first segment at the front by len bytes; new data start, or NULL if no headroom. */
char *svr_rte_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_prepend(m, len);
}

/** rte_pktmbuf_adj: remove len bytes from the front of the first segment; new data start, or NULL if too short. */
char *svr_rte_pktmbuf_adj(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_adj(m, len);
}

/** rte_pktmbuf_trim: remove len bytes from the end of the last segment; 0, or -1 if too short. */
int svr_rte_pktmbuf_trim(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_trim(m, len);
}

/** rte_pktmbuf_mtod(m, void *): pointer to the first data byte of the first segment. */
void *svr_rte_pktmbuf_mtod(struct rte_mbuf *m)
{
	return rte_pktmbuf_mtod(m, void *);
}

/** rte_pktmbuf_headroom: bytes free in front of the data of the first segment. */
uint16_t svr_rte_pktmbuf_headroom(const struct rte_mbuf *m)
{
	return rte_pktmbuf_headroom(m);
}

/** rte_pktmbuf_tailroom: bytes free after the data of the first segment. */
uint16_t svr_rte_pktmbuf_tailroom(const struct rte_mbuf *m)
{
	return rte_pktmbuf_tailroom(m);
}

/** Read the 32-bit user tag m->hash.usr (a member of an anonymous union bindgen names unstably). */
uint32_t svr_rte_mbuf_tag(const struct rte_mbuf *m)
{
	return m->hash.usr;
}

/** Write the 32-bit user tag m->hash.usr (overwrites the RSS hash; ol_flags are left alone). */
void svr_rte_mbuf_set_tag(struct rte_mbuf *m, uint32_t tag)
{
	m->hash.usr = tag;
}

/** rte_prefetch0: prefetch the cache line at p into all cache levels. */
void svr_rte_prefetch0(const void *p)
{
	rte_prefetch0(p);
}

/** rte_ring_enqueue_burst: enqueue up to n pointers (SP/MP as the ring was created); returns how many. */
unsigned int svr_rte_ring_enqueue_burst(struct rte_ring *r, void *const *obj_table, unsigned int n)
{
	return rte_ring_enqueue_burst(r, obj_table, n, NULL);
}

/** rte_ring_dequeue_burst: dequeue up to n pointers (SC/MC as the ring was created); returns how many. */
unsigned int svr_rte_ring_dequeue_burst(struct rte_ring *r, void **obj_table, unsigned int n)
{
	return rte_ring_dequeue_burst(r, obj_table, n, NULL);
}

/** rte_ring_count: number of entries in the ring (a snapshot). */
unsigned int svr_rte_ring_count(const struct rte_ring *r)
{
	return rte_ring_count(r);
}

/** rte_ring_get_capacity: how many entries the ring can hold. */
unsigned int svr_rte_ring_capacity(const struct rte_ring *r)
{
	return rte_ring_get_capacity(r);
}

/** rte_errno: the calling thread's per-lcore DPDK error number (a TLS variable bindgen cannot bind). */
int svr_rte_errno(void)
{
	return rte_errno;
}

/** rte_lcore_id: the calling thread's lcore id, or LCORE_ID_ANY on a non-EAL thread. */
unsigned int svr_rte_lcore_id(void)
{
	return rte_lcore_id();
}

/** rte_get_tsc_cycles: the current TSC value (rdtsc on x86). */
uint64_t svr_rte_get_tsc_cycles(void)
{
	return rte_get_tsc_cycles();
}

/** rte_get_tsc_hz: TSC frequency in Hz, as measured by the EAL at init (0 before rte_eal_init). */
uint64_t svr_rte_get_tsc_hz(void)
{
	return rte_get_tsc_hz();
}

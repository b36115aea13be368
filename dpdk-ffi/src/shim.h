/*
 * Non-inline wrappers around the DPDK static-inline functions and macros that
 * dpdk-ffi needs. bindgen cannot bind static-inline functions (they have no
 * symbol), so src/shim.c gives each one an exported body. Documented in shim.c.
 */
#ifndef SVR_DPDK_SHIM_H
#define SVR_DPDK_SHIM_H

#include <stdint.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

uint16_t svr_rte_eth_rx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **rx_pkts, uint16_t nb_pkts);
uint16_t svr_rte_eth_tx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **tx_pkts, uint16_t nb_pkts);
uint64_t svr_rte_eth_rss_hf_ip_tcp_udp(void);

struct rte_mbuf *svr_rte_pktmbuf_alloc(struct rte_mempool *mp);
void svr_rte_pktmbuf_free(struct rte_mbuf *m);
char *svr_rte_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
char *svr_rte_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len);
char *svr_rte_pktmbuf_adj(struct rte_mbuf *m, uint16_t len);
int svr_rte_pktmbuf_trim(struct rte_mbuf *m, uint16_t len);
void *svr_rte_pktmbuf_mtod(struct rte_mbuf *m);
uint16_t svr_rte_pktmbuf_headroom(const struct rte_mbuf *m);
uint16_t svr_rte_pktmbuf_tailroom(const struct rte_mbuf *m);
uint32_t svr_rte_mbuf_tag(const struct rte_mbuf *m);
void svr_rte_mbuf_set_tag(struct rte_mbuf *m, uint32_t tag);
void svr_rte_prefetch0(const void *p);

unsigned int svr_rte_ring_enqueue_burst(struct rte_ring *r, void *const *obj_table, unsigned int n);
unsigned int svr_rte_ring_dequeue_burst(struct rte_ring *r, void **obj_table, unsigned int n);
unsigned int svr_rte_ring_count(const struct rte_ring *r);
unsigned int svr_rte_ring_capacity(const struct rte_ring *r);

int svr_rte_errno(void);
unsigned int svr_rte_lcore_id(void);
uint64_t svr_rte_get_tsc_cycles(void);
uint64_t svr_rte_get_tsc_hz(void);

#endif

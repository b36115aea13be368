/* Headers bindgen reads for dpdk-ffi. Only rte_ and RTE_ items (plus the svr_ shim) are kept. */
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <rte_lcore.h>
#include <rte_launch.h>
#include <errno.h>
#include <rte_errno.h>
#include <rte_dev.h>
#include <rte_bus_vdev.h>
#include <rte_cycles.h>
#include <rte_version.h>
#include <rte_ether.h>
#include <rte_telemetry.h>
#include <rte_pdump.h>

#include "src/shim.h"

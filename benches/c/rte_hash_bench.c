/* Reference for benches/src/bin/flowtable.rs: DPDK rte_hash with the same key count (two
 * 40-byte keys per session, laid out like fastpath's FlowKey: five u64 words), the same
 * 70 % load target, random lookups of existing keys from a shuffled array, one lcore.
 *
 *   rte_hash_bench <EAL args> -- <sessions> [lookups]
 *
 * The data stored with each key is the session index (what our table's slot holds); an
 * rte_hash hit returns only that, it does not copy a 128-byte session record as
 * SessionTable::lookup does, so this is the cost of the index alone.
 *
 * Output lines, like the Rust benches:
 *   bench=rte_hash op=memory sessions=N bytes_per_session=...
 *   bench=rte_hash op=lookup|lookup_bulk32 sessions=N mlookups_per_s=... ns_per_lookup=...
 *
 * Build (scripts/bench.sh does this):
 *   cc -O3 -march=native -o rte_hash_bench rte_hash_bench.c $(pkg-config --cflags --libs libdpdk)
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_lcore.h>
#include <rte_malloc.h>

#define KEY_WORDS 5
#define BURST 32
#define PER_PAIR 24575

struct flow_key {
	uint64_t w[KEY_WORDS];
};

static uint64_t rng_state;

static uint64_t
rng_next(void)
{
	/* SplitMix64 */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t
tail(uint8_t proto, uint16_t sp, uint16_t dp)
{
	return (uint64_t)sp << 48 | (uint64_t)dp << 32 | (uint64_t)proto << 8 | 4;
}

/* Same shape as flowtable.rs: LAN 10.0.0.0/8 client -> random server, WAN peer waypoint:odd
 * -> our waypoint:even. */
static void
make_keys(uint64_t i, struct flow_key *lan, struct flow_key *wan)
{
	uint8_t proto = (i % 4 == 0) ? 17 : 6;
	memset(lan, 0, sizeof(*lan));
	memset(wan, 0, sizeof(*wan));
	lan->w[1] = 0x0a000000u | (i & 0xffffff);
	lan->w[3] = (uint32_t)rng_next();
	lan->w[4] = tail(proto, 1024 + rng_next() % 64512, proto == 6 ? 443 : 53);
	uint16_t slot = i % PER_PAIR;
	wan->w[1] = 0x64400000u | (uint32_t)(i / PER_PAIR);
	wan->w[3] = 0xc0000201u; /* 192.0.2.1 */
	uint16_t odd = 16385 + 2 * slot;
	wan->w[4] = tail(proto, odd, odd - 1);
}

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static size_t
heap_alloc_bytes(void)
{
	struct rte_malloc_socket_stats st;
	size_t total = 0;
	for (int s = 0; s < RTE_MAX_NUMA_NODES; s++)
		if (rte_malloc_get_socket_stats(s, &st) == 0)
			total += st.heap_allocsz_bytes;
	return total;
}

static void
report(const char *op, uint64_t n, uint64_t lookups, uint64_t hits, uint64_t ticks, double wall)
{
	double hz = (double)rte_get_tsc_hz();
	double ns = ticks / hz * 1e9 / lookups;
	if (hits != lookups) {
		fprintf(stderr, "error: %s found %" PRIu64 " of %" PRIu64 "\n", op, hits, lookups);
		exit(1);
	}
	printf("bench=rte_hash op=%s sessions=%" PRIu64 " lookups=%" PRIu64 " hits=%" PRIu64
	       " ns_per_lookup=%.2f mlookups_per_s=%.3f cycles_per_lookup=%.1f wall_s=%.3f\n",
	       op, n, lookups, hits, ns, 1e3 / ns, (double)ticks / lookups, wall);
}

int
main(int argc, char **argv)
{
	int ret = rte_eal_init(argc, argv);
	if (ret < 0) {
		fprintf(stderr, "rte_eal_init: %s\n", rte_strerror(rte_errno));
		return 1;
	}
	argc -= ret;
	argv += ret;
	if (argc < 2) {
		fprintf(stderr, "usage: rte_hash_bench <EAL args> -- <sessions> [lookups]\n");
		return 2;
	}
	uint64_t n = strtoull(argv[1], NULL, 10);
	uint64_t want = argc > 2 ? strtoull(argv[2], NULL, 10) : 8000000;
	uint64_t nkeys = 2 * n;
	if (n < BURST / 2 || n > (1u << 24)) {
		fprintf(stderr, "sessions must be in 16..2^24\n");
		return 2;
	}
	rng_state = n ^ 0x5356525f666c6f77ULL;

	struct flow_key *keys = malloc(nkeys * sizeof(*keys));
	if (keys == NULL)
		return 1;
	for (uint64_t i = 0; i < n; i++)
		make_keys(i, &keys[2 * i], &keys[2 * i + 1]);

	size_t before = heap_alloc_bytes();
	struct rte_hash_parameters p = {
		.name = "svr_flows",
		/* 70 % load like SessionTable; rte_hash rounds buckets up to a power of two. */
		.entries = (uint32_t)((nkeys * 10 + 6) / 7),
		.key_len = sizeof(struct flow_key),
		.hash_func = rte_hash_crc,
		.hash_func_init_val = 0,
		.socket_id = (int)rte_socket_id(),
		.extra_flag = 0,
	};
	struct rte_hash *h = rte_hash_create(&p);
	if (h == NULL) {
		fprintf(stderr, "rte_hash_create(%u entries): %s\n", p.entries, rte_strerror(rte_errno));
		return 1;
	}
	size_t after = heap_alloc_bytes();

	uint64_t t0 = rte_rdtsc();
	for (uint64_t i = 0; i < nkeys; i++) {
		int r = rte_hash_add_key_data(h, &keys[i], (void *)(uintptr_t)(i / 2 + 1));
		if (r != 0) {
			fprintf(stderr, "rte_hash_add_key_data #%" PRIu64 ": %d\n", i, r);
			return 1;
		}
	}
	uint64_t ins = rte_rdtsc() - t0;
	double hz = (double)rte_get_tsc_hz();
	printf("bench=rte_hash op=memory sessions=%" PRIu64 " entries=%u heap_bytes=%zu "
	       "bytes_per_session=%.1f ns_per_session_insert=%.1f tsc_mhz=%.1f lcore=%u\n",
	       n, p.entries, after - before, (double)(after - before) / n, ins / hz * 1e9 / n,
	       hz / 1e6, rte_lcore_id());

	/* Shuffle (Fisher-Yates). */
	for (uint64_t i = nkeys - 1; i > 0; i--) {
		uint64_t j = rng_next() % (i + 1);
		struct flow_key t = keys[i];
		keys[i] = keys[j];
		keys[j] = t;
	}
	uint64_t blen = nkeys / BURST * BURST;
	/* Cycle through the shuffled keys for small N, a random sample of them for large N. */
	uint64_t lookups = (want < BURST ? BURST : want + BURST - 1) / BURST * BURST;

	uint64_t sink = 0, hits = 0;
	void *data;
	for (uint64_t i = 0; i < lookups && i < 1000000; i++)
		if (rte_hash_lookup_data(h, &keys[i % nkeys], &data) >= 0)
			sink ^= (uintptr_t)data;

	double w0 = now_s();
	t0 = rte_rdtsc();
	for (uint64_t i = 0, k = 0; i < lookups; i++) {
		if (rte_hash_lookup_data(h, &keys[k], &data) >= 0) {
			hits++;
			sink ^= (uintptr_t)data;
		}
		if (++k == nkeys)
			k = 0;
	}
	uint64_t t = rte_rdtsc() - t0;
	report("lookup", n, lookups, hits, t, now_s() - w0);

	const void *ptrs[BURST];
	void *out[BURST];
	uint64_t mask;
	hits = 0;
	w0 = now_s();
	t0 = rte_rdtsc();
	for (uint64_t i = 0, k = 0; i < lookups; i += BURST) {
		for (int j = 0; j < BURST; j++)
			ptrs[j] = &keys[k + j];
		int r = rte_hash_lookup_bulk_data(h, ptrs, BURST, &mask, out);
		hits += (uint64_t)r;
		for (int j = 0; j < BURST; j++)
			if (mask & (1ULL << j))
				sink ^= (uintptr_t)out[j];
		k += BURST;
		if (k == blen)
			k = 0;
	}
	t = rte_rdtsc() - t0;
	report("lookup_bulk32", n, lookups, hits, t, now_s() - w0);
	if (sink == 42)
		printf("# %" PRIu64 "\n", sink);

	rte_hash_free(h);
	free(keys);
	rte_eal_cleanup();
	return 0;
}

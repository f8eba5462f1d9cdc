/*
 * its/latency.h - per-stage latency histograms: log-bucketed, lock-free per thread, merged
 * on read.
 *
 *     its_lat_t *lat;
 *     its_lat_create(ITS_STAGE_N, 16, &lat);
 *     its_lat_shard *sh = its_lat_shard_claim(lat);   // once per recording thread
 *     its_lat_record(sh, ITS_STAGE_INFER, t1 - t0);   // ns; no lock, no allocation
 *     uint64_t p99 = its_lat_quantile(lat, ITS_STAGE_INFER, 0.99);   // any thread
 *     its_lat_destroy(lat);
 *
 * Buckets: 8 per power of two (a relative width of 12.5%), from 1 ns to about 18 minutes;
 * a quantile is reported as the middle of its bucket, so it is within 6.25% of the truth.
 * Each thread writes only its own shard (relaxed atomic counters, no sharing of cache
 * lines between writers); readers sum the shards, so a reading is a consistent-enough
 * snapshot without stopping the writers. Shards are claimed, never returned; claim fails
 * (NULL) when max_shards are taken.
 */
#ifndef ITS_LATENCY_H
#define ITS_LATENCY_H

#include <stddef.h>
#include <stdint.h>

#define ITS_LAT_BUCKETS 320

typedef struct its_lat its_lat_t;
typedef struct its_lat_shard its_lat_shard;

int its_lat_create(int n_stages, int max_shards, its_lat_t **out);
void its_lat_destroy(its_lat_t *lat);
its_lat_shard *its_lat_shard_claim(its_lat_t *lat);
void its_lat_record(its_lat_shard *sh, int stage, uint64_t ns);

/* Merged over all shards. q in [0, 1]; 0 when the stage has no samples. */
uint64_t its_lat_quantile(its_lat_t *lat, int stage, double q);
uint64_t its_lat_count(its_lat_t *lat, int stage);
/* Sum of recorded values (ns), for a mean and for Prometheus' _sum. */
uint64_t its_lat_sum(its_lat_t *lat, int stage);
/* Merged bucket counts (ITS_LAT_BUCKETS entries) for export. */
void its_lat_buckets(its_lat_t *lat, int stage, uint64_t *counts);
/* Bucket index of a value, and the bounds [lo, hi) of a bucket, in ns. */
int its_lat_bucket_of(uint64_t ns);
void its_lat_bucket_bounds(int bucket, uint64_t *lo, uint64_t *hi);
/* Clear every shard (between benchmark phases; writers may lose a few concurrent samples). */
void its_lat_reset(its_lat_t *lat);

#endif

/*
 * Latency histograms (its/latency.h). A bucket index is the position of the value's highest
 * set bit (the octave) and the next three bits (the eighth within the octave), which is
 * HdrHistogram's idea at a fixed, small precision: cheap to compute with one clz.
 */
#include "its/latency.h"

#include <stdatomic.h>
#include <string.h>

#include "its/core.h"

struct its_lat_shard {
    atomic_uint_fast64_t *counts; /* n_stages x ITS_LAT_BUCKETS */
    atomic_uint_fast64_t *sums;   /* n_stages */
};

struct its_lat {
    int n_stages, max_shards;
    atomic_int claimed;
    its_lat_shard *shards;
};

int its_lat_bucket_of(uint64_t ns)
{
    if (ns < 8)
        return (int)ns;
    int msb = 63 - __builtin_clzll(ns);
    int idx = (msb - 2) * 8 + (int)((ns >> (msb - 3)) & 7);
    return idx < ITS_LAT_BUCKETS ? idx : ITS_LAT_BUCKETS - 1;
}

void its_lat_bucket_bounds(int bucket, uint64_t *lo, uint64_t *hi)
{
    if (bucket < 8) {
        *lo = (uint64_t)bucket;
        *hi = (uint64_t)bucket + 1;
        return;
    }
    int msb = bucket / 8 + 2, sub = bucket % 8;
    *lo = (uint64_t)(8 + sub) << (msb - 3);
    *hi = (uint64_t)(9 + sub) << (msb - 3);
}

int its_lat_create(int n_stages, int max_shards, its_lat_t **out)
{
    *out = NULL;
    if (n_stages < 1 || max_shards < 1)
        return ITS_EINVAL;
    its_lat_t *l = its_calloc(ITS_MOD_APP, 1, sizeof *l);
    if (!l)
        return ITS_ENOMEM;
    l->n_stages = n_stages;
    l->max_shards = max_shards;
    l->shards = its_calloc(ITS_MOD_APP, (size_t)max_shards, sizeof *l->shards);
    if (!l->shards) {
        its_free(l);
        return ITS_ENOMEM;
    }
    for (int i = 0; i < max_shards; i++) {
        /* 64-byte aligned blocks: writers never share a cache line */
        size_t nc = (size_t)n_stages * ITS_LAT_BUCKETS;
        l->shards[i].counts = its_aligned_alloc(ITS_MOD_APP, 64, nc * sizeof(uint64_t));
        l->shards[i].sums = its_aligned_alloc(ITS_MOD_APP, 64, (size_t)n_stages * 64);
        if (!l->shards[i].counts || !l->shards[i].sums) {
            l->max_shards = i + 1;
            its_lat_destroy(l);
            return ITS_ENOMEM;
        }
        for (size_t k = 0; k < nc; k++)
            atomic_init(&l->shards[i].counts[k], 0);
        for (int k = 0; k < n_stages; k++)
            atomic_init(&l->shards[i].sums[k], 0);
    }
    atomic_init(&l->claimed, 0);
    *out = l;
    return 0;
}

void its_lat_destroy(its_lat_t *l)
{
    if (!l)
        return;
    for (int i = 0; i < l->max_shards; i++) {
        its_free(l->shards[i].counts);
        its_free(l->shards[i].sums);
    }
    its_free(l->shards);
    its_free(l);
}

its_lat_shard *its_lat_shard_claim(its_lat_t *l)
{
    int i = atomic_fetch_add(&l->claimed, 1);
    if (i >= l->max_shards) {
        atomic_fetch_sub(&l->claimed, 1);
        return NULL;
    }
    return &l->shards[i];
}

void its_lat_record(its_lat_shard *sh, int stage, uint64_t ns)
{
    if (!sh)
        return;
    atomic_uint_fast64_t *c = &sh->counts[(size_t)stage * ITS_LAT_BUCKETS + its_lat_bucket_of(ns)];
    /* single writer per shard: a relaxed load+store is enough and cheaper than an RMW */
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    atomic_uint_fast64_t *s = &sh->sums[stage];
    atomic_store_explicit(s, atomic_load_explicit(s, memory_order_relaxed) + ns,
                          memory_order_relaxed);
}

void its_lat_buckets(its_lat_t *l, int stage, uint64_t *counts)
{
    memset(counts, 0, ITS_LAT_BUCKETS * sizeof *counts);
    int n = ITS_MIN(atomic_load(&l->claimed), l->max_shards);
    for (int i = 0; i < n; i++)
        for (int b = 0; b < ITS_LAT_BUCKETS; b++)
            counts[b] += atomic_load_explicit(
                &l->shards[i].counts[(size_t)stage * ITS_LAT_BUCKETS + b], memory_order_relaxed);
}

uint64_t its_lat_count(its_lat_t *l, int stage)
{
    uint64_t c[ITS_LAT_BUCKETS], n = 0;
    its_lat_buckets(l, stage, c);
    for (int b = 0; b < ITS_LAT_BUCKETS; b++)
        n += c[b];
    return n;
}

uint64_t its_lat_sum(its_lat_t *l, int stage)
{
    uint64_t s = 0;
    int n = ITS_MIN(atomic_load(&l->claimed), l->max_shards);
    for (int i = 0; i < n; i++)
        s += atomic_load_explicit(&l->shards[i].sums[stage], memory_order_relaxed);
    return s;
}

uint64_t its_lat_quantile(its_lat_t *l, int stage, double q)
{
    uint64_t c[ITS_LAT_BUCKETS], n = 0;
    its_lat_buckets(l, stage, c);
    for (int b = 0; b < ITS_LAT_BUCKETS; b++)
        n += c[b];
    if (!n)
        return 0;
    q = ITS_CLAMP(q, 0.0, 1.0);
    uint64_t rank = (uint64_t)(q * (double)(n - 1)) + 1, seen = 0;
    for (int b = 0; b < ITS_LAT_BUCKETS; b++) {
        seen += c[b];
        if (seen >= rank) {
            uint64_t lo, hi;
            its_lat_bucket_bounds(b, &lo, &hi);
            return lo + (hi - lo) / 2;
        }
    }
    return 0;
}

void its_lat_reset(its_lat_t *l)
{
    int n = ITS_MIN(atomic_load(&l->claimed), l->max_shards);
    for (int i = 0; i < n; i++) {
        for (size_t k = 0; k < (size_t)l->n_stages * ITS_LAT_BUCKETS; k++)
            atomic_store_explicit(&l->shards[i].counts[k], 0, memory_order_relaxed);
        for (int k = 0; k < l->n_stages; k++)
            atomic_store_explicit(&l->shards[i].sums[k], 0, memory_order_relaxed);
    }
}

/*
 * its/alloc.h - allocation wrappers with per-module byte counters and failure injection.
 *
 *     float *w = its_malloc(ITS_MOD_ENGINE, n * sizeof(float));
 *     if (!w)
 *         return ITS_ENOMEM;
 *     ...
 *     its_free(w);
 *
 * Contract: every heap allocation in the project goes through these functions so that tests
 * can make the Nth allocation fail and /metrics can report live bytes per module. Memory from
 * its_malloc/its_calloc/its_realloc/its_aligned_alloc/its_strdup is released with its_free
 * (never free(3)); its_free(NULL) is a no-op. All functions are thread-safe and lock-free.
 * The hot path of the service must not allocate after warm-up: its_alloc_count() lets tests
 * and benchmarks prove that.
 */
#ifndef ITS_ALLOC_H
#define ITS_ALLOC_H

#include <stddef.h>
#include <stdint.h>

typedef enum its_module {
    ITS_MOD_CORE = 0,
    ITS_MOD_ENGINE,
    ITS_MOD_DETECT,
    ITS_MOD_INGEST,
    ITS_MOD_BATCH,
    ITS_MOD_TRACK,
    ITS_MOD_ANALYTICS,
    ITS_MOD_QUALITY,
    ITS_MOD_MODELMON,
    ITS_MOD_PUBLISH,
    ITS_MOD_API,
    ITS_MOD_METRICS,
    ITS_MOD_APP,
    ITS_MOD_TEST,
    ITS_MOD_COUNT
} its_module;

typedef struct its_alloc_stats {
    int64_t bytes_live; /* bytes currently allocated */
    int64_t bytes_peak; /* high-water mark of bytes_live */
    uint64_t allocs;    /* successful allocations */
    uint64_t frees;     /* frees of non-NULL pointers */
    uint64_t failures;  /* allocations that failed (real or injected) */
} its_alloc_stats;

void *its_malloc(its_module mod, size_t size);
void *its_calloc(its_module mod, size_t count, size_t size);
/* Like realloc(3); the block keeps the module it was first allocated for. On failure the old
 * block is left untouched and NULL is returned. */
void *its_realloc(its_module mod, void *ptr, size_t size);
/* align: a power of two (at most 4096). */
void *its_aligned_alloc(its_module mod, size_t align, size_t size);
char *its_strdup(its_module mod, const char *s);
char *its_strndup(its_module mod, const char *s, size_t n);
void its_free(void *ptr);

/* Usable size of a block from these functions. */
size_t its_alloc_size(const void *ptr);

/* Counters for one module (ITS_MOD_COUNT: the sum over all modules). */
void its_alloc_get_stats(its_module mod, its_alloc_stats *out);
/* Total successful allocations since start, all modules: cheap, for zero-allocation checks. */
uint64_t its_alloc_count(void);
/* Module name for metric labels ("engine"). */
const char *its_module_name(its_module mod);

/*
 * Failure injection, for tests. After `skip` more allocations succeed, the next `count`
 * allocations for module `mod` (ITS_MOD_COUNT: any module) fail. count < 0 fails every later
 * allocation. its_alloc_fail_reset() turns injection off.
 */
void its_alloc_fail_after(its_module mod, long skip, long count);
void its_alloc_fail_reset(void);

#endif

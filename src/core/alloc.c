/*
 * Allocation wrappers. Each block carries a 32-byte header just before the pointer handed
 * out: the requested size, the module it is counted against, a magic number that catches a
 * foreign pointer passed to its_free, and the distance back to the start of the underlying
 * malloc block (non-zero for aligned allocations).
 */
#include "its/alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "its/log.h"

#define HDR_MAGIC  0x17a110c5u
#define BASE_ALIGN 16

typedef struct hdr {
    uint64_t size;
    uint32_t module;
    uint32_t magic;
    uint32_t offset; /* user pointer - malloc pointer */
    uint32_t pad[3];
} hdr;

_Static_assert(sizeof(hdr) == 32, "header must keep 16-byte alignment");

typedef struct counters {
    atomic_llong live;
    atomic_llong peak;
    atomic_ullong allocs;
    atomic_ullong frees;
    atomic_ullong failures;
} counters;

static counters g_mod[ITS_MOD_COUNT];
static atomic_ullong g_total_allocs;

/* Failure injection state. */
static atomic_int g_inj_on;
static atomic_int g_inj_mod;
static atomic_long g_inj_skip;
static atomic_long g_inj_count;

static const char *const mod_names[ITS_MOD_COUNT] = {
    "core",    "engine",   "detect",  "ingest", "batch",   "track", "analytics",
    "quality", "modelmon", "publish", "api",    "metrics", "app",   "test"};

const char *its_module_name(its_module mod)
{
    return (unsigned)mod < ITS_MOD_COUNT ? mod_names[mod] : "unknown";
}

void its_alloc_fail_after(its_module mod, long skip, long count)
{
    atomic_store(&g_inj_mod, (int)mod);
    atomic_store(&g_inj_skip, skip);
    atomic_store(&g_inj_count, count);
    atomic_store(&g_inj_on, 1);
}

void its_alloc_fail_reset(void)
{
    atomic_store(&g_inj_on, 0);
}

static int inject_failure(its_module mod)
{
    if (!atomic_load_explicit(&g_inj_on, memory_order_relaxed))
        return 0;
    int m = atomic_load(&g_inj_mod);
    if (m != ITS_MOD_COUNT && m != (int)mod)
        return 0;
    if (atomic_fetch_sub(&g_inj_skip, 1) > 0)
        return 0;
    atomic_store(&g_inj_skip, 0);
    long c = atomic_load(&g_inj_count);
    if (c < 0)
        return 1;
    while (c > 0) {
        if (atomic_compare_exchange_weak(&g_inj_count, &c, c - 1))
            return 1;
    }
    return 0;
}

static void account_alloc(its_module mod, size_t size)
{
    counters *c = &g_mod[mod];
    long long live = atomic_fetch_add(&c->live, (long long)size) + (long long)size;
    long long peak = atomic_load(&c->peak);
    while (live > peak && !atomic_compare_exchange_weak(&c->peak, &peak, live)) {
    }
    atomic_fetch_add(&c->allocs, 1);
    atomic_fetch_add_explicit(&g_total_allocs, 1, memory_order_relaxed);
}

static void *alloc_block(its_module mod, size_t align, size_t size, int zero)
{
    if ((unsigned)mod >= ITS_MOD_COUNT)
        mod = ITS_MOD_CORE;
    if (align < BASE_ALIGN)
        align = BASE_ALIGN;
    if (inject_failure(mod) || size > SIZE_MAX - align - sizeof(hdr)) {
        atomic_fetch_add(&g_mod[mod].failures, 1);
        return NULL;
    }
    size_t total = size + sizeof(hdr) + (align - BASE_ALIGN);
    unsigned char *base = zero ? calloc(1, total) : malloc(total);
    if (!base) {
        atomic_fetch_add(&g_mod[mod].failures, 1);
        return NULL;
    }
    uintptr_t u = ((uintptr_t)base + sizeof(hdr) + align - 1) & ~(uintptr_t)(align - 1);
    hdr *h = (hdr *)(u - sizeof(hdr));
    h->size = size;
    h->module = (uint32_t)mod;
    h->magic = HDR_MAGIC;
    h->offset = (uint32_t)(u - (uintptr_t)base);
    account_alloc(mod, size);
    return (void *)u;
}

static hdr *header_of(const void *ptr)
{
    hdr *h = (hdr *)((uintptr_t)ptr - sizeof(hdr));
    if (h->magic != HDR_MAGIC) {
        its_loge("core", "alloc", "its_free/its_realloc on a pointer not from its_malloc: %p", ptr);
        abort(); /* heap corruption or a programmer error: continuing would be worse */
    }
    return h;
}

void *its_malloc(its_module mod, size_t size)
{
    return alloc_block(mod, 0, size, 0);
}

void *its_calloc(its_module mod, size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size) {
        atomic_fetch_add(&g_mod[(unsigned)mod < ITS_MOD_COUNT ? mod : 0].failures, 1);
        return NULL;
    }
    return alloc_block(mod, 0, count * size, 1);
}

void *its_aligned_alloc(its_module mod, size_t align, size_t size)
{
    if (align == 0 || (align & (align - 1)) || align > 4096)
        return NULL;
    return alloc_block(mod, align, size, 0);
}

void its_free(void *ptr)
{
    if (!ptr)
        return;
    hdr *h = header_of(ptr);
    counters *c = &g_mod[h->module];
    atomic_fetch_sub(&c->live, (long long)h->size);
    atomic_fetch_add(&c->frees, 1);
    h->magic = 0;
    free((unsigned char *)ptr - h->offset);
}

void *its_realloc(its_module mod, void *ptr, size_t size)
{
    if (!ptr)
        return its_malloc(mod, size);
    hdr *h = header_of(ptr);
    void *n = alloc_block((its_module)h->module, 0, size, 0);
    if (!n)
        return NULL;
    memcpy(n, ptr, h->size < size ? h->size : size);
    its_free(ptr);
    return n;
}

char *its_strndup(its_module mod, const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *d = its_malloc(mod, len + 1);
    if (d) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

char *its_strdup(its_module mod, const char *s)
{
    return its_strndup(mod, s, SIZE_MAX);
}

size_t its_alloc_size(const void *ptr)
{
    return ptr ? header_of(ptr)->size : 0;
}

uint64_t its_alloc_count(void)
{
    return atomic_load(&g_total_allocs);
}

void its_alloc_get_stats(its_module mod, its_alloc_stats *out)
{
    memset(out, 0, sizeof *out);
    for (int m = 0; m < ITS_MOD_COUNT; m++) {
        if (mod != ITS_MOD_COUNT && (int)mod != m)
            continue;
        out->bytes_live += atomic_load(&g_mod[m].live);
        out->bytes_peak += atomic_load(&g_mod[m].peak);
        out->allocs += atomic_load(&g_mod[m].allocs);
        out->frees += atomic_load(&g_mod[m].frees);
        out->failures += atomic_load(&g_mod[m].failures);
    }
}

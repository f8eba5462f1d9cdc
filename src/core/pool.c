/*
 * Buffer pools. All buffers and their memory come from one allocation at creation; the free
 * list is an its_queue of buffer pointers, so get and return are lock-free. The pool counts
 * itself as referenced by its creator and by every buffer out on loan, so destroying it while
 * frames are still in flight is safe: the last returned buffer frees it.
 */
#include "its/pool.h"

#include <string.h>

#include "its/error.h"
#include "its/queue.h"

struct its_pool {
    its_queue_t *free_list;
    its_buf *bufs;
    uint8_t *memory;
    size_t count;
    size_t capacity;
    atomic_long refs;
    atomic_ullong misses;
    its_pool_mem mem; /* alloc NULL: its_aligned_alloc / its_free */
};

static void free_memory(its_pool_t *p)
{
    if (p->mem.alloc) {
        if (p->memory)
            p->mem.free(p->mem.ctx, p->memory);
    } else {
        its_free(p->memory);
    }
}

static void pool_release(its_pool_t *p)
{
    if (atomic_fetch_sub(&p->refs, 1) != 1)
        return;
    its_queue_destroy(p->free_list);
    free_memory(p);
    its_free(p->bufs);
    its_free(p);
}

int its_pool_create(its_module mod, size_t buf_capacity, size_t count, its_pool_t **out)
{
    return its_pool_create_mem(mod, buf_capacity, count, NULL, out);
}

int its_pool_create_mem(its_module mod, size_t buf_capacity, size_t count, const its_pool_mem *mem,
                        its_pool_t **out)
{
    if (count == 0 || buf_capacity == 0 || (mem && (!mem->alloc || !mem->free)))
        return ITS_EINVAL;
    size_t stride = (buf_capacity + 63) & ~(size_t)63;
    if (stride < buf_capacity || count > SIZE_MAX / stride)
        return ITS_EOVERFLOW;
    its_pool_t *p = its_calloc(mod, 1, sizeof *p);
    if (!p)
        return ITS_ENOMEM;
    if (mem)
        p->mem = *mem;
    p->bufs = its_calloc(mod, count, sizeof *p->bufs);
    p->memory =
        mem ? mem->alloc(mem->ctx, stride * count) : its_aligned_alloc(mod, 64, stride * count);
    int rc = ITS_ENOMEM;
    if (p->memory && ((uintptr_t)p->memory & 63))
        rc = ITS_EINVAL; /* the allocator broke its contract */
    else if (p->bufs && p->memory)
        rc = its_queue_create(mod, count, &p->free_list);
    if (rc < 0) {
        free_memory(p);
        its_free(p->bufs);
        its_free(p);
        return rc;
    }
    p->count = count;
    p->capacity = buf_capacity;
    atomic_init(&p->refs, 1);
    atomic_init(&p->misses, 0);
    for (size_t i = 0; i < count; i++) {
        its_buf *b = &p->bufs[i];
        b->data = p->memory + i * stride;
        b->capacity = buf_capacity;
        b->pool = p;
        atomic_init(&b->refs, 0);
        its_queue_push(p->free_list, b);
    }
    *out = p;
    return 0;
}

void its_pool_destroy(its_pool_t *pool)
{
    if (pool)
        pool_release(pool);
}

static its_buf *take(its_pool_t *p, void *item)
{
    its_buf *b = item;
    atomic_fetch_add(&p->refs, 1);
    atomic_store(&b->refs, 1);
    b->size = 0;
    b->opaque = NULL;
    return b;
}

its_buf *its_pool_get(its_pool_t *pool)
{
    void *item;
    if (its_queue_pop(pool->free_list, &item) < 0) {
        atomic_fetch_add(&pool->misses, 1);
        return NULL;
    }
    return take(pool, item);
}

its_buf *its_pool_get_wait(its_pool_t *pool, uint64_t timeout_ns)
{
    void *item;
    if (its_queue_pop_wait(pool->free_list, &item, timeout_ns) < 0) {
        atomic_fetch_add(&pool->misses, 1);
        return NULL;
    }
    return take(pool, item);
}

its_buf *its_buf_ref(its_buf *b)
{
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    return b;
}

void its_buf_unref(its_buf *b)
{
    if (!b)
        return;
    if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1)
        return;
    its_pool_t *p = b->pool;
    its_queue_push(p->free_list, b); /* cannot fail: the ring holds every buffer */
    pool_release(p);
}

int its_buf_writable(const its_buf *b)
{
    return atomic_load(&b->refs) == 1;
}

size_t its_pool_count(const its_pool_t *pool)
{
    return pool->count;
}
size_t its_pool_available(const its_pool_t *pool)
{
    return its_queue_size(pool->free_list);
}
uint64_t its_pool_misses(const its_pool_t *pool)
{
    return atomic_load(&pool->misses);
}

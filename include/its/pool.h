/*
 * its/pool.h - pools of reference-counted buffers (FFmpeg's AVBufferPool idea).
 *
 *     its_pool_t *pool;
 *     its_pool_create(ITS_MOD_INGEST, 1280 * 720 * 3, 64, &pool);
 *     its_buf *b = its_pool_get(pool);   // NULL when all 64 are in use (counted)
 *     fill(b->data, b->size);
 *     its_buf_ref(b);                    // a second owner, e.g. the batcher
 *     its_buf_unref(b);                  // the last unref returns it to the pool
 *     its_pool_destroy(pool);            // the pool lives on until its last buffer returns
 *
 * Contract: buffers are allocated once at creation; getting and returning them never
 * allocates and is lock-free, so any thread may do either. A buffer is writable only while
 * its reference count is 1 (its_buf_writable). its_pool_destroy drops the creator's
 * reference; the memory is released when the last outstanding buffer comes back.
 */
#ifndef ITS_POOL_H
#define ITS_POOL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "its/alloc.h"

typedef struct its_pool its_pool_t;

typedef struct its_buf {
    uint8_t *data;   /* 64-byte aligned, capacity bytes */
    size_t capacity; /* fixed at pool creation */
    size_t size;     /* bytes in use, set by the producer */
    void *opaque;    /* free for the owner's use; cleared on get */
    /* private */
    atomic_int refs;
    its_pool_t *pool;
} its_buf;

int its_pool_create(its_module mod, size_t buf_capacity, size_t count, its_pool_t **out);

/* Where a pool's buffer memory comes from when it must be special (e.g. pinned host memory
 * a GPU can DMA from). alloc returns memory aligned to at least 64 bytes, or NULL; free gets
 * it back when the pool is released (its last buffer returned; any thread). */
typedef struct its_pool_mem {
    void *(*alloc)(void *ctx, size_t bytes);
    void (*free)(void *ctx, void *p);
    void *ctx;
} its_pool_mem;
/* As its_pool_create, the buffers' memory from mem (NULL: as its_pool_create). The pool's
 * bookkeeping still comes from its_malloc. */
int its_pool_create_mem(its_module mod, size_t buf_capacity, size_t count, const its_pool_mem *mem,
                        its_pool_t **out);
void its_pool_destroy(its_pool_t *pool);

/* A free buffer with one reference, or NULL if none is free. */
its_buf *its_pool_get(its_pool_t *pool);
/* As its_pool_get, waiting up to timeout_ns for one to come back. */
its_buf *its_pool_get_wait(its_pool_t *pool, uint64_t timeout_ns);

its_buf *its_buf_ref(its_buf *b);
/* NULL is a no-op. */
void its_buf_unref(its_buf *b);
int its_buf_writable(const its_buf *b);

size_t its_pool_count(const its_pool_t *pool);
size_t its_pool_available(const its_pool_t *pool);
/* Number of its_pool_get calls that found no free buffer. */
uint64_t its_pool_misses(const its_pool_t *pool);

#endif

/*
 * its/queue.h - bounded multi-producer multi-consumer queue of pointers.
 *
 *     its_queue_t *q;
 *     if (its_queue_create(ITS_MOD_BATCH, 1024, &q) < 0) ...
 *     its_queue_push(q, frame);                       // ITS_EFULL if full
 *     its_queue_pop_wait(q, &item, 5 * ITS_NS_PER_MS); // ITS_ETIMEDOUT if nothing came
 *     its_queue_close(q);                             // wakes every waiter with ITS_ECLOSED
 *     its_queue_destroy(q);
 *
 * Contract: any number of threads may push and pop concurrently. The try operations are
 * lock-free (a Vyukov sequence ring); the wait variants park on a condition variable only
 * when they would otherwise fail, and are woken by the opposite operation. Items are opaque
 * pointers, never NULL; the queue does not own them. Capacity is rounded up to a power of
 * two. After its_queue_close, pushes fail with ITS_ECLOSED and pops drain what is left, then
 * fail with ITS_ECLOSED. Destroy only when no thread uses the queue any more.
 */
#ifndef ITS_QUEUE_H
#define ITS_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "its/alloc.h"

typedef struct its_queue its_queue_t;

int its_queue_create(its_module mod, size_t capacity, its_queue_t **out);
void its_queue_destroy(its_queue_t *q);

int its_queue_push(its_queue_t *q, void *item);
int its_queue_pop(its_queue_t *q, void **item);
/* timeout_ns == 0: do not wait; UINT64_MAX: wait until it succeeds or the queue closes. */
int its_queue_push_wait(its_queue_t *q, void *item, uint64_t timeout_ns);
int its_queue_pop_wait(its_queue_t *q, void **item, uint64_t timeout_ns);

void its_queue_close(its_queue_t *q);
int its_queue_is_closed(const its_queue_t *q);
/* Approximate number of items (exact when no operation is in flight). */
size_t its_queue_size(const its_queue_t *q);
size_t its_queue_capacity(const its_queue_t *q);

#endif

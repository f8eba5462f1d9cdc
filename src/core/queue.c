/*
 * Bounded MPMC queue: Dmitry Vyukov's sequence ring. Each cell carries a sequence number
 * that tells producers and consumers whose turn it is, so the try operations need one CAS
 * each and no lock. Blocking waits are layered on top: a waiter registers itself (a counter)
 * under the mutex, retries once, then sleeps; the opposite operation signals only when the
 * counter is non-zero, so the lock-free fast path never touches the mutex. The seq_cst fence
 * between publishing an item and reading the waiter count pairs with the waiter's increment
 * before its retry, which closes the lost-wake-up window.
 */
#include "its/queue.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#include "its/clock.h"
#include "its/error.h"

typedef struct cell {
    atomic_size_t seq;
    void *data;
} cell;

struct its_queue {
    cell *cells;
    size_t mask;
    _Alignas(64) atomic_size_t enq;
    _Alignas(64) atomic_size_t deq;
    _Alignas(64) atomic_int closed;
    atomic_int push_waiters;
    atomic_int pop_waiters;
    pthread_mutex_t mu;
    pthread_cond_t not_empty;
    pthread_cond_t not_full;
};

int its_queue_create(its_module mod, size_t capacity, its_queue_t **out)
{
    if (capacity == 0 || capacity > ((size_t)1 << 30))
        return ITS_EINVAL;
    size_t cap = 2;
    while (cap < capacity)
        cap <<= 1;
    its_queue_t *q = its_aligned_alloc(mod, 64, sizeof *q);
    if (!q)
        return ITS_ENOMEM;
    q->cells = its_malloc(mod, cap * sizeof(cell));
    if (!q->cells) {
        its_free(q);
        return ITS_ENOMEM;
    }
    for (size_t i = 0; i < cap; i++) {
        atomic_init(&q->cells[i].seq, i);
        q->cells[i].data = NULL;
    }
    q->mask = cap - 1;
    atomic_init(&q->enq, 0);
    atomic_init(&q->deq, 0);
    atomic_init(&q->closed, 0);
    atomic_init(&q->push_waiters, 0);
    atomic_init(&q->pop_waiters, 0);
    pthread_mutex_init(&q->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->not_empty, &ca);
    pthread_cond_init(&q->not_full, &ca);
    pthread_condattr_destroy(&ca);
    *out = q;
    return 0;
}

void its_queue_destroy(its_queue_t *q)
{
    if (!q)
        return;
    pthread_cond_destroy(&q->not_empty);
    pthread_cond_destroy(&q->not_full);
    pthread_mutex_destroy(&q->mu);
    its_free(q->cells);
    its_free(q);
}

static int try_push(its_queue_t *q, void *item)
{
    size_t pos = atomic_load_explicit(&q->enq, memory_order_relaxed);
    for (;;) {
        cell *c = &q->cells[pos & q->mask];
        size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        intptr_t dif = (intptr_t)seq - (intptr_t)pos;
        if (dif == 0) {
            if (atomic_compare_exchange_weak_explicit(&q->enq, &pos, pos + 1, memory_order_relaxed,
                                                      memory_order_relaxed)) {
                c->data = item;
                atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
                return 0;
            }
        } else if (dif < 0) {
            /* The cell is still held by a consumer that claimed it and has not yet handed it
             * back. Only if the ring really holds capacity items is this "full"; otherwise
             * that consumer is mid-operation and the cell frees in a moment. Reporting full
             * here would lose a buffer in a pool whose ring holds every buffer. */
            size_t deq = atomic_load_explicit(&q->deq, memory_order_acquire);
            if (pos - deq > q->mask)
                return ITS_EFULL;
            sched_yield();
            pos = atomic_load_explicit(&q->enq, memory_order_relaxed);
        } else {
            pos = atomic_load_explicit(&q->enq, memory_order_relaxed);
        }
    }
}

static int try_pop(its_queue_t *q, void **item)
{
    size_t pos = atomic_load_explicit(&q->deq, memory_order_relaxed);
    for (;;) {
        cell *c = &q->cells[pos & q->mask];
        size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        intptr_t dif = (intptr_t)seq - (intptr_t)(pos + 1);
        if (dif == 0) {
            if (atomic_compare_exchange_weak_explicit(&q->deq, &pos, pos + 1, memory_order_relaxed,
                                                      memory_order_relaxed)) {
                *item = c->data;
                atomic_store_explicit(&c->seq, pos + q->mask + 1, memory_order_release);
                return 0;
            }
        } else if (dif < 0) {
            /* Empty, unless a producer has claimed this cell and is about to publish it. */
            size_t enq = atomic_load_explicit(&q->enq, memory_order_acquire);
            if (enq == pos)
                return ITS_EEMPTY;
            sched_yield();
            pos = atomic_load_explicit(&q->deq, memory_order_relaxed);
        } else {
            pos = atomic_load_explicit(&q->deq, memory_order_relaxed);
        }
    }
}

static void wake(its_queue_t *q, atomic_int *waiters, pthread_cond_t *cv)
{
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load(waiters) > 0) {
        pthread_mutex_lock(&q->mu);
        pthread_cond_signal(cv); /* one item (or one free cell): one waiter can use it */
        pthread_mutex_unlock(&q->mu);
    }
}

int its_queue_push(its_queue_t *q, void *item)
{
    if (!item)
        return ITS_EINVAL;
    if (atomic_load_explicit(&q->closed, memory_order_acquire))
        return ITS_ECLOSED;
    int rc = try_push(q, item);
    if (rc == 0)
        wake(q, &q->pop_waiters, &q->not_empty);
    return rc;
}

int its_queue_pop(its_queue_t *q, void **item)
{
    int rc = try_pop(q, item);
    if (rc == 0)
        wake(q, &q->push_waiters, &q->not_full);
    else if (atomic_load_explicit(&q->closed, memory_order_acquire))
        rc = ITS_ECLOSED;
    return rc;
}

static void deadline_ts(uint64_t deadline_ns, struct timespec *ts)
{
    ts->tv_sec = (time_t)(deadline_ns / ITS_NS_PER_S);
    ts->tv_nsec = (long)(deadline_ns % ITS_NS_PER_S);
}

/* Shared slow path of the wait variants. */
static int wait_op(its_queue_t *q, int is_push, void *item, void **out, uint64_t timeout_ns)
{
    int rc = is_push ? its_queue_push(q, item) : its_queue_pop(q, out);
    int would_block = is_push ? ITS_EFULL : ITS_EEMPTY;
    if (rc != would_block || timeout_ns == 0)
        return rc;
    /* Brief spin before parking: under load the other side usually answers within a few
     * scheduler slices, and parking costs two context switches. */
    for (int spin = 0; spin < 16; spin++) {
        sched_yield();
        rc = is_push ? its_queue_push(q, item) : its_queue_pop(q, out);
        if (rc != would_block)
            return rc;
    }
    uint64_t now = its_now_ns();
    uint64_t deadline = timeout_ns > UINT64_MAX - now ? UINT64_MAX : now + timeout_ns;
    atomic_int *waiters = is_push ? &q->push_waiters : &q->pop_waiters;
    pthread_cond_t *cv = is_push ? &q->not_full : &q->not_empty;
    struct timespec ts;
    deadline_ts(deadline, &ts);

    pthread_mutex_lock(&q->mu);
    atomic_fetch_add(waiters, 1);
    for (;;) {
        atomic_thread_fence(memory_order_seq_cst);
        if (is_push && atomic_load(&q->closed)) {
            rc = ITS_ECLOSED;
            break;
        }
        rc = is_push ? try_push(q, item) : try_pop(q, out);
        if (rc == 0)
            break;
        if (!is_push && atomic_load(&q->closed)) {
            rc = ITS_ECLOSED;
            break;
        }
        if (its_now_ns() >= deadline) {
            rc = ITS_ETIMEDOUT;
            break;
        }
        if (deadline == UINT64_MAX)
            pthread_cond_wait(cv, &q->mu);
        else
            pthread_cond_timedwait(cv, &q->mu, &ts);
    }
    atomic_fetch_sub(waiters, 1);
    pthread_mutex_unlock(&q->mu);
    if (rc == 0) {
        if (is_push)
            wake(q, &q->pop_waiters, &q->not_empty);
        else
            wake(q, &q->push_waiters, &q->not_full);
    }
    return rc;
}

int its_queue_push_wait(its_queue_t *q, void *item, uint64_t timeout_ns)
{
    if (!item)
        return ITS_EINVAL;
    return wait_op(q, 1, item, NULL, timeout_ns);
}

int its_queue_pop_wait(its_queue_t *q, void **item, uint64_t timeout_ns)
{
    return wait_op(q, 0, NULL, item, timeout_ns);
}

void its_queue_close(its_queue_t *q)
{
    atomic_store(&q->closed, 1);
    pthread_mutex_lock(&q->mu);
    pthread_cond_broadcast(&q->not_empty);
    pthread_cond_broadcast(&q->not_full);
    pthread_mutex_unlock(&q->mu);
}

int its_queue_is_closed(const its_queue_t *q)
{
    return atomic_load(&q->closed);
}

size_t its_queue_size(const its_queue_t *q)
{
    size_t e = atomic_load(&q->enq), d = atomic_load(&q->deq);
    return e >= d ? e - d : 0;
}

size_t its_queue_capacity(const its_queue_t *q)
{
    return q->mask + 1;
}

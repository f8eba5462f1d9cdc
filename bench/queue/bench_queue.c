/*
 * bench_queue: operations per second of the MPMC queue for 1-4 producers x 1-4 consumers,
 * with the try (spinning) and the wait (parking) operations, against a mutex+condvar ring as
 * the peer measured in the same run. One operation = one push + one pop of an item.
 *
 *     bench_queue [--items N] [--capacity C]
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "its/core.h"

/* The peer: the textbook bounded buffer with one mutex and two condition variables. */
typedef struct locked_ring {
    void **items;
    size_t cap, head, count;
    int closed;
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full;
} locked_ring;

static void lr_init(locked_ring *r, size_t cap)
{
    r->items = its_calloc(ITS_MOD_TEST, cap, sizeof(void *));
    r->cap = cap;
    r->head = r->count = 0;
    r->closed = 0;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->not_empty, NULL);
    pthread_cond_init(&r->not_full, NULL);
}

static void lr_push(locked_ring *r, void *item)
{
    pthread_mutex_lock(&r->mu);
    while (r->count == r->cap)
        pthread_cond_wait(&r->not_full, &r->mu);
    r->items[(r->head + r->count++) % r->cap] = item;
    pthread_cond_signal(&r->not_empty);
    pthread_mutex_unlock(&r->mu);
}

static int lr_pop(locked_ring *r, void **item)
{
    pthread_mutex_lock(&r->mu);
    while (r->count == 0 && !r->closed)
        pthread_cond_wait(&r->not_empty, &r->mu);
    if (r->count == 0) {
        pthread_mutex_unlock(&r->mu);
        return -1;
    }
    *item = r->items[r->head];
    r->head = (r->head + 1) % r->cap;
    r->count--;
    pthread_cond_signal(&r->not_full);
    pthread_mutex_unlock(&r->mu);
    return 0;
}

static void lr_close(locked_ring *r)
{
    pthread_mutex_lock(&r->mu);
    r->closed = 1;
    pthread_cond_broadcast(&r->not_empty);
    pthread_mutex_unlock(&r->mu);
}

enum { MODE_TRY, MODE_WAIT, MODE_LOCKED };

typedef struct run {
    int mode;
    its_queue_t *q;
    locked_ring lr;
    long per_producer;
    atomic_long consumed;
} run;

static void *producer(void *arg)
{
    run *r = arg;
    for (long i = 1; i <= r->per_producer; i++) {
        void *item = (void *)(uintptr_t)i;
        if (r->mode == MODE_TRY) {
            while (its_queue_push(r->q, item) == ITS_EFULL)
                sched_yield();
        } else if (r->mode == MODE_WAIT) {
            its_queue_push_wait(r->q, item, UINT64_MAX);
        } else {
            lr_push(&r->lr, item);
        }
    }
    return NULL;
}

static void *consumer(void *arg)
{
    run *r = arg;
    void *item;
    for (;;) {
        int rc;
        if (r->mode == MODE_TRY) {
            rc = its_queue_pop(r->q, &item);
            if (rc == ITS_EEMPTY) {
                sched_yield();
                continue;
            }
        } else if (r->mode == MODE_WAIT) {
            rc = its_queue_pop_wait(r->q, &item, UINT64_MAX);
        } else {
            rc = lr_pop(&r->lr, &item);
        }
        if (rc != 0)
            break;
        atomic_fetch_add_explicit(&r->consumed, 1, memory_order_relaxed);
    }
    return NULL;
}

static double measure(int mode, int np, int nc, long items, size_t cap)
{
    run r;
    memset(&r, 0, sizeof r);
    r.mode = mode;
    r.per_producer = items / np;
    if (mode == MODE_LOCKED)
        lr_init(&r.lr, cap);
    else
        its_queue_create(ITS_MOD_TEST, cap, &r.q);
    pthread_t pt[4], ct[4];
    uint64_t t0 = its_now_ns();
    for (int i = 0; i < nc; i++)
        pthread_create(&ct[i], NULL, consumer, &r);
    for (int i = 0; i < np; i++)
        pthread_create(&pt[i], NULL, producer, &r);
    for (int i = 0; i < np; i++)
        pthread_join(pt[i], NULL);
    long total = r.per_producer * np;
    while (atomic_load(&r.consumed) < total)
        sched_yield();
    uint64_t t1 = its_now_ns();
    if (mode == MODE_LOCKED)
        lr_close(&r.lr);
    else
        its_queue_close(r.q);
    for (int i = 0; i < nc; i++)
        pthread_join(ct[i], NULL);
    if (mode == MODE_LOCKED)
        its_free(r.lr.items);
    else
        its_queue_destroy(r.q);
    return (double)total / its_ns_to_s(t1 - t0);
}

int main(int argc, char **argv)
{
    long items = 400000;
    size_t cap = 1024;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--items"))
            items = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--capacity"))
            cap = (size_t)atol(argv[i + 1]);
    }
    printf("bench_queue: %ld items per run, capacity %zu, %ld CPUs online\n", items, cap,
           sysconf(_SC_NPROCESSORS_ONLN));
    printf("| producers | consumers | its try (Mops/s) | its wait (Mops/s) | mutex ring (Mops/s) "
           "| wait / mutex |\n|---|---|---|---|---|---|\n");
    for (int np = 1; np <= 4; np++) {
        for (int nc = 1; nc <= 4; nc++) {
            double t = measure(MODE_TRY, np, nc, items, cap);
            double w = measure(MODE_WAIT, np, nc, items, cap);
            double l = measure(MODE_LOCKED, np, nc, items, cap);
            printf("| %d | %d | %.2f | %.2f | %.2f | %.2fx |\n", np, nc, t / 1e6, w / 1e6, l / 1e6,
                   w / l);
        }
    }
    return 0;
}

/*
 * SmartBatchProcessor (its/batch.h).
 *
 * One mutex guards everything: a push is a few stores into a per-camera ring, a batch is at
 * most 32 pops, and at 3000 frames/s that is far below the point where a lock-free design
 * would pay for itself (measured by bench/pipeline). Each camera has a fixed ring of
 * per_camera slots holding the item and its enqueue time, so nothing allocates after create.
 *
 * Wake-ups are rationed: a pusher signals a waiting batch former only when the first item
 * arrives (the former must start its delay timer, or run at once if idle) or when a full
 * batch is ready; otherwise the former sleeps until its delay deadline.
 */
#include "its/batch.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#include "its/core.h"

#define MAX_BATCH_LIMIT 32

typedef struct cam {
    void **items;
    uint64_t *ts;
    int head, count;
    uint64_t dropped[ITS_DROP_REASON_COUNT];
} cam;

struct its_batcher {
    its_batcher_opts o;
    cam *cams;
    void **item_mem;
    uint64_t *ts_mem;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int total;
    int closed;
    int cursor;
    int waiters_idle; /* next() callers waiting with idle set */
    int waiters;      /* next() callers waiting, idle or not */
    int inited;       /* mutex and condition variable exist */
    its_batcher_stats st;
};

static const char *const reason_names[ITS_DROP_REASON_COUNT] = {
    "camera_limit", "high_water", "shutdown", "no_buffer", "engine_error"};

const char *its_drop_reason_name(its_drop_reason r)
{
    return (unsigned)r < ITS_DROP_REASON_COUNT ? reason_names[r] : "unknown";
}

int its_batcher_create(const its_batcher_opts *opts, its_batcher_t **out)
{
    *out = NULL;
    its_batcher_opts o = *opts;
    if (o.per_camera <= 0)
        o.per_camera = 8;
    if (o.capacity <= 0)
        o.capacity = 1000;
    if (o.high_water <= 0)
        o.high_water = o.capacity * 8 / 10;
    if (o.low_water <= 0)
        o.low_water = o.capacity * 2 / 10;
    if (o.max_batch < 1 || o.max_batch > MAX_BATCH_LIMIT || o.n_cameras < 1 ||
        o.high_water > o.capacity || o.low_water >= o.high_water || o.n_sizes < 0 ||
        (o.n_sizes > 0 && !o.sizes))
        return ITS_EINVAL;
    for (int i = 0; i < o.n_sizes; i++)
        if (o.sizes[i] < 1 || o.sizes[i] > MAX_BATCH_LIMIT || (i && o.sizes[i] <= o.sizes[i - 1]))
            return ITS_EINVAL;
    its_batcher_t *b = its_calloc(ITS_MOD_BATCH, 1, sizeof *b);
    if (!b)
        return ITS_ENOMEM;
    size_t slots = (size_t)o.n_cameras * (size_t)o.per_camera;
    b->cams = its_calloc(ITS_MOD_BATCH, (size_t)o.n_cameras, sizeof *b->cams);
    b->item_mem = its_calloc(ITS_MOD_BATCH, slots, sizeof(void *));
    b->ts_mem = its_calloc(ITS_MOD_BATCH, slots, sizeof(uint64_t));
    int *sizes = o.n_sizes ? its_malloc(ITS_MOD_BATCH, (size_t)o.n_sizes * sizeof(int)) : NULL;
    if (!b->cams || !b->item_mem || !b->ts_mem || (o.n_sizes && !sizes)) {
        its_free(sizes);
        b->o.sizes = NULL;
        its_batcher_destroy(b);
        return ITS_ENOMEM;
    }
    if (sizes)
        memcpy(sizes, o.sizes, (size_t)o.n_sizes * sizeof(int));
    o.sizes = sizes;
    b->o = o;
    for (int i = 0; i < o.n_cameras; i++) {
        b->cams[i].items = b->item_mem + (size_t)i * (size_t)o.per_camera;
        b->cams[i].ts = b->ts_mem + (size_t)i * (size_t)o.per_camera;
    }
    pthread_mutex_init(&b->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&b->cv, &ca);
    pthread_condattr_destroy(&ca);
    b->inited = 1;
    *out = b;
    return 0;
}

void its_batcher_destroy(its_batcher_t *b)
{
    if (!b)
        return;
    if (b->inited) {
        pthread_mutex_destroy(&b->mu);
        pthread_cond_destroy(&b->cv);
    }
    its_free((void *)b->o.sizes);
    its_free(b->ts_mem);
    its_free(b->item_mem);
    its_free(b->cams);
    its_free(b);
}

static void *pop_head(its_batcher_t *b, int c)
{
    cam *k = &b->cams[c];
    void *it = k->items[k->head];
    k->head = (k->head + 1) % b->o.per_camera;
    k->count--;
    b->total--;
    return it;
}

static void drop_head(its_batcher_t *b, int c, its_drop_reason r)
{
    void *it = pop_head(b, c);
    b->cams[c].dropped[r]++;
    b->st.dropped[r]++;
    if (b->o.on_drop)
        b->o.on_drop(it, c, r, b->o.drop_ctx);
}

/* The camera whose head item is the oldest, -1 if nothing waits. */
static int oldest_camera(const its_batcher_t *b, uint64_t *ts)
{
    int best = -1;
    uint64_t bt = UINT64_MAX;
    for (int c = 0; c < b->o.n_cameras; c++) {
        const cam *k = &b->cams[c];
        if (k->count && k->ts[k->head] < bt) {
            bt = k->ts[k->head];
            best = c;
        }
    }
    if (ts)
        *ts = bt;
    return best;
}

int its_batcher_push(its_batcher_t *b, void *item, int camera, uint64_t now_ns)
{
    if (camera < 0 || camera >= b->o.n_cameras || !item)
        return camera < 0 || camera >= b->o.n_cameras ? ITS_ERANGE : ITS_EINVAL;
    pthread_mutex_lock(&b->mu);
    if (b->closed) {
        pthread_mutex_unlock(&b->mu);
        return ITS_ECLOSED;
    }
    cam *k = &b->cams[camera];
    if (k->count == b->o.per_camera)
        drop_head(b, camera, ITS_DROP_CAMERA_LIMIT);
    int tail = (k->head + k->count) % b->o.per_camera;
    k->items[tail] = item;
    k->ts[tail] = now_ns;
    k->count++;
    b->total++;
    b->st.pushed++;
    if (b->total > b->o.high_water) {
        b->st.watermark_events++;
        while (b->total > b->o.low_water)
            drop_head(b, oldest_camera(b, NULL), ITS_DROP_HIGH_WATER);
    }
    if ((size_t)b->total > b->st.depth_peak)
        b->st.depth_peak = (size_t)b->total;
    int woke = 0;
    if (b->total == 1 || b->total >= b->o.max_batch || b->waiters_idle) {
        pthread_cond_signal(&b->cv);
        woke = b->waiters > 0;
    }
    pthread_mutex_unlock(&b->mu);
    return woke;
}

/* Choose the batch size from n available items (see the header's policy). */
static int choose_size(const its_batcher_t *b, int n, int *padded)
{
    *padded = n;
    if (!b->o.n_sizes)
        return n;
    int down = 0, up = 0;
    for (int i = 0; i < b->o.n_sizes; i++) {
        int s = b->o.sizes[i];
        if (s <= n)
            down = s;
        if (s >= n && !up)
            up = s;
    }
    if (up == n)
        return n;
    if (!up) /* more than the largest prepared size: run the largest */
        up = down, n = down;
    if (down == 0 || up - n <= n - down) {
        *padded = up;
        return n;
    }
    *padded = down;
    return down;
}

static void wait_until(its_batcher_t *b, uint64_t deadline)
{
    struct timespec ts = {(time_t)(deadline / ITS_NS_PER_S), (long)(deadline % ITS_NS_PER_S)};
    pthread_cond_timedwait(&b->cv, &b->mu, &ts);
}

int its_batcher_next(its_batcher_t *b, void **items, int max, int idle, int *padded,
                     uint64_t timeout_ns)
{
    int maxb = ITS_MIN(max, b->o.max_batch);
    if (maxb < 1)
        return ITS_EINVAL;
    uint64_t start = its_now_ns();
    uint64_t deadline = timeout_ns > UINT64_MAX - start ? UINT64_MAX : start + timeout_ns;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        uint64_t now = its_now_ns();
        if (b->total >= maxb || (b->total > 0 && (idle || b->closed)))
            break;
        uint64_t oldest = 0;
        if (b->total > 0) {
            oldest_camera(b, &oldest);
            if (now >= oldest + b->o.max_delay_ns)
                break;
        } else if (b->closed) {
            pthread_mutex_unlock(&b->mu);
            return ITS_ECLOSED;
        }
        if (now >= deadline) {
            pthread_mutex_unlock(&b->mu);
            return ITS_ETIMEDOUT;
        }
        uint64_t until = deadline;
        if (b->total > 0 && oldest + b->o.max_delay_ns < until)
            until = oldest + b->o.max_delay_ns;
        b->waiters_idle += idle != 0;
        b->waiters++;
        wait_until(b, until);
        b->waiters--;
        b->waiters_idle -= idle != 0;
    }
    int pad;
    int n = choose_size(b, ITS_MIN(b->total, maxb), &pad);
    int taken = 0, c = b->cursor, last = c;
    while (taken < n) {
        for (int i = 0; i < b->o.n_cameras && taken < n; i++) {
            int cc = (c + i) % b->o.n_cameras;
            if (b->cams[cc].count) {
                items[taken++] = pop_head(b, cc);
                last = cc;
            }
        }
    }
    b->cursor = (last + 1) % b->o.n_cameras;
    b->st.batches++;
    b->st.items_out += (uint64_t)n;
    b->st.padded_slots += (uint64_t)(pad - n);
    b->st.size_hist[n]++;
    if (padded)
        *padded = pad;
    /* another former may be able to go on with what is left */
    if (b->total >= maxb)
        pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
    return n;
}

void its_batcher_close(its_batcher_t *b)
{
    pthread_mutex_lock(&b->mu);
    b->closed = 1;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

int its_batcher_flush_drop(its_batcher_t *b)
{
    pthread_mutex_lock(&b->mu);
    int n = 0;
    for (int c = 0; c < b->o.n_cameras; c++)
        while (b->cams[c].count) {
            drop_head(b, c, ITS_DROP_SHUTDOWN);
            n++;
        }
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    return n;
}

void its_batcher_get_stats(its_batcher_t *b, its_batcher_stats *out)
{
    pthread_mutex_lock(&b->mu);
    *out = b->st;
    out->depth = (size_t)b->total;
    pthread_mutex_unlock(&b->mu);
}

int its_batcher_camera(its_batcher_t *b, int camera, int *pending, uint64_t *dropped)
{
    if (camera < 0 || camera >= b->o.n_cameras)
        return ITS_ERANGE;
    pthread_mutex_lock(&b->mu);
    if (pending)
        *pending = b->cams[camera].count;
    if (dropped)
        memcpy(dropped, b->cams[camera].dropped, sizeof b->cams[camera].dropped);
    pthread_mutex_unlock(&b->mu);
    return 0;
}

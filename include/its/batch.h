/*
 * its/batch.h - SmartBatchProcessor: dynamic batching of frames from many cameras for one
 * inference engine, with real-time back-pressure (drop the oldest, count every drop).
 *
 *     static const int sizes[] = {1, 2, 4, 8, 16, 32};
 *     its_batcher_opts o = {.max_batch = 16, .max_delay_ns = 5 * ITS_NS_PER_MS,
 *                           .sizes = sizes, .n_sizes = 6, .n_cameras = 100,
 *                           .per_camera = 8, .capacity = 1000, .high_water = 800,
 *                           .low_water = 200, .on_drop = dropped, .drop_ctx = app};
 *     its_batcher_t *b;
 *     its_batcher_create(&o, &b);
 *     its_batcher_push(b, frame, camera, its_now_ns());      // sources' threads
 *     void *items[32]; int padded;
 *     int n = its_batcher_next(b, items, 32, idle, &padded, ITS_NS_PER_S);  // engine thread
 *     its_batcher_close(b);   // then next() hands out what is left, then ITS_ECLOSED
 *     its_batcher_destroy(b);
 *
 * Policy (ARCHITECTURE.md section 4). A batch is formed when (a) max_batch items wait, or
 * (b) the oldest waiting item has waited max_delay_ns, or (c) the caller says the engine is
 * idle (nothing of its in flight) and something waits. Items are taken round-robin over the
 * cameras, one per camera per round, starting after the camera served first last time, so a
 * busy camera cannot starve the others; each camera's items leave in the order they came.
 * With prepared sizes, a batch of n is either cut to the largest prepared size <= n (the rest
 * wait for the next batch) or reported padded to the smallest prepared size >= n, whichever
 * wastes less (padding slots vs. items left over).
 *
 * Back-pressure. Each camera keeps at most per_camera items: a push beyond that drops that
 * camera's oldest (ITS_DROP_CAMERA_LIMIT). When the total passes high_water, the oldest
 * items over all cameras are dropped until low_water remain (ITS_DROP_HIGH_WATER). Dropped
 * items go to on_drop, which runs under the batcher's lock (keep it short, never call back
 * into the batcher), and are counted per camera and reason. After close,
 * pushes are refused (ITS_ECLOSED) and the item stays the caller's.
 *
 * Threads: any number of pushers, any number of next() callers. Items are opaque non-NULL
 * pointers; the batcher never dereferences them.
 */
#ifndef ITS_BATCH_H
#define ITS_BATCH_H

#include <stddef.h>
#include <stdint.h>

typedef struct its_batcher its_batcher_t;

typedef enum its_drop_reason {
    ITS_DROP_CAMERA_LIMIT = 0, /* the camera's pending limit was reached */
    ITS_DROP_HIGH_WATER,       /* the global queue passed its high-water mark */
    ITS_DROP_SHUTDOWN,         /* still queued when the drain deadline passed */
    ITS_DROP_NO_BUFFER,        /* (sources) every frame buffer was in use */
    ITS_DROP_ENGINE_ERROR,     /* (pipeline) inference failed on the batch */
    ITS_DROP_REASON_COUNT
} its_drop_reason;

const char *its_drop_reason_name(its_drop_reason r);

typedef void (*its_drop_cb)(void *item, int camera, its_drop_reason reason, void *ctx);

typedef struct its_batcher_opts {
    int max_batch;         /* 1..32 */
    uint64_t max_delay_ns; /* wait for a fuller batch at most this long; 0: form at once */
    const int *sizes;      /* prepared batch sizes, ascending; NULL: any size */
    int n_sizes;
    int n_cameras;  /* camera slots 0..n_cameras-1 */
    int per_camera; /* pending items per camera; 0: 8 */
    int capacity;   /* total pending items; 0: 1000 */
    int high_water; /* 0: 80% of capacity */
    int low_water;  /* 0: 20% of capacity */
    its_drop_cb on_drop;
    void *drop_ctx;
} its_batcher_opts;

typedef struct its_batcher_stats {
    uint64_t pushed;
    uint64_t batches;
    uint64_t items_out;
    uint64_t padded_slots; /* slots of padding in reported batch sizes */
    uint64_t dropped[ITS_DROP_REASON_COUNT];
    uint64_t watermark_events; /* times the high-water mark was crossed */
    size_t depth;              /* items waiting now */
    size_t depth_peak;
    uint64_t size_hist[33]; /* batches by item count */
} its_batcher_stats;

int its_batcher_create(const its_batcher_opts *opts, its_batcher_t **out);
/* Call after close and after every next() caller has returned. NULL is a no-op. */
void its_batcher_destroy(its_batcher_t *b);

/* Queue an item for a camera. Returns 1 when the push woke a next() caller that was waiting,
 * 0 otherwise (possibly after dropping older items), ITS_ERANGE for a bad camera, ITS_ECLOSED
 * after close; on error the item stays the caller's. */
int its_batcher_push(its_batcher_t *b, void *item, int camera, uint64_t now_ns);

/*
 * Wait for the next batch (see the policy) for up to timeout_ns. Fills items[0..n) with n
 * <= max items in per-camera order and *padded (optional) with the prepared size to run it
 * at (>= n). Returns n > 0, ITS_ETIMEDOUT, or ITS_ECLOSED once closed and empty. `idle`:
 * the caller has nothing in flight, so any waiting item is worth running now.
 */
int its_batcher_next(its_batcher_t *b, void **items, int max, int idle, int *padded,
                     uint64_t timeout_ns);

/* Refuse new pushes and wake every waiter; queued items are still handed out. */
void its_batcher_close(its_batcher_t *b);
/* Drop every queued item now (reason ITS_DROP_SHUTDOWN): the end of a drain deadline. */
int its_batcher_flush_drop(its_batcher_t *b);

void its_batcher_get_stats(its_batcher_t *b, its_batcher_stats *out);
/* Per-camera counters: pending now, and drops by reason (array of ITS_DROP_REASON_COUNT). */
int its_batcher_camera(its_batcher_t *b, int camera, int *pending, uint64_t *dropped);

#endif

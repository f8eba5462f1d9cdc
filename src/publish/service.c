/*
 * The publish service: producers on many threads, one publisher thread. Producers copy a
 * message into a ring slot under a mutex (a memcpy, never I/O); the thread swaps a batch of
 * slots out of the ring - exchanging buffers, so both sides keep their capacity - and then,
 * without the lock, formats them into its publisher and flushes. A slow or absent Redis
 * therefore never reaches the producers: the worst they see is the oldest queued message
 * dropped when the ring is full.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "its/core.h"
#include "its/publish.h"
#include "publish_impl.h"

typedef struct slot {
    its__buf json;
    its_pub_meta meta;
    its_pub_raw how;
    int has_camera, has_window, has_name;
    char camera[ITS_PUB_ID_MAX + 1], window[ITS_PUB_ID_MAX + 1], name[ITS_PUB_ID_MAX + 1];
} slot;

struct its_publish_service {
    its_publish_service_config cfg;
    its_publisher *pub;
    pthread_t thread;
    int started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    slot *ring;
    size_t cap, head, count;
    slot *batch;
    size_t batch_cap;
    int stop;
    _Atomic uint64_t submitted, dropped;
    its_metric *m_drop, *m_depth;
};

void its_publish_service_config_default(its_publish_service_config *cfg)
{
    cfg->queue_max_msgs = 4096;
    cfg->idle_wait_ms = 2;
    cfg->drain_timeout_ms = 2000;
}

static void copy_id(char *dst, const char *src, int *has)
{
    *has = src != NULL;
    snprintf(dst, ITS_PUB_ID_MAX + 1, "%s", src ? src : "");
}

/* Point the slot's meta/how strings at its own copies. */
static void fix_pointers(slot *s)
{
    s->meta.camera_id = s->has_camera ? s->camera : NULL;
    s->how.window = s->has_window ? s->window : NULL;
    s->how.name = s->has_name ? s->name : NULL;
}

static void swap_slots(slot *a, slot *b)
{
    slot t = *a;
    *a = *b;
    *b = t;
}

static uint64_t deadline_after_ms(int ms)
{
    return its_now_ns() + (uint64_t)(ms > 0 ? ms : 0) * ITS_NS_PER_MS;
}

static void timed_wait(its_publish_service *s, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long ns = ts.tv_nsec + (long)ms * 1000000L;
    ts.tv_sec += ns / 1000000000L;
    ts.tv_nsec = ns % 1000000000L;
    pthread_cond_timedwait(&s->cond, &s->lock, &ts);
}

static void *run(void *arg)
{
    its_publish_service *s = arg;
    uint64_t drain_deadline = 0;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        its_publish_stats st;
        its_publisher_get_stats(s->pub, &st);
        if (s->stop) {
            if (!drain_deadline)
                drain_deadline = deadline_after_ms(s->cfg.drain_timeout_ms);
            if ((s->count == 0 && st.outbox_msgs == 0) || its_now_ns() >= drain_deadline)
                break;
        }
        if (s->count == 0) {
            /* Nothing new: wait, but come back for the outbox while Redis is away. */
            timed_wait(s, s->cfg.idle_wait_ms);
            if (s->count == 0) {
                pthread_mutex_unlock(&s->lock);
                if (st.outbox_msgs)
                    its_publish_flush(s->pub);
                pthread_mutex_lock(&s->lock);
                continue;
            }
        }
        size_t n = s->count < s->batch_cap ? s->count : s->batch_cap;
        for (size_t i = 0; i < n; i++) {
            swap_slots(&s->batch[i], &s->ring[s->head]);
            s->head = (s->head + 1) % s->cap;
        }
        s->count -= n;
        its_metric_set(s->m_depth, (double)s->count);
        pthread_mutex_unlock(&s->lock);
        for (size_t i = 0; i < n; i++) {
            slot *b = &s->batch[i];
            fix_pointers(b);
            its_publish_raw(s->pub, &b->meta, &b->how, b->json.p, b->json.len);
        }
        its_publish_flush(s->pub);
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

int its_publish_service_create(const its_publish_config *cfg,
                               const its_publish_service_config *scfg, its_metrics *metrics,
                               its_cache *l1, its_publish_service **out)
{
    its_publish_service_config def;
    if (!scfg) {
        its_publish_service_config_default(&def);
        scfg = &def;
    }
    if (!cfg || !out || scfg->queue_max_msgs == 0 || scfg->idle_wait_ms <= 0 ||
        scfg->drain_timeout_ms < 0)
        return ITS_EINVAL;
    its_publish_service *s = its_calloc(ITS_MOD_PUBLISH, 1, sizeof *s);
    if (!s)
        return ITS_ENOMEM;
    s->cfg = *scfg;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    s->cap = scfg->queue_max_msgs;
    s->batch_cap = (size_t)cfg->max_pipeline;
    s->ring = its_calloc(ITS_MOD_PUBLISH, s->cap, sizeof *s->ring);
    s->batch = its_calloc(ITS_MOD_PUBLISH, s->batch_cap, sizeof *s->batch);
    int rc = !s->ring || !s->batch ? ITS_ENOMEM : its_publisher_create(cfg, metrics, l1, &s->pub);
    if (rc == 0 && metrics) {
        s->m_drop = its_metrics_series_v(its_metrics_std(metrics, ITS_M_PUB_DROPPED), "queue_full");
        s->m_depth = its_metrics_series_v(its_metrics_std(metrics, ITS_M_QUEUE_DEPTH), "publish");
    }
    if (rc == 0 && pthread_create(&s->thread, NULL, run, s) != 0)
        rc = ITS_ENOMEM;
    if (rc < 0) {
        its_publish_service_destroy(s);
        return rc;
    }
    s->started = 1;
    *out = s;
    return 0;
}

int its_publish_service_submit(its_publish_service *s, const its_pub_meta *meta,
                               const its_pub_raw *how, const char *json, size_t len)
{
    size_t a, z;
    if (!s || its__publish_raw_check(meta, how, json, len, &a, &z) < 0)
        return ITS_EINVAL;
    pthread_mutex_lock(&s->lock);
    if (s->stop) {
        pthread_mutex_unlock(&s->lock);
        return ITS_ECLOSED;
    }
    if (s->count == s->cap) {
        slot *old = &s->ring[s->head];
        its__publisher_count_drop(s->pub, old->has_camera ? old->camera : NULL,
                                  ITS_PUB_DROP_QUEUE_FULL);
        its__buf_reset(&old->json);
        s->head = (s->head + 1) % s->cap;
        s->count--;
        atomic_fetch_add(&s->dropped, 1);
        its_metric_inc(s->m_drop);
    }
    slot *sl = &s->ring[(s->head + s->count) % s->cap];
    its__buf_reset(&sl->json);
    its__buf_put(&sl->json, json + a, z - a);
    if (sl->json.err) {
        int rc = sl->json.err;
        its__buf_reset(&sl->json);
        pthread_mutex_unlock(&s->lock);
        return rc;
    }
    sl->meta = *meta;
    sl->how = *how;
    copy_id(sl->camera, meta->camera_id, &sl->has_camera);
    copy_id(sl->window, how->window, &sl->has_window);
    copy_id(sl->name, how->name, &sl->has_name);
    s->count++;
    atomic_fetch_add(&s->submitted, 1);
    its_metric_set(s->m_depth, (double)s->count);
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

void its_publish_service_get_stats(its_publish_service *s, its_publish_stats *pub,
                                   uint64_t *submitted, uint64_t *dropped_queue, size_t *queued)
{
    if (pub)
        its_publisher_get_stats(s ? s->pub : NULL, pub);
    if (submitted)
        *submitted = s ? atomic_load(&s->submitted) : 0;
    if (dropped_queue)
        *dropped_queue = s ? atomic_load(&s->dropped) : 0;
    if (queued) {
        *queued = 0;
        if (s) {
            pthread_mutex_lock(&s->lock);
            *queued = s->count;
            pthread_mutex_unlock(&s->lock);
        }
    }
}

int its_publish_service_camera_stats(its_publish_service *s, const char *camera_id,
                                     its_publish_camera_stats *out)
{
    return its_publisher_camera_stats(s ? s->pub : NULL, camera_id, out);
}

void its_publish_service_destroy(its_publish_service *s)
{
    if (!s)
        return;
    if (s->started) {
        pthread_mutex_lock(&s->lock);
        s->stop = 1;
        pthread_cond_signal(&s->cond);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->thread, NULL);
    }
    if (s->count)
        its_logw("publish", NULL, "service stopped with %zu queued message(s)", s->count);
    its_publisher_destroy(s->pub);
    for (size_t i = 0; s->ring && i < s->cap; i++)
        its__buf_free(&s->ring[i].json);
    for (size_t i = 0; s->batch && i < s->batch_cap; i++)
        its__buf_free(&s->batch[i].json);
    its_free(s->ring);
    its_free(s->batch);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    its_free(s);
}

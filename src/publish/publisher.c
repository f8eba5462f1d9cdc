/*
 * The publisher: an outbox ring of formatted messages and one hiredis connection.
 *
 * Each queued message is the RESP text of all its commands (for a frame: PUBLISH and SET),
 * formatted once at enqueue time into a slot buffer that keeps its capacity, so the steady
 * state does not allocate. Flush hands up to max_pipeline messages to hiredis in one go,
 * then reads the replies in order; a message leaves the outbox only when every reply for it
 * came back. If the connection breaks halfway, the unconfirmed messages stay at the head of
 * the outbox and go out again after the reconnect (at-least-once). While Redis is away the
 * outbox fills up to its bounds, and then the oldest message makes room for the newest: for
 * live video analytics a fresh result is worth more than an old one.
 */
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/time.h>

#include "its/core.h"
#include "its/publish.h"
#include "its/redis.h"
#include "publish_impl.h"

enum kind { K_DETECTIONS, K_ANALYTICS, K_EVENT, K_CACHE, K_COUNT };
static const char *const kind_names[K_COUNT] = {"detections", "analytics", "event", "cache"};

typedef struct msg {
    its__buf resp;
    int ncmd;
    enum kind kind;
    int cam; /* index into the camera table, -1: none */
    uint64_t capture_mono_ns;
} msg;

static const char *const drop_names[ITS_PUB_DROP_COUNT] = {
    [ITS_PUB_DROP_OUTBOX_FULL] = "outbox_full", [ITS_PUB_DROP_QUEUE_FULL] = "queue_full",
    [ITS_PUB_DROP_TOO_LARGE] = "too_large",     [ITS_PUB_DROP_REDIS_ERROR] = "redis_error",
    [ITS_PUB_DROP_CLOSING] = "closing",
};

/* One camera's outcomes. The id is written once, before the entry is published in the hash
 * index; the counters are atomics, so any thread may read them. */
typedef struct cam_entry {
    char id[ITS_PUB_ID_MAX + 1];
    _Atomic uint64_t sent, replayed, dropped[ITS_PUB_DROP_COUNT];
    its_metric *m_sent, *m_replayed, *m_drop[ITS_PUB_DROP_COUNT];
} cam_entry;

/* Open addressing over camera ids: a slot holds entry index + 1, 0 when empty. Twice the
 * table's size, so a probe ends quickly. */
#define CAM_HASH_SLOTS (2 * ITS_PUB_MAX_CAMERAS)

struct its_publisher {
    its_publish_config cfg;
    char *host, *username, *password, *sentinels, *master_name;
    redisContext *rc;
    signed char *outcome; /* per message of a round: 1 rejected by Redis (max_pipeline) */
    int failures;         /* consecutive failed connects, for the backoff */
    int ever_connected;   /* a later connect counts as a reconnect */
    uint64_t next_attempt_ns;
    uint64_t rng;
    msg *ring;
    size_t cap, head, count, bytes;
    its__buf json; /* scratch for the message body */
    its__buf key;  /* scratch for keys */
    its__buf cmds; /* scratch for the RESP text */
    its_cache *l1;
    /* per-camera outcomes: entries are added under cam_lock and never move or go away */
    cam_entry *cams;
    atomic_int cam_hash[CAM_HASH_SLOTS];
    int n_cams;
    int cams_full_logged;
    pthread_mutex_t cam_lock;
    its_metric_family *f_cam_sent, *f_cam_replayed, *f_cam_dropped;
    uint64_t last_err_log_ns;
    size_t replay_pending; /* the outbox's first messages waited through an outage */
    uint64_t outage_lost;  /* dropped from the full outbox in the current outage */
    /* stats, readable from any thread */
    _Atomic uint64_t enqueued, sent, dropped_outbox, dropped_too_large, dropped_redis_error,
        reconnects, connect_failures, replayed, dropped_closing;
    _Atomic size_t outbox_msgs, outbox_bytes;
    atomic_int connected;
    /* metrics */
    its_metric *m_invalid, *m_nomem; /* its_errors_total{module="publish"} */
    uint64_t last_reject_log_ns;
    its_metric *m_sent[K_COUNT], *m_drop_outbox, *m_drop_large, *m_drop_redis, *m_outbox,
        *m_outbox_bytes, *m_reconnects, *m_connect_fail, *m_up, *m_e2e, *m_replayed,
        *m_drop_closing;
};

static const int ttl_defaults[ITS_TTL_COUNT] = {
    [ITS_TTL_LATEST] = 300,
    [ITS_TTL_ANALYTICS] = 300,
    [ITS_TTL_QUALITY_SCORES] = 300,
    [ITS_TTL_PREDICTIONS_SHORT] = 1800,
    [ITS_TTL_PREDICTIONS_LONG] = 7200,
    [ITS_TTL_MODEL_BASELINES] = 86400,
};

int its_publish_ttl_base_s(its_ttl_type type)
{
    return type >= 0 && type < ITS_TTL_COUNT ? ttl_defaults[type] : 300;
}

int its_publish_adaptive_ttl_s(int base_s, double freshness)
{
    if (!(freshness >= 0)) /* NaN too */
        freshness = 0;
    if (freshness > 1)
        freshness = 1;
    int ttl = (int)((double)base_s * freshness);
    return ttl < 1 ? 1 : ttl;
}

int its_publish_valid_id(const char *s)
{
    if (!s || !*s)
        return 0;
    size_t n = 0;
    for (; s[n]; n++) {
        char ch = s[n];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '_' || ch == '-' || ch == '.';
        if (!ok || n >= ITS_PUB_ID_MAX)
            return 0;
    }
    return 1;
}

void its_publish_config_default(its_publish_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->host = ITS_PUBLISH_HOST;
    cfg->port = ITS_PUBLISH_PORT;
    cfg->connect_timeout_ms = ITS_PUBLISH_CONNECT_TIMEOUT_MS;
    cfg->command_timeout_ms = ITS_PUBLISH_COMMAND_TIMEOUT_MS;
    cfg->backoff_min_ms = ITS_PUBLISH_BACKOFF_MIN_MS;
    cfg->backoff_max_ms = ITS_PUBLISH_BACKOFF_MAX_MS;
    cfg->outbox_max_msgs = ITS_PUBLISH_OUTBOX_MAX_MSGS;
    cfg->outbox_max_bytes = (size_t)ITS_PUBLISH_OUTBOX_MAX_MB << 20;
    cfg->stream_maxlen = ITS_PUBLISH_STREAM_MAXLEN;
    cfg->max_pipeline = ITS_PUBLISH_MAX_PIPELINE;
    cfg->observe_latency = 1;
}

int its_publisher_create(const its_publish_config *cfg, its_metrics *metrics, its_cache *l1,
                         its_publisher **out)
{
    if (!cfg || !out || !cfg->host || cfg->port <= 0 || cfg->port > 65535 ||
        cfg->outbox_max_msgs == 0 || cfg->outbox_max_bytes == 0 || cfg->max_pipeline <= 0 ||
        cfg->connect_timeout_ms <= 0 || cfg->command_timeout_ms <= 0 || cfg->backoff_min_ms < 0 ||
        cfg->backoff_max_ms < cfg->backoff_min_ms || cfg->stream_maxlen <= 0 || cfg->db < 0)
        return ITS_EINVAL;
    its_publisher *p = its_calloc(ITS_MOD_PUBLISH, 1, sizeof *p);
    if (!p)
        return ITS_ENOMEM;
    p->cfg = *cfg;
    for (int i = 0; i < ITS_TTL_COUNT; i++)
        if (p->cfg.ttl_base_s[i] <= 0)
            p->cfg.ttl_base_s[i] = ttl_defaults[i];
    p->cap = cfg->outbox_max_msgs;
    p->ring = its_calloc(ITS_MOD_PUBLISH, p->cap, sizeof *p->ring);
    p->cams = its_calloc(ITS_MOD_PUBLISH, ITS_PUB_MAX_CAMERAS, sizeof *p->cams);
    pthread_mutex_init(&p->cam_lock, NULL);
    p->host = its_strdup(ITS_MOD_PUBLISH, cfg->host);
    p->username = cfg->username ? its_strdup(ITS_MOD_PUBLISH, cfg->username) : NULL;
    p->password = cfg->password ? its_strdup(ITS_MOD_PUBLISH, cfg->password) : NULL;
    p->sentinels =
        cfg->sentinels && *cfg->sentinels ? its_strdup(ITS_MOD_PUBLISH, cfg->sentinels) : NULL;
    p->master_name =
        its_strdup(ITS_MOD_PUBLISH, cfg->master_name ? cfg->master_name : ITS_REDIS_MASTER_NAME);
    p->outcome = its_calloc(ITS_MOD_PUBLISH, (size_t)cfg->max_pipeline, 1);
    if (!p->ring || !p->cams || !p->host || (cfg->username && !p->username) ||
        (cfg->password && !p->password) ||
        (p->sentinels == NULL) != !(cfg->sentinels && *cfg->sentinels) || !p->master_name ||
        !p->outcome) {
        its_publisher_destroy(p);
        return ITS_ENOMEM;
    }
    /* hiredis writes with write(2): a peer that went away would raise SIGPIPE and kill the
     * daemon instead of returning EPIPE. A service never wants that signal. */
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
    p->rng = its_now_ns() | 1;
    p->l1 = l1;
    if (metrics) {
        its_metric_family *f = its_metrics_std(metrics, ITS_M_PUB_MESSAGES);
        for (int k = 0; k < K_COUNT; k++)
            p->m_sent[k] = its_metrics_series_v(f, kind_names[k]);
        f = its_metrics_std(metrics, ITS_M_PUB_DROPPED);
        p->m_drop_outbox = its_metrics_series_v(f, "outbox_full");
        p->m_drop_large = its_metrics_series_v(f, "too_large");
        p->m_drop_redis = its_metrics_series_v(f, "redis_error");
        p->m_drop_closing = its_metrics_series_v(f, "closing");
        p->m_outbox = its_metrics_series(its_metrics_std(metrics, ITS_M_PUB_OUTBOX), NULL);
        p->m_outbox_bytes =
            its_metrics_series(its_metrics_std(metrics, ITS_M_PUB_OUTBOX_BYTES), NULL);
        p->m_reconnects = its_metrics_series(its_metrics_std(metrics, ITS_M_PUB_RECONNECTS), NULL);
        p->m_connect_fail =
            its_metrics_series(its_metrics_std(metrics, ITS_M_PUB_CONNECT_FAIL), NULL);
        p->m_up = its_metrics_series(its_metrics_std(metrics, ITS_M_REDIS_UP), NULL);
        if (cfg->observe_latency)
            p->m_e2e = its_metrics_series(its_metrics_std(metrics, ITS_M_LATENCY), NULL);
        p->m_replayed = its_metrics_series(its_metrics_std(metrics, ITS_M_PUB_REPLAYED), NULL);
        p->f_cam_sent = its_metrics_std(metrics, ITS_M_PUB_CAM_MESSAGES);
        p->f_cam_replayed = its_metrics_std(metrics, ITS_M_PUB_CAM_REPLAYED);
        p->f_cam_dropped = its_metrics_std(metrics, ITS_M_PUB_CAM_DROPPED);
        f = its_metrics_std(metrics, ITS_M_ERRORS);
        p->m_invalid = its_metrics_series_v(f, "publish", its_errname(ITS_EINVAL));
        p->m_nomem = its_metrics_series_v(f, "publish", its_errname(ITS_ENOMEM));
    }
    *out = p;
    return 0;
}

static int pop_head(its_publisher *p);
static void update_outbox_gauges(its_publisher *p);

/* ---- per-camera outcomes --------------------------------------------------------------- */

const char *its_pub_drop_name(its_pub_drop reason)
{
    return reason >= 0 && reason < ITS_PUB_DROP_COUNT ? drop_names[reason] : "unknown";
}

static uint32_t id_hash(const char *id)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *id; id++)
        h = (h ^ (uint8_t)*id) * 16777619u;
    return h;
}

/* The entry of camera id, or -1 (no id, or not in the index). Lock-free. */
static int cam_find(its_publisher *p, const char *id, uint32_t h)
{
    for (uint32_t i = 0; i < CAM_HASH_SLOTS; i++) {
        int v = atomic_load_explicit(&p->cam_hash[(h + i) % CAM_HASH_SLOTS], memory_order_acquire);
        if (v == 0)
            return -1;
        if (!strcmp(p->cams[v - 1].id, id))
            return v - 1;
    }
    return -1;
}

/* The entry of camera id, added on its first message; -1 for no camera or a full table. The
 * only allocation is the metric series of a new camera. */
static int cam_index(its_publisher *p, const char *id)
{
    if (!p || !id || !its_publish_valid_id(id))
        return -1;
    uint32_t h = id_hash(id);
    int c = cam_find(p, id, h);
    if (c >= 0)
        return c;
    pthread_mutex_lock(&p->cam_lock);
    c = cam_find(p, id, h); /* another thread may have added it */
    if (c < 0 && p->n_cams < ITS_PUB_MAX_CAMERAS) {
        c = p->n_cams++;
        cam_entry *e = &p->cams[c];
        snprintf(e->id, sizeof e->id, "%s", id);
        e->m_sent = its_metrics_series_v(p->f_cam_sent, e->id);
        e->m_replayed = its_metrics_series_v(p->f_cam_replayed, e->id);
        for (int r = 0; r < ITS_PUB_DROP_COUNT; r++)
            e->m_drop[r] = its_metrics_series_v(p->f_cam_dropped, e->id, drop_names[r]);
        uint32_t i = h % CAM_HASH_SLOTS;
        while (atomic_load_explicit(&p->cam_hash[i], memory_order_relaxed))
            i = (i + 1) % CAM_HASH_SLOTS;
        atomic_store_explicit(&p->cam_hash[i], c + 1, memory_order_release);
    } else if (c < 0 && !p->cams_full_logged) {
        p->cams_full_logged = 1;
        its_logw("publish", id,
                 "more than %d cameras: outcomes of further cameras are counted in the totals only",
                 ITS_PUB_MAX_CAMERAS);
    }
    pthread_mutex_unlock(&p->cam_lock);
    return c;
}

/* A removed camera's series are hidden (its_metrics_hide_label); a new message of that id
 * means the camera is back: looking the series up again shows them. Outcomes of messages
 * queued before the removal only count, hidden. */
static void cam_show(its_publisher *p, int c)
{
    cam_entry *e = &p->cams[c];
    if (!its_metric_hidden(e->m_sent))
        return;
    its_metrics_series_v(p->f_cam_sent, e->id);
    its_metrics_series_v(p->f_cam_replayed, e->id);
    for (int r = 0; r < ITS_PUB_DROP_COUNT; r++)
        its_metrics_series_v(p->f_cam_dropped, e->id, drop_names[r]);
}

static void cam_drop(its_publisher *p, int c, int reason, uint64_t n)
{
    if (c < 0 || !n)
        return;
    atomic_fetch_add(&p->cams[c].dropped[reason], n);
    its_metric_add(p->cams[c].m_drop[reason], (double)n);
}

void its__publisher_count_drop(its_publisher *p, const char *camera_id, int reason)
{
    if (reason >= 0 && reason < ITS_PUB_DROP_COUNT)
        cam_drop(p, cam_index(p, camera_id), reason, 1);
}

int its_publisher_camera_stats(its_publisher *p, const char *camera_id,
                               its_publish_camera_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!p || !camera_id)
        return ITS_ENOENT;
    int c = cam_find(p, camera_id, id_hash(camera_id));
    if (c < 0)
        return ITS_ENOENT;
    cam_entry *e = &p->cams[c];
    out->sent = atomic_load(&e->sent);
    out->replayed = atomic_load(&e->replayed);
    for (int r = 0; r < ITS_PUB_DROP_COUNT; r++) {
        out->dropped[r] = atomic_load(&e->dropped[r]);
        out->dropped_total += out->dropped[r];
    }
    return 0;
}

/* Once per outage, when it ends (reconnected, or closing): how many messages the full
 * outbox cost. */
static void log_outage_loss(its_publisher *p, const char *when)
{
    if (!p->outage_lost)
        return;
    its_logw("publish", NULL,
             "%llu message(s) lost: the outbox (%zu messages, %zu MiB) was full while Redis was "
             "away; %s",
             (unsigned long long)p->outage_lost, p->cfg.outbox_max_msgs,
             p->cfg.outbox_max_bytes >> 20, when);
    p->outage_lost = 0;
}

static void disconnect(its_publisher *p)
{
    if (p->rc) {
        redisFree(p->rc);
        p->rc = NULL;
    }
    atomic_store(&p->connected, 0);
    its_metric_set(p->m_up, 0);
}

void its_publisher_destroy(its_publisher *p)
{
    if (!p)
        return;
    if (p->count && p->ring) {
        /* One last attempt, ignoring the backoff; bounded by the timeouts. */
        p->next_attempt_ns = 0;
        its_publish_flush(p);
        if (p->count) {
            its_logw("publish", NULL, "closing with %zu unsent message(s): dropped", p->count);
            atomic_fetch_add(&p->dropped_closing, p->count);
            its_metric_add(p->m_drop_closing, (double)p->count);
            while (p->count) {
                cam_drop(p, p->ring[p->head].cam, ITS_PUB_DROP_CLOSING, 1);
                pop_head(p);
            }
            update_outbox_gauges(p);
        }
    }
    log_outage_loss(p, "closing");
    disconnect(p);
    for (size_t i = 0; p->ring && i < p->cap; i++)
        its__buf_free(&p->ring[i].resp);
    its_free(p->ring);
    its__buf_free(&p->json);
    its__buf_free(&p->key);
    its__buf_free(&p->cmds);
    if (p->cams)
        pthread_mutex_destroy(&p->cam_lock);
    its_free(p->cams);
    its_free(p->host);
    its_free(p->username);
    its_free(p->password);
    its_free(p->sentinels);
    its_free(p->master_name);
    its_free(p->outcome);
    its_free(p);
}

/* ---- outbox ---------------------------------------------------------------------------- */

static void update_outbox_gauges(its_publisher *p)
{
    atomic_store(&p->outbox_msgs, p->count);
    atomic_store(&p->outbox_bytes, p->bytes);
    its_metric_set(p->m_outbox, (double)p->count);
    its_metric_set(p->m_outbox_bytes, (double)p->bytes);
}

/* Returns 1 if the message had waited through an outage. */
static int pop_head(its_publisher *p)
{
    int replay = p->replay_pending > 0;
    if (replay)
        p->replay_pending--;
    msg *m = &p->ring[p->head];
    p->bytes -= m->resp.len;
    its__buf_reset(&m->resp);
    p->head = (p->head + 1) % p->cap;
    p->count--;
    return replay;
}

/* The slot for a new message, after making room; NULL if the message alone is too big. */
static msg *reserve_slot(its_publisher *p, size_t len, int cam)
{
    if (len > p->cfg.outbox_max_bytes) {
        atomic_fetch_add(&p->dropped_too_large, 1);
        its_metric_inc(p->m_drop_large);
        cam_drop(p, cam, ITS_PUB_DROP_TOO_LARGE, 1);
        return NULL;
    }
    while (p->count == p->cap || p->bytes + len > p->cfg.outbox_max_bytes) {
        cam_drop(p, p->ring[p->head].cam, ITS_PUB_DROP_OUTBOX_FULL, 1);
        pop_head(p);
        p->outage_lost++;
        atomic_fetch_add(&p->dropped_outbox, 1);
        its_metric_inc(p->m_drop_outbox);
    }
    return &p->ring[(p->head + p->count) % p->cap];
}

/* Scratch buffer `cmds` holds the RESP text of the message; copy it into the outbox. */
static int enqueue(its_publisher *p, its__buf *cmds, int ncmd, enum kind kind,
                   const its_pub_meta *meta)
{
    if (cmds->err)
        return cmds->err;
    int cam = cam_index(p, meta ? meta->camera_id : NULL);
    if (cam >= 0)
        cam_show(p, cam);
    msg *m = reserve_slot(p, cmds->len, cam);
    if (!m) {
        its_logw("publish", meta && meta->camera_id ? meta->camera_id : NULL,
                 "message of %zu bytes exceeds the outbox (%zu bytes): dropped", cmds->len,
                 p->cfg.outbox_max_bytes);
        return ITS_EOVERFLOW;
    }
    its__buf_reset(&m->resp);
    its__buf_put(&m->resp, cmds->p, cmds->len);
    if (m->resp.err)
        return m->resp.err;
    m->ncmd = ncmd;
    m->kind = kind;
    m->cam = cam;
    m->capture_mono_ns = meta ? meta->capture_mono_ns : 0;
    p->count++;
    p->bytes += m->resp.len;
    if (p->failures > 0) /* in an outage: it waits for the reconnection */
        p->replay_pending = p->count;
    atomic_fetch_add(&p->enqueued, 1);
    update_outbox_gauges(p);
    return 0;
}

/* ---- message formatting ---------------------------------------------------------------- */

/* A message being formatted by one of the builders below. */
typedef struct draft {
    const char *type;
    const its_pub_meta *meta;
    const char *key1, *val1; /* an extra string member, or NULL */
    const char *payload;     /* "data": an object given by the caller, or NULL */
    const its_det *dets;     /* pixels of a width x height frame */
    int n_dets;              /* < 0: no "detections" member */
    int width, height;
    const char *const *labels; /* class names by id, n_labels of them (may be NULL) */
    int n_labels;
} draft;

static const char *label_of(void *ctx, int c)
{
    const draft *m = ctx;
    return m->labels && c >= 0 && c < m->n_labels ? m->labels[c] : NULL;
}

/* The envelope of messages v2 (docs/messages.md), then the builder's own members. */
static void write_msg(its_json *w, const draft *m)
{
    const its_pub_meta *meta = m->meta;
    its_json_msg_begin(w, m->type, meta->camera_id, (int64_t)(meta->capture_wall_ns / 1000),
                       meta->frame);
    its_json_kuint(w, "publish_ts_us", its_wall_ns() / 1000);
    if (m->key1)
        its_json_kstr(w, m->key1, m->val1);
    if (m->n_dets >= 0)
        its_json_frame_dets(w, m->dets, m->n_dets, m->width, m->height, label_of, (void *)m);
    if (m->payload) {
        its_json_key(w, "data");
        its_json_raw(w, m->payload, strlen(m->payload));
    }
    its_json_obj_end(w);
}

/* Formats m into p->json with the core writer, growing the buffer until it fits (the buffer
 * keeps its capacity: the steady state does not allocate). */
static int format(its_publisher *p, const draft *m)
{
    its__buf_reset(&p->json);
    for (;;) {
        its_json w;
        its_json_init(&w, p->json.p, p->json.cap);
        write_msg(&w, m);
        int n = its_json_finish(&w);
        if (n >= 0) {
            p->json.len = (size_t)n;
            return 0;
        }
        if (n != ITS_EOVERFLOW)
            return n;
        if (its__buf_reserve(&p->json, p->json.cap ? p->json.cap : 512) < 0)
            return ITS_ENOMEM;
    }
}

/* Freshness of a result from its age at publication: 1 when new, 0 when a base TTL old. */
static double age_freshness(const its_pub_meta *meta, int base_s)
{
    uint64_t now = its_wall_ns();
    if (!meta->capture_wall_ns || meta->capture_wall_ns >= now)
        return 1.0;
    double age_s = (double)(now - meta->capture_wall_ns) / 1e9;
    return 1.0 - age_s / (double)base_s;
}

static int payload_ok(const char *s)
{
    if (!s)
        return 0;
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        n--;
    return n >= 2 && s[0] == '{' && s[n - 1] == '}';
}

/* Appends SET key <json> EX ttl to cmds and writes it through to L1. */
static void add_set(its_publisher *p, its__buf *cmds, const char *key, int ttl)
{
    char ttlbuf[16];
    int n = snprintf(ttlbuf, sizeof ttlbuf, "%d", ttl);
    const char *argv[] = {"SET", key, p->json.p, "EX", ttlbuf};
    size_t lens[] = {3, strlen(key), p->json.len, 2, (size_t)n};
    its__resp_cmd(cmds, 5, argv, lens);
    if (p->l1 && !p->json.err)
        its_cache_put(p->l1, key, p->json.p, p->json.len, ttl);
}

static void add_publish(its_publisher *p, its__buf *cmds, const char *channel)
{
    const char *argv[] = {"PUBLISH", channel, p->json.p};
    size_t lens[] = {7, strlen(channel), p->json.len};
    its__resp_cmd(cmds, 3, argv, lens);
}

static const char *cam_key(its_publisher *p, const char *id, const char *suffix,
                           const char *suffix2)
{
    its__buf_reset(&p->key);
    its__buf_str(&p->key, "its:cam:");
    its__buf_str(&p->key, id);
    its__buf_str(&p->key, suffix);
    if (suffix2)
        its__buf_str(&p->key, suffix2);
    return p->key.err ? NULL : p->key.p;
}

/* The RESP text of the message being built, before it is copied into its outbox slot. */
static its__buf *cmd_buf(its_publisher *p)
{
    its__buf_reset(&p->cmds);
    return &p->cmds;
}

/* The commands of each kind, around the message already in p->json. */
static int tail_detections(its_publisher *p, const its_pub_meta *meta)
{
    its__buf *cmds = cmd_buf(p);
    int base = p->cfg.ttl_base_s[ITS_TTL_LATEST];
    int ttl = its_publish_adaptive_ttl_s(base, age_freshness(meta, base));
    const char *ch = cam_key(p, meta->camera_id, ":detections", NULL);
    if (!ch || p->json.err)
        return ITS_ENOMEM;
    add_publish(p, cmds, ch);
    const char *key = cam_key(p, meta->camera_id, ":latest", NULL);
    if (!key)
        return ITS_ENOMEM;
    add_set(p, cmds, key, ttl);
    return enqueue(p, cmds, 2, K_DETECTIONS, meta);
}

static int tail_analytics(its_publisher *p, const its_pub_meta *meta, const char *window,
                          int cache_only)
{
    its__buf *cmds = cmd_buf(p);
    int base = p->cfg.ttl_base_s[ITS_TTL_ANALYTICS];
    int ttl = its_publish_adaptive_ttl_s(base, age_freshness(meta, base));
    if (!cache_only) {
        const char *ch = cam_key(p, meta->camera_id, ":analytics", NULL);
        if (!ch || p->json.err)
            return ITS_ENOMEM;
        add_publish(p, cmds, ch);
    }
    const char *key = cam_key(p, meta->camera_id, ":analytics:", window);
    if (!key || p->json.err)
        return ITS_ENOMEM;
    add_set(p, cmds, key, ttl);
    return enqueue(p, cmds, cache_only ? 1 : 2, cache_only ? K_CACHE : K_ANALYTICS, meta);
}

static int tail_drift(its_publisher *p, const its_pub_meta *meta)
{
    its__buf *cmds = cmd_buf(p);
    int base = p->cfg.ttl_base_s[ITS_TTL_ANALYTICS];
    const char *ch = cam_key(p, meta->camera_id, ":drift", NULL);
    if (!ch || p->json.err)
        return ITS_ENOMEM;
    add_publish(p, cmds, ch);
    add_set(p, cmds, ch, its_publish_adaptive_ttl_s(base, 1.0));
    return enqueue(p, cmds, 2, K_ANALYTICS, meta);
}

static int tail_event(its_publisher *p, const its_pub_meta *meta)
{
    if (p->json.err)
        return p->json.err;
    its__buf *cmds = cmd_buf(p);
    add_publish(p, cmds, "its:events");
    char maxlen[24];
    int n = snprintf(maxlen, sizeof maxlen, "%ld", p->cfg.stream_maxlen);
    const char *argv[] = {"XADD",   "its:events:stream", "MAXLEN", "~", maxlen, "*", "json",
                          p->json.p};
    size_t lens[] = {4, 17, 6, 1, (size_t)n, 1, 4, p->json.len};
    its__resp_cmd(cmds, 8, argv, lens);
    return enqueue(p, cmds, 2, K_EVENT, meta);
}

/* The key of a cache-only type into p->key, and the message type name. */
static int cache_key(its_publisher *p, const its_pub_meta *meta, its_ttl_type type,
                     const char *name, const char **tname)
{
    switch (type) {
    case ITS_TTL_QUALITY_SCORES:
    case ITS_TTL_PREDICTIONS_SHORT:
    case ITS_TTL_PREDICTIONS_LONG:
        if (!its_publish_valid_id(meta->camera_id) || (name && !its_publish_valid_id(name)))
            return ITS_EINVAL;
        *tname = type == ITS_TTL_QUALITY_SCORES      ? "quality"
                 : type == ITS_TTL_PREDICTIONS_SHORT ? "predictions_short"
                                                     : "predictions_long";
        cam_key(p, meta->camera_id,
                type == ITS_TTL_QUALITY_SCORES      ? ":quality"
                : type == ITS_TTL_PREDICTIONS_SHORT ? ":predictions:short"
                                                    : ":predictions:long",
                NULL);
        break;
    case ITS_TTL_MODEL_BASELINES:
        if (!its_publish_valid_id(name) ||
            (meta->camera_id && !its_publish_valid_id(meta->camera_id)))
            return ITS_EINVAL;
        *tname = "model_baseline";
        its__buf_reset(&p->key);
        its__buf_str(&p->key, "its:model:");
        its__buf_str(&p->key, name);
        its__buf_str(&p->key, ":baseline");
        break;
    default:
        return ITS_EINVAL;
    }
    return p->key.err ? ITS_ENOMEM : 0;
}

static int tail_cache(its_publisher *p, const its_pub_meta *meta, its_ttl_type type,
                      double freshness)
{
    if (p->json.err)
        return p->json.err;
    its__buf *cmds = cmd_buf(p);
    add_set(p, cmds, p->key.p, its_publish_adaptive_ttl_s(p->cfg.ttl_base_s[type], freshness));
    return enqueue(p, cmds, 1, K_CACHE, meta);
}

static int do_detections(its_publisher *p, const its_pub_meta *meta, const its_det *dets, int n,
                         int width, int height, const char *const *labels, int n_labels)
{
    if (!p || !meta || !its_publish_valid_id(meta->camera_id) || n < 0 || (n && !dets) ||
        (n && (width <= 0 || height <= 0)))
        return ITS_EINVAL;
    draft m = {.type = "frame",
               .meta = meta,
               .dets = dets,
               .n_dets = n,
               .width = width,
               .height = height,
               .labels = labels,
               .n_labels = n_labels};
    int rc = format(p, &m);
    return rc < 0 ? rc : tail_detections(p, meta);
}

static int do_analytics(its_publisher *p, const its_pub_meta *meta, const char *window,
                        const char *payload_json)
{
    if (!p || !meta || !its_publish_valid_id(meta->camera_id) || !its_publish_valid_id(window) ||
        !payload_ok(payload_json))
        return ITS_EINVAL;
    draft m = {.type = "window",
               .meta = meta,
               .key1 = "window",
               .val1 = window,
               .payload = payload_json,
               .n_dets = -1};
    int rc = format(p, &m);
    return rc < 0 ? rc : tail_analytics(p, meta, window, 0);
}

static int do_event(its_publisher *p, const its_pub_meta *meta, const char *event_type,
                    const char *payload_json)
{
    if (!p || !meta || !its_publish_valid_id(meta->camera_id) ||
        !its_publish_valid_id(event_type) || !payload_ok(payload_json))
        return ITS_EINVAL;
    draft m = {.type = "event",
               .meta = meta,
               .key1 = "kind",
               .val1 = event_type,
               .payload = payload_json,
               .n_dets = -1};
    int rc = format(p, &m);
    return rc < 0 ? rc : tail_event(p, meta);
}

static int do_cache(its_publisher *p, const its_pub_meta *meta, its_ttl_type type, const char *name,
                    double freshness, const char *payload_json)
{
    if (!p || !meta || !payload_ok(payload_json))
        return ITS_EINVAL;
    const char *tname = NULL;
    int rc = cache_key(p, meta, type, name, &tname);
    if (rc < 0)
        return rc;
    draft m = {.type = tname,
               .meta = meta,
               .key1 = name ? "name" : NULL,
               .val1 = name,
               .payload = payload_json,
               .n_dets = -1};
    rc = format(p, &m);
    return rc < 0 ? rc : tail_cache(p, meta, type, freshness);
}

/* Checks a caller-built message without a publisher: ITS_EINVAL or 0; *start and *end
 * delimit the JSON object without surrounding white space. */
int its__publish_raw_check(const its_pub_meta *meta, const its_pub_raw *how, const char *json,
                           size_t len, size_t *start, size_t *end)
{
    if (!meta || !how || !json || len < 2 || memchr(json, 0, len))
        return ITS_EINVAL;
    size_t a = 0, z = len;
    while (a < z && (json[a] == ' ' || json[a] == '\n' || json[a] == '\r' || json[a] == '\t'))
        a++;
    while (z > a && (json[z - 1] == ' ' || json[z - 1] == '\n' || json[z - 1] == '\r' ||
                     json[z - 1] == '\t'))
        z--;
    if (z - a < 2 || json[a] != '{' || json[z - 1] != '}')
        return ITS_EINVAL;
    int ok;
    switch (how->kind) {
    case ITS_PUB_DETECTIONS:
    case ITS_PUB_EVENT:
    case ITS_PUB_DRIFT:
        ok = its_publish_valid_id(meta->camera_id);
        break;
    case ITS_PUB_ANALYTICS:
        ok = its_publish_valid_id(meta->camera_id) && its_publish_valid_id(how->window);
        break;
    case ITS_PUB_CACHE:
        if (how->ttl_type == ITS_TTL_MODEL_BASELINES)
            ok = its_publish_valid_id(how->name) &&
                 (!meta->camera_id || its_publish_valid_id(meta->camera_id));
        else
            ok = (how->ttl_type == ITS_TTL_QUALITY_SCORES ||
                  how->ttl_type == ITS_TTL_PREDICTIONS_SHORT ||
                  how->ttl_type == ITS_TTL_PREDICTIONS_LONG) &&
                 its_publish_valid_id(meta->camera_id) &&
                 (!how->name || its_publish_valid_id(how->name));
        break;
    default:
        ok = 0;
    }
    if (!ok)
        return ITS_EINVAL;
    *start = a;
    *end = z;
    return 0;
}

/* A message built by the caller, published unchanged through the same commands. */
static int do_raw(its_publisher *p, const its_pub_meta *meta, const its_pub_raw *how,
                  const char *json, size_t len)
{
    size_t a, z;
    if (!p || its__publish_raw_check(meta, how, json, len, &a, &z) < 0)
        return ITS_EINVAL;
    if (how->kind == ITS_PUB_CACHE) {
        const char *tname;
        int rc = cache_key(p, meta, how->ttl_type, how->name, &tname);
        if (rc < 0)
            return rc;
    }
    its__buf_reset(&p->json);
    its__buf_put(&p->json, json + a, z - a);
    switch (how->kind) {
    case ITS_PUB_DETECTIONS:
        return tail_detections(p, meta);
    case ITS_PUB_ANALYTICS:
        return tail_analytics(p, meta, how->window, how->cache_only);
    case ITS_PUB_EVENT:
        return tail_event(p, meta);
    case ITS_PUB_DRIFT:
        return tail_drift(p, meta);
    default:
        return tail_cache(p, meta, how->ttl_type, how->freshness);
    }
}

/* ---- connection ------------------------------------------------------------------------ */

static uint64_t backoff_ns(its_publisher *p)
{
    uint64_t ms = (uint64_t)p->cfg.backoff_min_ms;
    for (int i = 1; i < p->failures && ms < (uint64_t)p->cfg.backoff_max_ms; i++)
        ms *= 2;
    if (ms > (uint64_t)p->cfg.backoff_max_ms)
        ms = (uint64_t)p->cfg.backoff_max_ms;
    /* Jitter to 50-100%, so that many publishers do not reconnect in lock-step. */
    p->rng ^= p->rng << 13;
    p->rng ^= p->rng >> 7;
    p->rng ^= p->rng << 17;
    uint64_t ns = ms * ITS_NS_PER_MS;
    return ns / 2 + (ns / 2 ? p->rng % (ns / 2 + 1) : 0);
}

static int try_connect(its_publisher *p)
{
    uint64_t now = its_now_ns();
    if (now < p->next_attempt_ns)
        return ITS_EAGAIN;
    /* directly, or the master the Sentinels name (its/redis.h): after a failover the next
     * connect finds the promoted replica */
    its_redis_target t;
    its_redis_target_default(&t);
    t.host = p->host;
    t.port = p->cfg.port;
    t.sentinels = p->sentinels;
    t.master_name = p->master_name;
    t.username = p->username;
    t.password = p->password;
    t.db = p->cfg.db;
    t.connect_timeout_ms = p->cfg.connect_timeout_ms;
    t.command_timeout_ms = p->cfg.command_timeout_ms;
    char err[256];
    int rc = 0;
    redisContext *c = its_redis_connect(&t, &rc, err, sizeof err);
    if (!c) {
        if (p->failures == 0) { /* one line per outage: the first failed attempt */
            if (rc == ITS_EAUTH)
                its_loge("publish", NULL, "%s", err);
            else
                its_logw("publish", NULL, "%s", err);
        }
        p->failures++;
        p->replay_pending = p->count;
        p->next_attempt_ns = its_now_ns() + backoff_ns(p);
        atomic_fetch_add(&p->connect_failures, 1);
        its_metric_inc(p->m_connect_fail);
        return rc;
    }
    p->rc = c;
    if (p->ever_connected) {
        atomic_fetch_add(&p->reconnects, 1);
        its_metric_inc(p->m_reconnects);
        its_logi("publish", NULL, "reconnected to Redis %s:%d after %d failed attempt(s)",
                 c->tcp.host ? c->tcp.host : p->host, c->tcp.port, p->failures);
        log_outage_loss(p, "Redis is back");
    }
    p->ever_connected = 1;
    p->failures = 0;
    atomic_store(&p->connected, 1);
    its_metric_set(p->m_up, 1);
    return 0;
}

static void connection_lost(its_publisher *p)
{
    its_logw("publish", NULL, "Redis connection lost: %s; %zu message(s) kept in the outbox",
             p->rc && p->rc->errstr[0] ? p->rc->errstr : "I/O error", p->count);
    disconnect(p);
    p->failures = 1;
    p->replay_pending = p->count;
    p->next_attempt_ns = its_now_ns() + backoff_ns(p);
}

/* Error replies that say "not now" rather than "never": a server loading its data set, a
 * busy script, a replica or a cluster in failover, a password set since we connected. */
static int transient_error(const char *e)
{
    static const char *const prefixes[] = {"LOADING",     "BUSY",     "TRYAGAIN", "MASTERDOWN",
                                           "CLUSTERDOWN", "READONLY", "NOAUTH"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (!strncmp(e, prefixes[i], strlen(prefixes[i])))
            return 1;
    return 0;
}

/* A round that cannot complete now: keep its messages (and the rest) and retry after the
 * backoff, on a new connection. */
static int round_retry(its_publisher *p)
{
    disconnect(p);
    p->failures = 1;
    p->replay_pending = p->count;
    p->next_attempt_ns = its_now_ns() + backoff_ns(p);
    update_outbox_gauges(p);
    return ITS_EAGAIN;
}

/* One pipelined round: up to max_pipeline messages, then with wait_replicas a WAIT. Every
 * reply is read before any message leaves the outbox, so that a round whose WAIT finds too
 * few replicas keeps all of its messages for the next attempt. Returns messages confirmed, or
 * ITS_ENET after losing the connection, ITS_EAGAIN when Redis said "not now". */
static int flush_round(its_publisher *p)
{
    size_t n = p->count < (size_t)p->cfg.max_pipeline ? p->count : (size_t)p->cfg.max_pipeline;
    for (size_t i = 0; i < n; i++) {
        const msg *m = &p->ring[(p->head + i) % p->cap];
        if (redisAppendFormattedCommand(p->rc, m->resp.p, m->resp.len) != REDIS_OK) {
            connection_lost(p);
            return ITS_ENET;
        }
    }
    if (p->cfg.wait_replicas > 0 && redisAppendCommand(p->rc, "WAIT %d %d", p->cfg.wait_replicas,
                                                       p->cfg.command_timeout_ms) != REDIS_OK) {
        connection_lost(p);
        return ITS_ENET;
    }
    size_t ok_n = n; /* the messages before the first "not now" */
    for (size_t i = 0; i < n; i++) {
        const msg *m = &p->ring[(p->head + i) % p->cap];
        p->outcome[i] = 0;
        for (int j = 0; j < m->ncmd; j++) {
            redisReply *r = NULL;
            if (redisGetReply(p->rc, (void **)&r) != REDIS_OK || !r) {
                connection_lost(p);
                update_outbox_gauges(p);
                return ITS_ENET;
            }
            if (r->type == REDIS_REPLY_ERROR && transient_error(r->str)) {
                /* Not this message's fault: keep it (and the rest) and retry later. */
                if (ok_n == n)
                    its_logw("publish", NULL, "Redis not accepting writes (%s); retrying", r->str);
                if (i < ok_n)
                    ok_n = i;
            } else if (r->type == REDIS_REPLY_ERROR) {
                p->outcome[i] = 1;
                uint64_t now = its_now_ns();
                if (now - p->last_err_log_ns > ITS_NS_PER_S) {
                    its_loge("publish", NULL, "Redis rejected a %s message: %s",
                             kind_names[m->kind], r->str);
                    p->last_err_log_ns = now;
                }
            }
            freeReplyObject(r);
        }
    }
    if (p->cfg.wait_replicas > 0) {
        /* WAIT may take its whole timeout, and Redis ends a blocked command's wait on its
         * server tick (100 ms at the default hz 10): the read waits that much longer */
        int ms = 2 * p->cfg.command_timeout_ms + 200;
        struct timeval longer = {ms / 1000, (ms % 1000) * 1000},
                       normal = {p->cfg.command_timeout_ms / 1000,
                                 (p->cfg.command_timeout_ms % 1000) * 1000};
        redisReply *r = NULL;
        int ok = redisSetTimeout(p->rc, longer) == REDIS_OK &&
                 redisGetReply(p->rc, (void **)&r) == REDIS_OK && r &&
                 redisSetTimeout(p->rc, normal) == REDIS_OK;
        if (!ok) {
            if (r)
                freeReplyObject(r);
            connection_lost(p);
            update_outbox_gauges(p);
            return ITS_ENET;
        }
        long long acked = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
        if (ok_n == n && acked < p->cfg.wait_replicas) {
            /* not yet on enough replicas: a failover now could lose them, so they stay */
            uint64_t now = its_now_ns();
            if (now - p->last_err_log_ns > ITS_NS_PER_S) {
                its_logw("publish", NULL, "WAIT: %lld of %d replicas acknowledged; retrying", acked,
                         p->cfg.wait_replicas);
                p->last_err_log_ns = now;
            }
        }
        if (acked < p->cfg.wait_replicas)
            ok_n = 0;
        freeReplyObject(r);
    }
    int done = 0;
    for (size_t i = 0; i < ok_n; i++) {
        const msg *m = &p->ring[p->head];
        uint64_t now = its_now_ns();
        enum kind kind = m->kind;
        int cam = m->cam;
        uint64_t capture = m->capture_mono_ns;
        int replay = pop_head(p);
        if (p->outcome[i]) {
            atomic_fetch_add(&p->dropped_redis_error, 1);
            its_metric_inc(p->m_drop_redis);
            cam_drop(p, cam, ITS_PUB_DROP_REDIS_ERROR, 1);
        } else {
            atomic_fetch_add(&p->sent, 1);
            its_metric_inc(p->m_sent[kind]);
            if (cam >= 0) {
                atomic_fetch_add(&p->cams[cam].sent, 1);
                its_metric_inc(p->cams[cam].m_sent);
            }
            if (replay) {
                atomic_fetch_add(&p->replayed, 1);
                its_metric_inc(p->m_replayed);
                if (cam >= 0) {
                    atomic_fetch_add(&p->cams[cam].replayed, 1);
                    its_metric_inc(p->cams[cam].m_replayed);
                }
            }
            if (kind == K_DETECTIONS && capture && capture <= now)
                its_metric_observe(p->m_e2e, (double)(now - capture) / 1e9);
            done++;
        }
    }
    if (ok_n < n)
        return round_retry(p);
    update_outbox_gauges(p);
    return done;
}

int its_publish_flush(its_publisher *p)
{
    if (!p)
        return ITS_EINVAL;
    if (p->count == 0)
        return 0;
    if (!p->rc) {
        int rc = try_connect(p);
        if (rc < 0)
            return rc;
    }
    int total = 0;
    while (p->count) {
        int rc = flush_round(p);
        if (rc < 0)
            return rc;
        total += rc;
    }
    return total;
}

int its_publish_drain(its_publisher *p, int timeout_ms)
{
    if (!p)
        return ITS_EINVAL;
    uint64_t deadline = its_now_ns() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * ITS_NS_PER_MS;
    int total = 0, err = 0;
    while (p->count) {
        int rc = its_publish_flush(p);
        if (rc > 0)
            total += rc;
        if (rc < 0 && rc != ITS_EAGAIN)
            err = rc;
        if (!p->count)
            break;
        uint64_t now = its_now_ns();
        if (now >= deadline)
            return err < 0 ? err : ITS_ETIMEDOUT;
        uint64_t wake = p->next_attempt_ns > now ? p->next_attempt_ns : now + ITS_NS_PER_MS;
        its_sleep_until_ns(wake < deadline ? wake : deadline);
    }
    return total;
}

void its_publisher_get_stats(its_publisher *p, its_publish_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!p)
        return;
    out->enqueued = atomic_load(&p->enqueued);
    out->sent = atomic_load(&p->sent);
    out->dropped_outbox = atomic_load(&p->dropped_outbox);
    out->dropped_too_large = atomic_load(&p->dropped_too_large);
    out->dropped_redis_error = atomic_load(&p->dropped_redis_error);
    out->reconnects = atomic_load(&p->reconnects);
    out->connect_failures = atomic_load(&p->connect_failures);
    out->replayed = atomic_load(&p->replayed);
    out->dropped_closing = atomic_load(&p->dropped_closing);
    out->outbox_msgs = atomic_load(&p->outbox_msgs);
    out->outbox_bytes = atomic_load(&p->outbox_bytes);
    out->connected = atomic_load(&p->connected);
}

int its_publish_settings_apply(const its_publish_settings *s, its_publish_config *pub,
                               its_cache_config *cache)
{
    const char *sentinels = s->sentinels && s->sentinels[0] ? s->sentinels : NULL;
    const char *master = s->master_name && s->master_name[0] ? s->master_name : NULL;
    int enabled = (s->host && s->host[0]) || sentinels;
    if (pub) {
        its_publish_config_default(pub);
        if (s->host && s->host[0])
            pub->host = s->host;
        pub->sentinels = sentinels;
        pub->master_name = master;
        pub->wait_replicas = s->wait_replicas;
        pub->port = s->port;
        pub->username = s->username && s->username[0] ? s->username : NULL;
        pub->password = s->password && s->password[0] ? s->password : NULL;
        pub->db = s->db;
        pub->connect_timeout_ms = s->connect_timeout_ms;
        pub->command_timeout_ms = s->command_timeout_ms;
        pub->backoff_min_ms = s->backoff_min_ms;
        pub->backoff_max_ms = s->backoff_max_ms;
        pub->outbox_max_msgs = (size_t)s->outbox_max_msgs;
        pub->outbox_max_bytes = (size_t)s->outbox_max_mb << 20;
        pub->stream_maxlen = s->stream_maxlen;
        pub->max_pipeline = s->max_pipeline;
    }
    if (cache) {
        its_cache_config_default(cache);
        cache->max_entries = (size_t)s->cache_max_entries;
        cache->max_bytes = (size_t)s->cache_max_mb << 20;
        cache->host = !enabled ? NULL : s->host && s->host[0] ? s->host : ITS_PUBLISH_HOST;
        cache->sentinels = sentinels;
        cache->master_name = master;
        cache->port = s->port;
        cache->username = s->username && s->username[0] ? s->username : NULL;
        cache->password = s->password && s->password[0] ? s->password : NULL;
        cache->db = s->db;
        cache->connect_timeout_ms = s->connect_timeout_ms;
        cache->command_timeout_ms = s->command_timeout_ms;
    }
    return enabled;
}

/* Every refused message is counted (its_errors_total{module="publish",kind=...}) and logged
 * at most once a second; the caller also gets the code. Outbox drops are counted where they
 * happen. */
static int rejected(its_publisher *p, const its_pub_meta *meta, const char *what, int rc)
{
    if (rc >= 0 || !p)
        return rc;
    if (rc == ITS_EINVAL)
        its_metric_inc(p->m_invalid);
    else if (rc == ITS_ENOMEM)
        its_metric_inc(p->m_nomem);
    uint64_t now = its_now_ns();
    if (now - p->last_reject_log_ns > ITS_NS_PER_S) {
        p->last_reject_log_ns = now;
        its_logw("publish",
                 meta && meta->camera_id && its_publish_valid_id(meta->camera_id) ? meta->camera_id
                                                                                  : NULL,
                 "%s message refused: %s", what, its_strerror(rc));
    }
    return rc;
}

int its_publish_detections(its_publisher *p, const its_pub_meta *meta, const its_det *dets, int n,
                           int width, int height, const char *const *labels, int n_labels)
{
    return rejected(p, meta, "detections",
                    do_detections(p, meta, dets, n, width, height, labels, n_labels));
}

int its_publish_analytics(its_publisher *p, const its_pub_meta *meta, const char *window,
                          const char *payload_json)
{
    return rejected(p, meta, "analytics", do_analytics(p, meta, window, payload_json));
}

int its_publish_event(its_publisher *p, const its_pub_meta *meta, const char *event_type,
                      const char *payload_json)
{
    return rejected(p, meta, "event", do_event(p, meta, event_type, payload_json));
}

int its_publish_cache(its_publisher *p, const its_pub_meta *meta, its_ttl_type type,
                      const char *name, double freshness, const char *payload_json)
{
    return rejected(p, meta, "cache", do_cache(p, meta, type, name, freshness, payload_json));
}

int its_publish_raw(its_publisher *p, const its_pub_meta *meta, const its_pub_raw *how,
                    const char *json, size_t len)
{
    return rejected(p, meta, "raw", do_raw(p, meta, how, json, len));
}

/*
 * its/publish.h - results to Redis: pub/sub, a durable event stream and a cache with
 * adaptive TTLs, plus the in-process L1 cache that the HTTP API reads.
 *
 *     its_publish_config cfg;
 *     its_publish_config_default(&cfg);
 *     cfg.host = "127.0.0.1"; cfg.port = 6379; cfg.password = getenv("ITS_REDIS_PASSWORD");
 *     its_publisher *pub;
 *     if (its_publisher_create(&cfg, metrics, l1_cache, &pub) < 0) ...
 *     its_pub_meta meta = {.camera_id = "cam-1", .frame = 42,
 *                          .capture_wall_ns = wall, .capture_mono_ns = mono};
 *     its_publish_detections(pub, &meta, dets, ndets, 1280, 720, names, n_names);  // queued
 *     its_publish_event(pub, &meta, "line_crossing", "{\"line\":\"north\",\"class\":\"car\"}");
 *     its_publish_flush(pub);                            // one pipelined round trip
 *     its_publisher_destroy(pub);
 *
 * Redis layout (docs/operations.md has the full table):
 *   PUBLISH its:cam:{id}:detections   every frame          + SET its:cam:{id}:latest EX ttl
 *   PUBLISH its:cam:{id}:analytics    every window         + SET its:cam:{id}:analytics:{window}
 *   PUBLISH its:cam:{id}:drift        model metrics        + SET its:cam:{id}:drift EX ttl
 *   PUBLISH its:events                events               + XADD its:events:stream MAXLEN ~ N
 *   SET its:cam:{id}:quality | its:cam:{id}:predictions:{short,long} | its:model:{m}:baseline
 * Every message is one compact JSON object of schema v2 (docs/messages.md), formatted with the
 * core writer (its/json.h):
 *   {"v":2,"type":"frame","camera":"cam-1","ts_us":...,"frame":42,"publish_ts_us":...,...}
 * The builders below write the envelope and their own members: its_publish_detections a
 * "frame" with "detections" (the detection object of docs/messages.md), its_publish_analytics
 * a "window" with "window" and "data", its_publish_event an "event" with "kind" and "data",
 * its_publish_cache the cache type's name with "data".
 *
 * Contract
 * - A publisher owns one Redis connection and is used by ONE thread (run one publisher per
 *   publisher thread; producers on many threads use its_publish_service, below). The its_publish_*
 * calls only format into the outbox and never touch the network; its_publish_flush sends everything
 * queued as one pipeline and reads the replies, bounded by the command timeout.
 * - While Redis is away, messages wait in a bounded outbox (messages and bytes); when it is
 *   full the OLDEST message is dropped and counted (its_publish_dropped_total{reason=
 *   "outbox_full"}), and when the outage ends (or the publisher closes) one warning gives the
 *   number lost. Messages delivered after waiting through an outage are counted as replayed
 *   (its_publish_replayed_total). Flush reconnects with exponential backoff (with jitter) and
 *   drains the outbox in order. Delivery is at least once: a message whose reply was lost
 *   with the connection is sent again. Messages still unsent when the publisher closes are
 *   dropped and counted (reason "closing").
 * - A command that Redis rejects (an error reply) is not retried: it is dropped and counted
 *   (reason "redis_error") and logged. Error replies that mean "not now" (LOADING, BUSY,
 *   TRYAGAIN, MASTERDOWN, CLUSTERDOWN, READONLY, NOAUTH) instead keep the message queued and
 *   retry after the backoff, on a new connection.
 * - Strings (camera ids, windows, event types, model names) must match [A-Za-z0-9_.-]{1,64}
 *   so that they cannot break a key; JSON payloads passed in must be JSON objects.
 * - its_publisher_create sets SIGPIPE to SIG_IGN if it is at its default (hiredis writes
 *   with write(2); a vanished Redis must give EPIPE, not kill the process).
 * - The its_cache is thread-safe (a mutex): publishers write through it, API threads read.
 */
#ifndef ITS_PUBLISH_H
#define ITS_PUBLISH_H

#include <stddef.h>
#include <stdint.h>

#include "its/config.h"
#include "its/det.h"
#include "its/metrics.h"
#include "its/redis.h"

#define ITS_PUB_ID_MAX 64

/* Cache data types and SPEC's AdaptiveTTLManager base TTLs (seconds). */
typedef enum its_ttl_type {
    ITS_TTL_LATEST = 0,        /* its:cam:{id}:latest, 300 (SPEC's default) */
    ITS_TTL_ANALYTICS,         /* its:cam:{id}:analytics:{window}, 300 (SPEC's cache ttl) */
    ITS_TTL_QUALITY_SCORES,    /* its:cam:{id}:quality, 300 */
    ITS_TTL_PREDICTIONS_SHORT, /* its:cam:{id}:predictions:short, 1800 */
    ITS_TTL_PREDICTIONS_LONG,  /* its:cam:{id}:predictions:long, 7200 */
    ITS_TTL_MODEL_BASELINES,   /* its:model:{name}:baseline, 86400 */
    ITS_TTL_COUNT
} its_ttl_type;

/* SPEC base TTL of a type (seconds). */
int its_publish_ttl_base_s(its_ttl_type type);
/*
 * SPEC's adaptive TTL: base x freshness, freshness clamped to [0, 1], at least 1 second.
 * Latest and analytics writes use freshness = 1 - age / base, where age is publish time
 * minus capture time: data that was already old when it arrived expires sooner.
 */
int its_publish_adaptive_ttl_s(int base_s, double freshness);

/* 1 if s is a valid id for keys and channels ([A-Za-z0-9_.-]{1,64}), else 0. */
int its_publish_valid_id(const char *s);

/* ---- L1 cache (+ optional Redis read-through) ------------------------------------------ */

typedef struct its_cache its_cache;

/* The defaults of its_cache_config_default and its_publish_config_default, also those of the
 * "redis.*" options below. */
#define ITS_CACHE_MAX_ENTRIES          1000 /* SPEC's LRUCache maxsize */
#define ITS_CACHE_MAX_MB               16
#define ITS_PUBLISH_HOST               "127.0.0.1"
#define ITS_PUBLISH_PORT               6379
#define ITS_PUBLISH_CONNECT_TIMEOUT_MS 200
#define ITS_PUBLISH_COMMAND_TIMEOUT_MS 100
#define ITS_PUBLISH_BACKOFF_MIN_MS     50
#define ITS_PUBLISH_BACKOFF_MAX_MS     5000
#define ITS_PUBLISH_OUTBOX_MAX_MSGS    10000
#define ITS_PUBLISH_OUTBOX_MAX_MB      32
#define ITS_PUBLISH_STREAM_MAXLEN      100000
#define ITS_PUBLISH_MAX_PIPELINE       256

typedef struct its_cache_config {
    size_t max_entries;
    size_t max_bytes; /* keys + values */
    /* Redis for read-through on an L1 miss; host NULL: L1 only. */
    const char *host;
    int port;
    const char *username, *password;
    int db;
    int connect_timeout_ms, command_timeout_ms;
    const char *sentinels, *master_name; /* through Sentinel, as its_publish_config */
} its_cache_config;

void its_cache_config_default(its_cache_config *cfg);
/* metrics may be NULL. */
int its_cache_create(const its_cache_config *cfg, its_metrics *metrics, its_cache **out);
void its_cache_destroy(its_cache *c);
/* Store a copy in L1 for ttl_s seconds (> 0), evicting least recently used entries to stay
 * within both bounds. ITS_EOVERFLOW if the entry alone exceeds max_bytes. */
int its_cache_put(its_cache *c, const char *key, const void *val, size_t len, int ttl_s);
/* L1 only. On success *val is an its_malloc'd NUL-terminated copy (ITS_MOD_PUBLISH). */
int its_cache_get_l1(its_cache *c, const char *key, char **val, size_t *len);
/* L1, then Redis (GET + PTTL in one round trip; a hit warms L1 with the remaining TTL).
 * ITS_ENOENT: nowhere; ITS_ENET: not in L1 and Redis unreachable (retried at most every
 * second, so a dead Redis costs API readers no more than one timeout per second). */
int its_cache_get(its_cache *c, const char *key, char **val, size_t *len);
void its_cache_remove(its_cache *c, const char *key);

typedef struct its_cache_stats {
    uint64_t hits_l1, hits_redis, misses, evictions, expired;
    size_t entries, bytes;
} its_cache_stats;
void its_cache_get_stats(its_cache *c, its_cache_stats *out);

/* ---- publisher ------------------------------------------------------------------------- */

typedef struct its_publisher its_publisher;

typedef struct its_publish_config {
    const char *host;
    int port;
    const char *username; /* Redis 6 ACL user; NULL: AUTH with the password alone */
    const char *password; /* NULL: no AUTH */
    int db;               /* SELECT db when non-zero */
    int connect_timeout_ms;
    int command_timeout_ms; /* bounds one flush round trip */
    int backoff_min_ms;
    int backoff_max_ms;
    size_t outbox_max_msgs;
    size_t outbox_max_bytes;
    long stream_maxlen;            /* approximate (MAXLEN ~) */
    int max_pipeline;              /* messages per round trip */
    int ttl_base_s[ITS_TTL_COUNT]; /* 0: SPEC's base */
    int observe_latency; /* 1 (default): an acknowledged frame message adds its capture-to-
                            acknowledgement time to analytics_latency_seconds */
    /* Redis Sentinel (its/redis.h): "host:port,..." asked for the master named master_name
     * (NULL: ITS_REDIS_MASTER_NAME) at every connect; NULL or "": connect to host:port */
    const char *sentinels;
    const char *master_name;
    /* > 0: every pipelined round ends with WAIT wait_replicas command_timeout_ms, and its
     * messages leave the outbox only once that many replicas have them (a failover then loses
     * nothing that was taken off the outbox); 0 (default): no WAIT */
    int wait_replicas;
} its_publish_config;

void its_publish_config_default(its_publish_config *cfg);

/* metrics and l1 may be NULL. Does not connect: the first flush does. */
int its_publisher_create(const its_publish_config *cfg, its_metrics *metrics, its_cache *l1,
                         its_publisher **out);
/* Tries one last flush (bounded by the timeouts), then closes. */
void its_publisher_destroy(its_publisher *pub);

typedef struct its_pub_meta {
    const char *camera_id;    /* may be NULL only for model baselines */
    uint64_t frame;           /* frame number within the camera */
    uint64_t capture_wall_ns; /* capture time, Unix epoch ns (goes into the message) */
    uint64_t capture_mono_ns; /* capture time, its_now_ns() base (end-to-end latency) */
} its_pub_meta;

/* Per frame: PUBLISH its:cam:{id}:detections + SET its:cam:{id}:latest (and L1). dets: n
 * detections of a width x height frame (its/det.h, source pixels); the message is a "frame"
 * whose detections are the detection object of docs/messages.md (box corners as fractions of
 * the frame, class name labels[class_id] where there is one: labels may be NULL). */
int its_publish_detections(its_publisher *pub, const its_pub_meta *meta, const its_det *dets, int n,
                           int width, int height, const char *const *labels, int n_labels);
/* Per window ("1m", "15m"): PUBLISH its:cam:{id}:analytics + SET its:cam:{id}:analytics:{w}. */
int its_publish_analytics(its_publisher *pub, const its_pub_meta *meta, const char *window,
                          const char *payload_json);
/* PUBLISH its:events + XADD its:events:stream MAXLEN ~ stream_maxlen * json <message>. */
int its_publish_event(its_publisher *pub, const its_pub_meta *meta, const char *event_type,
                      const char *payload_json);
/* Cache-only data with an adaptive TTL: type QUALITY_SCORES or PREDICTIONS_* (key from the
 * camera) or MODEL_BASELINES (key from name). freshness in [0, 1]. */
int its_publish_cache(its_publisher *pub, const its_pub_meta *meta, its_ttl_type type,
                      const char *name, double freshness, const char *payload_json);

/* A message the caller built itself (itsd's own JSON), published unchanged on the channel,
 * key, stream and TTL of its kind. It should carry the envelope of docs/messages.md (v, type,
 * camera, ts_us); it must be one JSON object (only the braces are checked) without NUL
 * bytes. */
typedef enum its_pub_kind {
    ITS_PUB_DETECTIONS = 0, /* its:cam:{id}:detections + :latest */
    ITS_PUB_ANALYTICS,      /* its:cam:{id}:analytics + :analytics:{window} */
    ITS_PUB_EVENT,          /* its:events + its:events:stream */
    ITS_PUB_DRIFT,          /* its:cam:{id}:drift, published and cached (analytics TTL) */
    ITS_PUB_CACHE,          /* SET only, key and TTL from ttl_type/name/freshness */
} its_pub_kind;

typedef struct its_pub_raw {
    its_pub_kind kind;
    const char *window;    /* ITS_PUB_ANALYTICS: "1m", "15m" */
    its_ttl_type ttl_type; /* ITS_PUB_CACHE */
    const char *name;      /* ITS_PUB_CACHE with ITS_TTL_MODEL_BASELINES: the key's name */
    double freshness;      /* ITS_PUB_CACHE: [0, 1] */
    int cache_only;        /* ITS_PUB_ANALYTICS: SET the window's key only, no PUBLISH */
} its_pub_raw;

int its_publish_raw(its_publisher *pub, const its_pub_meta *meta, const its_pub_raw *how,
                    const char *json, size_t len);

/* Send what is queued. Returns the number of messages acknowledged (>= 0), ITS_EAGAIN while
 * waiting out the reconnect backoff or when Redis said "not now" (READONLY, LOADING...), ITS_ENET
 * when the connection failed (messages stay queued), ITS_EAUTH when AUTH or SELECT was refused. */
int its_publish_flush(its_publisher *pub);
/* Flush until the outbox is empty or timeout_ms passes (sleeping through backoffs). Returns
 * the messages acknowledged, or at the deadline the last connection error (ITS_ENET,
 * ITS_EAUTH), or ITS_ETIMEDOUT. */
int its_publish_drain(its_publisher *pub, int timeout_ms);

typedef struct its_publish_stats {
    uint64_t enqueued;            /* messages accepted into the outbox */
    uint64_t sent;                /* messages acknowledged by Redis */
    uint64_t dropped_outbox;      /* oldest dropped because the outbox was full */
    uint64_t dropped_too_large;   /* one message larger than the whole outbox */
    uint64_t dropped_redis_error; /* rejected by Redis */
    uint64_t dropped_closing;     /* still unsent when the publisher closed */
    uint64_t reconnects;          /* connections made after a loss */
    uint64_t replayed;            /* of sent: acknowledged after waiting through an outage */
    uint64_t connect_failures;
    size_t outbox_msgs, outbox_bytes;
    int connected;
} its_publish_stats;

/* Any thread may read the stats (they are atomics). */
void its_publisher_get_stats(its_publisher *pub, its_publish_stats *out);

/*
 * The same outcomes per camera: each queued message remembers its camera (an index into a
 * table of up to ITS_PUB_MAX_CAMERAS ids, filled as cameras first appear; a message without a
 * camera, or of a camera beyond the table, is counted globally only). For every camera,
 * messages accepted = sent + dropped_total + still queued. With metrics, the same counters are
 * its_publish_camera_messages_total{camera}, its_publish_camera_replayed_total{camera} and
 * its_publish_camera_dropped_total{camera,reason}.
 */
#define ITS_PUB_MAX_CAMERAS 1024

typedef enum its_pub_drop {
    ITS_PUB_DROP_OUTBOX_FULL = 0, /* oldest dropped from the full outbox */
    ITS_PUB_DROP_QUEUE_FULL,      /* oldest dropped from the service's full queue */
    ITS_PUB_DROP_TOO_LARGE,       /* larger than the whole outbox */
    ITS_PUB_DROP_REDIS_ERROR,     /* rejected by Redis */
    ITS_PUB_DROP_CLOSING,         /* unsent when the publisher closed */
    ITS_PUB_DROP_COUNT
} its_pub_drop;

/* The reason's label in its_publish_dropped_total ("outbox_full", ...). */
const char *its_pub_drop_name(its_pub_drop reason);

typedef struct its_publish_camera_stats {
    uint64_t sent;     /* acknowledged by Redis */
    uint64_t replayed; /* of sent: acknowledged after waiting through an outage */
    uint64_t dropped_total;
    uint64_t dropped[ITS_PUB_DROP_COUNT];
} its_publish_camera_stats;

/* Any thread. ITS_ENOENT (and zeros) if no message of the camera was seen. */
int its_publisher_camera_stats(its_publisher *pub, const char *camera_id,
                               its_publish_camera_stats *out);

/* ---- publishing from many threads ------------------------------------------------------ */

/*
 * A publisher thread behind a bounded, thread-safe queue, for callers on several threads
 * (itsd's analytics workers):
 *
 *     its_publish_service *svc;
 *     its_publish_service_create(&cfg, NULL, metrics, l1, &svc);   // starts the thread
 *     its_pub_raw how = {.kind = ITS_PUB_DETECTIONS};
 *     its_publish_service_submit(svc, &meta, &how, json, len);     // from any thread
 *     its_publish_service_destroy(svc);                             // drains, then stops
 *
 * submit validates, copies the message into a queue slot (slots keep their capacity, so the
 * steady state does not allocate) and returns: it never waits for Redis. When the queue is
 * full the oldest queued message is dropped (its_publish_dropped_total{reason="queue_full"}).
 * The thread moves queued messages into its publisher and flushes them, pipelined; while
 * Redis is away they wait in the publisher's outbox as described above.
 */
typedef struct its_publish_service its_publish_service;

typedef struct its_publish_service_config {
    size_t queue_max_msgs; /* default 4096 */
    int idle_wait_ms;      /* thread sleep when idle, default 2 */
    int drain_timeout_ms;  /* destroy: time to deliver what is queued, default 2000 */
} its_publish_service_config;

void its_publish_service_config_default(its_publish_service_config *cfg);
/* scfg may be NULL (defaults); metrics and l1 may be NULL. */
int its_publish_service_create(const its_publish_config *cfg,
                               const its_publish_service_config *scfg, its_metrics *metrics,
                               its_cache *l1, its_publish_service **out);
/* 0, ITS_EINVAL (bad message), ITS_ENOMEM, ITS_ECLOSED (being destroyed). */
int its_publish_service_submit(its_publish_service *svc, const its_pub_meta *meta,
                               const its_pub_raw *how, const char *json, size_t len);
/* Publisher stats plus the queue's own. */
void its_publish_service_get_stats(its_publish_service *svc, its_publish_stats *pub,
                                   uint64_t *submitted, uint64_t *dropped_queue, size_t *queued);
/* Per camera, as its_publisher_camera_stats (queue_full drops included). */
int its_publish_service_camera_stats(its_publish_service *svc, const char *camera_id,
                                     its_publish_camera_stats *out);
/* Delivers what it can within drain_timeout_ms, then stops the thread and frees. */
void its_publish_service_destroy(its_publish_service *svc);

/* ---- configuration rows for a program's options table (its/config.h) ------------------- */

/* The "redis.*" section of a YAML configuration. An empty host and no sentinels mean: do
 * not publish. */
typedef struct its_publish_settings {
    char *host, *username, *password, *password_file, *sentinels, *master_name;
    int wait_replicas;
    int port, db;
    int connect_timeout_ms, command_timeout_ms, backoff_min_ms, backoff_max_ms;
    int outbox_max_msgs, outbox_max_mb, stream_maxlen, max_pipeline;
    int cache_max_entries, cache_max_mb;
} its_publish_settings;

/* Rows for a settings struct T holding an its_publish_settings member m:
 *     static const its_option tab[] = { ITS_PUBLISH_OPTIONS(itsd_settings, redis), ... };
 * The password is ITS_OPT_SECRET (printed as ITS_CONFIG_REDACTED; ITS_REDIS_PASSWORD in the
 * environment). */
#define ITS_PUBLISH_OPTIONS(T, m)                                                                  \
    ITS_OPT_STR("redis.host", T, m.host, "", 0, "Redis host; empty: do not publish"),              \
        ITS_OPT_INT("redis.port", T, m.port, ITS_STR(ITS_PUBLISH_PORT), 1, 65535, 0,               \
                    "Redis port"),                                                                 \
        ITS_OPT_STR("redis.username", T, m.username, "", 0, "Redis ACL user (Redis 6+)"),          \
        ITS_OPT_STR("redis.password", T, m.password, "", ITS_OPT_SECRET, "Redis password"),        \
        ITS_OPT_STR("redis.password_file", T, m.password_file, "", 0,                              \
                    "File holding redis.password (a mounted secret; instead of it)"),              \
        ITS_OPT_INT("redis.db", T, m.db, "0", 0, 1024, 0, "Redis database (SELECT)"),              \
        ITS_OPT_INT("redis.connect_timeout_ms", T, m.connect_timeout_ms,                           \
                    ITS_STR(ITS_PUBLISH_CONNECT_TIMEOUT_MS), 1, 60000, 0,                          \
                    "Redis connect timeout"),                                                      \
        ITS_OPT_INT("redis.command_timeout_ms", T, m.command_timeout_ms,                           \
                    ITS_STR(ITS_PUBLISH_COMMAND_TIMEOUT_MS), 1, 60000, 0,                          \
                    "Redis command timeout (bounds one pipelined round trip)"),                    \
        ITS_OPT_INT("redis.backoff_min_ms", T, m.backoff_min_ms,                                   \
                    ITS_STR(ITS_PUBLISH_BACKOFF_MIN_MS), 0, 60000, 0, "First reconnect delay"),    \
        ITS_OPT_INT("redis.backoff_max_ms", T, m.backoff_max_ms,                                   \
                    ITS_STR(ITS_PUBLISH_BACKOFF_MAX_MS), 1, 600000, 0, "Largest reconnect delay"), \
        ITS_OPT_INT("redis.outbox_max_msgs", T, m.outbox_max_msgs,                                 \
                    ITS_STR(ITS_PUBLISH_OUTBOX_MAX_MSGS), 1, 10000000, 0,                          \
                    "Messages kept while Redis is away (oldest dropped beyond)"),                  \
        ITS_OPT_INT("redis.outbox_max_mb", T, m.outbox_max_mb, ITS_STR(ITS_PUBLISH_OUTBOX_MAX_MB), \
                    1, 65536, 0, "Bytes kept while Redis is away, MiB"),                           \
        ITS_OPT_INT("redis.stream_maxlen", T, m.stream_maxlen, ITS_STR(ITS_PUBLISH_STREAM_MAXLEN), \
                    1, 1000000000, 0, "Approximate length of its:events:stream"),                  \
        ITS_OPT_INT("redis.max_pipeline", T, m.max_pipeline, ITS_STR(ITS_PUBLISH_MAX_PIPELINE), 1, \
                    65536, 0, "Messages per pipelined round trip"),                                \
        ITS_OPT_INT("redis.cache_max_entries", T, m.cache_max_entries,                             \
                    ITS_STR(ITS_CACHE_MAX_ENTRIES), 1, 16777216, 0,                                \
                    "Entries of the in-process L1 cache"),                                         \
        ITS_OPT_INT("redis.cache_max_mb", T, m.cache_max_mb, ITS_STR(ITS_CACHE_MAX_MB), 1, 65536,  \
                    0, "Bytes of the in-process L1 cache, MiB"),                                   \
        ITS_OPT_STR("redis.sentinels", T, m.sentinels, "", 0,                                      \
                    "Redis Sentinels, host:port,...: the master is asked of them (instead of "     \
                    "redis.host) and followed through a failover"),                                \
        ITS_OPT_STR("redis.master_name", T, m.master_name, ITS_REDIS_MASTER_NAME, 0,               \
                    "The Sentinels' name of the master"),                                          \
        ITS_OPT_INT("redis.wait_replicas", T, m.wait_replicas, "0", 0, 16, 0,                      \
                    "Messages leave the outbox only once this many replicas have them (WAIT)")
#define ITS_PUBLISH_N_OPTIONS 19

/* Fill the publisher and cache configurations from loaded settings (either may be NULL). The
 * configurations point into s: keep s alive while they are used. Returns 1 if Redis is
 * configured (host not empty), 0 if not. */
int its_publish_settings_apply(const its_publish_settings *s, its_publish_config *pub,
                               its_cache_config *cache);

#endif

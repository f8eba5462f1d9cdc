/*
 * its/api.h - the HTTP API (libmicrohttpd): health, readiness, /metrics, status, cameras,
 * analytics reads and JPEG frame push.
 *
 *     its_api_provider prov = {.ud = app, .ready = app_ready, .camera_list = app_list,
 *                              .camera_get = app_get, .camera_add = app_add,
 *                              .camera_remove = app_remove, .frame_push = app_push};
 *     its_api_config cfg;
 *     its_api_config_default(&cfg);            // 127.0.0.1:8080, no token
 *     cfg.token = getenv("ITS_API_TOKEN");
 *     its_api *api;
 *     if (its_api_create(&cfg, &prov, metrics, cache, &api) < 0 || its_api_start(api) < 0) ...
 *     ...
 *     its_api_destroy(api);                    // stops the server
 *
 * Endpoints (docs/operations.md has examples):
 *   GET  /healthz                     200 while the process serves
 *   GET  /readyz                      200 when provider->ready says so (and, with
 *                                     require_redis, the publisher is connected), else 503
 *   GET  /metrics                     Prometheus text format
 *   GET  /v1/status                   stage latency p50/p95/p99 vs budget, batch, queues, cameras
 *   GET  /v1/cameras                  list            POST /v1/cameras         add (JSON)
 *   GET  /v1/cameras/{id}             one camera      PUT  /v1/cameras/{id}    add or replace
 *   DELETE /v1/cameras/{id}           remove
 *   GET  /v1/cameras/{id}/analytics?window=1m         L1 cache, then Redis
 *   GET  /v1/cameras/{id}/counts.csv?from=&to=&interval=15m   interval counts (its/counts.h)
 *   GET  /v1/events[?camera=ID][&limit=N]   recent events with evidence, links to their files
 *   GET  /v1/events/{id}/snapshot.jpg, /v1/events/{id}/clip.mp4   the files (its/evidence.h);
 *                                     a Range of bytes=A-B, A- or -N is answered 206
 *                                     (Content-Range), one past the end 416
 *   POST /v1/cameras/{id}/frames      body: one JPEG (Content-Type image/jpeg)
 *   GET  /v1/cameras/{id}/snapshot.jpg[?annotate=1][&width=N]   the latest frame as a JPEG;
 *                                     annotated: boxes, track ids, classes, the scene's lines
 *                                     and zones; width: scaled down to N (16..8192) across
 *   GET  /v1/cameras/{id}/scene       the camera's analytics scene (JSON)
 *   PUT  /v1/cameras/{id}/scene       body: a scene (JSON, or YAML as in a scene file):
 *                                     validated, saved and applied from the next frame
 *   GET  /v1/cameras/{id}/events      Server-Sent Events: the camera's analytics report now
 *                                     (one "report" event, then the stream ends and the
 *                                     client reconnects after "retry" ms: the transport
 *                                     closes every connection)
 *   GET  /, /console/...              the operator console (docs/console.md), compiled in
 * Errors are JSON: {"error":{"code":"not_found","message":"..."}} with the HTTP status.
 *
 * Contract
 * - Security: binds 127.0.0.1 by default. With a token, every request needs "Authorization:
 *   Bearer <token>" (401 otherwise) except /healthz, /readyz and /metrics; with public_read,
 *   reads (GET, HEAD) need none either. its_api_start refuses (ITS_EAUTH) to bind a
 *   non-loopback address without a token. Credentials in camera URLs are never returned
 *   (its/url.h). The console's static files need no token (they hold no data; the page sends
 *   the token it is given with every API call).
 * - Starvation (src/api/server.h): a deadline per request from accept (timeout_s), connections
 *   per client address limited, and /metrics, /healthz, /readyz served from capacity of their
 *   own. Every error, also those of the transport (400, 408, 414, 431, 503, 505), is JSON.
 * - Bodies are size-limited (413 before the body is read when Content-Length says so) and
 *   validated (400 with the reason). Unknown paths 404, wrong methods 405 with Allow.
 * - Responses are written whole or not at all: a JSON body (its/json.h) grows as needed up
 *   to ITS_API_MAX_RESPONSE_MB; one that would be larger is answered 500 "internal", never
 *   cut short. Numbers that are not finite are written as null.
 * - The provider callbacks run on the API's threads, concurrently; they must be thread-safe
 *   and must not block (frame_push hands the JPEG to the pipeline or fails with ITS_EFULL;
 *   the API never waits for the pipeline), except snapshot and live, which may wait up to a
 *   second for a camera's next frame when what they hold is stale. The JPEG bytes are only
 *   valid during the call.
 * - its_api_handle is the whole request logic without the network: the server, the tests
 *   and the fuzz target all go through it.
 */
#ifndef ITS_API_H
#define ITS_API_H

#include <stddef.h>
#include <stdint.h>

#include "its/config.h"
#include "its/metrics.h"
#include "its/publish.h"

#define ITS_API_URL_MAX         1024
#define ITS_API_MAX_CAMERAS     512 /* per list response */
#define ITS_API_MAX_RESPONSE_MB 8   /* largest JSON response body */
/* "replay_frames" of a camera body: the bound of the cameras[].replay_frames option */
#define ITS_API_REPLAY_FRAMES_MAX 100000

typedef struct its_api_camera {
    char id[ITS_PUB_ID_MAX + 1];
    char url[ITS_API_URL_MAX];
    char state[16]; /* "starting" (a replay clip loading), "running", "connecting", "down",
                     * "stopped" */
    double fps;     /* measured frames per second */
    /* where its video decodes: "nvdec" or "cpu" */
    char decoder[8];
    uint64_t frames, drops;
} its_api_camera;

typedef struct its_api_camera_spec {
    const char *id;   /* validated: [A-Za-z0-9_.-]{1,64} */
    const char *url;  /* validated: 1..1023 printable characters */
    double fps;       /* 0: as the source delivers; else (0, 240] */
    const char *json; /* the whole request body (scene config and other fields), NUL-ended */
    int replace;      /* PUT: replace an existing camera instead of failing with ITS_EEXIST */
} its_api_camera_spec;

/* An event with evidence, for GET /v1/events. */
typedef struct its_api_event {
    char id[160];
    char camera[ITS_PUB_ID_MAX + 1];
    char kind[32];
    int64_t ts_us;
    char cls[16];       /* class group; "": none */
    char place_key[8];  /* "line", "zone", "lane"; "": none */
    char place[32];     /* its name */
    int direction;      /* line crossings: +1, -1; else 0 */
    int snapshot, clip; /* 1: the file is there */
    int clip_pending;   /* 1: asked for, not on disk (not written yet, or it failed) */
} its_api_event;

#define ITS_API_MAX_EVENTS   1024 /* per /v1/events response */
#define ITS_API_MAX_FILE_MB  64   /* largest evidence file served */
#define ITS_API_EVENT_ID_MAX 159

/* Every callback may be NULL: its endpoints then answer 501 (503 for readiness). */
typedef struct its_api_provider {
    void *ud;
    /* 1 ready, 0 not ready (write why into reason). */
    int (*ready)(void *ud, char *reason, size_t len);
    /* Up to max cameras into out; returns the count or a negative ITS_E*. */
    int (*camera_list)(void *ud, its_api_camera *out, int max);
    /* 0, or ITS_ENOENT. */
    int (*camera_get)(void *ud, const char *id, its_api_camera *out);
    /* 0 (created), 1 (replaced), ITS_EEXIST, ITS_EINVAL (bad config), ITS_EFULL (no room). */
    int (*camera_add)(void *ud, const its_api_camera_spec *spec);
    /* 0, or ITS_ENOENT. */
    int (*camera_remove)(void *ud, const char *id);
    /* Hand a JPEG to the pipeline without blocking: 0, ITS_ENOENT (no such camera),
     * ITS_EFULL/ITS_EBUSY (pipeline full: 429), ITS_EDECODE (not a decodable JPEG: 400). */
    int (*frame_push)(void *ud, const char *id, const uint8_t *jpeg, size_t len,
                      uint64_t received_mono_ns);
    /* The camera's interval counts, CSV rows without the header (its_counts_csv), through
     * put(ctx, ...): 0, ITS_ENOENT (no such camera, or no counts for it), or what put
     * returned. [from_ns, to_ns): wall clock, ns since the epoch. */
    int (*counts_csv)(void *ud, const char *id, int64_t from_ns, int64_t to_ns, int interval_s,
                      int (*put)(void *ctx, const char *s, size_t n), void *ctx);
    /* The newest events with evidence first, up to max; returns the count. */
    int (*events)(void *ud, its_api_event *out, int max);
    /* The path of an event's "snapshot" or "clip": 0, ITS_ENOENT (unknown, not written yet or
     * deleted by the storage limits). */
    int (*evidence_file)(void *ud, const char *id, const char *what, char *path, size_t len);
    /* The camera's latest frame as a JPEG, scaled down to width pixels across when narrower
     * than the frame (0: at its size), into *jpeg (its_malloc'd, the API frees it) and
     * *len: 0, ITS_ENOENT (no such camera), ITS_EAGAIN (no frame yet: 503). May wait for the
     * camera's next frame, up to a second. */
    int (*snapshot)(void *ud, const char *id, int annotate, int width, uint8_t **jpeg, size_t *len);
    /* The camera's scene as a JSON object into *json (its_malloc'd, NUL-ended): 0,
     * ITS_ENOENT (no such camera), ITS_EAGAIN (its analytics have not started: 503). */
    int (*scene_get)(void *ud, const char *id, char **json, size_t *len);
    /* A new scene (text as in a scene file; JSON is YAML too): 0 saved and applied, with
     * the file it went to in saved ("" where there is none); ITS_ECONFIG (invalid: why in
     * err), ITS_ENOENT, ITS_EAGAIN (as scene_get), ITS_EIO (not saved: nothing applied). */
    int (*scene_put)(void *ud, const char *id, const char *text, size_t len, char *err,
                     size_t errlen, char *saved, size_t savedlen);
    /* The camera's analytics now as one JSON object into *json (its_malloc'd, NUL-ended, no
     * newline): 0, ITS_ENOENT, ITS_EAGAIN (nothing yet: 503). May wait up to a second. */
    int (*live)(void *ud, const char *id, char **json, size_t *len);
} its_api_provider;

/* The defaults of its_api_config_default, also those of the "api.*" options below. */
#define ITS_API_BIND                   "127.0.0.1"
#define ITS_API_PORT                   8080
#define ITS_API_MAX_BODY_KB            64
#define ITS_API_MAX_FRAME_MB           8
#define ITS_API_THREADS                2
#define ITS_API_MAX_CONNECTIONS        64
#define ITS_API_TIMEOUT_S              10
#define ITS_API_MAX_CONNECTIONS_PER_IP 32

typedef struct its_api_config {
    const char *bind_addr;  /* IPv4 or IPv6 literal */
    int port;               /* 0: any free port (its_api_port tells) */
    const char *token;      /* bearer token for mutating calls; NULL or "": none */
    size_t max_body_bytes;  /* JSON bodies */
    size_t max_frame_bytes; /* JPEG bodies */
    int threads;
    int max_connections;
    int timeout_s;     /* deadline of a whole request from accept, not extended by activity */
    int require_redis; /* /readyz also needs its_redis_up == 1 (the publisher connected) */
    int public_read;   /* with a token: reads (GET) need none */
    int max_connections_per_ip; /* connections from one client address; 0: no limit */
} its_api_config;

typedef struct its_api its_api;

void its_api_config_default(its_api_config *cfg);
/* Copies cfg and *prov; metrics and cache may be NULL (then /metrics is empty and analytics
 * reads answer 503). Does not listen yet. */
int its_api_create(const its_api_config *cfg, const its_api_provider *prov, its_metrics *metrics,
                   its_cache *cache, its_api **out);
/* Bind and serve on internal threads. ITS_EAUTH: non-loopback without a token; ITS_EINVAL:
 * not an IP address; ITS_ENET: the bind failed. */
int its_api_start(its_api *api);
/* The bound port (after start), else the configured one. */
int its_api_port(const its_api *api);
/* Stops the server (waits for requests in flight) and frees. */
void its_api_destroy(its_api *api);

typedef struct its_api_request {
    const char *method;        /* "GET", ... */
    const char *path;          /* without the query */
    const char *window;        /* ?window= for analytics; NULL: "1m" */
    const char *from, *to;     /* ?from=, ?to= for counts.csv; NULL: the last 24 hours */
    const char *interval;      /* ?interval= for counts.csv; NULL: "15m" */
    const char *annotate;      /* ?annotate= for snapshots: "1" or "true" draws; NULL: no */
    const char *width;         /* ?width= for snapshots: scale down to this many pixels */
    const char *camera;        /* ?camera= for /v1/events: that camera's only; NULL: all */
    const char *limit;         /* ?limit= for /v1/events: at most this many; NULL: all */
    const char *range;         /* the Range header (evidence files: one byte range) or NULL */
    const char *authorization; /* the Authorization header or NULL */
    const char *content_type;  /* or NULL */
    const uint8_t *body;
    size_t body_len;
    int body_too_large; /* the server stopped reading: answer 413 */
} its_api_request;

typedef struct its_api_response {
    int status;
    const char *content_type;
    char *body; /* its_malloc'd (ITS_MOD_API), NUL-terminated */
    size_t len;
    const char *header_name; /* one extra header (Allow, WWW-Authenticate, Location) or NULL */
    char header_value[160];
} its_api_response;

/* The whole request logic. Always fills resp (status 500 with a JSON error when even that
 * fails for memory); returns 0, or ITS_ENOMEM when the body could not be allocated. */
int its_api_handle(its_api *api, const its_api_request *req, its_api_response *resp);
void its_api_response_free(its_api_response *resp);

/* ---- configuration rows for a program's options table (its/config.h) ------------------- */

/* The "api.*" section. The token is ITS_OPT_SECRET; ITS_API_TOKEN in the environment. */
typedef struct its_api_settings {
    char *bind, *token, *token_file;
    int port, threads, max_connections, timeout_s, max_body_kb, max_frame_mb, require_redis;
    int public_read, max_connections_per_ip;
} its_api_settings;

#define ITS_API_OPTIONS(T, m)                                                                      \
    ITS_OPT_STR("api.bind", T, m.bind, ITS_API_BIND, 0,                                            \
                "Address of the HTTP API and /metrics (non-loopback needs api.token)"),            \
        ITS_OPT_INT("api.port", T, m.port, ITS_STR(ITS_API_PORT), 0, 65535, 0,                     \
                    "HTTP API port (0: any)"),                                                     \
        ITS_OPT_STR("api.token", T, m.token, "", ITS_OPT_SECRET,                                   \
                    "Bearer token required by API calls (see api.public_read)"),                   \
        ITS_OPT_STR("api.token_file", T, m.token_file, "", 0,                                      \
                    "File holding api.token (a mounted secret; instead of api.token)"),            \
        ITS_OPT_BOOL("api.public_read", T, m.public_read, "false", 0,                              \
                     "With a token: reads need none (health and metrics never do)"),               \
        ITS_OPT_INT("api.threads", T, m.threads, ITS_STR(ITS_API_THREADS), 1, 64, 0,               \
                    "HTTP server threads"),                                                        \
        ITS_OPT_INT("api.max_connections", T, m.max_connections, ITS_STR(ITS_API_MAX_CONNECTIONS), \
                    1, 100000, 0, "API requests served at a time (503 beyond)"),                   \
        ITS_OPT_INT("api.max_connections_per_ip", T, m.max_connections_per_ip,                     \
                    ITS_STR(ITS_API_MAX_CONNECTIONS_PER_IP), 0, 100000, 0,                         \
                    "Connections from one client address (0: no limit)"),                          \
        ITS_OPT_INT("api.timeout_s", T, m.timeout_s, ITS_STR(ITS_API_TIMEOUT_S), 1, 3600, 0,       \
                    "Deadline of a whole request from accept (not extended by activity)"),         \
        ITS_OPT_INT("api.max_body_kb", T, m.max_body_kb, ITS_STR(ITS_API_MAX_BODY_KB), 1, 65536,   \
                    0, "Largest JSON request body, KiB"),                                          \
        ITS_OPT_INT("api.max_frame_mb", T, m.max_frame_mb, ITS_STR(ITS_API_MAX_FRAME_MB), 1, 1024, \
                    0, "Largest pushed JPEG, MiB"),                                                \
        ITS_OPT_BOOL("api.require_redis", T, m.require_redis, "false", 0,                          \
                     "/readyz fails while Redis is unreachable")
#define ITS_API_N_OPTIONS 12

/* Fill an its_api_config from loaded settings; it points into s. */
void its_api_settings_apply(const its_api_settings *s, its_api_config *cfg);

#endif

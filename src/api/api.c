/*
 * The request logic of the HTTP API, independent of the network: its_api_handle takes a
 * parsed request and produces a response. Everything here runs on the server's threads;
 * nothing waits for the pipeline (the provider callbacks are non-blocking by contract, the
 * metrics are atomics, the cache is a short mutex or one bounded Redis round trip).
 * Responses are written with the JSON writer of its/json.h; jansson only parses request bodies.
 */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_impl.h"
#include "its/core.h"
#include "its/counts.h"
#include "its/json.h"
#include "its/stage.h"
#include "server.h"

struct its_api {
    its_api_config cfg;
    char *bind_addr, *token;
    size_t token_len;
    its_api_provider prov;
    its_metrics *metrics;
    its_cache *cache;
    uint64_t started_ns;
    its__http_server *server; /* while started */
    int bound_port;
};

void its_api_config_default(its_api_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->bind_addr = ITS_API_BIND;
    cfg->port = ITS_API_PORT;
    cfg->max_body_bytes = (size_t)ITS_API_MAX_BODY_KB << 10;
    cfg->max_frame_bytes = (size_t)ITS_API_MAX_FRAME_MB << 20;
    cfg->threads = ITS_API_THREADS;
    cfg->max_connections = ITS_API_MAX_CONNECTIONS;
    cfg->timeout_s = ITS_API_TIMEOUT_S;
    cfg->max_connections_per_ip = ITS_API_MAX_CONNECTIONS_PER_IP;
}

int its_api_create(const its_api_config *cfg, const its_api_provider *prov, its_metrics *metrics,
                   its_cache *cache, its_api **out)
{
    its_api_config def;
    if (!cfg) {
        its_api_config_default(&def);
        cfg = &def;
    }
    if (!out || !cfg->bind_addr || cfg->port < 0 || cfg->port > 65535 || cfg->threads < 1 ||
        cfg->threads > 64 || cfg->max_body_bytes == 0 || cfg->max_frame_bytes == 0 ||
        cfg->max_connections < 1 || cfg->timeout_s < 0 || cfg->max_connections_per_ip < 0)
        return ITS_EINVAL;
    its_api *api = its_calloc(ITS_MOD_API, 1, sizeof *api);
    if (!api)
        return ITS_ENOMEM;
    api->cfg = *cfg;
    api->bind_addr = its_strdup(ITS_MOD_API, cfg->bind_addr);
    if (cfg->token && cfg->token[0]) {
        api->token = its_strdup(ITS_MOD_API, cfg->token);
        api->token_len = strlen(cfg->token);
    }
    if (!api->bind_addr || (cfg->token && cfg->token[0] && !api->token)) {
        its_api_destroy(api);
        return ITS_ENOMEM;
    }
    api->cfg.bind_addr = api->bind_addr;
    api->cfg.token = api->token;
    if (prov)
        api->prov = *prov;
    api->metrics = metrics;
    api->cache = cache;
    api->started_ns = its_now_ns();
    api->bound_port = cfg->port;
    *out = api;
    return 0;
}

void its_api_destroy(its_api *api)
{
    if (!api)
        return;
    its__http_stop(api->server);
    its_free(api->bind_addr);
    its_free(api->token);
    its_free(api);
}

int its_api_port(const its_api *api)
{
    return api ? api->bound_port : -1;
}

size_t its__api_body_limit(const its_api *api, const char *method, const char *path)
{
    char id[ITS_PUB_ID_MAX + 1];
    int bad;
    api_route r = its__api_route(path, id, sizeof id, &bad);
    if (!method || !strcmp(method, "GET") || !strcmp(method, "HEAD") || !strcmp(method, "DELETE"))
        return 0;
    if (r == R_FRAMES)
        return api->cfg.max_frame_bytes;
    return api->cfg.max_body_bytes;
}

/* ---- the HTTP transport's handler (server.h) ------------------------------------------- */

static size_t http_body_limit(void *ud, const char *method, const char *path)
{
    return its__api_body_limit(ud, method, path);
}

static void http_handle(void *ud, its__http_request *hr)
{
    its_api_request req = {
        .method = hr->method,
        .path = hr->path,
        .window = its__http_arg(hr, "window"),
        .from = its__http_arg(hr, "from"),
        .to = its__http_arg(hr, "to"),
        .interval = its__http_arg(hr, "interval"),
        .annotate = its__http_arg(hr, "annotate"),
        .width = its__http_arg(hr, "width"),
        .camera = its__http_arg(hr, "camera"),
        .limit = its__http_arg(hr, "limit"),
        .range = its__http_header(hr, "Range"),
        .authorization = its__http_header(hr, "Authorization"),
        .content_type = its__http_header(hr, "Content-Type"),
        .body = hr->body,
        .body_len = hr->body_len,
        .body_too_large = hr->body_too_large,
    };
    its_api_response resp;
    its_api_handle(ud, &req, &resp);
    its__http_reply reply = {.status = resp.status,
                             .content_type = resp.content_type,
                             .body = resp.body,
                             .len = resp.len,
                             .header_name = resp.header_name,
                             .header_value = resp.header_value};
    its__http_respond(hr, &reply);
    its_api_response_free(&resp);
}

/* Served from capacity of their own: answered while the API's connections are exhausted. */
static const char *const monitoring_paths[] = {"/metrics", "/healthz", "/readyz", NULL};

static void count_request(its_api *api, api_route r, int status);

/* The transport answered by itself (a bad or late request head, no capacity). */
static void http_rejected(void *ud, int status)
{
    count_request(ud, R_NOT_FOUND, status);
}

int its_api_start(its_api *api)
{
    if (!api)
        return ITS_EINVAL;
    if (api->server)
        return ITS_EBUSY;
    its__http_config hc = {.bind_addr = api->cfg.bind_addr,
                           .port = api->cfg.port,
                           .loopback_only = !api->cfg.token,
                           .threads = api->cfg.threads,
                           .max_connections = api->cfg.max_connections,
                           .timeout_s = api->cfg.timeout_s,
                           .per_ip_limit = api->cfg.max_connections_per_ip,
                           .reserved_paths = monitoring_paths};
    its__http_handler h = {
        .ud = api, .body_limit = http_body_limit, .handle = http_handle, .rejected = http_rejected};
    int rc = its__http_start(&hc, &h, &api->server);
    if (rc == ITS_EAUTH)
        its_loge("api", NULL,
                 "refusing to serve on %s without an API token: set one, or bind 127.0.0.1",
                 api->cfg.bind_addr);
    if (rc < 0)
        return rc;
    api->bound_port = its__http_port(api->server);
    int v6 = strchr(api->cfg.bind_addr, ':') != NULL;
    its_logi("api", NULL, "serving http://%s%s%s:%d/ (%s)", v6 ? "[" : "", api->cfg.bind_addr,
             v6 ? "]" : "", api->bound_port,
             !api->cfg.token        ? "no token: loopback only"
             : api->cfg.public_read ? "token required for changes"
                                    : "token required for every request but health and metrics");
    return 0;
}

/* ---- responses ------------------------------------------------------------------------- */

/* Writes one whole JSON document into w; called again from the start when it did not fit. */
typedef void (*body_fn)(its_json *w, const void *ctx);

static int set_body(its_api_response *resp, const char *text, size_t len)
{
    its_free(resp->body);
    resp->body = its_malloc(ITS_MOD_API, len + 1);
    if (!resp->body) {
        resp->len = 0;
        return ITS_ENOMEM;
    }
    memcpy(resp->body, text, len);
    resp->body[len] = 0;
    resp->len = len;
    return 0;
}

/* The body written by fn: first into a buffer on the stack (then copied out at its size),
 * then, when that is too small, into heap buffers of twice the size each time, up to
 * ITS_API_MAX_RESPONSE_MB. 0, ITS_ENOMEM, ITS_EOVERFLOW (larger than that) or ITS_EINVAL
 * (fn left a container open). */
static int write_body(its_api_response *resp, body_fn fn, const void *ctx)
{
    char first[4096];
    its_json w;
    its_json_init(&w, first, sizeof first);
    fn(&w, ctx);
    int n = its_json_finish(&w);
    if (n >= 0)
        return set_body(resp, first, (size_t)n);
    for (size_t cap = 2 * sizeof first;
         n == ITS_EOVERFLOW && cap <= (size_t)ITS_API_MAX_RESPONSE_MB << 20; cap *= 2) {
        char *buf = its_malloc(ITS_MOD_API, cap);
        if (!buf)
            return ITS_ENOMEM;
        its_json_init(&w, buf, cap);
        fn(&w, ctx);
        n = its_json_finish(&w);
        if (n >= 0) {
            its_free(resp->body);
            resp->body = buf;
            resp->len = (size_t)n;
            return 0;
        }
        its_free(buf);
    }
    return n;
}

struct error_doc {
    const char *code, *message;
};

static void error_body(its_json *w, const void *ctx)
{
    const struct error_doc *e = ctx;
    its_json_obj_begin(w);
    its_json_key(w, "error");
    its_json_obj_begin(w);
    its_json_kstr(w, "code", e->code);
    its_json_kstr(w, "message", e->message);
    its_json_obj_end(w);
    its_json_obj_end(w);
}

static int reply_error(its_api_response *resp, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int reply_error(its_api_response *resp, int status, const char *code, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct error_doc e = {code, msg};
    resp->status = status;
    resp->content_type = "application/json";
    int rc = write_body(resp, error_body, &e);
    if (rc < 0) { /* only for memory: the document is a few hundred bytes */
        resp->status = 500;
        its_free(resp->body);
        resp->body = NULL;
        resp->len = 0;
    }
    return rc;
}

/* The document fn writes, or a 500 error when it cannot be written. */
static int reply_json(its_api_response *resp, int status, body_fn fn, const void *ctx)
{
    int rc = write_body(resp, fn, ctx);
    if (rc == 0) {
        resp->status = status;
        resp->content_type = "application/json";
        return 0;
    }
    if (rc == ITS_EOVERFLOW) {
        its_logw("api", NULL, "a %d response is larger than %d MiB: answered 500", status,
                 ITS_API_MAX_RESPONSE_MB);
        return reply_error(resp, 500, "internal", "response larger than %d MiB",
                           ITS_API_MAX_RESPONSE_MB);
    }
    int erc = reply_error(resp, 500, "internal", "%s", its_strerror(rc));
    return rc == ITS_ENOMEM ? rc : erc;
}

/* Maps a provider's ITS_E* code to an HTTP error. */
static int reply_code(its_api_response *resp, int rc, const char *what)
{
    switch (rc) {
    case ITS_ENOENT:
        return reply_error(resp, 404, "not_found", "%s: not found", what);
    case ITS_EEXIST:
        return reply_error(resp, 409, "conflict", "%s: already exists", what);
    case ITS_EINVAL:
    case ITS_ECONFIG:
        return reply_error(resp, 400, "bad_request", "%s: invalid", what);
    case ITS_EDECODE:
        return reply_error(resp, 400, "bad_image", "%s: not a decodable JPEG", what);
    case ITS_EFULL:
    case ITS_EBUSY:
    case ITS_EAGAIN:
        return reply_error(resp, 429, "busy", "%s: pipeline full, retry later", what);
    default:
        return reply_error(resp, 500, "internal", "%s: %s", what, its_strerror(rc));
    }
}

static int not_implemented(its_api_response *resp)
{
    return reply_error(resp, 501, "not_implemented", "not available in this service");
}

/* {"id":id,"result":result} and, with bytes >= 0, "bytes":bytes: the answer to a change. */
struct result_doc {
    const char *id, *result;
    long long bytes;
};

static void result_body(its_json *w, const void *ctx)
{
    const struct result_doc *r = ctx;
    its_json_obj_begin(w);
    its_json_kstr(w, "id", r->id);
    its_json_kstr(w, "result", r->result);
    if (r->bytes >= 0)
        its_json_kint(w, "bytes", r->bytes);
    its_json_obj_end(w);
}

static int reply_result(its_api_response *resp, int status, const char *id, const char *result,
                        long long bytes)
{
    struct result_doc r = {id, result, bytes};
    return reply_json(resp, status, result_body, &r);
}

/* ---- auth ------------------------------------------------------------------------------ */

static int is_mutating(const char *m)
{
    return strcmp(m, "GET") && strcmp(m, "HEAD");
}

/* With a token, every request needs it except the monitoring endpoints (probes and
 * Prometheus; they carry no secret), the console's static files and, with public_read, the
 * reads. */
static int needs_token(const its_api *api, const char *m, api_route r)
{
    if (!api->token || r == R_HEALTHZ || r == R_READYZ || r == R_METRICS || r == R_CONSOLE)
        return 0;
    return is_mutating(m) || !api->cfg.public_read;
}

/* Constant-time in the token's content (the length is not a secret worth hiding). */
static int token_ok(const its_api *api, const char *authz)
{
    if (!api->token)
        return 1;
    if (!authz || strncmp(authz, "Bearer ", 7))
        return 0;
    const char *t = authz + 7;
    size_t n = strlen(t);
    unsigned char diff = n != api->token_len;
    for (size_t i = 0; i < api->token_len; i++)
        diff |= (unsigned char)(api->token[i] ^ (i < n ? t[i] : 0));
    return diff == 0;
}

/* ---- handlers -------------------------------------------------------------------------- */

static void healthz_body(its_json *w, const void *ctx)
{
    (void)ctx;
    its_json_obj_begin(w);
    its_json_kstr(w, "status", "ok");
    its_json_obj_end(w);
}

static void camera_body(its_json *w, const its_api_camera *c)
{
    char shown[ITS_URL_SHOWN_MAX];
    its_url_scrub(c->url, shown, sizeof shown); /* credentials never leave the service */
    its_json_obj_begin(w);
    its_json_kstr(w, "id", c->id);
    its_json_kstr(w, "url", shown);
    its_json_kstr(w, "state", c->state);
    its_json_knum(w, "fps", isfinite(c->fps) ? c->fps : 0.0);
    if (c->decoder[0])
        its_json_kstr(w, "decoder", c->decoder);
    its_json_kuint(w, "frames", c->frames);
    its_json_kuint(w, "drops", c->drops);
    its_json_obj_end(w);
}

static void camera_one_body(its_json *w, const void *ctx)
{
    camera_body(w, ctx);
}

static int h_metrics(its_api *api, its_api_response *resp)
{
    resp->status = 200;
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    if (!api->metrics)
        return set_body(resp, "", 0);
    char *text = NULL;
    size_t len = 0;
    int rc = its_metrics_render(api->metrics, &text, &len);
    if (rc < 0)
        return reply_error(resp, 500, "internal", "metrics: %s", its_strerror(rc));
    its_free(resp->body);
    resp->body = text;
    resp->len = len;
    return 0;
}

/* A count held in a double (a counter's or a gauge's value): every integer digit. */
static void kcount(its_json *w, const char *key, double v)
{
    its_json_key(w, key);
    its_json_numg(w, v, 15);
}

/* A latency quantile in seconds as milliseconds; NaN (no samples): null. */
static void kms(its_json *w, const char *key, double seconds)
{
    its_json_knum(w, key, seconds * 1000.0);
}

static int stage_row(void *ud, const its_metric *m, const char *const *values)
{
    its_json *w = ud;
    int stage = its_stage_find(values[0]);
    double budget = stage >= 0 ? its_stage_budget_ms((its_stage)stage) : -1;
    double p99 = its_metric_quantile(m, 0.99);
    its_json_obj_begin(w);
    its_json_kstr(w, "stage", values[0]);
    kms(w, "p50_ms", its_metric_quantile(m, 0.5));
    kms(w, "p95_ms", its_metric_quantile(m, 0.95));
    kms(w, "p99_ms", p99);
    its_json_kuint(w, "count", its_metric_count(m));
    if (budget >= 0)
        its_json_knum(w, "budget_ms", budget);
    else
        its_json_knull(w, "budget_ms");
    its_json_kbool(w, "over_budget", budget >= 0 && !isnan(p99) && p99 * 1000.0 > budget);
    its_json_obj_end(w);
    return 0;
}

static int gauge_row(void *ud, const its_metric *m, const char *const *values)
{
    kcount(ud, values[0], its_metric_value(m));
    return 0;
}

/* Per camera: fps, frames, drops (summed over reasons), in the order the cameras first
 * appear. name points into the registry's series, which live as long as the registry. */
struct cam_sum {
    const char *name;
    double fps, frames, drops;
};

struct cam_sums {
    struct cam_sum *v;
    int n, cap;
    int failed; /* out of memory: the table is incomplete */
};

static struct cam_sum *cam_sum_at(struct cam_sums *t, const char *name)
{
    for (int i = 0; i < t->n; i++)
        if (!strcmp(t->v[i].name, name))
            return &t->v[i];
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 16;
        struct cam_sum *v = its_realloc(ITS_MOD_API, t->v, (size_t)cap * sizeof *v);
        if (!v) {
            t->failed = 1;
            return NULL;
        }
        t->v = v;
        t->cap = cap;
    }
    t->v[t->n] = (struct cam_sum){.name = name};
    return &t->v[t->n++];
}

static int cam_fps(void *ud, const its_metric *m, const char *const *v)
{
    struct cam_sum *c = cam_sum_at(ud, v[0]);
    if (c)
        c->fps = its_metric_value(m);
    return !c;
}

static int cam_frames(void *ud, const its_metric *m, const char *const *v)
{
    struct cam_sum *c = cam_sum_at(ud, v[0]);
    if (c)
        c->frames = its_metric_value(m);
    return !c;
}

static int cam_drops(void *ud, const its_metric *m, const char *const *v)
{
    struct cam_sum *c = cam_sum_at(ud, v[0]);
    if (c)
        c->drops += its_metric_value(m);
    return !c;
}

static double std_value(its_metrics *reg, its_metric_id id)
{
    return its_metric_value(its_metrics_series(its_metrics_std(reg, id), NULL));
}

struct status_doc {
    const its_api *api;
    const struct cam_sums *cams;
};

static void status_body(its_json *w, const void *ctx)
{
    const struct status_doc *d = ctx;
    its_metrics *reg = d->api->metrics;
    its_json_obj_begin(w);
    its_json_kstr(w, "version", ITS_VERSION);
    its_json_kfixed(w, "uptime_s", (double)(its_now_ns() - d->api->started_ns) / 1e9, 3);
    if (its_json_replica()[0]) /* cluster.enabled: which replica this is */
        its_json_kstr(w, "replica", its_json_replica());
    if (reg) {
        its_metric *e2e = its_metrics_series(its_metrics_std(reg, ITS_M_LATENCY), NULL);
        double p99 = its_metric_quantile(e2e, 0.99),
               e2e_budget = its_stage_budget_ms(ITS_STAGE_TOTAL);
        its_json_key(w, "end_to_end");
        its_json_obj_begin(w);
        kms(w, "p50_ms", its_metric_quantile(e2e, 0.5));
        kms(w, "p95_ms", its_metric_quantile(e2e, 0.95));
        kms(w, "p99_ms", p99);
        its_json_knum(w, "budget_ms", e2e_budget);
        its_json_kuint(w, "count", its_metric_count(e2e));
        its_json_kbool(w, "over_budget", !isnan(p99) && p99 * 1000.0 > e2e_budget);
        its_json_obj_end(w);

        its_json_key(w, "stages");
        its_json_arr_begin(w);
        its_metrics_each(its_metrics_std(reg, ITS_M_STAGE_LATENCY), stage_row, w);
        its_json_arr_end(w);

        its_metric *bs = its_metrics_series(its_metrics_std(reg, ITS_M_BATCH_SIZE), NULL);
        uint64_t n = its_metric_count(bs);
        its_json_key(w, "batch_size");
        its_json_obj_begin(w);
        its_json_knum(w, "mean", n ? its_metric_sum(bs) / (double)n : NAN);
        its_json_knum(w, "p50", its_metric_quantile(bs, 0.5));
        its_json_knum(w, "p95", its_metric_quantile(bs, 0.95));
        its_json_kuint(w, "batches", n);
        its_json_obj_end(w);

        its_json_key(w, "queue_depth");
        its_json_obj_begin(w);
        its_metrics_each(its_metrics_std(reg, ITS_M_QUEUE_DEPTH), gauge_row, w);
        its_json_obj_end(w);

        its_json_key(w, "cameras");
        its_json_obj_begin(w);
        for (int i = 0; i < d->cams->n; i++) {
            const struct cam_sum *c = &d->cams->v[i];
            its_json_key(w, c->name);
            its_json_obj_begin(w);
            its_json_knum(w, "fps", c->fps);
            kcount(w, "frames", c->frames);
            kcount(w, "drops", c->drops);
            its_json_obj_end(w);
        }
        its_json_obj_end(w);

        its_scaling_inputs si;
        int decision;
        if (its_metrics_scaling_last(reg, &si, &decision) == 0) {
            its_json_key(w, "scaling");
            its_json_obj_begin(w);
            its_json_kint(w, "recommendation", decision);
            its_json_knum(w, "gpu_utilization", si.gpu_utilization);
            its_json_knum(w, "queue_depth", si.queue_depth);
            its_json_knum(w, "latency_p99_s", si.latency_p99_s);
            its_json_knum(w, "error_rate", si.error_rate);
            its_json_knum(w, "cpu_utilization", si.cpu_utilization);
            its_json_obj_end(w);
        }

        its_json_key(w, "redis");
        its_json_obj_begin(w);
        its_json_kbool(w, "up", std_value(reg, ITS_M_REDIS_UP) > 0);
        kcount(w, "outbox_messages", std_value(reg, ITS_M_PUB_OUTBOX));
        kcount(w, "reconnects", std_value(reg, ITS_M_PUB_RECONNECTS));
        its_json_obj_end(w);
    }
    its_json_obj_end(w);
}

static int h_status(its_api *api, its_api_response *resp)
{
    struct cam_sums cams = {0};
    its_metrics *reg = api->metrics;
    if (reg) {
        its_metrics_each(its_metrics_std(reg, ITS_M_CAMERA_FPS), cam_fps, &cams);
        its_metrics_each(its_metrics_std(reg, ITS_M_FRAMES), cam_frames, &cams);
        its_metrics_each(its_metrics_std(reg, ITS_M_FRAMES_DROPPED), cam_drops, &cams);
    }
    struct status_doc d = {api, &cams};
    int rc = cams.failed ? reply_error(resp, 500, "internal", "out of memory")
                         : reply_json(resp, 200, status_body, &d);
    its_free(cams.v);
    return rc;
}

struct ready_doc {
    int ready;
    const char *reason;
};

static void ready_body(its_json *w, const void *ctx)
{
    const struct ready_doc *r = ctx;
    its_json_obj_begin(w);
    its_json_kbool(w, "ready", r->ready);
    if (!r->ready)
        its_json_kstr(w, "reason", r->reason);
    its_json_obj_end(w);
}

static int h_ready(its_api *api, its_api_response *resp)
{
    char reason[256] = "no pipeline attached";
    int ready = api->prov.ready ? api->prov.ready(api->prov.ud, reason, sizeof reason) : 0;
    if (ready > 0 && api->cfg.require_redis &&
        !(api->metrics && std_value(api->metrics, ITS_M_REDIS_UP) > 0)) {
        snprintf(reason, sizeof reason, "Redis unreachable");
        ready = 0;
    }
    reason[sizeof reason - 1] = 0;
    struct ready_doc r = {ready > 0, reason};
    return reply_json(resp, ready > 0 ? 200 : 503, ready_body, &r);
}

struct list_doc {
    const its_api_camera *cams;
    int n, count;
};

static void list_body(its_json *w, const void *ctx)
{
    const struct list_doc *l = ctx;
    its_json_obj_begin(w);
    its_json_key(w, "cameras");
    its_json_arr_begin(w);
    for (int i = 0; i < l->n; i++)
        camera_body(w, &l->cams[i]);
    its_json_arr_end(w);
    its_json_kint(w, "count", l->count);
    its_json_obj_end(w);
}

static int h_list(its_api *api, its_api_response *resp)
{
    if (!api->prov.camera_list)
        return not_implemented(resp);
    its_api_camera *cams = its_calloc(ITS_MOD_API, ITS_API_MAX_CAMERAS, sizeof *cams);
    if (!cams)
        return reply_error(resp, 500, "internal", "out of memory");
    int n = api->prov.camera_list(api->prov.ud, cams, ITS_API_MAX_CAMERAS);
    if (n < 0) {
        its_free(cams);
        return reply_code(resp, n, "cameras");
    }
    struct list_doc l = {cams, n < ITS_API_MAX_CAMERAS ? n : ITS_API_MAX_CAMERAS, n};
    for (int i = 0; i < l.n; i++) {
        cams[i].id[sizeof cams[i].id - 1] = 0;
        cams[i].url[sizeof cams[i].url - 1] = 0;
        cams[i].state[sizeof cams[i].state - 1] = 0;
    }
    int rc = reply_json(resp, 200, list_body, &l);
    its_free(cams);
    return rc;
}

static int h_get(its_api *api, const char *id, its_api_response *resp)
{
    if (!api->prov.camera_get)
        return not_implemented(resp);
    its_api_camera *c = its_calloc(ITS_MOD_API, 1, sizeof *c);
    if (!c)
        return reply_error(resp, 500, "internal", "out of memory");
    int rc = api->prov.camera_get(api->prov.ud, id, c);
    if (rc < 0) {
        its_free(c);
        return reply_code(resp, rc, id);
    }
    c->id[sizeof c->id - 1] = c->url[sizeof c->url - 1] = c->state[sizeof c->state - 1] = 0;
    rc = reply_json(resp, 200, camera_one_body, c);
    its_free(c);
    return rc;
}

static int printable(const char *s, size_t max)
{
    size_t n = 0;
    for (; s[n]; n++)
        if ((unsigned char)s[n] < 0x20 || s[n] == 0x7f || n >= max)
            return 0;
    return n > 0;
}

/* The optional fields of a camera body, each checked for type and range: a value out of
 * range is refused (400), never clamped or cut. 0, or the reply_error code with resp set. */
static int check_options(json_t *j, its_api_response *resp)
{
    json_t *v = json_object_get(j, "replay_frames");
    if (v && (!json_is_integer(v) || json_integer_value(v) < 0 ||
              json_integer_value(v) > ITS_API_REPLAY_FRAMES_MAX))
        return reply_error(resp, 400, "bad_request",
                           "\"replay_frames\" must be an integer in [0, %d]",
                           ITS_API_REPLAY_FRAMES_MAX);
    v = json_object_get(j, "loop");
    if (v && !json_is_boolean(v))
        return reply_error(resp, 400, "bad_request", "\"loop\" must be true or false");
    v = json_object_get(j, "kind");
    if (v && (!json_is_string(v) || !printable(json_string_value(v), 15)))
        return reply_error(resp, 400, "bad_request",
                           "\"kind\" must be a string of 1 to 15 characters");
    v = json_object_get(j, "rtsp_transport");
    if (v && (!json_is_string(v) ||
              (strcmp(json_string_value(v), "tcp") && strcmp(json_string_value(v), "udp"))))
        return reply_error(resp, 400, "bad_request",
                           "\"rtsp_transport\" must be \"tcp\" or \"udp\"");
    v = json_object_get(j, "scene");
    if (v && (!json_is_string(v) || !printable(json_string_value(v), 511)))
        return reply_error(resp, 400, "bad_request",
                           "\"scene\" must be a string of 1 to 511 printable characters");
    return 0;
}

/* POST /v1/cameras (id in the body) or PUT /v1/cameras/{id}. */
static int h_add(its_api *api, const its_api_request *req, const char *path_id,
                 its_api_response *resp)
{
    if (!api->prov.camera_add)
        return not_implemented(resp);
    if (!req->content_type || strncmp(req->content_type, "application/json", 16))
        return reply_error(resp, 415, "unsupported_media_type",
                           "camera configuration must be application/json");
    json_error_t err;
    json_t *j = json_loadb((const char *)req->body, req->body_len, JSON_REJECT_DUPLICATES, &err);
    if (!j)
        return reply_error(resp, 400, "bad_json", "line %d column %d: %s", err.line, err.column,
                           err.text);
    if (!json_is_object(j)) {
        json_decref(j);
        return reply_error(resp, 400, "bad_request", "body must be a JSON object");
    }
    json_t *jid = json_object_get(j, "id"), *jurl = json_object_get(j, "url"),
           *jfps = json_object_get(j, "fps");
    const char *id = path_id;
    int rc = 0;
    if (jid && !json_is_string(jid))
        rc = reply_error(resp, 400, "bad_request", "\"id\" must be a string");
    else if (!path_id && !jid)
        rc = reply_error(resp, 400, "bad_request", "\"id\" is required");
    else if (jid && !its_publish_valid_id(json_string_value(jid)))
        rc = reply_error(resp, 400, "bad_request", "\"id\" must match [A-Za-z0-9_.-]{1,64}");
    else if (path_id && jid && strcmp(path_id, json_string_value(jid)))
        rc = reply_error(resp, 400, "bad_request", "\"id\" differs from the path");
    else if (!json_is_string(jurl) || !printable(json_string_value(jurl), ITS_API_URL_MAX - 1))
        rc = reply_error(resp, 400, "bad_request",
                         "\"url\" is required: a string of 1 to %d printable characters",
                         ITS_API_URL_MAX - 1);
    else if (jfps && (!json_is_number(jfps) || !(json_number_value(jfps) > 0) ||
                      json_number_value(jfps) > 240))
        rc = reply_error(resp, 400, "bad_request", "\"fps\" must be a number in (0, 240]");
    else
        rc = check_options(j, resp);
    if (resp->status) {
        json_decref(j);
        return rc;
    }
    if (!id)
        id = json_string_value(jid);
    char idcopy[ITS_PUB_ID_MAX + 1];
    snprintf(idcopy, sizeof idcopy, "%s", id);
    /* The provider gets the body as a NUL-terminated string. */
    char *text = its_malloc(ITS_MOD_API, req->body_len + 1);
    if (!text) {
        json_decref(j);
        return reply_error(resp, 500, "internal", "out of memory");
    }
    memcpy(text, req->body, req->body_len);
    text[req->body_len] = 0;
    its_api_camera_spec spec = {idcopy, json_string_value(jurl), jfps ? json_number_value(jfps) : 0,
                                text, path_id != NULL};
    rc = api->prov.camera_add(api->prov.ud, &spec);
    its_free(text);
    json_decref(j);
    if (rc < 0)
        return reply_code(resp, rc, idcopy);
    resp->header_name = "Location";
    snprintf(resp->header_value, sizeof resp->header_value, "/v1/cameras/%s", idcopy);
    return reply_result(resp, rc == 1 ? 200 : 201, idcopy, rc == 1 ? "replaced" : "created", -1);
}

static int h_remove(its_api *api, const char *id, its_api_response *resp)
{
    if (!api->prov.camera_remove)
        return not_implemented(resp);
    int rc = api->prov.camera_remove(api->prov.ud, id);
    if (rc < 0)
        return reply_code(resp, rc, id);
    return reply_result(resp, 200, id, "removed", -1);
}

static int h_analytics(its_api *api, const its_api_request *req, const char *id,
                       its_api_response *resp)
{
    const char *window = req->window ? req->window : "1m";
    if (!its_publish_valid_id(window))
        return reply_error(resp, 400, "bad_request", "window must match [A-Za-z0-9_.-]{1,64}");
    if (api->prov.camera_get) {
        its_api_camera *c = its_calloc(ITS_MOD_API, 1, sizeof *c);
        if (!c)
            return reply_error(resp, 500, "internal", "out of memory");
        int rc = api->prov.camera_get(api->prov.ud, id, c);
        its_free(c);
        if (rc < 0)
            return reply_code(resp, rc, id);
    }
    if (!api->cache)
        return reply_error(resp, 503, "unavailable", "no analytics cache configured");
    char key[256];
    snprintf(key, sizeof key, "its:cam:%s:analytics:%s", id, window);
    char *val = NULL;
    size_t len = 0;
    int rc = its_cache_get(api->cache, key, &val, &len);
    if (rc == ITS_ENOENT)
        return reply_error(resp, 404, "not_found", "no %s analytics for %s yet", window, id);
    if (rc == ITS_ENET)
        return reply_error(resp, 503, "unavailable", "analytics cache (Redis) unreachable");
    if (rc < 0)
        return reply_error(resp, 500, "internal", "cache: %s", its_strerror(rc));
    its_free(resp->body);
    resp->status = 200;
    resp->content_type = "application/json";
    resp->body = val;
    resp->len = len;
    return 0;
}

/* A growing body for counts.csv, up to ITS_API_MAX_RESPONSE_MB. */
typedef struct csv_body {
    char *buf;
    size_t len, cap;
} csv_body;

static int csv_put(void *ctx, const char *s, size_t n)
{
    csv_body *b = ctx;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 16384;
        while (cap < b->len + n + 1)
            cap *= 2;
        if (cap > ((size_t)ITS_API_MAX_RESPONSE_MB << 20))
            return ITS_EOVERFLOW;
        char *nb = its_realloc(ITS_MOD_API, b->buf, cap);
        if (!nb)
            return ITS_ENOMEM;
        b->buf = nb;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = 0;
    return 0;
}

/* GET /v1/cameras/{id}/counts.csv?from=&to=&interval=: the header, then the rows. */
static int h_counts(its_api *api, const its_api_request *req, const char *id,
                    its_api_response *resp)
{
    if (!api->prov.counts_csv)
        return not_implemented(resp);
    int interval_s = 900;
    if (req->interval &&
        (its_counts_parse_interval(req->interval, &interval_s) < 0 || interval_s % 60))
        return reply_error(resp, 400, "bad_request",
                           "interval must be whole minutes up to a day, e.g. 15m or 1h");
    int64_t to_ns = (int64_t)its_wall_ns(), from_ns;
    if (req->to && its_counts_parse_time(req->to, &to_ns) < 0)
        return reply_error(resp, 400, "bad_request",
                           "to must be a UTC time (2026-12-07T08:00:00Z) or unix seconds");
    from_ns = to_ns - (int64_t)86400 * 1000000000;
    if (req->from && its_counts_parse_time(req->from, &from_ns) < 0)
        return reply_error(resp, 400, "bad_request",
                           "from must be a UTC time (2026-12-07T08:00:00Z) or unix seconds");
    if (from_ns >= to_ns)
        return reply_error(resp, 400, "bad_request", "from must be before to");
    csv_body b = {0};
    int rc = csv_put(&b, ITS_COUNTS_HEADER, sizeof ITS_COUNTS_HEADER - 1);
    if (rc == 0)
        rc = api->prov.counts_csv(api->prov.ud, id, from_ns, to_ns, interval_s, csv_put, &b);
    if (rc < 0) {
        its_free(b.buf);
        if (rc == ITS_EOVERFLOW)
            return reply_error(resp, 400, "bad_request",
                               "more than %d MiB of rows: ask for a shorter range or a longer "
                               "interval",
                               ITS_API_MAX_RESPONSE_MB);
        if (rc == ITS_ENOENT)
            return reply_error(resp, 404, "not_found", "no interval counts for camera %s", id);
        return reply_error(resp, 500, "internal", "counts: %s", its_strerror(rc));
    }
    its_free(resp->body);
    resp->status = 200;
    resp->content_type = "text/csv; charset=utf-8";
    resp->body = b.buf;
    resp->len = b.len;
    return 0;
}

struct events_doc {
    const its_api_event *ev;
    int n;
};

static void events_body(its_json *w, const void *ctx)
{
    const struct events_doc *d = ctx;
    char url[256];
    its_json_obj_begin(w);
    its_json_key(w, "events");
    its_json_arr_begin(w);
    for (int i = 0; i < d->n; i++) {
        const its_api_event *e = &d->ev[i];
        its_json_obj_begin(w);
        its_json_kstr(w, "id", e->id);
        its_json_kstr(w, "camera", e->camera);
        its_json_kstr(w, "kind", e->kind);
        its_json_kint(w, "ts_us", e->ts_us);
        if (e->cls[0])
            its_json_kstr(w, "class", e->cls);
        else
            its_json_knull(w, "class");
        if (!strcmp(e->place_key, "line") || !strcmp(e->place_key, "zone") ||
            !strcmp(e->place_key, "lane"))
            its_json_kstr(w, e->place_key, e->place);
        if (e->direction)
            its_json_kstr(w, "direction", e->direction > 0 ? "positive" : "negative");
        snprintf(url, sizeof url, "/v1/events/%s/snapshot.jpg", e->id);
        if (e->snapshot)
            its_json_kstr(w, "snapshot", url);
        else
            its_json_knull(w, "snapshot");
        snprintf(url, sizeof url, "/v1/events/%s/clip.mp4", e->id);
        if (e->clip)
            its_json_kstr(w, "clip", url);
        else
            its_json_knull(w, "clip");
        its_json_kbool(w, "clip_pending", e->clip_pending);
        its_json_obj_end(w);
    }
    its_json_arr_end(w);
    its_json_kint(w, "count", d->n);
    its_json_obj_end(w);
}

/* GET /v1/events[?camera=ID][&limit=N]: the recent events that kept evidence, newest first,
 * with their links; those of one camera, the newest N. */
static int h_events(its_api *api, const its_api_request *req, its_api_response *resp)
{
    if (!api->prov.events)
        return not_implemented(resp);
    long limit = ITS_API_MAX_EVENTS;
    if (req->limit) {
        char *end;
        limit = strtol(req->limit, &end, 10);
        if (end == req->limit || *end || limit < 1 || limit > ITS_API_MAX_EVENTS)
            return reply_error(resp, 400, "bad_request", "limit must be 1 to %d",
                               ITS_API_MAX_EVENTS);
    }
    its_api_event *ev = its_calloc(ITS_MOD_API, ITS_API_MAX_EVENTS, sizeof *ev);
    if (!ev)
        return reply_error(resp, 500, "internal", "out of memory");
    int n = api->prov.events(api->prov.ud, ev, ITS_API_MAX_EVENTS);
    if (n < 0) {
        its_free(ev);
        return reply_code(resp, n, "events");
    }
    int kept = 0;
    for (int i = 0; i < n && kept < limit; i++) {
        its_api_event *e = &ev[i];
        e->id[sizeof e->id - 1] = 0;
        e->camera[sizeof e->camera - 1] = 0;
        e->kind[sizeof e->kind - 1] = 0;
        e->cls[sizeof e->cls - 1] = 0;
        e->place_key[sizeof e->place_key - 1] = 0;
        e->place[sizeof e->place - 1] = 0;
        if (req->camera && strcmp(req->camera, e->camera))
            continue;
        if (kept != i)
            ev[kept] = *e;
        kept++;
    }
    n = kept;
    struct events_doc d = {ev, n};
    int rc = reply_json(resp, 200, events_body, &d);
    its_free(ev);
    return rc;
}

/* A Range header of one byte range over a file of size bytes (RFC 9110, 14.1.2): 1 with the
 * range in [*first, *last], 0 to answer the whole file (no Range, another unit, several
 * ranges or a malformed one: a server may ignore it), -1 unsatisfiable (it starts past the
 * end, or a suffix of 0 bytes: 416). */
static int byte_range(const char *h, long size, long *first, long *last)
{
    if (!h || strncmp(h, "bytes=", 6) || strchr(h, ','))
        return 0;
    const char *p = h + 6;
    char *end;
    if (*p == '-') { /* the last N bytes */
        if (p[1] < '0' || p[1] > '9')
            return 0;
        long long nlast = strtoll(p + 1, &end, 10);
        if (*end)
            return 0;
        if (nlast <= 0 || size == 0)
            return -1;
        *first = nlast >= size ? 0 : size - (long)nlast;
        *last = size - 1;
        return 1;
    }
    if (*p < '0' || *p > '9')
        return 0;
    long long a = strtoll(p, &end, 10), b = -1;
    if (*end != '-')
        return 0;
    p = end + 1;
    if (*p) {
        if (*p < '0' || *p > '9')
            return 0;
        b = strtoll(p, &end, 10);
        if (*end || b < a)
            return 0;
    }
    if (a >= size)
        return -1;
    *first = (long)a;
    *last = b < 0 || b >= size ? size - 1 : (long)b;
    return 1;
}

/* GET /v1/events/{id}/snapshot.jpg or clip.mp4: the file, or the one byte range asked for
 * (a browser's <video> reads a clip in ranges, and seeks with them). */
static int h_evidence(its_api *api, const its_api_request *req, const char *id, int clip,
                      its_api_response *resp)
{
    if (!api->prov.evidence_file)
        return not_implemented(resp);
    const char *what = clip ? "clip" : "snapshot";
    char path[1400];
    if (api->prov.evidence_file(api->prov.ud, id, what, path, sizeof path) < 0)
        return reply_error(resp, 404, "not_found", "no %s for event %s (yet)", what, id);
    FILE *f = fopen(path, "rb");
    if (!f)
        return reply_error(resp, 404, "not_found", "no %s for event %s", what, id);
    char *buf = NULL;
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 &&
        size <= (long)ITS_API_MAX_FILE_MB << 20 && fseek(f, 0, SEEK_SET) == 0)
        buf = its_malloc(ITS_MOD_API, (size_t)size + 1);
    int ok = buf && fread(buf, 1, (size_t)size, f) == (size_t)size;
    fclose(f);
    if (!ok) {
        its_free(buf);
        return reply_error(resp, 500, "internal", "cannot read the %s of event %s", what, id);
    }
    buf[size] = 0;
    long first = 0, last = size - 1;
    int ranged = byte_range(req->range, size, &first, &last);
    if (ranged < 0) {
        its_free(buf);
        int rc = reply_error(resp, 416, "range_not_satisfiable", "the %s of event %s has %ld bytes",
                             what, id, size);
        if (rc == 0) {
            resp->header_name = "Content-Range";
            snprintf(resp->header_value, sizeof resp->header_value, "bytes */%ld", size);
        }
        return rc;
    }
    if (ranged && first > 0)
        memmove(buf, buf + first, (size_t)(last - first + 1));
    its_free(resp->body);
    resp->status = ranged ? 206 : 200;
    resp->content_type = clip ? "video/mp4" : "image/jpeg";
    resp->body = buf;
    resp->len = (size_t)(last - first + 1);
    buf[resp->len] = 0;
    if (ranged) {
        resp->header_name = "Content-Range";
        snprintf(resp->header_value, sizeof resp->header_value, "bytes %ld-%ld/%ld", first, last,
                 size);
    } else {
        resp->header_name = "Accept-Ranges";
        snprintf(resp->header_value, sizeof resp->header_value, "bytes");
    }
    return 0;
}

static int h_frame(its_api *api, const its_api_request *req, const char *id, its_api_response *resp)
{
    if (!api->prov.frame_push)
        return not_implemented(resp);
    if (!req->content_type || strncmp(req->content_type, "image/jpeg", 10))
        return reply_error(resp, 415, "unsupported_media_type", "frames must be image/jpeg");
    /* A JPEG starts with SOI and a marker; anything else is refused before the decoder. */
    if (req->body_len < 4 || req->body[0] != 0xFF || req->body[1] != 0xD8 || req->body[2] != 0xFF)
        return reply_error(resp, 400, "bad_image", "body is not a JPEG (no SOI marker)");
    int rc = api->prov.frame_push(api->prov.ud, id, req->body, req->body_len, its_now_ns());
    if (rc < 0)
        return reply_code(resp, rc, id);
    return reply_result(resp, 202, id, "queued", (long long)req->body_len);
}

static int h_snapshot(its_api *api, const its_api_request *req, const char *id,
                      its_api_response *resp)
{
    if (!api->prov.snapshot)
        return not_implemented(resp);
    const char *a = req->annotate;
    int annotate = a && (!strcmp(a, "1") || !strcmp(a, "true"));
    if (a && !annotate && strcmp(a, "0") && strcmp(a, "false"))
        return reply_error(resp, 400, "bad_request", "annotate must be 0, 1, true or false");
    long width = 0;
    if (req->width) {
        char *end;
        width = strtol(req->width, &end, 10);
        if (!req->width[0] || *end || width < 16 || width > 8192)
            return reply_error(resp, 400, "bad_request", "width must be an integer in [16, 8192]");
    }
    uint8_t *jpeg = NULL;
    size_t len = 0;
    int rc = api->prov.snapshot(api->prov.ud, id, annotate, (int)width, &jpeg, &len);
    if (rc == ITS_EAGAIN)
        return reply_error(resp, 503, "unavailable", "%s: no frame yet", id);
    if (rc < 0)
        return reply_code(resp, rc, id);
    its_free(resp->body);
    resp->status = 200;
    resp->content_type = "image/jpeg";
    resp->body = (char *)jpeg;
    resp->len = len; /* the transport adds Cache-Control: no-store to every response */
    return 0;
}

static int h_scene_get(its_api *api, const char *id, its_api_response *resp)
{
    if (!api->prov.scene_get)
        return not_implemented(resp);
    char *json = NULL;
    size_t len = 0;
    int rc = api->prov.scene_get(api->prov.ud, id, &json, &len);
    if (rc == ITS_EAGAIN)
        return reply_error(resp, 503, "unavailable", "%s: analytics not started yet", id);
    if (rc < 0)
        return reply_code(resp, rc, id);
    its_free(resp->body);
    resp->status = 200;
    resp->content_type = "application/json";
    resp->body = json;
    resp->len = len;
    return 0;
}

struct scene_put_doc {
    const char *id, *saved;
};

static void scene_put_body(its_json *w, const void *ctx)
{
    const struct scene_put_doc *d = ctx;
    its_json_obj_begin(w);
    its_json_kstr(w, "id", d->id);
    its_json_kstr(w, "result", "applied");
    its_json_kstr(w, "saved_to", d->saved[0] ? d->saved : NULL);
    its_json_obj_end(w);
}

static int h_scene_put(its_api *api, const its_api_request *req, const char *id,
                       its_api_response *resp)
{
    if (!api->prov.scene_put)
        return not_implemented(resp);
    const char *ct = req->content_type;
    if (!ct || (strncmp(ct, "application/json", 16) && strncmp(ct, "application/yaml", 16) &&
                strncmp(ct, "text/yaml", 9)))
        return reply_error(resp, 415, "unsupported_media_type",
                           "a scene is application/json or application/yaml");
    if (!req->body_len || memchr(req->body, 0, req->body_len))
        return reply_error(resp, 400, "bad_request", "a scene is a non-empty text");
    char err[256] = "", saved[640] = "";
    int rc = api->prov.scene_put(api->prov.ud, id, (const char *)req->body, req->body_len, err,
                                 sizeof err, saved, sizeof saved);
    if (rc == ITS_ECONFIG || rc == ITS_EINVAL)
        return reply_error(resp, 400, "bad_scene", "%s", err[0] ? err : "invalid scene");
    if (rc == ITS_EAGAIN)
        return reply_error(resp, 503, "unavailable", "%s: analytics not started yet", id);
    if (rc == ITS_EIO)
        return reply_error(resp, 500, "internal", "%s", err[0] ? err : "scene not saved");
    if (rc < 0)
        return reply_code(resp, rc, id);
    struct scene_put_doc d = {id, saved};
    return reply_json(resp, 200, scene_put_body, &d);
}

/* One Server-Sent Event with the camera's report; the client reconnects after SSE_RETRY_MS. */
#define SSE_RETRY_MS 1000
static int h_live(its_api *api, const char *id, its_api_response *resp)
{
    if (!api->prov.live)
        return not_implemented(resp);
    char *json = NULL;
    size_t len = 0;
    int rc = api->prov.live(api->prov.ud, id, &json, &len);
    if (rc == ITS_EAGAIN)
        return reply_error(resp, 503, "unavailable", "%s: analytics not started yet", id);
    if (rc < 0)
        return reply_code(resp, rc, id);
    static const char head[] = "retry: " ITS_STR(SSE_RETRY_MS) "\nevent: report\ndata: ";
    size_t n = sizeof head - 1 + len + 2;
    char *body = its_malloc(ITS_MOD_API, n + 1);
    if (!body) {
        its_free(json);
        return reply_error(resp, 500, "internal", "out of memory");
    }
    memcpy(body, head, sizeof head - 1);
    memcpy(body + sizeof head - 1, json, len);
    memcpy(body + n - 2, "\n\n", 3);
    its_free(json);
    its_free(resp->body);
    resp->status = 200;
    resp->content_type = "text/event-stream";
    resp->body = body;
    resp->len = n;
    return 0;
}

static int h_console(const its_api_request *req, its_api_response *resp)
{
    const unsigned char *data;
    size_t len;
    const char *ct;
    if (its__console_file(req->path, &data, &len, &ct) < 0)
        return reply_error(resp, 404, "not_found", "no such console file");
    if (set_body(resp, (const char *)data, len) < 0)
        return reply_error(resp, 500, "internal", "out of memory");
    resp->status = 200;
    resp->content_type = ct;
    return 0;
}

static int method_not_allowed(its_api_response *resp, const char *allow)
{
    resp->header_name = "Allow";
    snprintf(resp->header_value, sizeof resp->header_value, "%s", allow);
    return reply_error(resp, 405, "method_not_allowed", "allowed: %s", allow);
}

static void count_request(its_api *api, api_route r, int status)
{
    if (!api->metrics)
        return;
    char code[8];
    snprintf(code, sizeof code, "%d", status);
    its_metric_inc(its_metrics_series_v(its_metrics_std(api->metrics, ITS_M_HTTP_REQUESTS),
                                        its__api_route_name(r), code));
}

int its_api_handle(its_api *api, const its_api_request *req, its_api_response *resp)
{
    memset(resp, 0, sizeof *resp);
    if (!api || !req || !req->method || !req->path || (req->body_len && !req->body))
        return reply_error(resp, 400, "bad_request", "malformed request");
    char id[ITS_API_EVENT_ID_MAX + 1];
    int bad_id = 0;
    api_route r = its__api_route(req->path, id, sizeof id, &bad_id);
    const char *m = req->method;
    int get = !strcmp(m, "GET") || !strcmp(m, "HEAD");
    int post = !strcmp(m, "POST"), put = !strcmp(m, "PUT"), del = !strcmp(m, "DELETE");
    int rc;
    if (r == R_NOT_FOUND) {
        rc = reply_error(resp, 404, "not_found", "no such endpoint");
    } else if (needs_token(api, m, r) && !token_ok(api, req->authorization)) {
        /* Authentication comes before any look at the body or the camera. */
        resp->header_name = "WWW-Authenticate";
        snprintf(resp->header_value, sizeof resp->header_value, "Bearer realm=\"itsd\"");
        rc = reply_error(resp, 401, "unauthorized",
                         req->authorization ? "invalid bearer token" : "bearer token required");
    } else if (req->body_too_large) {
        rc = reply_error(resp, 413, "payload_too_large", "body exceeds %zu bytes",
                         its__api_body_limit(api, m, req->path));
    } else if (bad_id && (r == R_EVENT_SNAPSHOT || r == R_EVENT_CLIP)) {
        rc = reply_error(resp, 400, "bad_request", "event id must match [A-Za-z0-9_.-]{1,159}");
    } else if (bad_id) {
        rc = reply_error(resp, 400, "bad_request", "camera id must match [A-Za-z0-9_.-]{1,64}");
    } else {
        switch (r) {
        case R_HEALTHZ:
            rc = get ? reply_json(resp, 200, healthz_body, NULL) : method_not_allowed(resp, "GET");
            break;
        case R_READYZ:
            rc = get ? h_ready(api, resp) : method_not_allowed(resp, "GET");
            break;
        case R_METRICS:
            rc = get ? h_metrics(api, resp) : method_not_allowed(resp, "GET");
            break;
        case R_STATUS:
            rc = get ? h_status(api, resp) : method_not_allowed(resp, "GET");
            break;
        case R_CAMERAS:
            rc = get    ? h_list(api, resp)
                 : post ? h_add(api, req, NULL, resp)
                        : method_not_allowed(resp, "GET, POST");
            break;
        case R_CAMERA:
            rc = get   ? h_get(api, id, resp)
                 : put ? h_add(api, req, id, resp)
                 : del ? h_remove(api, id, resp)
                       : method_not_allowed(resp, "GET, PUT, DELETE");
            break;
        case R_ANALYTICS:
            rc = get ? h_analytics(api, req, id, resp) : method_not_allowed(resp, "GET");
            break;
        case R_FRAMES:
            rc = post ? h_frame(api, req, id, resp) : method_not_allowed(resp, "POST");
            break;
        case R_COUNTS:
            rc = get ? h_counts(api, req, id, resp) : method_not_allowed(resp, "GET");
            break;
        case R_EVENTS:
            rc = get ? h_events(api, req, resp) : method_not_allowed(resp, "GET");
            break;
        case R_EVENT_SNAPSHOT:
        case R_EVENT_CLIP:
            rc = get ? h_evidence(api, req, id, r == R_EVENT_CLIP, resp)
                     : method_not_allowed(resp, "GET");
            break;
        case R_SNAPSHOT:
            rc = get ? h_snapshot(api, req, id, resp) : method_not_allowed(resp, "GET");
            break;
        case R_LIVE:
            rc = get ? h_live(api, id, resp) : method_not_allowed(resp, "GET");
            break;
        case R_CONSOLE:
            rc = get ? h_console(req, resp) : method_not_allowed(resp, "GET");
            break;
        case R_SCENE:
            rc = get   ? h_scene_get(api, id, resp)
                 : put ? h_scene_put(api, req, id, resp)
                       : method_not_allowed(resp, "GET, PUT");
            break;
        default:
            rc = reply_error(resp, 404, "not_found", "no such endpoint");
            break;
        }
    }
    count_request(api, r, resp->status);
    return rc < 0 ? rc : 0;
}

void its_api_response_free(its_api_response *resp)
{
    if (!resp)
        return;
    its_free(resp->body);
    resp->body = NULL;
    resp->len = 0;
}

void its_api_settings_apply(const its_api_settings *s, its_api_config *cfg)
{
    its_api_config_default(cfg);
    if (s->bind && s->bind[0])
        cfg->bind_addr = s->bind;
    cfg->port = s->port;
    cfg->token = s->token && s->token[0] ? s->token : NULL;
    cfg->threads = s->threads;
    cfg->max_connections = s->max_connections;
    cfg->timeout_s = s->timeout_s;
    cfg->max_body_bytes = (size_t)s->max_body_kb << 10;
    cfg->max_frame_bytes = (size_t)s->max_frame_mb << 20;
    cfg->require_redis = s->require_redis;
    cfg->public_read = s->public_read;
    cfg->max_connections_per_ip = s->max_connections_per_ip;
}

/*
 * itsd's configuration (its/app.h): one options table for every scalar, a libcyaml schema
 * for the camera list, validation that needs more than one value at a time, and the step
 * from settings to a pipeline.
 */
#include <cyaml/cyaml.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "its/app.h"
#include "its/app_hooks.h"
#include "its/app_redis.h"
#include "its/app_services.h"
#include "its/cluster.h"
#include "its/core.h"
#include "its/counts.h"
#include "its/evidence.h"

static const char *const backends[] = {"noop", "cpu", "cuda", NULL};
static const char *const fallbacks[] = {"none", "cpu", NULL};
static const char *const sinks[] = {"stdout", "file", "null", NULL};
static const char *const pixfmts[] = {"rgb", "bgr", NULL};

#define S its_app_settings
static const its_option options[] = {
    ITS_OPT_STR("log.level", S, log_level, "info", ITS_OPT_RUNTIME,
                "debug, info, warn, error or off"),
    ITS_OPT_STR("log.format", S, log_format, "text", 0, "text or json"),
    ITS_OPT_ENUM("engine.backend", S, backend, "cpu", backends, 0,
                 "cpu, cuda, or noop (a benchmark stand-in that detects nothing)"),
    ITS_OPT_ENUM("engine.fallback", S, fallback, "cpu", fallbacks, 0,
                 "cpu: a GPU engine that cannot be created or fails is replaced by the cpu "
                 "engine (logged, its_engine_fallback) and retried with backoff; none: it is an "
                 "error"),
    ITS_OPT_STR("engine.model", S, model,
                "${ITS_SHARED_DIR:-../shared}/models/yolo11n-fp32-dequant/"
                "yolo11n_fp32_dequant.onnx",
                0, "ONNX detector"),
    ITS_OPT_STR("engine.input_size", S, input_size, "", 0,
                "network input WxH, multiples of 32 (empty: the model's own); 640x384 runs "
                "16:9 cameras without the 40% of padding a 640x640 letterbox adds"),
    ITS_OPT_STR("engine.labels", S, labels, "", 0,
                "class names, one per line (empty: the model's metadata)"),
    ITS_OPT_INT("engine.threads", S, threads, "0", 0, 256, 0,
                "CPU threads per engine (0: all cores)"),
    ITS_OPT_INT("engine.workers", S, engine_workers, ITS_STR(ITS_PIPE_ENGINE_WORKERS), 1, 8, 0,
                "engine worker threads, each with its own execution state (batches in flight); "
                "a GPU engine's weights and plans are shared by all of them"),
    ITS_OPT_STR("engine.plan_cache_dir", S, plan_cache_dir, "auto", 0,
                "where a GPU engine's planning (cuDNN engine choices and plans) is cached: auto "
                "= $XDG_CACHE_HOME/its-analytics/plans, or ~/.cache/its-analytics/plans; empty: "
                "no cache"),
    ITS_OPT_INT("engine.nvdec_max_sessions", S, nvdec_max_sessions, "0", 0, 4096, 0,
                "cameras decoding on the GPU's NVDEC at once; the others decode on the CPU "
                "(counted, its_decode_fallback_total{reason=\"sessions\"}); 0: no limit of ours"),
    ITS_OPT_DOUBLE("engine.conf", S, conf, ITS_STR(ITS_DET_CONF_DEFAULT), 0.0, 1.0, 0,
                   "confidence threshold (SPEC)"),
    ITS_OPT_DOUBLE("engine.track_conf", S, track_conf, ITS_STR(ITS_DET_TRACK_CONF_DEFAULT), 0.0,
                   1.0, 0,
                   "detections from this score to engine.conf go to the tracker only (weak "
                   "detections continue tracks)"),
    ITS_OPT_DOUBLE("engine.iou", S, iou, ITS_STR(ITS_DET_IOU_DEFAULT), 0.0, 1.0, 0,
                   "NMS IoU threshold"),
    ITS_OPT_DOUBLE("engine.noop_cost_us", S, noop_cost_us, "0", 0, 1e6, 0,
                   "noop backend: CPU time burnt per frame, to stand in for a model"),
    ITS_OPT_INT("batch.max_size", S, batch_max, ITS_STR(ITS_PIPE_BATCH_MAX), 1, 32, 0,
                "largest batch (1-32)"),
    ITS_OPT_DOUBLE("batch.max_delay_ms", S, batch_delay_ms, ITS_STR(ITS_PIPE_BATCH_DELAY_MS), 0,
                   1000, 0, "longest a frame waits for a fuller batch"),
    ITS_OPT_INT("batch.per_camera", S, per_camera, ITS_STR(ITS_PIPE_PER_CAMERA), 1, 64, 0,
                "frames pending per camera; more drop that camera's oldest"),
    ITS_OPT_INT("batch.capacity", S, capacity, ITS_STR(ITS_PIPE_QUEUE_CAPACITY), 2, 100000, 0,
                "pending frames in all"),
    ITS_OPT_INT("batch.high_water", S, high_water, ITS_STR(ITS_PIPE_HIGH_WATER), 1, 100000, 0,
                "past this many pending frames, drop the oldest ..."),
    ITS_OPT_INT("batch.low_water", S, low_water, ITS_STR(ITS_PIPE_LOW_WATER), 0, 100000, 0,
                "... until this many remain"),
    ITS_OPT_ENUM("ingest.pixel_format", S, pixfmt, "rgb", pixfmts, 0,
                 "frame layout from the decoders"),
    ITS_OPT_INT("ingest.pool_frames", S, pool_frames, ITS_STR(ITS_PIPE_POOL_FRAMES), 2, 64, 0,
                "frame buffers per camera (in the pipeline at once)"),
    ITS_OPT_INT("ingest.stall_timeout_ms", S, stall_timeout_ms, ITS_STR(ITS_PIPE_STALL_TIMEOUT_MS),
                100, 600000, 0, "no data for this long: reconnect"),
    ITS_OPT_INT("ingest.backoff_min_ms", S, backoff_min_ms, ITS_STR(ITS_PIPE_BACKOFF_MIN_MS), 1,
                600000, 0, "first reconnect delay"),
    ITS_OPT_INT("ingest.backoff_max_ms", S, backoff_max_ms, ITS_STR(ITS_PIPE_BACKOFF_MAX_MS), 1,
                3600000, 0, "longest reconnect delay"),
    ITS_OPT_INT("ingest.max_width", S, max_width, ITS_STR(ITS_PIPE_MAX_WIDTH), 16, 8192, 0,
                "larger frames are scaled down"),
    ITS_OPT_INT("ingest.max_height", S, max_height, ITS_STR(ITS_PIPE_MAX_HEIGHT), 16, 8192, 0,
                "larger frames are scaled down"),
    ITS_OPT_INT("ingest.nice", S, source_nice, ITS_STR(ITS_PIPE_SOURCE_NICE), 0, 19, 0,
                "niceness of the decoding threads: the engine and analytics preempt them"),
    ITS_OPT_BOOL("ingest.spread_phase", S, spread_phase, "true", 0,
                 "replay cameras and sampled files without phase_s start at spread-out offsets"),
    ITS_OPT_INT("ingest.max_cameras", S, max_cameras, ITS_STR(ITS_PIPE_MAX_CAMERAS), 1, 4096, 0,
                "cameras at once (a removed camera's slot is reused once its frames are through)"),
    ITS_OPT_INT("analytics.workers", S, analytics_workers, ITS_STR(ITS_PIPE_ANALYTICS_WORKERS), 1,
                32, 0, "analytics threads; cameras are sharded over them"),
    ITS_OPT_BOOL("analytics.enabled", S, analytics_enabled, "true", 0,
                 "tracking, analytics, quality and model metrics per camera"),
    ITS_OPT_DOUBLE("analytics.window_s", S, window_s, ITS_STR(ITS_APP_WINDOW_S), 1, 3600, 0,
                   "an analytics window message per camera every this many seconds"),
    ITS_OPT_DOUBLE("analytics.quality_image_fps", S, quality_image_fps, "0", 0, 1000, 0,
                   "picture-quality measurements per camera per second (0: every frame; the "
                   "frames between reuse the last one)"),
    ITS_OPT_INT("analytics.counts_hours", S, counts_hours, "24", 0, 168, 0,
                "hours of interval counts kept in memory per camera for GET "
                "/v1/cameras/{id}/counts.csv (1-minute buckets; 0: none)"),
    ITS_OPT_STR("evidence.dir", S, evidence_dir, "", 0,
                "folder of the events' snapshots and clips (empty: no evidence kept)"),
    ITS_OPT_STR("evidence.events", S, evidence_events, "stopped_vehicle,wrong_way,speed_drop", 0,
                "event kinds that keep evidence, comma-separated; line_crossing, or "
                "line_crossing:CLASS for one traffic class"),
    ITS_OPT_DOUBLE("evidence.pre_s", S, evidence_pre_s, "5", 0, 60, 0,
                   "seconds of video before the event in its clip"),
    ITS_OPT_DOUBLE("evidence.post_s", S, evidence_post_s, "5", 0, 60, 0,
                   "seconds of video after the event in its clip"),
    ITS_OPT_INT("evidence.max_mb", S, evidence_max_mb, "1024", 1, 1048576, 0,
                "evidence.dir is kept under this many MiB (the oldest files go first)"),
    ITS_OPT_DOUBLE("evidence.max_age_h", S, evidence_max_age_h, "168", 0, 87600, 0,
                   "evidence files older than this many hours are deleted (0: no age limit)"),
    ITS_OPT_INT("evidence.ring_mb", S, evidence_ring_mb, "8", 1, 1024, 0,
                "compressed video kept in memory per camera for the clips, MiB (it must "
                "cover pre_s and a keyframe interval)"),
    ITS_OPT_STR("analytics.baseline_dir", S, baseline_dir, "", 0,
                "directory of the model-metrics baselines, one file per camera, written once "
                "captured and read back at start (empty: a new baseline every start)"),
    ITS_OPT_STR("analytics.scene_dir", S, scene_dir, "", 0,
                "directory of scenes saved through the API (PUT /v1/cameras/{id}/scene) for "
                "cameras without a scene file, <camera>.yaml, read when the camera starts "
                "(empty: such scenes apply until the camera is removed)"),
    ITS_OPT_ENUM("sink.type", S, sink, "stdout", sinks, 0,
                 "stdout (JSON lines), file (JSON lines to sink.path) or null"),
    ITS_OPT_STR("sink.path", S, sink_path, "", 0, "file for sink.type file"),
    ITS_OPT_DOUBLE("status.interval_s", S, status_interval_s, "5", 0, 3600, ITS_OPT_RUNTIME,
                   "status line on stderr every this many seconds (0: never)"),
    ITS_OPT_DOUBLE("shutdown.drain_s", S, drain_s, "2", 0, 60, 0,
                   "on SIGTERM, process queued frames for at most this long"),
    ITS_PUBLISH_OPTIONS(S, redis),
    ITS_OPT_BOOL("api.enabled", S, api_enabled, "true", 0,
                 "serve the HTTP API and /metrics (itsd)"),
    ITS_API_OPTIONS(S, api),
    ITS_OPT_BOOL("cluster.enabled", S, cluster_enabled, "false", 0,
                 "share the cameras with other replicas through Redis: a registry, a lease per "
                 "replica, each camera served by one (docs/scale-out.md)"),
    ITS_OPT_STR("cluster.replica", S, cluster_replica, "", 0,
                "this replica's name (empty: ITS_REPLICA_NAME, else the host name)"),
    ITS_OPT_INT("cluster.capacity", S, cluster_capacity, "0", 0, 4096, 0,
                "cameras this replica takes, its weight in the split (0: ingest.max_cameras)"),
    ITS_OPT_INT("cluster.lease_ttl_ms", S, cluster_lease_ttl_ms, ITS_STR(ITS_CLUSTER_LEASE_TTL_MS),
                3000, 600000, 0,
                "lease time to live: a replica that stops renewing loses its cameras after it"),
    ITS_OPT_INT("cluster.resync_ms", S, cluster_resync_ms, ITS_STR(ITS_CLUSTER_RESYNC_MS), 100,
                600000, 0, "full read of the camera registry at least this often"),
};
#undef S

static const cyaml_schema_field_t cam_fields[] = {
    CYAML_FIELD_STRING_PTR("id", CYAML_FLAG_POINTER, its_app_camera, id, 1, ITS_CAMERA_ID_MAX),
    CYAML_FIELD_STRING_PTR("url", CYAML_FLAG_POINTER, its_app_camera, url, 1, 1000),
    CYAML_FIELD_STRING_PTR("kind", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, its_app_camera, kind,
                           0, 16),
    CYAML_FIELD_STRING_PTR("pace", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, its_app_camera, pace,
                           0, 16),
    CYAML_FIELD_STRING_PTR("scene", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, its_app_camera, scene,
                           0, 500),
    CYAML_FIELD_STRING_PTR("rtsp_transport", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
                           its_app_camera, rtsp_transport, 0, 8),
    CYAML_FIELD_STRING_PTR("decode", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, its_app_camera,
                           decode, 0, 8),
    CYAML_FIELD_BOOL("loop", CYAML_FLAG_OPTIONAL, its_app_camera, loop),
    CYAML_FIELD_FLOAT("fps", CYAML_FLAG_OPTIONAL, its_app_camera, fps),
    CYAML_FIELD_FLOAT("sample_fps", CYAML_FLAG_OPTIONAL, its_app_camera, sample_fps),
    CYAML_FIELD_FLOAT("phase_s", CYAML_FLAG_OPTIONAL, its_app_camera, phase_s),
    CYAML_FIELD_INT("replay_frames", CYAML_FLAG_OPTIONAL, its_app_camera, replay_frames),
    CYAML_FIELD_INT("max_width", CYAML_FLAG_OPTIONAL, its_app_camera, max_width),
    CYAML_FIELD_INT("max_height", CYAML_FLAG_OPTIONAL, its_app_camera, max_height),
    CYAML_FIELD_END};

static const cyaml_schema_value_t cam_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, its_app_camera, cam_fields)};

static const cyaml_schema_field_t extra_fields[] = {
    CYAML_FIELD_SEQUENCE("cameras", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, its_app_cameras,
                         cameras, &cam_schema, 0, 4096),
    CYAML_FIELD_END};

int its_app_expand(const char *in, char *buf, size_t len)
{
    size_t n = 0;
    if (!len)
        return ITS_EOVERFLOW;
    for (const char *p = in; *p;) {
        const char *val = NULL;
        size_t vlen = 0;
        if (p[0] == '$' && p[1] == '{') {
            const char *end = strchr(p + 2, '}');
            if (!end)
                return ITS_ECONFIG;
            const char *def = strstr(p + 2, ":-");
            const char *name_end = def && def < end ? def : end;
            char name[128];
            size_t nl = (size_t)(name_end - (p + 2));
            if (nl == 0 || nl >= sizeof name)
                return ITS_ECONFIG;
            memcpy(name, p + 2, nl);
            name[nl] = 0;
            val = getenv(name);
            if (val && *val) {
                vlen = strlen(val);
            } else if (def && def < end) {
                val = def + 2;
                vlen = (size_t)(end - val);
            } else {
                val = "";
            }
            p = end + 1;
        } else {
            val = p++;
            vlen = 1;
        }
        if (n + vlen >= len)
            return ITS_EOVERFLOW;
        memcpy(buf + n, val, vlen);
        n += vlen;
    }
    buf[n] = 0;
    return (int)n;
}

static char *keep(its_app_config *c, const char *in, const char *what, char *err, size_t errlen,
                  int *rc)
{
    if (!in)
        return NULL;
    char buf[2048];
    int r = its_app_expand(in, buf, sizeof buf);
    if (r < 0) {
        *rc = its_seterr(err, errlen, ITS_ECONFIG, "%s: %s: cannot expand '%s'", c->path, what, in);
        return NULL;
    }
    char **ns = its_realloc(ITS_MOD_APP, c->strings, (size_t)(c->n_strings + 1) * sizeof *ns);
    if (!ns) {
        *rc = ITS_ENOMEM;
        return NULL;
    }
    c->strings = ns;
    char *s = its_strdup(ITS_MOD_APP, buf);
    if (!s) {
        *rc = ITS_ENOMEM;
        return NULL;
    }
    c->strings[c->n_strings++] = s;
    return s;
}

static int valid_id(const char *id)
{
    for (const char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.'))
            return 0;
    return *id != 0 && strlen(id) <= ITS_CAMERA_ID_MAX;
}

static int validate(its_app_config *c, char *err, size_t errlen)
{
    its_app_settings *s = &c->s;
    const char *o = c->path;
    its_log_level lvl;
    its_log_format fmt;
    if (its_log_parse_level(s->log_level, &lvl) < 0)
        return its_seterr(err, errlen, ITS_ECONFIG, "%s: log.level: '%s' is not a log level", o,
                          s->log_level);
    if (its_log_parse_format(s->log_format, &fmt) < 0)
        return its_seterr(err, errlen, ITS_ECONFIG, "%s: log.format: '%s' is not text or json", o,
                          s->log_format);
    if (s->low_water >= s->high_water || s->high_water > s->capacity)
        return its_seterr(err, errlen, ITS_ECONFIG,
                          "%s: batch: need low_water < high_water <= capacity (%d, %d, %d)", o,
                          s->low_water, s->high_water, s->capacity);
    if (s->backoff_min_ms > s->backoff_max_ms)
        return its_seterr(err, errlen, ITS_ECONFIG,
                          "%s: ingest: backoff_min_ms %d is above backoff_max_ms %d", o,
                          s->backoff_min_ms, s->backoff_max_ms);
    int iw = 0, ih = 0, used = 0;
    if (s->input_size && *s->input_size &&
        (sscanf(s->input_size, "%5dx%5d%n", &iw, &ih, &used) != 2 || s->input_size[used] ||
         iw < 32 || ih < 32 || iw % 32 || ih % 32 || iw > 4096 || ih > 4096))
        return its_seterr(err, errlen, ITS_ECONFIG,
                          "%s: engine.input_size: '%s' is not WxH in multiples of 32 up to 4096", o,
                          s->input_size);
    if (s->backend != ITS_BACKEND_NOOP && (!s->model || !*s->model))
        return its_seterr(err, errlen, ITS_ECONFIG, "%s: engine.model: required for backend %s", o,
                          backends[s->backend]);
    if (s->sink == ITS_SINKT_FILE && (!s->sink_path || !*s->sink_path))
        return its_seterr(err, errlen, ITS_ECONFIG, "%s: sink.path: required for sink.type file",
                          o);
    if (s->cluster_enabled && !its_publish_settings_apply(&s->redis, NULL, NULL))
        return its_seterr(err, errlen, ITS_ECONFIG,
                          "%s: cluster.enabled: needs Redis (redis.host or redis.sentinels)", o);
    if (c->cams.cameras_count > (unsigned)s->max_cameras)
        return its_seterr(err, errlen, ITS_ECONFIG,
                          "%s: cameras: %u cameras but ingest.max_cameras %d", o,
                          c->cams.cameras_count, s->max_cameras);
    int rc = 0;
    unsigned n = c->cams.cameras_count;
    c->resolved = its_calloc(ITS_MOD_APP, n ? n : 1, sizeof *c->resolved);
    if (!c->resolved)
        return its_seterr(err, errlen, ITS_ENOMEM, "%s: out of memory", o);
    for (unsigned i = 0; i < n; i++) {
        its_app_camera *a = &c->cams.cameras[i];
        its_camera_cfg *r = &c->resolved[i];
        if (!valid_id(a->id))
            return its_seterr(
                err, errlen, ITS_ECONFIG,
                "%s: cameras[%u].id: '%s' may hold only letters, digits, '-', '_', '.' (1 to 64)",
                o, i, a->id);
        for (unsigned k = 0; k < i; k++)
            if (strcmp(c->cams.cameras[k].id, a->id) == 0)
                return its_seterr(err, errlen, ITS_ECONFIG,
                                  "%s: cameras[%u].id: '%s' is used twice", o, i, a->id);
        its_source_kind kind;
        if (a->kind && its_source_parse_kind(a->kind, &kind) < 0)
            return its_seterr(
                err, errlen, ITS_ECONFIG,
                "%s: cameras[%u].kind: '%s' is not auto, file, rtsp, http, hls or replay", o, i,
                a->kind);
        if (a->rtsp_transport && strcmp(a->rtsp_transport, "tcp") &&
            strcmp(a->rtsp_transport, "udp"))
            return its_seterr(err, errlen, ITS_ECONFIG,
                              "%s: cameras[%u].rtsp_transport: '%s' is not tcp or udp", o, i,
                              a->rtsp_transport);
        its_video_decode dec = ITS_VIDEO_DECODE_AUTO;
        if (a->decode && its_video_parse_decode(a->decode, &dec) < 0)
            return its_seterr(err, errlen, ITS_ECONFIG,
                              "%s: cameras[%u].decode: '%s' is not auto, nvdec or cpu", o, i,
                              a->decode);
        if (a->pace && strcmp(a->pace, "realtime") != 0 && strcmp(a->pace, "none") != 0)
            return its_seterr(err, errlen, ITS_ECONFIG,
                              "%s: cameras[%u].pace: '%s' is not realtime or none", o, i, a->pace);
        if (a->fps < 0 || a->fps > 1000 || a->sample_fps < 0 || a->sample_fps > 1000 ||
            a->phase_s < 0 || a->phase_s > 86400 || a->replay_frames < 0 ||
            a->replay_frames > 100000 || a->max_width < 0 || a->max_width > 8192 ||
            a->max_height < 0 || a->max_height > 8192)
            return its_seterr(
                err, errlen, ITS_ECONFIG,
                "%s: cameras[%u] ('%s'): fps, sample_fps, phase_s, replay_frames or a size is out "
                "of range",
                o, i, a->id);
        char what[96];
        snprintf(what, sizeof what, "cameras[%u].url", i);
        r->id = a->id;
        r->url = keep(c, a->url, what, err, errlen, &rc);
        if (rc < 0)
            return rc;
        if (strstr(r->url, ITS_URL_REDACTED))
            return its_seterr(err, errlen, ITS_ECONFIG,
                              "%s: cameras[%u].url: '%s' is the placeholder --print-config "
                              "writes for credentials, not the credentials: write them, or "
                              "${VAR}, into the url",
                              o, i, ITS_URL_REDACTED);
        snprintf(what, sizeof what, "cameras[%u].scene", i);
        r->scene = keep(c, a->scene, what, err, errlen, &rc);
        if (rc < 0)
            return rc;
        r->kind = a->kind;
        r->loop = a->loop;
        r->realtime = a->pace && strcmp(a->pace, "none") == 0 ? 0 : 1;
        r->fps = a->fps;
        r->sample_fps = a->sample_fps;
        r->phase_s = a->phase_s == 0 && s->spread_phase ? -1 : a->phase_s;
        r->replay_frames = a->replay_frames;
        r->rtsp_udp = a->rtsp_transport && !strcmp(a->rtsp_transport, "udp");
        r->decode = (int)dec;
        r->max_width = a->max_width;
        r->max_height = a->max_height;
    }
    return 0;
}

static int load(its_app_config *c, const char *path, const char *yaml, size_t len,
                const char *origin, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    snprintf(c->path, sizeof c->path, "%s", origin ? origin : path ? path : "(defaults)");
    c->cfg.options = options;
    c->cfg.n_options = ITS_ARRAY_LEN(options);
    c->cfg.settings = &c->s;
    c->cfg.extra_fields = extra_fields;
    c->cfg.extra = &c->cams;
    c->cfg.extra_size = sizeof c->cams;
    int rc = yaml ? its_config_load_string(&c->cfg, yaml, len, c->path, err, errlen)
                  : its_config_load(&c->cfg, path, err, errlen);
    if (rc < 0)
        return rc;
    /* expand ${VAR} in the path-like settings */
    char **paths[] = {&c->s.model, &c->s.labels, &c->s.sink_path, &c->s.plan_cache_dir};
    const char *names[] = {"engine.model", "engine.labels", "sink.path", "engine.plan_cache_dir"};
    for (int i = 0; i < 4; i++) {
        char *e = keep(c, *paths[i], names[i], err, errlen, &rc);
        if (rc < 0)
            return rc;
        if (e && its_config_set(&c->cfg, names[i], e, c->path, err, errlen) < 0)
            return ITS_ECONFIG;
    }
    return validate(c, err, errlen);
}

static int readable(const char *path)
{
    return path && access(path, R_OK) == 0;
}

int its_app_config_check_files(const its_app_config *c, char *err, size_t errlen)
{
    const its_app_settings *s = &c->s;
    if (s->backend != ITS_BACKEND_NOOP && !readable(s->model))
        return its_seterr(err, errlen, ITS_ENOENT, "%s: engine.model: cannot read '%s'", c->path,
                          s->model);
    if (s->backend != ITS_BACKEND_NOOP && s->labels && *s->labels && !readable(s->labels))
        return its_seterr(err, errlen, ITS_ENOENT, "%s: engine.labels: cannot read '%s'", c->path,
                          s->labels);
    for (unsigned i = 0; i < c->cams.cameras_count; i++) {
        const its_camera_cfg *r = &c->resolved[i];
        its_source_kind k = ITS_SOURCE_AUTO;
        if (r->kind)
            its_source_parse_kind(r->kind, &k);
        if (k == ITS_SOURCE_AUTO)
            k = its_source_kind_of(r->url);
        if ((k == ITS_SOURCE_FILE || k == ITS_SOURCE_REPLAY) && !strstr(r->url, "://") &&
            !readable(r->url))
            return its_seterr(err, errlen, ITS_ENOENT, "%s: cameras[%u].url: cannot read '%s'",
                              c->path, i, r->url);
        if (r->scene && *r->scene && !readable(r->scene))
            return its_seterr(err, errlen, ITS_ENOENT, "%s: cameras[%u].scene: cannot read '%s'",
                              c->path, i, r->scene);
    }
    return 0;
}

int its_app_config_load(its_app_config *c, const char *path, char *err, size_t errlen)
{
    return load(c, path, NULL, 0, path, err, errlen);
}

int its_app_config_load_string(its_app_config *c, const char *yaml, size_t len, const char *origin,
                               char *err, size_t errlen)
{
    return load(c, NULL, yaml, len, origin ? origin : "(string)", err, errlen);
}

static void print_str(FILE *out, const char *key, const char *v)
{
    if (!v)
        return;
    fprintf(out, "    %s: \"", key);
    for (const char *p = v; *p; p++) {
        if (*p == '"' || *p == '\\')
            fputc('\\', out);
        fputc(*p, out);
    }
    fputs("\"\n", out);
}

/* A camera URL as written, its credentials scrubbed (its/url.h) unless every one of them is a
 * ${VAR} reference: a reference is no secret, and printing it keeps the file loadable. The
 * test: with each ${NAME} replaced by the placeholder, scrubbing changes nothing. */
static void print_url(FILE *out, const char *url)
{
    char refs[2048], shown[2048];
    size_t n = 0;
    const char *p = url;
    while (*p && n + sizeof ITS_URL_REDACTED < sizeof refs) {
        size_t name = p[0] == '$' && p[1] == '{' ? strspn(p + 2, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                                 "abcdefghijklmnopqrstuvwxyz"
                                                                 "0123456789_")
                                                 : 0;
        if (name && p[2 + name] == '}') {
            memcpy(refs + n, ITS_URL_REDACTED, sizeof ITS_URL_REDACTED - 1);
            n += sizeof ITS_URL_REDACTED - 1;
            p += name + 3;
        } else {
            refs[n++] = *p++;
        }
    }
    refs[n] = 0;
    its_url_scrub(refs, shown, sizeof shown);
    if (!*p && strcmp(shown, refs) == 0) {
        print_str(out, "url", url);
        return;
    }
    its_url_scrub(url, shown, sizeof shown);
    print_str(out, "url", shown);
}

char *its_app_camera_json(const its_app_camera *a)
{
    char buf[4096];
    its_json w;
    its_json_init(&w, buf, sizeof buf);
    its_json_obj_begin(&w);
    its_json_kstr(&w, "id", a->id);
    its_json_kstr(&w, "url", a->url);
    const char *const names[] = {"kind", "pace", "scene", "rtsp_transport", "decode"};
    const char *const vals[] = {a->kind, a->pace, a->scene, a->rtsp_transport, a->decode};
    for (int i = 0; i < 5; i++)
        if (vals[i])
            its_json_kstr(&w, names[i], vals[i]);
    its_json_kbool(&w, "loop", a->loop);
    its_json_knum(&w, "fps", a->fps);
    its_json_knum(&w, "sample_fps", a->sample_fps);
    its_json_knum(&w, "phase_s", a->phase_s);
    its_json_kint(&w, "replay_frames", a->replay_frames);
    its_json_kint(&w, "max_width", a->max_width);
    its_json_kint(&w, "max_height", a->max_height);
    its_json_obj_end(&w);
    if (its_json_finish(&w) < 0)
        return NULL;
    return its_strdup(ITS_MOD_APP, buf);
}

int its_app_config_print(const its_app_config *c, FILE *out)
{
    int rc = its_config_print(&c->cfg, out);
    if (rc < 0)
        return rc;
    fprintf(out, "cameras:%s\n", c->cams.cameras_count ? "" : " []");
    for (unsigned i = 0; i < c->cams.cameras_count; i++) {
        const its_app_camera *a = &c->cams.cameras[i];
        fprintf(out, "  - id: \"%s\"\n", a->id);
        print_url(out, a->url);
        print_str(out, "kind", a->kind);
        print_str(out, "pace", a->pace);
        print_str(out, "scene", a->scene);
        print_str(out, "rtsp_transport", a->rtsp_transport);
        print_str(out, "decode", a->decode);
        fprintf(out, "    loop: %s\n", a->loop ? "true" : "false");
        fprintf(out, "    fps: %g\n    sample_fps: %g\n    phase_s: %g\n", a->fps, a->sample_fps,
                a->phase_s);
        fprintf(out, "    replay_frames: %d\n    max_width: %d\n    max_height: %d\n",
                a->replay_frames, a->max_width, a->max_height);
    }
    return ferror(out) ? ITS_EIO : 0;
}

void its_app_config_free(its_app_config *c)
{
    if (c->cfg.options)
        its_config_free(&c->cfg);
    for (int i = 0; i < c->n_strings; i++)
        its_free(c->strings[i]);
    its_free(c->strings);
    its_free(c->resolved);
    memset(c, 0, sizeof *c);
}

void its_app_config_move(its_app_config *dst, its_app_config *src)
{
    its_app_config_free(dst);
    *dst = *src;
    dst->cfg.settings = &dst->s;
    dst->cfg.extra = &dst->cams;
    memset(src, 0, sizeof *src);
}

/* Give back what its_app_pipeline_opts made before failing. */
/* engine.plan_cache_dir: "auto" is $XDG_CACHE_HOME/its-analytics/plans, or
 * $HOME/.cache/its-analytics/plans (no cache where neither is set); "" is no cache. */
static const char *plan_cache_dir(const char *v, char *buf, size_t len)
{
    if (!v || strcmp(v, "auto") != 0)
        return v ? v : "";
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (xdg && *xdg)
        snprintf(buf, len, "%s/its-analytics/plans", xdg);
    else if (home && *home)
        snprintf(buf, len, "%s/.cache/its-analytics/plans", home);
    else
        return "";
    return buf;
}

static int opts_fail(its_pipeline_opts *o, int rc)
{
    if (o->sink)
        o->sink->destroy(o->sink);
    o->sink = NULL;
    if (o->infer.release)
        o->infer.release(o->infer.ctx);
    memset(&o->infer, 0, sizeof o->infer);
    if (o->hooks.release)
        o->hooks.release(o->hooks.ctx);
    memset(&o->hooks, 0, sizeof o->hooks);
    its_metrics_destroy(o->metrics);
    o->metrics = NULL;
    its_counts_store_destroy(o->counts);
    o->counts = NULL;
    its_evidence_store_destroy(o->evidence);
    o->evidence = NULL;
    return rc;
}

int its_app_pipeline_opts(const its_app_config *c, its_pipeline_opts *o, char *err, size_t errlen)
{
    const its_app_settings *s = &c->s;
    its_pipeline_opts_default(o);
    /* one registry for the pipeline, its hooks and the Redis sink (its/metric_names.h) */
    o->metrics = its_metrics_create();
    if (!o->metrics || its_metrics_std_register(o->metrics) < 0)
        return its_seterr(err, errlen, opts_fail(o, ITS_ENOMEM), "metrics: out of memory");
    o->max_cameras = s->max_cameras;
    o->engine_workers = s->engine_workers;
    o->analytics_workers = s->analytics_workers;
    o->batch_max = s->batch_max;
    o->batch_delay_ms = s->batch_delay_ms;
    o->per_camera = s->per_camera;
    o->queue_capacity = s->capacity;
    o->high_water = s->high_water;
    o->low_water = s->low_water;
    o->pixfmt = s->pixfmt ? ITS_PIX_BGR24 : ITS_PIX_RGB24;
    o->pool_frames = s->pool_frames;
    o->stall_timeout_ms = s->stall_timeout_ms;
    o->backoff_min_ms = s->backoff_min_ms;
    o->backoff_max_ms = s->backoff_max_ms;
    o->max_width = s->max_width;
    o->max_height = s->max_height;
    o->source_nice = s->source_nice;
    o->nvdec_auto = s->backend == ITS_BACKEND_CUDA;
    its_video_set_nvdec_limit(s->nvdec_max_sessions);
    int rc;
    if (s->backend == ITS_BACKEND_NOOP) {
        rc = its_infer_noop_factory(s->noop_cost_us, &o->infer);
    } else {
        /* the engine's frames path (cuda) is sized for the largest frame ingest makes */
        int mw = s->max_width, mh = s->max_height;
        for (unsigned i = 0; i < c->cams.cameras_count; i++) {
            mw = ITS_MAX(mw, c->cams.cameras[i].max_width);
            mh = ITS_MAX(mh, c->cams.cameras[i].max_height);
        }
        char pcd[1024];
        its_infer_engine_opts eo = {
            .model = s->model,
            .plan_cache_dir = plan_cache_dir(s->plan_cache_dir, pcd, sizeof pcd),
            .backend = backends[s->backend],
            .fallback_cpu = s->fallback == 1,
            .threads = s->threads,
            .max_batch = s->batch_max,
            .conf = (float)s->conf,
            .track_conf = (float)s->track_conf,
            .iou = (float)s->iou,
            .max_width = mw,
            .max_height = mh,
            .input_size = s->input_size && *s->input_size ? s->input_size : NULL,
            .labels = s->labels && *s->labels ? s->labels : NULL};
        rc = its_infer_engine_factory(&eo, &o->infer, err, errlen);
    }
    if (rc < 0) {
        if (rc == ITS_ENOMEM)
            its_seterr(err, errlen, rc, "engine: out of memory");
        return opts_fail(o, rc);
    }
    if (s->analytics_enabled && s->counts_hours > 0 &&
        its_counts_store_create(s->max_cameras, &o->counts) < 0)
        return its_seterr(err, errlen, opts_fail(o, ITS_ENOMEM), "analytics: out of memory");
    if (s->analytics_enabled && s->evidence_dir && *s->evidence_dir) {
        its_evidence_config ec = {.dir = s->evidence_dir,
                                  .pre_s = s->evidence_pre_s,
                                  .post_s = s->evidence_post_s,
                                  .ring_bytes = (size_t)s->evidence_ring_mb << 20,
                                  .max_bytes = (uint64_t)s->evidence_max_mb << 20,
                                  .max_age_s = s->evidence_max_age_h * 3600};
        if ((rc = its_evidence_store_create(&ec, &o->evidence, err, errlen)) < 0)
            return opts_fail(o, rc);
    }
    if (s->analytics_enabled) {
        const char *slash = s->model ? strrchr(s->model, '/') : NULL;
        its_app_hooks_opts ho = {.model_name = slash ? slash + 1 : s->model,
                                 .window_s = s->window_s,
                                 .quality_image_fps = s->quality_image_fps,
                                 .baseline_dir = s->baseline_dir,
                                 .metrics = o->metrics,
                                 .counts = o->counts,
                                 .counts_hours = s->counts_hours,
                                 .evidence = o->evidence,
                                 .evidence_events = s->evidence_events,
                                 .scene_dir = s->scene_dir};
        rc = its_app_hooks(&ho, &o->hooks);
        if (rc < 0)
            return its_seterr(err, errlen, opts_fail(o, rc), "analytics: out of memory");
    }
    if (s->sink == ITS_SINKT_FILE)
        o->sink = its_sink_file(s->sink_path);
    else if (s->sink == ITS_SINKT_NULL)
        o->sink = its_sink_null();
    else
        o->sink = its_sink_stdout();
    /* with redis.host set, messages also go to Redis (the configured sink stays) */
    its_publish_config pc; /* the publisher copies its strings */
    if (o->sink && its_publish_settings_apply(&s->redis, &pc, NULL) == 1) {
        its_sink *rs;
        /* the pipeline's observer feeds analytics_latency_seconds, with or without Redis */
        pc.observe_latency = 0;
        rc = its_sink_redis(&pc, o->metrics, &rs, err, errlen);
        if (rc < 0)
            return opts_fail(o, rc);
        its_sink *both[2] = {rs, o->sink};
        o->sink = its_sink_tee(both, 2);
    }
    if (!o->sink)
        return its_seterr(err, errlen, opts_fail(o, ITS_EIO), "sink: cannot open '%s'",
                          s->sink_path);
    if (s->cluster_enabled && !(o->sink = its_sink_fenced(o->sink, &its_app_lease_until)))
        return its_seterr(err, errlen, opts_fail(o, ITS_ENOMEM), "sink: out of memory");
    return 0;
}

int its_app_build_pipeline(const its_app_config *c, its_pipeline_t **out, char *err, size_t errlen)
{
    its_pipeline_opts o;
    int rc = its_app_pipeline_opts(c, &o, err, errlen);
    if (rc < 0)
        return rc;
    its_pipeline_t *p;
    if ((rc = its_pipeline_create(&o, &p, err, errlen)) < 0)
        return rc;
    for (unsigned i = 0; !c->s.cluster_enabled && i < c->cams.cameras_count; i++)
        if ((rc = its_pipeline_add_camera(p, &c->resolved[i], err, errlen)) < 0) {
            its_pipeline_destroy(p);
            return rc;
        }
    *out = p;
    return 0;
}

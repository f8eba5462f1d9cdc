/*
 * its/pipeline.h - the itsd streaming pipeline: camera sources -> SmartBatchProcessor ->
 * engine workers -> analytics workers (sharded by camera) -> sinks.
 *
 *     its_pipeline_opts o;
 *     its_pipeline_opts_default(&o);
 *     its_infer_noop_factory(0, &o.infer);        // or its_infer_engine_factory(...)
 *     o.sink = its_sink_stdout();
 *     its_pipeline_t *p;
 *     its_pipeline_create(&o, &p, err, sizeof err);
 *     its_camera_cfg cam = {.id = "cam-1", .url = "traffic.mp4", .loop = 1};
 *     its_pipeline_add_camera(p, &cam, err, sizeof err);
 *     its_pipeline_start(p);
 *     ...
 *     its_pipeline_stop(p, 3 * ITS_NS_PER_S);     // stop sources, drain, flush the sinks
 *     its_pipeline_destroy(p);
 *
 * Threads: one per camera source; engine_workers engine threads (each with its own engine
 * instance, forming batches one at a time so a camera's frames leave in order); and
 * analytics_workers threads, camera c always on worker c % analytics_workers, which restore
 * each camera's order after the engine, run the per-camera stages and publish. Control calls
 * (add/remove camera, stop) are serialised by the pipeline; stats and lookups may be called
 * from any thread.
 *
 * Accounting: for every camera, frames in = processed + dropped, exactly, once the pipeline
 * is stopped (its_pipeline_camera_stats). Drops are counted by reason: the source's buffers
 * were all in use, the camera's pending limit, the global high-water mark, inference failed,
 * or the drain deadline at shutdown.
 *
 * Messages: one JSON line per processed frame ("v": 1, schema in docs/service.md), boxes
 * normalised to [0, 1] as the message is written (frames hold pixels); analytics windows and
 * events as their own messages. Timestamps in messages are wall-clock ns; latencies are from
 * the monotonic clock.
 */
#ifndef ITS_PIPELINE_H
#define ITS_PIPELINE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "its/batch.h"
#include "its/ingest.h"
#include "its/metrics.h"
#include "its/stage.h"

/* ---- inference backends ---- */

typedef struct its_infer its_infer;
struct its_infer {
    const char *name; /* "noop", "cpu", "cuda" */
    int max_batch;    /* largest batch run() takes */
    const int *sizes; /* prepared batch sizes, ascending, or NULL for any */
    int n_sizes;
    int is_benchmark; /* 1: not a detector (the no-op backend) */
    /* Run n frames (padded: the prepared size chosen). Fill each frame's dets/n_dets (source
     * pixels), stamp ITS_TS_INFER and ITS_TS_POST. A failure fails the whole batch. */
    int (*run)(its_infer *inf, its_frame **frames, int n, int padded);
    /* Optional pipelined pair (NULL: run only). submit starts a batch and returns a ticket
     * (>= 0) without waiting for it; collect(ticket) finishes it as run would (detections,
     * ITS_TS_INFER, ITS_TS_POST) and returns 0 or an error for the whole batch. The engine
     * worker keeps at most two batches submitted and collects them in order, so the next
     * batch's upload overlaps the current one's compute. A failed submit leaves nothing to
     * collect. */
    int (*submit)(its_infer *inf, its_frame **frames, int n, int padded);
    int (*collect)(its_infer *inf, int ticket, its_frame **frames, int n);
    /* Optional with the pair: 1 if collect(ticket) would not block, 0 if the batch is still
     * running (< 0: an error, collect will report it). Lets the worker form and submit the
     * next batch while one runs. */
    int (*ready)(its_infer *inf, int ticket);
    const char *(*label)(its_infer *inf, int class_id); /* class name, or NULL */
    /* Optional: 1 while this instance runs on a fallback engine instead of `name` (a GPU
     * engine that could not be created or failed), else 0; *events: the times it fell back
     * so far. Any thread. */
    int (*fallback)(its_infer *inf, uint64_t *events);
    void (*destroy)(its_infer *inf);
};

/* Makes one backend instance per engine worker (engines are single-threaded). */
typedef struct its_infer_factory {
    int (*create)(void *ctx, its_infer **out, char *err, size_t errlen);
    void (*release)(void *ctx); /* frees ctx when the pipeline is destroyed; may be NULL */
    void *ctx;
} its_infer_factory;

/*
 * The no-op backend, for benchmarks and tests of the pipeline itself: it produces no
 * detections and spends cost_us microseconds per frame busy-waiting (0: nothing), standing
 * in for an engine of known speed. It is not inference and says so in every status line.
 */
int its_infer_noop_factory(double cost_us, its_infer_factory *out);

typedef struct its_infer_engine_opts {
    const char *model;          /* ONNX file */
    const char *backend;        /* "cpu" (default) or "cuda" */
    int fallback_cpu;           /* a GPU backend that cannot be created or fails at run time is
                                 * replaced by the cpu engine (logged) and retried with backoff */
    int threads;                /* cpu threads per engine; 0: cores */
    int max_batch;              /* 1..32 */
    float conf, iou;            /* 0: the detector's defaults */
    float track_conf;           /* detections from here to conf are kept for the tracker only, after
                                   a frame's n_dets (its_frame n_weak); 0: none */
    int max_width;              /* largest frame the engine's frames path (cuda) takes: 0 = 1920 */
    int max_height;             /* 0 = 1080; larger frames are letterboxed on the host instead */
    int host_letterbox;         /* 1: never use the frames path (letterbox on the host) */
    const char *labels;         /* class-name file (one per line); NULL: the model's metadata */
    const char *input_size;     /* "WxH": run the network at that size (its_model_set_input_size) */
    const char *plan_cache_dir; /* GPU plan cache folder (its_engine_opts); "" or NULL: none */
} its_infer_engine_opts;

/* The real detector (engine + letterbox + decode + NMS). The model is loaded once and shared
 * by the workers' engines; a GPU engine is created once and shared by the workers
 * (its_engine_share: one copy of the weights and plans, an execution state per worker). */
int its_infer_engine_factory(const its_infer_engine_opts *o, its_infer_factory *out, char *err,
                             size_t errlen);

/* ---- sinks ---- */

typedef enum its_msg_type {
    ITS_MSG_FRAME = 0, /* one per processed frame */
    ITS_MSG_WINDOW,    /* an analytics window (1 min, 15 min) */
    ITS_MSG_EVENT,     /* a line crossing, an incident */
    ITS_MSG_DRIFT,     /* the model metrics report (confidence and class drift) */
    /* cache-only records (SPEC's cache types): Redis keys with SPEC's TTLs, not messages of
     * the stream; the line sinks (stdout, file) skip them */
    ITS_MSG_CACHE_QUALITY,    /* its:cam:{id}:quality, quality_scores TTL */
    ITS_MSG_CACHE_PRED_SHORT, /* its:cam:{id}:predictions:short, predictions_short TTL */
    ITS_MSG_CACHE_PRED_LONG,  /* its:cam:{id}:predictions:long, predictions_long TTL */
    ITS_MSG_CACHE_BASELINE,   /* its:model:{camera}:baseline, model_baselines TTL */
    ITS_MSG_CACHE_WINDOW_60M, /* its:cam:{id}:analytics:60m, analytics TTL */
} its_msg_type;

#define ITS_MSG_IS_CACHE(t) ((t) >= ITS_MSG_CACHE_QUALITY)

typedef struct its_sink its_sink;
struct its_sink {
    const char *name;
    /* One message as a JSON line (no newline). `frame` is set for ITS_MSG_FRAME. Called
     * concurrently from the analytics workers: a sink serialises internally. */
    int (*publish)(its_sink *s, its_msg_type type, const char *camera, const its_frame *frame,
                   const char *json, size_t len);
    void (*flush)(its_sink *s);
    void (*destroy)(its_sink *s);
};

/* JSON lines on stdout (buffered, flushed every status interval and at exit). */
its_sink *its_sink_stdout(void);
/* JSON lines appended to a file. NULL on error. */
its_sink *its_sink_file(const char *path);
/* Counts and discards (benchmarks). */
its_sink *its_sink_null(void);
/* Fan out to several sinks (takes ownership of them). */
its_sink *its_sink_tee(its_sink **sinks, int n);
/* Passes messages to inner (owned) only while its_now_ns() is below *valid_until (0: never),
 * and drops the rest, counted and logged once per spell: the fence of a cluster replica
 * (its/cluster.h), so that a process that stalled past its lease publishes nothing of the
 * cameras others have taken meanwhile, whatever its threads do before it notices. */
its_sink *its_sink_fenced(its_sink *inner, const _Atomic uint64_t *valid_until);

/* ---- per-camera analytics hooks ---- */

/*
 * Optional per-camera stages run on the camera's analytics worker, in the order analytics,
 * quality, modelmon, with no locks needed (one camera, one thread). `emit` publishes a
 * window/event message for the camera.
 */
typedef void (*its_emit_fn)(void *emit_ctx, its_msg_type type, const char *json, size_t len);
typedef struct its_camera_hooks {
    /* create per-camera state (scene: the camera's scene file, may be NULL) */
    int (*open)(void *ctx, const char *camera, const char *scene, void **state, char *err,
                size_t errlen);
    /* stage ITS_TS_QUALITY (after analytics): set frame->quality */
    void (*quality)(void *state, its_frame *f);
    /* stage ITS_TS_MODELMON */
    void (*modelmon)(void *state, its_frame *f);
    /* stage ITS_TS_ANALYTICS: set track ids, update analytics, emit windows/events */
    void (*analytics)(void *state, its_frame *f, its_emit_fn emit, void *emit_ctx);
    void (*close)(void *state);
    void (*release)(void *ctx); /* frees ctx when the pipeline is destroyed; may be NULL */
    void *ctx;
} its_camera_hooks;

/* ---- the pipeline ---- */

typedef struct its_camera_cfg {
    char *id;
    char *url;
    char *kind;  /* "auto", "file", "rtsp", "http", "hls", "replay"; NULL: auto */
    char *scene; /* analytics scene file, NULL: none */
    int loop;
    int realtime; /* -1: the default (1) */
    double fps;
    double sample_fps; /* pass on at most this many frames per second of media time; 0: all */
    double phase_s;    /* replay; < 0: spread automatically over the replay cameras */
    int replay_frames;
    int rtsp_udp; /* rtsp_transport: udp */
    int decode;   /* its_video_decode (docs/decode.md); zero is cpu: the configuration and the
                   * API set auto, their default */
    int max_width, max_height;
} its_camera_cfg;

/* The defaults of its_pipeline_opts (its_pipeline_opts_default); itsd's options table
 * (its/app.h) takes its defaults from the same macros. */
#define ITS_PIPE_MAX_CAMERAS       256
#define ITS_PIPE_ENGINE_WORKERS    1
#define ITS_PIPE_ANALYTICS_WORKERS 2
#define ITS_PIPE_BATCH_MAX         4
#define ITS_PIPE_BATCH_DELAY_MS    5
#define ITS_PIPE_PER_CAMERA        8
#define ITS_PIPE_QUEUE_CAPACITY    1000
#define ITS_PIPE_HIGH_WATER        800
#define ITS_PIPE_LOW_WATER         200
#define ITS_PIPE_POOL_FRAMES       12
#define ITS_PIPE_STALL_TIMEOUT_MS  5000
#define ITS_PIPE_BACKOFF_MIN_MS    250
#define ITS_PIPE_BACKOFF_MAX_MS    30000
#define ITS_PIPE_MAX_WIDTH         1920
#define ITS_PIPE_MAX_HEIGHT        1080
#define ITS_PIPE_SOURCE_NICE       10

typedef struct its_pipeline_opts {
    its_infer_factory infer; /* owned by the pipeline from create on */
    its_sink *sink;          /* owned */
    its_camera_hooks hooks;  /* optional */
    its_metrics *metrics;    /* owned; with the standard rows; NULL: the pipeline makes one */
    int max_cameras;         /* cameras present at once (removed ones until reclaimed) */
    int engine_workers;
    int analytics_workers;
    /* owned; the cameras' interval counts (its/counts.h), filled by the hooks; NULL: none */
    struct its_counts_store *counts;
    /* owned; events' snapshots and clips (its/evidence.h): file and live cameras get a ring of
     * their packets, the hooks capture; NULL: none */
    struct its_evidence_store *evidence;
    /* batching */
    int batch_max; /* largest batch, capped by the backend's own largest */
    double batch_delay_ms;
    int per_camera;
    int queue_capacity, high_water, low_water;
    /* ingest defaults for every camera */
    its_pixfmt pixfmt;
    int pool_frames;
    int stall_timeout_ms, backoff_min_ms, backoff_max_ms;
    int max_width, max_height;
    int source_nice; /* niceness of the source (decoding) threads */
    int nvdec_auto;  /* 1: cameras with decode auto try NVDEC (a cuda engine); 0: the CPU */
} its_pipeline_opts;

typedef struct its_camera_stats {
    char id[ITS_CAMERA_ID_MAX + 1];
    char url[1024];
    uint64_t gen; /* the slot's life: changes when the slot is reused by another camera */
    int active;
    uint64_t in;        /* frames decoded by the source */
    uint64_t processed; /* frames published */
    uint64_t dropped[ITS_DROP_REASON_COUNT];
    uint64_t dropped_total;
    uint64_t in_flight; /* in - processed - dropped: in the pipeline now */
    uint64_t detections;
    uint64_t tracked; /* detections with a track id */
    its_source_stats source;
} its_camera_stats;

typedef struct its_pipeline_t its_pipeline_t;

void its_pipeline_opts_default(its_pipeline_opts *o);
int its_pipeline_create(its_pipeline_opts *o, its_pipeline_t **out, char *err, size_t errlen);
/* Add a camera (started at once if the pipeline runs). Errors: ITS_EEXIST (id taken),
 * ITS_EFULL (every slot in use; while some are retiring it first waits up to 3 s for one,
 * without blocking other control calls), the source's errors. A replay camera's clip is decoded on
 * its source's thread (its state is ITS_SOURCE_LOADING meanwhile), never here. */
int its_pipeline_add_camera(its_pipeline_t *p, const its_camera_cfg *c, char *err, size_t errlen);
/* Stop a camera's source without waiting for its thread; its frames in flight finish and its
 * slot is reclaimed once they are through. ITS_ENOENT if unknown. */
int its_pipeline_remove_camera(its_pipeline_t *p, const char *id);
int its_pipeline_start(its_pipeline_t *p);
/*
 * Stop the sources, process what is queued for up to drain_ns (what is still queued then, in
 * the batcher or before the analytics workers, is dropped and counted as ITS_DROP_SHUTDOWN;
 * batches already running always finish), then close the sinks (a Redis sink delivers what
 * it can first), so that the counters read after stop are final. Idempotent.
 */
int its_pipeline_stop(its_pipeline_t *p, uint64_t drain_ns);
void its_pipeline_destroy(its_pipeline_t *p);

/* Reclaim the slots of removed cameras whose frames are all through (add and remove do it
 * too); frees their sources, pools and hooks, and (glibc) hands the memory that their threads
 * freed back to the system at most once a second. Call from the control thread now and then. */
void its_pipeline_reap(its_pipeline_t *p);
/* One past the highest slot in use or retired so far: iterate slots below it
 * (its_pipeline_camera_stats answers ITS_ENOENT for a free one). */
int its_pipeline_n_cameras(its_pipeline_t *p);
int its_pipeline_camera_stats(its_pipeline_t *p, int slot, its_camera_stats *out);
int its_pipeline_find_camera(its_pipeline_t *p, const char *id);
/* Push a JPEG/PNG into a camera of kind "push" (its_source_push_image's errors; ITS_ENOENT
 * for an unknown camera). Any thread; never waits for the pipeline. */
int its_pipeline_push_image(its_pipeline_t *p, const char *id, const uint8_t *data, size_t len,
                            uint64_t ts_ns, char *err, size_t errlen);
/*
 * Stage latencies. Every published frame adds each stage of the stage table (its/stage.h)
 * that it went through to its_stage_latency_seconds{stage} in the pipeline's registry, which
 * carries the standard table (its/metric_names.h) and lives as long as the pipeline; the
 * service exports it (/metrics, /v1/status) and may add its own series and collectors.
 */
its_metrics *its_pipeline_metrics(its_pipeline_t *p);
/* The cameras' interval counts (its_pipeline_opts.counts), or NULL. */
struct its_counts_store *its_pipeline_counts(its_pipeline_t *p);
/* The events' evidence (its_pipeline_opts.evidence), or NULL. */
struct its_evidence_store *its_pipeline_evidence(its_pipeline_t *p);
/* Cumulative stage histogram counts at one moment, to measure an interval (status line,
 * benchmark phases). */
typedef struct its_stage_window {
    uint64_t cum[ITS_STAGE_COUNT][ITS_METRICS_MAX_BUCKETS + 1];
} its_stage_window;
void its_pipeline_stage_mark(its_pipeline_t *p, its_stage_window *w);
/* Estimated q-quantile (seconds, as PromQL's histogram_quantile) of a stage over the samples
 * since the mark (NULL: since the start); NaN without samples. *count (may be NULL): the
 * samples. Any thread. */
double its_pipeline_stage_quantile(its_pipeline_t *p, its_stage s, double q,
                                   const its_stage_window *since, uint64_t *count);
void its_pipeline_batch_stats(its_pipeline_t *p, its_batcher_stats *out);
/* One status line (no newline): per-camera FPS and drops, batch size, stage p99 vs budget. */
int its_pipeline_status_line(its_pipeline_t *p, char *buf, size_t len);
/* A function called for every published frame on its analytics worker, after the sinks
 * (metrics). Set it before start. */
typedef void (*its_frame_observer)(void *ctx, const its_frame *f, const char *camera);
void its_pipeline_set_observer(its_pipeline_t *p, its_frame_observer fn, void *ctx);
/* Frames waiting for the analytics workers (all workers together). Any thread. */
size_t its_pipeline_analytics_queued(its_pipeline_t *p);
/* The detector's name of a class id (NULL: none, e.g. the no-op backend). Any thread. */
const char *its_pipeline_class_name(its_pipeline_t *p, int class_id);
/* The per-camera hooks the pipeline was created with (its_pipeline_opts.hooks). Any thread. */
const its_camera_hooks *its_pipeline_hooks(its_pipeline_t *p);
/* Flush the sinks (the status timer does this). */
void its_pipeline_flush(its_pipeline_t *p);
/* Messages published so far (all types). */
uint64_t its_pipeline_messages(its_pipeline_t *p);
/* Inference batches that failed so far (a failed submit, run or collect); their frames are
 * also counted as ITS_DROP_ENGINE_ERROR drops. */
uint64_t its_pipeline_engine_errors(its_pipeline_t *p);
/* Engine workers running on a fallback engine now (its_infer.fallback), and *events (may be
 * NULL) the fallbacks so far over all workers. */
int its_pipeline_engine_fallback(its_pipeline_t *p, uint64_t *events);

#endif

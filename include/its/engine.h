/*
 * its/engine.h - the inference engine: load an ONNX detector, prepare it on a backend, run
 * batches.
 *
 *     its_model_t *m;
 *     char err[256];
 *     if (its_model_load("yolo11n.onnx", &m, err, sizeof err) < 0)
 *         fprintf(stderr, "%s\n", err);   // "node 'Conv_12' (Conv): weight shape ..."
 *     its_engine_opts o = {.backend = "cpu", .threads = 2, .max_batch = 4};
 *     its_engine_t *e;
 *     its_engine_create(m, &o, &e, err, sizeof err);
 *     its_engine_run(e, 4, input_nchw, outputs);   // outputs[i]: host buffers, batch 4
 *     its_engine_destroy(e);
 *     its_model_free(m);
 *
 * Contract: a model is immutable after loading and may be shared by several engines. An
 * engine owns all memory its runs need (arena planned at create time for max_batch); a run
 * allocates nothing. One thread at a time may call run/submit/wait on an engine. Errors are
 * ITS_E* codes; details go to `err` and the log.
 *
 * Backends: "cpu" is built in. "cuda" (where the build has it) is a module, its_cuda.so,
 * loaded on the first request for a cuda engine, pinned memory or availability, so a process
 * that never asks maps no CUDA library. It is found beside the executable, in
 * ../lib/its-analytics from there, or in the build tree, or where ITS_CUDA_MODULE says; when
 * it is missing or cannot load, "cuda" is unavailable and its_engine_create's err gives the
 * reason (docs/engine.md, "Backend modules").
 */
#ifndef ITS_ENGINE_H
#define ITS_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "its/det.h"

#define ITS_MAX_DIMS 8

typedef struct its_model its_model_t;
typedef struct its_engine its_engine_t;

typedef enum its_dtype {
    ITS_DT_FLOAT32 = 1, /* values follow onnx.TensorProto.DataType */
    ITS_DT_UINT8 = 2,
    ITS_DT_INT8 = 3,
    ITS_DT_INT32 = 6,
    ITS_DT_INT64 = 7,
    ITS_DT_BOOL = 9,
    ITS_DT_FLOAT16 = 10,
} its_dtype;

/* A graph input or output. dims[0] is -1 when the batch dimension is symbolic. */
typedef struct its_tensor_desc {
    const char *name;
    its_dtype dtype;
    int rank;
    int64_t dims[ITS_MAX_DIMS];
} its_tensor_desc;

int its_model_load(const char *path, its_model_t **out, char *err, size_t errlen);
int its_model_load_buffer(const void *data, size_t len, its_model_t **out, char *err,
                          size_t errlen);
void its_model_free(its_model_t *m);

int its_model_n_inputs(const its_model_t *m);
int its_model_n_outputs(const its_model_t *m);
const its_tensor_desc *its_model_input(const its_model_t *m, int i);
const its_tensor_desc *its_model_output(const its_model_t *m, int i);
/* metadata_props value for key ("names", "stride", "imgsz"...), or NULL. */
const char *its_model_meta(const its_model_t *m, const char *key);

typedef struct its_engine_opts {
    const char *backend; /* "cpu" (default) or "cuda" (loads its module, see above) */
    int threads;         /* cpu: worker threads, 0 = number of cores */
    int max_batch;       /* largest batch run will be given; 0 = 1 */
    int device;          /* cuda: device ordinal */
    /* Plan cache folder (cuda: the cuDNN engine choices and plans; docs/cuda.md, "Plan
     * cache"): NULL = the environment's ITS_PLAN_CACHE_DIR, "" or unset = no cache. */
    const char *plan_cache_dir;
} its_engine_opts;

int its_engine_create(const its_model_t *m, const its_engine_opts *opts, its_engine_t **out,
                      char *err, size_t errlen);
void its_engine_destroy(its_engine_t *e);

/*
 * its_engine_share: a new engine that runs what base runs, sharing its graph, device
 * weights and plans (cuda: the cuDNN plans and choices), with an execution state of its own
 * (activation arena, streams, staging, CUDA graphs, frames path). Engine workers of one
 * process create one engine and share it, so the model is planned once and its weights are
 * held once. Where the backend has nothing to share (cpu) it is an engine of its own,
 * created from base's model and options. base must be alive during the call; afterwards
 * base and the new engine are independent: destroyed in any order, used from different
 * threads at once (each by one thread at a time, as any engine).
 */
int its_engine_share(its_engine_t *base, its_engine_t **out, char *err, size_t errlen);

/*
 * Run a batch of n (1..max_batch) inputs synchronously. input: the model's first input as
 * float32 NCHW, n images back to back. outputs[i]: caller buffers for output i with the
 * batch dimension set to n, float32.
 */
int its_engine_run(its_engine_t *e, int n, const float *input, float *const *outputs);

/*
 * its_engine_run_io: like its_engine_run for any model: inputs[i] holds n items of graph
 * input i in its own dtype (a non-batched input: the whole tensor), outputs[i] receives n
 * items of output i in its dtype.
 * its_engine_output_shape: the shape output i has for a batch of n (n <= max_batch).
 * its_model_n_nodes: nodes after the load-time passes (for a model-info dump).
 * its_engine_describe: see below.
 */
/* its_model_load_buffer_frozen: load with some graph inputs fixed to the given values (they
 * become constants, so shape inputs such as Reshape's shape may come from the caller). */
typedef struct its_input_value {
    const char *name;
    const void *data;
    size_t bytes;
} its_input_value;
int its_model_load_buffer_frozen(const void *data, size_t len, const its_input_value *vals,
                                 int n_vals, its_model_t **out, char *err, size_t errlen);
int its_engine_run_io(its_engine_t *e, int n, const void *const *inputs, void *const *outputs);
int its_engine_output_shape(const its_engine_t *e, int i, int n, its_tensor_desc *out);
int its_engine_max_batch(const its_engine_t *e);
/* The batch sizes the engine prepared, ascending (1, 2, 4, ... below max_batch, then
 * max_batch; a run of n uses the smallest one >= n): sizes[0..cap-1] receives the first cap
 * of them. Returns how many there are (possibly more than cap), or ITS_EINVAL. */
int its_engine_batch_sizes(const its_engine_t *e, int *sizes, int cap);
/* 1 if a batch of n costs what its prepared size costs (cuda: one captured graph per size
 * runs the padded batch whole), so callers gain by forming batches of the prepared sizes;
 * 0 if it costs n items (cpu). */
int its_engine_batches_padded(const its_engine_t *e);
int its_model_n_nodes(const its_model_t *m);
/* Run the model at another input size (both multiples of 32): Reshape targets and anchor
 * tables baked at the exported size are re-derived, so a 16:9 camera can run at 640x384
 * instead of letterboxing into 640x640 (Ultralytics' "rect" inference; 40% less compute).
 * Call before creating engines. ITS_EINVAL for a bad size (model unchanged); another error
 * names the node whose baked size cannot be re-derived, and the model then refuses engines. */
int its_model_set_input_size(its_model_t *m, int width, int height, char *err, size_t errlen);
/* "640x384" -> 640, 384 (1..8192 each); ITS_EINVAL otherwise. */
int its_model_parse_size(const char *s, int *width, int *height);
/* One line describing the prepared graph: backend, op counts after all passes, fusions. */
int its_engine_describe(const its_engine_t *e, char *buf, size_t len);

/* Process-wide counters for /metrics (the metrics module reads them): models loaded and
 * rejected, engines created and refused, runs and failed runs. Thread-safe. */
typedef struct its_engine_counters {
    uint64_t models_loaded, models_rejected;
    uint64_t engines_created, engines_failed;
    uint64_t runs, runs_failed;
    /* the frames path: batches submitted, frames in them, submits refused or waits failed */
    uint64_t detect_batches, detect_frames, detect_failed;
    /* the plan cache (its_engine_opts.plan_cache_dir): lookups answered from it and planned
     * anew, files rejected (stale, corrupt, a configuration that no longer builds: planned
     * anew and rewritten), searches run (cuDNN heuristics queries, algorithm searches,
     * autotuning); engines made by its_engine_share */
    uint64_t plan_cache_hits, plan_cache_misses, plan_cache_rejected, plan_searches;
    uint64_t engines_shared;
} its_engine_counters;
void its_engine_get_counters(its_engine_counters *out);

/*
 * Asynchronous runs: its_engine_submit starts a batch like its_engine_run_io and returns at
 * once where the backend is asynchronous (cuda: the input is copied into pinned staging, the
 * batch's CUDA graph is launched); the input buffers may be reused as soon as it returns.
 * its_engine_wait blocks until that batch is done and its outputs are in the `outputs`
 * buffers given to submit (which must stay valid until then). One batch in flight per
 * engine: a submit while one is in flight waits for it first. The cpu backend runs the batch
 * inside submit; wait then returns at once.
 */
int its_engine_submit(its_engine_t *e, int n, const void *const *inputs, void *const *outputs);
int its_engine_wait(its_engine_t *e);

/*
 * The frames path: 8-bit frames in, a detection list per frame out, with
 * pre-processing (letterbox), the network, decoding and NMS all on the backend's device.
 * Only for a YOLOv8/YOLO11-style detector: one float32 input [N, 3, H, W] and one float32
 * output [N, 4 + C, A] with A = the anchors of strides 8, 16 and 32 (rows cx, cy, w, h in
 * input pixels, then C class scores). The letterbox follows Ultralytics (aspect kept,
 * centred, padded with 114, RGB, / 255); NMS is class-aware; boxes come back in source
 * pixels, clipped to the frame (its_det, track_id 0).
 *
 *     its_engine_detect_opts d = {.conf = 0.5f, .iou = 0.45f, .max_det = 100,
 *                                 .max_width = 1920, .max_height = 1080};
 *     if (its_engine_detect_setup(e, &d, err, sizeof err) == ITS_EUNSUPPORTED)
 *         ... letterbox on the host and use its_engine_run ...
 *     its_engine_frame f[16] = {{.data = px, .width = 1280, .height = 720, .stride = 3840,
 *                                .pixfmt = ITS_PIX_RGB24}, ...};
 *     int t = its_engine_detect_submit(e, 16, f);      // a ticket, or < 0
 *     ... submit the next batch (a second ticket) while this one runs ...
 *     its_engine_det_list lists[16];
 *     its_det dets[16 * 100];                           // n * max_det
 *     its_engine_detect_wait(e, t, lists, dets);        // frame i: dets[i * max_det + j]
 *
 * Contract: setup once per engine, after create (it allocates device memory and captures a
 * graph per prepared batch size; nothing allocates afterwards). It returns ITS_EUNSUPPORTED
 * (with the reason in err) where the backend has no such path (cpu) or the model is not a
 * YOLOv8/YOLO11 head, so the caller can fall back to host pre-processing. At most two
 * batches are in flight per engine (ITS_EBUSY beyond: wait first); tickets are waited for in
 * any order, each exactly once. The pixels must stay valid and unchanged until the wait for
 * their ticket returns (where they are in memory from its_engine_host_alloc the upload reads
 * them directly, otherwise submit copies them into staging first). A frame of stride *
 * height bytes above max_width * max_height * 3 (NV12: its two planes) is refused
 * (ITS_EINVAL), as are bad sizes, strides or formats: a refused submit has no effect.
 * Thread use as for run: one thread at a time per engine.
 */
typedef struct its_engine_frame {
    const uint8_t *data; /* packed pixels, or the Y plane for NV12 */
    const uint8_t *uv;   /* NV12: the interleaved chroma plane; NULL otherwise */
    int width, height;
    int stride, uv_stride; /* bytes per row */
    its_pixfmt pixfmt;     /* RGB24, BGR24 or NV12 (its/det.h) */
} its_engine_frame;

typedef struct its_engine_detect_opts {
    float conf;                /* keep detections with score >= conf (0: ITS_DET_CONF_DEFAULT) */
    float iou;                 /* NMS IoU threshold (0: 0.45) */
    int max_det;               /* per frame after NMS (0: 300; at most 1000) */
    int max_cand;              /* candidates per frame before NMS (0: 1024; at most 1024) */
    int max_width, max_height; /* largest frame (0: 1920 x 1080) */
} its_engine_detect_opts;

typedef struct its_engine_det_list {
    int32_t count;     /* detections of this frame (<= max_det) */
    int32_t n_cand;    /* candidates over conf before NMS */
    int32_t truncated; /* 1: more than max_cand candidates (the best max_cand were kept) */
    int32_t reserved;
} its_engine_det_list;

int its_engine_detect_setup(its_engine_t *e, const its_engine_detect_opts *o, char *err,
                            size_t errlen);
/* n frames (1..max_batch); returns a ticket (>= 0) or an ITS_E* code. */
int its_engine_detect_submit(its_engine_t *e, int n, const its_engine_frame *frames);
/* Blocks until the batch of `ticket` is done; lists[0..n-1] and dets[0..n * max_det - 1]
 * receive its results (max_det as set up). Returns n, or an ITS_E* code (the ticket is
 * released either way). */
int its_engine_detect_wait(its_engine_t *e, int ticket, its_engine_det_list *lists, its_det *dets);
/* Without blocking: 1 if the batch of `ticket` is done (wait will not block), 0 if it is still
 * running, or an ITS_E* code. */
int its_engine_detect_poll(its_engine_t *e, int ticket);
/* max_det as set up (0 before setup). */
int its_engine_detect_max_det(const its_engine_t *e);

/*
 * Host memory the backend can upload from directly (cuda: pinned with cudaHostAlloc, shared
 * by every engine in the process); frames whose pixels live there skip the staging copy of
 * the frames path. NULL where the backend has no such memory (cpu) or on failure: then use
 * ordinary memory. Free with its_engine_host_free (NULL is a no-op). Any thread. Pinned
 * memory is a scarce resource: use it for frame pools, not for everything.
 */
void *its_engine_host_alloc(const char *backend, size_t bytes);
void its_engine_host_free(const char *backend, void *p);

/* Bytes of the activation arena planned for max_batch. */
size_t its_engine_arena_bytes(const its_engine_t *e);
const char *its_engine_backend_name(const its_engine_t *e);
/* 1 if the named backend is compiled in and usable here (a GPU present for "cuda"). */
int its_engine_backend_available(const char *backend);

#endif

/*
 * cuda_internal.h - the cuda backend's shared state and the functions its files call across
 * (private to src/engine/cuda; not installed, not for tests).
 *
 * The backend is split along its stages:
 *   cuda_backend.c  the vtable: init, backend passes (optimize), supports_op, weight upload,
 *                   prepare/run/sync/free, the extension lookup (get_proc);
 *   cuda_plan.c     planning: tensor layouts and buffers, Concat elimination, the arena;
 *   cuda_ops.c      one planning function per ONNX op and one launch function per step kind;
 *   cuda_graph.c    execution: the arena and staging, algorithm choice, CUDA graph capture
 *                   and replay;
 *   cuda_frames.c   the frames path (its_backend_frames_i) and the pinned host allocator.
 * cuda_backend.c and cuda_frames.c never call each other: both use cuda_graph.c and the state
 * below. The frames path registers its own cleanup (cuda_ctx.frames_free).
 */
#ifndef ITS_CUDA_INTERNAL_H
#define ITS_CUDA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include "../backend.h"
#include "../ir.h"
#include "../plancache.h"
#include "cuda_backend_impl.h"
#include "cuda_kernels.h"
#include "cuda_prepost.h"
#include "cudnn_fused.h"

#define MAX_PLANS 8
#define ALIGN     256
#define CONV_WS   ((size_t)64 << 20) /* cuDNN workspace: algorithms needing more are skipped */
#define CUBLAS_WS ((size_t)8 << 20)
#define MAX_IO    512 /* graph inputs/outputs (the parity test exports every tensor) */
#define LAY_PLAIN 0
#define LAY_NHWC  1
#define LAY_F32   2 /* graph input staging: fp32 row-major */

typedef enum skind {
    ST_EW,
    ST_CONV,
    ST_DIRECT, /* our direct convolution from the fp32 graph input (the stem) */
    ST_SOFTMAX,
    ST_MAXPOOL,
    ST_UPSAMPLE,
    ST_MATMUL
} skind;

typedef struct buf_t {
    size_t bytes;
    int first, last; /* step range in which it is live */
    size_t off;
} buf_t;

/* An operand: a buffer plus a byte offset, or a constant device pointer (buf < 0). */
typedef struct opnd {
    int buf;
    size_t off;
    const void *cptr;
} opnd;

typedef struct conv_desc {
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t c;
    cudnnConvolutionFwdAlgo_t algo;
    int key[12];
    its_fconv_spec spec;
    int fused; /* index+1 into cuda_ctx.fcache when the fused cuDNN graph is used */
} conv_desc;

typedef struct step {
    skind kind;
    int node;
    opnd out, a, b;
    /* ST_EW */
    its_cuda_ew op;
    its_cuda_nd nd;
    float alpha;
    int a_f32, out_f32;
    /* ST_CONV: b = residual sum (buf -1 and cptr NULL if none) */
    int conv;
    const void *w;
    const float *bias;
    int act, sum_first, k;
    int64_t total;
    /* ST_SOFTMAX */
    int64_t outer, inner;
    int n;
    /* ST_MAXPOOL / ST_UPSAMPLE (NHWC b, h, w, c of the input; pixel strides, 0 = packed) */
    int pb, ph, pw, pc, ks, stride, pad, oh, ow, fy, fx;
    int64_t xcs, ycs;
    /* ST_MATMUL: C[M,N] = A[M,K] B[K,N], batched */
    int M, N, K;
    int64_t batch, sa, sb;
} step;

typedef struct plan {
    int batch;
    const its_shape *shapes;
    step *steps;
    int n_steps, cap_steps;
    buf_t *bufs;
    int n_bufs, cap_bufs;
    int *tbuf, *tlay, *tconv; /* per tensor: buffer, its layout, converted copy */
    /* Views (concat elimination): an NHWC tensor may live at byte offset toff[t] of its buffer
     * with tcs[t] elements from one pixel to the next (0: packed) - a Split output, or a
     * producer writing straight into its slice of a Concat. tpack[t]: packed NHWC copy. */
    size_t *toff;
    int64_t *tcs;
    int *tpack;
    int *acat;     /* per tensor: the Concat output it is written into (-1: none) */
    int64_t *apos; /* ... at this channel offset */
    conv_desc *convs;
    int n_convs, cap_convs;
    int in_buf[MAX_IO], out_buf[MAX_IO];
    size_t in_bytes[MAX_IO], out_bytes[MAX_IO]; /* whole batch, fp32 */
    size_t arena;
    cudaGraphExec_t exec_full, exec_net;
    cudaGraphExec_t exec_det[2]; /* frames -> detections, one per staging slot */
} plan;

/* The frames path (cuda_frames.c): double-buffered staging, one slot per batch in
 * flight, so the upload of batch n+1 (copy stream) overlaps the compute of batch n. */
typedef struct det_slot {
    uint8_t *pin_pix, *dev_pix;      /* frame bytes */
    its_cuda_frame *pin_fr, *dev_fr; /* descriptors (device pointers into dev_pix) */
    its_engine_det_list *pin_lists, *dev_lists;
    its_det *pin_dets, *dev_dets;
    cudaEvent_t uploaded, done;
    int busy, batch, n;
} det_slot;

typedef struct fused_cache {
    its_fconv_spec spec;
    its_fconv f;
    int ok, tuned;
} fused_cache;

typedef struct algo_cache {
    int key[12];
    cudnnConvolutionFwdAlgo_t algo;
} algo_cache;

typedef struct cuda_ctx {
    int device, max_batch;
    cudaStream_t stream, copy_stream;
    cudnnHandle_t dnn;
    cublasHandle_t blas;
    const its_graph *g;
    plan plans[MAX_PLANS];
    int n_plans;
    /* constants: per tensor device pointer (fp16 plain, or conv weights KRSC fp16 / bias fp32) */
    void **cdev;
    uint8_t *wmem;
    size_t wbytes;
    uint8_t *arena;
    size_t arena_size, act_size;
    void *conv_ws, *blas_ws;
    void *pin_in[MAX_IO], *pin_out[MAX_IO];
    size_t pin_in_bytes[MAX_IO], pin_out_bytes[MAX_IO];
    algo_cache *algos;
    int n_algos, cap_algos;
    fused_cache *fcache;
    int n_fused, cap_fused, n_fused_ok, n_fused_fail;
    int finalized;
    /* the run in flight (sync copies its outputs out) */
    int pending;
    plan *pend_plan;
    int pend_n;
    void *const *pend_out;
    void *pend_out_ptrs[MAX_IO];
    double load_ms_find;
    /* frames path */
    int det_ready;
    its__cuda_det_opts det;
    det_slot slots[2];
    void *det_scratch;
    int next_slot, det_tried;
    uint64_t det_direct, det_copied; /* frames uploaded from where they were / via staging */
    void (*frames_free)(struct cuda_ctx *c); /* set by the frames path's setup */
    /* Sharing (its_engine_share -> cuda_share): the contexts made from one share the graph,
     * the weights (cdev, wmem), the plans' steps, buffers and descriptors, the cuDNN plans
     * (fcache) and choices (algos), and the cuDNN handle those plans were finalised with
     * (plan_dnn); *refs counts them and the last one frees what they share. Each has its own
     * streams, handles for execution (dnn: its own in a shared context), arena, staging,
     * CUDA graphs (plans[i].exec_*) and frames path. */
    _Atomic int *refs;
    int is_share;
    cudnnHandle_t plan_dnn;
    /* the plan cache (cuda_plancache.c): NULL when off */
    its_plancache *pcache;
    char *pc_path;
    int pc_dirty, pc_warned;
    uint64_t pc_hits, pc_misses, pc_searches;
} cuda_ctx;

#define FAIL(code, ...)                                                                            \
    do {                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                        \
        return (code);                                                                             \
    } while (0)

/* ---- small helpers of planning and execution ---- */

static inline int is_const(const its_graph *g, int t)
{
    return t >= 0 && g->tensors[t].kind == ITS_TK_CONST;
}

static inline void strides_of(const its_shape *s, int lay, int64_t *st)
{
    if (lay == LAY_NHWC && s->rank == 4) {
        int64_t C = s->dims[1], H = s->dims[2], W = s->dims[3];
        st[0] = H * W * C;
        st[1] = 1;
        st[2] = W * C;
        st[3] = C;
        return;
    }
    int64_t acc = 1;
    for (int d = s->rank - 1; d >= 0; d--) {
        st[d] = acc;
        acc *= s->dims[d];
    }
}

/* Elements from one NHWC pixel of tensor t to the next (its channel count when packed). */
static inline int64_t pix_stride(const plan *p, int t)
{
    return p->tcs[t] > 0 ? p->tcs[t] : p->shapes[t].dims[1];
}

/* Is t an NHWC channel slice of a wider tensor? */
static inline int is_strided(const plan *p, int t)
{
    return p->tlay[t] == LAY_NHWC && p->shapes[t].rank == 4 && p->tcs[t] > 0 &&
           p->tcs[t] != p->shapes[t].dims[1];
}

/* Element strides of tensor t read in layout lay (its view strides where lay is its own). */
static inline void tstrides(const plan *p, int t, int lay, int64_t *st)
{
    const its_shape *s = &p->shapes[t];
    strides_of(s, lay, st);
    if (lay == LAY_NHWC && s->rank == 4 && p->tcs[t] > 0) {
        int64_t cs = p->tcs[t];
        st[0] = s->dims[2] * s->dims[3] * cs;
        st[2] = s->dims[3] * cs;
        st[3] = cs;
    }
}

static inline size_t tbytes(const its_shape *s, size_t elem)
{
    return (size_t)its__shape_numel(s) * elem;
}

static inline opnd nobuf(void)
{
    opnd o = {-1, 0, NULL};
    return o;
}

static inline opnd bufop(int b)
{
    opnd o = {b, 0, NULL};
    return o;
}

static inline int64_t norm_axis(int64_t a, int rank)
{
    return a < 0 ? a + rank : a;
}

/* The device address of an operand (a constant, or a buffer of the arena). */
static inline void *ptr_of(cuda_ctx *c, const plan *p, const opnd *o)
{
    if (o->buf < 0)
        return (void *)o->cptr;
    return c->arena + p->bufs[o->buf].off + o->off;
}

/* cuda_backend.c */
/* Grow *arr (elements of elem bytes, zero-filled) to at least need; ITS_ENOMEM on failure. */
int its__cuda_grow(void **arr, int *cap, int need, size_t elem);

/* cuda_plan.c */
/* Plan p (batch and shapes set) for graph g: steps, buffers, arena offsets. */
int its__cuda_plan(cuda_ctx *c, const its_graph *g, plan *p, char *err, size_t errlen);
int its__cuda_new_buf(plan *p, size_t bytes);
int its__cuda_emit(plan *p, const step *s);
int its__cuda_ensure(cuda_ctx *c, const its_graph *g, plan *p, int t, int lay, int packed,
                     opnd *out);
void its__cuda_bcast_strides(const plan *p, int t, int lay, int r, const int64_t *odims,
                             int64_t *st);
int its__cuda_out_layout_ew(const its_graph *g, const plan *p, const its_ir_node *n, int o);
int its__cuda_const_ints(const its_graph *g, int t, int64_t *v, int max);
int its__cuda_nhwc_output(plan *p, int o, int cat, opnd *out);
int its__cuda_split_views(const its_ir_node *n, const plan *p, int t, int64_t ax);

/* cuda_ops.c */
/* Plan node i: the steps that compute its outputs (one planning function per op). */
int its__cuda_plan_node(cuda_ctx *c, const its_graph *g, plan *p, int i, char *err, size_t errlen);
/* Launch step s on strm (one launch function per step kind). */
int its__cuda_exec_step(cuda_ctx *c, plan *p, const step *s, cudaStream_t strm);
/* Choose the legacy cuDNN algorithm of an unfused convolution step (cached per shape). */
int its__cuda_find_algo(cuda_ctx *c, plan *p, const step *s);

/* cuda_graph.c */
plan *its__cuda_find_plan(cuda_ctx *c, int batch);
/* Every step of p, in order, on strm (recorded into a CUDA graph by the capture functions). */
int its__cuda_exec_net(cuda_ctx *c, plan *p, cudaStream_t strm);
/* End the stream capture begun on c->stream and instantiate it into *exec; rc: what the
 * recorded work returned (on failure the partial graph is discarded). */
int its__cuda_end_capture(cuda_ctx *c, int rc, cudaGraphExec_t *exec);
/* Allocate the arena and staging for the largest plan, choose algorithms, capture graphs. */
int its__cuda_finalize(cuda_ctx *c, char *err, size_t errlen);
/* The devtools extension's replays (cuda_backend_impl.h). */
int its__cuda_time_net(void *ctx, int batch, int iters, float *ms, int n_ms);
int its__cuda_replay_net(void *ctx, int batch);
size_t its__cuda_weight_bytes(void *ctx);

/* cuda_plancache.c: the plan cache (docs/cuda.md, "Plan cache"). */
/* Open the cache for this context's device and the engine's key (backend vtable's plan_cache). */
void its__cuda_plan_cache_open(void *ctx, const its_backend_cache *bc);
/* The fused graph of spec from the cache: 1 (built from the cached configuration or plan,
 * in *f), 0 (the cache says no engine takes it: *f untouched), or -1 (not cached, or the
 * cached one no longer builds: plan anew). */
int its__cuda_pc_fused(cuda_ctx *c, const its_fconv_spec *spec, its_fconv *f);
/* The legacy algorithm of conv key from the cache: 1 (in *algo) or 0. */
int its__cuda_pc_algo(cuda_ctx *c, const int *key, cudnnConvolutionFwdAlgo_t *algo);
/* After finalize: write the file where anything was planned anew, count, close. */
void its__cuda_plan_cache_close(cuda_ctx *c);

/* The extension tables (its_backend_i.get_proc). */
extern const its_backend_frames_i its__cuda_frames_ext;
extern const its_backend_host_mem_i its__cuda_host_mem_ext;
extern const its_cuda_devtools_i its__cuda_devtools_ext;

#endif

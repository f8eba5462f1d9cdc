/*
 * cuda_backend.c - the cuda backend: fp16 activations and weights with fp32 accumulation,
 * NHWC for everything that convolutions touch, row-major ("plain") where ONNX semantics need
 * it (Reshape, Transpose, MatMul, Softmax of the attention block and the detection head).
 *
 * Load time (optimize, prepare):
 * - optimize drops activation QuantizeLinear -> DequantizeLinear pairs (int8 QDQ models run
 *   on their dequantised weights, which the generic constant folding already produced) and
 *   fuses Conv + activation and Conv + residual Add (the graph's node fields).
 * - prepare(B) turns the graph into a list of steps over "buffers" for batch B: a layout per
 *   tensor is chosen by its producer (Conv, MaxPool, Resize write NHWC; Transpose, Reshape,
 *   MatMul, Softmax write plain; element-wise ops and Concat/Split/Slice keep their input's),
 *   and a conversion step is inserted only where a consumer needs the other layout. Concat
 *   writes each input straight into its slice of the output (a strided copy that also does
 *   any layout change); Reshape and Identity are views. Buffers get arena offsets from their
 *   liveness (first-fit).
 * - the last prepare (the largest batch) allocates the one device arena (activations, the
 *   cuDNN and cuBLAS workspaces), the pinned host staging buffers, picks each convolution's
 *   cuDNN algorithm once per distinct shape (cudnnFind, cached), and captures one CUDA graph
 *   per prepared batch size: upload, the network, output conversion, download.
 * run() copies the caller's input into pinned staging and launches the graph; sync() waits
 * and copies the outputs out, so run/sync is the asynchronous submit/wait pair. After load
 * nothing allocates device memory.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include "its/alloc.h"
#include "its/clock.h"
#include "its/error.h"
#include "its/log.h"

#include "../backend.h"
#include "../ir.h"
#include "cuda_backend_impl.h"
#include "cuda_check.h"
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

/* The frames path (its__cuda_detect_*): double-buffered staging, one slot per batch in
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
} cuda_ctx;

#define FAIL(code, ...)                                                                            \
    do {                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                        \
        return (code);                                                                             \
    } while (0)

static int grow(void **arr, int *cap, int need, size_t elem)
{
    if (need <= *cap)
        return 0;
    int nc = *cap ? *cap * 2 : 64;
    while (nc < need)
        nc *= 2;
    void *p = its_realloc(ITS_MOD_ENGINE, *arr, (size_t)nc * elem);
    if (!p)
        return ITS_ENOMEM;
    memset((char *)p + (size_t)*cap * elem, 0, (size_t)(nc - *cap) * elem);
    *arr = p;
    *cap = nc;
    return 0;
}

/* ---- vtable: availability, init ---------------------------------------------------------- */

static int cuda_available(void)
{
    int n = 0;
    return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

static int init_handles(cuda_ctx *c)
{
    ITS_CUDA_TRY(cudaSetDevice(c->device));
    ITS_CUDA_TRY(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
    ITS_CUDA_TRY(cudaStreamCreateWithFlags(&c->copy_stream, cudaStreamNonBlocking));
    ITS_CUDNN_TRY(cudnnCreate(&c->dnn));
    ITS_CUBLAS_TRY(cublasCreate(&c->blas));
    ITS_CUBLAS_TRY(cublasSetMathMode(c->blas, CUBLAS_DEFAULT_MATH));
    return 0;
}

static void cuda_free(void *vctx);

static int cuda_init(const its_engine_opts *o, void **out, char *err, size_t errlen)
{
    cuda_ctx *c = its_calloc(ITS_MOD_ENGINE, 1, sizeof *c);
    if (!c)
        return ITS_ENOMEM;
    c->device = o->device;
    c->max_batch = o->max_batch > 0 ? o->max_batch : 1;
    int rc = init_handles(c);
    if (rc < 0) {
        cuda_free(c);
        FAIL(rc, "cuda: device %d: initialisation failed (%s)", o->device, its_strerror(rc));
    }
    *out = c;
    return 0;
}

/* ---- optimize: drop activation Q/DQ, fuse Conv epilogues ---------------------------------- */

static int resolve(const int *repl, int t)
{
    while (t >= 0 && repl[t] >= 0)
        t = repl[t];
    return t;
}

static int is_const(const its_graph *g, int t);

/* Conv (no bias) -> Add(constant [1, K, 1, 1]): the exporters that dequantised ConvInteger
 * models left the bias as a separate Add; it becomes the Conv's bias input, so the Conv's
 * activation and residual can fuse after it. */
static int fold_conv_bias(its_graph *g)
{
    for (int i = 0; i < g->n_nodes; i++) {
        its_ir_node *c = &g->nodes[i];
        if (c->op != ITS_OP_CONV || (c->n_in > 2 && c->in[2] >= 0) || c->act || c->sum >= 0)
            continue;
        int t = c->out[0];
        const its_ir_tensor *T = &g->tensors[t];
        if (T->n_consumers != 1 || (T->flags & ITS_TF_OUTPUT) || T->shape.rank != 4 ||
            !is_const(g, c->in[1]))
            continue;
        int64_t K = g->tensors[c->in[1]].shape.dims[0];
        for (int j = i + 1; j < g->n_nodes; j++) {
            its_ir_node *a = &g->nodes[j];
            if (a->op == ITS_OP_NONE || a->n_in < 1)
                continue;
            int side = a->in[0] == t ? 0 : (a->n_in > 1 && a->in[1] == t ? 1 : -1);
            if (side < 0)
                continue;
            int bt = a->n_in == 2 ? a->in[1 - side] : -1;
            if (a->op != ITS_OP_ADD || bt < 0 || !is_const(g, bt) ||
                g->tensors[bt].dtype != ITS_DT_FLOAT32)
                break;
            const its_shape *bs = &g->tensors[bt].shape;
            int ok = its__shape_numel(bs) == K &&
                     ((bs->rank == 4 && bs->dims[0] == 1 && bs->dims[1] == K) ||
                      (bs->rank == 3 && bs->dims[0] == K));
            if (!ok)
                break;
            if (c->n_in < 3) {
                int *in = its_realloc(ITS_MOD_ENGINE, c->in, 3 * sizeof(int));
                if (!in)
                    return ITS_ENOMEM;
                c->in = in;
                c->n_in = 3;
            }
            /* the bias as its own [K] constant (shape inference wants [K]) */
            char name[64];
            snprintf(name, sizeof name, "cuda_bias_%d", i);
            int nb = its__graph_add_tensor(g, name, ITS_DT_FLOAT32, ITS_TK_CONST);
            if (nb < 0)
                return nb;
            float *data = its_malloc(ITS_MOD_ENGINE, (size_t)K * sizeof(float));
            if (!data)
                return ITS_ENOMEM;
            memcpy(data, g->tensors[bt].data, (size_t)K * sizeof(float));
            g->tensors[nb].data = data;
            g->tensors[nb].shape.rank = 1;
            g->tensors[nb].shape.dims[0] = K;
            g->tensors[nb].producer = -1;
            c = &g->nodes[i]; /* nodes did not move, but stay safe */
            a = &g->nodes[j];
            c->in[2] = nb;
            c->out[0] = a->out[0];
            a->op = ITS_OP_NONE;
            a->n_in = 0;
            a->n_out = 0; /* the Conv produces its output now */
            break;
        }
    }
    return 0;
}

static int cuda_optimize(void *vctx, its_graph *g, char *err, size_t errlen)
{
    (void)vctx;
    int *repl = its_malloc(ITS_MOD_ENGINE, (size_t)(g->n_tensors + 1) * sizeof(int));
    if (!repl)
        return ITS_ENOMEM;
    for (int t = 0; t < g->n_tensors; t++)
        repl[t] = -1;
    int dropped = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        its_ir_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] >= 0)
                n->in[k] = resolve(repl, n->in[k]);
        if (n->op != ITS_OP_DEQUANTIZE_LINEAR || n->in[0] < 0)
            continue;
        int p = g->tensors[n->in[0]].producer;
        if (p < 0 || g->nodes[p].op != ITS_OP_QUANTIZE_LINEAR)
            continue;
        /* activation quantisation is dropped: DQ(Q(x)) -> x */
        repl[n->out[0]] = g->nodes[p].in[0];
        n->op = ITS_OP_NONE;
        n->n_in = 0; /* no longer a consumer of the Q output */
        dropped++;
    }
    for (int k = 0; k < g->n_outputs; k++) {
        int t = resolve(repl, g->outputs[k]);
        if (t != g->outputs[k]) {
            g->tensors[t].flags |= ITS_TF_OUTPUT;
            g->outputs[k] = t;
        }
    }
    its_free(repl);
    int rc = its__graph_toposort(g, err, errlen);
    if (rc < 0)
        return rc;
    /* Q nodes nobody reads any more */
    for (int i = 0; i < g->n_nodes; i++) {
        its_ir_node *n = &g->nodes[i];
        if (n->op == ITS_OP_QUANTIZE_LINEAR && g->tensors[n->out[0]].n_consumers == 0 &&
            !(g->tensors[n->out[0]].flags & ITS_TF_OUTPUT))
            n->op = ITS_OP_NONE;
    }
    if ((rc = its__graph_compact(g)) < 0)
        return rc;
    if (!getenv("ITS_CUDA_NO_FUSION")) {
        if ((rc = fold_conv_bias(g)) < 0)
            return rc;
        if ((rc = its__graph_toposort(g, err, errlen)) < 0 || (rc = its__graph_compact(g)) < 0)
            return rc;
        its__pass_fuse_conv_act(g, (1u << ITS_ACT_SILU) | (1u << ITS_ACT_RELU) |
                                       (1u << ITS_ACT_LEAKY) | (1u << ITS_ACT_SIGMOID));
        its__pass_fuse_conv_sum(g);
        if ((rc = its__graph_compact(g)) < 0)
            return rc;
    }
    if (dropped)
        its_logi("engine", "cuda",
                 "dropped %d activation QuantizeLinear/DequantizeLinear pairs "
                 "(weights run dequantised to fp16)",
                 dropped);
    return 0;
}

/* ---- supports_op ------------------------------------------------------------------------ */

static int is_const(const its_graph *g, int t)
{
    return t >= 0 && g->tensors[t].kind == ITS_TK_CONST;
}

static int cuda_supports(void *vctx, const its_graph *g, int i)
{
    (void)vctx;
    const its_ir_node *n = &g->nodes[i];
    for (int k = 0; k < n->n_in; k++) {
        int t = n->in[k];
        if (t < 0)
            continue;
        its_dtype dt = g->tensors[t].dtype;
        /* shape/index constants are read on the host; activations must be float */
        if (dt != ITS_DT_FLOAT32 && !is_const(g, t))
            return 0;
    }
    switch (n->op) {
    case ITS_OP_CONV: {
        if (n->fq_on[0] || n->fq_on[1]) /* fake quantisation: the cpu backend's fusion */
            return 0;
        if (!is_const(g, n->in[1]) || g->tensors[n->in[1]].shape.rank != 4 ||
            g->tensors[n->in[1]].dtype != ITS_DT_FLOAT32)
            return 0;
        if (n->n_in > 2 && n->in[2] >= 0 && !is_const(g, n->in[2]))
            return 0;
        const its_attr *p = its__attr(n, "pads");
        if (p && (p->n != 4 || p->ints[0] != p->ints[2] || p->ints[1] != p->ints[3]))
            return 0;
        const char *ap = its__attr_s(n, "auto_pad", "NOTSET");
        return strcmp(ap, "NOTSET") == 0;
    }
    case ITS_OP_ADD:
    case ITS_OP_SUB:
    case ITS_OP_MUL:
    case ITS_OP_DIV:
    case ITS_OP_SIGMOID:
    case ITS_OP_SILU:
    case ITS_OP_RELU:
    case ITS_OP_LEAKY_RELU:
    case ITS_OP_CONCAT:
    case ITS_OP_SPLIT:
    case ITS_OP_SLICE:
    case ITS_OP_TRANSPOSE:
    case ITS_OP_RESHAPE:
    case ITS_OP_IDENTITY:
    case ITS_OP_SOFTMAX:
    case ITS_OP_MATMUL:
        return 1;
    case ITS_OP_CAST:
        return its__attr_i(n, "to", 0) == ITS_DT_FLOAT32;
    case ITS_OP_MAXPOOL: {
        const its_attr *k = its__attr(n, "kernel_shape");
        const its_attr *p = its__attr(n, "pads");
        const its_attr *s = its__attr(n, "strides");
        if (!k || k->n != 2 || k->ints[0] != k->ints[1] || its__attr_i(n, "ceil_mode", 0))
            return 0;
        if (p && (p->n != 4 || p->ints[0] != p->ints[1] || p->ints[0] != p->ints[2] ||
                  p->ints[0] != p->ints[3]))
            return 0;
        return !s || (s->n == 2 && s->ints[0] == s->ints[1]);
    }
    case ITS_OP_RESIZE:
        return strcmp(its__attr_s(n, "mode", "nearest"), "nearest") == 0 &&
               strcmp(its__attr_s(n, "coordinate_transformation_mode", "half_pixel"),
                      "asymmetric") == 0 &&
               strcmp(its__attr_s(n, "nearest_mode", "round_prefer_floor"), "floor") == 0;
    default:
        return 0;
    }
}

/* ---- constants ---------------------------------------------------------------------------- */

static uint16_t f32_to_f16(float f)
{
    /* round to nearest even, with overflow to inf and subnormals */
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t mant = x & 0x7FFFFFu;
    int exp = (int)((x >> 23) & 0xFF);
    if (exp == 0xFF)
        return (uint16_t)(sign | 0x7C00u | (mant ? 0x200u : 0));
    int e = exp - 127 + 15;
    if (e >= 31)
        return (uint16_t)(sign | 0x7C00u);
    if (e <= 0) {
        if (e < -10)
            return (uint16_t)sign;
        mant |= 0x800000u;
        int shift = 14 - e;
        uint32_t h = mant >> shift, rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1)))
            h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((uint32_t)e << 10) | (mant >> 13), rem = mant & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1)))
        h++;
    return (uint16_t)(sign | h);
}

static int upload_constants(cuda_ctx *c, const its_graph *g, char *err, size_t errlen)
{
    int *kinds = its_calloc(ITS_MOD_ENGINE, (size_t)g->n_tensors + 1, sizeof(int));
    c->cdev = its_calloc(ITS_MOD_ENGINE, (size_t)g->n_tensors + 1, sizeof(void *));
    if (!kinds || !c->cdev) {
        its_free(kinds);
        return ITS_ENOMEM;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const its_ir_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_in; k++) {
            int t = n->in[k];
            if (!is_const(g, t) || g->tensors[t].dtype != ITS_DT_FLOAT32)
                continue;
            if (n->op == ITS_OP_CONV)
                kinds[t] = k == 1 ? 2 : 3;
            else if (n->op == ITS_OP_RESIZE || n->op == ITS_OP_RESHAPE || n->op == ITS_OP_SLICE ||
                     n->op == ITS_OP_SPLIT)
                continue; /* read on the host */
            else if (!kinds[t])
                kinds[t] = 1;
        }
    }
    size_t total = 0;
    for (int t = 0; t < g->n_tensors; t++) {
        int kd = kinds[t]; /* 1 plain fp16, 2 conv weight KRSC fp16, 3 fp32 */
        if (!kd)
            continue;
        size_t n = (size_t)its__shape_numel(&g->tensors[t].shape);
        total += ((n * (kd == 3 ? 4 : 2)) + ALIGN - 1) / ALIGN * ALIGN;
    }
    uint8_t *host = its_malloc(ITS_MOD_ENGINE, total ? total : 1);
    if (!host) {
        its_free(kinds);
        return ITS_ENOMEM;
    }
    if (cudaMalloc((void **)&c->wmem, total ? total : 1) != cudaSuccess) {
        its_free(kinds);
        its_free(host);
        FAIL(ITS_ENOMEM, "cuda: cannot allocate %zu bytes of device memory for weights", total);
    }
    c->wbytes = total;
    size_t off = 0;
    for (int t = 0; t < g->n_tensors; t++) {
        int kd = kinds[t];
        if (!kd)
            continue;
        const its_ir_tensor *T = &g->tensors[t];
        const float *src = T->data;
        size_t n = (size_t)its__shape_numel(&T->shape);
        if (kd == 3) {
            memcpy(host + off, src, n * 4);
        } else if (kd == 2) { /* [K, C, R, S] -> [K, R, S, C] */
            int64_t K = T->shape.dims[0], C = T->shape.dims[1], R = T->shape.dims[2],
                    S = T->shape.dims[3];
            uint16_t *d = (uint16_t *)(host + off);
            for (int64_t k = 0; k < K; k++)
                for (int64_t ch = 0; ch < C; ch++)
                    for (int64_t r = 0; r < R; r++)
                        for (int64_t s = 0; s < S; s++)
                            d[((k * R + r) * S + s) * C + ch] =
                                f32_to_f16(src[((k * C + ch) * R + r) * S + s]);
        } else {
            uint16_t *d = (uint16_t *)(host + off);
            for (size_t i = 0; i < n; i++)
                d[i] = f32_to_f16(src[i]);
        }
        c->cdev[t] = c->wmem + off;
        off += ((n * (kd == 3 ? 4 : 2)) + ALIGN - 1) / ALIGN * ALIGN;
    }
    cudaError_t e = cudaMemcpy(c->wmem, host, total, cudaMemcpyHostToDevice);
    its_free(host);
    its_free(kinds);
    if (e != cudaSuccess)
        FAIL(ITS_EBACKEND, "cuda: weight upload failed: %s", cudaGetErrorString(e));
    return 0;
}

/* ---- planning ------------------------------------------------------------------------------ */

static void strides_of(const its_shape *s, int lay, int64_t *st)
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
static int64_t pix_stride(const plan *p, int t)
{
    return p->tcs[t] > 0 ? p->tcs[t] : p->shapes[t].dims[1];
}

/* Is t an NHWC channel slice of a wider tensor? */
static int is_strided(const plan *p, int t)
{
    return p->tlay[t] == LAY_NHWC && p->shapes[t].rank == 4 && p->tcs[t] > 0 &&
           p->tcs[t] != p->shapes[t].dims[1];
}

/* Element strides of tensor t read in layout lay (its view strides where lay is its own). */
static void tstrides(const plan *p, int t, int lay, int64_t *st)
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

static int new_buf(plan *p, size_t bytes)
{
    if (grow((void **)&p->bufs, &p->cap_bufs, p->n_bufs + 1, sizeof(buf_t)) < 0)
        return ITS_ENOMEM;
    buf_t *b = &p->bufs[p->n_bufs];
    b->bytes = bytes ? bytes : 2;
    b->first = p->n_steps;
    b->last = p->n_steps;
    b->off = 0;
    return p->n_bufs++;
}

static void touch(plan *p, const opnd *o, int at)
{
    if (o->buf >= 0) {
        if (p->bufs[o->buf].first > at)
            p->bufs[o->buf].first = at;
        if (p->bufs[o->buf].last < at)
            p->bufs[o->buf].last = at;
    }
}

static int emit(plan *p, const step *s)
{
    if (grow((void **)&p->steps, &p->cap_steps, p->n_steps + 1, sizeof(step)) < 0)
        return ITS_ENOMEM;
    int at = p->n_steps++;
    p->steps[at] = *s;
    touch(p, &s->out, at);
    touch(p, &s->a, at);
    touch(p, &s->b, at);
    return 0;
}

static size_t tbytes(const its_shape *s, size_t elem)
{
    return (size_t)its__shape_numel(s) * elem;
}

static opnd nobuf(void)
{
    opnd o = {-1, 0, NULL};
    return o;
}

static opnd bufop(int b)
{
    opnd o = {b, 0, NULL};
    return o;
}

/* Operand for tensor t in layout lay (fp16), converting once if needed; with `packed`, an
 * NHWC channel-slice view is first copied to a packed tensor. */
static int ensure(cuda_ctx *c, const its_graph *g, plan *p, int t, int lay, int packed, opnd *out)
{
    const its_shape *s = &p->shapes[t];
    if (is_const(g, t)) {
        if (!c->cdev[t] ||
            (lay == LAY_NHWC && s->rank == 4 && s->dims[1] > 1 && s->dims[2] * s->dims[3] > 1))
            return ITS_EUNSUPPORTED; /* constants are uploaded plain */
        out->buf = -1;
        out->off = 0;
        out->cptr = c->cdev[t];
        return 0;
    }
    if (lay == LAY_NHWC && s->rank != 4)
        return ITS_EUNSUPPORTED;
    if (p->tbuf[t] < 0)
        return ITS_EINTERNAL;
    int cur = p->tlay[t];
    int same = cur == lay || (s->rank != 4 && cur != LAY_F32);
    if (same && !(packed && is_strided(p, t))) {
        out->buf = p->tbuf[t];
        out->off = p->toff[t];
        out->cptr = NULL;
        return 0;
    }
    int *conv = cur == LAY_NHWC && lay == LAY_NHWC ? &p->tpack[t] : &p->tconv[t];
    if (*conv < 0) {
        int b = new_buf(p, tbytes(s, 2));
        if (b < 0)
            return b;
        step st;
        memset(&st, 0, sizeof st);
        st.kind = ST_EW;
        st.node = -1;
        st.op = ITS_CUDA_EW_COPY;
        st.out = bufop(b);
        st.a = bufop(p->tbuf[t]);
        st.a.off = p->toff[t];
        st.b = nobuf();
        st.a_f32 = cur == LAY_F32;
        st.nd.rank = s->rank;
        memcpy(st.nd.dims, s->dims, sizeof(int64_t) * (size_t)s->rank);
        strides_of(s, lay, st.nd.stride[0]);
        tstrides(p, t, cur == LAY_F32 ? LAY_PLAIN : cur, st.nd.stride[1]);
        int rc = emit(p, &st);
        if (rc < 0)
            return rc;
        *conv = b;
    }
    *out = bufop(*conv);
    return 0;
}

/* Broadcast strides of operand t (read in layout lay) against output dims (rank r). */
static void bcast_strides(const plan *p, int t, int lay, int r, const int64_t *odims, int64_t *st)
{
    const its_shape *s = &p->shapes[t];
    int64_t own[ITS_MAX_DIMS];
    tstrides(p, t, lay, own);
    for (int d = 0; d < r; d++) {
        int sd = d - (r - s->rank);
        st[d] = (sd < 0 || s->dims[sd] == 1 || odims[d] == 1) ? 0 : own[sd];
    }
}

static int out_layout_ew(const its_graph *g, const plan *p, const its_ir_node *n, int o)
{
    for (int k = 0; k < n->n_in; k++) {
        int t = n->in[k];
        if (t < 0 || is_const(g, t))
            continue;
        if (p->shapes[t].rank == 4 && p->shapes[o].rank == 4 && p->tlay[t] == LAY_NHWC)
            return LAY_NHWC;
    }
    return LAY_PLAIN;
}

static int64_t norm_axis(int64_t a, int rank)
{
    return a < 0 ? a + rank : a;
}

/* Read an int64 constant vector (ONNX shape/index inputs). */
static int const_ints(const its_graph *g, int t, int64_t *v, int max)
{
    if (!is_const(g, t))
        return -1;
    const its_ir_tensor *T = &g->tensors[t];
    int64_t n = its__shape_numel(&T->shape);
    if (n > max)
        return -1;
    for (int64_t i = 0; i < n; i++) {
        if (T->dtype == ITS_DT_INT64)
            v[i] = ((const int64_t *)T->data)[i];
        else if (T->dtype == ITS_DT_INT32)
            v[i] = ((const int32_t *)T->data)[i];
        else
            return -1;
    }
    return (int)n;
}

static int find_fused(cuda_ctx *c, conv_desc *cd);

/* The buffer of Concat output `cat`, created by the first producer writing into its slice. */
static int cat_buf(plan *p, int cat)
{
    if (p->tbuf[cat] < 0) {
        int b = new_buf(p, tbytes(&p->shapes[cat], 2));
        if (b < 0)
            return b;
        p->tbuf[cat] = b;
        p->tlay[cat] = LAY_NHWC;
    }
    return p->tbuf[cat];
}

/* Place NHWC output tensor o of a producer: its own buffer, or (cat >= 0) its slice of that
 * Concat's output; *out receives the operand the producer writes (buffer and offset). */
static int nhwc_output(plan *p, int o, int cat, opnd *out)
{
    int b = cat >= 0 ? cat_buf(p, cat) : new_buf(p, tbytes(&p->shapes[o], 2));
    if (b < 0)
        return b;
    p->tbuf[o] = b;
    p->tlay[o] = LAY_NHWC;
    if (cat >= 0) {
        p->toff[o] = (size_t)p->apos[o] * 2;
        p->tcs[o] = p->shapes[cat].dims[1];
    }
    *out = bufop(b);
    out->off = p->toff[o];
    return 0;
}

/*
 * With ITS_CUDA_DIRECT=1, a convolution reading the fp32 NCHW graph input with few channels
 * (the stem: 3) runs as our direct kernel, which also does the input conversion (cuDNN's
 * tensor-core engines need 8 channels). Off by default: on an H200 at batch 32 it took 490 us
 * against 446 us for the fp32 -> fp16 NHWC conversion plus cuDNN's stem (run 11). Returns 1
 * if planned that way, 0 if the node does not qualify.
 */
static int plan_direct(cuda_ctx *c, const its_graph *g, plan *p, int i)
{
    const its_ir_node *n = &g->nodes[i];
    int o = n->out[0], xt = n->in[0];
    const its_shape *xs = &p->shapes[xt], *ws = &g->tensors[n->in[1]].shape, *ys = &p->shapes[o];
    const its_attr *pa = its__attr(n, "pads"), *sa = its__attr(n, "strides"),
                   *da = its__attr(n, "dilations");
    if (!getenv("ITS_CUDA_DIRECT") || p->tlay[xt] != LAY_F32 || xs->rank != 4 || xs->dims[1] > 4 ||
        its__attr_i(n, "group", 1) != 1 || n->sum >= 0 || ws->dims[0] % 16 ||
        ws->dims[0] * ws->dims[2] * ws->dims[3] * xs->dims[1] > ITS_CUDA_DIRECT_MAX_W)
        return 0;
    if (da && (da->ints[0] != 1 || (da->n > 1 && da->ints[1] != 1)))
        return 0;
    if (pa && pa->n == 4 && (pa->ints[0] != pa->ints[2] || pa->ints[1] != pa->ints[3]))
        return 0;
    int cat = p->acat[o];
    step st;
    memset(&st, 0, sizeof st);
    int rc = nhwc_output(p, o, cat, &st.out);
    if (rc < 0)
        return rc;
    st.kind = ST_DIRECT;
    st.node = i;
    st.a = bufop(p->tbuf[xt]);
    st.a.off = p->toff[xt];
    st.b = nobuf();
    st.w = c->cdev[n->in[1]];
    st.bias = n->n_in > 2 && n->in[2] >= 0 ? c->cdev[n->in[2]] : NULL;
    st.act = n->act;
    st.alpha = n->act_alpha;
    st.pb = (int)xs->dims[0];
    st.pc = (int)xs->dims[1];
    st.ph = (int)xs->dims[2];
    st.pw = (int)xs->dims[3];
    st.k = (int)ws->dims[0];
    st.M = (int)ws->dims[2]; /* kernel height / width */
    st.N = (int)ws->dims[3];
    st.stride = sa ? (int)sa->ints[0] : 1;
    st.fx = sa && sa->n > 1 ? (int)sa->ints[1] : st.stride;
    st.pad = pa ? (int)pa->ints[0] : 0;
    st.fy = pa && pa->n > 1 ? (int)pa->ints[1] : st.pad;
    st.oh = (int)ys->dims[2];
    st.ow = (int)ys->dims[3];
    st.ycs = p->tcs[o];
    rc = emit(p, &st);
    return rc < 0 ? rc : 1;
}

static int plan_conv(cuda_ctx *c, const its_graph *g, plan *p, int i, char *err, size_t errlen)
{
    const its_ir_node *n = &g->nodes[i];
    int o = n->out[0];
    const its_shape *xs = &p->shapes[n->in[0]], *ws = &g->tensors[n->in[1]].shape,
                    *ys = &p->shapes[o];
    int direct = plan_direct(c, g, p, i);
    if (direct != 0)
        return direct < 0 ? direct : 0;
    opnd x;
    int rc = ensure(c, g, p, n->in[0], LAY_NHWC, 0, &x);
    if (rc < 0)
        FAIL(rc, "node '%s' (Conv): input layout", n->name);
    opnd sum = nobuf();
    if (n->sum >= 0 && (rc = ensure(c, g, p, n->sum, LAY_NHWC, 0, &sum)) < 0)
        FAIL(rc, "node '%s' (Conv): residual layout", n->name);
    if (grow((void **)&p->convs, &p->cap_convs, p->n_convs + 1, sizeof(conv_desc)) < 0)
        return ITS_ENOMEM;
    conv_desc *cd = &p->convs[p->n_convs];
    memset(cd, 0, sizeof *cd);
    const its_attr *pa = its__attr(n, "pads"), *sa = its__attr(n, "strides"),
                   *da = its__attr(n, "dilations");
    int ph = pa ? (int)pa->ints[0] : 0, pw = pa ? (int)pa->ints[1] : 0;
    int sh = sa ? (int)sa->ints[0] : 1, sw = sa && sa->n > 1 ? (int)sa->ints[1] : sh;
    int dh = da ? (int)da->ints[0] : 1, dw = da && da->n > 1 ? (int)da->ints[1] : dh;
    int groups = (int)its__attr_i(n, "group", 1);
    int key[12] = {(int)xs->dims[0], (int)xs->dims[1], (int)xs->dims[2], (int)xs->dims[3],
                   (int)ws->dims[0], (int)ws->dims[2], (int)ws->dims[3], ph * 64 + pw,
                   sh * 64 + sw,     dh * 64 + dw,     groups,           0};
    memcpy(cd->key, key, sizeof key);
    its_fconv_spec *sp = &cd->spec;
    memset(sp, 0, sizeof *sp); /* compared with memcmp in the cache */
    sp->n = xs->dims[0];
    sp->c = xs->dims[1];
    sp->h = xs->dims[2];
    sp->w = xs->dims[3];
    sp->k = ws->dims[0];
    sp->r = ws->dims[2];
    sp->s = ws->dims[3];
    sp->oh = ys->dims[2];
    sp->ow = ys->dims[3];
    sp->ph = ph;
    sp->pw = pw;
    sp->sh = sh;
    sp->sw = sw;
    sp->dh = dh;
    sp->dw = dw;
    sp->groups = groups;
    sp->act = (int)n->act;
    sp->alpha = n->act_alpha;
    sp->has_bias = n->n_in > 2 && n->in[2] >= 0;
    sp->has_sum = n->sum >= 0;
    sp->sum_first = n->sum_first;
    sp->max_ws = (int64_t)CONV_WS;
    /* strided operands: x and the residual may be channel slices (Split views, Concat slices),
     * y may go straight into its Concat slice; if cuDNN has no fused engine for that, the
     * operands are packed (copies) and y gets its own buffer */
    int cat = p->acat[o];
    sp->xcs = x.buf >= 0 && is_strided(p, n->in[0]) ? pix_stride(p, n->in[0]) : 0;
    sp->scs = sum.buf >= 0 && is_strided(p, n->sum) ? pix_stride(p, n->sum) : 0;
    sp->ycs = cat >= 0 ? p->shapes[cat].dims[1] : 0;
    ITS_CUDNN_TRY(cudnnCreateTensorDescriptor(&cd->x));
    ITS_CUDNN_TRY(cudnnCreateTensorDescriptor(&cd->y));
    ITS_CUDNN_TRY(cudnnCreateFilterDescriptor(&cd->w));
    ITS_CUDNN_TRY(cudnnCreateConvolutionDescriptor(&cd->c));
    p->n_convs++;
    ITS_CUDNN_TRY(cudnnSetTensor4dDescriptor(cd->x, CUDNN_TENSOR_NHWC, CUDNN_DATA_HALF,
                                             (int)xs->dims[0], (int)xs->dims[1], (int)xs->dims[2],
                                             (int)xs->dims[3]));
    ITS_CUDNN_TRY(cudnnSetTensor4dDescriptor(cd->y, CUDNN_TENSOR_NHWC, CUDNN_DATA_HALF,
                                             (int)ys->dims[0], (int)ys->dims[1], (int)ys->dims[2],
                                             (int)ys->dims[3]));
    ITS_CUDNN_TRY(cudnnSetFilter4dDescriptor(cd->w, CUDNN_DATA_HALF, CUDNN_TENSOR_NHWC,
                                             (int)ws->dims[0], (int)ws->dims[1], (int)ws->dims[2],
                                             (int)ws->dims[3]));
    ITS_CUDNN_TRY(cudnnSetConvolution2dDescriptor(cd->c, ph, pw, sh, sw, dh, dw,
                                                  CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    ITS_CUDNN_TRY(cudnnSetConvolutionGroupCount(cd->c, groups));
    ITS_CUDNN_TRY(cudnnSetConvolutionMathType(cd->c, CUDNN_TENSOR_OP_MATH));
    int oy[4];
    ITS_CUDNN_TRY(
        cudnnGetConvolution2dForwardOutputDim(cd->c, cd->x, cd->w, &oy[0], &oy[1], &oy[2], &oy[3]));
    for (int d = 0; d < 4; d++)
        if (oy[d] != ys->dims[d])
            FAIL(ITS_EMODEL, "node '%s' (Conv): cuDNN output dim %d is %d, graph says %lld",
                 n->name, d, oy[d], (long long)ys->dims[d]);
    int fused = find_fused(c, cd);
    if (fused == 0 && (sp->xcs || sp->scs || sp->ycs)) {
        sp->xcs = sp->scs = sp->ycs = 0;
        cat = -1;
        if (is_strided(p, n->in[0]) && (rc = ensure(c, g, p, n->in[0], LAY_NHWC, 1, &x)) < 0)
            FAIL(rc, "node '%s' (Conv): input copy", n->name);
        if (n->sum >= 0 && is_strided(p, n->sum) &&
            (rc = ensure(c, g, p, n->sum, LAY_NHWC, 1, &sum)) < 0)
            FAIL(rc, "node '%s' (Conv): residual copy", n->name);
        fused = find_fused(c, cd);
    }
    if (fused < 0)
        return fused;
    cd->fused = fused; /* 0: the legacy convolution (packed operands), chosen at finalize */
    step st;
    memset(&st, 0, sizeof st);
    int orc = nhwc_output(p, o, cat, &st.out);
    if (orc < 0)
        return orc;
    st.kind = ST_CONV;
    st.node = i;
    st.a = x;
    st.b = sum;
    st.conv = p->n_convs - 1;
    st.w = c->cdev[n->in[1]];
    st.bias = n->n_in > 2 && n->in[2] >= 0 ? c->cdev[n->in[2]] : NULL;
    st.act = n->act;
    st.alpha = n->act_alpha;
    st.sum_first = n->sum_first;
    st.k = (int)ys->dims[1];
    st.total = its__shape_numel(ys);
    return emit(p, &st);
}

static int no_views(void)
{
    static int v = -1;
    if (v < 0)
        v = getenv("ITS_CUDA_NO_VIEWS") != NULL;
    return v;
}

/* Can the outputs of Split node n (input t, axis ax) be channel-slice views of t? Slices must
 * start on 16-byte boundaries (cuDNN's alignment, our 16-byte kernels). */
static int split_views(const its_ir_node *n, const plan *p, int t, int64_t ax)
{
    if (no_views() || ax != 1 || p->shapes[t].rank != 4 || p->tlay[t] != LAY_NHWC ||
        pix_stride(p, t) % 8 || p->toff[t] % 16)
        return 0;
    int64_t pos = 0;
    for (int k = 0; k < n->n_out; k++) {
        if (pos % 8)
            return 0;
        if (n->out[k] >= 0)
            pos += p->shapes[n->out[k]].dims[1];
    }
    return 1;
}

/*
 * Concat elimination, decided before planning: for every channel Concat of 4-D tensors, each
 * input made by a Conv, MaxPool or Resize (or a Split of one, whose outputs appear in order)
 * is written by its producer straight into its slice of the Concat's output (acat/apos);
 * the Concat then copies only the inputs nobody could place. A tensor goes into one Concat.
 */
static void plan_aliases(const its_graph *g, plan *p)
{
    if (no_views())
        return;
    for (int i = 0; i < g->n_nodes; i++) {
        const its_ir_node *n = &g->nodes[i];
        int o = n->out[0];
        if (n->op != ITS_OP_CONCAT || o < 0 || p->shapes[o].rank != 4 ||
            norm_axis(its__attr_i(n, "axis", 0), 4) != 1 || p->shapes[o].dims[1] % 8)
            continue;
        int64_t pos = 0;
        for (int k = 0; k < n->n_in;) {
            int t = n->in[k], span = 1;
            if (t < 0 || is_const(g, t) || p->shapes[t].rank != 4) {
                pos += t >= 0 && p->shapes[t].rank == 4 ? p->shapes[t].dims[1] : 0;
                k++;
                continue;
            }
            int src = t, pr = g->tensors[t].producer;
            if (pr >= 0 && g->nodes[pr].op == ITS_OP_SPLIT &&
                norm_axis(its__attr_i(&g->nodes[pr], "axis", 0), 4) == 1) {
                const its_ir_node *sn = &g->nodes[pr];
                int whole = 1;
                for (int j = 0; j < sn->n_out && whole; j++)
                    whole = k + j < n->n_in && n->in[k + j] == sn->out[j];
                if (whole) {
                    src = sn->in[0];
                    span = sn->n_out;
                }
            }
            const its_shape *ss = &p->shapes[src];
            int sp = g->tensors[src].producer;
            int op = sp >= 0 ? (int)g->nodes[sp].op : -1;
            if ((op == ITS_OP_CONV || op == ITS_OP_MAXPOOL || op == ITS_OP_RESIZE) &&
                ss->rank == 4 && p->acat[src] < 0 && pos % 8 == 0 && ss->dims[1] % 8 == 0 &&
                ss->dims[0] == p->shapes[o].dims[0] && ss->dims[2] == p->shapes[o].dims[2] &&
                ss->dims[3] == p->shapes[o].dims[3]) {
                p->acat[src] = o;
                p->apos[src] = pos;
            }
            pos += span > 1 ? ss->dims[1] : p->shapes[t].dims[1];
            k += span;
        }
    }
}

static int plan_node(cuda_ctx *c, const its_graph *g, plan *p, int i, char *err, size_t errlen)
{
    const its_ir_node *n = &g->nodes[i];
    int o = n->out[0];
    const its_shape *os = &p->shapes[o];
    step st;
    memset(&st, 0, sizeof st);
    st.kind = ST_EW;
    st.node = i;
    st.b = nobuf();
    int rc;
    for (int k = 0; k < n->n_in + n->n_out; k++) {
        int t = k < n->n_in ? n->in[k] : n->out[k - n->n_in];
        if (t >= 0 && p->shapes[t].rank > ITS_CUDA_ND_MAX)
            FAIL(ITS_EUNSUPPORTED, "node '%s' (%s): rank above %d", n->name, its__op_name(n->op),
                 ITS_CUDA_ND_MAX);
    }
    switch (n->op) {
    case ITS_OP_CONV:
        return plan_conv(c, g, p, i, err, errlen);
    case ITS_OP_ADD:
    case ITS_OP_SUB:
    case ITS_OP_MUL:
    case ITS_OP_DIV:
    case ITS_OP_SIGMOID:
    case ITS_OP_SILU:
    case ITS_OP_RELU:
    case ITS_OP_LEAKY_RELU: {
        int lay = out_layout_ew(g, p, n, o);
        static const its_cuda_ew map[ITS_OP_COUNT] = {
            [ITS_OP_ADD] = ITS_CUDA_EW_ADD,         [ITS_OP_SUB] = ITS_CUDA_EW_SUB,
            [ITS_OP_MUL] = ITS_CUDA_EW_MUL,         [ITS_OP_DIV] = ITS_CUDA_EW_DIV,
            [ITS_OP_SIGMOID] = ITS_CUDA_EW_SIGMOID, [ITS_OP_SILU] = ITS_CUDA_EW_SILU,
            [ITS_OP_RELU] = ITS_CUDA_EW_RELU,       [ITS_OP_LEAKY_RELU] = ITS_CUDA_EW_LEAKY};
        st.op = map[n->op];
        st.alpha = its__attr_f(n, "alpha", 0.01f);
        st.nd.rank = os->rank;
        memcpy(st.nd.dims, os->dims, sizeof(int64_t) * (size_t)os->rank);
        for (int k = 0; k < n->n_in && k < 2; k++) {
            int t = n->in[k];
            int tl = (p->shapes[t].rank == os->rank && !is_const(g, t)) ? lay : LAY_PLAIN;
            opnd *dst = k == 0 ? &st.a : &st.b;
            if ((rc = ensure(c, g, p, t, tl, 0, dst)) < 0)
                FAIL(rc, "node '%s' (%s): operand %d layout", n->name, its__op_name(n->op), k);
            bcast_strides(p, t, tl, os->rank, os->dims, st.nd.stride[1 + k]);
        }
        strides_of(os, lay, st.nd.stride[0]);
        int b = new_buf(p, tbytes(os, 2));
        if (b < 0)
            return b;
        p->tbuf[o] = b;
        p->tlay[o] = lay;
        st.out = bufop(b);
        return emit(p, &st);
    }
    case ITS_OP_CONCAT: {
        int first_act = -1;
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] >= 0 && !is_const(g, n->in[k]) && first_act < 0)
                first_act = n->in[k];
        int lay = (os->rank == 4 && first_act >= 0 && p->tlay[first_act] == LAY_NHWC) ? LAY_NHWC
                                                                                      : LAY_PLAIN;
        int64_t ax = norm_axis(its__attr_i(n, "axis", 0), os->rank);
        int b = p->tbuf[o]; /* producers already write into their slices (plan_aliases) */
        if (b >= 0) {
            lay = LAY_NHWC;
        } else {
            if ((b = new_buf(p, tbytes(os, 2))) < 0)
                return b;
            p->tbuf[o] = b;
            p->tlay[o] = lay;
        }
        int64_t ost[ITS_MAX_DIMS];
        strides_of(os, lay, ost);
        int64_t pos = 0;
        for (int k = 0; k < n->n_in; k++) {
            int t = n->in[k];
            if (t < 0)
                continue;
            const its_shape *is = &p->shapes[t];
            size_t slice = (size_t)(pos * ost[ax]) * 2;
            pos += is->dims[ax];
            if (!is_const(g, t) && p->tbuf[t] == b && p->toff[t] == slice &&
                p->tlay[t] == LAY_NHWC && lay == LAY_NHWC && pix_stride(p, t) == os->dims[1])
                continue; /* its producer wrote it in place */
            step cs = st;
            cs.op = ITS_CUDA_EW_COPY;
            int tl = is_const(g, t) ? LAY_PLAIN : p->tlay[t];
            if (tl == LAY_F32)
                tl = LAY_PLAIN, cs.a_f32 = 1;
            if (is_const(g, t)) {
                if ((rc = ensure(c, g, p, t, LAY_PLAIN, 0, &cs.a)) < 0)
                    FAIL(rc, "node '%s' (Concat): constant input", n->name);
            } else {
                cs.a = bufop(p->tbuf[t]);
                cs.a.off = p->toff[t];
            }
            cs.nd.rank = is->rank;
            memcpy(cs.nd.dims, is->dims, sizeof(int64_t) * (size_t)is->rank);
            memcpy(cs.nd.stride[0], ost, sizeof(int64_t) * (size_t)is->rank);
            tstrides(p, t, tl, cs.nd.stride[1]);
            cs.out = bufop(b);
            cs.out.off = slice;
            if ((rc = emit(p, &cs)) < 0)
                return rc;
        }
        return 0;
    }
    case ITS_OP_SPLIT:
    case ITS_OP_SLICE:
    case ITS_OP_TRANSPOSE: {
        int t = n->in[0];
        const its_shape *is = &p->shapes[t];
        int tl = p->tlay[t];
        if (tl == LAY_F32)
            tl = LAY_PLAIN, st.a_f32 = 1;
        int64_t ist[ITS_MAX_DIMS];
        tstrides(p, t, tl, ist);
        int lay = n->op == ITS_OP_TRANSPOSE ? LAY_PLAIN : (is->rank == 4 ? tl : LAY_PLAIN);
        st.op = ITS_CUDA_EW_COPY;
        if (n->op == ITS_OP_TRANSPOSE) {
            const its_attr *pa = its__attr(n, "perm");
            st.nd.rank = os->rank;
            for (int d = 0; d < os->rank; d++) {
                int pd = pa ? (int)pa->ints[d] : os->rank - 1 - d;
                st.nd.dims[d] = os->dims[d];
                st.nd.stride[1][d] = ist[pd];
            }
            strides_of(os, LAY_PLAIN, st.nd.stride[0]);
            int b = new_buf(p, tbytes(os, 2));
            if (b < 0)
                return b;
            p->tbuf[o] = b;
            p->tlay[o] = LAY_PLAIN;
            st.a = bufop(p->tbuf[t]);
            st.a.off = p->toff[t];
            st.out = bufop(b);
            return emit(p, &st);
        }
        if (n->op == ITS_OP_SLICE) {
            int64_t starts[ITS_MAX_DIMS] = {0}, ends[ITS_MAX_DIMS], axes[ITS_MAX_DIMS],
                    steps[ITS_MAX_DIMS];
            int ns = -1, ne = -1, na = -1, nst = -1;
            if (n->n_in > 1) {
                ns = const_ints(g, n->in[1], starts, ITS_MAX_DIMS);
                ne = const_ints(g, n->in[2], ends, ITS_MAX_DIMS);
                na =
                    n->n_in > 3 && n->in[3] >= 0 ? const_ints(g, n->in[3], axes, ITS_MAX_DIMS) : -2;
                nst = n->n_in > 4 && n->in[4] >= 0 ? const_ints(g, n->in[4], steps, ITS_MAX_DIMS)
                                                   : -2;
            }
            if (ns < 0 || ne != ns || na == -1 || nst == -1)
                FAIL(ITS_EUNSUPPORTED, "node '%s' (Slice): needs constant starts/ends", n->name);
            int64_t off = 0;
            int64_t sst[ITS_MAX_DIMS];
            memcpy(sst, ist, sizeof sst);
            for (int k = 0; k < ns; k++) {
                int64_t ax = norm_axis(na >= 0 ? axes[k] : k, is->rank);
                int64_t step_k = nst >= 0 ? steps[k] : 1;
                int64_t dim = is->dims[ax], s0 = starts[k];
                if (step_k <= 0)
                    FAIL(ITS_EUNSUPPORTED, "node '%s' (Slice): negative steps", n->name);
                if (s0 < 0)
                    s0 += dim;
                s0 = s0 < 0 ? 0 : (s0 > dim ? dim : s0);
                off += s0 * ist[ax];
                sst[ax] = ist[ax] * step_k;
            }
            st.nd.rank = os->rank;
            memcpy(st.nd.dims, os->dims, sizeof(int64_t) * (size_t)os->rank);
            memcpy(st.nd.stride[1], sst, sizeof(int64_t) * (size_t)os->rank);
            strides_of(os, lay, st.nd.stride[0]);
            int b = new_buf(p, tbytes(os, 2));
            if (b < 0)
                return b;
            p->tbuf[o] = b;
            p->tlay[o] = lay;
            st.a = bufop(p->tbuf[t]);
            st.a.off = p->toff[t] + (size_t)off * (st.a_f32 ? 4 : 2);
            st.out = bufop(b);
            return emit(p, &st);
        }
        /* Split: channel slices of an NHWC tensor are views (no copy) */
        int64_t ax = norm_axis(its__attr_i(n, "axis", 0), is->rank);
        int64_t pos = 0;
        if (split_views(n, p, t, ax)) {
            for (int k = 0; k < n->n_out; k++) {
                int ok = n->out[k];
                if (ok < 0)
                    continue;
                p->tbuf[ok] = p->tbuf[t];
                p->toff[ok] = p->toff[t] + (size_t)pos * 2;
                p->tcs[ok] = pix_stride(p, t);
                p->tlay[ok] = LAY_NHWC;
                pos += p->shapes[ok].dims[1];
            }
            return 0;
        }
        for (int k = 0; k < n->n_out; k++) {
            int ok = n->out[k];
            if (ok < 0)
                continue;
            const its_shape *ks = &p->shapes[ok];
            step cs = st;
            cs.nd.rank = ks->rank;
            memcpy(cs.nd.dims, ks->dims, sizeof(int64_t) * (size_t)ks->rank);
            memcpy(cs.nd.stride[1], ist, sizeof(int64_t) * (size_t)ks->rank);
            strides_of(ks, lay, cs.nd.stride[0]);
            int b = new_buf(p, tbytes(ks, 2));
            if (b < 0)
                return b;
            p->tbuf[ok] = b;
            p->tlay[ok] = lay;
            cs.a = bufop(p->tbuf[t]);
            cs.a.off = p->toff[t] + (size_t)(pos * ist[ax]) * (cs.a_f32 ? 4 : 2);
            cs.out = bufop(b);
            pos += ks->dims[ax];
            if ((rc = emit(p, &cs)) < 0)
                return rc;
        }
        return 0;
    }
    case ITS_OP_RESHAPE:
    case ITS_OP_IDENTITY:
    case ITS_OP_CAST: {
        opnd a;
        if ((rc = ensure(c, g, p, n->in[0], LAY_PLAIN, 0, &a)) < 0)
            FAIL(rc, "node '%s' (%s): input layout", n->name, its__op_name(n->op));
        if (a.buf < 0)
            FAIL(ITS_EUNSUPPORTED, "node '%s': view of a constant", n->name);
        p->tbuf[o] = a.buf; /* a view: same bytes, extended liveness */
        p->toff[o] = a.off;
        p->tlay[o] = LAY_PLAIN;
        return 0;
    }
    case ITS_OP_SOFTMAX: {
        if ((rc = ensure(c, g, p, n->in[0], LAY_PLAIN, 0, &st.a)) < 0)
            FAIL(rc, "node '%s' (Softmax): input layout", n->name);
        int64_t ax = norm_axis(its__attr_i(n, "axis", g->opset < 13 ? 1 : -1), os->rank);
        st.kind = ST_SOFTMAX;
        st.outer = 1;
        st.inner = 1;
        if (g->opset < 13) { /* coerced to 2-D at axis */
            for (int d = 0; d < ax; d++)
                st.outer *= os->dims[d];
            int64_t nn = 1;
            for (int d = (int)ax; d < os->rank; d++)
                nn *= os->dims[d];
            st.n = (int)nn;
        } else {
            for (int d = 0; d < ax; d++)
                st.outer *= os->dims[d];
            for (int d = (int)ax + 1; d < os->rank; d++)
                st.inner *= os->dims[d];
            st.n = (int)os->dims[ax];
        }
        int b = new_buf(p, tbytes(os, 2));
        if (b < 0)
            return b;
        p->tbuf[o] = b;
        p->tlay[o] = LAY_PLAIN;
        st.out = bufop(b);
        return emit(p, &st);
    }
    case ITS_OP_MATMUL: {
        const its_shape *as = &p->shapes[n->in[0]], *bs = &p->shapes[n->in[1]];
        if (as->rank < 2 || bs->rank < 2)
            FAIL(ITS_EUNSUPPORTED, "node '%s' (MatMul): rank < 2", n->name);
        if ((rc = ensure(c, g, p, n->in[0], LAY_PLAIN, 0, &st.a)) < 0 ||
            (rc = ensure(c, g, p, n->in[1], LAY_PLAIN, 0, &st.b)) < 0)
            FAIL(rc, "node '%s' (MatMul): operand layout", n->name);
        st.kind = ST_MATMUL;
        st.M = (int)as->dims[as->rank - 2];
        st.K = (int)as->dims[as->rank - 1];
        st.N = (int)bs->dims[bs->rank - 1];
        st.batch = its__shape_numel(os) / ((int64_t)st.M * st.N);
        int64_t ab = its__shape_numel(as) / ((int64_t)st.M * st.K);
        int64_t bb = its__shape_numel(bs) / ((int64_t)st.K * st.N);
        if ((ab != st.batch && ab != 1) || (bb != st.batch && bb != 1))
            FAIL(ITS_EUNSUPPORTED, "node '%s' (MatMul): partial broadcasting", n->name);
        st.sa = ab == 1 ? 0 : (int64_t)st.M * st.K;
        st.sb = bb == 1 ? 0 : (int64_t)st.K * st.N;
        int b = new_buf(p, tbytes(os, 2));
        if (b < 0)
            return b;
        p->tbuf[o] = b;
        p->tlay[o] = LAY_PLAIN;
        st.out = bufop(b);
        return emit(p, &st);
    }
    case ITS_OP_MAXPOOL:
    case ITS_OP_RESIZE: {
        const its_shape *is = &p->shapes[n->in[0]];
        if ((rc = ensure(c, g, p, n->in[0], LAY_NHWC, 0, &st.a)) < 0)
            FAIL(rc, "node '%s' (%s): input layout", n->name, its__op_name(n->op));
        st.xcs = is_strided(p, n->in[0]) ? pix_stride(p, n->in[0]) : 0;
        st.pb = (int)is->dims[0];
        st.pc = (int)is->dims[1];
        st.ph = (int)is->dims[2];
        st.pw = (int)is->dims[3];
        st.oh = (int)os->dims[2];
        st.ow = (int)os->dims[3];
        if (n->op == ITS_OP_MAXPOOL) {
            st.kind = ST_MAXPOOL;
            st.ks = (int)its__attr(n, "kernel_shape")->ints[0];
            const its_attr *sa = its__attr(n, "strides"), *pa = its__attr(n, "pads");
            st.stride = sa ? (int)sa->ints[0] : 1;
            st.pad = pa ? (int)pa->ints[0] : 0;
        } else {
            st.kind = ST_UPSAMPLE;
            if (st.oh % st.ph || st.ow % st.pw || os->dims[0] != is->dims[0] ||
                os->dims[1] != is->dims[1])
                FAIL(ITS_EUNSUPPORTED, "node '%s' (Resize): only integer upsampling of H, W",
                     n->name);
            st.fy = st.oh / st.ph;
            st.fx = st.ow / st.pw;
        }
        int cat = p->acat[o]; /* written straight into its Concat slice? */
        int orc = nhwc_output(p, o, cat, &st.out);
        if (orc < 0)
            return orc;
        st.ycs = p->tcs[o];
        return emit(p, &st);
    }
    default:
        FAIL(ITS_EUNSUPPORTED, "node '%s' (%s): not supported by the cuda backend", n->name,
             its__op_name(n->op));
    }
}

/* First-fit placement of buffers by liveness. */
static int place_buffers(plan *p)
{
    int nb = p->n_bufs;
    int *order = its_malloc(ITS_MOD_ENGINE, (size_t)(nb + 1) * sizeof(int));
    if (!order)
        return ITS_ENOMEM;
    for (int i = 0; i < nb; i++)
        order[i] = i;
    /* larger buffers first gives tighter packing; ties by first use */
    for (int i = 1; i < nb; i++) {
        int v = order[i], j = i - 1;
        while (j >= 0 && (p->bufs[order[j]].bytes < p->bufs[v].bytes)) {
            order[j + 1] = order[j];
            j--;
        }
        order[j + 1] = v;
    }
    size_t arena = 0;
    for (int oi = 0; oi < nb; oi++) {
        buf_t *b = &p->bufs[order[oi]];
        size_t sz = (b->bytes + ALIGN - 1) / ALIGN * ALIGN;
        size_t off = 0;
        for (int again = 1; again;) {
            again = 0;
            for (int pj = 0; pj < oi; pj++) {
                const buf_t *q = &p->bufs[order[pj]];
                if (q->last < b->first || b->last < q->first)
                    continue; /* lifetimes disjoint */
                size_t qsz = (q->bytes + ALIGN - 1) / ALIGN * ALIGN;
                if (off < q->off + qsz && q->off < off + sz) {
                    off = q->off + qsz;
                    again = 1;
                }
            }
        }
        b->off = off;
        if (off + sz > arena)
            arena = off + sz;
    }
    its_free(order);
    p->arena = arena;
    return 0;
}

static int cuda_prepare_plan(cuda_ctx *c, const its_graph *g, plan *p, char *err, size_t errlen)
{
    int nt = g->n_tensors;
    p->tbuf = its_malloc(ITS_MOD_ENGINE, (size_t)(nt + 1) * sizeof(int));
    p->tlay = its_malloc(ITS_MOD_ENGINE, (size_t)(nt + 1) * sizeof(int));
    p->tconv = its_malloc(ITS_MOD_ENGINE, (size_t)(nt + 1) * sizeof(int));
    p->tpack = its_malloc(ITS_MOD_ENGINE, (size_t)(nt + 1) * sizeof(int));
    p->acat = its_malloc(ITS_MOD_ENGINE, (size_t)(nt + 1) * sizeof(int));
    p->toff = its_calloc(ITS_MOD_ENGINE, (size_t)nt + 1, sizeof(size_t));
    p->tcs = its_calloc(ITS_MOD_ENGINE, (size_t)nt + 1, sizeof(int64_t));
    p->apos = its_calloc(ITS_MOD_ENGINE, (size_t)nt + 1, sizeof(int64_t));
    if (!p->tbuf || !p->tlay || !p->tconv || !p->tpack || !p->acat || !p->toff || !p->tcs ||
        !p->apos)
        return ITS_ENOMEM;
    for (int t = 0; t < nt; t++) {
        p->tbuf[t] = -1;
        p->tlay[t] = LAY_PLAIN;
        p->tconv[t] = -1;
        p->tpack[t] = -1;
        p->acat[t] = -1;
    }
    plan_aliases(g, p);
    if (g->n_inputs > MAX_IO || g->n_outputs > MAX_IO)
        FAIL(ITS_EUNSUPPORTED, "cuda: more than %d graph inputs or outputs", MAX_IO);
    for (int k = 0; k < g->n_inputs; k++) {
        int t = g->inputs[k];
        if (g->tensors[t].dtype != ITS_DT_FLOAT32)
            FAIL(ITS_EUNSUPPORTED, "cuda: graph input '%s' is not float32", g->tensors[t].name);
        p->in_bytes[k] = tbytes(&p->shapes[t], 4);
        int b = new_buf(p, p->in_bytes[k]);
        if (b < 0)
            return b;
        p->bufs[b].first = 0;
        p->tbuf[t] = b;
        p->tlay[t] = LAY_F32;
        p->in_buf[k] = b;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        int rc = plan_node(c, g, p, i, err, errlen);
        if (rc < 0) {
            if (!err[0])
                snprintf(err, errlen, "node '%s' (%s): planning failed: %s", g->nodes[i].name,
                         its__op_name(g->nodes[i].op), its_strerror(rc));
            return rc;
        }
    }
    for (int k = 0; k < g->n_outputs; k++) {
        int t = g->outputs[k];
        const its_shape *s = &p->shapes[t];
        opnd a;
        int rc = ensure(c, g, p, t, LAY_PLAIN, 0, &a);
        if (rc < 0)
            FAIL(rc, "cuda: graph output '%s': layout", g->tensors[t].name);
        p->out_bytes[k] = tbytes(s, 4);
        int b = new_buf(p, p->out_bytes[k]);
        if (b < 0)
            return b;
        step st;
        memset(&st, 0, sizeof st);
        st.kind = ST_EW;
        st.node = -1;
        st.op = ITS_CUDA_EW_COPY;
        st.a = a;
        st.b = nobuf();
        st.out = bufop(b);
        st.out_f32 = 1;
        st.nd.rank = s->rank;
        memcpy(st.nd.dims, s->dims, sizeof(int64_t) * (size_t)s->rank);
        strides_of(s, LAY_PLAIN, st.nd.stride[0]);
        strides_of(s, LAY_PLAIN, st.nd.stride[1]);
        if ((rc = emit(p, &st)) < 0)
            return rc;
        p->out_buf[k] = b;
    }
    for (int k = 0; k < g->n_outputs; k++)
        p->bufs[p->out_buf[k]].last = p->n_steps;
    return place_buffers(p);
}

/* ---- execution ------------------------------------------------------------------------------ */

static void *ptr_of(cuda_ctx *c, const plan *p, const opnd *o)
{
    if (o->buf < 0)
        return (void *)o->cptr;
    return c->arena + p->bufs[o->buf].off + o->off;
}

/* ITS_CUDA_TUNE=K: keep cuDNN's first K engine configurations per fused convolution and time
 * them at load (finalize), keeping the fastest; default 1 (cuDNN's heuristic pick; each extra
 * candidate costs a plan compilation at load). */
static int tune_candidates(void)
{
    const char *v = getenv("ITS_CUDA_TUNE");
    int k = v ? atoi(v) : 1;
    return k < 1 ? 1 : (k > ITS_FCONV_MAX_CAND ? ITS_FCONV_MAX_CAND : k);
}

/* The fused cuDNN graph for this conv (cached per distinct spec); 0 if none. */
static int find_fused(cuda_ctx *c, conv_desc *cd)
{
    if (getenv("ITS_CUDA_LEGACY_CONV"))
        return 0;
    for (int i = 0; i < c->n_fused; i++)
        if (memcmp(&c->fcache[i].spec, &cd->spec, sizeof cd->spec) == 0)
            return c->fcache[i].ok ? i + 1 : 0;
    if (grow((void **)&c->fcache, &c->cap_fused, c->n_fused + 1, sizeof(fused_cache)) < 0)
        return ITS_ENOMEM;
    fused_cache *fc = &c->fcache[c->n_fused++];
    fc->spec = cd->spec;
    uint64_t t0 = its_now_ns();
    int rc = its__fconv_build(c->dnn, &cd->spec, tune_candidates(), &fc->f);
    c->load_ms_find += (double)(its_now_ns() - t0) / 1e6;
    fc->ok = rc == 0;
    if (fc->ok)
        c->n_fused_ok++;
    else
        c->n_fused_fail++;
    if (rc == ITS_ENOMEM || rc == ITS_EOVERFLOW)
        return rc;
    return fc->ok ? c->n_fused : 0;
}

static int find_algo(cuda_ctx *c, plan *p, const step *s)
{
    conv_desc *cd = &p->convs[s->conv];
    for (int i = 0; i < c->n_algos; i++)
        if (memcmp(c->algos[i].key, cd->key, sizeof cd->key) == 0) {
            cd->algo = c->algos[i].algo;
            return 0;
        }
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int got = 0;
    if (getenv("ITS_CUDA_NO_FIND")) {
        ITS_CUDNN_TRY(cudnnGetConvolutionForwardAlgorithm_v7(
            c->dnn, cd->x, cd->w, cd->c, cd->y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, perf));
    } else {
        ITS_CUDNN_TRY(cudnnFindConvolutionForwardAlgorithmEx(
            c->dnn, cd->x, ptr_of(c, p, &s->a), cd->w, s->w, cd->c, cd->y, ptr_of(c, p, &s->out),
            CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, perf, c->conv_ws, CONV_WS));
    }
    int pick = -1;
    for (int i = 0; i < got && pick < 0; i++)
        if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= CONV_WS)
            pick = i;
    if (pick < 0) {
        its_loge("engine", "cuda", "no cuDNN algorithm for a convolution of the plan");
        return ITS_EUNSUPPORTED;
    }
    cd->algo = perf[pick].algo;
    if (grow((void **)&c->algos, &c->cap_algos, c->n_algos + 1, sizeof(algo_cache)) < 0)
        return ITS_ENOMEM;
    memcpy(c->algos[c->n_algos].key, cd->key, sizeof cd->key);
    c->algos[c->n_algos++].algo = cd->algo;
    return 0;
}

static int exec_step(cuda_ctx *c, plan *p, const step *s, cudaStream_t strm)
{
    switch (s->kind) {
    case ST_EW:
        return its_cuda_ewise(s->op, ptr_of(c, p, &s->a), s->a_f32,
                              s->b.buf >= 0 || s->b.cptr ? ptr_of(c, p, &s->b) : NULL,
                              ptr_of(c, p, &s->out), s->out_f32, &s->nd, s->alpha, strm);
    case ST_CONV: {
        conv_desc *cd = &p->convs[s->conv];
        const float one = 1.0f, zero = 0.0f;
        if (cd->fused)
            return its__fconv_exec(c->dnn, &c->fcache[cd->fused - 1].f, ptr_of(c, p, &s->a), s->w,
                                   s->bias, s->b.buf >= 0 ? ptr_of(c, p, &s->b) : NULL,
                                   ptr_of(c, p, &s->out), c->conv_ws);
        ITS_CUDNN_TRY(cudnnConvolutionForward(c->dnn, &one, cd->x, ptr_of(c, p, &s->a), cd->w, s->w,
                                              cd->c, cd->algo, c->conv_ws, CONV_WS, &zero, cd->y,
                                              ptr_of(c, p, &s->out)));
        const void *sum = s->b.buf >= 0 ? ptr_of(c, p, &s->b) : NULL;
        if (s->bias || s->act || sum)
            return its_cuda_conv_epilogue(ptr_of(c, p, &s->out), s->bias, sum, s->total, s->k,
                                          s->act, s->alpha, s->sum_first, strm);
        return 0;
    }
    case ST_DIRECT:
        /* M, N: kernel size; stride / fx: strides y / x; pad / fy: pads y / x */
        return its_cuda_conv_direct_f32in(ptr_of(c, p, &s->a), s->pb, s->pc, s->ph, s->pw, s->w,
                                          s->bias, s->k, s->M, s->N, s->stride, s->fx, s->pad,
                                          s->fy, s->oh, s->ow, s->act, s->alpha,
                                          ptr_of(c, p, &s->out), s->ycs, strm);
    case ST_SOFTMAX:
        return its_cuda_softmax(ptr_of(c, p, &s->a), ptr_of(c, p, &s->out), s->outer, s->n,
                                s->inner, strm);
    case ST_MAXPOOL:
        return its_cuda_maxpool_nhwc(ptr_of(c, p, &s->a), s->xcs, ptr_of(c, p, &s->out), s->ycs,
                                     s->pb, s->ph, s->pw, s->pc, s->ks, s->stride, s->pad, s->oh,
                                     s->ow, strm);
    case ST_UPSAMPLE:
        return its_cuda_upsample_nhwc(ptr_of(c, p, &s->a), s->xcs, ptr_of(c, p, &s->out), s->ycs,
                                      s->pb, s->ph, s->pw, s->pc, s->fy, s->fx, strm);
    case ST_MATMUL: {
        const float one = 1.0f, zero = 0.0f;
        /* row-major C = A B is column-major C^T = B^T A^T */
        ITS_CUBLAS_TRY(cublasGemmStridedBatchedEx(
            c->blas, CUBLAS_OP_N, CUBLAS_OP_N, s->N, s->M, s->K, &one, ptr_of(c, p, &s->b),
            CUDA_R_16F, s->N, s->sb, ptr_of(c, p, &s->a), CUDA_R_16F, s->K, s->sa, &zero,
            ptr_of(c, p, &s->out), CUDA_R_16F, s->N, (int64_t)s->M * s->N, (int)s->batch,
            CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        return 0;
    }
    }
    return ITS_EINTERNAL;
}

static int exec_net(cuda_ctx *c, plan *p, cudaStream_t strm)
{
    ITS_CUDNN_TRY(cudnnSetStream(c->dnn, strm));
    ITS_CUBLAS_TRY(cublasSetStream(c->blas, strm));
    for (int i = 0; i < p->n_steps; i++) {
        int rc = exec_step(c, p, &p->steps[i], strm);
        if (rc < 0) {
            int node = p->steps[i].node;
            its_loge("engine", "cuda", "step %d (node '%s') failed: %s", i,
                     node >= 0 ? c->g->nodes[node].name : "(conversion)", its_strerror(rc));
            return rc;
        }
    }
    return 0;
}

/* End the stream capture begun by a capture function and instantiate the graph; rc is what the
 * recorded work returned (on failure the partial graph is discarded). */
static int end_capture(cuda_ctx *c, int rc, cudaGraphExec_t *exec)
{
    cudaGraph_t graph;
    cudaError_t e = cudaStreamEndCapture(c->stream, &graph);
    if (rc < 0) {
        if (e == cudaSuccess)
            cudaGraphDestroy(graph);
        return rc;
    }
    ITS_CUDA_TRY(e);
    e = cudaGraphInstantiate(exec, graph, 0);
    cudaGraphDestroy(graph);
    ITS_CUDA_TRY(e);
    return 0;
}

static int capture(cuda_ctx *c, plan *p, int full, cudaGraphExec_t *exec)
{
    const its_graph *g = c->g;
    ITS_CUDA_TRY(cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal));
    int rc = 0;
    for (int k = 0; full && rc == 0 && k < g->n_inputs; k++)
        if (cudaMemcpyAsync(c->arena + p->bufs[p->in_buf[k]].off, c->pin_in[k], p->in_bytes[k],
                            cudaMemcpyHostToDevice, c->stream) != cudaSuccess)
            rc = ITS_EBACKEND;
    if (rc == 0)
        rc = exec_net(c, p, c->stream);
    for (int k = 0; full && rc == 0 && k < g->n_outputs; k++)
        if (cudaMemcpyAsync(c->pin_out[k], c->arena + p->bufs[p->out_buf[k]].off, p->out_bytes[k],
                            cudaMemcpyDeviceToHost, c->stream) != cudaSuccess)
            rc = ITS_EBACKEND;
    return end_capture(c, rc, exec);
}

/* Allocate the arena and staging for the largest plan, choose algorithms, capture graphs. */
static int finalize(cuda_ctx *c, char *err, size_t errlen)
{
    const its_graph *g = c->g;
    size_t act = 0;
    for (int i = 0; i < c->n_plans; i++)
        if (c->plans[i].arena > act)
            act = c->plans[i].arena;
    c->act_size = act;
    c->arena_size = act + CONV_WS + CUBLAS_WS;
    if (cudaMalloc((void **)&c->arena, c->arena_size) != cudaSuccess)
        FAIL(ITS_ENOMEM, "cuda: cannot allocate the %zu-byte arena", c->arena_size);
    c->conv_ws = c->arena + act;
    c->blas_ws = c->arena + act + CONV_WS;
    ITS_CUBLAS_TRY(cublasSetWorkspace(c->blas, c->blas_ws, CUBLAS_WS));
    /* poison once: a read of memory no step wrote shows up as NaN in the parity tests */
    ITS_CUDA_TRY(cudaMemset(c->arena, 0xFF, act));
    for (int k = 0; k < g->n_inputs; k++) {
        for (int i = 0; i < c->n_plans; i++)
            if (c->plans[i].in_bytes[k] > c->pin_in_bytes[k])
                c->pin_in_bytes[k] = c->plans[i].in_bytes[k];
        if (cudaHostAlloc(&c->pin_in[k], c->pin_in_bytes[k], cudaHostAllocDefault) != cudaSuccess)
            FAIL(ITS_ENOMEM, "cuda: cannot allocate pinned input staging");
        memset(c->pin_in[k], 0, c->pin_in_bytes[k]);
    }
    for (int k = 0; k < g->n_outputs; k++) {
        for (int i = 0; i < c->n_plans; i++)
            if (c->plans[i].out_bytes[k] > c->pin_out_bytes[k])
                c->pin_out_bytes[k] = c->plans[i].out_bytes[k];
        if (cudaHostAlloc(&c->pin_out[k], c->pin_out_bytes[k], cudaHostAllocDefault) != cudaSuccess)
            FAIL(ITS_ENOMEM, "cuda: cannot allocate pinned output staging");
    }
    double t0 = (double)its_now_ns();
    for (int i = 0; i < c->n_plans; i++) {
        plan *p = &c->plans[i];
        for (int s = 0; s < p->n_steps; s++)
            if (p->steps[s].kind == ST_CONV) {
                const step *st = &p->steps[s];
                conv_desc *cd = &p->convs[st->conv];
                int rc = 0;
                if (cd->fused > 0) { /* built at planning; pick among its candidates */
                    fused_cache *fc = &c->fcache[cd->fused - 1];
                    if (!fc->tuned) {
                        ITS_CUDNN_TRY(cudnnSetStream(c->dnn, c->stream));
                        rc = its__fconv_tune(c->dnn, &fc->f, ptr_of(c, p, &st->a), st->w, st->bias,
                                             st->b.buf >= 0 ? ptr_of(c, p, &st->b) : NULL,
                                             ptr_of(c, p, &st->out), c->conv_ws, c->stream);
                        fc->tuned = 1;
                    }
                } else {
                    rc = find_algo(c, p, &p->steps[s]);
                }
                if (rc < 0)
                    FAIL(rc, "node '%s' (Conv): no usable cuDNN algorithm (batch %d)",
                         g->nodes[p->steps[s].node].name, p->batch);
            }
    }
    c->load_ms_find += ((double)its_now_ns() - t0) / 1e6;
    ITS_CUDA_TRY(cudaMemset(c->arena, 0xFF, act)); /* tuning wrote into the arena: re-poison */
    for (int i = 0; i < c->n_plans; i++) {
        plan *p = &c->plans[i];
        int rc = capture(c, p, 1, &p->exec_full);
        if (rc == 0)
            rc = capture(c, p, 0, &p->exec_net);
        if (rc < 0)
            FAIL(rc, "cuda: CUDA graph capture failed for batch %d", p->batch);
    }
    ITS_CUDA_TRY(cudaStreamSynchronize(c->stream));
    c->finalized = 1;
    its_logi("engine", "cuda",
             "device arena %zu bytes (activations %zu), weights %zu bytes, %d fused cuDNN conv "
             "graphs (%d shapes without one), %d legacy algorithms chosen, in %.0f ms; %d CUDA "
             "graphs captured",
             c->arena_size, c->act_size, c->wbytes, c->n_fused_ok, c->n_fused_fail, c->n_algos,
             c->load_ms_find, 2 * c->n_plans);
    return 0;
}

static int cuda_prepare(void *vctx, const its_graph *g, int batch, const its_shape *shapes,
                        char *err, size_t errlen)
{
    cuda_ctx *c = vctx;
    if (c->n_plans == MAX_PLANS)
        FAIL(ITS_ERANGE, "cuda: too many batch sizes");
    if (c->finalized)
        FAIL(ITS_EINVAL, "cuda: prepare after the arena was allocated");
    c->g = g;
    int rc = 0;
    if (!c->cdev && (rc = upload_constants(c, g, err, errlen)) < 0)
        return rc;
    plan *p = &c->plans[c->n_plans++];
    memset(p, 0, sizeof *p);
    p->batch = batch;
    p->shapes = shapes;
    rc = cuda_prepare_plan(c, g, p, err, errlen);
    if (rc < 0)
        return rc;
    if (batch >= c->max_batch)
        return finalize(c, err, errlen);
    return 0;
}

static plan *find_plan(cuda_ctx *c, int batch)
{
    for (int i = 0; i < c->n_plans; i++)
        if (c->plans[i].batch == batch)
            return &c->plans[i];
    return NULL;
}

static int cuda_sync(void *vctx);

static int cuda_run(void *vctx, int batch, int n, const void *const *inputs, void *const *outputs)
{
    cuda_ctx *c = vctx;
    char err[256];
    if (c->pending) {
        int rc = cuda_sync(c);
        if (rc < 0)
            return rc;
    }
    if (!c->finalized) {
        int rc = finalize(c, err, sizeof err);
        if (rc < 0) {
            its_loge("engine", "cuda", "%s", err);
            return rc;
        }
    }
    plan *p = find_plan(c, batch);
    if (!p || n < 1 || n > batch)
        return ITS_ERANGE;
    const its_graph *g = c->g;
    for (int k = 0; k < g->n_inputs; k++) {
        int t = g->inputs[k];
        size_t bytes =
            g->tensors[t].batched ? p->in_bytes[k] / (size_t)batch * (size_t)n : p->in_bytes[k];
        memcpy(c->pin_in[k], inputs[k], bytes);
    }
    ITS_CUDA_TRY(cudaGraphLaunch(p->exec_full, c->stream));
    c->pending = 1;
    c->pend_plan = p;
    c->pend_n = n;
    for (int k = 0; k < g->n_outputs; k++)
        c->pend_out_ptrs[k] = outputs[k];
    return 0;
}

static int cuda_sync(void *vctx)
{
    cuda_ctx *c = vctx;
    if (!c->pending)
        return 0;
    c->pending = 0;
    ITS_CUDA_TRY(cudaStreamSynchronize(c->stream));
    const its_graph *g = c->g;
    plan *p = c->pend_plan;
    for (int k = 0; k < g->n_outputs; k++) {
        int t = g->outputs[k];
        size_t bytes = g->tensors[t].batched
                           ? p->out_bytes[k] / (size_t)p->batch * (size_t)c->pend_n
                           : p->out_bytes[k];
        memcpy(c->pend_out_ptrs[k], c->pin_out[k], bytes);
    }
    return 0;
}

static size_t cuda_arena_bytes(void *vctx)
{
    const cuda_ctx *c = vctx;
    return c->arena_size;
}

static void free_plan(plan *p)
{
    for (int i = 0; i < p->n_convs; i++) {
        conv_desc *cd = &p->convs[i];
        if (cd->x)
            cudnnDestroyTensorDescriptor(cd->x);
        if (cd->y)
            cudnnDestroyTensorDescriptor(cd->y);
        if (cd->w)
            cudnnDestroyFilterDescriptor(cd->w);
        if (cd->c)
            cudnnDestroyConvolutionDescriptor(cd->c);
    }
    if (p->exec_full)
        cudaGraphExecDestroy(p->exec_full);
    if (p->exec_net)
        cudaGraphExecDestroy(p->exec_net);
    for (int k = 0; k < 2; k++)
        if (p->exec_det[k])
            cudaGraphExecDestroy(p->exec_det[k]);
    its_free(p->convs);
    its_free(p->steps);
    its_free(p->bufs);
    its_free(p->tbuf);
    its_free(p->tlay);
    its_free(p->tconv);
    its_free(p->tpack);
    its_free(p->acat);
    its_free(p->toff);
    its_free(p->tcs);
    its_free(p->apos);
}

static void cuda_free(void *vctx)
{
    cuda_ctx *c = vctx;
    if (!c)
        return;
    if (c->stream)
        cudaStreamSynchronize(c->stream);
    if (c->copy_stream)
        cudaStreamSynchronize(c->copy_stream);
    if (c->det_ready)
        its_logi("engine", "cuda",
                 "frames path: %llu frames uploaded from pinned frame memory, %llu through "
                 "staging",
                 (unsigned long long)c->det_direct, (unsigned long long)c->det_copied);
    for (int i = 0; i < c->n_plans; i++)
        free_plan(&c->plans[i]);
    for (int k = 0; k < MAX_IO; k++) {
        if (c->pin_in[k])
            cudaFreeHost(c->pin_in[k]);
        if (c->pin_out[k])
            cudaFreeHost(c->pin_out[k]);
    }
    for (int k = 0; k < 2; k++) {
        det_slot *d = &c->slots[k];
        if (d->pin_pix)
            cudaFreeHost(d->pin_pix);
        if (d->pin_fr)
            cudaFreeHost(d->pin_fr);
        if (d->pin_lists)
            cudaFreeHost(d->pin_lists);
        if (d->pin_dets)
            cudaFreeHost(d->pin_dets);
        if (d->dev_pix)
            cudaFree(d->dev_pix);
        if (d->dev_fr)
            cudaFree(d->dev_fr);
        if (d->dev_lists)
            cudaFree(d->dev_lists);
        if (d->dev_dets)
            cudaFree(d->dev_dets);
        if (d->uploaded)
            cudaEventDestroy(d->uploaded);
        if (d->done)
            cudaEventDestroy(d->done);
    }
    if (c->det_scratch)
        cudaFree(c->det_scratch);
    if (c->arena)
        cudaFree(c->arena);
    if (c->wmem)
        cudaFree(c->wmem);
    if (c->blas)
        cublasDestroy(c->blas);
    if (c->dnn)
        cudnnDestroy(c->dnn);
    if (c->stream)
        cudaStreamDestroy(c->stream);
    if (c->copy_stream)
        cudaStreamDestroy(c->copy_stream);
    for (int i = 0; i < c->n_fused; i++)
        its__fconv_free(&c->fcache[i].f);
    its_free(c->fcache);
    its_free(c->cdev);
    its_free(c->algos);
    its_free(c);
}

/* ---- private API for the benchmark (cuda_backend_impl.h) --------------------------------------
 */

int its__cuda_time_net(void *vctx, int batch, int iters, float *ms, int n_ms)
{
    cuda_ctx *c = vctx;
    plan *p = find_plan(c, batch);
    if (!p || !c->finalized || iters < 1 || n_ms < iters)
        return ITS_EINVAL;
    cudaEvent_t ev[2];
    ITS_CUDA_TRY(cudaEventCreate(&ev[0]));
    ITS_CUDA_TRY(cudaEventCreate(&ev[1]));
    for (int i = 0; i < 10; i++)
        ITS_CUDA_TRY(cudaGraphLaunch(p->exec_net, c->stream));
    for (int i = 0; i < iters; i++) {
        ITS_CUDA_TRY(cudaEventRecord(ev[0], c->stream));
        ITS_CUDA_TRY(cudaGraphLaunch(p->exec_net, c->stream));
        ITS_CUDA_TRY(cudaEventRecord(ev[1], c->stream));
        ITS_CUDA_TRY(cudaEventSynchronize(ev[1]));
        ITS_CUDA_TRY(cudaEventElapsedTime(&ms[i], ev[0], ev[1]));
    }
    cudaEventDestroy(ev[0]);
    cudaEventDestroy(ev[1]);
    return 0;
}

int its__cuda_replay_net(void *vctx, int batch)
{
    cuda_ctx *c = vctx;
    plan *p = find_plan(c, batch);
    if (!p || !c->finalized)
        return ITS_EINVAL;
    ITS_CUDA_TRY(cudaGraphLaunch(p->exec_net, c->stream));
    ITS_CUDA_TRY(cudaStreamSynchronize(c->stream));
    return 0;
}

size_t its__cuda_weight_bytes(void *vctx)
{
    return ((cuda_ctx *)vctx)->wbytes;
}

/* ---- the frames path ---------------------------------------------------------------------- */

static int capture_det(cuda_ctx *c, plan *p, det_slot *d, cudaGraphExec_t *exec)
{
    const its_graph *g = c->g;
    const its_shape *is = &p->shapes[g->inputs[0]], *os = &p->shapes[g->outputs[0]];
    ITS_CUDA_TRY(cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal));
    int rc = 0;
    if (cudaMemcpyAsync(d->dev_fr, d->pin_fr, sizeof(its_cuda_frame) * (size_t)p->batch,
                        cudaMemcpyHostToDevice, c->stream) != cudaSuccess)
        rc = ITS_EBACKEND;
    if (rc == 0)
        rc =
            its_cuda_letterbox_nchw_f32(d->dev_fr, p->batch, (int)is->dims[3], (int)is->dims[2],
                                        (float *)(c->arena + p->bufs[p->in_buf[0]].off), c->stream);
    if (rc == 0)
        rc = exec_net(c, p, c->stream);
    if (rc == 0)
        rc = its_cuda_decode_nms(c->arena + p->bufs[p->out_buf[0]].off, 0, p->batch,
                                 (int)os->dims[1] - 4, (int)os->dims[2], c->det.conf, c->det.iou,
                                 c->det.max_cand, c->det.max_det, d->dev_fr, c->det_scratch,
                                 d->dev_lists, d->dev_dets, c->stream);
    if (rc == 0 &&
        (cudaMemcpyAsync(d->pin_lists, d->dev_lists, sizeof(its_engine_det_list) * (size_t)p->batch,
                         cudaMemcpyDeviceToHost, c->stream) != cudaSuccess ||
         cudaMemcpyAsync(d->pin_dets, d->dev_dets,
                         sizeof(its_det) * (size_t)p->batch * (size_t)c->det.max_det,
                         cudaMemcpyDeviceToHost, c->stream) != cudaSuccess))
        rc = ITS_EBACKEND;
    return end_capture(c, rc, exec);
}

int its__cuda_detect_setup(void *vctx, const its__cuda_det_opts *o)
{
    cuda_ctx *c = vctx;
    const its_graph *g = c->g;
    /* once per engine: a failed setup leaves its allocations to cuda_free */
    if (!c->finalized || c->det_ready || c->det_tried || !o || o->max_det < 1 || o->max_cand < 1 ||
        o->max_cand > 1024 || o->max_frame_bytes == 0 || o->max_frame_bytes > ((size_t)1 << 30))
        return ITS_EINVAL;
    if (g->n_inputs != 1 || g->n_outputs != 1)
        return ITS_EUNSUPPORTED;
    const its_shape *is = &c->plans[c->n_plans - 1].shapes[g->inputs[0]];
    const its_shape *os = &c->plans[c->n_plans - 1].shapes[g->outputs[0]];
    /* a YOLOv8-style [N, 4 + C, A] head: fewer rows than anchors ([N, A, 5 + C] heads and
     * end-to-end [N, K, 6] outputs have it the other way round) */
    if (is->rank != 4 || is->dims[1] != 3 || os->rank != 3 || os->dims[1] < 5 ||
        os->dims[1] >= os->dims[2])
        return ITS_EUNSUPPORTED;
    c->det_tried = 1;
    c->det = *o;
    int maxb = c->plans[c->n_plans - 1].batch;
    size_t slot_bytes = (o->max_frame_bytes + 255) & ~(size_t)255;
    size_t pix = slot_bytes * (size_t)maxb;
    for (int k = 0; k < 2; k++) {
        det_slot *d = &c->slots[k];
        ITS_CUDA_TRY(cudaHostAlloc((void **)&d->pin_pix, pix, cudaHostAllocWriteCombined));
        ITS_CUDA_TRY(cudaMalloc((void **)&d->dev_pix, pix));
        ITS_CUDA_TRY(cudaHostAlloc((void **)&d->pin_fr, sizeof(its_cuda_frame) * (size_t)maxb,
                                   cudaHostAllocDefault));
        ITS_CUDA_TRY(cudaMalloc((void **)&d->dev_fr, sizeof(its_cuda_frame) * (size_t)maxb));
        ITS_CUDA_TRY(cudaHostAlloc((void **)&d->pin_lists,
                                   sizeof(its_engine_det_list) * (size_t)maxb,
                                   cudaHostAllocDefault));
        ITS_CUDA_TRY(
            cudaMalloc((void **)&d->dev_lists, sizeof(its_engine_det_list) * (size_t)maxb));
        size_t db = sizeof(its_det) * (size_t)maxb * (size_t)o->max_det;
        ITS_CUDA_TRY(cudaHostAlloc((void **)&d->pin_dets, db, cudaHostAllocDefault));
        ITS_CUDA_TRY(cudaMalloc((void **)&d->dev_dets, db));
        ITS_CUDA_TRY(cudaEventCreateWithFlags(&d->uploaded, cudaEventDisableTiming));
        ITS_CUDA_TRY(cudaEventCreateWithFlags(&d->done, cudaEventDisableTiming));
        memset(d->pin_fr, 0, sizeof(its_cuda_frame) * (size_t)maxb);
    }
    ITS_CUDA_TRY(
        cudaMalloc(&c->det_scratch, its_cuda_decode_scratch_bytes(maxb, (int)os->dims[2])));
    for (int i = 0; i < c->n_plans; i++)
        for (int k = 0; k < 2; k++) {
            int rc = capture_det(c, &c->plans[i], &c->slots[k], &c->plans[i].exec_det[k]);
            if (rc < 0)
                return rc;
        }
    ITS_CUDA_TRY(cudaStreamSynchronize(c->stream));
    c->det_ready = 1;
    return 0;
}

/* The bytes of a frame's planes after checking its fields; -1 if they make no sense. */
static int frame_planes(const its_cuda_frame *f, size_t *yb, size_t *uvb)
{
    if (f->width < 1 || f->height < 1 || f->width > 16384 || f->height > 16384 || !f->data)
        return -1;
    *uvb = 0;
    switch (f->fmt) {
    case ITS_PIX_RGB24:
    case ITS_PIX_BGR24:
        if (f->stride < 3 * f->width)
            return -1;
        break;
    case ITS_PIX_NV12:
        if (f->stride < f->width || !f->uv || f->uv_stride < 2 * ((f->width + 1) / 2))
            return -1;
        *uvb = (size_t)f->uv_stride * (size_t)((f->height + 1) / 2);
        break;
    default:
        return -1;
    }
    *yb = (size_t)f->stride * (size_t)f->height;
    return 0;
}

/* Submit n frames, given either as the backend's descriptors (cf, the tests and benchmark)
 * or as the public ones (ef, its_engine_detect_submit). Every frame is checked before
 * anything is queued, so a refused submit has no effect. Pixels in memory from
 * its__cuda_host_alloc are uploaded from where they are; others are copied into the slot's
 * pinned staging first. */
static int det_submit(cuda_ctx *c, int batch, int n, const its_cuda_frame *cf,
                      const its_engine_frame *ef)
{
    plan *p = find_plan(c, batch);
    if (!c->det_ready || !p || n < 1 || n > batch || (!cf && !ef))
        return ITS_EINVAL;
    int slot = c->next_slot;
    if (c->slots[slot].busy)
        slot ^= 1;
    det_slot *d = &c->slots[slot];
    if (d->busy)
        return ITS_EBUSY; /* wait for one first */
    for (int i = 0; i < n; i++) {
        its_cuda_frame *fd = &d->pin_fr[i];
        memset(fd, 0, sizeof *fd);
        if (cf) {
            fd->data = cf[i].data;
            fd->uv = cf[i].uv;
            fd->width = cf[i].width;
            fd->height = cf[i].height;
            fd->stride = cf[i].stride;
            fd->uv_stride = cf[i].uv_stride;
            fd->fmt = cf[i].fmt;
        } else {
            fd->data = ef[i].data;
            fd->uv = ef[i].uv;
            fd->width = ef[i].width;
            fd->height = ef[i].height;
            fd->stride = ef[i].stride;
            fd->uv_stride = ef[i].uv_stride;
            fd->fmt = ef[i].pixfmt;
        }
        size_t yb, uvb;
        if (frame_planes(fd, &yb, &uvb) < 0 || yb + uvb > c->det.max_frame_bytes)
            return ITS_EINVAL;
    }
    size_t slot_bytes = (c->det.max_frame_bytes + 255) & ~(size_t)255;
    for (int i = 0; i < n; i++) {
        its_cuda_frame *fd = &d->pin_fr[i];
        size_t yb, uvb;
        frame_planes(fd, &yb, &uvb);
        size_t off = slot_bytes * (size_t)i;
        const uint8_t *src_y = fd->data, *src_uv = fd->uv;
        int direct =
            its__cuda_host_pinned(src_y, yb) && (!uvb || its__cuda_host_pinned(src_uv, uvb));
        if (direct) { /* DMA straight from the caller's pinned frame */
            ITS_CUDA_TRY(cudaMemcpyAsync(d->dev_pix + off, src_y, yb, cudaMemcpyHostToDevice,
                                         c->copy_stream));
            if (uvb)
                ITS_CUDA_TRY(cudaMemcpyAsync(d->dev_pix + off + yb, src_uv, uvb,
                                             cudaMemcpyHostToDevice, c->copy_stream));
        } else { /* into write-combined staging, then one DMA from there */
            memcpy(d->pin_pix + off, src_y, yb);
            if (uvb)
                memcpy(d->pin_pix + off + yb, src_uv, uvb);
            ITS_CUDA_TRY(cudaMemcpyAsync(d->dev_pix + off, d->pin_pix + off, yb + uvb,
                                         cudaMemcpyHostToDevice, c->copy_stream));
        }
        fd->data = d->dev_pix + off;
        fd->uv = fd->fmt == ITS_PIX_NV12 ? d->dev_pix + off + yb : NULL;
        if (direct)
            c->det_direct++;
        else
            c->det_copied++;
    }
    its_cuda_letterbox_plan(d->pin_fr, n, (int)p->shapes[c->g->inputs[0]].dims[3],
                            (int)p->shapes[c->g->inputs[0]].dims[2]);
    for (int i = n; i < batch; i++) /* padding items repeat the last frame */
        d->pin_fr[i] = d->pin_fr[n - 1];
    ITS_CUDA_TRY(cudaEventRecord(d->uploaded, c->copy_stream));
    ITS_CUDA_TRY(cudaStreamWaitEvent(c->stream, d->uploaded, 0));
    ITS_CUDA_TRY(cudaGraphLaunch(p->exec_det[slot], c->stream));
    ITS_CUDA_TRY(cudaEventRecord(d->done, c->stream));
    d->busy = 1;
    d->batch = batch;
    d->n = n;
    c->next_slot = slot ^ 1;
    return slot;
}

int its__cuda_detect_submit(void *vctx, int batch, int n, const its_cuda_frame *frames)
{
    return det_submit(vctx, batch, n, frames, NULL);
}

int its__cuda_detect_submit_frames(void *vctx, int batch, int n, const its_engine_frame *frames)
{
    return det_submit(vctx, batch, n, NULL, frames);
}

int its__cuda_detect_wait(void *vctx, int ticket, its_engine_det_list *lists, its_det *dets)
{
    cuda_ctx *c = vctx;
    if (ticket < 0 || ticket > 1 || !c->slots[ticket].busy || !lists || !dets)
        return ITS_EINVAL;
    det_slot *d = &c->slots[ticket];
    d->busy = 0; /* released even if the batch failed */
    ITS_CUDA_TRY(cudaEventSynchronize(d->done));
    memcpy(lists, d->pin_lists, sizeof(its_engine_det_list) * (size_t)d->n);
    memcpy(dets, d->pin_dets, sizeof(its_det) * (size_t)d->n * (size_t)c->det.max_det);
    return d->n;
}

int its__cuda_detect_poll(void *vctx, int ticket)
{
    cuda_ctx *c = vctx;
    if (ticket < 0 || ticket > 1 || !c->slots[ticket].busy)
        return ITS_EINVAL;
    cudaError_t e = cudaEventQuery(c->slots[ticket].done);
    if (e == cudaErrorNotReady)
        return 0;
    ITS_CUDA_TRY(e);
    return 1;
}

static const its_backend_i cuda_iface = {
    .name = "cuda",
    .available = cuda_available,
    .init = cuda_init,
    .optimize = cuda_optimize,
    .supports_op = cuda_supports,
    .prepare = cuda_prepare,
    .run = cuda_run,
    .sync = cuda_sync,
    .arena_bytes = cuda_arena_bytes,
    .free = cuda_free,
    .detect_setup = its__cuda_vt_detect_setup,
    .detect_submit = its__cuda_vt_detect_submit,
    .detect_wait = its__cuda_vt_detect_wait,
    .detect_poll = its__cuda_detect_poll,
    .host_alloc = its__cuda_host_alloc,
    .host_free = its__cuda_host_free,
};

const its_backend_reg its__backend_cuda = {&cuda_iface};

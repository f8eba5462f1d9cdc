/*
 * cuda_backend.c - the cuda backend's vtable: fp16 activations and weights with fp32 accumulation,
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
 *
 * This file holds the vtable and what it does itself (init, optimize, supports_op, the weight
 * upload, run/sync, free); planning, the per-op code, graph capture and the frames path are
 * in the files cuda_internal.h lists. The backend is built as the module its_cuda.so, whose
 * one exported symbol is its_backend_module (backend.h).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "its/alloc.h"
#include "its/error.h"
#include "its/log.h"

#include "../backend.h"
#include "../ir.h"
#include "cuda_check.h"
#include "cuda_internal.h"

int its__cuda_grow(void **arr, int *cap, int need, size_t elem)
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
    c->refs = its_malloc(ITS_MOD_ENGINE, sizeof *c->refs);
    if (!c->refs) {
        its_free(c);
        return ITS_ENOMEM;
    }
    *c->refs = 1;
    int rc = init_handles(c);
    c->plan_dnn = c->dnn; /* the plans are finalised with it: shared, freed last */
    if (rc < 0) {
        cuda_free(c);
        FAIL(rc, "cuda: device %d: initialisation failed (%s)", o->device, its_strerror(rc));
    }
    *out = c;
    return 0;
}

/* A context sharing b's weights and plans (backend vtable's share): a copy of b with its own
 * streams, handles, arena, staging and CUDA graphs (cuda_internal.h, "Sharing"). */
static int cuda_share(void *vctx, void **out, char *err, size_t errlen)
{
    cuda_ctx *b = vctx;
    if (!b->finalized)
        FAIL(ITS_EINVAL, "cuda: an engine is shared once prepared");
    cuda_ctx *c = its_malloc(ITS_MOD_ENGINE, sizeof *c);
    if (!c)
        return ITS_ENOMEM;
    memcpy(c, b, sizeof *c);
    (*c->refs)++;
    c->is_share = 1;
    /* the execution state is this context's own */
    c->stream = c->copy_stream = NULL;
    c->dnn = NULL;
    c->blas = NULL;
    c->arena = NULL;
    c->arena_size = 0;
    c->conv_ws = c->blas_ws = NULL;
    memset(c->pin_in, 0, sizeof c->pin_in);
    memset(c->pin_out, 0, sizeof c->pin_out);
    for (int i = 0; i < c->n_plans; i++) {
        c->plans[i].exec_full = c->plans[i].exec_net = NULL;
        c->plans[i].exec_det[0] = c->plans[i].exec_det[1] = NULL;
    }
    c->finalized = 0;
    c->pending = 0;
    c->pend_plan = NULL;
    c->pend_out = NULL;
    c->det_ready = 0;
    memset(&c->det, 0, sizeof c->det);
    memset(c->slots, 0, sizeof c->slots);
    c->det_scratch = NULL;
    c->next_slot = c->det_tried = 0;
    c->det_direct = c->det_copied = 0;
    c->frames_free = NULL;
    c->pcache = NULL;
    c->pc_path = NULL;
    c->load_ms_find = 0;
    int rc = init_handles(c);
    if (rc == 0)
        rc = its__cuda_finalize(c, err, errlen);
    if (rc < 0) {
        if (!err[0])
            snprintf(err, errlen, "cuda: shared context: %s", its_strerror(rc));
        cuda_free(c);
        return rc;
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

/* ---- prepare, run, sync, free ------------------------------------------------------------ */

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
    rc = its__cuda_plan(c, g, p, err, errlen);
    if (rc < 0)
        return rc;
    if (batch >= c->max_batch)
        return its__cuda_finalize(c, err, errlen);
    return 0;
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
        int rc = its__cuda_finalize(c, err, sizeof err);
        if (rc < 0) {
            its_loge("engine", "cuda", "%s", err);
            return rc;
        }
    }
    plan *p = its__cuda_find_plan(c, batch);
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

/* What each context has of its own in a plan: its CUDA graphs. */
static void free_plan_exec(plan *p)
{
    if (p->exec_full)
        cudaGraphExecDestroy(p->exec_full);
    if (p->exec_net)
        cudaGraphExecDestroy(p->exec_net);
    for (int k = 0; k < 2; k++)
        if (p->exec_det[k])
            cudaGraphExecDestroy(p->exec_det[k]);
}

/* What the contexts sharing it have in common (cuda_share). */
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
    for (int i = 0; i < c->n_plans; i++)
        free_plan_exec(&c->plans[i]);
    for (int k = 0; k < MAX_IO; k++) {
        if (c->pin_in[k])
            cudaFreeHost(c->pin_in[k]);
        if (c->pin_out[k])
            cudaFreeHost(c->pin_out[k]);
    }
    if (c->frames_free)
        c->frames_free(c);
    if (c->arena)
        cudaFree(c->arena);
    if (c->blas)
        cublasDestroy(c->blas);
    if (c->dnn && c->dnn != c->plan_dnn)
        cudnnDestroy(c->dnn);
    if (c->stream)
        cudaStreamDestroy(c->stream);
    if (c->copy_stream)
        cudaStreamDestroy(c->copy_stream);
    its_plancache_free(c->pcache);
    its_free(c->pc_path);
    if (c->refs && --*c->refs > 0) { /* the others still use what is shared */
        its_free(c);
        return;
    }
    for (int i = 0; i < c->n_plans; i++)
        free_plan(&c->plans[i]);
    if (c->wmem)
        cudaFree(c->wmem);
    for (int i = 0; i < c->n_fused; i++)
        its__fconv_free(&c->fcache[i].f);
    if (c->plan_dnn)
        cudnnDestroy(c->plan_dnn);
    its_free(c->fcache);
    its_free(c->cdev);
    its_free(c->algos);
    its_free((void *)c->refs);
    its_free(c);
}

/* The extensions this backend has (backend.h): the frames path, pinned host memory, and the
 * tests' and benchmark's entry points. */
static const void *cuda_get_proc(const char *name)
{
    if (strcmp(name, ITS_BACKEND_EXT_FRAMES) == 0)
        return &its__cuda_frames_ext;
    if (strcmp(name, ITS_BACKEND_EXT_HOST_MEM) == 0)
        return &its__cuda_host_mem_ext;
    if (strcmp(name, ITS_CUDA_EXT_DEVTOOLS) == 0)
        return &its__cuda_devtools_ext;
    return NULL;
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
    .padded_batches = 1,
    .get_proc = cuda_get_proc,
    .plan_cache = its__cuda_plan_cache_open,
    .share = cuda_share,
};

/* The module's one exported symbol (ITS_BACKEND_MODULE_ENTRY). */
__attribute__((visibility("default"))) const its_backend_i *its_backend_module(void);

const its_backend_i *its_backend_module(void)
{
    return &cuda_iface;
}

/*
 * cpu_backend.c - the CPU backend: oneDNN convolutions (with bias, activation and residual
 * sum as post-ops), our kernels (kernels.c) for everything else.
 *
 * Threads: with more than one, the backend runs its own team (../team.h). A convolution is
 * split into parts (bands of output rows, or images of a batch), each a single-threaded oneDNN
 * primitive, that the team's threads claim one at a time; the kernels' parallel loops run on
 * the team too. ITS_ENGINE_TEAM=0 leaves the threading to OpenMP inside oneDNN and the
 * kernels, as before (docs/engine-cpu.md, section 6).
 *
 * Per prepared batch size a plan holds the tensor placements in the shared arena and one
 * step per node; a Conv step owns its oneDNN primitive, created once here. Weights are
 * reordered once into the layout oneDNN picks and shared between the plans of one engine.
 * The scratchpad is user-managed (one buffer sized for the largest primitive), so a run
 * allocates nothing: it binds arena addresses to the memory objects and executes.
 */
#include <math.h>
#include <omp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <oneapi/dnnl/dnnl.h>

#include "its/alloc.h"
#include "its/clock.h"
#include "its/error.h"

#include "../backend.h"
#include "../ir.h"
#include "../ops_impl.h"
#include "../team.h"

#define MAX_PLANS 8
#define ALIGN     64

/* Check a oneDNN status: turn it into ITS_EBACKEND with the call site in err. */
#define DNNL_CHECK(call)                                                                           \
    do {                                                                                           \
        dnnl_status_t st_ = (call);                                                                \
        if (st_ != dnnl_success) {                                                                 \
            snprintf(err, errlen, "node '%s' (%s): oneDNN %s failed (status %d)", n->name,         \
                     its__op_name(n->op), #call, (int)st_);                                        \
            return ITS_EBACKEND;                                                                   \
        }                                                                                          \
    } while (0)

/* Without the team (ITS_ENGINE_TEAM=0) and under OMP_WAIT_POLICY=passive, convolutions under
 * this many multiply-adds run on one thread: a sleeping OpenMP thread takes tens of microseconds to
 * wake, more than it saves on a small convolution (YOLOX-nano at batch 1: 15.1 -> 13.7 ms on 2
 * threads; plateau from 1e6 to 2e6). With spinning threads (the default) a wake is cheap and every
 * convolution uses all threads. ITS_ENGINE_SERIAL_MACS overrides it (0: never serial).
 * docs/engine-cpu.md. */
#define SERIAL_MACS_PASSIVE 2e6

/* The team (docs/engine-cpu.md section 6): a split convolution has this many parts per
 * thread. One: every part is a primitive call of a few microseconds' overhead, and finer
 * parts did not pay for it (YOLOX-nano batch 1, 5 alternations: 9.0-9.5 ms with 1 per
 * thread, 9.1-10.6 with 2, 10.1-11.2 with 4; without spinning 10.0-11.2 / 10.6-12.1 /
 * 11.2-12.8; YOLO11n and YOLOv8n int8 the same within noise). Idle workers spin TEAM_SPIN_US before
 * they sleep, so that the next step's tasks find them awake (YOLOX-nano, 6 alternations: batch
 * 1 10.2 / 10.0 / 10.1 ms and batch 4 39.0 / 37.9 / 36.8 ms with 0 / 50 / 200 us; YOLO11n batch 4
 * was slower with 1000 us); never under OMP_WAIT_POLICY=passive; ITS_ENGINE_SPIN_US sets it. */
#define TEAM_PARTS_PER_THREAD 1
#define TEAM_SPIN_US          200
#define TEAM_MAX_PARTS        64

/* The last-level cache when the system does not say (batch_by_image). */
#define BATCH_CACHE_DEFAULT (16u << 20)

/* libgomp's threads sleep at once between parallel regions (OMP_WAIT_POLICY=passive or
 * GOMP_SPINCOUNT=0). */
static int omp_passive(void)
{
    const char *w = getenv("OMP_WAIT_POLICY"), *sc = getenv("GOMP_SPINCOUNT");
    return (w && strcasecmp(w, "passive") == 0) || (sc && strcmp(sc, "0") == 0);
}

#define STEP_MAX_ARGS 8
#define BIND_FIXED    -1 /* memory bound once at prepare (weights, bias) */
#define BIND_SCRATCH  -2 /* the shared user scratchpad */

/* One oneDNN primitive and its arguments; tensor[k] is bound to mem[k] before each run. */
typedef struct prim_step {
    dnnl_primitive_t prim;
    int n;
    int arg[STEP_MAX_ARGS];
    int tensor[STEP_MAX_ARGS];
    dnnl_memory_t mem[STEP_MAX_ARGS];
    size_t off[STEP_MAX_ARGS]; /* bytes into the bound tensor (a part of a split conv) */
    char owned[STEP_MAX_ARGS]; /* 0 for the shared weight cache */
    char serial;               /* made and run with one thread (a small convolution) */
    /* A convolution split for the team (conv_parts): n_part single-threaded primitives, each
     * computing its share of the output; prim is then NULL. */
    struct prim_step *part;
    int n_part;
} prim_step;

typedef struct plan {
    int batch;
    const its_shape *shapes;
    size_t *off;     /* per tensor: arena offset or SIZE_MAX */
    size_t *bytes;   /* per tensor */
    prim_step *step; /* per node (prim NULL: the node runs on our kernels) */
    size_t arena;
    /* Run image by image on the batch-1 plan (plans[0]): this batch's activations would not
     * fit in the last-level cache (batch_by_image); no primitives, no arena of its own. */
    int by_image;
} plan;

typedef struct cpu_ctx {
    dnnl_engine_t eng;
    dnnl_stream_t strm;
    int threads;
    double serial_macs; /* convolutions below this many multiply-adds run on one thread */
    const its_graph *g;
    plan plans[MAX_PLANS];
    int n_plans;
    dnnl_memory_t *wcache; /* per node: weights in oneDNN's layout */
    float **qbias;         /* per node: an integer conv's bias / s0 */
    char *nhwc;            /* per tensor: 1 if stored channels-last (see assign_layouts) */
    int n_nhwc;
    uint8_t *arena;
    size_t arena_size;
    /* The team (ITS_ENGINE_TEAM, docs/engine-cpu.md section 6): our own worker threads run the
     * parts of split convolutions; NULL: every primitive runs on OpenMP. Each thread has its
     * own stream and scratchpad: scratch + thread * scratch_size. */
    its__team *team;
    int parts; /* a split convolution's parts (ITS_ENGINE_PARTS) */
    int n_scratch;
    dnnl_stream_t *tstrm;
    uint8_t *scratch;
    size_t scratch_size;
    /* ITS_ENGINE_PROFILE=1: time per op kind (and per oneDNN conv), printed by cpu_free */
    int profile;
    int no_prims; /* ITS_ENGINE_NO_PRIMS=1: only convolutions on oneDNN (debugging knob) */
    /* Graphs with DynamicQuantizeLinear keep our libm sigmoid/SiLU: the dynamic scale turns
     * last-bit differences of oneDNN's exp into whole quantization steps (docs/engine-cpu.md). */
    int libm_unary;
    double prof_ns[ITS_OP_COUNT + 1];
    long prof_calls[ITS_OP_COUNT + 1];
    double *prof_node; /* per node (profile only) */
} cpu_ctx;

static int cpu_available(void)
{
    return 1;
}

static void cpu_free(void *ctx);

static int cpu_init(const its_engine_opts *o, void **out, char *err, size_t errlen)
{
    cpu_ctx *c = its_calloc(ITS_MOD_ENGINE, 1, sizeof *c);
    if (!c)
        return ITS_ENOMEM;
    c->threads = o->threads > 0 ? o->threads : omp_get_num_procs();
    c->profile = getenv("ITS_ENGINE_PROFILE") != NULL;
    c->no_prims = getenv("ITS_ENGINE_NO_PRIMS") != NULL;
    /* primitives are created for the thread count they will run with */
    omp_set_num_threads(c->threads);
    if (dnnl_engine_create(&c->eng, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&c->strm, c->eng, dnnl_stream_default_flags) != dnnl_success) {
        if (c->eng)
            dnnl_engine_destroy(c->eng);
        its_free(c);
        snprintf(err, errlen, "oneDNN: cannot create the CPU engine");
        return ITS_EBACKEND;
    }
    /* The team (docs/engine-cpu.md section 6): on unless ITS_ENGINE_TEAM=0. Its idle workers
     * spin TEAM_SPIN_US (ITS_ENGINE_SPIN_US) before they sleep, never where the process asked
     * OpenMP not to spin (OMP_WAIT_POLICY=passive). */
    const char *te = getenv("ITS_ENGINE_TEAM"), *sp = getenv("ITS_ENGINE_SPIN_US"),
               *pa = getenv("ITS_ENGINE_PARTS"), *sm = getenv("ITS_ENGINE_SERIAL_MACS");
    int want_team = !te || atoi(te) != 0;
    int spin_us = sp ? atoi(sp) : omp_passive() ? 0 : TEAM_SPIN_US;
    c->parts = pa && atoi(pa) > 0 ? atoi(pa) : TEAM_PARTS_PER_THREAD * c->threads;
    c->n_scratch = 1;
    /* without the team, small convolutions run on one thread under passive OpenMP waiting */
    c->serial_macs = sm ? atof(sm) : want_team || !omp_passive() ? 0 : SERIAL_MACS_PASSIVE;
    if (want_team && c->threads > 1) {
        int rc = its__team_create(c->threads, spin_us < 0 ? 0 : spin_us, &c->team);
        if (rc < 0) {
            snprintf(err, errlen, "cpu backend: cannot start %d worker threads", c->threads - 1);
            cpu_free(c);
            return rc;
        }
        c->n_scratch = c->threads;
    }
    c->tstrm = its_calloc(ITS_MOD_ENGINE, (size_t)c->n_scratch, sizeof *c->tstrm);
    if (!c->tstrm) {
        cpu_free(c);
        return ITS_ENOMEM;
    }
    c->tstrm[0] = c->strm;
    for (int k = 1; k < c->n_scratch; k++)
        if (dnnl_stream_create(&c->tstrm[k], c->eng, dnnl_stream_default_flags) != dnnl_success) {
            cpu_free(c);
            snprintf(err, errlen, "oneDNN: cannot create a stream");
            return ITS_EBACKEND;
        }
    *out = c;
    return 0;
}

static int is_dnnl_conv(const its_graph *g, const its_ir_node *n);

/* A LAYOUT node converting tensor t to layout `to`; its output tensor in *out. */
static int add_layout_node(its_graph *g, int t, int to, int *out)
{
    char name[512];
    snprintf(name, sizeof name, "%s.%s", g->tensors[t].name, to ? "nhwc" : "nchw");
    int nt = its__graph_add_tensor(g, name, g->tensors[t].dtype, ITS_TK_ACT);
    if (nt < 0)
        return nt;
    g->tensors[nt].shape = g->tensors[t].shape;
    g->tensors[nt].batched = g->tensors[t].batched;
    int in[1] = {t}, o[1] = {nt};
    int k = its__graph_add_node(g, name, ITS_OP_LAYOUT, 1, in, 1, o);
    if (k < 0)
        return k;
    its_ir_node *n = &g->nodes[k];
    n->attrs = its_calloc(ITS_MOD_ENGINE, 1, sizeof(its_attr));
    if (!n->attrs)
        return ITS_ENOMEM;
    n->attrs[0].name = its_strdup(ITS_MOD_ENGINE, "to");
    if (!n->attrs[0].name)
        return ITS_ENOMEM;
    n->attrs[0].kind = ITS_ATTR_INT;
    n->attrs[0].i = to;
    n->n_attrs = 1;
    *out = nt;
    return 0;
}

static int eligible(const its_graph *g, int t)
{
    const its_ir_tensor *T = &g->tensors[t];
    return T->kind == ITS_TK_ACT && T->shape.rank == 4 && !(T->flags & ITS_TF_OUTPUT) &&
           (T->dtype == ITS_DT_FLOAT32 || T->dtype == ITS_DT_UINT8 || T->dtype == ITS_DT_INT8);
}

/*
 * Layout assignment. oneDNN's fast convolutions (brgconv, jit) want channels-last (NHWC)
 * activations; with plain NCHW it falls back to im2col + GEMM, where fused post-ops are slow
 * too. So every 4-D float activation between convolutions is kept NHWC when all the ops that
 * touch it can work channels-last (elementwise ops, Concat/Split on channels, MaxPool,
 * Resize: its__nhwc_capable); a fixpoint removes tensors whose producer has an NCHW input.
 * Where an NHWC tensor meets an op that needs NCHW (Reshape, Transpose, Softmax, graph
 * outputs...), a LAYOUT node converts it, once per tensor. A conv's source and residual are
 * converted to the layout of its output, so oneDNN never mixes layouts (it would pick its
 * reference kernel).
 */
static int assign_layouts(cpu_ctx *c, its_graph *g, char *err, size_t errlen)
{
    int nt0 = g->n_tensors, nn0 = g->n_nodes, rc = 0;
    char *nhwc = its_calloc(ITS_MOD_ENGINE, (size_t)nt0 + 1, 1);
    int *conv_to[2];
    conv_to[0] = its_malloc(ITS_MOD_ENGINE, (size_t)(nt0 + 1) * sizeof(int));
    conv_to[1] = its_malloc(ITS_MOD_ENGINE, (size_t)(nt0 + 1) * sizeof(int));
    if (!nhwc || !conv_to[0] || !conv_to[1]) {
        rc = ITS_ENOMEM;
        goto out;
    }
    for (int t = 0; t < nt0; t++)
        conv_to[0][t] = conv_to[1][t] = -1;
    for (int i = 0; i < nn0; i++) {
        const its_ir_node *n = &g->nodes[i];
        if (is_dnnl_conv(g, n) || its__nhwc_capable(g, n))
            for (int k = 0; k < n->n_out; k++)
                if (n->out[k] >= 0 && eligible(g, n->out[k]))
                    nhwc[n->out[k]] = 1;
    }
    for (int changed = 1; changed;) {
        changed = 0;
        for (int i = 0; i < nn0; i++) {
            const its_ir_node *n = &g->nodes[i];
            if (is_dnnl_conv(g, n))
                continue;
            int any = 0, ok = 1;
            for (int k = 0; k < n->n_out; k++)
                any |= n->out[k] >= 0 && nhwc[n->out[k]];
            if (!any)
                continue;
            for (int k = 0; k < n->n_in; k++) {
                int t = n->in[k];
                /* scalars and constant parameters (split sizes, scales) have no layout */
                if (t < 0 || its__shape_numel(&g->tensors[t].shape) == 1 ||
                    (g->tensors[t].kind == ITS_TK_CONST && g->tensors[t].shape.rank != 4))
                    continue;
                if (!nhwc[t])
                    ok = 0;
            }
            for (int k = 0; k < n->n_out; k++)
                if (n->out[k] >= 0 && !eligible(g, n->out[k]))
                    ok = 0;
            if (!ok) {
                for (int k = 0; k < n->n_out; k++)
                    if (n->out[k] >= 0)
                        nhwc[n->out[k]] = 0;
                changed = 1;
            }
        }
        /* only float tensors can be converted (LAYOUT): an 8-bit NHWC tensor read by a node
         * that runs NCHW must itself be NCHW */
        for (int i = 0; i < nn0; i++) {
            const its_ir_node *n = &g->nodes[i];
            /* (an integer conv's 8-bit source gets a LAYOUT node when needed, below) */
            int cl = n->n_out > 0 && n->out[0] >= 0 && nhwc[n->out[0]];
            if (cl || n->q_src)
                continue;
            for (int k = 0; k < n->n_in; k++) {
                int t = n->in[k];
                if (t >= 0 && nhwc[t] && g->tensors[t].dtype != ITS_DT_FLOAT32) {
                    nhwc[t] = 0;
                    changed = 1;
                }
            }
        }
    }
    for (int i = 0; i < nn0 && rc == 0; i++) {
        int dnnl = is_dnnl_conv(g, &g->nodes[i]);
        int mode = 0;
        if (dnnl)
            mode = nhwc[g->nodes[i].out[0]];
        else if (g->nodes[i].n_out > 0 && g->nodes[i].out[0] >= 0 && nhwc[g->nodes[i].out[0]])
            continue; /* runs channels-last; its inputs are NHWC (or scalars) already */
        int nslots = g->nodes[i].n_in + 1;
        for (int k = 0; k < nslots && rc == 0; k++) {
            int t = k < g->nodes[i].n_in ? g->nodes[i].in[k] : g->nodes[i].sum;
            if (t < 0 || t >= nt0 || (dnnl && k != 0 && k != nslots - 1))
                continue;
            int have = nhwc[t];
            if (have == mode)
                continue;
            int dt_ok =
                g->tensors[t].dtype == ITS_DT_FLOAT32 || (dnnl && k == 0 && g->nodes[i].q_src);
            if (!have &&
                (!dt_ok || g->tensors[t].shape.rank != 4 || g->tensors[t].kind == ITS_TK_CONST))
                continue;
            if (conv_to[mode][t] < 0) {
                int nt;
                rc = add_layout_node(g, t, mode, &nt);
                if (rc < 0)
                    break;
                conv_to[mode][t] = nt;
            }
            if (k < g->nodes[i].n_in)
                g->nodes[i].in[k] = conv_to[mode][t];
            else
                g->nodes[i].sum = conv_to[mode][t];
        }
    }
    if (rc == 0)
        rc = its__graph_toposort(g, err, errlen);
    if (rc == 0) {
        c->nhwc = its_calloc(ITS_MOD_ENGINE, (size_t)g->n_tensors + 1, 1);
        if (!c->nhwc) {
            rc = ITS_ENOMEM;
            goto out;
        }
        c->n_nhwc = g->n_tensors;
        memcpy(c->nhwc, nhwc, (size_t)nt0);
        for (int i = 0; i < g->n_nodes; i++)
            if (g->nodes[i].op == ITS_OP_LAYOUT)
                c->nhwc[g->nodes[i].out[0]] = (char)its__attr_i(&g->nodes[i], "to", 0);
    }
out:
    its_free(nhwc);
    its_free(conv_to[0]);
    its_free(conv_to[1]);
    return rc;
}

/*
 * The int8 weights of a conv whose float weights were folded from DequantizeLinear(int8,
 * per-tensor scale, zero point 0): scale = max|w| / 127 (symmetric quantization puts the
 * largest weight at +-127) and every w / scale must be an integer within 1e-3; anything else
 * (per-channel or asymmetric weights, plain float models) returns 0 and the conv stays float.
 * q may be NULL (check only).
 */
static int int8_weights(const its_ir_tensor *w, int8_t *q, float *scale)
{
    int64_t ne = its__shape_numel(&w->shape);
    const float *d = w->data;
    float mx = 0.f;
    for (int64_t i = 0; i < ne; i++)
        mx = fabsf(d[i]) > mx ? fabsf(d[i]) : mx;
    if (!(mx > 0.f) || !isfinite(mx))
        return 0;
    float s = mx / 127.f;
    for (int64_t i = 0; i < ne; i++) {
        float r = d[i] / s, ri = nearbyintf(r);
        if (fabsf(r - ri) > 1e-3f || fabsf(ri) > 127.f)
            return 0;
        if (q)
            q[i] = (int8_t)ri;
    }
    *scale = s;
    return 1;
}

/* The 8-bit quantization a conv applies last (its output holds s * (q - zp)), or 0. */
static int conv_out_quant(const its_ir_node *n, float *s, int32_t *zp, its_dtype *dt)
{
    int k = n->fq_on[1] ? 1 : (n->fq_on[0] && n->act == ITS_ACT_NONE) ? 0 : -1;
    if (k < 0)
        return 0;
    if (n->fq_lo[k] == 0 && n->fq_hi[k] == 255)
        *dt = ITS_DT_UINT8;
    else if (n->fq_lo[k] == -128 && n->fq_hi[k] == 127)
        *dt = ITS_DT_INT8;
    else
        return 0;
    *s = n->fq_scale[k];
    *zp = n->fq_zp[k];
    return 1;
}

/* A QuantizeLinear of float tensor x (per-tensor s, zp) into a new 8-bit tensor *out. */
static int add_quantize(its_graph *g, int x, float s, int32_t zp, its_dtype dt, int *out)
{
    char name[512];
    int t[3];
    const char *sfx[3] = {"q", "q_scale", "q_zero_point"};
    its_dtype dts[3] = {dt, ITS_DT_FLOAT32, dt};
    for (int k = 0; k < 3; k++) {
        snprintf(name, sizeof name, "%s.%s", g->tensors[x].name, sfx[k]);
        t[k] = its__graph_add_tensor(g, name, dts[k], k ? ITS_TK_CONST : ITS_TK_ACT);
        if (t[k] < 0)
            return t[k];
    }
    g->tensors[t[0]].shape = g->tensors[x].shape;
    g->tensors[t[0]].batched = g->tensors[x].batched;
    float *sd = its_malloc(ITS_MOD_ENGINE, sizeof(float));
    if (!sd)
        return ITS_ENOMEM;
    *sd = s;
    g->tensors[t[1]].data = sd; /* rank-0 shape: a scalar */
    uint8_t *zd = its_malloc(ITS_MOD_ENGINE, 1);
    if (!zd)
        return ITS_ENOMEM;
    *zd = dt == ITS_DT_INT8 ? (uint8_t)(int8_t)zp : (uint8_t)zp;
    g->tensors[t[2]].data = zd;
    snprintf(name, sizeof name, "%s.q", g->tensors[x].name);
    int in[3] = {x, t[1], t[2]};
    int k = its__graph_add_node(g, name, ITS_OP_QUANTIZE_LINEAR, 3, in, 1, t);
    if (k < 0)
        return k;
    *out = t[0];
    return 0;
}

/*
 * Integer convolutions for QDQ models. A conv with constant int8-representable weights and a
 * fused fake quantization (fq_on[0]: the model quantizes its result) runs as a oneDNN int8
 * convolution when its source is available as 8-bit integers:
 *  - the source is DequantizeLinear(q) with per-tensor constants: the conv reads q directly
 *    (the DequantizeLinear disappears when nothing else reads it);
 *  - the source is the output of a conv that quantizes its result last: when every reader of
 *    it is such a conv and the producer is one too, the producer writes the 8-bit integers
 *    (q_dst) and the readers take them as source; otherwise a QuantizeLinear (exact: the
 *    tensor holds s * (q - zp)) makes the integers once for the integer readers.
 * Everything else is unchanged (the conv stays float with fake quantization).
 */
static int pass_int8_conv(its_graph *g, char *err, size_t errlen)
{
    int nn = g->n_nodes, rc = 0;
    char *cand = its_calloc(ITS_MOD_ENGINE, (size_t)nn + 1, 1);
    char *ok = its_calloc(ITS_MOD_ENGINE, (size_t)nn + 1, 1);
    if (!cand || !ok) {
        rc = ITS_ENOMEM;
        goto out;
    }
    for (int i = 0; i < nn; i++) {
        const its_ir_node *n = &g->nodes[i];
        float s;
        cand[i] = is_dnnl_conv(g, n) && n->fq_on[0] && n->sum < 0 &&
                  g->tensors[n->in[0]].shape.rank == 4 &&
                  g->tensors[n->in[0]].dtype == ITS_DT_FLOAT32 &&
                  int8_weights(&g->tensors[n->in[1]], NULL, &s);
    }
    int changed = 0;
    for (int i = 0; i < nn; i++) {
        if (!cand[i])
            continue;
        its_ir_node *n = &g->nodes[i];
        int x = n->in[0], pi = g->tensors[x].producer;
        if (pi < 0)
            continue;
        its_ir_node *pn = &g->nodes[pi];
        if (pn->op == ITS_OP_DEQUANTIZE_LINEAR) {
            int q = pn->in[0];
            const its_ir_tensor *S = &g->tensors[pn->in[1]];
            const its_ir_tensor *Z = pn->n_in > 2 && pn->in[2] >= 0 ? &g->tensors[pn->in[2]] : NULL;
            its_dtype qt = g->tensors[q].dtype;
            if ((qt != ITS_DT_UINT8 && qt != ITS_DT_INT8) || S->kind != ITS_TK_CONST ||
                its__shape_numel(&S->shape) != 1 || S->dtype != ITS_DT_FLOAT32 ||
                (Z &&
                 (Z->kind != ITS_TK_CONST || its__shape_numel(&Z->shape) != 1 || Z->dtype != qt)) ||
                g->tensors[q].shape.rank != 4)
                continue;
            n->q_src = 1;
            n->q_src_scale = *(const float *)S->data;
            n->q_src_zp = !Z                   ? 0
                          : qt == ITS_DT_UINT8 ? *(const uint8_t *)Z->data
                                               : *(const int8_t *)Z->data;
            n->in[0] = q;
            ok[i] = 1;
            changed = 1;
            continue;
        }
        float s;
        int32_t zp;
        its_dtype dt;
        if (!is_dnnl_conv(g, pn) || !conv_out_quant(pn, &s, &zp, &dt))
            continue;
        int all = !(g->tensors[x].flags & ITS_TF_OUTPUT); /* every reader: a candidate's source */
        for (int j = pi + 1; j < nn && all; j++) {
            const its_ir_node *m = &g->nodes[j];
            for (int k = 0; k < m->n_in; k++)
                if (m->in[k] == x && (k != 0 || !cand[j]))
                    all = 0;
            if (m->sum == x)
                all = 0;
        }
        int src = x;
        if (all && ok[pi]) { /* the producer writes the integers */
            pn->q_dst = dt;
            g->tensors[x].dtype = dt;
        } else { /* others read the float values: quantize them once for the integer convs
                  * (exact: x holds s * (q - zp)) */
            if ((rc = add_quantize(g, x, s, zp, dt, &src)) < 0)
                goto out;
        }
        for (int j = pi + 1; j < nn; j++) {
            its_ir_node *m = &g->nodes[j];
            if (cand[j] && m->in[0] == x && m->sum != x) {
                m->in[0] = src;
                m->q_src = 1;
                m->q_src_scale = s;
                m->q_src_zp = zp;
                ok[j] = 1;
            }
        }
        changed = 1;
    }
    if (!changed)
        goto out;
    if ((rc = its__graph_toposort(g, err, errlen)) < 0)
        goto out;
    /* DequantizeLinear nodes nobody reads any more */
    for (int i = 0; i < g->n_nodes; i++) {
        its_ir_node *n = &g->nodes[i];
        if (n->op == ITS_OP_DEQUANTIZE_LINEAR && g->tensors[n->out[0]].n_consumers == 0 &&
            !(g->tensors[n->out[0]].flags & ITS_TF_OUTPUT))
            n->op = ITS_OP_NONE;
    }
    rc = its__graph_compact(g);
out:
    its_free(cand);
    its_free(ok);
    return rc;
}

static int cpu_optimize(void *ctx, its_graph *g, char *err, size_t errlen)
{
    int rc;
    if (getenv("ITS_ENGINE_NO_FUSE")) /* debugging knob: run every op on its own */
        return getenv("ITS_ENGINE_NCHW") ? 0 : assign_layouts(ctx, g, err, errlen);
    its__pass_fuse_conv_fq(g, 0);
    if ((rc = its__graph_compact(g)) < 0)
        return rc;
    its__pass_fuse_conv_act(g, 1u << ITS_ACT_SILU | 1u << ITS_ACT_RELU | 1u << ITS_ACT_LEAKY |
                                   1u << ITS_ACT_SIGMOID);
    if ((rc = its__graph_compact(g)) < 0)
        return rc;
    its__pass_fuse_conv_fq(g, 1);
    if ((rc = its__graph_compact(g)) < 0)
        return rc;
    its__pass_fuse_conv_sum(g);
    if ((rc = its__graph_compact(g)) < 0)
        return rc;
    if (!getenv("ITS_ENGINE_NO_INT8") && (rc = pass_int8_conv(g, err, errlen)) < 0)
        return rc;
    if (getenv("ITS_ENGINE_NCHW")) /* debugging knob: plain layouts everywhere */
        return 0;
    rc = assign_layouts(ctx, g, err, errlen);
    return rc;
}

static int is_dnnl_conv(const its_graph *g, const its_ir_node *n);

static int cpu_supports(void *ctx, const its_graph *g, int i)
{
    (void)ctx;
    const its_ir_node *n = &g->nodes[i];
    if (n->n_in > ITS_IR_MAX_IO || n->n_out > ITS_IR_MAX_IO)
        return 0;
    switch (n->op) {
    case ITS_OP_NONE:
    case ITS_OP_COUNT:
        return 0;
    case ITS_OP_CONV: /* runtime weights: the reference kernel, without fusions */
        if (n->q_src)
            return is_dnnl_conv(g, n);
        return g->tensors[n->in[0]].dtype == ITS_DT_FLOAT32 &&
               (is_dnnl_conv(g, n) || (n->act == ITS_ACT_NONE && n->sum < 0));
    default:
        return 1;
    }
}

/* Conv with constant weights (and bias) runs on oneDNN; anything else on the reference. */
static int is_dnnl_conv(const its_graph *g, const its_ir_node *n)
{
    return n->op == ITS_OP_CONV && g->tensors[n->in[1]].kind == ITS_TK_CONST &&
           (n->n_in < 3 || n->in[2] < 0 || g->tensors[n->in[2]].kind == ITS_TK_CONST);
}

static void *tptr(const cpu_ctx *c, const plan *p, int t)
{
    const its_ir_tensor *T = &c->g->tensors[t];
    if (T->kind == ITS_TK_CONST)
        return T->data;
    /* zero-sized tensors get no block: any valid address will do, nothing is accessed */
    return p->off[t] == SIZE_MAX ? c->arena : c->arena + p->off[t];
}

static dnnl_alg_kind_t act_alg(its_act a, float *alpha)
{
    *alpha = 0.f;
    switch (a) {
    case ITS_ACT_RELU:
        return dnnl_eltwise_relu;
    case ITS_ACT_LEAKY:
        return dnnl_eltwise_relu; /* alpha: negative slope (set by caller) */
    case ITS_ACT_SIGMOID:
        return dnnl_eltwise_logistic;
    case ITS_ACT_SILU:
        *alpha = 1.f;
        return dnnl_eltwise_swish;
    default:
        return dnnl_alg_kind_undef;
    }
}

static dnnl_format_tag_t layout_tag(const cpu_ctx *c, int t)
{
    return t >= 0 && t < c->n_nhwc && c->nhwc[t] ? dnnl_nhwc : dnnl_nchw;
}

/*
 * Fake quantization as post-ops: q = clamp(round(x * (1/s)), lo - zp, hi - zp), y = q * s.
 * This is DequantizeLinear(QuantizeLinear(x)) except that x / s becomes x * (1/s), which can
 * differ in the last bit and so, rarely, move a value by one quantization step.
 *
 * oneDNN 2.6's JIT convolutions apply the parameters of the first post-op of a kind to every
 * later post-op of the same kind (seen here: two eltwise_linear post-ops both scaled by the
 * first alpha). So no kind appears twice with different parameters: the 1/s multiply of the
 * second quantizer rides on the activation's output scale, the *s on the clip's output scale,
 * and the two clips use the two clip algorithms (same semantics).
 */
static int append_conv_post_ops(dnnl_post_ops_t po, const its_ir_node *n)
{
    int npo = 0;
    if (n->fq_on[0]) {
        dnnl_post_ops_append_eltwise(po, 1.f, dnnl_eltwise_linear, 1.f / n->fq_scale[0], 0.f);
        dnnl_post_ops_append_eltwise(po, 1.f, dnnl_eltwise_round, 0.f, 0.f);
        dnnl_post_ops_append_eltwise(po, n->fq_scale[0], dnnl_eltwise_clip,
                                     (float)(n->fq_lo[0] - n->fq_zp[0]),
                                     (float)(n->fq_hi[0] - n->fq_zp[0]));
        npo += 3;
    }
    if (n->act != ITS_ACT_NONE) {
        float alpha;
        dnnl_alg_kind_t alg = act_alg(n->act, &alpha);
        if (n->act == ITS_ACT_LEAKY)
            alpha = n->act_alpha;
        float scale = n->fq_on[1] ? 1.f / n->fq_scale[1] : 1.f;
        dnnl_post_ops_append_eltwise(po, scale, alg, alpha, 0.f);
        npo++;
    }
    if (n->fq_on[1]) { /* only fused after an activation, which applied the 1/s */
        dnnl_post_ops_append_eltwise(po, 1.f, dnnl_eltwise_round, 0.f, 0.f);
        dnnl_post_ops_append_eltwise(po, n->fq_scale[1], dnnl_eltwise_clip_v2,
                                     (float)(n->fq_lo[1] - n->fq_zp[1]),
                                     (float)(n->fq_hi[1] - n->fq_zp[1]));
        npo += 2;
    }
    return npo;
}

static void free_step(prim_step *s)
{
    for (int k = 0; k < s->n_part; k++)
        free_step(&s->part[k]);
    its_free(s->part);
    if (s->prim)
        dnnl_primitive_destroy(s->prim);
    for (int k = 0; k < s->n; k++)
        if (s->owned[k] && s->mem[k])
            dnnl_memory_destroy(s->mem[k]);
    memset(s, 0, sizeof *s);
}

/* Grow the shared user scratchpad to what pd needs. */
static int grow_scratch(cpu_ctx *c, const_dnnl_primitive_desc_t pd)
{
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t ssz = smd ? dnnl_memory_desc_get_size(smd) : 0;
    ssz = (ssz + ALIGN - 1) / ALIGN * ALIGN; /* each thread's share starts aligned */
    if (ssz > c->scratch_size) {
        uint8_t *nb = its_aligned_alloc(ITS_MOD_ENGINE, ALIGN, ssz * (size_t)c->n_scratch);
        if (!nb)
            return ITS_ENOMEM;
        its_free(c->scratch);
        c->scratch = nb;
        c->scratch_size = ssz;
    }
    return 0;
}

/* Add an argument to a step: a memory object for md, bound to tensor t at run time (or to
 * the fixed handle when t is BIND_FIXED). */
static dnnl_status_t step_arg(cpu_ctx *c, prim_step *s, int arg, int t,
                              const dnnl_memory_desc_t *md, void *handle)
{
    if (s->n == STEP_MAX_ARGS)
        return dnnl_invalid_arguments;
    dnnl_memory_t m;
    dnnl_status_t st = dnnl_memory_create(&m, md, c->eng, t == BIND_FIXED ? handle : NULL);
    if (st != dnnl_success)
        return st;
    s->arg[s->n] = arg;
    s->tensor[s->n] = t;
    s->mem[s->n] = m;
    s->owned[s->n++] = 1;
    return dnnl_success;
}

static dnnl_status_t step_scratch(cpu_ctx *c, prim_step *s, const_dnnl_primitive_desc_t pd)
{
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    if (!smd || dnnl_memory_desc_get_size(smd) == 0)
        return dnnl_success;
    return step_arg(c, s, DNNL_ARG_SCRATCHPAD, BIND_SCRATCH, smd, NULL);
}

/* A primitive for pd with attr's scratchpad user-managed; NULL pd (no implementation) is not
 * an error: the node then runs on our kernel. */
static int finish_prim(cpu_ctx *c, prim_step *s, dnnl_primitive_desc_t pd)
{
    int rc = grow_scratch(c, pd);
    if (rc == 0 && dnnl_primitive_create(&s->prim, pd) != dnnl_success)
        s->prim = NULL;
    return rc;
}

/* Dense row-major descriptor of shape dims[0..rank-1]. */
static dnnl_status_t plain_md(dnnl_memory_desc_t *md, int rank, const int64_t *dims)
{
    dnnl_dims_t d, st;
    int64_t acc = 1;
    for (int k = rank - 1; k >= 0; k--) {
        d[k] = dims[k];
        st[k] = acc;
        acc *= dims[k] > 0 ? dims[k] : 1;
    }
    return dnnl_memory_desc_init_by_strides(md, rank, d, dnnl_f32, st);
}

static int is_f32(const its_graph *g, int t)
{
    return t >= 0 && g->tensors[t].dtype == ITS_DT_FLOAT32;
}

/* Bind tensor t (a constant: its data, fixed) as argument arg. */
static dnnl_status_t step_tensor(cpu_ctx *c, prim_step *s, int arg, int t,
                                 const dnnl_memory_desc_t *md)
{
    const its_ir_tensor *T = &c->g->tensors[t];
    return T->kind == ITS_TK_CONST ? step_arg(c, s, arg, BIND_FIXED, md, T->data)
                                   : step_arg(c, s, arg, t, md, NULL);
}

/* Bind a one-input, one-output primitive's source and destination; the prim_* result: 1, or
 * ITS_EBACKEND. */
static int step_unary(cpu_ctx *c, prim_step *s, const its_ir_node *n, const dnnl_memory_desc_t *src,
                      const dnnl_memory_desc_t *dst)
{
    if (step_tensor(c, s, DNNL_ARG_SRC, n->in[0], src) != dnnl_success ||
        step_arg(c, s, DNNL_ARG_DST, n->out[0], dst, NULL) != dnnl_success)
        return ITS_EBACKEND;
    return 1;
}

/* The primitive descriptor for op descriptor `desc`, with a user-managed scratchpad (the
 * plan's arena), as every primitive of a plan has. */
static dnnl_status_t prim_pd(cpu_ctx *c, dnnl_primitive_desc_t *pd, const void *desc)
{
    dnnl_primitive_attr_t attr;
    dnnl_status_t st = dnnl_primitive_attr_create(&attr);
    if (st != dnnl_success)
        return st;
    dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    st = dnnl_primitive_desc_create(pd, desc, attr, c->eng, NULL);
    dnnl_primitive_attr_destroy(attr);
    return st;
}

/* MatMul of float tensors of rank >= 2 (batch dims broadcast) as a oneDNN matmul. */
static int prim_matmul(cpu_ctx *c, plan *p, const its_ir_node *n, dnnl_primitive_desc_t *pd,
                       prim_step *s)
{
    const its_shape *a = &p->shapes[n->in[0]], *b = &p->shapes[n->in[1]],
                    *y = &p->shapes[n->out[0]];
    if (a->rank < 2 || b->rank < 2 || y->rank > DNNL_MAX_NDIMS)
        return 0;
    int r = y->rank;
    int64_t ad[ITS_MAX_DIMS], bd[ITS_MAX_DIMS];
    for (int k = 0; k < r; k++) {
        ad[k] = k < r - a->rank ? 1 : a->dims[k - (r - a->rank)];
        bd[k] = k < r - b->rank ? 1 : b->dims[k - (r - b->rank)];
    }
    dnnl_memory_desc_t amd, bmd, ymd;
    dnnl_matmul_desc_t md;
    if (plain_md(&amd, r, ad) != dnnl_success || plain_md(&bmd, r, bd) != dnnl_success ||
        plain_md(&ymd, r, y->dims) != dnnl_success ||
        dnnl_matmul_desc_init(&md, &amd, &bmd, NULL, &ymd) != dnnl_success)
        return 0;
    if (prim_pd(c, pd, &md) != dnnl_success)
        return 0;
    if (step_tensor(c, s, DNNL_ARG_SRC, n->in[0], &amd) != dnnl_success ||
        step_tensor(c, s, DNNL_ARG_WEIGHTS, n->in[1], &bmd) != dnnl_success ||
        step_arg(c, s, DNNL_ARG_DST, n->out[0], &ymd, NULL) != dnnl_success)
        return ITS_EBACKEND;
    return 1;
}

static int prim_softmax(cpu_ctx *c, plan *p, const its_ir_node *n, dnnl_primitive_desc_t *pd,
                        prim_step *s)
{
    int64_t d[3];
    char e[8];
    /* oneDNN's fast softmax reduces over the innermost dimension; other axes get its
     * reference implementation, slower than our kernel */
    if (its__softmax_params(c->g, n, &p->shapes[n->in[0]], &d[0], &d[1], &d[2], e, sizeof e) < 0 ||
        d[2] != 1)
        return 0;
    dnnl_memory_desc_t md;
    dnnl_softmax_desc_t sd;
    if (plain_md(&md, 3, d) != dnnl_success ||
        dnnl_softmax_forward_desc_init(&sd, dnnl_forward_inference, &md, 1) != dnnl_success)
        return 0;
    if (prim_pd(c, pd, &sd) != dnnl_success)
        return 0;
    return step_unary(c, s, n, &md, &md);
}

/* Unary activations: eltwise on the flat tensor (any layout). */
static int prim_eltwise(cpu_ctx *c, plan *p, const its_ir_node *n, dnnl_primitive_desc_t *pd,
                        prim_step *s)
{
    dnnl_alg_kind_t alg;
    float alpha = 0.f;
    switch (n->op) {
    case ITS_OP_SIGMOID:
        alg = dnnl_eltwise_logistic;
        break;
    case ITS_OP_SILU:
        alg = dnnl_eltwise_swish;
        alpha = 1.f;
        break;
    case ITS_OP_RELU:
        alg = dnnl_eltwise_relu;
        break;
    default:
        alg = dnnl_eltwise_relu;
        alpha = its__attr_f(n, "alpha", 0.01f);
        break;
    }
    int64_t ne = its__shape_numel(&p->shapes[n->in[0]]);
    dnnl_memory_desc_t md;
    dnnl_eltwise_desc_t ed;
    if (plain_md(&md, 1, &ne) != dnnl_success ||
        dnnl_eltwise_forward_desc_init(&ed, dnnl_forward_inference, alg, &md, alpha, 0.f) !=
            dnnl_success)
        return 0;
    if (prim_pd(c, pd, &ed) != dnnl_success)
        return 0;
    return step_unary(c, s, n, &md, &md);
}

/* 2-D float MaxPool (one output) in the tensor's layout. */
static int prim_maxpool(cpu_ctx *c, plan *p, const its_ir_node *n, dnnl_primitive_desc_t *pd,
                        prim_step *s)
{
    its_win_params w;
    char e[8];
    if ((n->n_out > 1 && n->out[1] >= 0) ||
        its__win_params(c->g, n, &p->shapes[n->in[0]], NULL, &w, e, sizeof e) < 0 || w.spatial != 2)
        return 0;
    /* oneDNN derives the output size from the pads: skip shapes (ceil_mode) it would not */
    if ((w.ih + w.pt + w.pb - ((w.kh - 1) * w.dh + 1)) / w.sh + 1 != w.oh ||
        (w.iw + w.pl + w.pr - ((w.kw - 1) * w.dw + 1)) / w.sw + 1 != w.ow)
        return 0;
    dnnl_dims_t sd = {w.n, w.c, w.ih, w.iw}, dd = {w.n, w.c, w.oh, w.ow};
    dnnl_dims_t k = {w.kh, w.kw}, st2 = {w.sh, w.sw}, dil = {w.dh - 1, w.dw - 1};
    dnnl_dims_t pl = {w.pt, w.pl}, pr = {w.pb, w.pr};
    dnnl_memory_desc_t smd, dmd;
    dnnl_pooling_v2_desc_t pdsc;
    if (dnnl_memory_desc_init_by_tag(&smd, 4, sd, dnnl_f32, layout_tag(c, n->in[0])) !=
            dnnl_success ||
        dnnl_memory_desc_init_by_tag(&dmd, 4, dd, dnnl_f32, layout_tag(c, n->out[0])) !=
            dnnl_success ||
        dnnl_pooling_v2_forward_desc_init(&pdsc, dnnl_forward_inference, dnnl_pooling_max, &smd,
                                          &dmd, st2, k, dil, pl, pr) != dnnl_success)
        return 0;
    if (prim_pd(c, pd, &pdsc) != dnnl_success)
        return 0;
    return step_unary(c, s, n, &smd, &dmd);
}

/*
 * Non-convolution nodes that oneDNN runs faster than our kernels: MatMul, Softmax, the unary
 * activations, MaxPool. Anything oneDNN declines (no implementation, odd shapes) stays on
 * our kernel, so this never refuses a model.
 */
static int prepare_other(cpu_ctx *c, plan *p, int i)
{
    const its_ir_node *n = &c->g->nodes[i];
    prim_step *s = &p->step[i];
    if (n->n_out < 1 || n->out[0] < 0 || !is_f32(c->g, n->in[0]) || !is_f32(c->g, n->out[0]) ||
        its__shape_numel(&p->shapes[n->out[0]]) == 0 || its__shape_numel(&p->shapes[n->in[0]]) == 0)
        return 0;
    dnnl_primitive_desc_t pd = NULL;
    int rc;
    if (c->team) /* with the team, only split convolutions run on several threads */
        omp_set_num_threads(1);
    switch (n->op) {
    case ITS_OP_MATMUL:
        rc = is_f32(c->g, n->in[1]) ? prim_matmul(c, p, n, &pd, s) : 0;
        break;
    case ITS_OP_SOFTMAX:
        rc = prim_softmax(c, p, n, &pd, s);
        break;
    case ITS_OP_SIGMOID:
    case ITS_OP_SILU:
    case ITS_OP_RELU:
    case ITS_OP_LEAKY_RELU:
        rc = c->libm_unary ? 0 : prim_eltwise(c, p, n, &pd, s);
        break;
    case ITS_OP_MAXPOOL:
        rc = prim_maxpool(c, p, n, &pd, s);
        break;
    default:
        rc = 0;
    }
    if (rc > 0) {
        rc = finish_prim(c, s, pd);
        if (rc == 0 && s->prim && step_scratch(c, s, pd) != dnnl_success)
            rc = ITS_EBACKEND;
    }
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    omp_set_num_threads(c->threads);
    if (rc < 0 || !s->prim)
        free_step(s);
    else
        s->serial = c->team != NULL;
    return rc < 0 ? rc : 0;
}

static dnnl_data_type_t dnnl_dt(its_dtype dt)
{
    return dt == ITS_DT_UINT8 ? dnnl_u8 : dt == ITS_DT_INT8 ? dnnl_s8 : dnnl_f32;
}

/*
 * Post-ops of an integer conv, whose output scale already divided by the first quantizer's
 * scale s0: round, clip to [lo0 - zp0, hi0 - zp0] (x s0: back to real units, or not when the
 * 8-bit output is this quantizer's), then the activation (x 1/s1 when a second quantizer
 * follows), then the second quantizer: round + clip x s1 for a float output, or + zp1 and
 * oneDNN's rounding, saturating conversion for an 8-bit output. No eltwise kind repeats with
 * different parameters (oneDNN 2.6 bug, see append_conv_post_ops).
 */
static void append_int8_post_ops(dnnl_post_ops_t po, const its_ir_node *n)
{
    int emit0 = n->q_dst && n->act == ITS_ACT_NONE; /* the 8-bit output is q0 itself */
    dnnl_post_ops_append_eltwise(po, 1.f, dnnl_eltwise_round, 0.f, 0.f);
    dnnl_post_ops_append_eltwise(po, emit0 ? 1.f : n->fq_scale[0], dnnl_eltwise_clip,
                                 (float)(n->fq_lo[0] - n->fq_zp[0]),
                                 (float)(n->fq_hi[0] - n->fq_zp[0]));
    if (emit0) {
        dnnl_post_ops_append_eltwise(po, 1.f, dnnl_eltwise_linear, 1.f, (float)n->fq_zp[0]);
        return;
    }
    if (n->act != ITS_ACT_NONE) {
        float alpha;
        dnnl_alg_kind_t alg = act_alg(n->act, &alpha);
        if (n->act == ITS_ACT_LEAKY)
            alpha = n->act_alpha;
        dnnl_post_ops_append_eltwise(po, n->fq_on[1] ? 1.f / n->fq_scale[1] : 1.f, alg, alpha, 0.f);
    }
    if (!n->fq_on[1])
        return;
    if (n->q_dst) {
        dnnl_post_ops_append_eltwise(po, 1.f, dnnl_eltwise_linear, 1.f, (float)n->fq_zp[1]);
    } else {
        dnnl_post_ops_append_eltwise(po, 1.f, dnnl_eltwise_round, 0.f, 0.f);
        dnnl_post_ops_append_eltwise(po, n->fq_scale[1], dnnl_eltwise_clip_v2,
                                     (float)(n->fq_lo[1] - n->fq_zp[1]),
                                     (float)(n->fq_hi[1] - n->fq_zp[1]));
    }
}

/* The oneDNN convolution of node i over the geometry w into step s: the whole node, or one
 * part of it (a batch range or a band of output rows, whose source and destination start
 * e_src and e_dst elements into the tensors). serial: created, and later run, on one thread. */
static int conv_prim(cpu_ctx *c, int i, prim_step *s, const its_win_params *wp, int serial,
                     int64_t e_src, int64_t e_dst, char *err, size_t errlen)
{
    const its_graph *g = c->g;
    const its_ir_node *n = &g->nodes[i];
    const its_win_params w = *wp;
    int rc;
    dnnl_dims_t sd = {w.n, w.c, w.ih, w.iw}, dd = {w.n, w.m, w.oh, w.ow};
    dnnl_dims_t bd = {w.m};
    dnnl_memory_desc_t src_md, dst_md, wany_md, wuser_md, b_md, sum_md;
    dnnl_format_tag_t src_tag = layout_tag(c, n->in[0]), dst_tag = layout_tag(c, n->out[0]);
    /* integer conv (pass_int8_conv): 8-bit source, int8 weights, float or 8-bit result */
    int q = n->q_src;
    float wscale = 1.f;
    int8_t *wq = NULL;
    dnnl_data_type_t wdt = q ? dnnl_s8 : dnnl_f32;
    if (q) {
        const its_ir_tensor *W = &g->tensors[n->in[1]];
        wq = its_malloc(ITS_MOD_ENGINE, (size_t)its__shape_numel(&W->shape) + 1);
        if (!wq)
            return ITS_ENOMEM;
        if (!int8_weights(W, wq, &wscale)) { /* checked by the pass: cannot happen */
            its_free(wq);
            snprintf(err, errlen, "node '%s' (Conv): weights are not int8", n->name);
            return ITS_EINTERNAL;
        }
    }
    DNNL_CHECK(
        dnnl_memory_desc_init_by_tag(&src_md, 4, sd, dnnl_dt(g->tensors[n->in[0]].dtype), src_tag));
    DNNL_CHECK(dnnl_memory_desc_init_by_tag(&dst_md, 4, dd, dnnl_dt(g->tensors[n->out[0]].dtype),
                                            dst_tag));
    DNNL_CHECK(dnnl_memory_desc_init_by_tag(&b_md, 1, bd, dnnl_f32, dnnl_x));
    if (w.group > 1) {
        dnnl_dims_t wd = {w.group, w.m / w.group, w.c / w.group, w.kh, w.kw};
        DNNL_CHECK(dnnl_memory_desc_init_by_tag(&wany_md, 5, wd, wdt, dnnl_format_tag_any));
        DNNL_CHECK(dnnl_memory_desc_init_by_tag(&wuser_md, 5, wd, wdt, dnnl_goihw));
    } else {
        dnnl_dims_t wd = {w.m, w.c, w.kh, w.kw};
        DNNL_CHECK(dnnl_memory_desc_init_by_tag(&wany_md, 4, wd, wdt, dnnl_format_tag_any));
        DNNL_CHECK(dnnl_memory_desc_init_by_tag(&wuser_md, 4, wd, wdt, dnnl_oihw));
    }
    dnnl_dims_t strides = {w.sh, w.sw}, dil = {w.dh - 1, w.dw - 1};
    dnnl_dims_t pl = {w.pt, w.pl}, pr = {w.pb, w.pr};
    int has_bias = n->n_in > 2 && n->in[2] >= 0;
    dnnl_convolution_desc_t cd;
    DNNL_CHECK(dnnl_dilated_convolution_forward_desc_init(
        &cd, dnnl_forward_inference, dnnl_convolution_direct, &src_md, &wany_md,
        has_bias && !q ? &b_md : NULL, &dst_md, strides, dil, pl, pr));
    /* int8: the bias rides on a per-channel binary add after the output scale */
    dnnl_memory_desc_t qb_md;
    dnnl_dims_t qbd = {1, w.m, 1, 1};
    DNNL_CHECK(dnnl_memory_desc_init_by_tag(&qb_md, 4, qbd, dnnl_f32, dnnl_nchw));
    if (q && has_bias && !c->qbias[i]) {
        c->qbias[i] = its_malloc(ITS_MOD_ENGINE, (size_t)w.m * sizeof(float));
        if (!c->qbias[i]) {
            its_free(wq);
            return ITS_ENOMEM;
        }
        const float *b = g->tensors[n->in[2]].data;
        for (int64_t k = 0; k < w.m; k++)
            c->qbias[i][k] = b[k] / n->fq_scale[0];
    }
    dnnl_primitive_attr_t attr;
    dnnl_post_ops_t po;
    DNNL_CHECK(dnnl_primitive_attr_create(&attr));
    dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    dnnl_post_ops_create(&po);
    int sum_idx;
    if (q) {
        /* acc * (sx * sw / s0) + bias / s0 = the conv result in units of the first quantizer */
        float os = n->q_src_scale * wscale / n->fq_scale[0];
        dnnl_primitive_attr_set_output_scales(attr, 1, 0, &os);
        if (n->q_src_zp) {
            const int32_t rt = DNNL_RUNTIME_S32_VAL;
            dnnl_primitive_attr_set_zero_points(attr, DNNL_ARG_SRC, 1, 0, &rt);
        }
        if (has_bias)
            dnnl_post_ops_append_binary(po, dnnl_binary_add, &qb_md);
        append_int8_post_ops(po, n);
        sum_idx = -1;
    } else {
        sum_idx = append_conv_post_ops(po, n);
    }
    if (n->sum >= 0) {
        DNNL_CHECK(dnnl_memory_desc_init_by_tag(&sum_md, 4, dd, dnnl_f32, layout_tag(c, n->sum)));
        dnnl_post_ops_append_binary(po, dnnl_binary_add, &sum_md);
    }
    dnnl_primitive_attr_set_post_ops(attr, po);
    /* A small convolution runs on the calling thread alone: waking the other threads costs
     * more than they save (tens of microseconds each time under OMP_WAIT_POLICY=passive, on
     * a VM more). oneDNN fixes a primitive's thread count when it is created, so it is
     * created, and later run, with one OpenMP thread (docs/engine-cpu.md). */
    s->serial = (char)serial;
    if (s->serial)
        omp_set_num_threads(1);
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st = dnnl_primitive_desc_create(&pd, &cd, attr, c->eng, NULL);
    dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    if (st != dnnl_success) {
        its_free(wq);
        omp_set_num_threads(c->threads);
        snprintf(err, errlen, "node '%s' (Conv): oneDNN has no implementation (status %d)", n->name,
                 (int)st);
        return ITS_EBACKEND;
    }
    const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    if ((rc = grow_scratch(c, pd)) < 0) {
        its_free(wq);
        omp_set_num_threads(c->threads);
        dnnl_primitive_desc_destroy(pd);
        return rc;
    }
    /* weights: reorder once, reuse across plans when oneDNN picks the same layout */
    dnnl_memory_t wm = c->wcache[i];
    int wown = 0;
    if (wm) {
        const dnnl_memory_desc_t *have;
        dnnl_memory_get_memory_desc(wm, &have);
        if (!dnnl_memory_desc_equal(have, wmd))
            wm = NULL;
    }
    st = dnnl_success;
    if (!wm) {
        dnnl_memory_t user = NULL;
        dnnl_primitive_desc_t rpd = NULL;
        dnnl_primitive_t rp = NULL;
        st = dnnl_memory_create(&wm, wmd, c->eng, DNNL_MEMORY_ALLOCATE);
        if (st == dnnl_success)
            st = dnnl_memory_create(&user, &wuser_md, c->eng,
                                    q ? (void *)wq : g->tensors[n->in[1]].data);
        if (st == dnnl_success)
            st = dnnl_reorder_primitive_desc_create(&rpd, &wuser_md, c->eng, wmd, c->eng, NULL);
        if (st == dnnl_success)
            st = dnnl_primitive_create(&rp, rpd);
        if (st == dnnl_success) {
            dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, wm}};
            st = dnnl_primitive_execute(rp, c->strm, 2, ra);
            if (st == dnnl_success)
                st = dnnl_stream_wait(c->strm);
        }
        if (rp)
            dnnl_primitive_destroy(rp);
        if (rpd)
            dnnl_primitive_desc_destroy(rpd);
        if (user)
            dnnl_memory_destroy(user);
        its_free(wq);
        wq = NULL;
        if (st != dnnl_success) {
            if (wm)
                dnnl_memory_destroy(wm);
            dnnl_primitive_desc_destroy(pd);
            omp_set_num_threads(c->threads);
            snprintf(err, errlen, "node '%s' (Conv): weight reorder failed (status %d)", n->name,
                     (int)st);
            return ITS_EBACKEND;
        }
        if (!c->wcache[i])
            c->wcache[i] = wm;
        else /* another plan's primitive uses the cached layout: this one owns its copy */
            wown = 1;
    }
    its_free(wq);
    st = dnnl_primitive_create(&s->prim, pd);
    if (s->serial)
        omp_set_num_threads(c->threads);
    if (st == dnnl_success)
        st = step_arg(c, s, DNNL_ARG_SRC, n->in[0], &src_md, NULL);
    if (st == dnnl_success)
        st = step_arg(c, s, DNNL_ARG_DST, n->out[0], &dst_md, NULL);
    if (st == dnnl_success) { /* the weight cache owns wm, unless wown */
        s->arg[s->n] = DNNL_ARG_WEIGHTS;
        s->tensor[s->n] = BIND_FIXED;
        s->owned[s->n] = (char)wown;
        s->mem[s->n++] = wm;
    } else if (wown) {
        dnnl_memory_destroy(wm);
    }
    if (st == dnnl_success && has_bias && !q)
        st = step_arg(c, s, DNNL_ARG_BIAS, BIND_FIXED, &b_md, g->tensors[n->in[2]].data);
    if (st == dnnl_success && has_bias && q)
        st = step_arg(c, s, DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, BIND_FIXED, &qb_md,
                      c->qbias[i]);
    if (st == dnnl_success && q && n->q_src_zp) {
        dnnl_memory_desc_t zmd;
        dnnl_dims_t one = {1};
        st = dnnl_memory_desc_init_by_tag(&zmd, 1, one, dnnl_s32, dnnl_x);
        /* the zero point lives in the node (the graph outlives the engine); oneDNN only reads */
        if (st == dnnl_success)
            st = step_arg(c, s, DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC, BIND_FIXED, &zmd,
                          (void *)(uintptr_t)&n->q_src_zp);
    }
    if (st == dnnl_success && n->sum >= 0)
        st = step_arg(c, s, DNNL_ARG_ATTR_MULTIPLE_POST_OP(sum_idx) | DNNL_ARG_SRC_1, n->sum,
                      &sum_md, NULL);
    if (st == dnnl_success)
        st = step_scratch(c, s, pd);
    dnnl_primitive_desc_destroy(pd);
    if (st != dnnl_success) {
        snprintf(err, errlen, "node '%s' (Conv): oneDNN setup failed (status %d)", n->name,
                 (int)st);
        return ITS_EBACKEND;
    }
    for (int k = 0; k < s->n; k++) { /* a part's share of the activations */
        if (s->tensor[k] == n->in[0])
            s->off[k] = (size_t)e_src * its__dtype_size(g->tensors[n->in[0]].dtype);
        else if (s->tensor[k] >= 0) /* the destination, or the residual laid out like it */
            s->off[k] = (size_t)e_dst * its__dtype_size(g->tensors[s->tensor[k]].dtype);
    }
    return 0;
}

/* How many parts a convolution splits into for the team (0: it is not split), and how many
 * bands of output rows each image is cut into (*bands; 0: the parts are ranges of images).
 * In a channels-last tensor a band of rows is one dense block, and so are the source rows it
 * reads, so every part is a plain oneDNN convolution of its own, single-threaded, and the
 * team's threads claim them one at a time. A batch is cut into bands too: a whole image per
 * part ran 1.4x slower than OpenMP's split at batch 4 (YOLOX-nano), a band stays in cache. */
static int conv_parts(const cpu_ctx *c, const its_ir_node *n, const its_win_params *w, int *bands)
{
    *bands = 0;
    if (!c->team)
        return 0;
    int64_t np = c->parts;
    int nhwc = layout_tag(c, n->in[0]) == dnnl_nhwc && layout_tag(c, n->out[0]) == dnnl_nhwc &&
               (n->sum < 0 || layout_tag(c, n->sum) == dnnl_nhwc);
    if (nhwc) {
        int64_t b = (np + w->n - 1) / w->n;
        b = b < w->oh ? b : w->oh;
        if (w->n * b <= TEAM_MAX_PARTS && w->n * b >= 2) {
            *bands = (int)b;
            return (int)(w->n * b);
        }
    }
    if (w->n >= 2)
        return (int)(np < w->n ? np : w->n);
    return 0;
}

/* Part j of np of the convolution w: its geometry and where its source and destination start
 * (elements). With bands, part j is band j % bands of image j / bands; a band of output rows
 * [r0, r1) reads input rows [r0*sh - pt, (r1-1)*sh - pt + extent), and what falls outside the
 * image becomes the band's own top and bottom padding. Without, part j is a range of images.
 * Returns 0 when a band would read no input row at all (then the node is not split). */
static int conv_part(const its_win_params *w, int j, int np, int bands, its_win_params *pw,
                     int64_t *e_src, int64_t *e_dst)
{
    *pw = *w;
    if (!bands) {
        int64_t n0 = w->n * j / np, n1 = w->n * (j + 1) / np;
        pw->n = n1 - n0;
        *e_src = n0 * w->c * w->ih * w->iw;
        *e_dst = n0 * w->m * w->oh * w->ow;
        return pw->n > 0;
    }
    int64_t img = j / bands, b = j % bands;
    int64_t r0 = w->oh * b / bands, r1 = w->oh * (b + 1) / bands, ext = (w->kh - 1) * w->dh + 1;
    int64_t i0 = r0 * w->sh - w->pt, i1 = (r1 - 1) * w->sh - w->pt + ext;
    int64_t a0 = i0 > 0 ? i0 : 0, a1 = i1 < w->ih ? i1 : w->ih;
    pw->n = 1;
    pw->oh = r1 - r0;
    pw->ih = a1 - a0;
    pw->pt = a0 - i0;
    pw->pb = i1 - a1;
    *e_src = (img * w->ih + a0) * w->iw * w->c;
    *e_dst = (img * w->oh + r0) * w->ow * w->m;
    return pw->oh > 0 && pw->ih > 0;
}

static int prepare_conv(cpu_ctx *c, plan *p, int i, char *err, size_t errlen)
{
    const its_graph *g = c->g;
    const its_ir_node *n = &g->nodes[i];
    prim_step *s = &p->step[i];
    its_win_params w;
    int rc = its__win_params(g, n, &p->shapes[n->in[0]], &p->shapes[n->in[1]], &w, err, errlen);
    if (rc < 0)
        return rc;
    /* A small convolution runs on the calling thread alone: waking the other threads costs
     * more than they save (docs/engine-cpu.md, section 4). */
    double macs = (double)w.n * w.oh * w.ow * w.m * (double)(w.c / w.group) * w.kh * w.kw;
    int serial = c->threads > 1 && macs < c->serial_macs;
    int bands = 0;
    int np = serial ? 0 : conv_parts(c, n, &w, &bands);
    its_win_params pw[TEAM_MAX_PARTS];
    int64_t es[TEAM_MAX_PARTS], ed[TEAM_MAX_PARTS];
    np = np < TEAM_MAX_PARTS ? np : TEAM_MAX_PARTS;
    for (int j = 0; j < np; j++)
        if (!conv_part(&w, j, np, bands, &pw[j], &es[j], &ed[j]))
            np = 0;
    if (np == 0) /* with the team, an unsplit convolution runs on the caller alone */
        return conv_prim(c, i, s, &w, serial || c->team, 0, 0, err, errlen);
    s->part = its_calloc(ITS_MOD_ENGINE, (size_t)np, sizeof *s->part);
    if (!s->part)
        return ITS_ENOMEM;
    s->n_part = np;
    for (int j = 0; j < np && rc == 0; j++)
        rc = conv_prim(c, i, &s->part[j], &pw[j], 1, es[j], ed[j], err, errlen);
    return rc;
}

static void free_plan(plan *p, int n_nodes)
{
    if (p->step)
        for (int i = 0; i < n_nodes; i++)
            free_step(&p->step[i]);
    its_free(p->step);
    its_free(p->off);
    its_free(p->bytes);
    memset(p, 0, sizeof *p);
}

/* The last-level cache that CPU 0 shares, in bytes, from sysfs (sysconf's figure is the whole
 * host's on the VMs we measured: 320 MB against a 32 MB L3); BATCH_CACHE_DEFAULT when the
 * system does not say. */
static long long last_level_cache(void)
{
    long long best = 0;
    for (int i = 0; i < 8; i++) {
        char path[96], buf[32];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
        FILE *f = fopen(path, "r");
        if (!f)
            break;
        char *got = fgets(buf, sizeof buf, f);
        fclose(f);
        char *end;
        long long v = got ? strtoll(buf, &end, 10) : 0;
        if (v <= 0)
            continue;
        v *= *end == 'K' ? 1024 : *end == 'M' ? 1024 * 1024 : 1;
        best = v > best ? v : best; /* the largest level is the last */
    }
    return best > 0 ? best : BATCH_CACHE_DEFAULT;
}

/* Whether plan p (batch > 1) should run image by image on the batch-1 plan: when its
 * activations would not fit in the last-level cache while one image's do. Two threads have
 * no more parallelism to gain from a batch; what a batch adds on a CPU is memory traffic
 * (YOLO11n at 640, 16 MB of activations per image: 2-15% slower per image at batch 4 than
 * at batch 1 on a 32 MB L3, and 90 MB more resident). ITS_ENGINE_BATCH_CACHE=bytes sets the
 * limit (0: always a real batch). docs/engine-cpu.md, section 7. */
static int batch_by_image(const cpu_ctx *c, const plan *p)
{
    if (p->batch < 2 || c->n_plans < 1 || c->plans[0].batch != 1)
        return 0;
    const char *env = getenv("ITS_ENGINE_BATCH_CACHE");
    long long llc = env ? atoll(env) : last_level_cache();
    return llc > 0 && p->arena > (size_t)llc && c->plans[0].arena <= (size_t)llc;
}

static int cpu_prepare(void *ctx, const its_graph *g, int batch, const its_shape *shapes, char *err,
                       size_t errlen)
{
    cpu_ctx *c = ctx;
    if (c->n_plans == MAX_PLANS)
        return ITS_EFULL;
    c->g = g;
    int nt = g->n_tensors, nn = g->n_nodes;
    if (!c->wcache) {
        c->wcache = its_calloc(ITS_MOD_ENGINE, (size_t)nn + 1, sizeof *c->wcache);
        if (!c->wcache)
            return ITS_ENOMEM;
    }
    if (c->profile && !c->prof_node)
        c->prof_node = its_calloc(ITS_MOD_ENGINE, (size_t)nn + 1, sizeof *c->prof_node);
    if (!c->qbias) {
        c->qbias = its_calloc(ITS_MOD_ENGINE, (size_t)nn + 1, sizeof *c->qbias);
        if (!c->qbias)
            return ITS_ENOMEM;
    }
    plan *p = &c->plans[c->n_plans];
    memset(p, 0, sizeof *p);
    for (int i = 0; i < nn; i++)
        c->libm_unary |= g->nodes[i].op == ITS_OP_DYNAMIC_QUANTIZE_LINEAR;
    p->batch = batch;
    p->shapes = shapes;
    p->off = its_malloc(ITS_MOD_ENGINE, (size_t)(nt + 1) * sizeof(size_t));
    p->bytes = its_calloc(ITS_MOD_ENGINE, (size_t)nt + 1, sizeof(size_t));
    p->step = its_calloc(ITS_MOD_ENGINE, (size_t)nn + 1, sizeof(prim_step));
    int *alias = its_malloc(ITS_MOD_ENGINE, (size_t)(nt + 1) * sizeof(int));
    int rc = 0;
    if (!p->off || !p->bytes || !p->step || !alias) {
        rc = ITS_ENOMEM;
        goto out;
    }
    for (int t = 0; t < nt; t++) {
        alias[t] = -1;
        const its_ir_tensor *T = &g->tensors[t];
        if (T->kind != ITS_TK_CONST)
            p->bytes[t] = (size_t)its__shape_numel(&shapes[t]) * its__dtype_size(T->dtype);
    }
    /* views: Reshape/Identity of an activation share its memory */
    for (int i = 0; i < nn; i++) {
        const its_ir_node *n = &g->nodes[i];
        if ((n->op == ITS_OP_RESHAPE || n->op == ITS_OP_IDENTITY) && n->out[0] >= 0 &&
            g->tensors[n->in[0]].kind != ITS_TK_CONST)
            alias[n->out[0]] = n->in[0];
    }
    rc = its__plan_memory(g, p->bytes, alias, ALIGN, p->off, &p->arena);
    if (rc < 0)
        goto out;
    if (batch_by_image(c, p)) {
        p->by_image = 1;
        c->n_plans++;
        goto out;
    }
    if (p->arena > c->arena_size || !c->arena) {
        /* never NULL, even when every tensor is empty: kernels get valid addresses */
        uint8_t *na = its_aligned_alloc(ITS_MOD_ENGINE, 4096, p->arena ? p->arena : ALIGN);
        if (!na) {
            rc = ITS_ENOMEM;
            goto out;
        }
        its_free(c->arena);
        c->arena = na;
        c->arena_size = p->arena;
    }
    c->n_plans++; /* from here free_plan runs on failure through cpu_free */
    for (int i = 0; i < nn && rc == 0; i++) {
        if (is_dnnl_conv(g, &g->nodes[i]))
            rc = prepare_conv(c, p, i, err, errlen);
        else if (!c->no_prims)
            rc = prepare_other(c, p, i);
    }
out:
    its_free(alias);
    if (rc < 0 && (c->n_plans == 0 || &c->plans[c->n_plans - 1] != p))
        free_plan(p, nn);
    return rc;
}

static const plan *find_plan(const cpu_ctx *c, int batch)
{
    for (int i = 0; i < c->n_plans; i++)
        if (c->plans[i].batch == batch)
            return &c->plans[i];
    return NULL;
}

/* Run one primitive on thread th (0: the caller; its stream and scratchpad share). */
static int run_prim(cpu_ctx *c, const plan *p, const prim_step *s, int th)
{
    dnnl_exec_arg_t args[STEP_MAX_ARGS];
    for (int k = 0; k < s->n; k++) {
        if (s->tensor[k] >= 0)
            dnnl_memory_set_data_handle(s->mem[k], (uint8_t *)tptr(c, p, s->tensor[k]) + s->off[k]);
        else if (s->tensor[k] == BIND_SCRATCH)
            dnnl_memory_set_data_handle(s->mem[k], c->scratch + (size_t)th * c->scratch_size);
        args[k] = (dnnl_exec_arg_t){s->arg[k], s->mem[k]};
    }
    dnnl_status_t st = dnnl_primitive_execute(s->prim, c->tstrm[th], s->n, args);
    return st == dnnl_success ? 0 : ITS_EBACKEND;
}

typedef struct part_job {
    cpu_ctx *c;
    const plan *p;
    const prim_step *s;
    atomic_int failed;
} part_job;

static void run_part(void *arg, int k, int th)
{
    part_job *j = arg;
    /* single-threaded primitives; anything in them that asks OpenMP stays on this thread (a
     * thread-local setting: cheap, and the workers have no other place to make it) */
    omp_set_num_threads(1);
    if (run_prim(j->c, j->p, &j->s->part[k], th) < 0)
        atomic_store(&j->failed, 1);
}

static int run_step(cpu_ctx *c, const plan *p, const prim_step *s)
{
    if (s->n_part) { /* only with the team: the caller is at one OpenMP thread (cpu_run) */
        part_job j = {c, p, s, 0};
        its__team_run(c->team, s->n_part, run_part, &j);
        return atomic_load(&j.failed) ? ITS_EBACKEND : 0;
    }
    int one = s->serial && !c->team; /* with the team the caller already is */
    if (one)
        omp_set_num_threads(1);
    int rc = run_prim(c, p, s, 0);
    if (one)
        omp_set_num_threads(c->threads);
    return rc;
}

static int run_plan(cpu_ctx *c, const plan *p, int batch, int nb, const void *const *inputs,
                    void *const *outputs)
{
    const its_graph *g = c->g;
    for (int k = 0; k < g->n_inputs; k++) {
        int t = g->inputs[k];
        size_t b = p->bytes[t];
        if (g->tensors[t].batched)
            b = b / (size_t)batch * (size_t)nb;
        memcpy(tptr(c, p, t), inputs[k], b);
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const its_ir_node *n = &g->nodes[i];
        int rc;
        uint64_t t0 = c->profile ? its_now_ns() : 0;
        if (p->step[i].prim || p->step[i].n_part) {
            rc = run_step(c, p, &p->step[i]);
        } else {
            its_shape is[ITS_IR_MAX_IO], os[ITS_IR_MAX_IO];
            const void *in[ITS_IR_MAX_IO];
            void *out[ITS_IR_MAX_IO];
            for (int k = 0; k < n->n_in; k++) {
                in[k] = n->in[k] >= 0 ? tptr(c, p, n->in[k]) : NULL;
                if (n->in[k] >= 0)
                    is[k] = p->shapes[n->in[k]];
            }
            for (int k = 0; k < n->n_out; k++) {
                out[k] = n->out[k] >= 0 ? tptr(c, p, n->out[k]) : NULL;
                if (n->out[k] >= 0)
                    os[k] = p->shapes[n->out[k]];
            }
            int cl = n->op == ITS_OP_LAYOUT || (n->n_out > 0 && n->out[0] >= 0 &&
                                                n->out[0] < c->n_nhwc && c->nhwc[n->out[0]]);
            rc = cl ? its__kernel_run_nhwc(g, n, is, in, os, out)
                    : its__kernel_run(g, n, is, in, os, out);
        }
        if (rc < 0)
            return rc;
        if (c->profile) {
            int slot = (p->step[i].prim || p->step[i].n_part) && n->op == ITS_OP_CONV ? ITS_OP_COUNT
                                                                                      : (int)n->op;
            double dt = (double)(its_now_ns() - t0);
            c->prof_ns[slot] += dt;
            c->prof_calls[slot]++;
            if (c->prof_node)
                c->prof_node[i] += dt;
        }
    }
    for (int k = 0; k < g->n_outputs; k++) {
        int t = g->outputs[k];
        const its_ir_tensor *T = &g->tensors[t];
        size_t b = T->kind == ITS_TK_CONST
                       ? (size_t)its__shape_numel(&T->shape) * its__dtype_size(T->dtype)
                       : p->bytes[t];
        if (T->batched)
            b = b / (size_t)batch * (size_t)nb;
        memcpy(outputs[k], tptr(c, p, t), b);
    }
    return 0;
}

/* nb images, one at a time, on the batch-1 plan: each batched input and output advances by
 * one image's bytes (batch_by_image). */
static int run_by_image(cpu_ctx *c, int nb, const void *const *inputs, void *const *outputs)
{
    const plan *p1 = &c->plans[0];
    const its_graph *g = c->g;
    const void *in[ITS_IR_MAX_IO];
    void *out[ITS_IR_MAX_IO];
    if (g->n_inputs > ITS_IR_MAX_IO || g->n_outputs > ITS_IR_MAX_IO)
        return ITS_EUNSUPPORTED;
    for (int k = 0; k < nb; k++) {
        for (int j = 0; j < g->n_inputs; j++) {
            int t = g->inputs[j];
            in[j] = (const uint8_t *)inputs[j] + (g->tensors[t].batched ? k * p1->bytes[t] : 0);
        }
        for (int j = 0; j < g->n_outputs; j++) {
            int t = g->outputs[j];
            out[j] = (uint8_t *)outputs[j] + (g->tensors[t].batched ? k * p1->bytes[t] : 0);
        }
        int rc = run_plan(c, p1, 1, 1, in, out);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int cpu_run(void *ctx, int batch, int nb, const void *const *inputs, void *const *outputs)
{
    cpu_ctx *c = ctx;
    const plan *p = find_plan(c, batch);
    if (!p)
        return ITS_EINVAL;
    /* With the team, the kernels' parallel loops run on it (its__par_range) and OpenMP
     * regions left anywhere run on the caller: an OpenMP thread spinning after its region
     * would take the core a team worker needs, and a sleeping one costs a wake-up each time. */
    omp_set_num_threads(c->team ? 1 : c->threads);
    its__team_bind(c->team);
    int rc = p->by_image ? run_by_image(c, nb, inputs, outputs)
                         : run_plan(c, p, batch, nb, inputs, outputs);
    its__team_bind(NULL);
    omp_set_num_threads(c->threads);
    return rc;
}

static int cpu_sync(void *ctx)
{
    cpu_ctx *c = ctx;
    return dnnl_stream_wait(c->strm) == dnnl_success ? 0 : ITS_EBACKEND;
}

static size_t cpu_arena_bytes(void *ctx)
{
    return ((cpu_ctx *)ctx)->arena_size;
}

static void cpu_free(void *ctx)
{
    cpu_ctx *c = ctx;
    int nn = c->g ? c->g->n_nodes : 0;
    for (int op = 0; c->profile && op <= ITS_OP_COUNT; op++)
        if (c->prof_calls[op])
            fprintf(stderr, "profile: %-22s %6ld calls %10.3f ms\n",
                    op == ITS_OP_COUNT ? "Conv (oneDNN)" : its__op_name((its_op)op),
                    c->prof_calls[op], c->prof_ns[op] / 1e6);
    if (c->prof_node && c->g) { /* the 12 costliest non-conv nodes */
        for (int r = 0;
             r < (getenv("ITS_ENGINE_PROFILE_TOP") ? atoi(getenv("ITS_ENGINE_PROFILE_TOP")) : 12);
             r++) {
            int best = -1;
            for (int i = 0; i < nn; i++)
                if (c->g->nodes[i].op != ITS_OP_CONV && c->prof_node[i] > 0 &&
                    (best < 0 || c->prof_node[i] > c->prof_node[best]))
                    best = i;
            if (best < 0)
                break;
            const its_ir_node *n = &c->g->nodes[best];
            const its_shape *sh = &c->g->tensors[n->in[0]].shape;
            fprintf(stderr, "profile:   %-10s %-40.40s in0 [%lld %lld %lld %lld] %8.3f ms\n",
                    its__op_name(n->op), n->name, (long long)sh->dims[0],
                    (long long)(sh->rank > 1 ? sh->dims[1] : 0),
                    (long long)(sh->rank > 2 ? sh->dims[2] : 0),
                    (long long)(sh->rank > 3 ? sh->dims[3] : 0), c->prof_node[best] / 1e6);
            c->prof_node[best] = 0;
        }
    }
    its_free(c->prof_node);
    for (int i = 0; i < c->n_plans; i++)
        free_plan(&c->plans[i], nn);
    if (c->wcache) {
        for (int i = 0; i < nn; i++)
            if (c->wcache[i])
                dnnl_memory_destroy(c->wcache[i]);
        its_free(c->wcache);
    }
    if (c->qbias) {
        for (int i = 0; i < nn; i++)
            its_free(c->qbias[i]);
        its_free(c->qbias);
    }
    its_free(c->arena);
    its_free(c->scratch);
    its_free(c->nhwc);
    its__team_destroy(c->team);
    for (int k = 1; c->tstrm && k < c->n_scratch; k++)
        if (c->tstrm[k])
            dnnl_stream_destroy(c->tstrm[k]);
    its_free(c->tstrm);
    if (c->strm)
        dnnl_stream_destroy(c->strm);
    dnnl_engine_destroy(c->eng);
    its_free(c);
}

static const its_backend_i cpu_iface = {
    .name = "cpu",
    .available = cpu_available,
    .init = cpu_init,
    .optimize = cpu_optimize,
    .supports_op = cpu_supports,
    .prepare = cpu_prepare,
    .run = cpu_run,
    .sync = cpu_sync,
    .arena_bytes = cpu_arena_bytes,
    .free = cpu_free,
};

const its_backend_reg its__backend_cpu = {&cpu_iface};

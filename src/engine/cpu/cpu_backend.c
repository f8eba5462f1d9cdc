/*
 * cpu_backend.c - the CPU backend: oneDNN convolutions (with bias, activation and residual
 * sum as post-ops), our OpenMP kernels (kernels.c) for everything else.
 *
 * Per prepared batch size a plan holds the tensor placements in the shared arena and one
 * step per node; a Conv step owns its oneDNN primitive, created once here. Weights are
 * reordered once into the layout oneDNN picks and shared between the plans of one engine.
 * The scratchpad is user-managed (one buffer sized for the largest primitive), so a run
 * allocates nothing: it binds arena addresses to the memory objects and executes.
 */
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>

#include "its/alloc.h"
#include "its/error.h"

#include "../backend.h"
#include "../ir.h"
#include "../ops_impl.h"

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

typedef struct conv_step {
    dnnl_primitive_t prim;
    dnnl_memory_t src, wei, bias, dst, sum, scratch;
} conv_step;

typedef struct plan {
    int batch;
    const its_shape *shapes;
    size_t *off;     /* per tensor: arena offset or SIZE_MAX */
    size_t *bytes;   /* per tensor */
    conv_step *conv; /* per node (prim NULL for non-conv nodes) */
    size_t arena;
} plan;

typedef struct cpu_ctx {
    dnnl_engine_t eng;
    dnnl_stream_t strm;
    int threads;
    const its_graph *g;
    plan plans[MAX_PLANS];
    int n_plans;
    dnnl_memory_t *wcache; /* per node: weights in oneDNN's layout */
    uint8_t *arena;
    size_t arena_size;
    uint8_t *scratch;
    size_t scratch_size;
} cpu_ctx;

static int cpu_available(void)
{
    return 1;
}

static int cpu_init(const its_engine_opts *o, void **out, char *err, size_t errlen)
{
    cpu_ctx *c = its_calloc(ITS_MOD_ENGINE, 1, sizeof *c);
    if (!c)
        return ITS_ENOMEM;
    c->threads = o->threads > 0 ? o->threads : omp_get_num_procs();
    if (dnnl_engine_create(&c->eng, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&c->strm, c->eng, dnnl_stream_default_flags) != dnnl_success) {
        if (c->eng)
            dnnl_engine_destroy(c->eng);
        its_free(c);
        snprintf(err, errlen, "oneDNN: cannot create the CPU engine");
        return ITS_EBACKEND;
    }
    *out = c;
    return 0;
}

static int cpu_optimize(void *ctx, its_graph *g, char *err, size_t errlen)
{
    (void)ctx;
    (void)err;
    (void)errlen;
    int rc;
    its__pass_fuse_conv_act(g, 1u << ITS_ACT_SILU | 1u << ITS_ACT_RELU | 1u << ITS_ACT_LEAKY |
                                   1u << ITS_ACT_SIGMOID);
    if ((rc = its__graph_compact(g)) < 0)
        return rc;
    its__pass_fuse_conv_sum(g);
    return its__graph_compact(g);
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
    return c->arena + p->off[t];
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

static int prepare_conv(cpu_ctx *c, plan *p, int i, char *err, size_t errlen)
{
    const its_graph *g = c->g;
    const its_ir_node *n = &g->nodes[i];
    conv_step *s = &p->conv[i];
    its_win_params w;
    int rc = its__win_params(g, n, &p->shapes[n->in[0]], &p->shapes[n->in[1]], &w, err, errlen);
    if (rc < 0)
        return rc;
    dnnl_dims_t sd = {w.n, w.c, w.ih, w.iw}, dd = {w.n, w.m, w.oh, w.ow};
    dnnl_dims_t bd = {w.m};
    dnnl_memory_desc_t src_md, dst_md, wany_md, wuser_md, b_md, sum_md;
    DNNL_CHECK(dnnl_memory_desc_init_by_tag(&src_md, 4, sd, dnnl_f32, dnnl_nchw));
    DNNL_CHECK(dnnl_memory_desc_init_by_tag(&dst_md, 4, dd, dnnl_f32, dnnl_nchw));
    DNNL_CHECK(dnnl_memory_desc_init_by_tag(&b_md, 1, bd, dnnl_f32, dnnl_x));
    if (w.group > 1) {
        dnnl_dims_t wd = {w.group, w.m / w.group, w.c / w.group, w.kh, w.kw};
        DNNL_CHECK(dnnl_memory_desc_init_by_tag(&wany_md, 5, wd, dnnl_f32, dnnl_format_tag_any));
        DNNL_CHECK(dnnl_memory_desc_init_by_tag(&wuser_md, 5, wd, dnnl_f32, dnnl_goihw));
    } else {
        dnnl_dims_t wd = {w.m, w.c, w.kh, w.kw};
        DNNL_CHECK(dnnl_memory_desc_init_by_tag(&wany_md, 4, wd, dnnl_f32, dnnl_format_tag_any));
        DNNL_CHECK(dnnl_memory_desc_init_by_tag(&wuser_md, 4, wd, dnnl_f32, dnnl_oihw));
    }
    dnnl_dims_t strides = {w.sh, w.sw}, dil = {w.dh - 1, w.dw - 1};
    dnnl_dims_t pl = {w.pt, w.pl}, pr = {w.pb, w.pr};
    int has_bias = n->n_in > 2 && n->in[2] >= 0;
    dnnl_convolution_desc_t cd;
    DNNL_CHECK(dnnl_dilated_convolution_forward_desc_init(
        &cd, dnnl_forward_inference, dnnl_convolution_direct, &src_md, &wany_md,
        has_bias ? &b_md : NULL, &dst_md, strides, dil, pl, pr));
    dnnl_primitive_attr_t attr;
    dnnl_post_ops_t po;
    DNNL_CHECK(dnnl_primitive_attr_create(&attr));
    dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    dnnl_post_ops_create(&po);
    if (n->act != ITS_ACT_NONE) {
        float alpha;
        dnnl_alg_kind_t alg = act_alg(n->act, &alpha);
        if (n->act == ITS_ACT_LEAKY)
            alpha = n->act_alpha;
        dnnl_post_ops_append_eltwise(po, 1.f, alg, alpha, 0.f);
    }
    if (n->sum >= 0) {
        DNNL_CHECK(dnnl_memory_desc_init_by_tag(&sum_md, 4, dd, dnnl_f32, dnnl_nchw));
        dnnl_post_ops_append_binary(po, dnnl_binary_add, &sum_md);
    }
    dnnl_primitive_attr_set_post_ops(attr, po);
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st = dnnl_primitive_desc_create(&pd, &cd, attr, c->eng, NULL);
    dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    if (st != dnnl_success) {
        snprintf(err, errlen, "node '%s' (Conv): oneDNN has no implementation (status %d)", n->name,
                 (int)st);
        return ITS_EBACKEND;
    }
    const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t ssz = smd ? dnnl_memory_desc_get_size(smd) : 0;
    if (ssz > c->scratch_size) {
        uint8_t *nb = its_aligned_alloc(ITS_MOD_ENGINE, ALIGN, ssz);
        if (!nb) {
            dnnl_primitive_desc_destroy(pd);
            return ITS_ENOMEM;
        }
        its_free(c->scratch);
        c->scratch = nb;
        c->scratch_size = ssz;
    }
    /* weights: reorder once, reuse across plans when oneDNN picks the same layout */
    dnnl_memory_t wm = c->wcache[i];
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
            st = dnnl_memory_create(&user, &wuser_md, c->eng, g->tensors[n->in[1]].data);
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
        if (st != dnnl_success) {
            if (wm)
                dnnl_memory_destroy(wm);
            dnnl_primitive_desc_destroy(pd);
            snprintf(err, errlen, "node '%s' (Conv): weight reorder failed (status %d)", n->name,
                     (int)st);
            return ITS_EBACKEND;
        }
        if (c->wcache[i])
            dnnl_memory_destroy(c->wcache[i]);
        c->wcache[i] = wm;
    }
    st = dnnl_primitive_create(&s->prim, pd);
    if (st == dnnl_success)
        st = dnnl_memory_create(&s->src, &src_md, c->eng, NULL);
    if (st == dnnl_success)
        st = dnnl_memory_create(&s->dst, &dst_md, c->eng, NULL);
    if (st == dnnl_success && has_bias)
        st = dnnl_memory_create(&s->bias, &b_md, c->eng, g->tensors[n->in[2]].data);
    if (st == dnnl_success && n->sum >= 0)
        st = dnnl_memory_create(&s->sum, &sum_md, c->eng, NULL);
    if (st == dnnl_success && ssz)
        st = dnnl_memory_create(&s->scratch, smd, c->eng, NULL);
    dnnl_primitive_desc_destroy(pd);
    s->wei = wm;
    if (st != dnnl_success) {
        snprintf(err, errlen, "node '%s' (Conv): oneDNN setup failed (status %d)", n->name,
                 (int)st);
        return ITS_EBACKEND;
    }
    return 0;
}

static void free_plan(plan *p, int n_nodes)
{
    if (p->conv) {
        for (int i = 0; i < n_nodes; i++) {
            conv_step *s = &p->conv[i];
            if (s->prim)
                dnnl_primitive_destroy(s->prim);
            dnnl_memory_t ms[] = {s->src, s->bias, s->dst, s->sum, s->scratch};
            for (size_t k = 0; k < sizeof ms / sizeof ms[0]; k++)
                if (ms[k])
                    dnnl_memory_destroy(ms[k]);
        }
    }
    its_free(p->conv);
    its_free(p->off);
    its_free(p->bytes);
    memset(p, 0, sizeof *p);
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
    plan *p = &c->plans[c->n_plans];
    memset(p, 0, sizeof *p);
    p->batch = batch;
    p->shapes = shapes;
    p->off = its_malloc(ITS_MOD_ENGINE, (size_t)(nt + 1) * sizeof(size_t));
    p->bytes = its_calloc(ITS_MOD_ENGINE, (size_t)nt + 1, sizeof(size_t));
    p->conv = its_calloc(ITS_MOD_ENGINE, (size_t)nn + 1, sizeof(conv_step));
    int *alias = its_malloc(ITS_MOD_ENGINE, (size_t)(nt + 1) * sizeof(int));
    int rc = 0;
    if (!p->off || !p->bytes || !p->conv || !alias) {
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
    if (p->arena > c->arena_size) {
        uint8_t *na = its_aligned_alloc(ITS_MOD_ENGINE, 4096, p->arena);
        if (!na) {
            rc = ITS_ENOMEM;
            goto out;
        }
        its_free(c->arena);
        c->arena = na;
        c->arena_size = p->arena;
    }
    c->n_plans++; /* from here free_plan runs on failure through cpu_free */
    for (int i = 0; i < nn && rc == 0; i++)
        if (is_dnnl_conv(g, &g->nodes[i]))
            rc = prepare_conv(c, p, i, err, errlen);
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

static int run_conv(cpu_ctx *c, const plan *p, int i)
{
    const its_ir_node *n = &c->g->nodes[i];
    const conv_step *s = &p->conv[i];
    dnnl_exec_arg_t args[6];
    int na = 0;
    dnnl_memory_set_data_handle(s->src, tptr(c, p, n->in[0]));
    dnnl_memory_set_data_handle(s->dst, tptr(c, p, n->out[0]));
    args[na++] = (dnnl_exec_arg_t){DNNL_ARG_SRC, s->src};
    args[na++] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, s->wei};
    args[na++] = (dnnl_exec_arg_t){DNNL_ARG_DST, s->dst};
    if (s->bias)
        args[na++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, s->bias};
    if (s->sum) {
        dnnl_memory_set_data_handle(s->sum, tptr(c, p, n->sum));
        int idx = n->act != ITS_ACT_NONE ? 1 : 0;
        args[na++] =
            (dnnl_exec_arg_t){DNNL_ARG_ATTR_MULTIPLE_POST_OP(idx) | DNNL_ARG_SRC_1, s->sum};
    }
    if (s->scratch) {
        dnnl_memory_set_data_handle(s->scratch, c->scratch);
        args[na++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, s->scratch};
    }
    return dnnl_primitive_execute(s->prim, c->strm, na, args) == dnnl_success ? 0 : ITS_EBACKEND;
}

static int cpu_run(void *ctx, int batch, int nb, const void *const *inputs, void *const *outputs)
{
    cpu_ctx *c = ctx;
    const plan *p = find_plan(c, batch);
    if (!p)
        return ITS_EINVAL;
    const its_graph *g = c->g;
    omp_set_num_threads(c->threads);
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
        if (p->conv[i].prim) {
            rc = run_conv(c, p, i);
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
            rc = its__kernel_run(g, n, is, in, os, out);
        }
        if (rc < 0)
            return rc;
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
    for (int i = 0; i < c->n_plans; i++)
        free_plan(&c->plans[i], nn);
    if (c->wcache) {
        for (int i = 0; i < nn; i++)
            if (c->wcache[i])
                dnnl_memory_destroy(c->wcache[i]);
        its_free(c->wcache);
    }
    its_free(c->arena);
    its_free(c->scratch);
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

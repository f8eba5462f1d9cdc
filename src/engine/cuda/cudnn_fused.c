/*
 * cudnn_fused.c - a convolution with its epilogue (bias, activation, residual sum) as one
 * cuDNN graph (the cuDNN 9 backend API): conv -> +bias -> act -> +sum, fp16 NHWC in and out,
 * fp32 inside. cuDNN's heuristics pick an engine (mode A); the first one whose execution plan
 * finalises is kept. Where cuDNN offers none, the caller falls back to the legacy
 * convolution plus our epilogue kernel.
 */
#include "cudnn_fused.h"

#include <stdbool.h>
#include <string.h>

#include "cuda_check.h"
#include "its/alloc.h"

#define T(call) ITS_CUDNN_TRY(call)
/* cuDNN statuses that only mean "not this graph / engine" */
#define SOFT(call)                                                                                 \
    do {                                                                                           \
        cudnnStatus_t st_ = (call);                                                                \
        if (st_ != CUDNN_STATUS_SUCCESS)                                                           \
            return ITS_EUNSUPPORTED;                                                               \
    } while (0)

enum { UID_X = 1, UID_W, UID_B, UID_S, UID_Y, UID_V = 100 };

static int keep(its_fconv *f, cudnnBackendDescriptor_t d)
{
    if (f->n_desc >= ITS_FCONV_MAX_DESC)
        return ITS_EOVERFLOW;
    f->desc[f->n_desc++] = d;
    return 0;
}

static int tensor(its_fconv *f, int64_t uid, cudnnDataType_t dt, const int64_t *dims,
                  const int64_t *strides, bool virt, cudnnBackendDescriptor_t *out)
{
    cudnnBackendDescriptor_t d;
    T(cudnnBackendCreateDescriptor(CUDNN_BACKEND_TENSOR_DESCRIPTOR, &d));
    int rc = keep(f, d);
    if (rc < 0) {
        cudnnBackendDestroyDescriptor(d);
        return rc;
    }
    int64_t align = 16;
    T(cudnnBackendSetAttribute(d, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &dt));
    T(cudnnBackendSetAttribute(d, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims));
    T(cudnnBackendSetAttribute(d, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, strides));
    T(cudnnBackendSetAttribute(d, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid));
    T(cudnnBackendSetAttribute(d, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &align));
    T(cudnnBackendSetAttribute(d, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &virt));
    SOFT(cudnnBackendFinalize(d));
    *out = d;
    return 0;
}

/* y = mode(x[, b]) as a pointwise operation. */
static int pointwise(its_fconv *f, cudnnPointwiseMode_t mode, cudnnBackendDescriptor_t x,
                     cudnnBackendDescriptor_t b, cudnnBackendDescriptor_t y, float alpha,
                     cudnnBackendDescriptor_t *op)
{
    cudnnBackendDescriptor_t pw, o;
    T(cudnnBackendCreateDescriptor(CUDNN_BACKEND_POINTWISE_DESCRIPTOR, &pw));
    int rc = keep(f, pw);
    if (rc < 0) {
        cudnnBackendDestroyDescriptor(pw);
        return rc;
    }
    cudnnDataType_t prec = CUDNN_DATA_FLOAT;
    T(cudnnBackendSetAttribute(pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode));
    T(cudnnBackendSetAttribute(pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &prec));
    if (mode == CUDNN_POINTWISE_RELU_FWD && alpha != 0.0f) {
        double slope = alpha;
        T(cudnnBackendSetAttribute(pw, CUDNN_ATTR_POINTWISE_RELU_LOWER_CLIP_SLOPE,
                                   CUDNN_TYPE_DOUBLE, 1, &slope));
    }
    if (mode == CUDNN_POINTWISE_SWISH_FWD) {
        double beta = 1.0;
        T(cudnnBackendSetAttribute(pw, CUDNN_ATTR_POINTWISE_SWISH_BETA, CUDNN_TYPE_DOUBLE, 1,
                                   &beta));
    }
    SOFT(cudnnBackendFinalize(pw));
    T(cudnnBackendCreateDescriptor(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, &o));
    if ((rc = keep(f, o)) < 0) {
        cudnnBackendDestroyDescriptor(o);
        return rc;
    }
    T(cudnnBackendSetAttribute(o, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR,
                               CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &pw));
    T(cudnnBackendSetAttribute(o, CUDNN_ATTR_OPERATION_POINTWISE_XDESC,
                               CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x));
    if (b)
        T(cudnnBackendSetAttribute(o, CUDNN_ATTR_OPERATION_POINTWISE_BDESC,
                                   CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &b));
    T(cudnnBackendSetAttribute(o, CUDNN_ATTR_OPERATION_POINTWISE_YDESC,
                               CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y));
    SOFT(cudnnBackendFinalize(o));
    *op = o;
    return 0;
}

/* NHWC strides of dims d (N, C, H, W), cs elements from one pixel to the next (0: packed). */
static void nhwc_strides(const int64_t *d, int64_t cs, int64_t *s)
{
    cs = cs > 0 ? cs : d[1];
    s[0] = cs * d[2] * d[3];
    s[1] = 1;
    s[2] = d[3] * cs;
    s[3] = cs;
}

/* A new descriptor of type t, kept in f (freed with it). */
static int made(its_fconv *f, cudnnBackendDescriptorType_t t, cudnnBackendDescriptor_t *d)
{
    if (cudnnBackendCreateDescriptor(t, d) != CUDNN_STATUS_SUCCESS)
        return ITS_EBACKEND;
    int rc = keep(f, *d);
    if (rc < 0)
        cudnnBackendDestroyDescriptor(*d);
    return rc;
}

/* The operation graph of sp (its descriptors kept in f) in *graph. */
static int opgraph(cudnnHandle_t h, const its_fconv_spec *sp, int virt_like_y, its_fconv *f,
                   cudnnBackendDescriptor_t *graph_out)
{
    int rc;
    int64_t xd[4] = {sp->n, sp->c, sp->h, sp->w}, xs[4];
    int64_t wd[4] = {sp->k, sp->c / sp->groups, sp->r, sp->s}, ws[4];
    int64_t yd[4] = {sp->n, sp->k, sp->oh, sp->ow}, ys[4], vs[4], ss[4];
    int64_t bd[4] = {1, sp->k, 1, 1}, bs[4] = {sp->k, 1, 1, 1};
    nhwc_strides(xd, sp->xcs, xs);
    nhwc_strides(wd, 0, ws);
    nhwc_strides(yd, sp->ycs, ys);
    /* virtual (fp32, inside the kernel) tensors: packed, or laid out like y */
    nhwc_strides(yd, virt_like_y ? sp->ycs : 0, vs);
    nhwc_strides(yd, sp->scs, ss);
    cudnnBackendDescriptor_t tx, tw, ty, tb = NULL, tsum = NULL, cur, conv, opconv;
    if ((rc = tensor(f, UID_X, CUDNN_DATA_HALF, xd, xs, false, &tx)) < 0 ||
        (rc = tensor(f, UID_W, CUDNN_DATA_HALF, wd, ws, false, &tw)) < 0 ||
        (rc = tensor(f, UID_Y, CUDNN_DATA_HALF, yd, ys, false, &ty)) < 0)
        return rc;
    if (sp->has_bias && (rc = tensor(f, UID_B, CUDNN_DATA_FLOAT, bd, bs, false, &tb)) < 0)
        return rc;
    if (sp->has_sum && (rc = tensor(f, UID_S, CUDNN_DATA_HALF, yd, ss, false, &tsum)) < 0)
        return rc;

    T(cudnnBackendCreateDescriptor(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR, &conv));
    if ((rc = keep(f, conv)) < 0) {
        cudnnBackendDestroyDescriptor(conv);
        return rc;
    }
    cudnnDataType_t ct = CUDNN_DATA_FLOAT;
    cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
    int64_t nsp = 2, dil[2] = {sp->dh, sp->dw}, str[2] = {sp->sh, sp->sw},
            pad[2] = {sp->ph, sp->pw};
    T(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1,
                               &ct));
    T(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE,
                               1, &mode));
    T(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, 1,
                               &nsp));
    T(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, 2, dil));
    T(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, 2,
                               str));
    T(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, 2,
                               pad));
    T(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, 2,
                               pad));
    SOFT(cudnnBackendFinalize(conv));

    /* the epilogue chain decides whether the conv writes y directly or a virtual tensor */
    int n_pw = (sp->has_bias ? 1 : 0) + (sp->act ? 1 : 0) + (sp->has_sum ? 1 : 0);
    int64_t vuid = UID_V;
    cudnnBackendDescriptor_t convout = ty;
    if (n_pw > 0 && (rc = tensor(f, vuid++, CUDNN_DATA_FLOAT, yd, vs, true, &convout)) < 0)
        return rc;
    T(cudnnBackendCreateDescriptor(CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR,
                                   &opconv));
    if ((rc = keep(f, opconv)) < 0) {
        cudnnBackendDestroyDescriptor(opconv);
        return rc;
    }
    float one = 1.0f, zero = 0.0f;
    T(cudnnBackendSetAttribute(opconv, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA,
                               CUDNN_TYPE_FLOAT, 1, &one));
    T(cudnnBackendSetAttribute(opconv, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA,
                               CUDNN_TYPE_FLOAT, 1, &zero));
    T(cudnnBackendSetAttribute(opconv, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC,
                               CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &conv));
    T(cudnnBackendSetAttribute(opconv, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X,
                               CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &tx));
    T(cudnnBackendSetAttribute(opconv, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W,
                               CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &tw));
    T(cudnnBackendSetAttribute(opconv, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y,
                               CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &convout));
    SOFT(cudnnBackendFinalize(opconv));
    cudnnBackendDescriptor_t ops[4] = {opconv};
    int n_ops = 1;
    cur = convout;
    /* stages: bias, (sum if sum_first), act, (sum if not sum_first) */
    int stage_sum_before = sp->has_sum && sp->sum_first;
    int stage_sum_after = sp->has_sum && !sp->sum_first;
    int left = n_pw;
    for (int stage = 0; stage < 4; stage++) {
        cudnnPointwiseMode_t pm;
        cudnnBackendDescriptor_t b = NULL;
        float alpha = 0.0f;
        if (stage == 0 && sp->has_bias) {
            pm = CUDNN_POINTWISE_ADD;
            b = tb;
        } else if (stage == 1 && stage_sum_before) {
            pm = CUDNN_POINTWISE_ADD;
            b = tsum;
        } else if (stage == 2 && sp->act) {
            if (sp->act == ITS_FCONV_SILU)
                pm = CUDNN_POINTWISE_SWISH_FWD;
            else if (sp->act == ITS_FCONV_SIGMOID)
                pm = CUDNN_POINTWISE_SIGMOID_FWD;
            else {
                pm = CUDNN_POINTWISE_RELU_FWD;
                alpha = sp->act == ITS_FCONV_LEAKY ? sp->alpha : 0.0f;
            }
        } else if (stage == 3 && stage_sum_after) {
            pm = CUDNN_POINTWISE_ADD;
            b = tsum;
        } else {
            continue;
        }
        left--;
        cudnnBackendDescriptor_t out = ty;
        if (left > 0 && (rc = tensor(f, vuid++, CUDNN_DATA_FLOAT, yd, vs, true, &out)) < 0)
            return rc;
        if ((rc = pointwise(f, pm, cur, b, out, alpha, &ops[n_ops])) < 0)
            return rc;
        n_ops++;
        cur = out;
    }

    cudnnBackendDescriptor_t graph;
    T(cudnnBackendCreateDescriptor(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, &graph));
    if ((rc = keep(f, graph)) < 0) {
        cudnnBackendDestroyDescriptor(graph);
        return rc;
    }
    T(cudnnBackendSetAttribute(graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                               n_ops, ops));
    T(cudnnBackendSetAttribute(graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &h));
    SOFT(cudnnBackendFinalize(graph));
    *graph_out = graph;
    return 0;
}

/* The configuration of engine config ec (global index, knobs), for the plan cache. */
static void cfg_of(cudnnBackendDescriptor_t ec, int virt_like_y, its_fconv_cfg *out)
{
    memset(out, 0, sizeof *out);
    out->engine = -1;
    out->virt_like_y = virt_like_y;
    cudnnBackendDescriptor_t eng = NULL, kc[ITS_FCONV_MAX_KNOBS];
    int n_kc = 0;
    int64_t got = 0, idx = -1;
    if (cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINE_DESCRIPTOR, &eng) != CUDNN_STATUS_SUCCESS)
        return;
    if (cudnnBackendGetAttribute(ec, CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
                                 &got, &eng) != CUDNN_STATUS_SUCCESS ||
        cudnnBackendGetAttribute(eng, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &got,
                                 &idx) != CUDNN_STATUS_SUCCESS)
        goto done;
    while (n_kc < ITS_FCONV_MAX_KNOBS &&
           cudnnBackendCreateDescriptor(CUDNN_BACKEND_KNOB_CHOICE_DESCRIPTOR, &kc[n_kc]) ==
               CUDNN_STATUS_SUCCESS)
        n_kc++;
    got = 0;
    if (cudnnBackendGetAttribute(ec, CUDNN_ATTR_ENGINECFG_KNOB_CHOICES,
                                 CUDNN_TYPE_BACKEND_DESCRIPTOR, n_kc, &got,
                                 kc) != CUDNN_STATUS_SUCCESS ||
        got > n_kc)
        goto done;
    for (int64_t i = 0; i < got; i++) {
        cudnnBackendKnobType_t type;
        int64_t n1 = 0, n2 = 0, v = 0;
        if (cudnnBackendGetAttribute(kc[i], CUDNN_ATTR_KNOB_CHOICE_KNOB_TYPE, CUDNN_TYPE_KNOB_TYPE,
                                     1, &n1, &type) != CUDNN_STATUS_SUCCESS ||
            cudnnBackendGetAttribute(kc[i], CUDNN_ATTR_KNOB_CHOICE_KNOB_VALUE, CUDNN_TYPE_INT64, 1,
                                     &n2, &v) != CUDNN_STATUS_SUCCESS)
            goto done;
        out->knob_type[i] = (int64_t)type;
        out->knob_value[i] = v;
    }
    out->n_knobs = (int32_t)got;
    out->engine = idx;
done:
    for (int i = 0; i < n_kc; i++)
        cudnnBackendDestroyDescriptor(kc[i]);
    cudnnBackendDestroyDescriptor(eng);
}

/* Finalise an execution plan for engine config ec; kept as a candidate when its workspace
 * fits (the first one becomes f->plan). 1 if kept, 0 if not. */
static int try_plan(cudnnHandle_t h, const its_fconv_spec *sp, cudnnBackendDescriptor_t ec,
                    int virt_like_y, its_fconv *f)
{
    cudnnBackendDescriptor_t plan;
    if (cudnnBackendCreateDescriptor(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, &plan) !=
        CUDNN_STATUS_SUCCESS)
        return 0;
    if (cudnnBackendSetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1,
                                 &h) == CUDNN_STATUS_SUCCESS &&
        cudnnBackendSetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG,
                                 CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &ec) == CUDNN_STATUS_SUCCESS &&
        cudnnBackendFinalize(plan) == CUDNN_STATUS_SUCCESS) {
        int64_t wsz = 0, got = 0;
        cudnnBackendGetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64,
                                 1, &got, &wsz);
        if (wsz <= sp->max_ws) {
            int k = f->n_cand++;
            f->cand[k] = plan;
            f->cand_ws[k] = wsz;
            cfg_of(ec, virt_like_y, &f->cand_cfg[k]);
            if (k == 0) { /* the first is cuDNN's pick */
                f->plan = plan;
                f->ws = wsz;
                f->cfg = f->cand_cfg[0];
            }
            return 1;
        }
    }
    cudnnBackendDestroyDescriptor(plan);
    return 0;
}

static int build(cudnnHandle_t h, const its_fconv_spec *sp, int virt_like_y, int keep_n,
                 its_fconv *f)
{
    cudnnBackendDescriptor_t graph, heur;
    int rc = opgraph(h, sp, virt_like_y, f, &graph);
    if (rc < 0)
        return rc;
    T(cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, &heur));
    if ((rc = keep(f, heur)) < 0) {
        cudnnBackendDestroyDescriptor(heur);
        return rc;
    }
    cudnnBackendHeurMode_t hm = CUDNN_HEUR_MODE_A;
    T(cudnnBackendSetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH,
                               CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &graph));
    T(cudnnBackendSetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &hm));
    SOFT(cudnnBackendFinalize(heur));
    enum { MAX_CFG = 8 };
    cudnnBackendDescriptor_t cfg[MAX_CFG];
    int64_t n_cfg = 0;
    for (int i = 0; i < MAX_CFG; i++)
        T(cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, &cfg[i]));
    cudnnStatus_t st = cudnnBackendGetAttribute(
        heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, MAX_CFG, &n_cfg, cfg);
    for (int64_t i = 0; st == CUDNN_STATUS_SUCCESS && i < n_cfg && f->n_cand < keep_n; i++)
        try_plan(h, sp, cfg[i], virt_like_y, f);
    rc = f->n_cand > 0 ? 0 : ITS_EUNSUPPORTED;
    for (int i = 0; i < MAX_CFG; i++)
        cudnnBackendDestroyDescriptor(cfg[i]);
    return rc;
}

int its__fconv_build(cudnnHandle_t h, const its_fconv_spec *sp, int keep, its_fconv *f)
{
    memset(f, 0, sizeof *f);
    if (sp->groups < 1 || sp->c % sp->groups)
        return ITS_EINVAL;
    keep = keep < 1 ? 1 : (keep > ITS_FCONV_MAX_CAND ? ITS_FCONV_MAX_CAND : keep);
    int rc = build(h, sp, 0, keep, f);
    if (rc < 0)
        its__fconv_free(f);
    if (rc == ITS_EUNSUPPORTED && sp->ycs > 0) { /* some engines want y's strides throughout */
        rc = build(h, sp, 1, keep, f);
        if (rc < 0)
            its__fconv_free(f);
    }
    return rc;
}

int its__fconv_build_cfg(cudnnHandle_t h, const its_fconv_spec *sp, const its_fconv_cfg *cfg,
                         its_fconv *f)
{
    memset(f, 0, sizeof *f);
    if (sp->groups < 1 || sp->c % sp->groups || cfg->engine < 0 || cfg->n_knobs < 0 ||
        cfg->n_knobs > ITS_FCONV_MAX_KNOBS)
        return ITS_EINVAL;
    cudnnBackendDescriptor_t graph, eng, ec, kc[ITS_FCONV_MAX_KNOBS];
    int rc = opgraph(h, sp, cfg->virt_like_y, f, &graph);
    if (rc == 0)
        rc = made(f, CUDNN_BACKEND_ENGINE_DESCRIPTOR, &eng);
    if (rc == 0 && (cudnnBackendSetAttribute(eng, CUDNN_ATTR_ENGINE_OPERATION_GRAPH,
                                             CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
                                             &graph) != CUDNN_STATUS_SUCCESS ||
                    cudnnBackendSetAttribute(eng, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64,
                                             1, &cfg->engine) != CUDNN_STATUS_SUCCESS ||
                    cudnnBackendFinalize(eng) != CUDNN_STATUS_SUCCESS))
        rc = ITS_EUNSUPPORTED;
    for (int i = 0; rc == 0 && i < cfg->n_knobs; i++) {
        cudnnBackendKnobType_t type = (cudnnBackendKnobType_t)cfg->knob_type[i];
        if ((rc = made(f, CUDNN_BACKEND_KNOB_CHOICE_DESCRIPTOR, &kc[i])) < 0)
            break;
        if (cudnnBackendSetAttribute(kc[i], CUDNN_ATTR_KNOB_CHOICE_KNOB_TYPE, CUDNN_TYPE_KNOB_TYPE,
                                     1, &type) != CUDNN_STATUS_SUCCESS ||
            cudnnBackendSetAttribute(kc[i], CUDNN_ATTR_KNOB_CHOICE_KNOB_VALUE, CUDNN_TYPE_INT64, 1,
                                     &cfg->knob_value[i]) != CUDNN_STATUS_SUCCESS ||
            cudnnBackendFinalize(kc[i]) != CUDNN_STATUS_SUCCESS)
            rc = ITS_EUNSUPPORTED;
    }
    if (rc == 0)
        rc = made(f, CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, &ec);
    if (rc == 0 &&
        (cudnnBackendSetAttribute(ec, CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
                                  &eng) != CUDNN_STATUS_SUCCESS ||
         (cfg->n_knobs > 0 && cudnnBackendSetAttribute(ec, CUDNN_ATTR_ENGINECFG_KNOB_CHOICES,
                                                       CUDNN_TYPE_BACKEND_DESCRIPTOR, cfg->n_knobs,
                                                       kc) != CUDNN_STATUS_SUCCESS) ||
         cudnnBackendFinalize(ec) != CUDNN_STATUS_SUCCESS))
        rc = ITS_EUNSUPPORTED;
    if (rc == 0 && !try_plan(h, sp, ec, cfg->virt_like_y, f))
        rc = ITS_EUNSUPPORTED;
    if (rc == 0)
        f->cfg = *cfg; /* as asked (what cuDNN reports back may list defaulted knobs too) */
    if (rc < 0)
        its__fconv_free(f);
    return rc;
}

int its__fconv_load_json(cudnnHandle_t h, const its_fconv_spec *sp, const char *json, size_t len,
                         its_fconv *f)
{
    memset(f, 0, sizeof *f);
    cudnnBackendDescriptor_t plan;
    if (!json || len == 0 ||
        cudnnBackendCreateDescriptor(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, &plan) !=
            CUDNN_STATUS_SUCCESS)
        return ITS_EUNSUPPORTED;
    int64_t wsz = -1, got = 0;
    if (cudnnBackendSetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1,
                                 &h) != CUDNN_STATUS_SUCCESS ||
        cudnnBackendSetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_JSON_REPRESENTATION,
                                 CUDNN_TYPE_CHAR, (int64_t)len, json) != CUDNN_STATUS_SUCCESS ||
        cudnnBackendFinalize(plan) != CUDNN_STATUS_SUCCESS ||
        cudnnBackendGetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64,
                                 1, &got, &wsz) != CUDNN_STATUS_SUCCESS ||
        wsz < 0 || wsz > sp->max_ws) {
        cudnnBackendDestroyDescriptor(plan);
        return ITS_EUNSUPPORTED;
    }
    f->plan = plan;
    f->ws = wsz;
    f->cand[0] = plan;
    f->cand_ws[0] = wsz;
    f->n_cand = 1;
    f->cfg.engine = -1;
    return 0;
}

int its__fconv_json(const its_fconv *f, char **json, size_t *len)
{
    *json = NULL;
    *len = 0;
    int64_t n = 0;
    if (!f->plan ||
        cudnnBackendGetAttribute(f->plan, CUDNN_ATTR_EXECUTION_PLAN_JSON_REPRESENTATION,
                                 CUDNN_TYPE_CHAR, 0, &n, NULL) != CUDNN_STATUS_SUCCESS ||
        n <= 0 || n > ((int64_t)16 << 20))
        return ITS_EUNSUPPORTED;
    char *b = its_malloc(ITS_MOD_ENGINE, (size_t)n + 1);
    if (!b)
        return ITS_ENOMEM;
    int64_t got = 0;
    if (cudnnBackendGetAttribute(f->plan, CUDNN_ATTR_EXECUTION_PLAN_JSON_REPRESENTATION,
                                 CUDNN_TYPE_CHAR, n, &got, b) != CUDNN_STATUS_SUCCESS ||
        got <= 0 || got > n) {
        its_free(b);
        return ITS_EUNSUPPORTED;
    }
    *json = b;
    *len = (size_t)got;
    return 0;
}

int its__fconv_exec(cudnnHandle_t h, const its_fconv *f, const void *x, const void *w,
                    const void *bias, const void *sum, void *y, void *ws)
{
    cudnnBackendDescriptor_t vp;
    int64_t uids[5];
    void *ptrs[5];
    int n = 0;
    uids[n] = UID_X, ptrs[n++] = (void *)x;
    uids[n] = UID_W, ptrs[n++] = (void *)w;
    uids[n] = UID_Y, ptrs[n++] = y;
    if (bias)
        uids[n] = UID_B, ptrs[n++] = (void *)bias;
    if (sum)
        uids[n] = UID_S, ptrs[n++] = (void *)sum;
    T(cudnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &vp));
    cudnnStatus_t st =
        cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, n, uids);
    if (st == CUDNN_STATUS_SUCCESS)
        st = cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS,
                                      CUDNN_TYPE_VOID_PTR, n, ptrs);
    if (st == CUDNN_STATUS_SUCCESS)
        st = cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1,
                                      &ws);
    if (st == CUDNN_STATUS_SUCCESS)
        st = cudnnBackendFinalize(vp);
    if (st == CUDNN_STATUS_SUCCESS)
        st = cudnnBackendExecute(h, f->plan, vp);
    cudnnBackendDestroyDescriptor(vp);
    T(st);
    return 0;
}

int its__fconv_tune(cudnnHandle_t h, its_fconv *f, const void *x, const void *w, const void *bias,
                    const void *sum, void *y, void *ws, cudaStream_t stream)
{
    if (f->n_cand <= 1)
        return 0;
    cudaEvent_t e0, e1;
    if (cudaEventCreate(&e0) != cudaSuccess)
        return ITS_EBACKEND;
    if (cudaEventCreate(&e1) != cudaSuccess) {
        cudaEventDestroy(e0);
        return ITS_EBACKEND;
    }
    int best = -1, rc = 0;
    float best_ms = 0.0f;
    for (int i = 0; i < f->n_cand && rc == 0; i++) {
        f->plan = f->cand[i];
        int ok = 1;
        for (int k = 0; k < 2 && ok; k++) /* warm-up; an engine that fails here is skipped */
            ok = its__fconv_exec(h, f, x, w, bias, sum, y, ws) == 0;
        float ms = 0.0f;
        ok = ok && cudaEventRecord(e0, stream) == cudaSuccess;
        for (int k = 0; k < 5 && ok; k++)
            ok = its__fconv_exec(h, f, x, w, bias, sum, y, ws) == 0;
        ok = ok && cudaEventRecord(e1, stream) == cudaSuccess &&
             cudaEventSynchronize(e1) == cudaSuccess &&
             cudaEventElapsedTime(&ms, e0, e1) == cudaSuccess;
        if (!ok)
            rc = cudaGetLastError() == cudaSuccess ? 0 : ITS_EBACKEND; /* sticky errors fail */
        else if (best < 0 || ms < best_ms)
            best = i, best_ms = ms;
    }
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    if (rc < 0 || best < 0)
        return rc < 0 ? rc : ITS_EBACKEND;
    for (int i = 0; i < f->n_cand; i++)
        if (i != best)
            cudnnBackendDestroyDescriptor(f->cand[i]);
    f->plan = f->cand[best];
    f->ws = f->cand_ws[best];
    f->cfg = f->cand_cfg[best];
    f->cand[0] = f->plan;
    f->cand_ws[0] = f->ws;
    f->cand_cfg[0] = f->cfg;
    f->n_cand = 1;
    return 0;
}

void its__fconv_free(its_fconv *f)
{
    for (int i = 0; i < f->n_cand; i++)
        if (f->cand[i] != f->plan)
            cudnnBackendDestroyDescriptor(f->cand[i]);
    if (f->plan)
        cudnnBackendDestroyDescriptor(f->plan);
    for (int i = f->n_desc - 1; i >= 0; i--)
        cudnnBackendDestroyDescriptor(f->desc[i]);
    memset(f, 0, sizeof *f);
}

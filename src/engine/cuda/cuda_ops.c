/*
 * cuda_ops.c - the cuda backend's operators (cuda_internal.h): one planning function per ONNX
 * op, which turns a node into steps over buffers (its__cuda_plan_node dispatches on the op),
 * and one launch function per step kind (its__cuda_exec_step dispatches on the kind), with the
 * choice of each convolution's cuDNN engine.
 *
 * Layouts: Conv, MaxPool and Resize write NHWC (straight into their slice of a Concat where
 * cuda_plan.c decided so); Transpose, Reshape, MatMul and Softmax write plain row-major;
 * element-wise ops, Concat, Split and Slice keep their input's layout.
 */
#include <stdlib.h>
#include <string.h>

#include "its/alloc.h"
#include "its/clock.h"
#include "its/error.h"
#include "its/log.h"

#include "cuda_check.h"
#include "cuda_internal.h"

/* A step of node i: an element-wise step without a second operand until set otherwise. */
static step node_step(int i)
{
    step st;
    memset(&st, 0, sizeof st);
    st.kind = ST_EW;
    st.node = i;
    st.b = nobuf();
    return st;
}

/* ---- Conv ---------------------------------------------------------------------------------- */

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
    if (its__cuda_grow((void **)&c->fcache, &c->cap_fused, c->n_fused + 1, sizeof(fused_cache)) < 0)
        return ITS_ENOMEM;
    fused_cache *fc = &c->fcache[c->n_fused++];
    fc->spec = cd->spec;
    uint64_t t0 = its_now_ns();
    int rc, cached = its__cuda_pc_fused(c, &cd->spec, &fc->f);
    if (cached >= 0) { /* from the plan cache: no heuristics query, no tuning */
        rc = cached ? 0 : ITS_EUNSUPPORTED;
        fc->tuned = 1;
    } else {
        int keep = tune_candidates();
        rc = its__fconv_build(c->dnn, &cd->spec, keep, &fc->f);
        c->pc_searches += 1 + (keep > 1 && rc == 0 && fc->f.n_cand > 1); /* + the tuning */
    }
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

/*
 * With ITS_CUDA_DIRECT=1, a convolution reading the fp32 NCHW graph input with few channels
 * (the stem: 3) runs as our direct kernel, which also does the input conversion (cuDNN's
 * tensor-core engines need 8 channels). Off by default: on an H200 at batch 32 it took 490 us
 * against 446 us for the fp32 -> fp16 NHWC conversion plus cuDNN's stem. Returns 1
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
    int rc = its__cuda_nhwc_output(p, o, cat, &st.out);
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
    rc = its__cuda_emit(p, &st);
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
    int rc = its__cuda_ensure(c, g, p, n->in[0], LAY_NHWC, 0, &x);
    if (rc < 0)
        FAIL(rc, "node '%s' (Conv): input layout", n->name);
    opnd sum = nobuf();
    if (n->sum >= 0 && (rc = its__cuda_ensure(c, g, p, n->sum, LAY_NHWC, 0, &sum)) < 0)
        FAIL(rc, "node '%s' (Conv): residual layout", n->name);
    if (its__cuda_grow((void **)&p->convs, &p->cap_convs, p->n_convs + 1, sizeof(conv_desc)) < 0)
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
        if (is_strided(p, n->in[0]) &&
            (rc = its__cuda_ensure(c, g, p, n->in[0], LAY_NHWC, 1, &x)) < 0)
            FAIL(rc, "node '%s' (Conv): input copy", n->name);
        if (n->sum >= 0 && is_strided(p, n->sum) &&
            (rc = its__cuda_ensure(c, g, p, n->sum, LAY_NHWC, 1, &sum)) < 0)
            FAIL(rc, "node '%s' (Conv): residual copy", n->name);
        fused = find_fused(c, cd);
    }
    if (fused < 0)
        return fused;
    cd->fused = fused; /* 0: the legacy convolution (packed operands), chosen at finalize */
    step st;
    memset(&st, 0, sizeof st);
    int orc = its__cuda_nhwc_output(p, o, cat, &st.out);
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
    return its__cuda_emit(p, &st);
}

/* ---- element-wise ops ---------------------------------------------------------------------- */

/* Add, Sub, Mul, Div (broadcasting), Sigmoid, SiLU, Relu, LeakyRelu: one strided kernel, in
 * NHWC where a 4-D operand already is, plain otherwise. */
static int plan_ewise(cuda_ctx *c, const its_graph *g, plan *p, int i, char *err, size_t errlen)
{
    static const its_cuda_ew map[ITS_OP_COUNT] = {
        [ITS_OP_ADD] = ITS_CUDA_EW_ADD,         [ITS_OP_SUB] = ITS_CUDA_EW_SUB,
        [ITS_OP_MUL] = ITS_CUDA_EW_MUL,         [ITS_OP_DIV] = ITS_CUDA_EW_DIV,
        [ITS_OP_SIGMOID] = ITS_CUDA_EW_SIGMOID, [ITS_OP_SILU] = ITS_CUDA_EW_SILU,
        [ITS_OP_RELU] = ITS_CUDA_EW_RELU,       [ITS_OP_LEAKY_RELU] = ITS_CUDA_EW_LEAKY};
    const its_ir_node *n = &g->nodes[i];
    int o = n->out[0], rc;
    const its_shape *os = &p->shapes[o];
    step st = node_step(i);
    int lay = its__cuda_out_layout_ew(g, p, n, o);
    st.op = map[n->op];
    st.alpha = its__attr_f(n, "alpha", 0.01f);
    st.nd.rank = os->rank;
    memcpy(st.nd.dims, os->dims, sizeof(int64_t) * (size_t)os->rank);
    for (int k = 0; k < n->n_in && k < 2; k++) {
        int t = n->in[k];
        int tl = (p->shapes[t].rank == os->rank && !is_const(g, t)) ? lay : LAY_PLAIN;
        opnd *dst = k == 0 ? &st.a : &st.b;
        if ((rc = its__cuda_ensure(c, g, p, t, tl, 0, dst)) < 0)
            FAIL(rc, "node '%s' (%s): operand %d layout", n->name, its__op_name(n->op), k);
        its__cuda_bcast_strides(p, t, tl, os->rank, os->dims, st.nd.stride[1 + k]);
    }
    strides_of(os, lay, st.nd.stride[0]);
    int b = its__cuda_new_buf(p, tbytes(os, 2));
    if (b < 0)
        return b;
    p->tbuf[o] = b;
    p->tlay[o] = lay;
    st.out = bufop(b);
    return its__cuda_emit(p, &st);
}

/* ---- data movement ------------------------------------------------------------------------- */

/* Concat: a strided copy of each input into its slice of the output, except the inputs whose
 * producers already wrote there (Concat elimination, cuda_plan.c). */
static int plan_concat(cuda_ctx *c, const its_graph *g, plan *p, int i, char *err, size_t errlen)
{
    const its_ir_node *n = &g->nodes[i];
    int o = n->out[0], rc;
    const its_shape *os = &p->shapes[o];
    step st = node_step(i);
    int first_act = -1;
    for (int k = 0; k < n->n_in; k++)
        if (n->in[k] >= 0 && !is_const(g, n->in[k]) && first_act < 0)
            first_act = n->in[k];
    int lay =
        (os->rank == 4 && first_act >= 0 && p->tlay[first_act] == LAY_NHWC) ? LAY_NHWC : LAY_PLAIN;
    int64_t ax = norm_axis(its__attr_i(n, "axis", 0), os->rank);
    int b = p->tbuf[o]; /* producers already write into their slices (plan_aliases) */
    if (b >= 0) {
        lay = LAY_NHWC;
    } else {
        if ((b = its__cuda_new_buf(p, tbytes(os, 2))) < 0)
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
        if (!is_const(g, t) && p->tbuf[t] == b && p->toff[t] == slice && p->tlay[t] == LAY_NHWC &&
            lay == LAY_NHWC && pix_stride(p, t) == os->dims[1])
            continue; /* its producer wrote it in place */
        step cs = st;
        cs.op = ITS_CUDA_EW_COPY;
        int tl = is_const(g, t) ? LAY_PLAIN : p->tlay[t];
        if (tl == LAY_F32)
            tl = LAY_PLAIN, cs.a_f32 = 1;
        if (is_const(g, t)) {
            if ((rc = its__cuda_ensure(c, g, p, t, LAY_PLAIN, 0, &cs.a)) < 0)
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
        if ((rc = its__cuda_emit(p, &cs)) < 0)
            return rc;
    }
    return 0;
}

/* The source of a copying op (Split, Slice, Transpose): its layout as read (the fp32 graph
 * input reads as plain, marked a_f32 in st) and its element strides in that layout. */
static int copy_source(const plan *p, int t, step *st, int64_t *ist)
{
    int tl = p->tlay[t];
    if (tl == LAY_F32) {
        tl = LAY_PLAIN;
        st->a_f32 = 1;
    }
    tstrides(p, t, tl, ist);
    return tl;
}

/* Transpose: a strided copy into a plain output. */
static int plan_transpose(cuda_ctx *c, const its_graph *g, plan *p, int i, char *err, size_t errlen)
{
    (void)c, (void)err, (void)errlen;
    const its_ir_node *n = &g->nodes[i];
    int o = n->out[0], t = n->in[0];
    const its_shape *os = &p->shapes[o];
    step st = node_step(i);
    int64_t ist[ITS_MAX_DIMS];
    copy_source(p, t, &st, ist);
    st.op = ITS_CUDA_EW_COPY;
    const its_attr *pa = its__attr(n, "perm");
    st.nd.rank = os->rank;
    for (int d = 0; d < os->rank; d++) {
        int pd = pa ? (int)pa->ints[d] : os->rank - 1 - d;
        st.nd.dims[d] = os->dims[d];
        st.nd.stride[1][d] = ist[pd];
    }
    strides_of(os, LAY_PLAIN, st.nd.stride[0]);
    int b = its__cuda_new_buf(p, tbytes(os, 2));
    if (b < 0)
        return b;
    p->tbuf[o] = b;
    p->tlay[o] = LAY_PLAIN;
    st.a = bufop(p->tbuf[t]);
    st.a.off = p->toff[t];
    st.out = bufop(b);
    return its__cuda_emit(p, &st);
}

/* Slice with constant starts, ends, axes and positive steps: a strided copy. */
static int plan_slice(cuda_ctx *c, const its_graph *g, plan *p, int i, char *err, size_t errlen)
{
    (void)c;
    const its_ir_node *n = &g->nodes[i];
    int o = n->out[0], t = n->in[0];
    const its_shape *os = &p->shapes[o], *is = &p->shapes[t];
    step st = node_step(i);
    int64_t ist[ITS_MAX_DIMS];
    int tl = copy_source(p, t, &st, ist);
    int lay = is->rank == 4 ? tl : LAY_PLAIN;
    st.op = ITS_CUDA_EW_COPY;
    int64_t starts[ITS_MAX_DIMS] = {0}, ends[ITS_MAX_DIMS], axes[ITS_MAX_DIMS], steps[ITS_MAX_DIMS];
    int ns = -1, ne = -1, na = -1, nst = -1;
    if (n->n_in > 1) {
        ns = its__cuda_const_ints(g, n->in[1], starts, ITS_MAX_DIMS);
        ne = its__cuda_const_ints(g, n->in[2], ends, ITS_MAX_DIMS);
        na = n->n_in > 3 && n->in[3] >= 0 ? its__cuda_const_ints(g, n->in[3], axes, ITS_MAX_DIMS)
                                          : -2;
        nst = n->n_in > 4 && n->in[4] >= 0 ? its__cuda_const_ints(g, n->in[4], steps, ITS_MAX_DIMS)
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
    int b = its__cuda_new_buf(p, tbytes(os, 2));
    if (b < 0)
        return b;
    p->tbuf[o] = b;
    p->tlay[o] = lay;
    st.a = bufop(p->tbuf[t]);
    st.a.off = p->toff[t] + (size_t)off * (st.a_f32 ? 4 : 2);
    st.out = bufop(b);
    return its__cuda_emit(p, &st);
}

/* Split: channel slices of an NHWC tensor are views (no copy); otherwise a copy per output. */
static int plan_split(cuda_ctx *c, const its_graph *g, plan *p, int i, char *err, size_t errlen)
{
    (void)c, (void)err, (void)errlen;
    const its_ir_node *n = &g->nodes[i];
    int t = n->in[0], rc;
    const its_shape *is = &p->shapes[t];
    step st = node_step(i);
    int64_t ist[ITS_MAX_DIMS];
    int tl = copy_source(p, t, &st, ist);
    int lay = is->rank == 4 ? tl : LAY_PLAIN;
    st.op = ITS_CUDA_EW_COPY;
    int64_t ax = norm_axis(its__attr_i(n, "axis", 0), is->rank);
    int64_t pos = 0;
    if (its__cuda_split_views(n, p, t, ax)) {
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
        int b = its__cuda_new_buf(p, tbytes(ks, 2));
        if (b < 0)
            return b;
        p->tbuf[ok] = b;
        p->tlay[ok] = lay;
        cs.a = bufop(p->tbuf[t]);
        cs.a.off = p->toff[t] + (size_t)(pos * ist[ax]) * (cs.a_f32 ? 4 : 2);
        cs.out = bufop(b);
        pos += ks->dims[ax];
        if ((rc = its__cuda_emit(p, &cs)) < 0)
            return rc;
    }
    return 0;
}

/* Reshape, Identity, Cast to float: views of their (plain) input, no step. */
static int plan_view(cuda_ctx *c, const its_graph *g, plan *p, int i, char *err, size_t errlen)
{
    const its_ir_node *n = &g->nodes[i];
    int o = n->out[0], rc;
    opnd a;
    if ((rc = its__cuda_ensure(c, g, p, n->in[0], LAY_PLAIN, 0, &a)) < 0)
        FAIL(rc, "node '%s' (%s): input layout", n->name, its__op_name(n->op));
    if (a.buf < 0)
        FAIL(ITS_EUNSUPPORTED, "node '%s': view of a constant", n->name);
    p->tbuf[o] = a.buf; /* a view: same bytes, extended liveness */
    p->toff[o] = a.off;
    p->tlay[o] = LAY_PLAIN;
    return 0;
}

/* ---- Softmax, MatMul ----------------------------------------------------------------------- */

static int plan_softmax(cuda_ctx *c, const its_graph *g, plan *p, int i, char *err, size_t errlen)
{
    const its_ir_node *n = &g->nodes[i];
    int o = n->out[0], rc;
    const its_shape *os = &p->shapes[o];
    step st = node_step(i);
    if ((rc = its__cuda_ensure(c, g, p, n->in[0], LAY_PLAIN, 0, &st.a)) < 0)
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
    int b = its__cuda_new_buf(p, tbytes(os, 2));
    if (b < 0)
        return b;
    p->tbuf[o] = b;
    p->tlay[o] = LAY_PLAIN;
    st.out = bufop(b);
    return its__cuda_emit(p, &st);
}

/* MatMul: a strided-batched cuBLAS GEMM (a batch dimension of 1 broadcasts). */
static int plan_matmul(cuda_ctx *c, const its_graph *g, plan *p, int i, char *err, size_t errlen)
{
    const its_ir_node *n = &g->nodes[i];
    int o = n->out[0], rc;
    const its_shape *os = &p->shapes[o];
    step st = node_step(i);
    const its_shape *as = &p->shapes[n->in[0]], *bs = &p->shapes[n->in[1]];
    if (as->rank < 2 || bs->rank < 2)
        FAIL(ITS_EUNSUPPORTED, "node '%s' (MatMul): rank < 2", n->name);
    if ((rc = its__cuda_ensure(c, g, p, n->in[0], LAY_PLAIN, 0, &st.a)) < 0 ||
        (rc = its__cuda_ensure(c, g, p, n->in[1], LAY_PLAIN, 0, &st.b)) < 0)
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
    int b = its__cuda_new_buf(p, tbytes(os, 2));
    if (b < 0)
        return b;
    p->tbuf[o] = b;
    p->tlay[o] = LAY_PLAIN;
    st.out = bufop(b);
    return its__cuda_emit(p, &st);
}

/* ---- MaxPool, Resize (NHWC windows) -------------------------------------------------------- */

/* The NHWC input of a MaxPool or Resize step and the geometry both share. */
static int window_input(cuda_ctx *c, const its_graph *g, plan *p, int i, step *st, char *err,
                        size_t errlen)
{
    const its_ir_node *n = &g->nodes[i];
    const its_shape *is = &p->shapes[n->in[0]], *os = &p->shapes[n->out[0]];
    int rc = its__cuda_ensure(c, g, p, n->in[0], LAY_NHWC, 0, &st->a);
    if (rc < 0)
        FAIL(rc, "node '%s' (%s): input layout", n->name, its__op_name(n->op));
    st->xcs = is_strided(p, n->in[0]) ? pix_stride(p, n->in[0]) : 0;
    st->pb = (int)is->dims[0];
    st->pc = (int)is->dims[1];
    st->ph = (int)is->dims[2];
    st->pw = (int)is->dims[3];
    st->oh = (int)os->dims[2];
    st->ow = (int)os->dims[3];
    return 0;
}

/* Its NHWC output, written straight into its Concat slice where planned so. */
static int window_output(plan *p, int o, step *st)
{
    int rc = its__cuda_nhwc_output(p, o, p->acat[o], &st->out);
    if (rc < 0)
        return rc;
    st->ycs = p->tcs[o];
    return its__cuda_emit(p, st);
}

static int plan_maxpool(cuda_ctx *c, const its_graph *g, plan *p, int i, char *err, size_t errlen)
{
    const its_ir_node *n = &g->nodes[i];
    step st = node_step(i);
    int rc = window_input(c, g, p, i, &st, err, errlen);
    if (rc < 0)
        return rc;
    st.kind = ST_MAXPOOL;
    st.ks = (int)its__attr(n, "kernel_shape")->ints[0];
    const its_attr *sa = its__attr(n, "strides"), *pa = its__attr(n, "pads");
    st.stride = sa ? (int)sa->ints[0] : 1;
    st.pad = pa ? (int)pa->ints[0] : 0;
    return window_output(p, n->out[0], &st);
}

/* Resize: nearest-neighbour upsampling of H and W by integer factors. */
static int plan_resize(cuda_ctx *c, const its_graph *g, plan *p, int i, char *err, size_t errlen)
{
    const its_ir_node *n = &g->nodes[i];
    const its_shape *is = &p->shapes[n->in[0]], *os = &p->shapes[n->out[0]];
    step st = node_step(i);
    int rc = window_input(c, g, p, i, &st, err, errlen);
    if (rc < 0)
        return rc;
    st.kind = ST_UPSAMPLE;
    if (st.oh % st.ph || st.ow % st.pw || os->dims[0] != is->dims[0] || os->dims[1] != is->dims[1])
        FAIL(ITS_EUNSUPPORTED, "node '%s' (Resize): only integer upsampling of H, W", n->name);
    st.fy = st.oh / st.ph;
    st.fx = st.ow / st.pw;
    return window_output(p, n->out[0], &st);
}

/* ---- dispatch -------------------------------------------------------------------------------- */

typedef int (*plan_fn)(cuda_ctx *c, const its_graph *g, plan *p, int i, char *err, size_t errlen);

static const plan_fn planners[ITS_OP_COUNT] = {
    [ITS_OP_CONV] = plan_conv,           [ITS_OP_ADD] = plan_ewise,
    [ITS_OP_SUB] = plan_ewise,           [ITS_OP_MUL] = plan_ewise,
    [ITS_OP_DIV] = plan_ewise,           [ITS_OP_SIGMOID] = plan_ewise,
    [ITS_OP_SILU] = plan_ewise,          [ITS_OP_RELU] = plan_ewise,
    [ITS_OP_LEAKY_RELU] = plan_ewise,    [ITS_OP_CONCAT] = plan_concat,
    [ITS_OP_SPLIT] = plan_split,         [ITS_OP_SLICE] = plan_slice,
    [ITS_OP_TRANSPOSE] = plan_transpose, [ITS_OP_RESHAPE] = plan_view,
    [ITS_OP_IDENTITY] = plan_view,       [ITS_OP_CAST] = plan_view,
    [ITS_OP_SOFTMAX] = plan_softmax,     [ITS_OP_MATMUL] = plan_matmul,
    [ITS_OP_MAXPOOL] = plan_maxpool,     [ITS_OP_RESIZE] = plan_resize,
};

int its__cuda_plan_node(cuda_ctx *c, const its_graph *g, plan *p, int i, char *err, size_t errlen)
{
    const its_ir_node *n = &g->nodes[i];
    for (int k = 0; k < n->n_in + n->n_out; k++) {
        int t = k < n->n_in ? n->in[k] : n->out[k - n->n_in];
        if (t >= 0 && p->shapes[t].rank > ITS_CUDA_ND_MAX)
            FAIL(ITS_EUNSUPPORTED, "node '%s' (%s): rank above %d", n->name, its__op_name(n->op),
                 ITS_CUDA_ND_MAX);
    }
    plan_fn f = n->op < ITS_OP_COUNT ? planners[n->op] : NULL;
    if (!f)
        FAIL(ITS_EUNSUPPORTED, "node '%s' (%s): not supported by the cuda backend", n->name,
             its__op_name(n->op));
    return f(c, g, p, i, err, errlen);
}

/* ---- launches, one per step kind ----------------------------------------------------------- */

static int exec_ew(cuda_ctx *c, plan *p, const step *s, cudaStream_t strm)
{
    return its_cuda_ewise(s->op, ptr_of(c, p, &s->a), s->a_f32,
                          s->b.buf >= 0 || s->b.cptr ? ptr_of(c, p, &s->b) : NULL,
                          ptr_of(c, p, &s->out), s->out_f32, &s->nd, s->alpha, strm);
}

/* A fused cuDNN graph (convolution, bias, residual, activation in one), or the legacy
 * convolution followed by our epilogue kernel. */
static int exec_conv(cuda_ctx *c, plan *p, const step *s, cudaStream_t strm)
{
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
        return its_cuda_conv_epilogue(ptr_of(c, p, &s->out), s->bias, sum, s->total, s->k, s->act,
                                      s->alpha, s->sum_first, strm);
    return 0;
}

static int exec_direct(cuda_ctx *c, plan *p, const step *s, cudaStream_t strm)
{
    /* M, N: kernel size; stride / fx: strides y / x; pad / fy: pads y / x */
    return its_cuda_conv_direct_f32in(
        ptr_of(c, p, &s->a), s->pb, s->pc, s->ph, s->pw, s->w, s->bias, s->k, s->M, s->N, s->stride,
        s->fx, s->pad, s->fy, s->oh, s->ow, s->act, s->alpha, ptr_of(c, p, &s->out), s->ycs, strm);
}

static int exec_softmax(cuda_ctx *c, plan *p, const step *s, cudaStream_t strm)
{
    return its_cuda_softmax(ptr_of(c, p, &s->a), ptr_of(c, p, &s->out), s->outer, s->n, s->inner,
                            strm);
}

static int exec_maxpool(cuda_ctx *c, plan *p, const step *s, cudaStream_t strm)
{
    return its_cuda_maxpool_nhwc(ptr_of(c, p, &s->a), s->xcs, ptr_of(c, p, &s->out), s->ycs, s->pb,
                                 s->ph, s->pw, s->pc, s->ks, s->stride, s->pad, s->oh, s->ow, strm);
}

static int exec_upsample(cuda_ctx *c, plan *p, const step *s, cudaStream_t strm)
{
    return its_cuda_upsample_nhwc(ptr_of(c, p, &s->a), s->xcs, ptr_of(c, p, &s->out), s->ycs, s->pb,
                                  s->ph, s->pw, s->pc, s->fy, s->fx, strm);
}

static int exec_matmul(cuda_ctx *c, plan *p, const step *s, cudaStream_t strm)
{
    (void)strm; /* cuBLAS runs on the stream set by its__cuda_exec_net */
    const float one = 1.0f, zero = 0.0f;
    /* row-major C = A B is column-major C^T = B^T A^T */
    ITS_CUBLAS_TRY(cublasGemmStridedBatchedEx(
        c->blas, CUBLAS_OP_N, CUBLAS_OP_N, s->N, s->M, s->K, &one, ptr_of(c, p, &s->b), CUDA_R_16F,
        s->N, s->sb, ptr_of(c, p, &s->a), CUDA_R_16F, s->K, s->sa, &zero, ptr_of(c, p, &s->out),
        CUDA_R_16F, s->N, (int64_t)s->M * s->N, (int)s->batch, CUBLAS_COMPUTE_32F,
        CUBLAS_GEMM_DEFAULT));
    return 0;
}

int its__cuda_exec_step(cuda_ctx *c, plan *p, const step *s, cudaStream_t strm)
{
    switch (s->kind) {
    case ST_EW:
        return exec_ew(c, p, s, strm);
    case ST_CONV:
        return exec_conv(c, p, s, strm);
    case ST_DIRECT:
        return exec_direct(c, p, s, strm);
    case ST_SOFTMAX:
        return exec_softmax(c, p, s, strm);
    case ST_MAXPOOL:
        return exec_maxpool(c, p, s, strm);
    case ST_UPSAMPLE:
        return exec_upsample(c, p, s, strm);
    case ST_MATMUL:
        return exec_matmul(c, p, s, strm);
    }
    return ITS_EINTERNAL;
}

int its__cuda_find_algo(cuda_ctx *c, plan *p, const step *s)
{
    conv_desc *cd = &p->convs[s->conv];
    for (int i = 0; i < c->n_algos; i++)
        if (memcmp(c->algos[i].key, cd->key, sizeof cd->key) == 0) {
            cd->algo = c->algos[i].algo;
            return 0;
        }
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int got = 0;
    if (its__cuda_pc_algo(c, cd->key, &cd->algo))
        goto keep;
    c->pc_searches++;
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
keep:
    if (its__cuda_grow((void **)&c->algos, &c->cap_algos, c->n_algos + 1, sizeof(algo_cache)) < 0)
        return ITS_ENOMEM;
    memcpy(c->algos[c->n_algos].key, cd->key, sizeof cd->key);
    c->algos[c->n_algos++].algo = cd->algo;
    return 0;
}

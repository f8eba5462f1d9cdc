/*
 * shape.c - shape and type inference, attribute decoding and validation for every op.
 *
 * Runs once at load (batch 1, which rejects bad models with the node named) and once per
 * prepared batch size. Inputs that shape computations need (Reshape's shape, Slice's
 * starts/ends, Split's sizes, Resize's scales/sizes) must be constants; the exports we target
 * bake them as initializers.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "its/alloc.h"
#include "its/error.h"

#include "ir.h"
#include "ops_impl.h"

static int fail(char *err, size_t errlen, const its_ir_node *n, int code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int fail(char *err, size_t errlen, const its_ir_node *n, int code, const char *fmt, ...)
{
    int k = snprintf(err, errlen, "node '%s' (%s): ", n->name, its__op_name(n->op));
    if (k < 0 || (size_t)k >= errlen)
        return code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + k, errlen - (size_t)k, fmt, ap);
    va_end(ap);
    return code;
}

#define FAIL(code, ...) return fail(err, errlen, n, code, __VA_ARGS__)

/* Integer values of a constant int64/int32 tensor; -1 if t is not such a constant. */
static int const_ints(const its_graph *g, int t, int64_t *vals, int max)
{
    if (t < 0 || g->tensors[t].kind != ITS_TK_CONST || !g->tensors[t].data)
        return -1;
    const its_ir_tensor *T = &g->tensors[t];
    int64_t ne = its__shape_numel(&T->shape);
    if (ne > max || T->shape.rank > 1)
        return -1;
    for (int64_t i = 0; i < ne; i++) {
        if (T->dtype == ITS_DT_INT64)
            vals[i] = ((const int64_t *)T->data)[i];
        else if (T->dtype == ITS_DT_INT32)
            vals[i] = ((const int32_t *)T->data)[i];
        else
            return -1;
    }
    return (int)ne;
}

static int const_floats(const its_graph *g, int t, float *vals, int max)
{
    if (t < 0 || g->tensors[t].kind != ITS_TK_CONST || !g->tensors[t].data ||
        g->tensors[t].dtype != ITS_DT_FLOAT32)
        return -1;
    const its_ir_tensor *T = &g->tensors[t];
    int64_t ne = its__shape_numel(&T->shape);
    if (ne > max || T->shape.rank > 1)
        return -1;
    memcpy(vals, T->data, (size_t)ne * sizeof(float));
    return (int)ne;
}

static int ints_attr(const its_ir_node *n, const char *name, int64_t *v, int max)
{
    const its_attr *a = its__attr(n, name);
    if (!a || a->kind != ITS_ATTR_INTS || a->n > max)
        return -1;
    memcpy(v, a->ints, (size_t)a->n * sizeof(int64_t));
    return a->n;
}

int its__broadcast(const its_shape *a, const its_shape *b, its_shape *out)
{
    int r = a->rank > b->rank ? a->rank : b->rank;
    out->rank = r;
    for (int i = 0; i < r; i++) {
        int ia = i - (r - a->rank), ib = i - (r - b->rank);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return ITS_EMODEL;
        out->dims[i] = da == 1 ? db : da;
    }
    return 0;
}

int its__win_params(const its_graph *g, const its_ir_node *n, const its_shape *x,
                    const its_shape *w, its_win_params *p, char *err, size_t errlen)
{
    (void)g;
    memset(p, 0, sizeof *p);
    int pool = n->op == ITS_OP_MAXPOOL;
    if (x->rank != 3 && x->rank != 4)
        FAIL(ITS_EUNSUPPORTED, "input rank %d (only 1-D and 2-D windows)", x->rank);
    int sp = x->rank - 2;
    p->spatial = sp;
    p->n = x->dims[0];
    p->c = x->dims[1];
    p->ih = sp == 2 ? x->dims[2] : 1;
    p->iw = x->dims[x->rank - 1];
    int64_t k[2] = {1, 1}, s[2] = {1, 1}, d[2] = {1, 1}, pads[4] = {0, 0, 0, 0};
    int64_t tmp[8];
    int nk = ints_attr(n, "kernel_shape", tmp, 8);
    if (nk >= 0) {
        if (nk != sp)
            FAIL(ITS_EMODEL, "kernel_shape has %d values for %d spatial dims", nk, sp);
        for (int i = 0; i < sp; i++)
            k[2 - sp + i] = tmp[i];
    } else if (pool) {
        FAIL(ITS_EMODEL, "kernel_shape is required");
    }
    if (!pool) {
        if (w->rank != x->rank)
            FAIL(ITS_EMODEL, "weight rank %d does not match input rank %d", w->rank, x->rank);
        p->group = its__attr_i(n, "group", 1);
        if (p->group < 1 || p->c % p->group != 0 || w->dims[0] % p->group != 0)
            FAIL(ITS_EMODEL, "group %lld does not divide channels", (long long)p->group);
        if (w->dims[1] * p->group != p->c)
            FAIL(ITS_EMODEL, "weight has %lld input channels per group, input has %lld / %lld",
                 (long long)w->dims[1], (long long)p->c, (long long)p->group);
        p->m = w->dims[0];
        for (int i = 0; i < sp; i++) {
            int64_t wk = w->dims[2 + i];
            if (nk >= 0 && k[2 - sp + i] != wk)
                FAIL(ITS_EMODEL, "kernel_shape disagrees with the weight shape");
            k[2 - sp + i] = wk;
        }
    } else {
        p->group = 1;
        p->m = p->c;
        if (its__attr_i(n, "storage_order", 0) != 0)
            FAIL(ITS_EUNSUPPORTED, "storage_order 1 is not supported");
        if (n->n_out > 1 && n->out[1] >= 0)
            FAIL(ITS_EUNSUPPORTED, "the Indices output is not supported");
    }
    int ns = ints_attr(n, "strides", tmp, 8);
    if (ns >= 0) {
        if (ns != sp)
            FAIL(ITS_EMODEL, "strides has %d values for %d spatial dims", ns, sp);
        for (int i = 0; i < sp; i++)
            s[2 - sp + i] = tmp[i];
    }
    int nd = ints_attr(n, "dilations", tmp, 8);
    if (nd >= 0) {
        if (nd != sp)
            FAIL(ITS_EMODEL, "dilations has %d values for %d spatial dims", nd, sp);
        for (int i = 0; i < sp; i++)
            d[2 - sp + i] = tmp[i];
    }
    int np = ints_attr(n, "pads", tmp, 8);
    if (np >= 0) {
        if (np != 2 * sp)
            FAIL(ITS_EMODEL, "pads has %d values for %d spatial dims", np, sp);
        if (sp == 2) {
            pads[0] = tmp[0];
            pads[1] = tmp[1];
            pads[2] = tmp[2];
            pads[3] = tmp[3];
        } else {
            pads[1] = tmp[0];
            pads[3] = tmp[1];
        }
    }
    for (int i = 0; i < 2; i++)
        if (k[i] < 1 || s[i] < 1 || d[i] < 1 || k[i] > 4096 || s[i] > 4096 || d[i] > 4096)
            FAIL(ITS_EMODEL, "kernel, stride or dilation out of range");
    for (int i = 0; i < 4; i++)
        if (pads[i] < 0 || pads[i] > 4096)
            FAIL(ITS_EMODEL, "pad out of range");
    int ceil_mode = pool ? (int)its__attr_i(n, "ceil_mode", 0) : 0;
    const char *ap = its__attr_s(n, "auto_pad", "NOTSET");
    int64_t in[2] = {p->ih, p->iw}, out[2];
    for (int i = 0; i < 2; i++) {
        int64_t ek = (k[i] - 1) * d[i] + 1;
        if (strcmp(ap, "SAME_UPPER") == 0 || strcmp(ap, "SAME_LOWER") == 0) {
            out[i] = (in[i] + s[i] - 1) / s[i];
            int64_t total = (out[i] - 1) * s[i] + ek - in[i];
            if (total < 0)
                total = 0;
            int64_t small = total / 2, big = total - small;
            if (ap[5] == 'U') {
                pads[i] = small;
                pads[i + 2] = big;
            } else {
                pads[i] = big;
                pads[i + 2] = small;
            }
        } else if (strcmp(ap, "VALID") == 0) {
            pads[i] = pads[i + 2] = 0;
            out[i] = (in[i] - ek) / s[i] + 1;
        } else if (strcmp(ap, "NOTSET") == 0) {
            int64_t span = in[i] + pads[i] + pads[i + 2] - ek;
            if (span < 0)
                FAIL(ITS_EMODEL, "window larger than the padded input");
            out[i] = ceil_mode ? (span + s[i] - 1) / s[i] + 1 : span / s[i] + 1;
            /* ceil mode: the last window must start inside the input or left pad */
            if (ceil_mode && (out[i] - 1) * s[i] >= in[i] + pads[i])
                out[i]--;
        } else {
            FAIL(ITS_EMODEL, "unknown auto_pad '%s'", ap);
        }
        if (out[i] < 1)
            FAIL(ITS_EMODEL, "output size %lld", (long long)out[i]);
    }
    p->kh = k[0];
    p->kw = k[1];
    p->sh = s[0];
    p->sw = s[1];
    p->dh = d[0];
    p->dw = d[1];
    p->pt = pads[0];
    p->pl = pads[1];
    p->pb = pads[2];
    p->pr = pads[3];
    p->oh = out[0];
    p->ow = out[1];
    return 0;
}

int its__resize_params(const its_graph *g, const its_ir_node *n, const its_shape *x, int batch,
                       its_resize_params *p, its_shape *out, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    const char *mode = its__attr_s(n, "mode", "nearest");
    if (strcmp(mode, "nearest") == 0)
        p->linear = 0;
    else if (strcmp(mode, "linear") == 0)
        p->linear = 1;
    else
        FAIL(ITS_EUNSUPPORTED, "mode '%s' is not supported", mode);
    const char *cm = its__attr_s(n, "coordinate_transformation_mode", "half_pixel");
    if (strcmp(cm, "half_pixel") == 0)
        p->coord = ITS_RC_HALF_PIXEL;
    else if (strcmp(cm, "asymmetric") == 0)
        p->coord = ITS_RC_ASYMMETRIC;
    else if (strcmp(cm, "pytorch_half_pixel") == 0)
        p->coord = ITS_RC_PYTORCH_HALF_PIXEL;
    else if (strcmp(cm, "align_corners") == 0)
        p->coord = ITS_RC_ALIGN_CORNERS;
    else if (strcmp(cm, "tf_half_pixel_for_nn") == 0)
        p->coord = ITS_RC_TF_HALF_PIXEL_FOR_NN;
    else
        FAIL(ITS_EUNSUPPORTED, "coordinate_transformation_mode '%s' is not supported", cm);
    const char *nm = its__attr_s(n, "nearest_mode", "round_prefer_floor");
    if (strcmp(nm, "round_prefer_floor") == 0)
        p->nearest = ITS_RN_ROUND_PREFER_FLOOR;
    else if (strcmp(nm, "round_prefer_ceil") == 0)
        p->nearest = ITS_RN_ROUND_PREFER_CEIL;
    else if (strcmp(nm, "floor") == 0)
        p->nearest = ITS_RN_FLOOR;
    else if (strcmp(nm, "ceil") == 0)
        p->nearest = ITS_RN_CEIL;
    else
        FAIL(ITS_EUNSUPPORTED, "nearest_mode '%s' is not supported", nm);
    if (its__attr_i(n, "exclude_outside", 0) != 0)
        FAIL(ITS_EUNSUPPORTED, "exclude_outside is not supported");
    /* opset 10: (X, scales); 11+: (X, roi, scales[, sizes]) */
    int ti_scales = g->opset < 11 ? 1 : 2, ti_sizes = g->opset < 11 ? -1 : 3;
    float sc[ITS_MAX_DIMS];
    int64_t sz[ITS_MAX_DIMS];
    int nsc = -1, nsz = -1;
    if (ti_scales < n->n_in && n->in[ti_scales] >= 0) {
        nsc = const_floats(g, n->in[ti_scales], sc, ITS_MAX_DIMS);
        if (nsc < 0)
            FAIL(ITS_EUNSUPPORTED, "scales must be a constant float tensor");
        if (nsc == 0)
            nsc = -1; /* opset 13: empty scales with sizes */
    }
    if (ti_sizes >= 0 && ti_sizes < n->n_in && n->in[ti_sizes] >= 0) {
        nsz = const_ints(g, n->in[ti_sizes], sz, ITS_MAX_DIMS);
        if (nsz < 0)
            FAIL(ITS_EUNSUPPORTED, "sizes must be a constant int64 tensor");
    }
    if ((nsc < 0) == (nsz < 0))
        FAIL(ITS_EMODEL, "exactly one of scales and sizes must be given");
    out->rank = x->rank;
    if (nsc >= 0) {
        if (nsc != x->rank)
            FAIL(ITS_EMODEL, "scales has %d values for rank %d", nsc, x->rank);
        for (int i = 0; i < x->rank; i++) {
            if (!(sc[i] > 0.f) || sc[i] > 4096.f)
                FAIL(ITS_EMODEL, "scale %g out of range", (double)sc[i]);
            p->scale[i] = sc[i];
            out->dims[i] = (int64_t)floorf((float)x->dims[i] * sc[i]);
        }
    } else {
        if (nsz != x->rank)
            FAIL(ITS_EMODEL, "sizes has %d values for rank %d", nsz, x->rank);
        /* batch baked as 1 into sizes by the exporter */
        if (batch > 1 && sz[0] == 1 && x->dims[0] == batch)
            sz[0] = batch;
        for (int i = 0; i < x->rank; i++) {
            if (sz[i] < 1 || sz[i] > (int64_t)1 << 20)
                FAIL(ITS_EMODEL, "size %lld out of range", (long long)sz[i]);
            out->dims[i] = sz[i];
            p->scale[i] = (float)sz[i] / (float)x->dims[i];
        }
    }
    for (int i = 0; i < x->rank - 2; i++)
        if (out->dims[i] != x->dims[i])
            FAIL(ITS_EUNSUPPORTED, "resizing dimension %d (only the last two)", i);
    if (x->rank < 2)
        FAIL(ITS_EUNSUPPORTED, "rank %d", x->rank);
    return 0;
}

int its__slice_params(const its_graph *g, const its_ir_node *n, const its_shape *x,
                      its_slice_params *p, its_shape *out, char *err, size_t errlen)
{
    int64_t st[ITS_MAX_DIMS], en[ITS_MAX_DIMS], ax[ITS_MAX_DIMS], sp[ITS_MAX_DIMS];
    int nst, nen, nax = -1, nsp = -1;
    if (g->opset < 10) {
        nst = ints_attr(n, "starts", st, ITS_MAX_DIMS);
        nen = ints_attr(n, "ends", en, ITS_MAX_DIMS);
        nax = ints_attr(n, "axes", ax, ITS_MAX_DIMS);
    } else {
        nst = n->n_in > 1 ? const_ints(g, n->in[1], st, ITS_MAX_DIMS) : -1;
        nen = n->n_in > 2 ? const_ints(g, n->in[2], en, ITS_MAX_DIMS) : -1;
        if (n->n_in > 3 && n->in[3] >= 0 && (nax = const_ints(g, n->in[3], ax, ITS_MAX_DIMS)) < 0)
            FAIL(ITS_EUNSUPPORTED, "axes must be a constant");
        if (n->n_in > 4 && n->in[4] >= 0 && (nsp = const_ints(g, n->in[4], sp, ITS_MAX_DIMS)) < 0)
            FAIL(ITS_EUNSUPPORTED, "steps must be a constant");
    }
    if (nst < 0 || nen < 0 || nst != nen)
        FAIL(ITS_EUNSUPPORTED, "starts/ends must be constants of equal length");
    if (nax < 0) {
        nax = nst;
        for (int i = 0; i < nst; i++)
            ax[i] = i;
    }
    if (nsp < 0) {
        nsp = nst;
        for (int i = 0; i < nst; i++)
            sp[i] = 1;
    }
    if (nax != nst || nsp != nst || nst > x->rank)
        FAIL(ITS_EMODEL, "starts, ends, axes and steps lengths differ");
    *out = *x;
    for (int d = 0; d < x->rank; d++) {
        p->start[d] = 0;
        p->step[d] = 1;
    }
    char seen[ITS_MAX_DIMS] = {0};
    for (int i = 0; i < nst; i++) {
        int64_t a = ax[i] < 0 ? ax[i] + x->rank : ax[i];
        if (a < 0 || a >= x->rank || seen[a])
            FAIL(ITS_EMODEL, "axis %lld out of range or repeated", (long long)ax[i]);
        seen[a] = 1;
        int64_t dim = x->dims[a], s = st[i], e = en[i], step = sp[i];
        if (step == 0)
            FAIL(ITS_EMODEL, "step 0");
        if (s < 0)
            s += dim;
        if (e < 0)
            e += dim;
        int64_t cnt;
        if (step > 0) {
            s = s < 0 ? 0 : s > dim ? dim : s;
            e = e < 0 ? 0 : e > dim ? dim : e;
            cnt = e > s ? (e - s + step - 1) / step : 0;
        } else {
            s = s < 0 ? -1 : s > dim - 1 ? dim - 1 : s;
            e = e < -1 ? -1 : e > dim - 1 ? dim - 1 : e;
            cnt = s > e ? (s - e + (-step) - 1) / (-step) : 0;
        }
        p->start[a] = s;
        p->step[a] = step;
        out->dims[a] = cnt;
    }
    return 0;
}

int its__split_params(const its_graph *g, const its_ir_node *n, const its_shape *x, int *axis,
                      int64_t *sizes, char *err, size_t errlen)
{
    int64_t a = its__attr_i(n, "axis", 0);
    if (a < 0)
        a += x->rank;
    if (a < 0 || a >= x->rank)
        FAIL(ITS_EMODEL, "axis out of range");
    *axis = (int)a;
    int no = n->n_out;
    int ns = -1;
    if (n->n_in > 1 && n->in[1] >= 0) {
        ns = const_ints(g, n->in[1], sizes, no);
        if (ns < 0)
            FAIL(ITS_EUNSUPPORTED, "split must be a constant with one value per output");
    } else if (its__attr(n, "split")) {
        ns = ints_attr(n, "split", sizes, no);
        if (ns < 0)
            FAIL(ITS_EMODEL, "split attribute has more values than outputs");
    }
    if (ns >= 0) {
        if (ns != no)
            FAIL(ITS_EMODEL, "split has %d values for %d outputs", ns, no);
        int64_t tot = 0;
        for (int i = 0; i < no; i++) {
            if (sizes[i] < 0)
                FAIL(ITS_EMODEL, "negative split");
            tot += sizes[i];
        }
        if (tot != x->dims[a])
            FAIL(ITS_EMODEL, "split sizes sum to %lld, axis has %lld", (long long)tot,
                 (long long)x->dims[a]);
    } else {
        if (x->dims[a] % no != 0)
            FAIL(ITS_EMODEL, "axis of %lld does not split in %d equal parts", (long long)x->dims[a],
                 no);
        for (int i = 0; i < no; i++)
            sizes[i] = x->dims[a] / no;
    }
    return 0;
}

int its__softmax_params(const its_graph *g, const its_ir_node *n, const its_shape *x,
                        int64_t *outer, int64_t *dim, int64_t *inner, char *err, size_t errlen)
{
    int64_t a = its__attr_i(n, "axis", g->opset < 13 ? 1 : -1);
    if (a < 0)
        a += x->rank;
    if (a < 0 || a >= x->rank)
        FAIL(ITS_EMODEL, "axis out of range");
    int64_t o = 1, d = 1, in = 1;
    for (int i = 0; i < x->rank; i++) {
        if (i < a)
            o *= x->dims[i];
        else if (i == a)
            d *= x->dims[i];
        else
            in *= x->dims[i];
    }
    if (g->opset < 13) { /* coerced to 2-D: [prod(<a), prod(>=a)] */
        d *= in;
        in = 1;
    }
    *outer = o;
    *dim = d;
    *inner = in;
    return 0;
}

int its__transpose_perm(const its_ir_node *n, int rank, int *perm, char *err, size_t errlen)
{
    int64_t v[ITS_MAX_DIMS];
    int np = ints_attr(n, "perm", v, ITS_MAX_DIMS);
    if (np < 0) {
        for (int i = 0; i < rank; i++)
            perm[i] = rank - 1 - i;
        return 0;
    }
    if (np != rank)
        FAIL(ITS_EMODEL, "perm has %d values for rank %d", np, rank);
    char seen[ITS_MAX_DIMS] = {0};
    for (int i = 0; i < rank; i++) {
        if (v[i] < 0 || v[i] >= rank || seen[v[i]])
            FAIL(ITS_EMODEL, "perm is not a permutation");
        seen[v[i]] = 1;
        perm[i] = (int)v[i];
    }
    return 0;
}

int its__concat_axis(const its_ir_node *n, int rank, int *axis, char *err, size_t errlen)
{
    const its_attr *at = its__attr(n, "axis");
    if (!at)
        FAIL(ITS_EMODEL, "axis is required");
    int64_t a = at->i < 0 ? at->i + rank : at->i;
    if (a < 0 || a >= rank)
        FAIL(ITS_EMODEL, "axis %lld out of range", (long long)at->i);
    *axis = (int)a;
    return 0;
}

int its__quant_axis(const its_graph *g, const its_ir_node *n, const its_shape *x,
                    const its_shape *scale, int *axis, char *err, size_t errlen)
{
    (void)g;
    int64_t ne = its__shape_numel(scale);
    if (scale->rank == 0 || (scale->rank == 1 && ne == 1)) {
        *axis = -1;
        return 0;
    }
    if (scale->rank != 1)
        FAIL(ITS_EMODEL, "scale must be a scalar or 1-D");
    int64_t a = its__attr_i(n, "axis", 1);
    if (a < 0)
        a += x->rank;
    if (a < 0 || a >= x->rank || x->dims[a] != ne)
        FAIL(ITS_EMODEL, "per-axis scale of %lld values does not match axis %lld", (long long)ne,
             (long long)a);
    *axis = (int)a;
    return 0;
}

float its__half_to_float(uint16_t h)
{
    uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 31, m = h & 1023, u;
    if (e == 0) {
        if (m == 0) {
            u = s;
        } else { /* subnormal */
            float f = ldexpf((float)m, -24);
            return s ? -f : f;
        }
    } else if (e == 31) {
        u = s | 0x7f800000u | (m << 13);
    } else {
        u = s | ((e + 112) << 23) | (m << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t its__float_to_half(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    uint16_t s = (uint16_t)((u >> 16) & 0x8000);
    uint32_t a = u & 0x7fffffffu;
    if (a >= 0x7f800000u) /* inf or nan */
        return (uint16_t)(s | 0x7c00 | (a > 0x7f800000u ? 0x200 : 0));
    if (a >= 0x477ff000u) /* rounds to >= 65520: overflow */
        return (uint16_t)(s | 0x7c00);
    if (a < 0x38800000u) { /* subnormal or zero in half */
        float af;
        memcpy(&af, &a, 4);
        float r = nearbyintf(af * 16777216.f); /* units of 2^-24, ties to even */
        return (uint16_t)(s | (uint16_t)r);
    }
    uint32_t mant = a & 0x7fffff, exp = (a >> 23) - 112;
    uint32_t h = (exp << 10) | (mant >> 13);
    uint32_t rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1)))
        h++;
    return (uint16_t)(s | h);
}

static int is_float_like(its_dtype d)
{
    return d == ITS_DT_FLOAT32;
}

static int is_numeric(its_dtype d)
{
    return d == ITS_DT_FLOAT32 || d == ITS_DT_INT32 || d == ITS_DT_INT64 || d == ITS_DT_UINT8 ||
           d == ITS_DT_INT8;
}

/*
 * One node: out_shapes/out_dtypes from inputs. `batch` and `bflag` implement the Reshape
 * rewrite (see ir.h).
 */
static int infer_node(const its_graph *g, const its_ir_node *n, int batch, its_shape *shapes,
                      its_dtype *dts, const char *bflag, char *err, size_t errlen)
{
    const its_shape *x = n->n_in > 0 && n->in[0] >= 0 ? &shapes[n->in[0]] : NULL;
    its_dtype xt = x ? dts[n->in[0]] : (its_dtype)0;
    its_shape os[ITS_IR_MAX_IO];
    its_dtype ot[ITS_IR_MAX_IO];
    int min_in = 1, max_in = 1, nout = 1;
#define IN(k) (n->n_in > (k) && n->in[k] >= 0)
#define SH(k) (&shapes[n->in[k]])
#define DT(k) (dts[n->in[k]])
    switch (n->op) {
    case ITS_OP_CONV:
    case ITS_OP_CONV_INTEGER:
        min_in = 2;
        max_in = n->op == ITS_OP_CONV ? 3 : 4;
        break;
    case ITS_OP_DYNAMIC_QUANTIZE_LINEAR:
        nout = 3;
        break;
    case ITS_OP_QUANTIZE_LINEAR:
    case ITS_OP_DEQUANTIZE_LINEAR:
        min_in = 2;
        max_in = 3;
        break;
    case ITS_OP_MATMUL:
    case ITS_OP_ADD:
    case ITS_OP_SUB:
    case ITS_OP_MUL:
    case ITS_OP_DIV:
        min_in = max_in = 2;
        break;
    case ITS_OP_CONCAT:
        max_in = 4096;
        break;
    case ITS_OP_SPLIT:
        max_in = 2;
        nout = n->n_out;
        break;
    case ITS_OP_SLICE:
        max_in = g->opset < 10 ? 1 : 5;
        min_in = g->opset < 10 ? 1 : 3;
        break;
    case ITS_OP_RESHAPE:
        min_in = max_in = g->opset < 5 ? 1 : 2;
        break;
    case ITS_OP_RESIZE: /* roi is optional from opset 13; scales/sizes checked later */
        max_in = 4;
        min_in = 1;
        break;
    case ITS_OP_MAXPOOL:
        nout = n->n_out;
        break;
    default:
        break;
    }
    if (n->n_in < min_in || n->n_in > max_in)
        FAIL(ITS_EMODEL, "has %d inputs (expects %d to %d)", n->n_in, min_in, max_in);
    if (!x)
        FAIL(ITS_EMODEL, "first input is missing");
    for (int k = 1; k < min_in; k++)
        if (n->in[k] < 0)
            FAIL(ITS_EMODEL, "required input %d is missing", k);
    if (n->op != ITS_OP_SPLIT && n->out[0] < 0)
        FAIL(ITS_EMODEL, "output 0 is missing");
    if (nout < 1 || nout > ITS_IR_MAX_IO || n->n_out < 1 ||
        (n->op != ITS_OP_MAXPOOL && n->n_out != nout))
        FAIL(ITS_EMODEL, "has %d outputs", n->n_out);
    for (int k = 0; k < n->n_in; k++)
        if (n->in[k] >= 0 && dts[n->in[k]] == 0)
            FAIL(ITS_EMODEL, "input %d has no type", k);
    for (int k = 0; k < nout; k++) {
        os[k] = *x;
        ot[k] = xt;
    }
    switch (n->op) {
    case ITS_OP_CONV:
    case ITS_OP_CONV_INTEGER: {
        const its_shape *w = SH(1);
        its_win_params p;
        if (n->op == ITS_OP_CONV && n->q_src) { /* CPU integer conv (ir.h) */
            if ((xt != ITS_DT_UINT8 && xt != ITS_DT_INT8) || DT(1) != ITS_DT_FLOAT32)
                FAIL(ITS_EUNSUPPORTED, "integer conv input types %s/%s", its__dtype_name(xt),
                     its__dtype_name(DT(1)));
        } else if (n->op == ITS_OP_CONV) {
            if (!is_float_like(xt) || DT(1) != xt)
                FAIL(ITS_EUNSUPPORTED, "input types %s/%s (float32 only)", its__dtype_name(xt),
                     its__dtype_name(DT(1)));
        } else {
            if ((xt != ITS_DT_UINT8 && xt != ITS_DT_INT8) ||
                (DT(1) != ITS_DT_UINT8 && DT(1) != ITS_DT_INT8))
                FAIL(ITS_EMODEL, "input types must be 8-bit integers");
        }
        int rc = its__win_params(g, n, x, w, &p, err, errlen);
        if (rc < 0)
            return rc;
        if (n->op == ITS_OP_CONV && IN(2)) {
            if (SH(2)->rank != 1 || SH(2)->dims[0] != p.m || DT(2) != DT(1))
                FAIL(ITS_EMODEL, "bias must be [%lld]", (long long)p.m);
        }
        if (n->op == ITS_OP_CONV_INTEGER) {
            if (IN(2) && (its__shape_numel(SH(2)) != 1 || DT(2) != xt))
                FAIL(ITS_EUNSUPPORTED, "x_zero_point must be a scalar of the input type");
            if (IN(3) && ((its__shape_numel(SH(3)) != 1 && its__shape_numel(SH(3)) != p.m) ||
                          DT(3) != DT(1)))
                FAIL(ITS_EMODEL, "w_zero_point must be a scalar or per output channel");
            ot[0] = ITS_DT_INT32;
        }
        if (n->op == ITS_OP_CONV)
            ot[0] = n->q_dst ? n->q_dst : ITS_DT_FLOAT32;
        os[0].dims[1] = p.m;
        if (p.spatial == 2)
            os[0].dims[2] = p.oh;
        os[0].dims[x->rank - 1] = p.ow;
        break;
    }
    case ITS_OP_MAXPOOL: {
        its_win_params p;
        if (!is_float_like(xt) && xt != ITS_DT_UINT8 && xt != ITS_DT_INT8)
            FAIL(ITS_EUNSUPPORTED, "input type %s", its__dtype_name(xt));
        int rc = its__win_params(g, n, x, NULL, &p, err, errlen);
        if (rc < 0)
            return rc;
        if (p.spatial == 2)
            os[0].dims[2] = p.oh;
        os[0].dims[x->rank - 1] = p.ow;
        break;
    }
    case ITS_OP_DYNAMIC_QUANTIZE_LINEAR:
        if (xt != ITS_DT_FLOAT32)
            FAIL(ITS_EMODEL, "input must be float32");
        ot[0] = ITS_DT_UINT8;
        os[1].rank = os[2].rank = 0;
        ot[1] = ITS_DT_FLOAT32;
        ot[2] = ITS_DT_UINT8;
        break;
    case ITS_OP_QUANTIZE_LINEAR:
    case ITS_OP_DEQUANTIZE_LINEAR: {
        int axis;
        if (DT(1) != ITS_DT_FLOAT32)
            FAIL(ITS_EMODEL, "scale must be float32");
        int rc = its__quant_axis(g, n, x, SH(1), &axis, err, errlen);
        if (rc < 0)
            return rc;
        if (IN(2) && its__shape_numel(SH(2)) != its__shape_numel(SH(1)))
            FAIL(ITS_EMODEL, "zero point and scale sizes differ");
        if (n->op == ITS_OP_QUANTIZE_LINEAR) {
            if (xt != ITS_DT_FLOAT32 && xt != ITS_DT_INT32)
                FAIL(ITS_EMODEL, "input type %s", its__dtype_name(xt));
            ot[0] = IN(2) ? DT(2) : ITS_DT_UINT8;
            if (ot[0] != ITS_DT_UINT8 && ot[0] != ITS_DT_INT8)
                FAIL(ITS_EUNSUPPORTED, "output type %s", its__dtype_name(ot[0]));
        } else {
            if (xt != ITS_DT_UINT8 && xt != ITS_DT_INT8 && xt != ITS_DT_INT32)
                FAIL(ITS_EMODEL, "input type %s", its__dtype_name(xt));
            if (IN(2) && DT(2) != xt)
                FAIL(ITS_EMODEL, "zero point type differs from input");
            ot[0] = ITS_DT_FLOAT32;
        }
        break;
    }
    case ITS_OP_MATMUL: {
        its_shape a = *x, b = *SH(1);
        if (!is_float_like(xt) || DT(1) != xt)
            FAIL(ITS_EUNSUPPORTED, "types %s/%s (float32 only)", its__dtype_name(xt),
                 its__dtype_name(DT(1)));
        if (a.rank < 1 || b.rank < 1)
            FAIL(ITS_EMODEL, "scalar operand");
        int a1 = a.rank == 1, b1 = b.rank == 1;
        if (a1) {
            a.rank = 2;
            a.dims[1] = a.dims[0];
            a.dims[0] = 1;
        }
        if (b1) {
            b.rank = 2;
            b.dims[1] = 1;
        }
        if (a.dims[a.rank - 1] != b.dims[b.rank - 2])
            FAIL(ITS_EMODEL, "inner dimensions %lld and %lld differ", (long long)a.dims[a.rank - 1],
                 (long long)b.dims[b.rank - 2]);
        its_shape ba = a, bb = b, bo;
        ba.rank -= 2;
        bb.rank -= 2;
        if (its__broadcast(&ba, &bb, &bo) < 0)
            FAIL(ITS_EMODEL, "batch dimensions do not broadcast");
        os[0] = bo;
        if (!a1)
            os[0].dims[os[0].rank++] = a.dims[a.rank - 2];
        if (!b1)
            os[0].dims[os[0].rank++] = b.dims[b.rank - 1];
        break;
    }
    case ITS_OP_ADD:
    case ITS_OP_SUB:
    case ITS_OP_MUL:
    case ITS_OP_DIV:
        if (!is_numeric(xt) || DT(1) != xt)
            FAIL(ITS_EUNSUPPORTED, "types %s/%s", its__dtype_name(xt), its__dtype_name(DT(1)));
        if (its__broadcast(x, SH(1), &os[0]) < 0)
            FAIL(ITS_EMODEL, "shapes do not broadcast");
        break;
    case ITS_OP_SIGMOID:
    case ITS_OP_LEAKY_RELU:
    case ITS_OP_RELU:
    case ITS_OP_SILU:
        if (!is_float_like(xt))
            FAIL(ITS_EUNSUPPORTED, "type %s (float32 only)", its__dtype_name(xt));
        break;
    case ITS_OP_SOFTMAX: {
        int64_t a, b, c;
        if (!is_float_like(xt))
            FAIL(ITS_EUNSUPPORTED, "type %s (float32 only)", its__dtype_name(xt));
        int rc = its__softmax_params(g, n, x, &a, &b, &c, err, errlen);
        if (rc < 0)
            return rc;
        break;
    }
    case ITS_OP_CONCAT: {
        int axis;
        int rc = its__concat_axis(n, x->rank, &axis, err, errlen);
        if (rc < 0)
            return rc;
        int64_t tot = 0;
        for (int k = 0; k < n->n_in; k++) {
            if (!IN(k))
                FAIL(ITS_EMODEL, "input %d is missing", k);
            const its_shape *s = SH(k);
            if (s->rank != x->rank || DT(k) != xt)
                FAIL(ITS_EMODEL, "input %d has another rank or type", k);
            for (int d = 0; d < s->rank; d++)
                if (d != axis && s->dims[d] != x->dims[d])
                    FAIL(ITS_EMODEL, "input %d: dimension %d is %lld, expected %lld", k, d,
                         (long long)s->dims[d], (long long)x->dims[d]);
            tot += s->dims[axis];
        }
        os[0].dims[axis] = tot;
        break;
    }
    case ITS_OP_SPLIT: {
        int axis;
        int64_t sizes[ITS_IR_MAX_IO];
        int rc = its__split_params(g, n, x, &axis, sizes, err, errlen);
        if (rc < 0)
            return rc;
        for (int k = 0; k < nout; k++)
            os[k].dims[axis] = sizes[k];
        break;
    }
    case ITS_OP_SLICE: {
        its_slice_params p;
        int rc = its__slice_params(g, n, x, &p, &os[0], err, errlen);
        if (rc < 0)
            return rc;
        break;
    }
    case ITS_OP_RESHAPE: {
        int64_t v[ITS_MAX_DIMS];
        int nv = const_ints(g, n->in[1], v, ITS_MAX_DIMS);
        if (nv < 0)
            FAIL(ITS_EUNSUPPORTED, "shape must be a constant int64 tensor of rank <= %d",
                 ITS_MAX_DIMS);
        int allowzero = (int)its__attr_i(n, "allowzero", 0);
        if (batch > 1 && nv > 0 && v[0] == 1 && x->rank > 0 && x->dims[0] == batch &&
            bflag[n->in[0]])
            v[0] = batch;
        int64_t known = 1, in_n = its__shape_numel(x);
        int neg = -1;
        os[0].rank = nv;
        for (int i = 0; i < nv; i++) {
            int64_t d = v[i];
            if (d == 0 && !allowzero) {
                if (i >= x->rank)
                    FAIL(ITS_EMODEL, "0 at position %d copies a missing input dimension", i);
                d = x->dims[i];
            }
            if (d == -1) {
                if (neg >= 0)
                    FAIL(ITS_EMODEL, "more than one -1 in the shape");
                neg = i;
                d = 1;
            } else if (d < 0) {
                FAIL(ITS_EMODEL, "shape value %lld", (long long)d);
            }
            os[0].dims[i] = d;
            if (i != neg) {
                if (d && known > ITS_MAX_NUMEL / d)
                    FAIL(ITS_EMODEL, "shape too large");
                known *= d;
            }
        }
        if (neg >= 0) {
            if (known == 0 || in_n % known != 0)
                FAIL(ITS_EMODEL, "cannot infer -1 for %lld elements", (long long)in_n);
            os[0].dims[neg] = in_n / known;
        } else if (known != in_n) {
            FAIL(ITS_EMODEL, "shape has %lld elements, input has %lld", (long long)known,
                 (long long)in_n);
        }
        break;
    }
    case ITS_OP_TRANSPOSE: {
        int perm[ITS_MAX_DIMS];
        int rc = its__transpose_perm(n, x->rank, perm, err, errlen);
        if (rc < 0)
            return rc;
        for (int i = 0; i < x->rank; i++)
            os[0].dims[i] = x->dims[perm[i]];
        break;
    }
    case ITS_OP_RESIZE: {
        its_resize_params p;
        if (!is_float_like(xt))
            FAIL(ITS_EUNSUPPORTED, "type %s (float32 only)", its__dtype_name(xt));
        int rc = its__resize_params(g, n, x, batch, &p, &os[0], err, errlen);
        if (rc < 0)
            return rc;
        break;
    }
    case ITS_OP_CAST: {
        int64_t to = its__attr_i(n, "to", 0);
        if (its__dtype_size((its_dtype)to) == 0)
            FAIL(ITS_EUNSUPPORTED, "cast to type %lld", (long long)to);
        ot[0] = (its_dtype)to;
        break;
    }
    case ITS_OP_IDENTITY:
        break;
    case ITS_OP_LAYOUT: /* logical shape unchanged; only the memory order differs */
        if (x->rank != 4 || (xt != ITS_DT_FLOAT32 && xt != ITS_DT_UINT8 && xt != ITS_DT_INT8))
            FAIL(ITS_EINTERNAL, "layout change of a non 4-D float or 8-bit tensor");
        break;
    default:
        FAIL(ITS_EUNSUPPORTED, "no shape inference");
    }
#undef IN
#undef SH
#undef DT
    for (int k = 0; k < n->n_out; k++) {
        int t = n->out[k];
        if (t < 0)
            continue;
        if (k >= nout)
            FAIL(ITS_EUNSUPPORTED, "output %d is not supported", k);
        int64_t ne = 1;
        for (int d = 0; d < os[k].rank; d++) {
            if (os[k].dims[d] < 0 || (os[k].dims[d] && ne > ITS_MAX_NUMEL / os[k].dims[d]))
                FAIL(ITS_EMODEL, "output %d is absurdly large", k);
            ne *= os[k].dims[d];
        }
        shapes[t] = os[k];
        dts[t] = ot[k];
    }
    return 0;
}

static int infer(const its_graph *g, int batch, its_shape *shapes, its_dtype *dts, char *bflag,
                 char *err, size_t errlen)
{
    for (int t = 0; t < g->n_tensors; t++) {
        const its_ir_tensor *T = &g->tensors[t];
        bflag[t] = 0;
        if (T->kind == ITS_TK_CONST) {
            shapes[t] = T->shape;
            dts[t] = T->dtype;
        } else if (T->kind == ITS_TK_INPUT) {
            shapes[t] = T->shape;
            dts[t] = T->dtype;
            if (T->shape.rank > 0 && (T->shape.dims[0] < 0 || T->batched)) {
                shapes[t].dims[0] = batch;
                bflag[t] = 1;
            }
        } else {
            shapes[t].rank = 0;
            dts[t] = (its_dtype)0;
        }
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const its_ir_node *n = &g->nodes[i];
        if (n->op == ITS_OP_NONE)
            continue;
        int rc = infer_node(g, n, batch, shapes, dts, bflag, err, errlen);
        if (rc < 0)
            return rc;
        char b = 0;
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] >= 0 && bflag[n->in[k]])
                b = 1;
        for (int k = 0; k < n->n_out; k++)
            if (n->out[k] >= 0)
                bflag[n->out[k]] = b;
        if (n->op == ITS_OP_CONV && n->sum >= 0) {
            const its_shape *s = &shapes[n->sum], *o = &shapes[n->out[0]];
            if (s->rank != o->rank || its__shape_numel(s) != its__shape_numel(o))
                FAIL(ITS_EINTERNAL, "fused sum shape mismatch");
        }
    }
    return 0;
}

int its__infer_shapes(const its_graph *g, int batch, its_shape *shapes, char *err, size_t errlen)
{
    int nt = g->n_tensors;
    its_dtype *dts = its_malloc(ITS_MOD_ENGINE, (size_t)(nt + 1) * sizeof *dts);
    char *bflag = its_malloc(ITS_MOD_ENGINE, (size_t)(nt + 1));
    int rc = ITS_ENOMEM;
    if (dts && bflag)
        rc = infer(g, batch, shapes, dts, bflag, err, errlen);
    its_free(dts);
    its_free(bflag);
    return rc;
}

int its__graph_infer(its_graph *g, char *err, size_t errlen)
{
    int nt = g->n_tensors;
    /* Graph inputs with a static leading 1 of rank >= 3 are batch-1 exports: treat them as
     * batched (the Reshape rewrite makes batch N work). */
    for (int k = 0; k < g->n_inputs; k++) {
        its_ir_tensor *T = &g->tensors[g->inputs[k]];
        T->batched = T->shape.rank >= 3 && (T->shape.dims[0] < 0 || T->shape.dims[0] == 1);
    }
    its_shape *shapes = its_malloc(ITS_MOD_ENGINE, (size_t)(nt + 1) * sizeof *shapes);
    its_dtype *dts = its_malloc(ITS_MOD_ENGINE, (size_t)(nt + 1) * sizeof *dts);
    char *bflag = its_malloc(ITS_MOD_ENGINE, (size_t)(nt + 1));
    int rc = ITS_ENOMEM;
    if (shapes && dts && bflag) {
        rc = infer(g, 1, shapes, dts, bflag, err, errlen);
        if (rc == 0) {
            for (int t = 0; t < nt; t++) {
                its_ir_tensor *T = &g->tensors[t];
                if (T->kind == ITS_TK_ACT) {
                    T->shape = shapes[t];
                    T->dtype = dts[t];
                    T->batched = bflag[t];
                }
            }
        }
    }
    its_free(shapes);
    its_free(dts);
    its_free(bflag);
    return rc;
}

/* ---- running a model at another input size (its__graph_set_input_hw) ----
 *
 * Exports bake the input's H x W into constants: Reshape targets (the attention block's
 * [1, 2, 64, 400], the head's [1, 64, 6400] and [1, 4, 16, 8400]) and, for Ultralytics heads,
 * the anchor centres [1, 2, A] and per-anchor strides [1, A]. The pass re-derives each of
 * them for the new size and fails, naming the node, wherever it cannot do so unambiguously. */

/* Anchor grids: levels of stride 8, 16, 32 over an h x w input, row-major per level. */
static int64_t anchor_count(int64_t h, int64_t w)
{
    int64_t a = 0;
    for (int s = 8; s <= 32; s *= 2)
        a += (h / s) * (w / s);
    return a;
}

/* kind 1: centres (x + 0.5 then y + 0.5 rows); kind 2: strides. */
static void anchor_fill(float *v, int kind, int64_t h, int64_t w)
{
    int64_t a = anchor_count(h, w), k = 0;
    for (int s = 8; s <= 32; s *= 2)
        for (int64_t y = 0; y < h / s; y++)
            for (int64_t x = 0; x < w / s; x++, k++) {
                if (kind == 1) {
                    v[k] = (float)x + 0.5f;
                    v[a + k] = (float)y + 0.5f;
                } else {
                    v[k] = (float)s;
                }
            }
}

/* 1 (centres) or 2 (strides) when constant t holds an Ultralytics anchor table for h x w. */
static int anchor_kind(const its_ir_tensor *T, int64_t h, int64_t w)
{
    int64_t a = anchor_count(h, w), ne = its__shape_numel(&T->shape);
    if (T->kind != ITS_TK_CONST || T->dtype != ITS_DT_FLOAT32 || !T->data || a <= 0 ||
        T->shape.rank < 1 || T->shape.dims[T->shape.rank - 1] != a || (ne != a && ne != 2 * a))
        return 0;
    int kind = ne == 2 * a ? 1 : 2;
    float *ref = its_malloc(ITS_MOD_ENGINE, (size_t)ne * sizeof *ref);
    if (!ref)
        return 0;
    anchor_fill(ref, kind, h, w);
    int same = memcmp(ref, T->data, (size_t)ne * sizeof *ref) == 0;
    its_free(ref);
    return same ? kind : 0;
}

/* The new target of a Reshape whose input went from `oi` to `ni` (old output `oo`): dims are
 * matched group by group (equal products); a group whose input is unchanged keeps its target,
 * a merged group takes the new product, and a split group takes the spatial dims of the
 * latest 4-D tensor that had the same split before. */
static int reshape_remap(const its_graph *g, const its_shape *shapes, int upto, const its_shape *oi,
                         const its_shape *ni, const its_shape *oo, int64_t *nv)
{
    int i = 0, j = 0;
    while (i < oi->rank || j < oo->rank) {
        int a = i, c = j;
        int64_t pi = i < oi->rank ? oi->dims[i++] : 1, po = j < oo->rank ? oo->dims[j++] : 1;
        while (pi != po) {
            if (pi < po && i < oi->rank)
                pi *= oi->dims[i++];
            else if (po < pi && j < oo->rank)
                po *= oo->dims[j++];
            else
                return -1;
        }
        int64_t np = 1;
        int same = 1;
        for (int k = a; k < i; k++) {
            np *= ni->dims[k];
            same &= ni->dims[k] == oi->dims[k];
        }
        int non1 = 0, at = c;
        for (int k = c; k < j; k++)
            if (oo->dims[k] != 1) {
                non1++;
                at = k;
            }
        if (same) {
            for (int k = c; k < j; k++)
                nv[k] = oo->dims[k];
        } else if (non1 <= 1) {
            for (int k = c; k < j; k++)
                nv[k] = k == at ? np : 1;
        } else if (non1 == 2 && j - c == 2) {
            /* split of a flattened H*W back into H, W */
            int found = 0;
            for (int t = upto - 1; t >= 0 && !found; t--) {
                int o = g->nodes[t].out[0];
                if (o < 0 || g->nodes[t].op == ITS_OP_NONE)
                    continue;
                const its_ir_tensor *T = &g->tensors[o];
                if (T->shape.rank != 4 || shapes[o].rank != 4)
                    continue;
                if (T->shape.dims[2] == oo->dims[c] && T->shape.dims[3] == oo->dims[c + 1] &&
                    shapes[o].dims[2] * shapes[o].dims[3] == np) {
                    nv[c] = shapes[o].dims[2];
                    nv[c + 1] = shapes[o].dims[3];
                    found = 1;
                }
            }
            if (!found)
                return -1;
        } else {
            return -1;
        }
    }
    return j;
}

/* Replace a constant's data (and shape) with a private copy of `data`. */
static int const_replace(its_graph *g, int t, const void *data, size_t bytes, const its_shape *sh)
{
    its_ir_tensor *T = &g->tensors[t];
    void *p = its_malloc(ITS_MOD_ENGINE, bytes ? bytes : 1);
    if (!p)
        return ITS_ENOMEM;
    memcpy(p, data, bytes);
    if (!(T->flags & ITS_TF_BORROWED))
        its_free(T->data);
    T->flags &= ~ITS_TF_BORROWED;
    T->data = p;
    T->shape = *sh;
    return 0;
}

int its__graph_set_input_hw(its_graph *g, int64_t h, int64_t w, char *err, size_t errlen)
{
    if (g->n_inputs != 1 || g->tensors[g->inputs[0]].shape.rank != 4) {
        snprintf(err, errlen, "input size: the model needs one [N, C, H, W] input");
        return ITS_EUNSUPPORTED;
    }
    its_ir_tensor *in = &g->tensors[g->inputs[0]];
    int64_t oh = in->shape.dims[2], ow = in->shape.dims[3];
    if (h < 32 || w < 32 || h > 4096 || w > 4096 || h % 32 || w % 32) {
        snprintf(err, errlen,
                 "input size %lldx%lld: width and height must be multiples of 32 in "
                 "32..4096",
                 (long long)w, (long long)h);
        return ITS_EINVAL;
    }
    if (oh == h && ow == w)
        return 0;
    /* room for one new constant per node (a shared Reshape target gets split) */
    int nt = g->n_tensors, cap = g->n_tensors + g->n_nodes + 1;
    its_shape *shapes = its_calloc(ITS_MOD_ENGINE, (size_t)cap, sizeof *shapes);
    its_dtype *dts = its_calloc(ITS_MOD_ENGINE, (size_t)cap, sizeof *dts);
    char *bflag = its_calloc(ITS_MOD_ENGINE, (size_t)cap, 1);
    int rc = shapes && dts && bflag ? 0 : ITS_ENOMEM;
    /* anchor tables first: they are constants, found by value */
    for (int t = 0; rc == 0 && t < nt; t++) {
        its_ir_tensor *T = &g->tensors[t];
        int kind = anchor_kind(T, oh, ow);
        if (!kind)
            continue;
        int64_t a = anchor_count(h, w);
        its_shape sh = T->shape;
        sh.dims[sh.rank - 1] = a;
        size_t bytes = (size_t)(kind == 1 ? 2 * a : a) * sizeof(float);
        float *v = its_malloc(ITS_MOD_ENGINE, bytes);
        if (!v) {
            rc = ITS_ENOMEM;
            break;
        }
        anchor_fill(v, kind, h, w);
        rc = const_replace(g, t, v, bytes, &sh);
        its_free(v);
    }
    for (int t = 0; rc == 0 && t < nt; t++) {
        const its_ir_tensor *T = &g->tensors[t];
        shapes[t] = T->kind == ITS_TK_ACT ? (its_shape){0} : T->shape;
        dts[t] = T->kind == ITS_TK_ACT ? (its_dtype)0 : T->dtype;
    }
    if (rc == 0) {
        shapes[g->inputs[0]].dims[2] = h;
        shapes[g->inputs[0]].dims[3] = w;
    }
    for (int i = 0; rc == 0 && i < g->n_nodes; i++) {
        its_ir_node *n = &g->nodes[i];
        if (n->op == ITS_OP_NONE)
            continue;
        if (n->op == ITS_OP_RESHAPE && n->n_in == 2 && n->in[0] >= 0 && n->in[1] >= 0 &&
            n->out[0] >= 0) {
            const its_shape *oi = &g->tensors[n->in[0]].shape, *ni = &shapes[n->in[0]];
            if (memcmp(oi->dims, ni->dims, (size_t)oi->rank * sizeof oi->dims[0]) != 0) {
                int64_t nv[ITS_MAX_DIMS];
                const its_shape *oo = &g->tensors[n->out[0]].shape;
                int r = reshape_remap(g, shapes, i, oi, ni, oo, nv);
                if (r != oo->rank || g->tensors[n->in[1]].kind != ITS_TK_CONST) {
                    rc = fail(err, errlen, n, ITS_EUNSUPPORTED,
                              "cannot re-derive its target shape for input size %lldx%lld",
                              (long long)w, (long long)h);
                    break;
                }
                its_shape sh = {.rank = 1, .dims = {r}};
                int ct = n->in[1];
                if (g->tensors[ct].n_consumers > 1) { /* shared: give this node its own */
                    char name[160];
                    snprintf(name, sizeof name, "%s_hw%d", g->tensors[ct].name, i);
                    if ((ct = its__graph_add_tensor(g, name, ITS_DT_INT64, ITS_TK_CONST)) < 0) {
                        rc = ct;
                        break;
                    }
                    n = &g->nodes[i];
                    g->tensors[n->in[1]].n_consumers--;
                    g->tensors[ct].n_consumers = 1;
                    g->tensors[ct].producer = -1;
                    n->in[1] = ct;
                }
                if ((rc = const_replace(g, ct, nv, (size_t)r * sizeof nv[0], &sh)) < 0)
                    break;
                g->tensors[ct].dtype = ITS_DT_INT64;
                shapes[ct] = sh;
                dts[ct] = ITS_DT_INT64;
            }
        }
        rc = infer_node(g, n, 1, shapes, dts, bflag, err, errlen);
        if (rc < 0)
            break;
        if (n->op == ITS_OP_SLICE || n->op == ITS_OP_SPLIT || n->op == ITS_OP_RESIZE) {
            /* their sizes come from constants: every output must scale with the input, axis
             * by axis (a Focus stem's x[..., ::2, ::2] does; a fixed crop or fixed Resize
             * `sizes` baked for the exported input does not) */
            const its_shape *oi = &g->tensors[n->in[0]].shape, *ni = &shapes[n->in[0]];
            for (int k = 0; k < n->n_out && rc == 0; k++) {
                int o = n->out[k];
                if (o < 0)
                    continue;
                const its_shape *oo = &g->tensors[o].shape, *no = &shapes[o];
                for (int d = 0; d < ni->rank && rc == 0; d++)
                    if (no->dims[d] * oi->dims[d] != ni->dims[d] * oo->dims[d])
                        rc =
                            fail(err, errlen, n, ITS_EUNSUPPORTED,
                                 "output %d axis %d has a size baked for the exported input", k, d);
            }
            if (rc < 0)
                break;
        }
    }
    if (rc == 0) {
        in = &g->tensors[g->inputs[0]];
        in->shape.dims[2] = h;
        in->shape.dims[3] = w;
        rc = its__graph_infer(g, err, errlen);
    }
    its_free(shapes);
    its_free(dts);
    its_free(bflag);
    return rc;
}

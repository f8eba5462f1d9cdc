/*
 * cuda_plan.c - planning of the cuda backend (cuda_internal.h): for one batch size, a layout
 * and a buffer per tensor, the conversion steps between layouts, Concat elimination (producers
 * writing straight into their slice of a Concat's output), and first-fit arena offsets from
 * the buffers' liveness. The per-op planning functions are in cuda_ops.c.
 */
#include <stdlib.h>
#include <string.h>

#include "its/alloc.h"
#include "its/error.h"

#include "cuda_internal.h"

int its__cuda_new_buf(plan *p, size_t bytes)
{
    if (its__cuda_grow((void **)&p->bufs, &p->cap_bufs, p->n_bufs + 1, sizeof(buf_t)) < 0)
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

int its__cuda_emit(plan *p, const step *s)
{
    if (its__cuda_grow((void **)&p->steps, &p->cap_steps, p->n_steps + 1, sizeof(step)) < 0)
        return ITS_ENOMEM;
    int at = p->n_steps++;
    p->steps[at] = *s;
    touch(p, &s->out, at);
    touch(p, &s->a, at);
    touch(p, &s->b, at);
    return 0;
}

/* Operand for tensor t in layout lay (fp16), converting once if needed; with `packed`, an
 * NHWC channel-slice view is first copied to a packed tensor. */
int its__cuda_ensure(cuda_ctx *c, const its_graph *g, plan *p, int t, int lay, int packed,
                     opnd *out)
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
        int b = its__cuda_new_buf(p, tbytes(s, 2));
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
        int rc = its__cuda_emit(p, &st);
        if (rc < 0)
            return rc;
        *conv = b;
    }
    *out = bufop(*conv);
    return 0;
}

/* Broadcast strides of operand t (read in layout lay) against output dims (rank r). */
void its__cuda_bcast_strides(const plan *p, int t, int lay, int r, const int64_t *odims,
                             int64_t *st)
{
    const its_shape *s = &p->shapes[t];
    int64_t own[ITS_MAX_DIMS];
    tstrides(p, t, lay, own);
    for (int d = 0; d < r; d++) {
        int sd = d - (r - s->rank);
        st[d] = (sd < 0 || s->dims[sd] == 1 || odims[d] == 1) ? 0 : own[sd];
    }
}

int its__cuda_out_layout_ew(const its_graph *g, const plan *p, const its_ir_node *n, int o)
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

/* Read an int64 constant vector (ONNX shape/index inputs). */
int its__cuda_const_ints(const its_graph *g, int t, int64_t *v, int max)
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

/* The buffer of Concat output `cat`, created by the first producer writing into its slice. */
static int cat_buf(plan *p, int cat)
{
    if (p->tbuf[cat] < 0) {
        int b = its__cuda_new_buf(p, tbytes(&p->shapes[cat], 2));
        if (b < 0)
            return b;
        p->tbuf[cat] = b;
        p->tlay[cat] = LAY_NHWC;
    }
    return p->tbuf[cat];
}

/* Place NHWC output tensor o of a producer: its own buffer, or (cat >= 0) its slice of that
 * Concat's output; *out receives the operand the producer writes (buffer and offset). */
int its__cuda_nhwc_output(plan *p, int o, int cat, opnd *out)
{
    int b = cat >= 0 ? cat_buf(p, cat) : its__cuda_new_buf(p, tbytes(&p->shapes[o], 2));
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

static int no_views(void)
{
    static int v = -1;
    if (v < 0)
        v = getenv("ITS_CUDA_NO_VIEWS") != NULL;
    return v;
}

/* Can the outputs of Split node n (input t, axis ax) be channel-slice views of t? Slices must
 * start on 16-byte boundaries (cuDNN's alignment, our 16-byte kernels). */
int its__cuda_split_views(const its_ir_node *n, const plan *p, int t, int64_t ax)
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

int its__cuda_plan(cuda_ctx *c, const its_graph *g, plan *p, char *err, size_t errlen)
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
        int b = its__cuda_new_buf(p, p->in_bytes[k]);
        if (b < 0)
            return b;
        p->bufs[b].first = 0;
        p->tbuf[t] = b;
        p->tlay[t] = LAY_F32;
        p->in_buf[k] = b;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        int rc = its__cuda_plan_node(c, g, p, i, err, errlen);
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
        int rc = its__cuda_ensure(c, g, p, t, LAY_PLAIN, 0, &a);
        if (rc < 0)
            FAIL(rc, "cuda: graph output '%s': layout", g->tensors[t].name);
        p->out_bytes[k] = tbytes(s, 4);
        int b = its__cuda_new_buf(p, p->out_bytes[k]);
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
        if ((rc = its__cuda_emit(p, &st)) < 0)
            return rc;
        p->out_buf[k] = b;
    }
    for (int k = 0; k < g->n_outputs; k++)
        p->bufs[p->out_buf[k]].last = p->n_steps;
    return place_buffers(p);
}

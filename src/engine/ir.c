/*
 * ir.c - graph containers: tensors, nodes, attributes, topological order, compaction.
 */
#include <stdio.h>
#include <string.h>

#include "its/alloc.h"
#include "its/error.h"

#include "ir.h"

static const char *const op_names[] = {
#define ITS__OP_NAME(id, name) name,
    ITS_OP_TABLE(ITS__OP_NAME)
#undef ITS__OP_NAME
};

const char *its__op_name(its_op op)
{
    if ((int)op < 0 || op >= ITS_OP_COUNT)
        return "?";
    return op_names[op];
}

its_op its__op_from_name(const char *name)
{
    for (int i = 1; i < ITS_OP_COUNT; i++)
        if (name && op_names[i][0] != '(' && strcmp(op_names[i], name) == 0)
            return (its_op)i;
    return ITS_OP_NONE;
}

size_t its__dtype_size(its_dtype dt)
{
    switch (dt) {
    case ITS_DT_FLOAT32:
    case ITS_DT_INT32:
        return 4;
    case ITS_DT_UINT8:
    case ITS_DT_INT8:
    case ITS_DT_BOOL:
        return 1;
    case ITS_DT_INT64:
        return 8;
    case ITS_DT_FLOAT16:
        return 2;
    }
    return 0;
}

const char *its__dtype_name(its_dtype dt)
{
    switch (dt) {
    case ITS_DT_FLOAT32:
        return "float32";
    case ITS_DT_INT32:
        return "int32";
    case ITS_DT_UINT8:
        return "uint8";
    case ITS_DT_INT8:
        return "int8";
    case ITS_DT_BOOL:
        return "bool";
    case ITS_DT_INT64:
        return "int64";
    case ITS_DT_FLOAT16:
        return "float16";
    }
    return "unsupported";
}

int64_t its__shape_numel(const its_shape *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++)
        n *= s->dims[i];
    return n;
}

int its__graph_init(its_graph *g)
{
    memset(g, 0, sizeof *g);
    return 0;
}

static void free_attr(its_attr *a)
{
    its_free(a->name);
    its_free(a->s);
    its_free(a->ints);
    its_free(a->floats);
}

static void free_node(its_ir_node *n)
{
    its_free(n->name);
    its_free(n->in);
    its_free(n->out);
    for (int i = 0; i < n->n_attrs; i++)
        free_attr(&n->attrs[i]);
    its_free(n->attrs);
}

void its__graph_free(its_graph *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->n_tensors; i++) {
        its_free(g->tensors[i].name);
        if (!(g->tensors[i].flags & ITS_TF_BORROWED))
            its_free(g->tensors[i].data);
    }
    its_free(g->tensors);
    for (int i = 0; i < g->n_nodes; i++)
        free_node(&g->nodes[i]);
    its_free(g->nodes);
    its_free(g->inputs);
    its_free(g->outputs);
    for (int i = 0; i < g->n_meta; i++) {
        its_free(g->meta[i].key);
        its_free(g->meta[i].value);
    }
    its_free(g->meta);
    memset(g, 0, sizeof *g);
}

int its__graph_add_tensor(its_graph *g, const char *name, its_dtype dt, int kind)
{
    if (g->n_tensors == g->cap_tensors) {
        int cap = g->cap_tensors ? g->cap_tensors * 2 : 64;
        its_ir_tensor *t = its_realloc(ITS_MOD_ENGINE, g->tensors, (size_t)cap * sizeof *t);
        if (!t)
            return ITS_ENOMEM;
        g->tensors = t;
        g->cap_tensors = cap;
    }
    its_ir_tensor *t = &g->tensors[g->n_tensors];
    memset(t, 0, sizeof *t);
    t->name = its_strdup(ITS_MOD_ENGINE, name ? name : "");
    if (!t->name)
        return ITS_ENOMEM;
    t->dtype = dt;
    t->kind = kind;
    t->producer = -1;
    return g->n_tensors++;
}

int its__graph_add_node(its_graph *g, const char *name, its_op op, int n_in, const int *in,
                        int n_out, const int *out)
{
    if (g->n_nodes == g->cap_nodes) {
        int cap = g->cap_nodes ? g->cap_nodes * 2 : 64;
        its_ir_node *n = its_realloc(ITS_MOD_ENGINE, g->nodes, (size_t)cap * sizeof *n);
        if (!n)
            return ITS_ENOMEM;
        g->nodes = n;
        g->cap_nodes = cap;
    }
    its_ir_node *n = &g->nodes[g->n_nodes];
    memset(n, 0, sizeof *n);
    n->op = op;
    n->sum = -1;
    char buf[64];
    if (!name || !*name) {
        snprintf(buf, sizeof buf, "%s_%d", its__op_name(op), g->n_nodes);
        name = buf;
    }
    n->name = its_strdup(ITS_MOD_ENGINE, name);
    n->in = its_malloc(ITS_MOD_ENGINE, (size_t)(n_in > 0 ? n_in : 1) * sizeof(int));
    n->out = its_malloc(ITS_MOD_ENGINE, (size_t)(n_out > 0 ? n_out : 1) * sizeof(int));
    if (!n->name || !n->in || !n->out) {
        free_node(n);
        return ITS_ENOMEM;
    }
    if (n_in)
        memcpy(n->in, in, (size_t)n_in * sizeof(int));
    if (n_out)
        memcpy(n->out, out, (size_t)n_out * sizeof(int));
    n->n_in = n_in;
    n->n_out = n_out;
    return g->n_nodes++;
}

int its__graph_find_tensor(const its_graph *g, const char *name)
{
    for (int i = 0; i < g->n_tensors; i++)
        if (strcmp(g->tensors[i].name, name) == 0)
            return i;
    return -1;
}

static int copy_attr(its_attr *d, const its_attr *s)
{
    *d = *s;
    d->name = its_strdup(ITS_MOD_ENGINE, s->name);
    d->s = s->s ? its_strdup(ITS_MOD_ENGINE, s->s) : NULL;
    d->ints = NULL;
    d->floats = NULL;
    if (s->ints) {
        d->ints = its_malloc(ITS_MOD_ENGINE, (size_t)(s->n ? s->n : 1) * sizeof(int64_t));
        if (d->ints)
            memcpy(d->ints, s->ints, (size_t)s->n * sizeof(int64_t));
    }
    if (s->floats) {
        d->floats = its_malloc(ITS_MOD_ENGINE, (size_t)(s->n ? s->n : 1) * sizeof(float));
        if (d->floats)
            memcpy(d->floats, s->floats, (size_t)s->n * sizeof(float));
    }
    if (!d->name || (s->s && !d->s) || (s->ints && !d->ints) || (s->floats && !d->floats)) {
        free_attr(d);
        return ITS_ENOMEM;
    }
    return 0;
}

int its__graph_clone(const its_graph *src, its_graph *dst)
{
    its__graph_init(dst);
    for (int i = 0; i < src->n_tensors; i++) {
        const its_ir_tensor *s = &src->tensors[i];
        int t = its__graph_add_tensor(dst, s->name, s->dtype, s->kind);
        if (t < 0)
            goto fail;
        char *name = dst->tensors[t].name;
        dst->tensors[t] = *s;
        dst->tensors[t].name = name;
        if (s->data)
            dst->tensors[t].flags |= ITS_TF_BORROWED;
    }
    for (int i = 0; i < src->n_nodes; i++) {
        const its_ir_node *s = &src->nodes[i];
        int k = its__graph_add_node(dst, s->name, s->op, s->n_in, s->in, s->n_out, s->out);
        if (k < 0)
            goto fail;
        its_ir_node *d = &dst->nodes[k];
        d->act = s->act;
        d->act_alpha = s->act_alpha;
        d->sum = s->sum;
        d->sum_first = s->sum_first;
        d->q_src = s->q_src;
        d->q_src_scale = s->q_src_scale;
        d->q_src_zp = s->q_src_zp;
        d->q_dst = s->q_dst;
        for (int f = 0; f < 2; f++) {
            d->fq_on[f] = s->fq_on[f];
            d->fq_scale[f] = s->fq_scale[f];
            d->fq_zp[f] = s->fq_zp[f];
            d->fq_lo[f] = s->fq_lo[f];
            d->fq_hi[f] = s->fq_hi[f];
        }
        if (s->n_attrs) {
            d->attrs = its_calloc(ITS_MOD_ENGINE, (size_t)s->n_attrs, sizeof(its_attr));
            if (!d->attrs)
                goto fail;
            for (int a = 0; a < s->n_attrs; a++) {
                if (copy_attr(&d->attrs[a], &s->attrs[a]) < 0)
                    goto fail;
                d->n_attrs = a + 1;
            }
        }
    }
    dst->inputs = its_malloc(ITS_MOD_ENGINE, (size_t)(src->n_inputs + 1) * sizeof(int));
    dst->outputs = its_malloc(ITS_MOD_ENGINE, (size_t)(src->n_outputs + 1) * sizeof(int));
    if (!dst->inputs || !dst->outputs)
        goto fail;
    memcpy(dst->inputs, src->inputs, (size_t)src->n_inputs * sizeof(int));
    memcpy(dst->outputs, src->outputs, (size_t)src->n_outputs * sizeof(int));
    dst->n_inputs = src->n_inputs;
    dst->n_outputs = src->n_outputs;
    dst->opset = src->opset;
    dst->ir_version = src->ir_version;
    return 0;
fail:
    its__graph_free(dst);
    return ITS_ENOMEM;
}

const its_attr *its__attr(const its_ir_node *n, const char *name)
{
    for (int i = 0; i < n->n_attrs; i++)
        if (strcmp(n->attrs[i].name, name) == 0)
            return &n->attrs[i];
    return NULL;
}

int64_t its__attr_i(const its_ir_node *n, const char *name, int64_t def)
{
    const its_attr *a = its__attr(n, name);
    return a && a->kind == ITS_ATTR_INT ? a->i : def;
}

float its__attr_f(const its_ir_node *n, const char *name, float def)
{
    const its_attr *a = its__attr(n, name);
    return a && a->kind == ITS_ATTR_FLOAT ? a->f : def;
}

const char *its__attr_s(const its_ir_node *n, const char *name, const char *def)
{
    const its_attr *a = its__attr(n, name);
    return a && a->kind == ITS_ATTR_STRING ? a->s : def;
}

/*
 * Kahn's algorithm over tensor readiness. A node is ready when each of its inputs is a
 * constant, a graph input, or produced by an already placed node. Whatever remains unplaced
 * at the end is either on a cycle or reads a tensor nobody produces; we tell the two apart
 * so that the error names the real problem.
 */
int its__graph_toposort(its_graph *g, char *err, size_t errlen)
{
    int rc = 0;
    int nn = g->n_nodes, nt = g->n_tensors;
    int *order = its_malloc(ITS_MOD_ENGINE, (size_t)(nn + 1) * sizeof(int));
    char *ready = its_calloc(ITS_MOD_ENGINE, (size_t)(nt + 1), 1);
    char *placed = its_calloc(ITS_MOD_ENGINE, (size_t)(nn + 1), 1);
    int *missing = its_calloc(ITS_MOD_ENGINE, (size_t)(nn + 1), sizeof(int));
    int *cons_start = its_calloc(ITS_MOD_ENGINE, (size_t)(nt + 1), sizeof(int));
    int *cons = NULL;
    int *queue = its_malloc(ITS_MOD_ENGINE, (size_t)(nn + 1) * sizeof(int));
    if (!order || !ready || !placed || !missing || !cons_start || !queue) {
        rc = ITS_ENOMEM;
        goto out;
    }
    for (int t = 0; t < nt; t++) {
        g->tensors[t].producer = -1;
        g->tensors[t].n_consumers = 0;
        if (g->tensors[t].kind != ITS_TK_ACT)
            ready[t] = 1;
    }
    for (int i = 0; i < nn; i++) {
        its_ir_node *n = &g->nodes[i];
        for (int o = 0; o < n->n_out; o++) {
            int t = n->out[o];
            if (t < 0)
                continue;
            if (g->tensors[t].kind != ITS_TK_ACT || g->tensors[t].producer >= 0) {
                snprintf(err, errlen, "node '%s' (%s): output '%s' is already defined", n->name,
                         its__op_name(n->op), g->tensors[t].name);
                rc = ITS_EMODEL;
                goto out;
            }
            g->tensors[t].producer = i;
        }
    }
    /* consumer lists (CSR) */
    int total = 0;
    for (int i = 0; i < nn; i++) {
        its_ir_node *n = &g->nodes[i];
        int nin = n->n_in + (n->sum >= 0);
        for (int k = 0; k < nin; k++) {
            int t = k < n->n_in ? n->in[k] : n->sum;
            if (t < 0)
                continue;
            cons_start[t]++;
            total++;
            if (!ready[t])
                missing[i]++;
            g->tensors[t].n_consumers++;
        }
    }
    cons = its_malloc(ITS_MOD_ENGINE, (size_t)(total + 1) * sizeof(int));
    if (!cons) {
        rc = ITS_ENOMEM;
        goto out;
    }
    for (int t = 0, acc = 0; t < nt; t++) {
        int c = cons_start[t];
        cons_start[t] = acc;
        acc += c;
    }
    {
        int *fill = its_calloc(ITS_MOD_ENGINE, (size_t)(nt + 1), sizeof(int));
        if (!fill) {
            rc = ITS_ENOMEM;
            goto out;
        }
        for (int i = 0; i < nn; i++) {
            its_ir_node *n = &g->nodes[i];
            int nin = n->n_in + (n->sum >= 0);
            for (int k = 0; k < nin; k++) {
                int t = k < n->n_in ? n->in[k] : n->sum;
                if (t >= 0)
                    cons[cons_start[t] + fill[t]++] = i;
            }
        }
        its_free(fill);
    }
    int qh = 0, qt = 0, no = 0;
    for (int i = 0; i < nn; i++)
        if (missing[i] == 0)
            queue[qt++] = i;
    while (qh < qt) {
        int i = queue[qh++];
        placed[i] = 1;
        order[no++] = i;
        its_ir_node *n = &g->nodes[i];
        for (int o = 0; o < n->n_out; o++) {
            int t = n->out[o];
            if (t < 0 || ready[t])
                continue;
            ready[t] = 1;
            int end = t + 1 < nt ? cons_start[t + 1] : total;
            for (int c = cons_start[t]; c < end; c++)
                if (--missing[cons[c]] == 0)
                    queue[qt++] = cons[c];
        }
    }
    if (no < nn) {
        /* A dangling input (no producer at all) is reported in preference to a cycle. */
        for (int i = 0; i < nn; i++) {
            if (placed[i])
                continue;
            its_ir_node *n = &g->nodes[i];
            for (int k = 0; k < n->n_in; k++) {
                int t = n->in[k];
                if (t >= 0 && !ready[t] && g->tensors[t].producer < 0) {
                    snprintf(err, errlen, "node '%s' (%s): input '%s' is never produced", n->name,
                             its__op_name(n->op), g->tensors[t].name);
                    rc = ITS_EMODEL;
                    goto out;
                }
            }
        }
        for (int i = 0; i < nn; i++) {
            if (!placed[i]) {
                snprintf(err, errlen, "node '%s' (%s): part of a cycle", g->nodes[i].name,
                         its__op_name(g->nodes[i].op));
                break;
            }
        }
        rc = ITS_EMODEL;
        goto out;
    }
    for (int k = 0; k < g->n_outputs; k++) {
        int t = g->outputs[k];
        g->tensors[t].n_consumers++;
        if (!ready[t]) {
            snprintf(err, errlen, "graph output '%s' is never produced", g->tensors[t].name);
            rc = ITS_EMODEL;
            goto out;
        }
    }
    /* Apply the order. */
    {
        its_ir_node *nodes = its_malloc(ITS_MOD_ENGINE, (size_t)(nn + 1) * sizeof *nodes);
        if (!nodes) {
            rc = ITS_ENOMEM;
            goto out;
        }
        for (int i = 0; i < nn; i++)
            nodes[i] = g->nodes[order[i]];
        if (nn > 0) /* a graph without nodes has no node array: memcpy from NULL is UB */
            memcpy(g->nodes, nodes, (size_t)nn * sizeof *nodes);
        its_free(nodes);
        for (int i = 0; i < nn; i++)
            for (int o = 0; o < g->nodes[i].n_out; o++)
                if (g->nodes[i].out[o] >= 0)
                    g->tensors[g->nodes[i].out[o]].producer = i;
    }
out:
    its_free(order);
    its_free(ready);
    its_free(placed);
    its_free(missing);
    its_free(cons_start);
    its_free(cons);
    its_free(queue);
    return rc;
}

int its__graph_compact(its_graph *g)
{
    /* Nodes: drop NONE. */
    int w = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i].op == ITS_OP_NONE) {
            free_node(&g->nodes[i]);
            continue;
        }
        g->nodes[w++] = g->nodes[i];
    }
    g->n_nodes = w;
    /* Tensors: keep the ones still referenced. */
    int nt = g->n_tensors;
    int *map = its_malloc(ITS_MOD_ENGINE, (size_t)(nt + 1) * sizeof(int));
    char *used = its_calloc(ITS_MOD_ENGINE, (size_t)(nt + 1), 1);
    if (!map || !used) {
        its_free(map);
        its_free(used);
        return ITS_ENOMEM;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        its_ir_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] >= 0)
                used[n->in[k]] = 1;
        for (int k = 0; k < n->n_out; k++)
            if (n->out[k] >= 0)
                used[n->out[k]] = 1;
        if (n->sum >= 0)
            used[n->sum] = 1;
    }
    for (int k = 0; k < g->n_inputs; k++)
        used[g->inputs[k]] = 1;
    for (int k = 0; k < g->n_outputs; k++)
        used[g->outputs[k]] = 1;
    w = 0;
    for (int t = 0; t < nt; t++) {
        if (!used[t]) {
            its_free(g->tensors[t].name);
            if (!(g->tensors[t].flags & ITS_TF_BORROWED))
                its_free(g->tensors[t].data);
            map[t] = -1;
            continue;
        }
        map[t] = w;
        g->tensors[w++] = g->tensors[t];
    }
    g->n_tensors = w;
    for (int i = 0; i < g->n_nodes; i++) {
        its_ir_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] >= 0)
                n->in[k] = map[n->in[k]];
        for (int k = 0; k < n->n_out; k++)
            if (n->out[k] >= 0)
                n->out[k] = map[n->out[k]];
        if (n->sum >= 0)
            n->sum = map[n->sum];
    }
    for (int k = 0; k < g->n_inputs; k++)
        g->inputs[k] = map[g->inputs[k]];
    for (int k = 0; k < g->n_outputs; k++)
        g->outputs[k] = map[g->outputs[k]];
    its_free(map);
    its_free(used);
    char err[8];
    return its__graph_toposort(g, err, sizeof err);
}

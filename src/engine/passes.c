/*
 * passes.c - graph rewrites: constant folding (which also folds DequantizeLinear on constant
 * weights into float weights), SiLU fusion, and the Conv fusions a backend may opt into.
 *
 * Every pass leaves the graph topologically sorted with tensor->shape valid at batch 1;
 * removed nodes become ITS_OP_NONE until its__graph_compact.
 */
#include <stdio.h>
#include <string.h>

#include "its/alloc.h"
#include "its/error.h"

#include "ir.h"

/* Folded constants larger than this stay computed at run time (a hostile file could
 * otherwise make load time explode); 64 MiB covers every weight of the target models. */
#define FOLD_MAX_BYTES ((size_t)64 << 20)

static int only_consumer(const its_graph *g, int t)
{
    return g->tensors[t].n_consumers == 1 && !(g->tensors[t].flags & ITS_TF_OUTPUT);
}

int its__pass_fold_constants(its_graph *g, char *err, size_t errlen)
{
    for (int i = 0; i < g->n_nodes; i++) {
        its_ir_node *n = &g->nodes[i];
        if (n->op == ITS_OP_NONE || n->n_out > ITS_IR_MAX_IO || n->n_in > ITS_IR_MAX_IO)
            continue;
        int all_const = 1;
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] >= 0 && g->tensors[n->in[k]].kind != ITS_TK_CONST)
                all_const = 0;
        if (!all_const)
            continue;
        size_t total = 0;
        for (int k = 0; k < n->n_out; k++)
            if (n->out[k] >= 0)
                total += (size_t)its__shape_numel(&g->tensors[n->out[k]].shape) *
                         its__dtype_size(g->tensors[n->out[k]].dtype);
        if (total > FOLD_MAX_BYTES)
            continue;
        its_shape is[ITS_IR_MAX_IO], os[ITS_IR_MAX_IO];
        const void *in[ITS_IR_MAX_IO];
        void *out[ITS_IR_MAX_IO];
        for (int k = 0; k < n->n_in; k++) {
            in[k] = n->in[k] >= 0 ? g->tensors[n->in[k]].data : NULL;
            if (n->in[k] >= 0)
                is[k] = g->tensors[n->in[k]].shape;
        }
        int rc = 0;
        for (int k = 0; k < n->n_out; k++) {
            out[k] = NULL;
            if (n->out[k] < 0)
                continue;
            its_ir_tensor *T = &g->tensors[n->out[k]];
            os[k] = T->shape;
            size_t b = (size_t)its__shape_numel(&T->shape) * its__dtype_size(T->dtype);
            out[k] = its_malloc(ITS_MOD_ENGINE, b ? b : 1);
            if (!out[k])
                rc = ITS_ENOMEM;
        }
        if (rc == 0)
            rc = its__kernel_run(g, n, is, in, os, out);
        if (rc < 0) {
            for (int k = 0; k < n->n_out; k++)
                its_free(out[k]);
            snprintf(err, errlen, "node '%s' (%s): constant folding failed: %s", n->name,
                     its__op_name(n->op), its_strerror(rc));
            return rc;
        }
        for (int k = 0; k < n->n_out; k++) {
            if (n->out[k] < 0)
                continue;
            its_ir_tensor *T = &g->tensors[n->out[k]];
            T->kind = ITS_TK_CONST;
            T->data = out[k];
            T->flags &= ~ITS_TF_BORROWED;
            T->producer = -1;
            T->batched = 0;
        }
        n->op = ITS_OP_NONE;
    }
    return 0;
}

int its__pass_fuse_silu(its_graph *g)
{
    int changed = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        its_ir_node *m = &g->nodes[i];
        if (m->op != ITS_OP_MUL || m->n_in != 2 || m->in[0] < 0 || m->in[1] < 0)
            continue;
        for (int side = 0; side < 2; side++) {
            int s = m->in[side], x = m->in[1 - side];
            int p = g->tensors[s].producer;
            if (p < 0 || g->nodes[p].op != ITS_OP_SIGMOID || g->nodes[p].in[0] != x ||
                !only_consumer(g, s))
                continue;
            if (g->tensors[x].dtype != ITS_DT_FLOAT32)
                continue;
            g->nodes[p].op = ITS_OP_NONE;
            m->op = ITS_OP_SILU;
            m->in[0] = x;
            m->n_in = 1;
            g->tensors[s].n_consumers = 0;
            changed++;
            break;
        }
    }
    return changed;
}

int its__pass_fuse_conv_act(its_graph *g, unsigned acts)
{
    int changed = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        its_ir_node *c = &g->nodes[i];
        if (c->op != ITS_OP_CONV || c->act != ITS_ACT_NONE || c->sum >= 0 ||
            g->tensors[c->in[1]].kind != ITS_TK_CONST)
            continue;
        int t = c->out[0];
        if (!only_consumer(g, t))
            continue;
        /* find the consumer */
        for (int j = i + 1; j < g->n_nodes; j++) {
            its_ir_node *a = &g->nodes[j];
            if (a->op == ITS_OP_NONE || a->n_in < 1 || a->in[0] != t)
                continue;
            its_act act = a->op == ITS_OP_SILU         ? ITS_ACT_SILU
                          : a->op == ITS_OP_RELU       ? ITS_ACT_RELU
                          : a->op == ITS_OP_LEAKY_RELU ? ITS_ACT_LEAKY
                          : a->op == ITS_OP_SIGMOID    ? ITS_ACT_SIGMOID
                                                       : ITS_ACT_NONE;
            if (act == ITS_ACT_NONE || !(acts & (1u << act)) || a->n_in != 1)
                break;
            c->act = act;
            c->act_alpha = act == ITS_ACT_LEAKY ? its__attr_f(a, "alpha", 0.01f) : 0.f;
            c->out[0] = a->out[0];
            g->tensors[a->out[0]].producer = i;
            g->tensors[t].n_consumers = 0;
            a->op = ITS_OP_NONE;
            changed++;
            break;
        }
    }
    return changed;
}

/*
 * Conv(+act) followed by Add(conv_out, r) with r of the same shape and ready before the Conv
 * runs: the residual becomes the Conv's `sum` (y = act(conv(x)) + r), saving one full pass
 * over the tensor.
 */
int its__pass_fuse_conv_sum(its_graph *g)
{
    int changed = 0;
    for (int j = 0; j < g->n_nodes; j++) {
        its_ir_node *a = &g->nodes[j];
        if (a->op != ITS_OP_ADD || a->n_in != 2 || a->in[0] < 0 || a->in[1] < 0)
            continue;
        for (int side = 0; side < 2; side++) {
            int t = a->in[side], r = a->in[1 - side];
            int p = g->tensors[t].producer;
            if (p < 0 || g->nodes[p].op != ITS_OP_CONV || g->nodes[p].sum >= 0 ||
                g->tensors[g->nodes[p].in[1]].kind != ITS_TK_CONST || !only_consumer(g, t) ||
                t == r)
                continue;
            const its_shape *ts = &g->tensors[t].shape, *rs = &g->tensors[r].shape;
            if (ts->rank != rs->rank || memcmp(ts->dims, rs->dims, sizeof(int64_t) * ts->rank))
                continue;
            if (g->tensors[r].dtype != ITS_DT_FLOAT32 || g->tensors[r].kind == ITS_TK_CONST)
                continue;
            int rp = g->tensors[r].producer;
            if (rp >= p) /* must be ready when the conv runs */
                continue;
            its_ir_node *c = &g->nodes[p];
            c->sum = r;
            c->sum_first = 0;
            c->out[0] = a->out[0];
            g->tensors[a->out[0]].producer = p;
            a->op = ITS_OP_NONE;
            changed++;
            break;
        }
    }
    return changed;
}

int its__graph_optimize(its_graph *g, char *err, size_t errlen)
{
    int rc = its__pass_fold_constants(g, err, errlen);
    if (rc < 0)
        return rc;
    if ((rc = its__graph_compact(g)) < 0)
        return rc;
    its__pass_fuse_silu(g);
    if ((rc = its__graph_compact(g)) < 0)
        return rc;
    return 0;
}

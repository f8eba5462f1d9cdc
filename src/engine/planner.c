/*
 * planner.c - one arena for all activations, placed by liveness.
 *
 * Walk the nodes in execution order. Before node i runs, its outputs get a block (best fit
 * among the free blocks, else the end of the arena grows); after it runs, every tensor whose
 * last reader was node i gives its block back (merged with free neighbours). Graph inputs
 * are born before node 0, graph outputs live to the end. An alias (a view such as Reshape)
 * has no block of its own: it keeps its root's block alive until the alias's last reader.
 * This is the greedy by-size-and-lifetime scheme of ggml's gallocr and TFLite's arena
 * planner, simplified: execution order is fixed, so a single sweep suffices.
 */
#include <stdint.h>
#include <string.h>

#include "its/alloc.h"
#include "its/error.h"

#include "ir.h"

typedef struct blk {
    size_t off, size;
} blk;

typedef struct freelist {
    blk *b;
    int n, cap;
} freelist;

static size_t round_up(size_t v, size_t a)
{
    return (v + a - 1) / a * a;
}

static int fl_insert(freelist *fl, size_t off, size_t size)
{
    /* keep sorted by offset; merge with neighbours */
    int i = 0;
    while (i < fl->n && fl->b[i].off < off)
        i++;
    if (i > 0 && fl->b[i - 1].off + fl->b[i - 1].size == off) {
        fl->b[i - 1].size += size;
        if (i < fl->n && fl->b[i - 1].off + fl->b[i - 1].size == fl->b[i].off) {
            fl->b[i - 1].size += fl->b[i].size;
            memmove(&fl->b[i], &fl->b[i + 1], (size_t)(fl->n - i - 1) * sizeof(blk));
            fl->n--;
        }
        return 0;
    }
    if (i < fl->n && off + size == fl->b[i].off) {
        fl->b[i].off = off;
        fl->b[i].size += size;
        return 0;
    }
    if (fl->n == fl->cap) {
        int cap = fl->cap ? fl->cap * 2 : 32;
        blk *nb = its_realloc(ITS_MOD_ENGINE, fl->b, (size_t)cap * sizeof(blk));
        if (!nb)
            return ITS_ENOMEM;
        fl->b = nb;
        fl->cap = cap;
    }
    memmove(&fl->b[i + 1], &fl->b[i], (size_t)(fl->n - i) * sizeof(blk));
    fl->b[i].off = off;
    fl->b[i].size = size;
    fl->n++;
    return 0;
}

static size_t fl_take(freelist *fl, size_t size, size_t *end)
{
    int best = -1;
    for (int i = 0; i < fl->n; i++)
        if (fl->b[i].size >= size && (best < 0 || fl->b[i].size < fl->b[best].size))
            best = i;
    if (best < 0) {
        /* a free block at the very end can be extended instead of wasted */
        if (fl->n && fl->b[fl->n - 1].off + fl->b[fl->n - 1].size == *end) {
            size_t off = fl->b[fl->n - 1].off;
            *end = off + size;
            fl->n--;
            return off;
        }
        size_t off = *end;
        *end += size;
        return off;
    }
    size_t off = fl->b[best].off;
    fl->b[best].off += size;
    fl->b[best].size -= size;
    if (fl->b[best].size == 0) {
        memmove(&fl->b[best], &fl->b[best + 1], (size_t)(fl->n - best - 1) * sizeof(blk));
        fl->n--;
    }
    return off;
}

static int root_of(const int *alias, int t)
{
    int guard = 0;
    while (alias && alias[t] >= 0 && guard++ < 1 << 20)
        t = alias[t];
    return t;
}

int its__plan_memory(const its_graph *g, const size_t *bytes, const int *alias, size_t align,
                     size_t *offsets, size_t *arena_bytes)
{
    int nt = g->n_tensors, nn = g->n_nodes;
    int *last = its_malloc(ITS_MOD_ENGINE, (size_t)(nt + 1) * sizeof(int));
    freelist fl = {0};
    if (!last)
        return ITS_ENOMEM;
    for (int t = 0; t < nt; t++) {
        offsets[t] = SIZE_MAX;
        last[t] = -1;
    }
    /* last use of each root, over all its aliases */
    for (int i = 0; i < nn; i++) {
        const its_ir_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_in + 1; k++) {
            int t = k < n->n_in ? n->in[k] : n->sum;
            if (t >= 0)
                last[root_of(alias, t)] = i;
        }
        for (int k = 0; k < n->n_out; k++)
            if (n->out[k] >= 0 && last[root_of(alias, n->out[k])] < i)
                last[root_of(alias, n->out[k])] = i;
    }
    for (int k = 0; k < g->n_outputs; k++)
        last[root_of(alias, g->outputs[k])] = nn;
    size_t end = 0;
    int rc = 0;
    for (int k = 0; k < g->n_inputs; k++) {
        int t = g->inputs[k];
        if (bytes[t] && (!alias || alias[t] < 0))
            offsets[t] = fl_take(&fl, round_up(bytes[t], align), &end);
    }
    for (int i = 0; i < nn && rc == 0; i++) {
        const its_ir_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_out; k++) {
            int t = n->out[k];
            if (t < 0 || !bytes[t] || (alias && alias[t] >= 0))
                continue;
            offsets[t] = fl_take(&fl, round_up(bytes[t], align), &end);
        }
        /* free roots whose last use was this node */
        for (int k = 0; k < n->n_in + 1 + n->n_out && rc == 0; k++) {
            int t = k < n->n_in ? n->in[k] : k == n->n_in ? n->sum : n->out[k - n->n_in - 1];
            if (t < 0)
                continue;
            int r = root_of(alias, t);
            if (last[r] == i && offsets[r] != SIZE_MAX && bytes[r]) {
                rc = fl_insert(&fl, offsets[r], round_up(bytes[r], align));
                last[r] = -2; /* freed once */
            }
        }
    }
    /* aliases share their root's offset */
    for (int t = 0; t < nt; t++)
        if (alias && alias[t] >= 0)
            offsets[t] = offsets[root_of(alias, t)];
    its_free(last);
    its_free(fl.b);
    *arena_bytes = end;
    return rc;
}

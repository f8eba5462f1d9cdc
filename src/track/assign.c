/*
 * Sparse optimal assignment. IoU costs are zero almost everywhere: with 100 vehicles in view
 * a track overlaps one or two detections. So the bipartite graph of pairs under the cost
 * limit is split into connected components (union-find), and each component is solved on its
 * own with the Hungarian method (potentials, O(n^3)) on a matrix extended with "unmatched"
 * rows and columns at limit / 2, which gives the same optimum as solving the whole dense
 * matrix with LAPJV and a cost limit, at a tiny fraction of the cost.
 */
#include <string.h>

#include "its/alloc.h"
#include "its/error.h"
#include "track_impl.h"

#define SIDE (2 * ITS__ASSIGN_MAX_SIDE)
#define BIG  1e9

int its__assign_init(its__assign *a, int max_rows, int max_cols)
{
    memset(a, 0, sizeof *a);
    a->max_rows = max_rows;
    a->max_cols = max_cols;
    size_t nodes = (size_t)max_rows + (size_t)max_cols;
    size_t max_edges = nodes * 8;
    a->parent = its_malloc(ITS_MOD_TRACK, nodes * sizeof(int));
    a->order = its_malloc(ITS_MOD_TRACK, max_edges * sizeof(int));
    a->start = its_malloc(ITS_MOD_TRACK, (nodes + 1) * sizeof(int));
    a->row_local = its_malloc(ITS_MOD_TRACK, (size_t)max_rows * sizeof(int));
    a->col_local = its_malloc(ITS_MOD_TRACK, (size_t)max_cols * sizeof(int));
    a->rows = its_malloc(ITS_MOD_TRACK, (size_t)max_rows * sizeof(int));
    a->cols = its_malloc(ITS_MOD_TRACK, (size_t)max_cols * sizeof(int));
    a->cost = its_malloc(ITS_MOD_TRACK, (size_t)SIDE * SIDE * sizeof(double));
    a->u = its_malloc(ITS_MOD_TRACK, (SIDE + 1) * sizeof(double));
    a->v = its_malloc(ITS_MOD_TRACK, (SIDE + 1) * sizeof(double));
    a->minv = its_malloc(ITS_MOD_TRACK, (SIDE + 1) * sizeof(double));
    a->p = its_malloc(ITS_MOD_TRACK, (SIDE + 1) * sizeof(int));
    a->way = its_malloc(ITS_MOD_TRACK, (SIDE + 1) * sizeof(int));
    a->used = its_malloc(ITS_MOD_TRACK, (SIDE + 1) * sizeof(int));
    a->gorder = its_malloc(ITS_MOD_TRACK, max_edges * sizeof(int));
    if (!a->parent || !a->order || !a->start || !a->row_local || !a->col_local || !a->rows ||
        !a->cols || !a->cost || !a->u || !a->v || !a->minv || !a->p || !a->way || !a->used ||
        !a->gorder) {
        its__assign_free(a);
        return ITS_ENOMEM;
    }
    for (int i = 0; i < max_rows; i++)
        a->row_local[i] = -1;
    for (int i = 0; i < max_cols; i++)
        a->col_local[i] = -1;
    return 0;
}

void its__assign_free(its__assign *a)
{
    its_free(a->parent);
    its_free(a->order);
    its_free(a->start);
    its_free(a->row_local);
    its_free(a->col_local);
    its_free(a->rows);
    its_free(a->cols);
    its_free(a->cost);
    its_free(a->u);
    its_free(a->v);
    its_free(a->minv);
    its_free(a->p);
    its_free(a->way);
    its_free(a->used);
    its_free(a->gorder);
    memset(a, 0, sizeof *a);
}

static int find(int *parent, int x)
{
    while (parent[x] != x) {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    return x;
}

/* Hungarian method with potentials on the n x n matrix a->cost (row-major, 0-based); fills
 * a->p[j] = row (1-based) assigned to column j (1-based). */
static void hungarian(its__assign *a, int n)
{
    double *u = a->u, *v = a->v, *minv = a->minv;
    int *p = a->p, *way = a->way, *used = a->used;
    for (int i = 0; i <= n; i++) {
        u[i] = v[i] = 0;
        p[i] = way[i] = 0;
    }
    for (int i = 1; i <= n; i++) {
        p[0] = i;
        int j0 = 0;
        for (int j = 0; j <= n; j++) {
            minv[j] = BIG * 4;
            used[j] = 0;
        }
        do {
            used[j0] = 1;
            int i0 = p[j0], j1 = 0;
            double delta = BIG * 8;
            for (int j = 1; j <= n; j++) {
                if (used[j])
                    continue;
                double cur = a->cost[(i0 - 1) * n + (j - 1)] - u[i0] - v[j];
                if (cur < minv[j]) {
                    minv[j] = cur;
                    way[j] = j0;
                }
                if (minv[j] < delta) {
                    delta = minv[j];
                    j1 = j;
                }
            }
            for (int j = 0; j <= n; j++) {
                if (used[j]) {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
        } while (p[j0] != 0);
        do {
            int j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
        } while (j0);
    }
}

/* Components too large for the exact solver: cheapest pair first. */
static void greedy(its__assign *a, const its__edge *edges, const int *idx, int n, int *row_match,
                   int *col_match)
{
    /* Insertion sort by cost: this path is rare and qsort would need a global context. */
    for (int k = 0; k < n; k++) {
        int x = idx[k], m = k;
        while (m > 0 && edges[a->gorder[m - 1]].cost > edges[x].cost) {
            a->gorder[m] = a->gorder[m - 1];
            m--;
        }
        a->gorder[m] = x;
    }
    for (int k = 0; k < n; k++) {
        const its__edge *e = &edges[a->gorder[k]];
        if (row_match[e->r] < 0 && col_match[e->c] < 0) {
            row_match[e->r] = e->c;
            col_match[e->c] = e->r;
        }
    }
}

void its__assign_solve(its__assign *a, int n_rows, int n_cols, const its__edge *edges, int n_edges,
                       float limit, int *row_match, int *col_match)
{
    for (int i = 0; i < n_rows; i++)
        row_match[i] = -1;
    for (int j = 0; j < n_cols; j++)
        col_match[j] = -1;
    if (n_edges <= 0)
        return;
    int nodes = n_rows + n_cols;
    for (int i = 0; i < nodes; i++)
        a->parent[i] = i;
    for (int k = 0; k < n_edges; k++) {
        int x = find(a->parent, edges[k].r), y = find(a->parent, n_rows + edges[k].c);
        if (x != y)
            a->parent[x] = y;
    }
    /* Counting sort of the edges by component root. */
    memset(a->start, 0, (size_t)(nodes + 1) * sizeof(int));
    for (int k = 0; k < n_edges; k++)
        a->start[find(a->parent, edges[k].r) + 1]++;
    for (int i = 0; i < nodes; i++)
        a->start[i + 1] += a->start[i];
    for (int k = 0; k < n_edges; k++) {
        int root = find(a->parent, edges[k].r);
        a->order[a->start[root]++] = k;
    }
    /* start[root] now points at the end of its group; walk groups by end positions. */
    int begin = 0;
    for (int root = 0; root < nodes; root++) {
        int end = a->start[root];
        if (end == begin)
            continue;
        const int *idx = a->order + begin;
        int n = end - begin;
        begin = end;
        if (n == 1) {
            const its__edge *e = &edges[idx[0]];
            if (e->cost < limit) {
                row_match[e->r] = e->c;
                col_match[e->c] = e->r;
            }
            continue;
        }
        int nr = 0, nc = 0;
        for (int k = 0; k < n; k++) {
            const its__edge *e = &edges[idx[k]];
            if (a->row_local[e->r] < 0) {
                a->row_local[e->r] = nr;
                a->rows[nr++] = e->r;
            }
            if (a->col_local[e->c] < 0) {
                a->col_local[e->c] = nc;
                a->cols[nc++] = e->c;
            }
        }
        if (nr > ITS__ASSIGN_MAX_SIDE || nc > ITS__ASSIGN_MAX_SIDE) {
            greedy(a, edges, idx, n, row_match, col_match);
        } else {
            int s = nr + nc;
            double half = limit * 0.5;
            for (int i = 0; i < s; i++)
                for (int j = 0; j < s; j++)
                    a->cost[i * s + j] = (i < nr) == (j < nc) ? (i < nr ? BIG : 0.0) : half;
            for (int k = 0; k < n; k++) {
                const its__edge *e = &edges[idx[k]];
                a->cost[a->row_local[e->r] * s + a->col_local[e->c]] = e->cost;
            }
            hungarian(a, s);
            for (int j = 1; j <= s; j++) {
                int i = a->p[j] - 1;
                if (i < nr && j - 1 < nc && a->cost[i * s + (j - 1)] < limit) {
                    row_match[a->rows[i]] = a->cols[j - 1];
                    col_match[a->cols[j - 1]] = a->rows[i];
                }
            }
        }
        for (int i = 0; i < nr; i++)
            a->row_local[a->rows[i]] = -1;
        for (int j = 0; j < nc; j++)
            a->col_local[a->cols[j]] = -1;
    }
}

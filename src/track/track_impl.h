/* Private to src/track: the sparse optimal assignment used by ByteTrack. */
#ifndef ITS_TRACK_IMPL_H
#define ITS_TRACK_IMPL_H

#include <stddef.h>

/* A candidate pair: row (track) r, column (detection) c, cost < limit. */
typedef struct its__edge {
    int r, c;
    float cost;
} its__edge;

/* Largest component solved exactly; bigger ones (dozens of mutually overlapping boxes) are
 * matched greedily by cost, which ByteTrack's IoU costs make nearly as good. */
#define ITS__ASSIGN_MAX_SIDE 48

typedef struct its__assign {
    int max_rows, max_cols;
    int *parent;    /* union-find over rows then columns */
    int *order;     /* edge indices grouped by component */
    int *start;     /* per root: first slot in order */
    int *row_local; /* row -> index in the component, -1 */
    int *col_local; /* column -> index in the component, -1 */
    int *rows, *cols;
    double *cost; /* (2 * MAX_SIDE)^2 extended matrix */
    double *u, *v, *minv;
    int *p, *way, *used;
    int *gorder; /* greedy scratch */
} its__assign;

int its__assign_init(its__assign *a, int max_rows, int max_cols);
void its__assign_free(its__assign *a);
/* Minimum-cost matching of rows to columns over the given edges, where leaving a row or a
 * column unmatched costs limit / 2 (the LAPJV "cost_limit" extension): a pair is matched only
 * when that lowers the total. row_match[r] = column or -1; col_match[c] = row or -1. */
void its__assign_solve(its__assign *a, int n_rows, int n_cols, const its__edge *edges, int n_edges,
                       float limit, int *row_match, int *col_match);

#endif

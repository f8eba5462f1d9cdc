/*
 * ops_impl.h - per-op parameters decoded from attributes and shapes. Shape inference
 * validates them (with the node named in the error); kernels and backends reuse the same
 * decoding so the two can never disagree.
 */
#ifndef ITS_ENGINE_OPS_IMPL_H
#define ITS_ENGINE_OPS_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "ir.h"

/* Conv, ConvInteger and MaxPool: 1-D and 2-D windows (1-D is run as H = 1). */
typedef struct its_win_params {
    int64_t n, c, ih, iw;   /* input */
    int64_t m, oh, ow;      /* output channels (Conv) and size */
    int64_t kh, kw;         /* window */
    int64_t sh, sw, dh, dw; /* strides, dilations */
    int64_t pt, pl, pb, pr; /* pads: top, left, bottom, right */
    int64_t group;
    int spatial; /* 1 or 2 */
} its_win_params;

int its__win_params(const its_graph *g, const its_ir_node *n, const its_shape *x,
                    const its_shape *w, its_win_params *p, char *err, size_t errlen);

typedef enum its_resize_coord {
    ITS_RC_HALF_PIXEL = 0,
    ITS_RC_ASYMMETRIC,
    ITS_RC_PYTORCH_HALF_PIXEL,
    ITS_RC_ALIGN_CORNERS,
    ITS_RC_TF_HALF_PIXEL_FOR_NN,
} its_resize_coord;

typedef enum its_resize_nearest {
    ITS_RN_ROUND_PREFER_FLOOR = 0,
    ITS_RN_ROUND_PREFER_CEIL,
    ITS_RN_FLOOR,
    ITS_RN_CEIL,
} its_resize_nearest;

typedef struct its_resize_params {
    int linear; /* 0 nearest, 1 (bi)linear */
    its_resize_coord coord;
    its_resize_nearest nearest;
    float scale[ITS_MAX_DIMS]; /* per dim, output / input */
} its_resize_params;

/* Needs the constant scales/sizes; out receives the output shape. */
int its__resize_params(const its_graph *g, const its_ir_node *n, const its_shape *x, int batch,
                       its_resize_params *p, its_shape *out, char *err, size_t errlen);

typedef struct its_slice_params {
    int64_t start[ITS_MAX_DIMS], step[ITS_MAX_DIMS]; /* per dim (identity where not sliced) */
} its_slice_params;

int its__slice_params(const its_graph *g, const its_ir_node *n, const its_shape *x,
                      its_slice_params *p, its_shape *out, char *err, size_t errlen);

/* Split sizes along axis (n->n_out of them). */
int its__split_params(const its_graph *g, const its_ir_node *n, const its_shape *x, int *axis,
                      int64_t *sizes, char *err, size_t errlen);

/* Softmax: the data is seen as [outer, dim, inner]; reduce over dim. */
int its__softmax_params(const its_graph *g, const its_ir_node *n, const its_shape *x,
                        int64_t *outer, int64_t *dim, int64_t *inner, char *err, size_t errlen);

int its__transpose_perm(const its_ir_node *n, int rank, int *perm, char *err, size_t errlen);
int its__concat_axis(const its_ir_node *n, int rank, int *axis, char *err, size_t errlen);

/* Per-axis quantization: axis and channel count; axis = -1 for per-tensor. */
int its__quant_axis(const its_graph *g, const its_ir_node *n, const its_shape *x,
                    const its_shape *scale, int *axis, char *err, size_t errlen);

/* Numpy broadcasting of a and b into out. */
int its__broadcast(const its_shape *a, const its_shape *b, its_shape *out);

/* float16 <-> float32 (IEEE half, round to nearest even). */
float its__half_to_float(uint16_t h);
uint16_t its__float_to_half(float f);

/* Largest element count any tensor may have (hostile dims are refused above it). */
#define ITS_MAX_NUMEL ((int64_t)1 << 31)

#endif

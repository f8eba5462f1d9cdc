/*
 * cuda_kernels.h - the cuda backend's own kernels (everything that is not a convolution or a
 * matrix product), private to src/engine/cuda.
 *
 *     its_cuda_nd nd = {.rank = 4, .dims = {n, c, h, w}};   // logical (ONNX) dims
 *     ...strides per operand, in elements, for the physical layout (NHWC or row-major)...
 *     its_cuda_ewise(ITS_CUDA_EW_COPY, src, 1, NULL, dst, 1, &nd, 0.f, stream);
 *
 * Activations are fp16; the strided element-wise kernel also converts fp32 <-> fp16 (graph
 * input and output). Every function only enqueues work (graph-capturable) and returns 0 or
 * a negative ITS_E* code (ITS_EINVAL for bad arguments, ITS_EBACKEND for a failed launch).
 */
#ifndef ITS_CUDA_KERNELS_H
#define ITS_CUDA_KERNELS_H

#include <cuda_runtime_api.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ITS_CUDA_ND_MAX 6

/* Logical dims and, per operand, element strides (0 = broadcast). Operand 0 is the output. */
typedef struct its_cuda_nd {
    int rank;
    int64_t dims[ITS_CUDA_ND_MAX];
    int64_t stride[3][ITS_CUDA_ND_MAX]; /* [0] out, [1] in0, [2] in1 */
} its_cuda_nd;

typedef enum its_cuda_ew {
    ITS_CUDA_EW_COPY = 0, /* out = a (also the layout/dtype conversion) */
    ITS_CUDA_EW_ADD,
    ITS_CUDA_EW_SUB,
    ITS_CUDA_EW_MUL,
    ITS_CUDA_EW_DIV,
    ITS_CUDA_EW_SIGMOID,
    ITS_CUDA_EW_SILU,
    ITS_CUDA_EW_RELU,
    ITS_CUDA_EW_LEAKY, /* alpha */
} its_cuda_ew;

/* out = op(a[, b]); a and out are fp16 unless a_f32/out_f32 is set; b is fp16. */
int its_cuda_ewise(its_cuda_ew op, const void *a, int a_f32, const void *b, void *out, int out_f32,
                   const its_cuda_nd *nd, float alpha, cudaStream_t stream);

/* In place over y, NHWC with k channels (fastest dim): y = act(y + bias[c]) + sum, or with
 * sum_first: y = act(y + bias[c] + sum). bias (fp32) and sum (fp16, same layout) may be NULL.
 * act: 0 none, 1 relu, 2 leaky (alpha), 3 sigmoid, 4 silu (its_act values). */
int its_cuda_conv_epilogue(void *y, const float *bias, const void *sum, int64_t total, int k,
                           int act, float alpha, int sum_first, cudaStream_t stream);

/* Softmax over the middle dim of a row-major [outer, n, inner] fp16 tensor. */
int its_cuda_softmax(const void *x, void *y, int64_t outer, int n, int64_t inner,
                     cudaStream_t stream);

/* NHWC fp16 max pooling, square kernel, symmetric padding (padded cells never win). xcs / ycs:
 * elements from one pixel to the next in x / y (0: packed, c), so that either may be a channel
 * slice of a wider tensor (a Split view, a Concat slice). */
int its_cuda_maxpool_nhwc(const void *x, int64_t xcs, void *y, int64_t ycs, int b, int h, int w,
                          int c, int k, int stride, int pad, int oh, int ow, cudaStream_t stream);

/* NHWC fp16 nearest upsampling by integer factors (asymmetric / floor: out[y] = in[y / f]);
 * xcs / ycs as for max pooling. */
int its_cuda_upsample_nhwc(const void *x, int64_t xcs, void *y, int64_t ycs, int b, int h, int w,
                           int c, int fy, int fx, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif

/*
 * cudnn_fused.h - one convolution plus its epilogue as a cuDNN 9 graph (private).
 *
 *     its_fconv_spec sp = {.n = 32, .c = 64, ..., .act = ITS_FCONV_SILU, .has_bias = 1};
 *     its_fconv f;
 *     if (its__fconv_build(handle, &sp, 1, &f) == 0)       // load time: heuristics, plan
 *         its__fconv_exec(handle, &f, x, w, bias, NULL, y, workspace);  // capturable
 *     its__fconv_free(&f);
 *
 * y = act(conv(x, w) + bias) + sum, or act(conv + bias + sum) with sum_first; x, w, sum, y
 * fp16 NHWC (w as K,R,S,C/groups), bias fp32 [K]. Build returns ITS_EUNSUPPORTED when cuDNN
 * has no engine for the graph (the caller then uses the legacy convolution).
 */
#ifndef ITS_CUDNN_FUSED_H
#define ITS_CUDNN_FUSED_H

#include <stdint.h>

#include <cuda_runtime_api.h>
#include <cudnn.h>

#define ITS_FCONV_MAX_DESC 24

enum { ITS_FCONV_NONE = 0, ITS_FCONV_RELU, ITS_FCONV_LEAKY, ITS_FCONV_SIGMOID, ITS_FCONV_SILU };

typedef struct its_fconv_spec {
    int64_t n, c, h, w, k, r, s, oh, ow;
    int64_t ph, pw, sh, sw, dh, dw, groups;
    int act; /* ITS_FCONV_* (the values of its_act) */
    float alpha;
    int has_bias, has_sum, sum_first;
    /* elements from one pixel to the next (0: packed): x, y or sum may be a channel slice of a
     * wider NHWC tensor (a Split view read, a Concat slice written in place); 16-byte aligned */
    int64_t xcs, ycs, scs;
    int64_t max_ws; /* largest workspace accepted */
} its_fconv_spec;

#define ITS_FCONV_MAX_CAND 8

typedef struct its_fconv {
    cudnnBackendDescriptor_t plan;
    int64_t ws;
    /* candidate plans kept for its__fconv_tune (plan is one of them) */
    int n_cand;
    cudnnBackendDescriptor_t cand[ITS_FCONV_MAX_CAND];
    int64_t cand_ws[ITS_FCONV_MAX_CAND];
    int n_desc;
    cudnnBackendDescriptor_t desc[ITS_FCONV_MAX_DESC];
} its_fconv;

/* keep: how many of the heuristics' engine configurations that finalise to keep as
 * candidates (1: the first, cuDNN's pick; up to ITS_FCONV_MAX_CAND). */
int its__fconv_build(cudnnHandle_t h, const its_fconv_spec *sp, int keep, its_fconv *f);
/* Time every candidate on these operands (stream: the handle's; not capturable: it
 * synchronises), keep the fastest and release the others. No-op with one candidate. */
int its__fconv_tune(cudnnHandle_t h, its_fconv *f, const void *x, const void *w, const void *bias,
                    const void *sum, void *y, void *ws, cudaStream_t stream);
int its__fconv_exec(cudnnHandle_t h, const its_fconv *f, const void *x, const void *w,
                    const void *bias, const void *sum, void *y, void *ws);
void its__fconv_free(its_fconv *f);

#endif

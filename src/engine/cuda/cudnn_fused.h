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

#define ITS_FCONV_MAX_DESC  96
#define ITS_FCONV_MAX_KNOBS 48

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

/* An engine configuration as the plan cache keeps it: cuDNN's global engine index and its
 * knob choices, and the variant of the graph it was built for (virtual tensors packed or
 * laid out like y). */
typedef struct its_fconv_cfg {
    int64_t engine;
    int32_t n_knobs, virt_like_y;
    int64_t knob_type[ITS_FCONV_MAX_KNOBS], knob_value[ITS_FCONV_MAX_KNOBS];
} its_fconv_cfg;

typedef struct its_fconv {
    cudnnBackendDescriptor_t plan;
    int64_t ws;
    its_fconv_cfg cfg; /* plan's configuration (cfg.engine < 0: not known) */
    its_fconv_cfg cand_cfg[ITS_FCONV_MAX_CAND];
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
/* The plan for a known configuration (from the plan cache): no heuristics query.
 * ITS_EUNSUPPORTED when it no longer builds (another cuDNN, another GPU, ...). */
int its__fconv_build_cfg(cudnnHandle_t h, const its_fconv_spec *sp, const its_fconv_cfg *cfg,
                         its_fconv *f);
/* The plan from its JSON serialisation (CUDNN_ATTR_EXECUTION_PLAN_JSON_REPRESENTATION;
 * cuDNN serialises only some engines, the runtime-compiled ones, and loading one skips their
 * compilation). ITS_EUNSUPPORTED where cuDNN refuses it. */
int its__fconv_load_json(cudnnHandle_t h, const its_fconv_spec *sp, const char *json, size_t len,
                         its_fconv *f);
/* *json = the plan's serialisation (its_malloc'd, *len bytes), or ITS_EUNSUPPORTED. */
int its__fconv_json(const its_fconv *f, char **json, size_t *len);
int its__fconv_exec(cudnnHandle_t h, const its_fconv *f, const void *x, const void *w,
                    const void *bias, const void *sum, void *y, void *ws);
void its__fconv_free(its_fconv *f);

#endif

/*
 * cuda_prepost.h - GPU pre- and post-processing of the cuda backend (private).
 *
 *     its_cuda_frame f[n];            // device pointers to 8-bit frames of any size
 *     its_cuda_letterbox_plan(f, n, 640, 640);        // fills each frame's scale and offsets
 *     cudaMemcpyAsync(d_frames, f, n * sizeof *f, cudaMemcpyHostToDevice, s);
 *     its_cuda_letterbox(d_frames, n, 640, 640, 4, d_input, s);   // NHWC fp16, 4 channels
 *     ... network writes d_out, [n, 4 + C, A] ...
 *     its_cuda_decode_nms(d_out, ..., d_frames, d_dets, s);
 *
 * Contract: all functions only enqueue work on `stream` (graph-capturable: no allocation, no
 * synchronisation, fixed launch shapes for a given n); they return 0 or ITS_EBACKEND if a
 * launch failed. Buffers are device memory owned by the caller (the engine's arena).
 */
#ifndef ITS_CUDA_PREPOST_H
#define ITS_CUDA_PREPOST_H

#include <cuda_runtime_api.h>
#include <stdint.h>

#include "its/det.h"    /* its_pixfmt, its_det */
#include "its/engine.h" /* its_engine_det_list */

#ifdef __cplusplus
extern "C" {
#endif

/* One input frame, as the letterbox kernel sees it. The host fills the first block; the plan
 * function fills the geometry block, which decode later uses to map boxes back. */
typedef struct its_cuda_frame {
    const uint8_t *data; /* device: packed pixels, or the Y plane for NV12 */
    const uint8_t *uv;   /* device: NV12 interleaved chroma plane; NULL otherwise */
    int32_t width, height;
    int32_t stride, uv_stride; /* bytes per row */
    int32_t fmt;               /* its_pixfmt */
    /* geometry (its_cuda_letterbox_plan) */
    int32_t new_w, new_h; /* size of the resized image on the canvas */
    int32_t left, top;    /* its offset on the canvas */
    float scale;          /* new size / source size */
} its_cuda_frame;

/* Ultralytics letterbox geometry: r = min(W/w, H/h), new size round(w*r) x round(h*r),
 * left = round((W-nw)/2 - 0.1), top = round((H-nh)/2 - 0.1). Host-side. */
void its_cuda_letterbox_plan(its_cuda_frame *f, int n, int dst_w, int dst_h);

/* One launch for the whole batch: bilinear resize (half-pixel centres, like OpenCV's
 * INTER_LINEAR upscaling) into a canvas padded with 114, RGB order, scaled by 1/255, written
 * as NHWC fp16 with `channels` channels (3..8; channels past 3 are zero, so the first
 * convolution can use a tensor-core friendly channel count). */
int its_cuda_letterbox(const its_cuda_frame *d_frames, int n, int dst_w, int dst_h, int channels,
                       void *d_out_nhwc_f16, cudaStream_t stream);

/* The same into NCHW fp32 (for the cpu-parity tests and NCHW consumers). */
int its_cuda_letterbox_nchw_f32(const its_cuda_frame *d_frames, int n, int dst_w, int dst_h,
                                float *d_out, cudaStream_t stream);

/* Scratch bytes its_cuda_decode_nms needs for a batch of n. */
size_t its_cuda_decode_scratch_bytes(int n, int n_anchor);

/*
 * YOLOv8/YOLO11 head output [n, 4 + n_cls, n_anchor] (rows cx, cy, w, h in network-input
 * pixels, then class scores), fp16 (`is_f16`) or fp32. For every anchor the best class is
 * taken; anchors with score >= conf become candidates (at most max_cand per image, keeping
 * the highest-scoring ones deterministically); class-aware greedy NMS at `iou` keeps at most
 * max_det, highest score first (ties: lower anchor index first). Boxes are mapped back to
 * source pixels with the frame geometry. Output: `d_lists` [n], `d_dets` [n * max_det].
 * max_cand <= 1024.
 */
int its_cuda_decode_nms(const void *d_head, int is_f16, int n, int n_cls, int n_anchor, float conf,
                        float iou, int max_cand, int max_det, const its_cuda_frame *d_frames,
                        void *d_scratch, its_engine_det_list *d_lists, its_det *d_dets,
                        cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif

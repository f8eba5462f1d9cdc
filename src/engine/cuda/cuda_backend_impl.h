/*
 * cuda_backend_impl.h - what the cuda backend exposes beyond the backend vtable, for its
 * benchmark and tests (private to the engine; not a public API).
 */
#ifndef ITS_CUDA_BACKEND_IMPL_H
#define ITS_CUDA_BACKEND_IMPL_H

#include <stddef.h>

#include "cuda_prepost.h"

/*
 * The frames path: 8-bit frames of mixed sizes and formats in, a compact detection list per
 * image out; letterbox, network, YOLOv8/11 decode and class-aware NMS in one CUDA graph per
 * prepared batch size and staging slot. Two slots: submit returns a ticket (0 or 1); the
 * upload of the next batch overlaps the compute of the one in flight; wait(ticket) blocks
 * and copies out n lists and n * max_det detections. Setup allocates everything (load time).
 */
typedef struct its__cuda_det_opts {
    float conf, iou;
    int max_cand, max_det;  /* max_cand <= 1024 */
    size_t max_frame_bytes; /* largest frame accepted (stride * height, NV12 incl. chroma) */
} its__cuda_det_opts;

int its__cuda_detect_setup(void *ctx, const its__cuda_det_opts *o);
/* frames[i].data / .uv: host pointers. Returns a ticket or a negative ITS_E* code
 * (ITS_EBUSY when both slots are in flight). */
int its__cuda_detect_submit(void *ctx, int batch, int n, const its_cuda_frame *frames);
int its__cuda_detect_wait(void *ctx, int ticket, its_cuda_det_list *lists, its_cuda_det *dets);

/* Replay the network-only CUDA graph of the prepared batch size `batch` (device-resident
 * input, no upload or download) iters times after 10 warm-up replays; ms[i] gets each
 * replay's device time. ctx: the backend context (its_backend_i.init). */
int its__cuda_time_net(void *ctx, int batch, int iters, float *ms, int n_ms);
/* One replay of the network-only graph, synchronously (for profilers). */
int its__cuda_replay_net(void *ctx, int batch);
/* Bytes of device memory holding the weights. */
size_t its__cuda_weight_bytes(void *ctx);

#endif

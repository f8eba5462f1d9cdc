/*
 * cuda_backend_impl.h - what the cuda backend exposes beyond the backend vtable, for its
 * benchmark and tests (private to the engine; not a public API).
 */
#ifndef ITS_CUDA_BACKEND_IMPL_H
#define ITS_CUDA_BACKEND_IMPL_H

#include <stddef.h>

#include "its/engine.h"

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
/* frames[i].data / .uv: host pointers (the geometry fields are ignored). Every frame is
 * checked first (sizes, strides, format, max_frame_bytes): ITS_EINVAL with no effect. Pixels
 * in memory from its__cuda_host_alloc are uploaded from where they are (they must stay valid
 * until the wait), others are copied into pinned staging. Returns a ticket (a free staging
 * slot) or a negative ITS_E* code (ITS_EBUSY when both slots are in flight). */
int its__cuda_detect_submit(void *ctx, int batch, int n, const its_cuda_frame *frames);
/* The same with the public frame descriptors (its_engine_detect_submit). */
int its__cuda_detect_submit_frames(void *ctx, int batch, int n, const its_engine_frame *frames);
/* Waits for a ticket's batch; the ticket is released even on failure. Returns n. */
int its__cuda_detect_wait(void *ctx, int ticket, its_engine_det_list *lists, its_det *dets);

/* 1 if the ticket's batch is done, 0 if not, or an ITS_E* code (never blocks). */
int its__cuda_detect_poll(void *ctx, int ticket);

/* cuda_frames.c: the backend vtable's frames-path entries (public types in, the functions
 * above underneath) and the pinned host allocator behind its_engine_host_alloc. */
int its__cuda_vt_detect_setup(void *ctx, const its_engine_detect_opts *o, char *err, size_t errlen);
int its__cuda_vt_detect_submit(void *ctx, int batch, int n, const its_engine_frame *frames);
int its__cuda_vt_detect_wait(void *ctx, int ticket, its_engine_det_list *lists, its_det *dets);
/* cudaHostAlloc (portable) memory, remembered so submit knows it may DMA from it. */
void *its__cuda_host_alloc(size_t bytes);
void its__cuda_host_free(void *p);
/* 1 if [p, p + n) lies inside one block from its__cuda_host_alloc. Any thread. */
int its__cuda_host_pinned(const void *p, size_t n);

/* Replay the network-only CUDA graph of the prepared batch size `batch` (device-resident
 * input, no upload or download) iters times after 10 warm-up replays; ms[i] gets each
 * replay's device time. ctx: the backend context (its_backend_i.init). */
int its__cuda_time_net(void *ctx, int batch, int iters, float *ms, int n_ms);
/* One replay of the network-only graph, synchronously (for profilers). */
int its__cuda_replay_net(void *ctx, int batch);
/* Bytes of device memory holding the weights. */
size_t its__cuda_weight_bytes(void *ctx);

#endif

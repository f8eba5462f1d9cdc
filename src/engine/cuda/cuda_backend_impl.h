/*
 * cuda_backend_impl.h - the cuda backend's extension for its GPU tests and benchmark
 * ("cuda_devtools", looked up through its_backend_i.get_proc): what the public API hides,
 * reached with the backend context (private to the engine and its tests; not a public API).
 *
 *     const its_backend_i *b = its__backend_find("cuda", err, sizeof err);
 *     const its_cuda_devtools_i *dt = b->get_proc(ITS_CUDA_EXT_DEVTOOLS);
 *     dt->time_net(ctx, 8, 200, ms, 200);
 *
 * The test and benchmark reach the backend only through this table (and the vtable): the
 * backend lives in the module its_cuda.so, with its own copy of the CUDA runtime.
 */
#ifndef ITS_CUDA_BACKEND_IMPL_H
#define ITS_CUDA_BACKEND_IMPL_H

#include <stddef.h>

#include "its/engine.h"

#include "cuda_prepost.h"

#define ITS_CUDA_EXT_DEVTOOLS "cuda_devtools"

/* Options of the frames path in the backend's own terms. */
typedef struct its__cuda_det_opts {
    float conf, iou;
    int max_cand, max_det;  /* max_cand <= 1024 */
    size_t max_frame_bytes; /* largest frame accepted (stride * height, NV12 incl. chroma) */
} its__cuda_det_opts;

typedef struct its_cuda_devtools_i {
    /*
     * The frames path: 8-bit frames of mixed sizes and formats in, a compact detection list
     * per image out; letterbox, network, YOLOv8/11 decode and class-aware NMS in one CUDA
     * graph per prepared batch size and staging slot. Two slots: submit returns a ticket (0
     * or 1); the upload of the next batch overlaps the compute of the one in flight;
     * wait(ticket) blocks and copies out n lists and n * max_det detections. Setup allocates
     * everything (load time).
     */
    int (*detect_setup)(void *ctx, const its__cuda_det_opts *o);
    /* frames[i].data / .uv: host pointers (the geometry fields are ignored). Every frame is
     * checked first (sizes, strides, format, max_frame_bytes): ITS_EINVAL with no effect.
     * Pixels in memory from host_alloc are uploaded from where they are (they must stay
     * valid until the wait), others are copied into pinned staging. Returns a ticket (a free
     * staging slot) or a negative ITS_E* code (ITS_EBUSY when both slots are in flight). */
    int (*detect_submit)(void *ctx, int batch, int n, const its_cuda_frame *frames);
    /* Waits for a ticket's batch; the ticket is released even on failure. Returns n. */
    int (*detect_wait)(void *ctx, int ticket, its_engine_det_list *lists, its_det *dets);
    /* cudaHostAlloc (portable) memory that detect_submit uploads from directly. */
    void *(*host_alloc)(size_t bytes);
    void (*host_free)(void *p);
    /* Replay the network-only CUDA graph of the prepared batch size `batch` (device-resident
     * input, no upload or download) iters times after 10 warm-up replays; ms[i] gets each
     * replay's device time. */
    int (*time_net)(void *ctx, int batch, int iters, float *ms, int n_ms);
    /* One replay of the network-only graph, synchronously (for profilers). */
    int (*replay_net)(void *ctx, int batch);
    /* Bytes of device memory holding the weights. */
    size_t (*weight_bytes)(void *ctx);
    /* its_cuda_letterbox_plan of cuda_prepost.h (host code), for the tests' references. */
    void (*letterbox_plan)(its_cuda_frame *f, int n, int dst_w, int dst_h);
} its_cuda_devtools_i;

#endif

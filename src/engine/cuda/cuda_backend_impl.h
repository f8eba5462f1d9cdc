/*
 * cuda_backend_impl.h - what the cuda backend exposes beyond the backend vtable, for its
 * benchmark and tests (private to the engine; not a public API).
 */
#ifndef ITS_CUDA_BACKEND_IMPL_H
#define ITS_CUDA_BACKEND_IMPL_H

#include <stddef.h>

/* Replay the network-only CUDA graph of the prepared batch size `batch` (device-resident
 * input, no upload or download) iters times after 10 warm-up replays; ms[i] gets each
 * replay's device time. ctx: the backend context (its_backend_i.init). */
int its__cuda_time_net(void *ctx, int batch, int iters, float *ms, int n_ms);
/* One replay of the network-only graph, synchronously (for profilers). */
int its__cuda_replay_net(void *ctx, int batch);
/* Bytes of device memory holding the weights. */
size_t its__cuda_weight_bytes(void *ctx);

#endif

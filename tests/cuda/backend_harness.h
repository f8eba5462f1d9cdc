/*
 * backend_harness.h - drive an engine backend directly through its vtable (as engine.c
 * does), for the cuda parity test and the GPU benchmark, which need what the public API
 * hides: every intermediate tensor, the backend context.
 *
 *     its_bh h;
 *     its_bh_load(&h, "yolo11n.onnx", "cuda", 32, probe_all, err, sizeof err);
 *     its_bh_run(&h, 8, 8, inputs, outputs);
 *     its_bh_free(&h);
 */
#ifndef ITS_BACKEND_HARNESS_H
#define ITS_BACKEND_HARNESS_H

#include <stddef.h>

#include "backend.h"
#include "ir.h"

#define ITS_BH_MAX_PLANS 8

typedef struct its_bh {
    its_graph g; /* the backend's copy */
    const its_backend_i *b;
    void *ctx;
    int n_batches, batches[ITS_BH_MAX_PLANS];
    its_shape *shapes[ITS_BH_MAX_PLANS];
} its_bh;

/* Load, run the generic passes, optionally mark every activation a graph output (probe:
 * per-op comparison; blocks fusion), then init/optimize/prepare batches 1, 2, 4.. max_batch. */
int its_bh_load(its_bh *h, const char *path, const char *backend, int max_batch, int probe,
                char *err, size_t errlen);
/* Shapes of the plan for batch (NULL if not prepared). */
const its_shape *its_bh_shapes(const its_bh *h, int batch);
int its_bh_run(its_bh *h, int batch, int n, const void *const *in, void *const *out);
/* The extension table `name` of the backend (its_backend_i.get_proc), loading the backend's
 * module if needed; NULL if the backend or the extension is missing. No device needed. */
const void *its_bh_ext(const char *backend, const char *name);
void its_bh_free(its_bh *h);

#endif

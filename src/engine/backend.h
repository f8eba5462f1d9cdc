/*
 * backend.h - the compute backend interface (ggml's ggml_backend_i is the model).
 *
 * A backend turns an optimized its_graph into something runnable for a few fixed batch sizes
 * and runs it. The engine (engine.c) owns the graph and the calling sequence:
 *
 *     ctx = b->init(opts)                       once per engine
 *     b->optimize(ctx, g)                       backend-specific passes on the engine's copy
 *     for each node: b->supports_op(ctx, g, i)  refuse the model early, naming the node
 *     for each batch size B (1, 2, 4, ..., max_batch):
 *         its__infer_shapes(g, B, shapes); b->prepare(ctx, g, B, shapes)
 *     b->run(ctx, B, n, inputs, outputs)        n <= B real items; B is a prepared size
 *     b->sync(ctx)                              wait for run to finish (no-op on cpu)
 *     b->free(ctx)
 *
 * Contract: prepare may allocate (primitives, reordered weights, the arena); run must not.
 * run gets host pointers: inputs[i] holds n items of graph input i (a non-batched input:
 * its whole tensor), outputs[i] receives n items of graph output i; items n..B-1 of the
 * prepared batch are padding whose results are dropped. The graph (g) passed to prepare
 * outlives ctx. All errors are ITS_E* codes with a message in err.
 *
 * Registration: backends live in src/engine/<name>/ and each defines one
 * `const its_backend_reg its__backend_<name>`; the build generates the table that lists them
 * (backends_gen.c), so no #ifdef names a backend outside its folder.
 */
#ifndef ITS_ENGINE_BACKEND_H
#define ITS_ENGINE_BACKEND_H

#include <stddef.h>

#include "ir.h"

typedef struct its_backend_i {
    const char *name;
    /* 1 if usable on this machine (a GPU present...). */
    int (*available)(void);
    int (*init)(const its_engine_opts *opts, void **ctx, char *err, size_t errlen);
    /* Optional (NULL = none): fusion/layout passes on the engine's copy of the graph. */
    int (*optimize)(void *ctx, its_graph *g, char *err, size_t errlen);
    /* 1 if node g->nodes[i] (with its attributes and dtypes) can run here. */
    int (*supports_op)(void *ctx, const its_graph *g, int node);
    int (*prepare)(void *ctx, const its_graph *g, int batch, const its_shape *shapes, char *err,
                   size_t errlen);
    int (*run)(void *ctx, int batch, int n, const void *const *inputs, void *const *outputs);
    int (*sync)(void *ctx);
    /* Bytes of the activation arena (the largest prepared batch). */
    size_t (*arena_bytes)(void *ctx);
    void (*free)(void *ctx);
    /* Optional (NULL: none): the frames path of its/engine.h (its_engine_detect_*). The
     * engine checks the model's head and fills the options' defaults before setup; submit
     * gets a prepared batch size and n <= batch real frames. */
    int (*detect_setup)(void *ctx, const its_engine_detect_opts *o, char *err, size_t errlen);
    int (*detect_submit)(void *ctx, int batch, int n, const its_engine_frame *frames);
    int (*detect_wait)(void *ctx, int ticket, its_engine_det_list *lists, its_det *dets);
    int (*detect_poll)(void *ctx, int ticket); /* 1 done, 0 running, < 0 error */
    /* Optional: host memory the backend uploads from directly (its_engine_host_alloc). */
    void *(*host_alloc)(size_t bytes);
    void (*host_free)(void *p);
} its_backend_i;

typedef struct its_backend_reg {
    const its_backend_i *iface;
} its_backend_reg;

/* The generated table (backends_gen.c), NULL-terminated. */
extern const its_backend_reg *const its__backends[];

#endif

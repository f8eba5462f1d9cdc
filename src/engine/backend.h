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
 * Optional steps (NULL in the vtable: none):
 *     b->plan_cache(ctx, &cache)                after optimize, before the first prepare:
 *                                               where the plan cache lives and the engine's
 *                                               part of its key (plancache.h)
 *     b->share(ctx, &ctx2)                      after the last prepare: a second context
 *                                               running the same plans on the same weights
 *                                               with its own execution state
 *
 * Contract: prepare may allocate (primitives, reordered weights, the arena); run must not.
 * run gets host pointers: inputs[i] holds n items of graph input i (a non-batched input:
 * its whole tensor), outputs[i] receives n items of graph output i; items n..B-1 of the
 * prepared batch are padding whose results are dropped. The graph (g) passed to prepare
 * outlives ctx. All errors are ITS_E* codes with a message in err.
 *
 * Extensions: what only some backends do is not in the vtable. A backend advertises it
 * through get_proc (ggml's get_proc_address): get_proc(name) returns a pointer to the
 * extension table of that name, or NULL where the backend has none. The tables are below;
 * the engine looks them up once per engine (frames) or per call (host memory).
 *
 * Registration: a backend lives in src/engine/<name>/. Built into the engine, it defines one
 * `const its_backend_reg its__backend_<name>` and the build lists it in the generated table
 * (backends_gen.c). Built as a loadable module (the cuda backend: its_cuda.so, opened with
 * dlopen only when an engine asks for it, so a process that never does maps none of its
 * libraries), it exports ITS_BACKEND_MODULE_ENTRY returning its vtable, and the build lists
 * its name in its__backend_modules. No #ifdef names a backend outside its folder.
 */
#ifndef ITS_ENGINE_BACKEND_H
#define ITS_ENGINE_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "its/engine.h"

#include "ir.h"

/* The engine's part of a plan cache key (plancache.h); the backend adds its device's. */
typedef struct its_backend_cache {
    const char *dir;        /* the cache folder (exists or is created at the first write) */
    const char *model_hash; /* hex SHA-256 of the ONNX bytes */
    int in_w, in_h;         /* network input size (0 if not an image input) */
    const int *batches;     /* the batch sizes prepare will be called with, in order */
    int n_batches;
} its_backend_cache;

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
    /* 1 if a batch of n items costs what its prepared size costs (a captured graph runs the
     * whole padded batch), 0 if it costs n items (its_engine_batches_padded). */
    int padded_batches;
    /* Optional (NULL: no extensions): the extension table called name, or NULL. */
    const void *(*get_proc)(const char *name);
    /* Optional: use the plan cache described by c (strings valid during the call only).
     * Planning then takes what the file has and rewrites it where it had to plan anew; a
     * missing, stale or corrupt file only costs the planning. */
    void (*plan_cache)(void *ctx, const its_backend_cache *c);
    /* Optional: *out = a context sharing ctx's weights and plans (read-only once prepared),
     * with its own execution state; either may be freed first, and the two may run on
     * different threads at once. Called after the last prepare. */
    int (*share)(void *ctx, void **out, char *err, size_t errlen);
} its_backend_i;

/* Counted into its_engine_counters by backends (any thread): plan cache lookups answered
 * (hits) and planned anew (misses), cache files rejected (stale, corrupt, no longer
 * building), and searches run (cuDNN heuristics queries, algorithm searches, autotuning). */
void its__engine_count_plans(uint64_t hits, uint64_t misses, uint64_t rejected, uint64_t searches);

/*
 * Extension "frames" (ITS_BACKEND_EXT_FRAMES): the frames path of its/engine.h
 * (its_engine_detect_*). The engine checks the model's head and fills the options' defaults
 * before setup; submit gets a prepared batch size and n <= batch real frames and returns a
 * ticket, 0 or 1 (at most two batches in flight); wait returns n; poll returns 1 when done,
 * 0 while running, or an ITS_E* code. Resources of setup are freed by the vtable's free.
 */
#define ITS_BACKEND_EXT_FRAMES "frames"
typedef struct its_backend_frames_i {
    int (*setup)(void *ctx, const its_engine_detect_opts *o, char *err, size_t errlen);
    int (*submit)(void *ctx, int batch, int n, const its_engine_frame *frames);
    int (*wait)(void *ctx, int ticket, its_engine_det_list *lists, its_det *dets);
    int (*poll)(void *ctx, int ticket);
} its_backend_frames_i;

/*
 * Extension "host_mem" (ITS_BACKEND_EXT_HOST_MEM): host memory the backend uploads from
 * directly (its_engine_host_alloc). Process-wide (no engine); any thread; alloc returns NULL
 * on failure; free takes only what alloc returned.
 */
#define ITS_BACKEND_EXT_HOST_MEM "host_mem"
typedef struct its_backend_host_mem_i {
    void *(*alloc)(size_t bytes);
    void (*free)(void *p);
} its_backend_host_mem_i;

typedef struct its_backend_reg {
    const its_backend_i *iface;
} its_backend_reg;

/* The generated tables (backends_gen.c): backends built into the engine, NULL-terminated,
 * and the names of those built as loadable modules (its_<name>.so), NULL-terminated. */
extern const its_backend_reg *const its__backends[];
extern const char *const its__backend_modules[];
/* Where the build put the modules (the fallback of the module search, engine.c). */
extern const char its__backend_module_dir[];

/* The symbol a backend module exports: `const its_backend_i *its_backend_module(void)`. */
#define ITS_BACKEND_MODULE_ENTRY "its_backend_module"
typedef const its_backend_i *(*its_backend_module_fn)(void);

/*
 * The backend called name: built in, or its module loaded on first use (engine.c, "Backend
 * modules"). NULL with the reason in err (unknown name; module missing or failing to load,
 * with dlerror's text). Availability (a device present) is not checked. Thread-safe.
 */
const its_backend_i *its__backend_find(const char *name, char *err, size_t errlen);

#endif

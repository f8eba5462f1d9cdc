/*
 * its/engine.h - the inference engine: load an ONNX detector, prepare it on a backend, run
 * batches.
 *
 *     its_model_t *m;
 *     char err[256];
 *     if (its_model_load("yolo11n.onnx", &m, err, sizeof err) < 0)
 *         fprintf(stderr, "%s\n", err);   // "node 'Conv_12' (Conv): weight shape ..."
 *     its_engine_opts o = {.backend = "cpu", .threads = 2, .max_batch = 4};
 *     its_engine_t *e;
 *     its_engine_create(m, &o, &e, err, sizeof err);
 *     its_engine_run(e, 4, input_nchw, outputs);   // outputs[i]: host buffers, batch 4
 *     its_engine_destroy(e);
 *     its_model_free(m);
 *
 * Contract: a model is immutable after loading and may be shared by several engines. An
 * engine owns all memory its runs need (arena planned at create time for max_batch); a run
 * allocates nothing. One thread at a time may call run/submit/wait on an engine. Errors are
 * ITS_E* codes; details go to `err` and the log.
 */
#ifndef ITS_ENGINE_H
#define ITS_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#define ITS_MAX_DIMS 8

typedef struct its_model its_model_t;
typedef struct its_engine its_engine_t;

typedef enum its_dtype {
    ITS_DT_FLOAT32 = 1, /* values follow onnx.TensorProto.DataType */
    ITS_DT_UINT8 = 2,
    ITS_DT_INT8 = 3,
    ITS_DT_INT32 = 6,
    ITS_DT_INT64 = 7,
    ITS_DT_BOOL = 9,
    ITS_DT_FLOAT16 = 10,
} its_dtype;

/* A graph input or output. dims[0] is -1 when the batch dimension is symbolic. */
typedef struct its_tensor_desc {
    const char *name;
    its_dtype dtype;
    int rank;
    int64_t dims[ITS_MAX_DIMS];
} its_tensor_desc;

int its_model_load(const char *path, its_model_t **out, char *err, size_t errlen);
int its_model_load_buffer(const void *data, size_t len, its_model_t **out, char *err,
                          size_t errlen);
void its_model_free(its_model_t *m);

int its_model_n_inputs(const its_model_t *m);
int its_model_n_outputs(const its_model_t *m);
const its_tensor_desc *its_model_input(const its_model_t *m, int i);
const its_tensor_desc *its_model_output(const its_model_t *m, int i);
/* metadata_props value for key ("names", "stride", "imgsz"...), or NULL. */
const char *its_model_meta(const its_model_t *m, const char *key);

typedef struct its_engine_opts {
    const char *backend; /* "cpu" (default) or "cuda" */
    int threads;         /* cpu: worker threads, 0 = number of cores */
    int max_batch;       /* largest batch run will be given; 0 = 1 */
    int device;          /* cuda: device ordinal */
} its_engine_opts;

int its_engine_create(const its_model_t *m, const its_engine_opts *opts, its_engine_t **out,
                      char *err, size_t errlen);
void its_engine_destroy(its_engine_t *e);

/*
 * Run a batch of n (1..max_batch) inputs synchronously. input: the model's first input as
 * float32 NCHW, n images back to back. outputs[i]: caller buffers for output i with the
 * batch dimension set to n, float32.
 */
int its_engine_run(its_engine_t *e, int n, const float *input, float *const *outputs);

/*
 * Additions (additive to the lead's API):
 * its_engine_run_io: like its_engine_run for any model: inputs[i] holds n items of graph
 * input i in its own dtype (a non-batched input: the whole tensor), outputs[i] receives n
 * items of output i in its dtype.
 * its_engine_output_shape: the shape output i has for a batch of n (n <= max_batch).
 * its_model_n_meta / its_model_meta_at: iterate over metadata_props (strings owned by m).
 * its_model_n_nodes: nodes after the load-time passes (for a model-info dump).
 */
/* its_model_load_buffer_frozen: load with some graph inputs fixed to the given values (they
 * become constants, so shape inputs such as Reshape's shape may come from the caller). */
typedef struct its_input_value {
    const char *name;
    const void *data;
    size_t bytes;
} its_input_value;
int its_model_load_buffer_frozen(const void *data, size_t len, const its_input_value *vals,
                                 int n_vals, its_model_t **out, char *err, size_t errlen);
int its_engine_run_io(its_engine_t *e, int n, const void *const *inputs, void *const *outputs);
int its_engine_output_shape(const its_engine_t *e, int i, int n, its_tensor_desc *out);
int its_engine_max_batch(const its_engine_t *e);
int its_model_n_meta(const its_model_t *m);
int its_model_meta_at(const its_model_t *m, int i, const char **key, const char **value);
int its_model_n_nodes(const its_model_t *m);

/* Bytes of the activation arena planned for max_batch. */
size_t its_engine_arena_bytes(const its_engine_t *e);
const char *its_engine_backend_name(const its_engine_t *e);
/* 1 if the named backend is compiled in and usable here (a GPU present for "cuda"). */
int its_engine_backend_available(const char *backend);

#endif

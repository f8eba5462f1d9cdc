/*
 * ir.h - the engine's intermediate representation, its passes and the memory planner.
 *
 * The pipeline (ARCHITECTURE §5):
 *
 *     ONNX bytes --its__onnx_load--> its_graph --its__graph_optimize--> its_graph (model)
 *     model graph --clone + backend->optimize--> engine graph
 *     engine graph --its__infer_shapes(batch)--> its_shape[] --backend->prepare--> plan
 *
 * An its_graph is a flat SSA-like list of tensors and nodes, always kept in topological order
 * (node i only reads tensors produced by nodes < i, constants or graph inputs). Tensors and
 * nodes are referred to by index (int), never by pointer, so the arrays may grow. A removed
 * node has op ITS_OP_NONE (passes compact the graph with its__graph_compact afterwards).
 *
 * Shapes: tensor->dims hold the shape at batch 1 (the load-time validation run), with
 * tensor->batched set where dim 0 scales with the batch. Concrete shapes for a batch size
 * live outside the graph, in an its_shape array (one per tensor) that its__infer_shapes
 * fills, so one graph can be prepared for several batch sizes.
 *
 * Batch: graph inputs whose first dimension is symbolic (or 1 in a model whose exporter baked
 * batch 1, as Ultralytics does) are "batched". When shape inference runs for batch B, such
 * an input gets dim 0 = B and every Reshape whose constant target shape starts with 1 while
 * its input has dim 0 = B is rewritten to start with B (Resize `sizes` likewise): the
 * exports bake batch 1 into those constants.
 *
 * Conv fusions are node fields, not new node kinds: an ITS_OP_CONV node carries an optional
 * activation and an optional residual tensor (see its_ir_node). The generic load-time passes
 * never set them; a backend runs the fusion passes it can honour on its own copy of the graph
 * (backend->optimize), so a backend without fusion support sees plain nodes.
 *
 * Ownership: a graph owns its tensors, nodes, names, attributes and constant data, except
 * constant data marked ITS_TF_BORROWED (clones borrow the model's weights, which outlive
 * every engine made from the model).
 */
#ifndef ITS_ENGINE_IR_H
#define ITS_ENGINE_IR_H

#include <stddef.h>
#include <stdint.h>

#include "its/engine.h"

/* Op kinds. ONNX op names map 1:1 except the internal ones marked (internal). */
#define ITS_OP_TABLE(X)                                                                            \
    X(NONE, "")                                                                                    \
    X(CONV, "Conv")                                                                                \
    X(CONV_INTEGER, "ConvInteger")                                                                 \
    X(DYNAMIC_QUANTIZE_LINEAR, "DynamicQuantizeLinear")                                            \
    X(QUANTIZE_LINEAR, "QuantizeLinear")                                                           \
    X(DEQUANTIZE_LINEAR, "DequantizeLinear")                                                       \
    X(MATMUL, "MatMul")                                                                            \
    X(ADD, "Add")                                                                                  \
    X(SUB, "Sub")                                                                                  \
    X(MUL, "Mul")                                                                                  \
    X(DIV, "Div")                                                                                  \
    X(SIGMOID, "Sigmoid")                                                                          \
    X(LEAKY_RELU, "LeakyRelu")                                                                     \
    X(RELU, "Relu")                                                                                \
    X(SOFTMAX, "Softmax")                                                                          \
    X(CONCAT, "Concat")                                                                            \
    X(SPLIT, "Split")                                                                              \
    X(SLICE, "Slice")                                                                              \
    X(RESHAPE, "Reshape")                                                                          \
    X(TRANSPOSE, "Transpose")                                                                      \
    X(RESIZE, "Resize")                                                                            \
    X(MAXPOOL, "MaxPool")                                                                          \
    X(CAST, "Cast")                                                                                \
    X(IDENTITY, "Identity")                                                                        \
    X(SILU, "(Silu)")     /* internal: x * sigmoid(x), from the SiLU fusion */                     \
    X(LAYOUT, "(Layout)") /* internal: 4-D layout change, attr "to": 0 NCHW, 1 NHWC */

typedef enum its_op {
#define ITS__OP_ENUM(id, name) ITS_OP_##id,
    ITS_OP_TABLE(ITS__OP_ENUM)
#undef ITS__OP_ENUM
        ITS_OP_COUNT
} its_op;

/* ONNX name of an op ("Conv"); its__op_from_name returns ITS_OP_NONE when unknown. */
const char *its__op_name(its_op op);
its_op its__op_from_name(const char *name);

/* Activations a Conv may carry after fusion. */
typedef enum its_act {
    ITS_ACT_NONE = 0,
    ITS_ACT_RELU,
    ITS_ACT_LEAKY, /* alpha = act_alpha */
    ITS_ACT_SIGMOID,
    ITS_ACT_SILU,
} its_act;

/* Attribute of a node, as ONNX gives it (only the kinds our ops use). */
typedef enum its_attr_kind {
    ITS_ATTR_INT = 1,
    ITS_ATTR_FLOAT,
    ITS_ATTR_STRING,
    ITS_ATTR_INTS,
    ITS_ATTR_FLOATS,
} its_attr_kind;

typedef struct its_attr {
    char *name;
    its_attr_kind kind;
    int64_t i;
    float f;
    char *s; /* STRING (NUL-terminated copy) */
    int n;   /* INTS / FLOATS count */
    int64_t *ints;
    float *floats;
} its_attr;

enum its_tensor_kind {
    ITS_TK_ACT = 0, /* produced by a node */
    ITS_TK_INPUT,   /* graph input (fed at run time) */
    ITS_TK_CONST,   /* initializer or folded constant: data != NULL */
};

/* tensor->flags */
#define ITS_TF_OUTPUT   1u /* a graph output */
#define ITS_TF_BORROWED 2u /* data belongs to another graph (clone) */

typedef struct its_shape {
    int rank;
    int64_t dims[ITS_MAX_DIMS];
} its_shape;

typedef struct its_ir_tensor {
    char *name;
    its_dtype dtype;
    int kind;        /* its_tensor_kind */
    unsigned flags;  /* ITS_TF_* */
    its_shape shape; /* at batch 1 (see top comment) */
    int batched;     /* dim 0 scales with the batch */
    void *data;      /* constants: dense row-major data, its_malloc'd (ITS_MOD_ENGINE) */
    int producer;    /* node index, -1 for inputs and constants */
    int n_consumers; /* number of node inputs reading it (outputs count once more) */
} its_ir_tensor;

#define ITS_IR_MAX_IO 16 /* inputs/outputs per node (Concat may have more: see in_extra) */

typedef struct its_ir_node {
    char *name; /* ONNX node name, or "<op>_<index>" when the file has none */
    its_op op;
    int n_in, n_out;
    int *in;  /* tensor indices; -1 for an omitted optional input */
    int *out; /* tensor indices */
    int n_attrs;
    its_attr *attrs;
    /* Fusion results (ITS_OP_CONV only): y = act(conv(x) + sum) when sum_first, else
     * act(conv(x)) + sum. sum is a tensor index or -1. */
    its_act act;
    float act_alpha;
    int sum;
    int sum_first;
    /* Fused fake quantization (a QuantizeLinear + DequantizeLinear pair of a QDQ model, per
     * tensor), ITS_OP_CONV only: k = 0 applies to the conv result before the activation,
     * k = 1 after it: y = (clamp(round(y / s), lo - zp, hi - zp)) * s. */
    int fq_on[2];
    float fq_scale[2];
    int32_t fq_zp[2], fq_lo[2], fq_hi[2];
    /* Integer convolution (CPU backend, QDQ models), ITS_OP_CONV only: q_src = 1 when in[0] is
     * an 8-bit tensor holding round(x / q_src_scale) + q_src_zp; the weights stay float in the
     * graph (the backend recovers their int8 values). The output dtype is float32, or the 8-bit
     * type q_dst (then it holds the final fake quantization's integers). */
    int q_src;
    float q_src_scale;
    int32_t q_src_zp;
    its_dtype q_dst; /* 0: float32 output */
} its_ir_node;

typedef struct its_meta {
    char *key, *value;
} its_meta;

typedef struct its_graph {
    int n_tensors, cap_tensors;
    its_ir_tensor *tensors;
    int n_nodes, cap_nodes;
    its_ir_node *nodes;
    int n_inputs, n_outputs; /* runtime graph inputs (initializer-backed inputs excluded) */
    int *inputs, *outputs;   /* tensor indices */
    int n_meta;
    its_meta *meta;
    int64_t opset; /* ai.onnx opset */
    int64_t ir_version;
} its_graph;

/* ---- graph building and queries (ir.c) ---- */
int its__graph_init(its_graph *g);
void its__graph_free(its_graph *g);
/* Deep copy of structure and names; constant data is borrowed (ITS_TF_BORROWED). */
int its__graph_clone(const its_graph *src, its_graph *dst);
/* Append a tensor (name copied) / a node; returns its index or a negative ITS_E* code. */
int its__graph_add_tensor(its_graph *g, const char *name, its_dtype dt, int kind);
int its__graph_add_node(its_graph *g, const char *name, its_op op, int n_in, const int *in,
                        int n_out, const int *out);
int its__graph_find_tensor(const its_graph *g, const char *name);
/* Recompute producer/n_consumers and put nodes in topological order; fails (naming a node)
 * on cycles, dangling inputs or tensors produced twice. */
int its__graph_toposort(its_graph *g, char *err, size_t errlen);
/* Drop ITS_OP_NONE nodes and tensors nobody uses any more. */
int its__graph_compact(its_graph *g);

const its_attr *its__attr(const its_ir_node *n, const char *name);
int64_t its__attr_i(const its_ir_node *n, const char *name, int64_t def);
float its__attr_f(const its_ir_node *n, const char *name, float def);
const char *its__attr_s(const its_ir_node *n, const char *name, const char *def);

size_t its__dtype_size(its_dtype dt); /* 0 for unsupported types */
int64_t its__shape_numel(const its_shape *s);
const char *its__dtype_name(its_dtype dt);

/* ---- loading (onnx_load.c) ---- */
int its__onnx_load(const void *data, size_t len, its_graph *g, char *err, size_t errlen);
/* One serialized TensorProto (the conformance data's input_N.pb) -> dense data (its_free). */
int its__onnx_load_tensor(const void *data, size_t len, its_dtype *dt, its_shape *shape, void **out,
                          char *name, size_t namelen, char *err, size_t errlen);

/* ---- shape inference (shape.c) ----
 * Fills shapes[t] for every tensor at the given batch size and checks every node's inputs
 * (ranks, dtypes, attribute values, sizes); errors name the node and the reason. Constant
 * shapes come from the graph. Also checks sizes against an upper bound so that absurd dims
 * in a hostile file fail here rather than at allocation. */
int its__infer_shapes(const its_graph *g, int batch, its_shape *shapes, char *err, size_t errlen);
/* Batch-1 inference that also stores the result in tensor->shape and sets ->batched. */
int its__graph_infer(its_graph *g, char *err, size_t errlen);
/* Run the graph at another input H x W (one [N, C, H, W] input): re-derives the Reshape
 * targets and Ultralytics anchor tables baked for the exported size, then re-infers; fails
 * naming the node where a baked size cannot be re-derived (the graph is then unusable). */
int its__graph_set_input_hw(its_graph *g, int64_t h, int64_t w, char *err, size_t errlen);

/* ---- passes (passes.c) ---- all keep the graph topologically sorted and shapes valid. */
int its__pass_fold_constants(its_graph *g, char *err, size_t errlen); /* incl. DQ on weights */
int its__pass_fold_conv_bias(its_graph *g); /* Conv + Add(const per-channel) -> bias */
int its__pass_fuse_silu(its_graph *g);      /* Sigmoid(x)*x -> SILU */
int its__pass_fuse_conv_act(its_graph *g, unsigned acts); /* acts: 1u << its_act accepted */
int its__pass_fuse_conv_sum(its_graph *g);
/* Conv(+act) followed by QuantizeLinear + DequantizeLinear (same per-tensor constants) ->
 * fq_on[stage] (stage 0: no activation fused yet; 1: after the activation). */
int its__pass_fuse_conv_fq(its_graph *g, int stage); /* Conv(+act) + Add(residual) -> sum */
/* The generic pipeline run at load time: fold constants, fuse SiLU, compact. */
int its__graph_optimize(its_graph *g, char *err, size_t errlen);

/* ---- memory planner (planner.c) ----
 * Assigns every activation tensor (kind ACT, and INPUT when inputs_in_arena) an offset in one
 * arena by liveness: a tensor lives from its producer to its last consumer (graph outputs
 * until the end); freed blocks are reused best-fit. Tensors listed as aliases (alias[t] >= 0)
 * share their source's block (views: Reshape, Identity) and extend its life.
 * bytes[t]: size of tensor t (0 = not placed). offsets[t] = SIZE_MAX for unplaced tensors.
 * Returns the arena size in *arena_bytes. */
int its__plan_memory(const its_graph *g, const size_t *bytes, const int *alias, size_t align,
                     size_t *offsets, size_t *arena_bytes);

/* ---- reference kernels (kernels.c), shared by constant folding and the CPU backend ----
 * Run one node on host memory: in[i]/out[i] point at dense row-major data with the shapes
 * given. Conv here is the slow direct reference (the CPU backend uses oneDNN instead). */
int its__kernel_run(const its_graph *g, const its_ir_node *n, const its_shape *in_shapes,
                    const void *const *in, const its_shape *out_shapes, void *const *out);

#endif

/* model_zoo.c - see model_zoo.h. The valid model: images [N, 3, 8, 8] -> Conv 3x3 (4 out,
 * pad 1, weights as raw_data, bias as float_data) -> Sigmoid * x (SiLU) -> MaxPool 2x2 ->
 * Reshape [1, -1] (batch baked as 1, like the real exports) -> out [N, 64]. */
#include <string.h>

#include "model_zoo.h"

static const char *const names[ZOO_COUNT] = {
    "valid",       "wrong_init_size", "unsupported_op",  "cycle",          "dangling",
    "absurd_dims", "bad_group",       "bad_reshape",     "output_missing", "dup_output",
    "bad_opset",   "wrong_type",      "weight_mismatch", "negative_dim",
};

static const char *const expect[ZOO_COUNT] = {
    "",
    "initializer 'W': has 420 bytes of data, its shape needs 432",
    "node 'foo0' (FooBar): unsupported op",
    "part of a cycle",
    "input 'ghost' is never produced",
    "initializer 'big'",
    "node 'conv0' (Conv): group 5",
    "node 'reshape0' (Reshape)",
    "graph output 'nothing' is never produced",
    "already defined",
    "unsupported ai.onnx opset 3",
    "node 'add0' (Add): types float32/int64",
    "node 'conv0' (Conv): weight has 2 input channels",
    "initializer 'neg': dimension 0 is -4",
};

const char *zoo_name(int v)
{
    return names[v];
}

const char *zoo_expect(int v)
{
    return expect[v];
}

#define L(...)                                                                                     \
    (const char *[])                                                                               \
    {                                                                                              \
        __VA_ARGS__, NULL                                                                          \
    }

void zoo_build(int v, pbw *out)
{
    pbw g = {0}, a = {0};
    float w[4 * 3 * 3 * 3], b[4] = {0.1f, -0.2f, 0.3f, 0.f};
    for (int i = 0; i < 108; i++)
        w[i] = (float)((i * 37) % 17 - 8) / 16.f;
    int64_t wdims[4] = {4, v == ZOO_WEIGHT_MISMATCH ? 2 : 3, 3, 3};
    size_t wbytes = (size_t)(wdims[0] * wdims[1] * 9) * sizeof(float);
    if (v == ZOO_WRONG_INIT_SIZE)
        wbytes -= 12;
    pbw_initializer(&g, "W", 1, 4, wdims, w, wbytes, 1);
    pbw_initializer(&g, "B", 1, 1, (int64_t[]){4}, b, sizeof b, 0);
    int64_t shape[2] = {1, v == ZOO_BAD_RESHAPE ? 7 : -1};
    pbw_initializer(&g, "shape", 7, 1, (int64_t[]){2}, shape, sizeof shape, 0);
    if (v == ZOO_ABSURD_DIMS)
        pbw_initializer(&g, "big", 1, 2, (int64_t[]){(int64_t)1 << 40, (int64_t)1 << 40}, w, 16, 1);
    if (v == ZOO_NEGATIVE_DIM)
        pbw_initializer(&g, "neg", 1, 1, (int64_t[]){-4}, w, 16, 1);
    pbw_attr_ints(&a, "kernel_shape", 2, (int64_t[]){3, 3});
    pbw_attr_ints(&a, "pads", 4, (int64_t[]){1, 1, 1, 1});
    if (v == ZOO_BAD_GROUP)
        pbw_attr_int(&a, "group", 5);
    pbw_node(&g, "Conv", "conv0", L("images", "W", "B"), L("c"), &a);
    pbw_free(&a);
    pbw_node(&g, "Sigmoid", "sig0", L("c"), L("s"), NULL);
    pbw_node(&g, "Mul", "mul0", L("c", "s"), L(v == ZOO_DUP_OUTPUT ? "c" : "m"), NULL);
    pbw_attr_ints(&a, "kernel_shape", 2, (int64_t[]){2, 2});
    pbw_attr_ints(&a, "strides", 2, (int64_t[]){2, 2});
    pbw_node(&g, "MaxPool", "pool0", L(v == ZOO_DUP_OUTPUT ? "c" : "m"), L("p"), &a);
    pbw_free(&a);
    pbw_node(&g, "Reshape", "reshape0", L("p", "shape"), L("out"), NULL);
    if (v == ZOO_UNSUPPORTED_OP)
        pbw_node(&g, "FooBar", "foo0", L("out"), L("foo"), NULL);
    if (v == ZOO_CYCLE) {
        pbw_node(&g, "Relu", "ra", L("rb"), L("ra_out"), NULL);
        pbw_node(&g, "Add", "rb", L("ra_out", "out"), L("rb"), NULL);
    }
    if (v == ZOO_DANGLING)
        pbw_node(&g, "Relu", "dangle0", L("ghost"), L("dangling"), NULL);
    if (v == ZOO_WRONG_TYPE)
        pbw_node(&g, "Add", "add0", L("out", "shape"), L("added"), NULL);
    pbw_value_info(&g, 11, "images", 1, 4, (int64_t[]){-1, 3, 8, 8});
    pbw_value_info(&g, 12, "out", 1, 2, (int64_t[]){-1, 64});
    if (v == ZOO_OUTPUT_MISSING)
        pbw_value_info(&g, 12, "nothing", 1, -1, NULL);
    if (v == ZOO_CYCLE)
        pbw_value_info(&g, 12, "rb", 1, -1, NULL);
    if (v == ZOO_DANGLING)
        pbw_value_info(&g, 12, "dangling", 1, -1, NULL);
    if (v == ZOO_WRONG_TYPE)
        pbw_value_info(&g, 12, "added", 1, -1, NULL);
    if (v == ZOO_UNSUPPORTED_OP)
        pbw_value_info(&g, 12, "foo", 1, -1, NULL);
    pbw_string_field(&g, 2, "zoo");
    memset(out, 0, sizeof *out);
    pbw_model(out, v == ZOO_BAD_OPSET ? 3 : 13, &g, "names", "{0: 'a', 1: 'b'}");
    pbw_free(&g);
}

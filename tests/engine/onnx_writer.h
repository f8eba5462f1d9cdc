/*
 * onnx_writer.h - a tiny protobuf writer for building ONNX models in tests, independent of
 * the engine's generated parser (so the tests do not share a bug with the code under test).
 *
 *     pbw g = {0}, m = {0};
 *     pbw_node(&g, "Relu", "r0", (const char *[]){"x", NULL}, (const char *[]){"y", NULL}, NULL);
 *     pbw_value_info(&g, 11, "x", ITS_DT_FLOAT32, 2, (int64_t[]){1, 4});
 *     ...
 *     pbw_model(&m, 17, &g, NULL);  // m.buf / m.len: the serialized ModelProto
 *
 * Buffers are malloc'd; pbw_free releases one. Field numbers follow onnx.proto.
 */
#ifndef ITS_TEST_ONNX_WRITER_H
#define ITS_TEST_ONNX_WRITER_H

#include <stddef.h>
#include <stdint.h>

typedef struct pbw {
    uint8_t *buf;
    size_t len, cap;
} pbw;

void pbw_free(pbw *w);
void pbw_varint_field(pbw *w, int field, uint64_t v);
void pbw_bytes_field(pbw *w, int field, const void *data, size_t len);
void pbw_string_field(pbw *w, int field, const char *s);
void pbw_msg_field(pbw *w, int field, const pbw *msg);

/* Attribute builders: append an AttributeProto to `attrs` (a list of attribute messages). */
void pbw_attr_int(pbw *attrs, const char *name, int64_t v);
void pbw_attr_ints(pbw *attrs, const char *name, int n, const int64_t *v);

/* GraphProto pieces. `attrs`: the concatenated attribute fields from pbw_attr_* (or NULL). */
void pbw_node(pbw *g, const char *op, const char *name, const char *const *in,
              const char *const *out, const pbw *attrs);
/* field 11 = input, 12 = output. rank < 0: no shape. dims < 0 are written as dim_param "N". */
void pbw_value_info(pbw *g, int field, const char *name, int dtype, int rank, const int64_t *dims);
/* An initializer with raw_data (raw != 0) or the typed field (float_data / int64_data). */
void pbw_initializer(pbw *g, const char *name, int dtype, int rank, const int64_t *dims,
                     const void *data, size_t bytes, int raw);
void pbw_model(pbw *m, int opset, const pbw *graph, const char *meta_key, const char *meta_val);

#endif

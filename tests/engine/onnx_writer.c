/* onnx_writer.c - see onnx_writer.h. Allocation failures abort: this is test tooling. */
#include <stdlib.h>
#include <string.h>

#include "onnx_writer.h"

static void put(pbw *w, const void *d, size_t n)
{
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 256;
        while (cap < w->len + n)
            cap *= 2;
        w->buf = realloc(w->buf, cap);
        if (!w->buf)
            abort();
        w->cap = cap;
    }
    memcpy(w->buf + w->len, d, n);
    w->len += n;
}

static void varint(pbw *w, uint64_t v)
{
    uint8_t b[10];
    int n = 0;
    do {
        b[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            b[n] |= 0x80;
        n++;
    } while (v);
    put(w, b, (size_t)n);
}

void pbw_free(pbw *w)
{
    free(w->buf);
    w->buf = NULL;
    w->len = w->cap = 0;
}

void pbw_varint_field(pbw *w, int field, uint64_t v)
{
    varint(w, (uint64_t)field << 3 | 0);
    varint(w, v);
}

void pbw_bytes_field(pbw *w, int field, const void *data, size_t len)
{
    varint(w, (uint64_t)field << 3 | 2);
    varint(w, len);
    if (len)
        put(w, data, len);
}

void pbw_string_field(pbw *w, int field, const char *s)
{
    pbw_bytes_field(w, field, s, strlen(s));
}

void pbw_msg_field(pbw *w, int field, const pbw *msg)
{
    pbw_bytes_field(w, field, msg->buf, msg->len);
}

static void attr_done(pbw *attrs, pbw *a)
{
    pbw_msg_field(attrs, 5, a); /* NodeProto.attribute = 5 */
    pbw_free(a);
}

void pbw_attr_int(pbw *attrs, const char *name, int64_t v)
{
    pbw a = {0};
    pbw_string_field(&a, 1, name);
    pbw_varint_field(&a, 3, (uint64_t)v);
    pbw_varint_field(&a, 20, 2);
    attr_done(attrs, &a);
}

void pbw_attr_ints(pbw *attrs, const char *name, int n, const int64_t *v)
{
    pbw a = {0};
    pbw_string_field(&a, 1, name);
    for (int i = 0; i < n; i++)
        pbw_varint_field(&a, 8, (uint64_t)v[i]);
    pbw_varint_field(&a, 20, 7);
    attr_done(attrs, &a);
}

void pbw_node(pbw *g, const char *op, const char *name, const char *const *in,
              const char *const *out, const pbw *attrs)
{
    pbw n = {0};
    for (int i = 0; in && in[i]; i++)
        pbw_string_field(&n, 1, in[i]);
    for (int i = 0; out && out[i]; i++)
        pbw_string_field(&n, 2, out[i]);
    if (name)
        pbw_string_field(&n, 3, name);
    pbw_string_field(&n, 4, op);
    if (attrs && attrs->len)
        put(&n, attrs->buf, attrs->len);
    pbw_msg_field(g, 1, &n);
    pbw_free(&n);
}

void pbw_value_info(pbw *g, int field, const char *name, int dtype, int rank, const int64_t *dims)
{
    pbw vi = {0}, tp = {0}, tt = {0}, sh = {0};
    pbw_varint_field(&tt, 1, (uint64_t)dtype);
    if (rank >= 0) {
        for (int i = 0; i < rank; i++) {
            pbw d = {0};
            if (dims[i] < 0)
                pbw_string_field(&d, 2, "N");
            else
                pbw_varint_field(&d, 1, (uint64_t)dims[i]);
            pbw_msg_field(&sh, 1, &d);
            pbw_free(&d);
        }
        pbw_msg_field(&tt, 2, &sh);
    }
    pbw_msg_field(&tp, 1, &tt);
    pbw_string_field(&vi, 1, name);
    pbw_msg_field(&vi, 2, &tp);
    pbw_msg_field(g, field, &vi);
    pbw_free(&vi);
    pbw_free(&tp);
    pbw_free(&tt);
    pbw_free(&sh);
}

void pbw_initializer(pbw *g, const char *name, int dtype, int rank, const int64_t *dims,
                     const void *data, size_t bytes, int raw)
{
    pbw t = {0};
    for (int i = 0; i < rank; i++)
        pbw_varint_field(&t, 1, (uint64_t)dims[i]);
    pbw_varint_field(&t, 2, (uint64_t)dtype);
    pbw_string_field(&t, 8, name);
    if (raw) {
        pbw_bytes_field(&t, 9, data, bytes);
    } else if (dtype == 1) { /* float_data, packed */
        pbw_bytes_field(&t, 4, data, bytes);
    } else if (dtype == 7) { /* int64_data, packed varints */
        pbw p = {0};
        for (size_t i = 0; i < bytes / 8; i++)
            varint(&p, (uint64_t)((const int64_t *)data)[i]);
        pbw_msg_field(&t, 7, &p);
        pbw_free(&p);
    }
    pbw_msg_field(g, 5, &t);
    pbw_free(&t);
}

void pbw_model(pbw *m, int opset, const pbw *graph, const char *meta_key, const char *meta_val)
{
    pbw os = {0};
    pbw_varint_field(m, 1, 8);
    pbw_string_field(m, 2, "its-test");
    pbw_string_field(&os, 1, "");
    pbw_varint_field(&os, 2, (uint64_t)opset);
    pbw_msg_field(m, 8, &os);
    pbw_free(&os);
    pbw_msg_field(m, 7, graph);
    if (meta_key) {
        pbw e = {0};
        pbw_string_field(&e, 1, meta_key);
        pbw_string_field(&e, 2, meta_val);
        pbw_msg_field(m, 14, &e);
        pbw_free(&e);
    }
}

/* Internals of src/publish: a growable byte buffer, a small JSON writer and RESP framing. */
#ifndef ITS_PUBLISH_IMPL_H
#define ITS_PUBLISH_IMPL_H

#include <stddef.h>
#include <stdint.h>

/* A reusable buffer: it keeps its capacity, so steady-state formatting does not allocate. */
typedef struct its__buf {
    char *p;
    size_t len, cap;
    int err; /* sticky ITS_ENOMEM */
} its__buf;

void its__buf_reset(its__buf *b);
void its__buf_free(its__buf *b);
int its__buf_reserve(its__buf *b, size_t extra);
void its__buf_put(its__buf *b, const void *s, size_t n);
void its__buf_str(its__buf *b, const char *s);
void its__buf_u64(its__buf *b, uint64_t v);
void its__buf_i64(its__buf *b, int64_t v);

/* JSON pieces. Strings are escaped (RFC 8259: quote, backslash, control characters). */
void its__json_str(its__buf *b, const char *s);
void its__json_key(its__buf *b, const char *k, int first); /* ,"k": */
void its__json_num(its__buf *b, double v);                 /* null for NaN/Inf */

/* One RESP array command: *argc, then each argument as a bulk string. */
void its__resp_cmd(its__buf *b, int argc, const char *const *argv, const size_t *lens);

#endif

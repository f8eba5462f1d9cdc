/* Internals of src/publish: a growable byte buffer and RESP framing (JSON: its/json.h). */
#ifndef ITS_PUBLISH_IMPL_H
#define ITS_PUBLISH_IMPL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A reusable buffer: it keeps its capacity, so steady-state formatting does not allocate. */
typedef struct its__buf {
    char *p;
    size_t len, cap;
    int err; /* sticky ITS_ENOMEM */
} its__buf;

void its__buf_reset(its__buf *b);
void its__buf_free(its__buf *b);
int its__buf_reserve(its__buf *b, size_t extra);
void its__buf_put_slow(its__buf *b, const void *s, size_t n);

/* The fast path inline: a message is built from a hundred or so small pieces. */
static inline void its__buf_put(its__buf *b, const void *s, size_t n)
{
    if (b->len + n + 1 <= b->cap && !b->err) {
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = 0;
        return;
    }
    its__buf_put_slow(b, s, n);
}
void its__buf_str(its__buf *b, const char *s);
void its__buf_u64(its__buf *b, uint64_t v);

/* One RESP array command: *argc, then each argument as a bulk string. */
void its__resp_cmd(its__buf *b, int argc, const char *const *argv, const size_t *lens);

struct its_publisher;
/* Counts one message of camera_id (may be NULL) dropped for reason outside the publisher (the
 * service's queue); any thread. */
void its__publisher_count_drop(struct its_publisher *pub, const char *camera_id, int reason);

struct its_pub_meta;
struct its_pub_raw;
int its__publish_raw_check(const struct its_pub_meta *meta, const struct its_pub_raw *how,
                           const char *json, size_t len, size_t *start, size_t *end);

#endif

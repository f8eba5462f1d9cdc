#include <string.h>

#include "its/core.h"
#include "publish_impl.h"

void its__buf_reset(its__buf *b)
{
    b->len = 0;
    b->err = 0;
}

void its__buf_free(its__buf *b)
{
    its_free(b->p);
    memset(b, 0, sizeof *b);
}

int its__buf_reserve(its__buf *b, size_t extra)
{
    if (b->err)
        return b->err;
    if (b->len + extra + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 512;
    while (cap < b->len + extra + 1) {
        if (cap > SIZE_MAX / 2)
            return b->err = ITS_EOVERFLOW;
        cap *= 2;
    }
    char *p = its_realloc(ITS_MOD_PUBLISH, b->p, cap);
    if (!p)
        return b->err = ITS_ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

void its__buf_put_slow(its__buf *b, const void *s, size_t n)
{
    if (its__buf_reserve(b, n) < 0)
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

void its__buf_str(its__buf *b, const char *s)
{
    its__buf_put(b, s, strlen(s));
}

void its__buf_u64(its__buf *b, uint64_t v)
{
    char tmp[24];
    its__buf_put(b, tmp, its_json_fmt_u64(tmp, v));
}

void its__resp_cmd(its__buf *b, int argc, const char *const *argv, const size_t *lens)
{
    its__buf_put(b, "*", 1);
    its__buf_u64(b, (uint64_t)argc);
    its__buf_put(b, "\r\n", 2);
    for (int i = 0; i < argc; i++) {
        size_t n = lens ? lens[i] : strlen(argv[i]);
        its__buf_put(b, "$", 1);
        its__buf_u64(b, n);
        its__buf_put(b, "\r\n", 2);
        its__buf_put(b, argv[i], n);
        its__buf_put(b, "\r\n", 2);
    }
}

#include <math.h>
#include <stdio.h>
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
    int i = (int)sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    its__buf_put(b, tmp + i, sizeof tmp - (size_t)i);
}

void its__buf_i64(its__buf *b, int64_t v)
{
    if (v < 0) {
        its__buf_put(b, "-", 1);
        its__buf_u64(b, (uint64_t)0 - (uint64_t)v);
    } else {
        its__buf_u64(b, (uint64_t)v);
    }
}

void its__json_str(its__buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    its__buf_put(b, "\"", 1);
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        its__buf_put(b, run, (size_t)(s - run));
        run = s + 1;
        char esc[6] = {'\\', 0};
        size_t n = 2;
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            esc[1] = 'u', esc[2] = '0', esc[3] = '0', esc[4] = hex[c >> 4], esc[5] = hex[c & 15];
            n = 6;
        }
        its__buf_put(b, esc, n);
    }
    its__buf_put(b, run, (size_t)(s - run));
    its__buf_put(b, "\"", 1);
}

void its__json_key(its__buf *b, const char *k, int first)
{
    if (!first)
        its__buf_put(b, ",", 1);
    its__json_str(b, k);
    its__buf_put(b, ":", 1);
}

/* Fixed-point with up to 4 decimals, trailing zeros trimmed: what detection scores and
 * normalised coordinates need (1e-4 of a 4K frame is half a pixel). snprintf("%g") costs
 * ~0.3 us a number and a frame has dozens; this is integer arithmetic. */
void its__json_num(its__buf *b, double v)
{
    if (!isfinite(v)) {
        its__buf_str(b, "null");
        return;
    }
    if (fabs(v) < 1e12) {
        int64_t scaled = (int64_t)llround(v * 1e4);
        if (scaled < 0) {
            its__buf_put(b, "-", 1);
            scaled = -scaled;
        }
        its__buf_u64(b, (uint64_t)(scaled / 10000));
        int frac = (int)(scaled % 10000);
        if (frac) {
            char d[6] = {'.',
                         (char)('0' + frac / 1000),
                         (char)('0' + frac / 100 % 10),
                         (char)('0' + frac / 10 % 10),
                         (char)('0' + frac % 10),
                         0};
            size_t n = 5;
            while (d[n - 1] == '0')
                n--;
            its__buf_put(b, d, n);
        }
        return;
    }
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%.6g", v);
    its__buf_put(b, tmp, (size_t)n);
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

/*
 * A minimal JSON writer into a caller's buffer. It keeps one "needs a comma" bit per nesting
 * level so callers never think about separators; on overflow it keeps a NUL-terminated prefix
 * and reports ITS_EOVERFLOW from its_jsonw_finish.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "its/error.h"
#include "its/track.h"

void its_jsonw_init(its_jsonw *w, char *buf, size_t len)
{
    memset(w, 0, sizeof *w);
    w->buf = buf;
    w->len = len;
    if (len)
        buf[0] = '\0';
    else
        w->overflow = 1;
}

static void put(its_jsonw *w, const char *s, size_t n)
{
    if (w->overflow)
        return;
    if (w->pos + n + 1 > w->len) {
        w->overflow = 1;
        return;
    }
    memcpy(w->buf + w->pos, s, n);
    w->pos += n;
    w->buf[w->pos] = '\0';
}

/* Separator before a value: a comma unless first in its container or right after a key. */
static void sep(its_jsonw *w)
{
    if (w->after_key) {
        w->after_key = 0;
        return;
    }
    int d = w->depth < 64 ? w->depth : 63;
    if (w->need_comma & (1ULL << d))
        put(w, ",", 1);
    w->need_comma |= 1ULL << d;
}

static void open_(its_jsonw *w, char c)
{
    sep(w);
    put(w, &c, 1);
    w->depth++;
    if (w->depth < 64)
        w->need_comma &= ~(1ULL << w->depth);
}

static void close_(its_jsonw *w, char c)
{
    if (w->depth > 0)
        w->depth--;
    put(w, &c, 1);
}

void its_jsonw_obj_begin(its_jsonw *w)
{
    open_(w, '{');
}

void its_jsonw_obj_end(its_jsonw *w)
{
    close_(w, '}');
}

void its_jsonw_arr_begin(its_jsonw *w)
{
    open_(w, '[');
}

void its_jsonw_arr_end(its_jsonw *w)
{
    close_(w, ']');
}

static void put_string(its_jsonw *w, const char *s)
{
    put(w, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            put(w, esc, 2);
        } else if (*p < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", *p);
            put(w, esc, 6);
        } else {
            put(w, (const char *)p, 1);
        }
    }
    put(w, "\"", 1);
}

void its_jsonw_key(its_jsonw *w, const char *key)
{
    sep(w);
    put_string(w, key);
    put(w, ":", 1);
    w->after_key = 1;
}

void its_jsonw_str(its_jsonw *w, const char *s)
{
    sep(w);
    put_string(w, s);
}

void its_jsonw_int(its_jsonw *w, int64_t v)
{
    char b[32];
    sep(w);
    int n = snprintf(b, sizeof b, "%" PRId64, v);
    put(w, b, (size_t)n);
}

void its_jsonw_uint(its_jsonw *w, uint64_t v)
{
    char b[32];
    sep(w);
    int n = snprintf(b, sizeof b, "%" PRIu64, v);
    put(w, b, (size_t)n);
}

/* Six significant digits, like %.6g, for magnitudes in [1e-3, 1e9): printf's exact decimal
 * conversion costs ~150 ns a number, this ~20, and a frame of 100 tracks has 1000 numbers. */
static int fast_num(char *b, double v)
{
    double a = fabs(v);
    if (!(a >= 1e-3 && a < 1e9))
        return -1;
    int digits = 1; /* before the point */
    for (double p = 10; a >= p; p *= 10)
        digits++;
    int dec = a < 1 ? 6 + (a < 0.01 ? 2 : a < 0.1 ? 1 : 0) : 6 - digits;
    if (dec < 0)
        dec = 0;
    static const double pow10[] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8};
    uint64_t m = (uint64_t)(a * pow10[dec] + 0.5);
    char tmp[32];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + m % 10);
        m /= 10;
    } while (m || n <= dec);
    int len = 0;
    if (v < 0)
        b[len++] = '-';
    for (int i = n - 1; i >= 0; i--) {
        if (i == dec - 1)
            b[len++] = '.';
        b[len++] = tmp[i];
    }
    if (dec > 0) { /* trim trailing zeros and a bare point */
        while (b[len - 1] == '0')
            len--;
        if (b[len - 1] == '.')
            len--;
    }
    return len;
}

void its_jsonw_num(its_jsonw *w, double v)
{
    char b[40];
    sep(w);
    if (!isfinite(v)) {
        put(w, "null", 4);
        return;
    }
    if (v == 0) {
        put(w, "0", 1);
        return;
    }
    int n = fast_num(b, v);
    if (n < 0)
        n = snprintf(b, sizeof b, "%.6g", v);
    put(w, b, (size_t)n);
}

void its_jsonw_bool(its_jsonw *w, int v)
{
    sep(w);
    put(w, v ? "true" : "false", v ? 4 : 5);
}

void its_jsonw_null(its_jsonw *w)
{
    sep(w);
    put(w, "null", 4);
}

int its_jsonw_finish(its_jsonw *w)
{
    return w->overflow ? ITS_EOVERFLOW : (int)w->pos;
}

#include "jsonw.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void jw_init(jsonw *w, char *buf, size_t cap)
{
    w->buf = buf;
    w->cap = cap;
    w->len = 0;
    w->overflow = 0;
    if (cap)
        buf[0] = 0;
}

static void put(jsonw *w, const char *s, size_t n)
{
    if (w->len + n + 1 > w->cap) {
        w->overflow = 1;
        return;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = 0;
}

void jw_raw(jsonw *w, const char *s)
{
    put(w, s, strlen(s));
}

void jw_str(jsonw *w, const char *s)
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

void jw_key(jsonw *w, const char *k)
{
    jw_str(w, k);
    put(w, ":", 1);
}

void jw_u64(jsonw *w, uint64_t v)
{
    char t[24];
    int n = snprintf(t, sizeof t, "%llu", (unsigned long long)v);
    put(w, t, (size_t)n);
}

void jw_i64(jsonw *w, int64_t v)
{
    char t[24];
    int n = snprintf(t, sizeof t, "%lld", (long long)v);
    put(w, t, (size_t)n);
}

void jw_num(jsonw *w, double v, int digits)
{
    if (!isfinite(v)) {
        put(w, "null", 4);
        return;
    }
    char t[40];
    int n = snprintf(t, sizeof t, "%.*g", digits, v);
    put(w, t, (size_t)n);
}

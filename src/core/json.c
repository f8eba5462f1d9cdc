/*
 * The JSON writer (its/json.h). Strings are copied in runs of bytes that need no escaping;
 * numbers are built from integer digits (a detection message has dozens of numbers, and
 * printf's exact decimal conversion costs several times more than this).
 */
#include "its/json.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "its/error.h"

void its_json_init(its_json *w, char *buf, size_t cap)
{
    memset(w, 0, sizeof *w);
    w->buf = buf;
    w->cap = cap;
    if (cap)
        buf[0] = '\0';
    else
        w->err = ITS_EOVERFLOW;
}

void its_json_reset(its_json *w)
{
    its_json_init(w, w->buf, w->cap);
}

int its_json_finish(const its_json *w)
{
    if (w->err)
        return w->err;
    if (w->depth != 0 || w->after_key)
        return ITS_EINVAL;
    return (int)w->len;
}

static void put(its_json *w, const char *s, size_t n)
{
    if (w->err)
        return;
    if (n + 1 > w->cap - w->len) {
        w->err = ITS_EOVERFLOW;
        return;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = '\0';
}

/* Before any value or key: the comma, unless first in its container or right after a key. */
static void sep(its_json *w)
{
    if (w->after_key) {
        w->after_key = 0;
        return;
    }
    uint64_t bit = 1ULL << w->depth;
    if (w->has_items & bit)
        put(w, ",", 1);
    w->has_items |= bit;
}

static void open_(its_json *w, char c, int obj)
{
    sep(w);
    if (w->depth >= ITS_JSON_MAX_DEPTH) {
        if (!w->err)
            w->err = ITS_EINVAL;
        return;
    }
    put(w, &c, 1);
    w->depth++;
    uint64_t bit = 1ULL << w->depth;
    w->has_items &= ~bit;
    w->is_obj = obj ? w->is_obj | bit : w->is_obj & ~bit;
}

static void close_(its_json *w, char c, int obj)
{
    int is_obj = (int)((w->is_obj >> w->depth) & 1);
    if (w->depth == 0 || is_obj != obj || w->after_key) {
        if (!w->err)
            w->err = ITS_EINVAL;
        return;
    }
    w->depth--;
    put(w, &c, 1);
}

void its_json_obj_begin(its_json *w)
{
    open_(w, '{', 1);
}

void its_json_obj_end(its_json *w)
{
    close_(w, '}', 1);
}

void its_json_arr_begin(its_json *w)
{
    open_(w, '[', 0);
}

void its_json_arr_end(its_json *w)
{
    close_(w, ']', 0);
}

/* Length of the valid UTF-8 sequence starting at p (at most n bytes), or 0 if invalid
 * (Unicode 15, table 3-7: no overlong forms, no surrogates, nothing past U+10FFFF). */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    unsigned lo = 0x80, hi = 0xBF;
    size_t len;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return len;
}

static void put_string(its_json *w, const char *str, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    put(w, "\"", 1);
    size_t run = 0, i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            i++;
            continue;
        }
        size_t ulen = 0;
        if (c >= 0x80) {
            ulen = utf8_len(s + i, n - i);
            if (ulen) {
                i += ulen;
                continue;
            }
        }
        put(w, (const char *)s + run, i - run);
        static const char from[] = "\"\\\n\r\t\b\f", to[] = "\"\\nrtbf";
        const char *k = c ? strchr(from, (int)c) : NULL;
        char esc[6] = {'\\', k ? to[k - from] : 'u', '0', '0', hex[c >> 4 & 15], hex[c & 15]};
        size_t elen = k ? 2 : 6;
        if (c >= 0x80) { /* a byte of invalid UTF-8: U+FFFD */
            memcpy(esc, "\xEF\xBF\xBD", 3);
            elen = 3;
        }
        put(w, esc, elen);
        run = ++i;
    }
    put(w, (const char *)s + run, n - run);
    put(w, "\"", 1);
}

void its_json_key(its_json *w, const char *key)
{
    if (w->after_key || !((w->is_obj >> w->depth) & 1)) { /* a key must start an object member */
        if (!w->err)
            w->err = ITS_EINVAL;
        return;
    }
    sep(w);
    put_string(w, key, strlen(key));
    put(w, ":", 1);
    w->after_key = 1;
}

void its_json_str(its_json *w, const char *s)
{
    if (!s) {
        its_json_null(w);
        return;
    }
    its_json_strn(w, s, strlen(s));
}

void its_json_strn(its_json *w, const char *s, size_t n)
{
    sep(w);
    put_string(w, s, n);
}

size_t its_json_fmt_u64(char *out, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

size_t its_json_fmt_i64(char *out, int64_t v)
{
    if (v >= 0)
        return its_json_fmt_u64(out, (uint64_t)v);
    out[0] = '-';
    return 1 + its_json_fmt_u64(out + 1, (uint64_t)0 - (uint64_t)v);
}

void its_json_int(its_json *w, int64_t v)
{
    char b[24];
    sep(w);
    put(w, b, its_json_fmt_i64(b, v));
}

void its_json_uint(its_json *w, uint64_t v)
{
    char b[24];
    sep(w);
    put(w, b, its_json_fmt_u64(b, v));
}

/* 10^i for i in [0, 22]: all exact in a double. */
static const double p10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                             1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* m / 10^dec as decimal text, trailing zeros and a bare point trimmed; neg adds a '-' unless
 * the digits are all zero. */
static size_t fmt_scaled(char *o, int neg, uint64_t m, int dec)
{
    char d[24];
    size_t n = its_json_fmt_u64(d, m);
    size_t len = 0;
    if (neg && m)
        o[len++] = '-';
    if (dec <= 0) {
        memcpy(o + len, d, n);
        return len + n;
    }
    size_t ud = (size_t)dec;
    if (n <= ud) { /* 0.000ddd */
        o[len++] = '0';
        o[len++] = '.';
        for (size_t i = n; i < ud; i++)
            o[len++] = '0';
        memcpy(o + len, d, n);
        len += n;
    } else {
        memcpy(o + len, d, n - ud);
        len += n - ud;
        o[len++] = '.';
        memcpy(o + len, d + n - ud, ud);
        len += ud;
    }
    while (o[len - 1] == '0')
        len--;
    if (o[len - 1] == '.')
        len--;
    return len;
}

static void put_fallback(its_json *w, double v, int sig)
{
    char b[40];
    int n = snprintf(b, sizeof b, "%.*g", sig, v);
    put(w, b, (size_t)n);
}

void its_json_numg(its_json *w, double v, int sig)
{
    sep(w);
    if (!isfinite(v)) {
        put(w, "null", 4);
        return;
    }
    if (v == 0) {
        put(w, "0", 1);
        return;
    }
    sig = sig < 1 ? 1 : sig > 17 ? 17 : sig;
    double a = fabs(v);
    if (a < 1e-6 || a >= 1e15) {
        put_fallback(w, v, sig);
        return;
    }
    int e = 0; /* 10^e <= a < 10^(e+1) */
    if (a >= 1) {
        while (e < 15 && a >= p10[e + 1])
            e++;
    } else {
        e = -1;
        while (a * p10[-e] < 1) /* a < 10^e */
            e--;
    }
    int dec = sig - 1 - e;
    char b[48];
    size_t n;
    if (dec >= 0) {
        n = fmt_scaled(b, v < 0, (uint64_t)(a * p10[dec] + 0.5), dec);
    } else { /* round to 10^-dec, then the zeros back */
        n = fmt_scaled(b, v < 0, (uint64_t)(a / p10[-dec] + 0.5), 0);
        for (int i = 0; i < -dec; i++)
            b[n++] = '0';
    }
    put(w, b, n);
}

void its_json_num(its_json *w, double v)
{
    its_json_numg(w, v, 6);
}

void its_json_fixed(its_json *w, double v, int decimals)
{
    decimals = decimals < 0 ? 0 : decimals > 9 ? 9 : decimals;
    if (isfinite(v) && fabs(v) * p10[decimals] >= 9e18) {
        its_json_numg(w, v, 17);
        return;
    }
    sep(w);
    if (!isfinite(v)) {
        put(w, "null", 4);
        return;
    }
    char b[48];
    put(w, b, fmt_scaled(b, v < 0, (uint64_t)(fabs(v) * p10[decimals] + 0.5), decimals));
}

void its_json_bool(its_json *w, int v)
{
    sep(w);
    put(w, v ? "true" : "false", v ? 4 : 5);
}

void its_json_null(its_json *w)
{
    sep(w);
    put(w, "null", 4);
}

void its_json_raw(its_json *w, const char *json, size_t n)
{
    sep(w);
    put(w, json, n);
}

void its_json_kstr(its_json *w, const char *key, const char *s)
{
    its_json_key(w, key);
    its_json_str(w, s);
}

void its_json_kint(its_json *w, const char *key, int64_t v)
{
    its_json_key(w, key);
    its_json_int(w, v);
}

void its_json_kuint(its_json *w, const char *key, uint64_t v)
{
    its_json_key(w, key);
    its_json_uint(w, v);
}

void its_json_knum(its_json *w, const char *key, double v)
{
    its_json_key(w, key);
    its_json_num(w, v);
}

void its_json_kfixed(its_json *w, const char *key, double v, int decimals)
{
    its_json_key(w, key);
    its_json_fixed(w, v, decimals);
}

void its_json_kbool(its_json *w, const char *key, int v)
{
    its_json_key(w, key);
    its_json_bool(w, v);
}

void its_json_knull(its_json *w, const char *key)
{
    its_json_key(w, key);
    its_json_null(w);
}

void its_json_knums(its_json *w, const char *const *keys, const double *vals, int n)
{
    for (int i = 0; i < n; i++)
        its_json_knum(w, keys[i], vals[i]);
}

static char replica_name[64];

void its_json_set_replica(const char *name)
{
    snprintf(replica_name, sizeof replica_name, "%s", name ? name : "");
}

const char *its_json_replica(void)
{
    return replica_name;
}

void its_json_msg_begin(its_json *w, const char *type, const char *camera, int64_t ts_us,
                        uint64_t frame)
{
    its_json_obj_begin(w);
    its_json_kint(w, "v", ITS_MSG_VERSION);
    its_json_kstr(w, "type", type);
    if (camera)
        its_json_kstr(w, "camera", camera);
    its_json_kint(w, "ts_us", ts_us);
    its_json_kuint(w, "frame", frame);
    if (replica_name[0])
        its_json_kstr(w, "replica", replica_name);
}

void its_json_frame_dets(its_json *w, const its_det *dets, int n, int width, int height,
                         its_json_label_fn label, void *ctx)
{
    its_json_kint(w, "width", width);
    its_json_kint(w, "height", height);
    its_json_key(w, "detections");
    its_json_arr_begin(w);
    for (int i = 0; i < n; i++) {
        const its_det *d = &dets[i];
        const char *cls = label ? label(ctx, d->class_id) : NULL;
        its_json_obj_begin(w);
        its_json_kint(w, "class_id", d->class_id);
        if (cls && cls[0]) {
            its_json_kstr(w, "class", cls);
        } else {
            char name[32] = "class_";
            its_json_key(w, "class");
            its_json_strn(w, name, 6 + its_json_fmt_i64(name + 6, d->class_id));
        }
        its_json_kfixed(w, "score", d->score, 4);
        float box[4];
        its_det_box_norm(d, width, height, box);
        its_json_key(w, "box");
        its_json_arr_begin(w);
        for (int k = 0; k < 4; k++)
            its_json_fixed(w, box[k], 5);
        its_json_arr_end(w);
        if (d->track_id > 0)
            its_json_kint(w, "track_id", d->track_id);
        else
            its_json_knull(w, "track_id");
        its_json_obj_end(w);
    }
    its_json_arr_end(w);
}

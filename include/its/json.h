/*
 * its/json.h - the one JSON writer: compact JSON into a caller's buffer, no allocation.
 *
 *     char buf[4096];
 *     its_json w;
 *     its_json_init(&w, buf, sizeof buf);
 *     its_json_obj_begin(&w);
 *     its_json_kint(&w, "v", 2);
 *     its_json_kstr(&w, "camera", "cam-1");
 *     its_json_key(&w, "box");
 *     its_json_arr_begin(&w);
 *     its_json_fixed(&w, 0.25, 4);
 *     its_json_fixed(&w, 0.5, 4);
 *     its_json_arr_end(&w);
 *     its_json_obj_end(&w);
 *     int n = its_json_finish(&w);   // {"v":2,"camera":"cam-1","box":[0.25,0.5]}, or < 0
 *
 * Contract
 * - Separators are automatic: values and keys written in a row inside one array or object get
 *   their commas; a value right after its key gets none. The caller only balances begin/end.
 * - The text is always NUL-terminated inside the buffer (when cap > 0). When something does
 *   not fit, writing stops and its_json_finish returns ITS_EOVERFLOW; the buffer then holds an
 *   incomplete prefix that must not be sent. Nesting deeper than ITS_JSON_MAX_DEPTH, or an
 *   end that does not match its begin, gives ITS_EINVAL from its_json_finish.
 * - Strings: '"', '\\' and control characters are escaped (\n \r \t \b \f, others \u00XX);
 *   valid UTF-8 passes through unchanged; each byte of an invalid UTF-8 sequence (stray
 *   continuation bytes, overlong forms, surrogates, code points past U+10FFFF, truncated
 *   sequences) becomes U+FFFD, so the output is always valid UTF-8 and valid JSON. A NULL
 *   string is written as null.
 * - Numbers: integers are formatted without printf. Non-finite doubles (NaN, +-inf) are
 *   written as null, never as nan or inf. its_json_num writes `sig` significant digits
 *   (its_json_num: 6), its_json_fixed at most `decimals` digits after the point; both trim
 *   trailing zeros and a bare point, never use an exponent inside [1e-6, 1e15) and round
 *   half away from zero on the scaled value (the last digit can differ from printf's exact
 *   decimal rounding on ties). Outside that range the rare value goes through "%.*g".
 * - A writer is used by one thread; the functions are reentrant.
 */
#ifndef ITS_JSON_H
#define ITS_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "its/det.h"

#define ITS_JSON_MAX_DEPTH 63

/* The version ("v") of the messages itsd, its-infer and its-replay write (docs/messages.md,
 * schemas in docs/schema/). */
#define ITS_MSG_VERSION 2

typedef struct its_json {
    char *buf;
    size_t cap, len;    /* len: bytes written so far, without the NUL */
    uint64_t has_items; /* bit d: the container at depth d already holds an item */
    uint64_t is_obj;    /* bit d: the container at depth d is an object */
    int depth;
    int after_key; /* the next value follows a key: no comma */
    int err;       /* 0, ITS_EOVERFLOW or ITS_EINVAL */
} its_json;

void its_json_init(its_json *w, char *buf, size_t cap);
/* Start again in the same buffer. */
void its_json_reset(its_json *w);
/* The text's length (>= 0) if it is complete and fitted, else ITS_EOVERFLOW or ITS_EINVAL. */
int its_json_finish(const its_json *w);

void its_json_obj_begin(its_json *w);
void its_json_obj_end(its_json *w);
void its_json_arr_begin(its_json *w);
void its_json_arr_end(its_json *w);
void its_json_key(its_json *w, const char *key);

void its_json_str(its_json *w, const char *s); /* NULL: null */
void its_json_strn(its_json *w, const char *s, size_t n);
void its_json_int(its_json *w, int64_t v);
void its_json_uint(its_json *w, uint64_t v);
void its_json_num(its_json *w, double v);                 /* 6 significant digits */
void its_json_numg(its_json *w, double v, int sig);       /* sig in [1, 17] */
void its_json_fixed(its_json *w, double v, int decimals); /* decimals in [0, 9] */
void its_json_bool(its_json *w, int v);
void its_json_null(its_json *w);
/* A value the caller already holds as JSON text (one complete value), copied verbatim. */
void its_json_raw(its_json *w, const char *json, size_t n);

/* Key and value in one call. */
void its_json_kstr(its_json *w, const char *key, const char *s);
void its_json_kint(its_json *w, const char *key, int64_t v);
void its_json_kuint(its_json *w, const char *key, uint64_t v);
void its_json_knum(its_json *w, const char *key, double v);
void its_json_kfixed(its_json *w, const char *key, double v, int decimals);
void its_json_kbool(its_json *w, const char *key, int v);
void its_json_knull(its_json *w, const char *key);
/* n members keys[i]: vals[i] (its_json_num) in a row, for records of many measurements. */
void its_json_knums(its_json *w, const char *const *keys, const double *vals, int n);

/* Opens a message of schema v2 (docs/messages.md) with its envelope,
 *   {"v":2,"type":type,"camera":camera,"ts_us":ts_us,"frame":frame
 * (camera NULL: left out), then "replica":name once its_json_set_replica named this process;
 * the caller adds the message's own members and closes the object. */
void its_json_msg_begin(its_json *w, const char *type, const char *camera, int64_t ts_us,
                        uint64_t frame);
/* The replica of a fleet this process is (itsd with cluster.enabled): every message names it.
 * Set once, before the threads that write messages start; the string is copied (63 bytes at
 * most). NULL or "": none. */
void its_json_set_replica(const char *name);
const char *its_json_replica(void); /* "" when none */

/*
 * The detections of a frame as messages v2 carry them, the same everywhere (docs/messages.md):
 *   "width":W,"height":H,"detections":[{"class_id":2,"class":"car","score":0.87,
 *    "box":[x1,y1,x2,y2],"track_id":7},...]
 * dets: n detections in pixels of the width x height frame (its/det.h); box: the corners as
 * fractions of the frame (its_det_box_norm, 5 decimals), origin top-left. Class names come
 * from label(ctx, class_id); NULL (or a NULL label): "class_<id>". track_id 0: null.
 */
typedef const char *(*its_json_label_fn)(void *ctx, int class_id);
void its_json_frame_dets(its_json *w, const its_det *dets, int n, int width, int height,
                         its_json_label_fn label, void *ctx);

/* Digits of v into out (at least 21 bytes), no NUL; returns the count. For callers that
 * build non-JSON text (keys, protocol lines) with the same integer formatting. */
size_t its_json_fmt_u64(char *out, uint64_t v);
size_t its_json_fmt_i64(char *out, int64_t v);

#endif

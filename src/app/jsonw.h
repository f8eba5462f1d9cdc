/* Private to src/app: a tiny JSON writer into a fixed buffer (no allocation). */
#ifndef ITS_APP_JSONW_H
#define ITS_APP_JSONW_H

#include <stddef.h>
#include <stdint.h>

typedef struct jsonw {
    char *buf;
    size_t cap, len;
    int overflow; /* set when something did not fit; the text is then incomplete */
} jsonw;

void jw_init(jsonw *w, char *buf, size_t cap);
void jw_raw(jsonw *w, const char *s);
void jw_str(jsonw *w, const char *s); /* quoted and escaped */
void jw_key(jsonw *w, const char *k); /* "k": (the caller writes commas with jw_raw) */
void jw_u64(jsonw *w, uint64_t v);
void jw_i64(jsonw *w, int64_t v);
/* %.*g-like with `digits` significant digits; non-finite numbers become null */
void jw_num(jsonw *w, double v, int digits);

#endif

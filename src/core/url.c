/* Credentials out of URLs (its/url.h). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "its/url.h"

#define R ITS_URL_REDACTED

typedef struct out_buf {
    char *p;
    size_t cap, n;
    int cut;
} out_buf;

static void put(out_buf *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (o->n + 1 >= o->cap) {
            o->cut = 1;
            return;
        }
        o->p[o->n++] = s[i];
    }
}

static int secret_name(const char *name, size_t n)
{
    static const char *const names[] = {"password", "passwd",  "pwd",         "pass", "token",
                                        "secret",   "key",     "auth",        "sig",  "signature",
                                        "apikey",   "api_key", "access_token"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i]) == n && !strncasecmp(names[i], name, n))
            return 1;
    return 0;
}

int its_url_scrub(const char *url, char *out, size_t cap)
{
    if (!out || cap < 8)
        return 0;
    out_buf o = {out, cap, 0, 0};
    int red = 0;
    const char *u = url ? url : "";
    const char *rest = u;
    const char *sep = strstr(u, "://");
    if (sep) {
        const char *auth = sep + 3;
        size_t alen = strcspn(auth, "/?#");
        const char *at = NULL;
        for (size_t i = 0; i < alen; i++)
            if (auth[i] == '@')
                at = auth + i; /* the last '@' ends the userinfo */
        put(&o, u, (size_t)(auth - u));
        rest = auth;
        if (at) {
            const char *colon = memchr(auth, ':', (size_t)(at - auth));
            if (colon) {
                put(&o, auth, (size_t)(colon - auth));
                put(&o, ":", 1);
            }
            put(&o, R, sizeof R - 1);
            red = 1;
            rest = at;
        }
    }
    /* up to the query as it is, then each parameter */
    const char *q = strchr(rest, '?');
    if (!q) {
        put(&o, rest, strlen(rest));
    } else {
        put(&o, rest, (size_t)(q - rest) + 1);
        const char *p = q + 1;
        while (*p) {
            size_t plen = strcspn(p, "&#");
            const char *eq = memchr(p, '=', plen);
            if (eq && secret_name(p, (size_t)(eq - p))) {
                put(&o, p, (size_t)(eq - p) + 1);
                put(&o, R, sizeof R - 1);
                red = 1;
            } else {
                put(&o, p, plen);
            }
            p += plen;
            if (*p == '#') {
                put(&o, p, strlen(p));
                break;
            }
            if (*p == '&')
                put(&o, p++, 1);
        }
    }
    if (o.cut) {
        o.n = cap - 4;
        memcpy(out + o.n, "...", 3);
        o.n += 3;
    }
    out[o.n] = 0;
    return red;
}

/*
 * Request routing: a fixed, small set of paths, matched segment by segment. No regexes and
 * no allocation, so the fuzz target can throw anything at it.
 */
#include <stdio.h>
#include <string.h>

#include "api_impl.h"
#include "its/publish.h"

static const char *const route_names[R_COUNT] = {
    "unknown",   "healthz", "readyz",   "metrics", "status", "cameras", "camera",
    "analytics", "frames",  "snapshot", "scene",   "live",   "console",
};

const char *its__api_route_name(api_route r)
{
    return r >= 0 && r < R_COUNT ? route_names[r] : "unknown";
}

/* Copies the next segment ([^/]*) of *p into seg; returns its length, or -1 if too long. */
static long next_segment(const char **p, char *seg, size_t cap)
{
    const char *s = *p;
    size_t n = 0;
    while (s[n] && s[n] != '/')
        n++;
    *p = s + n;
    if (n >= cap)
        return -1;
    memcpy(seg, s, n);
    seg[n] = 0;
    return (long)n;
}

api_route its__api_route(const char *path, char *id, size_t idlen, int *bad_id)
{
    *bad_id = 0;
    if (idlen)
        id[0] = 0;
    if (!path || path[0] != '/')
        return R_NOT_FOUND;
    if (!strcmp(path, "/healthz"))
        return R_HEALTHZ;
    if (!strcmp(path, "/readyz"))
        return R_READYZ;
    if (!strcmp(path, "/metrics"))
        return R_METRICS;
    if (!strcmp(path, "/") || !strcmp(path, "/index.html") || !strncmp(path, "/console/", 9))
        return R_CONSOLE;
    if (!strcmp(path, "/v1/status"))
        return R_STATUS;
    if (!strcmp(path, "/v1/cameras") || !strcmp(path, "/v1/cameras/"))
        return R_CAMERAS;
    static const char prefix[] = "/v1/cameras/";
    if (strncmp(path, prefix, sizeof prefix - 1))
        return R_NOT_FOUND;
    const char *p = path + sizeof prefix - 1;
    char seg[ITS_PUB_ID_MAX + 2];
    long n = next_segment(&p, seg, sizeof seg);
    if (n < 0 || (n > 0 && !its_publish_valid_id(seg)))
        *bad_id = 1;
    else if (n == 0)
        return R_NOT_FOUND;
    else if (idlen)
        snprintf(id, idlen, "%s", seg);
    if (*p == 0)
        return R_CAMERA;
    p++; /* the '/' */
    char sub[16];
    if (next_segment(&p, sub, sizeof sub) < 0 || *p)
        return R_NOT_FOUND;
    if (!strcmp(sub, "analytics"))
        return R_ANALYTICS;
    if (!strcmp(sub, "frames"))
        return R_FRAMES;
    if (!strcmp(sub, "snapshot.jpg"))
        return R_SNAPSHOT;
    if (!strcmp(sub, "scene"))
        return R_SCENE;
    if (!strcmp(sub, "events"))
        return R_LIVE;
    if (sub[0] == 0)
        return R_CAMERA; /* trailing slash */
    return R_NOT_FOUND;
}

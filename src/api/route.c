/*
 * Request routing: a fixed, small set of paths, matched segment by segment. No regexes and
 * no allocation, so the fuzz target can throw anything at it.
 */
#include <stdio.h>
#include <string.h>

#include "api_impl.h"
#include "its/publish.h"

static const char *const route_names[R_COUNT] = {
    "unknown",    "healthz",   "readyz", "metrics", "status",  "cameras",
    "camera",     "analytics", "frames", "counts",  "events",  "event_snapshot",
    "event_clip", "snapshot",  "scene",  "live",    "console",
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

/* "{id}/snapshot.jpg" or "{id}/clip.mp4" after /v1/events/. */
static api_route event_route(const char *p, char *id, size_t idlen, int *bad_id)
{
    char ev[ITS_API_EVENT_ID_MAX + 2];
    long n = next_segment(&p, ev, sizeof ev);
    if (n <= 0 || *p != '/')
        return R_NOT_FOUND;
    p++;
    api_route r = !strcmp(p, "snapshot.jpg") ? R_EVENT_SNAPSHOT
                  : !strcmp(p, "clip.mp4")   ? R_EVENT_CLIP
                                             : R_NOT_FOUND;
    if (r == R_NOT_FOUND)
        return r;
    int ok = ev[0] != '.';
    for (long i = 0; i < n && ok; i++)
        ok = (ev[i] >= 'a' && ev[i] <= 'z') || (ev[i] >= 'A' && ev[i] <= 'Z') ||
             (ev[i] >= '0' && ev[i] <= '9') || ev[i] == '_' || ev[i] == '.' || ev[i] == '-';
    if (!ok)
        *bad_id = 1;
    else if (idlen)
        snprintf(id, idlen, "%s", ev);
    return r;
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
    if (!strcmp(path, "/v1/events") || !strcmp(path, "/v1/events/"))
        return R_EVENTS;
    static const char events[] = "/v1/events/";
    if (!strncmp(path, events, sizeof events - 1))
        return event_route(path + sizeof events - 1, id, idlen, bad_id);
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
    if (!strcmp(sub, "counts.csv"))
        return R_COUNTS;
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

/* Internals of src/api: the routing (route.c) the request logic (api.c) uses. */
#ifndef ITS_API_IMPL_H
#define ITS_API_IMPL_H

#include <stddef.h>

#include "its/api.h"

typedef enum api_route {
    R_NOT_FOUND = 0,
    R_HEALTHZ,
    R_READYZ,
    R_METRICS,
    R_STATUS,
    R_CAMERAS,        /* /v1/cameras */
    R_CAMERA,         /* /v1/cameras/{id} */
    R_ANALYTICS,      /* /v1/cameras/{id}/analytics */
    R_FRAMES,         /* /v1/cameras/{id}/frames */
    R_COUNTS,         /* /v1/cameras/{id}/counts.csv */
    R_EVENTS,         /* /v1/events */
    R_EVENT_SNAPSHOT, /* /v1/events/{id}/snapshot.jpg */
    R_EVENT_CLIP,     /* /v1/events/{id}/clip.mp4 */
    R_SNAPSHOT,       /* /v1/cameras/{id}/snapshot.jpg */
    R_SCENE,          /* /v1/cameras/{id}/scene */
    R_LIVE,           /* /v1/cameras/{id}/events (Server-Sent Events) */
    R_CONSOLE,        /* / and /console/... (the operator console's files) */
    R_COUNT
} api_route;

/* Parse a path. id receives the camera id for the /v1/cameras/{id}... routes, the event id
 * ([A-Za-z0-9_.-]{1,159}) for /v1/events/{id}/... A syntactically
 * bad id (characters outside the id set, too long) gives R_CAMERA etc. with *bad_id set. */
api_route its__api_route(const char *path, char *id, size_t idlen, int *bad_id);
const char *its__api_route_name(api_route r);
/* The console's file for a path ("/" is index.html): its bytes, length and media type; 0, or
 * ITS_ENOENT. The files are compiled in (console_files.c, generated from src/api/console/). */
int its__console_file(const char *path, const unsigned char **data, size_t *len,
                      const char **content_type);

/* Largest body accepted for this request (0: a body is not expected). */
size_t its__api_body_limit(const its_api *api, const char *method, const char *path);

#endif

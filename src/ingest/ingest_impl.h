/* Private to src/ingest: the shared replay clips. */
#ifndef ITS_INGEST_IMPL_H
#define ITS_INGEST_IMPL_H

#include "its/ingest.h"

/* A decoded clip held in memory, shared by every replay source with the same key. */
typedef struct its__clip {
    char key[1100];
    int refs; /* guarded by the registry's lock */
    int n;
    its_pool_t *pool;
    its_buf **frames; /* n buffers, one reference each held by the clip */
    int *width, *height;
    int64_t *pts_ns;
    double fps;
    int64_t duration_ns; /* last frame's pts plus one frame period */
} its__clip;

int its__clip_get(const char *path, its_pixfmt pixfmt, int max_w, int max_h, int max_frames,
                  its__clip **out, char *err, size_t errlen);
void its__clip_put(its__clip *c);

#endif

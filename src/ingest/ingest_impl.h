/* Private to src/ingest: the shared replay clips. */
#ifndef ITS_INGEST_IMPL_H
#define ITS_INGEST_IMPL_H

#include "its/ingest.h"

/* A decoded clip held in memory, shared by every replay source with the same key. */
typedef struct its__clip {
    int n;
    uint64_t bytes; /* pixels held */
    its_pool_t *pool;
    its_buf **frames; /* n buffers, one reference each held by the clip */
    int *width, *height;
    int64_t *pts_ns;
    double fps;
    int64_t duration_ns; /* last frame's pts plus one frame period */
} its__clip;

/* The clip of this file (or folder) with these settings, decoded by the first caller (on its
 * thread, while later callers wait); cancel (may be NULL) ends the decode or the wait with
 * ITS_ECLOSED. Errors: ITS_ENOENT, the decode's, ITS_EFULL (no memory left for clips). */
int its__clip_get(const char *path, its_pixfmt pixfmt, int max_w, int max_h, int max_frames,
                  atomic_int *cancel, its__clip **out, char *err, size_t errlen);
void its__clip_put(its__clip *c);

#endif

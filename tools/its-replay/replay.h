/* its-replay internals: one JSON line of messages v2 -> one frame of detections. */
#ifndef ITS_REPLAY_H
#define ITS_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "its/track.h"

#define REPLAY_CAMERA_MAX 128

typedef struct replay_frame {
    char camera[REPLAY_CAMERA_MAX]; /* "camera" */
    int64_t ts_us;                  /* "ts_us": wall clock */
    int64_t pts_ns;                 /* from "pts_us" (media time), -1 when absent */
    its_det_frame f;                /* boxes in pixels; f.ts_ns is left to the caller */
} replay_frame;

/*
 * Parse one line: a "frame" message of itsd or an "infer" message of its-infer
 * (docs/messages.md). Returns 1 with *out filled (out->f.dets = dets, at most cap of them, the
 * rest counted in *extra; boxes converted from [0, 1] to pixels of width x height), 0 for a
 * blank line or a v2 message of another type (event, window, drift, ...), or ITS_EPROTO with
 * the reason in err.
 */
int replay_parse_line(const char *line, size_t len, its_det *dets, int cap, replay_frame *out,
                      int *extra, char *err, size_t errlen);

#endif

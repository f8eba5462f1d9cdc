/* its-replay internals: one its-infer JSON line -> one frame of detections. */
#ifndef ITS_REPLAY_H
#define ITS_REPLAY_H

#include <stddef.h>

#include "its/track.h"

/* Parse one line. Returns 1 with *f filled (f->dets = dets, at most cap of them, the rest
 * counted in *extra), 0 for a line that is not a detection frame (an analytics summary, a
 * blank line), or ITS_EPROTO with the reason in err. ts_ns: from "pts_ms" when present, else
 * -1 (the caller derives it from the frame index). */
int replay_parse_line(const char *line, size_t len, its_det *dets, int cap, its_det_frame *f,
                      int *extra, char *err, size_t errlen);

#endif

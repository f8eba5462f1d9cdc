/*
 * Reading its-infer's per-frame JSON (jansson): {"source": ..., "frame": N, "pts_ms": T,
 * "width": W, "height": H, "detections": [{"class_id": C, "score": S, "box": [x1, y1, x2, y2],
 * ...}, ...]}. Anything malformed is refused with a reason; nothing is guessed.
 */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "its/error.h"
#include "replay.h"

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A malformed line: ITS_EPROTO with the reason. */
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = its_vseterr(err, errlen, ITS_EPROTO, fmt, ap);
    va_end(ap);
    return rc;
}

static int get_int(json_t *o, const char *key, long long lo, long long hi, long long *out)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        return -1;
    long long x = json_integer_value(v);
    if (x < lo || x > hi)
        return -1;
    *out = x;
    return 0;
}

int replay_parse_line(const char *line, size_t len, its_det *dets, int cap, its_det_frame *f,
                      int *extra, char *err, size_t errlen)
{
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r' || line[i] == '\n'))
        i++;
    if (i == len)
        return 0;
    json_error_t je;
    json_t *root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return fail(err, errlen, "not JSON: %s (column %d)", je.text, je.column);
    int rc = 0;
    *extra = 0;
    if (!json_is_object(root)) {
        rc = fail(err, errlen, "not a JSON object");
        goto out;
    }
    json_t *arr = json_object_get(root, "detections");
    if (!arr) {
        rc = 0; /* e.g. the analytics summary line */
        goto out;
    }
    long long frame, w, h;
    if (!json_is_array(arr)) {
        rc = fail(err, errlen, "\"detections\" is not an array");
        goto out;
    }
    if (get_int(root, "frame", 0, (1LL << 53), &frame) < 0) {
        rc = fail(err, errlen, "\"frame\" missing or not a non-negative integer");
        goto out;
    }
    if (get_int(root, "width", 1, 65536, &w) < 0 || get_int(root, "height", 1, 65536, &h) < 0) {
        rc = fail(err, errlen, "\"width\"/\"height\" missing or outside 1..65536");
        goto out;
    }
    f->ts_ns = -1;
    json_t *pts = json_object_get(root, "pts_ms");
    if (pts) {
        double ms = json_number_value(pts);
        if (!json_is_number(pts) || !isfinite(ms) || ms < 0 || ms > 1e15) {
            rc = fail(err, errlen, "\"pts_ms\" is not a non-negative number");
            goto out;
        }
        f->ts_ns = (int64_t)llround(ms * 1e6);
    }
    size_t n = json_array_size(arr);
    int m = 0;
    for (size_t k = 0; k < n; k++) {
        json_t *d = json_array_get(arr, k);
        long long cls;
        json_t *score = json_object_get(d, "score"), *box = json_object_get(d, "box");
        if (!json_is_object(d) || get_int(d, "class_id", 0, 1 << 20, &cls) < 0 ||
            !json_is_number(score) || !json_is_array(box) || json_array_size(box) != 4) {
            rc = fail(err, errlen,
                      "detections[%zu]: needs \"class_id\" (integer), \"score\" and \"box\" "
                      "[x1, y1, x2, y2]",
                      k);
            goto out;
        }
        double b[4];
        for (int j = 0; j < 4; j++) {
            json_t *v = json_array_get(box, (size_t)j);
            b[j] = json_number_value(v);
            if (!json_is_number(v) || !isfinite(b[j])) {
                rc = fail(err, errlen, "detections[%zu].box[%d] is not a number", k, j);
                goto out;
            }
        }
        double s = json_number_value(score);
        if (!(s >= 0 && s <= 1)) {
            rc = fail(err, errlen, "detections[%zu].score %g is outside [0, 1]", k, s);
            goto out;
        }
        if (m == cap) {
            (*extra)++;
            continue;
        }
        dets[m++] = (its_det){.x1 = (float)b[0],
                              .y1 = (float)b[1],
                              .x2 = (float)b[2],
                              .y2 = (float)b[3],
                              .score = (float)s,
                              .class_id = (int32_t)cls};
    }
    f->dets = dets;
    f->n = m;
    f->width_px = (int)w;
    f->height_px = (int)h;
    f->frame_no = (uint64_t)frame;
    rc = 1;
out:
    json_decref(root);
    return rc;
}

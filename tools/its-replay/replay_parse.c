/*
 * Reading messages v2 (jansson): itsd's "frame" and its-infer's "infer" lines, {"v": 2,
 * "type": "frame", "camera": C, "ts_us": T, "frame": N, "pts_us": P, "width": W, "height": H,
 * "detections": [{"class_id": K, "score": S, "box": [x1, y1, x2, y2] in [0, 1], ...}, ...]}.
 * Anything malformed is refused with a reason; nothing is guessed.
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

int replay_parse_line(const char *line, size_t len, its_det *dets, int cap, replay_frame *out,
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
    its_det_frame *f = &out->f;
    if (!json_is_object(root)) {
        rc = fail(err, errlen, "not a JSON object");
        goto out;
    }
    long long version;
    if (get_int(root, "v", 0, 1 << 30, &version) < 0 || version != 2) {
        rc = fail(err, errlen, "not a message of version 2 (\"v\": 2)");
        goto out;
    }
    const char *type = json_string_value(json_object_get(root, "type"));
    if (!type) {
        rc = fail(err, errlen, "\"type\" missing or not a string");
        goto out;
    }
    if (strcmp(type, "frame") && strcmp(type, "infer")) {
        rc = 0; /* events, windows, drift reports, ... */
        goto out;
    }
    const char *camera = json_string_value(json_object_get(root, "camera"));
    if (!camera || !camera[0] || strlen(camera) >= sizeof out->camera) {
        rc = fail(err, errlen, "\"camera\" missing, empty or longer than %zu bytes",
                  sizeof out->camera - 1);
        goto out;
    }
    snprintf(out->camera, sizeof out->camera, "%s", camera);
    long long ts_us;
    if (get_int(root, "ts_us", 0, (1LL << 62), &ts_us) < 0) {
        rc = fail(err, errlen, "\"ts_us\" missing or not a non-negative integer");
        goto out;
    }
    out->ts_us = ts_us;
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
    out->pts_ns = -1;
    if (json_object_get(root, "pts_us")) {
        long long pts;
        if (get_int(root, "pts_us", 0, (1LL << 53), &pts) < 0) {
            rc = fail(err, errlen, "\"pts_us\" is not a non-negative integer");
            goto out;
        }
        out->pts_ns = pts * 1000;
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
            if (!json_is_number(v) || !(b[j] >= 0 && b[j] <= 1)) {
                rc = fail(err, errlen, "detections[%zu].box[%d] is not a number in [0, 1]", k, j);
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
        dets[m++] = (its_det){.x1 = (float)(b[0] * (double)w),
                              .y1 = (float)(b[1] * (double)h),
                              .x2 = (float)(b[2] * (double)w),
                              .y2 = (float)(b[3] * (double)h),
                              .score = (float)s,
                              .class_id = (int32_t)cls};
    }
    f->dets = dets;
    f->n = m;
    f->width_px = (int)w;
    f->height_px = (int)h;
    f->frame_no = (uint64_t)frame;
    f->ts_ns = out->pts_ns;
    rc = 1;
out:
    json_decref(root);
    return rc;
}

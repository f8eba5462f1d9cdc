/*
 * Detector heads. Every family reduces to the same middle: a list of candidate boxes (x1, y1,
 * x2, y2 in model-input pixels) with a score and a class, which greedy class-aware NMS then
 * thins and the letterbox maps back to the source frame.
 *
 *   Ultralytics YOLOv8/YOLO11  [N, 4+C, A]  rows cx, cy, w, h, then C class scores
 *                                            (sigmoid applied); score = max class.
 *   YOLOv5                     [N, A, 5+C]  cx, cy, w, h, obj, C class scores, decoded in
 *                                            the graph; score = obj * max class.
 *   YOLOX                      [N, A, 5+C]  raw tx, ty, tw, th, obj, C classes, one anchor
 *                                            per cell over strides 8/16/32, row-major per
 *                                            level: cx = (tx + gx) * s, w = exp(tw) * s;
 *                                            score = obj * max class.
 *   NanoDet (GFL)              per stride s: cls [N, A_s, C] (sigmoid applied) and a
 *                                            distribution [N, A_s, 4 * (R+1)]; each side's
 *                                            distance = s * sum softmax(bins)_i * i, from the
 *                                            cell centre ((col + .5) s, (row + .5) s).
 *
 * The Ultralytics layout is class-major, so the class maximum is taken row by row into a
 * per-anchor scratch array (sequential reads) rather than anchor by anchor (a stride of A
 * floats between reads). All scratch is sized at create time.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "its/alloc.h"
#include "its/detect.h"
#include "its/error.h"
#include "its/log.h"

#define MAX_LEVELS 4

typedef struct cand {
    float box[4];
    float score;
    int cls;
    int idx;
} cand;

struct its_detector {
    its_det_config cfg;
    int n_outputs;
    size_t out_floats[8];
    int anchors; /* total candidates per image */
    /* YOLOX / NanoDet levels */
    int n_levels;
    int level_w[MAX_LEVELS], level_h[MAX_LEVELS];
    int cls_out[MAX_LEVELS], reg_out[MAX_LEVELS];
    int nano_bins;
    /* scratch */
    cand *cands;
    float *best;
    int *best_cls;
    int *keep;
};

static const char *const family_names[] = {"auto", "ultralytics", "yolov5", "yolox", "nanodet"};

const char *its_det_family_name(its_det_family f)
{
    if ((int)f < 0 || (int)f > ITS_DET_NANODET)
        return "unknown";
    return family_names[f];
}

int its_det_family_parse(const char *name, its_det_family *out)
{
    for (int i = 0; i <= ITS_DET_NANODET; i++) {
        if (strcmp(name, family_names[i]) == 0) {
            *out = (its_det_family)i;
            return 0;
        }
    }
    if (strcmp(name, "yolov8") == 0 || strcmp(name, "yolo11") == 0) {
        *out = ITS_DET_ULTRALYTICS;
        return 0;
    }
    return ITS_EINVAL;
}

static long grid_cells(int w, int h, const int *strides, int n)
{
    long total = 0;
    for (int i = 0; i < n; i++)
        total += (long)(w / strides[i]) * (h / strides[i]);
    return total;
}

/* Elements of one batch item of a tensor (dims[0] is the batch). -1 if unknown/invalid. */
static long item_elems(const its_tensor_desc *t)
{
    if (!t || t->rank < 1 || t->rank > ITS_MAX_DIMS)
        return -1;
    long n = 1;
    for (int i = 1; i < t->rank; i++) {
        if (t->dims[i] <= 0 || t->dims[i] > (1L << 30) / n)
            return -1;
        n *= (long)t->dims[i];
    }
    return n;
}

static int guess_family(const its_det_model_info *info, int w, int h, its_det_family *fam,
                        char *err, size_t errlen)
{
    static const int strides[3] = {8, 16, 32};
    if (info->n_outputs == 1) {
        const its_tensor_desc *o = info->outputs[0];
        if (!o || o->rank != 3 || o->dims[1] <= 0 || o->dims[2] <= 0) {
            return its_seterr(err, errlen, ITS_EUNSUPPORTED,
                              "detector: output must be [N, 4+C, A] or [N, A, 5+C]");
        }
        long d1 = (long)o->dims[1], d2 = (long)o->dims[2];
        if (d1 < d2 && d1 >= 5) {
            *fam = ITS_DET_ULTRALYTICS;
            return 0;
        }
        if (d2 >= 6) {
            long cells = grid_cells(w, h, strides, 3);
            if (d1 == cells) {
                *fam = ITS_DET_YOLOX;
                return 0;
            }
            if (d1 == 3 * cells) {
                *fam = ITS_DET_YOLOV5;
                return 0;
            }
        }
        return its_seterr(err, errlen, ITS_EUNSUPPORTED,
                          "detector: cannot tell the head from output [N, %ld, %ld] at %dx%d; "
                          "pass the family explicitly",
                          d1, d2, w, h);
    }
    if (info->n_outputs >= 2 && info->n_outputs <= 2 * MAX_LEVELS && info->n_outputs % 2 == 0) {
        *fam = ITS_DET_NANODET;
        return 0;
    }
    return its_seterr(err, errlen, ITS_EUNSUPPORTED, "detector: %d outputs fit no known head",
                      info->n_outputs);
}

int its_det_config_init(const its_det_model_info *info, its_det_family family, its_det_config *cfg,
                        char *err, size_t errlen)
{
    memset(cfg, 0, sizeof *cfg);
    if (!info || !info->input || info->n_outputs < 1 || info->n_outputs > 8) {
        return its_seterr(err, errlen, ITS_EINVAL, "detector: no model input/outputs");
    }
    const its_tensor_desc *in = info->input;
    if (in->rank != 4 || in->dims[1] != 3) {
        return its_seterr(err, errlen, ITS_EUNSUPPORTED,
                          "detector: input '%s' must be [N, 3, H, W]", in->name ? in->name : "?");
    }
    int h = (int)in->dims[2], w = (int)in->dims[3];
    if (h <= 0 || w <= 0 || h > 8192 || w > 8192) {
        const char *sz = info->meta ? info->meta(info->meta_ctx, "imgsz") : NULL;
        int v = 0;
        if (sz && sscanf(sz, "[%d", &v) == 1 && v > 0 && v <= 8192) {
            h = w = v;
        } else {
            return its_seterr(err, errlen, ITS_EUNSUPPORTED,
                              "detector: input size unknown (dims %lld x %lld)",
                              (long long)in->dims[2], (long long)in->dims[3]);
        }
    }
    cfg->strides[0] = 8;
    cfg->strides[1] = 16;
    cfg->strides[2] = 32;
    cfg->n_strides = 3;
    cfg->reg_max = 7;
    if (family == ITS_DET_AUTO) {
        int rc = guess_family(info, w, h, &family, err, errlen);
        if (rc < 0)
            return rc;
    }
    cfg->family = family;
    cfg->conf = (float)ITS_DET_CONF_DEFAULT;
    cfg->iou = (float)ITS_DET_IOU_DEFAULT;
    cfg->max_dets = 300;
    its_det_preproc_default(family, w, h, &cfg->pre);
    const its_tensor_desc *o = info->outputs[0];
    switch (family) {
    case ITS_DET_ULTRALYTICS:
        cfg->num_classes = o && o->rank == 3 ? (int)o->dims[1] - 4 : 0;
        break;
    case ITS_DET_YOLOV5:
    case ITS_DET_YOLOX:
        cfg->num_classes = o && o->rank == 3 ? (int)o->dims[2] - 5 : 0;
        break;
    case ITS_DET_NANODET:
        /* The class outputs are the ones whose width is not the 4 x 8 distribution (with
         * 32 classes both are 32 wide and the first output is taken). */
        cfg->num_classes = o && o->rank == 3 ? (int)o->dims[2] : 0;
        for (int i = 0; i < info->n_outputs; i++) {
            const its_tensor_desc *t = info->outputs[i];
            if (t && t->rank == 3 && t->dims[2] > 0 && t->dims[2] != 4 * (cfg->reg_max + 1)) {
                cfg->num_classes = (int)t->dims[2];
                break;
            }
        }
        break;
    default:
        return its_seterr(err, errlen, ITS_EINVAL, "detector: unknown family %d", (int)family);
    }
    if (cfg->num_classes <= 0) {
        return its_seterr(err, errlen, ITS_EUNSUPPORTED,
                          "detector: output shape gives no classes for %s",
                          its_det_family_name(family));
    }
    return 0;
}

/* Check shapes against the family and lay out the levels. */
static int plan(its_detector_t *d, const its_det_model_info *info, char *err, size_t errlen)
{
    const its_det_config *c = &d->cfg;
    const int W = c->pre.width, H = c->pre.height, C = c->num_classes;
    for (int i = 0; i < info->n_outputs; i++) {
        long n = item_elems(info->outputs[i]);
        if (n <= 0) {
            return its_seterr(err, errlen, ITS_EUNSUPPORTED,
                              "detector: output %d has an invalid shape", i);
        }
        d->out_floats[i] = (size_t)n;
    }
    const its_tensor_desc *o = info->outputs[0];
    if (c->family == ITS_DET_ULTRALYTICS || c->family == ITS_DET_YOLOV5 ||
        c->family == ITS_DET_YOLOX) {
        if (info->n_outputs != 1 || o->rank != 3) {
            return its_seterr(err, errlen, ITS_EUNSUPPORTED, "detector: %s wants one rank-3 output",
                              its_det_family_name(c->family));
        }
        int ok;
        if (c->family == ITS_DET_ULTRALYTICS) {
            ok = o->dims[1] == 4 + C;
            d->anchors = (int)o->dims[2];
        } else {
            ok = o->dims[2] == 5 + C;
            d->anchors = (int)o->dims[1];
        }
        if (!ok) {
            return its_seterr(err, errlen, ITS_EUNSUPPORTED,
                              "detector: output [N, %lld, %lld] does not match %s with %d "
                              "classes",
                              (long long)o->dims[1], (long long)o->dims[2],
                              its_det_family_name(c->family), C);
        }
        if (c->family == ITS_DET_YOLOX) {
            if (c->n_strides < 1 || c->n_strides > MAX_LEVELS) {
                return its_seterr(err, errlen, ITS_EINVAL, "detector: bad stride count %d",
                                  c->n_strides);
            }
            d->n_levels = c->n_strides;
            for (int l = 0; l < d->n_levels; l++) {
                if (c->strides[l] <= 0) {
                    return its_seterr(err, errlen, ITS_EINVAL, "detector: bad stride %d",
                                      c->strides[l]);
                }
                d->level_w[l] = W / c->strides[l];
                d->level_h[l] = H / c->strides[l];
            }
            if (grid_cells(W, H, c->strides, c->n_strides) != d->anchors) {
                return its_seterr(err, errlen, ITS_EUNSUPPORTED,
                                  "detector: YOLOX output has %d anchors, the %dx%d grid "
                                  "%ld",
                                  d->anchors, W, H, grid_cells(W, H, c->strides, c->n_strides));
            }
        }
        return 0;
    }
    /* NanoDet: per level, a class output [N, A, C] and a distribution [N, A, 4*(R+1)]. */
    if (c->reg_max < 1 || c->reg_max > 64) {
        return its_seterr(err, errlen, ITS_EINVAL, "detector: bad reg_max %d", c->reg_max);
    }
    d->nano_bins = c->reg_max + 1;
    if (c->n_strides < 1 || c->n_strides > MAX_LEVELS || info->n_outputs != 2 * c->n_strides) {
        return its_seterr(err, errlen, ITS_EUNSUPPORTED,
                          "detector: nanodet wants 2 outputs per stride, got %d for %d "
                          "strides",
                          info->n_outputs, c->n_strides);
    }
    d->n_levels = c->n_strides;
    int used[8] = {0};
    for (int l = 0; l < d->n_levels; l++) {
        int s = c->strides[l];
        if (s <= 0) {
            return its_seterr(err, errlen, ITS_EINVAL, "detector: bad stride %d", s);
        }
        d->level_w[l] = W / s;
        d->level_h[l] = H / s;
        long a = (long)d->level_w[l] * d->level_h[l];
        d->cls_out[l] = d->reg_out[l] = -1;
        for (int i = 0; i < info->n_outputs; i++) {
            const its_tensor_desc *t = info->outputs[i];
            if (used[i] || t->rank != 3 || t->dims[1] != a)
                continue;
            if (d->cls_out[l] < 0 && t->dims[2] == C) {
                d->cls_out[l] = i;
                used[i] = 1;
            } else if (d->reg_out[l] < 0 && t->dims[2] == 4 * d->nano_bins) {
                d->reg_out[l] = i;
                used[i] = 1;
            }
        }
        if (d->cls_out[l] < 0 || d->reg_out[l] < 0) {
            return its_seterr(err, errlen, ITS_EUNSUPPORTED,
                              "detector: nanodet stride %d: no [N, %ld, %d] class and "
                              "[N, %ld, %d] box outputs",
                              s, a, C, a, 4 * d->nano_bins);
        }
        d->anchors += (int)a;
    }
    return 0;
}

int its_detector_create(const its_det_config *cfg, const its_det_model_info *info,
                        its_detector_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!cfg || !info || info->n_outputs < 1 || info->n_outputs > 8 || cfg->num_classes <= 0 ||
        cfg->pre.width <= 0 || cfg->pre.height <= 0 || cfg->max_dets <= 0 ||
        !(cfg->iou > 0 && cfg->iou <= 1) || !(cfg->conf >= 0 && cfg->conf <= 1)) {
        return its_seterr(err, errlen, ITS_EINVAL, "detector: invalid configuration");
    }
    its_detector_t *d = its_calloc(ITS_MOD_DETECT, 1, sizeof *d);
    if (!d) {
        return its_seterr(err, errlen, ITS_ENOMEM, "detector: out of memory");
    }
    d->cfg = *cfg;
    d->n_outputs = info->n_outputs;
    int rc = plan(d, info, err, errlen);
    if (rc < 0) {
        its_detector_destroy(d);
        return rc;
    }
    d->cands = its_malloc(ITS_MOD_DETECT, (size_t)d->anchors * sizeof *d->cands);
    d->best = its_malloc(ITS_MOD_DETECT, (size_t)d->anchors * sizeof *d->best);
    d->best_cls = its_malloc(ITS_MOD_DETECT, (size_t)d->anchors * sizeof *d->best_cls);
    d->keep = its_malloc(ITS_MOD_DETECT, (size_t)cfg->max_dets * sizeof *d->keep);
    if (!d->cands || !d->best || !d->best_cls || !d->keep) {
        its_detector_destroy(d);
        return its_seterr(err, errlen, ITS_ENOMEM, "detector: out of memory");
    }
    *out = d;
    return 0;
}

void its_detector_destroy(its_detector_t *d)
{
    if (!d)
        return;
    its_free(d->cands);
    its_free(d->best);
    its_free(d->best_cls);
    its_free(d->keep);
    its_free(d);
}

size_t its_detector_input_floats(const its_detector_t *d)
{
    return (size_t)3 * d->cfg.pre.width * d->cfg.pre.height;
}

size_t its_detector_output_floats(const its_detector_t *d, int i)
{
    return i >= 0 && i < d->n_outputs ? d->out_floats[i] : 0;
}

static inline int push(cand *c, int n, float cx, float cy, float w, float h, float score, int cls,
                       int idx)
{
    /* NaN scores never pass the threshold test; non-finite boxes are dropped here. */
    if (!isfinite(cx) || !isfinite(cy) || !isfinite(w) || !isfinite(h))
        return n;
    c[n].box[0] = cx - 0.5f * w;
    c[n].box[1] = cy - 0.5f * h;
    c[n].box[2] = cx + 0.5f * w;
    c[n].box[3] = cy + 0.5f * h;
    c[n].score = score;
    c[n].cls = cls;
    c[n].idx = idx;
    return n + 1;
}

static int decode_ultralytics(its_detector_t *d, const float *o)
{
    const int A = d->anchors, C = d->cfg.num_classes;
    float *best = d->best;
    int *bc = d->best_cls;
    const float *row = o + 4 * (size_t)A;
    for (int a = 0; a < A; a++) {
        best[a] = row[a];
        bc[a] = 0;
    }
    for (int c = 1; c < C; c++) {
        row = o + (size_t)(4 + c) * A;
        for (int a = 0; a < A; a++) {
            if (row[a] > best[a]) {
                best[a] = row[a];
                bc[a] = c;
            }
        }
    }
    int n = 0;
    const float conf = d->cfg.conf;
    for (int a = 0; a < A; a++) {
        if (best[a] >= conf)
            n = push(d->cands, n, o[a], o[A + a], o[2 * (size_t)A + a], o[3 * (size_t)A + a],
                     best[a], bc[a], a);
    }
    return n;
}

static inline float max_class(const float *p, int C, int *cls)
{
    float m = p[0];
    int k = 0;
    for (int c = 1; c < C; c++) {
        if (p[c] > m) {
            m = p[c];
            k = c;
        }
    }
    *cls = k;
    return m;
}

static int decode_yolov5(its_detector_t *d, const float *o)
{
    const int A = d->anchors, C = d->cfg.num_classes, S = 5 + C;
    const float conf = d->cfg.conf;
    int n = 0;
    for (int a = 0; a < A; a++) {
        const float *p = o + (size_t)a * S;
        if (!(p[4] >= conf)) /* obj * cls <= obj */
            continue;
        int k;
        float s = p[4] * max_class(p + 5, C, &k);
        if (s >= conf)
            n = push(d->cands, n, p[0], p[1], p[2], p[3], s, k, a);
    }
    return n;
}

static int decode_yolox(its_detector_t *d, const float *o)
{
    const int C = d->cfg.num_classes, S = 5 + C;
    const float conf = d->cfg.conf;
    int n = 0, a = 0;
    for (int l = 0; l < d->n_levels; l++) {
        const float s = (float)d->cfg.strides[l];
        for (int gy = 0; gy < d->level_h[l]; gy++) {
            for (int gx = 0; gx < d->level_w[l]; gx++, a++) {
                const float *p = o + (size_t)a * S;
                if (!(p[4] >= conf))
                    continue;
                int k;
                float sc = p[4] * max_class(p + 5, C, &k);
                if (sc >= conf)
                    n = push(d->cands, n, (p[0] + gx) * s, (p[1] + gy) * s, expf(p[2]) * s,
                             expf(p[3]) * s, sc, k, a);
            }
        }
    }
    return n;
}

/* Expected bin of a softmax over `bins` logits. */
static float dist_expect(const float *x, int bins)
{
    float m = x[0];
    for (int i = 1; i < bins; i++)
        m = x[i] > m ? x[i] : m;
    float sum = 0, acc = 0;
    for (int i = 0; i < bins; i++) {
        float e = expf(x[i] - m);
        sum += e;
        acc += e * (float)i;
    }
    return acc / sum;
}

static int decode_nanodet(its_detector_t *d, const float *const *outs, int b)
{
    const int C = d->cfg.num_classes, bins = d->nano_bins;
    const float conf = d->cfg.conf;
    int n = 0, base = 0;
    for (int l = 0; l < d->n_levels; l++) {
        const int ci = d->cls_out[l], ri = d->reg_out[l];
        const float *cls = outs[ci] + (size_t)b * d->out_floats[ci];
        const float *reg = outs[ri] + (size_t)b * d->out_floats[ri];
        const float s = (float)d->cfg.strides[l];
        int a = 0;
        for (int gy = 0; gy < d->level_h[l]; gy++) {
            for (int gx = 0; gx < d->level_w[l]; gx++, a++) {
                int k;
                float sc = max_class(cls + (size_t)a * C, C, &k);
                if (!(sc >= conf))
                    continue;
                const float *r = reg + (size_t)a * 4 * bins;
                float cx = (gx + 0.5f) * s, cy = (gy + 0.5f) * s;
                float l_ = dist_expect(r, bins) * s, t = dist_expect(r + bins, bins) * s;
                float r_ = dist_expect(r + 2 * bins, bins) * s;
                float bt = dist_expect(r + 3 * bins, bins) * s;
                /* push() takes a centre and size: convert the (l, t, r, b) distances. */
                n = push(d->cands, n, cx + 0.5f * (r_ - l_), cy + 0.5f * (bt - t), l_ + r_, t + bt,
                         sc, k, base + a);
            }
        }
        base += a;
    }
    return n;
}

/* Descending score, ties by anchor index: a total order, so results are deterministic. */
static inline int before(const cand *a, const cand *b)
{
    return a->score > b->score || (a->score == b->score && a->idx < b->idx);
}

static void sift(cand *c, int i, int n)
{
    for (;;) {
        int l = 2 * i + 1, m = i;
        /* A min-heap on "before": the root is the candidate that sorts last. */
        if (l < n && before(&c[m], &c[l]))
            m = l;
        if (l + 1 < n && before(&c[m], &c[l + 1]))
            m = l + 1;
        if (m == i)
            return;
        cand t = c[i];
        c[i] = c[m];
        c[m] = t;
        i = m;
    }
}

/* Heapsort: in place, no allocation (glibc's qsort may malloc), O(n log n) worst case. */
static void sort_cands(cand *c, int n)
{
    for (int i = n / 2 - 1; i >= 0; i--)
        sift(c, i, n);
    for (int end = n - 1; end > 0; end--) {
        cand t = c[0];
        c[0] = c[end];
        c[end] = t;
        sift(c, 0, end);
    }
}

float its_det_iou(const float *a, const float *b)
{
    float ix1 = fmaxf(a[0], b[0]), iy1 = fmaxf(a[1], b[1]);
    float ix2 = fminf(a[2], b[2]), iy2 = fminf(a[3], b[3]);
    float iw = fmaxf(ix2 - ix1, 0.0f), ih = fmaxf(iy2 - iy1, 0.0f);
    float inter = iw * ih;
    float ua = fmaxf(a[2] - a[0], 0.0f) * fmaxf(a[3] - a[1], 0.0f) +
               fmaxf(b[2] - b[0], 0.0f) * fmaxf(b[3] - b[1], 0.0f) - inter;
    return ua > 0 ? inter / ua : 0.0f;
}

int its_detector_decode(its_detector_t *d, const float *const *outputs, int b,
                        const its_letterbox *lb, its_det *dets, int cap)
{
    if (!d || !outputs || b < 0 || !lb || (!dets && cap > 0) || cap < 0 || !(lb->scale > 0))
        return ITS_EINVAL;
    for (int i = 0; i < d->n_outputs; i++)
        if (!outputs[i])
            return ITS_EINVAL;
    int n;
    switch (d->cfg.family) {
    case ITS_DET_ULTRALYTICS:
        n = decode_ultralytics(d, outputs[0] + (size_t)b * d->out_floats[0]);
        break;
    case ITS_DET_YOLOV5:
        n = decode_yolov5(d, outputs[0] + (size_t)b * d->out_floats[0]);
        break;
    case ITS_DET_YOLOX:
        n = decode_yolox(d, outputs[0] + (size_t)b * d->out_floats[0]);
        break;
    case ITS_DET_NANODET:
        n = decode_nanodet(d, outputs, b);
        break;
    default:
        return ITS_EINVAL;
    }
    sort_cands(d->cands, n);
    /* Greedy NMS: a candidate survives unless a kept box of its class overlaps it by more
     * than the threshold. Kept boxes are at most max_dets, so this is O(n * max_dets). */
    int limit = d->cfg.max_dets < cap ? d->cfg.max_dets : cap;
    int kept = 0;
    for (int i = 0; i < n && kept < limit; i++) {
        const cand *c = &d->cands[i];
        int ok = 1;
        for (int k = 0; k < kept; k++) {
            const cand *o = &d->cands[d->keep[k]];
            if ((d->cfg.class_agnostic || o->cls == c->cls) &&
                its_det_iou(o->box, c->box) > d->cfg.iou) {
                ok = 0;
                break;
            }
        }
        if (ok)
            d->keep[kept++] = i;
    }
    const float inv = 1.0f / lb->scale, W = (float)lb->src_w, H = (float)lb->src_h;
    for (int k = 0; k < kept; k++) {
        const cand *c = &d->cands[d->keep[k]];
        its_det *o = &dets[k];
        o->x1 = fminf(fmaxf((c->box[0] - lb->pad_x) * inv, 0.0f), W);
        o->y1 = fminf(fmaxf((c->box[1] - lb->pad_y) * inv, 0.0f), H);
        o->x2 = fminf(fmaxf((c->box[2] - lb->pad_x) * inv, 0.0f), W);
        o->y2 = fminf(fmaxf((c->box[3] - lb->pad_y) * inv, 0.0f), H);
        o->score = c->score;
        o->class_id = c->cls;
        o->track_id = 0;
    }
    return kept;
}

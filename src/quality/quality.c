/*
 * QualityScoreCalculator. The definitions are in include/its/quality.h and docs/analytics.md;
 * this file only adds why the pieces are measured the way they are.
 *
 * Everything image-based runs on a box-averaged copy of the luma plane of at most 320 x 320
 * cells: brightness and contrast do not need more, a frozen feed is exactly equal at any scale,
 * a covered lens is a frame of flat blocks, and a Laplacian at that scale still separates a
 * focused scene from a defocused or smeared one (fine detail is below it, but so is the
 * compression noise that would otherwise pass for sharpness).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "its/alloc.h"
#include "its/error.h"
#include "its/json.h"
#include "its/quality.h"

#define GRID_MAX 320
#define BLK      8

struct its_quality {
    its_quality_params p;
    uint8_t *cur, *prev;
    int pw, ph; /* previous grid size, 0 none */
    int64_t equal_since;
    int has_equal_since;
    /* height-vs-row fit for position plausibility: sums over confident vehicle boxes */
    double n, sy, syy, sl, syl;
    /* flicker */
    uint32_t *ids_prev, *ids_cur;
    int n_prev;
    int has_prev_ids;
    double flicker;
    int flicker_init;
    double camera;
    int camera_init;
    uint64_t frames, rejected;
    its_quality_score last;
    its_quality_score last_img; /* the image part of the last measured picture */
};

void its_quality_params_default(its_quality_params *p)
{
    p->camera_alpha = 0.05;
    p->frozen_diff = 0.05;
    p->frozen_s = 2.0;
    p->flat_block_std = 2.5;
    p->sharpness_ref = 12.0;
    p->max_tracks = 1024;
}

void its_quality_destroy(its_quality_t *q)
{
    if (!q)
        return;
    its_free(q->cur);
    its_free(q->prev);
    its_free(q->ids_prev);
    its_free(q->ids_cur);
    its_free(q);
}

int its_quality_create(const its_quality_params *p, its_quality_t **out)
{
    if (!p || !out || !(p->camera_alpha > 0 && p->camera_alpha <= 1) || !(p->frozen_diff >= 0) ||
        !(p->frozen_s >= 0) || !(p->flat_block_std >= 0) || !(p->sharpness_ref > 0) ||
        p->max_tracks < 1 || p->max_tracks > 1 << 20)
        return ITS_EINVAL;
    its_quality_t *q = its_calloc(ITS_MOD_QUALITY, 1, sizeof *q);
    if (!q)
        return ITS_ENOMEM;
    q->p = *p;
    q->cur = its_malloc(ITS_MOD_QUALITY, GRID_MAX * GRID_MAX);
    q->prev = its_malloc(ITS_MOD_QUALITY, GRID_MAX * GRID_MAX);
    q->ids_prev = its_malloc(ITS_MOD_QUALITY, (size_t)p->max_tracks * sizeof(uint32_t));
    q->ids_cur = its_malloc(ITS_MOD_QUALITY, (size_t)p->max_tracks * sizeof(uint32_t));
    if (!q->cur || !q->prev || !q->ids_prev || !q->ids_cur) {
        its_quality_destroy(q);
        return ITS_ENOMEM;
    }
    *out = q;
    return 0;
}

static double clamp01(double x)
{
    return x < 0 ? 0 : x > 1 ? 1 : x;
}

/* ---- image ---- */

static void image_measures(its_quality_t *q, const its_quality_image *img, its_quality_score *s)
{
    int f = (img->width + GRID_MAX - 1) / GRID_MAX;
    int fh = (img->height + GRID_MAX - 1) / GRID_MAX;
    if (fh > f)
        f = fh;
    int gw = img->width / f, gh = img->height / f;
    double inv = 1.0 / (f * f), sum = 0, sum2 = 0;
    for (int gy = 0; gy < gh; gy++) {
        for (int gx = 0; gx < gw; gx++) {
            unsigned acc = 0;
            for (int y = 0; y < f; y++) {
                const uint8_t *row =
                    img->luma + (size_t)(gy * f + y) * (size_t)img->stride + gx * f;
                for (int x = 0; x < f; x++)
                    acc += row[x];
            }
            double v = acc * inv;
            q->cur[gy * gw + gx] = (uint8_t)(v + 0.5);
            sum += v;
            sum2 += v * v;
        }
    }
    double n = (double)gw * gh;
    s->brightness = sum / n;
    s->contrast = sqrt(fmax(0, sum2 / n - s->brightness * s->brightness));
    /* Laplacian */
    double ls = 0, ls2 = 0;
    long ln = 0;
    for (int y = 1; y < gh - 1; y++)
        for (int x = 1; x < gw - 1; x++) {
            const uint8_t *c = q->cur + y * gw + x;
            double l = 4.0 * c[0] - c[-1] - c[1] - c[-gw] - c[gw];
            ls += l;
            ls2 += l * l;
            ln++;
        }
    s->sharpness = ln ? sqrt(fmax(0, ls2 / ln - (ls / ln) * (ls / ln))) : 0;
    /* flat blocks */
    int blocks = 0, flat = 0;
    for (int by = 0; by + BLK <= gh; by += BLK)
        for (int bx = 0; bx + BLK <= gw; bx += BLK) {
            double bs = 0, bs2 = 0;
            for (int y = 0; y < BLK; y++)
                for (int x = 0; x < BLK; x++) {
                    double v = q->cur[(by + y) * gw + bx + x];
                    bs += v;
                    bs2 += v * v;
                }
            double m = bs / (BLK * BLK);
            blocks++;
            flat += sqrt(fmax(0, bs2 / (BLK * BLK) - m * m)) < q->p.flat_block_std;
        }
    s->flat_fraction = blocks ? (double)flat / blocks : 1;
    /* motion and freeze */
    s->motion = NAN;
    if (q->pw == gw && q->ph == gh) {
        long d = 0;
        for (int i = 0; i < gw * gh; i++)
            d += abs((int)q->cur[i] - (int)q->prev[i]);
        s->motion = (double)d / n;
        if (s->motion <= q->p.frozen_diff) {
            if (!q->has_equal_since) {
                q->equal_since = img->ts_ns;
                q->has_equal_since = 1;
            }
        } else {
            q->has_equal_since = 0;
        }
    } else {
        q->has_equal_since = 0;
    }
    s->frozen = q->has_equal_since && (double)(img->ts_ns - q->equal_since) / 1e9 >= q->p.frozen_s;
    uint8_t *t = q->prev;
    q->prev = q->cur;
    q->cur = t;
    q->pw = gw;
    q->ph = gh;

    double b = s->brightness;
    s->s_brightness = b < 60 ? clamp01((b - 15) / 45) : b > 190 ? clamp01((245 - b) / 55) : 1;
    s->s_contrast = clamp01((s->contrast - 5) / 25);
    s->s_sharpness = clamp01(s->sharpness / q->p.sharpness_ref);
    s->s_uncovered = clamp01((0.9 - s->flat_fraction) / 0.4);
    s->covered = s->flat_fraction > 0.75;
    double sub[4] = {s->s_brightness, s->s_contrast, s->s_sharpness, s->s_uncovered};
    const double w[4] = {0.25, 0.25, 0.3, 0.2};
    double mean = 0, mn = 1;
    for (int i = 0; i < 4; i++) {
        mean += w[i] * sub[i];
        mn = fmin(mn, sub[i]);
    }
    s->image_score = s->frozen ? 0 : 0.5 * mean + 0.5 * mn;
    s->has_image = 1;
}

/* ---- detections ---- */

static void aspect_range(int cls, double *lo, double *hi)
{
    switch (cls) {
    case 2: /* car */
    case 5: /* bus */
    case 7: /* truck */
        *lo = 0.4, *hi = 4.5;
        break;
    case 1: /* bicycle */
    case 3: /* motorcycle */
        *lo = 0.25, *hi = 2.5;
        break;
    case 0: /* person */
        *lo = 0.1, *hi = 1.2;
        break;
    default:
        *lo = 0.05, *hi = 20;
    }
}

static double plausibility(its_quality_t *q, const its_det *d, int W, int H)
{
    double w = d->x2 - d->x1, h = d->y2 - d->y1;
    if (!(w > 0 && h > 0) || W <= 0 || H <= 0)
        return 0;
    double frac = w * h / ((double)W * H);
    double size_ok = frac >= 1e-5 && frac <= 0.5;
    double lo, hi, r = w / h;
    aspect_range(d->class_id, &lo, &hi);
    double aspect_ok = r >= lo && r <= hi;
    double iw = fmin(d->x2, W) - fmax(d->x1, 0), ih = fmin(d->y2, H) - fmax(d->y1, 0);
    double inside = iw > 0 && ih > 0 ? iw * ih / (w * h) : 0;
    double inside_ok = clamp01((inside - 0.5) / 0.3);
    /* position: height against the learnt height-for-this-row line (vehicles only) */
    double pos_ok = 1;
    int vehicle = d->class_id == 2 || d->class_id == 5 || d->class_id == 7;
    double y = d->y2 / H, l = vehicle ? log(h / H) : 0;
    if (vehicle && q->n >= 50) {
        double my = q->sy / q->n, var = q->syy / q->n - my * my;
        if (var > 1e-3) {
            double bcoef = (q->syl / q->n - my * (q->sl / q->n)) / var;
            double pred = q->sl / q->n + bcoef * (y - my);
            double dev = fabs(l - pred), tol = log(2.5);
            pos_ok = dev < tol ? 1 : clamp01(1 - (dev - tol) / tol);
        }
    }
    if (vehicle && d->score >= 0.5 && size_ok && aspect_ok && q->n < 1e7) {
        q->n++;
        q->sy += y;
        q->syy += y * y;
        q->sl += l;
        q->syl += y * l;
    }
    return size_ok * aspect_ok * inside_ok * pos_ok;
}

/* Insertion sort: a tracker lists its tracks nearly in id order, so this is close to linear
 * (and, unlike glibc's qsort, it never allocates). */
static void sort_ids(uint32_t *v, int n)
{
    for (int i = 1; i < n; i++) {
        uint32_t x = v[i];
        int j = i;
        while (j > 0 && v[j - 1] > x) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
}

int its_quality_update(its_quality_t *q, const its_quality_image *img, const its_det_frame *f,
                       const its_track *tracks, int n_tracks, its_quality_score *out)
{
    if (!q)
        return ITS_EINVAL;
    if (n_tracks < 0 || (n_tracks > 0 && !tracks) || (f && (f->n < 0 || (f->n > 0 && !f->dets))) ||
        (img && (!img->luma || img->width < 8 || img->height < 8 || img->width > 16384 ||
                 img->height > 16384 || img->stride < img->width))) {
        q->rejected++;
        q->last.rejected = q->rejected;
        return ITS_EINVAL;
    }
    its_quality_score s;
    memset(&s, 0, sizeof s);
    s.image_score = s.det_confidence = s.det_plausibility = s.det_score = NAN;
    s.matched_share = s.flicker = s.temporal_score = s.motion = NAN;
    if (img) {
        image_measures(q, img, &s);
        q->last_img = s;
    } else if (q->p.reuse_image && q->last_img.has_image) {
        s = q->last_img; /* only its image fields are set: the rest is filled below */
    }
    if (f && f->n > 0) {
        double sc = 0, sp = 0;
        int high = 0;
        for (int i = 0; i < f->n; i++) {
            const its_det *d = &f->dets[i];
            double conf = isfinite(d->score) ? clamp01(d->score) : 0;
            sc += conf;
            sp += plausibility(q, d, f->width_px, f->height_px);
            high += conf >= 0.25;
        }
        s.n_dets = f->n;
        s.det_confidence = sc / f->n;
        s.det_plausibility = sp / f->n;
        s.det_score = 0.5 * s.det_confidence + 0.5 * s.det_plausibility;
        if (high) {
            int matched = 0;
            for (int i = 0; i < n_tracks; i++)
                matched += tracks[i].state == ITS_TRACK_CONFIRMED && tracks[i].det_index >= 0;
            s.matched_share = clamp01((double)matched / high);
        }
    }
    if (f) {
        /* flicker: ids born or lost between consecutive frames */
        int n = n_tracks < q->p.max_tracks ? n_tracks : q->p.max_tracks;
        for (int i = 0; i < n; i++)
            q->ids_cur[i] = tracks[i].id;
        sort_ids(q->ids_cur, n);
        if (q->has_prev_ids) {
            int i = 0, j = 0, changes = 0;
            while (i < q->n_prev || j < n) {
                if (j == n || (i < q->n_prev && q->ids_prev[i] < q->ids_cur[j]))
                    changes++, i++;
                else if (i == q->n_prev || q->ids_cur[j] < q->ids_prev[i])
                    changes++, j++;
                else
                    i++, j++;
            }
            double fr = q->n_prev + n ? (double)changes / (q->n_prev + n) : 0;
            q->flicker = q->flicker_init ? 0.9 * q->flicker + 0.1 * fr : fr;
            q->flicker_init = 1;
        }
        uint32_t *t = q->ids_prev;
        q->ids_prev = q->ids_cur;
        q->ids_cur = t;
        q->n_prev = n;
        q->has_prev_ids = 1;
        if (q->flicker_init)
            s.flicker = q->flicker;
        if (isfinite(s.matched_share))
            s.temporal_score = 0.6 * s.matched_share +
                               0.4 * clamp01(1 - 2 * (isfinite(s.flicker) ? s.flicker : 0));
    }
    double wsum = 0, acc = 0;
    if (s.has_image) {
        acc += 0.5 * s.image_score;
        wsum += 0.5;
    }
    if (isfinite(s.det_score)) {
        acc += 0.25 * s.det_score;
        wsum += 0.25;
    }
    if (isfinite(s.temporal_score)) {
        acc += 0.25 * s.temporal_score;
        wsum += 0.25;
    }
    s.frame_score = wsum > 0 ? acc / wsum : NAN;
    if (isfinite(s.frame_score)) {
        q->camera = q->camera_init
                        ? (1 - q->p.camera_alpha) * q->camera + q->p.camera_alpha * s.frame_score
                        : s.frame_score;
        q->camera_init = 1;
    }
    s.camera_score = q->camera_init ? q->camera : NAN;
    s.frames = ++q->frames;
    s.rejected = q->rejected;
    q->last = s;
    if (out)
        *out = s;
    return 0;
}

void its_quality_get(const its_quality_t *q, its_quality_score *out)
{
    *out = q->last;
}

int its_quality_score_to_json(const its_quality_score *s, char *buf, size_t len)
{
    its_json w;
    its_json_init(&w, buf, len);
    its_json_obj_begin(&w);
    its_json_knum(&w, "frame_score", s->frame_score);
    its_json_knum(&w, "camera_score", s->camera_score);
    its_json_kuint(&w, "frames", s->frames);
    its_json_kuint(&w, "rejected", s->rejected);
    its_json_key(&w, "image");
    if (!s->has_image) {
        its_json_null(&w);
    } else {
        static const char *const k[] = {"score",     "brightness", "contrast",
                                        "sharpness", "motion",     "flat_fraction"};
        const double v[] = {s->image_score, s->brightness, s->contrast,
                            s->sharpness,   s->motion,     s->flat_fraction};
        its_json_obj_begin(&w);
        its_json_knums(&w, k, v, 6);
        its_json_kbool(&w, "frozen", s->frozen);
        its_json_kbool(&w, "covered", s->covered);
        its_json_obj_end(&w);
    }
    static const char *const dk[] = {"score", "confidence", "plausibility"};
    const double dv[] = {s->det_score, s->det_confidence, s->det_plausibility};
    its_json_key(&w, "detections");
    its_json_obj_begin(&w);
    its_json_kint(&w, "n", s->n_dets);
    its_json_knums(&w, dk, dv, 3);
    its_json_obj_end(&w);
    static const char *const tk[] = {"score", "matched_share", "flicker"};
    const double tv[] = {s->temporal_score, s->matched_share, s->flicker};
    its_json_key(&w, "temporal");
    its_json_obj_begin(&w);
    its_json_knums(&w, tk, tv, 3);
    its_json_obj_end(&w);
    its_json_obj_end(&w);
    return its_json_finish(&w);
}

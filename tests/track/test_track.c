/* ByteTrack on synthetic multi-object sequences with position noise, missed detections, weak
 * (occluded) detections and false positives. The test computes CLEAR MOT accuracy (MOTA) and
 * the identity F1 score (IDF1) against the known ground truth and bounds them. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "its/alloc.h"
#include "its/error.h"
#include "its/track.h"

#define MAX_OBJ    40
#define MAX_FRAMES 600
#define MAX_TRK    1024

typedef struct rng {
    uint64_t s;
} rng;

static double urand(rng *r)
{
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return (double)(r->s >> 11) / 9007199254740992.0;
}

static double nrand(rng *r)
{
    double u = urand(r) + 1e-12, v = urand(r);
    return sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}

typedef struct box {
    float x1, y1, x2, y2;
} box;

typedef struct obj {
    double cx, cy, vx, vy, w, h;
    int start, end; /* frames present */
} obj;

typedef struct scenario {
    int n_obj, frames;
    double noise; /* position noise, fraction of the box size */
    double miss;  /* probability a detection is missed */
    double weak;  /* probability it comes with a low score (0.1-0.25) */
    double fp;    /* false positives per frame */
} scenario;

/* Ground truth and the tracker's output for one run. */
typedef struct run {
    int frames, n_obj;
    box gt[MAX_FRAMES][MAX_OBJ];
    int gt_on[MAX_FRAMES][MAX_OBJ];
    int n_out[MAX_FRAMES];
    box out[MAX_FRAMES][128];
    uint32_t out_id[MAX_FRAMES][128];
} run;

static float iou(box a, box b)
{
    float iw = fminf(a.x2, b.x2) - fmaxf(a.x1, b.x1), ih = fminf(a.y2, b.y2) - fmaxf(a.y1, b.y1);
    if (iw <= 0 || ih <= 0)
        return 0;
    float in = iw * ih;
    return in / ((a.x2 - a.x1) * (a.y2 - a.y1) + (b.x2 - b.x1) * (b.y2 - b.y1) - in);
}

static void simulate(run *R, const scenario *sc, uint64_t seed)
{
    rng r = {seed};
    obj o[MAX_OBJ];
    memset(R, 0, sizeof *R);
    R->frames = sc->frames;
    R->n_obj = sc->n_obj;
    for (int k = 0; k < sc->n_obj; k++) {
        o[k].w = 30 + urand(&r) * 90;
        o[k].h = o[k].w * (0.6 + urand(&r) * 0.6);
        o[k].cx = 100 + urand(&r) * 1080;
        o[k].cy = 80 + urand(&r) * 560;
        double sp = 1 + urand(&r) * 5, an = urand(&r) * 2 * M_PI;
        o[k].vx = sp * cos(an);
        o[k].vy = sp * sin(an);
        o[k].start = (int)(urand(&r) * sc->frames * 0.5);
        o[k].end = o[k].start + 60 + (int)(urand(&r) * sc->frames);
    }
    its_tracker_params p;
    its_tracker_params_default(&p);
    its_tracker_t *t;
    assert_int_equal(its_tracker_create(&p, &t), 0);
    its_det dets[MAX_OBJ + 64];
    for (int f = 0; f < sc->frames; f++) {
        int nd = 0;
        for (int k = 0; k < sc->n_obj; k++) {
            obj *b = &o[k];
            /* bounce off the frame edges, small random steering */
            b->vx += nrand(&r) * 0.1;
            b->vy += nrand(&r) * 0.1;
            b->cx += b->vx;
            b->cy += b->vy;
            if (b->cx < 60 || b->cx > 1220)
                b->vx = -b->vx;
            if (b->cy < 60 || b->cy > 660)
                b->vy = -b->vy;
            if (f < b->start || f >= b->end)
                continue;
            box g = {(float)(b->cx - b->w / 2), (float)(b->cy - b->h / 2),
                     (float)(b->cx + b->w / 2), (float)(b->cy + b->h / 2)};
            R->gt[f][k] = g;
            R->gt_on[f][k] = 1;
            if (urand(&r) < sc->miss)
                continue;
            double n = sc->noise;
            its_det *d = &dets[nd++];
            d->x1 = g.x1 + (float)(nrand(&r) * n * b->w);
            d->x2 = g.x2 + (float)(nrand(&r) * n * b->w);
            d->y1 = g.y1 + (float)(nrand(&r) * n * b->h);
            d->y2 = g.y2 + (float)(nrand(&r) * n * b->h);
            d->score = urand(&r) < sc->weak ? (float)(0.1 + urand(&r) * 0.14)
                                            : (float)(0.5 + urand(&r) * 0.45);
            d->class_id = 2;
        }
        int nfp = (int)(sc->fp + urand(&r)); /* fp per frame on average */
        for (int k = 0; k < nfp && nd < MAX_OBJ + 64; k++) {
            its_det *d = &dets[nd++];
            float w = (float)(20 + urand(&r) * 80);
            d->x1 = (float)(urand(&r) * 1200);
            d->y1 = (float)(urand(&r) * 650);
            d->x2 = d->x1 + w;
            d->y2 = d->y1 + w;
            d->score = (float)(0.1 + urand(&r) * 0.4);
            d->class_id = 2;
        }
        its_det_frame fr = {dets, nd, 1280, 720, f * 33333333LL, (uint64_t)f};
        const its_track *tr;
        int n = its_tracker_update(t, &fr, &tr);
        assert_true(n >= 0 && n <= 128);
        R->n_out[f] = n;
        for (int i = 0; i < n; i++) {
            R->out[f][i] = (box){tr[i].x1, tr[i].y1, tr[i].x2, tr[i].y2};
            R->out_id[f][i] = tr[i].id;
        }
    }
    its_tracker_destroy(t);
}

/* CLEAR MOT: correspondences kept from the previous frame while IoU >= 0.5, the rest matched
 * greedily by IoU; an identity switch is a GT object matched to a different id than before. */
static double mota(const run *R, int *idsw_out)
{
    static uint32_t last[MAX_OBJ];
    long fn = 0, fp = 0, idsw = 0, gt = 0;
    memset(last, 0, sizeof last);
    for (int f = 0; f < R->frames; f++) {
        int used[128] = {0}, match[MAX_OBJ];
        for (int k = 0; k < R->n_obj; k++) {
            match[k] = -1;
            if (!R->gt_on[f][k])
                continue;
            gt++;
            for (int i = 0; i < R->n_out[f]; i++)
                if (R->out_id[f][i] == last[k] && !used[i] &&
                    iou(R->gt[f][k], R->out[f][i]) >= 0.5f) {
                    match[k] = i;
                    used[i] = 1;
                }
        }
        for (;;) {
            float best = 0.5f;
            int bk = -1, bi = -1;
            for (int k = 0; k < R->n_obj; k++) {
                if (!R->gt_on[f][k] || match[k] >= 0)
                    continue;
                for (int i = 0; i < R->n_out[f]; i++) {
                    float v = used[i] ? 0 : iou(R->gt[f][k], R->out[f][i]);
                    if (v >= best) {
                        best = v;
                        bk = k;
                        bi = i;
                    }
                }
            }
            if (bk < 0)
                break;
            match[bk] = bi;
            used[bi] = 1;
        }
        for (int k = 0; k < R->n_obj; k++) {
            if (!R->gt_on[f][k])
                continue;
            if (match[k] < 0) {
                fn++;
                continue;
            }
            uint32_t id = R->out_id[f][match[k]];
            if (last[k] && last[k] != id)
                idsw++;
            last[k] = id;
        }
        for (int i = 0; i < R->n_out[f]; i++)
            fp += !used[i];
    }
    *idsw_out = (int)idsw;
    return 1.0 - (double)(fn + fp + idsw) / (double)gt;
}

/* IDF1: the one-to-one mapping of GT trajectories to track ids that maximises the frames where
 * they overlap (IoU >= 0.5), found with the Hungarian method. */
static double idf1(const run *R)
{
    enum { NT = 1024 };
    static int ov[MAX_OBJ][NT];
    static uint32_t ids[NT];
    int nt = 0;
    long n_gt = 0, n_pred = 0;
    memset(ov, 0, sizeof ov);
    for (int f = 0; f < R->frames; f++) {
        n_pred += R->n_out[f];
        for (int i = 0; i < R->n_out[f]; i++) {
            int j;
            for (j = 0; j < nt && ids[j] != R->out_id[f][i]; j++) {
            }
            if (j == nt) {
                assert_true(nt < NT);
                ids[nt++] = R->out_id[f][i];
            }
            for (int k = 0; k < R->n_obj; k++)
                if (R->gt_on[f][k] && iou(R->gt[f][k], R->out[f][i]) >= 0.5f)
                    ov[k][j]++;
        }
        for (int k = 0; k < R->n_obj; k++)
            n_gt += R->gt_on[f][k];
    }
    /* Rectangular Hungarian: rows = GT objects, columns = track ids (padded), cost = -overlap. */
    int n = R->n_obj, m = nt > n ? nt : n;
    static double u[NT + MAX_OBJ + 1], v[NT + MAX_OBJ + 1], minv[NT + MAX_OBJ + 1];
    static int p[NT + MAX_OBJ + 1], way[NT + MAX_OBJ + 1], usedc[NT + MAX_OBJ + 1];
    memset(u, 0, sizeof u);
    memset(v, 0, sizeof v);
    memset(p, 0, sizeof p);
    for (int i = 1; i <= n; i++) {
        p[0] = i;
        int j0 = 0;
        for (int j = 0; j <= m; j++) {
            minv[j] = 1e18;
            usedc[j] = 0;
        }
        do {
            usedc[j0] = 1;
            int i0 = p[j0], j1 = 0;
            double delta = 1e18;
            for (int j = 1; j <= m; j++) {
                if (usedc[j])
                    continue;
                double c = j - 1 < nt ? -ov[i0 - 1][j - 1] : 0;
                double cur = c - u[i0] - v[j];
                if (cur < minv[j]) {
                    minv[j] = cur;
                    way[j] = j0;
                }
                if (minv[j] < delta) {
                    delta = minv[j];
                    j1 = j;
                }
            }
            for (int j = 0; j <= m; j++) {
                if (usedc[j]) {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
        } while (p[j0] != 0);
        do {
            int j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
        } while (j0);
    }
    long idtp = 0;
    for (int j = 1; j <= m; j++)
        if (p[j] > 0 && j - 1 < nt)
            idtp += ov[p[j] - 1][j - 1];
    return 2.0 * (double)idtp / (double)(n_gt + n_pred);
}

static run R;

static void check(const char *name, const scenario *sc, double min_mota, double min_idf1,
                  int max_idsw)
{
    double sum_m = 0, sum_i = 0;
    int sum_sw = 0;
    for (uint64_t seed = 1; seed <= 3; seed++) {
        simulate(&R, sc, seed * 7919);
        int sw;
        double m = mota(&R, &sw), i = idf1(&R);
        printf("%-14s seed %d: MOTA %.3f IDF1 %.3f ID switches %d\n", name, (int)seed, m, i, sw);
        sum_m += m;
        sum_i += i;
        sum_sw += sw;
        assert_true(m >= min_mota);
        assert_true(i >= min_idf1);
        assert_true(sw <= max_idsw);
    }
    (void)sum_m;
    (void)sum_i;
    (void)sum_sw;
}

static void test_clean(void **state)
{
    (void)state;
    scenario sc = {20, 400, 0.0, 0.0, 0.0, 0.0};
    check("clean", &sc, 0.98, 0.98, 2);
}

static void test_noisy(void **state)
{
    (void)state;
    /* 3% position noise, 10% missed, 10% weak, 3 false positives per frame */
    scenario sc = {25, 500, 0.03, 0.10, 0.10, 3.0};
    check("noisy", &sc, 0.80, 0.80, 25);
}

static void test_hard(void **state)
{
    (void)state;
    /* 5% noise, 25% missed, 20% weak, 8 false positives per frame */
    scenario sc = {30, 500, 0.05, 0.25, 0.20, 8.0};
    check("hard", &sc, 0.60, 0.65, 40);
}

/* The metrics themselves: ids scrambled every 10 frames must score badly on IDF1. */
static void test_metric_sanity(void **state)
{
    (void)state;
    scenario sc = {20, 300, 0.0, 0.0, 0.0, 0.0};
    simulate(&R, &sc, 99);
    int sw;
    double good = idf1(&R);
    for (int f = 0; f < R.frames; f++)
        for (int i = 0; i < R.n_out[f]; i++)
            R.out_id[f][i] = R.out_id[f][i] * 1000 + (uint32_t)(f / 10);
    double bad = idf1(&R);
    double m = mota(&R, &sw);
    printf("sanity: IDF1 %.3f -> %.3f after scrambling, %d switches\n", good, bad, sw);
    assert_true(good > 0.9);
    assert_true(bad < 0.3);
    assert_true(sw > 100);
    assert_true(m < 0.9);
}

static void test_bad_input_and_alloc(void **state)
{
    (void)state;
    its_tracker_params p;
    its_tracker_params_default(&p);
    its_tracker_t *t;
    its_tracker_params q = p;
    q.low_thresh = 0.5f; /* above high */
    assert_int_equal(its_tracker_create(&q, &t), ITS_EINVAL);
    q = p;
    q.max_tracks = 0;
    assert_int_equal(its_tracker_create(&q, &t), ITS_EINVAL);
    assert_int_equal(its_tracker_create(NULL, &t), ITS_EINVAL);
    for (int k = 0; k < 40; k++) {
        its_alloc_fail_after(ITS_MOD_COUNT, k, 1);
        int rc = its_tracker_create(&p, &t);
        its_alloc_fail_reset();
        if (rc == 0) {
            its_tracker_destroy(t);
            break;
        }
        assert_int_equal(rc, ITS_ENOMEM);
    }
    p.max_dets = 4;
    p.max_tracks = 3;
    assert_int_equal(its_tracker_create(&p, &t), 0);
    its_det d[6] = {
        {NAN, 0, 10, 10, 0.9f, 2, 0},     {0, 0, -10, 10, 0.9f, 2, 0},
        {0, 0, 10, 10, 1.5f, 2, 0},       {100, 100, 150, 150, 0.9f, 2, 0},
        {300, 300, 350, 350, 0.9f, 2, 0}, {500, 500, 550, 550, 0.9f, 2, 0},
    };
    const its_track *out;
    its_det_frame fr = {d, 6, 1280, 720, 0, 0};
    assert_int_equal(its_tracker_update(t, &fr, &out), 1);
    its_tracker_stats st;
    its_tracker_get_stats(t, &st);
    assert_int_equal(st.dets_invalid, 3);
    assert_int_equal(st.dets_dropped, 2);
    /* more objects than max_tracks: refused and counted */
    its_det many[4] = {{0, 0, 10, 10, 0.9f, 2, 0},
                       {20, 0, 30, 10, 0.9f, 2, 0},
                       {40, 0, 50, 10, 0.9f, 2, 0},
                       {60, 0, 70, 10, 0.9f, 2, 0}};
    its_det_frame f2 = {many, 4, 1280, 720, 1, 1};
    assert_true(its_tracker_update(t, &f2, &out) >= 0);
    its_tracker_get_stats(t, &st);
    assert_true(st.tracks_dropped >= 1);
    f2.dets = NULL;
    assert_int_equal(its_tracker_update(t, &f2, &out), ITS_EINVAL);
    f2.n = -1;
    assert_int_equal(its_tracker_update(t, &f2, &out), ITS_EINVAL);
    its_tracker_destroy(t);
    its_tracker_destroy(NULL);
}

static void test_json_and_no_alloc(void **state)
{
    (void)state;
    its_tracker_params p;
    its_tracker_params_default(&p);
    its_tracker_t *t;
    assert_int_equal(its_tracker_create(&p, &t), 0);
    uint64_t before = 0;
    char buf[8192];
    for (int f = 0; f < 200; f++) {
        if (f == 20)
            before = its_alloc_count();
        its_det d[10];
        for (int k = 0; k < 10; k++)
            d[k] = (its_det){(float)(k * 120 + f), 100, (float)(k * 120 + f + 60), 160, 0.9f, 2, 0};
        its_det_frame fr = {d, 10, 1280, 720, f * 33333333LL, (uint64_t)f};
        const its_track *out;
        int n = its_tracker_update(t, &fr, &out);
        assert_int_equal(n, 10);
        assert_true(its_tracks_to_json(&fr, out, n, buf, sizeof buf) > 0);
        if (f == 199) {
            assert_non_null(strstr(buf, "\"frame\":199"));
            assert_non_null(strstr(buf, "\"id\":10,"));
            assert_int_equal(its_tracks_to_json(&fr, out, n, buf, 40), ITS_EOVERFLOW);
        }
    }
    assert_true(its_alloc_count() == before);
    its_tracker_destroy(t);
}

/* A camera sampled at 4 fps of a 30 fps stream: a car moves its own length between two
 * frames, so its second box does not overlap its first. The track it starts must still be
 * confirmed on the second sight and keep one id (buffered IoU for tentative tracks). At the
 * stream's full rate the same jump is not a plausible motion and is not associated. */
static void test_low_frame_rate(void **state)
{
    (void)state;
    for (int pass = 0; pass < 2; pass++) {
        int64_t dt = pass == 0 ? 250000000LL : 33333333LL;
        its_tracker_params p;
        its_tracker_params_default(&p);
        p.frame_rate = 30;
        its_tracker_t *t;
        assert_int_equal(its_tracker_create(&p, &t), 0);
        const its_track *out;
        its_det_frame fr = {NULL, 0, 1280, 720, 1000000000LL, 0};
        assert_int_equal(its_tracker_update(t, &fr, &out), 0); /* empty first frame */
        uint32_t id = 0;
        int seen = 0;
        for (int f = 1; f <= 6; f++) {
            float x = 100.0f + 60.0f * (float)(f - 1);
            its_det d = {x, 300, x + 60, 340, 0.9f, 2, 0};
            its_det_frame g = {&d, 1, 1280, 720, 1000000000LL + f * dt, (uint64_t)f};
            int n = its_tracker_update(t, &g, &out);
            assert_true(n >= 0);
            if (n == 1) {
                if (!id)
                    id = out[0].id;
                assert_int_equal(out[0].id, id);
                seen++;
            }
        }
        if (pass == 0)
            assert_int_equal(seen, 5); /* confirmed on the second sight, then every frame */
        else
            assert_int_equal(seen, 0);
        its_tracker_destroy(t);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean),
        cmocka_unit_test(test_noisy),
        cmocka_unit_test(test_hard),
        cmocka_unit_test(test_metric_sanity),
        cmocka_unit_test(test_bad_input_and_alloc),
        cmocka_unit_test(test_json_and_no_alloc),
        cmocka_unit_test(test_low_frame_rate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

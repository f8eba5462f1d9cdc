/*
 * bench_analytics: per-frame cost of tracking plus all analytics for one camera with 100
 * vehicles in view (target < 50 us per frame), and heap allocations per frame after warm-up
 * (target 0, counted by the core allocator).
 *
 *     bench_analytics [--frames N] [--objects N]
 *
 * Scene: 1920x1080, ten lanes of traffic moving down the frame, 4 counting lines, 4 zones,
 * 4 lanes (2 with stop lines), a calibration. Detections carry position noise, 5% are missed
 * and 3 false positives per frame are added; vehicles that leave re-enter at the top as new
 * objects, so tracks start and end all the time.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "its/alloc.h"
#include "its/analytics.h"
#include "its/clock.h"
#include "its/modelmon.h"
#include "its/quality.h"
#include "its/track.h"

#define MAX_OBJ 512

typedef struct veh {
    double x, y, vy, w, h;
} veh;

static uint64_t rs = 88172645463325252ULL;

static double urand(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return (double)(rs >> 11) / 9007199254740992.0;
}

static double nrand(void)
{
    return sqrt(-2 * log(urand() + 1e-12)) * cos(6.283185307179586 * urand());
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct stage {
    const char *name;
    int64_t *ns;
    uint64_t allocs;
} stage;

static void print_row(stage *s, int n)
{
    qsort(s->ns, (size_t)n, sizeof(int64_t), cmp_i64);
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += (double)s->ns[i];
    printf("| %-34s | %9.2f | %9.2f | %9.2f | %11.3f |\n", s->name, sum / n / 1e3,
           (double)s->ns[n / 2] / 1e3, (double)s->ns[(int)(n * 0.99)] / 1e3, (double)s->allocs / n);
}

static double thread_cpu_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

/* Wall-clock times above include whatever else the shared machine runs; this measures the
 * thread's own CPU time over all measured frames, cumulatively: tracker; + analytics;
 * + quality; + modelmon (fresh contexts each pass, same frames, same warm-up), each the least
 * of three runs. */
static void cpu_passes(const its_scene *sc, const its_tracker_params *tp, const its_det *all,
                       int stride, const int *counts, int warm, int frames)
{
    double cum[5];
    for (int pass = 0; pass < 5; pass++)
        cum[pass] = 1e30;
    /* each pass three times, keeping the least: other load only ever adds */
    for (int rep = 0; rep < 15; rep++) {
        int pass = rep % 5;
        its_tracker_t *trk;
        its_analytics_t *an;
        its_quality_t *q;
        its_modelmon_t *mm;
        its_quality_params qp;
        its_quality_params_default(&qp);
        its_modelmon_params mp;
        its_modelmon_params_default(&mp);
        if (its_tracker_create(tp, &trk) < 0 || its_analytics_create(sc, tp, &an) < 0 ||
            its_quality_create(&qp, &q) < 0 || its_modelmon_create(&mp, &mm) < 0)
            return;
        double t0 = 0;
        for (int f = 0; f < warm + frames; f++) {
            if (f == warm)
                t0 = thread_cpu_us();
            its_det_frame fr = {all + (size_t)f * (size_t)stride, counts[f],  1920, 1080,
                                1000000000LL + f * 33333333LL,    (uint64_t)f};
            const its_track *tracks;
            const its_analytics_frame *r;
            int n;
            if (pass == 4) { /* the one call a service makes: duplicates, tracker, analytics */
                its_analytics_push(an, &fr, &r);
                tracks = r->tracks;
                n = r->n_tracks;
            } else {
                n = its_tracker_update(trk, &fr, &tracks);
            }
            if (pass >= 1 && pass < 4)
                its_analytics_update(an, fr.ts_ns, fr.frame_no, tracks, n, &r);
            if (pass >= 2)
                its_quality_update(q, NULL, &fr, tracks, n, NULL);
            if (pass >= 3)
                its_modelmon_observe(mm, &fr);
        }
        double us = (thread_cpu_us() - t0) / frames;
        if (us < cum[pass])
            cum[pass] = us;
        its_modelmon_destroy(mm);
        its_quality_destroy(q);
        its_analytics_destroy(an);
        its_tracker_destroy(trk);
    }
    printf("\nthread CPU time per frame (immune to other load on the machine):\n\n");
    printf("| %-34s | %9s |\n", "stage", "cpu us");
    printf("|%s|%s|\n", "------------------------------------", "-----------");
    printf("| %-34s | %9.2f |\n", "tracker (ByteTrack)", cum[0]);
    printf("| %-34s | %9.2f |\n", "analytics (lines/zones/speed/...)", cum[1] - cum[0]);
    printf("| %-34s | %9.2f |\n", "quality (detections + temporal)", cum[2] - cum[1]);
    printf("| %-34s | %9.2f |\n", "modelmon observe", cum[3] - cum[2]);
    printf("| %-34s | %9.2f |\n", "total per frame (target < 50)", cum[3]);
    printf("| %-34s | %9.2f |\n", "same via its_analytics_push", cum[4]);
    printf("\n");
}

static void scene(its_scene *s)
{
    its_scene_default(s);
    strcpy(s->camera, "bench");
    s->fps = 30;
    s->width_px = 1920;
    s->height_px = 1080;
    s->has_calibration = 1;
    /* a 40 m wide, 120 m long stretch seen in perspective */
    its_pt img[4] = {{600, 100}, {1320, 100}, {1900, 1070}, {20, 1070}};
    its_pt road[4] = {{0, 120}, {40, 120}, {40, 0}, {0, 0}};
    memcpy(s->calib_image, img, sizeof img);
    memcpy(s->calib_road, road, sizeof road);
    for (int i = 0; i < 4; i++) {
        its_scene_line *l = &s->lines[s->n_lines++];
        snprintf(l->name, sizeof l->name, "line%d", i);
        l->a = (its_pt){10, 250.0 + 200 * i};
        l->b = (its_pt){1910, 250.0 + 200 * i};
        l->positive = (its_pt){0, 1};
        l->lanes = 10;
        its_scene_zone *z = &s->zones[s->n_zones++];
        snprintf(z->name, sizeof z->name, "zone%d", i);
        z->n = 4;
        double x0 = 100 + 450 * i;
        z->poly[0] = (its_pt){x0, 300};
        z->poly[1] = (its_pt){x0 + 400, 300};
        z->poly[2] = (its_pt){x0 + 400, 800};
        z->poly[3] = (its_pt){x0, 800};
        its_scene_lane *ln = &s->lanes[s->n_lanes++];
        snprintf(ln->name, sizeof ln->name, "lane%d", i);
        ln->n = 4;
        ln->poly[0] = (its_pt){x0, 100};
        ln->poly[1] = (its_pt){x0 + 450, 100};
        ln->poly[2] = (its_pt){x0 + 450, 1070};
        ln->poly[3] = (its_pt){x0, 1070};
        ln->direction = (its_pt){0, 1};
        ln->stop_line = i < 2 ? 3 : -1;
    }
}

int main(int argc, char **argv)
{
    int frames = 3000, warm = 300, nobj = 100;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--frames"))
            frames = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--objects"))
            nobj = atoi(argv[i + 1]);
    }
    if (frames < 100 || nobj < 1 || nobj > MAX_OBJ - 8) {
        fprintf(stderr, "usage: bench_analytics [--frames N>=100] [--objects 1..%d]\n",
                MAX_OBJ - 8);
        return 2;
    }
    its_scene sc;
    scene(&sc);
    char err[256];
    if (its_scene_validate(&sc, "bench", err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    its_tracker_params tp;
    its_tracker_params_default(&tp);
    its_tracker_t *trk;
    its_analytics_t *an;
    its_quality_t *q;
    its_modelmon_t *mm;
    its_quality_params qp;
    its_quality_params_default(&qp);
    its_modelmon_params mp;
    its_modelmon_params_default(&mp);
    if (its_tracker_create(&tp, &trk) < 0 || its_analytics_create(&sc, &tp, &an) < 0 ||
        its_quality_create(&qp, &q) < 0 || its_modelmon_create(&mp, &mm) < 0) {
        fprintf(stderr, "setup failed\n");
        return 1;
    }
    static veh v[MAX_OBJ];
    int per_lane = (nobj + 9) / 10;
    for (int k = 0; k < nobj; k++) {
        v[k].x = 100 + (k % 10) * 180;
        v[k].y = 100 + (k / 10) * (1000.0 / per_lane) + urand() * 20;
        v[k].vy = 4 + (k % 10) * 0.6;
        v[k].w = 60 + urand() * 60;
        v[k].h = v[k].w * 0.8;
    }
    /* All frames' detections are generated first, so the simulation is not timed. */
    int total = warm + frames;
    its_det *all = malloc(sizeof(its_det) * (size_t)(nobj + 3) * (size_t)total);
    int *counts = malloc(sizeof(int) * (size_t)total);
    if (!all || !counts)
        return 1;
    for (int f = 0; f < total; f++) {
        its_det *dets = all + (size_t)f * (size_t)(nobj + 3);
        int nd = 0;
        for (int k = 0; k < nobj; k++) {
            veh *o = &v[k];
            o->y += o->vy;
            if (o->y > 1075) {
                o->y = 100;
                o->w = 60 + urand() * 60;
                o->h = o->w * 0.8;
            }
            if (urand() < 0.05)
                continue;
            its_det *d = &dets[nd++];
            d->x1 = (float)(o->x - o->w / 2 + nrand() * 2);
            d->x2 = (float)(o->x + o->w / 2 + nrand() * 2);
            d->y1 = (float)(o->y - o->h + nrand() * 2);
            d->y2 = (float)(o->y + nrand() * 2);
            d->score = (float)(0.3 + urand() * 0.65);
            d->class_id = k % 7 == 0 ? 7 : 2;
        }
        for (int k = 0; k < 3; k++) {
            its_det *d = &dets[nd++];
            d->x1 = (float)(urand() * 1800);
            d->y1 = (float)(urand() * 1000);
            d->x2 = d->x1 + 50;
            d->y2 = d->y1 + 40;
            d->score = (float)(0.1 + urand() * 0.3);
            d->class_id = 2;
        }
        counts[f] = nd;
    }
    stage st[5] = {{"tracker (ByteTrack)", NULL, 0},
                   {"analytics (lines/zones/speed/...)", NULL, 0},
                   {"quality (detections + temporal)", NULL, 0},
                   {"modelmon observe", NULL, 0},
                   {"total per frame", NULL, 0}};
    for (int i = 0; i < 5; i++)
        st[i].ns = malloc(sizeof(int64_t) * (size_t)frames);
    stage js = {"frame JSON (not in total)", malloc(sizeof(int64_t) * (size_t)frames), 0};
    static char json[1 << 17];
    long in_view = 0, crossings = 0;
    for (int f = 0; f < total; f++) {
        its_det *dets = all + (size_t)f * (size_t)(nobj + 3);
        int nd = counts[f];
        its_det_frame fr = {dets, nd, 1920, 1080, 1000000000LL + f * 33333333LL, (uint64_t)f};
        int m = f - warm;
        uint64_t a0 = its_alloc_count();
        int64_t t0 = (int64_t)its_now_ns();
        const its_track *tracks;
        int n = its_tracker_update(trk, &fr, &tracks);
        int64_t t1 = (int64_t)its_now_ns();
        uint64_t a1 = its_alloc_count();
        const its_analytics_frame *r;
        its_analytics_update(an, fr.ts_ns, fr.frame_no, tracks, n, &r);
        int64_t t2 = (int64_t)its_now_ns();
        uint64_t a2 = its_alloc_count();
        its_quality_update(q, NULL, &fr, tracks, n, NULL);
        int64_t t3 = (int64_t)its_now_ns();
        uint64_t a3 = its_alloc_count();
        its_modelmon_observe(mm, &fr);
        int64_t t4 = (int64_t)its_now_ns();
        uint64_t a4 = its_alloc_count();
        its_json jw;
        its_json_init(&jw, json, sizeof json);
        its_analytics_frame_write(an, r, &jw);
        int jl = its_json_finish(&jw);
        int64_t t5 = (int64_t)its_now_ns();
        uint64_t a5 = its_alloc_count();
        if (jl < 0) {
            fprintf(stderr, "JSON buffer too small\n");
            return 1;
        }
        if (m < 0)
            continue;
        int64_t ts[5] = {t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0};
        uint64_t as[5] = {a1 - a0, a2 - a1, a3 - a2, a4 - a3, a4 - a0};
        for (int i = 0; i < 5; i++) {
            st[i].ns[m] = ts[i];
            st[i].allocs += as[i];
        }
        js.ns[m] = t5 - t4;
        js.allocs += a5 - a4;
        in_view += n;
        for (int i = 0; i < r->n_events; i++)
            crossings += r->events[i].type == ITS_EV_LINE_CROSSING;
    }
    printf("bench_analytics: %d frames after %d warm-up, %d objects simulated, "
           "%.1f confirmed tracks in view per frame, %.1f line crossings per frame\n\n",
           frames, warm, nobj, (double)in_view / frames, (double)crossings / frames);
    printf("| %-34s | %9s | %9s | %9s | %11s |\n", "stage", "mean us", "p50 us", "p99 us",
           "allocs/frm");
    printf("|%s|%s|%s|%s|%s|\n", "------------------------------------", "-----------",
           "-----------", "-----------", "-------------");
    for (int i = 0; i < 5; i++)
        print_row(&st[i], frames);
    print_row(&js, frames);
    cpu_passes(&sc, &tp, all, nobj + 3, counts, warm, frames);
    /* quality's image part, on a 1280x720 luma plane (separate budget: per frame image work) */
    static uint8_t luma[1280 * 720];
    for (int i = 0; i < 1280 * 720; i++)
        luma[i] = (uint8_t)(urand() * 255);
    stage qi = {"quality image part (1280x720 luma)", malloc(sizeof(int64_t) * 200), 0};
    for (int i = 0; i < 200; i++) {
        its_quality_image im = {luma, 1280, 720, 1280, i * 33333333LL};
        uint64_t a0 = its_alloc_count();
        int64_t t0 = (int64_t)its_now_ns();
        its_quality_update(q, &im, NULL, NULL, 0, NULL);
        qi.ns[i] = (int64_t)its_now_ns() - t0;
        qi.allocs += its_alloc_count() - a0;
    }
    print_row(&qi, 200);
    its_modelmon_destroy(mm);
    its_quality_destroy(q);
    its_analytics_destroy(an);
    its_tracker_destroy(trk);
    for (int i = 0; i < 5; i++)
        free(st[i].ns);
    free(js.ns);
    free(qi.ns);
    free(all);
    free(counts);
    return 0;
}

/* Analytics on synthetic trajectories with exact ground truth (road metres through a known
 * homography): counts, speeds, zones, queues, incidents, windows, LOS and the forecast. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "its/alloc.h"
#include "its/analytics.h"
#include "its/error.h"
#include "sim.h"

#define COCO_PERSON  0
#define COCO_BICYCLE 1
#define COCO_CAR     2
#define COCO_MOTO    3
#define COCO_BUS     5
#define COCO_TRUCK   7

static its_analytics_t *make(const its_scene *s)
{
    its_analytics_t *a = NULL;
    assert_int_equal(its_analytics_create(s, NULL, &a), 0);
    return a;
}

static const its_analytics_frame *step(its_analytics_t *a, int frame, const its_track *t, int n)
{
    const its_analytics_frame *r = NULL;
    assert_int_equal(its_analytics_update(a, sim_ts(frame), (uint64_t)frame, t, n, &r), 0);
    return r;
}

static int count_events(const its_analytics_frame *r, its_event_type type)
{
    int n = 0;
    for (int i = 0; i < r->n_events; i++)
        n += r->events[i].type == type;
    return n;
}

static void assert_speed(double got, double truth_kmh)
{
    if (!(fabs(got - truth_kmh) <= 0.03 * truth_kmh)) {
        fprintf(stderr, "speed %.3f km/h, truth %.3f km/h\n", got, truth_kmh);
        fail();
    }
}

/* Six objects of six classes drive straight up the road at different speeds. */
static void test_straight(void **state)
{
    (void)state;
    its_scene s;
    sim_scene(&s);
    sim_add_line(&s, "mid", 20);
    its_analytics_t *a = make(&s);
    const int cls[6] = {COCO_CAR, COCO_TRUCK, COCO_BUS, COCO_MOTO, COCO_BICYCLE, COCO_PERSON};
    const double v[6] = {10, 15, 8, 20, 5, 1.5}; /* m/s */
    int crossings = 0, speed_checks = 0;
    for (int f = 0; f < 30 * 40; f++) {
        its_track t[6];
        double truth[6];
        int n = 0;
        for (int k = 0; k < 6; k++) {
            double tt = f / SIM_FPS - 2.0 * k;
            double y = 0.5 + v[k] * tt;
            if (tt < 0 || y > 39.5)
                continue;
            truth[n] = v[k] * 3.6;
            t[n++] = sim_track(&s, (uint32_t)k + 1, cls[k], (its_pt){2 + k, y});
        }
        const its_analytics_frame *r = step(a, f, t, n);
        crossings += count_events(r, ITS_EV_LINE_CROSSING);
        for (int i = 0; i < n; i++) {
            double tt = f / SIM_FPS - 2.0 * (t[i].id - 1);
            if (tt > 1.05) {
                assert_speed(r->speed_kmh[i], truth[i]);
                speed_checks++;
            }
        }
    }
    its_analytics_report rep;
    assert_int_equal(its_analytics_get_report(a, &rep), 0);
    for (int g = 0; g < ITS_CLS_COUNT; g++) {
        assert_int_equal(rep.lines[0].total[g][0], 1);
        assert_int_equal(rep.lines[0].total[g][1], 0);
    }
    assert_int_equal(crossings, 6);
    assert_true(speed_checks > 1000);
    its_analytics_destroy(a);
}

/* A quarter circle of radius 9 m at 5 m/s, crossing the line while turning (the chord over
 * the 1 s speed window is 1.3% shorter than the arc). */
static void test_turning(void **state)
{
    (void)state;
    its_scene s;
    sim_scene(&s);
    sim_add_line(&s, "mid", 10);
    its_analytics_t *a = make(&s);
    const double R = 9, v = 5, w = v / R;
    int checks = 0;
    for (int f = 0;; f++) {
        double th = M_PI - w * f / SIM_FPS;
        if (th < M_PI / 2)
            break;
        its_track t = sim_track(&s, 7, COCO_CAR, (its_pt){10 + R * cos(th), 4 + R * sin(th)});
        const its_analytics_frame *r = step(a, f, &t, 1);
        if (f > 33) {
            assert_speed(r->speed_kmh[0], v * 3.6);
            checks++;
        }
    }
    its_analytics_report rep;
    its_analytics_get_report(a, &rep);
    assert_int_equal(rep.lines[0].total[ITS_CLS_CAR][0], 1);
    assert_int_equal(rep.lines[0].total[ITS_CLS_CAR][1], 0);
    assert_true(checks > 40);
    its_analytics_destroy(a);
}

/* Back and forth over the line, and jitter sitting on it: one count. */
static void test_back_and_forth(void **state)
{
    (void)state;
    its_scene s;
    sim_scene(&s);
    sim_add_line(&s, "mid", 15);
    its_analytics_t *a = make(&s);
    /* waypoints in road y, 5 m/s between them */
    const double wp[] = {8, 18, 12, 19, 11, 15};
    double y = wp[0];
    int f = 0;
    for (size_t k = 1; k < sizeof wp / sizeof wp[0]; k++) {
        while (fabs(y - wp[k]) > 1e-9) {
            double stepm = 5.0 / SIM_FPS;
            y += fmax(-stepm, fmin(stepm, wp[k] - y));
            its_track t = sim_track(&s, 3, COCO_CAR, (its_pt){5, y});
            step(a, f++, &t, 1);
        }
    }
    /* Jitter of +-2 cm (well under a pixel) on the line for 3 s, then drive on. */
    for (int k = 0; k < 90; k++) {
        its_track t = sim_track(&s, 3, COCO_CAR, (its_pt){5, 15 + (k % 2 ? 0.02 : -0.02)});
        step(a, f++, &t, 1);
    }
    for (int k = 0; k < 60; k++) {
        its_track t = sim_track(&s, 3, COCO_CAR, (its_pt){5, 15 + k * 0.2});
        step(a, f++, &t, 1);
    }
    /* A second car only jitters on the line and leaves the way it came: no count. */
    for (int k = 0; k < 90; k++) {
        its_track t = sim_track(&s, 4, COCO_CAR, (its_pt){3, 15 + (k % 2 ? 0.03 : -0.03)});
        step(a, f++, &t, 1);
    }
    its_analytics_report rep;
    its_analytics_get_report(a, &rep);
    assert_int_equal(rep.lines[0].total[ITS_CLS_CAR][0], 1);
    assert_int_equal(rep.lines[0].total[ITS_CLS_CAR][1], 0);
    its_analytics_destroy(a);
}

/* Drive, brake gently to a stop for 5 s, drive on: one count, speed right in each phase, no
 * incident (5 s is under the stopped-vehicle time, braking is under the sudden-drop rate). */
static void test_stop_and_go(void **state)
{
    (void)state;
    its_scene s;
    sim_scene(&s);
    sim_add_line(&s, "mid", 25);
    sim_add_lane(&s, "up", 0, 10, 0, 40, +1, -1);
    its_analytics_t *a = make(&s);
    double y = 1, v = 6;
    int events[ITS_EV_COUNT] = {0}, checked_stop = 0, checked_go = 0;
    for (int f = 0; y < 39; f++) {
        double t = f / SIM_FPS;
        /* 0-1 s at 6 m/s, brake at 2 m/s^2 (3 s), stand 5 s, accelerate 2 m/s^2 to 6 m/s. */
        if (t < 1)
            v = 6;
        else if (t < 4)
            v = 6 - 2 * (t - 1);
        else if (t < 9)
            v = 0;
        else
            v = fmin(6, 2 * (t - 9));
        y += v / SIM_FPS;
        its_track tr = sim_track(&s, 9, COCO_CAR, (its_pt){5, y});
        const its_analytics_frame *r = step(a, f, &tr, 1);
        for (int i = 0; i < r->n_events; i++)
            events[r->events[i].type]++;
        if (t > 5.1 && t < 9) {
            assert_true(r->speed_kmh[0] < 0.01);
            checked_stop++;
        }
        if (t > 13.1) {
            assert_speed(r->speed_kmh[0], 21.6);
            checked_go++;
        }
    }
    assert_int_equal(events[ITS_EV_LINE_CROSSING], 1);
    assert_int_equal(events[ITS_EV_STOPPED_VEHICLE], 0);
    assert_int_equal(events[ITS_EV_SPEED_DROP], 0);
    assert_int_equal(events[ITS_EV_WRONG_WAY], 0);
    assert_true(checked_stop > 50 && checked_go > 20);
    its_analytics_destroy(a);
}

/* The track is hidden while it crosses the line (and comes back with its id): one count. */
static void test_occlusion_gap(void **state)
{
    (void)state;
    its_scene s;
    sim_scene(&s);
    sim_add_line(&s, "mid", 20);
    its_analytics_t *a = make(&s);
    int crossings = 0;
    for (int f = 0; f < 30 * 4; f++) {
        double y = 2 + 10.0 * f / SIM_FPS;
        if (y > 39)
            break;
        its_track t = sim_track(&s, 5, COCO_TRUCK, (its_pt){5, y});
        const its_analytics_frame *r = step(a, f, &t, (y > 16 && y < 24) ? 0 : 1);
        crossings += count_events(r, ITS_EV_LINE_CROSSING);
    }
    its_analytics_report rep;
    its_analytics_get_report(a, &rep);
    assert_int_equal(crossings, 1);
    assert_int_equal(rep.lines[0].total[ITS_CLS_TRUCK][0], 1);
    its_analytics_destroy(a);
}

/* Full pipeline (detections -> ByteTrack -> analytics): two vehicles whose paths cross on
 * the line, one of them missing from the detector for 8 frames just before. */
static void test_crossing_paths_tracker(void **state)
{
    (void)state;
    its_scene s;
    sim_scene(&s);
    sim_add_line(&s, "mid", 20);
    its_analytics_t *a = make(&s);
    uint32_t first_id[2] = {0, 0}, last_id[2] = {0, 0};
    int crossings = 0;
    for (int f = 0; f < 90; f++) {
        double t = f / SIM_FPS;
        its_det d[2];
        int n = 0;
        for (int k = 0; k < 2; k++) {
            double x = k ? 9 - 2.6 * t : 1 + 2.6 * t, y = 5 + 10 * t;
            if (k == 1 && f >= 35 && f < 43)
                continue;
            its_pt p = sim_to_img(&s, (its_pt){x, y});
            double hw = k ? 45 : 25, h = k ? 60 : 30;
            d[n++] = (its_det){(float)(p.x - hw),
                               (float)(p.y - h),
                               (float)(p.x + hw),
                               (float)p.y,
                               0.9f,
                               k ? COCO_TRUCK : COCO_CAR,
                               0};
        }
        its_det_frame fr = {d, n, 1280, 720, sim_ts(f), (uint64_t)f};
        const its_analytics_frame *r = NULL;
        assert_int_equal(its_analytics_push(a, &fr, &r), 0);
        crossings += count_events(r, ITS_EV_LINE_CROSSING);
        for (int i = 0; i < r->n_tracks; i++) {
            int k = r->tracks[i].class_id == COCO_TRUCK;
            if (!first_id[k])
                first_id[k] = r->tracks[i].id;
            last_id[k] = r->tracks[i].id;
        }
    }
    assert_int_equal(crossings, 2);
    assert_int_equal(first_id[0], last_id[0]);
    assert_int_equal(first_id[1], last_id[1]);
    assert_int_not_equal(first_id[0], first_id[1]);
    its_analytics_report rep;
    its_analytics_get_report(a, &rep);
    assert_int_equal(rep.lines[0].total[ITS_CLS_CAR][0], 1);
    assert_int_equal(rep.lines[0].total[ITS_CLS_TRUCK][0], 1);
    its_analytics_destroy(a);
}

/* One vehicle reported twice (car 0.8 and truck 0.6, same box, as per-class NMS leaves it):
 * counted once; with duplicate removal off, twice. */
static int run_duplicate(double iou, uint64_t *dups)
{
    its_scene s;
    sim_scene(&s);
    sim_add_line(&s, "mid", 20);
    s.params.duplicate_iou = iou;
    its_analytics_t *a = make(&s);
    int crossings = 0;
    for (int f = 0; f < 90; f++) {
        its_pt p = sim_to_img(&s, (its_pt){5, 8 + 10 * f / SIM_FPS});
        its_det d[2] = {
            {(float)p.x - 30, (float)p.y - 40, (float)p.x + 30, (float)p.y, 0.8f, COCO_CAR, 0},
            {(float)p.x - 29, (float)p.y - 41, (float)p.x + 30, (float)p.y + 1, 0.6f, COCO_TRUCK,
             0}};
        its_det_frame fr = {d, 2, 1280, 720, sim_ts(f), (uint64_t)f};
        const its_analytics_frame *r;
        assert_int_equal(its_analytics_push(a, &fr, &r), 0);
        crossings += count_events(r, ITS_EV_LINE_CROSSING);
        for (int i = 0; i < r->n_tracks && iou > 0; i++)
            assert_int_equal(r->tracks[i].det_index, 0); /* index in the caller's frame */
    }
    its_analytics_report rep;
    its_analytics_get_report(a, &rep);
    *dups = rep.duplicates_dropped;
    its_analytics_destroy(a);
    return crossings;
}

static void test_duplicates(void **state)
{
    (void)state;
    uint64_t dups;
    assert_int_equal(run_duplicate(0.7, &dups), 1);
    assert_int_equal(dups, 90);
    assert_int_equal(run_duplicate(0, &dups), 2);
    assert_int_equal(dups, 0);
}

/* A detector hesitating between car and truck (truck around the crossing, car before and
 * after): the track counts as what it was seen as most. */
static void test_class_vote(void **state)
{
    (void)state;
    its_scene s;
    sim_scene(&s);
    sim_add_line(&s, "mid", 20);
    its_analytics_t *a = make(&s);
    for (int f = 0; f < 90; f++) {
        its_track t = sim_track(&s, 1, f >= 30 && f < 45 ? COCO_TRUCK : COCO_CAR,
                                (its_pt){5, 8 + 10 * f / SIM_FPS});
        step(a, f, &t, 1);
    }
    its_analytics_report rep;
    its_analytics_get_report(a, &rep);
    assert_int_equal(rep.lines[0].total[ITS_CLS_CAR][0], 1);
    assert_int_equal(rep.lines[0].total[ITS_CLS_TRUCK][0], 0);
    its_analytics_destroy(a);
}

/* A track of class_id standing on road point r with a box w x h metres (scaled at its bottom). */
static its_track sized_track(const its_scene *s, uint32_t id, int class_id, its_pt r, double w,
                             double h)
{
    its_track t = sim_track(s, id, class_id, r);
    its_pt a = sim_to_img(s, (its_pt){r.x - 0.5, r.y}), b = sim_to_img(s, (its_pt){r.x + 0.5, r.y});
    double ppm = hypot(b.x - a.x, b.y - a.y); /* pixels per metre across the road there */
    t.x1 = (float)((a.x + b.x) / 2 - w / 2 * ppm);
    t.x2 = (float)((a.x + b.x) / 2 + w / 2 * ppm);
    t.y1 = (float)(t.y2 - h * ppm);
    return t;
}

/* Traffic classes (truth by construction): a pedestrian walking on the pavement (a walking
 * zone), a person at walking pace on the carriageway (a rider: bicycle), a car, a 2.4 m van
 * (light goods), a 3.8 m lorry (heavy goods); and a car whose class the vote changes after
 * its crossing: its count moves, its crossing event comes again as an update. */
static void test_traffic_classes(void **state)
{
    (void)state;
    its_scene s;
    sim_scene(&s);
    sim_add_line(&s, "mid", 20);
    sim_add_zone(&s, "pavement", 8.5, 10, 0, 40);
    s.zones[0].walk = 1;
    its_analytics_t *a = make(&s);
    const int cls[5] = {COCO_PERSON, COCO_PERSON, COCO_CAR, COCO_TRUCK, COCO_TRUCK};
    const double x[5] = {9.2, 4, 2, 6, 7.5}, v[5] = {1.4, 1.4, 10, 10, 10};
    const double w[5] = {0.6, 0.6, 1.8, 2.0, 2.5}, h[5] = {1.7, 1.7, 1.5, 2.4, 3.8};
    int updates = 0;
    uint64_t seq = 0;
    for (int f = 0; f < 30 * 20; f++) {
        its_track t[6];
        int n = 0;
        for (int k = 0; k < 5; k++) {
            double y = 14 + v[k] * f / SIM_FPS;
            if (y < 30)
                t[n++] = sized_track(&s, (uint32_t)k + 1, cls[k], (its_pt){x[k], y}, w[k], h[k]);
        }
        /* the van: truck for 0.5 s, car after (whole life: car); it crosses after 1 s, while
         * the vote still says truck */
        double y = 10 + 10.0 * f / SIM_FPS;
        if (y < 39)
            t[n++] = sized_track(&s, 9, f < 15 ? COCO_TRUCK : COCO_CAR, (its_pt){3, y}, 2, 2);
        const its_analytics_frame *r = step(a, f, t, n);
        for (int i = 0; i < r->n_events; i++) {
            const its_event *e = &r->events[i];
            if (e->type != ITS_EV_LINE_CROSSING || e->track_id != 9)
                continue;
            if (e->phase == ITS_PHASE_NONE) {
                assert_int_equal(e->group, ITS_CLS_TRUCK);
                seq = e->seq;
            } else {
                assert_int_equal(e->phase, ITS_PHASE_UPDATE);
                assert_int_equal(e->seq, seq);
                assert_int_equal(e->group, ITS_CLS_CAR);
                assert_int_equal(e->tclass, ITS_TK_CAR);
                updates++;
            }
        }
    }
    assert_int_equal(updates, 1);
    its_analytics_report rep;
    its_analytics_get_report(a, &rep);
    const its_line_stats *l = &rep.lines[0];
    assert_int_equal(l->traffic_total[ITS_TK_PEDESTRIAN][0], 1);
    assert_int_equal(l->traffic_total[ITS_TK_BICYCLE][0], 1);
    assert_int_equal(l->traffic_total[ITS_TK_CAR][0], 2);
    assert_int_equal(l->traffic_total[ITS_TK_LIGHT_GOODS][0], 1);
    assert_int_equal(l->traffic_total[ITS_TK_HEAVY_GOODS][0], 1);
    assert_int_equal(l->traffic_total[ITS_TK_MOTORCYCLE][0], 0);
    assert_int_equal(l->win[0].traffic[ITS_TK_CAR][0], 2);
    assert_int_equal(l->total[ITS_CLS_PERSON][0], 1);
    assert_int_equal(l->total[ITS_CLS_BICYCLE][0], 1);
    assert_int_equal(l->total[ITS_CLS_CAR][0], 2);
    assert_int_equal(l->total[ITS_CLS_TRUCK][0], 2);
    assert_int_equal(rep.class_changes, 1);
    char buf[8192];
    its_json js;
    its_json_init(&js, buf, sizeof buf);
    its_analytics_report_write(a, &rep, &js);
    assert_true(its_json_finish(&js) > 0);
    assert_non_null(strstr(buf, "\"traffic_total\":{\"pedestrian\":[1,0],\"bicycle\":[1,0],"
                                "\"motorcycle\":[0,0],\"car\":[2,0],\"light_goods\":[1,0],"
                                "\"heavy_goods\":[1,0],\"bus\":[0,0]}"));
    its_analytics_destroy(a);
}

typedef struct queue_log {
    int starts, updates, ends, bad, lane, end_vehicles;
    uint64_t seq;
    double start_t, end_t;
} queue_log;

/* One queue event: a start takes a fresh seq, updates and the end keep it. */
static void queue_event(const its_event *e, double t, queue_log *q)
{
    if (e->phase == ITS_PHASE_START) {
        q->starts++;
        q->bad += q->seq != 0 && e->seq == q->seq;
        q->seq = e->seq;
        q->start_t = t;
        q->lane = e->index;
    } else {
        q->bad += e->seq != q->seq || e->index != q->lane || e->track_id != 0;
        if (e->phase == ITS_PHASE_UPDATE) {
            q->updates++;
            q->bad += !(e->queue_vehicles == 3 && fabs(e->value - 15) < 0.01);
        } else {
            q->ends++;
            q->end_t = t;
            q->end_vehicles = e->queue_vehicles;
        }
    }
}

/* Queue back from a stop line: stopped vehicles chained with gaps <= 10 m. */
static void test_queue(void **state)
{
    (void)state;
    its_scene s;
    sim_scene(&s);
    sim_add_line(&s, "stop", 30);
    sim_add_lane(&s, "left", 0, 5, 0, 40, +1, 0);
    sim_add_lane(&s, "right", 5, 10, 0, 40, +1, -1);
    s.params.queue_gap_m = 10;
    its_analytics_t *a = make(&s);
    int stopped_events = 0, queued_seen = 0;
    uint32_t stopped_id = 0;
    queue_log q = {0};
    for (int f = 0; f < 30 * 30; f++) {
        double t = f / SIM_FPS;
        its_track tr[6];
        int n = 0;
        /* 1, 8, 15 m back: queued; 27 m back (12 m gap): not queued */
        tr[n++] = sim_track(&s, 1, COCO_CAR, (its_pt){2.5, 29});
        tr[n++] = sim_track(&s, 2, COCO_CAR, (its_pt){2.5, 22});
        tr[n++] = sim_track(&s, 3, COCO_BUS, (its_pt){2.5, 15});
        tr[n++] = sim_track(&s, 4, COCO_CAR, (its_pt){2.5, 3});
        /* moving in the same lane, and stopped in the other lane */
        double y = fmod(10 * t, 20) + 5;
        tr[n++] = sim_track(&s, 100 + (uint32_t)(10 * t / 20), COCO_CAR, (its_pt){1.5, y});
        tr[n++] = sim_track(&s, 6, COCO_CAR, (its_pt){7.5, 25});
        const its_analytics_frame *r = step(a, f, tr, n);
        for (int i = 0; i < r->n_events; i++) {
            const its_event *e = &r->events[i];
            if (e->type == ITS_EV_STOPPED_VEHICLE && e->phase == ITS_PHASE_START) {
                stopped_events++;
                stopped_id = e->track_id;
            }
            if (e->type == ITS_EV_QUEUE)
                queue_event(e, t, &q);
        }
        if (t > 1.2) {
            assert_int_equal(r->queue_vehicles[0], 3);
            assert_true(fabs(r->queue_m[0] - 15) < 0.01);
            assert_true(isnan(r->queue_m[1]));
            queued_seen++;
        }
    }
    /* Only the car outside the queue, stopped 20 s, is a stopped-vehicle incident; the car
     * standing in the lane without a stop line is one too. */
    assert_int_equal(stopped_events, 2);
    (void)stopped_id;
    /* Everyone drives off: the queue empties. */
    for (int f = 30 * 30; f < 30 * 33; f++) {
        double t = (f - 30 * 30) / SIM_FPS;
        its_track tr[3];
        const double y0[3] = {29, 22, 15};
        for (int k = 0; k < 3; k++)
            tr[k] = sim_track(&s, (uint32_t)k + 1, COCO_CAR, (its_pt){2.5, y0[k] + 3 * t});
        const its_analytics_frame *r = step(a, f, tr, 3);
        for (int i = 0; i < r->n_events; i++)
            if (r->events[i].type == ITS_EV_QUEUE)
                queue_event(&r->events[i], 30 + t, &q);
        if (t > 1.2) {
            assert_int_equal(r->queue_vehicles[0], 0);
            assert_true(r->queue_m[0] == 0);
        }
    }
    its_analytics_report rep;
    its_analytics_get_report(a, &rep);
    assert_true(fabs(rep.lanes[0].queue_max_m - 15) < 0.01);
    assert_true(queued_seen > 700);
    /* the queue's lifecycle, lane "left" only (the other has no stop line): it starts as the
     * cars stop (within the first 1.2 s), an update every 10 s while it lasts (at about 10 and
     * 20 s after the start: the run is 30 s), and it ends once they drove off */
    assert_int_equal(q.starts, 1);
    assert_int_equal(q.ends, 1);
    assert_int_equal(q.updates, 2);
    assert_true(q.start_t < 1.3);
    assert_true(q.end_t > 30 && q.end_t < 33);
    assert_int_equal(q.lane, 0);
    assert_int_equal(q.end_vehicles, 0);
    assert_int_equal(q.bad, 0);
    its_analytics_destroy(a);
}

/* Runs one vehicle along y(t) in a lane going +y; returns events of `type` and the time of
 * the first one. present_s: how long it is seen. */
typedef double (*pos_fn)(double t);

static int run_incident(pos_fn fn, double present_s, its_event_type type, double *first_t,
                        int in_lane)
{
    its_scene s;
    sim_scene(&s);
    sim_add_lane(&s, "up", 0, 5, 0, 40, +1, -1);
    its_analytics_t *a = make(&s);
    int n = 0;
    *first_t = NAN;
    for (int f = 0; f < present_s * SIM_FPS; f++) {
        double t = f / SIM_FPS;
        its_track tr = sim_track(&s, 1, COCO_CAR, (its_pt){in_lane ? 2.5 : 7.5, fn(t)});
        const its_analytics_frame *r = step(a, f, &tr, 1);
        for (int i = 0; i < r->n_events; i++)
            if (r->events[i].type == type && r->events[i].phase <= ITS_PHASE_START) {
                if (!n)
                    *first_t = t;
                n++;
            }
    }
    its_analytics_destroy(a);
    return n;
}

static double stop_at_10(double t)
{
    return t < 1 ? 5 + 5 * t : 10; /* stands still from t = 1 s */
}

static double wrong_way(double t)
{
    return 35 - 10 * t;
}

static double hard_brake(double t)
{
    /* 15 m/s, then 12 m/s^2 from t = 1 s down to 1.5 m/s (54 -> 5.4 km/h in 1.1 s) */
    if (t < 1)
        return 1 + 15 * t;
    double tb = fmin(t - 1, 1.125);
    return 16 + 15 * tb - 6 * tb * tb + 1.5 * fmax(t - 2.125, 0);
}

static double gentle_brake(double t)
{
    /* 12 m/s, then 1 m/s^2 from t = 1 s for 10 s: 36 km/h lost, but only 7.2 in any 2 s */
    if (t < 1)
        return 1 + 12 * t;
    double tb = fmin(t - 1, 10);
    return 13 + 12 * tb - 0.5 * tb * tb + 2 * fmax(t - 11, 0);
}

static void test_incidents(void **state)
{
    (void)state;
    double t0;
    /* stopped 25 s in a lane: one incident, 20 s (+ the speed window) after stopping */
    assert_int_equal(run_incident(stop_at_10, 26, ITS_EV_STOPPED_VEHICLE, &t0, 1), 1);
    assert_true(t0 > 21.0 && t0 < 22.6);
    /* stopped 15 s: none; stopped outside every lane: none */
    assert_int_equal(run_incident(stop_at_10, 16, ITS_EV_STOPPED_VEHICLE, &t0, 1), 0);
    assert_int_equal(run_incident(stop_at_10, 26, ITS_EV_STOPPED_VEHICLE, &t0, 0), 0);
    /* against the lane for 3 s: one wrong-way incident after 2 s (+ the speed window) */
    assert_int_equal(run_incident(wrong_way, 3, ITS_EV_WRONG_WAY, &t0, 1), 1);
    assert_true(t0 > 2.4 && t0 < 3.1);
    /* against it for 2 s: too short; along it: none */
    assert_int_equal(run_incident(wrong_way, 2.3, ITS_EV_WRONG_WAY, &t0, 1), 0);
    assert_int_equal(run_incident(stop_at_10, 3, ITS_EV_WRONG_WAY, &t0, 1), 0);
    /* braking hard (54 km/h in 1.2 s) fires, braking gently does not */
    assert_int_equal(run_incident(hard_brake, 6, ITS_EV_SPEED_DROP, &t0, 1), 1);
    assert_true(t0 > 1.8 && t0 < 3.0);
    assert_int_equal(run_incident(gentle_brake, 14, ITS_EV_SPEED_DROP, &t0, 1), 0);
}

/* A vehicle driving out through the bottom of the frame: the detector clips its box at the
 * edge, so the anchor stops; no speed is given for clipped boxes and no false drop fires. */
static void test_edge_clipping(void **state)
{
    (void)state;
    its_scene s;
    sim_scene(&s);
    its_analytics_t *a = make(&s);
    int drops = 0, clipped_frames = 0;
    for (int f = 0; f < 90; f++) {
        double y = 25 - 12.0 * f / SIM_FPS; /* towards the camera, leaves the frame at y < 0 */
        its_track t = sim_track(&s, 1, COCO_CAR, (its_pt){5, y});
        if (t.y2 > 720) {
            t.y2 = 720;
            t.y1 = t.y1 > 719 ? 719 : t.y1;
        }
        const its_analytics_frame *r = step(a, f, &t, 1);
        drops += count_events(r, ITS_EV_SPEED_DROP);
        if (t.y2 >= 718) {
            assert_true(isnan(r->speed_kmh[0]));
            clipped_frames++;
        } else if (f > 33) {
            assert_speed(r->speed_kmh[0], 12 * 3.6);
        }
    }
    assert_int_equal(drops, 0);
    assert_true(clipped_frames > 5);
    its_analytics_destroy(a);
}

/* Speeds only inside the scene's speed zone (here: road y from 10 to 30 m). */
static void test_speed_zone(void **state)
{
    (void)state;
    its_scene s;
    sim_scene(&s);
    s.speed_zone_n = 4;
    s.speed_zone[0] = sim_to_img(&s, (its_pt){0, 10});
    s.speed_zone[1] = sim_to_img(&s, (its_pt){10, 10});
    s.speed_zone[2] = sim_to_img(&s, (its_pt){10, 30});
    s.speed_zone[3] = sim_to_img(&s, (its_pt){0, 30});
    its_analytics_t *a = make(&s);
    int inside = 0;
    for (int f = 0; f < 120; f++) {
        double y = 2 + 10.0 * f / SIM_FPS;
        its_track t = sim_track(&s, 1, COCO_CAR, (its_pt){5, y});
        const its_analytics_frame *r = step(a, f, &t, 1);
        if (y < 10 || y > 30) {
            assert_true(isnan(r->speed_kmh[0]));
        } else if (y > 15.1) { /* half a speed window after entering */
            assert_speed(r->speed_kmh[0], 36);
            inside++;
        }
    }
    assert_true(inside > 30);
    its_analytics_destroy(a);
}

/* Event messages, written out by hand: names by the scene's name (quotes and non-ASCII kept),
 * the id from the prefix and the event number, phase only on the kinds that last. */
static void test_event_messages(void **state)
{
    (void)state;
    its_scene s;
    sim_scene(&s);
    sim_add_line(&s, "x", 20);
    sim_add_lane(&s, "y", 0, 5, 0, 40, +1, 0);
    strcpy(s.lines[0].name, "Main \"St\" \xE2\x86\x92 S\xC3\xBC"
                            "d");
    strcpy(s.lanes[0].name, "l\\1");
    its_analytics_t *a = make(&s);
    char buf[1024];
    its_json w;
    its_event cross = {.type = ITS_EV_LINE_CROSSING,
                       .seq = 5,
                       .track_id = 3,
                       .group = ITS_CLS_TRUCK,
                       .tclass = ITS_TK_HEAVY_GOODS, /* the default classes: one per kind */
                       .index = 0,
                       .direction = -1,
                       .speed_kmh = 52.125,
                       .value = NAN};
    its_json_init(&w, buf, sizeof buf);
    its_analytics_event_message(a, &cross, "cam-7", "cam-7-1000", 123, 9, &w);
    assert_true(its_json_finish(&w) > 0);
    assert_string_equal(buf, "{\"v\":2,\"type\":\"event\",\"camera\":\"cam-7\",\"ts_us\":123,"
                             "\"frame\":9,\"id\":\"cam-7-1000-5\",\"kind\":\"line_crossing\","
                             "\"line\":\"Main \\\"St\\\" \xE2\x86\x92 S\xC3\xBC"
                             "d\",\"direction\":\"negative\",\"track_id\":3,\"class\":\"truck\","
                             "\"traffic_class\":\"heavy_goods\",\"speed_kmh\":52.13}");
    its_event queue = {.type = ITS_EV_QUEUE,
                       .phase = ITS_PHASE_END,
                       .seq = 9,
                       .index = 0,
                       .speed_kmh = NAN,
                       .value = 12.5,
                       .queue_vehicles = 0};
    its_json_init(&w, buf, sizeof buf);
    its_analytics_event_message(a, &queue, "cam-7", "cam-7-1000", 124, 10, &w);
    assert_string_equal(buf, "{\"v\":2,\"type\":\"event\",\"camera\":\"cam-7\",\"ts_us\":124,"
                             "\"frame\":10,\"id\":\"cam-7-1000-9\",\"kind\":\"queue\",\"phase\":"
                             "\"end\",\"lane\":\"l\\\\1\",\"track_id\":null,\"queue_m\":12.5,"
                             "\"queue_vehicles\":0}");
    its_analytics_destroy(a);
}

static double stop_45s(double t)
{
    return t < 1 ? 5 + 5 * t : t < 46 ? 10 : 10 + 5 * (t - 46); /* stands 45 s, drives off */
}

/* A stopped vehicle lasts: start after stopped_time_s (20 s + the speed window), an update
 * every ITS_EVENT_UPDATE_S, the end when it drives off, one seq throughout. */
static void test_stopped_lifecycle(void **state)
{
    (void)state;
    its_scene s;
    sim_scene(&s);
    sim_add_lane(&s, "up", 0, 5, 0, 40, +1, -1);
    its_analytics_t *a = make(&s);
    double ts[3][4];
    int n[3] = {0};
    uint64_t seq = 0;
    double end_value = NAN;
    for (int f = 0; f < 50 * SIM_FPS; f++) {
        double t = f / SIM_FPS;
        its_track tr = sim_track(&s, 1, COCO_CAR, (its_pt){2.5, stop_45s(t)});
        const its_analytics_frame *r = step(a, f, &tr, 1);
        for (int i = 0; i < r->n_events; i++) {
            const its_event *e = &r->events[i];
            if (e->type != ITS_EV_STOPPED_VEHICLE)
                continue;
            assert_true(e->phase >= ITS_PHASE_START && e->phase <= ITS_PHASE_END);
            int k = (int)e->phase - 1;
            assert_true(n[k] < 4);
            ts[k][n[k]++] = t;
            if (!seq)
                seq = e->seq;
            assert_true(e->seq == seq);
            assert_int_equal(e->track_id, 1);
            assert_int_equal(e->index, 0);
            if (e->phase == ITS_PHASE_END)
                end_value = e->value;
        }
    }
    assert_int_equal(n[0], 1);
    assert_int_equal(n[1], 2); /* 10 and 20 s after the start, before it drives off at 46 s */
    assert_int_equal(n[2], 1);
    assert_true(ts[0][0] > 21.0 && ts[0][0] < 22.6);
    assert_true(fabs(ts[1][0] - ts[0][0] - 10) < 0.05 && fabs(ts[1][1] - ts[0][0] - 20) < 0.05);
    assert_true(ts[2][0] > 46 && ts[2][0] < 48);
    assert_true(end_value > 44 && end_value < 47);
    its_analytics_report rep;
    its_analytics_get_report(a, &rep);
    assert_int_equal(rep.incidents[ITS_EV_STOPPED_VEHICLE], 1); /* one incident, not four */
    its_analytics_destroy(a);
}

static void test_zones(void **state)
{
    (void)state;
    its_scene s;
    sim_scene(&s);
    sim_add_zone(&s, "box", 0, 10, 10, 20);
    its_analytics_t *a = make(&s);
    int max_count = 0, enter = 0, exit_ = 0;
    uint64_t seq = 0;
    double dwell = NAN;
    int frames = 30 * 12;
    for (int f = 0; f < frames; f++) {
        double y = 5 + 2.0 * f / SIM_FPS; /* 2 m/s: 5 s in the 10 m zone */
        its_track t = sim_track(&s, 1, COCO_PERSON, (its_pt){5, y});
        const its_analytics_frame *r = step(a, f, &t, 1);
        if (r->zone_count[0] > max_count)
            max_count = r->zone_count[0];
        for (int i = 0; i < r->n_events; i++) {
            const its_event *e = &r->events[i];
            assert_int_equal(e->type, ITS_EV_ZONE_PRESENCE);
            if (e->phase == ITS_PHASE_START) {
                enter++;
                seq = e->seq;
            } else {
                /* 5 s inside: no update, the end carries the start's number and the dwell */
                assert_int_equal(e->phase, ITS_PHASE_END);
                assert_true(e->seq == seq && seq != 0);
                exit_++;
                dwell = e->value;
            }
        }
    }
    its_analytics_report rep;
    its_analytics_get_report(a, &rep);
    assert_int_equal(max_count, 1);
    assert_int_equal(enter, 1);
    assert_int_equal(exit_, 1);
    assert_true(fabs(dwell - 5.0) < 0.05);
    assert_true(fabs(rep.zones[0].dwell_mean_s - 5.0) < 0.05);
    assert_int_equal(rep.zones[0].entries, 1);
    double total = (frames - 1) / SIM_FPS;
    assert_true(fabs(rep.zones[0].occupied_pct - 100 * 5.0 / total) < 1.0);
    assert_int_equal(rep.zones[0].count_now, 0);
    its_analytics_destroy(a);
}

/* Ten cars 6 s apart at 10 m/s: flow, headway, space-mean speed, density; the 1-minute
 * window empties after a minute, the 15-minute one does not. */
static void test_windows(void **state)
{
    (void)state;
    its_scene s;
    sim_scene(&s);
    sim_add_line(&s, "mid", 20);
    its_analytics_t *a = make(&s);
    int f;
    for (f = 0; f < 30 * 58; f++) {
        double t = f / SIM_FPS;
        its_track tr[10];
        int n = 0;
        for (int k = 0; k < 10; k++) {
            double y = 1 + 10 * (t - 6 * k);
            if (y >= 1 && y < 39)
                tr[n++] = sim_track(&s, (uint32_t)k + 1, COCO_CAR, (its_pt){5, y});
        }
        step(a, f, tr, n);
    }
    its_analytics_report rep;
    its_analytics_get_report(a, &rep);
    const its_line_window *w = &rep.lines[0].win[0];
    assert_int_equal(w->vehicles, 10);
    double span = (30 * 58 - 1) / SIM_FPS;
    assert_true(fabs(w->span_s - span) < 1e-6);
    assert_true(fabs(w->flow_vph - 36000 / span) < 1e-6);
    assert_true(fabs(w->headway_mean_s - 6) < 0.05);
    assert_true(fabs(w->headway_min_s - 6) < 0.05);
    assert_speed(w->sms_kmh, 36);
    /* 621 veh/h / 36 km/h / 2 lanes = 8.6 veh/km/ln = 13.9 pc/mi/ln: LOS B */
    assert_true(fabs(w->density_vpkml - w->flow_vph / w->sms_kmh / 2) < 1e-9);
    assert_int_equal(w->los, 'B');
    for (; f < 30 * 130; f++)
        step(a, f, NULL, 0);
    its_analytics_get_report(a, &rep);
    assert_int_equal(rep.lines[0].win[0].vehicles, 0);
    assert_true(rep.lines[0].win[0].flow_vph == 0);
    assert_int_equal(rep.lines[0].win[0].los, 'A');
    assert_int_equal(rep.lines[0].win[1].vehicles, 10);
    assert_int_equal(rep.lines[0].forecast_minutes, 2);
    char buf[8192];
    its_json jw;
    its_json_init(&jw, buf, sizeof buf);
    its_analytics_report_write(a, &rep, &jw);
    assert_true(its_json_finish(&jw) > 0);
    assert_non_null(strstr(buf, "\"name\":\"mid\""));
    assert_non_null(strstr(buf, "\"car\":[10,0]"));
    its_json_init(&jw, buf, 64);
    its_analytics_report_write(a, &rep, &jw);
    assert_int_equal(its_json_finish(&jw), ITS_EOVERFLOW);
    assert_true(strlen(buf) < 64);
    its_analytics_destroy(a);
}

/* HCM 6th ed. Exhibit 12-15: A <= 11, B <= 18, C <= 26, D <= 35, E <= 45 pc/mi/ln. */
static void test_los(void **state)
{
    (void)state;
    const double lim[5] = {11, 18, 26, 35, 45};
    for (int i = 0; i < 5; i++) {
        double at = lim[i] / 1.609344;
        assert_int_equal(its_los_from_density(at * (1 - 1e-9)), 'A' + i);
        assert_int_equal(its_los_from_density(at * (1 + 1e-6)), 'A' + i + 1);
    }
    assert_int_equal(its_los_from_density(0), 'A');
    assert_int_equal(its_los_from_density(500), 'F');
    assert_int_equal(its_los_from_density(NAN), '?');
}

static void test_forecast(void **state)
{
    (void)state;
    its_forecast f;
    /* A linear series is followed exactly once the trend is learnt. */
    its_forecast_init(&f, 0.3, 0.1);
    assert_true(isnan(its_forecast_mean_ahead(&f, 15)));
    for (int t = 0; t < 100; t++)
        its_forecast_add(&f, 600 + 6 * t);
    /* next 15 minutes: 600 + 6 * (100..114), mean 600 + 6 * 107 */
    assert_true(fabs(its_forecast_mean_ahead(&f, 15) - (600 + 6 * 107)) < 1e-6);
    assert_true(fabs(its_forecast_mean_ahead(&f, 60) - (600 + 6 * 129.5)) < 1e-6);
    assert_true(its_forecast_mae(&f, 1) < 1e-6);
    assert_true(its_forecast_mae(&f, 15) < 1e-6);
    assert_true(its_forecast_mae(&f, 60) < 1e-6);
    assert_int_equal(f.n_err60, 100 - 61);
    /* A level shift: the error is seen, then the forecast adapts. */
    its_forecast_init(&f, 0.5, 0.1);
    for (int t = 0; t < 30; t++)
        its_forecast_add(&f, 1000);
    for (int t = 0; t < 60; t++)
        its_forecast_add(&f, 500);
    assert_true(its_forecast_mae(&f, 1) > 5);
    assert_true(fabs(its_forecast_mean_ahead(&f, 15) - 500) < 20);
    /* Alternating series: the 1-step error is about the swing. */
    its_forecast_init(&f, 0.3, 0.1);
    for (int t = 0; t < 200; t++)
        its_forecast_add(&f, t % 2 ? 700 : 500);
    assert_true(its_forecast_mae(&f, 1) > 50 && its_forecast_mae(&f, 1) < 200);
    assert_true(fabs(its_forecast_mean_ahead(&f, 15) - 600) < 150);
}

static void test_bad_input(void **state)
{
    (void)state;
    its_scene s;
    sim_scene(&s);
    sim_add_line(&s, "mid", 20);
    its_analytics_t *a = make(&s);
    const its_analytics_frame *r;
    its_track t = sim_track(&s, 1, COCO_CAR, (its_pt){5, 5});
    assert_int_equal(its_analytics_update(a, 100, 0, &t, 1, &r), 0);
    assert_int_equal(its_analytics_update(a, 99, 1, &t, 1, &r), ITS_EINVAL);
    assert_int_equal(its_analytics_update(a, 101, 1, NULL, 1, &r), ITS_EINVAL);
    assert_int_equal(its_analytics_update(a, 101, 1, &t, -1, &r), ITS_EINVAL);
    assert_int_equal(its_analytics_update(NULL, 101, 1, &t, 1, &r), ITS_EINVAL);
    /* classes outside the map are ignored, not crashed on */
    its_track odd[3] = {t, t, t};
    odd[0].class_id = -5;
    odd[1].class_id = 100000;
    odd[2].class_id = 56; /* chair */
    odd[0].id = 50;
    odd[1].id = 51;
    odd[2].id = 52;
    assert_int_equal(its_analytics_update(a, 102, 2, odd, 3, &r), 0);
    assert_true(isnan(r->speed_kmh[0]));
    its_analytics_report rep;
    its_analytics_get_report(a, &rep);
    assert_int_equal(rep.frames_refused, 1);
    its_analytics_destroy(a);
    its_analytics_destroy(NULL);
    /* an invalid scene is refused */
    s.fps = -1;
    assert_int_equal(its_analytics_create(&s, NULL, &a), ITS_EINVAL);
    /* allocation failures are reported, never crash */
    sim_scene(&s);
    for (int k = 0; k < 40; k++) {
        its_alloc_fail_after(ITS_MOD_COUNT, k, 1);
        int rc = its_analytics_create(&s, NULL, &a);
        its_alloc_fail_reset();
        if (rc == 0) {
            its_analytics_destroy(a);
            break;
        }
        assert_int_equal(rc, ITS_ENOMEM);
    }
}

/* After warm-up a frame allocates nothing. */
/* A scene replaced while two cars drive up the road (its_analytics_set_scene): line "a" is
 * unchanged and keeps its count (car 1 crossed it before the change and is not counted again),
 * "b" moved by a metre and counts from zero, "d" is new behind car 1 (counted for car 2 only),
 * zone "z" is unchanged and keeps its entries. Truth from the trajectories: both cars cross
 * a, b, c; only car 2 crosses d after it exists. */
static void test_scene_live(void **state)
{
    (void)state;
    its_scene s, s2, bad;
    sim_scene(&s);
    sim_add_line(&s, "a", 10);
    sim_add_line(&s, "b", 20);
    sim_add_line(&s, "c", 30);
    sim_add_zone(&s, "z", 0, 10, 12, 18);
    sim_scene(&s2);
    sim_add_line(&s2, "a", 10);
    sim_add_line(&s2, "b", 21);
    sim_add_line(&s2, "c", 30);
    sim_add_line(&s2, "d", 5);
    sim_add_zone(&s2, "z", 0, 10, 12, 18);
    its_analytics_t *a = make(&s);
    int changed = 0, crossings = 0;
    for (int f = 0; f < 30 * 7; f++) {
        its_track t[2];
        int n = 0;
        for (int k = 0; k < 2; k++) {
            double y = 0.5 + 10 * (f / SIM_FPS - 2.0 * k); /* car 2 two seconds behind */
            if (y >= 0.5 && y <= 39.5)
                t[n++] = sim_track(&s, (uint32_t)k + 1, COCO_CAR, (its_pt){3 + 4 * k, y});
        }
        if (f == 45) { /* car 1 at 15.5 m (past a, inside z), car 2 not yet on the road */
            its_analytics_report rep;
            assert_int_equal(its_analytics_get_report(a, &rep), 0);
            assert_int_equal(rep.lines[0].total[ITS_CLS_CAR][0], 1);
            assert_int_equal(rep.zones[0].entries, 1);
            bad = s2;
            bad.lines[3].b = bad.lines[3].a; /* a line of no length */
            assert_int_equal(its_analytics_set_scene(a, &bad, NULL), ITS_EINVAL);
            int map[ITS_SCENE_MAX_LINES];
            assert_int_equal(its_analytics_set_scene(a, &s2, map), 0);
            assert_int_equal(map[0], 0);
            assert_int_equal(map[1], -1);
            assert_int_equal(map[2], 2);
            assert_int_equal(map[3], -1);
            changed = 1;
        }
        crossings += count_events(step(a, f, t, n), ITS_EV_LINE_CROSSING);
    }
    assert_true(changed);
    its_analytics_report rep;
    assert_int_equal(its_analytics_get_report(a, &rep), 0);
    assert_int_equal(rep.lines[0].total[ITS_CLS_CAR][0], 2); /* a: 1 before, 1 after */
    assert_int_equal(rep.lines[1].total[ITS_CLS_CAR][0], 2); /* b moved: both cars after */
    assert_int_equal(rep.lines[2].total[ITS_CLS_CAR][0], 2);
    assert_int_equal(rep.lines[3].total[ITS_CLS_CAR][0], 1); /* d: car 2 only */
    assert_int_equal(rep.zones[0].entries, 2);
    assert_int_equal(crossings, 7); /* a 2, b 2, c 2, d 1: one event each */
    its_analytics_destroy(a);
}

static void test_no_alloc(void **state)
{
    (void)state;
    its_scene s;
    sim_scene(&s);
    sim_add_line(&s, "mid", 20);
    sim_add_zone(&s, "box", 0, 10, 10, 20);
    sim_add_lane(&s, "up", 0, 10, 0, 40, +1, 0);
    its_analytics_t *a = make(&s);
    uint64_t before = 0;
    for (int f = 0; f < 600; f++) {
        if (f == 100)
            before = its_alloc_count();
        its_det d[20];
        for (int k = 0; k < 20; k++) {
            double y = fmod(1 + 10 * (f / SIM_FPS) + 2 * k, 38) + 1;
            its_pt p = sim_to_img(&s, (its_pt){(k % 5) * 2 + 1, y});
            d[k] = (its_det){
                (float)p.x - 15, (float)p.y - 20, (float)p.x + 15, (float)p.y, 0.8f, COCO_CAR, 0};
        }
        its_det_frame fr = {d, 20, 1280, 720, sim_ts(f), (uint64_t)f};
        const its_analytics_frame *r;
        assert_int_equal(its_analytics_push(a, &fr, &r), 0);
        char buf[16384];
        its_json w;
        its_json_init(&w, buf, sizeof buf);
        its_analytics_frame_write(a, r, &w);
        assert_true(its_json_finish(&w) > 0);
    }
    assert_true(its_alloc_count() == before);
    its_analytics_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_straight),          cmocka_unit_test(test_turning),
        cmocka_unit_test(test_back_and_forth),    cmocka_unit_test(test_stop_and_go),
        cmocka_unit_test(test_occlusion_gap),     cmocka_unit_test(test_crossing_paths_tracker),
        cmocka_unit_test(test_duplicates),        cmocka_unit_test(test_class_vote),
        cmocka_unit_test(test_traffic_classes),   cmocka_unit_test(test_queue),
        cmocka_unit_test(test_incidents),         cmocka_unit_test(test_edge_clipping),
        cmocka_unit_test(test_speed_zone),        cmocka_unit_test(test_zones),
        cmocka_unit_test(test_stopped_lifecycle), cmocka_unit_test(test_event_messages),
        cmocka_unit_test(test_windows),           cmocka_unit_test(test_los),
        cmocka_unit_test(test_forecast),          cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_no_alloc),          cmocka_unit_test(test_scene_live),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

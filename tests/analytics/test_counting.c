/* Counting what a traffic engineer counts, on synthetic scenes with exact ground truth: a
 * rider and a two-wheeler are one vehicle, a track's class is its whole life's, a vehicle
 * whose track is confirmed after it crossed is still counted, and jitter on the line is not
 * a crossing. Every case states the truth it is checked against: how many vehicles crossed,
 * which way, of which class. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "its/analytics.h"
#include "its/error.h"
#include "sim.h"

#define COCO_PERSON 0
#define COCO_CAR    2
#define COCO_MOTO   3
#define COCO_TRUCK  7

static its_analytics_t *make(const its_scene *s)
{
    its_analytics_t *a = NULL;
    assert_int_equal(its_analytics_create(s, NULL, &a), 0);
    return a;
}

/* A box w x h pixels standing on road point r, its bottom moved by dy pixels. */
static its_det box_at(const its_scene *s, its_pt r, double w, double h, double dy, float score,
                      int class_id)
{
    its_pt p = sim_to_img(s, r);
    its_det d = {(float)(p.x - w / 2),
                 (float)(p.y + dy - h),
                 (float)(p.x + w / 2),
                 (float)(p.y + dy),
                 score,
                 class_id,
                 0};
    return d;
}

static its_track track_of(const its_det *d, uint32_t id)
{
    its_track t;
    memset(&t, 0, sizeof t);
    t.id = id;
    t.class_id = d->class_id;
    t.score = d->score;
    t.x1 = d->x1;
    t.y1 = d->y1;
    t.x2 = d->x2;
    t.y2 = d->y2;
    t.state = ITS_TRACK_CONFIRMED;
    return t;
}

static int push(its_analytics_t *a, const its_det *d, int n, int f)
{
    its_det_frame fr = {d, n, 1280, 720, sim_ts(f), (uint64_t)f};
    const its_analytics_frame *r = NULL;
    assert_int_equal(its_analytics_push(a, &fr, &r), 0);
    int c = 0;
    for (int i = 0; i < r->n_events; i++)
        c += r->events[i].type == ITS_EV_LINE_CROSSING && r->events[i].phase == ITS_PHASE_NONE;
    return c;
}

static int update(its_analytics_t *a, const its_track *t, int n, int f)
{
    const its_analytics_frame *r = NULL;
    assert_int_equal(its_analytics_update(a, sim_ts(f), (uint64_t)f, t, n, &r), 0);
    int c = 0;
    for (int i = 0; i < r->n_events; i++)
        c += r->events[i].type == ITS_EV_LINE_CROSSING && r->events[i].phase == ITS_PHASE_NONE;
    return c;
}

static void totals(its_analytics_t *a, uint32_t out[ITS_CLS_COUNT][2])
{
    its_analytics_report rep;
    assert_int_equal(its_analytics_get_report(a, &rep), 0);
    memcpy(out, rep.lines[0].total, sizeof rep.lines[0].total);
}

/* Truth: one motorcyclist rides up the road at 40 km/h over the line, seen by the detector
 * as a motorcycle box and a person box sitting on it (every frame): one motorcycle, no
 * person. */
static void test_rider_on_machine(void **state)
{
    (void)state;
    its_scene s;
    sim_scene(&s);
    sim_add_line(&s, "mid", 20);
    its_analytics_t *a = make(&s);
    int crossings = 0;
    for (int f = 0; f < 90; f++) {
        double y = 4 + 11.1 * f / SIM_FPS;
        its_det d[2] = {box_at(&s, (its_pt){5, y}, 24, 40, 0, 0.7f, COCO_MOTO),
                        box_at(&s, (its_pt){5, y}, 22, 60, -12, 0.85f, COCO_PERSON)};
        crossings += push(a, d, 2, f);
    }
    uint32_t t[ITS_CLS_COUNT][2];
    totals(a, t);
    assert_int_equal(crossings, 1);
    assert_int_equal(t[ITS_CLS_MOTORCYCLE][0], 1);
    assert_int_equal(t[ITS_CLS_PERSON][0], 0);
    its_analytics_destroy(a);
}

/* Truth: a motorcyclist at 40 km/h whom the detector sees only as a person (no machine box),
 * and a pedestrian walking at 5 km/h beside the road: one motorcycle, one person. */
static void test_rider_alone(void **state)
{
    (void)state;
    its_scene s;
    sim_scene(&s);
    sim_add_line(&s, "mid", 20);
    its_analytics_t *a = make(&s);
    int crossings = 0;
    for (int f = 0; f < 30 * 12; f++) {
        its_track t[2];
        int n = 0;
        double yr = 2 + 11.1 * f / SIM_FPS, yp = 15 + 1.4 * f / SIM_FPS;
        its_det d;
        if (yr < 39) {
            d = box_at(&s, (its_pt){3, yr}, 22, 60, 0, 0.4f, COCO_PERSON);
            t[n++] = track_of(&d, 1);
        }
        if (yp < 39) {
            d = box_at(&s, (its_pt){9.5, yp}, 16, 50, 0, 0.8f, COCO_PERSON);
            t[n++] = track_of(&d, 2);
        }
        crossings += update(a, t, n, f);
    }
    uint32_t t[ITS_CLS_COUNT][2];
    totals(a, t);
    assert_int_equal(crossings, 2);
    assert_int_equal(t[ITS_CLS_MOTORCYCLE][0], 1);
    assert_int_equal(t[ITS_CLS_BICYCLE][0], 0);
    assert_int_equal(t[ITS_CLS_PERSON][0], 1);
    its_analytics_destroy(a);
}

/* Truth: one van, crossing the line after 1.2 s in view. The detector calls it a truck for
 * its first second and a car for the three seconds after (equal scores): over its life it is
 * a car, and it counts once, as a car, in the totals and in the minute window. */
static void test_vote_whole_life(void **state)
{
    (void)state;
    its_scene s;
    sim_scene(&s);
    sim_add_line(&s, "mid", 20);
    its_analytics_t *a = make(&s);
    int crossings = 0;
    for (int f = 0; f < 120; f++) {
        its_det d = box_at(&s, (its_pt){5, 8 + 10.0 * f / SIM_FPS}, 60, 50, 0, 0.8f,
                           f < 30 ? COCO_TRUCK : COCO_CAR);
        its_track t = track_of(&d, 1);
        crossings += update(a, &t, 1, f);
    }
    its_analytics_report rep;
    assert_int_equal(its_analytics_get_report(a, &rep), 0);
    assert_int_equal(crossings, 1);
    assert_int_equal(rep.lines[0].total[ITS_CLS_CAR][0], 1);
    assert_int_equal(rep.lines[0].total[ITS_CLS_TRUCK][0], 0);
    assert_int_equal(rep.lines[0].win[0].count[ITS_CLS_CAR][0], 1);
    assert_int_equal(rep.lines[0].win[0].count[ITS_CLS_TRUCK][0], 0);
    assert_int_equal(rep.lines[0].win[1].count[ITS_CLS_TRUCK][0], 0);
    its_analytics_destroy(a);
}

/* Truth: one pickup. Every third frame the detector says truck at 0.9, the two frames between
 * car at 0.3 (more car frames, but weakly): the score-weighted vote says truck. */
static void test_vote_by_score(void **state)
{
    (void)state;
    its_scene s;
    sim_scene(&s);
    sim_add_line(&s, "mid", 20);
    its_analytics_t *a = make(&s);
    for (int f = 0; f < 90; f++) {
        int truck = f % 3 == 0;
        its_det d = box_at(&s, (its_pt){5, 8 + 10.0 * f / SIM_FPS}, 60, 50, 0, truck ? 0.9f : 0.3f,
                           truck ? COCO_TRUCK : COCO_CAR);
        its_track t = track_of(&d, 1);
        update(a, &t, 1, f);
    }
    uint32_t t[ITS_CLS_COUNT][2];
    totals(a, t);
    assert_int_equal(t[ITS_CLS_TRUCK][0], 1);
    assert_int_equal(t[ITS_CLS_CAR][0], 0);
    its_analytics_destroy(a);
}

/* Full pipeline. Truth: one car crossing the line, whose detector scores stay weak (0.15,
 * under the tracker's 0.25 that starts and confirms tracks) after one 0.3 detection, until
 * it has crossed; then 0.8. The track is confirmed only past the line, yet counts once. */
static void test_late_confirmed(void **state)
{
    (void)state;
    its_scene s;
    sim_scene(&s);
    sim_add_line(&s, "mid", 20);
    its_analytics_t *a = make(&s);
    int crossings = 0;
    for (int f = 0; f < 5; f++) /* an empty scene first: frame 1 confirms whatever it holds */
        crossings += push(a, NULL, 0, f);
    for (int f = 5; f < 60; f++) {
        double y = 17 + (f - 5) * (10.0 / SIM_FPS);
        float score = f == 5 ? 0.3f : f < 17 ? 0.15f : 0.8f;
        its_det d = box_at(&s, (its_pt){5, y}, 60, 50, 0, score, COCO_CAR);
        crossings += push(a, &d, 1, f);
    }
    uint32_t t[ITS_CLS_COUNT][2];
    totals(a, t);
    assert_int_equal(crossings, 1);
    assert_int_equal(t[ITS_CLS_CAR][0], 1);
    assert_int_equal(t[ITS_CLS_CAR][1], 0);
    its_analytics_destroy(a);
}

/* Full pipeline. Truth: one fast car (analysed at a low frame rate) that the detector first
 * sees 0.7 m before the line and next 1.8 m after it: the tracker confirms it on the second
 * detection, beyond the line; it counts once, positive. */
static void test_confirmed_after_line(void **state)
{
    (void)state;
    its_scene s;
    sim_scene(&s);
    sim_add_line(&s, "mid", 20);
    its_analytics_t *a = make(&s);
    int crossings = 0;
    for (int f = 0; f < 5; f++)
        crossings += push(a, NULL, 0, f);
    for (int f = 5; f < 30; f++) {
        its_det d = box_at(&s, (its_pt){5, 19.3 + (f - 5) * 2.5}, 90, 80, 0, 0.8f, COCO_CAR);
        if (19.3 + (f - 5) * 2.5 > 39)
            break;
        crossings += push(a, &d, 1, f);
    }
    uint32_t t[ITS_CLS_COUNT][2];
    totals(a, t);
    assert_int_equal(crossings, 1);
    assert_int_equal(t[ITS_CLS_CAR][0], 1);
    its_analytics_destroy(a);
}

/* Truth: a car drives up to the line and stops with its box bottom on it; the detector's box
 * jitters +-4 px (box 50 px high) for 3 s; then it backs away the way it came. It never
 * crossed: no count. A second car crosses with the same jitter: one count, positive. */
static void test_jitter_on_line(void **state)
{
    (void)state;
    its_scene s;
    sim_scene(&s);
    sim_add_line(&s, "mid", 20);
    its_analytics_t *a = make(&s);
    int f = 0, crossings = 0;
    double y = 12;
    for (; y < 20; y += 5.0 / SIM_FPS) {
        its_det d = box_at(&s, (its_pt){3, y}, 60, 50, 0, 0.8f, COCO_CAR);
        its_track t = track_of(&d, 1);
        crossings += update(a, &t, 1, f++);
    }
    for (int k = 0; k < 90; k++) {
        its_det d = box_at(&s, (its_pt){3, 20}, 60, 50, k % 2 ? 4 : -4, 0.8f, COCO_CAR);
        its_track t = track_of(&d, 1);
        crossings += update(a, &t, 1, f++);
    }
    for (y = 20; y > 12; y -= 3.0 / SIM_FPS) {
        its_det d = box_at(&s, (its_pt){3, y}, 60, 50, 0, 0.8f, COCO_CAR);
        its_track t = track_of(&d, 1);
        crossings += update(a, &t, 1, f++);
    }
    assert_int_equal(crossings, 0);
    for (y = 14; y < 26; y += 3.0 / SIM_FPS) {
        its_det d = box_at(&s, (its_pt){7, y}, 60, 50, f % 2 ? 4 : -4, 0.8f, COCO_CAR);
        its_track t = track_of(&d, 2);
        crossings += update(a, &t, 1, f++);
    }
    uint32_t t[ITS_CLS_COUNT][2];
    totals(a, t);
    assert_int_equal(crossings, 1);
    assert_int_equal(t[ITS_CLS_CAR][0], 1);
    assert_int_equal(t[ITS_CLS_CAR][1], 0);
    its_analytics_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rider_on_machine), cmocka_unit_test(test_rider_alone),
        cmocka_unit_test(test_vote_whole_life),  cmocka_unit_test(test_vote_by_score),
        cmocka_unit_test(test_late_confirmed),   cmocka_unit_test(test_confirmed_after_line),
        cmocka_unit_test(test_jitter_on_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Checkpoints of the analytics (its_analytics_checkpoint_write/_restore): what one context has
 * counted continues in another, as when a camera moves to another replica. The truth is the
 * traffic driven through the scene by hand: vehicles that go straight down the picture at a
 * known pace, so which lines each one crosses, in which direction, and which zone it enters
 * is known without the code under test. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "its/analytics.h"
#include "its/error.h"
#include "its/json.h"

#define COCO_CAR   2
#define COCO_TRUCK 7
#define FRAME_NS   100000000LL /* 10 frames a second */

/* 1280x720; line "low" across y = 400, line "high" across y = 200 (positive: down the
 * picture); zone "box" x 500..800, y 420..520; no calibration. */
static void scene(its_scene *s, double high_y)
{
    its_scene_default(s);
    snprintf(s->camera, sizeof s->camera, "cam-ck");
    s->width_px = 1280;
    s->height_px = 720;
    s->fps = 10;
    s->n_lines = 2;
    its_scene_line *l = &s->lines[0];
    snprintf(l->name, sizeof l->name, "low");
    l->a = (its_pt){0, 400};
    l->b = (its_pt){1280, 400};
    l->positive = (its_pt){0, 1};
    l->lanes = 2;
    l = &s->lines[1];
    snprintf(l->name, sizeof l->name, "high");
    l->a = (its_pt){0, high_y};
    l->b = (its_pt){1280, high_y};
    l->positive = (its_pt){0, 1};
    l->lanes = 1;
    s->n_zones = 1;
    its_scene_zone *z = &s->zones[0];
    snprintf(z->name, sizeof z->name, "box");
    z->n = 4;
    z->poly[0] = (its_pt){500, 420};
    z->poly[1] = (its_pt){800, 420};
    z->poly[2] = (its_pt){800, 520};
    z->poly[3] = (its_pt){500, 520};
}

static its_analytics_t *make(const its_scene *s)
{
    its_analytics_t *a = NULL;
    assert_int_equal(its_analytics_create(s, NULL, &a), 0);
    return a;
}

/* One vehicle (track id) from y = 120 to y = 600 (down: +1) or back (up: -1) in 25 frames,
 * its box 60 x 40 centred on x = 650, from frame *f on; then 30 frames without it (its track
 * is forgotten). Down, it crosses both lines positive and enters the zone once. */
static void drive(its_analytics_t *a, int64_t t0, int *f, uint32_t id, int class_id, int dir)
{
    const its_analytics_frame *r;
    for (int k = 0; k <= 24; k++, (*f)++) {
        double y = dir > 0 ? 120 + 20 * k : 600 - 20 * k;
        its_track t;
        memset(&t, 0, sizeof t);
        t.id = id;
        t.class_id = class_id;
        t.score = 0.9f;
        t.x1 = 620;
        t.x2 = 680;
        t.y1 = (float)(y - 40);
        t.y2 = (float)y;
        t.state = ITS_TRACK_CONFIRMED;
        assert_int_equal(its_analytics_update(a, t0 + *f * FRAME_NS, (uint64_t)*f, &t, 1, &r), 0);
    }
    for (int k = 0; k < 30; k++, (*f)++)
        assert_int_equal(its_analytics_update(a, t0 + *f * FRAME_NS, (uint64_t)*f, NULL, 0, &r), 0);
}

static void report(its_analytics_t *a, its_analytics_report *r)
{
    assert_int_equal(its_analytics_get_report(a, r), 0);
}

static char buf[512 * 1024];

static size_t write_ck(its_analytics_t *a, int64_t wall_us)
{
    its_json w;
    its_json_init(&w, buf, sizeof buf);
    its_analytics_checkpoint_write(a, "cam-ck", wall_us, &w);
    int n = its_json_finish(&w);
    assert_true(n > 0 && (size_t)n < sizeof buf);
    buf[n] = 0;
    return (size_t)n;
}

/* The first context: three cars down, one truck up; 220 frames (22 s of stream). */
static its_analytics_t *first(const its_scene *s)
{
    its_analytics_t *a = make(s);
    int f = 0;
    drive(a, 5000000000LL, &f, 1, COCO_CAR, +1);
    drive(a, 5000000000LL, &f, 2, COCO_CAR, +1);
    drive(a, 5000000000LL, &f, 3, COCO_TRUCK, -1);
    drive(a, 5000000000LL, &f, 4, COCO_CAR, +1);
    return a;
}

/* Truth: 3 cars positive and 1 truck negative at each line; the zone entered 4 times. In the
 * new context, before a frame: the same; after one more car down (its stream time starting at
 * an unrelated origin): 4 cars at each line, 5 zone entries, frames added up, and the car
 * inside the 1-minute window together with the first context's crossings. */
static void test_roundtrip(void **state)
{
    (void)state;
    its_scene s;
    scene(&s, 200);
    its_analytics_t *a = first(&s);
    its_analytics_report ra, rb;
    report(a, &ra);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(ra.lines[i].total[ITS_CLS_CAR][0], 3);
        assert_int_equal(ra.lines[i].total[ITS_CLS_TRUCK][1], 1);
    }
    assert_int_equal(ra.zones[0].entries, 4);
    size_t n = write_ck(a, 1000000);

    its_analytics_t *b = make(&s);
    its_analytics_resumed info;
    char err[256] = "";
    assert_int_equal(
        its_analytics_checkpoint_restore(b, buf, n, 1000000 + 2000000, &info, err, sizeof err), 0);
    assert_int_equal(info.lines, 2);
    assert_int_equal(info.lines_kept, 2);
    assert_int_equal(info.zones_kept, 1);
    assert_true(info.traffic_kept);
    assert_true(fabs(info.age_s - 2.0) < 1e-9);
    assert_true(fabs(info.elapsed_s - 21.9) < 1e-9); /* frames 0..219 at 10 a second */
    report(b, &rb);
    for (int i = 0; i < 2; i++) {
        assert_memory_equal(rb.lines[i].total, ra.lines[i].total, sizeof ra.lines[i].total);
        assert_memory_equal(rb.lines[i].traffic_total, ra.lines[i].traffic_total,
                            sizeof ra.lines[i].traffic_total);
    }
    assert_int_equal(rb.zones[0].entries, 4);
    assert_int_equal(rb.frames, 220);
    /* one more car, the stream's clock starting elsewhere (a new process, a new source) */
    int f = 0;
    drive(b, 777000000000LL, &f, 1, COCO_CAR, +1);
    report(b, &rb);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(rb.lines[i].total[ITS_CLS_CAR][0], 4);
        assert_int_equal(rb.lines[i].total[ITS_CLS_TRUCK][1], 1);
        /* the 1-minute window: 22 s + 2 s + 5.4 s of stream, every crossing in it */
        assert_int_equal(rb.lines[i].win[0].count[ITS_CLS_CAR][0], 4);
        assert_int_equal(rb.lines[i].win[0].count[ITS_CLS_TRUCK][1], 1);
        assert_int_equal(rb.lines[i].win[1].count[ITS_CLS_CAR][0], 4);
    }
    assert_int_equal(rb.zones[0].entries, 5);
    assert_int_equal(rb.frames, 220 + 55);
    assert_true(fabs(rb.elapsed_s - (21.9 + 2.0 + 5.4)) < 1e-6);
    /* and the same again through a second move: a checkpoint of a checkpoint */
    n = write_ck(b, 9000000);
    its_analytics_t *c = make(&s);
    assert_int_equal(its_analytics_checkpoint_restore(c, buf, n, 9000000, NULL, err, sizeof err),
                     0);
    its_analytics_report rc;
    report(c, &rc);
    for (int i = 0; i < 2; i++)
        assert_memory_equal(rc.lines[i].total, rb.lines[i].total, sizeof rb.lines[i].total);
    assert_int_equal(rc.zones[0].entries, 5);
    /* restored once, before the first frame only */
    assert_int_equal(its_analytics_checkpoint_restore(c, buf, n, 9000000, NULL, err, sizeof err),
                     ITS_EINVAL);
    assert_int_equal(its_analytics_checkpoint_restore(b, buf, n, 9000000, NULL, err, sizeof err),
                     ITS_EINVAL);
    its_analytics_destroy(a);
    its_analytics_destroy(b);
    its_analytics_destroy(c);
}

/* Truth: the new scene keeps "low" as it was, moves "high" to y = 250 and adds "new" (first in
 * its list); so "low" continues (3 cars, 1 truck), "high" and "new" start at zero, the zone
 * continues (4 entries). */
static void test_changed_scene(void **state)
{
    (void)state;
    its_scene s, s2;
    scene(&s, 200);
    its_analytics_t *a = first(&s);
    size_t n = write_ck(a, 1000000);
    scene(&s2, 250);
    s2.n_lines = 3;
    s2.lines[2] = s2.lines[0];
    s2.lines[0] = s2.lines[1]; /* "high", moved */
    snprintf(s2.lines[1].name, sizeof s2.lines[1].name, "new");
    s2.lines[1].a = (its_pt){0, 300};
    s2.lines[1].b = (its_pt){1280, 300};
    its_analytics_t *b = make(&s2);
    its_analytics_resumed info;
    char err[256] = "";
    assert_int_equal(its_analytics_checkpoint_restore(b, buf, n, 1000000, &info, err, sizeof err),
                     0);
    assert_int_equal(info.lines, 3);
    assert_int_equal(info.lines_kept, 1);
    assert_int_equal(info.zones_kept, 1);
    its_analytics_report r;
    report(b, &r);
    assert_int_equal(r.lines[2].total[ITS_CLS_CAR][0], 3);
    assert_int_equal(r.lines[2].total[ITS_CLS_TRUCK][1], 1);
    uint32_t zero[ITS_CLS_COUNT][2] = {{0}};
    assert_memory_equal(r.lines[0].total, zero, sizeof zero);
    assert_memory_equal(r.lines[1].total, zero, sizeof zero);
    assert_int_equal(r.zones[0].entries, 4);
    /* a zone of another shape under the same name starts at zero */
    its_scene s3;
    scene(&s3, 200);
    s3.zones[0].poly[2].y = 530;
    its_analytics_t *c = make(&s3);
    assert_int_equal(its_analytics_checkpoint_restore(c, buf, n, 1000000, &info, err, sizeof err),
                     0);
    assert_int_equal(info.zones_kept, 0);
    assert_int_equal(info.lines_kept, 2);
    report(c, &r);
    assert_int_equal(r.zones[0].entries, 0);
    assert_int_equal(r.lines[0].total[ITS_CLS_CAR][0], 3);
    its_analytics_destroy(a);
    its_analytics_destroy(b);
    its_analytics_destroy(c);
}

/* Checkpoints that are not: each refused with ITS_EPROTO and a reason, the context left as it
 * was created (nothing counted, zero frames), and a good checkpoint still taken after them. */
static void test_corrupt(void **state)
{
    (void)state;
    its_scene s;
    scene(&s, 200);
    its_analytics_t *a = first(&s);
    size_t n = write_ck(a, 1000000);
    static char bad[512 * 1024];
    its_analytics_t *b = make(&s);
    char err[256];
    its_analytics_report r;
    const char *texts[] = {"", "not json {", "[1,2,3]", "{\"checkpoint\":1}",
                           "{\"checkpoint\":99,\"lines\":[]}"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        err[0] = 0;
        assert_int_equal(its_analytics_checkpoint_restore(b, texts[i], strlen(texts[i]), 0, NULL,
                                                          err, sizeof err),
                         ITS_EPROTO);
        assert_true(strstr(err, "checkpoint") != NULL);
    }
    /* cut short */
    assert_int_equal(its_analytics_checkpoint_restore(b, buf, n / 2, 0, NULL, err, sizeof err),
                     ITS_EPROTO);
    /* a count that is a string (in the second line: after the first was read), a negative
     * count, a count beyond 32 bits */
    const char *subst[][2] = {{"\"3\"", "high"}, {"-3", "low"}, {"4294967296", "low"}};
    for (size_t i = 0; i < sizeof subst / sizeof subst[0]; i++) {
        char key[32];
        snprintf(key, sizeof key, "\"name\":\"%s\"", subst[i][1]);
        const char *at = strstr(strstr(buf, key), "\"total\":[3,");
        assert_non_null(at);
        size_t pre = (size_t)(at - buf) + 9;
        int m = snprintf(bad, sizeof bad, "%.*s%s%s", (int)pre, buf, subst[i][0], at + 10);
        assert_int_equal(
            its_analytics_checkpoint_restore(b, bad, (size_t)m, 0, NULL, err, sizeof err),
            ITS_EPROTO);
    }
    report(b, &r);
    assert_int_equal(r.frames, 0);
    assert_int_equal(r.lines[0].total[ITS_CLS_CAR][0], 0);
    assert_int_equal(r.zones[0].entries, 0);
    assert_int_equal(its_analytics_checkpoint_restore(b, buf, n, 0, NULL, err, sizeof err), 0);
    report(b, &r);
    assert_int_equal(r.lines[0].total[ITS_CLS_CAR][0], 3);
    its_analytics_destroy(a);
    its_analytics_destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_changed_scene),
        cmocka_unit_test(test_corrupt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

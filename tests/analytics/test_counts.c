/* Interval counts (its/counts.h) from hand-made crossing events with hand-computed rows:
 * intervals on the clock's quarter hours, a class change moving its crossing, flow over the
 * observed time, gaps not observed, the ring forgetting its oldest buckets, and the query
 * parsers. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "its/alloc.h"
#include "its/counts.h"
#include "its/error.h"

#define S 1000000000LL
/* 2026-12-07T08:14:00Z */
#define T0 ((int64_t)1796631240 * S)

typedef struct sbuf {
    char text[16384];
    size_t len;
} sbuf;

static int put(void *ctx, const char *s, size_t n)
{
    sbuf *b = ctx;
    if (b->len + n >= sizeof b->text)
        return ITS_EOVERFLOW;
    memcpy(b->text + b->len, s, n);
    b->len += n;
    b->text[b->len] = 0;
    return 0;
}

static its_scene one_line(void)
{
    its_scene s;
    its_scene_default(&s);
    s.n_lines = 1;
    snprintf(s.lines[0].name, sizeof s.lines[0].name, "main");
    s.lines[0].a = (its_pt){0, 100};
    s.lines[0].b = (its_pt){200, 100};
    s.lines[0].positive = (its_pt){0, 1};
    s.lines[0].lanes = 1;
    return s;
}

static its_event crossing(uint64_t seq, its_event_phase ph, int tclass, int dir, double kmh)
{
    its_event e = {.type = ITS_EV_LINE_CROSSING,
                   .phase = ph,
                   .seq = seq,
                   .tclass = tclass,
                   .index = 0,
                   .direction = dir,
                   .speed_kmh = kmh};
    return e;
}

/* The row of one interval, class and direction, or NULL. */
static const char *row(const char *csv, const char *start, const char *cls, const char *dir,
                       char *out, size_t len)
{
    char want[128];
    snprintf(want, sizeof want, ",%s,", start);
    char tail[96];
    snprintf(tail, sizeof tail, ",main,%s,%s,", cls, dir);
    for (const char *p = csv; *p;) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n < len) {
            memcpy(out, p, n);
            out[n] = 0;
            if (!strncmp(out, "cam1", 4) && !strncmp(out + 4, want, strlen(want)) &&
                strstr(out, tail))
                return out;
        }
        p += n + (e != NULL);
    }
    return NULL;
}

static void test_quarter_hours(void **st)
{
    (void)st;
    its_scene s = one_line();
    its_counts_t *c;
    assert_int_equal(its_counts_create(&s, "cam1", 60, 120, &c), 0);
    /* a frame every second from 08:14:00 to 08:20:00 */
    for (int64_t t = 0; t <= 360; t++) {
        its_event ev[2];
        int n = 0;
        if (t == 30) /* 08:14:30 a car, positive, 50 km/h */
            ev[n++] = crossing(1, ITS_PHASE_NONE, ITS_TK_CAR, +1, 50);
        if (t == 70) /* 08:15:10 a car, positive, 100 km/h ... */
            ev[n++] = crossing(2, ITS_PHASE_NONE, ITS_TK_CAR, +1, 100);
        if (t == 80) /* ... which turns out to be light goods */
            ev[n++] = crossing(2, ITS_PHASE_UPDATE, ITS_TK_LIGHT_GOODS, +1, 90);
        if (t == 120) /* 08:16:00 a bus, negative, no speed */
            ev[n++] = crossing(3, ITS_PHASE_NONE, ITS_TK_BUS, -1, NAN);
        its_counts_frame(c, T0 + t * S, ev, n);
    }
    static sbuf b;
    b.len = 0;
    int64_t from, to;
    assert_int_equal(its_counts_parse_time("2026-12-07T08:00:00Z", &from), 0);
    assert_int_equal(its_counts_parse_time("2026-12-07T08:30:00Z", &to), 0);
    assert_int_equal(its_counts_csv(c, from, to, 900, put, &b), 0);
    /* 2 intervals x 7 classes x 2 directions */
    assert_int_equal(its_test_count_in(b.text, "\n"), 2 * 7 * 2);
    char r[256];
    /* 08:00-08:15 observed 08:14:00-08:15:00 = 60 s: one car, 50 km/h, 1 per minute */
    assert_non_null(row(b.text, "2026-12-07T08:00:00Z", "car", "positive", r, sizeof r));
    assert_string_equal(r,
                        "cam1,2026-12-07T08:00:00Z,2026-12-07T08:15:00Z,main,car,positive,1,50.00,"
                        "60.0,60.000");
    assert_non_null(row(b.text, "2026-12-07T08:00:00Z", "car", "negative", r, sizeof r));
    assert_string_equal(r,
                        "cam1,2026-12-07T08:00:00Z,2026-12-07T08:15:00Z,main,car,negative,0,,0.0,"
                        "60.000");
    /* 08:15-08:30 observed 08:15:00-08:20:00 = 300 s: the car moved to light goods with its
     * speed, the bus without one; 1 in 300 s = 12 per hour */
    assert_non_null(row(b.text, "2026-12-07T08:15:00Z", "car", "positive", r, sizeof r));
    assert_string_equal(r,
                        "cam1,2026-12-07T08:15:00Z,2026-12-07T08:30:00Z,main,car,positive,0,,0.0,"
                        "300.000");
    assert_non_null(row(b.text, "2026-12-07T08:15:00Z", "light_goods", "positive", r, sizeof r));
    assert_string_equal(r,
                        "cam1,2026-12-07T08:15:00Z,2026-12-07T08:30:00Z,main,light_goods,positive,"
                        "1,100.00,12.0,300.000");
    assert_non_null(row(b.text, "2026-12-07T08:15:00Z", "bus", "negative", r, sizeof r));
    assert_string_equal(r,
                        "cam1,2026-12-07T08:15:00Z,2026-12-07T08:30:00Z,main,bus,negative,1,,12.0,"
                        "300.000");
    /* 5-minute rows: 08:10-08:15 (60 s), 08:15-08:20 (300 s); 08:20:00 is the last frame, an
     * instant of the 08:20 interval */
    b.len = 0;
    assert_int_equal(its_counts_csv(c, from, to, 300, put, &b), 0);
    assert_int_equal(its_test_count_in(b.text, "\n"), 3 * 7 * 2);
    assert_non_null(row(b.text, "2026-12-07T08:20:00Z", "bus", "negative", r, sizeof r));
    assert_string_equal(
        r, "cam1,2026-12-07T08:20:00Z,2026-12-07T08:25:00Z,main,bus,negative,0,,,0.000");
    /* the harmonic mean of two speeds: 08:20:01 and 08:20:02, 40 and 60 km/h -> 48 */
    its_event e1 = crossing(4, ITS_PHASE_NONE, ITS_TK_CAR, -1, 40);
    its_event e2 = crossing(5, ITS_PHASE_NONE, ITS_TK_CAR, -1, 60);
    its_counts_frame(c, T0 + 361 * S, &e1, 1);
    its_counts_frame(c, T0 + 362 * S, &e2, 1);
    b.len = 0;
    assert_int_equal(its_counts_csv(c, from, to, 900, put, &b), 0);
    assert_non_null(row(b.text, "2026-12-07T08:15:00Z", "car", "negative", r, sizeof r));
    assert_string_equal(r,
                        "cam1,2026-12-07T08:15:00Z,2026-12-07T08:30:00Z,main,car,negative,2,48.00,"
                        "23.8,302.000");
    /* not a multiple of the bucket */
    assert_int_equal(its_counts_csv(c, from, to, 90, put, &b), ITS_EINVAL);
    its_counts_destroy(c);
}

static void test_gap_and_ring(void **st)
{
    (void)st;
    its_scene s = one_line();
    its_counts_t *c;
    assert_int_equal(its_counts_create(&s, "cam1", 60, 30, &c), 0); /* 30 minutes kept */
    its_counts_frame(c, T0, NULL, 0);
    its_counts_frame(c, T0 + 5 * S, NULL, 0);  /* 5 s observed */
    its_counts_frame(c, T0 + 25 * S, NULL, 0); /* a 20 s gap: not observed */
    its_counts_frame(c, T0 + 26 * S, NULL, 0); /* 1 s */
    static sbuf b;
    b.len = 0;
    assert_int_equal(its_counts_csv(c, T0, T0 + 60 * S, 60, put, &b), 0);
    char r[256];
    assert_non_null(row(b.text, "2026-12-07T08:14:00Z", "car", "positive", r, sizeof r));
    assert_string_equal(r,
                        "cam1,2026-12-07T08:14:00Z,2026-12-07T08:15:00Z,main,car,positive,0,,0.0,"
                        "6.000");
    /* an hour later: 08:14 has left the 30-minute ring */
    its_event e = crossing(1, ITS_PHASE_NONE, ITS_TK_CAR, +1, 30);
    its_counts_frame(c, T0 + 3600 * S, &e, 1);
    b.len = 0;
    assert_int_equal(its_counts_csv(c, T0 - 3600 * S, T0 + 7200 * S, 3600, put, &b), 0);
    assert_null(row(b.text, "2026-12-07T08:00:00Z", "car", "positive", r, sizeof r));
    assert_non_null(row(b.text, "2026-12-07T09:00:00Z", "car", "positive", r, sizeof r));
    assert_string_equal(r,
                        "cam1,2026-12-07T09:00:00Z,2026-12-07T10:00:00Z,main,car,positive,1,30.00,,"
                        "0.000");
    assert_int_equal(its_test_count_in(b.text, "\n"), 7 * 2);
    /* a class change moves the crossing within its bucket */
    its_event u = crossing(1, ITS_PHASE_UPDATE, ITS_TK_BUS, +1, 30);
    its_counts_frame(c, T0 + 3601 * S, &u, 1);
    b.len = 0;
    assert_int_equal(its_counts_csv(c, T0, T0 + 7200 * S, 3600, put, &b), 0);
    assert_non_null(row(b.text, "2026-12-07T09:00:00Z", "bus", "positive", r, sizeof r));
    assert_true(strstr(r, ",bus,positive,1,30.00,") != NULL);
    its_counts_destroy(c);
}

static void test_store(void **st)
{
    (void)st;
    its_scene s = one_line();
    its_counts_store *store;
    its_counts_t *c;
    assert_int_equal(its_counts_store_create(1, &store), 0);
    assert_int_equal(its_counts_create(&s, "cam1", 60, 10, &c), 0);
    static sbuf b;
    b.len = 0;
    assert_int_equal(its_counts_store_csv(store, "cam1", 0, T0, 900, put, &b), ITS_ENOENT);
    assert_int_equal(its_counts_store_add(store, "cam1", c), 0);
    assert_int_equal(its_counts_store_add(store, "cam2", c), ITS_EFULL);
    assert_int_equal(its_counts_store_csv(store, "cam1", 0, T0, 900, put, &b), 0);
    assert_int_equal(b.len, 0); /* nothing seen yet */
    its_counts_store_remove(store, "cam1", c);
    assert_int_equal(its_counts_store_csv(store, "cam1", 0, T0, 900, put, &b), ITS_ENOENT);
    its_counts_destroy(c);
    its_counts_store_destroy(store);
}

static void test_parse(void **st)
{
    (void)st;
    int s;
    assert_int_equal(its_counts_parse_interval("15m", &s), 0);
    assert_int_equal(s, 900);
    assert_int_equal(its_counts_parse_interval("1h", &s), 0);
    assert_int_equal(s, 3600);
    assert_int_equal(its_counts_parse_interval("300", &s), 0);
    assert_int_equal(s, 300);
    assert_int_equal(its_counts_parse_interval("45s", &s), 0);
    assert_int_equal(s, 45);
    assert_int_equal(its_counts_parse_interval("0m", &s), ITS_EINVAL);
    assert_int_equal(its_counts_parse_interval("25h", &s), ITS_EINVAL);
    assert_int_equal(its_counts_parse_interval("15x", &s), ITS_EINVAL);
    assert_int_equal(its_counts_parse_interval("", &s), ITS_EINVAL);
    int64_t ns;
    assert_int_equal(its_counts_parse_time("2026-12-07T08:14:00Z", &ns), 0);
    assert_int_equal(ns, T0);
    assert_int_equal(its_counts_parse_time("2026-12-07T08:14:00.25Z", &ns), 0);
    assert_int_equal(ns, T0 + S / 4);
    assert_int_equal(its_counts_parse_time("1796631240", &ns), 0);
    assert_int_equal(ns, T0);
    assert_int_equal(its_counts_parse_time("2026-12-07T08:14:00", &ns), ITS_EINVAL);
    assert_int_equal(its_counts_parse_time("2026-12-07 08:14", &ns), ITS_EINVAL);
    assert_int_equal(its_counts_parse_time("-5", &ns), ITS_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quarter_hours),
        cmocka_unit_test(test_gap_and_ring),
        cmocka_unit_test(test_store),
        cmocka_unit_test(test_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

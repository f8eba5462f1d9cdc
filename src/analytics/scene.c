/*
 * Scene files: a libcyaml schema of our own (typed lists of lines, zones and lanes do not fit
 * the scalar options table of its/config.h), then a validation pass that checks what the
 * schema cannot (counts, geometry, names, ranges) and fits the homography.
 *
 * Every list and point count is loaded without bounds so that this file, not libcyaml, says
 * what is wrong ("lines[1].points: 2 points needed, got 3"). libcyaml's own errors (unknown
 * key, wrong type) come with the path of keys and sequence indices rebuilt from its log.
 */
#include <cyaml/cyaml.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "its/alloc.h"
#include "its/analytics.h"
#include "its/error.h"

/* ---- raw document, as libcyaml fills it ---- */

typedef struct rpt {
    double v[2];
} rpt;

typedef struct rline {
    char *name;
    rpt *points;
    unsigned points_count;
    double *positive;
    unsigned positive_count;
    int *lanes;
} rline;

typedef struct rzone {
    char *name;
    rpt *polygon;
    unsigned polygon_count;
    bool *walk;
} rzone;

typedef struct rtclass {
    char *name;
    char **kinds;
    unsigned kinds_count;
} rtclass;

typedef struct rlane {
    char *name;
    rpt *polygon;
    unsigned polygon_count;
    double *direction;
    unsigned direction_count;
    char *stop_line;
} rlane;

typedef struct rcalib {
    rpt *image;
    unsigned image_count;
    rpt *road;
    unsigned road_count;
} rcalib;

#define GROUP_FIELDS(g)                                                                            \
    int *g;                                                                                        \
    unsigned g##_count
typedef struct rclasses {
    GROUP_FIELDS(car);
    GROUP_FIELDS(truck);
    GROUP_FIELDS(bus);
    GROUP_FIELDS(motorcycle);
    GROUP_FIELDS(bicycle);
    GROUP_FIELDS(person);
} rclasses;

/* The analytics: section maps onto its_analytics_params, a struct of doubles only. */
#define N_PARAMS 21
_Static_assert(sizeof(its_analytics_params) == N_PARAMS * sizeof(double),
               "scene.c's parameter tables must follow its_analytics_params");

typedef struct rparams {
    double *v[N_PARAMS]; /* same order as its_analytics_params */
} rparams;

typedef struct rscene {
    char *camera;
    rpt *speed_zone;
    unsigned speed_zone_count;
    double *fps;
    int *frame;
    unsigned frame_count;
    rcalib *calibration;
    rclasses *classes;
    rline *lines;
    unsigned lines_count;
    rzone *zones;
    unsigned zones_count;
    rlane *lanes;
    unsigned lanes_count;
    rparams *analytics;
    rtclass *traffic_classes;
    unsigned traffic_classes_count;
} rscene;

static const cyaml_schema_value_t dbl_schema = {CYAML_VALUE_FLOAT(CYAML_FLAG_DEFAULT, double)};
static const cyaml_schema_value_t int_schema = {CYAML_VALUE_INT(CYAML_FLAG_DEFAULT, int)};
static const cyaml_schema_value_t pt_schema = {
    CYAML_VALUE_SEQUENCE_FIXED(CYAML_FLAG_DEFAULT, double, &dbl_schema, 2)};

#define OPT CYAML_FLAG_OPTIONAL
#define PTS(key, st, m)                                                                            \
    CYAML_FIELD_SEQUENCE(key, CYAML_FLAG_POINTER | OPT, st, m, &pt_schema, 0, CYAML_UNLIMITED)
#define DBLS(key, st, m)                                                                           \
    CYAML_FIELD_SEQUENCE(key, CYAML_FLAG_POINTER | OPT, st, m, &dbl_schema, 0, CYAML_UNLIMITED)
#define INTS(key, st, m)                                                                           \
    CYAML_FIELD_SEQUENCE(key, CYAML_FLAG_POINTER | OPT, st, m, &int_schema, 0, CYAML_UNLIMITED)
#define STR(key, st, m)                                                                            \
    CYAML_FIELD_STRING_PTR(key, CYAML_FLAG_POINTER | OPT, st, m, 0, CYAML_UNLIMITED)

static const cyaml_schema_field_t line_fields[] = {
    STR("name", rline, name), PTS("points", rline, points), DBLS("positive", rline, positive),
    CYAML_FIELD_INT_PTR("lanes", CYAML_FLAG_POINTER | OPT, rline, lanes), CYAML_FIELD_END};
static const cyaml_schema_value_t line_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, rline, line_fields)};

static const cyaml_schema_field_t zone_fields[] = {
    STR("name", rzone, name), PTS("polygon", rzone, polygon),
    CYAML_FIELD_BOOL_PTR("walk", CYAML_FLAG_POINTER | CYAML_FLAG_STRICT | OPT, rzone, walk),
    CYAML_FIELD_END};

static const cyaml_schema_value_t str_schema = {
    CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 0, CYAML_UNLIMITED)};
static const cyaml_schema_field_t tclass_fields[] = {
    STR("name", rtclass, name),
    CYAML_FIELD_SEQUENCE("kinds", CYAML_FLAG_POINTER | OPT, rtclass, kinds, &str_schema, 0,
                         CYAML_UNLIMITED),
    CYAML_FIELD_END};
static const cyaml_schema_value_t tclass_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, rtclass, tclass_fields)};
static const cyaml_schema_value_t zone_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, rzone, zone_fields)};

static const cyaml_schema_field_t lane_fields[] = {
    STR("name", rlane, name), PTS("polygon", rlane, polygon), DBLS("direction", rlane, direction),
    STR("stop_line", rlane, stop_line), CYAML_FIELD_END};
static const cyaml_schema_value_t lane_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, rlane, lane_fields)};

static const cyaml_schema_field_t calib_fields[] = {PTS("image", rcalib, image),
                                                    PTS("road", rcalib, road), CYAML_FIELD_END};

static const cyaml_schema_field_t class_fields[] = {INTS("car", rclasses, car),
                                                    INTS("truck", rclasses, truck),
                                                    INTS("bus", rclasses, bus),
                                                    INTS("motorcycle", rclasses, motorcycle),
                                                    INTS("bicycle", rclasses, bicycle),
                                                    INTS("person", rclasses, person),
                                                    CYAML_FIELD_END};

/* Bounds of each parameter, inclusive. */
static const double param_min[N_PARAMS] = {0.1, 0,    0.1, 0,   0.5, 0.1, 0, 1, 0.1, 0,  0,
                                           0.5, 0.01, 0.0, 0.0, 0,   0,   0, 1, 0,   0.5};
static const double param_max[N_PARAMS] = {10,  100, 600, 50, 3600, 600, 200, 300, 60, 1, 50,
                                           200, 1,   1,   1,  1,    200, 300, 10,  1,  10};

#define PARAM(i, k)                                                                                \
    {                                                                                              \
        .key = k, .data_offset = offsetof(rparams, v) + (i) * sizeof(double *),                    \
        .value = {CYAML_VALUE_FLOAT(CYAML_FLAG_POINTER | OPT, double)},                            \
    }
static const cyaml_schema_field_t param_fields[N_PARAMS + 1] = {
    PARAM(0, "speed_window_s"),          PARAM(1, "line_hysteresis_px"),
    PARAM(2, "track_timeout_s"),         PARAM(3, "stopped_speed_kmh"),
    PARAM(4, "stopped_time_s"),          PARAM(5, "wrong_way_time_s"),
    PARAM(6, "wrong_way_min_speed_kmh"), PARAM(7, "speed_drop_kmh"),
    PARAM(8, "speed_drop_window_s"),     PARAM(9, "speed_drop_ratio"),
    PARAM(10, "queue_speed_kmh"),        PARAM(11, "queue_gap_m"),
    PARAM(12, "forecast_alpha"),         PARAM(13, "forecast_beta"),
    PARAM(14, "duplicate_iou"),          PARAM(15, "rider_overlap"),
    PARAM(16, "rider_speed_kmh"),        PARAM(17, "motorcycle_speed_kmh"),
    PARAM(18, "class_vote_margin"),      PARAM(19, "crossing_margin"),
    PARAM(20, "heavy_goods_height_m"),   CYAML_FIELD_END};

static const cyaml_schema_field_t top_fields[] = {
    STR("camera", rscene, camera),
    CYAML_FIELD_FLOAT_PTR("fps", CYAML_FLAG_POINTER | OPT, rscene, fps),
    INTS("frame", rscene, frame),
    PTS("speed_zone", rscene, speed_zone),
    CYAML_FIELD_MAPPING_PTR("calibration", CYAML_FLAG_POINTER | OPT, rscene, calibration,
                            calib_fields),
    CYAML_FIELD_MAPPING_PTR("classes", CYAML_FLAG_POINTER | OPT, rscene, classes, class_fields),
    CYAML_FIELD_SEQUENCE("lines", CYAML_FLAG_POINTER | OPT, rscene, lines, &line_schema, 0,
                         CYAML_UNLIMITED),
    CYAML_FIELD_SEQUENCE("zones", CYAML_FLAG_POINTER | OPT, rscene, zones, &zone_schema, 0,
                         CYAML_UNLIMITED),
    CYAML_FIELD_SEQUENCE("lanes", CYAML_FLAG_POINTER | OPT, rscene, lanes, &lane_schema, 0,
                         CYAML_UNLIMITED),
    CYAML_FIELD_MAPPING_PTR("analytics", CYAML_FLAG_POINTER | OPT, rscene, analytics, param_fields),
    CYAML_FIELD_SEQUENCE("traffic_classes", CYAML_FLAG_POINTER | OPT, rscene, traffic_classes,
                         &tclass_schema, 0, CYAML_UNLIMITED),
    CYAML_FIELD_END};
static const cyaml_schema_value_t top_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, rscene, top_fields)};

/* ---- errors ---- */

/* libcyaml logs the reason first, then a backtrace innermost first ("in mapping field 'x'",
 * "in sequence entry '2'"); rebuild "lines[2].points" from it. */
typedef struct capture {
    char reason[200];
    char path[200];
} capture;

static void prepend(capture *c, const char *s)
{
    char tmp[sizeof c->path];
    size_t ls = strlen(s), lp = strlen(c->path);
    int dot = c->path[0] && c->path[0] != '[';
    if (ls + (size_t)dot + lp + 1 > sizeof tmp)
        return;
    memcpy(tmp, s, ls);
    if (dot)
        tmp[ls] = '.';
    memcpy(tmp + ls + (size_t)dot, c->path, lp + 1);
    memcpy(c->path, tmp, sizeof tmp);
}

static void capture_log(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
    __attribute__((format(printf, 3, 0)));

static void capture_log(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
{
    capture *c = ctx;
    char line[256], item[160];
    if (level < CYAML_LOG_ERROR)
        return;
    vsnprintf(line, sizeof line, fmt, args);
    size_t l = strlen(line);
    while (l && (line[l - 1] == '\n' || line[l - 1] == ' '))
        line[--l] = '\0';
    const char *p = strncmp(line, "Load: ", 6) == 0 ? line + 6 : line;
    const char *f = strstr(p, "in mapping field");
    const char *s = strstr(p, "in sequence entry");
    if (f || s) {
        const char *k = (f ? f + 16 : s + 17);
        k += strspn(k, " :'");
        size_t kl = strcspn(k, "'");
        if (kl > 100)
            kl = 100;
        if (f)
            snprintf(item, sizeof item, "%.*s", (int)kl, k);
        else /* libcyaml counts entries from 1 */
            snprintf(item, sizeof item, "[%ld]", strtol(k, NULL, 10) - 1);
        prepend(c, item);
    } else if (!strstr(p, "Backtrace") && !strstr(p, "in mapping") && !c->reason[0]) {
        snprintf(c->reason, sizeof c->reason, "%.190s", p);
    }
}

static void *mem_fn(void *ctx, void *ptr, size_t size)
{
    if (size == 0) {
        its_free(ptr);
        return NULL;
    }
    return its_realloc(ITS_MOD_ANALYTICS, ptr, size);
}

/* ---- geometry ---- */

static double cross3(its_pt o, its_pt a, its_pt b)
{
    return (a.x - o.x) * (b.y - o.y) - (a.y - o.y) * (b.x - o.x);
}

static int segs_cross(its_pt a, its_pt b, its_pt c, its_pt d)
{
    double d1 = cross3(c, d, a), d2 = cross3(c, d, b), d3 = cross3(a, b, c), d4 = cross3(a, b, d);
    return ((d1 > 0 && d2 < 0) || (d1 < 0 && d2 > 0)) && ((d3 > 0 && d4 < 0) || (d3 < 0 && d4 > 0));
}

/* "" if the polygon is usable, else why not. */
static const char *poly_problem(const its_pt *p, int n)
{
    for (int i = 0; i < n; i++)
        for (int j = i + 2; j < n; j++) {
            if (i == 0 && j == n - 1)
                continue;
            if (segs_cross(p[i], p[(i + 1) % n], p[j], p[(j + 1) % n]))
                return "is self-intersecting";
        }
    double area = 0;
    for (int i = 0; i < n; i++)
        area += p[i].x * p[(i + 1) % n].y - p[(i + 1) % n].x * p[i].y;
    if (fabs(area) < 1e-6)
        return "has zero area";
    return "";
}

/* Solve the 8x8 DLT system (h33 = 1) for the homography img -> road; 0 or ITS_ECONFIG. */
static int fit_homography(const its_pt *img, const its_pt *road, double *H)
{
    double A[8][9];
    for (int i = 0; i < 4; i++) {
        double x = img[i].x, y = img[i].y, X = road[i].x, Y = road[i].y;
        double r0[9] = {x, y, 1, 0, 0, 0, -x * X, -y * X, X};
        double r1[9] = {0, 0, 0, x, y, 1, -x * Y, -y * Y, Y};
        memcpy(A[2 * i], r0, sizeof r0);
        memcpy(A[2 * i + 1], r1, sizeof r1);
    }
    for (int c = 0; c < 8; c++) {
        int piv = c;
        for (int r = c + 1; r < 8; r++)
            if (fabs(A[r][c]) > fabs(A[piv][c]))
                piv = r;
        if (fabs(A[piv][c]) < 1e-12)
            return ITS_ECONFIG;
        if (piv != c)
            for (int k = 0; k < 9; k++) {
                double t = A[c][k];
                A[c][k] = A[piv][k];
                A[piv][k] = t;
            }
        for (int r = 0; r < 8; r++) {
            if (r == c)
                continue;
            double m = A[r][c] / A[c][c];
            for (int k = c; k < 9; k++)
                A[r][k] -= m * A[c][k];
        }
    }
    for (int i = 0; i < 8; i++)
        H[i] = A[i][8] / A[i][i];
    H[8] = 1;
    for (int i = 0; i < 9; i++)
        if (!isfinite(H[i]))
            return ITS_ECONFIG;
    return 0;
}

its_pt its_scene_to_road(const its_scene *s, its_pt p)
{
    const double *H = s->H;
    double w = H[6] * p.x + H[7] * p.y + H[8];
    its_pt r = {(H[0] * p.x + H[1] * p.y + H[2]) / w, (H[3] * p.x + H[4] * p.y + H[5]) / w};
    return r;
}

/* ---- defaults and validation ---- */

void its_analytics_params_default(its_analytics_params *p)
{
    p->speed_window_s = 1.0;
    p->line_hysteresis_px = 2.0;
    p->track_timeout_s = 2.0;
    p->stopped_speed_kmh = 5.0;
    p->stopped_time_s = 20.0;
    p->wrong_way_time_s = 2.0;
    p->wrong_way_min_speed_kmh = 10.0;
    p->speed_drop_kmh = 30.0;
    p->speed_drop_window_s = 2.0;
    p->speed_drop_ratio = 0.4;
    p->queue_speed_kmh = 5.0;
    p->queue_gap_m = 15.0;
    p->forecast_alpha = 0.3;
    p->forecast_beta = 0.1;
    p->duplicate_iou = 0.7;
    p->rider_overlap = 0.3;
    p->rider_speed_kmh = 15.0;
    p->motorcycle_speed_kmh = 30.0;
    p->class_vote_margin = 1.5;
    p->crossing_margin = 0.1;
    p->heavy_goods_height_m = 3.2;
}

static const int default_map[][2] = {{0, ITS_CLS_PERSON}, {1, ITS_CLS_BICYCLE},
                                     {2, ITS_CLS_CAR},    {3, ITS_CLS_MOTORCYCLE},
                                     {5, ITS_CLS_BUS},    {7, ITS_CLS_TRUCK}};

void its_scene_default(its_scene *s)
{
    memset(s, 0, sizeof *s);
    s->fps = 30;
    memset(s->class_map, -1, sizeof s->class_map);
    for (size_t i = 0; i < sizeof default_map / sizeof default_map[0]; i++)
        s->class_map[default_map[i][0]] = (signed char)default_map[i][1];
    for (int i = 0; i < 9; i++)
        s->H[i] = (i % 4 == 0);
    its_analytics_params_default(&s->params);
    s->n_tclasses = ITS_TK_COUNT;
    for (int k = 0; k < ITS_TK_COUNT; k++) {
        snprintf(s->tclasses[k].name, sizeof s->tclasses[k].name, "%s", its_traffic_kind_name(k));
        s->tclasses[k].kinds = 1u << k;
    }
}

static int pt_ok(const its_scene *s, its_pt p)
{
    if (!isfinite(p.x) || !isfinite(p.y))
        return 0;
    if (s->width_px > 0 && (p.x < 0 || p.x > s->width_px || p.y < 0 || p.y > s->height_px))
        return 0;
    return 1;
}

/* Homogeneous w of an image point through H: its sign says which side of the horizon. */
static double horizon_w(const its_scene *s, its_pt p)
{
    return s->H[6] * p.x + s->H[7] * p.y + s->H[8];
}

/* A point on the road side of the horizon, where image -> road is meaningful. */
static int on_road(const its_scene *s, its_pt p)
{
    if (!s->has_calibration)
        return 1;
    double w0 = horizon_w(s, s->calib_image[0]), w = horizon_w(s, p);
    return (w > 0) == (w0 > 0) && fabs(w) > 1e-9 * fabs(w0);
}

static int collinear3(const its_pt *p)
{
    double scale = 0;
    for (int i = 0; i < 4; i++)
        scale = fmax(scale, fmax(fabs(p[i].x), fabs(p[i].y)));
    for (int i = 0; i < 4; i++)
        for (int j = i + 1; j < 4; j++)
            for (int k = j + 1; k < 4; k++)
                if (fabs(cross3(p[i], p[j], p[k])) < 1e-6 * (scale * scale + 1))
                    return 1;
    return 0;
}

int its_scene_validate(its_scene *s, const char *o, char *err, size_t errlen)
{
    if (!o)
        o = "(scene)";
    if (!(s->fps > 0 && s->fps <= 1000))
        return its_seterr(err, errlen, ITS_ECONFIG, "%s: fps: %g is outside (0, 1000]", o, s->fps);
    if (s->width_px < 0 || s->height_px < 0 || s->width_px > 65536 || s->height_px > 65536 ||
        (s->width_px > 0) != (s->height_px > 0))
        return its_seterr(err, errlen, ITS_ECONFIG,
                          "%s: frame: width and height must be in 1..65536", o);
    if (s->n_lines < 0 || s->n_lines > ITS_SCENE_MAX_LINES)
        return its_seterr(err, errlen, ITS_ECONFIG, "%s: lines: at most %d lines", o,
                          ITS_SCENE_MAX_LINES);
    if (s->n_zones < 0 || s->n_zones > ITS_SCENE_MAX_ZONES)
        return its_seterr(err, errlen, ITS_ECONFIG, "%s: zones: at most %d zones", o,
                          ITS_SCENE_MAX_ZONES);
    if (s->n_lanes < 0 || s->n_lanes > ITS_SCENE_MAX_LANES)
        return its_seterr(err, errlen, ITS_ECONFIG, "%s: lanes: at most %d lanes", o,
                          ITS_SCENE_MAX_LANES);
    if (s->has_calibration) {
        for (int i = 0; i < 4; i++)
            if (!pt_ok(s, s->calib_image[i]) || !isfinite(s->calib_road[i].x) ||
                !isfinite(s->calib_road[i].y))
                return its_seterr(err, errlen, ITS_ECONFIG,
                                  "%s: calibration: point %d is not finite or outside the frame", o,
                                  i);
        if (collinear3(s->calib_image) || collinear3(s->calib_road))
            return its_seterr(err, errlen, ITS_ECONFIG,
                              "%s: calibration: three of the four points are collinear", o);
        if (fit_homography(s->calib_image, s->calib_road, s->H) < 0)
            return its_seterr(err, errlen, ITS_ECONFIG,
                              "%s: calibration: the homography is singular", o);
        /* The road plane must not fold over itself inside the calibrated area: the image's
         * horizon (w = 0) may not pass between the four points. */
        for (int i = 1; i < 4; i++)
            if ((horizon_w(s, s->calib_image[i]) > 0) != (horizon_w(s, s->calib_image[0]) > 0))
                return its_seterr(err, errlen, ITS_ECONFIG,
                                  "%s: calibration: the points are not in the same order on the "
                                  "image and the road",
                                  o);
    } else {
        for (int i = 0; i < 9; i++)
            s->H[i] = (i % 4 == 0);
    }
    if (s->speed_zone_n) {
        if (!s->has_calibration)
            return its_seterr(err, errlen, ITS_ECONFIG,
                              "%s: speed_zone: needs a calibration section", o);
        if (s->speed_zone_n < 3 || s->speed_zone_n > ITS_SCENE_MAX_POLY)
            return its_seterr(err, errlen, ITS_ECONFIG,
                              "%s: speed_zone: 3..%d points needed, got %d", o, ITS_SCENE_MAX_POLY,
                              s->speed_zone_n);
        for (int k = 0; k < s->speed_zone_n; k++)
            if (!pt_ok(s, s->speed_zone[k]) || !on_road(s, s->speed_zone[k]))
                return its_seterr(
                    err, errlen, ITS_ECONFIG,
                    "%s: speed_zone: point %d is outside the frame or beyond the horizon", o, k);
        const char *why = poly_problem(s->speed_zone, s->speed_zone_n);
        if (*why)
            return its_seterr(err, errlen, ITS_ECONFIG, "%s: speed_zone: %s", o, why);
    }
    for (int i = 0; i < s->n_lines; i++) {
        its_scene_line *l = &s->lines[i];
        if (!l->name[0])
            return its_seterr(err, errlen, ITS_ECONFIG, "%s: lines[%d].name: missing", o, i);
        for (int j = 0; j < i; j++)
            if (!strcmp(s->lines[j].name, l->name))
                return its_seterr(err, errlen, ITS_ECONFIG,
                                  "%s: lines[%d].name: '%s' is used twice", o, i, l->name);
        if (!pt_ok(s, l->a) || !pt_ok(s, l->b))
            return its_seterr(err, errlen, ITS_ECONFIG,
                              "%s: lines[%d].points: not finite or outside the %dx%d frame", o, i,
                              s->width_px, s->height_px);
        if (!on_road(s, l->a) || !on_road(s, l->b))
            return its_seterr(err, errlen, ITS_ECONFIG,
                              "%s: lines[%d].points: beyond the horizon of the calibration", o, i);
        double dx = l->b.x - l->a.x, dy = l->b.y - l->a.y, len = hypot(dx, dy);
        if (len < 1)
            return its_seterr(err, errlen, ITS_ECONFIG,
                              "%s: lines[%d].points: the two points coincide", o, i);
        double pl = hypot(l->positive.x, l->positive.y);
        if (!(pl > 0) || !isfinite(pl))
            return its_seterr(err, errlen, ITS_ECONFIG,
                              "%s: lines[%d].positive: a non-zero direction [dx, dy] is needed", o,
                              i);
        if (fabs(dx * l->positive.y - dy * l->positive.x) < 0.1 * len * pl)
            return its_seterr(err, errlen, ITS_ECONFIG,
                              "%s: lines[%d].positive: runs along the line, it must cross it", o,
                              i);
        if (l->lanes < 1 || l->lanes > 16)
            return its_seterr(err, errlen, ITS_ECONFIG, "%s: lines[%d].lanes: %d is outside 1..16",
                              o, i, l->lanes);
    }
    for (int i = 0; i < s->n_zones; i++) {
        its_scene_zone *z = &s->zones[i];
        if (!z->name[0])
            return its_seterr(err, errlen, ITS_ECONFIG, "%s: zones[%d].name: missing", o, i);
        for (int j = 0; j < i; j++)
            if (!strcmp(s->zones[j].name, z->name))
                return its_seterr(err, errlen, ITS_ECONFIG,
                                  "%s: zones[%d].name: '%s' is used twice", o, i, z->name);
        if (z->n < 3 || z->n > ITS_SCENE_MAX_POLY)
            return its_seterr(err, errlen, ITS_ECONFIG,
                              "%s: zones[%d].polygon: 3..%d points needed, got %d", o, i,
                              ITS_SCENE_MAX_POLY, z->n);
        for (int k = 0; k < z->n; k++)
            if (!pt_ok(s, z->poly[k]))
                return its_seterr(
                    err, errlen, ITS_ECONFIG,
                    "%s: zones[%d].polygon: point %d is not finite or outside the frame", o, i, k);
        const char *why = poly_problem(z->poly, z->n);
        if (*why)
            return its_seterr(err, errlen, ITS_ECONFIG, "%s: zones[%d].polygon: %s", o, i, why);
    }
    if (s->n_tclasses < 0 || s->n_tclasses > ITS_SCENE_MAX_TCLASSES)
        return its_seterr(err, errlen, ITS_ECONFIG, "%s: traffic_classes: at most %d classes", o,
                          ITS_SCENE_MAX_TCLASSES);
    unsigned kinds_seen = 0;
    for (int i = 0; i < s->n_tclasses; i++) {
        const its_traffic_class *c = &s->tclasses[i];
        if (!c->name[0] || memchr(c->name, 0, sizeof c->name) == NULL)
            return its_seterr(err, errlen, ITS_ECONFIG, "%s: traffic_classes[%d].name: missing", o,
                              i);
        for (int j = 0; j < i; j++)
            if (!strcmp(s->tclasses[j].name, c->name))
                return its_seterr(err, errlen, ITS_ECONFIG,
                                  "%s: traffic_classes[%d].name: '%s' is used twice", o, i,
                                  c->name);
        if (c->kinds >> ITS_TK_COUNT)
            return its_seterr(err, errlen, ITS_ECONFIG,
                              "%s: traffic_classes[%d].kinds: unknown kind", o, i);
        if (c->kinds & kinds_seen)
            return its_seterr(err, errlen, ITS_ECONFIG,
                              "%s: traffic_classes[%d].kinds: a kind is already in another class",
                              o, i);
        kinds_seen |= c->kinds;
    }
    for (int i = 0; i < s->n_lanes; i++) {
        its_scene_lane *l = &s->lanes[i];
        if (!l->name[0])
            return its_seterr(err, errlen, ITS_ECONFIG, "%s: lanes[%d].name: missing", o, i);
        for (int j = 0; j < i; j++)
            if (!strcmp(s->lanes[j].name, l->name))
                return its_seterr(err, errlen, ITS_ECONFIG,
                                  "%s: lanes[%d].name: '%s' is used twice", o, i, l->name);
        if (l->n < 3 || l->n > ITS_SCENE_MAX_POLY)
            return its_seterr(err, errlen, ITS_ECONFIG,
                              "%s: lanes[%d].polygon: 3..%d points needed, got %d", o, i,
                              ITS_SCENE_MAX_POLY, l->n);
        for (int k = 0; k < l->n; k++)
            if (!pt_ok(s, l->poly[k]))
                return its_seterr(
                    err, errlen, ITS_ECONFIG,
                    "%s: lanes[%d].polygon: point %d is not finite or outside the frame", o, i, k);
        const char *why = poly_problem(l->poly, l->n);
        if (*why)
            return its_seterr(err, errlen, ITS_ECONFIG, "%s: lanes[%d].polygon: %s", o, i, why);
        for (int k = 0; k < l->n; k++)
            if (!on_road(s, l->poly[k]))
                return its_seterr(err, errlen, ITS_ECONFIG,
                                  "%s: lanes[%d].polygon: point %d is beyond the horizon of the "
                                  "calibration",
                                  o, i, k);
        double dl = hypot(l->direction.x, l->direction.y);
        if (!(dl > 0) || !isfinite(dl))
            return its_seterr(err, errlen, ITS_ECONFIG,
                              "%s: lanes[%d].direction: a non-zero direction [dx, dy] is needed", o,
                              i);
        if (l->stop_line < -1 || l->stop_line >= s->n_lines)
            return its_seterr(err, errlen, ITS_ECONFIG, "%s: lanes[%d].stop_line: no such line", o,
                              i);
        if (l->stop_line >= 0 && !s->has_calibration)
            return its_seterr(err, errlen, ITS_ECONFIG,
                              "%s: lanes[%d].stop_line: queue length needs a calibration section",
                              o, i);
    }
    const double *pv = &s->params.speed_window_s;
    for (int i = 0; i < N_PARAMS; i++)
        if (!(pv[i] >= param_min[i] && pv[i] <= param_max[i]))
            return its_seterr(err, errlen, ITS_ECONFIG, "%s: analytics.%s: %g is outside [%g, %g]",
                              o, param_fields[i].key, pv[i], param_min[i], param_max[i]);
    return 0;
}

/* ---- raw document -> its_scene ---- */

static int copy_name(char *dst, const char *src, const char *o, const char *what, int i, char *err,
                     size_t errlen)
{
    if (!src || !src[0])
        return its_seterr(err, errlen, ITS_ECONFIG, "%s: %s[%d].name: missing", o, what, i);
    if (strlen(src) >= ITS_SCENE_NAME_MAX)
        return its_seterr(err, errlen, ITS_ECONFIG, "%s: %s[%d].name: longer than %d characters", o,
                          what, i, ITS_SCENE_NAME_MAX - 1);
    strcpy(dst, src);
    return 0;
}

static int copy_poly(its_pt *dst, int *n, const rpt *src, unsigned cnt, const char *o,
                     const char *what, int i, char *err, size_t errlen)
{
    if (!src || cnt < 3 || cnt > ITS_SCENE_MAX_POLY)
        return its_seterr(err, errlen, ITS_ECONFIG,
                          "%s: %s[%d].polygon: 3..%d points needed, got %u", o, what, i,
                          ITS_SCENE_MAX_POLY, src ? cnt : 0);
    for (unsigned k = 0; k < cnt; k++) {
        dst[k].x = src[k].v[0];
        dst[k].y = src[k].v[1];
    }
    *n = (int)cnt;
    return 0;
}

static int convert(const rscene *r, its_scene *s, const char *o, char *err, size_t errlen)
{
    its_scene_default(s);
    int rc;
    if (r->camera) {
        if (strlen(r->camera) >= sizeof s->camera)
            return its_seterr(err, errlen, ITS_ECONFIG, "%s: camera: longer than %zu characters", o,
                              sizeof s->camera - 1);
        strcpy(s->camera, r->camera);
    }
    if (r->fps)
        s->fps = *r->fps;
    if (r->frame) {
        if (r->frame_count != 2)
            return its_seterr(err, errlen, ITS_ECONFIG,
                              "%s: frame: [width, height] needed, got %u values", o,
                              r->frame_count);
        s->width_px = r->frame[0];
        s->height_px = r->frame[1];
        if (s->width_px <= 0 || s->height_px <= 0)
            return its_seterr(err, errlen, ITS_ECONFIG,
                              "%s: frame: width and height must be positive", o);
    }
    if (r->calibration) {
        const rcalib *c = r->calibration;
        if (!c->image || c->image_count != 4)
            return its_seterr(err, errlen, ITS_ECONFIG,
                              "%s: calibration.image: 4 points needed, got %u", o,
                              c->image ? c->image_count : 0);
        if (!c->road || c->road_count != 4)
            return its_seterr(err, errlen, ITS_ECONFIG,
                              "%s: calibration.road: 4 points needed, got %u", o,
                              c->road ? c->road_count : 0);
        for (int i = 0; i < 4; i++) {
            s->calib_image[i].x = c->image[i].v[0];
            s->calib_image[i].y = c->image[i].v[1];
            s->calib_road[i].x = c->road[i].v[0];
            s->calib_road[i].y = c->road[i].v[1];
        }
        s->has_calibration = 1;
    }
    if (r->speed_zone) {
        if (r->speed_zone_count < 3 || r->speed_zone_count > ITS_SCENE_MAX_POLY)
            return its_seterr(err, errlen, ITS_ECONFIG,
                              "%s: speed_zone: 3..%d points needed, got %u", o, ITS_SCENE_MAX_POLY,
                              r->speed_zone_count);
        for (unsigned k = 0; k < r->speed_zone_count; k++) {
            s->speed_zone[k].x = r->speed_zone[k].v[0];
            s->speed_zone[k].y = r->speed_zone[k].v[1];
        }
        s->speed_zone_n = (int)r->speed_zone_count;
    }
    if (r->classes) {
        static const char *const gn[ITS_CLS_COUNT] = {"car",        "truck",   "bus",
                                                      "motorcycle", "bicycle", "person"};
        const rclasses *c = r->classes;
        const int *ids[ITS_CLS_COUNT] = {c->car,        c->truck,   c->bus,
                                         c->motorcycle, c->bicycle, c->person};
        const unsigned cnt[ITS_CLS_COUNT] = {c->car_count,     c->truck_count,
                                             c->bus_count,     c->motorcycle_count,
                                             c->bicycle_count, c->person_count};
        memset(s->class_map, -1, sizeof s->class_map);
        for (int g = 0; g < ITS_CLS_COUNT; g++)
            for (unsigned k = 0; ids[g] && k < cnt[g]; k++) {
                int id = ids[g][k];
                if (id < 0 || id > 255)
                    return its_seterr(err, errlen, ITS_ECONFIG,
                                      "%s: classes.%s: class id %d is outside 0..255", o, gn[g],
                                      id);
                if (s->class_map[id] >= 0)
                    return its_seterr(err, errlen, ITS_ECONFIG,
                                      "%s: classes.%s: class id %d is already in group %s", o,
                                      gn[g], id, gn[(int)s->class_map[id]]);
                s->class_map[id] = (signed char)g;
            }
    }
    if (r->lines_count > ITS_SCENE_MAX_LINES)
        return its_seterr(err, errlen, ITS_ECONFIG, "%s: lines: %u lines, at most %d", o,
                          r->lines_count, ITS_SCENE_MAX_LINES);
    for (unsigned i = 0; r->lines && i < r->lines_count; i++) {
        const rline *l = &r->lines[i];
        its_scene_line *d = &s->lines[i];
        if ((rc = copy_name(d->name, l->name, o, "lines", (int)i, err, errlen)) < 0)
            return rc;
        if (!l->points || l->points_count != 2)
            return its_seterr(err, errlen, ITS_ECONFIG,
                              "%s: lines[%u].points: 2 points needed, got %u", o, i,
                              l->points ? l->points_count : 0);
        d->a.x = l->points[0].v[0];
        d->a.y = l->points[0].v[1];
        d->b.x = l->points[1].v[0];
        d->b.y = l->points[1].v[1];
        if (!l->positive || l->positive_count != 2)
            return its_seterr(err, errlen, ITS_ECONFIG,
                              "%s: lines[%u].positive: a direction [dx, dy] is needed", o, i);
        d->positive.x = l->positive[0];
        d->positive.y = l->positive[1];
        d->lanes = l->lanes ? *l->lanes : 1;
    }
    s->n_lines = r->lines ? (int)r->lines_count : 0;
    if (r->zones_count > ITS_SCENE_MAX_ZONES)
        return its_seterr(err, errlen, ITS_ECONFIG, "%s: zones: %u zones, at most %d", o,
                          r->zones_count, ITS_SCENE_MAX_ZONES);
    for (unsigned i = 0; r->zones && i < r->zones_count; i++) {
        const rzone *z = &r->zones[i];
        if ((rc = copy_name(s->zones[i].name, z->name, o, "zones", (int)i, err, errlen)) < 0 ||
            (rc = copy_poly(s->zones[i].poly, &s->zones[i].n, z->polygon, z->polygon_count, o,
                            "zones", (int)i, err, errlen)) < 0)
            return rc;
        s->zones[i].walk = z->walk && *z->walk;
    }
    s->n_zones = r->zones ? (int)r->zones_count : 0;
    if (r->lanes_count > ITS_SCENE_MAX_LANES)
        return its_seterr(err, errlen, ITS_ECONFIG, "%s: lanes: %u lanes, at most %d", o,
                          r->lanes_count, ITS_SCENE_MAX_LANES);
    for (unsigned i = 0; r->lanes && i < r->lanes_count; i++) {
        const rlane *l = &r->lanes[i];
        its_scene_lane *d = &s->lanes[i];
        if ((rc = copy_name(d->name, l->name, o, "lanes", (int)i, err, errlen)) < 0 ||
            (rc = copy_poly(d->poly, &d->n, l->polygon, l->polygon_count, o, "lanes", (int)i, err,
                            errlen)) < 0)
            return rc;
        if (!l->direction || l->direction_count != 2)
            return its_seterr(err, errlen, ITS_ECONFIG,
                              "%s: lanes[%u].direction: a direction [dx, dy] is needed", o, i);
        d->direction.x = l->direction[0];
        d->direction.y = l->direction[1];
        d->stop_line = -1;
        if (l->stop_line) {
            for (int k = 0; k < s->n_lines; k++)
                if (!strcmp(s->lines[k].name, l->stop_line))
                    d->stop_line = k;
            if (d->stop_line < 0)
                return its_seterr(err, errlen, ITS_ECONFIG,
                                  "%s: lanes[%u].stop_line: no line named '%s'", o, i,
                                  l->stop_line);
        }
    }
    s->n_lanes = r->lanes ? (int)r->lanes_count : 0;
    if (r->traffic_classes) {
        if (r->traffic_classes_count < 1 || r->traffic_classes_count > ITS_SCENE_MAX_TCLASSES)
            return its_seterr(err, errlen, ITS_ECONFIG,
                              "%s: traffic_classes: 1..%d classes, got %u", o,
                              ITS_SCENE_MAX_TCLASSES, r->traffic_classes_count);
        for (unsigned i = 0; i < r->traffic_classes_count; i++) {
            const rtclass *c = &r->traffic_classes[i];
            its_traffic_class *d = &s->tclasses[i];
            if ((rc = copy_name(d->name, c->name, o, "traffic_classes", (int)i, err, errlen)) < 0)
                return rc;
            d->kinds = 0;
            for (unsigned k = 0; c->kinds && k < c->kinds_count; k++) {
                int kind = -1;
                for (int j = 0; j < ITS_TK_COUNT; j++)
                    if (!strcmp(c->kinds[k], its_traffic_kind_name(j)))
                        kind = j;
                if (kind < 0)
                    return its_seterr(
                        err, errlen, ITS_ECONFIG,
                        "%s: traffic_classes[%u].kinds: unknown kind '%s' (pedestrian, "
                        "bicycle, motorcycle, car, light_goods, heavy_goods, bus)",
                        o, i, c->kinds[k]);
                d->kinds |= 1u << kind;
            }
        }
        s->n_tclasses = (int)r->traffic_classes_count;
    }
    if (r->analytics) {
        double *pv = &s->params.speed_window_s;
        for (int i = 0; i < N_PARAMS; i++)
            if (r->analytics->v[i])
                pv[i] = *r->analytics->v[i];
    }
    return its_scene_validate(s, o, err, errlen);
}

static int load(const char *path, const char *yaml, size_t len, const char *origin, its_scene *out,
                char *err, size_t errlen)
{
    capture cap = {{0}, {0}};
    cyaml_config_t cc = {.log_fn = capture_log,
                         .log_ctx = &cap,
                         .mem_fn = mem_fn,
                         .log_level = CYAML_LOG_ERROR,
                         .flags = CYAML_CFG_NO_ALIAS};
    rscene *raw = NULL;
    cyaml_err_t ce = path ? cyaml_load_file(path, &cc, &top_schema, (cyaml_data_t **)&raw, NULL)
                          : cyaml_load_data((const uint8_t *)yaml, len, &cc, &top_schema,
                                            (cyaml_data_t **)&raw, NULL);
    if (ce != CYAML_OK) {
        if (ce == CYAML_ERR_FILE_OPEN)
            return its_seterr(err, errlen, ITS_ENOENT, "%s: cannot open: %s", origin,
                              strerror(errno));
        if (ce == CYAML_ERR_OOM)
            return its_seterr(err, errlen, ITS_ENOMEM, "%s: out of memory", origin);
        return its_seterr(err, errlen, ITS_ECONFIG, "%s: %s: %s", origin,
                          cap.path[0] ? cap.path : "(document)",
                          cap.reason[0] ? cap.reason : cyaml_strerror(ce));
    }
    int rc;
    if (!raw) {
        its_scene_default(out);
        rc = its_scene_validate(out, origin, err, errlen);
    } else {
        rc = convert(raw, out, origin, err, errlen);
    }
    cyaml_free(&cc, &top_schema, raw, 0);
    return rc;
}

int its_scene_load(const char *path, its_scene *out, char *err, size_t errlen)
{
    if (!path || !out)
        return its_seterr(err, errlen, ITS_EINVAL, "scene: no file given");
    return load(path, NULL, 0, path, out, err, errlen);
}

int its_scene_load_string(const char *yaml, size_t len, const char *origin, its_scene *out,
                          char *err, size_t errlen)
{
    if (!yaml || !out)
        return its_seterr(err, errlen, ITS_EINVAL, "scene: no document given");
    return load(NULL, yaml, len, origin ? origin : "(string)", out, err, errlen);
}

/* ---- writing ---- */

/* The fewest digits (15, else 17) that read back as the same double. */
static void num_exact(its_json *w, double v)
{
    char b[40];
    snprintf(b, sizeof b, "%.15g", v);
    its_json_numg(w, v, strtod(b, NULL) == v ? 15 : 17);
}

static void pt_json(its_json *w, its_pt p)
{
    its_json_arr_begin(w);
    num_exact(w, p.x);
    num_exact(w, p.y);
    its_json_arr_end(w);
}

static void pts_json(its_json *w, const char *key, const its_pt *p, int n)
{
    its_json_key(w, key);
    its_json_arr_begin(w);
    for (int i = 0; i < n; i++)
        pt_json(w, p[i]);
    its_json_arr_end(w);
}

void its_scene_write(const its_scene *s, its_json *w)
{
    its_json_obj_begin(w);
    its_json_kstr(w, "camera", s->camera);
    its_json_key(w, "fps");
    num_exact(w, s->fps);
    if (s->width_px > 0 && s->height_px > 0) {
        its_json_key(w, "frame");
        its_json_arr_begin(w);
        its_json_int(w, s->width_px);
        its_json_int(w, s->height_px);
        its_json_arr_end(w);
    }
    if (s->has_calibration) {
        its_json_key(w, "calibration");
        its_json_obj_begin(w);
        pts_json(w, "image", s->calib_image, 4);
        pts_json(w, "road", s->calib_road, 4);
        its_json_obj_end(w);
    }
    if (s->speed_zone_n)
        pts_json(w, "speed_zone", s->speed_zone, s->speed_zone_n);
    its_json_key(w, "classes");
    its_json_obj_begin(w);
    for (int g = 0; g < ITS_CLS_COUNT; g++) {
        its_json_key(w, its_class_group_name(g));
        its_json_arr_begin(w);
        for (int id = 0; id < 256; id++)
            if (s->class_map[id] == g)
                its_json_int(w, id);
        its_json_arr_end(w);
    }
    its_json_obj_end(w);
    its_json_key(w, "lines");
    its_json_arr_begin(w);
    for (int i = 0; i < s->n_lines; i++) {
        const its_scene_line *l = &s->lines[i];
        its_json_obj_begin(w);
        its_json_kstr(w, "name", l->name);
        its_json_key(w, "points");
        its_json_arr_begin(w);
        pt_json(w, l->a);
        pt_json(w, l->b);
        its_json_arr_end(w);
        its_json_key(w, "positive");
        pt_json(w, l->positive);
        its_json_kint(w, "lanes", l->lanes);
        its_json_obj_end(w);
    }
    its_json_arr_end(w);
    its_json_key(w, "zones");
    its_json_arr_begin(w);
    for (int i = 0; i < s->n_zones; i++) {
        its_json_obj_begin(w);
        its_json_kstr(w, "name", s->zones[i].name);
        pts_json(w, "polygon", s->zones[i].poly, s->zones[i].n);
        its_json_kbool(w, "walk", s->zones[i].walk);
        its_json_obj_end(w);
    }
    its_json_arr_end(w);
    its_json_key(w, "lanes");
    its_json_arr_begin(w);
    for (int i = 0; i < s->n_lanes; i++) {
        const its_scene_lane *l = &s->lanes[i];
        its_json_obj_begin(w);
        its_json_kstr(w, "name", l->name);
        pts_json(w, "polygon", l->poly, l->n);
        its_json_key(w, "direction");
        pt_json(w, l->direction);
        if (l->stop_line >= 0 && l->stop_line < s->n_lines)
            its_json_kstr(w, "stop_line", s->lines[l->stop_line].name);
        its_json_obj_end(w);
    }
    its_json_arr_end(w);
    its_json_key(w, "traffic_classes");
    its_json_arr_begin(w);
    for (int i = 0; i < s->n_tclasses; i++) {
        its_json_obj_begin(w);
        its_json_kstr(w, "name", s->tclasses[i].name);
        its_json_key(w, "kinds");
        its_json_arr_begin(w);
        for (int k = 0; k < ITS_TK_COUNT; k++)
            if (s->tclasses[i].kinds >> k & 1)
                its_json_str(w, its_traffic_kind_name(k));
        its_json_arr_end(w);
        its_json_obj_end(w);
    }
    its_json_arr_end(w);
    its_json_key(w, "analytics");
    its_json_obj_begin(w);
    const double *pv = (const double *)&s->params;
    for (int i = 0; i < N_PARAMS; i++) {
        its_json_key(w, param_fields[i].key);
        num_exact(w, pv[i]);
    }
    its_json_obj_end(w);
    its_json_obj_end(w);
}

/*
 * Per-camera analytics over tracks. See include/its/analytics.h for the contract and
 * docs/analytics.md for the definitions.
 *
 * State per track lives in a fixed table (open addressing on the track id, backward-shift
 * deletion) sized at create time; per line, rolling windows are rings of buckets (60 of 1 s,
 * 15 of 1 min) summed only when a report is asked for. So a frame costs O(tracks x (lines +
 * zones + lanes)) with no allocation.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "its/alloc.h"
#include "its/analytics.h"
#include "its/error.h"
#include "its/json.h"

#define HIST             64          /* road positions kept per track (2 s at 30 fps) */
#define SPH              16          /* speed samples per track for the sudden-drop test */
#define SP_STEP          250000000LL /* ns between speed samples */
#define NS               1e9
#define B1_N             60
#define B15_N            15
#define MAX_EV_PER_TRACK 4
#define MAX_SPEED_KMH    250.0       /* faster is a measurement error (identity switch, glitch) */
#define EDGE_PX          2.0         /* a box this close to the frame edge is cut off by it */
#define DROP_HOLD_NS     500000000LL /* a speed drop must last this long to be reported */
#define UPDATE_NS        ((int64_t)ITS_EVENT_UPDATE_S * 1000000000LL)
#define PERSON_M         1.7 /* height of a person (a rider with the machine: about the same) */

typedef struct tstate {
    uint32_t id;
    int vgroup;                 /* class group voted for (score-weighted, with a margin) */
    int group;                  /* vgroup, or the two-wheeler a riding person is */
    int kind;                   /* its_traffic_kind */
    float w[ITS_CLS_COUNT];     /* score-weighted class votes */
    double ride_kmh;            /* fastest speed seen (km/h; from box heights uncalibrated) */
    uint32_t on_walk, off_walk; /* frames inside / outside the scene's walking zones */
    double hsum;                /* truck height estimates (m), summed */
    uint32_t hn;
    float box_h;        /* box height now, px */
    its_pt img0, road0; /* anchor when first seen */
    int64_t first_ts, last_ts;
    its_pt img, road;
    its_pt rh[HIST];
    int64_t th[HIST];
    uint32_t hcount; /* positions ever added; entry k lives at k % HIST */
    uint32_t wstart; /* oldest entry inside the speed window */
    double speed;    /* km/h, NaN unknown */
    its_pt vel;      /* road m/s */
    signed char side[ITS_SCENE_MAX_LINES];
    its_pt ref[ITS_SCENE_MAX_LINES];
    uint32_t counted;
    int64_t cross_ts[ITS_SCENE_MAX_LINES];        /* when it was counted at the line */
    signed char cross_dir[ITS_SCENE_MAX_LINES];   /* +1, -1 */
    signed char cross_group[ITS_SCENE_MAX_LINES]; /* the class group and traffic class it */
    signed char cross_tc[ITS_SCENE_MAX_LINES];    /* was counted in (tc -1: none) */
    uint64_t cross_seq[ITS_SCENE_MAX_LINES];      /* its crossing event */
    uint32_t in_zone;
    int64_t zone_enter[ITS_SCENE_MAX_ZONES];
    uint64_t zone_seq[ITS_SCENE_MAX_ZONES];
    int64_t zone_upd[ITS_SCENE_MAX_ZONES];
    uint64_t stopped_seq; /* the stopped-vehicle lifecycle in progress, 0 none */
    int64_t stopped_upd;
    int lane;
    int queued;
    int64_t stopped_since, wrong_since;
    int stopped_fired, wrong_fired, drop_fired;
    int64_t drop_since;
    float sp[SPH];
    int64_t spt[SPH];
    int spn, sph;
    int64_t sp_last;
    double sp_max; /* max of the samples inside the drop window, updated per sample */
} tstate;

typedef struct bucket {
    int64_t idx;
    uint32_t count[ITS_CLS_COUNT][2];
    uint32_t traffic[ITS_SCENE_MAX_TCLASSES][2];
    double inv_speed_sum;
    uint32_t n_speed;
    double headway_sum, headway_min;
    uint32_t n_headway;
} bucket;

typedef struct lstate {
    bucket b1[B1_N];
    bucket b15[B15_N];
    int64_t last_cross_ts;
    int has_last_cross;
    uint32_t total[ITS_CLS_COUNT][2];
    uint32_t traffic_total[ITS_SCENE_MAX_TCLASSES][2];
    its_forecast fc;
    int64_t minute;
    uint32_t minute_vehicles;
    /* geometry */
    its_pt u, n;
    double len;
} lstate;

/* Bounding box of a polygon, tested before the polygon itself. */
typedef struct bbox {
    double x0, y0, x1, y1;
} bbox;

static bbox poly_bbox(const its_pt *p, int n)
{
    bbox b = {p[0].x, p[0].y, p[0].x, p[0].y};
    for (int i = 1; i < n; i++) {
        b.x0 = p[i].x < b.x0 ? p[i].x : b.x0;
        b.x1 = p[i].x > b.x1 ? p[i].x : b.x1;
        b.y0 = p[i].y < b.y0 ? p[i].y : b.y0;
        b.y1 = p[i].y > b.y1 ? p[i].y : b.y1;
    }
    return b;
}

static int in_bbox(const bbox *b, its_pt q)
{
    return q.x >= b->x0 && q.x <= b->x1 && q.y >= b->y0 && q.y <= b->y1;
}

typedef struct zstate {
    bbox box;
    int count;
    int64_t occupied_ns, total_ns;
    uint64_t entries;
    double dwell_sum, dwell_max;
    uint64_t dwell_n;
} zstate;

typedef struct xkey {
    float x;
    int i;
} xkey;

typedef struct qitem {
    double d;
    int slot;
} qitem;

typedef struct lanestate {
    bbox box;
    its_pt stop_a, stop_b; /* road */
    its_pt dir;            /* road unit travel direction */
    double queue_m, queue_max;
    int queue_n;
    uint64_t queue_seq; /* the queue lifecycle in progress, 0 none */
    int64_t queue_upd;
} lanestate;

struct its_analytics {
    its_scene sc;
    its_tracker_t *trk;
    int max_tracks, max_dets;
    int fw, fh; /* frame size (push, else the scene's), 0 unknown */
    bbox speed_box;
    its_det *dbuf; /* push: the frame's detections after duplicate removal */
    xkey *xkeys, *xkeys_tmp;
    unsigned char *drop;
    int *dmap;       /* dbuf index -> index in the caller's frame */
    its_track *tbuf; /* push: tracks with det_index mapped back to the caller's frame */
    tstate *st;
    int *hidx; /* slot + 1, 0 empty */
    uint32_t hmask;
    int *live;
    int n_live;
    int *free_slots;
    int n_free;
    lstate lines[ITS_SCENE_MAX_LINES];
    zstate zones[ITS_SCENE_MAX_ZONES];
    lanestate lanes[ITS_SCENE_MAX_LANES];
    int64_t t0, last_ts;
    /* restored from a checkpoint (its_analytics_checkpoint_restore): the stream time its
     * first frame continues at, and the frames analysed before */
    int resumed;
    int64_t resume_ns;
    uint64_t frames_before;
    uint64_t frames, refused, ev_dropped, tr_dropped, dups, riders, moved;
    signed char kind_tc[ITS_TK_COUNT]; /* traffic kind -> the scene's traffic class, -1 */
    int has_walk;                      /* the scene marks walking zones */
    float *rider_best;                 /* push: per detection, best rider overlap so far */
    int *rider_of;                     /* push: per detection, the two-wheeler it rides, -1 */
    uint64_t incidents[ITS_EV_COUNT];
    uint64_t ev_seq; /* last event number given */
    /* per frame */
    its_event *ev;
    int n_ev, max_ev;
    float *speed_out;
    signed char *lane_out;
    signed char *group_out, *tclass_out;
    qitem *q;
    its_analytics_frame fr;
    double mean_speed;
    int tracks_now;
};

static const char *const group_names[ITS_CLS_COUNT] = {"car",        "truck",   "bus",
                                                       "motorcycle", "bicycle", "person"};

const char *its_class_group_name(int g)
{
    return g >= 0 && g < ITS_CLS_COUNT ? group_names[g] : "other";
}

const char *its_traffic_kind_name(int k)
{
    static const char *const n[ITS_TK_COUNT] = {"pedestrian",  "bicycle",     "motorcycle", "car",
                                                "light_goods", "heavy_goods", "bus"};
    return k >= 0 && k < ITS_TK_COUNT ? n[k] : NULL;
}

const char *its_event_type_name(its_event_type t)
{
    static const char *const n[ITS_EV_COUNT] = {"line_crossing",   "zone_presence", "queue",
                                                "stopped_vehicle", "wrong_way",     "speed_drop"};
    return (unsigned)t < ITS_EV_COUNT ? n[t] : "unknown";
}

const char *its_event_phase_name(its_event_phase p)
{
    static const char *const n[] = {NULL, "start", "update", "end"};
    return (unsigned)p < sizeof n / sizeof n[0] ? n[p] : NULL;
}

char its_los_from_density(double d)
{
    /* HCM 6th ed., Exhibit 12-15 (basic freeway segments), pc/mi/ln. */
    static const double lim[5] = {11, 18, 26, 35, 45};
    if (!isfinite(d))
        return '?';
    double per_mile = d * 1.609344;
    for (int i = 0; i < 5; i++)
        if (per_mile <= lim[i])
            return (char)('A' + i);
    return 'F';
}

static int is_vehicle(int g)
{
    return g >= ITS_CLS_CAR && g <= ITS_CLS_MOTORCYCLE;
}

/* ---- track table ---- */

static uint32_t hash_id(uint32_t id)
{
    return id * 2654435761u;
}

static int find_slot(const its_analytics_t *a, uint32_t id)
{
    for (uint32_t h = hash_id(id) & a->hmask;; h = (h + 1) & a->hmask) {
        int v = a->hidx[h];
        if (!v)
            return -1;
        if (a->st[v - 1].id == id)
            return v - 1;
    }
}

static void hash_insert(its_analytics_t *a, uint32_t id, int slot)
{
    uint32_t h = hash_id(id) & a->hmask;
    while (a->hidx[h])
        h = (h + 1) & a->hmask;
    a->hidx[h] = slot + 1;
}

/* Linear probing deletion by backward shift: no tombstones, so lookups never slow down. */
static void hash_remove(its_analytics_t *a, uint32_t id)
{
    uint32_t h = hash_id(id) & a->hmask;
    while (a->hidx[h] && a->st[a->hidx[h] - 1].id != id)
        h = (h + 1) & a->hmask;
    if (!a->hidx[h])
        return;
    uint32_t hole = h;
    for (uint32_t j = (h + 1) & a->hmask; a->hidx[j]; j = (j + 1) & a->hmask) {
        uint32_t home = hash_id(a->st[a->hidx[j] - 1].id) & a->hmask;
        /* move j into the hole unless its home lies cyclically in (hole, j] */
        int in_range = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!in_range) {
            a->hidx[hole] = a->hidx[j];
            hole = j;
        }
    }
    a->hidx[hole] = 0;
}

/* ---- lifecycle ---- */

void its_analytics_destroy(its_analytics_t *a)
{
    if (!a)
        return;
    its_tracker_destroy(a->trk);
    its_free(a->st);
    its_free(a->hidx);
    its_free(a->live);
    its_free(a->free_slots);
    its_free(a->ev);
    its_free(a->speed_out);
    its_free(a->lane_out);
    its_free(a->group_out);
    its_free(a->tclass_out);
    its_free(a->q);
    its_free(a->dbuf);
    its_free(a->xkeys);
    its_free(a->xkeys_tmp);
    its_free(a->drop);
    its_free(a->dmap);
    its_free(a->tbuf);
    its_free(a->rider_best);
    its_free(a->rider_of);
    its_free(a);
}

/* A counting line's state from nothing: its geometry, empty windows, a new forecast. */
static void line_init(its_analytics_t *a, int i)
{
    lstate *l = &a->lines[i];
    const its_scene_line *sl = &a->sc.lines[i];
    memset(l, 0, sizeof *l);
    l->len = hypot(sl->b.x - sl->a.x, sl->b.y - sl->a.y);
    l->u.x = (sl->b.x - sl->a.x) / l->len;
    l->u.y = (sl->b.y - sl->a.y) / l->len;
    l->n.x = -l->u.y;
    l->n.y = l->u.x;
    for (int k = 0; k < B1_N; k++)
        l->b1[k].idx = -1;
    for (int k = 0; k < B15_N; k++)
        l->b15[k].idx = -1;
    its_forecast_init(&l->fc, a->sc.params.forecast_alpha, a->sc.params.forecast_beta);
}

/* What follows from the scene but the lines' state: traffic classes, zone and lane boxes,
 * the lanes' road geometry (their queue state starts empty). */
static void scene_derived(its_analytics_t *a)
{
    const its_scene *s = &a->sc;
    memset(a->kind_tc, -1, sizeof a->kind_tc);
    for (int c = 0; c < s->n_tclasses; c++)
        for (int k = 0; k < ITS_TK_COUNT; k++)
            if (s->tclasses[c].kinds >> k & 1)
                a->kind_tc[k] = (signed char)c;
    a->has_walk = 0;
    for (int i = 0; i < s->n_zones; i++)
        a->has_walk |= s->zones[i].walk;
    for (int i = 0; i < s->n_zones; i++)
        a->zones[i].box = poly_bbox(s->zones[i].poly, s->zones[i].n);
    if (s->speed_zone_n)
        a->speed_box = poly_bbox(s->speed_zone, s->speed_zone_n);
    for (int i = 0; i < s->n_lanes; i++) {
        lanestate *ls = &a->lanes[i];
        const its_scene_lane *sl = &s->lanes[i];
        memset(ls, 0, sizeof *ls);
        ls->box = poly_bbox(sl->poly, sl->n);
        ls->queue_m = ls->queue_max = NAN;
        its_pt c = {0, 0};
        for (int k = 0; k < sl->n; k++) {
            c.x += sl->poly[k].x / sl->n;
            c.y += sl->poly[k].y / sl->n;
        }
        double dl = hypot(sl->direction.x, sl->direction.y);
        its_pt c2 = {c.x + sl->direction.x / dl * 10, c.y + sl->direction.y / dl * 10};
        its_pt r1 = its_scene_to_road(s, c), r2 = its_scene_to_road(s, c2);
        double rl = hypot(r2.x - r1.x, r2.y - r1.y);
        ls->dir.x = rl > 0 ? (r2.x - r1.x) / rl : 0;
        ls->dir.y = rl > 0 ? (r2.y - r1.y) / rl : 0;
        if (sl->stop_line >= 0) {
            ls->stop_a = its_scene_to_road(s, s->lines[sl->stop_line].a);
            ls->stop_b = its_scene_to_road(s, s->lines[sl->stop_line].b);
        }
    }
}

int its_analytics_create(const its_scene *scene, const its_tracker_params *tp,
                         its_analytics_t **out)
{
    if (!scene || !out)
        return ITS_EINVAL;
    its_analytics_t *a = its_calloc(ITS_MOD_ANALYTICS, 1, sizeof *a);
    if (!a)
        return ITS_ENOMEM;
    a->sc = *scene;
    if (its_scene_validate(&a->sc, "scene", NULL, 0) < 0) {
        its_free(a);
        return ITS_EINVAL;
    }
    its_tracker_params p;
    if (tp) {
        p = *tp;
    } else {
        its_tracker_params_default(&p);
        p.frame_rate = (float)scene->fps;
    }
    int rc = its_tracker_create(&p, &a->trk);
    if (rc < 0) {
        its_free(a);
        return rc;
    }
    int mt = p.max_tracks;
    a->max_tracks = mt;
    uint32_t hcap = 1;
    while (hcap < (uint32_t)mt * 2)
        hcap <<= 1;
    a->hmask = hcap - 1;
    a->max_ev = mt * MAX_EV_PER_TRACK + 64;
    a->st = its_calloc(ITS_MOD_ANALYTICS, (size_t)mt, sizeof *a->st);
    a->hidx = its_calloc(ITS_MOD_ANALYTICS, hcap, sizeof(int));
    a->live = its_malloc(ITS_MOD_ANALYTICS, (size_t)mt * sizeof(int));
    a->free_slots = its_malloc(ITS_MOD_ANALYTICS, (size_t)mt * sizeof(int));
    a->ev = its_malloc(ITS_MOD_ANALYTICS, (size_t)a->max_ev * sizeof(its_event));
    a->speed_out = its_malloc(ITS_MOD_ANALYTICS, (size_t)mt * sizeof(float));
    a->lane_out = its_malloc(ITS_MOD_ANALYTICS, (size_t)mt);
    a->group_out = its_malloc(ITS_MOD_ANALYTICS, (size_t)mt);
    a->tclass_out = its_malloc(ITS_MOD_ANALYTICS, (size_t)mt);
    a->q = its_malloc(ITS_MOD_ANALYTICS, (size_t)mt * sizeof(qitem));
    a->max_dets = p.max_dets;
    a->fw = scene->width_px;
    a->fh = scene->height_px;
    a->dbuf = its_malloc(ITS_MOD_ANALYTICS, (size_t)p.max_dets * sizeof(its_det));
    a->dmap = its_malloc(ITS_MOD_ANALYTICS, (size_t)p.max_dets * sizeof(int));
    a->xkeys = its_malloc(ITS_MOD_ANALYTICS, (size_t)p.max_dets * sizeof(xkey));
    a->xkeys_tmp = its_malloc(ITS_MOD_ANALYTICS, (size_t)p.max_dets * sizeof(xkey));
    a->drop = its_malloc(ITS_MOD_ANALYTICS, (size_t)p.max_dets);
    a->tbuf = its_malloc(ITS_MOD_ANALYTICS, (size_t)mt * sizeof(its_track));
    a->rider_best = its_malloc(ITS_MOD_ANALYTICS, (size_t)p.max_dets * sizeof(float));
    a->rider_of = its_malloc(ITS_MOD_ANALYTICS, (size_t)p.max_dets * sizeof(int));
    if (!a->st || !a->hidx || !a->live || !a->free_slots || !a->ev || !a->speed_out ||
        !a->lane_out || !a->q || !a->dbuf || !a->dmap || !a->tbuf || !a->xkeys || !a->xkeys_tmp ||
        !a->drop || !a->rider_best || !a->rider_of || !a->group_out || !a->tclass_out) {
        its_analytics_destroy(a);
        return ITS_ENOMEM;
    }
    a->n_free = mt;
    for (int i = 0; i < mt; i++)
        a->free_slots[i] = mt - 1 - i;
    for (int i = 0; i < a->sc.n_lines; i++)
        line_init(a, i);
    scene_derived(a);
    *out = a;
    return 0;
}

static int same_pt(its_pt p, its_pt q)
{
    return p.x == q.x && p.y == q.y;
}

static int same_line(const its_scene_line *p, const its_scene_line *q)
{
    return !strcmp(p->name, q->name) && same_pt(p->a, q->a) && same_pt(p->b, q->b) &&
           same_pt(p->positive, q->positive) && p->lanes == q->lanes;
}

static int same_zone(const its_scene_zone *p, const its_scene_zone *q)
{
    if (strcmp(p->name, q->name) || p->n != q->n || p->walk != q->walk)
        return 0;
    for (int i = 0; i < p->n; i++)
        if (!same_pt(p->poly[i], q->poly[i]))
            return 0;
    return 1;
}

int its_analytics_set_scene(its_analytics_t *a, const its_scene *scene,
                            int line_map[ITS_SCENE_MAX_LINES])
{
    if (!a || !scene)
        return ITS_EINVAL;
    its_scene sc = *scene;
    if (its_scene_validate(&sc, "scene", NULL, 0) < 0)
        return ITS_EINVAL;
    const its_scene *os = &a->sc;
    int lmap[ITS_SCENE_MAX_LINES], zmap[ITS_SCENE_MAX_ZONES];
    unsigned used = 0;
    for (int i = 0; i < sc.n_lines; i++) {
        lmap[i] = -1;
        for (int j = 0; j < os->n_lines && lmap[i] < 0; j++)
            if (!(used >> j & 1) && same_line(&sc.lines[i], &os->lines[j])) {
                lmap[i] = j;
                used |= 1u << j;
            }
    }
    used = 0;
    for (int i = 0; i < sc.n_zones; i++) {
        zmap[i] = -1;
        for (int j = 0; j < os->n_zones && zmap[i] < 0; j++)
            if (!(used >> j & 1) && same_zone(&sc.zones[i], &os->zones[j])) {
                zmap[i] = j;
                used |= 1u << j;
            }
    }
    int same_tc =
        sc.n_tclasses == os->n_tclasses && !memcmp(sc.tclasses, os->tclasses, sizeof sc.tclasses);
    int same_cal = sc.has_calibration == os->has_calibration &&
                   !memcmp(sc.calib_image, os->calib_image, sizeof sc.calib_image) &&
                   !memcmp(sc.calib_road, os->calib_road, sizeof sc.calib_road);
    /* the lines and zones kept, at their new indices */
    static const lstate no_line;
    lstate old_lines[ITS_SCENE_MAX_LINES];
    zstate old_zones[ITS_SCENE_MAX_ZONES];
    memcpy(old_lines, a->lines, sizeof old_lines);
    memcpy(old_zones, a->zones, sizeof old_zones);
    a->sc = sc;
    for (int i = 0; i < ITS_SCENE_MAX_LINES; i++)
        a->lines[i] = no_line;
    for (int i = 0; i < sc.n_lines; i++) {
        if (lmap[i] < 0) {
            line_init(a, i);
            continue;
        }
        a->lines[i] = old_lines[lmap[i]];
        if (!same_tc) { /* counts by traffic class start again with the new classification */
            lstate *l = &a->lines[i];
            memset(l->traffic_total, 0, sizeof l->traffic_total);
            for (int k = 0; k < B1_N; k++)
                memset(l->b1[k].traffic, 0, sizeof l->b1[k].traffic);
            for (int k = 0; k < B15_N; k++)
                memset(l->b15[k].traffic, 0, sizeof l->b15[k].traffic);
        }
    }
    memset(a->zones, 0, sizeof a->zones);
    for (int i = 0; i < sc.n_zones; i++)
        if (zmap[i] >= 0)
            a->zones[i] = old_zones[zmap[i]];
    scene_derived(a);
    /* every live track: its state at the kept lines and zones moves with them; at new lines
     * it has no side yet (its next position sets it), in new zones it is not yet */
    for (int k = 0; k < a->n_live; k++) {
        tstate *t = &a->st[a->live[k]], o = *t;
        t->counted = 0;
        t->in_zone = 0;
        for (int i = 0; i < sc.n_lines; i++) {
            int j = lmap[i];
            t->side[i] = j >= 0 ? o.side[j] : 0;
            t->ref[i] = j >= 0 ? o.ref[j] : (its_pt){0, 0};
            t->cross_ts[i] = j >= 0 ? o.cross_ts[j] : 0;
            t->cross_dir[i] = j >= 0 ? o.cross_dir[j] : 0;
            t->cross_group[i] = j >= 0 ? o.cross_group[j] : 0;
            t->cross_tc[i] = j >= 0 && same_tc ? o.cross_tc[j] : -1;
            t->cross_seq[i] = j >= 0 ? o.cross_seq[j] : 0;
            if (j >= 0 && (o.counted >> j & 1))
                t->counted |= 1u << i;
        }
        for (int i = 0; i < sc.n_zones; i++) {
            int j = zmap[i];
            t->zone_enter[i] = j >= 0 ? o.zone_enter[j] : 0;
            t->zone_seq[i] = j >= 0 ? o.zone_seq[j] : 0;
            t->zone_upd[i] = j >= 0 ? o.zone_upd[j] : 0;
            if (j >= 0 && (o.in_zone >> j & 1))
                t->in_zone |= 1u << i;
        }
        t->lane = -1;
        t->queued = 0;
        if (!same_cal) { /* road positions of the old calibration mean nothing now */
            t->road = t->road0 = its_scene_to_road(&a->sc, t->img);
            t->hcount = t->wstart = 0;
            t->speed = NAN;
            t->vel.x = t->vel.y = 0;
            t->spn = t->sph = 0;
        }
    }
    if (line_map)
        memcpy(line_map, lmap, sizeof lmap);
    return 0;
}

/* ---- helpers ---- */

static int point_in_poly(const its_pt *p, int n, its_pt q)
{
    int in = 0;
    for (int i = 0, j = n - 1; i < n; j = i++) {
        if ((p[i].y > q.y) != (p[j].y > q.y)) {
            double x = p[j].x + (q.y - p[j].y) * (p[i].x - p[j].x) / (p[i].y - p[j].y);
            if (q.x < x)
                in = !in;
        }
    }
    return in;
}

/* An event of track t (NULL: of no one track). seq 0 takes the next number (instant events
 * and starts); an update or end passes its start's. An event that does not fit this frame's
 * buffer is counted as dropped, its number is still used. */
static its_event *emit_seq(its_analytics_t *a, its_event_type type, its_event_phase phase,
                           uint64_t seq, const tstate *t, int index, int64_t ts)
{
    if (!seq)
        seq = ++a->ev_seq;
    if (type >= ITS_EV_STOPPED_VEHICLE && phase <= ITS_PHASE_START)
        a->incidents[type]++;
    if (a->n_ev == a->max_ev) {
        a->ev_dropped++;
        return NULL;
    }
    its_event *e = &a->ev[a->n_ev++];
    *e = (its_event){.type = type,
                     .phase = phase,
                     .seq = seq,
                     .track_id = t ? t->id : 0,
                     .group = t ? t->group : ITS_CLS_CAR,
                     .tclass = t ? a->kind_tc[t->kind] : a->kind_tc[ITS_TK_CAR],
                     .index = index,
                     .speed_kmh = t ? t->speed : NAN,
                     .value = NAN,
                     .ts_ns = ts};
    return e;
}

static its_event *emit(its_analytics_t *a, its_event_type type, const tstate *t, int index,
                       int64_t ts)
{
    return emit_seq(a, type, ITS_PHASE_NONE, 0, t, index, ts);
}

/* The next step of a lifecycle: a start when *seq is 0 (which then takes its number), else an
 * update or, with end set, the end (and *seq back to 0). */
static its_event *lifecycle(its_analytics_t *a, its_event_type type, uint64_t *seq, int end,
                            const tstate *t, int index, int64_t ts)
{
    its_event_phase ph = !*seq ? ITS_PHASE_START : end ? ITS_PHASE_END : ITS_PHASE_UPDATE;
    if (!*seq)
        *seq = ++a->ev_seq;
    its_event *e = emit_seq(a, type, ph, *seq, t, index, ts);
    if (end)
        *seq = 0;
    return e;
}

static bucket *get_bucket(bucket *ring, int n, int64_t idx)
{
    bucket *b = &ring[idx % n];
    if (b->idx != idx) {
        memset(b, 0, sizeof *b);
        b->idx = idx;
        b->headway_min = INFINITY;
    }
    return b;
}

static void add_crossing(its_analytics_t *a, lstate *l, const tstate *t, int dir, int64_t ts)
{
    int64_t rel = ts - a->t0;
    bucket *bs[2] = {get_bucket(l->b1, B1_N, rel / (int64_t)NS),
                     get_bucket(l->b15, B15_N, rel / (int64_t)(60 * NS))};
    int di = dir > 0 ? 0 : 1;
    int tc = a->kind_tc[t->kind];
    l->total[t->group][di]++;
    if (tc >= 0)
        l->traffic_total[tc][di]++;
    double hw = NAN;
    if (is_vehicle(t->group)) {
        if (l->has_last_cross)
            hw = (double)(ts - l->last_cross_ts) / NS;
        l->last_cross_ts = ts;
        l->has_last_cross = 1;
        l->minute_vehicles++;
    }
    for (int k = 0; k < 2; k++) {
        bucket *b = bs[k];
        b->count[t->group][di]++;
        if (tc >= 0)
            b->traffic[tc][di]++;
        if (!is_vehicle(t->group))
            continue;
        if (isfinite(t->speed) && t->speed > 1) {
            b->inv_speed_sum += 1.0 / t->speed;
            b->n_speed++;
        }
        if (isfinite(hw)) {
            b->headway_sum += hw;
            b->n_headway++;
            if (hw < b->headway_min)
                b->headway_min = hw;
        }
    }
}

/* A counted crossing moves from one class (group, traffic class) to another: in the totals,
 * and in the window buckets of its time while they still hold it. */
static void move_crossing(its_analytics_t *a, lstate *l, int64_t ts, int dir, int og, int otc,
                          int ng, int ntc)
{
    int64_t rel = ts - a->t0;
    int di = dir > 0 ? 0 : 1;
    bucket *bs[2] = {&l->b1[(rel / (int64_t)NS) % B1_N],
                     &l->b15[(rel / (int64_t)(60 * NS)) % B15_N]};
    int64_t idx[2] = {rel / (int64_t)NS, rel / (int64_t)(60 * NS)};
    l->total[og][di]--;
    l->total[ng][di]++;
    if (otc >= 0)
        l->traffic_total[otc][di]--;
    if (ntc >= 0)
        l->traffic_total[ntc][di]++;
    for (int k = 0; k < 2; k++) {
        bucket *b = bs[k];
        if (b->idx != idx[k])
            continue;
        b->count[og][di]--;
        b->count[ng][di]++;
        if (otc >= 0)
            b->traffic[otc][di]--;
        if (ntc >= 0)
            b->traffic[ntc][di]++;
    }
}

/* The track's class group and traffic kind from its votes and what it did: a person riding
 * (fast, or off the walking zones a scene marks) is a two-wheeler; a truck's height decides
 * light or heavy goods. A crossing already counted follows a change. */
static void classify(its_analytics_t *a, tstate *t, int64_t ts)
{
    const its_analytics_params *p = &a->sc.params;
    int g = t->vgroup, kind;
    if (g == ITS_CLS_PERSON && ((p->rider_speed_kmh > 0 && t->ride_kmh >= p->rider_speed_kmh) ||
                                (a->has_walk && t->off_walk > t->on_walk)))
        /* the machine: the two-wheeler the detector saw under it, if it ever did; else
         * guessed from its speed */
        g = t->w[ITS_CLS_MOTORCYCLE] > t->w[ITS_CLS_BICYCLE]   ? ITS_CLS_MOTORCYCLE
            : t->w[ITS_CLS_BICYCLE] > t->w[ITS_CLS_MOTORCYCLE] ? ITS_CLS_BICYCLE
            : t->ride_kmh >= p->motorcycle_speed_kmh           ? ITS_CLS_MOTORCYCLE
                                                               : ITS_CLS_BICYCLE;
    switch (g) {
    case ITS_CLS_PERSON:
        kind = ITS_TK_PEDESTRIAN;
        break;
    case ITS_CLS_BICYCLE:
        kind = ITS_TK_BICYCLE;
        break;
    case ITS_CLS_MOTORCYCLE:
        kind = ITS_TK_MOTORCYCLE;
        break;
    case ITS_CLS_BUS:
        kind = ITS_TK_BUS;
        break;
    case ITS_CLS_TRUCK:
        kind = t->hn && t->hsum / t->hn >= p->heavy_goods_height_m ? ITS_TK_HEAVY_GOODS
                                                                   : ITS_TK_LIGHT_GOODS;
        break;
    default:
        kind = ITS_TK_CAR;
        break;
    }
    if (g == t->group && kind == t->kind)
        return;
    t->group = g;
    t->kind = kind;
    int tc = a->kind_tc[kind];
    for (int i = 0; i < a->sc.n_lines; i++) {
        if (!(t->counted >> i & 1) || (t->cross_group[i] == g && t->cross_tc[i] == tc))
            continue;
        move_crossing(a, &a->lines[i], t->cross_ts[i], t->cross_dir[i], t->cross_group[i],
                      t->cross_tc[i], g, tc);
        t->cross_group[i] = (signed char)g;
        t->cross_tc[i] = (signed char)tc;
        a->moved++;
        /* the crossing's event again, same number, its new class */
        its_event *e =
            emit_seq(a, ITS_EV_LINE_CROSSING, ITS_PHASE_UPDATE, t->cross_seq[i], t, i, ts);
        if (e)
            e->direction = t->cross_dir[i];
    }
}

/* Kinematics from the road-position history: displacement over the speed window. The start
 * of the window only moves forward, so finding it is O(1) amortised per frame. */
static void update_speed(its_analytics_t *a, tstate *t, int64_t ts, int clipped)
{
    if (clipped) {
        /* The box is cut by the frame edge: its bottom centre is not where the vehicle
         * touches the road, so it is kept out of the history and no speed is given. */
        t->speed = NAN;
        t->vel.x = t->vel.y = 0;
        return;
    }
    uint32_t k = t->hcount++;
    t->rh[k % HIST] = t->road;
    t->th[k % HIST] = ts;
    t->speed = NAN;
    t->vel.x = t->vel.y = 0;
    if (!a->sc.has_calibration)
        return;
    int64_t win = (int64_t)(a->sc.params.speed_window_s * NS);
    if (t->hcount - t->wstart > HIST)
        t->wstart = t->hcount - HIST;
    while (t->wstart < k && ts - t->th[t->wstart % HIST] > win)
        t->wstart++;
    if (t->wstart == k)
        return;
    const its_pt *o = &t->rh[t->wstart % HIST];
    double dt = (double)(ts - t->th[t->wstart % HIST]) / NS;
    if (dt < a->sc.params.speed_window_s * 0.5)
        return;
    t->vel.x = (t->road.x - o->x) / dt;
    t->vel.y = (t->road.y - o->y) / dt;
    t->speed = sqrt(t->vel.x * t->vel.x + t->vel.y * t->vel.y) * 3.6;
    if (t->speed > MAX_SPEED_KMH) {
        t->speed = NAN;
        t->vel.x = t->vel.y = 0;
    }
}

/* One position of the track against line i: p with dead band `band` either side. init: the
 * first position of the track (sets the side, counts nothing). */
static void line_point(its_analytics_t *a, tstate *t, int i, its_pt p, double band, int init,
                       int64_t ts)
{
    lstate *l = &a->lines[i];
    const its_scene_line *sl = &a->sc.lines[i];
    double d = (p.x - sl->a.x) * l->n.x + (p.y - sl->a.y) * l->n.y;
    int side = d > band ? 1 : d < -band ? -1 : 0;
    if (!side)
        return;
    if (init || t->side[i] == 0 || side == t->side[i]) {
        t->side[i] = (signed char)side;
        t->ref[i] = p;
        return;
    }
    /* Side changed: where did the path ref -> p meet the line? */
    its_pt r = t->ref[i];
    double dr = (r.x - sl->a.x) * l->n.x + (r.y - sl->a.y) * l->n.y;
    double f = dr / (dr - d);
    its_pt x = {r.x + f * (p.x - r.x), r.y + f * (p.y - r.y)};
    double along = (x.x - sl->a.x) * l->u.x + (x.y - sl->a.y) * l->u.y;
    if (along >= -band && along <= l->len + band && !(t->counted & (1u << i))) {
        double m = (p.x - r.x) * sl->positive.x + (p.y - r.y) * sl->positive.y;
        int dir = m > 0 ? 1 : -1;
        t->counted |= 1u << i;
        t->cross_ts[i] = ts;
        t->cross_dir[i] = (signed char)dir;
        t->cross_group[i] = (signed char)t->group;
        t->cross_tc[i] = a->kind_tc[t->kind];
        add_crossing(a, l, t, dir, ts);
        its_event *e = emit(a, ITS_EV_LINE_CROSSING, t, i, ts);
        t->cross_seq[i] = a->ev_seq;
        if (e)
            e->direction = dir;
    }
    t->side[i] = (signed char)side;
    t->ref[i] = p;
}

/* origin: the anchor of the detection that started the track (fresh tracks; NULL none). */
static void update_lines(its_analytics_t *a, tstate *t, int64_t ts, int fresh, const its_pt *origin,
                         double origin_h)
{
    const its_scene *s = &a->sc;
    double hyst = s->params.line_hysteresis_px, m = s->params.crossing_margin;
    double band = fmax(hyst, m * t->box_h), oband = fmax(hyst, m * origin_h);
    for (int i = 0; i < s->n_lines; i++) {
        if (origin)
            line_point(a, t, i, *origin, oband, 1, ts);
        line_point(a, t, i, t->img, band, fresh && !origin, ts);
    }
}

/* What says a person track is riding: its speed and whether it keeps to the walking zones. The
 * speed: the measured one where there is one, else its mean since first seen (at least half a
 * second), on the road (also outside the speed zone: a rough figure is enough to tell a rider
 * from a walker) or without a calibration in box heights per second. */
static void person_evidence(its_analytics_t *a, tstate *t, int64_t ts)
{
    const its_scene *s = &a->sc;
    double v = isfinite(t->speed) ? t->speed : 0, dt = (double)(ts - t->first_ts) / NS;
    if (dt >= 0.5) {
        double m = s->has_calibration ? hypot(t->road.x - t->road0.x, t->road.y - t->road0.y)
                                      : hypot(t->img.x - t->img0.x, t->img.y - t->img0.y) /
                                            fmax(t->box_h, 1) * PERSON_M;
        double mean = m / dt * 3.6;
        if (mean < MAX_SPEED_KMH && mean > v)
            v = mean;
    }
    if (v > t->ride_kmh)
        t->ride_kmh = v;
    if (!a->has_walk)
        return;
    int walk = 0;
    for (int i = 0; i < s->n_zones && !walk; i++)
        walk = s->zones[i].walk && in_bbox(&a->zones[i].box, t->img) &&
               point_in_poly(s->zones[i].poly, s->zones[i].n, t->img);
    if (walk)
        t->on_walk++;
    else
        t->off_walk++;
}

/* A truck's height from its box: pixels times the road's metres per pixel across its bottom
 * edge (an upright face at that distance has about that scale). */
static void truck_height(its_analytics_t *a, tstate *t, const its_track *tr)
{
    its_pt l = its_scene_to_road(&a->sc, (its_pt){tr->x1, tr->y2});
    its_pt r = its_scene_to_road(&a->sc, (its_pt){tr->x2, tr->y2});
    double w = tr->x2 - tr->x1, mpp = hypot(r.x - l.x, r.y - l.y) / w;
    if (w > 1 && isfinite(mpp)) {
        t->hsum += (tr->y2 - tr->y1) * mpp;
        t->hn++;
    }
}

static void zone_exit(its_analytics_t *a, tstate *t, int i, int64_t ts)
{
    zstate *z = &a->zones[i];
    double dwell = (double)(ts - t->zone_enter[i]) / NS;
    t->in_zone &= ~(1u << i);
    z->count--;
    z->dwell_sum += dwell;
    z->dwell_n++;
    if (dwell > z->dwell_max)
        z->dwell_max = dwell;
    its_event *e = lifecycle(a, ITS_EV_ZONE_PRESENCE, &t->zone_seq[i], 1, t, i, ts);
    if (e)
        e->value = dwell;
}

static void update_zones(its_analytics_t *a, tstate *t, int64_t ts)
{
    const its_scene *s = &a->sc;
    for (int i = 0; i < s->n_zones; i++) {
        int in = in_bbox(&a->zones[i].box, t->img) &&
                 point_in_poly(s->zones[i].poly, s->zones[i].n, t->img);
        int was = (t->in_zone >> i) & 1;
        if (in && !was) {
            t->in_zone |= 1u << i;
            t->zone_enter[i] = ts;
            t->zone_upd[i] = ts;
            a->zones[i].count++;
            a->zones[i].entries++;
            its_event *e = lifecycle(a, ITS_EV_ZONE_PRESENCE, &t->zone_seq[i], 0, t, i, ts);
            if (e)
                e->value = 0;
        } else if (!in && was) {
            zone_exit(a, t, i, ts);
        } else if (in && ts - t->zone_upd[i] >= UPDATE_NS) {
            t->zone_upd[i] = ts;
            its_event *e = lifecycle(a, ITS_EV_ZONE_PRESENCE, &t->zone_seq[i], 0, t, i, ts);
            if (e)
                e->value = (double)(ts - t->zone_enter[i]) / NS;
        }
    }
}

/* Speed samples every SP_STEP for the sudden-drop test; the maximum over the drop window is
 * refreshed when a sample is added (so a sample may count up to SP_STEP past the window). */
static void sample_speed(its_analytics_t *a, tstate *t, int64_t ts)
{
    if (!isfinite(t->speed) || (t->spn && ts - t->sp_last < SP_STEP))
        return;
    t->sp[t->sph] = (float)t->speed;
    t->spt[t->sph] = ts;
    t->sph = (t->sph + 1) % SPH;
    if (t->spn < SPH)
        t->spn++;
    t->sp_last = ts;
    int64_t win = (int64_t)(a->sc.params.speed_drop_window_s * NS);
    t->sp_max = 0;
    for (int k = 0; k < t->spn; k++)
        if (ts - t->spt[k] <= win && t->sp[k] > t->sp_max)
            t->sp_max = t->sp[k];
}

static void stopped_end(its_analytics_t *a, tstate *t, int64_t ts)
{
    if (!t->stopped_seq)
        return;
    int lane = t->lane >= 0 ? t->lane : -1;
    its_event *e = lifecycle(a, ITS_EV_STOPPED_VEHICLE, &t->stopped_seq, 1, t, lane, ts);
    if (e && t->stopped_since)
        e->value = (double)(ts - t->stopped_since) / NS;
}

static void incidents(its_analytics_t *a, tstate *t, int64_t ts)
{
    const its_analytics_params *p = &a->sc.params;
    if (!isfinite(t->speed) || !is_vehicle(t->group))
        return;
    /* sudden speed drop: anywhere in view, held for DROP_HOLD_NS (one glitchy measurement
     * is not an incident), on a track followed for at least the drop window */
    if (!t->drop_fired && ts - t->first_ts >= (int64_t)(p->speed_drop_window_s * NS)) {
        double mx = t->sp_max;
        if (mx - t->speed >= p->speed_drop_kmh && mx - t->speed >= p->speed_drop_ratio * mx) {
            if (!t->drop_since)
                t->drop_since = ts;
            if (ts - t->drop_since >= DROP_HOLD_NS) {
                its_event *e = emit(a, ITS_EV_SPEED_DROP, t, t->lane, ts);
                if (e)
                    e->value = mx - t->speed;
                t->drop_fired = 1;
            }
        } else {
            t->drop_since = 0;
        }
    }
    if (t->lane < 0) {
        stopped_end(a, t, ts);
        t->stopped_since = t->wrong_since = 0;
        return;
    }
    if (t->speed < p->stopped_speed_kmh) {
        if (!t->stopped_since)
            t->stopped_since = ts;
        double stopped = (double)(ts - t->stopped_since) / NS;
        int start = !t->stopped_fired && !t->queued && stopped >= p->stopped_time_s;
        if (start || (t->stopped_seq && ts - t->stopped_upd >= UPDATE_NS)) {
            its_event *e = lifecycle(a, ITS_EV_STOPPED_VEHICLE, &t->stopped_seq, 0, t, t->lane, ts);
            if (e)
                e->value = stopped;
            t->stopped_fired = 1;
            t->stopped_upd = ts;
        }
    } else if (t->speed > 2 * p->stopped_speed_kmh) {
        stopped_end(a, t, ts);
        t->stopped_since = 0;
        t->stopped_fired = 0;
    }
    const lanestate *ls = &a->lanes[t->lane];
    double v = sqrt(t->vel.x * t->vel.x + t->vel.y * t->vel.y);
    if (t->speed > p->wrong_way_min_speed_kmh &&
        (t->vel.x * ls->dir.x + t->vel.y * ls->dir.y) < -0.5 * v) {
        if (!t->wrong_since)
            t->wrong_since = ts;
        if (!t->wrong_fired && (double)(ts - t->wrong_since) / NS >= p->wrong_way_time_s) {
            emit(a, ITS_EV_WRONG_WAY, t, t->lane, ts);
            t->wrong_fired = 1;
        }
    } else {
        t->wrong_since = 0;
    }
}

/* Queue per lane: stopped vehicles chained back from the stop line with gaps <= queue_gap_m. */
static void update_queues(its_analytics_t *a)
{
    const its_scene *s = &a->sc;
    const its_analytics_params *p = &s->params;
    for (int li = 0; li < s->n_lanes; li++) {
        lanestate *ls = &a->lanes[li];
        if (s->lanes[li].stop_line < 0)
            continue;
        int n = 0;
        for (int k = 0; k < a->n_live; k++) {
            tstate *t = &a->st[a->live[k]];
            if (t->lane != li || !is_vehicle(t->group) || !isfinite(t->speed) ||
                t->speed >= p->queue_speed_kmh || t->last_ts != a->last_ts)
                continue;
            /* distance back from the stop line, against the travel direction */
            double d =
                -((t->road.x - ls->stop_a.x) * ls->dir.x + (t->road.y - ls->stop_a.y) * ls->dir.y);
            if (d < -2)
                continue; /* past the stop line */
            qitem it = {d < 0 ? 0 : d, a->live[k]};
            int m = n++;
            while (m > 0 && a->q[m - 1].d > it.d) {
                a->q[m] = a->q[m - 1];
                m--;
            }
            a->q[m] = it;
        }
        double end = 0;
        int qn = 0;
        for (int k = 0; k < n; k++) {
            if (a->q[k].d - end > p->queue_gap_m)
                break;
            end = a->q[k].d;
            a->st[a->q[k].slot].queued = 1;
            qn++;
        }
        ls->queue_m = end;
        ls->queue_n = qn;
        if (!(ls->queue_max >= end))
            ls->queue_max = end;
        int64_t ts = a->last_ts;
        if (qn > 0 || ls->queue_seq) {
            int start = !ls->queue_seq, fin = qn == 0;
            if (start || fin || ts - ls->queue_upd >= UPDATE_NS) {
                its_event *e = lifecycle(a, ITS_EV_QUEUE, &ls->queue_seq, fin, NULL, li, ts);
                if (e) {
                    e->value = end;
                    e->queue_vehicles = qn;
                }
                ls->queue_upd = ts;
            }
        }
    }
}

static void forget(its_analytics_t *a, int k, int64_t ts)
{
    int slot = a->live[k];
    tstate *t = &a->st[slot];
    for (int i = 0; i < a->sc.n_zones; i++)
        if ((t->in_zone >> i) & 1)
            zone_exit(a, t, i, ts);
    stopped_end(a, t, ts);
    hash_remove(a, t->id);
    a->free_slots[a->n_free++] = slot;
    a->live[k] = a->live[--a->n_live];
}

int its_analytics_update(its_analytics_t *a, int64_t ts, uint64_t frame_no, const its_track *tracks,
                         int n, const its_analytics_frame **out)
{
    if (!a || !out || n < 0 || (n > 0 && !tracks))
        return ITS_EINVAL;
    if (a->frames && ts < a->last_ts) {
        a->refused++;
        return ITS_EINVAL;
    }
    const its_scene *s = &a->sc;
    if (!a->frames && a->resumed) { /* continue the checkpoint's stream time */
        a->t0 = ts - a->resume_ns;
        for (int i = 0; i < s->n_lines; i++)
            a->lines[i].last_cross_ts += a->t0;
    } else if (!a->frames) {
        a->t0 = ts;
    }
    int64_t dt = a->frames ? ts - a->last_ts : 0;
    for (int i = 0; i < s->n_zones; i++) {
        a->zones[i].total_ns += dt;
        if (a->zones[i].count > 0)
            a->zones[i].occupied_ns += dt;
    }
    /* Completed minutes feed the forecast (a long gap restarts it). */
    int64_t minute = (ts - a->t0) / (int64_t)(60 * NS);
    for (int i = 0; i < s->n_lines; i++) {
        lstate *l = &a->lines[i];
        if (minute - l->minute > 120) {
            its_forecast_init(&l->fc, s->params.forecast_alpha, s->params.forecast_beta);
            l->minute = minute;
            l->minute_vehicles = 0;
        }
        while (l->minute < minute) {
            its_forecast_add(&l->fc, l->minute_vehicles * 60.0);
            l->minute_vehicles = 0;
            l->minute++;
        }
    }
    a->last_ts = ts;
    a->frames++;
    a->n_ev = 0;
    if (n > a->max_tracks) {
        a->tr_dropped += (uint64_t)(n - a->max_tracks);
        n = a->max_tracks;
    }
    double sum_speed = 0;
    int n_speed = 0;
    for (int i = 0; i < n; i++) {
        const its_track *tr = &tracks[i];
        a->speed_out[i] = NAN;
        a->lane_out[i] = -1;
        a->group_out[i] = a->tclass_out[i] = -1;
        int g = tr->class_id >= 0 && tr->class_id < 256 ? s->class_map[tr->class_id] : -1;
        if (g < 0)
            continue;
        int slot = find_slot(a, tr->id), fresh = 0;
        if (slot < 0) {
            if (!a->n_free) {
                a->tr_dropped++;
                continue;
            }
            slot = a->free_slots[--a->n_free];
            a->live[a->n_live++] = slot;
            tstate *t = &a->st[slot];
            memset(t, 0, sizeof *t);
            t->id = tr->id;
            t->first_ts = ts;
            t->speed = NAN;
            hash_insert(a, tr->id, slot);
            fresh = 1;
        }
        tstate *t = &a->st[slot];
        /* A detector often hesitates between car/truck/bus on one vehicle: the track's class is
         * the score-weighted vote of its life, changed only by a clear margin. */
        float sc = tr->score > 0.01f ? tr->score : 0.01f;
        t->w[g] += sc;
        if (fresh)
            t->vgroup = t->group = g;
        else if (g != t->vgroup && t->w[g] > s->params.class_vote_margin * t->w[t->vgroup])
            t->vgroup = g;
        t->last_ts = ts;
        t->img.x = (tr->x1 + tr->x2) * 0.5;
        t->img.y = tr->y2;
        t->box_h = tr->y2 - tr->y1;
        t->road = its_scene_to_road(s, t->img);
        t->queued = 0;
        int clipped = a->fw > 0 && (tr->x1 <= EDGE_PX || tr->y1 <= EDGE_PX ||
                                    tr->x2 >= a->fw - EDGE_PX || tr->y2 >= a->fh - EDGE_PX);
        if (s->speed_zone_n && !(in_bbox(&a->speed_box, t->img) &&
                                 point_in_poly(s->speed_zone, s->speed_zone_n, t->img)))
            clipped = 1; /* outside where speeds are trusted: same treatment */
        update_speed(a, t, ts, clipped);
        sample_speed(a, t, ts);
        if (fresh) {
            t->img0 = t->img;
            t->road0 = t->road;
        }
        if (t->vgroup == ITS_CLS_PERSON)
            person_evidence(a, t, ts);
        else if (t->vgroup == ITS_CLS_TRUCK && !clipped && s->has_calibration)
            truck_height(a, t, tr);
        classify(a, t, ts);
        its_pt origin = {tr->origin_x, tr->origin_y};
        update_lines(a, t, ts, fresh, fresh && tr->origin_h > 0 ? &origin : NULL, tr->origin_h);
        update_zones(a, t, ts);
        t->lane = -1;
        for (int k = 0; k < s->n_lanes; k++)
            if (in_bbox(&a->lanes[k].box, t->img) &&
                point_in_poly(s->lanes[k].poly, s->lanes[k].n, t->img)) {
                t->lane = k;
                break;
            }
        a->speed_out[i] = (float)t->speed;
        a->lane_out[i] = (signed char)t->lane;
        a->group_out[i] = (signed char)t->group;
        a->tclass_out[i] = a->kind_tc[t->kind];
        if (is_vehicle(g) && isfinite(t->speed)) {
            sum_speed += t->speed;
            n_speed++;
        }
    }
    int64_t timeout = (int64_t)(s->params.track_timeout_s * NS);
    for (int k = 0; k < a->n_live;) {
        if (ts - a->st[a->live[k]].last_ts > timeout)
            forget(a, k, ts);
        else
            k++;
    }
    update_queues(a);
    for (int k = 0; k < a->n_live; k++) {
        tstate *t = &a->st[a->live[k]];
        if (t->last_ts == ts)
            incidents(a, t, ts);
    }
    a->mean_speed = n_speed ? sum_speed / n_speed : NAN;
    a->tracks_now = n;
    its_analytics_frame *r = &a->fr;
    r->ts_ns = ts;
    r->frame_no = frame_no;
    r->tracks = tracks;
    r->n_tracks = n;
    r->speed_kmh = a->speed_out;
    r->lane = a->lane_out;
    r->group = a->group_out;
    r->tclass = a->tclass_out;
    r->events = a->ev;
    r->n_events = a->n_ev;
    for (int i = 0; i < s->n_zones; i++)
        r->zone_count[i] = a->zones[i].count;
    for (int i = 0; i < s->n_lanes; i++) {
        r->queue_m[i] = s->lanes[i].stop_line >= 0 ? a->lanes[i].queue_m : NAN;
        r->queue_vehicles[i] = a->lanes[i].queue_n;
    }
    *out = r;
    return 0;
}

static int group_of(const its_analytics_t *a, int class_id)
{
    return class_id >= 0 && class_id < 256 ? a->sc.class_map[class_id] : -1;
}

static int two_wheeler(int g)
{
    return g == ITS_CLS_MOTORCYCLE || g == ITS_CLS_BICYCLE;
}

/* Cross-class duplicates: detectors that run NMS per class can report one vehicle as a car
 * and as a truck with nearly the same box. Pairs of different classes only (same-class
 * duplicates are the detector's NMS's business); the lower score goes. Riders: a person box
 * lying rider_overlap of its area inside a two-wheeler's box is merged into the one it lies
 * most inside. Detections are swept in x1 order so only boxes that overlap in x are compared. */
static int dedupe(its_analytics_t *a, const its_det_frame *f)
{
    int n = f->n < a->max_dets ? f->n : a->max_dets;
    float thr = (float)a->sc.params.duplicate_iou, rthr = (float)a->sc.params.rider_overlap;
    for (int i = 0; i < n; i++) {
        a->drop[i] = 0;
        a->rider_of[i] = -1;
        a->rider_best[i] = 0;
        a->xkeys[i].x = f->dets[i].x1;
        a->xkeys[i].i = i;
    }
    if (thr > 0 || rthr > 0) {
        /* bottom-up merge sort by x1 */
        xkey *src = a->xkeys, *dst = a->xkeys_tmp;
        for (int w = 1; w < n; w *= 2) {
            for (int lo = 0; lo < n; lo += 2 * w) {
                int mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
                int i = lo, j = mid, k = lo;
                while (i < mid && j < hi)
                    dst[k++] = src[j].x < src[i].x ? src[j++] : src[i++];
                while (i < mid)
                    dst[k++] = src[i++];
                while (j < hi)
                    dst[k++] = src[j++];
            }
            xkey *t = src;
            src = dst;
            dst = t;
        }
        for (int p = 0; p < n; p++) {
            const its_det *d = &f->dets[src[p].i];
            for (int q = p + 1; q < n && src[q].x < d->x2; q++) {
                const its_det *e = &f->dets[src[q].i];
                if (e->class_id == d->class_id || e->y1 >= d->y2 || e->y2 <= d->y1)
                    continue;
                float iw = (d->x2 < e->x2 ? d->x2 : e->x2) - e->x1;
                float ih = (d->y2 < e->y2 ? d->y2 : e->y2) - (d->y1 > e->y1 ? d->y1 : e->y1);
                float in = iw * ih;
                int gd = group_of(a, d->class_id), ge = group_of(a, e->class_id);
                if (rthr > 0 && ((gd == ITS_CLS_PERSON && two_wheeler(ge)) ||
                                 (ge == ITS_CLS_PERSON && two_wheeler(gd)))) {
                    int pi = gd == ITS_CLS_PERSON ? src[p].i : src[q].i;
                    int mi = gd == ITS_CLS_PERSON ? src[q].i : src[p].i;
                    const its_det *pd = &f->dets[pi];
                    float area = (pd->x2 - pd->x1) * (pd->y2 - pd->y1);
                    float share = area > 0 ? in / area : 0;
                    if (share >= rthr && share > a->rider_best[pi]) {
                        a->rider_best[pi] = share;
                        a->rider_of[pi] = mi;
                    }
                    continue;
                }
                if (!(thr > 0))
                    continue;
                float un =
                    (d->x2 - d->x1) * (d->y2 - d->y1) + (e->x2 - e->x1) * (e->y2 - e->y1) - in;
                if (!(un > 0 && in >= thr * un))
                    continue;
                int lose = e->score < d->score || (e->score == d->score && src[q].i > src[p].i)
                               ? src[q].i
                               : src[p].i;
                a->drop[lose] = 1;
            }
        }
    }
    for (int i = 0; i < n; i++)
        if (a->rider_of[i] >= 0 && (a->drop[i] || a->drop[a->rider_of[i]]))
            a->rider_of[i] = -1; /* a duplicate itself, or riding one */
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (a->drop[i]) {
            a->dups++;
            continue;
        }
        if (a->rider_of[i] >= 0)
            continue;
        a->rider_best[i] = (float)m; /* from here on: i's place in dbuf */
        a->dbuf[m] = f->dets[i];
        a->dmap[m++] = i;
    }
    /* each rider widens its machine's box to cover both and lends it its score */
    for (int i = 0; i < n; i++) {
        if (a->rider_of[i] < 0)
            continue;
        const its_det *r = &f->dets[i];
        its_det *d = &a->dbuf[(int)a->rider_best[a->rider_of[i]]];
        d->x1 = r->x1 < d->x1 ? r->x1 : d->x1;
        d->y1 = r->y1 < d->y1 ? r->y1 : d->y1;
        d->x2 = r->x2 > d->x2 ? r->x2 : d->x2;
        d->y2 = r->y2 > d->y2 ? r->y2 : d->y2;
        d->score = r->score > d->score ? r->score : d->score;
        a->riders++;
    }
    return m;
}

int its_analytics_push(its_analytics_t *a, const its_det_frame *f, const its_analytics_frame **out)
{
    if (!a || !f || !out || f->n < 0 || (f->n > 0 && !f->dets))
        return ITS_EINVAL;
    if (a->frames && f->ts_ns < a->last_ts) {
        a->refused++;
        return ITS_EINVAL;
    }
    if (f->width_px > 0 && f->height_px > 0) {
        a->fw = f->width_px;
        a->fh = f->height_px;
    }
    its_det_frame g = *f;
    g.dets = a->dbuf;
    g.n = dedupe(a, f);
    const its_track *tracks;
    int n = its_tracker_update(a->trk, &g, &tracks);
    if (n < 0)
        return n;
    for (int i = 0; i < n; i++) {
        a->tbuf[i] = tracks[i];
        if (tracks[i].det_index >= 0)
            a->tbuf[i].det_index = a->dmap[tracks[i].det_index];
    }
    return its_analytics_update(a, f->ts_ns, f->frame_no, a->tbuf, n, out);
}

/* ---- reports ---- */

static void window(const its_analytics_t *a, const lstate *l, const its_scene_line *sl, int w,
                   its_line_window *o)
{
    const bucket *ring = w ? l->b15 : l->b1;
    int n = w ? B15_N : B1_N;
    int64_t width = (int64_t)(w ? 60 * NS : NS);
    int64_t now = (a->last_ts - a->t0) / width;
    double inv = 0, hw = 0, hwmin = INFINITY;
    uint32_t ns = 0, nh = 0;
    memset(o, 0, sizeof *o);
    for (int k = 0; k < n; k++) {
        const bucket *b = &ring[k];
        if (b->idx < 0 || b->idx > now || b->idx <= now - n)
            continue;
        for (int g = 0; g < ITS_CLS_COUNT; g++)
            for (int d = 0; d < 2; d++) {
                o->count[g][d] += b->count[g][d];
                if (is_vehicle(g))
                    o->vehicles += b->count[g][d];
            }
        for (int c = 0; c < a->sc.n_tclasses; c++)
            for (int d = 0; d < 2; d++)
                o->traffic[c][d] += b->traffic[c][d];
        inv += b->inv_speed_sum;
        ns += b->n_speed;
        hw += b->headway_sum;
        nh += b->n_headway;
        if (b->headway_min < hwmin)
            hwmin = b->headway_min;
    }
    double elapsed = (double)(a->last_ts - a->t0) / NS;
    double full = w ? 900.0 : 60.0;
    o->span_s = elapsed < full ? elapsed : full;
    o->flow_vph = o->span_s > 0 ? o->vehicles * 3600.0 / o->span_s : NAN;
    o->sms_kmh = ns ? ns / inv : NAN;
    if (o->vehicles == 0 && o->span_s > 0)
        o->density_vpkml = 0;
    else
        o->density_vpkml = o->flow_vph / o->sms_kmh / sl->lanes;
    if (!a->sc.has_calibration)
        o->sms_kmh = o->density_vpkml = NAN;
    o->los = its_los_from_density(o->density_vpkml);
    o->headway_mean_s = nh ? hw / nh : NAN;
    o->headway_min_s = nh ? hwmin : NAN;
}

int its_analytics_get_report(its_analytics_t *a, its_analytics_report *r)
{
    if (!a || !r)
        return ITS_EINVAL;
    const its_scene *s = &a->sc;
    memset(r, 0, sizeof *r);
    r->ts_ns = a->last_ts;
    r->frames = a->frames_before + a->frames;
    r->elapsed_s = a->frames    ? (double)(a->last_ts - a->t0) / NS
                   : a->resumed ? (double)a->resume_ns / NS
                                : 0;
    r->tracks_now = a->tracks_now;
    r->mean_speed_kmh = a->frames ? a->mean_speed : NAN;
    memcpy(r->incidents, a->incidents, sizeof r->incidents);
    r->frames_refused = a->refused;
    r->events_dropped = a->ev_dropped;
    r->tracks_dropped = a->tr_dropped;
    r->duplicates_dropped = a->dups;
    r->riders_merged = a->riders;
    r->class_changes = a->moved;
    for (int i = 0; i < s->n_lines; i++) {
        const lstate *l = &a->lines[i];
        its_line_stats *o = &r->lines[i];
        memcpy(o->total, l->total, sizeof o->total);
        memcpy(o->traffic_total, l->traffic_total, sizeof o->traffic_total);
        window(a, l, &s->lines[i], 0, &o->win[0]);
        window(a, l, &s->lines[i], 1, &o->win[1]);
        o->forecast15_vph = its_forecast_mean_ahead(&l->fc, 15);
        o->forecast60_vph = its_forecast_mean_ahead(&l->fc, 60);
        o->forecast_mae1_vph = its_forecast_mae(&l->fc, 1);
        o->forecast_mae15_vph = its_forecast_mae(&l->fc, 15);
        o->forecast_mae60_vph = its_forecast_mae(&l->fc, 60);
        o->forecast_minutes = l->fc.n;
    }
    for (int i = 0; i < s->n_zones; i++) {
        const zstate *z = &a->zones[i];
        its_zone_stats *o = &r->zones[i];
        o->count_now = z->count;
        o->occupied_pct = z->total_ns ? 100.0 * (double)z->occupied_ns / (double)z->total_ns : 0;
        o->entries = z->entries;
        o->dwell_mean_s = z->dwell_n ? z->dwell_sum / (double)z->dwell_n : NAN;
        o->dwell_max_s = z->dwell_n ? z->dwell_max : NAN;
    }
    for (int i = 0; i < s->n_lanes; i++) {
        r->lanes[i].queue_m = s->lanes[i].stop_line >= 0 ? a->lanes[i].queue_m : NAN;
        r->lanes[i].queue_max_m = s->lanes[i].stop_line >= 0 ? a->lanes[i].queue_max : NAN;
        r->lanes[i].queue_vehicles = a->lanes[i].queue_n;
    }
    return 0;
}

/* ---- JSON ---- */

static void counts_json(its_json *w, const uint32_t c[ITS_CLS_COUNT][2])
{
    its_json_obj_begin(w);
    for (int g = 0; g < ITS_CLS_COUNT; g++) {
        its_json_key(w, group_names[g]);
        its_json_arr_begin(w);
        its_json_uint(w, c[g][0]);
        its_json_uint(w, c[g][1]);
        its_json_arr_end(w);
    }
    its_json_obj_end(w);
}

/* {"<traffic class>":[positive, negative],...} over the scene's traffic classes. */
static void traffic_json(its_json *w, const its_scene *s,
                         const uint32_t c[ITS_SCENE_MAX_TCLASSES][2])
{
    its_json_obj_begin(w);
    for (int k = 0; k < s->n_tclasses; k++) {
        its_json_key(w, s->tclasses[k].name);
        its_json_arr_begin(w);
        its_json_uint(w, c[k][0]);
        its_json_uint(w, c[k][1]);
        its_json_arr_end(w);
    }
    its_json_obj_end(w);
}

/* The fields of an event inside an open object: kind, phase, place (by name), track, class,
 * direction, speed and the kind's own value. */
static void event_fields(its_json *w, const its_scene *s, const its_event *e)
{
    its_json_kstr(w, "kind", its_event_type_name(e->type));
    if (e->phase != ITS_PHASE_NONE)
        its_json_kstr(w, "phase", its_event_phase_name(e->phase));
    if (e->type == ITS_EV_LINE_CROSSING && e->index >= 0) {
        its_json_kstr(w, "line", s->lines[e->index].name);
        its_json_kstr(w, "direction", e->direction > 0 ? "positive" : "negative");
    } else if (e->type == ITS_EV_ZONE_PRESENCE && e->index >= 0) {
        its_json_kstr(w, "zone", s->zones[e->index].name);
    } else if (e->index >= 0) {
        its_json_kstr(w, "lane", s->lanes[e->index].name);
    }
    if (e->type == ITS_EV_QUEUE) {
        its_json_knull(w, "track_id");
        its_json_kfixed(w, "queue_m", e->value, 2);
        its_json_kint(w, "queue_vehicles", e->queue_vehicles);
        return;
    }
    its_json_kuint(w, "track_id", e->track_id);
    its_json_kstr(w, "class", its_class_group_name(e->group));
    if (e->tclass >= 0 && e->tclass < s->n_tclasses)
        its_json_kstr(w, "traffic_class", s->tclasses[e->tclass].name);
    else
        its_json_knull(w, "traffic_class");
    its_json_kfixed(w, "speed_kmh", e->speed_kmh, 2);
    if (isfinite(e->value))
        its_json_kfixed(w,
                        e->type == ITS_EV_ZONE_PRESENCE     ? "dwell_s"
                        : e->type == ITS_EV_SPEED_DROP      ? "drop_kmh"
                        : e->type == ITS_EV_STOPPED_VEHICLE ? "stopped_s"
                                                            : "value",
                        e->value, 3);
}

static void event_json(its_json *w, const its_scene *s, const its_event *e)
{
    its_json_obj_begin(w);
    its_json_kuint(w, "seq", e->seq);
    event_fields(w, s, e);
    its_json_kint(w, "pts_us", e->ts_ns / 1000);
    its_json_obj_end(w);
}

void its_analytics_event_message(const its_analytics_t *a, const its_event *e, const char *camera,
                                 const char *id_prefix, int64_t ts_us, uint64_t frame, its_json *w)
{
    its_analytics_event_message_links(a, e, camera, id_prefix, ts_us, frame, NULL, NULL, w);
}

void its_analytics_event_message_links(const its_analytics_t *a, const its_event *e,
                                       const char *camera, const char *id_prefix, int64_t ts_us,
                                       uint64_t frame, const char *snapshot, const char *clip,
                                       its_json *w)
{
    char id[160];
    size_t n = strlen(id_prefix);
    n = n < sizeof id - 24 ? n : sizeof id - 24;
    memcpy(id, id_prefix, n);
    id[n++] = '-';
    id[n + its_json_fmt_u64(id + n, e->seq)] = '\0';
    its_json_msg_begin(w, "event", camera, ts_us, frame);
    its_json_kstr(w, "id", id);
    event_fields(w, &a->sc, e);
    if (snapshot || clip) {
        its_json_key(w, "evidence");
        its_json_obj_begin(w);
        if (snapshot)
            its_json_kstr(w, "snapshot", snapshot);
        if (clip)
            its_json_kstr(w, "clip", clip);
        its_json_obj_end(w);
    }
    its_json_obj_end(w);
}

/* "key":[v,...] */
static void num_array(its_json *w, const char *key, const double *v, int n)
{
    its_json_key(w, key);
    its_json_arr_begin(w);
    for (int i = 0; i < n; i++)
        its_json_num(w, v[i]);
    its_json_arr_end(w);
}

/* "key":{"name":value,...} for the scene's zones or lanes; nothing when there are none. */
static void named_values(its_json *w, const char *key, const char *const *names, const double *vals,
                         int n)
{
    if (!n)
        return;
    its_json_key(w, key);
    its_json_obj_begin(w);
    its_json_knums(w, names, vals, n);
    its_json_obj_end(w);
}

void its_analytics_frame_write(const its_analytics_t *a, const its_analytics_frame *r, its_json *w)
{
    const its_scene *s = &a->sc;
    its_json_obj_begin(w);
    its_json_kstr(w, "scene", s->camera);
    its_json_kuint(w, "frame", r->frame_no);
    its_json_kint(w, "pts_us", r->ts_ns / 1000);
    its_json_key(w, "tracks");
    its_json_arr_begin(w);
    for (int i = 0; i < r->n_tracks; i++) {
        const its_track *t = &r->tracks[i];
        its_json_obj_begin(w);
        its_json_kuint(w, "id", t->id);
        its_json_kint(w, "class_id", t->class_id);
        if (r->group[i] >= 0)
            its_json_kstr(w, "class", its_class_group_name(r->group[i]));
        if (r->tclass[i] >= 0)
            its_json_kstr(w, "traffic_class", s->tclasses[(int)r->tclass[i]].name);
        else
            its_json_knull(w, "traffic_class");
        its_json_knum(w, "score", t->score);
        num_array(w, "box", (const double[4]){t->x1, t->y1, t->x2, t->y2}, 4);
        its_json_knum(w, "speed_kmh", r->speed_kmh[i]);
        if (r->lane[i] >= 0) {
            its_json_kstr(w, "lane", s->lanes[(int)r->lane[i]].name);
        }
        its_json_obj_end(w);
    }
    its_json_arr_end(w);
    its_json_key(w, "events");
    its_json_arr_begin(w);
    for (int i = 0; i < r->n_events; i++)
        event_json(w, s, &r->events[i]);
    its_json_arr_end(w);
    const char *names[ITS_SCENE_MAX_ZONES + ITS_SCENE_MAX_LANES];
    double vals[ITS_SCENE_MAX_ZONES + ITS_SCENE_MAX_LANES];
    for (int i = 0; i < s->n_zones; i++)
        names[i] = s->zones[i].name, vals[i] = r->zone_count[i];
    named_values(w, "zones", names, vals, s->n_zones);
    for (int i = 0; i < s->n_lanes; i++)
        names[i] = s->lanes[i].name, vals[i] = r->queue_m[i];
    named_values(w, "queues_m", names, vals, s->n_lanes);
    its_json_obj_end(w);
}

static void window_json(its_json *w, const its_scene *s, const its_line_window *o)
{
    char los[2] = {o->los, 0};
    its_json_obj_begin(w);
    its_json_knum(w, "span_s", o->span_s);
    its_json_key(w, "counts");
    counts_json(w, o->count);
    its_json_key(w, "traffic");
    traffic_json(w, s, o->traffic);
    its_json_kuint(w, "vehicles", o->vehicles);
    its_json_knum(w, "flow_vph", o->flow_vph);
    its_json_knum(w, "space_mean_speed_kmh", o->sms_kmh);
    its_json_knum(w, "density_veh_per_km_lane", o->density_vpkml);
    its_json_kstr(w, "los", los);
    its_json_knum(w, "headway_mean_s", o->headway_mean_s);
    its_json_knum(w, "headway_min_s", o->headway_min_s);
    its_json_obj_end(w);
}

void its_analytics_report_write(const its_analytics_t *a, const its_analytics_report *r,
                                its_json *w)
{
    const its_scene *s = &a->sc;
    its_json_obj_begin(w);
    its_json_kstr(w, "scene", s->camera);
    its_json_kint(w, "pts_us", r->ts_ns / 1000);
    its_json_kuint(w, "frames", r->frames);
    its_json_knum(w, "elapsed_s", r->elapsed_s);
    its_json_kint(w, "tracks_now", r->tracks_now);
    its_json_knum(w, "mean_speed_kmh", r->mean_speed_kmh);
    its_json_key(w, "incidents");
    its_json_obj_begin(w);
    for (int t = ITS_EV_STOPPED_VEHICLE; t < ITS_EV_COUNT; t++) {
        its_json_key(w, its_event_type_name((its_event_type)t));
        its_json_uint(w, r->incidents[t]);
    }
    its_json_obj_end(w);
    its_json_key(w, "lines");
    its_json_arr_begin(w);
    for (int i = 0; i < s->n_lines; i++) {
        const its_line_stats *o = &r->lines[i];
        its_json_obj_begin(w);
        its_json_kstr(w, "name", s->lines[i].name);
        its_json_key(w, "total");
        counts_json(w, o->total);
        its_json_key(w, "traffic_total");
        traffic_json(w, s, o->traffic_total);
        its_json_key(w, "window_1min");
        window_json(w, s, &o->win[0]);
        its_json_key(w, "window_15min");
        window_json(w, s, &o->win[1]);
        static const char *const fk[] = {"next_15min_vph", "next_60min_vph", "mae_1min_vph",
                                         "mae_15min_vph", "mae_60min_vph"};
        const double fv[] = {o->forecast15_vph, o->forecast60_vph, o->forecast_mae1_vph,
                             o->forecast_mae15_vph, o->forecast_mae60_vph};
        its_json_key(w, "forecast");
        its_json_obj_begin(w);
        its_json_kuint(w, "minutes_seen", o->forecast_minutes);
        its_json_knums(w, fk, fv, 5);
        its_json_obj_end(w);
        its_json_obj_end(w);
    }
    its_json_arr_end(w);
    its_json_key(w, "zones");
    its_json_arr_begin(w);
    for (int i = 0; i < s->n_zones; i++) {
        const its_zone_stats *z = &r->zones[i];
        static const char *const zk[] = {"occupied_pct", "dwell_mean_s", "dwell_max_s"};
        const double zv[] = {z->occupied_pct, z->dwell_mean_s, z->dwell_max_s};
        its_json_obj_begin(w);
        its_json_kstr(w, "name", s->zones[i].name);
        its_json_kint(w, "count_now", z->count_now);
        its_json_kuint(w, "entries", z->entries);
        its_json_knums(w, zk, zv, 3);
        its_json_obj_end(w);
    }
    its_json_arr_end(w);
    its_json_key(w, "lanes");
    its_json_arr_begin(w);
    for (int i = 0; i < s->n_lanes; i++) {
        its_json_obj_begin(w);
        its_json_kstr(w, "name", s->lanes[i].name);
        its_json_knum(w, "queue_m", r->lanes[i].queue_m);
        its_json_knum(w, "queue_max_m", r->lanes[i].queue_max_m);
        its_json_kint(w, "queue_vehicles", r->lanes[i].queue_vehicles);
        its_json_obj_end(w);
    }
    its_json_arr_end(w);
    static const char *const dk[] = {"frames_refused", "events", "tracks", "duplicate_detections"};
    const uint64_t dv[] = {r->frames_refused, r->events_dropped, r->tracks_dropped,
                           r->duplicates_dropped};
    its_json_key(w, "dropped");
    its_json_obj_begin(w);
    for (int i = 0; i < 4; i++)
        its_json_kuint(w, dk[i], dv[i]);
    its_json_obj_end(w);
    its_json_kuint(w, "riders_merged", r->riders_merged);
    its_json_kuint(w, "class_changes", r->class_changes);
    its_json_obj_end(w);
}

void its_analytics_window_message(const its_analytics_t *a, const its_analytics_report *r,
                                  const char *camera, int64_t ts_us, uint64_t frame, its_json *w)
{
    its_json_msg_begin(w, "window", camera, ts_us, frame);
    its_json_key(w, "report");
    its_analytics_report_write(a, r, w);
    its_json_obj_end(w);
}

/* ---- checkpoints (docs/scale-out.md, "Checkpoints") ---- */

/* The fewest digits (15, else 17) that read back as the same double; null when not finite. */
static void ck_num(its_json *w, double v)
{
    char b[40];
    snprintf(b, sizeof b, "%.15g", v);
    its_json_numg(w, v, isfinite(v) && strtod(b, NULL) != v ? 17 : 15);
}

static void ck_knum(its_json *w, const char *key, double v)
{
    its_json_key(w, key);
    ck_num(w, v);
}

static void ck_pt(its_json *w, const char *key, its_pt p)
{
    if (key)
        its_json_key(w, key);
    its_json_arr_begin(w);
    ck_num(w, p.x);
    ck_num(w, p.y);
    its_json_arr_end(w);
}

/* n x 2 counts as one flat array [c0+, c0-, c1+, ...]. */
static void ck_counts(its_json *w, const char *key, const uint32_t (*c)[2], int n)
{
    its_json_key(w, key);
    its_json_arr_begin(w);
    for (int i = 0; i < n; i++) {
        its_json_uint(w, c[i][0]);
        its_json_uint(w, c[i][1]);
    }
    its_json_arr_end(w);
}

static void ck_nums(its_json *w, const char *key, const double *v, int n)
{
    its_json_key(w, key);
    its_json_arr_begin(w);
    for (int i = 0; i < n; i++)
        ck_num(w, v[i]);
    its_json_arr_end(w);
}

static void ck_buckets(its_json *w, const char *key, const bucket *ring, int n, int n_tc)
{
    its_json_key(w, key);
    its_json_arr_begin(w);
    for (int k = 0; k < n; k++) {
        const bucket *b = &ring[k];
        if (b->idx < 0)
            continue;
        its_json_obj_begin(w);
        its_json_kint(w, "idx", b->idx);
        ck_counts(w, "count", b->count, ITS_CLS_COUNT);
        ck_counts(w, "traffic", b->traffic, n_tc);
        ck_knum(w, "inv_speed_sum", b->inv_speed_sum);
        its_json_kuint(w, "n_speed", b->n_speed);
        ck_knum(w, "headway_sum", b->headway_sum);
        ck_knum(w, "headway_min", b->headway_min);
        its_json_kuint(w, "n_headway", b->n_headway);
        its_json_obj_end(w);
    }
    its_json_arr_end(w);
}

void its_analytics_checkpoint_write(const its_analytics_t *a, const char *camera, int64_t wall_us,
                                    its_json *w)
{
    const its_scene *s = &a->sc;
    its_json_obj_begin(w);
    its_json_kint(w, "checkpoint", ITS_CHECKPOINT_VERSION);
    its_json_kstr(w, "camera", camera ? camera : s->camera);
    its_json_kint(w, "wall_us", wall_us);
    its_json_kint(w, "elapsed_ns", a->frames ? a->last_ts - a->t0 : a->resumed ? a->resume_ns : 0);
    its_json_kuint(w, "frames", a->frames_before + a->frames);
    its_json_key(w, "incidents");
    its_json_arr_begin(w);
    for (int i = 0; i < ITS_EV_COUNT; i++)
        its_json_uint(w, a->incidents[i]);
    its_json_arr_end(w);
    its_json_kuint(w, "frames_refused", a->refused);
    its_json_kuint(w, "events_dropped", a->ev_dropped);
    its_json_kuint(w, "tracks_dropped", a->tr_dropped);
    its_json_kuint(w, "duplicates_dropped", a->dups);
    its_json_kuint(w, "riders_merged", a->riders);
    its_json_kuint(w, "class_changes", a->moved);
    its_json_key(w, "traffic_classes");
    its_json_arr_begin(w);
    for (int c = 0; c < s->n_tclasses; c++) {
        its_json_obj_begin(w);
        its_json_kstr(w, "name", s->tclasses[c].name);
        its_json_kuint(w, "kinds", s->tclasses[c].kinds);
        its_json_obj_end(w);
    }
    its_json_arr_end(w);
    its_json_key(w, "lines");
    its_json_arr_begin(w);
    for (int i = 0; i < s->n_lines; i++) {
        const its_scene_line *sl = &s->lines[i];
        const lstate *l = &a->lines[i];
        const its_forecast *f = &l->fc;
        its_json_obj_begin(w);
        its_json_kstr(w, "name", sl->name);
        ck_pt(w, "a", sl->a);
        ck_pt(w, "b", sl->b);
        ck_pt(w, "positive", sl->positive);
        its_json_kint(w, "lanes", sl->lanes);
        ck_counts(w, "total", l->total, ITS_CLS_COUNT);
        ck_counts(w, "traffic_total", l->traffic_total, s->n_tclasses);
        if (l->has_last_cross)
            its_json_kint(w, "last_cross_ns", l->last_cross_ts - (a->frames ? a->t0 : 0));
        its_json_kint(w, "minute", l->minute);
        its_json_kuint(w, "minute_vehicles", l->minute_vehicles);
        ck_buckets(w, "b1", l->b1, B1_N, s->n_tclasses);
        ck_buckets(w, "b15", l->b15, B15_N, s->n_tclasses);
        its_json_key(w, "forecast");
        its_json_obj_begin(w);
        ck_knum(w, "level", f->level);
        ck_knum(w, "trend", f->trend);
        its_json_kuint(w, "n", f->n);
        ck_nums(w, "hist", f->hist, 64);
        ck_nums(w, "f15", f->f15, 64);
        ck_nums(w, "f60", f->f60, 64);
        ck_knum(w, "next1", f->next1);
        ck_knum(w, "abs_err1", f->abs_err1);
        ck_knum(w, "abs_err15", f->abs_err15);
        ck_knum(w, "abs_err60", f->abs_err60);
        its_json_kuint(w, "n_err1", f->n_err1);
        its_json_kuint(w, "n_err15", f->n_err15);
        its_json_kuint(w, "n_err60", f->n_err60);
        its_json_obj_end(w);
        its_json_obj_end(w);
    }
    its_json_arr_end(w);
    its_json_key(w, "zones");
    its_json_arr_begin(w);
    for (int i = 0; i < s->n_zones; i++) {
        const its_scene_zone *sz = &s->zones[i];
        const zstate *z = &a->zones[i];
        its_json_obj_begin(w);
        its_json_kstr(w, "name", sz->name);
        its_json_key(w, "polygon");
        its_json_arr_begin(w);
        for (int k = 0; k < sz->n; k++)
            ck_pt(w, NULL, sz->poly[k]);
        its_json_arr_end(w);
        its_json_kbool(w, "walk", sz->walk);
        its_json_kint(w, "occupied_ns", z->occupied_ns);
        its_json_kint(w, "total_ns", z->total_ns);
        its_json_kuint(w, "entries", z->entries);
        ck_knum(w, "dwell_sum", z->dwell_sum);
        ck_knum(w, "dwell_max", z->dwell_max);
        its_json_kuint(w, "dwell_n", z->dwell_n);
        its_json_obj_end(w);
    }
    its_json_arr_end(w);
    its_json_obj_end(w);
}

/* Reading: every value checked for its type and range; the first error is kept. */
typedef struct ckr {
    char *err;
    size_t errlen;
    int bad;
} ckr;

static void ck_bad(ckr *r, const char *what)
{
    if (!r->bad)
        its_seterr(r->err, r->errlen, ITS_EPROTO, "checkpoint: %s", what);
    r->bad = 1;
}

static json_t *ck_get(ckr *r, const json_t *o, const char *key, int type)
{
    json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;
    if (!v || (type >= 0 && json_typeof(v) != (json_type)type)) {
        char m[96];
        snprintf(m, sizeof m, "'%s' missing or of the wrong type", key);
        ck_bad(r, m);
        return NULL;
    }
    return v;
}

static int64_t ck_int(ckr *r, const json_t *o, const char *key, int64_t lo, int64_t hi)
{
    json_t *v = ck_get(r, o, key, JSON_INTEGER);
    int64_t x = v ? (int64_t)json_integer_value(v) : 0;
    if (v && (x < lo || x > hi)) {
        char m[96];
        snprintf(m, sizeof m, "'%s' out of range", key);
        ck_bad(r, m);
        return 0;
    }
    return x;
}

static uint64_t ck_uint(ckr *r, const json_t *o, const char *key)
{
    return (uint64_t)ck_int(r, o, key, 0, INT64_MAX);
}

/* A number, or null for a value that was not finite (nf). */
static double ck_dbl_v(ckr *r, const json_t *v, double nf)
{
    if (json_is_null(v))
        return nf;
    if (!json_is_number(v)) {
        ck_bad(r, "a number expected");
        return nf;
    }
    return json_number_value(v);
}

static double ck_dbl(ckr *r, const json_t *o, const char *key, double nf)
{
    json_t *v = ck_get(r, o, key, -1);
    return v ? ck_dbl_v(r, v, nf) : nf;
}

static void ck_dbls(ckr *r, const json_t *o, const char *key, double *out, int n)
{
    json_t *v = ck_get(r, o, key, JSON_ARRAY);
    if (v && json_array_size(v) != (size_t)n)
        ck_bad(r, "a number array of the wrong length");
    for (int i = 0; v && !r->bad && i < n; i++)
        out[i] = ck_dbl_v(r, json_array_get(v, (size_t)i), NAN);
}

static void ck_cnts(ckr *r, const json_t *o, const char *key, uint32_t (*c)[2], int n)
{
    json_t *v = ck_get(r, o, key, JSON_ARRAY);
    if (v && json_array_size(v) != (size_t)n * 2)
        ck_bad(r, "a count array of the wrong length");
    for (int i = 0; v && !r->bad && i < 2 * n; i++) {
        json_t *x = json_array_get(v, (size_t)i);
        if (!json_is_integer(x) || json_integer_value(x) < 0 ||
            json_integer_value(x) > (json_int_t)UINT32_MAX) {
            ck_bad(r, "a count is not a 32-bit count");
            return;
        }
        c[i / 2][i % 2] = (uint32_t)json_integer_value(x);
    }
}

static its_pt ck_pt_v(ckr *r, const json_t *v)
{
    its_pt p = {NAN, NAN};
    if (!json_is_array(v) || json_array_size(v) != 2 || !json_is_number(json_array_get(v, 0)) ||
        !json_is_number(json_array_get(v, 1))) {
        ck_bad(r, "a point is not [x, y]");
        return p;
    }
    p.x = json_number_value(json_array_get(v, 0));
    p.y = json_number_value(json_array_get(v, 1));
    return p;
}

static void ck_ring(ckr *r, const json_t *o, const char *key, bucket *ring, int n, int n_tc)
{
    json_t *v = ck_get(r, o, key, JSON_ARRAY);
    for (int k = 0; k < n; k++) {
        memset(&ring[k], 0, sizeof ring[k]);
        ring[k].idx = -1;
    }
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        if (r->bad)
            return;
        int64_t idx = ck_int(r, e, "idx", 0, INT64_MAX / 2);
        bucket *b = &ring[idx % n];
        if (b->idx >= 0) {
            ck_bad(r, "two window buckets in one slot");
            return;
        }
        b->idx = idx;
        ck_cnts(r, e, "count", b->count, ITS_CLS_COUNT);
        ck_cnts(r, e, "traffic", b->traffic, n_tc);
        b->inv_speed_sum = ck_dbl(r, e, "inv_speed_sum", 0);
        b->n_speed = (uint32_t)ck_int(r, e, "n_speed", 0, UINT32_MAX);
        b->headway_sum = ck_dbl(r, e, "headway_sum", 0);
        b->headway_min = ck_dbl(r, e, "headway_min", INFINITY);
        b->n_headway = (uint32_t)ck_int(r, e, "n_headway", 0, UINT32_MAX);
    }
}

int its_analytics_checkpoint_restore(its_analytics_t *a, const char *text, size_t len,
                                     int64_t wall_us, its_analytics_resumed *info, char *err,
                                     size_t errlen)
{
    if (info)
        memset(info, 0, sizeof *info);
    if (!a || !text)
        return its_seterr(err, errlen, ITS_EINVAL, "checkpoint: nothing given");
    if (a->frames || a->resumed)
        return its_seterr(err, errlen, ITS_EINVAL,
                          "checkpoint: restored only before the first frame, once");
    json_error_t je;
    json_t *root = json_loadb(text, len, 0, &je);
    if (!root)
        return its_seterr(err, errlen, ITS_EPROTO, "checkpoint: not JSON: %s (line %d)", je.text,
                          je.line);
    const its_scene *s = &a->sc;
    ckr r = {err, errlen, 0};
    /* everything is read into copies first: a bad checkpoint changes nothing */
    static const lstate no_line;
    lstate *nl = its_malloc(ITS_MOD_ANALYTICS, sizeof(lstate) * ITS_SCENE_MAX_LINES);
    zstate nz[ITS_SCENE_MAX_ZONES];
    int lmatch[ITS_SCENE_MAX_LINES], zmatch[ITS_SCENE_MAX_ZONES];
    its_analytics_resumed in = {.lines = s->n_lines, .zones = s->n_zones};
    if (!nl) {
        json_decref(root);
        return its_seterr(err, errlen, ITS_ENOMEM, "checkpoint: out of memory");
    }
    for (int i = 0; i < ITS_SCENE_MAX_LINES; i++)
        lmatch[i] = 0;
    for (int i = 0; i < ITS_SCENE_MAX_ZONES; i++)
        zmatch[i] = 0;
    if (!json_is_object(root))
        ck_bad(&r, "not a JSON object");
    if (ck_int(&r, root, "checkpoint", 0, INT32_MAX) != ITS_CHECKPOINT_VERSION && !r.bad)
        ck_bad(&r, "a version this build does not read");
    int64_t saved_us = ck_int(&r, root, "wall_us", 0, INT64_MAX);
    int64_t elapsed = ck_int(&r, root, "elapsed_ns", 0, INT64_MAX / 4);
    uint64_t frames = ck_uint(&r, root, "frames");
    uint64_t incidents[ITS_EV_COUNT] = {0};
    json_t *inc = ck_get(&r, root, "incidents", JSON_ARRAY);
    if (inc && json_array_size(inc) != ITS_EV_COUNT)
        ck_bad(&r, "'incidents' of the wrong length");
    for (int i = 0; inc && !r.bad && i < ITS_EV_COUNT; i++) {
        json_t *x = json_array_get(inc, (size_t)i);
        if (!json_is_integer(x) || json_integer_value(x) < 0)
            ck_bad(&r, "an incident count is not a count");
        else
            incidents[i] = (uint64_t)json_integer_value(x);
    }
    uint64_t ctr[6];
    static const char *const ctr_keys[6] = {"frames_refused", "events_dropped",
                                            "tracks_dropped", "duplicates_dropped",
                                            "riders_merged",  "class_changes"};
    for (int i = 0; i < 6; i++)
        ctr[i] = ck_uint(&r, root, ctr_keys[i]);
    /* the traffic classes: counts by class continue only under the same classification */
    json_t *tcs = ck_get(&r, root, "traffic_classes", JSON_ARRAY);
    int same_tc = tcs && json_array_size(tcs) == (size_t)s->n_tclasses;
    for (int c = 0; same_tc && !r.bad && c < s->n_tclasses; c++) {
        json_t *e = json_array_get(tcs, (size_t)c), *nm = ck_get(&r, e, "name", JSON_STRING);
        same_tc = nm && !strcmp(json_string_value(nm), s->tclasses[c].name) &&
                  ck_int(&r, e, "kinds", 0, UINT32_MAX) == (int64_t)s->tclasses[c].kinds;
    }
    in.traffic_kept = same_tc;
    int ck_tc = tcs ? (int)json_array_size(tcs) : 0; /* the checkpoint's traffic classes */
    if (ck_tc > ITS_SCENE_MAX_TCLASSES)
        ck_bad(&r, "more traffic classes than a scene has");
    json_t *lines = ck_get(&r, root, "lines", JSON_ARRAY), *e;
    size_t k;
    for (int i = 0; i < ITS_SCENE_MAX_LINES; i++)
        nl[i] = no_line;
    json_array_foreach(lines, k, e)
    {
        if (r.bad)
            break;
        its_scene_line cl;
        memset(&cl, 0, sizeof cl);
        json_t *nm = ck_get(&r, e, "name", JSON_STRING);
        snprintf(cl.name, sizeof cl.name, "%s", nm ? json_string_value(nm) : "");
        json_t *pa = ck_get(&r, e, "a", JSON_ARRAY), *pb = ck_get(&r, e, "b", JSON_ARRAY),
               *pp = ck_get(&r, e, "positive", JSON_ARRAY);
        if (r.bad)
            break;
        cl.a = ck_pt_v(&r, pa);
        cl.b = ck_pt_v(&r, pb);
        cl.positive = ck_pt_v(&r, pp);
        cl.lanes = (int)ck_int(&r, e, "lanes", 0, 1 << 20);
        lstate l;
        memset(&l, 0, sizeof l);
        ck_cnts(&r, e, "total", l.total, ITS_CLS_COUNT);
        ck_cnts(&r, e, "traffic_total", l.traffic_total, ck_tc);
        json_t *lc = json_object_get(e, "last_cross_ns");
        if (lc) {
            l.has_last_cross = 1;
            l.last_cross_ts = ck_int(&r, e, "last_cross_ns", INT64_MIN / 4, INT64_MAX / 4);
        }
        l.minute = ck_int(&r, e, "minute", 0, INT64_MAX / 4);
        l.minute_vehicles = (uint32_t)ck_int(&r, e, "minute_vehicles", 0, UINT32_MAX);
        ck_ring(&r, e, "b1", l.b1, B1_N, ck_tc);
        ck_ring(&r, e, "b15", l.b15, B15_N, ck_tc);
        if (!same_tc) { /* counts by traffic class start again under a new classification */
            memset(l.traffic_total, 0, sizeof l.traffic_total);
            for (int b = 0; b < B1_N; b++)
                memset(l.b1[b].traffic, 0, sizeof l.b1[b].traffic);
            for (int b = 0; b < B15_N; b++)
                memset(l.b15[b].traffic, 0, sizeof l.b15[b].traffic);
        }
        json_t *f = ck_get(&r, e, "forecast", JSON_OBJECT);
        its_forecast_init(&l.fc, s->params.forecast_alpha, s->params.forecast_beta);
        if (f) {
            l.fc.level = ck_dbl(&r, f, "level", NAN);
            l.fc.trend = ck_dbl(&r, f, "trend", NAN);
            l.fc.n = ck_uint(&r, f, "n");
            ck_dbls(&r, f, "hist", l.fc.hist, 64);
            ck_dbls(&r, f, "f15", l.fc.f15, 64);
            ck_dbls(&r, f, "f60", l.fc.f60, 64);
            l.fc.next1 = ck_dbl(&r, f, "next1", NAN);
            l.fc.abs_err1 = ck_dbl(&r, f, "abs_err1", NAN);
            l.fc.abs_err15 = ck_dbl(&r, f, "abs_err15", NAN);
            l.fc.abs_err60 = ck_dbl(&r, f, "abs_err60", NAN);
            l.fc.n_err1 = ck_uint(&r, f, "n_err1");
            l.fc.n_err15 = ck_uint(&r, f, "n_err15");
            l.fc.n_err60 = ck_uint(&r, f, "n_err60");
        }
        if (r.bad)
            break;
        /* the scene's line of the same name and geometry, not matched yet, takes this state */
        for (int i = 0; i < s->n_lines; i++) {
            if (lmatch[i] || !same_line(&s->lines[i], &cl))
                continue;
            lmatch[i] = 1;
            its_pt u = a->lines[i].u, n = a->lines[i].n;
            double ln = a->lines[i].len;
            nl[i] = l;
            nl[i].u = u;
            nl[i].n = n;
            nl[i].len = ln;
            break;
        }
    }
    json_t *zones = ck_get(&r, root, "zones", JSON_ARRAY);
    memset(nz, 0, sizeof nz);
    json_array_foreach(zones, k, e)
    {
        if (r.bad)
            break;
        its_scene_zone cz;
        memset(&cz, 0, sizeof cz);
        json_t *nm = ck_get(&r, e, "name", JSON_STRING),
               *poly = ck_get(&r, e, "polygon", JSON_ARRAY);
        json_t *walk = ck_get(&r, e, "walk", -1);
        if (r.bad)
            break;
        snprintf(cz.name, sizeof cz.name, "%s", json_string_value(nm));
        if (json_array_size(poly) > ITS_SCENE_MAX_POLY || !json_is_boolean(walk)) {
            ck_bad(&r, "a zone's polygon or walk is not valid");
            break;
        }
        cz.n = (int)json_array_size(poly);
        for (int p = 0; p < cz.n; p++)
            cz.poly[p] = ck_pt_v(&r, json_array_get(poly, (size_t)p));
        cz.walk = json_is_true(walk);
        zstate z;
        memset(&z, 0, sizeof z);
        z.occupied_ns = ck_int(&r, e, "occupied_ns", 0, INT64_MAX / 4);
        z.total_ns = ck_int(&r, e, "total_ns", 0, INT64_MAX / 4);
        z.entries = ck_uint(&r, e, "entries");
        z.dwell_sum = ck_dbl(&r, e, "dwell_sum", 0);
        z.dwell_max = ck_dbl(&r, e, "dwell_max", 0);
        z.dwell_n = ck_uint(&r, e, "dwell_n");
        if (r.bad)
            break;
        for (int i = 0; i < s->n_zones; i++) {
            if (zmatch[i] || !same_zone(&s->zones[i], &cz))
                continue;
            zmatch[i] = 1;
            z.box = a->zones[i].box;
            z.count = 0; /* the tracks inside start again */
            nz[i] = z;
            break;
        }
    }
    json_decref(root);
    if (r.bad) {
        its_free(nl);
        return ITS_EPROTO;
    }
    for (int i = 0; i < s->n_lines; i++)
        if (lmatch[i]) {
            a->lines[i] = nl[i];
            in.lines_kept++;
        }
    for (int i = 0; i < s->n_zones; i++)
        if (zmatch[i]) {
            a->zones[i] = nz[i];
            in.zones_kept++;
        }
    its_free(nl);
    memcpy(a->incidents, incidents, sizeof a->incidents);
    a->refused = ctr[0];
    a->ev_dropped = ctr[1];
    a->tr_dropped = ctr[2];
    a->dups = ctr[3];
    a->riders = ctr[4];
    a->moved = ctr[5];
    a->frames_before = frames;
    /* the stream goes on from where the checkpoint left it, plus the wall-clock time since */
    int64_t gap_ns = wall_us > saved_us ? (wall_us - saved_us) * 1000 : 0;
    a->resume_ns = elapsed + gap_ns;
    a->resumed = 1;
    in.elapsed_s = (double)elapsed / NS;
    in.age_s = (double)gap_ns / NS;
    if (info)
        *info = in;
    return 0;
}

/* Synthetic scenes for the analytics tests: a road 10 m wide and 40 m long seen in
 * perspective, vehicles placed in road metres (the ground truth) and turned into image boxes
 * through the inverse of the scene's homography. */
#ifndef ITS_TEST_SIM_H
#define ITS_TEST_SIM_H

#include <math.h>
#include <string.h>

#include "its/analytics.h"

#define SIM_FPS 30.0
#define SIM_NS  1000000000LL

/* Image (pixels) of the road rectangle's corners: far edge narrower, as from a pole. */
static const its_pt sim_img[4] = {{400, 100}, {880, 100}, {1180, 700}, {100, 700}};
static const its_pt sim_road[4] = {{0, 40}, {10, 40}, {10, 0}, {0, 0}};

/* Road (m) -> image (px) through the inverse of s->H. */
static inline its_pt sim_to_img(const its_scene *s, its_pt r)
{
    const double *h = s->H;
    double inv[9] = {
        h[4] * h[8] - h[5] * h[7], h[2] * h[7] - h[1] * h[8], h[1] * h[5] - h[2] * h[4],
        h[5] * h[6] - h[3] * h[8], h[0] * h[8] - h[2] * h[6], h[2] * h[3] - h[0] * h[5],
        h[3] * h[7] - h[4] * h[6], h[1] * h[6] - h[0] * h[7], h[0] * h[4] - h[1] * h[3]};
    double w = inv[6] * r.x + inv[7] * r.y + inv[8];
    its_pt p = {(inv[0] * r.x + inv[1] * r.y + inv[2]) / w,
                (inv[3] * r.x + inv[4] * r.y + inv[5]) / w};
    return p;
}

/* A calibrated scene; lines and lanes are given in road metres and converted. */
static inline void sim_scene(its_scene *s)
{
    its_scene_default(s);
    strcpy(s->camera, "sim");
    s->fps = SIM_FPS;
    s->width_px = 1280;
    s->height_px = 720;
    s->has_calibration = 1;
    memcpy(s->calib_image, sim_img, sizeof sim_img);
    memcpy(s->calib_road, sim_road, sizeof sim_road);
    its_scene_validate(s, "sim", NULL, 0);
}

/* Counting line across the road at road y = y_m, positive = increasing y (away from camera). */
static inline void sim_add_line(its_scene *s, const char *name, double y_m)
{
    its_scene_line *l = &s->lines[s->n_lines++];
    memset(l, 0, sizeof *l);
    strcpy(l->name, name);
    l->a = sim_to_img(s, (its_pt){0, y_m});
    l->b = sim_to_img(s, (its_pt){10, y_m});
    its_pt p0 = sim_to_img(s, (its_pt){5, y_m}), p1 = sim_to_img(s, (its_pt){5, y_m + 1});
    l->positive = (its_pt){p1.x - p0.x, p1.y - p0.y};
    l->lanes = 2;
}

/* Lane between road x0..x1 and y0..y1, travel towards +y (dir > 0) or -y. */
static inline void sim_add_lane(its_scene *s, const char *name, double x0, double x1, double y0,
                                double y1, int dir, int stop_line)
{
    its_scene_lane *l = &s->lanes[s->n_lanes++];
    memset(l, 0, sizeof *l);
    strcpy(l->name, name);
    l->n = 4;
    l->poly[0] = sim_to_img(s, (its_pt){x0, y0});
    l->poly[1] = sim_to_img(s, (its_pt){x1, y0});
    l->poly[2] = sim_to_img(s, (its_pt){x1, y1});
    l->poly[3] = sim_to_img(s, (its_pt){x0, y1});
    its_pt a = sim_to_img(s, (its_pt){(x0 + x1) / 2, (y0 + y1) / 2});
    its_pt b = sim_to_img(s, (its_pt){(x0 + x1) / 2, (y0 + y1) / 2 + dir});
    l->direction = (its_pt){b.x - a.x, b.y - a.y};
    l->stop_line = stop_line;
}

static inline void sim_add_zone(its_scene *s, const char *name, double x0, double x1, double y0,
                                double y1)
{
    its_scene_zone *z = &s->zones[s->n_zones++];
    memset(z, 0, sizeof *z);
    strcpy(z->name, name);
    z->n = 4;
    z->poly[0] = sim_to_img(s, (its_pt){x0, y0});
    z->poly[1] = sim_to_img(s, (its_pt){x1, y0});
    z->poly[2] = sim_to_img(s, (its_pt){x1, y1});
    z->poly[3] = sim_to_img(s, (its_pt){x0, y1});
}

/* A track whose box stands on road point r (bottom centre), 40 px wide, 30 px high. */
static inline its_track sim_track(const its_scene *s, uint32_t id, int class_id, its_pt r)
{
    its_track t;
    memset(&t, 0, sizeof t);
    its_pt p = sim_to_img(s, r);
    t.id = id;
    t.class_id = class_id;
    t.score = 0.9f;
    t.x1 = (float)(p.x - 20);
    t.x2 = (float)(p.x + 20);
    t.y1 = (float)(p.y - 30);
    t.y2 = (float)p.y;
    t.state = ITS_TRACK_CONFIRMED;
    return t;
}

static inline int64_t sim_ts(int frame)
{
    return (int64_t)llround(frame * (SIM_NS / SIM_FPS)) + 1000 * SIM_NS;
}

#endif

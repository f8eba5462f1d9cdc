/*
 * ByteTrack. See include/its/track.h for the algorithm and the contract.
 *
 * The Kalman filter: state (cx, cy, a, h) and their velocities, constant-velocity motion,
 * noise proportional to the box height (position 1/20, velocity 1/160 of h, as in ByteTrack
 * and SORT). With that motion model and measurement matrix the covariance never couples
 * different coordinates, so it is kept as four 2x2 (position, velocity) blocks: the same
 * numbers as the 8x8 filter at a fraction of the work.
 */
#include <math.h>
#include <string.h>

#include "its/alloc.h"
#include "its/error.h"
#include "its/json.h"
#include "its/track.h"
#include "track_impl.h"

#define W_POS (1.0f / 20.0f)
#define W_VEL (1.0f / 160.0f)

typedef struct trk {
    its_track pub;
    float x[8];    /* cx, cy, a, h, vcx, vcy, va, vh */
    float P[4][3]; /* per coordinate: var(pos), cov(pos, vel), var(vel) */
    int tracked;   /* 1 tracked, 0 lost */
    int activated; /* confirmed at least once */
    uint64_t last_frame;
    uint64_t start_fid;
} trk;

/* A detection box in grid order; w = the score when fusing, else 1. */
typedef struct cbox {
    float x1, y1, x2, y2, w;
    int idx;
} cbox;

#define GRID_SIDE 64
/* Buffered-IoU widening of the boxes matched to tracks, per stream frame skipped since the
 * previous frame, and its ceiling (see its_tracker_update). */
#define SKIP_BUF_PER_FRAME 0.15f
#define SKIP_BUF_MAX       0.6f

struct its_tracker {
    its_tracker_params p;
    trk *trk;  /* slots */
    int *live; /* slot indices in use */
    int n_live;
    int *free_slots;
    int n_free;
    uint32_t next_id;
    uint64_t frame_id;
    int64_t last_ts_ns; /* the previous frame's capture time (0: none yet) */
    its_tracker_stats stats;
    /* per-frame scratch */
    its_track *out;
    int *high, *low; /* indices into dets */
    int *pool, *unconf, *rem_tr;
    int *det_left;
    its__edge *edges;
    int max_edges;
    cbox *cbox;      /* detections in grid-cell order */
    int *cell_of;    /* detection -> grid cell */
    int *cell_start; /* GRID_SIDE^2 + 1 */
    int *row_match, *col_match;
    its__assign as;
};

void its_tracker_params_default(its_tracker_params *p)
{
    p->high_thresh = 0.25f;
    p->low_thresh = 0.1f;
    p->new_thresh = 0.25f;
    p->match_thresh = 0.8f;
    p->track_buffer = 30;
    p->frame_rate = 30.0f;
    p->max_tracks = 1024;
    p->max_dets = 1024;
}

void its_tracker_destroy(its_tracker_t *t)
{
    if (!t)
        return;
    its__assign_free(&t->as);
    its_free(t->trk);
    its_free(t->live);
    its_free(t->free_slots);
    its_free(t->out);
    its_free(t->high);
    its_free(t->low);
    its_free(t->pool);
    its_free(t->unconf);
    its_free(t->rem_tr);
    its_free(t->det_left);
    its_free(t->edges);
    its_free(t->cbox);
    its_free(t->cell_of);
    its_free(t->cell_start);
    its_free(t->row_match);
    its_free(t->col_match);
    its_free(t);
}

int its_tracker_create(const its_tracker_params *p, its_tracker_t **out)
{
    if (!p || !out || !(p->low_thresh >= 0 && p->low_thresh <= p->high_thresh) ||
        !(p->high_thresh <= 1) || !(p->new_thresh >= 0 && p->new_thresh <= 1) ||
        !(p->match_thresh > 0 && p->match_thresh <= 1) || p->track_buffer < 1 ||
        !(p->frame_rate > 0 && p->frame_rate < 1000) || p->max_tracks < 1 ||
        p->max_tracks > 1 << 20 || p->max_dets < 1 || p->max_dets > 1 << 20)
        return ITS_EINVAL;
    its_tracker_t *t = its_calloc(ITS_MOD_TRACK, 1, sizeof *t);
    if (!t)
        return ITS_ENOMEM;
    t->p = *p;
    size_t nt = (size_t)p->max_tracks, nd = (size_t)p->max_dets;
    t->max_edges = (p->max_tracks + p->max_dets) * 8;
    t->trk = its_calloc(ITS_MOD_TRACK, nt, sizeof *t->trk);
    t->live = its_malloc(ITS_MOD_TRACK, nt * sizeof(int));
    t->free_slots = its_malloc(ITS_MOD_TRACK, nt * sizeof(int));
    t->out = its_malloc(ITS_MOD_TRACK, nt * sizeof(its_track));
    t->high = its_malloc(ITS_MOD_TRACK, nd * sizeof(int));
    t->low = its_malloc(ITS_MOD_TRACK, nd * sizeof(int));
    t->pool = its_malloc(ITS_MOD_TRACK, nt * sizeof(int));
    t->unconf = its_malloc(ITS_MOD_TRACK, nt * sizeof(int));
    t->rem_tr = its_malloc(ITS_MOD_TRACK, nt * sizeof(int));
    t->det_left = its_malloc(ITS_MOD_TRACK, nd * sizeof(int));
    t->edges = its_malloc(ITS_MOD_TRACK, (size_t)t->max_edges * sizeof(its__edge));
    t->cbox = its_malloc(ITS_MOD_TRACK, nd * sizeof(cbox));
    t->cell_of = its_malloc(ITS_MOD_TRACK, nd * sizeof(int));
    t->cell_start = its_malloc(ITS_MOD_TRACK, (GRID_SIDE * GRID_SIDE + 1) * sizeof(int));
    t->row_match = its_malloc(ITS_MOD_TRACK, nt * sizeof(int));
    t->col_match = its_malloc(ITS_MOD_TRACK, nd * sizeof(int));
    if (!t->trk || !t->live || !t->free_slots || !t->out || !t->high || !t->low || !t->pool ||
        !t->unconf || !t->rem_tr || !t->det_left || !t->edges || !t->cbox || !t->cell_of ||
        !t->cell_start || !t->row_match || !t->col_match ||
        its__assign_init(&t->as, p->max_tracks, p->max_dets) < 0) {
        its_tracker_destroy(t);
        return ITS_ENOMEM;
    }
    t->next_id = 1;
    its_tracker_reset(t);
    *out = t;
    return 0;
}

void its_tracker_reset(its_tracker_t *t)
{
    t->n_live = 0;
    t->n_free = t->p.max_tracks;
    for (int i = 0; i < t->p.max_tracks; i++)
        t->free_slots[i] = t->p.max_tracks - 1 - i;
    t->last_ts_ns = 0;
}

void its_tracker_get_stats(const its_tracker_t *t, its_tracker_stats *out)
{
    *out = t->stats;
}

/* ---- Kalman filter ---- */

static void kf_init(trk *k, const its_det *d)
{
    float w = d->x2 - d->x1, h = d->y2 - d->y1;
    k->x[0] = (d->x1 + d->x2) * 0.5f;
    k->x[1] = (d->y1 + d->y2) * 0.5f;
    k->x[2] = w / h;
    k->x[3] = h;
    for (int i = 4; i < 8; i++)
        k->x[i] = 0;
    float sp[4] = {2 * W_POS * h, 2 * W_POS * h, 1e-2f, 2 * W_POS * h};
    float sv[4] = {10 * W_VEL * h, 10 * W_VEL * h, 1e-5f, 10 * W_VEL * h};
    for (int i = 0; i < 4; i++) {
        k->P[i][0] = sp[i] * sp[i];
        k->P[i][1] = 0;
        k->P[i][2] = sv[i] * sv[i];
    }
}

static void kf_predict(trk *k)
{
    if (!k->tracked)
        k->x[7] = 0; /* a lost box should not keep growing or shrinking */
    float h = k->x[3];
    float sp[4] = {W_POS * h, W_POS * h, 1e-2f, W_POS * h};
    float sv[4] = {W_VEL * h, W_VEL * h, 1e-5f, W_VEL * h};
    for (int i = 0; i < 4; i++) {
        k->x[i] += k->x[i + 4];
        float p00 = k->P[i][0], p01 = k->P[i][1], p11 = k->P[i][2];
        k->P[i][0] = p00 + 2 * p01 + p11 + sp[i] * sp[i];
        k->P[i][1] = p01 + p11;
        k->P[i][2] = p11 + sv[i] * sv[i];
    }
}

static void kf_update(trk *k, const its_det *d)
{
    float w = d->x2 - d->x1, hh = d->y2 - d->y1;
    float z[4] = {(d->x1 + d->x2) * 0.5f, (d->y1 + d->y2) * 0.5f, w / hh, hh};
    float h = k->x[3];
    float r[4] = {W_POS * h, W_POS * h, 1e-1f, W_POS * h};
    for (int i = 0; i < 4; i++) {
        float p00 = k->P[i][0], p01 = k->P[i][1], p11 = k->P[i][2];
        float s = p00 + r[i] * r[i];
        float k0 = p00 / s, k1 = p01 / s;
        float y = z[i] - k->x[i];
        k->x[i] += k0 * y;
        k->x[i + 4] += k1 * y;
        k->P[i][0] = p00 - k0 * p00;
        k->P[i][1] = p01 - k0 * p01;
        k->P[i][2] = p11 - k1 * p01;
    }
}

static void kf_box(const trk *k, float *x1, float *y1, float *x2, float *y2)
{
    float h = k->x[3], w = k->x[2] * h;
    *x1 = k->x[0] - w * 0.5f;
    *y1 = k->x[1] - h * 0.5f;
    *x2 = *x1 + w;
    *y2 = *y1 + h;
}

/* ---- association ---- */

static int det_ok(const its_det *d)
{
    return isfinite(d->x1) && isfinite(d->y1) && isfinite(d->x2) && isfinite(d->y2) &&
           d->x2 > d->x1 && d->y2 > d->y1 && d->score >= 0 && d->score <= 1;
}

/* Candidate pairs (cost < limit) between track slots tr[] and detections dl[] (indices into
 * dets). Detections go into a uniform grid by box centre, cells as large as the largest box,
 * so a track only looks at the few cells its box (grown by half a box) covers: a handful of
 * candidates per track however many objects are in view. cost = 1 - IoU, or 1 - IoU x score
 * when fusing the detection score. */
/* IoU cost edges between tracks and detections under `limit`. With buf > 0 every box, the
 * track's and the detection's, is first widened by buf times its width and height on each
 * side (buffered IoU, Yang et al. 2023), so that boxes which moved apart between two frames
 * far apart in time still overlap in proportion to how near they are. */
static int build_edges(its_tracker_t *t, const int *tr, int ntr, const int *dl, int ndl,
                       const its_det *dets, int fuse, float limit, float buf)
{
    float maxw = 1, maxh = 1, minx = INFINITY, miny = INFINITY, maxx = -INFINITY, maxy = -INFINITY;
    float grow = 1.0f + 2.0f * buf;
    for (int i = 0; i < ndl; i++) {
        const its_det *d = &dets[dl[i]];
        float cx = (d->x1 + d->x2) * 0.5f, cy = (d->y1 + d->y2) * 0.5f;
        float w = (d->x2 - d->x1) * grow, h = (d->y2 - d->y1) * grow;
        maxw = w > maxw ? w : maxw;
        maxh = h > maxh ? h : maxh;
        minx = cx < minx ? cx : minx;
        maxx = cx > maxx ? cx : maxx;
        miny = cy < miny ? cy : miny;
        maxy = cy > maxy ? cy : maxy;
    }
    float cw = maxw, ch = maxh;
    if ((maxx - minx) / cw >= GRID_SIDE - 1)
        cw = (maxx - minx) / (GRID_SIDE - 1) * 1.001f;
    if ((maxy - miny) / ch >= GRID_SIDE - 1)
        ch = (maxy - miny) / (GRID_SIDE - 1) * 1.001f;
    int gx = (int)((maxx - minx) / cw) + 1, gy = (int)((maxy - miny) / ch) + 1;
    int *start = t->cell_start;
    memset(start, 0, (size_t)(gx * gy + 1) * sizeof(int));
    for (int i = 0; i < ndl; i++) {
        const its_det *d = &dets[dl[i]];
        int cx = (int)(((d->x1 + d->x2) * 0.5f - minx) / cw);
        int cy = (int)(((d->y1 + d->y2) * 0.5f - miny) / ch);
        t->cell_of[i] = cy * gx + cx;
        start[t->cell_of[i] + 1]++;
    }
    for (int c = 0; c < gx * gy; c++)
        start[c + 1] += start[c];
    for (int i = 0; i < ndl; i++) {
        const its_det *d = &dets[dl[i]];
        cbox *b = &t->cbox[start[t->cell_of[i]]++];
        float bw = (d->x2 - d->x1) * buf, bh = (d->y2 - d->y1) * buf;
        b->x1 = d->x1 - bw;
        b->y1 = d->y1 - bh;
        b->x2 = d->x2 + bw;
        b->y2 = d->y2 + bh;
        b->w = fuse ? d->score : 1.0f;
        b->idx = i;
    }
    /* start[c] is now the end of cell c, and cell c begins at start[c - 1] */
    int ne = 0;
    for (int r = 0; r < ntr; r++) {
        float a1, b1, a2, b2;
        kf_box(&t->trk[tr[r]], &a1, &b1, &a2, &b2);
        if (buf > 0) {
            float bw = (a2 - a1) * buf, bh = (b2 - b1) * buf;
            a1 -= bw;
            a2 += bw;
            b1 -= bh;
            b2 += bh;
        }
        float area_t = (a2 - a1) * (b2 - b1);
        if (!(area_t > 0))
            continue;
        float fx0 = (a1 - maxw * 0.5f - minx) / cw, fx1 = (a2 + maxw * 0.5f - minx) / cw;
        float fy0 = (b1 - maxh * 0.5f - miny) / ch, fy1 = (b2 + maxh * 0.5f - miny) / ch;
        if (fx1 < 0 || fy1 < 0 || fx0 >= gx || fy0 >= gy || !(fx0 == fx0) || !(fy0 == fy0))
            continue;
        int x0 = fx0 < 0 ? 0 : (int)fx0, x1 = fx1 >= gx ? gx - 1 : (int)fx1;
        int y0 = fy0 < 0 ? 0 : (int)fy0, y1 = fy1 >= gy ? gy - 1 : (int)fy1;
        for (int cy = y0; cy <= y1; cy++) {
            int from = cy * gx + x0 == 0 ? 0 : start[cy * gx + x0 - 1], to = start[cy * gx + x1];
            for (int q = from; q < to; q++) {
                const cbox *d = &t->cbox[q];
                if (d->x1 >= a2 || d->x2 <= a1 || d->y1 >= b2 || d->y2 <= b1)
                    continue;
                float iw = (a2 < d->x2 ? a2 : d->x2) - (a1 > d->x1 ? a1 : d->x1);
                float ih = (b2 < d->y2 ? b2 : d->y2) - (b1 > d->y1 ? b1 : d->y1);
                float inter = iw * ih;
                float iou = inter / (area_t + (d->x2 - d->x1) * (d->y2 - d->y1) - inter);
                float cost = 1.0f - iou * d->w;
                if (cost >= limit)
                    continue;
                if (ne == t->max_edges)
                    return ne; /* pathological overlap: the cheapest pairs are usually found */
                t->edges[ne].r = r;
                t->edges[ne].c = d->idx;
                t->edges[ne].cost = cost;
                ne++;
            }
        }
    }
    return ne;
}

static void associate(its_tracker_t *t, const int *tr, int ntr, const int *dl, int ndl,
                      const its_det *dets, int fuse, float limit, float buf)
{
    int ne = ntr && ndl ? build_edges(t, tr, ntr, dl, ndl, dets, fuse, limit, buf) : 0;
    its__assign_solve(&t->as, ntr, ndl, t->edges, ne, limit, t->row_match, t->col_match);
}

static void track_hit(its_tracker_t *t, trk *k, const its_det *dets, int di)
{
    kf_update(k, &dets[di]);
    k->tracked = 1;
    if (!k->activated) {
        k->activated = 1;
        t->stats.tracks_confirmed++;
    }
    k->last_frame = t->frame_id;
    k->pub.class_id = dets[di].class_id;
    k->pub.score = dets[di].score;
    k->pub.det_index = di;
    k->pub.hits++;
}

/* A weak detection matched to a tentative track: the filter follows it, the track stays
 * tentative (only a high detection confirms). */
static void track_keep(trk *k, const its_det *dets, int di, uint64_t frame_id)
{
    kf_update(k, &dets[di]);
    k->last_frame = frame_id;
    k->pub.det_index = di;
    k->pub.hits++;
}

static void release(its_tracker_t *t, int li)
{
    int slot = t->live[li];
    t->trk[slot].pub.state = ITS_TRACK_REMOVED;
    t->free_slots[t->n_free++] = slot;
    t->live[li] = t->live[--t->n_live];
}

int its_tracker_update(its_tracker_t *t, const its_det_frame *f, const its_track **out)
{
    if (!t || !f || !out || f->n < 0 || (f->n > 0 && !f->dets))
        return ITS_EINVAL;
    const its_det *dets = f->dets;
    int n = f->n;
    if (n > t->p.max_dets) {
        t->stats.dets_dropped += (uint64_t)(n - t->p.max_dets);
        n = t->p.max_dets;
    }
    t->frame_id++;
    t->stats.frames++;

    int nh = 0, nl = 0;
    for (int i = 0; i < n; i++) {
        const its_det *d = &dets[i];
        if (!det_ok(d)) {
            t->stats.dets_invalid++;
            continue;
        }
        if (d->score >= t->p.high_thresh)
            t->high[nh++] = i;
        else if (d->score >= t->p.low_thresh)
            t->low[nl++] = i;
    }

    /* Pool: tracked-and-confirmed plus lost; tentative tracks apart. */
    int np = 0, nu = 0;
    for (int li = 0; li < t->n_live; li++) {
        int s = t->live[li];
        trk *k = &t->trk[s];
        k->pub.det_index = -1;
        if (k->activated || !k->tracked)
            t->pool[np++] = s;
        else
            t->unconf[nu++] = s;
    }
    for (int i = 0; i < np; i++)
        kf_predict(&t->trk[t->pool[i]]);
    /* A tentative track that weak detections kept alive has a velocity worth following. */
    for (int i = 0; i < nu; i++)
        if (t->trk[t->unconf[i]].pub.hits > 1)
            kf_predict(&t->trk[t->unconf[i]]);

    /* Where frames are further apart than the stream's frame rate (a camera sampled at a
     * few frames per second), an object moves out of its own box between two frames: a track
     * seen once has no velocity yet, and a young track's filtered velocity lags behind, so
     * plain IoU would neither confirm nor keep it. Every stage then matches buffered boxes,
     * the buffer growing with the stream frames skipped since the previous frame: 0 at the
     * full rate, where the matching is ByteTrack's own. */
    float tbuf = 0;
    if (t->last_ts_ns > 0 && f->ts_ns > t->last_ts_ns) {
        float gap = (float)(f->ts_ns - t->last_ts_ns) * 1e-9f * t->p.frame_rate - 1.0f;
        tbuf = gap > 0 ? gap * SKIP_BUF_PER_FRAME : 0;
        tbuf = tbuf > SKIP_BUF_MAX ? SKIP_BUF_MAX : tbuf;
    }
    t->last_ts_ns = f->ts_ns;

    /* Stage 1: pool vs high detections. */
    associate(t, t->pool, np, t->high, nh, dets, 1, t->p.match_thresh, tbuf);
    int nleft = 0, nrem = 0;
    for (int c = 0; c < nh; c++)
        if (t->col_match[c] < 0)
            t->det_left[nleft++] = t->high[c];
    for (int r = 0; r < np; r++) {
        trk *k = &t->trk[t->pool[r]];
        if (t->row_match[r] >= 0)
            track_hit(t, k, dets, t->high[t->row_match[r]]);
        else if (k->tracked)
            t->rem_tr[nrem++] = t->pool[r];
    }

    /* Stage 2: still unmatched live tracks vs low detections (occluded objects). */
    associate(t, t->rem_tr, nrem, t->low, nl, dets, 0, 0.5f, tbuf);
    for (int r = 0; r < nrem; r++) {
        trk *k = &t->trk[t->rem_tr[r]];
        if (t->row_match[r] >= 0)
            track_hit(t, k, dets, t->low[t->row_match[r]]);
        else
            k->tracked = 0; /* lost */
    }

    /* Low detections stage 2 left over, for stage 4. */
    int nlow = 0;
    for (int c = 0; c < nl; c++)
        if (t->col_match[c] < 0)
            t->low[nlow++] = t->low[c];

    /* Stage 3: tentative tracks vs the high detections left over (confirms them). */
    associate(t, t->unconf, nu, t->det_left, nleft, dets, 1, 0.7f, tbuf);
    int nweak = 0;
    for (int r = 0; r < nu; r++) {
        trk *k = &t->trk[t->unconf[r]];
        if (t->row_match[r] >= 0)
            track_hit(t, k, dets, t->det_left[t->row_match[r]]);
        else
            t->rem_tr[nweak++] = t->unconf[r];
    }
    /* det_left keeps only what no track took: the candidates for new tracks. */
    int nnew = 0;
    for (int c = 0; c < nleft; c++)
        if (t->col_match[c] < 0)
            t->det_left[nnew++] = t->det_left[c];
    nleft = nnew;

    /* Stage 4: tentative tracks still unmatched vs the low detections left over: a weak
     * detection keeps a tentative track alive (not confirmed); unmatched, it is dropped. */
    associate(t, t->rem_tr, nweak, t->low, nlow, dets, 0, 0.5f, tbuf);
    for (int r = 0; r < nweak; r++) {
        trk *k = &t->trk[t->rem_tr[r]];
        if (t->row_match[r] >= 0)
            track_keep(k, dets, t->low[t->row_match[r]], t->frame_id);
        else
            k->pub.state = ITS_TRACK_REMOVED; /* released below */
    }

    /* Remove tentative tracks that missed and lost tracks past the buffer. */
    uint64_t max_lost = (uint64_t)(t->p.frame_rate / 30.0f * (float)t->p.track_buffer);
    if (max_lost < 1)
        max_lost = 1;
    for (int li = 0; li < t->n_live;) {
        trk *k = &t->trk[t->live[li]];
        if (k->pub.state == ITS_TRACK_REMOVED || t->frame_id - k->last_frame > max_lost)
            release(t, li);
        else
            li++;
    }

    /* New tentative tracks from leftover high detections (confirmed at once on frame 1). */
    for (int c = 0; c < nleft; c++) {
        int di = t->det_left[c];
        if (dets[di].score < t->p.new_thresh)
            continue;
        if (t->n_free == 0) {
            t->stats.tracks_dropped++;
            continue;
        }
        int s = t->free_slots[--t->n_free];
        t->live[t->n_live++] = s;
        trk *k = &t->trk[s];
        memset(k, 0, sizeof *k);
        kf_init(k, &dets[di]);
        k->tracked = 1;
        k->activated = t->frame_id == 1;
        k->last_frame = t->frame_id;
        k->start_fid = t->frame_id;
        k->pub.id = t->next_id++;
        k->pub.class_id = dets[di].class_id;
        k->pub.score = dets[di].score;
        k->pub.det_index = di;
        k->pub.hits = 1;
        k->pub.start_frame = f->frame_no;
        k->pub.origin_x = (dets[di].x1 + dets[di].x2) * 0.5f;
        k->pub.origin_y = dets[di].y2;
        k->pub.origin_h = dets[di].y2 - dets[di].y1;
        t->stats.tracks_started++;
        if (k->activated)
            t->stats.tracks_confirmed++;
    }

    int no = 0;
    for (int li = 0; li < t->n_live; li++) {
        trk *k = &t->trk[t->live[li]];
        k->pub.age = (uint32_t)(t->frame_id - k->start_fid + 1);
        if (!k->tracked) {
            k->pub.state = ITS_TRACK_LOST;
            continue;
        }
        k->pub.state = k->activated ? ITS_TRACK_CONFIRMED : ITS_TRACK_TENTATIVE;
        if (!k->activated || k->last_frame != t->frame_id)
            continue;
        its_track *o = &t->out[no++];
        *o = k->pub;
        kf_box(k, &o->x1, &o->y1, &o->x2, &o->y2);
        o->vx = k->x[4];
        o->vy = k->x[5];
    }
    *out = t->out;
    return no;
}

int its_tracks_to_json(const its_det_frame *f, const its_track *tracks, int n, char *buf,
                       size_t len)
{
    its_json w;
    its_json_init(&w, buf, len);
    its_json_obj_begin(&w);
    its_json_kuint(&w, "frame", f ? f->frame_no : 0);
    its_json_kint(&w, "ts_ns", f ? f->ts_ns : 0);
    its_json_key(&w, "tracks");
    its_json_arr_begin(&w);
    for (int i = 0; i < n; i++) {
        const its_track *t = &tracks[i];
        its_json_obj_begin(&w);
        its_json_kuint(&w, "id", t->id);
        its_json_kint(&w, "class", t->class_id);
        its_json_knum(&w, "score", t->score);
        its_json_key(&w, "box");
        its_json_arr_begin(&w);
        its_json_num(&w, t->x1);
        its_json_num(&w, t->y1);
        its_json_num(&w, t->x2);
        its_json_num(&w, t->y2);
        its_json_arr_end(&w);
        its_json_key(&w, "v");
        its_json_arr_begin(&w);
        its_json_num(&w, t->vx);
        its_json_num(&w, t->vy);
        its_json_arr_end(&w);
        its_json_obj_end(&w);
    }
    its_json_arr_end(&w);
    its_json_obj_end(&w);
    return its_json_finish(&w);
}

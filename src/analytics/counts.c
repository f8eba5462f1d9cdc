/*
 * Interval counts for traffic studies (include/its/counts.h): a ring of clock-aligned
 * buckets per camera, each with one cell per line, traffic class and direction, and the CSV
 * written from them.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "its/alloc.h"
#include "its/counts.h"
#include "its/error.h"

#define NS_PER_S 1000000000LL

typedef struct cell {
    uint32_t count;
    uint32_t n_speed;
    double inv_speed_sum; /* sum of 1 / speed over the crossings with a speed */
} cell;

typedef struct bucket {
    int64_t idx; /* clock_ns / bucket_ns; INT64_MIN: empty */
    int64_t observed_ns;
} bucket;

/* A counted crossing, for a later change of its class. */
typedef struct crossing {
    uint64_t seq; /* 0: empty */
    int64_t idx;
    int line, tc, di;
    double inv_speed; /* 0: no speed */
} crossing;

struct its_counts {
    pthread_mutex_t mu;
    char camera[2 * 256 + 4]; /* as a CSV field */
    int64_t bucket_ns;
    int keep;
    int n_lines, n_tc, n_cells; /* cells per bucket: n_lines * n_tc * 2 */
    char lines[ITS_SCENE_MAX_LINES][ITS_SCENE_NAME_MAX];
    char classes[ITS_SCENE_MAX_TCLASSES][ITS_SCENE_NAME_MAX];
    bucket *b;
    cell *cells; /* keep * n_cells */
    crossing recent[ITS_COUNTS_RECENT];
    int recent_head;
    int64_t last_ns;
    int has_last;
};

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static void csv_field(char *out, size_t len, const char *s);

int its_counts_create(const its_scene *scene, const char *camera, int bucket_s, int keep,
                      its_counts_t **out)
{
    *out = NULL;
    if (!scene || !camera || strlen(camera) > 256 || bucket_s < 1 || bucket_s > 3600 || keep < 1 ||
        keep > 1000000)
        return ITS_EINVAL;
    its_counts_t *c = its_calloc(ITS_MOD_ANALYTICS, 1, sizeof *c);
    if (!c)
        return ITS_ENOMEM;
    csv_field(c->camera, sizeof c->camera, camera);
    c->bucket_ns = (int64_t)bucket_s * NS_PER_S;
    c->keep = keep;
    c->n_lines = scene->n_lines;
    c->n_tc = scene->n_tclasses;
    c->n_cells = c->n_lines * c->n_tc * 2;
    for (int i = 0; i < c->n_lines; i++)
        snprintf(c->lines[i], sizeof c->lines[i], "%s", scene->lines[i].name);
    for (int i = 0; i < c->n_tc; i++)
        snprintf(c->classes[i], sizeof c->classes[i], "%s", scene->tclasses[i].name);
    c->b = its_calloc(ITS_MOD_ANALYTICS, (size_t)keep, sizeof *c->b);
    c->cells = c->n_cells
                   ? its_calloc(ITS_MOD_ANALYTICS, (size_t)keep * (size_t)c->n_cells, sizeof(cell))
                   : NULL;
    if (!c->b || (c->n_cells && !c->cells)) {
        its_free(c->b);
        its_free(c->cells);
        its_free(c);
        return ITS_ENOMEM;
    }
    for (int i = 0; i < keep; i++)
        c->b[i].idx = INT64_MIN;
    pthread_mutex_init(&c->mu, NULL);
    *out = c;
    return 0;
}

void its_counts_destroy(its_counts_t *c)
{
    if (!c)
        return;
    pthread_mutex_destroy(&c->mu);
    its_free(c->b);
    its_free(c->cells);
    its_free(c);
}

int its_counts_bucket_s(const its_counts_t *c)
{
    return (int)(c->bucket_ns / NS_PER_S);
}

static int slot_of(const its_counts_t *c, int64_t idx)
{
    int64_t m = idx % c->keep;
    return (int)(m < 0 ? m + c->keep : m);
}

static cell *cells_of(its_counts_t *c, int slot)
{
    return c->cells + (size_t)slot * (size_t)c->n_cells;
}

/* The bucket idx, made current (an older occupant of its slot is dropped); NULL when idx is
 * older than what the slot holds (it left the ring). */
static bucket *get_bucket(its_counts_t *c, int64_t idx, int create)
{
    int s = slot_of(c, idx);
    bucket *b = &c->b[s];
    if (b->idx == idx)
        return b;
    if (!create || (b->idx != INT64_MIN && b->idx > idx))
        return NULL;
    b->idx = idx;
    b->observed_ns = 0;
    if (c->n_cells)
        memset(cells_of(c, s), 0, (size_t)c->n_cells * sizeof(cell));
    return b;
}

static cell *cell_at(its_counts_t *c, int64_t idx, int line, int tc, int di)
{
    bucket *b = get_bucket(c, idx, 0);
    if (!b)
        return NULL;
    return cells_of(c, (int)(b - c->b)) + ((size_t)line * (size_t)c->n_tc + (size_t)tc) * 2 + di;
}

/* Observed time [t0, t1) into the buckets it spans. */
static void observe(its_counts_t *c, int64_t t0, int64_t t1)
{
    while (t0 < t1) {
        int64_t idx = floor_div(t0, c->bucket_ns);
        int64_t end = (idx + 1) * c->bucket_ns;
        int64_t e = end < t1 ? end : t1;
        bucket *b = get_bucket(c, idx, 1);
        if (b)
            b->observed_ns += e - t0;
        t0 = e;
    }
}

static void add_crossing(its_counts_t *c, const its_event *e, int64_t idx)
{
    int line = e->index, tc = e->tclass, di = e->direction > 0 ? 0 : 1;
    if (line < 0 || line >= c->n_lines)
        return;
    double inv = isfinite(e->speed_kmh) && e->speed_kmh > 1 ? 1.0 / e->speed_kmh : 0;
    if (tc >= 0 && tc < c->n_tc) {
        cell *x = cell_at(c, idx, line, tc, di);
        if (x) {
            x->count++;
            if (inv > 0) {
                x->inv_speed_sum += inv;
                x->n_speed++;
            }
        }
    }
    crossing *r = &c->recent[c->recent_head];
    c->recent_head = (c->recent_head + 1) % ITS_COUNTS_RECENT;
    *r = (crossing){.seq = e->seq, .idx = idx, .line = line, .tc = tc, .di = di, .inv_speed = inv};
}

/* A counted crossing changed class: move it within its bucket. */
static void move_crossing(its_counts_t *c, const its_event *e)
{
    for (int k = 1; k <= ITS_COUNTS_RECENT; k++) {
        crossing *r = &c->recent[(c->recent_head - k + ITS_COUNTS_RECENT) % ITS_COUNTS_RECENT];
        if (!r->seq)
            return;
        if (r->seq != e->seq)
            continue;
        int tc = e->tclass >= 0 && e->tclass < c->n_tc ? e->tclass : -1;
        if (tc == r->tc)
            return;
        cell *from = r->tc >= 0 ? cell_at(c, r->idx, r->line, r->tc, r->di) : NULL;
        cell *to = tc >= 0 ? cell_at(c, r->idx, r->line, tc, r->di) : NULL;
        if (from && from->count) {
            from->count--;
            if (r->inv_speed > 0 && from->n_speed) {
                from->n_speed--;
                from->inv_speed_sum -= r->inv_speed;
            }
        }
        if (to) {
            to->count++;
            if (r->inv_speed > 0) {
                to->n_speed++;
                to->inv_speed_sum += r->inv_speed;
            }
        }
        r->tc = tc;
        return;
    }
}

void its_counts_frame(its_counts_t *c, int64_t clock_ns, const its_event *ev, int n_ev)
{
    pthread_mutex_lock(&c->mu);
    int64_t idx = floor_div(clock_ns, c->bucket_ns);
    if (c->has_last && clock_ns > c->last_ns &&
        clock_ns - c->last_ns <= (int64_t)ITS_COUNTS_GAP_S * NS_PER_S)
        observe(c, c->last_ns, clock_ns);
    get_bucket(c, idx, 1); /* the frame's bucket is seen, if only for an instant */
    if (!c->has_last || clock_ns > c->last_ns) {
        c->last_ns = clock_ns;
        c->has_last = 1;
    }
    for (int i = 0; i < n_ev; i++) {
        const its_event *e = &ev[i];
        if (e->type != ITS_EV_LINE_CROSSING)
            continue;
        if (e->phase == ITS_PHASE_NONE)
            add_crossing(c, e, idx);
        else if (e->phase == ITS_PHASE_UPDATE)
            move_crossing(c, e);
    }
    pthread_mutex_unlock(&c->mu);
}

/* ---- CSV ------------------------------------------------------------------------------- */

static void iso_time(int64_t ns, char *buf, size_t len)
{
    time_t t = (time_t)floor_div(ns, NS_PER_S);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* A field as RFC 4180 wants it: quoted when it holds a comma, a quote or a line break. */
static void csv_field(char *out, size_t len, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        snprintf(out, len, "%s", s);
        return;
    }
    size_t k = 0;
    if (k + 1 < len)
        out[k++] = '"';
    for (; *s && k + 3 < len; s++) {
        if (*s == '"')
            out[k++] = '"';
        out[k++] = *s;
    }
    out[k++] = '"';
    out[k] = 0;
}

int its_counts_csv(its_counts_t *c, int64_t from_ns, int64_t to_ns, int interval_s,
                   its_counts_put_fn put, void *ctx)
{
    if (!c || !put || interval_s < 1 || ((int64_t)interval_s * NS_PER_S) % c->bucket_ns)
        return ITS_EINVAL;
    int rc = 0;
    if (from_ns >= to_ns)
        return 0;
    int64_t iv_ns = (int64_t)interval_s * NS_PER_S;
    int per = (int)(iv_ns / c->bucket_ns);
    pthread_mutex_lock(&c->mu);
    /* the intervals the ring can still hold: from its oldest possible bucket on */
    int64_t newest = INT64_MIN;
    for (int i = 0; i < c->keep; i++)
        if (c->b[i].idx > newest)
            newest = c->b[i].idx;
    int64_t i0 = floor_div(from_ns, iv_ns), i1 = floor_div(to_ns - 1, iv_ns);
    if (newest != INT64_MIN) {
        int64_t oldest_iv = floor_div((newest - c->keep + 1) * c->bucket_ns, iv_ns);
        if (i0 < oldest_iv)
            i0 = oldest_iv;
        int64_t newest_iv = floor_div(newest * c->bucket_ns, iv_ns);
        if (i1 > newest_iv)
            i1 = newest_iv;
    } else {
        i1 = i0 - 1; /* nothing seen yet */
    }
    enum { MAX_CELLS = ITS_SCENE_MAX_LINES * ITS_SCENE_MAX_TCLASSES * 2 };
    cell sum[MAX_CELLS];
    for (int64_t iv = i0; rc >= 0 && iv <= i1; iv++) {
        memset(sum, 0, sizeof sum);
        int64_t observed = 0;
        int seen = 0;
        for (int k = 0; k < per; k++) {
            int64_t idx = iv * per + k;
            bucket *b = get_bucket(c, idx, 0);
            if (!b)
                continue;
            seen = 1;
            observed += b->observed_ns;
            const cell *x = cells_of(c, (int)(b - c->b));
            for (int j = 0; j < c->n_cells; j++) {
                sum[j].count += x[j].count;
                sum[j].n_speed += x[j].n_speed;
                sum[j].inv_speed_sum += x[j].inv_speed_sum;
            }
        }
        if (!seen)
            continue;
        char t0[32], t1[32];
        iso_time(iv * iv_ns, t0, sizeof t0);
        iso_time((iv + 1) * iv_ns, t1, sizeof t1);
        double obs_s = (double)observed / 1e9;
        for (int l = 0; rc >= 0 && l < c->n_lines; l++) {
            char lf[2 * ITS_SCENE_NAME_MAX + 4];
            csv_field(lf, sizeof lf, c->lines[l]);
            for (int t = 0; rc >= 0 && t < c->n_tc; t++) {
                char cf[2 * ITS_SCENE_NAME_MAX + 4];
                csv_field(cf, sizeof cf, c->classes[t]);
                for (int d = 0; rc >= 0 && d < 2; d++) {
                    const cell *x = &sum[((size_t)l * (size_t)c->n_tc + (size_t)t) * 2 + d];
                    char speed[32] = "", flow[32] = "", row[1024];
                    if (x->n_speed)
                        snprintf(speed, sizeof speed, "%.2f",
                                 (double)x->n_speed / x->inv_speed_sum);
                    if (obs_s > 0)
                        snprintf(flow, sizeof flow, "%.1f", (double)x->count * 3600.0 / obs_s);
                    int n = snprintf(row, sizeof row, "%s,%s,%s,%s,%s,%s,%u,%s,%s,%.3f\n",
                                     c->camera, t0, t1, lf, cf, d == 0 ? "positive" : "negative",
                                     x->count, speed, flow, obs_s);
                    rc = put(ctx, row, (size_t)n);
                }
            }
        }
    }
    pthread_mutex_unlock(&c->mu);
    return rc < 0 ? rc : 0;
}

int its_counts_parse_interval(const char *s, int *seconds)
{
    if (!s || !*s)
        return ITS_EINVAL;
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || v < 1)
        return ITS_EINVAL;
    long mul = 1;
    if (!strcmp(end, "m"))
        mul = 60;
    else if (!strcmp(end, "h"))
        mul = 3600;
    else if (strcmp(end, "s") && *end)
        return ITS_EINVAL;
    if (v > 86400 / mul)
        return ITS_EINVAL;
    *seconds = (int)(v * mul);
    return 0;
}

int its_counts_parse_time(const char *s, int64_t *ns)
{
    if (!s || !*s)
        return ITS_EINVAL;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (!*end && end != s) { /* unix seconds */
        if (v < 0 || v > 253402300799LL)
            return ITS_EINVAL;
        *ns = v * NS_PER_S;
        return 0;
    }
    struct tm tm = {0};
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        return ITS_EINVAL;
    int64_t frac = 0;
    if (*p == '.') {
        int64_t scale = NS_PER_S / 10;
        for (p++; *p >= '0' && *p <= '9'; p++) {
            frac += (*p - '0') * scale;
            scale /= 10;
        }
    }
    if (strcmp(p, "Z"))
        return ITS_EINVAL;
    time_t t = timegm(&tm);
    if (t < 0)
        return ITS_EINVAL;
    *ns = (int64_t)t * NS_PER_S + frac;
    return 0;
}

/* ---- the cameras' table ---------------------------------------------------------------- */

typedef struct store_entry {
    char id[64 + 1];
    its_counts_t *c;
} store_entry;

struct its_counts_store {
    pthread_mutex_t mu;
    int max;
    store_entry *e;
};

int its_counts_store_create(int max_cameras, its_counts_store **out)
{
    *out = NULL;
    if (max_cameras < 1)
        return ITS_EINVAL;
    its_counts_store *s = its_calloc(ITS_MOD_ANALYTICS, 1, sizeof *s);
    if (!s)
        return ITS_ENOMEM;
    s->e = its_calloc(ITS_MOD_ANALYTICS, (size_t)max_cameras, sizeof *s->e);
    if (!s->e) {
        its_free(s);
        return ITS_ENOMEM;
    }
    s->max = max_cameras;
    pthread_mutex_init(&s->mu, NULL);
    *out = s;
    return 0;
}

void its_counts_store_destroy(its_counts_store *s)
{
    if (!s)
        return;
    pthread_mutex_destroy(&s->mu);
    its_free(s->e);
    its_free(s);
}

int its_counts_store_add(its_counts_store *s, const char *camera, its_counts_t *c)
{
    if (!s || !camera || !c || strlen(camera) >= sizeof s->e[0].id)
        return ITS_EINVAL;
    pthread_mutex_lock(&s->mu);
    int free_slot = -1, rc = ITS_EFULL;
    for (int i = 0; i < s->max; i++) {
        if (s->e[i].c && !strcmp(s->e[i].id, camera)) {
            s->e[i].c = c;
            rc = 0;
            break;
        }
        if (!s->e[i].c && free_slot < 0)
            free_slot = i;
    }
    if (rc < 0 && free_slot >= 0) {
        snprintf(s->e[free_slot].id, sizeof s->e[free_slot].id, "%s", camera);
        s->e[free_slot].c = c;
        rc = 0;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void its_counts_store_remove(its_counts_store *s, const char *camera, its_counts_t *c)
{
    if (!s || !camera)
        return;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->max; i++)
        if (s->e[i].c == c && !strcmp(s->e[i].id, camera))
            s->e[i].c = NULL;
    pthread_mutex_unlock(&s->mu);
}

int its_counts_store_csv(its_counts_store *s, const char *camera, int64_t from_ns, int64_t to_ns,
                         int interval_s, its_counts_put_fn put, void *ctx)
{
    if (!s || !camera)
        return ITS_EINVAL;
    pthread_mutex_lock(&s->mu);
    int rc = ITS_ENOENT;
    for (int i = 0; i < s->max; i++)
        if (s->e[i].c && !strcmp(s->e[i].id, camera)) {
            rc = its_counts_csv(s->e[i].c, from_ns, to_ns, interval_s, put, ctx);
            break;
        }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

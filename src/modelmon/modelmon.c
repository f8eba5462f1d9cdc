/*
 * ModelMetricsService. See include/its/modelmon.h for the definitions.
 *
 * The rolling window is a ring of sub-histograms: adding a frame touches one of them, and
 * when the oldest block is recycled its frames leave the window all at once. That makes the
 * window slightly ragged (between window_frames - block and window_frames frames) but needs
 * no per-frame storage and no allocation, which is what an always-on monitor wants.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "its/alloc.h"
#include "its/error.h"
#include "its/json.h"
#include "its/metrics.h"
#include "its/modelmon.h"

#define LAT_N     64
#define LAT_BASE  0.05 /* ms, upper bound of bucket 0 */
#define LAT_RATIO 1.25
#define TP_N      10

static const int feature_bins[ITS_MM_FEATURES] = {20, 81, 22, 25};
static const char *const feature_names[ITS_MM_FEATURES] = {"conf", "class", "count", "area"};

struct its_modelmon {
    its_modelmon_params p;
    its_mm_hist base[ITS_MM_FEATURES];
    uint64_t base_frames;
    int base_ready;
    its_mm_hist *blocks; /* window_blocks x ITS_MM_FEATURES */
    int block_frames, cur_block, cur_frames;
    uint64_t frames, dets, rejected;
    int64_t ob_sec[TP_N];
    uint64_t ob_dets[TP_N];
    int64_t ob_last;
    int64_t ob_first;
    int ob_any;
    pthread_mutex_t mu; /* guards the inference fields below */
    uint64_t lat[LAT_N];
    uint64_t lat_n;
    double lat_sum_ms;
    int64_t tp_sec[TP_N];
    uint64_t tp_frames[TP_N];
    int64_t tp_last, tp_first;
    int tp_any;
};

void its_modelmon_params_default(its_modelmon_params *p)
{
    memset(p, 0, sizeof *p);
    p->baseline_frames = 1000;
    p->window_frames = 1000;
    p->window_blocks = 10;
    p->psi_warn = 0.1;
    p->psi_alert = 0.25;
    p->ks_c = 1.628;
    p->ks_min_d = 0.1;
    p->min_samples = 200;
}

static void hist_init(its_mm_hist *h, int f)
{
    memset(h, 0, sizeof *h);
    h->nbins = feature_bins[f];
}

void its_modelmon_destroy(its_modelmon_t *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->mu);
    its_free(m->blocks);
    its_free(m);
}

int its_modelmon_create(const its_modelmon_params *p, its_modelmon_t **out)
{
    if (!p || !out || p->baseline_frames < 1 || p->window_blocks < 1 || p->window_blocks > 1000 ||
        p->window_frames < p->window_blocks || !(p->psi_warn > 0 && p->psi_alert >= p->psi_warn) ||
        !(p->ks_c > 0) || !(p->ks_min_d >= 0 && p->ks_min_d <= 1) || p->min_samples < 1 ||
        memchr(p->model, 0, sizeof p->model) == NULL)
        return ITS_EINVAL;
    its_modelmon_t *m = its_calloc(ITS_MOD_MODELMON, 1, sizeof *m);
    if (!m)
        return ITS_ENOMEM;
    m->blocks = its_calloc(ITS_MOD_MODELMON, (size_t)p->window_blocks * ITS_MM_FEATURES,
                           sizeof(its_mm_hist));
    if (!m->blocks || pthread_mutex_init(&m->mu, NULL) != 0) {
        its_free(m->blocks);
        its_free(m);
        return ITS_ENOMEM;
    }
    m->p = *p;
    m->block_frames = p->window_frames / p->window_blocks;
    for (int b = 0; b < p->window_blocks; b++)
        for (int f = 0; f < ITS_MM_FEATURES; f++)
            hist_init(&m->blocks[b * ITS_MM_FEATURES + f], f);
    its_modelmon_baseline_reset(m);
    *out = m;
    return 0;
}

void its_modelmon_baseline_reset(its_modelmon_t *m)
{
    for (int f = 0; f < ITS_MM_FEATURES; f++)
        hist_init(&m->base[f], f);
    m->base_frames = 0;
    m->base_ready = 0;
}

/* ---- observing ---- */

static void add(its_mm_hist *h, int bin)
{
    if (bin < 0)
        bin = 0;
    if (bin >= h->nbins)
        bin = h->nbins - 1;
    h->bins[bin]++;
    h->n++;
}

/* Detections per frame: one bin each up to 15, then wider ones (sparse bins inflate PSI). */
static int count_bin(int n)
{
    static const int edges[6] = {16, 20, 24, 32, 48, 64};
    if (n < 16)
        return n;
    int b = 15;
    for (int i = 0; i < 6 && n >= edges[i]; i++)
        b++;
    return b;
}

static void add_frame(its_mm_hist *h, const its_det_frame *f)
{
    for (int i = 0; i < f->n; i++) {
        const its_det *d = &f->dets[i];
        if (isfinite(d->score))
            add(&h[ITS_MM_CONF], (int)floor(fmin(fmax(d->score, 0), 1) * 20));
        add(&h[ITS_MM_CLASS], d->class_id >= 0 && d->class_id < 80 ? d->class_id : 80);
        double a = (double)(d->x2 - d->x1) * (d->y2 - d->y1);
        if (f->width_px > 0 && f->height_px > 0 && a > 0 && isfinite(a)) {
            double lg = log10(a / ((double)f->width_px * f->height_px));
            add(&h[ITS_MM_AREA], (int)floor((lg + 5) / 0.2));
        }
    }
    add(&h[ITS_MM_COUNT], count_bin(f->n));
}

int its_modelmon_observe(its_modelmon_t *m, const its_det_frame *f)
{
    if (!m)
        return ITS_EINVAL;
    if (!f || f->n < 0 || (f->n > 0 && !f->dets)) {
        m->rejected++;
        return ITS_EINVAL;
    }
    m->frames++;
    m->dets += (uint64_t)f->n;
    int64_t sec = f->ts_ns / 1000000000LL;
    if (!m->ob_any) {
        m->ob_first = f->ts_ns;
        m->ob_any = 1;
        for (int i = 0; i < TP_N; i++)
            m->ob_sec[i] = -1;
    }
    int k = (int)(((sec % TP_N) + TP_N) % TP_N);
    if (m->ob_sec[k] != sec) {
        m->ob_sec[k] = sec;
        m->ob_dets[k] = 0;
    }
    m->ob_dets[k] += (uint64_t)f->n;
    m->ob_last = f->ts_ns;
    if (!m->base_ready) {
        add_frame(m->base, f);
        if (++m->base_frames >= (uint64_t)m->p.baseline_frames)
            m->base_ready = 1;
        return 0;
    }
    if (m->cur_frames == m->block_frames) {
        m->cur_block = (m->cur_block + 1) % m->p.window_blocks;
        for (int i = 0; i < ITS_MM_FEATURES; i++)
            hist_init(&m->blocks[m->cur_block * ITS_MM_FEATURES + i], i);
        m->cur_frames = 0;
    }
    add_frame(&m->blocks[m->cur_block * ITS_MM_FEATURES], f);
    m->cur_frames++;
    return 0;
}

void its_modelmon_record_inference(its_modelmon_t *m, int64_t done_ns, int64_t latency_ns,
                                   int frames)
{
    if (!m || latency_ns < 0 || frames < 0)
        return;
    double ms = (double)latency_ns / 1e6;
    int b = 0;
    for (double ub = LAT_BASE; b < LAT_N - 1 && ms > ub; ub *= LAT_RATIO)
        b++;
    int64_t sec = done_ns / 1000000000LL;
    pthread_mutex_lock(&m->mu);
    m->lat[b]++;
    m->lat_n++;
    m->lat_sum_ms += ms;
    if (!m->tp_any) {
        m->tp_first = done_ns;
        m->tp_any = 1;
        for (int i = 0; i < TP_N; i++)
            m->tp_sec[i] = -1;
    }
    int k = (int)(((sec % TP_N) + TP_N) % TP_N);
    if (m->tp_sec[k] != sec) {
        m->tp_sec[k] = sec;
        m->tp_frames[k] = 0;
    }
    m->tp_frames[k] += (uint64_t)frames;
    if (done_ns > m->tp_last)
        m->tp_last = done_ns;
    pthread_mutex_unlock(&m->mu);
}

/* ---- statistics ---- */

double its_mm_psi(const its_mm_hist *b, const its_mm_hist *c)
{
    if (!b->n || !c->n || b->nbins != c->nbins)
        return NAN;
    double nb = (double)b->n + 0.5 * b->nbins, nc = (double)c->n + 0.5 * c->nbins, psi = 0;
    for (int i = 0; i < b->nbins; i++) {
        double pb = (b->bins[i] + 0.5) / nb, pc = (c->bins[i] + 0.5) / nc;
        psi += (pc - pb) * log(pc / pb);
    }
    return psi;
}

double its_mm_ks(const its_mm_hist *b, const its_mm_hist *c)
{
    if (!b->n || !c->n || b->nbins != c->nbins)
        return NAN;
    double cb = 0, cc = 0, d = 0;
    for (int i = 0; i < b->nbins; i++) {
        cb += (double)b->bins[i] / b->n;
        cc += (double)c->bins[i] / c->n;
        d = fmax(d, fabs(cb - cc));
    }
    return d;
}

void its_modelmon_hist(its_modelmon_t *m, its_mm_feature f, int base, its_mm_hist *out)
{
    hist_init(out, f);
    if (base) {
        *out = m->base[f];
        return;
    }
    for (int b = 0; b < m->p.window_blocks; b++) {
        const its_mm_hist *h = &m->blocks[b * ITS_MM_FEATURES + f];
        out->n += h->n;
        for (int i = 0; i < h->nbins; i++)
            out->bins[i] += h->bins[i];
    }
}

static double lat_pct(const its_modelmon_t *m, double q)
{
    if (!m->lat_n)
        return NAN;
    /* the registry's estimator (its/metrics.h): bucket b's upper bound is LAT_BASE *
     * LAT_RATIO^b, the last bucket is open (+Inf) */
    double bounds[LAT_N - 1];
    uint64_t cum[LAT_N], total = 0;
    double ub = LAT_BASE;
    for (int b = 0; b < LAT_N; b++, ub *= LAT_RATIO) {
        if (b < LAT_N - 1)
            bounds[b] = ub;
        total += m->lat[b];
        cum[b] = total;
    }
    return its_histogram_quantile(bounds, cum, LAT_N - 1, q);
}

static double rate(const int64_t *secs, const uint64_t *vals, int64_t last, int64_t first)
{
    int64_t now = last / 1000000000LL;
    double sum = 0;
    for (int i = 0; i < TP_N; i++)
        if (secs[i] >= 0 && secs[i] > now - TP_N && secs[i] <= now)
            sum += (double)vals[i];
    double span = fmin(TP_N, (double)(last - first) / 1e9);
    return span > 0 ? sum / span : NAN;
}

int its_modelmon_get_report(its_modelmon_t *m, its_modelmon_report *r)
{
    if (!m || !r)
        return ITS_EINVAL;
    memset(r, 0, sizeof *r);
    memcpy(r->model, m->p.model, sizeof r->model);
    r->baseline_ready = m->base_ready;
    r->baseline_frames = m->base_frames;
    r->frames = m->frames;
    r->detections = m->dets;
    r->rejected = m->rejected;
    for (int f = 0; f < ITS_MM_FEATURES; f++) {
        its_mm_hist cur;
        its_modelmon_hist(m, (its_mm_feature)f, 0, &cur);
        its_mm_drift *d = &r->drift[f];
        d->n_base = m->base[f].n;
        d->n_cur = cur.n;
        d->psi = d->ks = d->ks_crit = NAN;
        d->enough = m->base_ready && d->n_base >= (uint64_t)m->p.min_samples &&
                    d->n_cur >= (uint64_t)m->p.min_samples;
        if (!d->enough)
            continue;
        d->psi = its_mm_psi(&m->base[f], &cur);
        d->psi_level = d->psi >= m->p.psi_alert ? 2 : d->psi >= m->p.psi_warn ? 1 : 0;
        if (f != ITS_MM_CLASS) {
            double n = (double)d->n_base, k = (double)d->n_cur;
            d->ks = its_mm_ks(&m->base[f], &cur);
            d->ks_crit = fmax(m->p.ks_c * sqrt((n + k) / (n * k)), m->p.ks_min_d);
            d->ks_drift = d->ks > d->ks_crit;
        }
        d->alert = d->psi_level == 2 || d->ks_drift;
        r->drift_alert |= d->alert;
    }
    r->dets_per_s = m->ob_any ? rate(m->ob_sec, m->ob_dets, m->ob_last, m->ob_first) : NAN;
    pthread_mutex_lock(&m->mu);
    r->inferences = m->lat_n;
    r->latency_mean_ms = m->lat_n ? m->lat_sum_ms / (double)m->lat_n : NAN;
    r->latency_p50_ms = lat_pct(m, 0.50);
    r->latency_p95_ms = lat_pct(m, 0.95);
    r->latency_p99_ms = lat_pct(m, 0.99);
    r->fps = m->tp_any ? rate(m->tp_sec, m->tp_frames, m->tp_last, m->tp_first) : NAN;
    pthread_mutex_unlock(&m->mu);
    return 0;
}

/* ---- baseline files ---- */

int its_modelmon_baseline_save(its_modelmon_t *m, const char *path, char *err, size_t errlen)
{
    if (!m || !path)
        return its_seterr(err, errlen, ITS_EINVAL, "baseline: no file given");
    if (!m->base_ready)
        return its_seterr(err, errlen, ITS_EAGAIN,
                          "%s: the baseline is not complete yet (%llu of %d frames)", path,
                          (unsigned long long)m->base_frames, m->p.baseline_frames);
    FILE *fp = fopen(path, "w");
    if (!fp)
        return its_seterr(err, errlen, ITS_EIO, "%s: cannot write: %s", path, strerror(errno));
    fprintf(fp, "its-modelmon-baseline 1\nmodel %s\nframes %llu\n",
            m->p.model[0] ? m->p.model : "-", (unsigned long long)m->base_frames);
    for (int f = 0; f < ITS_MM_FEATURES; f++) {
        fprintf(fp, "%s %d", feature_names[f], m->base[f].nbins);
        for (int i = 0; i < m->base[f].nbins; i++)
            fprintf(fp, " %llu", (unsigned long long)m->base[f].bins[i]);
        fputc('\n', fp);
    }
    if (ferror(fp) | (fclose(fp) != 0))
        return its_seterr(err, errlen, ITS_EIO, "%s: write failed", path);
    return 0;
}

/* Next whitespace-separated token within [*p, end) on the current line. */
static int token(const char **p, const char *end, char *out, size_t cap)
{
    const char *s = *p;
    while (s < end && (*s == ' ' || *s == '\t' || *s == '\r'))
        s++;
    size_t n = 0;
    while (s < end && *s != ' ' && *s != '\t' && *s != '\r' && *s != '\n') {
        if (n + 1 >= cap)
            return -1;
        out[n++] = *s++;
    }
    out[n] = '\0';
    *p = s;
    return (int)n;
}

static int parse_u64(const char *s, uint64_t *v)
{
    if (!*s || *s == '-' || *s == '+')
        return -1;
    char *e;
    errno = 0;
    unsigned long long x = strtoull(s, &e, 10);
    if (*e || errno)
        return -1;
    *v = x;
    return 0;
}

int its_modelmon_baseline_load_string(its_modelmon_t *m, const char *text, size_t len,
                                      const char *o, char *err, size_t errlen)
{
    if (!m || (!text && len))
        return its_seterr(err, errlen, ITS_EINVAL, "baseline: no text given");
    if (!o)
        o = "(baseline)";
    its_mm_hist h[ITS_MM_FEATURES];
    int seen[ITS_MM_FEATURES] = {0};
    uint64_t frames = 0;
    int have_frames = 0, line = 0;
    const char *p = text, *end = text + len;
    char tok[96];
    while (p < end) {
        line++;
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        const char *q = p;
        int tl = token(&q, eol, tok, sizeof tok);
        if (tl < 0)
            return its_seterr(err, errlen, ITS_ECONFIG, "%s:%d: token too long", o, line);
        if (line == 1) {
            if (strcmp(tok, "its-modelmon-baseline") || token(&q, eol, tok, sizeof tok) <= 0 ||
                strcmp(tok, "1"))
                return its_seterr(err, errlen, ITS_ECONFIG,
                                  "%s:1: not a baseline file (expected 'its-modelmon-baseline 1')",
                                  o);
        } else if (tl == 0 || tok[0] == '#') {
            /* blank line or comment */
        } else if (!strcmp(tok, "model")) {
            if (token(&q, eol, tok, sizeof tok) <= 0)
                return its_seterr(err, errlen, ITS_ECONFIG, "%s:%d: model: name missing", o, line);
            if (m->p.model[0] && strcmp(tok, "-") && strcmp(tok, m->p.model))
                return its_seterr(err, errlen, ITS_ECONFIG,
                                  "%s:%d: model: baseline is for '%s', not '%s'", o, line, tok,
                                  m->p.model);
        } else if (!strcmp(tok, "frames")) {
            if (token(&q, eol, tok, sizeof tok) <= 0 || parse_u64(tok, &frames) < 0 || !frames)
                return its_seterr(err, errlen, ITS_ECONFIG,
                                  "%s:%d: frames: a positive integer is needed", o, line);
            have_frames = 1;
        } else {
            int f;
            for (f = 0; f < ITS_MM_FEATURES && strcmp(tok, feature_names[f]); f++) {
            }
            if (f == ITS_MM_FEATURES)
                return its_seterr(err, errlen, ITS_ECONFIG, "%s:%d: unknown key '%s'", o, line,
                                  tok);
            if (seen[f])
                return its_seterr(err, errlen, ITS_ECONFIG, "%s:%d: %s: given twice", o, line, tok);
            uint64_t nb;
            if (token(&q, eol, tok, sizeof tok) <= 0 || parse_u64(tok, &nb) < 0 ||
                nb != (uint64_t)feature_bins[f])
                return its_seterr(err, errlen, ITS_ECONFIG, "%s:%d: %s: %d bins expected", o, line,
                                  feature_names[f], feature_bins[f]);
            hist_init(&h[f], f);
            for (int i = 0; i < feature_bins[f]; i++) {
                uint64_t v;
                if (token(&q, eol, tok, sizeof tok) <= 0 || parse_u64(tok, &v) < 0 ||
                    v > (1ULL << 50))
                    return its_seterr(err, errlen, ITS_ECONFIG, "%s:%d: %s: bin %d is not a count",
                                      o, line, feature_names[f], i);
                h[f].bins[i] = v;
                h[f].n += v;
            }
            if (token(&q, eol, tok, sizeof tok) != 0)
                return its_seterr(err, errlen, ITS_ECONFIG, "%s:%d: %s: more than %d bins", o, line,
                                  feature_names[f], feature_bins[f]);
            seen[f] = 1;
        }
        p = eol < end ? eol + 1 : end;
    }
    if (line == 0)
        return its_seterr(err, errlen, ITS_ECONFIG, "%s: empty baseline file", o);
    if (!have_frames)
        return its_seterr(err, errlen, ITS_ECONFIG, "%s: 'frames' missing", o);
    for (int f = 0; f < ITS_MM_FEATURES; f++)
        if (!seen[f])
            return its_seterr(err, errlen, ITS_ECONFIG, "%s: '%s' missing", o, feature_names[f]);
    if (h[ITS_MM_COUNT].n != frames)
        return its_seterr(err, errlen, ITS_ECONFIG,
                          "%s: count: %llu frames in the histogram, %llu declared", o,
                          (unsigned long long)h[ITS_MM_COUNT].n, (unsigned long long)frames);
    memcpy(m->base, h, sizeof h);
    m->base_frames = frames;
    m->base_ready = 1;
    return 0;
}

int its_modelmon_baseline_load(its_modelmon_t *m, const char *path, char *err, size_t errlen)
{
    if (!m || !path)
        return its_seterr(err, errlen, ITS_EINVAL, "baseline: no file given");
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return its_seterr(err, errlen, errno == ENOENT ? ITS_ENOENT : ITS_EIO,
                          "%s: cannot open: %s", path, strerror(errno));
    enum { MAX = 1 << 20 };
    char *buf = its_malloc(ITS_MOD_MODELMON, MAX);
    if (!buf) {
        fclose(fp);
        return its_seterr(err, errlen, ITS_ENOMEM, "%s: out of memory", path);
    }
    size_t n = fread(buf, 1, MAX, fp);
    int bad = ferror(fp), more = !feof(fp) && fgetc(fp) != EOF;
    fclose(fp);
    int rc;
    if (bad)
        rc = its_seterr(err, errlen, ITS_EIO, "%s: read error", path);
    else if (more)
        rc = its_seterr(err, errlen, ITS_ECONFIG, "%s: larger than 1 MiB", path);
    else
        rc = its_modelmon_baseline_load_string(m, buf, n, path, err, errlen);
    its_free(buf);
    return rc;
}

/* ---- JSON ---- */

void its_modelmon_report_write(const its_modelmon_report *r, its_json *w)
{
    static const char *const ck[] = {"baseline_frames", "frames", "detections", "rejected"};
    const uint64_t cv[] = {r->baseline_frames, r->frames, r->detections, r->rejected};
    its_json_obj_begin(w);
    its_json_kstr(w, "model", r->model);
    its_json_kbool(w, "baseline_ready", r->baseline_ready);
    for (int i = 0; i < 4; i++)
        its_json_kuint(w, ck[i], cv[i]);
    its_json_kbool(w, "drift_alert", r->drift_alert);
    its_json_key(w, "drift");
    its_json_obj_begin(w);
    for (int f = 0; f < ITS_MM_FEATURES; f++) {
        const its_mm_drift *d = &r->drift[f];
        its_json_key(w, feature_names[f]);
        its_json_obj_begin(w);
        static const char *const dk[] = {"psi", "ks", "ks_crit"};
        const double dv[] = {d->psi, d->ks, d->ks_crit};
        its_json_knums(w, dk, dv, 3);
        its_json_key(w, "level");
        its_json_str(w, !d->enough     ? "insufficient"
                        : d->alert     ? "alert"
                        : d->psi_level ? "warn"
                                       : "ok");
        its_json_kuint(w, "n_base", d->n_base);
        its_json_kuint(w, "n_cur", d->n_cur);
        its_json_obj_end(w);
    }
    its_json_obj_end(w);
    its_json_key(w, "latency_ms");
    its_json_obj_begin(w);
    static const char *const lk[] = {"mean", "p50", "p95", "p99"};
    const double lv[] = {r->latency_mean_ms, r->latency_p50_ms, r->latency_p95_ms,
                         r->latency_p99_ms};
    its_json_kuint(w, "n", r->inferences);
    its_json_knums(w, lk, lv, 4);
    its_json_obj_end(w);
    its_json_knum(w, "fps", r->fps);
    its_json_knum(w, "detections_per_s", r->dets_per_s);
    its_json_obj_end(w);
}

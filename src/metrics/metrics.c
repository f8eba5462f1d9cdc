/*
 * The registry. Families and series are linked lists appended under one mutex; a series'
 * numbers are atomics, so updates never take the lock. Doubles are stored as their bit
 * pattern in a 64-bit atomic and changed with compare-and-swap, the usual way to get an
 * atomic double in C11 without relying on _Atomic double being lock-free.
 */
#include "its/metrics.h"

#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "its/core.h"
#include "its/stage.h"
#include "metrics_impl.h"

#define MAX_BUCKETS    ITS_METRICS_MAX_BUCKETS
#define MAX_COLLECTORS 16

struct its_metric {
    struct its_metric *next;
    its_metric_family *fam;
    char *values[ITS_METRICS_MAX_LABELS];
    atomic_int hidden;
    _Atomic uint64_t bits;                     /* counter / gauge value (double bits) */
    _Atomic uint64_t count;                    /* histogram samples */
    _Atomic uint64_t sum;                      /* histogram sum (double bits) */
    _Atomic uint64_t buckets[MAX_BUCKETS + 1]; /* per-bucket (not cumulative); last is +Inf */
};

struct its_metric_family {
    struct its_metric_family *next;
    its_metrics *reg;
    its_metric_type type;
    char *name;
    char *help;
    int nlabels;
    char *labels[ITS_METRICS_MAX_LABELS];
    int nbuckets;
    double bounds[MAX_BUCKETS];
    its_metric *series, *series_tail;
};

struct collector {
    its_metrics_collect_fn fn;
    void *ud;
    void (*release)(void *ud);
};

struct its_metrics {
    pthread_mutex_t lock;         /* families and series lists */
    pthread_mutex_t collect_lock; /* collectors, serialises renders */
    its_metric_family *families, *families_tail;
    its_metric_family *std[ITS_M_COUNT];
    struct collector collectors[MAX_COLLECTORS];
    int ncollectors;
};

static inline double from_bits(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

static inline uint64_t to_bits(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return b;
}

static void atomic_add_double(_Atomic uint64_t *a, double v)
{
    uint64_t old = atomic_load_explicit(a, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(a, &old, to_bits(from_bits(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

its_metrics *its_metrics_create(void)
{
    its_metrics *reg = its_calloc(ITS_MOD_METRICS, 1, sizeof *reg);
    if (!reg)
        return NULL;
    pthread_mutex_init(&reg->lock, NULL);
    pthread_mutex_init(&reg->collect_lock, NULL);
    return reg;
}

static void free_family(its_metric_family *f)
{
    its_metric *s = f->series;
    while (s) {
        its_metric *n = s->next;
        for (int i = 0; i < f->nlabels; i++)
            its_free(s->values[i]);
        its_free(s);
        s = n;
    }
    for (int i = 0; i < f->nlabels; i++)
        its_free(f->labels[i]);
    its_free(f->name);
    its_free(f->help);
    its_free(f);
}

void its_metrics_destroy(its_metrics *reg)
{
    if (!reg)
        return;
    for (int i = reg->ncollectors - 1; i >= 0; i--)
        if (reg->collectors[i].release)
            reg->collectors[i].release(reg->collectors[i].ud);
    its_metric_family *f = reg->families;
    while (f) {
        its_metric_family *n = f->next;
        free_family(f);
        f = n;
    }
    pthread_mutex_destroy(&reg->lock);
    pthread_mutex_destroy(&reg->collect_lock);
    its_free(reg);
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* for metric names; labels may not use ':' nor start with "__". */
static int valid_name(const char *s, int is_label)
{
    if (!s || !*s)
        return 0;
    if (is_label && s[0] == '_' && s[1] == '_')
        return 0;
    for (const char *p = s; *p; p++) {
        int ok = isalpha((unsigned char)*p) || *p == '_' || (!is_label && *p == ':') ||
                 (p != s && isdigit((unsigned char)*p));
        if (!ok || (unsigned char)*p > 127)
            return 0;
    }
    return 1;
}

/* Split "a,b" into up to ITS_METRICS_MAX_LABELS its_strdup'd names. */
static int split_labels(const char *labels, char **out, int *n)
{
    *n = 0;
    if (!labels || !*labels)
        return 0;
    const char *p = labels;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (*n == ITS_METRICS_MAX_LABELS || len == 0 || len > 64)
            return ITS_EINVAL;
        out[*n] = its_strndup(ITS_MOD_METRICS, p, len);
        if (!out[*n])
            return ITS_ENOMEM;
        (*n)++;
        if (!valid_name(out[*n - 1], 1) || !strcmp(out[*n - 1], "le"))
            return ITS_EINVAL;
        p = e ? e + 1 : p + len;
    }
    return 0;
}

static its_metric *new_series(its_metric_family *f, const char *const *values)
{
    its_metric *s = its_calloc(ITS_MOD_METRICS, 1, sizeof *s);
    if (!s)
        return NULL;
    s->fam = f;
    for (int i = 0; i < f->nlabels; i++) {
        s->values[i] = its_strdup(ITS_MOD_METRICS, values[i] ? values[i] : "");
        if (!s->values[i]) {
            for (int j = 0; j < i; j++)
                its_free(s->values[j]);
            its_free(s);
            return NULL;
        }
    }
    if (f->series_tail)
        f->series_tail->next = s;
    else
        f->series = s;
    f->series_tail = s;
    return s;
}

its_metric_family *its_metrics_find(its_metrics *reg, const char *name)
{
    if (!reg || !name)
        return NULL;
    pthread_mutex_lock(&reg->lock);
    its_metric_family *f = reg->families;
    while (f && strcmp(f->name, name))
        f = f->next;
    pthread_mutex_unlock(&reg->lock);
    return f;
}

its_metric_family *its_metrics_family(its_metrics *reg, its_metric_type type, const char *name,
                                      const char *help, const char *labels, const double *buckets,
                                      int nbuckets)
{
    if (!reg || !valid_name(name, 0) || type < ITS_METRIC_COUNTER || type > ITS_METRIC_HISTOGRAM)
        return NULL;
    if (type == ITS_METRIC_HISTOGRAM) {
        if (!buckets || nbuckets < 1 || nbuckets > MAX_BUCKETS)
            return NULL;
        for (int i = 0; i < nbuckets; i++)
            if (!isfinite(buckets[i]) || (i && buckets[i] <= buckets[i - 1]))
                return NULL;
    }
    its_metric_family *f = its_calloc(ITS_MOD_METRICS, 1, sizeof *f);
    if (!f)
        return NULL;
    f->reg = reg;
    f->type = type;
    f->name = its_strdup(ITS_MOD_METRICS, name);
    f->help = its_strdup(ITS_MOD_METRICS, help ? help : "");
    if (!f->name || !f->help || split_labels(labels, f->labels, &f->nlabels) < 0) {
        free_family(f);
        return NULL;
    }
    if (type == ITS_METRIC_HISTOGRAM) {
        f->nbuckets = nbuckets;
        memcpy(f->bounds, buckets, (size_t)nbuckets * sizeof(double));
    }
    pthread_mutex_lock(&reg->lock);
    its_metric_family *old = reg->families;
    while (old && strcmp(old->name, name))
        old = old->next;
    if (old) {
        int same = old->type == type && old->nlabels == f->nlabels;
        for (int i = 0; same && i < f->nlabels; i++)
            same = !strcmp(old->labels[i], f->labels[i]);
        pthread_mutex_unlock(&reg->lock);
        free_family(f);
        return same ? old : NULL;
    }
    /* A family without labels has exactly one series; create it now so it shows as 0. */
    if (f->nlabels == 0 && !new_series(f, NULL)) {
        pthread_mutex_unlock(&reg->lock);
        free_family(f);
        return NULL;
    }
    if (reg->families_tail)
        reg->families_tail->next = f;
    else
        reg->families = f;
    reg->families_tail = f;
    pthread_mutex_unlock(&reg->lock);
    return f;
}

its_metric *its_metrics_series(its_metric_family *f, const char *const *values)
{
    if (!f)
        return NULL;
    pthread_mutex_lock(&f->reg->lock);
    its_metric *s = f->series;
    for (; s; s = s->next) {
        int same = 1;
        for (int i = 0; same && i < f->nlabels; i++)
            same = !strcmp(s->values[i], values[i] ? values[i] : "");
        if (same)
            break;
    }
    if (!s)
        s = new_series(f, values);
    if (s)
        atomic_store(&s->hidden, 0);
    pthread_mutex_unlock(&f->reg->lock);
    return s;
}

its_metric *its_metrics_series_v(its_metric_family *f, ...)
{
    if (!f)
        return NULL;
    const char *values[ITS_METRICS_MAX_LABELS] = {0};
    va_list ap;
    va_start(ap, f);
    for (int i = 0; i < f->nlabels; i++)
        values[i] = va_arg(ap, const char *);
    va_end(ap);
    return its_metrics_series(f, values);
}

void its_metric_inc(its_metric *m)
{
    its_metric_add(m, 1.0);
}

void its_metric_add(its_metric *m, double v)
{
    if (!m || m->fam->type == ITS_METRIC_HISTOGRAM || isnan(v))
        return;
    if (m->fam->type == ITS_METRIC_COUNTER && v < 0)
        return;
    atomic_add_double(&m->bits, v);
}

void its_metric_set(its_metric *m, double v)
{
    if (!m || m->fam->type != ITS_METRIC_GAUGE)
        return;
    atomic_store_explicit(&m->bits, to_bits(v), memory_order_relaxed);
}

void its_metric_observe(its_metric *m, double v)
{
    if (!m || m->fam->type != ITS_METRIC_HISTOGRAM || isnan(v))
        return;
    const its_metric_family *f = m->fam;
    int b = 0;
    while (b < f->nbuckets && v > f->bounds[b])
        b++;
    atomic_fetch_add_explicit(&m->buckets[b], 1, memory_order_relaxed);
    atomic_add_double(&m->sum, v);
    atomic_fetch_add_explicit(&m->count, 1, memory_order_release);
}

void its_metric_hide(its_metric *m)
{
    if (m)
        atomic_store(&m->hidden, 1);
}

int its_metric_hidden(const its_metric *m)
{
    return m ? atomic_load(&m->hidden) : 0;
}

int its_metrics_hide_label(its_metrics *reg, const char *label, const char *value)
{
    if (!reg || !label || !value)
        return 0;
    int n = 0;
    pthread_mutex_lock(&reg->lock);
    for (its_metric_family *f = reg->families; f; f = f->next) {
        int k = 0;
        while (k < f->nlabels && strcmp(f->labels[k], label))
            k++;
        if (k == f->nlabels)
            continue;
        for (its_metric *s = f->series; s; s = s->next)
            if (!strcmp(s->values[k], value) && !atomic_exchange(&s->hidden, 1))
                n++;
    }
    pthread_mutex_unlock(&reg->lock);
    return n;
}

double its_metric_value(const its_metric *m)
{
    if (!m)
        return 0;
    if (m->fam->type == ITS_METRIC_HISTOGRAM)
        return (double)its_metric_count(m);
    return from_bits(atomic_load_explicit(&m->bits, memory_order_relaxed));
}

uint64_t its_metric_count(const its_metric *m)
{
    return m ? atomic_load_explicit(&m->count, memory_order_acquire) : 0;
}

double its_metric_sum(const its_metric *m)
{
    return m ? from_bits(atomic_load_explicit(&m->sum, memory_order_relaxed)) : 0;
}

/* Read the buckets once into cumulative counts; the total is their sum, not m->count, so the
 * snapshot is self-consistent even while other threads observe. */
static uint64_t snapshot(const its_metric *m, uint64_t *cum)
{
    uint64_t total = 0;
    for (int i = 0; i <= m->fam->nbuckets; i++) {
        total += atomic_load_explicit(&m->buckets[i], memory_order_relaxed);
        cum[i] = total;
    }
    return total;
}

double its_histogram_quantile(const double *bounds, const uint64_t *cum, int nb, double q)
{
    if (nb < 1 || !(q >= 0 && q <= 1))
        return NAN;
    uint64_t total = cum[nb];
    if (total == 0)
        return NAN;
    double rank = q * (double)total;
    int b = 0;
    while (b < nb && (double)cum[b] < rank)
        b++;
    if (b == nb) /* in +Inf: the highest finite bound, as histogram_quantile does */
        return bounds[nb - 1];
    double lo = b ? bounds[b - 1] : 0.0, hi = bounds[b];
    if (b == 0 && hi <= 0)
        return hi;
    double below = b ? (double)cum[b - 1] : 0.0;
    double in = (double)cum[b] - below;
    return in > 0 ? lo + (hi - lo) * (rank - below) / in : hi;
}

double its_metric_quantile(const its_metric *m, double q)
{
    if (!m || m->fam->type != ITS_METRIC_HISTOGRAM)
        return NAN;
    uint64_t cum[MAX_BUCKETS + 1];
    snapshot(m, cum);
    return its_histogram_quantile(m->fam->bounds, cum, m->fam->nbuckets, q);
}

int its_metric_buckets(const its_metric *m, double *bounds, uint64_t *cum, int max)
{
    if (!m || m->fam->type != ITS_METRIC_HISTOGRAM || !bounds || !cum)
        return ITS_EINVAL;
    if (max < m->fam->nbuckets + 1)
        return ITS_ERANGE;
    memcpy(bounds, m->fam->bounds, (size_t)m->fam->nbuckets * sizeof(double));
    snapshot(m, cum);
    return m->fam->nbuckets;
}

int its_metrics_add_collector(its_metrics *reg, its_metrics_collect_fn fn, void *ud,
                              void (*release)(void *ud))
{
    if (!reg || !fn)
        return ITS_EINVAL;
    pthread_mutex_lock(&reg->collect_lock);
    int rc = ITS_EFULL;
    if (reg->ncollectors < MAX_COLLECTORS) {
        reg->collectors[reg->ncollectors++] = (struct collector){fn, ud, release};
        rc = 0;
    }
    pthread_mutex_unlock(&reg->collect_lock);
    return rc;
}

void *its__metrics_collector_ud(its_metrics *reg, its_metrics_collect_fn fn)
{
    void *ud = NULL;
    pthread_mutex_lock(&reg->collect_lock);
    for (int i = 0; i < reg->ncollectors && !ud; i++)
        if (reg->collectors[i].fn == fn)
            ud = reg->collectors[i].ud;
    pthread_mutex_unlock(&reg->collect_lock);
    return ud;
}

void its_metrics_remove_collector(its_metrics *reg, its_metrics_collect_fn fn, void *ud)
{
    if (!reg)
        return;
    pthread_mutex_lock(&reg->collect_lock);
    for (int i = 0; i < reg->ncollectors; i++)
        if (reg->collectors[i].fn == fn && reg->collectors[i].ud == ud) {
            memmove(&reg->collectors[i], &reg->collectors[i + 1],
                    (size_t)(reg->ncollectors - i - 1) * sizeof reg->collectors[0]);
            reg->ncollectors--;
            break;
        }
    pthread_mutex_unlock(&reg->collect_lock);
}

/* ---- exposition ---------------------------------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int err;
} sbuf;

static void sb_reserve(sbuf *b, size_t n)
{
    if (b->err || b->len + n + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *p = its_realloc(ITS_MOD_METRICS, b->p, cap);
    if (!p) {
        b->err = ITS_ENOMEM;
        return;
    }
    b->p = p;
    b->cap = cap;
}

static void sb_put(sbuf *b, const char *s, size_t n)
{
    sb_reserve(b, n);
    if (b->err)
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void sb_str(sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        sb_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Shortest decimal that reads back as the same double; Prometheus spellings for the rest. */
void its__metrics_fmt_double(double v, char *buf, size_t len)
{
    if (isnan(v)) {
        snprintf(buf, len, "NaN");
    } else if (isinf(v)) {
        snprintf(buf, len, v > 0 ? "+Inf" : "-Inf");
    } else {
        for (int prec = 6; prec <= 17; prec++) {
            snprintf(buf, len, "%.*g", prec, v);
            if (strtod(buf, NULL) == v)
                break;
        }
    }
}

/* HELP text escapes \ and newline; label values also escape ". */
static void sb_escaped(sbuf *b, const char *s, int quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            sb_put(b, "\\\\", 2);
        else if (*s == '\n')
            sb_put(b, "\\n", 2);
        else if (quote && *s == '"')
            sb_put(b, "\\\"", 2);
        else
            sb_put(b, s, 1);
    }
}

static void sb_labels(sbuf *b, const its_metric *m, const char *le)
{
    const its_metric_family *f = m->fam;
    if (f->nlabels == 0 && !le)
        return;
    sb_put(b, "{", 1);
    for (int i = 0; i < f->nlabels; i++) {
        if (i)
            sb_put(b, ",", 1);
        sb_str(b, f->labels[i]);
        sb_put(b, "=\"", 2);
        sb_escaped(b, m->values[i], 1);
        sb_put(b, "\"", 1);
    }
    if (le) {
        if (f->nlabels)
            sb_put(b, ",", 1);
        sb_str(b, "le=\"");
        sb_str(b, le);
        sb_put(b, "\"", 1);
    }
    sb_put(b, "}", 1);
}

static void render_series(sbuf *b, const its_metric *m)
{
    const its_metric_family *f = m->fam;
    char num[64];
    if (f->type != ITS_METRIC_HISTOGRAM) {
        sb_str(b, f->name);
        sb_labels(b, m, NULL);
        its__metrics_fmt_double(its_metric_value(m), num, sizeof num);
        sb_put(b, " ", 1);
        sb_str(b, num);
        sb_put(b, "\n", 1);
        return;
    }
    uint64_t cum[MAX_BUCKETS + 1];
    uint64_t total = snapshot(m, cum);
    for (int i = 0; i <= f->nbuckets; i++) {
        char le[64];
        if (i < f->nbuckets)
            its__metrics_fmt_double(f->bounds[i], le, sizeof le);
        else
            snprintf(le, sizeof le, "+Inf");
        sb_str(b, f->name);
        sb_str(b, "_bucket");
        sb_labels(b, m, le);
        sb_printf(b, " %llu\n", (unsigned long long)cum[i]);
    }
    sb_str(b, f->name);
    sb_str(b, "_sum");
    sb_labels(b, m, NULL);
    its__metrics_fmt_double(its_metric_sum(m), num, sizeof num);
    sb_put(b, " ", 1);
    sb_str(b, num);
    sb_put(b, "\n", 1);
    sb_str(b, f->name);
    sb_str(b, "_count");
    sb_labels(b, m, NULL);
    sb_printf(b, " %llu\n", (unsigned long long)total);
}

static const char *type_name(its_metric_type t)
{
    return t == ITS_METRIC_COUNTER ? "counter" : t == ITS_METRIC_GAUGE ? "gauge" : "histogram";
}

int its_metrics_render(its_metrics *reg, char **out, size_t *len)
{
    if (!reg || !out)
        return ITS_EINVAL;
    pthread_mutex_lock(&reg->collect_lock);
    for (int i = 0; i < reg->ncollectors; i++)
        reg->collectors[i].fn(reg->collectors[i].ud, reg);
    sbuf b = {0};
    sb_reserve(&b, 8192);
    pthread_mutex_lock(&reg->lock);
    for (its_metric_family *f = reg->families; f; f = f->next) {
        int visible = 0;
        for (its_metric *s = f->series; s && !visible; s = s->next)
            visible = !atomic_load(&s->hidden);
        if (!visible)
            continue;
        sb_str(&b, "# HELP ");
        sb_str(&b, f->name);
        sb_put(&b, " ", 1);
        sb_escaped(&b, f->help, 0);
        sb_str(&b, "\n# TYPE ");
        sb_str(&b, f->name);
        sb_put(&b, " ", 1);
        sb_str(&b, type_name(f->type));
        sb_put(&b, "\n", 1);
        for (its_metric *s = f->series; s; s = s->next)
            if (!atomic_load(&s->hidden))
                render_series(&b, s);
    }
    pthread_mutex_unlock(&reg->lock);
    pthread_mutex_unlock(&reg->collect_lock);
    if (b.err) {
        its_free(b.p);
        return b.err;
    }
    *out = b.p;
    if (len)
        *len = b.len;
    return 0;
}

void its_metrics_each(its_metric_family *f, its_metrics_each_fn fn, void *ud)
{
    if (!f || !fn)
        return;
    pthread_mutex_lock(&f->reg->lock);
    for (its_metric *s = f->series; s; s = s->next)
        if (!atomic_load(&s->hidden) && fn(ud, s, (const char *const *)s->values))
            break;
    pthread_mutex_unlock(&f->reg->lock);
}

/* ---- the standard table --------------------------------------------------------------- */

static const double e2e_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.04,
                                     0.05,  0.06,   0.07,  0.08, 0.09, 0.1,  0.12,
                                     0.15,  0.2,    0.25,  0.3,  0.5,  1.0,  2.5};
/* 20, 25, 80 and 90 ms are bounds so that the alert rules' p95 thresholds (SPEC's KPI table,
 * deploy/prometheus/alerts.yml) fall on a bucket edge and are judged exactly. */
static const double stage_buckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075,
                                       0.01,   0.015,   0.02,   0.025, 0.03,  0.05,  0.075, 0.08,
                                       0.09,   0.1,     0.2,    0.5,   1.0,   2.5,   5.0};
static const double batch_buckets[] = {1, 2, 4, 8, 16, 32};

static const struct std_row {
    const char *name;
    its_metric_type type;
    const char *help;
    const char *labels;
    its_bucket_set buckets;
    int flags;
} std_rows[ITS_M_COUNT] = {
#define ITS__METRIC_ROW(id, name, type, help, labels, buckets, flags)                              \
    [id] = {name, type, help, labels, buckets, flags},
    ITS_METRIC_TABLE(ITS__METRIC_ROW)
#undef ITS__METRIC_ROW
};

its_metric_family *its__metrics_std_register_one(its_metrics *reg, its_metric_id id)
{
    const struct std_row *r = &std_rows[id];
    const double *bk = NULL;
    int nb = 0;
    if (r->buckets == ITS_BUCKETS_E2E)
        bk = e2e_buckets, nb = (int)ITS_ARRAY_LEN(e2e_buckets);
    else if (r->buckets == ITS_BUCKETS_STAGE)
        bk = stage_buckets, nb = (int)ITS_ARRAY_LEN(stage_buckets);
    else if (r->buckets == ITS_BUCKETS_BATCH)
        bk = batch_buckets, nb = (int)ITS_ARRAY_LEN(batch_buckets);
    its_metric_family *f = its_metrics_family(reg, r->type, r->name, r->help, r->labels, bk, nb);
    if (f) {
        pthread_mutex_lock(&reg->lock);
        reg->std[id] = f;
        pthread_mutex_unlock(&reg->lock);
    }
    return f;
}

int its_metrics_std_register(its_metrics *reg)
{
    if (!reg)
        return ITS_EINVAL;
    for (int id = 0; id < ITS_M_COUNT; id++) {
        if (std_rows[id].flags & ITS_MF_GPU)
            continue;
        if (!its__metrics_std_register_one(reg, (its_metric_id)id))
            return ITS_ENOMEM;
    }
    /* Budgets and the stage histograms exist from the start, in the order of the stage table,
     * so dashboards and /v1/status show every stage even before its first sample. */
    for (int i = 0; i < ITS_STAGE_COUNT; i++) {
        const char *name = its_stage_name((its_stage)i);
        its_metric *b = its_metrics_series_v(reg->std[ITS_M_STAGE_BUDGET], name);
        if (!b || !its_metrics_series_v(reg->std[ITS_M_STAGE_LATENCY], name))
            return ITS_ENOMEM;
        its_metric_set(b, its_stage_budget_ms((its_stage)i) / 1000.0);
    }
    its_metric *bi = its_metrics_series_v(reg->std[ITS_M_BUILD_INFO], ITS_VERSION);
    if (!bi)
        return ITS_ENOMEM;
    its_metric_set(bi, 1);
    return 0;
}

its_metric_family *its_metrics_std(its_metrics *reg, its_metric_id id)
{
    if (!reg || id < 0 || id >= ITS_M_COUNT)
        return NULL;
    pthread_mutex_lock(&reg->lock);
    its_metric_family *f = reg->std[id];
    pthread_mutex_unlock(&reg->lock);
    return f;
}

const char *its_metrics_std_name(its_metric_id id)
{
    return id >= 0 && id < ITS_M_COUNT ? std_rows[id].name : NULL;
}

its_metric_type its_metrics_std_type(its_metric_id id)
{
    return id >= 0 && id < ITS_M_COUNT ? std_rows[id].type : ITS_METRIC_GAUGE;
}

int its_metrics_std_flags(its_metric_id id)
{
    return id >= 0 && id < ITS_M_COUNT ? std_rows[id].flags : 0;
}

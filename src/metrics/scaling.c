/*
 * SPEC's AutoScalingConfig as a metric: its_scaling_recommendation. The inputs are measured
 * over the window between two renders (two Prometheus scrapes), from the registry's own
 * metrics and the host's /proc/stat, so the decision follows the current load rather than
 * the averages since start.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "its/core.h"
#include "its/metrics.h"
#include "metrics_impl.h"

/* SPEC: SCALE_OUT_THRESHOLDS (any) and SCALE_IN_THRESHOLDS (all). */
static const its_scaling_inputs scale_out = {0.90, 600, 0.080, 0.005, 0.70};
static const its_scaling_inputs scale_in = {0.50, 100, 0.060, 0.001, 0.30};

int its_scaling_decide(const its_scaling_inputs *in)
{
    const double v[5] = {in->gpu_utilization, in->queue_depth, in->latency_p99_s, in->error_rate,
                         in->cpu_utilization};
    const double out[5] = {scale_out.gpu_utilization, scale_out.queue_depth,
                           scale_out.latency_p99_s, scale_out.error_rate,
                           scale_out.cpu_utilization};
    const double low[5] = {scale_in.gpu_utilization, scale_in.queue_depth, scale_in.latency_p99_s,
                           scale_in.error_rate, scale_in.cpu_utilization};
    int all_low = 1;
    for (int i = 0; i < 5; i++) {
        if (isnan(v[i]))
            continue; /* unknown: neither triggers nor blocks */
        if (v[i] > out[i])
            return 1;
        if (!(v[i] < low[i]))
            all_low = 0;
    }
    return all_low ? -1 : 0;
}

typedef struct scaling_state {
    pthread_mutex_t lock;
    int primed;
    double bounds[ITS_METRICS_MAX_BUCKETS];
    uint64_t prev_cum[ITS_METRICS_MAX_BUCKETS + 1];
    double prev_errors, prev_frames;
    unsigned long long prev_busy, prev_total;
    its_scaling_inputs last;
    int decision;
} scaling_state;

struct agg {
    double sum, max;
    int n;
};

static int agg_fn(void *ud, const its_metric *m, const char *const *values)
{
    struct agg *a = ud;
    double v = its_metric_value(m);
    a->sum += v;
    a->max = a->n ? (v > a->max ? v : a->max) : v;
    a->n++;
    return 0;
}

static struct agg aggregate(its_metrics *reg, its_metric_id id)
{
    struct agg a = {0, 0, 0};
    its_metrics_each(its_metrics_std(reg, id), agg_fn, &a);
    return a;
}

/* Host CPU busy and total jiffies from the first line of /proc/stat. */
static int read_cpu(unsigned long long *busy, unsigned long long *total)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return ITS_EIO;
    unsigned long long v[8] = {0};
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (n < 5)
        return ITS_EIO;
    *total = 0;
    for (int i = 0; i < 8; i++)
        *total += v[i];
    *busy = *total - v[3] - v[4]; /* less idle and iowait */
    return 0;
}

static void collect(void *ud, its_metrics *reg)
{
    scaling_state *s = ud;
    its_scaling_inputs in = {NAN, 0, NAN, NAN, NAN};
    struct agg gpu = aggregate(reg, ITS_M_GPU_UTIL);
    if (gpu.n)
        in.gpu_utilization = gpu.sum / gpu.n / 100.0;
    in.queue_depth = aggregate(reg, ITS_M_QUEUE_DEPTH).max;
    double errors = aggregate(reg, ITS_M_ERRORS).sum;
    double frames = aggregate(reg, ITS_M_FRAMES).sum;
    double bounds[ITS_METRICS_MAX_BUCKETS];
    uint64_t cum[ITS_METRICS_MAX_BUCKETS + 1];
    int nb = its_metric_buckets(its_metrics_series(its_metrics_std(reg, ITS_M_LATENCY), NULL),
                                bounds, cum, ITS_METRICS_MAX_BUCKETS + 1);
    unsigned long long busy = 0, total = 0;
    int cpu_ok = read_cpu(&busy, &total) == 0;
    pthread_mutex_lock(&s->lock);
    if (s->primed) {
        if (nb > 0) {
            uint64_t d[ITS_METRICS_MAX_BUCKETS + 1];
            for (int i = 0; i <= nb; i++)
                d[i] = cum[i] >= s->prev_cum[i] ? cum[i] - s->prev_cum[i] : 0;
            in.latency_p99_s = its_histogram_quantile(bounds, d, nb, 0.99);
        }
        if (frames > s->prev_frames)
            in.error_rate = (errors - s->prev_errors) / (frames - s->prev_frames);
        else if (errors > s->prev_errors)
            in.error_rate = 1.0; /* errors and no frames at all */
        if (cpu_ok && total > s->prev_total)
            in.cpu_utilization = (double)(busy - s->prev_busy) / (double)(total - s->prev_total);
    }
    if (nb > 0)
        memcpy(s->prev_cum, cum, (size_t)(nb + 1) * sizeof cum[0]);
    s->prev_errors = errors;
    s->prev_frames = frames;
    if (cpu_ok) {
        s->prev_busy = busy;
        s->prev_total = total;
    }
    int decision = s->primed ? its_scaling_decide(&in) : 0;
    s->primed = 1;
    s->last = in;
    s->decision = decision;
    pthread_mutex_unlock(&s->lock);
    its_metric_set(its_metrics_series(its_metrics_std(reg, ITS_M_SCALING), NULL), decision);
}

static void scaling_free(void *ud)
{
    scaling_state *s = ud;
    pthread_mutex_destroy(&s->lock);
    its_free(s);
}

int its_metrics_scaling_attach(its_metrics *reg)
{
    if (!reg || !its_metrics_std(reg, ITS_M_SCALING))
        return ITS_EINVAL;
    if (its__metrics_collector_ud(reg, collect))
        return 0;
    scaling_state *s = its_calloc(ITS_MOD_METRICS, 1, sizeof *s);
    if (!s)
        return ITS_ENOMEM;
    pthread_mutex_init(&s->lock, NULL);
    s->last = (its_scaling_inputs){NAN, 0, NAN, NAN, NAN};
    int rc = its_metrics_add_collector(reg, collect, s, scaling_free);
    if (rc < 0)
        scaling_free(s);
    return rc < 0 ? rc : 0;
}

int its_metrics_scaling_last(its_metrics *reg, its_scaling_inputs *in, int *decision)
{
    scaling_state *s = reg ? its__metrics_collector_ud(reg, collect) : NULL;
    if (!s)
        return ITS_ENOENT;
    pthread_mutex_lock(&s->lock);
    if (in)
        *in = s->last;
    if (decision)
        *decision = s->decision;
    pthread_mutex_unlock(&s->lock);
    return 0;
}

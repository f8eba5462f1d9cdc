/*
 * its/metrics.h - a Prometheus registry: counters, gauges and histograms with labels,
 * lock-free updates and the text exposition format (version 0.0.4).
 *
 *     its_metrics *reg = its_metrics_create();
 *     its_metrics_std_register(reg);                  // the table of its/metric_names.h
 *     its_metrics_gpu_attach(reg);                    // ITS_ENODEV without a GPU: no metric
 *     its_metric *lat = its_metrics_series_v(its_metrics_std(reg, ITS_M_STAGE_LATENCY),
 *                                            "inference");
 *     its_metric_observe(lat, 0.012);                 // hot path: atomics only
 *     char *text; size_t len;
 *     its_metrics_render(reg, &text, &len);           // for GET /metrics
 *     its_free(text);
 *     its_metrics_destroy(reg);
 *
 * Contract
 * - Families and series are created under a mutex (start-up, or the first time a camera
 *   appears); look a series up once and keep the pointer. Updates through an its_metric
 *   pointer (inc/add/set/observe) are lock-free atomics and may come from any thread.
 * - Series live as long as the registry. its_metric_hide() takes one out of the exposition
 *   (a removed camera) without freeing it, so a pointer held by another thread stays valid;
 *   asking for the same labels again shows it again.
 * - Every update function accepts NULL and does nothing, so a module can run without a
 *   registry.
 * - its_metrics_render may run on any thread (the HTTP API); it runs the collectors first.
 * - Names and label names must match the Prometheus grammar; label values are escaped.
 */
#ifndef ITS_METRICS_H
#define ITS_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "its/metric_names.h"

typedef enum its_metric_type {
    ITS_METRIC_COUNTER = 0,
    ITS_METRIC_GAUGE = 1,
    ITS_METRIC_HISTOGRAM = 2,
} its_metric_type;

/* Bucket sets for the standard histograms (upper bounds, seconds or items). */
typedef enum its_bucket_set {
    ITS_BUCKETS_NONE = 0,
    ITS_BUCKETS_E2E,   /* 1 ms .. 1 s, dense around the 100 ms budget */
    ITS_BUCKETS_STAGE, /* 0.1 ms .. 5 s */
    ITS_BUCKETS_BATCH, /* 1, 2, 4, 8, 16, 32 */
} its_bucket_set;

#define ITS_MF_GPU 1 /* row exists only where NVML reports a GPU */

#define ITS_METRICS_MAX_LABELS  4
#define ITS_METRICS_MAX_BUCKETS 32

typedef struct its_metrics its_metrics;
typedef struct its_metric_family its_metric_family;
typedef struct its_metric its_metric;

its_metrics *its_metrics_create(void);
void its_metrics_destroy(its_metrics *reg);

/*
 * Register a family. labels: comma-separated label names ("" or NULL for none). buckets:
 * strictly increasing upper bounds for a histogram (+Inf is implicit), ignored otherwise.
 * Registering a name twice returns the existing family if the type and labels agree, NULL
 * otherwise (as for an invalid name or out of memory).
 */
its_metric_family *its_metrics_family(its_metrics *reg, its_metric_type type, const char *name,
                                      const char *help, const char *labels, const double *buckets,
                                      int nbuckets);
/* Look a family up by name; NULL if absent. */
its_metric_family *its_metrics_find(its_metrics *reg, const char *name);

/* The series with these label values (exactly as many as the family has labels), created on
 * first use. NULL family -> NULL. */
its_metric *its_metrics_series(its_metric_family *fam, const char *const *values);
/* Same with the values as arguments: its_metrics_series_v(fam, "cam-1", "queue_full"). */
its_metric *its_metrics_series_v(its_metric_family *fam, ...);

void its_metric_inc(its_metric *m);
void its_metric_add(its_metric *m, double v);     /* counters: v >= 0 (negative ignored) */
void its_metric_set(its_metric *m, double v);     /* gauges */
void its_metric_observe(its_metric *m, double v); /* histograms */
void its_metric_hide(its_metric *m);
/* 1 while m is hidden (looking the series up again shows it), 0 otherwise or for NULL. */
int its_metric_hidden(const its_metric *m);
/* Hide every series, of every family, whose label `label` has this value (a removed camera:
 * its_metrics_hide_label(reg, "camera", id)). Returns the series newly hidden. */
int its_metrics_hide_label(its_metrics *reg, const char *label, const char *value);

/* Current value (counter, gauge) or sample count (histogram). */
double its_metric_value(const its_metric *m);
/* Histogram sample count and sum. */
uint64_t its_metric_count(const its_metric *m);
double its_metric_sum(const its_metric *m);
/* Estimated q-quantile (0..1) of a histogram by linear interpolation inside the bucket, as
 * PromQL's histogram_quantile does; NaN without samples. */
double its_metric_quantile(const its_metric *m, double q);

/* A histogram's finite bucket bounds and cumulative counts (the last count is +Inf, so cum
 * holds nb + 1 entries). Returns nb, or a negative ITS_E* if m is not a histogram or max is
 * too small. For windowed quantiles: subtract an earlier snapshot, then
 * its_histogram_quantile. */
int its_metric_buckets(const its_metric *m, double *bounds, uint64_t *cum, int max);
/* histogram_quantile over explicit cumulative counts; NaN without samples. */
double its_histogram_quantile(const double *bounds, const uint64_t *cum, int nb, double q);

/* fn(ud, reg) is called at the start of every render, e.g. to sample queue depths or the GPU.
 * release (may be NULL) frees ud when the registry is destroyed, collectors in the reverse
 * order of their adding; if adding fails (ITS_EFULL), ud stays the caller's. */
typedef void (*its_metrics_collect_fn)(void *ud, its_metrics *reg);
int its_metrics_add_collector(its_metrics *reg, its_metrics_collect_fn fn, void *ud,
                              void (*release)(void *ud));
/* Take a collector out again (the same fn and ud; ud goes back to the caller, release is not
 * called); waits for a render in progress. */
void its_metrics_remove_collector(its_metrics *reg, its_metrics_collect_fn fn, void *ud);

/* Text exposition of every visible series; *out is its_malloc'd (ITS_MOD_METRICS) and
 * NUL-terminated, *len excludes the NUL. */
int its_metrics_render(its_metrics *reg, char **out, size_t *len);

/* Iterate a family's visible series (for /v1/status). fn returns non-zero to stop. Runs under
 * the registry lock: fn must not create families or series. */
typedef int (*its_metrics_each_fn)(void *ud, const its_metric *m, const char *const *values);
void its_metrics_each(its_metric_family *fam, its_metrics_each_fn fn, void *ud);

/* Standard metrics (its/metric_names.h). */
int its_metrics_std_register(its_metrics *reg);
/* The family of a standard row; NULL if not registered (a GPU row without a GPU). */
its_metric_family *its_metrics_std(its_metrics *reg, its_metric_id id);
/* Name, type and labels of a standard row, for docs and tests. */
const char *its_metrics_std_name(its_metric_id id);
its_metric_type its_metrics_std_type(its_metric_id id);
int its_metrics_std_flags(its_metric_id id);

/*
 * SPEC's AutoScalingConfig. Scale out when ANY input is above its SCALE_OUT threshold (GPU
 * 0.90, queue 600, p99 0.080 s, error rate 0.005, CPU 0.70); scale in when ALL are below
 * their SCALE_IN thresholds (0.50, 100, 0.060 s, 0.001, 0.30); otherwise hold. An input that
 * is not known (no GPU, no latency samples in the window) is left out of both tests.
 */
typedef struct its_scaling_inputs {
    double gpu_utilization; /* 0..1; NaN: no GPU */
    double queue_depth;     /* largest queue */
    double latency_p99_s;   /* NaN: no samples */
    double error_rate;      /* errors per frame; NaN: no frames */
    double cpu_utilization; /* 0..1; NaN: unknown */
} its_scaling_inputs;

/* +1 scale out, -1 scale in, 0 hold. */
int its_scaling_decide(const its_scaling_inputs *in);
/*
 * Adds a collector that, at every render, computes the inputs over the time since the
 * previous render from the standard metrics (gpu_utilization_percent, its_queue_depth,
 * analytics_latency_seconds, its_errors_total / its_frames_total) and the host's CPU
 * (/proc/stat), and sets its_scaling_recommendation. The last inputs are available through
 * its_metrics_scaling_last for /v1/status.
 */
int its_metrics_scaling_attach(its_metrics *reg);
int its_metrics_scaling_last(its_metrics *reg, its_scaling_inputs *in, int *decision);

/*
 * GPU metrics through NVML, loaded with dlopen("libnvidia-ml.so.1") (or $ITS_NVML_LIBRARY) so
 * the daemon runs where there is no GPU. On success registers the ITS_MF_GPU rows, adds a
 * collector that samples every GPU at each render, and returns the number of GPUs. Returns
 * ITS_ENODEV when the library or a GPU is missing: then no GPU metric exists at all (an
 * absent gpu_utilization_percent, not a zero that would fire the low-utilisation alert).
 */
int its_metrics_gpu_attach(its_metrics *reg);

#endif

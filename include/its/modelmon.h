/*
 * its/modelmon.h - ModelMetricsService: what a detector's output looks like over time, whether
 * it has drifted from a baseline, and how fast the model runs.
 *
 *     its_modelmon_params p;
 *     its_modelmon_params_default(&p);
 *     snprintf(p.model, sizeof p.model, "yolov8n");
 *     its_modelmon_t *m;
 *     its_modelmon_create(&p, &m);
 *     its_modelmon_baseline_load(m, "baseline.txt", err, sizeof err);   // or: the first N frames
 *     for (each frame) {
 *         its_modelmon_observe(m, &det_frame);
 *         its_modelmon_record_inference(m, done_ts_ns, latency_ns, batch_frames);   // hook
 *     }
 *     its_modelmon_report rep;
 *     its_modelmon_get_report(m, &rep);     // rep.drift[ITS_MM_CONF].psi, .ks, .alert ...
 *     its_modelmon_report_write(&rep, &w);   // as JSON into an its_json writer
 *
 * Distributions (fixed bins): detection confidence (20 bins on [0, 1]), class mix (80 COCO
 * classes + other), detections per frame (0..15, then 16-19, 20-23, 24-31,
 * 32-47, 48-63, 64+), box area as log10 of the frame share
 * (25 bins on [-5, 0]). The baseline is the first baseline_frames frames (or a file); the
 * current distribution is a rolling window of the last window_frames frames, kept as
 * window_blocks sub-histograms so old frames leave it without storing them.
 *
 * Drift per feature: population stability index PSI = sum (c - b) ln(c / b) over bins
 * (additive smoothing 0.5 per bin), warn >= 0.1, alert >= 0.25 (the usual credit-scoring
 * rule of thumb); Kolmogorov-Smirnov D = max |CDF_c - CDF_b| over bin edges for the ordinal
 * features, drift when D exceeds both c(alpha) sqrt((n + m) / (n m)) (alpha 0.01,
 * c = 1.628) and a minimum effect of 0.1. Both need min_samples in each distribution.
 *
 * Contract: one service per model (shared by that model's engine workers only through
 * its_modelmon_record_inference, which is thread-safe; everything else is one thread at a
 * time). create allocates everything; observe and record never allocate. Errors: ITS_EINVAL,
 * ITS_ENOMEM, ITS_EIO / ITS_ENOENT (baseline files), ITS_ECONFIG (malformed baseline, with
 * the line and reason in err), ITS_EOVERFLOW (JSON).
 */
#ifndef ITS_MODELMON_H
#define ITS_MODELMON_H

#include <stddef.h>
#include <stdint.h>

#include "its/json.h"
#include "its/track.h"

typedef enum its_mm_feature {
    ITS_MM_CONF = 0,
    ITS_MM_CLASS,
    ITS_MM_COUNT,
    ITS_MM_AREA,
    ITS_MM_FEATURES
} its_mm_feature;

#define ITS_MM_MAX_BINS 81

typedef struct its_mm_hist {
    int nbins;
    uint64_t n;
    uint64_t bins[ITS_MM_MAX_BINS];
} its_mm_hist;

typedef struct its_mm_drift {
    double psi;
    double ks;      /* NaN for the class mix (not ordinal) */
    double ks_crit; /* the threshold D had to pass */
    int psi_level;  /* 0 ok, 1 warn, 2 alert */
    int ks_drift;
    int alert;  /* psi_level == 2 or ks_drift */
    int enough; /* both distributions have min_samples */
    uint64_t n_base, n_cur;
} its_mm_drift;

typedef struct its_modelmon_params {
    char model[64];
    int baseline_frames;        /* frames captured as baseline when none is loaded (1000) */
    int window_frames;          /* rolling window (1000) */
    int window_blocks;          /* sub-histograms in the window (10) */
    double psi_warn, psi_alert; /* 0.1, 0.25 */
    double ks_c;                /* c(alpha), 1.628 for alpha = 0.01 */
    double ks_min_d;            /* 0.1 */
    int min_samples;            /* 200 */
} its_modelmon_params;

typedef struct its_modelmon_report {
    char model[64];
    int baseline_ready;
    uint64_t baseline_frames;
    uint64_t frames, detections;
    uint64_t rejected; /* observe calls refused with ITS_EINVAL */
    its_mm_drift drift[ITS_MM_FEATURES];
    int drift_alert; /* any feature */
    /* latency and throughput from record_inference */
    uint64_t inferences;
    double latency_mean_ms, latency_p50_ms, latency_p95_ms, latency_p99_ms;
    double fps, dets_per_s; /* over the last 10 s of inference completions / observations */
} its_modelmon_report;

typedef struct its_modelmon its_modelmon_t;

void its_modelmon_params_default(its_modelmon_params *p);
int its_modelmon_create(const its_modelmon_params *p, its_modelmon_t **out);
void its_modelmon_destroy(its_modelmon_t *m);
/* One frame's detections (boxes in source pixels, frame size set). */
int its_modelmon_observe(its_modelmon_t *m, const its_det_frame *f);
/* Latency/throughput hook for the engine: a batch of `frames` finished at done_ns after
 * latency_ns. Thread-safe. */
void its_modelmon_record_inference(its_modelmon_t *m, int64_t done_ns, int64_t latency_ns,
                                   int frames);
int its_modelmon_get_report(its_modelmon_t *m, its_modelmon_report *out);
/* Current histograms (base: the baseline; else the rolling window). */
void its_modelmon_hist(its_modelmon_t *m, its_mm_feature f, int base, its_mm_hist *out);

/* Drop the baseline; the next baseline_frames frames become the new one. */
void its_modelmon_baseline_reset(its_modelmon_t *m);
/* Baseline files: a small text format (docs/analytics.md), written and read back exactly. */
int its_modelmon_baseline_save(its_modelmon_t *m, const char *path, char *err, size_t errlen);
int its_modelmon_baseline_load(its_modelmon_t *m, const char *path, char *err, size_t errlen);
int its_modelmon_baseline_load_string(its_modelmon_t *m, const char *text, size_t len,
                                      const char *origin, char *err, size_t errlen);

/* Drift statistics of two histograms with the same bins (exposed for tests and tools). */
double its_mm_psi(const its_mm_hist *base, const its_mm_hist *cur);
double its_mm_ks(const its_mm_hist *base, const its_mm_hist *cur);

/* The report as one JSON object into w (its/json.h): the "report" of a drift message
 * (docs/schema/drift.schema.json). */
void its_modelmon_report_write(const its_modelmon_report *r, its_json *w);

#endif

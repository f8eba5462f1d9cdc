/*
 * Latency samples and their report for its-bench: exact percentiles over every sample (the
 * samples are kept, not bucketed, so p99.9 is exact), a text histogram in the style of SPEC's
 * percentile chart, and parsing of SPEC's stress_test expectations ("<100ms",
 * ">90k detections/minute", "<0.1%", ">90%").
 */
#ifndef ITS_BENCH_STATS_H
#define ITS_BENCH_STATS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct lat_samples {
    uint64_t *ns;
    size_t n, cap;
    size_t overflow; /* samples that did not fit (counted, never silently lost) */
    int sorted;
} lat_samples;

int lat_init(lat_samples *s, size_t cap);
void lat_free(lat_samples *s);
void lat_add(lat_samples *s, uint64_t ns);
/* Percentile p in [0, 100] in ns (nearest rank); 0 if empty. Sorts on first use. */
uint64_t lat_percentile(lat_samples *s, double p);
/* Percentile p of the samples added since index *from (then *from = n), without reordering
 * the array: for progress lines while samples arrive. Sorting every sample each second (what
 * lat_percentile does) stalls the thread that reads the results, and that stall, growing with
 * the sample count, is then measured as latency. 0 if none or out of memory. */
uint64_t lat_recent_percentile(const lat_samples *s, size_t *from, double p);
double lat_mean_ms(const lat_samples *s);

/* The SPEC-style chart: one bar per percentile, scaled against the bound (e.g. 100 ms). */
void lat_print_chart(lat_samples *s, double bound_ms, FILE *out);

/* "1h", "5m", "30s", "250ms", "90" (seconds) -> seconds; -1 if malformed. */
double parse_duration_s(const char *text);

typedef enum expect_kind {
    EXPECT_LATENCY_MS, /* "<100ms" */
    EXPECT_PER_MINUTE, /* ">90k detections/minute" */
    EXPECT_RATIO,      /* "<0.1%" as 0.001 */
} expect_kind;

typedef struct expectation {
    char op;      /* '<' or '>' ('=' never produced) */
    double value; /* in the kind's unit: ms, count per minute, ratio */
    expect_kind kind;
} expectation;

/* Parse one expectation; returns 0 or -1 with a reason in err. */
int parse_expectation(const char *text, expectation *out, char *err, size_t errlen);
int expectation_holds(const expectation *e, double measured);

#endif

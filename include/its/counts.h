/*
 * its/counts.h - interval counts for traffic studies: line crossings per clock-aligned
 * interval, counting line, traffic class and direction, with their space-mean speed and
 * flow, written as CSV (columns: docs/analytics.md, "Interval counts").
 *
 *     its_counts_t *c;
 *     if (its_counts_create(&scene, "cam1", 60, 1440, &c) < 0) ... // 1-min buckets, 24 h kept
 *     for (each analysed frame) {
 *         const its_analytics_frame *r;                       // from its_analytics_push
 *         its_counts_frame(c, clock_ns, r->events, r->n_events);
 *     }
 *     put(ctx, ITS_COUNTS_HEADER, strlen(ITS_COUNTS_HEADER));
 *     its_counts_csv(c, from_ns, to_ns, 900, put, ctx);       // 15-minute rows
 *     its_counts_destroy(c);
 *
 * Time: clock_ns is the time of the frame on the clock the intervals are aligned to (itsd:
 * the wall clock, UTC; its-infer and its-replay: the video's media time from a start time
 * given on the command line). Buckets are [k * bucket_s, (k + 1) * bucket_s) of that clock,
 * so intervals that are multiples of the bucket start on the clock's quarter hours, hours...
 *
 * Counting: each line-crossing event (phase none) counts once, in the bucket of its frame,
 * in the event's traffic class (crossings of a kind the scene's classification leaves out,
 * tclass -1, are not counted, as in the report's traffic_total). A later class change of a
 * crossing (phase update, same seq) moves it to its new class in its bucket while the bucket
 * and the crossing's record (the last ITS_COUNTS_RECENT crossings) are kept: the counts over
 * the whole run then equal the analytics report's traffic_total per line, class and direction.
 * A bucket's observed time is the time between consecutive frames (gaps over
 * ITS_COUNTS_GAP_S are not observed), split at bucket boundaries; flow is count * 3600 /
 * observed seconds of the interval.
 *
 * Contract: all memory is allocated by create (keep buckets of lines x classes x 2 cells);
 * frame and csv never allocate. One writer thread (its_counts_frame) and any number of
 * readers (its_counts_csv) may use a context at once: a mutex inside guards the buckets.
 * Errors: ITS_EINVAL (bad arguments), ITS_ENOMEM, and what put returns.
 */
#ifndef ITS_COUNTS_H
#define ITS_COUNTS_H

#include <stddef.h>
#include <stdint.h>

#include "its/analytics.h"

#define ITS_COUNTS_RECENT 1024 /* crossings whose later class change is still applied */
#define ITS_COUNTS_GAP_S                                                                           \
    10 /* frames further apart than this leave the time between                                    \
          unobserved */
/* its-infer and its-replay: 1-minute buckets, a week of media time */
#define ITS_COUNTS_TOOL_BUCKET_S 60
#define ITS_COUNTS_TOOL_BUCKETS  (7 * 24 * 60)
#define ITS_COUNTS_HEADER                                                                          \
    "camera,interval_start,interval_end,line,class,direction,count,mean_speed_kmh,flow_vph,"       \
    "observed_s\n"

typedef struct its_counts its_counts_t;

/* camera: the first column of the rows (copied, at most 256 characters); bucket_s: bucket
 * length in seconds (1..3600); keep: buckets kept (the oldest go first). */
int its_counts_create(const its_scene *scene, const char *camera, int bucket_s, int keep,
                      its_counts_t **out);
void its_counts_destroy(its_counts_t *c);
int its_counts_bucket_s(const its_counts_t *c);

/* One analysed frame at clock_ns with its events (any kinds; line crossings are used). */
void its_counts_frame(its_counts_t *c, int64_t clock_ns, const its_event *ev, int n_ev);

/* The CSV rows (without the header line, ITS_COUNTS_HEADER) of the intervals of interval_s seconds
 * (a multiple of the bucket) that overlap [from_ns, to_ns) and were observed or counted: per
 * interval, one row per line, traffic class and direction, zero counts included, in time, line,
 * class order. put receives the text in pieces; a negative return stops and is returned. */
typedef int (*its_counts_put_fn)(void *ctx, const char *s, size_t n);
int its_counts_csv(its_counts_t *c, int64_t from_ns, int64_t to_ns, int interval_s,
                   its_counts_put_fn put, void *ctx);

/* "15m", "1h", "900s", "900" -> seconds (1..86400); ITS_EINVAL otherwise. */
int its_counts_parse_interval(const char *s, int *seconds);
/* "2026-12-07T08:15:00Z" (UTC, also with a ".fff" fraction) or unix seconds -> ns since
 * the epoch; ITS_EINVAL otherwise. */
int its_counts_parse_time(const char *s, int64_t *ns);

/*
 * A table of the cameras' counts, for a service whose cameras come and go: the camera's
 * worker adds its context at open and removes it at close; readers write a camera's CSV
 * under the table's lock, so a context is never freed while it is being read.
 */
typedef struct its_counts_store its_counts_store;

int its_counts_store_create(int max_cameras, its_counts_store **out);
void its_counts_store_destroy(its_counts_store *s); /* the contexts are their owners' */
/* ITS_EFULL when the table is full; a context already there under the id is replaced. */
int its_counts_store_add(its_counts_store *s, const char *camera, its_counts_t *c);
void its_counts_store_remove(its_counts_store *s, const char *camera, its_counts_t *c);
/* its_counts_csv of the camera's context; ITS_ENOENT when it has none (yet). */
int its_counts_store_csv(its_counts_store *s, const char *camera, int64_t from_ns, int64_t to_ns,
                         int interval_s, its_counts_put_fn put, void *ctx);

#endif

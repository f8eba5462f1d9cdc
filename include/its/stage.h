/*
 * its/stage.h - the pipeline's latency stages and their budgets, defined once.
 *
 *     for (int s = 0; s < ITS_STAGE_COUNT; s++) {
 *         const its_stage_def *d = its_stage_get((its_stage)s);
 *         uint64_t ns;
 *         if (its_stage_span_ns((its_stage)s, frame->ts_ns, &ns))
 *             record(d->name, ns, d->budget_ms);
 *     }
 *     its_stage s = its_stage_find("inference");   // ITS_STAGE_INFER; -1 if unknown
 *
 * Contract: this table is the only place that names a stage or gives its budget. The
 * pipeline records every stage from a frame's timestamps (ITS_TS_*, its/frame.h) with
 * its_stage_span_ns; the Prometheus families its_stage_latency_seconds{stage} and
 * its_stage_budget_seconds{stage}, /v1/status and itsd's status line all take the names,
 * the order and the budgets from here, so a stage added to the table appears everywhere.
 *
 * A stage's name is also its Prometheus label value (deploy/grafana and deploy/prometheus
 * use these names). Budgets are SPEC's (docs/SPEC.md, ARCHITECTURE.md section 3): queue 5,
 * batch 10, inference 50, post-processing 10, analytics 15, quality 5, model metrics 5,
 * publish 5 ms, and 100 ms end to end. The per-stage rows tile a frame's path from enqueue
 * to the sinks' return without overlap; `total` (capture to publication, the number the
 * product is judged on) spans them.
 */
#ifndef ITS_STAGE_H
#define ITS_STAGE_H

#include <stdint.h>

/* X(id, name, budget_ms, from, to, description); from/to are ITS_TS_* (its/frame.h). */
#define ITS_STAGE_TABLE(X)                                                                         \
    X(ITS_STAGE_QUEUE, "queue", 5.0, ITS_TS_ENQUEUE, ITS_TS_BATCH,                                 \
      "enqueued -> taken into a batch (queue and batch-forming wait)")                             \
    X(ITS_STAGE_BATCH, "batch", 10.0, ITS_TS_BATCH, ITS_TS_PREP,                                   \
      "taken into a batch -> batch input prepared (letterbox on the host path)")                   \
    X(ITS_STAGE_INFER, "inference", 50.0, ITS_TS_PREP, ITS_TS_INFER,                               \
      "input prepared -> network done")                                                            \
    X(ITS_STAGE_POST, "postprocess", 10.0, ITS_TS_INFER, ITS_TS_POST,                              \
      "network done -> detections decoded (NMS)")                                                  \
    X(ITS_STAGE_ANALYTICS, "analytics", 15.0, ITS_TS_POST, ITS_TS_ANALYTICS,                       \
      "decoded -> tracking and analytics done (hand-off to the camera's worker included)")         \
    X(ITS_STAGE_QUALITY, "quality", 5.0, ITS_TS_ANALYTICS, ITS_TS_QUALITY,                         \
      "analytics done -> quality scored")                                                          \
    X(ITS_STAGE_MODELMON, "modelmon", 5.0, ITS_TS_QUALITY, ITS_TS_MODELMON,                        \
      "quality scored -> model metrics updated")                                                   \
    X(ITS_STAGE_PUBLISH, "publish", 5.0, ITS_TS_PUBLISH, ITS_TS_SENT,                              \
      "message built -> the sinks returned")                                                       \
    X(ITS_STAGE_TOTAL, "total", 100.0, ITS_TS_CAPTURE, ITS_TS_PUBLISH,                             \
      "captured -> published (end to end)")

typedef enum its_stage {
#define ITS__STAGE_ENUM(id, name, budget_ms, from, to, desc) id,
    ITS_STAGE_TABLE(ITS__STAGE_ENUM)
#undef ITS__STAGE_ENUM
        ITS_STAGE_COUNT
} its_stage;

typedef struct its_stage_def {
    its_stage id;
    const char *name;        /* also the Prometheus label value */
    double budget_ms;        /* SPEC's budget */
    int from, to;            /* ITS_TS_* bounding the stage */
    const char *description; /* for docs and help texts */
} its_stage_def;

/* The row of a stage; NULL outside [0, ITS_STAGE_COUNT). */
const its_stage_def *its_stage_get(its_stage s);
/* Name and budget of a stage; "?" and 0 outside the table. */
const char *its_stage_name(its_stage s);
double its_stage_budget_ms(its_stage s);
/* The stage of a name (as exported); -1 if none. */
int its_stage_find(const char *name);
/* The stage's duration from a frame's timestamps (ts: ITS_TS_COUNT entries, monotonic ns, 0 =
 * not reached). Returns 1 and sets *ns when both bounds were reached in order, else 0. */
int its_stage_span_ns(its_stage s, const uint64_t *ts, uint64_t *ns);

#endif

/*
 * The no-op inference backend: a benchmark and test stand-in, never a detector. It finds
 * nothing and can burn a fixed CPU time per frame, so that the pipeline's own overhead can be
 * measured apart from any model (bench/pipeline) and the pipeline can run where no engine is
 * built. Every status line names the backend, so its output is not mistaken for results.
 */
#include "its/core.h"
#include "its/pipeline.h"

typedef struct noop {
    its_infer base;
    double cost_us;
} noop;

static int noop_run(its_infer *inf, its_frame **frames, int n, int padded)
{
    noop *o = (noop *)inf;
    if (o->cost_us > 0) {
        uint64_t end = its_now_ns() + (uint64_t)(o->cost_us * 1000.0 * padded);
        while (its_now_ns() < end)
            ;
    }
    uint64_t t = its_now_ns();
    for (int i = 0; i < n; i++) {
        frames[i]->n_dets = 0;
        frames[i]->ts_ns[ITS_TS_INFER] = t;
        frames[i]->ts_ns[ITS_TS_POST] = t;
    }
    return 0;
}

static const char *noop_label(its_infer *inf, int class_id)
{
    return NULL;
}

static void noop_destroy(its_infer *inf)
{
    its_free(inf);
}

typedef struct noop_ctx {
    double cost_us;
} noop_ctx;

static int noop_create(void *ctx, its_infer **out, char *err, size_t errlen)
{
    noop *o = its_calloc(ITS_MOD_APP, 1, sizeof *o);
    if (!o)
        return ITS_ENOMEM;
    o->base.name = "noop";
    o->base.max_batch = 32;
    o->base.is_benchmark = 1;
    o->base.run = noop_run;
    o->base.label = noop_label;
    o->base.destroy = noop_destroy;
    o->cost_us = ((noop_ctx *)ctx)->cost_us;
    *out = &o->base;
    return 0;
}

static void noop_release(void *ctx)
{
    its_free(ctx);
}

int its_infer_noop_factory(double cost_us, its_infer_factory *out)
{
    noop_ctx *c = its_calloc(ITS_MOD_APP, 1, sizeof *c);
    if (!c)
        return ITS_ENOMEM;
    c->cost_us = cost_us;
    out->create = noop_create;
    out->release = noop_release;
    out->ctx = c;
    return 0;
}

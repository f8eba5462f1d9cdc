/*
 * The Redis sink: itsd's messages, unchanged, through the publish service (its/publish.h),
 * whose one publisher thread pipelines them to Redis. Frames go to its:cam:{id}:detections
 * and :latest; windows to its:cam:{id}:analytics and the keys :analytics:1m and :analytics:15m
 * (the window report carries the rolling 1-minute and 15-minute windows) and :analytics:60m
 * (the counts of the last hour, hooks.c); drift reports to
 * its:cam:{id}:drift (published and cached); events to its:events and the durable
 * its:events:stream; the cache-only records to SPEC's cache keys with SPEC's TTL classes
 * (quality_scores, predictions_short/long, model_baselines). submit never waits for Redis:
 * while it is away, messages wait in the service's bounded queue and outbox (oldest dropped
 * first, counted there and in the registry).
 */
#include <string.h>

#include "its/app_redis.h"
#include "its/core.h"
#include "its/publish.h"

typedef struct redis_sink {
    its_sink base;
    its_publish_service *svc;
    int64_t wall_offset;
} redis_sink;

static int rs_publish(its_sink *s, its_msg_type type, const char *camera, const its_frame *f,
                      const char *json, size_t len)
{
    redis_sink *r = (redis_sink *)s;
    uint64_t mono = f ? f->ts_ns[ITS_TS_CAPTURE] : its_now_ns();
    its_pub_meta m = {.camera_id = camera,
                      .frame = f ? f->seq : 0,
                      .capture_wall_ns = (uint64_t)((int64_t)mono + r->wall_offset),
                      .capture_mono_ns = mono};
    its_pub_raw how = {.kind = ITS_PUB_CACHE, .freshness = 1.0};
    switch (type) {
    case ITS_MSG_FRAME:
        how.kind = ITS_PUB_DETECTIONS;
        break;
    case ITS_MSG_WINDOW: {
        how.kind = ITS_PUB_ANALYTICS;
        how.window = "15m";
        how.cache_only = 1;
        int rc = its_publish_service_submit(r->svc, &m, &how, json, len);
        if (rc < 0)
            return rc;
        how.window = "1m";
        how.cache_only = 0;
        break;
    }
    case ITS_MSG_DRIFT:
        how.kind = ITS_PUB_DRIFT;
        break;
    case ITS_MSG_EVENT:
        how.kind = ITS_PUB_EVENT;
        break;
    case ITS_MSG_CACHE_QUALITY:
        how.ttl_type = ITS_TTL_QUALITY_SCORES;
        break;
    case ITS_MSG_CACHE_PRED_SHORT:
        how.ttl_type = ITS_TTL_PREDICTIONS_SHORT;
        break;
    case ITS_MSG_CACHE_PRED_LONG:
        how.ttl_type = ITS_TTL_PREDICTIONS_LONG;
        break;
    case ITS_MSG_CACHE_WINDOW_60M:
        how.kind = ITS_PUB_ANALYTICS;
        how.window = "60m";
        how.cache_only = 1;
        break;
    case ITS_MSG_CACHE_BASELINE:
        /* one baseline per camera (its/app_hooks.h): the key is named by the camera */
        how.ttl_type = ITS_TTL_MODEL_BASELINES;
        how.name = camera;
        break;
    default:
        return ITS_EINVAL;
    }
    return its_publish_service_submit(r->svc, &m, &how, json, len);
}

static void rs_flush(its_sink *s)
{
    /* the service's thread flushes continuously */
}

static void rs_destroy(its_sink *s)
{
    redis_sink *r = (redis_sink *)s;
    its_publish_service_destroy(r->svc);
    its_free(r);
}

int its_sink_redis(const its_publish_config *cfg, its_metrics *metrics, its_sink **out, char *err,
                   size_t errlen)
{
    redis_sink *r = its_calloc(ITS_MOD_APP, 1, sizeof *r);
    if (!r)
        return ITS_ENOMEM;
    int rc = its_publish_service_create(cfg, NULL, metrics, NULL, &r->svc);
    if (rc < 0) {
        if (err && errlen)
            snprintf(err, errlen, "redis: cannot start the publish service: %s", its_strerror(rc));
        its_free(r);
        return rc;
    }
    r->base.name = "redis";
    r->base.publish = rs_publish;
    r->base.flush = rs_flush;
    r->base.destroy = rs_destroy;
    r->wall_offset = (int64_t)its_wall_ns() - (int64_t)its_now_ns();
    *out = &r->base;
    return 0;
}

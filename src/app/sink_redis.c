/*
 * The Redis sink: itsd's messages, unchanged, through the publish service (its/publish.h),
 * whose one publisher thread pipelines them to Redis. Frames go to its:cam:{id}:detections
 * and :latest, windows to its:cam:{id}:analytics and :analytics:1m, drift reports to
 * its:cam:{id}:drift (published and cached), events to its:events and the durable
 * its:events:stream. submit never waits for Redis: while it is away, messages
 * wait in the service's bounded queue and outbox (oldest dropped first, counted there).
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
    its_pub_raw how = {.kind = type == ITS_MSG_FRAME    ? ITS_PUB_DETECTIONS
                               : type == ITS_MSG_WINDOW ? ITS_PUB_ANALYTICS
                               : type == ITS_MSG_DRIFT  ? ITS_PUB_DRIFT
                                                        : ITS_PUB_EVENT,
                       .window = "1m"};
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

int its_sink_redis(const its_publish_config *cfg, its_sink **out, char *err, size_t errlen)
{
    redis_sink *r = its_calloc(ITS_MOD_APP, 1, sizeof *r);
    if (!r)
        return ITS_ENOMEM;
    int rc = its_publish_service_create(cfg, NULL, NULL, NULL, &r->svc);
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

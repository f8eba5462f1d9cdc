/*
 * its/app_redis.h - the Redis sink for the pipeline (its_sink over the publish service).
 *
 *     its_publish_config pc;
 *     its_publish_config_default(&pc);
 *     pc.port = 6380;
 *     its_sink *s;
 *     if (its_sink_redis(&pc, metrics, &s, err, sizeof err) < 0) ...
 *
 * Contract: publish may be called from any thread and never waits for Redis; destroy
 * delivers what it can within the service's drain timeout (2 s). cfg's strings must outlive
 * the sink.
 */
#ifndef ITS_APP_REDIS_H
#define ITS_APP_REDIS_H

#include "its/pipeline.h"
#include "its/publish.h"

/* metrics (may be NULL; must outlive the sink): the publisher's its_publish_*, its_redis_up
 * and its_queue_depth{queue="publish"} series. */
int its_sink_redis(const its_publish_config *cfg, its_metrics *metrics, its_sink **out, char *err,
                   size_t errlen);

#endif

/*
 * its/app_services.h - itsd's HTTP API (health, readiness, /metrics, status, cameras) and
 * Prometheus metrics, fed by a pipeline.
 *
 *     its_pipeline_t *p;  its_app_build_pipeline(&cfg, &p, ...);   // not started yet
 *     its_app_services *svc;
 *     its_app_services_create(&cfg, p, &svc, err, sizeof err);      // before the start
 *     its_pipeline_start(p);
 *     its_app_services_set_serving(svc, 1);                        // /readyz: 200
 *     ...
 *     its_app_services_set_serving(svc, -1);                       // /readyz: 503
 *     its_pipeline_stop(p, drain);
 *     its_app_services_destroy(svc);                                // after the stop
 *     its_pipeline_destroy(p);
 *
 * Contract: create before the pipeline starts (it installs the per-frame observer) and
 * destroy after it stops. The API threads call only the pipeline's thread-safe functions;
 * cameras added through the API are ordinary pipeline cameras.
 *
 * With cluster.enabled (its/cluster.h) the cameras come from the registry in Redis instead:
 * set_serving(1) starts the cluster thread, which starts the cameras this replica owns (the
 * file's cameras only seed the registry), the API's add and remove write the registry, and
 * set_serving(-1) freezes the cluster (no camera starts or stops while the pipeline drains)
 * and destroy, after the stop, hands this replica's cameras over and gives up its lease.
 */
#ifndef ITS_APP_SERVICES_H
#define ITS_APP_SERVICES_H

#include <stdatomic.h>
#include <stdint.h>

#include "its/app.h"
#include "its/pipeline.h"

typedef struct its_app_services its_app_services;

/* cluster.enabled: until when (its_now_ns()) this replica's lease is valid, less the handover
 * gap; 0 without one. The cluster thread sets it at every renewal, the pipeline's sink is
 * fenced on it (its_sink_fenced). One per process. */
extern _Atomic uint64_t its_app_lease_until;

int its_app_services_create(const its_app_config *c, its_pipeline_t *p, its_app_services **out,
                            char *err, size_t errlen);
void its_app_services_destroy(its_app_services *s);
/* What /readyz answers: 1 serving (ready), 0 starting, -1 stopping (not ready). Set 1 once
 * the pipeline has started and -1 before it stops; readiness does not depend on cameras. */
void its_app_services_set_serving(its_app_services *s, int serving);
/* The API's bound port (0 without an API): what itsd prints at start. */
int its_app_services_port(its_app_services *s);

#endif

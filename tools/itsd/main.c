/*
 * itsd - the streaming analytics daemon.
 *
 *     itsd -c deploy/itsd.yaml                 run until SIGTERM/SIGINT
 *     itsd -c deploy/itsd.yaml --duration 30   ... or for 30 seconds
 *     itsd -c FILE --print-config              the effective configuration, then exit
 *     itsd -c FILE --check-config              validate only (exit 0 or 2)
 *
 * Signals are taken synchronously by the main thread (sigtimedwait) with every other thread
 * blocking them, so no work happens in a signal handler: SIGTERM/SIGINT stop the sources,
 * drain, flush and exit 0; SIGHUP reloads the camera list from the same file, adding and
 * removing cameras without a restart (a camera whose url or settings changed is replaced).
 * Exit codes (its/cli.h, docs/cli.md): 0 clean stop, 1 runtime failure at start, 2 bad usage
 * or configuration.
 *
 * Under systemd (Type=notify, deploy/systemd/itsd.service) it tells the service manager
 * through sd_notify: READY=1 once the pipeline runs and the API serves (when /readyz turns
 * 200), RELOADING=1 ... READY=1 around a SIGHUP reload, STOPPING=1 when it starts to drain, and
 * WATCHDOG=1 from the main loop where the unit sets WatchdogSec. Without NOTIFY_SOCKET these
 * are no-ops.
 */
#include <errno.h>
#include <getopt.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <systemd/sd-daemon.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "its/app.h"
#include "its/app_services.h"
#include "its/cli.h"
#include "its/core.h"

static void usage(FILE *out)
{
    fprintf(out, "Usage: itsd [-c CONFIG.yaml] [--print-config | --check-config] [--duration S]\n"
                 "Run the streaming analytics service: cameras in, detections, tracks, events\n"
                 "and analytics windows out (JSON lines, docs/messages.md), with an HTTP API and\n"
                 "Prometheus /metrics.\n"
                 "\n"
                 "  -c, --config FILE   YAML configuration (docs/service.md)\n"
                 "      --print-config  print the effective configuration and exit\n"
                 "      --check-config  validate the configuration and its files, then exit\n"
                 "      --duration S    stop after S seconds (as on SIGTERM)\n"
                 "  -h, --help          print this help and exit\n"
                 "      --version       print the version and exit\n"
                 "\n"
                 "Every setting can be overridden as ITS_<SECTION>_<KEY> in the environment.\n"
                 "SIGTERM/SIGINT stop after draining; SIGHUP reloads the camera list.\n"
                 "\n"
                 "Exit status (docs/cli.md):\n"
                 "  0  stopped cleanly (signal or --duration)\n"
                 "  1  runtime failure at start (engine, sources, services)\n"
                 "  2  bad usage or configuration\n");
}

static void apply_logging(const its_app_settings *s)
{
    its_log_level lvl;
    its_log_format fmt;
    if (its_log_parse_level(s->log_level, &lvl) == 0)
        its_log_set_level(lvl);
    if (its_log_parse_format(s->log_format, &fmt) == 0)
        its_log_set_format(fmt);
}

static int same_camera(const its_app_camera *a, const its_app_camera *b)
{
#define SAME_STR(x) ((!a->x && !b->x) || (a->x && b->x && strcmp(a->x, b->x) == 0))
    return SAME_STR(url) && SAME_STR(kind) && SAME_STR(pace) && SAME_STR(scene) &&
           a->loop == b->loop && a->fps == b->fps && a->sample_fps == b->sample_fps &&
           a->phase_s == b->phase_s && a->replay_frames == b->replay_frames &&
           a->max_width == b->max_width && a->max_height == b->max_height;
#undef SAME_STR
}

static const its_app_camera *find_cam(const its_app_config *c, const char *id)
{
    for (unsigned i = 0; i < c->cams.cameras_count; i++)
        if (strcmp(c->cams.cameras[i].id, id) == 0)
            return &c->cams.cameras[i];
    return NULL;
}

/* SIGHUP: diff the camera lists by id and apply the difference as a whole: cameras gone or
 * changed are removed, new or changed ones added; if any add fails, the cameras added so far
 * are removed and the removed ones added back, and the running configuration stays. A file
 * that does not load or validate changes nothing. */
static void reload(its_pipeline_t *p, its_app_config *cur, const char *path)
{
    its_app_config next;
    char err[512];
    if (its_app_config_load(&next, path, err, sizeof err) < 0) {
        its_loge("app", NULL, "reload failed, keeping the running configuration: %s", err);
        its_app_config_free(&next);
        return;
    }
    if (cur->s.cluster_enabled) {
        /* the cameras are the cluster registry's (the file only seeded it): the API edits it */
        apply_logging(&next.s);
        its_logi("app", NULL,
                 "reloaded %s: run-time options only (cluster.enabled: cameras are "
                 "managed through the registry)",
                 path);
        its_app_config_free(&next);
        return;
    }
    unsigned n_old = cur->cams.cameras_count, n_new = next.cams.cameras_count;
    char *removed = its_calloc(ITS_MOD_APP, n_old + 1, 1);
    unsigned *added = its_calloc(ITS_MOD_APP, n_new + 1, sizeof *added);
    unsigned n_removed = 0, n_added = 0;
    if (!removed || !added) {
        its_loge("app", NULL, "reload failed, keeping the running configuration: out of memory");
        goto done;
    }
    for (unsigned i = 0; i < n_old; i++) {
        const its_app_camera *old = &cur->cams.cameras[i];
        const its_app_camera *now = find_cam(&next, old->id);
        if ((!now || !same_camera(old, now)) && its_pipeline_remove_camera(p, old->id) == 0) {
            removed[i] = 1;
            n_removed++;
        }
    }
    for (unsigned i = 0; i < n_new; i++) {
        if (its_pipeline_find_camera(p, next.cams.cameras[i].id) >= 0)
            continue;
        if (its_pipeline_add_camera(p, &next.resolved[i], err, sizeof err) < 0) {
            its_loge("app", NULL,
                     "reload of %s failed (camera '%s': %s); rolled back to the running "
                     "configuration",
                     path, next.cams.cameras[i].id, err);
            for (unsigned k = 0; k < n_added; k++)
                its_pipeline_remove_camera(p, next.cams.cameras[added[k]].id);
            for (unsigned k = 0; k < n_old; k++)
                if (removed[k] &&
                    its_pipeline_add_camera(p, &cur->resolved[k], err, sizeof err) < 0)
                    its_loge("app", cur->cams.cameras[k].id, "cannot restore camera: %s", err);
            goto done;
        }
        added[n_added++] = i;
    }
    /* run-time options */
    apply_logging(&next.s);
    its_logi("app", NULL, "reloaded %s: %u cameras added, %u removed", path, n_added, n_removed);
    its_app_config_move(cur, &next);
done:
    its_free(removed);
    its_free(added);
    its_app_config_free(&next);
}

/* Once at start, on stderr: where the results and the service's views are. */
static void where_to_look(const its_app_config *c, its_app_services *svc)
{
    static const char *const backends[] = {"noop", "cpu", "cuda (GPU)"};
    int port = svc ? its_app_services_port(svc) : 0;
    const char *b =
        c->s.backend >= 0 && c->s.backend <= ITS_BACKEND_CUDA ? backends[c->s.backend] : "?";
    fprintf(stderr, "itsd: %u cameras on the %s engine; results: ", c->cams.cameras_count, b);
    if (c->s.sink == ITS_SINKT_STDOUT)
        fprintf(stderr, "JSON lines on stdout");
    else if (c->s.sink == ITS_SINKT_FILE)
        fprintf(stderr, "JSON lines in %s", c->s.sink_path);
    else
        fprintf(stderr, "no local sink");
    if (c->s.redis.sentinels && *c->s.redis.sentinels)
        fprintf(stderr, " and Redis through the Sentinels %s", c->s.redis.sentinels);
    else if (c->s.redis.host && *c->s.redis.host)
        fprintf(stderr, " and Redis at %s:%d", c->s.redis.host, c->s.redis.port);
    fprintf(stderr, " (format: docs/messages.md)\n");
    if (port > 0) {
        const char *h = c->s.api.bind && *c->s.api.bind ? c->s.api.bind : "127.0.0.1";
        if (strcmp(h, "0.0.0.0") == 0 || strcmp(h, "::") == 0)
            h = "127.0.0.1";
        fprintf(stderr,
                "itsd: console http://%s:%d/, status http://%s:%d/v1/status, cameras "
                "http://%s:%d/v1/cameras, Prometheus http://%s:%d/metrics (API: "
                "docs/service.md)\n",
                h, port, h, port, h, port, h, port);
    }
}

/* The sum of the series of a standard family whose first label is value (NULL: any) and
 * whose second is value2 (NULL: any). */
struct pick {
    const char *value, *value2;
    double v;
};

static int pick_fn(void *ud, const its_metric *m, const char *const *values)
{
    struct pick *k = ud;
    if ((!k->value || !strcmp(values[0], k->value)) &&
        (!k->value2 || !strcmp(values[1], k->value2)))
        k->v += its_metric_value(m);
    return 0;
}

static unsigned long long metric2(its_metrics *reg, its_metric_id id, const char *value,
                                  const char *value2)
{
    struct pick k = {value, value2, 0};
    its_metrics_each(its_metrics_std(reg, id), pick_fn, &k);
    return (unsigned long long)k.v;
}

static unsigned long long metric(its_metrics *reg, its_metric_id id, const char *value)
{
    return metric2(reg, id, value, NULL);
}

static const char *const pub_reasons[] = {"outbox_full", "queue_full", "too_large", "redis_error",
                                          "closing"};
#define N_PUB_REASONS (sizeof pub_reasons / sizeof pub_reasons[0])

/* What became of the messages for Redis (final: the pipeline's stop closed the sink). */
static void publish_summary(its_pipeline_t *p)
{
    its_metrics *reg = its_pipeline_metrics(p);
    fprintf(stderr,
            "itsd: redis: sent %llu (detections %llu, analytics %llu, events %llu, cache %llu; "
            "replayed after an outage %llu), dropped %llu (",
            metric(reg, ITS_M_PUB_MESSAGES, NULL), metric(reg, ITS_M_PUB_MESSAGES, "detections"),
            metric(reg, ITS_M_PUB_MESSAGES, "analytics"), metric(reg, ITS_M_PUB_MESSAGES, "event"),
            metric(reg, ITS_M_PUB_MESSAGES, "cache"), metric(reg, ITS_M_PUB_REPLAYED, NULL),
            metric(reg, ITS_M_PUB_DROPPED, NULL));
    for (size_t i = 0; i < N_PUB_REASONS; i++)
        fprintf(stderr, "%s%s %llu", i ? ", " : "", pub_reasons[i],
                metric(reg, ITS_M_PUB_DROPPED, pub_reasons[i]));
    fprintf(stderr, "), left in the outbox %llu, reconnects %llu, failed connects %llu\n",
            metric(reg, ITS_M_PUB_OUTBOX, NULL), metric(reg, ITS_M_PUB_RECONNECTS, NULL),
            metric(reg, ITS_M_PUB_CONNECT_FAIL, NULL));
}

/* What became of one camera's messages for Redis. */
static void camera_publish_summary(its_metrics *reg, const char *cam)
{
    fprintf(stderr, ", published %llu (replayed %llu), publish dropped %llu (",
            metric(reg, ITS_M_PUB_CAM_MESSAGES, cam), metric(reg, ITS_M_PUB_CAM_REPLAYED, cam),
            metric(reg, ITS_M_PUB_CAM_DROPPED, cam));
    for (size_t i = 0; i < N_PUB_REASONS; i++)
        fprintf(stderr, "%s%s %llu", i ? ", " : "", pub_reasons[i],
                metric2(reg, ITS_M_PUB_CAM_DROPPED, cam, pub_reasons[i]));
    fputc(')', stderr);
}

static void summary(its_pipeline_t *p, int redis)
{
    for (int i = 0; i < its_pipeline_n_cameras(p); i++) {
        its_camera_stats cs;
        if (its_pipeline_camera_stats(p, i, &cs) < 0)
            continue;
        fprintf(stderr,
                "itsd: camera %s: in %llu, processed %llu, dropped %llu (no_buffer %llu, "
                "camera_limit %llu, high_water %llu, engine_error %llu, shutdown %llu), "
                "detections %llu, reconnects %llu (stalls %llu, failed opens %llu), decode "
                "errors %llu",
                cs.id, (unsigned long long)cs.in, (unsigned long long)cs.processed,
                (unsigned long long)cs.dropped_total,
                (unsigned long long)cs.dropped[ITS_DROP_NO_BUFFER],
                (unsigned long long)cs.dropped[ITS_DROP_CAMERA_LIMIT],
                (unsigned long long)cs.dropped[ITS_DROP_HIGH_WATER],
                (unsigned long long)cs.dropped[ITS_DROP_ENGINE_ERROR],
                (unsigned long long)cs.dropped[ITS_DROP_SHUTDOWN],
                (unsigned long long)cs.detections, (unsigned long long)cs.source.reconnects,
                (unsigned long long)cs.source.stalls, (unsigned long long)cs.source.open_failures,
                (unsigned long long)cs.source.decode_errors);
        if (redis)
            camera_publish_summary(its_pipeline_metrics(p), cs.id);
        fputc('\n', stderr);
    }
    fprintf(stderr, "itsd: latency ms p50/p99 (budget):");
    for (int s = 0; s < ITS_STAGE_COUNT; s++)
        fprintf(stderr, " %s %.1f/%.1f (%g)", its_stage_name((its_stage)s),
                its_pipeline_stage_quantile(p, (its_stage)s, 0.5, NULL, NULL) * 1e3,
                its_pipeline_stage_quantile(p, (its_stage)s, 0.99, NULL, NULL) * 1e3,
                its_stage_budget_ms((its_stage)s));
    fputc('\n', stderr);
    if (redis)
        publish_summary(p);
}

int main(int argc, char **argv)
{
    enum { OPT_PRINT = 1000, OPT_CHECK, OPT_DURATION };
    static const struct option longs[] = {{"config", required_argument, NULL, 'c'},
                                          {"print-config", no_argument, NULL, OPT_PRINT},
                                          {"check-config", no_argument, NULL, OPT_CHECK},
                                          {"duration", required_argument, NULL, OPT_DURATION},
                                          {"help", no_argument, NULL, 'h'},
                                          {"version", no_argument, NULL, ITS_CLI_OPT_VERSION},
                                          {NULL, 0, NULL, 0}};
    const char *path = NULL;
    int print = 0, check = 0, opt;
    double duration = 0;
    while ((opt = getopt_long(argc, argv, ITS_CLI_OPTSTRING("c:"), longs, NULL)) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case OPT_PRINT:
            print = 1;
            break;
        case OPT_CHECK:
            check = 1;
            break;
        case OPT_DURATION:
            if (its_cli_double("itsd", "--duration", optarg, 0, 1e9, &duration) < 0)
                return ITS_EXIT_USAGE;
            break;
        case 'h':
            usage(stdout);
            return ITS_EXIT_OK;
        case ITS_CLI_OPT_VERSION:
            return its_cli_version("itsd");
        default:
            return its_cli_bad_option("itsd", opt, argv);
        }
    }
    if (optind < argc)
        return its_cli_usage_error("itsd", "unexpected argument '%s'", argv[optind]);
    its_app_config cfg;
    char err[512];
    if (its_app_config_load(&cfg, path, err, sizeof err) < 0) {
        fprintf(stderr, "itsd: %s\n", err);
        its_app_config_free(&cfg);
        return ITS_EXIT_USAGE;
    }
    if (print || check) {
        int rc = 0;
        if (print) {
            rc = its_app_config_print(&cfg, stdout) < 0;
        } else if (its_app_config_check_files(&cfg, err, sizeof err) < 0) {
            fprintf(stderr, "itsd: %s\n", err);
            rc = 2;
        } else {
            fprintf(stderr, "itsd: %s: ok (%u cameras)\n", path ? path : "(defaults)",
                    cfg.cams.cameras_count);
        }
        its_app_config_free(&cfg);
        return rc;
    }
    apply_logging(&cfg.s);
#ifdef __GLIBC__
    /* Cameras come and go with their threads and buffers. glibc gives threads that contend
     * for malloc arenas of their own (up to 8 per core), each keeping what it once held, and
     * once a large block is freed it raises its mmap threshold up to 32 MB, so later frame
     * pools and clips land in the heap and fragment it: RSS would creep up with every camera
     * added and removed. Two arenas and a fixed threshold (blocks of 256 kB and more are
     * mapped, and unmapped when freed) cost no speed, as the hot paths allocate nothing
     * (docs/decisions.md). MALLOC_ARENA_MAX / MALLOC_MMAP_THRESHOLD_ in the environment win. */
    if (!getenv("MALLOC_ARENA_MAX"))
        mallopt(M_ARENA_MAX, 2);
    if (!getenv("MALLOC_MMAP_THRESHOLD_"))
        mallopt(M_MMAP_THRESHOLD, 256 * 1024);
#endif

    /* every thread created from here on inherits the blocked set */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    its_pipeline_t *p;
    if (its_app_build_pipeline(&cfg, &p, err, sizeof err) < 0) {
        fprintf(stderr, "itsd: %s\n", err);
        its_app_config_free(&cfg);
        return ITS_EXIT_FAILURE;
    }
    its_app_services *svc = NULL;
    if (its_app_services_create(&cfg, p, &svc, err, sizeof err) < 0) {
        fprintf(stderr, "itsd: %s\n", err);
        its_pipeline_destroy(p);
        its_app_config_free(&cfg);
        return ITS_EXIT_FAILURE;
    }
    if (its_pipeline_start(p) < 0) {
        fprintf(stderr, "itsd: cannot start the pipeline threads\n");
        its_pipeline_stop(p, 0);
        its_app_services_destroy(svc);
        its_pipeline_destroy(p);
        its_app_config_free(&cfg);
        return ITS_EXIT_FAILURE;
    }
    its_logi("app", NULL, "running %d cameras; SIGTERM/SIGINT stop, SIGHUP reloads %s",
             its_pipeline_n_cameras(p), path ? path : "(no file)");
    where_to_look(&cfg, svc);
    its_app_services_set_serving(svc, 1);
    sd_notify(0, "READY=1\nSTATUS=serving");
    uint64_t watchdog_us = 0, next_watchdog = 0;
    if (sd_watchdog_enabled(0, &watchdog_us) <= 0)
        watchdog_us = 0;
    uint64_t t0 = its_now_ns();
    uint64_t next_status = t0 + (uint64_t)(cfg.s.status_interval_s * 1e9);
    const char *why = "duration reached";
    for (;;) {
        uint64_t now = its_now_ns();
        double interval = cfg.s.status_interval_s;
        if (interval > 0 && now >= next_status) {
            char line[2048];
            its_pipeline_status_line(p, line, sizeof line);
            fprintf(stderr, "%s\n", line);
            its_pipeline_flush(p);
            next_status = now + (uint64_t)(interval * 1e9);
        }
        if (watchdog_us && now >= next_watchdog) {
            sd_notify(0, "WATCHDOG=1");
            next_watchdog = now + watchdog_us * 1000 / 2;
        }
        if (duration > 0 && now >= t0 + (uint64_t)(duration * 1e9))
            break;
        its_pipeline_reap(p); /* frees removed cameras' sources once their frames are through */
        struct timespec ts = {0, 200 * 1000 * 1000};
        int sig = sigtimedwait(&set, NULL, &ts);
        if (sig == SIGHUP) {
            if (path) {
                sd_notify(0, "RELOADING=1");
                reload(p, &cfg, path);
                sd_notify(0, "READY=1\nSTATUS=serving");
            } else
                its_logw("app", NULL, "SIGHUP ignored: no configuration file");
        } else if (sig == SIGTERM || sig == SIGINT) {
            why = sig == SIGTERM ? "SIGTERM" : "SIGINT";
            break;
        }
    }
    its_logi("app", NULL, "%s: stopping (drain up to %.1f s)", why, cfg.s.drain_s);
    its_app_services_set_serving(svc, -1);
    sd_notify(0, "STOPPING=1");
    its_pipeline_stop(p, (uint64_t)(cfg.s.drain_s * 1e9));
    its_app_services_destroy(svc);
    summary(p, its_publish_settings_apply(&cfg.s.redis, NULL, NULL));
    its_pipeline_destroy(p);
    its_app_config_free(&cfg);
    return 0;
}

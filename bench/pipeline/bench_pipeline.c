/*
 * bench_pipeline - the itsd pipeline's own cost, and end to end with the CPU engine.
 *
 * Part 1 (overhead): N cameras replaying 720p frames from memory (one shared clip) through
 * the whole pipeline - batcher, engine worker, analytics workers with tracking, analytics,
 * quality and model metrics, JSON building - with the no-op backend (no inference) and a
 * null sink. The offered rate is stepped up; each step reports the rate that came out, the
 * drops, end-to-end latency (published - captured) and the CPU time the process spent per
 * frame. The highest step without drops is the sustainable rate on this machine.
 *
 * Part 2 (CPU engine): the sample traffic videos through yolo11n on the CPU engine: frames
 * per second processed and end-to-end latency p50/p99, once saturated (cameras at their
 * native rate; the real-time policy drops what the engine cannot take) and once paced below
 * the engine's capacity.
 *
 *     bench_pipeline [--cameras 100] [--levels 5,10,20,30] [--seconds 4] [--cpu-seconds 20]
 *                    [--no-cpu] [--no-hooks] [--no-overhead]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "its/app.h"
#include "its/app_hooks.h"
#include "its/core.h"
#include "its/pipeline.h"

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

typedef struct totals {
    uint64_t in, processed, dropped, detections;
} totals;

static totals sum(its_pipeline_t *p)
{
    totals t = {0, 0, 0, 0};
    for (int i = 0; i < its_pipeline_n_cameras(p); i++) {
        its_camera_stats cs;
        its_pipeline_camera_stats(p, i, &cs);
        t.in += cs.in;
        t.processed += cs.processed;
        t.dropped += cs.dropped_total;
        t.detections += cs.detections;
    }
    return t;
}

/* A stage's q-quantile in ms over the samples since the mark. */
static double q_ms(its_pipeline_t *p, const its_stage_window *w, its_stage stage, double q)
{
    return its_pipeline_stage_quantile(p, stage, q, w, NULL) * 1e3;
}

/* One step of part 1: cams x fps for `seconds` after a 1 s warm-up. */
static int overhead_step(const char *clip, int cams, double fps, double seconds, int hooks)
{
    its_pipeline_opts o;
    its_pipeline_opts_default(&o);
    its_infer_noop_factory(0, &o.infer);
    o.sink = its_sink_null();
    o.max_cameras = cams;
    o.batch_max = 32;
    o.batch_delay_ms = 5;
    o.per_camera = 8;
    o.analytics_workers = 2;
    o.pool_frames = 16;
    if (hooks) {
        its_app_hooks_opts ho = {.model_name = "noop", .window_s = 60};
        if (its_app_hooks(&ho, &o.hooks) < 0)
            hooks = 0;
    }
    its_pipeline_t *p;
    char err[256];
    if (its_pipeline_create(&o, &p, err, sizeof err) < 0) {
        fprintf(stderr, "bench: %s\n", err);
        return -1;
    }
    for (int i = 0; i < cams; i++) {
        char id[32];
        snprintf(id, sizeof id, "cam-%03d", i);
        its_camera_cfg c = {.id = id,
                            .url = (char *)clip,
                            .kind = "replay",
                            .loop = 1,
                            .realtime = 1,
                            .fps = fps,
                            .phase_s = -1,
                            .replay_frames = 30};
        if (its_pipeline_add_camera(p, &c, err, sizeof err) < 0) {
            fprintf(stderr, "bench: %s\n", err);
            its_pipeline_destroy(p);
            return -1;
        }
    }
    its_pipeline_start(p);
    its_sleep_ns(ITS_NS_PER_S);
    totals t0 = sum(p);
    its_stage_window win;
    its_pipeline_stage_mark(p, &win);
    double c0 = cpu_s();
    uint64_t w0 = its_now_ns();
    its_sleep_ns((uint64_t)(seconds * 1e9));
    totals t1 = sum(p);
    double wall = (double)(its_now_ns() - w0) / 1e9, cpu = cpu_s() - c0;
    double p50 = q_ms(p, &win, ITS_STAGE_TOTAL, 0.5), p99 = q_ms(p, &win, ITS_STAGE_TOTAL, 0.99);
    double qp99 = q_ms(p, &win, ITS_STAGE_QUEUE, 0.99);
    double ap99 = q_ms(p, &win, ITS_STAGE_ANALYTICS, 0.99) + q_ms(p, &win, ITS_STAGE_QUALITY, 0.99);
    if (hooks)
        fprintf(stderr, "stage p50 ms: analytics %.3f quality %.3f modelmon %.3f publish %.3f\n",
                q_ms(p, &win, ITS_STAGE_ANALYTICS, 0.5), q_ms(p, &win, ITS_STAGE_QUALITY, 0.5),
                q_ms(p, &win, ITS_STAGE_MODELMON, 0.5), q_ms(p, &win, ITS_STAGE_PUBLISH, 0.5));
    its_batcher_stats bs;
    its_pipeline_batch_stats(p, &bs);
    its_pipeline_stop(p, ITS_NS_PER_S);
    uint64_t out = t1.processed - t0.processed, drop = t1.dropped - t0.dropped;
    /* sustainable: nothing dropped, everything offered came out, latency within budget */
    int ok = drop == 0 && (double)out / wall >= 0.98 * cams * fps && p99 < 100.0;
    printf(
        "| %4d x %5.1f | %7.0f | %8.1f | %6llu | %7.2f | %7.2f | %7.2f | %9.2f | %8.1f | %4s |\n",
        cams, fps, cams * fps, (double)out / wall, (unsigned long long)drop, p50, p99, qp99, ap99,
        out ? cpu * 1e6 / (double)out : 0, ok ? "yes" : "no");
    fflush(stdout);
    its_pipeline_destroy(p);
    return ok;
}

static void cpu_engine_run(const char *shared, const char *what, double fps, double seconds)
{
    static const char *const videos[] = {
        "traffic_intersection_cctv_480p.mp4", "traffic_road_cctv_360p.mp4",
        "traffic_highway_overpass_720p.mp4", "traffic_highway_curve_720p.mp4"};
    char yaml[4096];
    int n = snprintf(yaml, sizeof yaml,
                     "engine:\n  backend: cpu\n  model: %s/models/yolo11n-fp32-dequant/"
                     "yolo11n_fp32_dequant.onnx\n  labels: %s/media/coco.names\n"
                     "batch:\n  max_size: 4\n  per_camera: 1\n"
                     "sink:\n  type: null\ncameras:\n",
                     shared, shared);
    for (int i = 0; i < 4; i++)
        n += snprintf(yaml + n, sizeof yaml - (size_t)n,
                      "  - id: cam-%d\n    url: %s/media/%s\n    loop: true\n    fps: %g\n", i,
                      shared, videos[i], fps);
    its_app_config c;
    char err[512];
    its_pipeline_t *p;
    if (its_app_config_load_string(&c, yaml, (size_t)n, "bench", err, sizeof err) < 0 ||
        its_app_build_pipeline(&c, &p, err, sizeof err) < 0) {
        fprintf(stderr, "bench: cpu engine: %s\n", err);
        its_app_config_free(&c);
        return;
    }
    its_pipeline_start(p);
    its_sleep_ns(3 * ITS_NS_PER_S); /* warm-up: first batches, caches */
    totals t0 = sum(p);
    its_stage_window win;
    its_pipeline_stage_mark(p, &win);
    uint64_t w0 = its_now_ns();
    its_sleep_ns((uint64_t)(seconds * 1e9));
    totals t1 = sum(p);
    double wall = (double)(its_now_ns() - w0) / 1e9;
    its_batcher_stats bs;
    its_pipeline_batch_stats(p, &bs);
    uint64_t out = t1.processed - t0.processed;
    printf("| %-28s | %6.1f | %7.2f | %6llu | %8.0f | %8.0f | %8.0f | %5.1f | %7.1f |\n", what,
           fps > 0 ? 4 * fps : 30 + 25 + 29.97 + 23.976, (double)out / wall,
           (unsigned long long)(t1.dropped - t0.dropped), q_ms(p, &win, ITS_STAGE_INFER, 0.5),
           q_ms(p, &win, ITS_STAGE_TOTAL, 0.5), q_ms(p, &win, ITS_STAGE_TOTAL, 0.99),
           bs.batches ? (double)bs.items_out / (double)bs.batches : 0,
           out ? (double)(t1.detections - t0.detections) / (double)out : 0);
    fflush(stdout);
    its_pipeline_stop(p, ITS_NS_PER_S);
    its_pipeline_destroy(p);
    its_app_config_free(&c);
}

int main(int argc, char **argv)
{
    int cams = 100, do_cpu = 1, hooks = 1, do_overhead = 1;
    double seconds = 4, cpu_seconds = 20;
    char levels[256] = "5,10,20,30,60";
    static const struct option longs[] = {
        {"cameras", required_argument, 0, 'c'}, {"levels", required_argument, 0, 'l'},
        {"seconds", required_argument, 0, 's'}, {"cpu-seconds", required_argument, 0, 'C'},
        {"no-cpu", no_argument, 0, 'n'},        {"no-hooks", no_argument, 0, 'H'},
        {"no-overhead", no_argument, 0, 'O'},   {0, 0, 0, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (opt) {
        case 'c':
            cams = atoi(optarg);
            break;
        case 'l':
            snprintf(levels, sizeof levels, "%s", optarg);
            break;
        case 's':
            seconds = atof(optarg);
            break;
        case 'C':
            cpu_seconds = atof(optarg);
            break;
        case 'n':
            do_cpu = 0;
            break;
        case 'H':
            hooks = 0;
            break;
        case 'O':
            do_overhead = 0;
            break;
        default:
            fprintf(stderr,
                    "usage: bench_pipeline [--cameras N] [--levels F,F,..] "
                    "[--seconds S] [--cpu-seconds S] [--no-cpu] [--no-hooks] [--no-overhead]\n");
            return 2;
        }
    }
    const char *shared = getenv("ITS_SHARED_DIR");
    if (!shared)
        shared = "../shared";
    char clip[1024];
    snprintf(clip, sizeof clip, "%s/media/traffic_bridge_720p.mp4", shared);
    its_log_set_level(ITS_LOG_WARN);

    for (int pass = 0; do_overhead && pass < 2; pass++) {
        int with = pass == 1;
        if (with && !hooks)
            break;
        printf("## Pipeline overhead: no-op backend (no inference), %d cameras of replayed "
               "720p, %s,\n## null sink (JSON still built); %.0f s per step after 1 s warm-up\n\n",
               cams,
               with ? "with tracking + analytics + quality + model metrics per frame"
                    : "framework only (no per-camera stages)",
               seconds);
        printf("| cams x fps   | offered | out fps  | drops  | e2e p50 | e2e p99 | queue p99 | "
               "analytics+quality p99 | CPU us/frame | sustained |\n");
        printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
        double best = 0;
        char lv[256];
        snprintf(lv, sizeof lv, "%s", levels);
        char *save = NULL;
        for (char *tok = strtok_r(lv, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            double fps = atof(tok);
            int ok = overhead_step(clip, cams, fps, seconds, with);
            if (ok < 0)
                return 1;
            if (ok && cams * fps > best)
                best = cams * fps;
        }
        printf("\nhighest sustained rate (no drops, all offered frames out, e2e p99 < 100 ms): "
               "%.0f frames/s over %d cameras\n\n",
               best, cams);
    }
    if (do_cpu) {
        printf("## CPU engine (yolo11n fp32, 640x640) on 4 sample traffic videos, batch <= 4, "
               "%.0f s after 3 s warm-up\n\n",
               cpu_seconds);
        printf("| run                          | offered | out fps | drops  | infer p50 ms | "
               "e2e p50 ms | e2e p99 ms | batch | dets/frame |\n");
        printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        cpu_engine_run(shared, "saturated (native fps)", 0, cpu_seconds);
        cpu_engine_run(shared, "paced (0.5 fps per camera)", 0.5, cpu_seconds);
    }
    return 0;
}

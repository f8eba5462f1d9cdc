/*
 * its-bench: SPEC's stress test. N replayed cameras x F FPS for a duration against itsd (or
 * the engine alone), from a YAML file shaped like SPEC's stress_test block; reports latency
 * percentiles as a consumer of Redis sees them, throughput, drops, errors, CPU, memory and
 * GPU use, and whether each expected result held. --find-capacity searches for the most
 * cameras that still hold the p99 bound without drops.
 *
 *     its-bench -c bench/stress/spec.yaml [--duration 60] [--cameras 100] [--engine-only]
 *     its-bench -c bench/stress/spec.yaml --find-capacity --set bench.p99_bound_ms=100
 *
 * Exit status (its/cli.h, docs/cli.md): 0 every expectation held; 1 the run failed; 2 bad
 * usage or configuration; 3 an expected result was missed; 4 itsd exited with an error.
 */
#include <cyaml/cyaml.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_gpu.h"
#include "bench_run.h"
#include "bench_stats.h"
#include "its/cli.h"
#include "its/core.h"

#define PROG "its-bench"

/* SPEC's block, as written there (strings keep their units). */
typedef struct expected_results {
    char *p99_latency;
    char *throughput;
    char *error_rate;
    char *gpu_utilization;
} expected_results;

typedef struct stress_test {
    char *duration;
    int camera_streams;
    double fps_per_camera;
    int batch_size;
    int concurrent_requests;
    expected_results *expected;
} stress_test;

typedef struct stress_doc {
    stress_test *stress;
} stress_doc;

static const cyaml_schema_field_t expected_fields[] = {
    CYAML_FIELD_STRING_PTR("p99_latency", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
                           expected_results, p99_latency, 1, 64),
    CYAML_FIELD_STRING_PTR("throughput", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, expected_results,
                           throughput, 1, 64),
    CYAML_FIELD_STRING_PTR("error_rate", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, expected_results,
                           error_rate, 1, 64),
    CYAML_FIELD_STRING_PTR("gpu_utilization", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
                           expected_results, gpu_utilization, 1, 64),
    CYAML_FIELD_END};

static const cyaml_schema_field_t stress_fields[] = {
    CYAML_FIELD_STRING_PTR("duration", CYAML_FLAG_POINTER, stress_test, duration, 1, 32),
    CYAML_FIELD_INT("camera_streams", CYAML_FLAG_DEFAULT, stress_test, camera_streams),
    CYAML_FIELD_FLOAT("fps_per_camera", CYAML_FLAG_DEFAULT, stress_test, fps_per_camera),
    CYAML_FIELD_INT("batch_size", CYAML_FLAG_OPTIONAL, stress_test, batch_size),
    CYAML_FIELD_INT("concurrent_requests", CYAML_FLAG_OPTIONAL, stress_test, concurrent_requests),
    CYAML_FIELD_MAPPING_PTR("expected_results", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
                            stress_test, expected, expected_fields),
    CYAML_FIELD_END};

static const cyaml_schema_field_t doc_fields[] = {
    CYAML_FIELD_MAPPING_PTR("stress_test", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, stress_doc,
                            stress, stress_fields),
    CYAML_FIELD_END};

/* noop: itsd's stand-in engine that detects nothing - stresses ingest, batching, analytics,
 * publishing and Redis without a model (itsd mode only) */
static const char *const backends[] = {"cpu", "cuda", "noop", NULL};
/* replay: every camera serves one clip decoded once into memory; stream: every camera opens
 * the file itself and decodes it as itsd decodes a camera (looped, paced at the camera's FPS,
 * start points staggered) */
static const char *const sources[] = {"replay", "stream", NULL};
static const char *const decodes[] = {"cpu", "auto", "nvdec", NULL}; /* its_video_decode */

typedef struct settings {
    bench_opts o;
    int backend;
    int source;
    int decode;
    int decoders;
    char *json_out;
    double step_s;
    int max_cameras;
} settings;

static const its_option options[] = {
    ITS_OPT_STR("bench.itsd", settings, o.itsd, "build/tools/itsd/itsd", 0, "itsd binary"),
    ITS_OPT_STR("bench.model", settings, o.model,
                "../shared/models/yolo11n-fp32-dequant/yolo11n_fp32_dequant.onnx", 0,
                "ONNX detector"),
    ITS_OPT_STR("bench.video", settings, o.video,
                "../shared/media/traffic_highway_overpass_720p.mp4", 0,
                "video every camera replays"),
    ITS_OPT_ENUM("bench.backend", settings, backend, "cpu", backends, 0,
                 "engine backend: cpu, cuda, or noop (itsd mode; no model runs)"),
    ITS_OPT_ENUM("bench.source", settings, source, "replay", sources, 0,
                 "itsd mode: replay (clips decoded once, served from memory) or stream (each "
                 "camera decodes its own looped H.264 stream, paced)"),
    ITS_OPT_ENUM("bench.decode", settings, decode, "auto", decodes, 0,
                 "where streams decode (stream mode, --decode-only): auto (NVDEC with the cuda "
                 "engine, else CPU), nvdec or cpu"),
    ITS_OPT_INT("bench.decoders", settings, decoders, "16", 1, 1024, 0,
                "--decode-only: readers decoding the video at once, in this process"),
    ITS_OPT_STR("bench.input_size", settings, o.input_size, "", 0,
                "network input WxH (itsd engine.input_size; empty: the model's own)"),
    ITS_OPT_INT("bench.threads", settings, o.threads, "0", 0, 256, 0, "CPU threads (0: all)"),
    ITS_OPT_INT("bench.engine_workers", settings, o.engine_workers, "1", 1, 8, 0,
                "itsd engine workers (engine.workers)"),
    ITS_OPT_INT("bench.analytics_workers", settings, o.analytics_workers, "0", 0, 32, 0,
                "itsd analytics workers (analytics.workers; 0: itsd's default)"),
    ITS_OPT_DOUBLE("bench.quality_image_fps", settings, o.quality_image_fps, "0", 0, 1000, 0,
                   "itsd analytics.quality_image_fps (picture-quality measurements per camera "
                   "per second; 0: every frame)"),
    ITS_OPT_DOUBLE("bench.max_delay_ms", settings, o.max_delay_ms, "5", 0, 1000, 0,
                   "longest wait for a batch to fill"),
    ITS_OPT_DOUBLE("bench.warmup_s", settings, o.warmup_s, "5", 0, 3600, 0,
                   "seconds before measuring (not counted)"),
    ITS_OPT_STR("bench.redis_server", settings, o.redis_server, "redis-server", 0,
                "redis-server to start on a free port (empty: use redis_host:redis_port)"),
    ITS_OPT_STR("bench.redis_host", settings, o.redis_host, "127.0.0.1", 0, "Redis host"),
    ITS_OPT_INT("bench.redis_port", settings, o.redis_port, "6379", 1, 65535, 0, "Redis port"),
    ITS_OPT_STR("bench.extra_config", settings, o.extra_config, "", 0,
                "YAML appended to the generated itsd configuration"),
    ITS_OPT_STR("bench.workdir", settings, o.workdir, "/tmp", 0, "generated config and logs"),
    ITS_OPT_DOUBLE("bench.p99_bound_ms", settings, o.p99_bound_ms, "100", 0.1, 1e6, 0,
                   "latency bound of the capacity search"),
    ITS_OPT_DOUBLE("bench.capacity_step_s", settings, step_s, "20", 1, 3600, 0,
                   "measured seconds per capacity-search step"),
    ITS_OPT_INT("bench.max_cameras", settings, max_cameras, "2048", 1, BENCH_MAX_CAMERAS, 0,
                "upper end of the capacity search"),
    ITS_OPT_STR("bench.json", settings, json_out, "", 0, "write the JSON summary here too"),
};

/* Defaults name ../shared (beside the checkout); ITS_SHARED_DIR moves it, as for the tests.
 * Paths go to itsd absolute, since it runs in its own working directory. */
static char *resolve_path(char *path)
{
    const char *shared = getenv("ITS_SHARED_DIR");
    char buf[4096];
    if (shared && !strncmp(path, "../shared/", 10)) {
        snprintf(buf, sizeof buf, "%s/%s", shared, path + 10);
    } else {
        snprintf(buf, sizeof buf, "%s", path);
    }
    char *abs = realpath(buf, NULL);
    char *out = its_strdup(ITS_MOD_APP, abs ? abs : buf);
    free(abs);
    if (out) {
        its_free(path);
        return out;
    }
    return path;
}

static void usage(FILE *out)
{
    fprintf(out, "Usage: its-bench [-c STRESS.yaml] [options]\n"
                 "Run SPEC's stress test: N replayed cameras x F FPS against itsd (or the engine\n"
                 "alone); report latency percentiles, throughput, drops, errors, CPU, memory and\n"
                 "GPU use, and whether each expected result held (text, then one JSON line).\n"
                 "\n"
                 "  -c, --config FILE     stress_test block (SPEC) and bench.* settings\n"
                 "      --cameras N       override stress_test.camera_streams\n"
                 "      --fps F           override stress_test.fps_per_camera\n"
                 "      --duration S      override stress_test.duration (seconds or 30s/5m/1h)\n"
                 "  -b, --batch N         override stress_test.batch_size\n"
                 "      --engine-only     time the engine alone, no itsd\n"
                 "      --find-capacity   raise cameras until p99 > bench.p99_bound_ms or drops\n"
                 "      --decode-only [FILE]  the decode ceiling: bench.decoders readers of FILE\n"
                 "                        (bench.video) decode it unpaced in this process\n"
                 "      --decoders N      --set bench.decoders=N\n"
                 "      --decode MODE     --set bench.decode=MODE (auto, nvdec, cpu)\n"
                 "      --set KEY=VALUE   any bench.* option (see --print-config)\n"
                 "      --print-config    print the effective configuration and exit\n"
                 "  -q, --quiet           no progress line\n"
                 "  -h, --help            print this help and exit\n"
                 "      --version         print the version and exit\n"
                 "\n"
                 "Exit status (docs/cli.md):\n"
                 "  0  the run completed and every expected result held\n"
                 "  1  the run failed (itsd or the engine could not start)\n"
                 "  2  bad usage or configuration\n"
                 "  3  an expected result was missed\n"
                 "  4  itsd exited with an error\n");
}

typedef struct verdict {
    const char *name;
    const char *expect;
    double measured;
    const char *unit;
    int known; /* 0: not measurable in this run (e.g. no GPU) */
    int holds;
} verdict;

static int evaluate(const stress_test *st, const bench_result *r, verdict *v, char *err,
                    size_t errlen)
{
    int n = 0;
    const expected_results *x = st ? st->expected : NULL;
    double minutes = r->measured_s / 60.0;
    double frames = (double)r->lat.n + (double)r->frames_dropped;
    struct {
        const char *name, *text, *unit;
        double value;
        int known;
    } rows[] = {
        {"p99_latency", x ? x->p99_latency : NULL, "ms",
         its_ns_to_ms(lat_percentile((lat_samples *)&r->lat, 99)), r->lat.n > 0},
        {"throughput", x ? x->throughput : NULL, "detections/minute",
         minutes > 0 ? (double)r->detections / minutes : 0, 1},
        {"error_rate", x ? x->error_rate : NULL, "%", frames > 0 ? (double)r->errors / frames : 0,
         1},
        {"gpu_utilization", x ? x->gpu_utilization : NULL, "%", r->gpu_util_mean / 100.0,
         !isnan(r->gpu_util_mean)},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        if (!rows[i].text)
            continue;
        expectation e;
        if (parse_expectation(rows[i].text, &e, err, errlen) < 0)
            return ITS_ECONFIG;
        v[n] = (verdict){rows[i].name,  rows[i].text,
                         rows[i].value, rows[i].unit,
                         rows[i].known, rows[i].known && expectation_holds(&e, rows[i].value)};
        n++;
    }
    return n;
}

static void print_report(const bench_opts *o, const stress_test *st, bench_result *r, FILE *out)
{
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    fprintf(out,
            "\n== its-bench: %d cameras x %g FPS, batch %d, %s, %s source, %s decode, %s "
            "backend (%d engine workers), GPU %s, %.0f s measured (after %.0f s warm-up), host "
            "%s, %ld CPUs\n",
            o->cameras, o->fps, o->batch, o->engine_only ? "engine only" : "itsd end to end",
            o->source, r->decode, o->backend, o->engine_only ? 1 : o->engine_workers,
            r->gpu_name ? r->gpu_name : "unknown", r->measured_s, o->warmup_s, host,
            sysconf(_SC_NPROCESSORS_ONLN));
    fprintf(out, "\nLatency (%s), %zu frames:\n",
            o->engine_only ? "inference done - frame due"
                           : "Redis arrival at the subscriber - capture timestamp",
            r->lat.n);
    lat_print_chart(&r->lat, o->p99_bound_ms, out);
    fprintf(out, "mean %.2f ms, max %.2f ms\n", lat_mean_ms(&r->lat),
            its_ns_to_ms(lat_percentile(&r->lat, 100)));
    if (r->lat.overflow)
        fprintf(out, "(%zu samples beyond the buffer were not kept)\n", r->lat.overflow);

    fprintf(out, "\n| camera | frames in | processed (received) | dropped | gaps | detections |\n"
                 "|---|---|---|---|---|---|\n");
    int shown = 0;
    for (int i = 0; i < r->n_cams; i++) {
        bench_camera *c = &r->cams[i];
        if (shown++ >= 10 && i != r->n_cams - 1)
            continue;
        fprintf(out, "| cam-%d | %.0f | %llu | %.0f | %llu | %llu |\n", i, c->frames_in,
                (unsigned long long)c->received, c->dropped, (unsigned long long)c->gaps,
                (unsigned long long)c->detections);
    }
    if (r->n_cams > 11)
        fprintf(out, "(%d cameras between not shown; totals below)\n", r->n_cams - 11);
    double minutes = r->measured_s / 60;
    fprintf(out,
            "\n| metric | value |\n|---|---|\n"
            "| frames in (sources) | %llu |\n| frames dropped | %llu |\n"
            "| result messages | %llu |\n| bad messages | %llu |\n| errors | %llu |\n"
            "| frames/s (measured window) | %.1f |\n| detections/minute | %.0f |\n"
            "| CPU use (cores) | %.2f |\n| peak memory (MiB) | %.1f |\n",
            (unsigned long long)r->frames_in, (unsigned long long)r->frames_dropped,
            (unsigned long long)r->messages, (unsigned long long)r->bad_messages,
            (unsigned long long)r->errors, r->measured_s > 0 ? r->lat.n / r->measured_s : 0,
            minutes > 0 ? r->detections / minutes : 0, r->cpu_cores, r->peak_rss_mb);
    if (isnan(r->gpu_util_mean))
        fprintf(out, "| GPU utilisation (NVML) | not measured: %s |\n",
                r->gpu_note ? r->gpu_note : "no sample");
    else
        fprintf(out,
                "| GPU utilisation (NVML, mean) | %.1f%% |\n| GPU memory used (peak) | %.0f MiB "
                "|\n",
                r->gpu_util_mean, r->gpu_mem_mb);

    verdict v[8];
    char err[256];
    int nv = evaluate(st, r, v, err, sizeof err);
    if (nv > 0) {
        fprintf(out, "\n| expected (SPEC) | measured | held |\n|---|---|---|\n");
        for (int i = 0; i < nv; i++) {
            double shown_v = v[i].measured * (!strcmp(v[i].unit, "%") ? 100 : 1);
            if (v[i].known)
                fprintf(out, "| %s %s | %.3f %s | %s |\n", v[i].name, v[i].expect, shown_v,
                        v[i].unit, v[i].holds ? "yes" : "NO");
            else
                fprintf(out, "| %s %s | not measured here | n/a |\n", v[i].name, v[i].expect);
        }
    }
}

/* The run's summary as one JSON object (a figure not measured is null, never nan). */
static void write_json(const bench_opts *o, const stress_test *st, bench_result *r, FILE *out)
{
    verdict v[8];
    char err[256];
    int nv = evaluate(st, r, v, err, sizeof err);
    char buf[8192];
    its_json w;
    its_json_init(&w, buf, sizeof buf);
    its_json_obj_begin(&w);
    its_json_kint(&w, "cameras", o->cameras);
    its_json_knum(&w, "fps", o->fps);
    its_json_kint(&w, "batch", o->batch);
    its_json_kstr(&w, "mode", o->engine_only ? "engine" : "itsd");
    its_json_kstr(&w, "source", o->source);
    its_json_kstr(&w, "decode", r->decode);
    its_json_kstr(&w, "backend", o->backend);
    its_json_kstr(&w, "gpu", r->gpu_name);
    its_json_kint(&w, "engine_workers", o->engine_only ? 1 : o->engine_workers);
    its_json_kfixed(&w, "measured_s", r->measured_s, 1);
    its_json_kuint(&w, "frames", r->lat.n);
    its_json_key(&w, "latency_ms");
    its_json_obj_begin(&w);
    static const double ps[] = {50, 75, 90, 95, 99, 99.9};
    static const char *const pn[] = {"p50", "p75", "p90", "p95", "p99", "p99.9"};
    for (int i = 0; i < 6; i++)
        its_json_kfixed(&w, pn[i], r->lat.n ? its_ns_to_ms(lat_percentile(&r->lat, ps[i])) : NAN,
                        3);
    its_json_obj_end(&w);
    its_json_kuint(&w, "frames_in", r->frames_in);
    its_json_kuint(&w, "frames_dropped", r->frames_dropped);
    its_json_kuint(&w, "messages", r->messages);
    its_json_kuint(&w, "bad_messages", r->bad_messages);
    its_json_kuint(&w, "errors", r->errors);
    its_json_kfixed(&w, "detections_per_minute",
                    r->measured_s > 0 ? r->detections / (r->measured_s / 60) : NAN, 0);
    its_json_kfixed(&w, "cpu_cores", r->cpu_cores, 2);
    its_json_kfixed(&w, "peak_rss_mb", r->peak_rss_mb, 1);
    its_json_kfixed(&w, "gpu_utilization", r->gpu_util_mean, 1);
    its_json_kfixed(&w, "gpu_memory_mb", r->gpu_mem_mb, 0);
    its_json_kstr(&w, "gpu_note", r->gpu_note);
    its_json_key(&w, "expected");
    its_json_obj_begin(&w);
    for (int i = 0; i < nv; i++) {
        its_json_key(&w, v[i].name);
        its_json_obj_begin(&w);
        its_json_kstr(&w, "expect", v[i].expect);
        its_json_knum(&w, "measured", v[i].known ? v[i].measured : NAN);
        if (v[i].known)
            its_json_kbool(&w, "held", v[i].holds);
        else
            its_json_knull(&w, "held");
        its_json_obj_end(&w);
    }
    its_json_obj_end(&w);
    its_json_obj_end(&w);
    int n = its_json_finish(&w);
    if (n < 0) {
        fprintf(stderr, "its-bench: JSON summary: %s\n", its_strerror(n));
        return;
    }
    fwrite(buf, 1, (size_t)n, out);
    fputc('\n', out);
}

static int run_once(const bench_opts *o, bench_result *r)
{
    char err[512] = "";
    int rc = o->engine_only ? bench_run_engine(o, r, err, sizeof err)
                            : bench_run_itsd(o, r, err, sizeof err);
    if (rc < 0)
        fprintf(stderr, "its-bench: %s (%s)\n", err[0] ? err : "run failed", its_strerror(rc));
    return rc;
}

/* A step holds if p99 is within the bound, nothing was dropped and nothing went wrong. */
static int step_holds(const bench_opts *o, bench_result *r)
{
    return r->lat.n > 0 && its_ns_to_ms(lat_percentile(&r->lat, 99)) <= o->p99_bound_ms &&
           r->frames_dropped == 0 && r->errors == 0;
}

static int find_capacity(bench_opts o, int max_cameras, double step_s)
{
    int lo = 0, hi = 0, n = o.cameras > 0 ? o.cameras : 10;
    o.duration_s = step_s;
    printf("\n== capacity search: %g FPS per camera, p99 <= %g ms, no drops, %g s per step\n",
           o.fps, o.p99_bound_ms, step_s);
    printf("| cameras | p99 ms | dropped | errors | GPU %% | decode | held |\n"
           "|---|---|---|---|---|---|---|\n");
    while (n <= max_cameras) {
        bench_result r;
        o.cameras = n;
        int rc = run_once(&o, &r);
        int ok = rc == 0 && step_holds(&o, &r);
        char p99[32] = "-", gpu[32] = "-";
        if (rc == 0 && r.lat.n)
            snprintf(p99, sizeof p99, "%.2f", its_ns_to_ms(lat_percentile(&r.lat, 99)));
        if (rc == 0 && !isnan(r.gpu_util_mean))
            snprintf(gpu, sizeof gpu, "%.0f", r.gpu_util_mean);
        printf("| %d | %s | %llu | %llu | %s | %s | %s |\n", n, p99,
               (unsigned long long)r.frames_dropped, (unsigned long long)r.errors, gpu,
               rc == 0 ? r.decode : "-", ok ? "yes" : "no");
        fflush(stdout);
        bench_result_free(&r);
        if (ok)
            lo = n;
        else
            hi = n;
        if (!hi)
            n = n * 2 > max_cameras && n < max_cameras ? max_cameras : n * 2;
        else if (hi - lo <= (lo / 20 > 1 ? lo / 20 : 1))
            break;
        else
            n = (lo + hi) / 2;
        if (!hi && lo == max_cameras)
            break;
    }
    printf("\ncapacity: %d cameras x %g FPS held p99 <= %g ms with no drops%s\n", lo, o.fps,
           o.p99_bound_ms, hi ? "" : " (the search's upper end)");
    return lo;
}

int main(int argc, char **argv)
{
    settings s;
    stress_doc doc;
    memset(&s, 0, sizeof s);
    memset(&doc, 0, sizeof doc);
    its_config cfg = {.options = options,
                      .n_options = ITS_ARRAY_LEN(options),
                      .settings = &s,
                      .extra_fields = doc_fields,
                      .extra = &doc,
                      .extra_size = sizeof doc};
    const char *path = NULL;
    double cameras = -1, fps = -1, duration = -1, batch = -1;
    int find = 0, print = 0, engine_only = 0, quiet = 0, decode_only = 0;
    char err[512];
    enum {
        O_CAMERAS = 256,
        O_FPS,
        O_DURATION,
        O_ENGINE,
        O_FIND,
        O_SET,
        O_PRINT,
        O_DECODE_ONLY,
        O_DECODERS,
        O_DECODE
    };
    static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
                                             {"cameras", required_argument, NULL, O_CAMERAS},
                                             {"fps", required_argument, NULL, O_FPS},
                                             {"duration", required_argument, NULL, O_DURATION},
                                             {"batch", required_argument, NULL, 'b'},
                                             {"engine-only", no_argument, NULL, O_ENGINE},
                                             {"find-capacity", no_argument, NULL, O_FIND},
                                             {"decode-only", no_argument, NULL, O_DECODE_ONLY},
                                             {"decoders", required_argument, NULL, O_DECODERS},
                                             {"decode", required_argument, NULL, O_DECODE},
                                             {"set", required_argument, NULL, O_SET},
                                             {"print-config", no_argument, NULL, O_PRINT},
                                             {"quiet", no_argument, NULL, 'q'},
                                             {"help", no_argument, NULL, 'h'},
                                             {"version", no_argument, NULL, ITS_CLI_OPT_VERSION},
                                             {NULL, 0, NULL, 0}};
    const char *const shorts = ITS_CLI_OPTSTRING("c:b:q");
    /* First pass: usage errors, help, version and the file; the second applies the
     * overrides and --set over the file. */
    int c;
    while ((c = getopt_long(argc, argv, shorts, longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case O_DECODE_ONLY:
            decode_only = 1;
            break;
        case 'h':
            usage(stdout);
            return ITS_EXIT_OK;
        case ITS_CLI_OPT_VERSION:
            return its_cli_version(PROG);
        case '?':
        case ':':
            return its_cli_bad_option(PROG, c, argv);
        default:
            break;
        }
    }
    /* --decode-only takes the video as its one argument */
    const char *decode_file = decode_only && optind == argc - 1 ? argv[optind] : NULL;
    if (optind < argc && !decode_file)
        return its_cli_usage_error(PROG, "unexpected argument '%s'", argv[optind]);
    if (its_config_load(&cfg, path, err, sizeof err) < 0) {
        fprintf(stderr, "its-bench: %s\n", err);
        return ITS_EXIT_USAGE;
    }
    /* from here on, a usage error frees the configuration before it returns */
#define USAGE_FAIL(rc)                                                                             \
    do {                                                                                           \
        int rc_ = (rc);                                                                            \
        its_config_free(&cfg);                                                                     \
        return rc_;                                                                                \
    } while (0)
    optind = 1;
    while ((c = getopt_long(argc, argv, shorts, longopts, NULL)) != -1) {
        switch (c) {
        case O_CAMERAS:
            if (its_cli_double(PROG, "--cameras", optarg, 1, BENCH_MAX_CAMERAS, &cameras) < 0)
                USAGE_FAIL(ITS_EXIT_USAGE);
            break;
        case O_FPS:
            if (its_cli_double(PROG, "--fps", optarg, 1e-3, 1000, &fps) < 0)
                USAGE_FAIL(ITS_EXIT_USAGE);
            break;
        case O_DURATION:
            duration = parse_duration_s(optarg);
            if (duration <= 0)
                USAGE_FAIL(its_cli_usage_error(
                    PROG, "--duration: '%s' is not a duration (30, 30s, 5m, 1h)", optarg));
            break;
        case 'b':
            if (its_cli_double(PROG, "--batch", optarg, 1, 32, &batch) < 0)
                USAGE_FAIL(ITS_EXIT_USAGE);
            break;
        case O_ENGINE:
            engine_only = 1;
            break;
        case O_FIND:
            find = 1;
            break;
        case O_DECODERS:
        case O_DECODE:
            if (its_config_set(&cfg, c == O_DECODERS ? "bench.decoders" : "bench.decode", optarg,
                               c == O_DECODERS ? "--decoders" : "--decode", err, sizeof err) < 0) {
                fprintf(stderr, "its-bench: %s\n", err);
                USAGE_FAIL(ITS_EXIT_USAGE);
            }
            break;
        case O_PRINT:
            print = 1;
            break;
        case 'q':
            quiet = 1;
            break;
        case O_SET: {
            char key[128];
            const char *eq = strchr(optarg, '=');
            if (!eq || (size_t)(eq - optarg) >= sizeof key)
                USAGE_FAIL(its_cli_usage_error(PROG, "--set: '%s' is not KEY=VALUE", optarg));
            memcpy(key, optarg, (size_t)(eq - optarg));
            key[eq - optarg] = '\0';
            if (its_config_set(&cfg, key, eq + 1, "--set", err, sizeof err) < 0) {
                fprintf(stderr, "its-bench: %s\n", err);
                USAGE_FAIL(ITS_EXIT_USAGE);
            }
            break;
        }
        default:
            break;
        }
    }
    if (print) {
        its_config_print(&cfg, stdout);
        its_config_free(&cfg);
        return 0;
    }
    s.o.model = resolve_path(s.o.model);
    s.o.video = resolve_path(s.o.video);
    s.o.itsd = resolve_path(s.o.itsd);
    stress_test *st = doc.stress;
    bench_opts o = s.o;
    o.backend = (char *)backends[s.backend];
    o.source = (char *)sources[s.source];
    o.decode = (char *)decodes[s.decode];
    o.cameras = cameras >= 0 ? (int)cameras : st ? st->camera_streams : 4;
    o.fps = fps >= 0 ? fps : st ? st->fps_per_camera : 5;
    o.batch = batch >= 0 ? (int)batch : st && st->batch_size ? st->batch_size : 8;
    o.duration_s = duration >= 0 ? duration : st ? parse_duration_s(st->duration) : 30;
    o.engine_only = engine_only;
    o.quiet = quiet;
    if (engine_only && strcmp(o.backend, "noop") == 0) {
        USAGE_FAIL(its_cli_usage_error(PROG, "--engine-only: needs a real engine (cpu or cuda), "
                                             "not noop"));
    }
    if (engine_only && s.source != 0) {
        USAGE_FAIL(its_cli_usage_error(PROG, "--engine-only: frames are decoded once before "
                                             "timing; bench.source=stream needs itsd"));
    }
    if (o.cameras < 1 || o.cameras > BENCH_MAX_CAMERAS || o.fps <= 0 || o.fps > 1000 ||
        o.batch < 1 || o.batch > 32 || o.duration_s <= 0) {
        fprintf(stderr,
                "its-bench: %s: need 1-%d cameras, 0 < fps <= 1000, batch 1-32, a duration > 0 "
                "(got %d, %g, %d, %g)\n",
                path ? path : "(defaults)", BENCH_MAX_CAMERAS, o.cameras, o.fps, o.batch,
                o.duration_s);
        USAGE_FAIL(ITS_EXIT_USAGE);
    }
    mkdir(o.workdir, 0755);
    if (bench_gpu_start() < 0) {
        const char *name, *note;
        double u, m;
        bench_gpu_result(&u, &m, &name, &note);
        fprintf(stderr, "its-bench: %s\n", note);
    }
    int status = 0;
    if (decode_only) {
        char *file = decode_file ? resolve_path(its_strdup(ITS_MOD_APP, decode_file)) : NULL;
        int rc = bench_decode_only(file ? file : o.video, s.decoders, (its_video_decode)s.decode,
                                   o.warmup_s, o.duration_s, s.json_out, stdout);
        its_free(file);
        status = rc < 0 ? 1 : 0;
    } else if (find) {
        find_capacity(o, s.max_cameras, s.step_s);
    } else {
        bench_result r;
        if (run_once(&o, &r) < 0) {
            status = 1;
        } else {
            print_report(&o, st, &r, stdout);
            printf("\n");
            write_json(&o, st, &r, stdout);
            if (s.json_out && *s.json_out) {
                FILE *f = fopen(s.json_out, "w");
                if (f) {
                    write_json(&o, st, &r, f);
                    fclose(f);
                }
            }
            verdict v[8];
            int nv = evaluate(st, &r, v, err, sizeof err);
            for (int i = 0; i < nv; i++)
                if (v[i].known && !v[i].holds)
                    status = 3;
            if (r.exit_status != 0)
                status = status ? status : 4;
        }
        bench_result_free(&r);
    }
    bench_gpu_stop();
    its_config_free(&cfg);
    return status;
#undef USAGE_FAIL
}

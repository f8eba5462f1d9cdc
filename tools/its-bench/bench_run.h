/*
 * One its-bench run and its result: N cameras x F FPS for a duration, against itsd (through
 * Redis, as a real consumer sees it) or against the engine alone.
 */
#ifndef ITS_BENCH_RUN_H
#define ITS_BENCH_RUN_H

#include <stdint.h>
#include <stdio.h>

#include "bench_stats.h"
#include "its/video.h"

#define BENCH_MAX_CAMERAS 4096

typedef struct bench_opts {
    /* what to run */
    int cameras;
    double fps;
    int batch;
    double duration_s;
    double warmup_s; /* samples from the first warmup_s are not counted (reported as such) */
    int engine_only;
    char *decode; /* stream cameras' decode: auto, nvdec or cpu (its/video.h) */
    char *source; /* itsd mode: "replay" (clips decoded once, served from memory) or "stream"
                   * (every camera decodes its own H.264 stream: a looped file, paced) */
    /* the service under test */
    char *itsd; /* path of the itsd binary */
    char *model;
    char *video;
    char *backend;    /* cpu | cuda */
    char *input_size; /* itsd engine.input_size ("WxH"); "" : the model's own */
    int threads;
    int engine_workers;       /* itsd engine.workers (each its own engine: 2 overlap on a GPU) */
    int analytics_workers;    /* itsd analytics.workers; 0: itsd's default */
    double quality_image_fps; /* itsd analytics.quality_image_fps; 0: every frame */
    double max_delay_ms;
    char *redis_server; /* redis-server binary started on a free port; "" : use redis_host */
    char *redis_host;
    int redis_port;
    char *extra_config; /* YAML appended to the generated itsd configuration */
    char *workdir;      /* where the generated config and logs go */
    int quiet;
    double p99_bound_ms;
} bench_opts;

typedef struct bench_camera {
    uint64_t received; /* result messages that arrived */
    uint64_t first_frame, last_frame;
    uint64_t gaps; /* frame numbers skipped between consecutive messages */
    uint64_t detections;
    double frames_in; /* from itsd's metrics (captured), -1 unknown */
    double dropped;   /* from itsd's metrics, -1 unknown */
} bench_camera;

typedef struct bench_result {
    lat_samples lat;       /* end to end, per frame, after warm-up */
    uint64_t messages;     /* all result messages received */
    uint64_t bad_messages; /* unparsable or missing fields: counted as errors */
    uint64_t detections;   /* after warm-up */
    double measured_s;     /* the window the samples cover */
    uint64_t frames_in;    /* frames captured by the sources (itsd metrics) */
    uint64_t frames_dropped;
    uint64_t errors;      /* its_errors_total + bad messages */
    double cpu_cores;     /* itsd's CPU time / wall time */
    double peak_rss_mb;   /* itsd's (or our own, engine-only) VmHWM */
    double gpu_util_mean; /* percent, NaN where no GPU */
    double gpu_mem_mb;    /* peak during the window; NaN where no GPU */
    const char *gpu_name; /* NVML's model name, NULL if unknown */
    const char *gpu_note; /* why GPU figures are missing, NULL if measured */
    char decode[8];       /* "cpu", "nvdec" or "mixed": where the cameras' frames were decoded */
    int exit_status;      /* itsd's exit status, -1 if killed */
    bench_camera *cams;
    int n_cams;
} bench_result;

/* --decode-only: n readers of file decoding it in a loop, unpaced, for duration_s after
 * warmup_s; the table and a JSON line to out (and json_out unless NULL or ""). 0, or
 * ITS_EDECODE if every reader failed. */
int bench_decode_only(const char *file, int n, its_video_decode mode, double warmup_s,
                      double duration_s, const char *json_out, FILE *out);
int bench_run_itsd(const bench_opts *o, bench_result *r, char *err, size_t errlen);
int bench_run_engine(const bench_opts *o, bench_result *r, char *err, size_t errlen);
void bench_result_free(bench_result *r);

#endif

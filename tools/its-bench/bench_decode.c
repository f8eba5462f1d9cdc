/*
 * its-bench --decode-only: the decode ceiling. N readers of one file in this process, each on
 * its own thread, decode it in a loop as fast as they can for the duration, without pacing
 * and without converting the pictures (its_video_skip: an NVDEC picture stays in GPU memory),
 * so the figure is the decoders' alone. With NVDEC every reader is a session of the one CUDA
 * device context of the process (src/ingest/video.c), as the cameras of itsd are.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "bench_gpu.h"
#include "bench_run.h"
#include "its/core.h"
#include "its/video.h"

typedef struct decoder {
    pthread_t thread;
    const char *file;
    its_video_decode mode;
    atomic_int *stop;
    _Atomic uint64_t frames;
    uint64_t base; /* frames when the measured window opened */
    int nvdec, failed;
    its_video_fallback fallback;
    char err[384];
} decoder;

static void *decode_main(void *arg)
{
    decoder *d = arg;
    its_video_opts vo = {.decode = d->mode, .cancel = d->stop};
    its_video_t *v = NULL;
    if (its_video_open(d->file, &vo, &v, d->err, sizeof d->err) < 0) {
        d->failed = 1;
        return NULL;
    }
    its_video_frame f;
    int noted = 0;
    while (!atomic_load(d->stop)) {
        int rc = its_video_skip(v, &f);
        if (rc == 1) {
            atomic_fetch_add(&d->frames, 1);
            if (!noted) { /* the GPU decoder opens with the first picture */
                its_video_stats vs;
                its_video_get_stats(v, &vs);
                d->nvdec = vs.nvdec;
                d->fallback = vs.fallback;
                noted = 1;
            }
            continue;
        }
        if (rc == ITS_EEOF && its_video_rewind(v) == 0)
            continue;
        if (rc != ITS_ECLOSED) {
            snprintf(d->err, sizeof d->err, "%s", its_video_error(v));
            d->failed = 1;
        }
        break;
    }
    its_video_close(v);
    return NULL;
}

int bench_decode_only(const char *file, int n, its_video_decode mode, double warmup_s,
                      double duration_s, const char *json_out, FILE *out)
{
    decoder *d = its_calloc(ITS_MOD_APP, (size_t)n, sizeof *d);
    if (!d)
        return ITS_ENOMEM;
    atomic_int stop;
    atomic_init(&stop, 0);
    int started = 0;
    for (int i = 0; i < n; i++) {
        d[i].file = file;
        d[i].mode = mode;
        d[i].stop = &stop;
        atomic_init(&d[i].frames, 0);
        if (pthread_create(&d[i].thread, NULL, decode_main, &d[i]) != 0)
            break;
        started++;
    }
    its_sleep_ns((uint64_t)(warmup_s * 1e9));
    uint64_t f0 = 0, f1 = 0;
    for (int i = 0; i < started; i++) {
        d[i].base = atomic_load(&d[i].frames);
        f0 += d[i].base;
    }
    uint64_t t0 = its_now_ns();
    bench_gpu_window(1);
    its_sleep_ns((uint64_t)(duration_s * 1e9));
    bench_gpu_window(0);
    uint64_t t1 = its_now_ns();
    uint64_t lo = UINT64_MAX, hi = 0;
    for (int i = 0; i < started; i++) {
        uint64_t x = atomic_load(&d[i].frames);
        f1 += x;
        x -= d[i].base;
        lo = x < lo ? x : lo;
        hi = x > hi ? x : hi;
    }
    atomic_store(&stop, 1);
    int on_gpu = 0, failed = 0, reasons[ITS_VIDEO_FALLBACK_COUNT] = {0};
    const char *first_err = NULL;
    for (int i = 0; i < started; i++) {
        pthread_join(d[i].thread, NULL);
        on_gpu += d[i].nvdec;
        failed += d[i].failed;
        if (d[i].failed && !first_err)
            first_err = d[i].err;
        if (!d[i].nvdec && (unsigned)d[i].fallback < ITS_VIDEO_FALLBACK_COUNT)
            reasons[d[i].fallback]++;
    }
    double secs = (double)(t1 - t0) / 1e9;
    double fps = secs > 0 ? (double)(f1 - f0) / secs : 0;
    double util, mem;
    const char *gpu, *note;
    bench_gpu_result(&util, &mem, &gpu, &note);
    const char *where = on_gpu == started ? "nvdec" : on_gpu ? "mixed" : "cpu";
    fprintf(out,
            "\n== its-bench --decode-only: %d decoders (decode %s) of %s, %.0f s measured after "
            "%.0f s, GPU %s\n\n| metric | value |\n|---|---|\n"
            "| decoders on NVDEC | %d of %d |\n| decoders failed | %d |\n"
            "| frames/s (all decoders) | %.0f |\n| frames/s per decoder (mean) | %.1f |\n"
            "| cameras at 30 FPS | %.0f |\n",
            n, its_video_decode_name(mode), file, secs, warmup_s, gpu ? gpu : "unknown", on_gpu, n,
            failed, fps, started ? fps / started : 0, fps / 30.0);
    if (isnan(util))
        fprintf(out, "| GPU utilisation (NVML) | not measured: %s |\n", note ? note : "no sample");
    else
        fprintf(out, "| GPU utilisation (NVML, mean) | %.1f%% |\n", util);
    for (int r = 1; r < ITS_VIDEO_FALLBACK_COUNT; r++)
        if (reasons[r])
            fprintf(out, "| on the CPU: %s | %d |\n",
                    its_video_fallback_name((its_video_fallback)r), reasons[r]);
    if (first_err)
        fprintf(out, "\nfirst failure: %s\n", first_err);

    char buf[2048];
    its_json w;
    its_json_init(&w, buf, sizeof buf);
    its_json_obj_begin(&w);
    its_json_kstr(&w, "mode", "decode-only");
    its_json_kstr(&w, "video", file);
    its_json_kint(&w, "decoders", n);
    its_json_kstr(&w, "decode", where);
    its_json_kint(&w, "decoders_nvdec", on_gpu);
    its_json_kint(&w, "decoders_failed", failed);
    its_json_kstr(&w, "gpu", gpu);
    its_json_kfixed(&w, "measured_s", secs, 1);
    its_json_kfixed(&w, "frames_per_s", fps, 1);
    its_json_kfixed(&w, "frames_per_s_decoder_min", started ? (double)lo / secs : NAN, 1);
    its_json_kfixed(&w, "frames_per_s_decoder_max", started ? (double)hi / secs : NAN, 1);
    its_json_kfixed(&w, "gpu_utilization", util, 1);
    its_json_kstr(&w, "gpu_note", note);
    its_json_obj_end(&w);
    int len = its_json_finish(&w);
    if (len > 0) {
        fprintf(out, "\n%.*s\n", len, buf);
        FILE *f = json_out && *json_out ? fopen(json_out, "w") : NULL;
        if (f) {
            fprintf(f, "%.*s\n", len, buf);
            fclose(f);
        }
    }
    its_free(d);
    return failed == n ? ITS_EDECODE : 0;
}

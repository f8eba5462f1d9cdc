/*
 * bench/cpu: our engine's side of the CPU benchmark. Times one model at one batch size on a
 * real photo (letterboxed by src/detect), prints one JSON line; run.sh runs it and the ONNX
 * Runtime peer (ort_bench.js) in fresh processes and prints the table.
 *
 *   bench_cpu -m MODEL.onnx -i IMAGE [-b BATCH] [-n ITERS] [-t THREADS] [--dump-input FILE]
 *
 * --dump-input writes the letterboxed image (one batch item, raw float32) for the peer, so
 * both runtimes see the same tensor.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "its/alloc.h"
#include "its/clock.h"
#include "its/detect.h"
#include "its/engine.h"
#include "its/media.h"

static long rss_kb(void)
{
    /* Current resident set from /proc (the peak comes from getrusage). */
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, res = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &res) != 2)
            res = 0;
        fclose(f);
    }
    return res * 4;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static const char *meta_fn(const void *ctx, const char *key)
{
    return its_model_meta(ctx, key);
}

int main(int argc, char **argv)
{
    const char *model_path = NULL, *image_path = NULL, *dump = NULL;
    int batch = 1, iters = 20, threads = 2;
    static const struct option lo[] = {{"dump-input", required_argument, 0, 'd'}, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "m:i:b:n:t:", lo, NULL)) != -1) {
        switch (c) {
        case 'm':
            model_path = optarg;
            break;
        case 'i':
            image_path = optarg;
            break;
        case 'b':
            batch = atoi(optarg);
            break;
        case 'n':
            iters = atoi(optarg);
            break;
        case 't':
            threads = atoi(optarg);
            break;
        case 'd':
            dump = optarg;
            break;
        default:
            fprintf(stderr, "usage: bench_cpu -m MODEL -i IMAGE [-b N] [-n ITERS] [-t THREADS] "
                            "[--dump-input FILE]\n");
            return 2;
        }
    }
    if (!model_path || !image_path || batch < 1 || batch > 64 || iters < 1) {
        fprintf(stderr, "bench_cpu: -m MODEL and -i IMAGE are required\n");
        return 2;
    }
    long base_kb = rss_kb();
    char err[512];
    its_model_t *m;
    if (its_model_load(model_path, &m, err, sizeof err) < 0) {
        fprintf(stderr, "bench_cpu: %s: %s\n", model_path, err);
        return 1;
    }
    its_det_model_info info = {.input = its_model_input(m, 0),
                               .n_outputs = its_model_n_outputs(m),
                               .meta = meta_fn,
                               .meta_ctx = m};
    for (int i = 0; i < info.n_outputs && i < 8; i++)
        info.outputs[i] = its_model_output(m, i);
    its_det_config cfg;
    its_detector_t *det;
    if (its_det_config_init(&info, ITS_DET_AUTO, &cfg, err, sizeof err) < 0 ||
        its_detector_create(&cfg, &info, &det, err, sizeof err) < 0) {
        fprintf(stderr, "bench_cpu: %s\n", err);
        return 1;
    }
    its_image img;
    its_image_opts io = {.fmt = cfg.pre.bgr ? ITS_PIX_BGR24 : ITS_PIX_RGB24};
    if (its_image_load(image_path, &io, &img, err, sizeof err) < 0) {
        fprintf(stderr, "bench_cpu: %s\n", err);
        return 1;
    }
    size_t in_n = its_detector_input_floats(det);
    float *input = its_malloc(ITS_MOD_TEST, in_n * batch * sizeof(float));
    its_letterbox lb;
    for (int b = 0; b < batch; b++)
        its_det_letterbox(&cfg.pre, &img, input + in_n * b, &lb);
    its_image_free(&img);
    if (dump) {
        FILE *f = fopen(dump, "wb");
        if (!f || fwrite(input, sizeof(float), in_n, f) != in_n || fclose(f) != 0) {
            fprintf(stderr, "bench_cpu: cannot write %s\n", dump);
            return 1;
        }
    }
    float *outs[8];
    for (int i = 0; i < info.n_outputs; i++)
        outs[i] = its_malloc(ITS_MOD_TEST, its_detector_output_floats(det, i) * batch * 4);
    its_engine_opts eo = {.backend = "cpu", .threads = threads, .max_batch = batch};
    its_engine_t *e;
    if (its_engine_create(m, &eo, &e, err, sizeof err) < 0) {
        fprintf(stderr, "bench_cpu: engine: %s\n", err);
        return 1;
    }
    for (int i = 0; i < 3; i++)
        if (its_engine_run(e, batch, input, outs) < 0) {
            fprintf(stderr, "bench_cpu: run failed\n");
            return 1;
        }
    double *t = its_malloc(ITS_MOD_TEST, sizeof(double) * iters);
    for (int i = 0; i < iters; i++) {
        int64_t t0 = its_now_ns();
        its_engine_run(e, batch, input, outs);
        t[i] = (its_now_ns() - t0) / 1e6;
    }
    qsort(t, iters, sizeof *t, cmp_double);
    double med = t[iters / 2];
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    const char *base = strrchr(model_path, '/');
    printf("{\"runtime\": \"its-engine %s\", \"model\": \"%s\", \"batch\": %d, \"threads\": %d, "
           "\"iters\": %d, \"median_ms\": %.2f, \"p90_ms\": %.2f, \"images_per_s\": %.2f, "
           "\"peak_rss_mb\": %.1f, \"base_rss_mb\": %.1f, \"arena_mb\": %.1f, "
           "\"batch_mode\": \"native\"}\n",
           its_engine_backend_name(e), base ? base + 1 : model_path, batch, threads, iters, med,
           t[(int)(iters * 0.9)], 1000.0 * batch / med, ru.ru_maxrss / 1024.0, base_kb / 1024.0,
           its_engine_arena_bytes(e) / 1048576.0);
    its_free(t);
    for (int i = 0; i < info.n_outputs; i++)
        its_free(outs[i]);
    its_free(input);
    its_engine_destroy(e);
    its_detector_destroy(det);
    its_model_free(m);
    return 0;
}

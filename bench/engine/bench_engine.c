/*
 * its-bench-engine MODEL.onnx [batch] [threads] [iters]: the engine alone on a synthetic
 * input; prints model, batch, threads, median and best latency, images/s, arena size and
 * peak RSS as one table row.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "its/alloc.h"
#include "its/clock.h"
#include "its/engine.h"

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL.onnx [batch] [threads] [iters]\n", argv[0]);
        return 2;
    }
    int batch = argc > 2 ? atoi(argv[2]) : 1, threads = argc > 3 ? atoi(argv[3]) : 2;
    int iters = argc > 4 ? atoi(argv[4]) : 10;
    if (batch < 1 || iters < 1 || iters > 10000)
        return 2;
    char err[512];
    its_model_t *m;
    if (its_model_load(argv[1], &m, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    its_engine_opts o = {.backend = "cpu", .threads = threads, .max_batch = batch};
    its_engine_t *e;
    if (its_engine_create(m, &o, &e, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    const its_tensor_desc *in = its_model_input(m, 0);
    size_t n = (size_t)batch;
    for (int r = 1; r < in->rank; r++)
        n *= (size_t)in->dims[r];
    float *x = its_malloc(ITS_MOD_TEST, n * sizeof(float));
    float *outs[16];
    int no = its_model_n_outputs(m);
    for (int k = 0; k < no && k < 16; k++) {
        its_tensor_desc d;
        its_engine_output_shape(e, k, batch, &d);
        size_t on = 1;
        for (int r = 0; r < d.rank; r++)
            on *= (size_t)d.dims[r];
        outs[k] = its_malloc(ITS_MOD_TEST, on * sizeof(float));
    }
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(i % 251) / 251.f;
    its_engine_run(e, batch, x, outs); /* warm-up */
    int64_t *t = its_malloc(ITS_MOD_TEST, (size_t)iters * sizeof(int64_t));
    for (int i = 0; i < iters; i++) {
        int64_t t0 = its_now_ns();
        if (its_engine_run(e, batch, x, outs) < 0)
            return 1;
        t[i] = its_now_ns() - t0;
    }
    qsort(t, (size_t)iters, sizeof t[0], cmp_i64);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double med = (double)t[iters / 2] / 1e6;
    printf("| %s | %d | %d | %.1f ms | %.1f ms | %.1f img/s | %.1f MiB | %.1f MiB |\n", argv[1],
           batch, threads, med, (double)t[0] / 1e6, 1000.0 * batch / med,
           (double)its_engine_arena_bytes(e) / 1048576.0, (double)ru.ru_maxrss / 1024.0);
    its_engine_destroy(e);
    its_model_free(m);
    return 0;
}

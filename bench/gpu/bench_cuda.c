/*
 * bench_cuda - time the cuda backend on ONNX detectors for run.sh's table:
 *   bench_cuda [--json FILE] [--batches 1,8,16,32] [--iters N] MODEL.onnx...
 * Per model and batch: the network-only CUDA graph replayed from device-resident input
 * (what the PyTorch peer's numbers also measure: median and p99 of per-replay device time,
 * images/s), then the full host path (fp32 upload, network, fp32 download, via run/sync) by
 * wall clock. GPU memory: device memory the engine took (cudaMemGetInfo before and after
 * load: arena, weights, workspaces, graphs, library handles).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_profiler_api.h>
#include <cuda_runtime_api.h>

#include "backend_harness.h"
#include "cuda_backend_impl.h"
#include "its/alloc.h"
#include "its/clock.h"

static uint8_t *pframe;               /* a 720p frame in pinned memory (the devtools host_alloc) */
static const its_cuda_devtools_i *dt; /* the cuda backend's devtools extension */

static int cmp_f(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    const char *json = NULL, *batches = "1,8,16,32";
    int iters = 200, profile = 0;
    int first = 1;
    for (; first < argc && argv[first][0] == '-'; first++) {
        if (!strcmp(argv[first], "--json") && first + 1 < argc)
            json = argv[++first];
        else if (!strcmp(argv[first], "--batches") && first + 1 < argc)
            batches = argv[++first];
        else if (!strcmp(argv[first], "--iters") && first + 1 < argc)
            iters = atoi(argv[++first]);
        else if (!strcmp(argv[first], "--profile") && first + 1 < argc)
            profile =
                atoi(argv[++first]); /* one replay of this batch inside cudaProfilerStart/Stop */
        else {
            fprintf(stderr, "usage: %s [--json F] [--batches L] [--iters N] MODEL...\n", argv[0]);
            return 2;
        }
    }
    if (first >= argc || iters < 1 || iters > 100000)
        return 2;
    int bl[16], nb = 0, maxb = 1;
    for (const char *p = batches; *p && nb < 16;) {
        bl[nb] = atoi(p);
        if (bl[nb] < 1 || bl[nb] > 1024)
            return 2;
        if (bl[nb] > maxb)
            maxb = bl[nb];
        nb++;
        p = strchr(p, ',');
        if (!p)
            break;
        p++;
    }
    FILE *jf = json ? fopen(json, "w") : NULL;
    if (jf)
        fprintf(jf, "{\"rows\": [\n");
    int rows = 0, rc_all = 0;
    float *ms = malloc(sizeof(float) * (size_t)iters);
    for (int mi = first; mi < argc; mi++) {
        const char *base = strrchr(argv[mi], '/') ? strrchr(argv[mi], '/') + 1 : argv[mi];
        /* rows of a run at another input size (ITS_BH_INPUT_SIZE) are named apart */
        char name[300];
        const char *isz = getenv("ITS_BH_INPUT_SIZE");
        snprintf(name, sizeof name, "%s%s%s", base, isz && *isz ? "@" : "", isz ? isz : "");
        size_t free0, free1, tot;
        cudaSetDevice(0);
        cudaFree(NULL);
        cudaMemGetInfo(&free0, &tot);
        char err[512];
        its_bh h;
        int64_t t0 = its_now_ns();
        int rc = its_bh_load(&h, argv[mi], "cuda", maxb, 0, err, sizeof err);
        double load_s = (double)(its_now_ns() - t0) / 1e9;
        if (rc < 0) {
            fprintf(stderr, "%s: %s\n", name, err);
            rc_all = 1;
            its_bh_free(&h);
            continue;
        }
        if (!dt && !(dt = its_bh_ext("cuda", ITS_CUDA_EXT_DEVTOOLS))) {
            fprintf(stderr, "%s: the cuda module has no devtools extension\n", name);
            its_bh_free(&h);
            return 1;
        }
        cudaMemGetInfo(&free1, &tot);
        double mem_mb = (double)(free0 - free1) / 1048576.0;
        int det_ok = getenv("ITS_BENCH_NO_FRAMES") ? -1 : 0;
        printf("its-cuda %s: loaded in %.2f s (batches up to %d), %d nodes after fusion, arena "
               "%.1f MiB, weights %.1f MiB, engine GPU memory %.1f MiB\n",
               name, load_s, maxb, h.g.n_nodes, (double)h.b->arena_bytes(h.ctx) / 1048576.0,
               (double)dt->weight_bytes(h.ctx) / 1048576.0, mem_mb);
        if (profile) {
            dt->replay_net(h.ctx, profile); /* warm */
            cudaProfilerStart();
            rc = dt->replay_net(h.ctx, profile);
            cudaProfilerStop();
            printf("its-cuda %s: profiled one replay at batch %d (%s)\n", name, profile,
                   rc < 0 ? "failed" : "ok");
            its_bh_free(&h);
            continue;
        }
        for (int bi = 0; bi < nb; bi++) {
            int B = bl[bi];
            if (!its_bh_shapes(&h, B)) {
                printf("its-cuda %s: batch %d not prepared\n", name, B);
                continue;
            }
            if (dt->time_net(h.ctx, B, iters, ms, iters) < 0) {
                rc_all = 1;
                continue;
            }
            qsort(ms, (size_t)iters, sizeof *ms, cmp_f);
            double med = ms[iters / 2], p99 = ms[(int)((iters - 1) * 0.99)];
            /* full host path: fp32 NCHW in, fp32 out */
            const its_shape *sh = its_bh_shapes(&h, B);
            size_t nin = (size_t)its__shape_numel(&sh[h.g.inputs[0]]);
            size_t nout = (size_t)its__shape_numel(&sh[h.g.outputs[0]]);
            float *x = malloc(nin * sizeof(float)), *y = malloc(nout * sizeof(float));
            for (size_t i = 0; i < nin; i++)
                x[i] = (float)((i * 2654435761u) % 1000) / 1000.0f;
            const void *in[1] = {x};
            void *out[1] = {y};
            int fi = iters < 50 ? iters : 50;
            float *fm = malloc(sizeof(float) * (size_t)fi);
            its_bh_run(&h, B, B, in, out);
            for (int i = 0; i < fi; i++) {
                int64_t a = its_now_ns();
                if (its_bh_run(&h, B, B, in, out) < 0)
                    rc_all = 1;
                fm[i] = (float)((double)(its_now_ns() - a) / 1e6);
            }
            qsort(fm, (size_t)fi, sizeof *fm, cmp_f);
            printf("its-cuda %s b=%2d  network median %7.3f ms p99 %7.3f ms %9.0f img/s | "
                   "host fp32 path median %7.3f ms\n",
                   name, B, med, p99, B / med * 1e3, fm[fi / 2]);
            if (jf) {
                fprintf(jf,
                        "%s {\"model\": \"%s\", \"engine\": \"its-cuda\", \"mode\": \"graph\", "
                        "\"batch\": %d, \"median_ms\": %.4f, \"p99_ms\": %.4f, \"img_s\": %.1f, "
                        "\"gpu_mem_mb\": %.1f, \"host_path_ms\": %.4f, \"load_s\": %.2f}\n",
                        rows ? "," : "", name, B, med, p99, B / med * 1e3, mem_mb, fm[fi / 2],
                        load_s);
                rows++;
            }
            free(fm);
            free(x);
            free(y);
            /* the frames path: B 1280x720 RGB frames, letterbox + network + decode + NMS in one
             * graph, two batches in flight (upload of one overlaps compute of the other); the
             * host copy into pinned staging is included */
            static uint8_t *frame;
            const int fw = 1280, fh = 720;
            if (!frame) {
                frame = malloc((size_t)fw * fh * 3);
                for (size_t i = 0; i < (size_t)fw * fh * 3; i++)
                    frame[i] = (uint8_t)((i * 7 + i / 3840 * 3) & 255);
            }
            if (!det_ok) {
                its__cuda_det_opts o = {.conf = 0.25f,
                                        .iou = 0.45f,
                                        .max_cand = 1024,
                                        .max_det = 100,
                                        .max_frame_bytes = (size_t)fw * fh * 3};
                det_ok = dt->detect_setup(h.ctx, &o) == 0 ? 1 : -1;
            }
            if (det_ok > 0) {
                its_cuda_frame fr[1024];
                memset(fr, 0, sizeof(its_cuda_frame) * (size_t)B);
                for (int i = 0; i < B; i++) {
                    fr[i].data = frame;
                    fr[i].width = fw;
                    fr[i].height = fh;
                    fr[i].stride = fw * 3;
                    fr[i].fmt = ITS_PIX_RGB24;
                }
                its_engine_det_list *lists = malloc(sizeof *lists * (size_t)B);
                its_det *dets = malloc(sizeof *dets * (size_t)B * 100);
                /* the frame in ordinary memory (copied into pinned staging by submit), then in
                 * pinned memory from dt->host_alloc (uploaded where it lies) */
                if (!pframe && (pframe = dt->host_alloc((size_t)fw * fh * 3)))
                    memcpy(pframe, frame, (size_t)fw * fh * 3);
                for (int pin = 0; pin < 2 && (!pin || pframe); pin++) {
                    for (int i = 0; i < B; i++)
                        fr[i].data = pin ? pframe : frame;
                    /* fewer rounds with few --iters (memcheck runs) */
                    int rounds = iters < 40 ? (iters > 1 ? iters : 2) : 40, tk[2] = {-1, -1};
                    int nl = iters < 20 ? (iters > 1 ? iters : 1) : 20;
                    int64_t a = its_now_ns();
                    for (int i = 0; i < rounds; i++) {
                        if (tk[i & 1] >= 0)
                            dt->detect_wait(h.ctx, tk[i & 1], lists, dets);
                        tk[i & 1] = dt->detect_submit(h.ctx, B, B, fr);
                    }
                    for (int k = 0; k < 2; k++)
                        if (tk[k] >= 0)
                            dt->detect_wait(h.ctx, tk[k], lists, dets);
                    double pipe_s = (double)(its_now_ns() - a) / 1e9;
                    float lat[20];
                    for (int i = 0; i < nl; i++) {
                        int64_t b0 = its_now_ns();
                        int t = dt->detect_submit(h.ctx, B, B, fr);
                        dt->detect_wait(h.ctx, t, lists, dets);
                        lat[i] = (float)((double)(its_now_ns() - b0) / 1e6);
                    }
                    qsort(lat, (size_t)nl, sizeof *lat, cmp_f);
                    printf("its-cuda %s b=%2d  frames path (720p RGB -> detections, %s): %8.0f "
                           "img/s pipelined, latency median %7.3f ms\n",
                           name, B,
                           pin ? "pinned frames, DMA in place" : "host copy into staging included",
                           rounds * B / pipe_s, lat[nl / 2]);
                }
                free(lists);
                free(dets);
            }
        }
        its_bh_free(&h);
    }
    if (jf) {
        fprintf(jf, "]}\n");
        fclose(jf);
    }
    free(ms);
    if (dt)
        dt->host_free(pframe);
    return rc_all;
}

/*
 * its-bench --engine-only: the engine without the service around it. N cameras x F FPS of
 * frames from a real video (decoded and letterboxed once, before timing) arrive on a fixed
 * schedule with phases spread evenly; a batcher of the same policy as itsd's (up to `batch`
 * frames, wait at most max_delay for a batch to fill, drop the oldest beyond 1000 waiting)
 * runs them through its_engine_run. Where the engine has a frames path (cuda, YOLOv8/11) the
 * 8-bit frames go to it instead (held in the engine's pinned memory, as itsd's replay clips
 * are): letterbox, network, decode and NMS on the device, as itsd does it. Latency =
 * inference done (detections on the host) - frame due.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bench_gpu.h"
#include "bench_proc.h"
#include "bench_run.h"
#include "its/core.h"
#include "its/detect.h"
#include "its/engine.h"
#include "its/video.h"

#define DISTINCT_FRAMES 16
#define BACKLOG_MAX     1000

static const char *meta_of(const void *ctx, const char *key)
{
    return its_model_meta(ctx, key);
}

int bench_run_engine(const bench_opts *o, bench_result *r, char *err, size_t errlen)
{
    its_model_t *m = NULL;
    its_engine_t *e = NULL;
    its_detector_t *det = NULL;
    its_video_t *v = NULL;
    float *inputs = NULL, *outs[8] = {0};
    /* frames path: the raw frames, and where the results go */
    uint8_t *raw[DISTINCT_FRAMES] = {0};
    int raw_pinned = 0, frames_path = 0;
    unsigned pinned_mask = 0;
    its_engine_frame ef[DISTINCT_FRAMES], batch_ef[32];
    its_engine_det_list lists[32];
    its_det *gdets = NULL;
    int rc;
    memset(r, 0, sizeof *r);
    r->gpu_util_mean = r->gpu_mem_mb = NAN;
    snprintf(r->decode, sizeof r->decode, "cpu"); /* the frames are decoded once, on the host */
    r->n_cams = o->cameras;
    r->cams = its_calloc(ITS_MOD_APP, (size_t)o->cameras, sizeof *r->cams);
    size_t expect = (size_t)(o->cameras * o->fps * (o->duration_s + 5) * 1.2) + 1024;
    if (!r->cams || lat_init(&r->lat, expect) < 0)
        return ITS_ENOMEM;

    if ((rc = its_model_load(o->model, &m, err, errlen)) < 0)
        goto out;
    int iw, ih;
    if (o->input_size && *o->input_size) {
        if ((rc = its_model_parse_size(o->input_size, &iw, &ih)) < 0) {
            snprintf(err, errlen, "bench.input_size '%s' is not WxH", o->input_size);
            goto out;
        }
        if ((rc = its_model_set_input_size(m, iw, ih, err, errlen)) < 0)
            goto out;
    }
    its_engine_opts eo = {.backend = o->backend, .threads = o->threads, .max_batch = o->batch};
    if ((rc = its_engine_create(m, &eo, &e, err, errlen)) < 0)
        goto out;
    its_det_model_info info = {.input = its_model_input(m, 0),
                               .n_outputs = its_model_n_outputs(m),
                               .meta = meta_of,
                               .meta_ctx = m};
    for (int i = 0; i < info.n_outputs && i < 8; i++)
        info.outputs[i] = its_model_output(m, i);
    its_det_config dc;
    if ((rc = its_det_config_init(&info, ITS_DET_AUTO, &dc, err, errlen)) < 0 ||
        (rc = its_detector_create(&dc, &info, &det, err, errlen)) < 0)
        goto out;
    size_t in_floats = its_detector_input_floats(det);
    inputs = its_malloc(ITS_MOD_APP, in_floats * sizeof(float) * (DISTINCT_FRAMES + o->batch));
    for (int i = 0; i < info.n_outputs && i < 8; i++)
        outs[i] = its_malloc(ITS_MOD_APP,
                             its_detector_output_floats(det, i) * sizeof(float) * (size_t)o->batch);
    if (!inputs) {
        rc = ITS_ENOMEM;
        goto out;
    }
    its_video_opts vo = {.pixfmt = dc.pre.bgr ? ITS_PIX_BGR24 : ITS_PIX_RGB24};
    if ((rc = its_video_open(o->video, &vo, &v, err, errlen)) < 0)
        goto out;
    int have = 0;
    its_video_frame f;
    while (have < DISTINCT_FRAMES && its_video_read(v, &f) > 0) {
        its_letterbox lb;
        its_det_letterbox_raw(&dc.pre, f.data, f.width, f.height, f.stride, vo.pixfmt,
                              inputs + (size_t)have * in_floats, &lb);
        size_t bytes = (size_t)f.stride * (size_t)f.height;
        raw[have] = its_engine_host_alloc(o->backend, bytes);
        if (raw[have]) {
            raw_pinned++;
            pinned_mask |= 1u << have;
        } else
            raw[have] = its_malloc(ITS_MOD_APP, bytes);
        if (!raw[have]) {
            rc = ITS_ENOMEM;
            goto out;
        }
        memcpy(raw[have], f.data, bytes);
        ef[have] = (its_engine_frame){.data = raw[have],
                                      .width = f.width,
                                      .height = f.height,
                                      .stride = f.stride,
                                      .pixfmt = vo.pixfmt};
        have++;
    }
    if (have > 0 && o->batch <= 32) {
        char why[256];
        int mw = 0, mh = 0;
        for (int i = 0; i < have; i++) {
            mw = ITS_MAX(mw, ef[i].stride / 3);
            mh = ITS_MAX(mh, ef[i].height);
        }
        its_engine_detect_opts d = {
            .conf = 0.5f, .iou = 0.45f, .max_det = 300, .max_width = mw, .max_height = mh};
        frames_path = its_engine_detect_setup(e, &d, why, sizeof why) == 0;
        if (frames_path)
            gdets = its_malloc(ITS_MOD_APP, sizeof *gdets * 300 * (size_t)o->batch);
        if (frames_path && !gdets) {
            rc = ITS_ENOMEM;
            goto out;
        }
        if (!o->quiet)
            fprintf(stderr, "[its-bench engine] %s\n",
                    frames_path ? (raw_pinned ? "frames path (frames in pinned memory)"
                                              : "frames path (frames staged)")
                                : "host letterbox + its_engine_run");
    }
    if (have == 0) {
        snprintf(err, errlen, "%s: no frame decoded", o->video);
        rc = ITS_EDECODE;
        goto out;
    }
    /* Warm-up runs: first-use costs (kernel selection, page faults) are not latency. */
    for (int i = 0; i < 3; i++) {
        if (frames_path) {
            for (int b = 0; b < o->batch; b++)
                batch_ef[b] = ef[b % have];
            int t = its_engine_detect_submit(e, o->batch, batch_ef);
            if (t >= 0)
                its_engine_detect_wait(e, t, lists, gdets);
        } else {
            its_engine_run(e, o->batch, inputs, outs);
        }
    }

    double rate = o->cameras * o->fps;
    uint64_t period = (uint64_t)(1e9 / rate);
    uint64_t t0 = its_now_ns() + 10 * ITS_NS_PER_MS;
    uint64_t measure_from = t0 + (uint64_t)(o->warmup_s * 1e9);
    uint64_t end = measure_from + (uint64_t)(o->duration_s * 1e9);
    uint64_t next = 0; /* index of the next frame to arrive */
    uint64_t head = 0; /* oldest waiting frame */
    uint64_t max_delay = its_ms_to_ns(o->max_delay_ms);
    float *batch_in = inputs + (size_t)DISTINCT_FRAMES * in_floats;
    uint64_t last_progress = t0;
    size_t progress_from = 0;
    int window = 0;
    for (;;) {
        uint64_t now = its_now_ns();
        if (now >= end)
            break;
        if (!window && now >= measure_from) {
            bench_gpu_window(1);
            window = 1;
        }
        while (t0 + next * period <= now)
            next++;
        if (next - head > BACKLOG_MAX) { /* drop the oldest, as itsd's watermarks do */
            uint64_t drop = next - head - BACKLOG_MAX;
            r->frames_dropped += drop;
            head += drop;
        }
        uint64_t waiting = next - head;
        if (waiting == 0 ||
            (waiting < (uint64_t)o->batch && now < t0 + head * period + max_delay)) {
            uint64_t wake = t0 + next * period;
            uint64_t dl = t0 + head * period + max_delay;
            its_sleep_until_ns(waiting && dl < wake ? dl : wake);
            continue;
        }
        int n = waiting < (uint64_t)o->batch ? (int)waiting : o->batch;
        if (frames_path) {
            for (int b = 0; b < n; b++)
                batch_ef[b] = ef[(head + (uint64_t)b) % (uint64_t)have];
            rc = its_engine_detect_submit(e, n, batch_ef);
            if (rc >= 0)
                rc = its_engine_detect_wait(e, rc, lists, gdets);
        } else {
            for (int b = 0; b < n; b++)
                memcpy(batch_in + (size_t)b * in_floats,
                       inputs + (size_t)((head + (uint64_t)b) % (uint64_t)have) * in_floats,
                       in_floats * sizeof(float));
            rc = its_engine_run(e, n, batch_in, outs);
        }
        if (rc < 0) {
            snprintf(err, errlen, "engine run failed: %s", its_strerror(rc));
            r->errors++;
            goto out;
        }
        uint64_t done = its_now_ns();
        for (int b = 0; b < n; b++) {
            uint64_t due = t0 + (head + (uint64_t)b) * period;
            int cam = (int)((head + (uint64_t)b) % (uint64_t)o->cameras);
            r->cams[cam].received++;
            if (frames_path) {
                r->cams[cam].detections += (uint64_t)lists[b].count;
                if (due >= measure_from)
                    r->detections += (uint64_t)lists[b].count;
            }
            if (due >= measure_from)
                lat_add(&r->lat, done - due);
        }
        r->messages += (uint64_t)n;
        head += (uint64_t)n;
        if (!o->quiet && done - last_progress >= ITS_NS_PER_S) {
            fprintf(stderr, "\r[its-bench engine] %6.1f s  p99(1 s) %7.2f ms  backlog %4llu   ",
                    (double)(done - t0) / 1e9,
                    its_ns_to_ms(lat_recent_percentile(&r->lat, &progress_from, 99)),
                    (unsigned long long)(next - head));
            last_progress = done;
        }
    }
    if (!o->quiet)
        fputc('\n', stderr);
    bench_gpu_window(0);
    bench_gpu_result(&r->gpu_util_mean, &r->gpu_mem_mb, &r->gpu_name, &r->gpu_note);
    r->frames_in = next;
    r->measured_s = o->duration_s;
    r->peak_rss_mb = proc_peak_rss_mb(0);
    r->exit_status = 0;
    rc = 0;
out:
    its_video_close(v);
    for (int i = 0; i < DISTINCT_FRAMES; i++) {
        if (pinned_mask & (1u << i))
            its_engine_host_free(o->backend, raw[i]);
        else
            its_free(raw[i]);
    }
    its_free(gdets);
    for (int i = 0; i < 8; i++)
        its_free(outs[i]);
    its_free(inputs);
    its_detector_destroy(det);
    its_engine_destroy(e);
    its_model_free(m);
    return rc;
}

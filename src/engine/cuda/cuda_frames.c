/*
 * cuda_frames.c - the cuda backend's frames path (extension "frames" of backend.h, behind
 * its_engine_detect_* in its/engine.h) and its pinned host allocator (extension "host_mem",
 * behind its_engine_host_alloc).
 *
 * The frames path: 8-bit frames of mixed sizes and formats in, a compact detection list per
 * image out; letterbox, network, YOLOv8/11 decode and class-aware NMS in one CUDA graph per
 * prepared batch size and staging slot. Two slots, so the upload of batch n+1 (copy stream)
 * overlaps the compute of batch n. Setup allocates everything and registers its cleanup
 * (cuda_ctx.frames_free), which the vtable's free calls.
 *
 * Pinned blocks are remembered in a small table (a mutex; blocks are few and long-lived:
 * frame pools), so submit can tell a frame it may DMA from where it lies from one it must
 * copy into staging first. cudaHostAllocPortable: the memory is pinned for every device and
 * context of the process, so any engine can upload from it.
 */
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "its/alloc.h"
#include "its/error.h"
#include "its/log.h"

#include "cuda_check.h"
#include "cuda_internal.h"

static int host_pinned(const void *p, size_t n);

/* The frames path's resources (set as cuda_ctx.frames_free by setup). */
static void frames_free(cuda_ctx *c)
{
    if (c->det_ready)
        its_logi("engine", "cuda",
                 "frames path: %llu frames uploaded from pinned frame memory, %llu through "
                 "staging",
                 (unsigned long long)c->det_direct, (unsigned long long)c->det_copied);
    for (int k = 0; k < 2; k++) {
        det_slot *d = &c->slots[k];
        if (d->pin_pix)
            cudaFreeHost(d->pin_pix);
        if (d->pin_fr)
            cudaFreeHost(d->pin_fr);
        if (d->pin_lists)
            cudaFreeHost(d->pin_lists);
        if (d->pin_dets)
            cudaFreeHost(d->pin_dets);
        if (d->dev_pix)
            cudaFree(d->dev_pix);
        if (d->dev_fr)
            cudaFree(d->dev_fr);
        if (d->dev_lists)
            cudaFree(d->dev_lists);
        if (d->dev_dets)
            cudaFree(d->dev_dets);
        if (d->uploaded)
            cudaEventDestroy(d->uploaded);
        if (d->done)
            cudaEventDestroy(d->done);
    }
    if (c->det_scratch)
        cudaFree(c->det_scratch);
}

/* ---- the frames path ---------------------------------------------------------------------- */

static int capture_det(cuda_ctx *c, plan *p, det_slot *d, cudaGraphExec_t *exec)
{
    const its_graph *g = c->g;
    const its_shape *is = &p->shapes[g->inputs[0]], *os = &p->shapes[g->outputs[0]];
    ITS_CUDA_TRY(cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal));
    int rc = 0;
    if (cudaMemcpyAsync(d->dev_fr, d->pin_fr, sizeof(its_cuda_frame) * (size_t)p->batch,
                        cudaMemcpyHostToDevice, c->stream) != cudaSuccess)
        rc = ITS_EBACKEND;
    if (rc == 0)
        rc =
            its_cuda_letterbox_nchw_f32(d->dev_fr, p->batch, (int)is->dims[3], (int)is->dims[2],
                                        (float *)(c->arena + p->bufs[p->in_buf[0]].off), c->stream);
    if (rc == 0)
        rc = its__cuda_exec_net(c, p, c->stream);
    if (rc == 0)
        rc = its_cuda_decode_nms(c->arena + p->bufs[p->out_buf[0]].off, 0, p->batch,
                                 (int)os->dims[1] - 4, (int)os->dims[2], c->det.conf, c->det.iou,
                                 c->det.max_cand, c->det.max_det, d->dev_fr, c->det_scratch,
                                 d->dev_lists, d->dev_dets, c->stream);
    if (rc == 0 &&
        (cudaMemcpyAsync(d->pin_lists, d->dev_lists, sizeof(its_engine_det_list) * (size_t)p->batch,
                         cudaMemcpyDeviceToHost, c->stream) != cudaSuccess ||
         cudaMemcpyAsync(d->pin_dets, d->dev_dets,
                         sizeof(its_det) * (size_t)p->batch * (size_t)c->det.max_det,
                         cudaMemcpyDeviceToHost, c->stream) != cudaSuccess))
        rc = ITS_EBACKEND;
    return its__cuda_end_capture(c, rc, exec);
}

static int detect_setup(void *vctx, const its__cuda_det_opts *o)
{
    cuda_ctx *c = vctx;
    const its_graph *g = c->g;
    /* once per engine: a failed setup leaves its allocations to cuda_free */
    if (!c->finalized || c->det_ready || c->det_tried || !o || o->max_det < 1 || o->max_cand < 1 ||
        o->max_cand > 1024 || o->max_frame_bytes == 0 || o->max_frame_bytes > ((size_t)1 << 30))
        return ITS_EINVAL;
    if (g->n_inputs != 1 || g->n_outputs != 1)
        return ITS_EUNSUPPORTED;
    const its_shape *is = &c->plans[c->n_plans - 1].shapes[g->inputs[0]];
    const its_shape *os = &c->plans[c->n_plans - 1].shapes[g->outputs[0]];
    /* a YOLOv8-style [N, 4 + C, A] head: fewer rows than anchors ([N, A, 5 + C] heads and
     * end-to-end [N, K, 6] outputs have it the other way round) */
    if (is->rank != 4 || is->dims[1] != 3 || os->rank != 3 || os->dims[1] < 5 ||
        os->dims[1] >= os->dims[2])
        return ITS_EUNSUPPORTED;
    c->det_tried = 1;
    c->frames_free = frames_free;
    c->det = *o;
    int maxb = c->plans[c->n_plans - 1].batch;
    size_t slot_bytes = (o->max_frame_bytes + 255) & ~(size_t)255;
    size_t pix = slot_bytes * (size_t)maxb;
    for (int k = 0; k < 2; k++) {
        det_slot *d = &c->slots[k];
        ITS_CUDA_TRY(cudaHostAlloc((void **)&d->pin_pix, pix, cudaHostAllocWriteCombined));
        ITS_CUDA_TRY(cudaMalloc((void **)&d->dev_pix, pix));
        ITS_CUDA_TRY(cudaHostAlloc((void **)&d->pin_fr, sizeof(its_cuda_frame) * (size_t)maxb,
                                   cudaHostAllocDefault));
        ITS_CUDA_TRY(cudaMalloc((void **)&d->dev_fr, sizeof(its_cuda_frame) * (size_t)maxb));
        ITS_CUDA_TRY(cudaHostAlloc((void **)&d->pin_lists,
                                   sizeof(its_engine_det_list) * (size_t)maxb,
                                   cudaHostAllocDefault));
        ITS_CUDA_TRY(
            cudaMalloc((void **)&d->dev_lists, sizeof(its_engine_det_list) * (size_t)maxb));
        size_t db = sizeof(its_det) * (size_t)maxb * (size_t)o->max_det;
        ITS_CUDA_TRY(cudaHostAlloc((void **)&d->pin_dets, db, cudaHostAllocDefault));
        ITS_CUDA_TRY(cudaMalloc((void **)&d->dev_dets, db));
        ITS_CUDA_TRY(cudaEventCreateWithFlags(&d->uploaded, cudaEventDisableTiming));
        ITS_CUDA_TRY(cudaEventCreateWithFlags(&d->done, cudaEventDisableTiming));
        memset(d->pin_fr, 0, sizeof(its_cuda_frame) * (size_t)maxb);
    }
    ITS_CUDA_TRY(
        cudaMalloc(&c->det_scratch, its_cuda_decode_scratch_bytes(maxb, (int)os->dims[2])));
    for (int i = 0; i < c->n_plans; i++)
        for (int k = 0; k < 2; k++) {
            int rc = capture_det(c, &c->plans[i], &c->slots[k], &c->plans[i].exec_det[k]);
            if (rc < 0)
                return rc;
        }
    ITS_CUDA_TRY(cudaStreamSynchronize(c->stream));
    c->det_ready = 1;
    return 0;
}

/* The bytes of a frame's planes after checking its fields; -1 if they make no sense. */
static int frame_planes(const its_cuda_frame *f, size_t *yb, size_t *uvb)
{
    if (f->width < 1 || f->height < 1 || f->width > 16384 || f->height > 16384 || !f->data)
        return -1;
    *uvb = 0;
    switch (f->fmt) {
    case ITS_PIX_RGB24:
    case ITS_PIX_BGR24:
        if (f->stride < 3 * f->width)
            return -1;
        break;
    case ITS_PIX_NV12:
        if (f->stride < f->width || !f->uv || f->uv_stride < 2 * ((f->width + 1) / 2))
            return -1;
        *uvb = (size_t)f->uv_stride * (size_t)((f->height + 1) / 2);
        break;
    default:
        return -1;
    }
    *yb = (size_t)f->stride * (size_t)f->height;
    return 0;
}

/* Submit n frames, given either as the backend's descriptors (cf, the tests and benchmark)
 * or as the public ones (ef, its_engine_detect_submit). Every frame is checked before
 * anything is queued, so a refused submit has no effect. Pixels in memory from
 * host_alloc are uploaded from where they are; others are copied into the slot's
 * pinned staging first. */
static int det_submit(cuda_ctx *c, int batch, int n, const its_cuda_frame *cf,
                      const its_engine_frame *ef)
{
    plan *p = its__cuda_find_plan(c, batch);
    if (!c->det_ready || !p || n < 1 || n > batch || (!cf && !ef))
        return ITS_EINVAL;
    int slot = c->next_slot;
    if (c->slots[slot].busy)
        slot ^= 1;
    det_slot *d = &c->slots[slot];
    if (d->busy)
        return ITS_EBUSY; /* wait for one first */
    for (int i = 0; i < n; i++) {
        its_cuda_frame *fd = &d->pin_fr[i];
        memset(fd, 0, sizeof *fd);
        if (cf) {
            fd->data = cf[i].data;
            fd->uv = cf[i].uv;
            fd->width = cf[i].width;
            fd->height = cf[i].height;
            fd->stride = cf[i].stride;
            fd->uv_stride = cf[i].uv_stride;
            fd->fmt = cf[i].fmt;
        } else {
            fd->data = ef[i].data;
            fd->uv = ef[i].uv;
            fd->width = ef[i].width;
            fd->height = ef[i].height;
            fd->stride = ef[i].stride;
            fd->uv_stride = ef[i].uv_stride;
            fd->fmt = ef[i].pixfmt;
        }
        size_t yb, uvb;
        if (frame_planes(fd, &yb, &uvb) < 0 || yb + uvb > c->det.max_frame_bytes)
            return ITS_EINVAL;
    }
    size_t slot_bytes = (c->det.max_frame_bytes + 255) & ~(size_t)255;
    for (int i = 0; i < n; i++) {
        its_cuda_frame *fd = &d->pin_fr[i];
        size_t yb, uvb;
        frame_planes(fd, &yb, &uvb);
        size_t off = slot_bytes * (size_t)i;
        const uint8_t *src_y = fd->data, *src_uv = fd->uv;
        int direct = host_pinned(src_y, yb) && (!uvb || host_pinned(src_uv, uvb));
        if (direct) { /* DMA straight from the caller's pinned frame */
            ITS_CUDA_TRY(cudaMemcpyAsync(d->dev_pix + off, src_y, yb, cudaMemcpyHostToDevice,
                                         c->copy_stream));
            if (uvb)
                ITS_CUDA_TRY(cudaMemcpyAsync(d->dev_pix + off + yb, src_uv, uvb,
                                             cudaMemcpyHostToDevice, c->copy_stream));
        } else { /* into write-combined staging, then one DMA from there */
            memcpy(d->pin_pix + off, src_y, yb);
            if (uvb)
                memcpy(d->pin_pix + off + yb, src_uv, uvb);
            ITS_CUDA_TRY(cudaMemcpyAsync(d->dev_pix + off, d->pin_pix + off, yb + uvb,
                                         cudaMemcpyHostToDevice, c->copy_stream));
        }
        fd->data = d->dev_pix + off;
        fd->uv = fd->fmt == ITS_PIX_NV12 ? d->dev_pix + off + yb : NULL;
        if (direct)
            c->det_direct++;
        else
            c->det_copied++;
    }
    its_cuda_letterbox_plan(d->pin_fr, n, (int)p->shapes[c->g->inputs[0]].dims[3],
                            (int)p->shapes[c->g->inputs[0]].dims[2]);
    for (int i = n; i < batch; i++) /* padding items repeat the last frame */
        d->pin_fr[i] = d->pin_fr[n - 1];
    ITS_CUDA_TRY(cudaEventRecord(d->uploaded, c->copy_stream));
    ITS_CUDA_TRY(cudaStreamWaitEvent(c->stream, d->uploaded, 0));
    ITS_CUDA_TRY(cudaGraphLaunch(p->exec_det[slot], c->stream));
    ITS_CUDA_TRY(cudaEventRecord(d->done, c->stream));
    d->busy = 1;
    d->batch = batch;
    d->n = n;
    c->next_slot = slot ^ 1;
    return slot;
}

static int detect_submit(void *vctx, int batch, int n, const its_cuda_frame *frames)
{
    return det_submit(vctx, batch, n, frames, NULL);
}

static int detect_submit_frames(void *vctx, int batch, int n, const its_engine_frame *frames)
{
    return det_submit(vctx, batch, n, NULL, frames);
}

static int detect_wait(void *vctx, int ticket, its_engine_det_list *lists, its_det *dets)
{
    cuda_ctx *c = vctx;
    if (ticket < 0 || ticket > 1 || !c->slots[ticket].busy || !lists || !dets)
        return ITS_EINVAL;
    det_slot *d = &c->slots[ticket];
    d->busy = 0; /* released even if the batch failed */
    ITS_CUDA_TRY(cudaEventSynchronize(d->done));
    memcpy(lists, d->pin_lists, sizeof(its_engine_det_list) * (size_t)d->n);
    memcpy(dets, d->pin_dets, sizeof(its_det) * (size_t)d->n * (size_t)c->det.max_det);
    return d->n;
}

static int detect_poll(void *vctx, int ticket)
{
    cuda_ctx *c = vctx;
    if (ticket < 0 || ticket > 1 || !c->slots[ticket].busy)
        return ITS_EINVAL;
    cudaError_t e = cudaEventQuery(c->slots[ticket].done);
    if (e == cudaErrorNotReady)
        return 0;
    ITS_CUDA_TRY(e);
    return 1;
}

/* ---- the extension "frames": the public types in, the functions above underneath ---- */

static int ext_setup(void *ctx, const its_engine_detect_opts *o, char *err, size_t errlen)
{
    size_t px = (size_t)o->max_width * (size_t)o->max_height;
    its__cuda_det_opts d = {.conf = o->conf,
                            .iou = o->iou,
                            .max_cand = o->max_cand,
                            .max_det = o->max_det,
                            .max_frame_bytes = px * 3};
    int rc = detect_setup(ctx, &d);
    if (rc == ITS_EUNSUPPORTED)
        snprintf(err, errlen, "frames path (cuda): the model is not a YOLOv8/YOLO11 detector");
    else if (rc < 0)
        snprintf(err, errlen, "frames path (cuda): setup failed: %s", its_strerror(rc));
    return rc;
}

static int ext_submit(void *ctx, int batch, int n, const its_engine_frame *frames)
{
    return detect_submit_frames(ctx, batch, n, frames);
}

/* ---- pinned host memory ------------------------------------------------------------------ */

typedef struct pinned_block {
    uintptr_t base;
    size_t bytes;
} pinned_block;

static pthread_mutex_t pin_mu = PTHREAD_MUTEX_INITIALIZER;
static pinned_block *pin_tab;
static int pin_n, pin_cap;

static void *host_alloc(size_t bytes)
{
    if (!bytes)
        return NULL;
    void *p = NULL;
    cudaError_t e = cudaHostAlloc(&p, bytes, cudaHostAllocPortable);
    if (e != cudaSuccess) {
        cudaGetLastError(); /* not sticky: clear it */
        its_logw("engine", "cuda", "pinned host allocation of %zu bytes failed: %s", bytes,
                 cudaGetErrorString(e));
        return NULL;
    }
    pthread_mutex_lock(&pin_mu);
    if (pin_n == pin_cap) {
        int nc = pin_cap ? pin_cap * 2 : 16;
        pinned_block *t = its_realloc(ITS_MOD_ENGINE, pin_tab, (size_t)nc * sizeof *t);
        if (!t) {
            pthread_mutex_unlock(&pin_mu);
            cudaFreeHost(p);
            return NULL;
        }
        pin_tab = t;
        pin_cap = nc;
    }
    pin_tab[pin_n].base = (uintptr_t)p;
    pin_tab[pin_n].bytes = bytes;
    pin_n++;
    pthread_mutex_unlock(&pin_mu);
    return p;
}

static void host_free(void *p)
{
    if (!p)
        return;
    int found = 0;
    pthread_mutex_lock(&pin_mu);
    for (int i = 0; i < pin_n; i++)
        if (pin_tab[i].base == (uintptr_t)p) {
            pin_tab[i] = pin_tab[--pin_n];
            found = 1;
            break;
        }
    if (pin_n == 0) {
        its_free(pin_tab);
        pin_tab = NULL;
        pin_cap = 0;
    }
    pthread_mutex_unlock(&pin_mu);
    if (!found) {
        its_loge("engine", "cuda", "its_engine_host_free: %p is not pinned memory of ours", p);
        return;
    }
    cudaFreeHost(p);
}

static int host_pinned(const void *p, size_t n)
{
    uintptr_t a = (uintptr_t)p;
    int in = 0;
    pthread_mutex_lock(&pin_mu);
    for (int i = 0; i < pin_n && !in; i++)
        in = a >= pin_tab[i].base && n <= pin_tab[i].bytes &&
             a - pin_tab[i].base <= pin_tab[i].bytes - n;
    pthread_mutex_unlock(&pin_mu);
    return in;
}

/* ---- the extension tables ----------------------------------------------------------------- */

const its_backend_frames_i its__cuda_frames_ext = {
    .setup = ext_setup,
    .submit = ext_submit,
    .wait = detect_wait,
    .poll = detect_poll,
};

const its_backend_host_mem_i its__cuda_host_mem_ext = {
    .alloc = host_alloc,
    .free = host_free,
};

const its_cuda_devtools_i its__cuda_devtools_ext = {
    .detect_setup = detect_setup,
    .detect_submit = detect_submit,
    .detect_wait = detect_wait,
    .host_alloc = host_alloc,
    .host_free = host_free,
    .time_net = its__cuda_time_net,
    .replay_net = its__cuda_replay_net,
    .weight_bytes = its__cuda_weight_bytes,
    .letterbox_plan = its_cuda_letterbox_plan,
};

/*
 * cuda_frames.c - the cuda backend's side of the public frames path (its_engine_detect_* in
 * its/engine.h): the vtable entries that turn the public types into the backend's frames-path
 * calls (cuda_backend.c), and the pinned host allocator behind its_engine_host_alloc.
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

#include <cuda_runtime_api.h>

#include "its/alloc.h"
#include "its/error.h"
#include "its/log.h"

#include "cuda_backend_impl.h"

int its__cuda_vt_detect_setup(void *ctx, const its_engine_detect_opts *o, char *err, size_t errlen)
{
    size_t px = (size_t)o->max_width * (size_t)o->max_height;
    its__cuda_det_opts d = {.conf = o->conf,
                            .iou = o->iou,
                            .max_cand = o->max_cand,
                            .max_det = o->max_det,
                            .max_frame_bytes = px * 3};
    int rc = its__cuda_detect_setup(ctx, &d);
    if (rc == ITS_EUNSUPPORTED)
        snprintf(err, errlen, "frames path (cuda): the model is not a YOLOv8/YOLO11 detector");
    else if (rc < 0)
        snprintf(err, errlen, "frames path (cuda): setup failed: %s", its_strerror(rc));
    return rc;
}

int its__cuda_vt_detect_submit(void *ctx, int batch, int n, const its_engine_frame *frames)
{
    return its__cuda_detect_submit_frames(ctx, batch, n, frames);
}

int its__cuda_vt_detect_wait(void *ctx, int ticket, its_engine_det_list *lists, its_det *dets)
{
    return its__cuda_detect_wait(ctx, ticket, lists, dets);
}

/* ---- pinned host memory ------------------------------------------------------------------ */

typedef struct pinned_block {
    uintptr_t base;
    size_t bytes;
} pinned_block;

static pthread_mutex_t pin_mu = PTHREAD_MUTEX_INITIALIZER;
static pinned_block *pin_tab;
static int pin_n, pin_cap;

void *its__cuda_host_alloc(size_t bytes)
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

void its__cuda_host_free(void *p)
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

int its__cuda_host_pinned(const void *p, size_t n)
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

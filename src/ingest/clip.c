/*
 * The clips that replay sources serve.
 *
 * A clip is a video (or a folder of still images) decoded once into pooled buffers. Every
 * replay source with the same key shares one clip, so a load test of 100 cameras replaying
 * the same 720p file holds its pixels once; a frame served from a clip takes a reference on
 * the clip's buffer instead of copying it. The registry is a short linked list under a lock:
 * it is touched only when sources start or are destroyed.
 *
 * Identity. A clip's key is the file's identity (device, inode, size and modification time),
 * not the spelling of its path, so "a.mp4", "./a.mp4" and a symlink to it share one clip;
 * with the decoding settings (pixel format, size limits, frame count).
 *
 * Loading. The first source to ask decodes the clip on its own thread, outside the lock; the
 * others wait for it (interruptibly: a stopped source stops waiting). A load that its source
 * abandons is retried by the next waiter.
 *
 * Bounds. A clip holds at most ITS_REPLAY_MAX_FRAMES frames and CLIP_MAX_BYTES of pixels, and
 * all clips together CLIP_TOTAL_MAX_BYTES: a clip that would pass the total is cut to what is
 * left (logged), and one for which nothing is left fails.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "its/core.h"
#include "ingest_impl.h"

/* Replay clips beyond this many bytes are cut (a 720p frame is 2.7 MB: ~370 frames). */
#define CLIP_MAX_BYTES       (1ULL << 30)
#define CLIP_TOTAL_MAX_BYTES (4ULL << 30)
#define CLIP_MAX_FILES       ITS_REPLAY_MAX_FRAMES
#define CLIP_WAIT_SLICE_NS   (50 * ITS_NS_PER_MS)

/* ---- clips ---- */

enum { CLIP_LOADING, CLIP_READY, CLIP_FAILED };

typedef struct node {
    char key[160];
    int state; /* CLIP_* */
    int refs;  /* the loader and the waiters, then the clip's users */
    int rc;    /* CLIP_FAILED: the loader's error */
    char err[384];
    its__clip *clip; /* CLIP_READY */
    struct node *next;
} node;

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t reg_cv = PTHREAD_COND_INITIALIZER;
static node *reg_head;
static uint64_t reg_bytes; /* pixels held by every clip */
/* where new clips' pixels live (its_ingest_set_clip_memory); guarded by reg_lock */
static its_pool_mem clip_mem;
static int clip_mem_on;

void its_ingest_set_clip_memory(const its_pool_mem *mem)
{
    pthread_mutex_lock(&reg_lock);
    clip_mem_on = mem && mem->alloc && mem->free;
    if (clip_mem_on)
        clip_mem = *mem;
    pthread_mutex_unlock(&reg_lock);
}

/* The clip's pool in the configured memory, else (none set, or it failed) in ordinary memory:
 * a clip that cannot be pinned still replays, its frames are then copied on upload. */
static int clip_pool(size_t bytes, int n, const char *path, its_pool_t **out)
{
    if (clip_mem_on) {
        int rc = its_pool_create_mem(ITS_MOD_INGEST, bytes, (size_t)n, &clip_mem, out);
        if (rc == 0) {
            its_logi("ingest", NULL,
                     "replay %s: %d frames, %.0f MB in the clip memory set by the service (pinned)",
                     path, n, (double)bytes * n / 1e6);
            return 0;
        }
        its_logw("ingest", NULL, "replay %s: no pinned memory for %.0f MB (%s); ordinary memory",
                 path, (double)bytes * n / 1e6, its_strerror(rc));
    }
    return its_pool_create(ITS_MOD_INGEST, bytes, (size_t)n, out);
}

typedef struct staged {
    uint8_t *px;
    int w, h;
    int64_t pts;
} staged;

static int has_image_ext(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && (strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0 ||
                   strcasecmp(dot, ".png") == 0);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Append one decoded frame to the staging list (allocation is fine: this is start-up). */
static int stage(staged **list, int *n, int *cap, const its_video_frame *f)
{
    if (*n == *cap) {
        int nc = *cap ? *cap * 2 : 64;
        staged *nl = its_realloc(ITS_MOD_INGEST, *list, (size_t)nc * sizeof *nl);
        if (!nl)
            return ITS_ENOMEM;
        *list = nl;
        *cap = nc;
    }
    size_t bytes = its_video_frame_bytes(f->width, f->height);
    uint8_t *px = its_malloc(ITS_MOD_INGEST, bytes);
    if (!px)
        return ITS_ENOMEM;
    for (int y = 0; y < f->height; y++)
        memcpy(px + (size_t)y * (size_t)f->width * 3, f->data + (size_t)y * (size_t)f->stride,
               (size_t)f->width * 3);
    (*list)[*n] = (staged){px, f->width, f->height, f->pts_ns};
    (*n)++;
    return 0;
}

static int decode_video(const char *path, const its_video_opts *vo, int max_frames,
                        uint64_t max_bytes, staged **list, int *n, int *cap, double *fps, char *err,
                        size_t errlen)
{
    its_video_t *v;
    int rc = its_video_open(path, vo, &v, err, errlen);
    if (rc < 0)
        return rc;
    its_video_info info;
    its_video_get_info(v, &info);
    *fps = info.fps;
    its_video_frame f;
    uint64_t bytes = 0;
    while (*n < max_frames && (rc = its_video_read(v, &f)) == 1) {
        bytes += its_video_frame_bytes(f.width, f.height);
        if (bytes > max_bytes)
            break;
        if ((rc = stage(list, n, cap, &f)) < 0)
            break;
    }
    if (rc == ITS_ECLOSED) {
        snprintf(err, errlen, "%s: stopped while decoding", path);
    } else if (rc < 0 && rc != ITS_EEOF) {
        snprintf(err, errlen, "%s", its_video_error(v));
        if (rc == ITS_ENOMEM)
            snprintf(err, errlen, "%s: out of memory decoding the clip", path);
    } else {
        rc = 0;
    }
    its_video_close(v);
    if (rc == 0 && *n == 0) {
        snprintf(err, errlen, "%s: no frames decoded", path);
        rc = ITS_EDECODE;
    }
    return rc;
}

static int decode_folder(const char *dir, const its_video_opts *vo, int max_frames,
                         uint64_t max_bytes, staged **list, int *n, int *cap, char *err,
                         size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "%s: cannot open folder", dir);
        return ITS_ENOENT;
    }
    char **names = NULL;
    int nn = 0, rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) && nn < CLIP_MAX_FILES) {
        if (e->d_name[0] == '.' || !has_image_ext(e->d_name))
            continue;
        char **nl = its_realloc(ITS_MOD_INGEST, names, (size_t)(nn + 1) * sizeof *nl);
        if (!nl || !(nl[nn] = its_strdup(ITS_MOD_INGEST, e->d_name))) {
            if (nl)
                names = nl;
            rc = ITS_ENOMEM;
            break;
        }
        names = nl;
        nn++;
    }
    closedir(d);
    if (rc == 0 && nn)
        qsort(names, (size_t)nn, sizeof *names, cmp_str);
    int bad = 0;
    uint64_t bytes = 0;
    for (int i = 0; rc == 0 && i < nn && *n < max_frames; i++) {
        if (vo->cancel && atomic_load(vo->cancel)) {
            snprintf(err, errlen, "%s: stopped while decoding", dir);
            rc = ITS_ECLOSED;
            break;
        }
        char path[1400];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        its_video_t *v;
        char e2[256];
        if (its_video_open(path, vo, &v, e2, sizeof e2) < 0) {
            its_logw("ingest", NULL, "replay: skipping %s", e2);
            bad++;
            continue;
        }
        its_video_frame f;
        int r = its_video_read(v, &f);
        if (r == 1 && (bytes += its_video_frame_bytes(f.width, f.height)) > max_bytes) {
            its_video_close(v);
            break;
        }
        if (r == 1)
            rc = stage(list, n, cap, &f);
        else
            bad++;
        its_video_close(v);
    }
    for (int i = 0; i < nn; i++)
        its_free(names[i]);
    its_free(names);
    if (rc == 0 && *n == 0) {
        snprintf(err, errlen, "%s: no decodable images (%d unreadable)", dir, bad);
        rc = ITS_EDECODE;
    }
    return rc;
}

static void clip_free(its__clip *c)
{
    if (!c)
        return;
    for (int i = 0; c->frames && i < c->n; i++)
        its_buf_unref(c->frames[i]);
    its_pool_destroy(c->pool);
    its_free(c->frames);
    its_free(c->width);
    its_free(c->height);
    its_free(c->pts_ns);
    its_free(c);
}

static int clip_build(const char *path, its_pixfmt pixfmt, int max_w, int max_h, int max_frames,
                      uint64_t max_bytes, atomic_int *cancel, its__clip **out, char *err,
                      size_t errlen)
{
    its_video_opts vo = {
        .pixfmt = pixfmt, .max_width = max_w, .max_height = max_h, .cancel = cancel};
    staged *list = NULL;
    int n = 0, cap = 0, rc;
    double fps = 0;
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        rc = decode_folder(path, &vo, max_frames, max_bytes, &list, &n, &cap, err, errlen);
        for (int i = 0; rc == 0 && i < n; i++) /* stills: one per 1/30 s of media time */
            list[i].pts = (int64_t)i * 33333333;
    } else
        rc = decode_video(path, &vo, max_frames, max_bytes, &list, &n, &cap, &fps, err, errlen);
    its__clip *c = NULL;
    if (rc == 0) {
        size_t maxb = 0;
        for (int i = 0; i < n; i++)
            maxb = ITS_MAX(maxb, its_video_frame_bytes(list[i].w, list[i].h));
        c = its_calloc(ITS_MOD_INGEST, 1, sizeof *c);
        rc = ITS_ENOMEM;
        if (c && (c->frames = its_calloc(ITS_MOD_INGEST, (size_t)n, sizeof *c->frames)) &&
            (c->width = its_calloc(ITS_MOD_INGEST, (size_t)n, sizeof(int))) &&
            (c->height = its_calloc(ITS_MOD_INGEST, (size_t)n, sizeof(int))) &&
            (c->pts_ns = its_calloc(ITS_MOD_INGEST, (size_t)n, sizeof(int64_t))) &&
            (rc = clip_pool(maxb, n, path, &c->pool)) == 0) {
            for (int i = 0; i < n; i++) {
                its_buf *b = its_pool_get(c->pool);
                size_t bytes = its_video_frame_bytes(list[i].w, list[i].h);
                memcpy(b->data, list[i].px, bytes);
                b->size = bytes;
                c->frames[i] = b;
                c->width[i] = list[i].w;
                c->height[i] = list[i].h;
                c->pts_ns[i] = list[i].pts;
                its_free(list[i].px);
                list[i].px = NULL;
                c->n = i + 1;
            }
            c->fps = fps;
            c->bytes = (uint64_t)maxb * (uint64_t)n;
            double per = fps > 0 ? 1e9 / fps : 1e9 / 30.0;
            c->duration_ns = c->pts_ns[c->n - 1] + (int64_t)per;
            if (c->duration_ns <= 0)
                c->duration_ns = (int64_t)(per * c->n);
        } else {
            snprintf(err, errlen, "%s: out of memory for the clip", path);
            clip_free(c);
            c = NULL;
        }
    }
    for (int i = 0; i < n; i++)
        its_free(list[i].px);
    its_free(list);
    *out = c;
    return c ? 0 : rc;
}

static void node_drop(node *nd)
{
    for (node **pp = &reg_head; *pp; pp = &(*pp)->next)
        if (*pp == nd) {
            *pp = nd->next;
            break;
        }
    if (nd->clip) {
        reg_bytes -= nd->clip->bytes;
        clip_free(nd->clip);
    }
    its_free(nd);
}

int its__clip_get(const char *path, its_pixfmt pixfmt, int max_w, int max_h, int max_frames,
                  atomic_int *cancel, its__clip **out, char *err, size_t errlen)
{
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(err, errlen, "%s: cannot open the replay clip", path);
        return ITS_ENOENT;
    }
    char key[160];
    snprintf(key, sizeof key, "%d|%d|%d|%d|%llu:%llu:%lld:%lld.%09ld", (int)pixfmt, max_w, max_h,
             max_frames, (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
             (long long)st.st_size, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    pthread_mutex_lock(&reg_lock);
    for (;;) {
        node *nd = reg_head;
        while (nd && strcmp(nd->key, key) != 0)
            nd = nd->next;
        if (!nd)
            break;
        nd->refs++;
        while (nd->state == CLIP_LOADING && !(cancel && atomic_load(cancel))) {
            struct timespec ts; /* reg_cv runs on CLOCK_REALTIME */
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += (long)CLIP_WAIT_SLICE_NS;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&reg_cv, &reg_lock, &ts);
        }
        if (nd->state == CLIP_READY) {
            *out = nd->clip;
            pthread_mutex_unlock(&reg_lock);
            return 0;
        }
        int rc = nd->state == CLIP_FAILED ? nd->rc : ITS_ECLOSED;
        if (nd->state == CLIP_FAILED) /* while loading, the loader still writes err */
            snprintf(err, errlen, "%s", nd->err);
        if (--nd->refs == 0)
            node_drop(nd);
        if (cancel && atomic_load(cancel)) {
            pthread_mutex_unlock(&reg_lock);
            return ITS_ECLOSED;
        }
        if (rc != ITS_ECLOSED) {
            pthread_mutex_unlock(&reg_lock);
            return rc;
        }
        /* its loader was stopped (its key is cleared): look again, then load it here */
    }
    node *nd = its_calloc(ITS_MOD_INGEST, 1, sizeof *nd);
    if (!nd) {
        pthread_mutex_unlock(&reg_lock);
        snprintf(err, errlen, "%s: out of memory", path);
        return ITS_ENOMEM;
    }
    snprintf(nd->key, sizeof nd->key, "%s", key);
    nd->state = CLIP_LOADING;
    nd->refs = 1;
    nd->next = reg_head;
    reg_head = nd;
    uint64_t left = reg_bytes < CLIP_TOTAL_MAX_BYTES ? CLIP_TOTAL_MAX_BYTES - reg_bytes : 0;
    pthread_mutex_unlock(&reg_lock);

    /* decode outside the lock: other clips load and other sources come and go meanwhile */
    its__clip *c = NULL;
    int rc = left ? 0 : ITS_EFULL;
    if (!left)
        snprintf(nd->err, sizeof nd->err, "%s: no memory left for replay clips (%.0f MB held)",
                 path, (double)CLIP_TOTAL_MAX_BYTES / 1e6);
    else
        rc = clip_build(path, pixfmt, max_w, max_h, max_frames, ITS_MIN(left, CLIP_MAX_BYTES),
                        cancel, &c, nd->err, sizeof nd->err);

    pthread_mutex_lock(&reg_lock);
    if (rc == 0 && reg_bytes + c->bytes > CLIP_TOTAL_MAX_BYTES) { /* others loaded meanwhile */
        snprintf(nd->err, sizeof nd->err,
                 "%s: no memory left for replay clips (%.0f MB held, at most %.0f MB)", path,
                 (double)reg_bytes / 1e6, (double)CLIP_TOTAL_MAX_BYTES / 1e6);
        clip_free(c);
        c = NULL;
        rc = ITS_EFULL;
    }
    if (rc == 0) {
        if (left < CLIP_MAX_BYTES && c->n < max_frames &&
            c->bytes + its_video_frame_bytes(c->width[0], c->height[0]) > left)
            its_logw("ingest", NULL, "replay %s: cut to %d frames (memory for replay clips)", path,
                     c->n);
        nd->clip = c;
        nd->state = CLIP_READY;
        reg_bytes += c->bytes;
        *out = c;
    } else {
        nd->state = CLIP_FAILED;
        nd->rc = rc;
        nd->key[0] = 0; /* found no more: the next to ask loads it again */
        snprintf(err, errlen, "%s", nd->err);
        if (--nd->refs == 0)
            node_drop(nd);
    }
    pthread_cond_broadcast(&reg_cv);
    pthread_mutex_unlock(&reg_lock);
    return rc;
}

void its__clip_put(its__clip *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&reg_lock);
    for (node *nd = reg_head; nd; nd = nd->next)
        if (nd->clip == c) {
            if (--nd->refs == 0)
                node_drop(nd);
            break;
        }
    pthread_mutex_unlock(&reg_lock);
}

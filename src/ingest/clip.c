/*
 * The clips that replay sources serve.
 *
 * A clip is a video (or a folder of still images) decoded once into pooled buffers. Every
 * replay source with the same key shares one clip, so a load test of 100 cameras replaying
 * the same 720p file holds its pixels once; a frame served from a clip takes a reference on
 * the clip's buffer instead of copying it. The registry is a short linked list under a lock:
 * it is touched only when sources are created or destroyed.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "its/core.h"
#include "ingest_impl.h"

/* Replay clips beyond this many bytes are cut (a 720p frame is 2.7 MB: ~370 frames). */
#define CLIP_MAX_BYTES (1ULL << 30)
#define CLIP_MAX_FILES 3000

/* ---- clips ---- */

typedef struct node {
    its__clip *clip;
    struct node *next;
} node;

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static node *reg_head;
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

static int decode_video(const char *path, const its_video_opts *vo, int max_frames, staged **list,
                        int *n, int *cap, double *fps, char *err, size_t errlen)
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
        if (bytes > CLIP_MAX_BYTES)
            break;
        if ((rc = stage(list, n, cap, &f)) < 0)
            break;
    }
    if (rc < 0 && rc != ITS_EEOF) {
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

static int decode_folder(const char *dir, const its_video_opts *vo, int max_frames, staged **list,
                         int *n, int *cap, char *err, size_t errlen)
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
    for (int i = 0; rc == 0 && i < nn && *n < max_frames; i++) {
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
                      its__clip **out, char *err, size_t errlen)
{
    its_video_opts vo = {.pixfmt = pixfmt, .max_width = max_w, .max_height = max_h};
    staged *list = NULL;
    int n = 0, cap = 0, rc;
    double fps = 0;
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        rc = decode_folder(path, &vo, max_frames, &list, &n, &cap, err, errlen);
        for (int i = 0; rc == 0 && i < n; i++) /* stills: one per 1/30 s of media time */
            list[i].pts = (int64_t)i * 33333333;
    } else
        rc = decode_video(path, &vo, max_frames, &list, &n, &cap, &fps, err, errlen);
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

int its__clip_get(const char *path, its_pixfmt pixfmt, int max_w, int max_h, int max_frames,
                  its__clip **out, char *err, size_t errlen)
{
    char key[1100];
    snprintf(key, sizeof key, "%d|%d|%d|%d|%.1000s", (int)pixfmt, max_w, max_h, max_frames, path);
    pthread_mutex_lock(&reg_lock);
    for (node *p = reg_head; p; p = p->next)
        if (strcmp(p->clip->key, key) == 0) {
            p->clip->refs++;
            *out = p->clip;
            pthread_mutex_unlock(&reg_lock);
            return 0;
        }
    /* Decode under the lock: two sources asking for the same clip at once get one decode. */
    its__clip *c;
    int rc = clip_build(path, pixfmt, max_w, max_h, max_frames, &c, err, errlen);
    node *nd = rc == 0 ? its_malloc(ITS_MOD_INGEST, sizeof *nd) : NULL;
    if (rc == 0 && !nd) {
        clip_free(c);
        snprintf(err, errlen, "%s: out of memory", path);
        rc = ITS_ENOMEM;
    }
    if (rc == 0) {
        memcpy(c->key, key, sizeof c->key);
        c->refs = 1;
        nd->clip = c;
        nd->next = reg_head;
        reg_head = nd;
        *out = c;
    }
    pthread_mutex_unlock(&reg_lock);
    return rc;
}

void its__clip_put(its__clip *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&reg_lock);
    if (--c->refs == 0) {
        for (node **pp = &reg_head; *pp; pp = &(*pp)->next)
            if ((*pp)->clip == c) {
                node *dead = *pp;
                *pp = dead->next;
                its_free(dead);
                break;
            }
        clip_free(c);
    }
    pthread_mutex_unlock(&reg_lock);
}

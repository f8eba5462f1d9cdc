/*
 * Built-in sinks. The stdout and file sinks write whole lines under a mutex into a stdio
 * buffer, so concurrent analytics workers never interleave lines and a line costs one
 * memcpy; the buffer is flushed by the status timer and at shutdown, not per line.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "its/core.h"
#include "its/pipeline.h"

typedef struct line_sink {
    its_sink base;
    FILE *f;
    int owns;
    int broken; /* a write failed (EPIPE...): further lines are dropped */
    pthread_mutex_t mu;
} line_sink;

typedef struct tee_sink {
    its_sink base;
    its_sink **sinks;
    int n;
} tee_sink;

static int line_publish(its_sink *s, its_msg_type type, const char *camera, const its_frame *frame,
                        const char *json, size_t len)
{
    line_sink *l = (line_sink *)s;
    int rc = 0;
    if (ITS_MSG_IS_CACHE(type))
        return 0;
    pthread_mutex_lock(&l->mu);
    if (l->f && !l->broken) {
        if (fwrite(json, 1, len, l->f) != len || fputc('\n', l->f) == EOF) {
            l->broken = 1;
            rc = ITS_EIO;
        }
    } else if (l->f) {
        rc = ITS_EIO;
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

static void line_flush(its_sink *s)
{
    line_sink *l = (line_sink *)s;
    pthread_mutex_lock(&l->mu);
    if (l->f && fflush(l->f) != 0 && !l->broken) {
        l->broken = 1;
        its_loge("app", l->base.name, "sink write failed; further messages are dropped");
    }
    pthread_mutex_unlock(&l->mu);
}

static void line_destroy(its_sink *s)
{
    line_sink *l = (line_sink *)s;
    line_flush(s);
    if (l->owns && l->f)
        fclose(l->f);
    pthread_mutex_destroy(&l->mu);
    its_free(l);
}

static its_sink *line_new(const char *name, FILE *f, int owns)
{
    line_sink *l = its_calloc(ITS_MOD_APP, 1, sizeof *l);
    if (!l) {
        if (owns && f)
            fclose(f);
        return NULL;
    }
    l->base.name = name;
    l->base.publish = line_publish;
    l->base.flush = line_flush;
    l->base.destroy = line_destroy;
    l->f = f;
    l->owns = owns;
    pthread_mutex_init(&l->mu, NULL);
    return &l->base;
}

its_sink *its_sink_stdout(void)
{
    return line_new("stdout", stdout, 0);
}

its_sink *its_sink_file(const char *path)
{
    FILE *f = fopen(path, "a");
    if (!f) {
        its_loge("app", NULL, "cannot open sink file %s", path);
        return NULL;
    }
    return line_new("file", f, 1);
}

its_sink *its_sink_null(void)
{
    return line_new("null", NULL, 0);
}

static int tee_publish(its_sink *s, its_msg_type type, const char *camera, const its_frame *frame,
                       const char *json, size_t len)
{
    tee_sink *t = (tee_sink *)s;
    int rc = 0;
    for (int i = 0; i < t->n; i++) {
        int r = t->sinks[i]->publish(t->sinks[i], type, camera, frame, json, len);
        if (r < 0)
            rc = r;
    }
    return rc;
}

static void tee_flush(its_sink *s)
{
    tee_sink *t = (tee_sink *)s;
    for (int i = 0; i < t->n; i++)
        if (t->sinks[i]->flush)
            t->sinks[i]->flush(t->sinks[i]);
}

static void tee_destroy(its_sink *s)
{
    tee_sink *t = (tee_sink *)s;
    for (int i = 0; i < t->n; i++)
        t->sinks[i]->destroy(t->sinks[i]);
    its_free(t->sinks);
    its_free(t);
}

its_sink *its_sink_tee(its_sink **sinks, int n)
{
    tee_sink *t = its_calloc(ITS_MOD_APP, 1, sizeof *t);
    its_sink **arr = its_calloc(ITS_MOD_APP, (size_t)(n > 0 ? n : 1), sizeof *arr);
    if (!t || !arr) {
        its_free(t);
        its_free(arr);
        for (int i = 0; i < n; i++)
            sinks[i]->destroy(sinks[i]);
        return NULL;
    }
    memcpy(arr, sinks, (size_t)n * sizeof *arr);
    t->base.name = "tee";
    t->base.publish = tee_publish;
    t->base.flush = tee_flush;
    t->base.destroy = tee_destroy;
    t->sinks = arr;
    t->n = n;
    return &t->base;
}

/* ---- fenced: a cluster replica publishes only while its lease is valid ---- */

typedef struct fenced_sink {
    its_sink base;
    its_sink *inner;
    const _Atomic uint64_t *until;
    _Atomic uint64_t dropped; /* in the current spell */
} fenced_sink;

static int fenced_publish(its_sink *s, its_msg_type type, const char *camera,
                          const its_frame *frame, const char *json, size_t len)
{
    fenced_sink *f = (fenced_sink *)s;
    if (its_now_ns() >= atomic_load(f->until)) {
        if (atomic_fetch_add(&f->dropped, 1) == 0)
            its_logw("cluster", camera, "lease not valid: messages dropped until it is renewed");
        return 0;
    }
    uint64_t n = atomic_exchange(&f->dropped, 0);
    if (n)
        its_logi("cluster", NULL, "lease valid again: %llu messages were dropped",
                 (unsigned long long)n);
    return f->inner->publish(f->inner, type, camera, frame, json, len);
}

static void fenced_flush(its_sink *s)
{
    fenced_sink *f = (fenced_sink *)s;
    f->inner->flush(f->inner);
}

static void fenced_destroy(its_sink *s)
{
    fenced_sink *f = (fenced_sink *)s;
    f->inner->destroy(f->inner);
    its_free(f);
}

its_sink *its_sink_fenced(its_sink *inner, const _Atomic uint64_t *valid_until)
{
    if (!inner)
        return NULL;
    fenced_sink *f = its_calloc(ITS_MOD_APP, 1, sizeof *f);
    if (!f) {
        inner->destroy(inner);
        return NULL;
    }
    f->base.name = "fenced";
    f->base.publish = fenced_publish;
    f->base.flush = fenced_flush;
    f->base.destroy = fenced_destroy;
    f->inner = inner;
    f->until = valid_until;
    return &f->base;
}

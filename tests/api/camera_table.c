#include "camera_table.h"

#include <stdio.h>
#include <string.h>

#include "its/core.h"

void camera_table_init(camera_table *t)
{
    memset(t, 0, sizeof *t);
    pthread_mutex_init(&t->lock, NULL);
}

void camera_table_free(camera_table *t)
{
    its_free(t->last_frame);
    pthread_mutex_destroy(&t->lock);
}

static int find(camera_table *t, const char *id)
{
    for (int i = 0; i < t->n; i++)
        if (!strcmp(t->cams[i].id, id))
            return i;
    return -1;
}

static int ready(void *ud, char *reason, size_t len)
{
    camera_table *t = ud;
    if (!t->ready)
        snprintf(reason, len, "model not loaded");
    return t->ready;
}

static int list(void *ud, its_api_camera *out, int max)
{
    camera_table *t = ud;
    pthread_mutex_lock(&t->lock);
    int n = t->n < max ? t->n : max;
    memcpy(out, t->cams, (size_t)n * sizeof *out);
    pthread_mutex_unlock(&t->lock);
    return n;
}

static int get(void *ud, const char *id, its_api_camera *out)
{
    camera_table *t = ud;
    pthread_mutex_lock(&t->lock);
    int i = find(t, id);
    if (i >= 0)
        *out = t->cams[i];
    pthread_mutex_unlock(&t->lock);
    return i >= 0 ? 0 : ITS_ENOENT;
}

static int add(void *ud, const its_api_camera_spec *spec)
{
    camera_table *t = ud;
    pthread_mutex_lock(&t->lock);
    int i = find(t, spec->id), rc = 0;
    if (i >= 0 && !spec->replace) {
        rc = ITS_EEXIST;
    } else if (i < 0 && t->n == CAMERA_TABLE_MAX) {
        rc = ITS_EFULL;
    } else {
        if (i < 0) {
            i = t->n++;
        } else {
            rc = 1;
        }
        its_api_camera *c = &t->cams[i];
        memset(c, 0, sizeof *c);
        snprintf(c->id, sizeof c->id, "%s", spec->id);
        snprintf(c->url, sizeof c->url, "%s", spec->url);
        snprintf(c->state, sizeof c->state, "connecting");
        c->fps = spec->fps;
        snprintf(t->json[i], sizeof t->json[i], "%s", spec->json);
    }
    pthread_mutex_unlock(&t->lock);
    return rc;
}

static int del(void *ud, const char *id)
{
    camera_table *t = ud;
    pthread_mutex_lock(&t->lock);
    int i = find(t, id);
    if (i >= 0) {
        t->cams[i] = t->cams[t->n - 1];
        memcpy(t->json[i], t->json[t->n - 1], sizeof t->json[i]);
        t->n--;
    }
    pthread_mutex_unlock(&t->lock);
    return i >= 0 ? 0 : ITS_ENOENT;
}

static int push(void *ud, const char *id, const uint8_t *jpeg, size_t len, uint64_t ts)
{
    camera_table *t = ud;
    pthread_mutex_lock(&t->lock);
    int rc = 0;
    int i = find(t, id);
    if (i < 0) {
        rc = ITS_ENOENT;
    } else if (t->full) {
        rc = ITS_EFULL;
    } else {
        uint8_t *copy = its_malloc(ITS_MOD_TEST, len);
        if (!copy) {
            rc = ITS_ENOMEM;
        } else {
            memcpy(copy, jpeg, len);
            its_free(t->last_frame);
            t->last_frame = copy;
            t->last_len = len;
            snprintf(t->last_frame_cam, sizeof t->last_frame_cam, "%s", id);
            t->frames_pushed++;
            t->cams[i].frames++;
        }
    }
    pthread_mutex_unlock(&t->lock);
    return rc;
}

its_api_provider camera_table_provider(camera_table *t)
{
    its_api_provider p = {.ud = t,
                          .ready = ready,
                          .camera_list = list,
                          .camera_get = get,
                          .camera_add = add,
                          .camera_remove = del,
                          .frame_push = push};
    return p;
}

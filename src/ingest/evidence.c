/*
 * Clips around events from a ring of compressed packets (include/its/evidence.h).
 *
 * The ring: packet bytes in one circular buffer, each packet contiguous (one that does not
 * fit before the end starts again at 0), and a FIFO index of the packets in read order. A new
 * packet evicts from the index's front (the oldest) until its bytes are free.
 */
#include <dirent.h>
#include <errno.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "its/alloc.h"
#include "its/error.h"
#include "its/evidence.h"
#include "its/log.h"

#define MAX_ENTRIES 16384
#define NS          1000000000LL

typedef struct entry {
    size_t off, size;
    int64_t pts, dts, dur; /* media time, ns */
    int key;
} entry;

typedef struct request {
    int64_t start, end; /* media time, ns */
    char path[1024];
} request;

struct its_clipring {
    atomic_int refs;
    pthread_mutex_t mu; /* pending, stats */
    uint8_t *buf;
    size_t cap, wpos;
    entry *e;
    int head, n; /* index FIFO */
    AVCodecParameters *par;
    request pending[ITS_CLIPRING_PENDING];
    int n_pending;
    its_clipring_stats st;
};

int its_clipring_create(size_t max_bytes, its_clipring_t **out)
{
    *out = NULL;
    if (max_bytes < 4096)
        return ITS_EINVAL;
    its_clipring_t *r = its_calloc(ITS_MOD_INGEST, 1, sizeof *r);
    if (!r)
        return ITS_ENOMEM;
    r->buf = its_malloc(ITS_MOD_INGEST, max_bytes);
    r->e = its_calloc(ITS_MOD_INGEST, MAX_ENTRIES, sizeof *r->e);
    r->par = avcodec_parameters_alloc();
    if (!r->buf || !r->e || !r->par) {
        its_free(r->buf);
        its_free(r->e);
        avcodec_parameters_free(&r->par);
        its_free(r);
        return ITS_ENOMEM;
    }
    r->cap = max_bytes;
    atomic_init(&r->refs, 1);
    pthread_mutex_init(&r->mu, NULL);
    *out = r;
    return 0;
}

void its_clipring_ref(its_clipring_t *r)
{
    if (r)
        atomic_fetch_add(&r->refs, 1);
}

void its_clipring_unref(its_clipring_t *r)
{
    if (!r || atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    pthread_mutex_destroy(&r->mu);
    avcodec_parameters_free(&r->par);
    its_free(r->buf);
    its_free(r->e);
    its_free(r);
}

static entry *at(its_clipring_t *r, int i)
{
    return &r->e[(r->head + i) % MAX_ENTRIES];
}

static void evict_front(its_clipring_t *r)
{
    r->head = (r->head + 1) % MAX_ENTRIES;
    r->n--;
}

/* The same stream as the packets in the ring? Else the ring starts again with this one. */
static void check_stream(its_clipring_t *r, const AVCodecParameters *par)
{
    if (!par)
        return;
    const AVCodecParameters *o = r->par;
    if (o->codec_id == par->codec_id && o->width == par->width && o->height == par->height &&
        o->extradata_size == par->extradata_size &&
        (!par->extradata_size ||
         !memcmp(o->extradata, par->extradata, (size_t)par->extradata_size)))
        return;
    avcodec_parameters_copy(r->par, par);
    r->n = 0;
    r->head = 0;
    r->wpos = 0;
}

/* Write [first, last] of the index as an MP4 at path, times shifted by -start. */
static int write_clip(its_clipring_t *r, int first, int last, int64_t start, const char *path)
{
    char part[1100];
    snprintf(part, sizeof part, "%s.part", path);
    AVFormatContext *fmt = NULL;
    int rc = avformat_alloc_output_context2(&fmt, NULL, "mp4", part);
    if (rc < 0 || !fmt)
        return ITS_ENOMEM;
    AVStream *st = avformat_new_stream(fmt, NULL);
    AVPacket *pkt = av_packet_alloc();
    int ok = st && pkt && avcodec_parameters_copy(st->codecpar, r->par) >= 0;
    if (ok) {
        st->codecpar->codec_tag = 0;
        st->time_base = (AVRational){1, 90000};
        ok = avio_open(&fmt->pb, part, AVIO_FLAG_WRITE) >= 0;
    }
    /* the index (moov) before the media, as a browser's <video> wants it to start playing and
     * to know the duration before the whole file has come: the muxer moves it at the end */
    AVDictionary *opts = NULL;
    av_dict_set(&opts, "movflags", "+faststart", 0);
    ok = ok && avformat_write_header(fmt, &opts) >= 0;
    av_dict_free(&opts);
    AVRational ns = {1, (int)NS};
    for (int i = first; ok && i <= last; i++) {
        entry *x = at(r, i);
        if (av_new_packet(pkt, (int)x->size) < 0) {
            ok = 0;
            break;
        }
        memcpy(pkt->data, r->buf + x->off, x->size);
        pkt->pts = av_rescale_q(x->pts - start, ns, st->time_base);
        pkt->dts = av_rescale_q(x->dts - start, ns, st->time_base);
        pkt->duration = av_rescale_q(x->dur, ns, st->time_base);
        pkt->flags = x->key ? AV_PKT_FLAG_KEY : 0;
        pkt->stream_index = 0;
        ok = av_write_frame(fmt, pkt) >= 0;
        av_packet_unref(pkt);
    }
    if (ok)
        ok = av_write_trailer(fmt) >= 0;
    if (fmt->pb)
        avio_closep(&fmt->pb);
    avformat_free_context(fmt);
    av_packet_free(&pkt);
    if (ok && rename(part, path) != 0)
        ok = 0;
    if (!ok) {
        unlink(part);
        return ITS_EIO;
    }
    return 0;
}

/* The packets of [q->start, q->end] from the keyframe before q->start into q->path. */
static int cut(its_clipring_t *r, const request *q)
{
    int first = -1, first_key = -1, last = -1;
    for (int i = 0; i < r->n; i++) {
        const entry *x = at(r, i);
        if (!x->key)
            continue;
        if (first_key < 0)
            first_key = i;
        if (x->pts <= q->start)
            first = i;
    }
    if (first < 0)
        first = first_key;
    if (first < 0)
        return ITS_ENOENT;
    for (int i = first; i < r->n; i++)
        if (at(r, i)->pts <= q->end && at(r, i)->pts >= at(r, first)->pts)
            last = i;
    if (last < first || !r->par->codec_id)
        return ITS_ENOENT;
    /* before the stream's first picture there is nothing to show: the clip starts there */
    int64_t start = q->start > at(r, first)->pts ? q->start : at(r, first)->pts;
    return write_clip(r, first, last, start, q->path);
}

/* Cut the requests whose end has come (all with force). */
static void serve(its_clipring_t *r, int64_t newest, int force)
{
    request due[ITS_CLIPRING_PENDING];
    int n_due = 0;
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->n_pending;) {
        if (force || r->pending[i].end < newest) {
            due[n_due++] = r->pending[i];
            r->pending[i] = r->pending[--r->n_pending];
        } else {
            i++;
        }
    }
    pthread_mutex_unlock(&r->mu);
    for (int i = 0; i < n_due; i++) {
        int rc = cut(r, &due[i]);
        if (rc < 0)
            its_logw("evidence", NULL, "clip %s not written: %s", due[i].path, its_strerror(rc));
        pthread_mutex_lock(&r->mu);
        if (rc < 0)
            r->st.clips_failed++;
        else
            r->st.clips_written++;
        pthread_mutex_unlock(&r->mu);
    }
}

void its_clipring_packet(its_clipring_t *r, its_video_t *v, const its_video_packet *p,
                         int64_t media_base_ns)
{
    if (!r || !p || !p->size || p->size > r->cap / 2)
        return;
    check_stream(r, its_video_codecpar(v));
    size_t n = p->size, w = r->wpos;
    if (w + n > r->cap) { /* wrap: what is left at the tail is the oldest, evicted first */
        while (r->n && at(r, 0)->off >= w)
            evict_front(r);
        w = 0;
    }
    while (r->n &&
           (r->n == MAX_ENTRIES || (at(r, 0)->off < w + n && at(r, 0)->off + at(r, 0)->size > w)))
        evict_front(r);
    memcpy(r->buf + w, p->data, n);
    entry *x = &r->e[(r->head + r->n) % MAX_ENTRIES];
    *x = (entry){.off = w,
                 .size = n,
                 .pts = media_base_ns + p->pts_ns,
                 .dts = media_base_ns + p->dts_ns,
                 .dur = p->duration_ns,
                 .key = p->key};
    r->n++;
    r->wpos = w + n;
    pthread_mutex_lock(&r->mu);
    r->st.packets++;
    size_t kept = 0;
    for (int i = 0; i < r->n; i++)
        kept += at(r, i)->size;
    r->st.bytes_kept = kept;
    r->st.oldest_ns = at(r, 0)->pts;
    r->st.newest_ns = x->pts;
    int any = r->n_pending > 0;
    pthread_mutex_unlock(&r->mu);
    if (any)
        serve(r, x->pts, 0);
}

int its_clipring_request(its_clipring_t *r, int64_t t_ns, double pre_s, double post_s,
                         const char *path)
{
    if (!r || !path || pre_s < 0 || post_s < 0 || strlen(path) >= sizeof r->pending[0].path)
        return ITS_EINVAL;
    pthread_mutex_lock(&r->mu);
    int rc = 0;
    if (r->n_pending == ITS_CLIPRING_PENDING) {
        r->st.requests_refused++;
        rc = ITS_EFULL;
    } else {
        request *q = &r->pending[r->n_pending++];
        q->start = t_ns - (int64_t)(pre_s * 1e9);
        q->end = t_ns + (int64_t)(post_s * 1e9);
        snprintf(q->path, sizeof q->path, "%s", path);
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

void its_clipring_flush(its_clipring_t *r)
{
    if (r)
        serve(r, INT64_MAX, 1);
}

void its_clipring_get_stats(its_clipring_t *r, its_clipring_stats *out)
{
    pthread_mutex_lock(&r->mu);
    *out = r->st;
    pthread_mutex_unlock(&r->mu);
}

/* ---- storage limits -------------------------------------------------------------------- */

typedef struct fentry {
    char name[256];
    off_t size;
    time_t mtime;
} fentry;

static int by_mtime(const void *a, const void *b)
{
    const fentry *x = a, *y = b;
    return x->mtime < y->mtime ? -1 : x->mtime > y->mtime;
}

int its_evidence_sweep(const char *dir, uint64_t max_bytes, double max_age_s)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    size_t n = 0, cap = 256;
    fentry *f = malloc(cap * sizeof *f);
    struct dirent *de;
    while (f && (de = readdir(d))) {
        if (de->d_name[0] == '.' || strlen(de->d_name) >= sizeof f[0].name ||
            strstr(de->d_name, ".part"))
            continue;
        char p[1400];
        struct stat sb;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        if (stat(p, &sb) != 0 || !S_ISREG(sb.st_mode))
            continue;
        if (n == cap) {
            fentry *g = realloc(f, 2 * cap * sizeof *f);
            if (!g)
                break;
            f = g;
            cap *= 2;
        }
        snprintf(f[n].name, sizeof f[n].name, "%s", de->d_name);
        f[n].size = sb.st_size;
        f[n].mtime = sb.st_mtime;
        n++;
    }
    closedir(d);
    if (!f)
        return 0;
    qsort(f, n, sizeof *f, by_mtime);
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += (uint64_t)f[i].size;
    time_t now = time(NULL);
    int deleted = 0;
    for (size_t i = 0; i < n; i++) {
        int old = max_age_s > 0 && difftime(now, f[i].mtime) > max_age_s;
        if (!old && total <= max_bytes)
            break;
        char p[1400];
        snprintf(p, sizeof p, "%s/%s", dir, f[i].name);
        if (unlink(p) == 0) {
            deleted++;
            total -= (uint64_t)f[i].size;
        }
    }
    free(f);
    return deleted;
}

/* ---- the service's store --------------------------------------------------------------- */

#define MAX_CAMERAS 4096

typedef struct cam_ring {
    char id[65];
    its_clipring_t *r;
} cam_ring;

struct its_evidence_store {
    pthread_mutex_t mu;
    its_evidence_config c;
    char dir[1024];
    cam_ring *cams;
    its_evidence_record *rec;
    int rec_head, rec_n;
};

int its_evidence_store_create(const its_evidence_config *c, its_evidence_store **out, char *err,
                              size_t errlen)
{
    *out = NULL;
    if (!c || !c->dir || !*c->dir || strlen(c->dir) >= 1000 || c->pre_s < 0 || c->post_s < 0)
        return its_seterr(err, errlen, ITS_EINVAL, "evidence: bad configuration");
    if (mkdir(c->dir, 0750) != 0 && errno != EEXIST)
        return its_seterr(err, errlen, ITS_EIO, "evidence.dir %s: %s", c->dir, strerror(errno));
    its_evidence_store *s = its_calloc(ITS_MOD_INGEST, 1, sizeof *s);
    if (!s)
        return its_seterr(err, errlen, ITS_ENOMEM, "evidence: out of memory");
    s->cams = its_calloc(ITS_MOD_INGEST, MAX_CAMERAS, sizeof *s->cams);
    s->rec = its_calloc(ITS_MOD_INGEST, ITS_EVIDENCE_RECORDS, sizeof *s->rec);
    if (!s->cams || !s->rec) {
        its_free(s->cams);
        its_free(s->rec);
        its_free(s);
        return its_seterr(err, errlen, ITS_ENOMEM, "evidence: out of memory");
    }
    s->c = *c;
    snprintf(s->dir, sizeof s->dir, "%s", c->dir);
    s->c.dir = s->dir;
    pthread_mutex_init(&s->mu, NULL);
    *out = s;
    return 0;
}

void its_evidence_store_destroy(its_evidence_store *s)
{
    if (!s)
        return;
    for (int i = 0; i < MAX_CAMERAS; i++)
        its_clipring_unref(s->cams[i].r);
    pthread_mutex_destroy(&s->mu);
    its_free(s->cams);
    its_free(s->rec);
    its_free(s);
}

double its_evidence_pre_s(const its_evidence_store *s)
{
    return s->c.pre_s;
}

its_clipring_t *its_evidence_camera_open(its_evidence_store *s, const char *camera)
{
    if (!s || !camera || strlen(camera) >= sizeof s->cams[0].id)
        return NULL;
    its_clipring_t *r;
    if (its_clipring_create(s->c.ring_bytes, &r) < 0)
        return NULL;
    pthread_mutex_lock(&s->mu);
    int slot = -1;
    for (int i = 0; i < MAX_CAMERAS; i++) {
        if (s->cams[i].r && !strcmp(s->cams[i].id, camera)) {
            slot = i;
            break;
        }
        if (!s->cams[i].r && slot < 0)
            slot = i;
    }
    if (slot < 0) {
        pthread_mutex_unlock(&s->mu);
        its_clipring_unref(r);
        return NULL;
    }
    its_clipring_unref(s->cams[slot].r);
    snprintf(s->cams[slot].id, sizeof s->cams[slot].id, "%s", camera);
    s->cams[slot].r = r;
    its_clipring_ref(r); /* the caller's */
    pthread_mutex_unlock(&s->mu);
    return r;
}

void its_evidence_camera_close(its_evidence_store *s, const char *camera, its_clipring_t *r)
{
    if (!s || !camera)
        return;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < MAX_CAMERAS; i++)
        if (s->cams[i].r && (!r || s->cams[i].r == r) && !strcmp(s->cams[i].id, camera)) {
            r = s->cams[i].r;
            its_clipring_unref(r);
            s->cams[i].r = NULL;
            break;
        }
    pthread_mutex_unlock(&s->mu);
}

static int valid_id(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (!n || n >= sizeof((its_evidence_record *)0)->id || id[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

int its_evidence_capture(its_evidence_store *s, const its_evidence_record *ev, int64_t media_ns,
                         const uint8_t *jpeg, size_t jpeg_len, int *clip)
{
    *clip = 0;
    if (!s || !ev || !valid_id(ev->id) || !ev->camera[0] || !ev->kind[0])
        return ITS_EINVAL;
    const char *id = ev->id, *camera = ev->camera;
    char path[1300];
    int rc = 0;
    if (jpeg && jpeg_len) {
        char part[1320];
        snprintf(path, sizeof path, "%s/%s.jpg", s->dir, id);
        snprintf(part, sizeof part, "%s.part", path);
        FILE *f = fopen(part, "wb");
        int ok = f && fwrite(jpeg, 1, jpeg_len, f) == jpeg_len;
        if (f && fclose(f) != 0)
            ok = 0;
        if (!ok || rename(part, path) != 0) {
            unlink(part);
            rc = ITS_EIO;
        }
    }
    snprintf(path, sizeof path, "%s/%s.mp4", s->dir, id);
    pthread_mutex_lock(&s->mu);
    its_clipring_t *r = NULL;
    for (int i = 0; i < MAX_CAMERAS && !r; i++)
        if (s->cams[i].r && !strcmp(s->cams[i].id, camera)) {
            r = s->cams[i].r;
            its_clipring_ref(r);
        }
    its_evidence_record *x = &s->rec[(s->rec_head + s->rec_n) % ITS_EVIDENCE_RECORDS];
    if (s->rec_n == ITS_EVIDENCE_RECORDS)
        s->rec_head = (s->rec_head + 1) % ITS_EVIDENCE_RECORDS;
    else
        s->rec_n++;
    *x = *ev;
    x->clip = 0;
    if (r && its_clipring_request(r, media_ns, s->c.pre_s, s->c.post_s, path) == 0)
        x->clip = *clip = 1;
    pthread_mutex_unlock(&s->mu);
    its_clipring_unref(r);
    its_evidence_sweep(s->dir, s->c.max_bytes, s->c.max_age_s);
    return rc;
}

int its_evidence_list(its_evidence_store *s, its_evidence_record *out, int max)
{
    pthread_mutex_lock(&s->mu);
    int n = 0;
    for (int i = s->rec_n - 1; i >= 0 && n < max; i--)
        out[n++] = s->rec[(s->rec_head + i) % ITS_EVIDENCE_RECORDS];
    pthread_mutex_unlock(&s->mu);
    return n;
}

int its_evidence_path(its_evidence_store *s, const char *id, const char *what, char *path,
                      size_t len)
{
    if (!s || !valid_id(id) || !what)
        return ITS_EINVAL;
    const char *ext = !strcmp(what, "snapshot") ? "jpg" : !strcmp(what, "clip") ? "mp4" : NULL;
    if (!ext)
        return ITS_EINVAL;
    snprintf(path, len, "%s/%s.%s", s->dir, id, ext);
    return access(path, R_OK) == 0 ? 0 : ITS_ENOENT;
}

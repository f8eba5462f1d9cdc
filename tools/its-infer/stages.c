/*
 * Built-in its-infer stages: one JSON object per frame on stdout, and --draw's annotated
 * copies: an image under its own name (JPEG or PNG as the input), a video as DIR/<name>.mp4
 * (its/video.h's writer: H.264, else MPEG-4 part 2).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "infer.h"
#include "its/alloc.h"
#include "its/clock.h"
#include "its/error.h"
#include "its/json.h"
#include "its/video.h"

/* ---- JSON ------------------------------------------------------------------------------ */

#define JSON_MAX (1 << 20)

static const char *label_of(const infer_result *r, int cls, char *buf, size_t len)
{
    if (cls >= 0 && cls < r->n_labels && r->labels[cls] && r->labels[cls][0])
        return r->labels[cls];
    snprintf(buf, len, "class_%d", cls);
    return buf;
}

typedef struct json_ctx {
    FILE *out;
    char buf[JSON_MAX];
} json_ctx;

static const char *label_name(void *ctx, int cls)
{
    const infer_result *r = ctx;
    return cls >= 0 && cls < r->n_labels ? r->labels[cls] : NULL;
}

/* One "infer" message of schema v2 (docs/schema/infer.schema.json) per image or frame. */
static int json_frame(void *ctx, infer_result *r)
{
    json_ctx *jc = ctx;
    its_json w;
    its_json_init(&w, jc->buf, sizeof jc->buf);
    its_json_msg_begin(&w, "infer", r->src->path, (int64_t)(its_wall_ns() / 1000), r->frame);
    if (r->src->is_video)
        its_json_kint(&w, "pts_us", r->pts_ns / 1000);
    its_json_frame_dets(&w, r->dets, r->n, r->width, r->height, label_name, r);
    its_json_obj_end(&w);
    int n = its_json_finish(&w);
    if (n < 0) {
        fprintf(stderr, "its-infer: %s frame %lld: message too large\n", r->src->path,
                (long long)r->frame);
        return 0;
    }
    fwrite(jc->buf, 1, (size_t)n, jc->out);
    fputc('\n', jc->out);
    return ferror(jc->out) ? ITS_EIO : 0;
}

static void json_destroy(void *ctx)
{
    its_free(ctx);
}

int infer_stage_json(FILE *out, infer_stage *st)
{
    memset(st, 0, sizeof *st);
    json_ctx *jc = its_malloc(ITS_MOD_APP, sizeof *jc);
    if (!jc)
        return ITS_ENOMEM;
    jc->out = out;
    st->name = "json";
    st->frame = json_frame;
    st->destroy = json_destroy;
    st->ctx = jc;
    return 0;
}

/* ---- drawing (its_image_draw_*, its/media.h) ------------------------------------------- */

typedef struct draw_ctx {
    char dir[1024];
    its_video_writer_t *w; /* the video being written, NULL before its first frame */
    char out[1400];        /* its path */
    int w_failed;          /* this video's writer could not be opened: its frames are skipped */
    int w_width, w_height; /* the writer's frame size; frames of another size are skipped */
    long skipped;
} draw_ctx;

/* The annotated copy's path: DIR/<the input's file name> for images; DIR/<its name without
 * the extension>.mp4 for videos. */
static void out_path(const draw_ctx *ctx, const infer_source *src, char *buf, size_t len)
{
    const char *base = strrchr(src->path, '/');
    base = base ? base + 1 : src->path;
    if (!src->is_video) {
        snprintf(buf, len, "%s/%s", ctx->dir, base);
        return;
    }
    const char *dot = strrchr(base, '.');
    int n = dot && dot != base ? (int)(dot - base) : (int)strlen(base);
    snprintf(buf, len, "%s/%.*s.mp4", ctx->dir, n, base[0] ? base : "video");
}

/* Writing the annotated copy over its input would destroy it. */
static int same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

static void class_color(int cls, uint8_t rgb[3])
{
    static const uint8_t pal[8][3] = {{255, 56, 56},  {255, 157, 151}, {255, 112, 31},
                                      {255, 178, 29}, {72, 249, 10},   {26, 147, 52},
                                      {0, 194, 255},  {52, 69, 147}};
    memcpy(rgb, pal[(cls < 0 ? -cls : cls) % 8], 3);
}

static int draw_begin(void *vctx, const infer_source *src)
{
    draw_ctx *ctx = vctx;
    (void)src;
    ctx->w = NULL;
    ctx->w_failed = 0;
    ctx->skipped = 0;
    return 0;
}

/* The video's first frame opens its writer. */
static int open_writer(draw_ctx *ctx, const infer_result *r, const its_image *img)
{
    out_path(ctx, r->src, ctx->out, sizeof ctx->out);
    char err[1600];
    int rc = ITS_EINVAL;
    if (same_file(ctx->out, r->src->path))
        snprintf(err, sizeof err, "%s: the input itself; choose another folder", ctx->out);
    else
        rc = its_video_writer_open(ctx->out, img->width, img->height,
                                   r->src->fps > 0 ? r->src->fps : 25, img->fmt, &ctx->w, err,
                                   sizeof err);
    if (rc < 0) {
        fprintf(stderr, "its-infer: --draw: %s\n", err);
        ctx->w_failed = 1;
        return rc;
    }
    ctx->w_width = img->width;
    ctx->w_height = img->height;
    return 0;
}

static int draw_frame(void *vctx, infer_result *r)
{
    draw_ctx *ctx = vctx;
    if (!r->image || (r->src->is_video && ctx->w_failed))
        return 0;
    /* Draw on the caller's frame copy: the pixels are not used again after the stages. */
    its_image *img = (its_image *)r->image;
    int side = img->width > img->height ? img->width : img->height;
    int t = side / 400 + 1, s = side / 640 + 1;
    for (int i = 0; i < r->n; i++) {
        const its_det *d = &r->dets[i];
        uint8_t col[3];
        static const uint8_t white[3] = {255, 255, 255};
        class_color(d->class_id, col);
        its_image_draw_box(img, (int)d->x1, (int)d->y1, (int)d->x2, (int)d->y2, t, col);
        char text[128], buf[32];
        if (d->track_id > 0)
            snprintf(text, sizeof text, "%s %.2f %d", label_of(r, d->class_id, buf, sizeof buf),
                     d->score, (int)d->track_id);
        else
            snprintf(text, sizeof text, "%s %.2f", label_of(r, d->class_id, buf, sizeof buf),
                     d->score);
        int ty = (int)d->y1 - 9 * s;
        its_image_draw_text(img, (int)d->x1, ty < 0 ? (int)d->y1 : ty, s, text, white, col);
    }
    char err[256];
    int rc;
    if (r->src->is_video) {
        if (!ctx->w && (rc = open_writer(ctx, r, img)) < 0)
            return rc;
        if (img->width != ctx->w_width || img->height != ctx->w_height) {
            ctx->skipped++; /* a stream that changed its size mid-way */
            return 0;
        }
        rc = its_video_writer_write(ctx->w, img->data, (int)img->stride);
        if (rc < 0)
            fprintf(stderr, "its-infer: --draw: %s: %s\n", ctx->out, its_strerror(rc));
        return rc;
    }
    char name[1400];
    out_path(ctx, r->src, name, sizeof name);
    if (same_file(name, r->src->path)) {
        fprintf(stderr, "its-infer: --draw: %s: the input itself; choose another folder\n", name);
        return ITS_EINVAL;
    }
    rc = r->src->is_png ? its_image_save_png(img, name, err, sizeof err)
                        : its_image_save_jpeg(img, name, 90, err, sizeof err);
    if (rc < 0)
        fprintf(stderr, "its-infer: --draw: %s\n", err);
    return rc;
}

static int draw_end(void *vctx, const infer_source *src)
{
    draw_ctx *ctx = vctx;
    (void)src;
    if (!ctx->w)
        return 0;
    if (ctx->skipped)
        fprintf(stderr, "its-infer: --draw: %s: %ld frames of another size left out\n", ctx->out,
                ctx->skipped);
    int rc = its_video_writer_close(ctx->w);
    ctx->w = NULL;
    if (rc < 0)
        fprintf(stderr, "its-infer: --draw: %s: %s\n", ctx->out, its_strerror(rc));
    return rc;
}

static void draw_destroy(void *vctx)
{
    draw_ctx *ctx = vctx;
    its_video_writer_close(ctx->w);
    its_free(ctx);
}

int infer_stage_draw(const char *dir, infer_stage *st)
{
    memset(st, 0, sizeof *st);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "its-infer: --draw %s: %s\n", dir, strerror(errno));
        return ITS_EIO;
    }
    draw_ctx *ctx = its_calloc(ITS_MOD_APP, 1, sizeof *ctx);
    if (!ctx)
        return ITS_ENOMEM;
    snprintf(ctx->dir, sizeof ctx->dir, "%s", dir);
    st->name = "draw";
    st->needs_pixels = 1;
    st->begin_source = draw_begin;
    st->frame = draw_frame;
    st->end_source = draw_end;
    st->destroy = draw_destroy;
    st->ctx = ctx;
    return 0;
}

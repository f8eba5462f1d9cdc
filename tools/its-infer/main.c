/*
 * its-infer: run a detector on images and videos, print one JSON object per frame.
 *
 *     its-infer -m yolo11n.onnx [options] INPUT...
 *
 * Flow: inputs are read one after another (images: JPEG/PNG via src/media; anything else
 * via the FFmpeg reader of src/ingest), each frame is letterboxed straight into the next free
 * slot of the batch input tensor; a full batch (or the last, partial one) runs through the
 * engine and every frame's detections go through the stages (infer.h) in input order: an
 * optional tracker (--track), the JSON printer, the --draw writer.
 *
 * Exit status: 0 all inputs processed; 1 some input failed (missing, corrupt: each reported,
 * the others still processed); 2 usage, model or engine error (nothing processed).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "infer.h"
#include "its/alloc.h"
#include "its/cli.h"
#include "its/clock.h"
#include "its/counts.h"
#include "its/detect.h"
#include "its/engine.h"
#include "its/error.h"
#include "its/log.h"
#include "its/media.h"
#include "its/video.h"

#define PROG       "its-infer"
#define MAX_BATCH  64
#define MAX_STAGES 8
#define MAX_DETS   300

typedef struct options {
    const char *model;
    const char *draw_dir;
    const char *names_path;
    const char *device;
    const char *family;
    int batch;
    int threads;
    float conf, iou;
    int max_frames; /* per video, 0 = all */
    int rgb, bgr;   /* force the model's channel order */
    int in_w, in_h; /* --input-size, 0: the model's own */
    int track;      /* --track: ByteTrack + analytics (needs --scene) */
    const char *scene_path;
    infer_csv csv; /* --csv, --csv-interval, --csv-start */
} options;

/* One batch slot: the frame's identity, its letterbox, and (for --draw) its pixels. */
typedef struct slot {
    const infer_source *src;
    int64_t frame, pts_ns;
    int width, height;
    its_letterbox lb;
    its_image pixels; /* grown on demand, reused */
} slot;

typedef struct app {
    options o;
    its_model_t *model;
    its_engine_t *engine;
    its_detector_t *det;
    its_det_config cfg;
    float keep_conf; /* printed detections score at least this (--confidence) */
    char **names;
    int n_names;
    float *input;
    size_t in_floats;
    float *outputs[8];
    int n_outputs;
    slot slots[MAX_BATCH];
    int pending;
    infer_stage stages[MAX_STAGES];
    int n_stages;
    int keep_pixels;
    its_det dets[MAX_DETS];
    int failures;
} app;

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: its-infer -m MODEL.onnx [options] INPUT...\n"
            "Run a detector on images and videos and print one JSON object per image or video\n"
            "frame on stdout (docs/messages.md).\n"
            "\n"
            "  INPUT                 JPEG or PNG image, or a video file/URL (FFmpeg)\n"
            "  -m, --model FILE      ONNX detector (YOLOv8/YOLO11, YOLOv5, YOLOX, NanoDet)\n"
            "      --confidence X    keep detections scoring at least X (default %g, the\n"
            "                        detector's default, as itsd's engine.conf)\n"
            "  -i, --iou X           NMS IoU threshold (default %g)\n"
            "  -b, --batch N         frames per inference (default 1)\n"
            "  -t, --threads N       CPU threads (default 0 = all cores)\n"
            "  -d, --device NAME     engine backend: cpu (default) or cuda\n"
            "      --draw DIR        write annotated copies into DIR: an image under its own\n"
            "                        name, a video as DIR/NAME.mp4 (H.264)\n"
            "      --names FILE      class names, one per line (default: model metadata,\n"
            "                        else $ITS_SHARED_DIR/media/coco.names for 80 classes)\n"
            "      --family NAME     head: auto (default), ultralytics, yolov5, yolox, nanodet\n"
            "      --rgb | --bgr     override the model's input channel order\n"
            "      --max-frames N    frames per video (default all)\n"
            "      --input-size WxH  run the network at W x H (multiples of 32), e.g. 640x384\n"
            "                        for 16:9 video instead of the model's 640x640\n"
            "      --track           track objects in videos (ByteTrack); needs --scene. The\n"
            "                        tracker also takes detections from 0.1 up (weak ones\n"
            "                        continue tracks); those under --confidence are not printed\n"
            "  -s, --scene FILE      scene file (lines, zones, lanes, calibration); with\n"
            "                        --track, each video ends with an analytics JSON line\n"
            "      --csv FILE        with --track: interval counts per line, class and\n"
            "                        direction of each video into FILE (CSV, columns in\n"
            "                        docs/analytics.md)\n"
            "      --csv-interval T  interval of the CSV rows: 15m (default), 1h, 300s...\n"
            "      --csv-start TIME  the clock time of each video's start, e.g.\n"
            "                        2026-12-07T08:00:00Z (default: the epoch, so the\n"
            "                        intervals read as media time)\n"
            "  -h, --help            print this help and exit\n"
            "      --version         print the version and exit\n"
            "\n"
            "On a terminal, each video shows its progress on stderr (frame n/N, frames per\n"
            "second, time left); not when stderr is a file or a pipe.\n"
            "\n"
            "On a machine shared with other work, set OMP_WAIT_POLICY=passive: the CPU\n"
            "engine's threads then sleep at once when idle instead of spinning 200 us.\n"
            "\n"
            "Exit status (docs/cli.md):\n"
            "  0  every input processed\n"
            "  1  some input failed (missing, corrupt: each reported, the others processed)\n"
            "  2  bad usage, model or engine: nothing processed\n",
            (double)ITS_DET_CONF_DEFAULT, (double)ITS_DET_IOU_DEFAULT);
}

static int parse_args(int argc, char **argv, options *o)
{
    enum {
        OPT_DRAW = 256,
        OPT_NAMES,
        OPT_FAMILY,
        OPT_RGB,
        OPT_BGR,
        OPT_MAXF,
        OPT_TRACK,
        OPT_INSIZE,
        OPT_CONF,
        OPT_CSV,
        OPT_CSV_INTERVAL,
        OPT_CSV_START
    };
    static const struct option longopts[] = {
        {"model", required_argument, 0, 'm'},
        {"confidence", required_argument, 0, OPT_CONF},
        {"iou", required_argument, 0, 'i'},
        {"batch", required_argument, 0, 'b'},
        {"threads", required_argument, 0, 't'},
        {"device", required_argument, 0, 'd'},
        {"draw", required_argument, 0, OPT_DRAW},
        {"names", required_argument, 0, OPT_NAMES},
        {"family", required_argument, 0, OPT_FAMILY},
        {"rgb", no_argument, 0, OPT_RGB},
        {"bgr", no_argument, 0, OPT_BGR},
        {"max-frames", required_argument, 0, OPT_MAXF},
        {"track", no_argument, 0, OPT_TRACK},
        {"scene", required_argument, 0, 's'},
        {"input-size", required_argument, 0, OPT_INSIZE},
        {"csv", required_argument, 0, OPT_CSV},
        {"csv-interval", required_argument, 0, OPT_CSV_INTERVAL},
        {"csv-start", required_argument, 0, OPT_CSV_START},
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, ITS_CLI_OPT_VERSION},
        {0, 0, 0, 0},
    };
    memset(o, 0, sizeof *o);
    o->batch = 1;
    o->conf = -1; /* -1: the detector's defaults */
    o->iou = -1;
    o->device = "cpu";
    o->family = "auto";
    o->csv.interval_s = 900;
    int c;
    double v;
    while ((c = getopt_long(argc, argv, ITS_CLI_OPTSTRING("m:i:b:t:d:s:"), longopts, NULL)) != -1) {
        switch (c) {
        case 'm':
            o->model = optarg;
            break;
        case OPT_CONF:
            if (its_cli_double(PROG, "--confidence", optarg, 0, 1, &v) < 0)
                return -1;
            o->conf = (float)v;
            break;
        case 'i':
            if (its_cli_double(PROG, "--iou", optarg, 0.01, 1, &v) < 0)
                return -1;
            o->iou = (float)v;
            break;
        case 'b':
            if (its_cli_int(PROG, "--batch", optarg, 1, MAX_BATCH, &o->batch) < 0)
                return -1;
            break;
        case 't':
            if (its_cli_int(PROG, "--threads", optarg, 0, 1024, &o->threads) < 0)
                return -1;
            break;
        case 'd':
            o->device = optarg;
            break;
        case OPT_DRAW:
            o->draw_dir = optarg;
            break;
        case OPT_NAMES:
            o->names_path = optarg;
            break;
        case OPT_FAMILY:
            o->family = optarg;
            break;
        case OPT_RGB:
            o->rgb = 1;
            break;
        case OPT_BGR:
            o->bgr = 1;
            break;
        case OPT_MAXF:
            if (its_cli_int(PROG, "--max-frames", optarg, 0, INT_MAX, &o->max_frames) < 0)
                return -1;
            break;
        case OPT_TRACK:
            o->track = 1;
            break;
        case 's':
            o->scene_path = optarg;
            break;
        case OPT_INSIZE:
            if (its_model_parse_size(optarg, &o->in_w, &o->in_h) < 0) {
                its_cli_usage_error(PROG, "--input-size: '%s' is not WxH (e.g. 640x384)", optarg);
                return -1;
            }
            break;
        case OPT_CSV:
            o->csv.path = optarg;
            break;
        case OPT_CSV_INTERVAL:
            if (its_counts_parse_interval(optarg, &o->csv.interval_s) < 0 ||
                o->csv.interval_s % ITS_COUNTS_TOOL_BUCKET_S) {
                its_cli_usage_error(PROG, "--csv-interval: '%s' is not whole minutes (15m, 1h)",
                                    optarg);
                return -1;
            }
            break;
        case OPT_CSV_START:
            if (its_counts_parse_time(optarg, &o->csv.start_ns) < 0) {
                its_cli_usage_error(PROG,
                                    "--csv-start: '%s' is not a UTC time like "
                                    "2026-12-07T08:00:00Z",
                                    optarg);
                return -1;
            }
            break;
        case 'h':
            usage(stdout);
            exit(ITS_EXIT_OK);
        case ITS_CLI_OPT_VERSION:
            exit(its_cli_version(PROG));
        default:
            its_cli_bad_option(PROG, c, argv);
            return -1;
        }
    }
    if (o->track != (o->scene_path != NULL)) {
        its_cli_usage_error(PROG, "--track and --scene go together");
        return -1;
    }
    if (o->csv.path && !o->track) {
        its_cli_usage_error(PROG, "--csv needs --track and --scene");
        return -1;
    }
    if (!o->model) {
        its_cli_usage_error(PROG, "--model: no model given");
        return -1;
    }
    if (optind >= argc) {
        its_cli_usage_error(PROG, "no input given");
        return -1;
    }
    if (o->rgb && o->bgr) {
        its_cli_usage_error(PROG, "--rgb and --bgr exclude each other");
        return -1;
    }
    return 0;
}

static const char *meta_fn(const void *ctx, const char *key)
{
    return its_model_meta(ctx, key);
}

static void load_names(app *a)
{
    int n = ITS_EINVAL;
    if (a->o.names_path) {
        n = its_det_names_load(a->o.names_path, &a->names);
        if (n < 0)
            fprintf(stderr, "its-infer: --names %s: %s; using class ids\n", a->o.names_path,
                    its_strerror(n));
    } else {
        const char *meta = its_model_meta(a->model, "names");
        if (meta)
            n = its_det_names_parse_meta(meta, &a->names);
        /* No names in the model: an 80-class head is COCO; take darknet's coco.names from
         * the shared data ($ITS_SHARED_DIR, else the folder this build was configured with). */
        const char *dirs[2] = {getenv("ITS_SHARED_DIR"), ITS_DEFAULT_SHARED_DIR};
        for (int i = 0; i < 2 && n < 0 && a->cfg.num_classes == 80; i++) {
            char path[1024];
            if (!dirs[i])
                continue;
            snprintf(path, sizeof path, "%s/media/coco.names", dirs[i]);
            n = its_det_names_load(path, &a->names);
        }
    }
    a->n_names = n > 0 ? n : 0;
}

static int setup(app *a)
{
    char err[512];
    int rc = its_model_load(a->o.model, &a->model, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "its-infer: cannot load model %s: %s\n", a->o.model, err);
        return rc;
    }
    if (a->o.in_w &&
        (rc = its_model_set_input_size(a->model, a->o.in_w, a->o.in_h, err, sizeof err)) < 0) {
        fprintf(stderr, "its-infer: --input-size %dx%d: %s\n", a->o.in_w, a->o.in_h, err);
        return rc;
    }
    if (!its_engine_backend_available(a->o.device)) {
        fprintf(stderr, "its-infer: backend '%s' is not available here\n", a->o.device);
        return ITS_ENODEV;
    }
    its_engine_opts eo = {.backend = a->o.device, .threads = a->o.threads, .max_batch = a->o.batch};
    rc = its_engine_create(a->model, &eo, &a->engine, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "its-infer: cannot prepare %s on %s: %s\n", a->o.model, a->o.device, err);
        return rc;
    }
    its_det_model_info info = {.input = its_model_input(a->model, 0),
                               .n_outputs = its_model_n_outputs(a->model),
                               .meta = meta_fn,
                               .meta_ctx = a->model};
    if (info.n_outputs < 1 || info.n_outputs > 8) {
        fprintf(stderr, "its-infer: %s: %d outputs, not a detector\n", a->o.model, info.n_outputs);
        return ITS_EUNSUPPORTED;
    }
    for (int i = 0; i < info.n_outputs; i++)
        info.outputs[i] = its_model_output(a->model, i);
    its_det_family fam;
    if (its_det_family_parse(a->o.family, &fam) < 0) {
        fprintf(stderr, "its-infer: unknown --family '%s'\n", a->o.family);
        return ITS_EINVAL;
    }
    rc = its_det_config_init(&info, fam, &a->cfg, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "its-infer: %s: %s\n", a->o.model, err);
        return rc;
    }
    if (a->o.conf >= 0)
        a->cfg.conf = a->o.conf;
    a->keep_conf = a->cfg.conf;
    if (a->o.track && a->cfg.conf > (float)ITS_DET_TRACK_CONF_DEFAULT)
        a->cfg.conf = (float)ITS_DET_TRACK_CONF_DEFAULT; /* weak detections for the tracker */
    if (a->o.iou >= 0)
        a->cfg.iou = a->o.iou;
    a->cfg.max_dets = MAX_DETS;
    if (a->o.rgb)
        a->cfg.pre.bgr = 0;
    if (a->o.bgr)
        a->cfg.pre.bgr = 1;
    rc = its_detector_create(&a->cfg, &info, &a->det, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "its-infer: %s: %s\n", a->o.model, err);
        return rc;
    }
    a->n_outputs = info.n_outputs;
    a->in_floats = its_detector_input_floats(a->det);
    a->input = its_malloc(ITS_MOD_APP, a->in_floats * a->o.batch * sizeof(float));
    if (!a->input)
        return ITS_ENOMEM;
    for (int i = 0; i < a->n_outputs; i++) {
        a->outputs[i] = its_malloc(ITS_MOD_APP, its_detector_output_floats(a->det, i) * a->o.batch *
                                                    sizeof(float));
        if (!a->outputs[i])
            return ITS_ENOMEM;
    }
    load_names(a);
    its_logi("infer", NULL, "%s: %s head, %d classes, %dx%d %s, backend %s, batch %d", a->o.model,
             its_det_family_name(a->cfg.family), a->cfg.num_classes, a->cfg.pre.width,
             a->cfg.pre.height, a->cfg.pre.bgr ? "BGR" : "RGB", its_engine_backend_name(a->engine),
             a->o.batch);
    return 0;
}

/* Run the pending slots through the engine and the stages. */
static int flush(app *a)
{
    if (a->pending == 0)
        return 0;
    int rc = its_engine_run(a->engine, a->pending, a->input, a->outputs);
    if (rc < 0) {
        /* The batch's frames are lost (and reported); the slots are free again. */
        fprintf(stderr, "its-infer: inference of %d frame(s) failed: %s\n", a->pending,
                its_strerror(rc));
        a->pending = 0;
        return rc;
    }
    for (int b = 0; b < a->pending; b++) {
        slot *s = &a->slots[b];
        int n = its_detector_decode(a->det, (const float *const *)a->outputs, b, &s->lb, a->dets,
                                    MAX_DETS);
        if (n < 0) {
            fprintf(stderr, "its-infer: %s frame %lld: decode failed: %s\n", s->src->path,
                    (long long)s->frame, its_strerror(n));
            a->failures++;
            continue;
        }
        infer_result r = {.src = s->src,
                          .frame = s->frame,
                          .pts_ns = s->pts_ns,
                          .width = s->width,
                          .height = s->height,
                          .dets = a->dets,
                          .n = n,
                          .labels = (const char *const *)a->names,
                          .n_labels = a->n_names,
                          .image = a->keep_pixels ? &s->pixels : NULL};
        for (int i = 0; i < a->n_stages; i++) {
            rc = a->stages[i].frame(a->stages[i].ctx, &r);
            if (rc < 0)
                a->failures++;
        }
    }
    a->pending = 0;
    return 0;
}

/* Letterbox one frame into the next slot; run the batch when it is full. */
static int add_frame(app *a, const infer_source *src, int64_t frame, int64_t pts_ns,
                     const uint8_t *px, int w, int h, int stride, its_pixfmt fmt)
{
    slot *s = &a->slots[a->pending];
    float *dst = a->input + a->in_floats * a->pending;
    int rc = its_det_letterbox_raw(&a->cfg.pre, px, w, h, stride, fmt, dst, &s->lb);
    if (rc < 0)
        return rc;
    s->src = src;
    s->frame = frame;
    s->pts_ns = pts_ns;
    s->width = w;
    s->height = h;
    if (a->keep_pixels) {
        if (s->pixels.width != w || s->pixels.height != h) {
            its_image_free(&s->pixels);
            rc = its_image_alloc(&s->pixels, w, h, fmt);
            if (rc < 0)
                return rc;
        }
        s->pixels.fmt = fmt;
        for (int y = 0; y < h; y++)
            memcpy(s->pixels.data + (size_t)y * s->pixels.stride, px + (size_t)y * stride,
                   (size_t)w * 3);
    }
    if (++a->pending == a->o.batch)
        return flush(a);
    return 0;
}

/* Progress of a video on a terminal: "NAME: frame n/N, F fps, m:ss left", redrawn in place
 * at most 4 times a second; nothing when stderr is not a terminal. */
typedef struct progress {
    int on;
    const char *name;
    int64_t total;
    uint64_t t0, last;
} progress;

static void progress_show(progress *p, int64_t n, int final)
{
    uint64_t now = its_now_ns();
    if (!p->on || (!final && now - p->last < 250 * ITS_NS_PER_MS))
        return;
    p->last = now;
    double el = (double)(now - p->t0) / 1e9, fps = el > 0 ? (double)n / el : 0;
    char line[256], total[32] = "", left[48] = "";
    if (p->total > 0) {
        snprintf(total, sizeof total, "/%lld", (long long)p->total);
        if (fps > 0 && !final) {
            long s = (long)((double)(p->total - n) / fps + 0.5);
            snprintf(left, sizeof left, ", %ld:%02ld left", s / 60, s % 60);
        }
    }
    snprintf(line, sizeof line, "%s: frame %lld%s, %.1f fps%s", p->name, (long long)n, total, fps,
             left);
    fprintf(stderr, "\r%s\033[K%s", line, final ? "\n" : "");
    fflush(stderr);
}

static int is_image_file(const char *path, int *exists, int *png)
{
    if (strstr(path, "://")) { /* rtsp://, http://...: a stream for FFmpeg */
        *exists = 1;
        return 0;
    }
    FILE *f = fopen(path, "rb");
    *exists = f != NULL || errno != ENOENT;
    if (!f)
        return 0;
    uint8_t head[8];
    size_t n = fread(head, 1, sizeof head, f);
    fclose(f);
    its_image_format kind = its_image_probe(head, n);
    *png = kind == ITS_IMG_PNG;
    return kind != ITS_IMG_UNKNOWN;
}

static int run_image(app *a, const infer_source *src)
{
    its_image img;
    char err[512];
    its_pixfmt fmt = a->cfg.pre.bgr ? ITS_PIX_BGR24 : ITS_PIX_RGB24;
    its_image_opts io = {.fmt = fmt};
    int rc = its_image_load(src->path, &io, &img, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "its-infer: %s\n", err);
        return rc;
    }
    rc = add_frame(a, src, 0, 0, img.data, img.width, img.height, img.stride, img.fmt);
    its_image_free(&img);
    return rc;
}

static int run_video(app *a, infer_source *src)
{
    char err[512];
    its_video_opts vo = {.pixfmt = a->cfg.pre.bgr ? ITS_PIX_BGR24 : ITS_PIX_RGB24};
    its_video_t *v;
    int rc = its_video_open(src->path, &vo, &v, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "its-infer: %s\n", err);
        return rc;
    }
    its_video_info info;
    if (its_video_get_info(v, &info) == 0) {
        src->fps = info.fps;
        src->n_frames = info.n_frames > 0 ? info.n_frames
                        : info.duration_s > 0 && info.fps > 0
                            ? (int64_t)(info.duration_s * info.fps + 0.5)
                            : 0;
    }
    if (a->o.max_frames && (!src->n_frames || src->n_frames > a->o.max_frames))
        src->n_frames = a->o.max_frames;
    const char *base = strrchr(src->path, '/');
    progress pg = {.on = isatty(STDERR_FILENO),
                   .name = base ? base + 1 : src->path,
                   .total = src->n_frames,
                   .t0 = its_now_ns()};
    its_video_frame f;
    int64_t count = 0;
    while ((rc = its_video_read(v, &f)) == 1) {
        count++;
        progress_show(&pg, count, 0);
        rc = add_frame(a, src, (int64_t)f.index, f.pts_ns, f.data, f.width, f.height, f.stride,
                       vo.pixfmt);
        if (rc < 0)
            break;
        if (a->o.max_frames && count >= a->o.max_frames)
            break;
    }
    if ((rc == ITS_EEOF || rc == 1) && count == 0) {
        /* FFmpeg opens almost anything as some format; no frame means nothing was decoded */
        fprintf(stderr, "its-infer: %s: no decodable image or video frame in this input\n",
                src->path);
        rc = ITS_EDECODE;
    } else if (rc == ITS_EEOF || rc == 1)
        rc = 0;
    else if (rc < 0)
        fprintf(stderr, "its-infer: %s: %s\n", src->path,
                its_video_error(v)[0] ? its_video_error(v) : its_strerror(rc));
    /* The stages see all of this video's frames before its end_source. */
    int frc = flush(a);
    if (count)
        progress_show(&pg, count, 1);
    its_video_close(v);
    return rc < 0 ? rc : frc;
}

static void teardown(app *a)
{
    for (int i = 0; i < a->n_stages; i++)
        if (a->stages[i].destroy)
            a->stages[i].destroy(a->stages[i].ctx);
    for (int i = 0; i < MAX_BATCH; i++)
        its_image_free(&a->slots[i].pixels);
    for (int i = 0; i < a->n_outputs; i++)
        its_free(a->outputs[i]);
    its_free(a->input);
    its_det_names_free(a->names);
    its_detector_destroy(a->det);
    its_engine_destroy(a->engine);
    its_model_free(a->model);
}

int main(int argc, char **argv)
{
    static app a;
    if (parse_args(argc, argv, &a.o) < 0)
        return 2;
    its_log_set_level(ITS_LOG_WARN);
    if (access(a.o.model, R_OK) != 0) {
        fprintf(stderr, "its-infer: cannot read model %s: %s\n", a.o.model, strerror(errno));
        return 2;
    }
    int rc = setup(&a);
    if (rc < 0) {
        teardown(&a);
        return 2;
    }
    /* Stages in order: --track, JSON, --draw. */
    if (a.o.track) {
        if (infer_stage_track(a.o.scene_path, a.keep_conf, stdout, &a.o.csv,
                              &a.stages[a.n_stages]) < 0) {
            teardown(&a);
            return 2;
        }
        a.n_stages++;
    }
    infer_stage_json(stdout, &a.stages[a.n_stages++]);
    if (a.o.draw_dir) {
        if (infer_stage_draw(a.o.draw_dir, &a.stages[a.n_stages]) < 0) {
            teardown(&a);
            return 2;
        }
        a.n_stages++;
    }
    for (int i = 0; i < a.n_stages; i++)
        a.keep_pixels |= a.stages[i].needs_pixels;

    infer_source *srcs = its_calloc(ITS_MOD_APP, (size_t)(argc - optind), sizeof *srcs);
    if (!srcs) {
        teardown(&a);
        return 2;
    }
    for (int i = optind; i < argc; i++) {
        infer_source *src = &srcs[i - optind];
        src->path = argv[i];
        int exists, png = 0;
        if (is_image_file(src->path, &exists, &png)) {
            src->is_png = png;
            rc = run_image(&a, src);
        } else if (!exists) {
            fprintf(stderr, "its-infer: %s: no such file\n", src->path);
            rc = ITS_ENOENT;
        } else {
            /* A video is a stream for the stages: begin, its frames in order, end. Images
             * still pending in the batch are flushed first so nothing interleaves. */
            src->is_video = 1;
            rc = flush(&a);
            for (int k = 0; rc == 0 && k < a.n_stages; k++)
                if (a.stages[k].begin_source)
                    a.stages[k].begin_source(a.stages[k].ctx, src);
            if (rc == 0)
                rc = run_video(&a, src);
            for (int k = 0; k < a.n_stages; k++)
                if (a.stages[k].end_source)
                    a.stages[k].end_source(a.stages[k].ctx, src);
        }
        if (rc < 0)
            a.failures++;
    }
    if (flush(&a) < 0)
        a.failures++;
    fflush(stdout);
    its_free(srcs);
    teardown(&a);
    return a.failures ? 1 : 0;
}

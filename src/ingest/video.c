/*
 * The FFmpeg video reader behind its/video.h.
 *
 * Blocking I/O in libavformat is bounded by an interrupt callback that FFmpeg polls while it
 * waits: it fires when the reader is interrupted (shutdown) or when the current operation has
 * run past its deadline (a stalled camera). Each open/read sets the deadline afresh, so a
 * slow but living stream is fine and a dead one returns ITS_ETIMEDOUT within about
 * timeout_ms.
 *
 * Decoding errors are expected on real cameras (packet loss, a truncated upload), so a packet
 * that the decoder rejects is counted and skipped rather than ending the stream. Only a long
 * run of them, or a long run of packets with no picture at all, makes the input undecodable.
 *
 * FFmpeg's own log lines go to our log at debug level: the reader counts the errors and the
 * source above it logs once per incident with the camera's name, which is what an operator
 * needs, rather than one line per damaged macroblock.
 */
#include "its/video.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/hwcontext.h>
/* hwcontext_cuda.h wants cuda.h for two handle types; declared here instead (cuda.h's
 * definitions), so ingest builds without the CUDA toolkit */
#define CUDA_VERSION 11000
typedef struct CUctx_st *CUcontext;
typedef struct CUstream_st *CUstream;
#include <libavutil/hwcontext_cuda.h>
#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "its/alloc.h"
#include "its/clock.h"
#include "its/core.h"
#include "its/error.h"
#include "its/log.h"
#include "its/url.h"

#define DEFAULT_MAX_DIM    4096
#define DEFAULT_TIMEOUT_MS 5000
#define DEFAULT_MAX_BAD    200
/* Packets without any decoded picture, as a multiple of max_bad_packets: long GOPs on a
 * stream joined mid-way legitimately give a few hundred packets before the first keyframe. */
#define NO_FRAME_FACTOR 4
/* NVDEC surfaces beyond the decoder's reference frames: the picture being copied out while
 * the next ones decode. The reader releases each picture before it asks for the next. */
#define NVDEC_EXTRA_SURFACES 4

struct its_video {
    AVFormatContext *fmt;
    AVCodecContext *dec;
    AVPacket *pkt;
    AVFrame *frame;
    AVFrame *sw; /* NVDEC: the picture copied to the host (allocated once per size) */
    int nvdec;   /* decoding on the GPU (holds one of the process's NVDEC sessions) */
    int hw_lost; /* NVDEC: the GPU decoder did not open for this stream (get_format) */
    struct SwsContext *sws;
    int stream;
    int network;
    int eof_sent;
    its_video_opts opts;
    char url[512];
    char err[640];

    /* interrupt state, read by FFmpeg's callback on the reader's thread */
    atomic_int interrupted;
    atomic_int *cancel; /* the caller's flag, or NULL */
    uint64_t deadline_ns;
    int timed_out;

    /* conversion state: the key of the current sws context */
    int src_w, src_h, src_fmt, src_cs, src_range;
    int out_w, out_h;
    int last_w, last_h; /* last decoded source size, for size_changes */

    uint8_t *buf; /* its_video_read's frame buffer */
    size_t buf_cap;

    int64_t start_pts;
    int64_t last_pts;
    int64_t period_pts; /* one frame in stream time base units, 0 if unknown */
    uint64_t index;
    unsigned consecutive_bad;
    unsigned since_frame;
    its_video_stats stats;
};

static void ff_log(void *avcl, int level, const char *fmt, va_list ap)
{
    if (level > AV_LOG_ERROR || its_log_get_level() > ITS_LOG_DEBUG)
        return;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = 0;
    if (n)
        its_logd("ffmpeg", NULL, "%s", line);
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void global_init(void)
{
    av_log_set_callback(ff_log);
    avformat_network_init();
}

/* ---- NVDEC through FFmpeg's CUDA hwaccel (docs/decode.md) ---- */

static pthread_mutex_t hw_mu = PTHREAD_MUTEX_INITIALIZER;
static AVBufferRef *hw_dev; /* the process's CUDA device context, made once; never freed */
static int hw_tried;        /* made or failed: a failure is not retried (no driver, no GPU) */
static char hw_why[200];
static atomic_int nv_sessions, nv_limit;

static const char *const fallback_names[] = {"", "no_device", "codec", "sessions", "open_failed"};
static const char *const decode_names[] = {"cpu", "auto", "nvdec"}; /* its_video_decode */

const char *its_video_fallback_name(its_video_fallback f)
{
    return (unsigned)f < ITS_ARRAY_LEN(fallback_names) ? fallback_names[f] : "";
}

const char *its_video_decode_name(its_video_decode d)
{
    return (unsigned)d < ITS_ARRAY_LEN(decode_names) ? decode_names[d] : "?";
}

int its_video_parse_decode(const char *name, its_video_decode *out)
{
    for (unsigned i = 0; name && i < ITS_ARRAY_LEN(decode_names); i++)
        if (strcmp(name, decode_names[i]) == 0) {
            *out = (its_video_decode)i;
            return 0;
        }
    return ITS_EINVAL;
}

void its_video_set_nvdec_limit(int sessions)
{
    atomic_store(&nv_limit, sessions > 0 ? sessions : 0);
}

int its_video_nvdec_sessions(void)
{
    return atomic_load(&nv_sessions);
}

/* FFmpeg's CUDA device around the primary context of GPU 0, taken from the driver (libcuda,
 * cuda.h's ABI: int status, 0 = success). The primary context is the one the CUDA runtime,
 * and so the CUDA engine, uses: every decoder session and the engine share one context (no
 * context switches, device memory valid in both). Wrapped rather than created with
 * av_hwdevice_ctx_create's primary_ctx option, which refuses a primary context that the
 * engine already made active with other scheduling flags than FFmpeg's. The retained
 * context is kept for the process's life. NULL with the reason in why. */
static AVBufferRef *wrap_primary_context(char *why, size_t n)
{
    void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(why, n, "no CUDA device (no NVIDIA driver: %.120s)", dlerror());
        return NULL;
    }
    int (*init)(unsigned) = (int (*)(unsigned))dlsym(lib, "cuInit");
    int (*get)(int *, int) = (int (*)(int *, int))dlsym(lib, "cuDeviceGet");
    int (*retain)(CUcontext *, int) =
        (int (*)(CUcontext *, int))dlsym(lib, "cuDevicePrimaryCtxRetain");
    int (*release)(int) = (int (*)(int))dlsym(lib, "cuDevicePrimaryCtxRelease");
    int dev = 0, rc;
    CUcontext ctx = NULL;
    if (!init || !get || !retain || !release) {
        snprintf(why, n, "no CUDA device (libcuda lacks an entry point)");
        dlclose(lib);
        return NULL;
    }
    if ((rc = init(0)) != 0 || (rc = get(&dev, 0)) != 0) {
        snprintf(why, n, "no CUDA device (cuInit/cuDeviceGet: CUDA error %d: no GPU)", rc);
        dlclose(lib);
        return NULL;
    }
    if ((rc = retain(&ctx, dev)) != 0) {
        snprintf(why, n, "no CUDA device (cuDevicePrimaryCtxRetain: CUDA error %d)", rc);
        dlclose(lib);
        return NULL;
    }
    AVBufferRef *ref = av_hwdevice_ctx_alloc(AV_HWDEVICE_TYPE_CUDA);
    if (ref) {
        AVCUDADeviceContext *hc = ((AVHWDeviceContext *)ref->data)->hwctx;
        hc->cuda_ctx = ctx;
        hc->stream = NULL; /* the context's default stream */
        if ((rc = av_hwdevice_ctx_init(ref)) < 0) {
            char reason[128];
            av_strerror(rc, reason, sizeof reason);
            snprintf(why, n, "no CUDA device (FFmpeg's CUDA device: %s)", reason);
            av_buffer_unref(&ref);
        }
    } else {
        snprintf(why, n, "out of memory");
    }
    if (!ref) {
        release(dev);
        dlclose(lib);
    }
    return ref; /* libcuda stays loaded while the context lives */
}

/* A reference to the process's CUDA device, or NULL with the reason in why. */
static AVBufferRef *hw_device(char *why, size_t n)
{
    pthread_mutex_lock(&hw_mu);
    if (!hw_tried) {
        hw_tried = 1;
        hw_dev = wrap_primary_context(hw_why, sizeof hw_why);
    }
    AVBufferRef *ref = hw_dev ? av_buffer_ref(hw_dev) : NULL;
    if (!ref)
        snprintf(why, n, "%s", hw_dev ? "out of memory" : hw_why);
    pthread_mutex_unlock(&hw_mu);
    return ref;
}

static int session_take(void)
{
    int cur = atomic_load(&nv_sessions);
    for (;;) {
        int lim = atomic_load(&nv_limit);
        if (lim > 0 && cur >= lim)
            return 0;
        if (atomic_compare_exchange_weak(&nv_sessions, &cur, cur + 1))
            return 1;
    }
}

static void session_drop(its_video_t *v)
{
    if (v->nvdec) {
        v->nvdec = 0;
        v->stats.nvdec = 0;
        atomic_fetch_sub(&nv_sessions, 1);
    }
}

/* libavcodec offers CUDA first when the hwaccel could open for the stream; when it could not
 * (no libnvcuvid, a profile or size NVDEC lacks) it asks again without it: then the software
 * format, and the reader notes the loss (AUTO: a fallback; NVDEC: an error at the read). */
static enum AVPixelFormat get_format(AVCodecContext *ctx, const enum AVPixelFormat *fmts)
{
    its_video_t *v = ctx->opaque;
    const enum AVPixelFormat *p;
    for (p = fmts; *p != AV_PIX_FMT_NONE; p++)
        if (*p == AV_PIX_FMT_CUDA && v->nvdec)
            return AV_PIX_FMT_CUDA;
    if (v->nvdec) {
        v->hw_lost = 1;
        v->stats.fallback = ITS_VIDEO_FALLBACK_OPEN;
        session_drop(v);
    }
    for (p = fmts; *p != AV_PIX_FMT_NONE; p++) {
        const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(*p);
        if (d && !(d->flags & AV_PIX_FMT_FLAG_HWACCEL))
            return *p;
    }
    return AV_PIX_FMT_NONE;
}

/* Set the decoder up for NVDEC: ITS_VIDEO_FALLBACK_NONE, or why not (reason in why). */
static its_video_fallback hw_attach(its_video_t *v, enum AVCodecID id, char *why, size_t n)
{
    if (id != AV_CODEC_ID_H264 && id != AV_CODEC_ID_HEVC) {
        snprintf(why, n, "NVDEC decodes H.264 and HEVC, not %s", avcodec_get_name(id));
        return ITS_VIDEO_FALLBACK_CODEC;
    }
    AVBufferRef *dev = hw_device(why, n);
    if (!dev)
        return ITS_VIDEO_FALLBACK_NO_DEVICE;
    if (!session_take()) {
        av_buffer_unref(&dev);
        snprintf(why, n, "all %d NVDEC sessions in use", atomic_load(&nv_limit));
        return ITS_VIDEO_FALLBACK_SESSIONS;
    }
    v->nvdec = 1;
    v->stats.nvdec = 1;
    v->dec->hw_device_ctx = dev;
    v->dec->get_format = get_format;
    v->dec->opaque = v;
    v->dec->extra_hw_frames = NVDEC_EXTRA_SURFACES;
    v->dec->thread_count = 1; /* the GPU decodes; frame threads would only add latency */
    return ITS_VIDEO_FALLBACK_NONE;
}

static int interrupt_cb(void *opaque)
{
    its_video_t *v = opaque;
    if (atomic_load_explicit(&v->interrupted, memory_order_relaxed) ||
        (v->cancel && atomic_load_explicit(v->cancel, memory_order_relaxed))) {
        atomic_store_explicit(&v->interrupted, 1, memory_order_relaxed);
        return 1;
    }
    if (v->deadline_ns && its_now_ns() > v->deadline_ns) {
        v->timed_out = 1;
        return 1;
    }
    return 0;
}

static void arm(its_video_t *v)
{
    v->timed_out = 0;
    v->deadline_ns = its_now_ns() + (uint64_t)v->opts.timeout_ms * ITS_NS_PER_MS;
}

static int set_err(its_video_t *v, int code, const char *what, int averr)
{
    char reason[128];
    if (averr)
        av_strerror(averr, reason, sizeof reason);
    else
        snprintf(reason, sizeof reason, "%s", its_strerror(code));
    snprintf(v->err, sizeof v->err, "%.400s: %.80s: %.127s", v->url, what, reason);
    return code;
}

/* Map an FFmpeg error from I/O to our codes, telling interrupts from timeouts. */
static int map_io_error(its_video_t *v, int averr)
{
    /* AVERROR_EXIT comes only from our callback: stopped, or the deadline (a stall). It can
     * surface on a later call than the one that timed out (avio keeps the error), so the
     * timed_out flag alone cannot tell. */
    if (averr == AVERROR_EXIT)
        return atomic_load(&v->interrupted) ? ITS_ECLOSED : ITS_ETIMEDOUT;
    /* Our deadline fired during this call: whatever the demuxer made of the interrupted read
     * (EINTR, or EIO from a container demuxer cut off mid-element), the camera stalled. */
    if (v->timed_out)
        return ITS_ETIMEDOUT;
    if (averr == AVERROR(ETIMEDOUT))
        return ITS_ETIMEDOUT;
    if (averr == AVERROR(ENOENT))
        return ITS_ENOENT;
    if (averr == AVERROR(ENOMEM))
        return ITS_ENOMEM;
    if (averr == AVERROR_INVALIDDATA || averr == AVERROR_DECODER_NOT_FOUND ||
        averr == AVERROR_DEMUXER_NOT_FOUND || averr == AVERROR_STREAM_NOT_FOUND)
        return ITS_EDECODE;
    return v->network ? ITS_ENET : ITS_EIO;
}

static int is_network_url(const char *url)
{
    const char *p = strstr(url, "://");
    if (!p)
        return 0;
    return !(p - url == 4 && strncmp(url, "file", 4) == 0);
}

int its_video_open(const char *url, const its_video_opts *opts, its_video_t **out, char *err,
                   size_t errlen)
{
    pthread_once(&init_once, global_init);
    *out = NULL;
    if (!url || !*url) {
        if (err && errlen)
            snprintf(err, errlen, "video: empty url");
        return ITS_EINVAL;
    }
    its_video_t *v = its_calloc(ITS_MOD_INGEST, 1, sizeof *v);
    if (!v) {
        if (err && errlen)
            snprintf(err, errlen, "video: out of memory");
        return ITS_ENOMEM;
    }
    if (opts)
        v->opts = *opts;
    if (v->opts.max_width <= 0)
        v->opts.max_width = DEFAULT_MAX_DIM;
    if (v->opts.max_height <= 0)
        v->opts.max_height = DEFAULT_MAX_DIM;
    if (v->opts.timeout_ms <= 0)
        v->opts.timeout_ms = DEFAULT_TIMEOUT_MS;
    if (v->opts.threads <= 0)
        v->opts.threads = 1;
    if (v->opts.max_bad_packets <= 0)
        v->opts.max_bad_packets = DEFAULT_MAX_BAD;
    v->opts.format = NULL; /* not kept: the caller's string may go away */
    v->cancel = v->opts.cancel;
    its_url_scrub(url, v->url, sizeof v->url); /* messages only: never credentials */
    v->network = is_network_url(url);
    v->stream = -1;
    v->start_pts = AV_NOPTS_VALUE;
    v->last_pts = AV_NOPTS_VALUE;
    v->src_fmt = -1;
    atomic_init(&v->interrupted, 0);

    int rc = 0, ret;
    AVDictionary *dict = NULL;
    v->fmt = avformat_alloc_context();
    v->pkt = av_packet_alloc();
    v->frame = av_frame_alloc();
    if (!v->fmt || !v->pkt || !v->frame) {
        rc = set_err(v, ITS_ENOMEM, "open", 0);
        goto fail;
    }
    v->fmt->interrupt_callback.callback = interrupt_cb;
    v->fmt->interrupt_callback.opaque = v;
    if (strncmp(url, "rtsp://", 7) == 0 || strncmp(url, "rtsps://", 8) == 0)
        av_dict_set(&dict, "rtsp_transport", v->opts.rtsp_udp ? "udp" : "tcp", 0);
    const AVInputFormat *ifmt = NULL;
    if (opts && opts->format) {
        ifmt = av_find_input_format(opts->format);
        if (!ifmt) {
            rc = set_err(v, ITS_EINVAL, "open", 0);
            snprintf(v->err, sizeof v->err, "%.400s: unknown input format '%.64s'", v->url,
                     opts->format);
            goto fail;
        }
    }
    arm(v);
    ret = avformat_open_input(&v->fmt, url, ifmt, &dict);
    if (ret < 0) {
        /* avformat_open_input frees the context on failure */
        rc = set_err(v, map_io_error(v, ret), "cannot open", ret);
        goto fail;
    }
    arm(v);
    ret = avformat_find_stream_info(v->fmt, NULL);
    if (ret < 0) {
        rc = set_err(v, map_io_error(v, ret), "cannot read stream info", ret);
        goto fail;
    }
    const AVCodec *codec = NULL;
    ret = av_find_best_stream(v->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (ret < 0) {
        rc = set_err(v, ITS_EDECODE, "no decodable video stream", ret);
        goto fail;
    }
    v->stream = ret;
    for (unsigned i = 0; i < v->fmt->nb_streams; i++)
        if ((int)i != v->stream)
            v->fmt->streams[i]->discard = AVDISCARD_ALL;
    AVStream *st = v->fmt->streams[v->stream];
    /* NVDEC first where asked for (a second round on the CPU if its decoder does not open) */
    for (int round = 0;; round++) {
        int want_hw = v->opts.decode != ITS_VIDEO_DECODE_CPU && round == 0;
        v->dec = avcodec_alloc_context3(codec);
        if (!v->dec) {
            rc = set_err(v, ITS_ENOMEM, "decoder", 0);
            goto fail;
        }
        ret = avcodec_parameters_to_context(v->dec, st->codecpar);
        if (ret < 0) {
            rc = set_err(v, ITS_EDECODE, "decoder parameters", ret);
            goto fail;
        }
        v->dec->thread_count = v->opts.threads;
        v->dec->pkt_timebase = st->time_base;
        if (want_hw) {
            char why[256];
            its_video_fallback fb = hw_attach(v, codec->id, why, sizeof why);
            if (fb != ITS_VIDEO_FALLBACK_NONE && v->opts.decode == ITS_VIDEO_DECODE_NVDEC) {
                snprintf(v->err, sizeof v->err, "%.400s: decode nvdec: %.200s", v->url, why);
                rc = ITS_EUNSUPPORTED;
                goto fail;
            }
            v->stats.fallback = fb;
        }
        ret = avcodec_open2(v->dec, codec, NULL);
        if (ret >= 0)
            break;
        if (!v->nvdec) {
            rc = set_err(v, ITS_EDECODE, "cannot open decoder", ret);
            goto fail;
        }
        session_drop(v);
        avcodec_free_context(&v->dec);
        if (v->opts.decode == ITS_VIDEO_DECODE_NVDEC) {
            rc = set_err(v, ITS_EUNSUPPORTED, "decode nvdec: the GPU decoder did not open", ret);
            goto fail;
        }
        v->stats.fallback = ITS_VIDEO_FALLBACK_OPEN;
    }
    AVRational fr = av_guess_frame_rate(v->fmt, st, NULL);
    if (fr.num > 0 && fr.den > 0)
        v->period_pts = av_rescale_q(1, av_inv_q(fr), st->time_base);
    if (st->start_time != AV_NOPTS_VALUE)
        v->start_pts = st->start_time;
    v->deadline_ns = 0;
    av_dict_free(&dict);
    *out = v;
    return 0;

fail:
    av_dict_free(&dict);
    if (err && errlen)
        snprintf(err, errlen, "%s", v->err);
    its_video_close(v);
    return rc;
}

void its_video_close(its_video_t *v)
{
    if (!v)
        return;
    sws_freeContext(v->sws);
    avcodec_free_context(&v->dec);
    session_drop(v);
    av_frame_free(&v->sw);
    avformat_close_input(&v->fmt);
    av_frame_free(&v->frame);
    av_packet_free(&v->pkt);
    its_free(v->buf);
    its_free(v);
}

void its_video_interrupt(its_video_t *v)
{
    if (v)
        atomic_store(&v->interrupted, 1);
}

/* Deprecated "J" formats mean full-range YUV; swscale wants the plain format plus a range. */
static enum AVPixelFormat unjay(enum AVPixelFormat f, int *full)
{
    switch (f) {
    case AV_PIX_FMT_YUVJ420P:
        *full = 1;
        return AV_PIX_FMT_YUV420P;
    case AV_PIX_FMT_YUVJ422P:
        *full = 1;
        return AV_PIX_FMT_YUV422P;
    case AV_PIX_FMT_YUVJ444P:
        *full = 1;
        return AV_PIX_FMT_YUV444P;
    case AV_PIX_FMT_YUVJ440P:
        *full = 1;
        return AV_PIX_FMT_YUV440P;
    default:
        return f;
    }
}

static void fit(int w, int h, int max_w, int max_h, int *ow, int *oh)
{
    if (w <= max_w && h <= max_h) {
        *ow = w;
        *oh = h;
        return;
    }
    double s = (double)max_w / w;
    if ((double)max_h / h < s)
        s = (double)max_h / h;
    *ow = (int)(w * s);
    *oh = (int)(h * s);
    if (*ow < 1)
        *ow = 1;
    if (*oh < 1)
        *oh = 1;
}

/* (Re)build the swscale context when the decoded frame's geometry or format changes. */
static int prepare_sws(its_video_t *v, const AVFrame *fr)
{
    int full = fr->color_range == AVCOL_RANGE_JPEG;
    enum AVPixelFormat sf = unjay((enum AVPixelFormat)fr->format, &full);
    int cs = fr->colorspace;
    if (v->sws && fr->width == v->src_w && fr->height == v->src_h && (int)sf == v->src_fmt &&
        cs == v->src_cs && full == v->src_range)
        return 0;
    if (v->last_w && (fr->width != v->last_w || fr->height != v->last_h))
        v->stats.size_changes++;
    v->last_w = fr->width;
    v->last_h = fr->height;
    int ow, oh;
    fit(fr->width, fr->height, v->opts.max_width, v->opts.max_height, &ow, &oh);
    enum AVPixelFormat df = v->opts.pixfmt == ITS_PIX_BGR24 ? AV_PIX_FMT_BGR24 : AV_PIX_FMT_RGB24;
    sws_freeContext(v->sws);
    v->sws = sws_getContext(fr->width, fr->height, sf, ow, oh, df, SWS_BILINEAR, NULL, NULL, NULL);
    if (!v->sws) {
        v->src_fmt = -1;
        return set_err(v, ITS_EDECODE, "unsupported pixel format",
                       AVERROR(EINVAL)); /* counted by the caller */
    }
    int sws_cs = SWS_CS_DEFAULT;
    if (cs == AVCOL_SPC_BT709)
        sws_cs = SWS_CS_ITU709;
    else if (cs == AVCOL_SPC_BT2020_NCL || cs == AVCOL_SPC_BT2020_CL)
        sws_cs = SWS_CS_BT2020;
    const int *coef = sws_getCoefficients(sws_cs);
    /* Conversions from RGB-like inputs ignore this (and report an error we can ignore). */
    sws_setColorspaceDetails(v->sws, coef, full, coef, 1, 0, 1 << 16, 1 << 16);
    v->src_w = fr->width;
    v->src_h = fr->height;
    v->src_fmt = sf;
    v->src_cs = cs;
    v->src_range = full;
    v->out_w = ow;
    v->out_h = oh;
    return 0;
}

static void stamp(its_video_t *v, const AVFrame *fr, its_video_frame *f)
{
    AVStream *st = v->fmt->streams[v->stream];
    int64_t pts = fr->best_effort_timestamp;
    if (pts == AV_NOPTS_VALUE)
        pts = v->last_pts == AV_NOPTS_VALUE ? 0 : v->last_pts + v->period_pts;
    if (v->start_pts == AV_NOPTS_VALUE)
        v->start_pts = pts;
    v->last_pts = pts;
    f->pts_ns = av_rescale_q(pts - v->start_pts, st->time_base, (AVRational){1, 1000000000});
    f->index = v->index++;
}

/* The compressed packet to the caller's tap, on the frames' clock. */
static void tap_packet(its_video_t *v)
{
    AVStream *st = v->fmt->streams[v->stream];
    const AVPacket *k = v->pkt;
    int64_t pts = k->pts != AV_NOPTS_VALUE ? k->pts : k->dts;
    if (pts == AV_NOPTS_VALUE)
        return; /* no time to place it at */
    if (v->start_pts == AV_NOPTS_VALUE)
        v->start_pts = pts;
    AVRational ns = {1, 1000000000};
    int64_t dts = k->dts != AV_NOPTS_VALUE ? k->dts : pts;
    its_video_packet p = {.data = k->data,
                          .size = (size_t)k->size,
                          .pts_ns = av_rescale_q(pts - v->start_pts, st->time_base, ns),
                          .dts_ns = av_rescale_q(dts - v->start_pts, st->time_base, ns),
                          .duration_ns = av_rescale_q(k->duration, st->time_base, ns),
                          .key = !!(k->flags & AV_PKT_FLAG_KEY)};
    v->opts.on_packet(v->opts.packet_ctx, v, &p);
}

const void *its_video_codecpar(const its_video_t *v)
{
    return v && v->fmt && v->stream >= 0 ? v->fmt->streams[v->stream]->codecpar : NULL;
}

/* Decode until a picture is ready in v->frame: 1, ITS_EEOF or an error. */
static int decode_next(its_video_t *v)
{
    unsigned max_bad = (unsigned)v->opts.max_bad_packets;
    for (;;) {
        if (atomic_load_explicit(&v->interrupted, memory_order_relaxed) ||
            (v->cancel && atomic_load_explicit(v->cancel, memory_order_relaxed)))
            return set_err(v, ITS_ECLOSED, "read", 0);
        int ret = avcodec_receive_frame(v->dec, v->frame);
        if (v->hw_lost && v->opts.decode == ITS_VIDEO_DECODE_NVDEC) {
            av_frame_unref(v->frame);
            return set_err(v, ITS_EUNSUPPORTED, "decode nvdec: the GPU decoder did not open", 0);
        }
        if (ret == 0) {
            v->consecutive_bad = 0;
            v->since_frame = 0;
            return 1;
        }
        if (ret == AVERROR_EOF)
            return ITS_EEOF;
        if (ret != AVERROR(EAGAIN)) {
            /* a decoding error surfaced at output: count it like a bad packet */
            v->stats.bad_packets++;
            if (++v->consecutive_bad >= max_bad)
                return set_err(v, ITS_EDECODE, "too many undecodable packets", ret);
            continue;
        }
        if (v->eof_sent)
            return ITS_EEOF;
        arm(v);
        ret = av_read_frame(v->fmt, v->pkt);
        v->deadline_ns = 0;
        /* (pb->eof_reached, not avio_feof(): that one reads more, blocking without a deadline) */
        if (ret == AVERROR_EOF || (ret < 0 && v->fmt->pb && v->fmt->pb->eof_reached &&
                                   ret != AVERROR_EXIT && !v->network)) {
            /* end of input (a truncated file ends here too): drain the decoder */
            v->eof_sent = 1;
            avcodec_send_packet(v->dec, NULL);
            continue;
        }
        if (ret < 0) {
            int code = map_io_error(v, ret);
            if (code == ITS_EDECODE) {
                /* the demuxer found garbage; it resynchronises on the next read */
                v->stats.bad_packets++;
                if (++v->consecutive_bad >= max_bad)
                    return set_err(v, ITS_EDECODE, "too many unreadable packets", ret);
                continue;
            }
            if (code == ITS_ETIMEDOUT) {
                snprintf(v->err, sizeof v->err, "%.400s: stalled: no data for %d ms", v->url,
                         v->opts.timeout_ms);
                return code;
            }
            return set_err(v, code, "read", ret);
        }
        if (v->pkt->stream_index != v->stream) {
            av_packet_unref(v->pkt);
            continue;
        }
        v->stats.packets++;
        v->stats.bytes += (uint64_t)v->pkt->size;
        if (v->opts.on_packet)
            tap_packet(v);
        ret = avcodec_send_packet(v->dec, v->pkt);
        av_packet_unref(v->pkt);
        if (ret < 0 && ret != AVERROR(EAGAIN)) {
            v->stats.bad_packets++;
            if (++v->consecutive_bad >= max_bad)
                return set_err(v, ITS_EDECODE, "too many undecodable packets", ret);
        } else if (++v->since_frame >= max_bad * NO_FRAME_FACTOR) {
            return set_err(v, ITS_EDECODE, "no picture decoded", AVERROR_INVALIDDATA);
        }
    }
}

/* An NVDEC picture (in GPU memory) copied into the host frame v->sw, which is allocated once
 * per size and format: the converter reads it from there. 0, or an ITS_E* code. */
static int download(its_video_t *v, const AVFrame *fr)
{
    const AVHWFramesContext *hf = (const AVHWFramesContext *)fr->hw_frames_ctx->data;
    if (!v->sw && !(v->sw = av_frame_alloc()))
        return ITS_ENOMEM;
    if (v->sw->width != fr->width || v->sw->height != fr->height ||
        v->sw->format != hf->sw_format || !v->sw->buf[0]) {
        av_frame_unref(v->sw);
        v->sw->width = fr->width;
        v->sw->height = fr->height;
        v->sw->format = hf->sw_format;
        if (av_frame_get_buffer(v->sw, 0) < 0)
            return ITS_ENOMEM;
    }
    if (av_hwframe_transfer_data(v->sw, fr, 0) < 0)
        return ITS_EDECODE;
    v->sw->color_range = fr->color_range;
    v->sw->colorspace = fr->colorspace;
    return 0;
}

static int next_frame(its_video_t *v, uint8_t *dst, size_t cap, its_video_frame *f)
{
    memset(f, 0, sizeof *f);
    for (;;) {
        int rc = decode_next(v);
        if (rc != 1)
            return rc;
        AVFrame *fr = v->frame;
        /* pixels: the decoder's picture, or its host copy where NVDEC decoded it */
        const AVFrame *px = fr;
        if (fr->format == AV_PIX_FMT_CUDA && fr->hw_frames_ctx) {
            rc = download(v, fr);
            if (rc < 0) {
                av_frame_unref(fr);
                return set_err(v, rc, "copy of the GPU picture to the host", 0);
            }
            px = v->sw;
        }
        if (fr->width <= 0 || fr->height <= 0 || prepare_sws(v, px) < 0) {
            v->stats.bad_packets++;
            av_frame_unref(fr);
            if (++v->consecutive_bad >= (unsigned)v->opts.max_bad_packets)
                return set_err(v, ITS_EDECODE, "undecodable frames", AVERROR_INVALIDDATA);
            continue;
        }
        size_t need = its_video_frame_bytes(v->out_w, v->out_h);
        f->width = v->out_w;
        f->height = v->out_h;
        f->stride = v->out_w * 3;
        if (dst && cap < need) {
            stamp(v, fr, f);
            av_frame_unref(fr);
            return set_err(v, ITS_ERANGE, "frame larger than the buffer", 0);
        }
        uint8_t *target = dst;
        if (!dst || cap < need + ITS_VIDEO_PAD) {
            /* the reader's buffer, padded for swscale's overshoot */
            if (v->buf_cap < need + ITS_VIDEO_PAD) {
                uint8_t *nb = its_aligned_alloc(ITS_MOD_INGEST, 64, need + ITS_VIDEO_PAD);
                if (!nb) {
                    av_frame_unref(fr);
                    return set_err(v, ITS_ENOMEM, "frame buffer", 0);
                }
                its_free(v->buf);
                v->buf = nb;
                v->buf_cap = need + ITS_VIDEO_PAD;
            }
            target = v->buf;
        }
        uint8_t *planes[4] = {target, NULL, NULL, NULL};
        int strides[4] = {f->stride, 0, 0, 0};
        int h = sws_scale(v->sws, (const uint8_t *const *)px->data, px->linesize, 0, px->height,
                          planes, strides);
        if (dst && target != dst)
            memcpy(dst, target, need);
        else if (!dst)
            dst = target;
        stamp(v, fr, f);
        if ((fr->flags & AV_FRAME_FLAG_CORRUPT) || fr->decode_error_flags)
            v->stats.corrupt_frames++;
        av_frame_unref(fr);
        if (h != v->out_h)
            return set_err(v, ITS_EDECODE, "pixel conversion failed", AVERROR_EXTERNAL);
        f->data = dst;
        v->stats.frames++;
        return 1;
    }
}

int its_video_read(its_video_t *v, its_video_frame *f)
{
    return next_frame(v, NULL, 0, f);
}

int its_video_read_into(its_video_t *v, uint8_t *dst, size_t cap, its_video_frame *f)
{
    if (!dst)
        return ITS_EINVAL;
    return next_frame(v, dst, cap, f);
}

int its_video_skip(its_video_t *v, its_video_frame *f)
{
    memset(f, 0, sizeof *f);
    int rc = decode_next(v);
    if (rc != 1)
        return rc;
    f->width = v->frame->width;
    f->height = v->frame->height;
    stamp(v, v->frame, f);
    av_frame_unref(v->frame);
    v->stats.frames++;
    return 1;
}

int its_video_rewind(its_video_t *v)
{
    if (!v->fmt->pb || !(v->fmt->pb->seekable & AVIO_SEEKABLE_NORMAL)) {
        if (!v->fmt->iformat || !(v->fmt->iformat->flags & AVFMT_NOFILE))
            return set_err(v, ITS_EUNSUPPORTED, "rewind", 0);
    }
    AVStream *st = v->fmt->streams[v->stream];
    int64_t ts = st->start_time != AV_NOPTS_VALUE ? st->start_time : 0;
    arm(v);
    int ret = av_seek_frame(v->fmt, v->stream, ts, AVSEEK_FLAG_BACKWARD);
    if (ret < 0)
        ret = avformat_seek_file(v->fmt, -1, INT64_MIN, 0, 0, 0);
    v->deadline_ns = 0;
    if (ret < 0)
        return set_err(v, ITS_EUNSUPPORTED, "rewind", ret);
    avcodec_flush_buffers(v->dec);
    v->eof_sent = 0;
    v->index = 0;
    v->last_pts = AV_NOPTS_VALUE;
    v->start_pts = st->start_time;
    v->consecutive_bad = 0;
    v->since_frame = 0;
    return 0;
}

int its_video_get_info(const its_video_t *v, its_video_info *out)
{
    memset(out, 0, sizeof *out);
    AVStream *st = v->fmt->streams[v->stream];
    out->width = st->codecpar->width;
    out->height = st->codecpar->height;
    AVRational fr = av_guess_frame_rate(v->fmt, st, NULL);
    if (fr.num > 0 && fr.den > 0)
        out->fps = av_q2d(fr);
    if (v->fmt->duration > 0)
        out->duration_s = (double)v->fmt->duration / AV_TIME_BASE;
    else if (st->duration > 0)
        out->duration_s = (double)st->duration * av_q2d(st->time_base);
    out->n_frames = st->nb_frames;
    out->codec = v->dec->codec ? v->dec->codec->name : "";
    out->format = v->fmt->iformat ? v->fmt->iformat->name : "";
    out->seekable = v->fmt->pb && (v->fmt->pb->seekable & AVIO_SEEKABLE_NORMAL);
    return 0;
}

void its_video_get_stats(const its_video_t *v, its_video_stats *out)
{
    *out = v->stats;
}

const char *its_video_error(const its_video_t *v)
{
    return v ? v->err : "";
}

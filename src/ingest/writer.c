/*
 * Video files out (include/its/video.h, its_video_writer_*): packed RGB/BGR frames converted
 * to yuv420p by swscale, encoded with libx264 (H.264) where the FFmpeg build has it, else
 * FFmpeg's own MPEG-4 part 2 encoder, muxed into the container the file name asks for.
 */
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
#include <stdio.h>
#include <string.h>

#include "its/alloc.h"
#include "its/error.h"
#include "its/video.h"

struct its_video_writer {
    AVFormatContext *fmt;
    AVCodecContext *enc;
    AVStream *st;
    struct SwsContext *sws;
    AVFrame *frame;
    AVPacket *pkt;
    int width, height;
    its_pixfmt pixfmt;
    int64_t next_pts;
    int header_written;
    char codec[32];
};

static int fail(char *err, size_t errlen, int code, const char *path, const char *what, int av)
{
    char msg[AV_ERROR_MAX_STRING_SIZE] = "";
    if (av < 0)
        av_strerror(av, msg, sizeof msg);
    return its_seterr(err, errlen, code, "%s: %s%s%s", path, what, msg[0] ? ": " : "", msg);
}

static void writer_free(its_video_writer_t *w)
{
    if (!w)
        return;
    if (w->fmt && w->fmt->pb && !(w->fmt->oformat->flags & AVFMT_NOFILE))
        avio_closep(&w->fmt->pb);
    avformat_free_context(w->fmt);
    avcodec_free_context(&w->enc);
    sws_freeContext(w->sws);
    av_frame_free(&w->frame);
    av_packet_free(&w->pkt);
    its_free(w);
}

int its_video_writer_open(const char *path, int width, int height, double fps, its_pixfmt pixfmt,
                          its_video_writer_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!path || width < 2 || height < 2 || !(fps > 0) ||
        (pixfmt != ITS_PIX_RGB24 && pixfmt != ITS_PIX_BGR24))
        return its_seterr(err, errlen, ITS_EINVAL, "%s: bad video size, rate or pixel format",
                          path ? path : "(null)");
    its_video_writer_t *w = its_calloc(ITS_MOD_INGEST, 1, sizeof *w);
    if (!w)
        return its_seterr(err, errlen, ITS_ENOMEM, "%s: out of memory", path);
    w->width = width & ~1; /* yuv420p: even sizes */
    w->height = height & ~1;
    w->pixfmt = pixfmt;
    int rc = avformat_alloc_output_context2(&w->fmt, NULL, NULL, path);
    if (rc < 0 || !w->fmt) {
        writer_free(w);
        return fail(err, errlen, ITS_EINVAL, path, "no container for this file name", rc);
    }
    const AVCodec *codec = avcodec_find_encoder_by_name("libx264");
    if (!codec)
        codec = avcodec_find_encoder(AV_CODEC_ID_MPEG4);
    if (!codec) {
        writer_free(w);
        return its_seterr(err, errlen, ITS_EUNSUPPORTED, "%s: no H.264 or MPEG-4 encoder", path);
    }
    snprintf(w->codec, sizeof w->codec, "%s", codec->name);
    w->st = avformat_new_stream(w->fmt, NULL);
    w->enc = avcodec_alloc_context3(codec);
    w->frame = av_frame_alloc();
    w->pkt = av_packet_alloc();
    if (!w->st || !w->enc || !w->frame || !w->pkt) {
        writer_free(w);
        return its_seterr(err, errlen, ITS_ENOMEM, "%s: out of memory", path);
    }
    AVRational rate = av_d2q(fps, 100000);
    w->enc->width = w->width;
    w->enc->height = w->height;
    w->enc->pix_fmt = AV_PIX_FMT_YUV420P;
    w->enc->time_base = av_inv_q(rate);
    w->enc->framerate = rate;
    w->enc->gop_size = 2 * (int)(fps + 0.5);
    w->enc->thread_count = 1;
    if (!strcmp(codec->name, "libx264")) {
        av_opt_set(w->enc->priv_data, "preset", "veryfast", 0);
        av_opt_set(w->enc->priv_data, "crf", "23", 0);
    } else {
        w->enc->bit_rate = (int64_t)w->width * w->height * 4; /* ~4 bits per pixel per second */
        w->enc->qmax = 10;
    }
    if (w->fmt->oformat->flags & AVFMT_GLOBALHEADER)
        w->enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    if ((rc = avcodec_open2(w->enc, codec, NULL)) < 0) {
        writer_free(w);
        return fail(err, errlen, ITS_EUNSUPPORTED, path, "cannot open the encoder", rc);
    }
    avcodec_parameters_from_context(w->st->codecpar, w->enc);
    w->st->time_base = w->enc->time_base;
    w->st->avg_frame_rate = rate;
    w->frame->format = AV_PIX_FMT_YUV420P;
    w->frame->width = w->width;
    w->frame->height = w->height;
    if ((rc = av_frame_get_buffer(w->frame, 0)) < 0) {
        writer_free(w);
        return fail(err, errlen, ITS_ENOMEM, path, "frame buffer", rc);
    }
    w->sws = sws_getContext(w->width, w->height,
                            pixfmt == ITS_PIX_BGR24 ? AV_PIX_FMT_BGR24 : AV_PIX_FMT_RGB24, w->width,
                            w->height, AV_PIX_FMT_YUV420P, SWS_BILINEAR, NULL, NULL, NULL);
    if (!w->sws) {
        writer_free(w);
        return its_seterr(err, errlen, ITS_ENOMEM, "%s: colour conversion", path);
    }
    if (!(w->fmt->oformat->flags & AVFMT_NOFILE) &&
        (rc = avio_open(&w->fmt->pb, path, AVIO_FLAG_WRITE)) < 0) {
        writer_free(w);
        return fail(err, errlen, ITS_EIO, path, "cannot create", rc);
    }
    if ((rc = avformat_write_header(w->fmt, NULL)) < 0) {
        writer_free(w);
        return fail(err, errlen, ITS_EIO, path, "cannot write the header", rc);
    }
    w->header_written = 1;
    *out = w;
    return 0;
}

const char *its_video_writer_codec(const its_video_writer_t *w)
{
    return w ? w->codec : "";
}

/* Encoded packets into the file (frame NULL: flush). */
static int drain(its_video_writer_t *w, const AVFrame *frame)
{
    int rc = avcodec_send_frame(w->enc, frame);
    if (rc < 0)
        return ITS_EIO;
    for (;;) {
        rc = avcodec_receive_packet(w->enc, w->pkt);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF)
            return 0;
        if (rc < 0)
            return ITS_EIO;
        av_packet_rescale_ts(w->pkt, w->enc->time_base, w->st->time_base);
        w->pkt->stream_index = w->st->index;
        rc = av_interleaved_write_frame(w->fmt, w->pkt);
        if (rc < 0)
            return ITS_EIO;
    }
}

int its_video_writer_write(its_video_writer_t *w, const uint8_t *data, int stride)
{
    if (!w || !data)
        return ITS_EINVAL;
    if (av_frame_make_writable(w->frame) < 0)
        return ITS_ENOMEM;
    const uint8_t *src[1] = {data};
    int srcstride[1] = {stride};
    sws_scale(w->sws, src, srcstride, 0, w->height, w->frame->data, w->frame->linesize);
    w->frame->pts = w->next_pts++;
    return drain(w, w->frame);
}

int its_video_writer_close(its_video_writer_t *w)
{
    if (!w)
        return 0;
    int rc = drain(w, NULL);
    if (w->header_written && av_write_trailer(w->fmt) < 0 && rc == 0)
        rc = ITS_EIO;
    writer_free(w);
    return rc;
}

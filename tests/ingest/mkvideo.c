#include "mkvideo.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/frame.h>
#include <errno.h>
#include <stdio.h>

static int encode_segment(FILE *f, const mkv_segment *s, int first_index)
{
    const AVCodec *c = avcodec_find_encoder(AV_CODEC_ID_MJPEG);
    if (!c)
        return AVERROR_ENCODER_NOT_FOUND;
    AVCodecContext *enc = avcodec_alloc_context3(c);
    AVFrame *fr = av_frame_alloc();
    AVPacket *pkt = av_packet_alloc();
    int ret = AVERROR(ENOMEM);
    if (!enc || !fr || !pkt)
        goto out;
    enc->width = s->width;
    enc->height = s->height;
    enc->pix_fmt = AV_PIX_FMT_YUVJ420P;
    enc->time_base = (AVRational){1, 25};
    enc->color_range = AVCOL_RANGE_JPEG;
    if ((ret = avcodec_open2(enc, c, NULL)) < 0)
        goto out;
    fr->format = enc->pix_fmt;
    fr->width = s->width;
    fr->height = s->height;
    if ((ret = av_frame_get_buffer(fr, 0)) < 0)
        goto out;
    for (int i = 0; i < s->frames; i++) {
        if ((ret = av_frame_make_writable(fr)) < 0)
            goto out;
        int n = first_index + i;
        int sq = s->height / 8, sx = (n * 7) % (s->width - sq), sy = (n * 5) % (s->height - sq);
        for (int y = 0; y < s->height; y++)
            for (int x = 0; x < s->width; x++) {
                int in = x >= sx && x < sx + sq && y >= sy && y < sy + sq;
                fr->data[0][y * fr->linesize[0] + x] = in ? 235 : (uint8_t)((x + y) / 8);
            }
        for (int y = 0; y < s->height / 2; y++)
            for (int x = 0; x < s->width / 2; x++) {
                fr->data[1][y * fr->linesize[1] + x] = 128;
                fr->data[2][y * fr->linesize[2] + x] = (uint8_t)(100 + n % 50);
            }
        fr->pts = n;
        if ((ret = avcodec_send_frame(enc, fr)) < 0)
            goto out;
        while ((ret = avcodec_receive_packet(enc, pkt)) == 0) {
            fwrite(pkt->data, 1, (size_t)pkt->size, f);
            av_packet_unref(pkt);
        }
        if (ret != AVERROR(EAGAIN))
            goto out;
    }
    avcodec_send_frame(enc, NULL);
    while ((ret = avcodec_receive_packet(enc, pkt)) == 0) {
        fwrite(pkt->data, 1, (size_t)pkt->size, f);
        av_packet_unref(pkt);
    }
    ret = ret == AVERROR_EOF ? 0 : ret;
out:
    av_packet_free(&pkt);
    av_frame_free(&fr);
    avcodec_free_context(&enc);
    return ret;
}

int mkv_write_mjpeg(const char *path, const mkv_segment *segs, int n_segs)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return AVERROR(errno);
    int ret = 0, index = 0;
    for (int i = 0; i < n_segs && ret == 0; i++) {
        ret = encode_segment(f, &segs[i], index);
        index += segs[i].frames;
    }
    if (fclose(f) != 0 && ret == 0)
        ret = AVERROR(EIO);
    return ret;
}

int mkv_write_hls(const char *dir, int width, int height, int frames, int segment_s)
{
    char path[512], t[16];
    snprintf(path, sizeof path, "%s/play.m3u8", dir);
    AVFormatContext *oc = NULL;
    int ret = avformat_alloc_output_context2(&oc, NULL, "hls", path);
    if (ret < 0)
        return ret;
    const AVCodec *c = avcodec_find_encoder(AV_CODEC_ID_MPEG2VIDEO);
    AVCodecContext *enc = c ? avcodec_alloc_context3(c) : NULL;
    AVStream *st = avformat_new_stream(oc, NULL);
    AVFrame *fr = av_frame_alloc();
    AVPacket *pkt = av_packet_alloc();
    AVDictionary *opt = NULL;
    ret = AVERROR(ENOMEM);
    if (!enc || !st || !fr || !pkt)
        goto out;
    enc->width = width;
    enc->height = height;
    enc->pix_fmt = AV_PIX_FMT_YUV420P;
    enc->time_base = (AVRational){1, 25};
    enc->framerate = (AVRational){25, 1};
    enc->gop_size = 12;
    enc->bit_rate = 400000;
    if (oc->oformat->flags & AVFMT_GLOBALHEADER)
        enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    if ((ret = avcodec_open2(enc, c, NULL)) < 0 ||
        (ret = avcodec_parameters_from_context(st->codecpar, enc)) < 0)
        goto out;
    st->time_base = enc->time_base;
    snprintf(t, sizeof t, "%d", segment_s);
    av_dict_set(&opt, "hls_time", t, 0);
    av_dict_set(&opt, "hls_list_size", "0", 0);
    av_dict_set(&opt, "hls_playlist_type", "vod", 0);
    if ((ret = avformat_write_header(oc, &opt)) < 0)
        goto out;
    fr->format = enc->pix_fmt;
    fr->width = width;
    fr->height = height;
    if ((ret = av_frame_get_buffer(fr, 0)) < 0)
        goto out;
    for (int i = 0; i <= frames; i++) {
        if (i < frames) {
            if ((ret = av_frame_make_writable(fr)) < 0)
                goto out;
            for (int y = 0; y < height; y++)
                for (int x = 0; x < width; x++)
                    fr->data[0][y * fr->linesize[0] + x] = (uint8_t)(x + y + 3 * i);
            for (int y = 0; y < height / 2; y++)
                for (int x = 0; x < width / 2; x++) {
                    fr->data[1][y * fr->linesize[1] + x] = 128;
                    fr->data[2][y * fr->linesize[2] + x] = 128;
                }
            fr->pts = i;
        }
        if ((ret = avcodec_send_frame(enc, i < frames ? fr : NULL)) < 0)
            goto out;
        while ((ret = avcodec_receive_packet(enc, pkt)) == 0) {
            av_packet_rescale_ts(pkt, enc->time_base, st->time_base);
            pkt->stream_index = st->index;
            if ((ret = av_interleaved_write_frame(oc, pkt)) < 0)
                goto out;
        }
        if (ret != AVERROR(EAGAIN) && ret != AVERROR_EOF)
            goto out;
    }
    ret = av_write_trailer(oc);
out:
    av_dict_free(&opt);
    av_packet_free(&pkt);
    av_frame_free(&fr);
    avcodec_free_context(&enc);
    avformat_free_context(oc);
    return ret;
}

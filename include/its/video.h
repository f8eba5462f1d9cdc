/*
 * its/video.h - a small synchronous video reader on FFmpeg (libavformat, libavcodec,
 * libswscale): open a file or URL, read decoded frames as packed 8-bit RGB or BGR.
 *
 *     its_video_opts o = {.pixfmt = ITS_PIX_BGR24};
 *     its_video_t *v;
 *     char err[256];
 *     if (its_video_open("traffic.mp4", &o, &v, err, sizeof err) < 0) {
 *         fprintf(stderr, "%s\n", err);    // "traffic.mp4: cannot open: No such file ..."
 *         return;
 *     }
 *     its_video_frame f;
 *     int rc;
 *     while ((rc = its_video_read(v, &f)) == 1)
 *         use(f.data, f.width, f.height, f.stride, f.pts_ns);  // valid until the next read
 *     if (rc != ITS_EEOF)
 *         fprintf(stderr, "%s\n", its_video_error(v));
 *     its_video_close(v);
 *
 * Inputs: anything libavformat opens - files (MP4, MKV, AVI, TS, raw H.264, a single JPEG or
 * PNG image), rtsp:// (TCP transport by default), http(s)://, HLS playlists (.m3u8).
 *
 * Contract:
 * - One thread at a time uses a reader; its_video_interrupt may be called from any thread
 *   (a signal handler excepted) and makes a blocked open/read return ITS_ECLOSED soon after.
 * - its_video_read returns 1 with a frame, ITS_EEOF at the end of the input, or a negative
 *   ITS_E* code: ITS_ETIMEDOUT (no data for timeout_ms), ITS_ENET (connection lost),
 *   ITS_EDECODE (too many corrupt packets in a row, max_bad_packets), ITS_ECLOSED
 *   (interrupted). The reason is in its_video_error(). After an error other than
 *   ITS_EDECODE, reopen the input to continue (the reader does not reconnect by itself).
 * - Corrupt packets that the decoder rejects are skipped and counted (its_video_stats), so a
 *   damaged stretch loses frames, never the stream, unless it lasts max_bad_packets packets.
 * - The frame size may change mid-stream; each frame reports its own width and height.
 *   Frames larger than max_width x max_height are scaled down to fit, keeping their aspect.
 * - its_video_read's frame points into the reader's own buffer, valid until the next read or
 *   close. its_video_read_into converts into a caller buffer instead (no copy, no allocation
 *   per frame once the size is known: the reader allocates only when the frame size changes).
 * - Decoding (opts.decode, docs/decode.md): H.264 and HEVC decode on the GPU's NVDEC through
 *   FFmpeg's CUDA hwaccel where it can be had (one CUDA device context for the process, the
 *   device's primary context, which the CUDA engine uses too), else on the CPU; the decoded
 *   picture is copied to the host for conversion. An AUTO reader that falls back says why
 *   in its_video_stats.fallback; an NVDEC one fails to open instead (ITS_EUNSUPPORTED).
 * - Timestamps: pts_ns is the frame's presentation time in ns since the stream's start
 *   (from the best-effort timestamp; frames without one get the previous one plus a frame
 *   period). Wall/monotonic capture time is the caller's business (its_now_ns at read).
 */
#ifndef ITS_VIDEO_H
#define ITS_VIDEO_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "its/det.h"

typedef struct its_video its_video_t;

/* A compressed packet of the video stream as the demuxer read it, before decoding (for
 * remuxing without re-encoding, its/evidence.h); times on the frames' clock (pts_ns). */
typedef struct its_video_packet {
    const uint8_t *data;
    size_t size;
    int64_t pts_ns, dts_ns, duration_ns;
    int key; /* a keyframe: decoding can start here */
} its_video_packet;

/* Called on the reading thread for every packet of the video stream; data is valid during
 * the call only. */
typedef void (*its_video_packet_fn)(void *ctx, its_video_t *v, const its_video_packet *p);

/* Where a reader decodes (its_video_opts.decode). */
typedef enum its_video_decode {
    ITS_VIDEO_DECODE_CPU = 0,  /* libavcodec's software decoder (the zero value: every reader
                                * that does not ask for the GPU) */
    ITS_VIDEO_DECODE_AUTO = 1, /* NVDEC for H.264/HEVC where it can be had, else the CPU */
    ITS_VIDEO_DECODE_NVDEC = 2 /* the GPU's decoder or nothing: open fails (ITS_EUNSUPPORTED) */
} its_video_decode;

/* Why an ITS_VIDEO_DECODE_AUTO reader decodes on the CPU (its_video_stats.fallback). */
typedef enum its_video_fallback {
    ITS_VIDEO_FALLBACK_NONE = 0,
    ITS_VIDEO_FALLBACK_NO_DEVICE, /* no CUDA device: no driver (libcuda), no GPU, or FFmpeg
                                   * without the CUDA hwaccel */
    ITS_VIDEO_FALLBACK_CODEC,     /* neither H.264 nor HEVC */
    ITS_VIDEO_FALLBACK_SESSIONS,  /* its_video_set_nvdec_limit's sessions are all in use */
    ITS_VIDEO_FALLBACK_OPEN,      /* the GPU decoder did not open for this stream (no
                                   * libnvcuvid, profile or size unsupported, out of memory) */
    ITS_VIDEO_FALLBACK_COUNT
} its_video_fallback;

/* "no_device", "codec", "sessions", "open_failed" ("" for NONE): metric labels. */
const char *its_video_fallback_name(its_video_fallback f);
/* "cpu", "auto", "nvdec"; its_video_parse_decode: ITS_EINVAL for another name. */
const char *its_video_decode_name(its_video_decode d);
int its_video_parse_decode(const char *name, its_video_decode *out);

/*
 * NVDEC sessions (readers decoding on the GPU) allowed at once in this process; 0 (the
 * default): no limit of ours (the driver's and the GPU memory's remain). A reader that finds
 * them all in use decodes on the CPU (ITS_VIDEO_FALLBACK_SESSIONS) or, with
 * ITS_VIDEO_DECODE_NVDEC, fails to open. Any thread; applies to later opens.
 */
void its_video_set_nvdec_limit(int sessions);
/* Readers decoding on the GPU now. */
int its_video_nvdec_sessions(void);

typedef struct its_video_opts {
    its_pixfmt pixfmt; /* output layout: RGB24 (default) or BGR24 */
    /* where to decode; CPU when left zero (see its_video_decode) */
    its_video_decode decode;
    int max_width;       /* frames wider/taller are scaled down to fit; 0: 4096 */
    int max_height;      /* 0: 4096 */
    int timeout_ms;      /* network open/read timeout; 0: 5000 */
    int rtsp_udp;        /* 1: RTSP over UDP; default 0 = TCP interleaved */
    int threads;         /* decoder threads; 0: 1 (the pipeline parallelises across cameras) */
    int max_bad_packets; /* consecutive undecodable packets before ITS_EDECODE; 0: 200 */
    const char *format;  /* force a demuxer ("mjpeg", "h264"...); NULL: probe */
    atomic_int *cancel;  /* optional: while nonzero, open/read abort with ITS_ECLOSED (the
                          * caller's stop flag; it must outlive the reader) */
    its_video_packet_fn on_packet; /* optional: every video packet, as read */
    void *packet_ctx;
} its_video_opts;

typedef struct its_video_frame {
    uint8_t *data;  /* packed pixels, stride bytes per row */
    int width;      /* pixels */
    int height;     /* pixels */
    int stride;     /* bytes per row (width * 3 for read_into) */
    int64_t pts_ns; /* presentation time since stream start, ns */
    uint64_t index; /* 0-based count of frames returned since open/rewind */
} its_video_frame;

typedef struct its_video_info {
    int width, height;  /* first video stream's coded size (0 if unknown before decoding) */
    double fps;         /* nominal frame rate, 0 if unknown */
    double duration_s;  /* 0 if unknown (live streams) */
    int64_t n_frames;   /* container's frame count, 0 if unknown */
    const char *codec;  /* decoder name ("h264") */
    const char *format; /* demuxer name ("mov,mp4,m4a,3gp,3g2,mj2") */
    int seekable;       /* 1 if its_video_rewind can work */
} its_video_info;

typedef struct its_video_stats {
    uint64_t frames;         /* frames returned */
    uint64_t packets;        /* video packets read */
    uint64_t bad_packets;    /* packets the demuxer or decoder rejected (skipped) */
    uint64_t corrupt_frames; /* frames returned with concealed decoding errors */
    uint64_t size_changes;   /* times the frame size changed */
    uint64_t bytes;          /* demuxed bytes of video packets */
    /* 1: frames are decoded on the GPU (NVDEC); AUTO on the CPU: why (NONE if it never tried
     * the GPU) */
    int nvdec;
    its_video_fallback fallback;
} its_video_stats;

/* Open and probe; find the best video stream and open its decoder. err gets
 * "<url>: <what>: <reason>". Errors: ITS_ENOENT (no such file), ITS_EDECODE (not a video or
 * no decoder), ITS_ENET, ITS_ETIMEDOUT, ITS_ECLOSED, ITS_ENOMEM, ITS_EUNSUPPORTED (decode
 * NVDEC where the GPU decoder cannot be had). opts may be NULL. */
int its_video_open(const char *url, const its_video_opts *opts, its_video_t **out, char *err,
                   size_t errlen);
/* NULL is a no-op. */
void its_video_close(its_video_t *v);

/* Next frame into the reader's buffer: 1, ITS_EEOF, or an error (see the contract). */
int its_video_read(its_video_t *v, its_video_frame *f);
/*
 * libswscale's SIMD converters may write a few bytes past the last row of a packed picture
 * whose width is not a multiple of their vector width. Buffers with ITS_VIDEO_PAD spare bytes
 * beyond the picture are converted into directly; smaller ones go through the reader's own
 * buffer and one copy.
 */
#define ITS_VIDEO_PAD 256

/* Next frame converted into dst (capacity cap bytes, rows of width*3). If the frame needs
 * more than cap bytes it is dropped and ITS_ERANGE returned, with f's width/height set. */
int its_video_read_into(its_video_t *v, uint8_t *dst, size_t cap, its_video_frame *f);

/* Decode the next frame without converting it (it stays where the decoder put it, in GPU
 * memory for NVDEC) and release it: 1 with f's size, pts and index set (data NULL), ITS_EEOF
 * or an error, as its_video_read. For skipping frames and for measuring decode alone. */
int its_video_skip(its_video_t *v, its_video_frame *f);

/* Seek back to the start (for looping files). ITS_EUNSUPPORTED on unseekable inputs. */
int its_video_rewind(its_video_t *v);

/* Make a blocked or later open/read return ITS_ECLOSED. Any thread; async-signal-unsafe. */
void its_video_interrupt(its_video_t *v);

int its_video_get_info(const its_video_t *v, its_video_info *out);
/* The video stream's codec parameters (FFmpeg's AVCodecParameters, for a muxer); NULL if none. */
const void *its_video_codecpar(const its_video_t *v);
void its_video_get_stats(const its_video_t *v, its_video_stats *out);
/* The last error's text, "" if none. */
const char *its_video_error(const its_video_t *v);

/* Bytes of a packed 8-bit 3-channel frame. */
static inline size_t its_video_frame_bytes(int width, int height)
{
    return (size_t)width * (size_t)height * 3;
}

/*
 * A video file out: packed RGB/BGR frames of one size at a constant rate, encoded with H.264
 * (libx264) where FFmpeg has it, else MPEG-4 part 2, into the container the file name asks
 * for (.mp4, .mkv, .avi). Odd sizes lose their last column or row (4:2:0).
 *
 *     its_video_writer_t *w;
 *     if (its_video_writer_open("out.mp4", 1280, 720, 30, ITS_PIX_RGB24, &w, err, sizeof err))
 *         ...
 *     its_video_writer_write(w, pixels, stride);      // per frame
 *     its_video_writer_close(w);                      // flush and finish the file
 *
 * One thread per writer. Errors: ITS_EINVAL, ITS_ENOMEM, ITS_EIO (the file), ITS_EUNSUPPORTED
 * (no encoder or container); err says which and why.
 */
typedef struct its_video_writer its_video_writer_t;

int its_video_writer_open(const char *path, int width, int height, double fps, its_pixfmt pixfmt,
                          its_video_writer_t **out, char *err, size_t errlen);
int its_video_writer_write(its_video_writer_t *w, const uint8_t *data, int stride);
/* The encoder's name ("libx264", "mpeg4"). */
const char *its_video_writer_codec(const its_video_writer_t *w);
/* Flushes, finishes the file and frees w; ITS_EIO when writing failed. */
int its_video_writer_close(its_video_writer_t *w);

#endif

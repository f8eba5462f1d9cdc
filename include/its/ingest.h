/*
 * its/ingest.h - frames and camera sources: one thread per camera that decodes a file or a
 * live stream (FFmpeg: files, RTSP over TCP, HTTP, HLS) or replays a clip held in memory,
 * and hands each frame to a callback.
 *
 *     its_source_opts o = {.id = "cam-1", .url = "traffic.mp4", .loop = 1};
 *     its_source_t *s;
 *     char err[256];
 *     if (its_source_create(&o, on_frame, ctx, &s, err, sizeof err) < 0) ...
 *     its_source_start(s);
 *     ...                              // on_frame(frame, ctx) runs on the source's thread
 *     its_source_stop(s);              // interrupts blocking I/O, joins the thread
 *     its_source_destroy(s);
 *
 *     // or, from a control path that must not wait on the source's thread:
 *     its_source_cancel(s);            // no callback runs after this returns
 *     ...                              // later, when its_source_finished(s) or never:
 *     its_source_destroy_wait(s, 0);   // joins an exited thread, else detaches it
 *
 *     static void on_frame(its_frame *f, void *ctx)
 *     {
 *         // f carries one reference, now the callee's: keep it (queue it) or its_frame_unref
 *     }
 *
 * Contract:
 * - Frames (its/frame.h) are reference counted (its_frame_unref, any thread). A frame's header
 *   and pixels come from pools made when the source is created; producing a frame allocates
 *   nothing. A frame and its pixels stay valid while referenced, even after the source is
 *   destroyed (the pools outlive their creator until their last buffer comes back).
 * - When the pools are exhausted (the pipeline holds every buffer), the new frame is dropped
 *   and counted (stats.dropped_no_buffer): a live camera never waits on the pipeline.
 * - Network and file sources reconnect on failure or stall (no frame for stall_timeout_ms)
 *   with exponential backoff and jitter, counted in stats.reconnects; they never give up
 *   unless stopped. A file without loop ends at its end (state ITS_SOURCE_ENDED).
 * - Pixels are packed 8-bit, 3 channels, in the requested order, at most max_width x
 *   max_height (larger frames are scaled down keeping their aspect).
 * - Timestamps: ts_ns[ITS_TS_CAPTURE] is its_now_ns() when the frame was decoded (or, for a
 *   replay, when it was due); pts_ns is the media time, which never goes backwards: it
 *   continues across loops and reconnects. Motion analytics use pts_ns, so a file paced
 *   slower than its own rate still gives true speeds.
 */
#ifndef ITS_INGEST_H
#define ITS_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "its/frame.h"
#include "its/pool.h"
#include "its/video.h"

typedef struct its_source its_source_t;

/* The longest camera id, in characters ([A-Za-z0-9_.-]{1,64}, as ITS_PUB_ID_MAX); every
 * buffer that holds one has room for it and its NUL: an id is never truncated. */
#define ITS_CAMERA_ID_MAX 64

/*
 * Where replay clips keep their pixels (a clip is decoded once and served to every camera
 * replaying it, by reference). Default: ordinary memory. The service points it at the
 * engine's pinned host memory (its_engine_host_alloc) so the GPU uploads frames straight from
 * the clip, with no copy on the host. Applies to clips decoded after the call; if that memory
 * cannot be had, the clip falls back to ordinary memory (logged). NULL: the default again.
 * Any thread; meant to be set once at start.
 */
void its_ingest_set_clip_memory(const its_pool_mem *mem);

typedef enum its_source_kind {
    ITS_SOURCE_AUTO = 0, /* from the URL: rtsp://, http(s)://, *.m3u8, a folder, else a file */
    ITS_SOURCE_FILE,
    ITS_SOURCE_RTSP,
    ITS_SOURCE_HTTP,
    ITS_SOURCE_HLS,
    ITS_SOURCE_REPLAY, /* decode once into memory (a video, or a folder of JPEG/PNG files) */
    ITS_SOURCE_PUSH,   /* no thread: frames arrive as JPEG/PNG through its_source_push_image
                        * (the HTTP API's POST /v1/cameras/{id}/frames); url "push:" */
} its_source_kind;

typedef enum its_source_state {
    ITS_SOURCE_IDLE = 0,
    ITS_SOURCE_CONNECTING,
    ITS_SOURCE_RUNNING,
    ITS_SOURCE_BACKOFF, /* waiting to reconnect */
    ITS_SOURCE_ENDED,   /* a file without loop reached its end */
    ITS_SOURCE_STOPPED,
    ITS_SOURCE_LOADING, /* replay: the clip is being decoded (on the source's thread) */
} its_source_state;

/* The most frames a replay clip keeps (replay_frames is capped to it). */
#define ITS_REPLAY_MAX_FRAMES 3000
/* How long its_source_destroy waits for the thread to end before it detaches it. */
#define ITS_SOURCE_DESTROY_WAIT_NS (1000ULL * 1000 * 1000)

typedef struct its_source_opts {
    const char *id;  /* camera id, for logs */
    const char *url; /* file path, URL, or folder (replay) */
    its_source_kind kind;
    int slot;             /* copied into every frame's `camera` */
    its_pixfmt pixfmt;    /* default RGB24 */
    int loop;             /* files and replay: start again at the end */
    int realtime;         /* files: pace frames at `fps` or the media's own rate (1 by default
                           * through its_source_opts_default); 0: as fast as decoded */
    double fps;           /* pace; 0: the media's own frame rate (replay: 30 if unknown) */
    double sample_fps;    /* files and live: pass on at most this many frames per second of
                           * media time, skipping the others after decoding; 0: every frame */
    double phase_s;       /* replay: start this far into the clip (load tests spread cameras);
                           * paced files: the first connection starts this far into the file
                           * (whole frames decoded and skipped, the fraction of a frame as a
                           * delay), so cameras decoding one file are out of step;
                           * with sample_fps: the media time of the first frame passed on,
                           * modulo the sampling period (spreads cameras over it) */
    int replay_frames;    /* replay: keep at most this many frames of the clip; 0: 300; at most
                           * ITS_REPLAY_MAX_FRAMES */
    int max_width;        /* 0: 1920 */
    int max_height;       /* 0: 1080 */
    int pool_frames;      /* frames this source may have in the pipeline at once; 0: 8 */
    int stall_timeout_ms; /* no frame for this long: reconnect; 0: 5000 */
    int backoff_min_ms;   /* first reconnect delay; 0: 250 */
    int backoff_max_ms;   /* cap of the delay; 0: 30000 */
    int nice;             /* the source thread's niceness (0..19, decoding yields to the
                           * stages after it); 0: the creator's */
    int rtsp_udp;         /* rtsp: 1 RTP over UDP; 0: interleaved in the TCP connection */
    /* files and live: where to decode (its/video.h; zero: the CPU; AUTO: NVDEC for
     * H.264/HEVC where it can be had, else the CPU) */
    its_video_decode decode;
    /* files and live: every compressed video packet also goes into this ring (its/
     * evidence.h), whose clips are cut on the source's thread; the source takes over the
     * caller's reference. NULL: none */
    struct its_clipring *clipring;
} its_source_opts;

typedef struct its_source_stats {
    uint64_t frames;            /* frames handed to the callback */
    uint64_t dropped_no_buffer; /* decoded but dropped: the pipeline held every buffer */
    uint64_t reconnects;        /* reconnect attempts after a failure or stall */
    uint64_t stalls;            /* of which: no frame for stall_timeout_ms */
    uint64_t open_failures;     /* opens that failed */
    uint64_t decode_errors;     /* packets skipped as corrupt, over all connections */
    uint64_t corrupt_frames;    /* frames with concealed errors, over all connections */
    uint64_t size_changes;      /* frame size changes, over all connections */
    uint64_t loops;             /* times a looped file or clip started again */
    int nvdec;                  /* 1: the current connection decodes on the GPU (NVDEC) */
    /* decode AUTO that decodes on the CPU: why (the first reason seen), and whether that was
     * counted: 1 at most over the camera's life, whatever its reconnects */
    its_video_fallback fallback;
    uint64_t decode_fallbacks;
    its_source_state state;
    int width, height; /* last frame's size */
    double fps_nominal;
    char last_error[256];
} its_source_stats;

typedef void (*its_frame_cb)(its_frame *frame, void *ctx);

/* Defaults for every field (realtime = 1); the caller then sets id and url. */
void its_source_opts_default(its_source_opts *o);
its_source_kind its_source_kind_of(const char *url);
const char *its_source_kind_name(its_source_kind k);
/* "file", "rtsp", "http", "hls", "replay", "push", "auto" -> kind; ITS_EINVAL otherwise. */
int its_source_parse_kind(const char *name, its_source_kind *out);

/* Create (pools allocated here). Errors: ITS_EINVAL (bad options), ITS_ENOMEM, ITS_ENOENT for a
 * replay clip that does not exist. A replay source decodes its clip on its own thread once
 * started (state ITS_SOURCE_LOADING); a clip that cannot be decoded ends the source
 * (ITS_SOURCE_ENDED, stats.last_error). Network sources do not connect until started. */
int its_source_create(const its_source_opts *opts, its_frame_cb cb, void *ctx, its_source_t **out,
                      char *err, size_t errlen);
int its_source_start(its_source_t *s);
/* Stop producing without waiting for the thread: sets the flag, interrupts blocked I/O and
 * ends sleeps. When it returns, no frame callback is running and none will run. Idempotent;
 * any thread. */
void its_source_cancel(its_source_t *s);
/* 1 once the source's thread has returned (or there is none), 0 while it runs. */
int its_source_finished(its_source_t *s);
/* Cancel and join the thread (waits for it); idempotent. */
void its_source_stop(its_source_t *s);
/* Cancel and free. Waits up to wait_ns for the thread to end; a thread still blocked then
 * (a call no interrupt reaches) is detached and frees what it uses when it returns, without
 * ever calling back. Frames still referenced stay valid. NULL is a no-op. */
void its_source_destroy_wait(its_source_t *s, uint64_t wait_ns);
/* its_source_destroy_wait(s, ITS_SOURCE_DESTROY_WAIT_NS). */
void its_source_destroy(its_source_t *s);
void its_source_get_stats(its_source_t *s, its_source_stats *out);

/* Wait until the source has ended or stopped, up to timeout_ns: 0, or ITS_ETIMEDOUT. */
int its_source_wait_end(its_source_t *s, uint64_t timeout_ns);

/*
 * Push sources: decode one JPEG or PNG (from the HTTP API) into a pooled frame and hand it to
 * the frame callback on the caller's thread, stamped captured at ts_ns (its_now_ns time
 * base). Any thread may push; pushes to one source are serialised. Never blocks on the
 * pipeline: ITS_EFULL when every frame buffer is in use (counted as dropped_no_buffer),
 * ITS_EDECODE for an undecodable image, ITS_ERANGE for one larger than max_width x
 * max_height, ITS_ECLOSED once stopped, ITS_EINVAL for a source of another kind. Decoding
 * uses a temporary image: this is the API's path, not the streaming hot path.
 */
int its_source_push_image(its_source_t *s, const uint8_t *data, size_t len, uint64_t ts_ns,
                          char *err, size_t errlen);

#endif

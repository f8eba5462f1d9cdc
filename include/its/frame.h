/*
 * its/frame.h - the frame that travels through the pipeline: pixels, stage timestamps and
 * the detections found in it. Part of the core library.
 *
 *     its_frame *f = its_frame_new(header_pool, pixels);   // a producer (a camera source)
 *     ... f->data, f->width, f->pixfmt; a stage writes f->dets[0..f->n_dets - 1] ...
 *     its_frame_unref(f);                                  // the last one frees
 *
 * Contract:
 * - Frames are reference counted; its_frame_unref may run on any thread. A frame's header
 *   and pixels are buffers of pools (its/pool.h), so making and freeing frames allocates
 *   nothing; the last unref returns both to their pools. Pixels are read-only once the frame
 *   is shared.
 * - Detections (its/det.h) are in source-frame pixels, clipped to the frame; boxes are made
 *   fractions of the frame only where a message is written (its_det_box_norm).
 * - Each result field is written by the pipeline stage that owns the frame at the time.
 */
#ifndef ITS_FRAME_H
#define ITS_FRAME_H

#include <stdatomic.h>
#include <stdint.h>

#include "its/det.h"
#include "its/pool.h"

/* Pipeline stage timestamps carried by every frame (monotonic ns; 0 = not reached). */
typedef enum its_ts {
    ITS_TS_CAPTURE = 0, /* decoded by the source */
    ITS_TS_ENQUEUE,     /* accepted by the batcher */
    ITS_TS_BATCH,       /* taken into a batch */
    ITS_TS_PREP,        /* the batch's input prepared and handed to the network */
    ITS_TS_INFER,       /* inference finished */
    ITS_TS_POST,        /* detections decoded, NMS done */
    ITS_TS_DISPATCH,    /* picked up by the camera's analytics worker */
    ITS_TS_QUALITY,     /* quality scored */
    ITS_TS_MODELMON,    /* model metrics updated */
    ITS_TS_ANALYTICS,   /* tracking and analytics done */
    ITS_TS_PUBLISH,     /* message built (its publication time) and handed to the sinks */
    ITS_TS_SENT,        /* the sinks returned */
    ITS_TS_COUNT
} its_ts;

/* Largest number of detections kept per frame (Ultralytics' max_det default). */
#define ITS_FRAME_MAX_DETS 300

typedef struct its_frame {
    const uint8_t *data; /* packed pixels, stride bytes per row; read-only once shared */
    int width, height, stride;
    its_pixfmt pixfmt; /* ITS_PIX_RGB24 or ITS_PIX_BGR24 */
    int camera;        /* the pipeline's camera slot (its_source_opts.slot) */
    uint64_t seq;      /* frame number from this source, from 0, with no gaps */
    int64_t pts_ns;    /* media time */
    uint64_t ts_ns[ITS_TS_COUNT];
    /* results, written by the pipeline stage that owns the frame at the time */
    int n_dets;
    int n_weak;    /* after them, detections under the confidence threshold but at least the
                      tracker's (engine.track_conf): they continue tracks, nothing else sees them */
    int failed;    /* an error code if a stage failed on this frame, else 0 */
    float quality; /* [0, 1], < 0 if not scored */
    uint64_t pseq; /* the pipeline's per-camera order after batching (internal) */
    int batch_n;   /* size of its inference batch on the batch's first frame, else 0 */
    void *user;    /* free for the pipeline's use */
    its_det dets[ITS_FRAME_MAX_DETS]; /* source pixels; track_id set by the tracker */
    /* private */
    atomic_int refs;
    its_buf *self;   /* the pool buffer holding this header */
    its_buf *pixels; /* the pool buffer holding the pixels */
} its_frame;

/* A new frame with one reference, its header taken from hdr_pool (buffers of at least
 * sizeof(its_frame) bytes), taking over the reference held on `pixels`. Everything but the
 * detections is cleared (quality -1). NULL if the header pool is exhausted (pixels
 * untouched then). */
its_frame *its_frame_new(its_pool_t *hdr_pool, its_buf *pixels);
/* NULL is a no-op. The last unref returns the pixels and the header to their pools. */
void its_frame_unref(its_frame *f);

#endif

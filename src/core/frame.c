/* Frames: construction from pooled buffers and reference counting (its/frame.h). */
#include <stddef.h>
#include <string.h>

#include "its/frame.h"

its_frame *its_frame_new(its_pool_t *hdr_pool, its_buf *pixels)
{
    its_buf *hb = its_pool_get(hdr_pool);
    if (!hb)
        return NULL;
    its_frame *f = (its_frame *)hb->data;
    /* clear the header, not the 9 KB of detections behind it */
    memset(f, 0, offsetof(its_frame, dets));
    f->quality = -1.0f;
    atomic_init(&f->refs, 1);
    f->self = hb;
    f->pixels = pixels;
    return f;
}

void its_frame_unref(its_frame *f)
{
    if (!f)
        return;
    if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
        return;
    its_buf *px = f->pixels, *self = f->self;
    f->pixels = NULL;
    its_buf_unref(px);
    its_buf_unref(self);
}

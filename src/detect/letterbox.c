/*
 * Letterbox: the frame is scaled by r = min(W / w, H / h) to round(w * r) x round(h * r)
 * and placed on a W x H canvas of the pad value, centred (Ultralytics, NanoDet) or at the top
 * left (YOLOX). The centring follows Ultralytics' LetterBox: left = round(dw / 2 - 0.1), so an
 * odd leftover pixel goes right/bottom.
 *
 * The resize is the classic OpenCV INTER_LINEAR: pixel centres at +0.5, source coordinate
 * (dx + 0.5) * w / nw - 0.5 clamped to the image, no antialiasing when shrinking. It writes
 * straight into the planar float tensor, normalised, so no intermediate image exists and
 * nothing is allocated. With pre->round8 each resized value is first rounded to an integer,
 * as cv2.resize on a uint8 image does (the Ultralytics and YOLOX pipelines resize uint8
 * images); this matches the reference tensors to about 1e-3 in score, where keeping the
 * fractions moves scores by about 1e-2. Rounding uses floor(x + 0.5) (JavaScript's Math.round), as
 * the reference pipeline did.
 */
#include <math.h>
#include <string.h>

#include "its/detect.h"
#include "its/error.h"

static int round_half_up(double v)
{
    return (int)floor(v + 0.5);
}

int its_det_letterbox_raw(const its_det_preproc *pre, const uint8_t *px, int w, int h, int stride,
                          its_pixfmt fmt, float *dst, its_letterbox *lb)
{
    if (!pre || !px || !dst || w <= 0 || h <= 0 || stride < 3 * w || pre->width <= 0 ||
        pre->height <= 0)
        return ITS_EINVAL;
    const int W = pre->width, H = pre->height;
    double r = fmin((double)W / w, (double)H / h);
    int nw = round_half_up(w * r), nh = round_half_up(h * r);
    if (nw < 1)
        nw = 1;
    if (nh < 1)
        nh = 1;
    if (nw > W)
        nw = W;
    if (nh > H)
        nh = H;
    int left = 0, top = 0;
    if (pre->center) {
        left = round_half_up((W - nw) / 2.0 - 0.1);
        top = round_half_up((H - nh) / 2.0 - 0.1);
    }
    if (lb) {
        lb->scale = (float)r;
        lb->pad_x = (float)left;
        lb->pad_y = (float)top;
        lb->src_w = w;
        lb->src_h = h;
    }
    /* Source byte offset of each model channel. */
    int src_bgr = fmt == ITS_PIX_BGR24;
    int off[3];
    for (int c = 0; c < 3; c++)
        off[c] = (src_bgr != (pre->bgr != 0)) ? 2 - c : c;
    const size_t plane = (size_t)W * H;
    const double sx = (double)w / nw, sy = (double)h / nh;
    const int q8 = pre->round8;

    for (int c = 0; c < 3; c++) {
        float *p = dst + c * plane;
        const float padv = ((float)pre->pad - pre->mean[c]) * pre->scale[c];
        const float mean = pre->mean[c], scale = pre->scale[c];
        for (int y = 0; y < H; y++) {
            float *row = p + (size_t)y * W;
            if (y < top || y >= top + nh) {
                for (int x = 0; x < W; x++)
                    row[x] = padv;
                continue;
            }
            for (int x = 0; x < left; x++)
                row[x] = padv;
            for (int x = left + nw; x < W; x++)
                row[x] = padv;
            double fy = (y - top + 0.5) * sy - 0.5;
            if (fy < 0)
                fy = 0;
            if (fy > h - 1)
                fy = h - 1;
            int y0 = (int)fy;
            int y1 = y0 + 1 < h ? y0 + 1 : h - 1;
            float ay = (float)(fy - y0);
            const uint8_t *r0 = px + (size_t)y0 * stride + off[c];
            const uint8_t *r1 = px + (size_t)y1 * stride + off[c];
            float *o = row + left;
            for (int x = 0; x < nw; x++) {
                double fx = (x + 0.5) * sx - 0.5;
                if (fx < 0)
                    fx = 0;
                if (fx > w - 1)
                    fx = w - 1;
                int x0 = (int)fx;
                int x1 = x0 + 1 < w ? x0 + 1 : w - 1;
                float ax = (float)(fx - x0);
                float t = r0[3 * x0] + (r0[3 * x1] - r0[3 * x0]) * ax;
                float b = r1[3 * x0] + (r1[3 * x1] - r1[3 * x0]) * ax;
                float v = t + (b - t) * ay;
                if (q8)
                    v = floorf(v + 0.5f);
                o[x] = (v - mean) * scale;
            }
        }
    }
    return 0;
}

int its_det_letterbox(const its_det_preproc *pre, const its_image *src, float *dst,
                      its_letterbox *lb)
{
    if (!src)
        return ITS_EINVAL;
    return its_det_letterbox_raw(pre, src->data, src->width, src->height, src->stride, src->fmt,
                                 dst, lb);
}

void its_det_preproc_default(its_det_family family, int w, int h, its_det_preproc *pre)
{
    memset(pre, 0, sizeof *pre);
    pre->width = w;
    pre->height = h;
    switch (family) {
    case ITS_DET_YOLOX:
        /* YOLOX >= 0.1.1rc0: BGR, raw 0-255, top-left, pad 114. */
        pre->bgr = 1;
        pre->center = 0;
        pre->pad = 114;
        pre->round8 = 1;
        for (int c = 0; c < 3; c++)
            pre->scale[c] = 1.0f;
        break;
    case ITS_DET_NANODET: {
        /* NanoDet: BGR, (x - mean) / std per channel, centred, pad 0 (black). */
        static const float mean[3] = {103.53f, 116.28f, 123.675f};
        static const float std[3] = {57.375f, 57.12f, 58.395f};
        pre->bgr = 1;
        pre->center = 1;
        pre->pad = 0;
        for (int c = 0; c < 3; c++) {
            pre->mean[c] = mean[c];
            pre->scale[c] = 1.0f / std[c];
        }
        break;
    }
    default:
        /* Ultralytics and YOLOv5: RGB, / 255, centred, pad 114. */
        pre->bgr = 0;
        pre->center = 1;
        pre->pad = 114;
        pre->round8 = 1;
        for (int c = 0; c < 3; c++)
            pre->scale[c] = 1.0f / 255.0f;
        break;
    }
}

/*
 * NV12 in C, by the definitions the cuda letterbox kernel implements (src/engine/cuda/
 * prepost.cu), for the tests: RGB to NV12 and back in BT.601 limited range, and the
 * Ultralytics letterbox of an NV12 frame into NCHW fp32.
 *
 *     nv12_from_rgb(rgb, w, h, y, uv);                 // w, h even; uv: w x h/2 bytes
 *     nv12_letterbox_ref(y, w, uv, w, w, h, 640, 640, dst);   // dst: 3 x 640 x 640 floats
 *
 * The letterbox: r = min(W/w, H/h), new size round(w r) x round(h r), left = round((W-nw)/2 -
 * 0.1), top likewise; canvas pixel (x, y) inside the image is the bilinear sample (half-pixel
 * centres, edges clamped) of the four source pixels, each converted to RGB first (Y at the
 * pixel, U and V of its 2x2 block); outside it is 114; values / 255.
 */
#ifndef ITS_TEST_NV12_REF_H
#define ITS_TEST_NV12_REF_H

#include <stdint.h>

/* Packed RGB (stride 3w) to NV12, BT.601 limited range; chroma is the mean of each 2x2 block. */
void nv12_from_rgb(const uint8_t *rgb, int w, int h, uint8_t *y, uint8_t *uv);
/* The RGB of pixel (x, y) of an NV12 frame, unrounded, clamped to [0, 255]. */
void nv12_pixel_rgb(const uint8_t *y, int ystride, const uint8_t *uv, int uvstride, int x, int py,
                    double *rgb);
/* The letterbox of an NV12 frame into dst (3 planes of dst_w x dst_h). */
void nv12_letterbox_ref(const uint8_t *y, int ystride, const uint8_t *uv, int uvstride, int w,
                        int h, int dst_w, int dst_h, float *dst);

#endif

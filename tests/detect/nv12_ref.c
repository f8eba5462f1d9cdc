/* NV12 by definition for the tests: see nv12_ref.h. */
#include "nv12_ref.h"

#include <math.h>
#include <stddef.h>

static uint8_t clamp8(double v)
{
    v = floor(v + 0.5);
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

void nv12_from_rgb(const uint8_t *rgb, int w, int h, uint8_t *y, uint8_t *uv)
{
    for (int j = 0; j < h; j++)
        for (int i = 0; i < w; i++) {
            const uint8_t *p = rgb + ((size_t)j * w + i) * 3;
            y[(size_t)j * w + i] =
                clamp8(16.0 + 0.256788 * p[0] + 0.504129 * p[1] + 0.097906 * p[2]);
        }
    for (int j = 0; j < h / 2; j++)
        for (int i = 0; i < w / 2; i++) {
            double r = 0, g = 0, b = 0;
            for (int k = 0; k < 4; k++) {
                const uint8_t *p = rgb + ((size_t)(2 * j + k / 2) * w + 2 * i + k % 2) * 3;
                r += p[0] / 4.0;
                g += p[1] / 4.0;
                b += p[2] / 4.0;
            }
            uint8_t *c = uv + (size_t)j * w + 2 * i;
            c[0] = clamp8(128.0 - 0.148223 * r - 0.290993 * g + 0.439216 * b);
            c[1] = clamp8(128.0 + 0.439216 * r - 0.367788 * g - 0.071427 * b);
        }
}

void nv12_pixel_rgb(const uint8_t *y, int ystride, const uint8_t *uv, int uvstride, int x, int py,
                    double *rgb)
{
    double Y = y[(size_t)py * ystride + x];
    const uint8_t *c = uv + (size_t)(py / 2) * uvstride + (x / 2) * 2;
    double U = c[0] - 128.0, V = c[1] - 128.0, yy = 1.164383 * (Y - 16.0);
    rgb[0] = fmin(fmax(yy + 1.596027 * V, 0), 255);
    rgb[1] = fmin(fmax(yy - 0.391762 * U - 0.812968 * V, 0), 255);
    rgb[2] = fmin(fmax(yy + 2.017232 * U, 0), 255);
}

void nv12_letterbox_ref(const uint8_t *y, int ystride, const uint8_t *uv, int uvstride, int w,
                        int h, int dst_w, int dst_h, float *dst)
{
    double r = fmin((double)dst_w / w, (double)dst_h / h);
    int nw = (int)floor(w * r + 0.5), nh = (int)floor(h * r + 0.5);
    int left = (int)floor((dst_w - nw) / 2.0 - 0.1 + 0.5);
    int top = (int)floor((dst_h - nh) / 2.0 - 0.1 + 0.5);
    size_t plane = (size_t)dst_w * dst_h;
    for (int py = 0; py < dst_h; py++)
        for (int px = 0; px < dst_w; px++) {
            int ix = px - left, iy = py - top;
            double out[3] = {114, 114, 114};
            if (ix >= 0 && iy >= 0 && ix < nw && iy < nh) {
                double sx = fmax((ix + 0.5) * w / nw - 0.5, 0);
                double sy = fmax((iy + 0.5) * h / nh - 0.5, 0);
                int x0 = (int)sx < w - 1 ? (int)sx : w - 1, y0 = (int)sy < h - 1 ? (int)sy : h - 1;
                int x1 = x0 + 1 < w ? x0 + 1 : w - 1, y1 = y0 + 1 < h ? y0 + 1 : h - 1;
                double ax = x0 == w - 1 ? 0 : sx - x0, ay = y0 == h - 1 ? 0 : sy - y0;
                double a[3], b[3], c[3], d[3];
                nv12_pixel_rgb(y, ystride, uv, uvstride, x0, y0, a);
                nv12_pixel_rgb(y, ystride, uv, uvstride, x1, y0, b);
                nv12_pixel_rgb(y, ystride, uv, uvstride, x0, y1, c);
                nv12_pixel_rgb(y, ystride, uv, uvstride, x1, y1, d);
                for (int k = 0; k < 3; k++) {
                    double t = a[k] + (b[k] - a[k]) * ax, u = c[k] + (d[k] - c[k]) * ax;
                    out[k] = t + (u - t) * ay;
                }
            }
            for (int k = 0; k < 3; k++)
                dst[k * plane + (size_t)py * dst_w + px] = (float)(out[k] / 255.0);
        }
}

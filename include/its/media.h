/*
 * its/media.h - still-image decoding (JPEG via libturbojpeg, PNG via libpng) to packed 8-bit
 * RGB or BGR, JPEG encoding, and drawing boxes, lines and labels for annotated output.
 *
 *     its_image img;
 *     char err[256];
 *     its_image_opts o = {.fmt = ITS_PIX_BGR24};
 *     int rc = its_image_load("bus.jpg", &o, &img, err, sizeof err);
 *     if (rc < 0)
 *         fprintf(stderr, "%s\n", err);   // "bus.jpg: truncated JPEG data (...)"
 *     ... img.data[y * img.stride + 3 * x + c] ...
 *     its_image_free(&img);
 *
 * Contract: the decoder never trusts its input. Anything that is not a complete, valid JPEG or
 * PNG gives ITS_EDECODE (libjpeg warnings such as premature end of data count as errors, so a
 * truncated file is never returned half grey); an image larger than opts->max_pixels gives
 * ITS_ERANGE before any pixel buffer is allocated; an unreadable file gives ITS_ENOENT/ITS_EIO.
 * The pixel buffer comes from its_malloc (ITS_MOD_INGEST) and belongs to the caller until
 * its_image_free. Functions are reentrant: any thread may decode, each into its own image.
 * Every failure is counted (its_media_error_count) for the metrics endpoint.
 */
#ifndef ITS_MEDIA_H
#define ITS_MEDIA_H

#include <stddef.h>
#include <stdint.h>

#include "its/det.h" /* its_pixfmt: images are ITS_PIX_RGB24 or ITS_PIX_BGR24 */

typedef enum its_image_format {
    ITS_IMG_UNKNOWN = 0,
    ITS_IMG_JPEG = 1,
    ITS_IMG_PNG = 2,
} its_image_format;

/* A packed 8-bit, 3-channel image. stride is in bytes (>= 3 * width). */
typedef struct its_image {
    uint8_t *data;
    int width;
    int height;
    int stride;
    its_pixfmt fmt;
} its_image;

/* Default cap on decoded size: 2^27 pixels (e.g. 16384 x 8192), 384 MiB of RGB. */
#define ITS_IMAGE_DEFAULT_MAX_PIXELS (1L << 27)

/* its_image_load refuses files larger than this (ITS_ERANGE). */
#define ITS_IMAGE_MAX_FILE_BYTES (256L << 20)

typedef struct its_image_opts {
    its_pixfmt fmt;  /* output channel order */
    long max_pixels; /* 0 = ITS_IMAGE_DEFAULT_MAX_PIXELS */
} its_image_opts;

/* Sniff the container from the first bytes (no decoding). */
its_image_format its_image_probe(const void *data, size_t len);

/* Decode a JPEG or PNG held in memory. opts may be NULL (RGB, default cap). On failure *out
 * is zeroed and err (if given) says why. */
int its_image_decode(const void *data, size_t len, const its_image_opts *opts, its_image *out,
                     char *err, size_t errlen);
/* Read a file and decode it; err names the path. */
int its_image_load(const char *path, const its_image_opts *opts, its_image *out, char *err,
                   size_t errlen);
void its_image_free(its_image *img);

/* Allocate a blank (zeroed) image. */
int its_image_alloc(its_image *img, int width, int height, its_pixfmt fmt);

/* Encode as baseline JPEG (quality 1..100). *out is its_malloc'd; free with its_free. */
int its_image_encode_jpeg(const its_image *img, int quality, uint8_t **out, size_t *outlen,
                          char *err, size_t errlen);
int its_image_save_jpeg(const its_image *img, const char *path, int quality, char *err,
                        size_t errlen);
/* A packed RGB/BGR image as an 8-bit RGB PNG file. */
int its_image_save_png(const its_image *img, const char *path, char *err, size_t errlen);

/* Drawing, clipped to the image; colours are RGB whatever the image's channel order.
 * A rectangle outline t pixels thick inside (x1, y1)-(x2, y2); a segment t pixels wide; a
 * label in a 5x7 font scaled s times on a bg box of (6 n + 1) s x 9 s pixels whose top left
 * is (x, y) (letters are drawn lower case; characters outside [a-z0-9 ._:-] as a box). */
void its_image_draw_box(its_image *img, int x1, int y1, int x2, int y2, int t,
                        const uint8_t rgb[3]);
void its_image_draw_line(its_image *img, double x0, double y0, double x1, double y1, int t,
                         const uint8_t rgb[3]);
void its_image_draw_text(its_image *img, int x, int y, int s, const char *text, const uint8_t fg[3],
                         const uint8_t bg[3]);

/* Number of decode/encode failures since start (all threads). */
unsigned long its_media_error_count(void);

#endif

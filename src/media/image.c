/*
 * Still-image decoding and JPEG encoding. Both libraries are driven through their "simple"
 * APIs (TurboJPEG, libpng's png_image), which do their own setjmp-based error recovery, so a
 * corrupt file can never longjmp through our frames. We only have to be strict about two
 * things the libraries let slide: libjpeg warnings (a truncated scan still "succeeds", the
 * missing rows filled with grey) and absurd header dimensions (a 30-byte file may claim
 * 65535 x 65535 pixels).
 */
#include "its/media.h"

#include <errno.h>
#include <limits.h>
#include <png.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>

#include "its/alloc.h"
#include "its/error.h"
#include "its/log.h"

static atomic_ulong g_errors;

unsigned long its_media_error_count(void)
{
    return atomic_load(&g_errors);
}

__attribute__((format(printf, 4, 5))) static int fail(int code, char *err, size_t errlen,
                                                      const char *fmt, ...)
{
    atomic_fetch_add(&g_errors, 1);
    va_list ap;
    va_start(ap, fmt);
    its_vseterr(err, errlen, code, fmt, ap);
    va_end(ap);
    return code;
}

its_image_format its_image_probe(const void *data, size_t len)
{
    const uint8_t *p = data;
    if (len >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF)
        return ITS_IMG_JPEG;
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    if (len >= 8 && memcmp(p, png_sig, 8) == 0)
        return ITS_IMG_PNG;
    return ITS_IMG_UNKNOWN;
}

int its_image_alloc(its_image *img, int width, int height, its_pixfmt fmt)
{
    memset(img, 0, sizeof *img);
    if (width <= 0 || height <= 0 || width > INT_MAX / 3)
        return ITS_EINVAL;
    size_t stride = (size_t)width * 3;
    if ((size_t)height > SIZE_MAX / stride)
        return ITS_EOVERFLOW;
    img->data = its_calloc(ITS_MOD_INGEST, (size_t)height, stride);
    if (!img->data)
        return ITS_ENOMEM;
    img->width = width;
    img->height = height;
    img->stride = (int)stride;
    img->fmt = fmt;
    return 0;
}

void its_image_free(its_image *img)
{
    if (!img)
        return;
    its_free(img->data);
    memset(img, 0, sizeof *img);
}

static int check_dims(long w, long h, long max_pixels, const char *kind, char *err, size_t errlen)
{
    if (w <= 0 || h <= 0)
        return fail(ITS_EDECODE, err, errlen, "%s: invalid dimensions %ldx%ld", kind, w, h);
    if (w > INT_MAX / 3 || h > INT_MAX || w > max_pixels / h)
        return fail(ITS_ERANGE, err, errlen, "%s: %ldx%ld exceeds the limit of %ld pixels", kind, w,
                    h, max_pixels);
    return 0;
}

static int decode_jpeg(const uint8_t *data, size_t len, its_pixfmt fmt, long max_pixels,
                       its_image *out, char *err, size_t errlen)
{
    if (len > ULONG_MAX)
        return fail(ITS_ERANGE, err, errlen, "JPEG: input too large");
    tjhandle tj = tjInitDecompress();
    if (!tj)
        return fail(ITS_ENOMEM, err, errlen, "JPEG: cannot create decoder: %s",
                    tjGetErrorStr2(NULL));
    int w = 0, h = 0, subsamp = 0, colorspace = 0;
    int rc = 0;
    if (tjDecompressHeader3(tj, data, (unsigned long)len, &w, &h, &subsamp, &colorspace) != 0) {
        rc = fail(ITS_EDECODE, err, errlen, "JPEG: bad header: %s", tjGetErrorStr2(tj));
        goto done;
    }
    rc = check_dims(w, h, max_pixels, "JPEG", err, errlen);
    if (rc < 0)
        goto done;
    rc = its_image_alloc(out, w, h, fmt);
    if (rc < 0) {
        rc = fail(rc, err, errlen, "JPEG: cannot allocate %dx%d image", w, h);
        goto done;
    }
    /* TJFLAG_STOPONWARNING: a corrupt or truncated scan is an error, not a grey image. */
    if (tjDecompress2(tj, data, (unsigned long)len, out->data, w, out->stride, h,
                      fmt == ITS_PIX_BGR24 ? TJPF_BGR : TJPF_RGB,
                      TJFLAG_STOPONWARNING | TJFLAG_ACCURATEDCT) != 0) {
        rc = fail(ITS_EDECODE, err, errlen, "JPEG: corrupt or truncated data: %s",
                  tjGetErrorStr2(tj));
        its_image_free(out);
    }
done:
    tjDestroy(tj);
    return rc;
}

static int decode_png(const uint8_t *data, size_t len, its_pixfmt fmt, long max_pixels,
                      its_image *out, char *err, size_t errlen)
{
    png_image pi;
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&pi, data, len)) {
        int rc = fail(ITS_EDECODE, err, errlen, "PNG: bad header: %s", pi.message);
        png_image_free(&pi);
        return rc;
    }
    int rc = check_dims(pi.width, pi.height, max_pixels, "PNG", err, errlen);
    if (rc < 0) {
        png_image_free(&pi);
        return rc;
    }
    /* libpng's simplified API works in linear light whenever it has to convert bit depth or
     * remove alpha: 16-bit samples would come out gamma-encoded (far too bright) and alpha
     * removal loses precision in the shadows. So such files are read without conversion
     * (16-bit and/or with alpha kept) and narrowed here: 16 -> 8 bits by rounding, alpha
     * dropped as OpenCV's imread(IMREAD_COLOR) does. Plain 8-bit files decode directly. */
    const int wide = (pi.format & PNG_FORMAT_FLAG_LINEAR) != 0;
    const int alpha = (pi.format & PNG_FORMAT_FLAG_ALPHA) != 0;
    const int direct = !wide && !alpha;
    if (direct)
        pi.format = fmt == ITS_PIX_BGR24 ? PNG_FORMAT_BGR : PNG_FORMAT_RGB;
    else
        pi.format =
            (wide ? PNG_FORMAT_LINEAR_RGB : PNG_FORMAT_RGB) | (alpha ? PNG_FORMAT_FLAG_ALPHA : 0);
    rc = its_image_alloc(out, (int)pi.width, (int)pi.height, fmt);
    if (rc < 0) {
        png_image_free(&pi);
        return fail(rc, err, errlen, "PNG: cannot allocate %ux%u image", pi.width, pi.height);
    }
    const size_t ch = alpha ? 4 : 3, bps = wide ? 2 : 1;
    void *wbuf = NULL;
    if (!direct) {
        wbuf = its_malloc(ITS_MOD_INGEST, (size_t)pi.width * pi.height * ch * bps);
        if (!wbuf) {
            its_image_free(out);
            png_image_free(&pi);
            return fail(ITS_ENOMEM, err, errlen, "PNG: cannot allocate %ux%u staging image",
                        pi.width, pi.height);
        }
    }
    if (!png_image_finish_read(&pi, NULL, direct ? (void *)out->data : wbuf,
                               direct ? out->stride : 0, NULL)) {
        rc = fail(ITS_EDECODE, err, errlen, "PNG: corrupt or truncated data: %s", pi.message);
        its_image_free(out);
    } else if (!direct) {
        const int swap = fmt == ITS_PIX_BGR24;
        for (size_t y = 0; y < pi.height; y++) {
            uint8_t *d = out->data + y * (size_t)out->stride;
            for (size_t x = 0; x < pi.width; x++, d += 3) {
                size_t i = (y * pi.width + x) * ch;
                for (int c = 0; c < 3; c++) {
                    uint8_t v;
                    if (wide)
                        v = (uint8_t)(((uint32_t)((uint16_t *)wbuf)[i + c] * 255 + 32767) / 65535);
                    else
                        v = ((uint8_t *)wbuf)[i + c];
                    d[swap ? 2 - c : c] = v;
                }
            }
        }
    }
    its_free(wbuf);
    png_image_free(&pi);
    return rc;
}

int its_image_decode(const void *data, size_t len, const its_image_opts *opts, its_image *out,
                     char *err, size_t errlen)
{
    if (!out)
        return ITS_EINVAL;
    memset(out, 0, sizeof *out);
    if (!data && len)
        return fail(ITS_EINVAL, err, errlen, "no data");
    its_pixfmt fmt = opts ? opts->fmt : ITS_PIX_RGB24;
    if (fmt != ITS_PIX_RGB24 && fmt != ITS_PIX_BGR24)
        return fail(ITS_EINVAL, err, errlen, "unknown pixel format %d", (int)fmt);
    long max_pixels =
        opts && opts->max_pixels > 0 ? opts->max_pixels : ITS_IMAGE_DEFAULT_MAX_PIXELS;
    switch (its_image_probe(data, len)) {
    case ITS_IMG_JPEG:
        return decode_jpeg(data, len, fmt, max_pixels, out, err, errlen);
    case ITS_IMG_PNG:
        return decode_png(data, len, fmt, max_pixels, out, err, errlen);
    default:
        return fail(ITS_EDECODE, err, errlen, "not a JPEG or PNG image (%zu bytes)", len);
    }
}

int its_image_load(const char *path, const its_image_opts *opts, its_image *out, char *err,
                   size_t errlen)
{
    if (!out)
        return ITS_EINVAL;
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail(errno == ENOENT ? ITS_ENOENT : ITS_EIO, err, errlen, "%s: %s", path,
                    strerror(errno));
    uint8_t *buf = NULL;
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return fail(ITS_EIO, err, errlen, "%s: not a regular file", path);
    }
    if (st.st_size > ITS_IMAGE_MAX_FILE_BYTES) {
        fclose(f);
        return fail(ITS_ERANGE, err, errlen, "%s: %lld bytes is too large for an image", path,
                    (long long)st.st_size);
    }
    long n = (long)st.st_size;
    buf = its_malloc(ITS_MOD_INGEST, n > 0 ? (size_t)n : 1);
    if (!buf) {
        fclose(f);
        return fail(ITS_ENOMEM, err, errlen, "%s: cannot allocate %ld bytes", path, n);
    }
    size_t got = fread(buf, 1, (size_t)n, f);
    int ioerr = ferror(f);
    fclose(f);
    if (ioerr || got != (size_t)n) {
        its_free(buf);
        return fail(ITS_EIO, err, errlen, "%s: read error", path);
    }
    char inner[200];
    int rc = its_image_decode(buf, (size_t)n, opts, out, inner, sizeof inner);
    its_free(buf);
    if (rc < 0 && err && errlen)
        snprintf(err, errlen, "%s: %s", path, inner);
    return rc;
}

int its_image_encode_jpeg(const its_image *img, int quality, uint8_t **out, size_t *outlen,
                          char *err, size_t errlen)
{
    *out = NULL;
    *outlen = 0;
    if (!img || !img->data || img->width <= 0 || img->height <= 0 || quality < 1 || quality > 100)
        return fail(ITS_EINVAL, err, errlen, "JPEG encode: invalid image or quality");
    tjhandle tj = tjInitCompress();
    if (!tj)
        return fail(ITS_ENOMEM, err, errlen, "JPEG encode: %s", tjGetErrorStr2(NULL));
    unsigned long cap = tjBufSize(img->width, img->height, TJSAMP_420);
    if (cap == (unsigned long)-1) {
        tjDestroy(tj);
        return fail(ITS_ERANGE, err, errlen, "JPEG encode: image too large");
    }
    /* Our own buffer, sized for the worst case, so TurboJPEG never reallocates it. */
    uint8_t *buf = its_malloc(ITS_MOD_INGEST, cap);
    if (!buf) {
        tjDestroy(tj);
        return fail(ITS_ENOMEM, err, errlen, "JPEG encode: cannot allocate %lu bytes", cap);
    }
    unsigned long size = cap;
    int rc = 0;
    if (tjCompress2(tj, img->data, img->width, img->stride, img->height,
                    img->fmt == ITS_PIX_BGR24 ? TJPF_BGR : TJPF_RGB, &buf, &size, TJSAMP_420,
                    quality, TJFLAG_NOREALLOC) != 0) {
        rc = fail(ITS_EIO, err, errlen, "JPEG encode: %s", tjGetErrorStr2(tj));
        its_free(buf);
    } else {
        *out = buf;
        *outlen = size;
    }
    tjDestroy(tj);
    return rc;
}

int its_image_save_jpeg(const its_image *img, const char *path, int quality, char *err,
                        size_t errlen)
{
    uint8_t *buf;
    size_t len;
    int rc = its_image_encode_jpeg(img, quality, &buf, &len, err, errlen);
    if (rc < 0)
        return rc;
    FILE *f = fopen(path, "wb");
    if (!f) {
        its_free(buf);
        return fail(ITS_EIO, err, errlen, "%s: %s", path, strerror(errno));
    }
    size_t put = fwrite(buf, 1, len, f);
    int cerr = fclose(f);
    its_free(buf);
    if (put != len || cerr != 0)
        return fail(ITS_EIO, err, errlen, "%s: write error", path);
    return 0;
}

int its_image_save_png(const its_image *img, const char *path, char *err, size_t errlen)
{
    if (!img || !img->data || (img->fmt != ITS_PIX_RGB24 && img->fmt != ITS_PIX_BGR24))
        return fail(ITS_EINVAL, err, errlen, "%s: not a packed RGB/BGR image", path);
    png_image pi;
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    pi.width = (png_uint_32)img->width;
    pi.height = (png_uint_32)img->height;
    pi.format = img->fmt == ITS_PIX_BGR24 ? PNG_FORMAT_BGR : PNG_FORMAT_RGB;
    if (!png_image_write_to_file(&pi, path, 0, img->data, (png_int_32)img->stride, NULL)) {
        int rc = fail(ITS_EIO, err, errlen, "%s: %s", path, pi.message);
        png_image_free(&pi);
        return rc;
    }
    return 0;
}

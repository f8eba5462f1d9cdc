/*
 * Still-image decoding: pixels against an independent decoder (FFmpeg's, which wrote the
 * .ppm files in data/ from the same .png/.jpg), conversions of every PNG colour type, and
 * clean errors for truncated, corrupt, oversized and missing inputs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "its/alloc.h"
#include "its/error.h"
#include "its/media.h"
#include "testutil.h"

static const char *data_path(const char *name, char *buf, size_t len)
{
    char rel[256];
    snprintf(rel, sizeof rel, "tests/media/data/%s", name);
    return its_test_source_path(rel, buf, len);
}

/* Read a binary PPM (P6, maxval 255) written by FFmpeg. */
static uint8_t *read_ppm(const char *name, int *w, int *h)
{
    char p[1024];
    size_t len;
    uint8_t *d = its_test_read_file(data_path(name, p, sizeof p), &len);
    assert_non_null(d);
    int maxv, off = 0;
    assert_int_equal(sscanf((char *)d, "P6 %d %d %d%n", w, h, &maxv, &off), 3);
    assert_int_equal(maxv, 255);
    off++; /* one whitespace byte after maxval */
    assert_int_equal(len - (size_t)off, (size_t)*w * *h * 3);
    uint8_t *px = its_malloc(ITS_MOD_TEST, len);
    memcpy(px, d + off, len - (size_t)off);
    its_free(d);
    return px;
}

static void load(const char *name, its_pixfmt fmt, its_image *img)
{
    char p[1024], err[256];
    its_image_opts o = {.fmt = fmt};
    int rc = its_image_load(data_path(name, p, sizeof p), &o, img, err, sizeof err);
    if (rc < 0)
        printf("%s\n", err);
    assert_int_equal(rc, 0);
}

static void test_png_exact(void **state)
{
    (void)state;
    int w, h;
    uint8_t *ref = read_ppm("dog_96x72_png.ppm", &w, &h);
    its_image img;
    load("dog_96x72.png", ITS_PIX_RGB24, &img);
    assert_int_equal(img.width, w);
    assert_int_equal(img.height, h);
    for (int y = 0; y < h; y++)
        assert_memory_equal(img.data + (size_t)y * img.stride, ref + (size_t)y * w * 3,
                            (size_t)w * 3);
    its_image bgr;
    load("dog_96x72.png", ITS_PIX_BGR24, &bgr);
    assert_int_equal(bgr.fmt, ITS_PIX_BGR24);
    for (int i = 0; i < w * h; i++) {
        assert_int_equal(bgr.data[3 * i], ref[3 * i + 2]);
        assert_int_equal(bgr.data[3 * i + 1], ref[3 * i + 1]);
        assert_int_equal(bgr.data[3 * i + 2], ref[3 * i]);
    }
    its_image_free(&img);
    its_image_free(&bgr);
    its_free(ref);
}

static void test_jpeg_vs_ffmpeg(void **state)
{
    (void)state;
    int w, h;
    uint8_t *ref = read_ppm("dog_96x72_jpg.ppm", &w, &h);
    its_image img;
    load("dog_96x72.jpg", ITS_PIX_RGB24, &img);
    assert_int_equal(img.width, w);
    assert_int_equal(img.height, h);
    /* Two JPEG decoders agree to within IDCT and chroma-upsampling rounding. */
    long sum = 0;
    int maxd = 0;
    for (int i = 0; i < w * h * 3; i++) {
        int d = abs((int)img.data[i] - ref[i]);
        sum += d;
        maxd = d > maxd ? d : maxd;
    }
    double mean = (double)sum / (w * h * 3);
    printf("  JPEG vs FFmpeg's decoder: mean |diff| %.3f, max %d\n", mean, maxd);
    assert_true(mean < 1.5);
    assert_true(maxd <= 24);
    its_image_free(&img);
    its_free(ref);
}

static void test_png_colour_types(void **state)
{
    (void)state;
    static const char *names[] = {"bus_30x40_rgba.png", "bus_30x40_gray.png", "bus_30x40_pal8.png",
                                  "bus_30x40_rgb48.png", "bus_30x40_gray.jpg"};
    its_image ref;
    load("bus_30x40_rgb48.png", ITS_PIX_RGB24, &ref);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        its_image img;
        load(names[i], ITS_PIX_RGB24, &img);
        assert_int_equal(img.width, 30);
        assert_int_equal(img.height, 40);
        assert_int_equal(img.stride, 90);
        /* Every variant is the same picture: mean difference to the 16-bit one is small
         * (grey ones lose colour, so compare luma-ish: the mean over all channels). */
        long s1 = 0, s2 = 0;
        for (int k = 0; k < 30 * 40 * 3; k++) {
            s1 += img.data[k];
            s2 += ref.data[k];
        }
        printf("  %s: mean level %.1f vs %.1f\n", names[i], s1 / 3600.0, s2 / 3600.0);
        assert_true(labs(s1 - s2) / (30 * 40 * 3) < 12);
        its_image_free(&img);
    }
    its_image_free(&ref);
}

static void expect_decode_error(const uint8_t *d, size_t n, int code)
{
    its_image img;
    char err[256] = "";
    unsigned long before = its_media_error_count();
    int rc = its_image_decode(d, n, NULL, &img, err, sizeof err);
    if (rc != code)
        printf("  %zu bytes: got %d (%s)\n", n, rc, err);
    assert_int_equal(rc, code);
    assert_null(img.data);
    assert_true(err[0] != '\0');
    assert_true(its_media_error_count() == before + 1);
}

static void test_corrupt_inputs(void **state)
{
    (void)state;
    static const char *files[] = {"dog_96x72.jpg", "dog_96x72.png", "zidane_64x36.jpg"};
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        char p[1024];
        size_t len;
        uint8_t *d = its_test_read_file(data_path(files[f], p, sizeof p), &len);
        assert_non_null(d);
        /* Truncated anywhere past the signature: always an error, never a partial image. */
        /* (A PNG cut before or inside its final 12-byte IEND chunk still holds every pixel.) */
        size_t end = its_image_probe(d, len) == ITS_IMG_PNG ? len - 13 : len - 2;
        for (size_t cut = 3; cut < end; cut += len / 17 + 1)
            expect_decode_error(d, cut, ITS_EDECODE);
        expect_decode_error(d, end, ITS_EDECODE);
        /* Bytes flipped inside the data (PNG: CRC; JPEG: entropy data or markers). */
        uint8_t *c = its_malloc(ITS_MOD_TEST, len);
        memcpy(c, d, len);
        for (size_t k = len / 3; k < len / 3 + 64 && k < len; k++)
            c[k] ^= 0x5A;
        its_image img;
        int rc = its_image_decode(c, len, NULL, &img, NULL, 0);
        if (rc == 0) /* JPEG may decode garbage pixels without a warning; size must hold */
            its_image_free(&img);
        else
            assert_int_equal(rc, ITS_EDECODE);
        its_free(c);
        its_free(d);
    }
    static const uint8_t junk[] = "this is not an image at all";
    expect_decode_error(junk, sizeof junk, ITS_EDECODE);
    expect_decode_error(junk, 0, ITS_EDECODE);
    /* A JPEG signature and nothing else. */
    static const uint8_t soi[] = {0xFF, 0xD8, 0xFF, 0xE0, 0, 16};
    expect_decode_error(soi, sizeof soi, ITS_EDECODE);
}

static void test_limits_and_files(void **state)
{
    (void)state;
    char p[1024], err[256];
    size_t len;
    uint8_t *d = its_test_read_file(data_path("dog_96x72.jpg", p, sizeof p), &len);
    its_image img;
    its_image_opts o = {.fmt = ITS_PIX_RGB24, .max_pixels = 96 * 72 - 1};
    assert_int_equal(its_image_decode(d, len, &o, &img, err, sizeof err), ITS_ERANGE);
    assert_non_null(strstr(err, "96x72"));
    o.max_pixels = 96 * 72;
    assert_int_equal(its_image_decode(d, len, &o, &img, err, sizeof err), 0);
    its_image_free(&img);
    its_free(d);
    d = its_test_read_file(data_path("dog_96x72.png", p, sizeof p), &len);
    o.max_pixels = 100;
    assert_int_equal(its_image_decode(d, len, &o, &img, err, sizeof err), ITS_ERANGE);
    its_free(d);

    assert_int_equal(its_image_load("/nonexistent/x.jpg", NULL, &img, err, sizeof err), ITS_ENOENT);
    assert_non_null(strstr(err, "/nonexistent/x.jpg"));
    /* A directory is not an image. */
    assert_true(its_image_load("/", NULL, &img, err, sizeof err) < 0);
    assert_int_equal(its_image_probe("\xFF\xD8\xFF", 3), ITS_IMG_JPEG);
    assert_int_equal(its_image_probe("\x89PNG\r\n\x1A\n", 8), ITS_IMG_PNG);
    assert_int_equal(its_image_probe("GIF89a", 6), ITS_IMG_UNKNOWN);
}

static void test_alloc_failure(void **state)
{
    (void)state;
    char p[1024];
    size_t len;
    static const char *files[] = {"dog_96x72.jpg", "dog_96x72.png"};
    for (int f = 0; f < 2; f++) {
        uint8_t *d = its_test_read_file(data_path(files[f], p, sizeof p), &len);
        its_image img;
        its_alloc_fail_after(ITS_MOD_INGEST, 0, 1);
        assert_int_equal(its_image_decode(d, len, NULL, &img, NULL, 0), ITS_ENOMEM);
        its_alloc_fail_reset();
        assert_null(img.data);
        its_free(d);
    }
}

static void test_jpeg_roundtrip(void **state)
{
    (void)state;
    its_image img, back;
    load("dog_96x72.png", ITS_PIX_BGR24, &img);
    uint8_t *jpg;
    size_t n;
    char err[256];
    assert_int_equal(its_image_encode_jpeg(&img, 95, &jpg, &n, err, sizeof err), 0);
    assert_int_equal(its_image_probe(jpg, n), ITS_IMG_JPEG);
    its_image_opts o = {.fmt = ITS_PIX_BGR24};
    assert_int_equal(its_image_decode(jpg, n, &o, &back, err, sizeof err), 0);
    assert_int_equal(back.width, img.width);
    assert_int_equal(back.height, img.height);
    long sum = 0;
    for (int i = 0; i < img.width * img.height * 3; i++)
        sum += abs((int)img.data[i] - back.data[i]);
    assert_true((double)sum / (img.width * img.height * 3) < 4.0);
    its_free(jpg);
    assert_int_equal(its_image_encode_jpeg(&img, 0, &jpg, &n, err, sizeof err), ITS_EINVAL);
    assert_null(jpg);
    char tmp[256], path[400];
    assert_non_null(its_test_tmpdir(tmp, sizeof tmp));
    snprintf(path, sizeof path, "%s/out.jpg", tmp);
    assert_int_equal(its_image_save_jpeg(&img, path, 80, err, sizeof err), 0);
    assert_true(its_image_save_jpeg(&img, "/nonexistent/dir/x.jpg", 80, err, sizeof err) < 0);
    its_image chk;
    assert_int_equal(its_image_load(path, NULL, &chk, err, sizeof err), 0);
    assert_int_equal(chk.width, img.width);
    its_image_free(&chk);
    remove(path);
    remove(tmp);
    its_free(jpg);
    its_image_free(&img);
    its_image_free(&back);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_png_exact),        cmocka_unit_test(test_jpeg_vs_ffmpeg),
        cmocka_unit_test(test_png_colour_types), cmocka_unit_test(test_corrupt_inputs),
        cmocka_unit_test(test_limits_and_files), cmocka_unit_test(test_alloc_failure),
        cmocka_unit_test(test_jpeg_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Quality scores move the right way on synthetic frames: a textured street-like scene with
 * moving blocks, then dark, blurred, frozen and covered versions of it; implausible boxes and
 * flickering tracks lower the detection and temporal parts. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "its/alloc.h"
#include "its/error.h"
#include "its/quality.h"

#define W 640
#define H 360

static uint8_t img[W * H], tmp[W * H];
static uint32_t rs = 12345;

static int rnd(int n)
{
    rs = rs * 1664525u + 1013904223u;
    return (int)((rs >> 8) % (unsigned)n);
}

/* Road-like scene: vertical gradient, lane markings, texture noise, moving "vehicles". */
static void scene(int frame)
{
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            int v = 70 + y * 80 / H + rnd(17) - 8;
            if ((x / 4) % 40 == 0 && (y / 20) % 2 == 0)
                v = 220;
            img[y * W + x] = (uint8_t)v;
        }
    for (int k = 0; k < 8; k++) {
        int x0 = (k * 83 + frame * (2 + k % 3)) % (W - 60), y0 = 40 + k * 38;
        uint8_t c = (uint8_t)(k % 2 ? 30 : 200);
        for (int y = y0; y < y0 + 30 && y < H; y++)
            for (int x = x0; x < x0 + 50; x++)
                img[y * W + x] = c;
    }
}

static void darken(void)
{
    for (int i = 0; i < W * H; i++)
        img[i] = (uint8_t)(img[i] * 0.08);
}

/* Three passes of a 17-pixel box blur in each direction (close to a Gaussian, sigma ~ 8). */
static void blur(void)
{
    for (int pass = 0; pass < 3; pass++) {
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                int s = 0, n = 0;
                for (int d = -8; d <= 8; d++)
                    if (x + d >= 0 && x + d < W)
                        s += img[y * W + x + d], n++;
                tmp[y * W + x] = (uint8_t)(s / n);
            }
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                int s = 0, n = 0;
                for (int d = -8; d <= 8; d++)
                    if (y + d >= 0 && y + d < H)
                        s += tmp[(y + d) * W + x], n++;
                img[y * W + x] = (uint8_t)(s / n);
            }
    }
}

/* Something against the lens: 90% of the frame a dark, almost even surface. */
static void cover(void)
{
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W * 9 / 10; x++)
            img[y * W + x] = (uint8_t)(25 + rnd(2));
}

static its_quality_score feed(its_quality_t *q, int frame)
{
    its_quality_image im = {img, W, H, W, frame * 33333333LL};
    its_quality_score s;
    assert_int_equal(its_quality_update(q, &im, NULL, NULL, 0, &s), 0);
    return s;
}

static its_quality_t *make(void)
{
    its_quality_params p;
    its_quality_params_default(&p);
    its_quality_t *q;
    assert_int_equal(its_quality_create(&p, &q), 0);
    return q;
}

static void test_image(void **state)
{
    (void)state;
    its_quality_t *q = make();
    its_quality_score normal, dark, blurred, covered;
    for (int f = 0; f < 10; f++) {
        scene(f);
        normal = feed(q, f);
    }
    scene(10);
    darken();
    dark = feed(q, 10);
    scene(11);
    blur();
    blurred = feed(q, 11);
    scene(12);
    cover();
    covered = feed(q, 12);
    printf("normal  %.3f (b %.0f c %.1f sharp %.2f flat %.2f)\n", normal.image_score,
           normal.brightness, normal.contrast, normal.sharpness, normal.flat_fraction);
    printf("dark    %.3f (b %.0f c %.1f sharp %.2f flat %.2f)\n", dark.image_score, dark.brightness,
           dark.contrast, dark.sharpness, dark.flat_fraction);
    printf("blurred %.3f (b %.0f c %.1f sharp %.2f flat %.2f)\n", blurred.image_score,
           blurred.brightness, blurred.contrast, blurred.sharpness, blurred.flat_fraction);
    printf("covered %.3f (b %.0f c %.1f sharp %.2f flat %.2f)\n", covered.image_score,
           covered.brightness, covered.contrast, covered.sharpness, covered.flat_fraction);
    assert_true(normal.image_score > 0.8);
    assert_false(normal.frozen);
    assert_false(normal.covered);
    assert_true(dark.s_brightness < 0.1);
    assert_true(dark.image_score < 0.3);
    assert_true(blurred.s_sharpness < 0.5 * normal.s_sharpness);
    assert_true(blurred.image_score < normal.image_score - 0.2);
    assert_true(covered.covered);
    assert_true(covered.image_score < 0.3);
    /* the camera score follows, slowly */
    assert_true(covered.camera_score < normal.camera_score);
    assert_true(covered.camera_score > covered.frame_score);
    its_quality_destroy(q);
}

/* A caller measuring the picture at a lower rate: with reuse_image, a frame without a picture
 * keeps the last picture's image part (and so the same frame score); without, it drops it. */
static void test_reuse_image(void **state)
{
    (void)state;
    for (int reuse = 0; reuse <= 1; reuse++) {
        its_quality_params p;
        its_quality_params_default(&p);
        p.reuse_image = reuse;
        its_quality_t *q;
        assert_int_equal(its_quality_create(&p, &q), 0);
        its_quality_score none, dark, after;
        assert_int_equal(its_quality_update(q, NULL, NULL, NULL, 0, &none), 0);
        assert_false(none.has_image); /* nothing measured yet: nothing to reuse */
        scene(0);
        darken();
        dark = feed(q, 0);
        assert_int_equal(its_quality_update(q, NULL, NULL, NULL, 0, &after), 0);
        if (reuse) {
            assert_true(after.has_image);
            assert_true(fabs(after.image_score - dark.image_score) < 1e-12);
            assert_true(fabs(after.frame_score - dark.frame_score) < 1e-12);
            assert_true(after.s_brightness < 0.1);
        } else {
            assert_false(after.has_image);
            assert_false(isfinite(after.frame_score));
        }
        its_quality_destroy(q);
    }
}

static void test_frozen(void **state)
{
    (void)state;
    its_quality_t *q = make();
    int f = 0;
    for (; f < 60; f++) { /* moving: never frozen */
        scene(f);
        its_quality_score s = feed(q, f);
        assert_false(s.frozen);
        assert_true(s.motion > 0 || f == 0);
    }
    /* the same picture again and again: frozen after 2 s, not before */
    int first_frozen = -1;
    for (int k = 0; k < 90; k++, f++) {
        its_quality_score s = feed(q, f);
        if (s.frozen && first_frozen < 0)
            first_frozen = k;
        if (k > 70) {
            assert_true(s.frozen);
            assert_true(s.image_score == 0);
        }
    }
    assert_true(first_frozen >= 59 && first_frozen <= 61);
    /* moving again: back to normal at once */
    scene(f + 5);
    its_quality_score s = feed(q, f);
    assert_false(s.frozen);
    assert_true(s.image_score > 0.8);
    its_quality_destroy(q);
}

static void test_detections_and_temporal(void **state)
{
    (void)state;
    its_quality_t *q = make();
    its_quality_score good, bad;
    /* steady tracks, plausible boxes; vehicles grow towards the bottom of the frame */
    for (int f = 0; f < 100; f++) {
        its_det d[6];
        its_track t[6];
        for (int k = 0; k < 6; k++) {
            float y2 = 150 + 35.0f * k, h = y2 * 0.2f;
            d[k] = (its_det){100.0f + 90 * k, y2 - h, 100.0f + 90 * k + 1.6f * h, y2, 0.85f, 2, 0};
            memset(&t[k], 0, sizeof t[k]);
            t[k].id = (uint32_t)k + 1;
            t[k].state = ITS_TRACK_CONFIRMED;
            t[k].det_index = k;
        }
        its_det_frame fr = {d, 6, W, H, f * 33333333LL, (uint64_t)f};
        assert_int_equal(its_quality_update(q, NULL, &fr, t, 6, &good), 0);
    }
    /* implausible boxes (thin slivers, a car the size of half the frame high up, out of the
     * frame), low scores, and tracks whose ids change every frame */
    for (int f = 100; f < 200; f++) {
        its_det d[4] = {{10, 10, 14, 200, 0.3f, 2, 0},
                        {100, 0, 600, 120, 0.3f, 2, 0},
                        {620, 300, 900, 500, 0.3f, 7, 0},
                        {200, 200, 260, 240, 0.3f, 2, 0}};
        its_track t[2];
        memset(t, 0, sizeof t);
        t[0].id = (uint32_t)(1000 + f);
        t[0].state = ITS_TRACK_CONFIRMED;
        t[0].det_index = 3;
        t[1].id = (uint32_t)(5000 + f);
        t[1].state = ITS_TRACK_CONFIRMED;
        t[1].det_index = -1;
        its_det_frame fr = {d, 4, W, H, f * 33333333LL, (uint64_t)f};
        assert_int_equal(its_quality_update(q, NULL, &fr, t, 2, &bad), 0);
    }
    printf("good: det %.3f (plaus %.2f) temporal %.3f flicker %.3f\n", good.det_score,
           good.det_plausibility, good.temporal_score, good.flicker);
    printf("bad:  det %.3f (plaus %.2f) temporal %.3f flicker %.3f\n", bad.det_score,
           bad.det_plausibility, bad.temporal_score, bad.flicker);
    assert_true(good.det_plausibility > 0.99);
    assert_true(good.det_score > 0.9);
    assert_true(good.temporal_score > 0.95);
    assert_true(bad.det_plausibility < 0.4); /* one of the four boxes is plausible */
    assert_true(bad.det_score < 0.35);
    assert_true(bad.flicker > 0.9);
    assert_true(bad.temporal_score < 0.2);
    assert_true(bad.frame_score < good.frame_score - 0.5);
    char buf[2048];
    assert_true(its_quality_score_to_json(&bad, buf, sizeof buf) > 0);
    assert_non_null(strstr(buf, "\"image\":null"));
    assert_int_equal(its_quality_score_to_json(&bad, buf, 20), ITS_EOVERFLOW);
    its_quality_score cached;
    its_quality_get(q, &cached);
    assert_true(cached.frames == 200 && cached.frame_score == bad.frame_score);
    its_quality_destroy(q);
}

static void test_bad_input_and_alloc(void **state)
{
    (void)state;
    its_quality_t *q = make();
    its_quality_image im = {img, 4, 4, 4, 0};
    assert_int_equal(its_quality_update(q, &im, NULL, NULL, 0, NULL), ITS_EINVAL);
    im = (its_quality_image){img, W, H, W - 1, 0};
    assert_int_equal(its_quality_update(q, &im, NULL, NULL, 0, NULL), ITS_EINVAL);
    im = (its_quality_image){NULL, W, H, W, 0};
    assert_int_equal(its_quality_update(q, &im, NULL, NULL, 0, NULL), ITS_EINVAL);
    assert_int_equal(its_quality_update(q, NULL, NULL, NULL, 3, NULL), ITS_EINVAL);
    its_quality_score cached;
    its_quality_get(q, &cached);
    assert_int_equal(cached.rejected, 4); /* every refusal is counted */
    its_det nan_det = {NAN, NAN, NAN, NAN, NAN, 2, 0};
    its_det_frame fr = {&nan_det, 1, W, H, 0, 0};
    its_quality_score s;
    assert_int_equal(its_quality_update(q, NULL, &fr, NULL, 0, &s), 0);
    assert_true(s.det_score == 0);
    /* a large odd-sized frame uses the same buffers: no allocation */
    static uint8_t big[1927 * 1083];
    memset(big, 128, sizeof big);
    uint64_t before = its_alloc_count();
    im = (its_quality_image){big, 1927, 1083, 1927, 0};
    assert_int_equal(its_quality_update(q, &im, NULL, NULL, 0, &s), 0);
    assert_true(its_alloc_count() == before);
    its_quality_destroy(q);
    its_quality_destroy(NULL);
    its_quality_params p;
    its_quality_params_default(&p);
    p.camera_alpha = 0;
    assert_int_equal(its_quality_create(&p, &q), ITS_EINVAL);
    its_quality_params_default(&p);
    for (int k = 0; k < 10; k++) {
        its_alloc_fail_after(ITS_MOD_COUNT, k, 1);
        int rc = its_quality_create(&p, &q);
        its_alloc_fail_reset();
        if (rc == 0) {
            its_quality_destroy(q);
            break;
        }
        assert_int_equal(rc, ITS_ENOMEM);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_image),
        cmocka_unit_test(test_reuse_image),
        cmocka_unit_test(test_frozen),
        cmocka_unit_test(test_detections_and_temporal),
        cmocka_unit_test(test_bad_input_and_alloc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * The NV12 letterbox's host reference (nv12_ref.c: the definition the cuda kernel implements,
 * whose GPU comparison is tests/cuda/test_prepost.c) against the detector's RGB letterbox
 * (its_det_letterbox_raw, the CPU path), on a real camera frame converted to NV12 (the first
 * frame of traffic_bridge_720p.mp4, and bus.jpg's portrait 810x1080), into 640x640 and
 * 640x384:
 * - against the RGB letterbox of the same NV12 frame converted back to 8-bit RGB pixel by
 *   pixel: the same geometry and interpolation, so they differ by that conversion's rounding
 *   alone (<= 0.5/255 per value, interpolation keeps it);
 * - against the RGB letterbox of the original frame: NV12 keeps one chroma sample per 2x2
 *   block, so colour edges blur; on these frames the mean difference stays below 1/255.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "its/core.h"
#include "its/detect.h"
#include "its/media.h"
#include "its/video.h"
#include "nv12_ref.h"
#include "testutil.h"

static void compare(const uint8_t *rgb, int w, int h, int dw, int dh, const char *what)
{
    size_t n = (size_t)w * h;
    uint8_t *y = malloc(n), *uv = malloc(n / 2), *back = malloc(n * 3);
    float *ref = malloc(sizeof(float) * 3 * dw * dh),
          *lb_back = malloc(sizeof(float) * 3 * dw * dh),
          *lb_orig = malloc(sizeof(float) * 3 * dw * dh);
    assert_non_null(y);
    assert_non_null(uv);
    assert_non_null(back);
    assert_non_null(ref);
    assert_non_null(lb_back);
    assert_non_null(lb_orig);
    nv12_from_rgb(rgb, w, h, y, uv);
    for (int j = 0; j < h; j++)
        for (int i = 0; i < w; i++) {
            double c[3];
            nv12_pixel_rgb(y, w, uv, w, i, j, c);
            for (int k = 0; k < 3; k++)
                back[((size_t)j * w + i) * 3 + k] = (uint8_t)floor(c[k] + 0.5);
        }
    nv12_letterbox_ref(y, w, uv, w, w, h, dw, dh, ref);
    its_det_preproc pre = {.width = dw,
                           .height = dh,
                           .center = 1,
                           .pad = 114,
                           .scale = {1 / 255.0f, 1 / 255.0f, 1 / 255.0f}};
    its_letterbox lb;
    assert_int_equal(its_det_letterbox_raw(&pre, back, w, h, w * 3, ITS_PIX_RGB24, lb_back, &lb),
                     0);
    assert_int_equal(its_det_letterbox_raw(&pre, rgb, w, h, w * 3, ITS_PIX_RGB24, lb_orig, &lb), 0);
    double max_back = 0, sum_orig = 0, max_orig = 0;
    size_t m = (size_t)3 * dw * dh;
    for (size_t i = 0; i < m; i++) {
        double e = fabs((double)ref[i] - lb_back[i]), o = fabs((double)ref[i] - lb_orig[i]);
        max_back = e > max_back ? e : max_back;
        max_orig = o > max_orig ? o : max_orig;
        sum_orig += o;
    }
    print_message("%s -> %dx%d: max |nv12 ref - rgb(nv12)| %.2e (%.3f/255), mean |nv12 ref - "
                  "rgb| %.4f/255, max %.1f/255\n",
                  what, dw, dh, max_back, max_back * 255, sum_orig / m * 255, max_orig * 255);
    assert_true(max_back <= 0.5 / 255 + 1e-5);
    assert_true(sum_orig / m < 1.0 / 255);
    free(y);
    free(uv);
    free(back);
    free(ref);
    free(lb_back);
    free(lb_orig);
}

static void test_video_frame(void **state)
{
    (void)state;
    char p[1024], err[256];
    if (!its_test_shared_path("media/traffic_bridge_720p.mp4", p, sizeof p))
        ITS_TEST_SKIP("shared media missing");
    its_video_t *v;
    its_video_opts o = {.decode = ITS_VIDEO_DECODE_CPU};
    assert_int_equal(its_video_open(p, &o, &v, err, sizeof err), 0);
    its_video_frame f;
    assert_int_equal(its_video_read(v, &f), 1);
    assert_int_equal(f.width, 1280);
    assert_int_equal(f.height, 720);
    compare(f.data, f.width, f.height, 640, 640, "traffic_bridge_720p frame 0");
    compare(f.data, f.width, f.height, 640, 384, "traffic_bridge_720p frame 0");
    its_video_close(v);
}

static void test_photo(void **state)
{
    (void)state;
    char p[1024];
    if (!its_test_shared_path("media/bus.jpg", p, sizeof p))
        ITS_TEST_SKIP("shared media missing");
    its_image img;
    char err[256];
    its_image_opts o = {.fmt = ITS_PIX_RGB24};
    assert_int_equal(its_image_load(p, &o, &img, err, sizeof err), 0);
    assert_int_equal(img.width, 810);
    assert_int_equal(img.height, 1080);
    assert_int_equal(img.stride, 810 * 3);
    compare(img.data, img.width, img.height, 640, 640, "bus.jpg");
    its_image_free(&img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_video_frame),
                                       cmocka_unit_test(test_photo)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}

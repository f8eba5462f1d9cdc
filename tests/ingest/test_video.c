/* The FFmpeg video reader on the shared traffic videos and on damaged copies of them. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "its/core.h"
#include "its/video.h"
#include "mkvideo.h"
#include "testutil.h"

static char media[512];

static const char *media_path(const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", media, name);
    return buf;
}

static int count_frames(const char *path, const its_video_opts *o, int *w, int *h, int *rc_end,
                        its_video_stats *st)
{
    its_video_t *v;
    char err[256];
    int rc = its_video_open(path, o, &v, err, sizeof err);
    if (rc < 0) {
        *rc_end = rc;
        return -1;
    }
    its_video_frame f;
    int n = 0;
    while ((rc = its_video_read(v, &f)) == 1) {
        if (w)
            *w = f.width;
        if (h)
            *h = f.height;
        n++;
    }
    *rc_end = rc;
    if (st)
        its_video_get_stats(v, st);
    its_video_close(v);
    return n;
}

/* Every frame of a real clip, with sizes, timestamps and counts from SOURCES.md (ffprobe). */
static void test_reads_whole_clip(void **state)
{
    char p[600];
    its_video_t *v;
    char err[256];
    assert_int_equal(its_video_open(media_path("traffic_bridge_720p.mp4", p, sizeof p), NULL, &v,
                                    err, sizeof err),
                     0);
    its_video_info info;
    its_video_get_info(v, &info);
    assert_int_equal(info.width, 1280);
    assert_int_equal(info.height, 720);
    assert_true(info.fps > 29.9 && info.fps < 30.1);
    assert_string_equal(info.codec, "h264");
    assert_true(info.seekable);
    its_video_frame f;
    int n = 0, rc;
    int64_t last = -1;
    while ((rc = its_video_read(v, &f)) == 1) {
        assert_int_equal(f.width, 1280);
        assert_int_equal(f.height, 720);
        assert_int_equal(f.stride, 1280 * 3);
        assert_true(f.pts_ns > last);
        assert_int_equal(f.index, (uint64_t)n);
        last = f.pts_ns;
        n++;
    }
    assert_int_equal(rc, ITS_EEOF);
    assert_int_equal(n, 144);
    /* 144 frames at 30 fps: the last one is shown at 143/30 s */
    assert_true(last > 4700000000LL && last < 4800000000LL);
    its_video_stats st;
    its_video_get_stats(v, &st);
    assert_int_equal(st.frames, 144);
    assert_int_equal(st.bad_packets, 0);
    assert_int_equal(st.size_changes, 0);
    /* reading past the end keeps saying EOF */
    assert_int_equal(its_video_read(v, &f), ITS_EEOF);
    its_video_close(v);
}

/* RGB and BGR are the same pixels with the channels swapped; rewind gives the same frame. */
static void test_pixfmt_and_rewind(void **state)
{
    char p[600];
    media_path("traffic_intersection_cctv_480p.mp4", p, sizeof p);
    its_video_opts orgb = {.pixfmt = ITS_PIX_RGB24}, obgr = {.pixfmt = ITS_PIX_BGR24};
    its_video_t *a, *b;
    assert_int_equal(its_video_open(p, &orgb, &a, NULL, 0), 0);
    assert_int_equal(its_video_open(p, &obgr, &b, NULL, 0), 0);
    size_t sz = its_video_frame_bytes(640, 480);
    uint8_t *rgb = its_malloc(ITS_MOD_TEST, sz);
    uint8_t *bgr = its_malloc(ITS_MOD_TEST, sz + ITS_VIDEO_PAD); /* converted into directly */
    its_video_frame fa, fb;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(its_video_read_into(a, rgb, sz, &fa), 1);
        assert_int_equal(its_video_read_into(b, bgr, sz + ITS_VIDEO_PAD, &fb), 1);
    }
    assert_int_equal(fa.width, 640);
    assert_ptr_equal(fa.data, rgb);
    long differ = 0;
    for (size_t i = 0; i < sz; i += 3) {
        assert_int_equal(rgb[i], bgr[i + 2]);
        assert_int_equal(rgb[i + 1], bgr[i + 1]);
        differ += rgb[i] != rgb[i + 2];
    }
    assert_true(differ > 1000); /* a colour picture, so the swap is visible */
    /* the picture is not flat: a real frame has edges */
    long sum = 0;
    for (size_t i = 0; i < sz; i++)
        sum += rgb[i];
    assert_true(sum / (long)sz > 20 && sum / (long)sz < 235);

    /* rewind and read the 5th frame again: identical bytes, index restarts */
    assert_int_equal(its_video_rewind(b), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(its_video_read_into(b, rgb, sz, &fb), 1);
    assert_int_equal(fb.index, 4);
    assert_memory_equal(rgb, bgr, sz);

    /* a buffer too small: ITS_ERANGE with the size, and the next read still works */
    assert_int_equal(its_video_read_into(a, rgb, 100, &fa), ITS_ERANGE);
    assert_int_equal(fa.width, 640);
    assert_int_equal(fa.height, 480);
    assert_int_equal(its_video_read_into(a, rgb, sz, &fa), 1);
    its_free(rgb);
    its_free(bgr);
    its_video_close(a);
    its_video_close(b);
}

static void test_missing_and_garbage(void **state)
{
    its_video_t *v = NULL;
    char err[256] = "";
    assert_int_equal(its_video_open("/nonexistent/cam.mp4", NULL, &v, err, sizeof err), ITS_ENOENT);
    assert_null(v);
    assert_non_null(strstr(err, "/nonexistent/cam.mp4"));

    char dir[256], p[400];
    its_test_tmpdir(dir, sizeof dir);
    snprintf(p, sizeof p, "%s/garbage.mp4", dir);
    uint8_t junk[65536];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof junk; i++) {
        x = x * 1103515245u + 12345u;
        junk[i] = (uint8_t)(x >> 16);
    }
    assert_int_equal(its_test_write_file(p, junk, sizeof junk), 0);
    int rc = its_video_open(p, NULL, &v, err, sizeof err);
    if (rc == 0) {
        /* if some demuxer claims it, reading must end cleanly with an error, never a frame */
        its_video_frame f;
        while ((rc = its_video_read(v, &f)) == 1)
            ;
        its_video_close(v);
    }
    assert_true(rc == ITS_EDECODE || rc == ITS_EEOF);
    assert_non_null(strstr(err, "garbage.mp4"));

    /* an empty file */
    snprintf(p, sizeof p, "%s/empty.mp4", dir);
    assert_int_equal(its_test_write_file(p, "", 0), 0);
    assert_int_equal(its_video_open(p, NULL, &v, err, sizeof err), ITS_EDECODE);
    assert_int_equal(its_video_open("", NULL, &v, err, sizeof err), ITS_EINVAL);
}

/* A clip cut short: moov at the end is lost (clear error); a fragmented file plays up to the
 * cut and then ends. */
static void test_truncated(void **state)
{
    char p[600], dir[256], q[400];
    its_test_tmpdir(dir, sizeof dir);
    size_t len;
    uint8_t *d = its_test_read_file(media_path("traffic_bridge_720p.mp4", p, sizeof p), &len);
    assert_non_null(d);
    snprintf(q, sizeof q, "%s/cut_moov.mp4", dir);
    assert_int_equal(its_test_write_file(q, d, len / 2), 0);
    its_free(d);
    its_video_t *v;
    char err[256];
    assert_int_equal(its_video_open(q, NULL, &v, err, sizeof err), ITS_EDECODE);
    assert_non_null(strstr(err, "cut_moov.mp4"));

    d = its_test_read_file(media_path("traffic_road_cctv_360p.mp4", p, sizeof p), &len);
    assert_non_null(d);
    snprintf(q, sizeof q, "%s/cut_frag.mp4", dir);
    assert_int_equal(its_test_write_file(q, d, len / 2), 0);
    its_free(d);
    int rc;
    int n = count_frames(q, NULL, NULL, NULL, &rc, NULL);
    assert_true(n > 100 && n < 1190);
    assert_true(rc == ITS_EEOF || rc == ITS_EDECODE);
}

/* Garbage written over the middle of a clip: the reader skips or conceals the damage, counts
 * it, and goes on to the end. */
static void test_corrupt_middle(void **state)
{
    char p[600], dir[256], q[400];
    its_test_tmpdir(dir, sizeof dir);
    size_t len;
    uint8_t *d =
        its_test_read_file(media_path("traffic_intersection_cctv_480p.mp4", p, sizeof p), &len);
    assert_non_null(d);
    uint32_t x = 99;
    for (size_t i = len / 3; i < len / 3 + 200000; i++) {
        x = x * 1103515245u + 12345u;
        d[i] = (uint8_t)(x >> 16);
    }
    snprintf(q, sizeof q, "%s/corrupt.mp4", dir);
    assert_int_equal(its_test_write_file(q, d, len), 0);
    its_free(d);
    int rc;
    its_video_stats st;
    int n = count_frames(q, NULL, NULL, NULL, &rc, &st);
    assert_int_equal(rc, ITS_EEOF);
    assert_true(n > 600); /* most of the 909 frames survive */
    assert_true(st.bad_packets + st.corrupt_frames > 0);
}

/* A stream whose frame size changes twice (made here with FFmpeg's MJPEG encoder). */
static void test_size_change(void **state)
{
    char dir[256], q[400];
    its_test_tmpdir(dir, sizeof dir);
    snprintf(q, sizeof q, "%s/sizes.mjpeg", dir);
    mkv_segment segs[] = {{320, 240, 4}, {640, 360, 5}, {320, 240, 3}};
    assert_int_equal(mkv_write_mjpeg(q, segs, 3), 0);
    its_video_t *v;
    char err[256];
    assert_int_equal(its_video_open(q, NULL, &v, err, sizeof err), 0);
    its_video_frame f;
    int widths[16], heights[16], n = 0, rc;
    while ((rc = its_video_read(v, &f)) == 1 && n < 16) {
        widths[n] = f.width;
        heights[n++] = f.height;
    }
    assert_int_equal(rc, ITS_EEOF);
    assert_int_equal(n, 12);
    for (int i = 0; i < 12; i++) {
        int big = i >= 4 && i < 9;
        assert_int_equal(widths[i], big ? 640 : 320);
        assert_int_equal(heights[i], big ? 360 : 240);
    }
    its_video_stats st;
    its_video_get_stats(v, &st);
    assert_int_equal(st.size_changes, 2);
    its_video_close(v);

    /* with a 400x400 limit the 640x360 frames come out scaled to 400x225 */
    its_video_opts o = {.max_width = 400, .max_height = 400};
    assert_int_equal(its_video_open(q, &o, &v, err, sizeof err), 0);
    n = 0;
    while ((rc = its_video_read(v, &f)) == 1) {
        int big = n >= 4 && n < 9;
        assert_int_equal(f.width, big ? 400 : 320);
        assert_int_equal(f.height, big ? 225 : 240);
        n++;
    }
    assert_int_equal(n, 12);
    its_video_close(v);
}

/* A single photo opens as a one-frame video (used for folders of JPEGs). */
static void test_image(void **state)
{
    char p[600];
    int w = 0, h = 0, rc;
    int n = count_frames(media_path("bus.jpg", p, sizeof p), NULL, &w, &h, &rc, NULL);
    assert_int_equal(n, 1);
    assert_int_equal(rc, ITS_EEOF);
    assert_int_equal(w, 810);
    assert_int_equal(h, 1080);
}

static void test_interrupt(void **state)
{
    char p[600];
    its_video_t *v;
    assert_int_equal(
        its_video_open(media_path("traffic_bridge_720p.mp4", p, sizeof p), NULL, &v, NULL, 0), 0);
    its_video_frame f;
    assert_int_equal(its_video_read(v, &f), 1);
    its_video_interrupt(v);
    assert_int_equal(its_video_read(v, &f), ITS_ECLOSED);
    its_video_close(v);
    its_video_close(NULL);
}

/* 1 if the NVIDIA driver's CUDA library loads here (the GPU machine), else 0 (CI). */
static int have_cuda_driver(void)
{
    void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (h)
        dlclose(h);
    return h != NULL;
}

/* Where a reader decodes. Without a CUDA driver (CI): decode auto decodes H.264 on the CPU
 * and says why (no_device), frame for frame what decode cpu gives; a JPEG is not for NVDEC
 * (codec) wherever it runs; decode nvdec is an error that says why, never a silent CPU
 * decode. */
static void test_decode_choice(void **state)
{
    (void)state;
    char p[600], jpg[600], err[512];
    media_path("traffic_bridge_720p.mp4", p, sizeof p);
    media_path("bus.jpg", jpg, sizeof jpg);
    int gpu = have_cuda_driver();
    assert_string_equal(its_video_fallback_name(ITS_VIDEO_FALLBACK_NO_DEVICE), "no_device");
    its_video_decode d;
    assert_int_equal(its_video_parse_decode("nvdec", &d), 0);
    assert_int_equal(d, ITS_VIDEO_DECODE_NVDEC);
    assert_int_equal(its_video_parse_decode("gpu", &d), ITS_EINVAL);

    its_video_opts autoo = {.decode = ITS_VIDEO_DECODE_AUTO};
    its_video_opts cpu = {.decode = ITS_VIDEO_DECODE_CPU};
    its_video_t *va, *vc;
    assert_int_equal(its_video_open(p, &autoo, &va, err, sizeof err), 0);
    assert_int_equal(its_video_open(p, &cpu, &vc, err, sizeof err), 0);
    its_video_stats sa, sc;
    its_video_frame fa, fc;
    int n = 0, ra, rc;
    int64_t diff = 0;
    while ((ra = its_video_read(va, &fa)) == 1 && (rc = its_video_read(vc, &fc)) == 1) {
        assert_int_equal(fa.width, fc.width);
        assert_int_equal(fa.height, fc.height);
        if (!gpu) /* the same decoder: the same pixels */
            assert_memory_equal(fa.data, fc.data, its_video_frame_bytes(fa.width, fa.height));
        else
            for (size_t i = 0; i < its_video_frame_bytes(fa.width, fa.height); i += 97)
                diff += abs((int)fa.data[i] - (int)fc.data[i]);
        n++;
    }
    assert_int_equal(ra, ITS_EEOF);
    assert_int_equal(n, 144); /* SOURCES.md */
    its_video_get_stats(va, &sa);
    its_video_get_stats(vc, &sc);
    assert_int_equal(sc.nvdec, 0);
    assert_int_equal(sc.fallback, ITS_VIDEO_FALLBACK_NONE); /* cpu: no fallback to count */
    if (!gpu) {
        assert_int_equal(sa.nvdec, 0);
        assert_int_equal(sa.fallback, ITS_VIDEO_FALLBACK_NO_DEVICE);
    } else { /* on the GPU machine: NVDEC, or a reason why not */
        assert_true(sa.nvdec ? sa.fallback == ITS_VIDEO_FALLBACK_NONE
                             : sa.fallback != ITS_VIDEO_FALLBACK_NONE);
        print_message("decode auto: %s (%s), mean |nvdec - cpu| %.2f\n", sa.nvdec ? "nvdec" : "cpu",
                      its_video_fallback_name(sa.fallback),
                      (double)diff / (n * (double)its_video_frame_bytes(1280, 720) / 97));
    }
    assert_int_equal(its_video_nvdec_sessions(), sa.nvdec);
    its_video_close(va);
    its_video_close(vc);
    assert_int_equal(its_video_nvdec_sessions(), 0);

    /* a JPEG: not a codec NVDEC takes (through this path) */
    assert_int_equal(its_video_open(jpg, &autoo, &va, err, sizeof err), 0);
    its_video_get_stats(va, &sa);
    assert_int_equal(sa.nvdec, 0);
    assert_int_equal(sa.fallback, ITS_VIDEO_FALLBACK_CODEC);
    assert_int_equal(its_video_read(va, &fa), 1);
    its_video_close(va);

    its_video_opts nv = {.decode = ITS_VIDEO_DECODE_NVDEC};
    assert_int_equal(its_video_open(jpg, &nv, &va, err, sizeof err), ITS_EUNSUPPORTED);
    assert_non_null(strstr(err, "decode nvdec: NVDEC decodes H.264 and HEVC, not mjpeg"));
    if (!gpu) {
        assert_int_equal(its_video_open(p, &nv, &va, err, sizeof err), ITS_EUNSUPPORTED);
        assert_non_null(strstr(err, "decode nvdec: no CUDA device"));
        assert_null(va);
    }
}

/* its_video_skip decodes without converting: the frames, sizes and timestamps of read. */
static void test_skip(void **state)
{
    (void)state;
    char p[600], err[256];
    media_path("traffic_bridge_720p.mp4", p, sizeof p);
    its_video_t *a, *b;
    assert_int_equal(its_video_open(p, NULL, &a, err, sizeof err), 0);
    assert_int_equal(its_video_open(p, NULL, &b, err, sizeof err), 0);
    its_video_frame fa, fb;
    int n = 0;
    while (its_video_skip(a, &fa) == 1) {
        assert_int_equal(its_video_read(b, &fb), 1);
        assert_null(fa.data);
        assert_int_equal(fa.width, 1280);
        assert_int_equal(fa.height, 720);
        assert_true(fa.pts_ns == fb.pts_ns);
        assert_true(fa.index == fb.index);
        n++;
    }
    assert_int_equal(n, 144);
    assert_int_equal(its_video_read(b, &fb), ITS_EEOF);
    its_video_stats st;
    its_video_get_stats(a, &st);
    assert_int_equal(st.frames, 144);
    its_video_close(a);
    its_video_close(b);
}

int main(void)
{
    if (!its_test_shared_path("media", media, sizeof media)) {
        return its_test_skip("shared media missing (ITS_SHARED_DIR)");
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_whole_clip),
        cmocka_unit_test(test_pixfmt_and_rewind),
        cmocka_unit_test(test_missing_and_garbage),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_corrupt_middle),
        cmocka_unit_test(test_size_change),
        cmocka_unit_test(test_image),
        cmocka_unit_test(test_interrupt),
        cmocka_unit_test(test_decode_choice),
        cmocka_unit_test(test_skip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

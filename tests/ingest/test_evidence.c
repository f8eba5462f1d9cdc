/* Clips cut from the ring of compressed packets (its/evidence.h) of a real video (the road
 * video: a keyframe every 5.12 s, so every clip starts between keyframes), checked with
 * ffprobe, an independent reader: the duration is within 0.5 s of pre_s + post_s, the codec is
 * the source's (no re-encoding), and the first picture shown is the source's frame at
 * t - pre_s; the index (moov) precedes the media (mdat), as a browser needs to play it while it
 * loads. Also the ring's eviction and the storage sweep. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "its/error.h"
#include "its/evidence.h"
#include "its/video.h"

static char g_dir[256];

static void on_packet(void *ctx, its_video_t *v, const its_video_packet *p)
{
    its_clipring_packet(ctx, v, p, 0);
}

/* ffprobe's answer for one entry of a file, or "" */
static void probe(const char *path, const char *entry, char *out, size_t len)
{
    char cmd[1600];
    snprintf(cmd, sizeof cmd,
             "ffprobe -v error -select_streams v:0 -show_entries %s -of "
             "default=noprint_wrappers=1:nokey=1 '%s'",
             entry, path);
    out[0] = 0;
    FILE *f = popen(cmd, "r");
    if (!f)
        return;
    if (!fgets(out, (int)len, f))
        out[0] = 0;
    pclose(f);
    out[strcspn(out, "\n")] = 0;
}

/* Mean absolute difference of two frames, decoded by ffmpeg to small grey pictures. */
static double frame_diff(const char *a, double ta, const char *b, double tb)
{
    char cmd[2][1600];
    snprintf(
        cmd[0], sizeof cmd[0],
        "ffmpeg -v error -ss %.3f -i '%s' -frames:v 1 -vf scale=64:36,format=gray -f rawvideo -",
        ta, a);
    snprintf(
        cmd[1], sizeof cmd[1],
        "ffmpeg -v error -ss %.3f -i '%s' -frames:v 1 -vf scale=64:36,format=gray -f rawvideo -",
        tb, b);
    unsigned char px[2][64 * 36];
    for (int k = 0; k < 2; k++) {
        FILE *f = popen(cmd[k], "r");
        if (!f || fread(px[k], 1, sizeof px[k], f) != sizeof px[k]) {
            if (f)
                pclose(f);
            return 1e9;
        }
        pclose(f);
    }
    double d = 0;
    for (size_t i = 0; i < sizeof px[0]; i++)
        d += abs((int)px[0][i] - (int)px[1][i]);
    return d / (double)sizeof px[0];
}

/* The order of the MP4's top-level boxes (ISO/IEC 14496-12: a 32-bit big-endian size, a
 * four-character type; size 1: a 64-bit size follows): 1 when "moov" comes before "mdat", 0
 * when after, -1 when either is missing or the file is not a box sequence. */
static int moov_first(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    int moov = -1, mdat = -1, k = 0, rc = -1;
    unsigned char h[16];
    long pos = 0;
    while (fseek(f, pos, SEEK_SET) == 0 && fread(h, 1, 8, f) == 8) {
        unsigned long long size = (unsigned long long)h[0] << 24 | h[1] << 16 | h[2] << 8 | h[3];
        if (size == 1) {
            if (fread(h + 8, 1, 8, f) != 8)
                break;
            size = 0;
            for (int i = 8; i < 16; i++)
                size = size << 8 | h[i];
        }
        if (!memcmp(h + 4, "moov", 4))
            moov = k;
        if (!memcmp(h + 4, "mdat", 4))
            mdat = k;
        if (size < 8)
            break;
        pos += (long)size;
        k++;
    }
    fclose(f);
    if (moov >= 0 && mdat >= 0)
        rc = moov < mdat;
    return rc;
}

static void test_clip_durations(void **state)
{
    (void)state;
    char video[1024];
    if (!its_test_shared_path("media/traffic_road_cctv_360p.mp4", video, sizeof video))
        ITS_TEST_SKIP("shared media missing");
    its_clipring_t *r;
    assert_int_equal(its_clipring_create(8 << 20, &r), 0);
    /* events at 7.0 s (pre 2, post 3) and 12.4 s (pre 1.5, post 1.5): starts 5.0 and 10.9,
     * both between the keyframes at 0.04, 5.16, 10.28, 15.40 s */
    char c1[400], c2[400], c3[400];
    snprintf(c1, sizeof c1, "%s/a.mp4", g_dir);
    snprintf(c2, sizeof c2, "%s/b.mp4", g_dir);
    snprintf(c3, sizeof c3, "%s/c.mp4", g_dir);
    assert_int_equal(its_clipring_request(r, 7000000000LL, 2.0, 3.0, c1), 0);
    assert_int_equal(its_clipring_request(r, 12400000000LL, 1.5, 1.5, c2), 0);
    its_video_opts o = {.on_packet = on_packet, .packet_ctx = r};
    its_video_t *v;
    char err[256];
    assert_int_equal(its_video_open(video, &o, &v, err, sizeof err), 0);
    its_video_frame f;
    int rc;
    while ((rc = its_video_read(v, &f)) == 1 && f.pts_ns < 16 * 1000000000LL)
        ;
    assert_int_equal(rc, 1);
    its_clipring_stats st;
    its_clipring_get_stats(r, &st);
    assert_int_equal(st.clips_written, 2);
    assert_int_equal(st.clips_failed, 0);
    /* ffprobe: H.264 as the source, pre_s + post_s long */
    const char *clips[2] = {c1, c2};
    const double want[2] = {5.0, 3.0}, start[2] = {5.0, 10.9};
    for (int k = 0; k < 2; k++) {
        char out[128];
        probe(clips[k], "stream=codec_name", out, sizeof out);
        assert_string_equal(out, "h264");
        probe(clips[k], "format=duration", out, sizeof out);
        double d = atof(out);
        printf("clip %d: duration %.3f s (want %.1f)\n", k, d, want[k]);
        assert_true(d > want[k] - 0.5 && d < want[k] + 0.5);
        /* the index before the media: a browser plays it as it arrives (faststart) */
        assert_int_equal(moov_first(clips[k]), 1);
        /* its first picture is the source's at t - pre_s, not the keyframe's before it */
        double same = frame_diff(clips[k], 0, video, start[k]);
        double key = frame_diff(clips[k], 0, video, k == 0 ? 0.04 : 5.16);
        printf("clip %d: first picture vs source at %.2f s: %.2f, vs the keyframe: %.2f\n", k,
               start[k], same, key);
        assert_true(same < 4.0);
        assert_true(same < key);
    }
    /* a clip whose packets are no longer held: the ring keeps what fits in its bytes */
    its_clipring_flush(r);
    its_clipring_unref(r);
    its_video_close(v);
    assert_int_equal(its_clipring_create(256 << 10, &r), 0); /* 256 KiB: a few seconds */
    o.packet_ctx = r;
    assert_int_equal(its_video_open(video, &o, &v, err, sizeof err), 0);
    while ((rc = its_video_read(v, &f)) == 1 && f.pts_ns < 14 * 1000000000LL)
        ;
    its_clipring_get_stats(r, &st);
    printf("256 KiB ring: %.2f-%.2f s held, %llu bytes\n", st.oldest_ns / 1e9, st.newest_ns / 1e9,
           (unsigned long long)st.bytes_kept);
    assert_true(st.bytes_kept <= 256 << 10);
    assert_true(st.oldest_ns > 1000000000LL);
    assert_true(st.newest_ns > 13 * 1000000000LL);
    assert_int_equal(its_clipring_request(r, 1000000000LL, 1, 1, c3), 0);
    its_clipring_flush(r); /* 0-2 s is gone: no clip, a failure counted */
    its_clipring_get_stats(r, &st);
    assert_int_equal(st.clips_failed, 1);
    assert_int_not_equal(access(c3, F_OK), 0);
    its_clipring_unref(r);
    its_video_close(v);
}

static void test_sweep(void **state)
{
    (void)state;
    char d[300], p[400];
    snprintf(d, sizeof d, "%s/sweep", g_dir);
    mkdir(d, 0755);
    char buf[1000] = {0};
    for (int i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "%s/f%d.jpg", d, i);
        assert_int_equal(its_test_write_file(p, buf, sizeof buf), 0);
        /* f0 is the oldest, f4 the newest */
        char cmd[600];
        snprintf(cmd, sizeof cmd, "touch -d '-%d minutes' '%s'", 50 - 10 * i, p);
        assert_int_equal(system(cmd), 0);
    }
    /* 5000 bytes, at most 3000 kept: the two oldest go */
    assert_int_equal(its_evidence_sweep(d, 3000, 0), 2);
    snprintf(p, sizeof p, "%s/f1.jpg", d);
    assert_int_not_equal(access(p, F_OK), 0);
    snprintf(p, sizeof p, "%s/f2.jpg", d);
    assert_int_equal(access(p, F_OK), 0);
    /* older than 25 minutes: f2 (30 min) goes, f3 (20) and f4 (10) stay */
    assert_int_equal(its_evidence_sweep(d, 1 << 20, 25 * 60), 1);
    assert_int_not_equal(access(p, F_OK), 0);
}

int main(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/its_evidence_%d", (int)getpid());
    mkdir(g_dir, 0755);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clip_durations),
        cmocka_unit_test(test_sweep),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0)
        rc = rc ? rc : 1;
    return rc;
}

/* Test helper: write small synthetic videos with FFmpeg's own encoders at test time. */
#ifndef ITS_TEST_MKVIDEO_H
#define ITS_TEST_MKVIDEO_H

typedef struct mkv_segment {
    int width, height, frames;
} mkv_segment;

/*
 * Write a raw MJPEG stream (one JPEG per frame, the format an IP camera's /mjpeg endpoint
 * gives) to path: the segments one after another, so the frame size changes between them.
 * Each frame is a gradient with a bright square whose position encodes the frame number.
 * Returns 0 or a negative FFmpeg error.
 */
int mkv_write_mjpeg(const char *path, const mkv_segment *segs, int n_segs);

/*
 * Write an HLS stream (VOD playlist + MPEG-TS segments of MPEG-2 video, segment_s seconds
 * each) of `frames` frames at 25 fps into dir: dir/play.m3u8. 0 or a negative FFmpeg error.
 */
int mkv_write_hls(const char *dir, int width, int height, int frames, int segment_s);

#endif

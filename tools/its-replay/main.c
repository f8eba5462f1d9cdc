/*
 * its-replay: tracking and analytics over recorded detections, without running the detector
 * again (tuning a scene file, checking counts). It reads messages v2 (docs/messages.md): the
 * "frame" lines of itsd's stdout or file sink (several cameras interleaved: each camera is
 * replayed through its own analytics with the same scene) and the "infer" lines of its-infer.
 * Other lines (events, windows, drift reports) are skipped.
 *
 *     its-infer -m MODEL.onnx VIDEO > dets.jsonl            (or itsd ... --sink stdout)
 *     its-replay --scene SCENE.yaml [--fps F] [--frames] [--events] dets.jsonl
 *
 * Prints, with --frames, one "tracks" message per frame (tracks, speeds, lanes, events); with
 * --events, one "event" message per event; and at the end one "replay" message per camera with
 * the analytics report (counts per line, windows, zones, queues, incidents). Timestamps come
 * from "pts_us", else frame / fps (the scene's unless --fps). With --csv FILE, the interval
 * counts of every camera (its/counts.h) on the clock of those timestamps from --csv-start.
 * Exit status: 0 ok; 1 some lines
 * were malformed (each reported with its line number and skipped); 2 usage, scene or file
 * error (its/cli.h, docs/cli.md).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "its/alloc.h"
#include "its/analytics.h"
#include "its/cli.h"
#include "its/clock.h"
#include "its/counts.h"
#include "its/error.h"
#include "its/json.h"
#include "replay.h"

#define PROG        "its-replay"
#define MAX_DETS    1024
#define MAX_CAMERAS 64
#define BUF         (1 << 20)

typedef struct cam {
    char id[REPLAY_CAMERA_MAX];
    char id_prefix[REPLAY_CAMERA_MAX + 24];
    its_analytics_t *a;
    its_counts_t *counts; /* --csv */
    int64_t last_ts, last_ts_us;
    uint64_t last_frame;
    long frames;
} cam;

static void usage(FILE *f)
{
    fprintf(f, "Usage: its-replay -s SCENE.yaml [-f FPS] [--frames] [--events] [--csv FILE]\n"
               "                  FILE|-\n"
               "Track and count over recorded detections without running the detector again\n"
               "(tune a scene file, check counts): the \"frame\" lines of itsd's output and the\n"
               "\"infer\" lines of its-infer (messages v2, docs/messages.md); other lines are\n"
               "skipped. FILE - reads standard input.\n"
               "\n"
               "  -s, --scene FILE  scene file: lines, zones, lanes, calibration, fps\n"
               "  -f, --fps F       frame rate for frames without a timestamp (default: the\n"
               "                    scene's fps)\n"
               "      --frames      print one \"tracks\" message per frame (tracks, speeds,\n"
               "                    lanes, events)\n"
               "      --events      print one \"event\" message per event\n"
               "      --csv FILE    interval counts per camera, line, class and direction into\n"
               "                    FILE (CSV, columns in docs/analytics.md)\n"
               "      --csv-interval T  interval of the CSV rows: 15m (default), 1h, 300s...\n"
               "      --csv-start TIME  the clock time of media time 0, e.g.\n"
               "                    2026-12-07T08:00:00Z (default: the epoch)\n"
               "  -h, --help        print this help and exit\n"
               "      --version     print the version and exit\n"
               "\n"
               "At the end it prints one \"replay\" message per camera with the analytics report:\n"
               "counts per line, windows, zones, queues, incidents. Timestamps come from the\n"
               "frame's pts_us, else frame / fps.\n"
               "\n"
               "Exit status (docs/cli.md):\n"
               "  0  every line replayed\n"
               "  1  some lines were malformed (each reported with its line number, skipped)\n"
               "  2  bad usage, scene or input file\n");
}

static void print(its_json *w)
{
    if (its_json_finish(w) >= 0)
        printf("%s\n", w->buf);
    else
        fprintf(stderr, "its-replay: message too large, not printed\n");
}

static int csv_put(void *ctx, const char *s, size_t n)
{
    return fwrite(s, 1, n, ctx) == n ? 0 : ITS_EIO;
}

static cam *camera(cam *cams, int *n, const char *id, const its_scene *scene, int64_t run_us,
                   int csv)
{
    for (int i = 0; i < *n; i++)
        if (!strcmp(cams[i].id, id))
            return &cams[i];
    if (*n == MAX_CAMERAS)
        return NULL;
    cam *c = &cams[*n];
    memset(c, 0, sizeof *c);
    snprintf(c->id, sizeof c->id, "%s", id);
    /* event ids: camera, this run's start time, then the event number */
    snprintf(c->id_prefix, sizeof c->id_prefix, "%s-%lld", id, (long long)run_us);
    c->last_ts = -1;
    if (its_analytics_create(scene, NULL, &c->a) < 0)
        return NULL;
    if (csv && its_counts_create(scene, id, ITS_COUNTS_TOOL_BUCKET_S, ITS_COUNTS_TOOL_BUCKETS,
                                 &c->counts) < 0) {
        its_analytics_destroy(c->a);
        return NULL;
    }
    (*n)++;
    return c;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"scene", required_argument, 0, 's'},
        {"fps", required_argument, 0, 'f'},
        {"frames", no_argument, 0, 'F'},
        {"events", no_argument, 0, 'e'},
        {"csv", required_argument, 0, 'C'},
        {"csv-interval", required_argument, 0, 'I'},
        {"csv-start", required_argument, 0, 'S'},
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, ITS_CLI_OPT_VERSION},
        {0, 0, 0, 0},
    };
    const char *scene_path = NULL, *csv_path = NULL;
    int csv_interval = 900;
    int64_t csv_start = 0;
    double fps = 0;
    int print_frames = 0, print_events = 0, c;
    while ((c = getopt_long(argc, argv, ITS_CLI_OPTSTRING("s:f:"), longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            scene_path = optarg;
            break;
        case 'f':
            if (its_cli_double(PROG, "--fps", optarg, 1e-3, 1000, &fps) < 0)
                return ITS_EXIT_USAGE;
            break;
        case 'F':
            print_frames = 1;
            break;
        case 'e':
            print_events = 1;
            break;
        case 'C':
            csv_path = optarg;
            break;
        case 'I':
            if (its_counts_parse_interval(optarg, &csv_interval) < 0 ||
                csv_interval % ITS_COUNTS_TOOL_BUCKET_S)
                return its_cli_usage_error(
                    PROG, "--csv-interval: '%s' is not whole minutes (15m, 1h)", optarg);
            break;
        case 'S':
            if (its_counts_parse_time(optarg, &csv_start) < 0)
                return its_cli_usage_error(
                    PROG, "--csv-start: '%s' is not a UTC time like 2026-12-07T08:00:00Z", optarg);
            break;
        case 'h':
            usage(stdout);
            return ITS_EXIT_OK;
        case ITS_CLI_OPT_VERSION:
            return its_cli_version(PROG);
        default:
            return its_cli_bad_option(PROG, c, argv);
        }
    }
    if (!scene_path)
        return its_cli_usage_error(PROG, "--scene: no scene file given");
    if (optind >= argc)
        return its_cli_usage_error(PROG, "no input file given (FILE or -)");
    if (optind < argc - 1)
        return its_cli_usage_error(PROG, "unexpected argument '%s'", argv[optind + 1]);
    its_scene scene;
    char err[512];
    if (its_scene_load(scene_path, &scene, err, sizeof err) < 0) {
        fprintf(stderr, "its-replay: %s\n", err);
        return 2;
    }
    if (fps > 0)
        scene.fps = fps;
    const char *path = argv[optind];
    FILE *in = strcmp(path, "-") ? fopen(path, "r") : stdin;
    if (!in) {
        fprintf(stderr, "its-replay: %s: %s\n", path, strerror(errno));
        return 2;
    }
    FILE *csv = NULL;
    if (csv_path && (!(csv = fopen(csv_path, "w")) || fputs(ITS_COUNTS_HEADER, csv) < 0)) {
        fprintf(stderr, "its-replay: --csv %s: %s\n", csv_path, strerror(errno));
        if (csv)
            fclose(csv);
        if (in != stdin)
            fclose(in);
        return 2;
    }
    int64_t run_us = (int64_t)(its_wall_ns() / 1000);
    cam *cams = its_calloc(ITS_MOD_APP, MAX_CAMERAS, sizeof *cams);
    its_det *dets = its_malloc(ITS_MOD_APP, MAX_DETS * sizeof(its_det));
    char *out = its_malloc(ITS_MOD_APP, BUF);
    char *line = NULL;
    size_t cap = 0;
    int n_cams = 0, rc = 0;
    if (!cams || !dets || !out) {
        fprintf(stderr, "its-replay: %s\n", its_strerror(ITS_ENOMEM));
        rc = 2;
        goto done;
    }
    long lineno = 0, bad = 0;
    ssize_t len;
    its_json w;
    while ((len = getline(&line, &cap, in)) >= 0) {
        lineno++;
        replay_frame rf;
        int extra;
        int r = replay_parse_line(line, (size_t)len, dets, MAX_DETS, &rf, &extra, err, sizeof err);
        if (r < 0) {
            fprintf(stderr, "its-replay: %s:%ld: %s\n", path, lineno, err);
            bad++;
            continue;
        }
        if (r == 0)
            continue;
        its_det_frame *f = &rf.f;
        if (extra)
            fprintf(stderr, "its-replay: %s:%ld: %d detections over %d ignored\n", path, lineno,
                    extra, MAX_DETS);
        cam *cm = camera(cams, &n_cams, rf.camera, &scene, run_us, csv != NULL);
        if (!cm) {
            fprintf(stderr, "its-replay: %s:%ld: more than %d cameras, line skipped\n", path,
                    lineno, MAX_CAMERAS);
            bad++;
            continue;
        }
        if (f->ts_ns < 0)
            f->ts_ns = (int64_t)((double)f->frame_no * 1e9 / scene.fps);
        if (f->ts_ns <= cm->last_ts) {
            fprintf(stderr, "its-replay: %s:%ld: camera %s: time goes backwards, frame skipped\n",
                    path, lineno, cm->id);
            bad++;
            continue;
        }
        cm->last_ts = f->ts_ns;
        cm->last_ts_us = rf.ts_us;
        cm->last_frame = f->frame_no;
        const its_analytics_frame *fr;
        if ((r = its_analytics_push(cm->a, f, &fr)) < 0) {
            fprintf(stderr, "its-replay: %s:%ld: %s\n", path, lineno, its_strerror(r));
            bad++;
            continue;
        }
        cm->frames++;
        if (cm->counts)
            its_counts_frame(cm->counts, csv_start + f->ts_ns, fr->events, fr->n_events);
        if (print_frames) {
            its_json_init(&w, out, BUF);
            its_json_msg_begin(&w, "tracks", cm->id, rf.ts_us, f->frame_no);
            its_json_key(&w, "analytics");
            its_analytics_frame_write(cm->a, fr, &w);
            its_json_obj_end(&w);
            print(&w);
        }
        for (int i = 0; print_events && i < fr->n_events; i++) {
            its_json_init(&w, out, BUF);
            its_analytics_event_message(cm->a, &fr->events[i], cm->id, cm->id_prefix, rf.ts_us,
                                        f->frame_no, &w);
            print(&w);
        }
    }
    if (ferror(in)) {
        fprintf(stderr, "its-replay: %s: read error\n", path);
        rc = 2;
        goto done;
    }
    for (int i = 0; i < n_cams; i++) {
        its_analytics_report rep;
        its_analytics_get_report(cams[i].a, &rep);
        its_json_init(&w, out, BUF);
        its_json_msg_begin(&w, "replay", cams[i].id, cams[i].last_ts_us, cams[i].last_frame);
        its_json_kint(&w, "frames", cams[i].frames);
        its_json_key(&w, "report");
        its_analytics_report_write(cams[i].a, &rep, &w);
        its_json_obj_end(&w);
        if (its_json_finish(&w) < 0) {
            fprintf(stderr, "its-replay: report too large\n");
            rc = 2;
            goto done;
        }
        printf("%s\n", out);
        if (csv &&
            its_counts_csv(cams[i].counts, INT64_MIN, INT64_MAX, csv_interval, csv_put, csv) < 0) {
            fprintf(stderr, "its-replay: --csv %s: write error\n", csv_path);
            rc = 2;
            goto done;
        }
    }
    if (csv && fflush(csv) != 0) {
        fprintf(stderr, "its-replay: --csv %s: write error\n", csv_path);
        rc = 2;
        goto done;
    }
    if (n_cams == 0)
        fprintf(stderr, "its-replay: %s: no detection frames\n", path);
    rc = bad ? 1 : 0;
done:
    free(line);
    if (in && in != stdin)
        fclose(in);
    for (int i = 0; i < n_cams; i++) {
        its_analytics_destroy(cams[i].a);
        its_counts_destroy(cams[i].counts);
    }
    if (csv)
        fclose(csv);
    its_free(cams);
    its_free(dets);
    its_free(out);
    return rc;
}

/*
 * its-replay: tracking and analytics over detections recorded by its-infer, without running
 * the detector again (tuning a scene file, checking counts).
 *
 *     its-infer -m MODEL.onnx VIDEO > dets.jsonl
 *     its-replay --scene SCENE.yaml [--fps F] [--frames] [--events] dets.jsonl
 *
 * Prints, with --frames, one JSON object per frame (tracks, speeds, lanes, events); with
 * --events, one line per event; and at the end the analytics report (counts per line, windows,
 * zones, queues, incidents). Timestamps come from "pts_ms", else frame / fps (the scene's
 * unless --fps). Exit status: 0 ok; 1 some lines were malformed (each reported with its line
 * number and skipped); 2 usage, scene or file error (its/cli.h, docs/cli.md).
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "its/alloc.h"
#include "its/analytics.h"
#include "its/cli.h"
#include "its/error.h"
#include "replay.h"

#define PROG     "its-replay"
#define MAX_DETS 1024
#define BUF      (1 << 20)

static void usage(FILE *f)
{
    fprintf(f, "Usage: its-replay -s SCENE.yaml [-f FPS] [--frames] [--events] FILE|-\n"
               "Track and count over detections recorded by its-infer or itsd (JSON lines, one\n"
               "frame each, docs/messages.md), without running the detector again: tune a scene\n"
               "file, check counts. FILE - reads standard input.\n"
               "\n"
               "  -s, --scene FILE  scene file: lines, zones, lanes, calibration, fps\n"
               "  -f, --fps F       frame rate for frames without a timestamp (default: the\n"
               "                    scene's fps)\n"
               "      --frames      print one JSON object per frame (tracks, speeds, lanes,\n"
               "                    events)\n"
               "      --events      print one JSON line per event\n"
               "  -h, --help        print this help and exit\n"
               "      --version     print the version and exit\n"
               "\n"
               "At the end it prints the analytics report: counts per line, windows, zones,\n"
               "queues, incidents. Timestamps come from the frame's timestamp, else frame / fps.\n"
               "\n"
               "Exit status (docs/cli.md):\n"
               "  0  every line replayed\n"
               "  1  some lines were malformed (each reported with its line number, skipped)\n"
               "  2  bad usage, scene or input file\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"scene", required_argument, 0, 's'},
        {"fps", required_argument, 0, 'f'},
        {"frames", no_argument, 0, 'F'},
        {"events", no_argument, 0, 'e'},
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, ITS_CLI_OPT_VERSION},
        {0, 0, 0, 0},
    };
    const char *scene_path = NULL;
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
    its_analytics_t *a = NULL;
    its_det *dets = its_malloc(ITS_MOD_APP, MAX_DETS * sizeof(its_det));
    char *out = its_malloc(ITS_MOD_APP, BUF);
    char *line = NULL;
    size_t cap = 0;
    int rc = its_analytics_create(&scene, NULL, &a);
    if (rc < 0 || !dets || !out) {
        fprintf(stderr, "its-replay: %s\n", its_strerror(rc < 0 ? rc : ITS_ENOMEM));
        rc = 2;
        goto done;
    }
    long lineno = 0, bad = 0, frames = 0;
    int64_t last_ts = -1;
    ssize_t len;
    while ((len = getline(&line, &cap, in)) >= 0) {
        lineno++;
        its_det_frame f;
        int extra;
        int r = replay_parse_line(line, (size_t)len, dets, MAX_DETS, &f, &extra, err, sizeof err);
        if (r < 0) {
            fprintf(stderr, "its-replay: %s:%ld: %s\n", path, lineno, err);
            bad++;
            continue;
        }
        if (r == 0)
            continue;
        if (extra)
            fprintf(stderr, "its-replay: %s:%ld: %d detections over %d ignored\n", path, lineno,
                    extra, MAX_DETS);
        if (f.ts_ns < 0)
            f.ts_ns = (int64_t)((double)f.frame_no * 1e9 / scene.fps);
        if (f.ts_ns <= last_ts) {
            fprintf(stderr, "its-replay: %s:%ld: time goes backwards, frame skipped\n", path,
                    lineno);
            bad++;
            continue;
        }
        last_ts = f.ts_ns;
        const its_analytics_frame *fr;
        if ((r = its_analytics_push(a, &f, &fr)) < 0) {
            fprintf(stderr, "its-replay: %s:%ld: %s\n", path, lineno, its_strerror(r));
            bad++;
            continue;
        }
        frames++;
        if (print_frames && its_analytics_frame_to_json(a, fr, out, BUF) >= 0)
            printf("%s\n", out);
        for (int i = 0; print_events && i < fr->n_events; i++) {
            const its_event *e = &fr->events[i];
            const char *what = e->type == ITS_EV_LINE_CROSSING ? scene.lines[e->index].name
                               : (e->type == ITS_EV_ZONE_ENTER || e->type == ITS_EV_ZONE_EXIT)
                                   ? scene.zones[e->index].name
                                   : "";
            char speed[32] = "null";
            if (isfinite(e->speed_kmh))
                snprintf(speed, sizeof speed, "%.1f", e->speed_kmh);
            printf("{\"frame\":%llu,\"t_s\":%.3f,\"event\":\"%s\",\"where\":\"%s\",\"track\":%u,"
                   "\"class\":\"%s\",\"direction\":%d,\"speed_kmh\":%s}\n",
                   (unsigned long long)f.frame_no, (double)f.ts_ns / 1e9,
                   its_event_type_name(e->type), what, e->track_id, its_class_group_name(e->group),
                   e->direction, speed);
        }
    }
    if (ferror(in)) {
        fprintf(stderr, "its-replay: %s: read error\n", path);
        rc = 2;
        goto done;
    }
    its_analytics_report rep;
    its_analytics_get_report(a, &rep);
    if (its_analytics_report_to_json(a, &rep, out, BUF) < 0) {
        fprintf(stderr, "its-replay: report too large\n");
        rc = 2;
        goto done;
    }
    printf("%s\n", out);
    if (frames == 0)
        fprintf(stderr, "its-replay: %s: no detection frames\n", path);
    rc = bad ? 1 : 0;
done:
    free(line);
    if (in && in != stdin)
        fclose(in);
    its_free(dets);
    its_free(out);
    its_analytics_destroy(a);
    return rc;
}

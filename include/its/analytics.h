/*
 * its/analytics.h - per-camera traffic analytics: scene configuration, line counts, zones,
 * speed, flow/density/headway/level of service, queues, incidents, rolling windows, forecast.
 *
 *     its_scene scene;
 *     char err[512];
 *     if (its_scene_load("deploy/scenes/cam1.yaml", &scene, err, sizeof err) < 0) {
 *         fprintf(stderr, "%s\n", err);   // "cam1.yaml: lines[1].points: 2 points needed, got 3"
 *         return 1;
 *     }
 *     its_analytics_t *a;
 *     its_analytics_create(&scene, NULL, &a);            // NULL: default ByteTrack params
 *     for (each frame) {
 *         its_det_frame f = {...};                       // detector output, source pixels
 *         const its_analytics_frame *r;
 *         if (its_analytics_push(a, &f, &r) < 0) ...      // track + analyse
 *         its_json w;
 *         its_json_init(&w, buf, sizeof buf);
 *         its_analytics_frame_write(a, r, &w);            // tracks, speeds, events
 *         int len = its_json_finish(&w);
 *     }
 *     its_analytics_report rep;
 *     its_analytics_get_report(a, &rep);                 // counts, windows, forecast
 *     its_analytics_report_write(a, &rep, &w);           // counts, windows, ... as JSON
 *     its_analytics_destroy(a);
 *
 * Geometry: everything is measured at a track's anchor, the bottom centre of its box (where
 * the vehicle touches the road). Image points are source pixels; road points are metres on the
 * road plane, through the homography fitted to the scene's four calibration point pairs.
 *
 * Contract: one its_analytics_t per camera, used by one thread at a time (no locks, no
 * globals). its_analytics_create allocates everything (sized by max_tracks); push/update
 * never allocate. Results returned by push/update point into the context and stay valid
 * until the next push/update/destroy. Timestamps must not go backwards (a frame that does is
 * refused with ITS_EINVAL and counted). Without a calibration, speeds, queues, density and the
 * speed-based incidents are not computed (reported as null), counts and zones still are.
 * Errors: ITS_EINVAL, ITS_ENOMEM, ITS_ECONFIG (scene), ITS_ENOENT (file), ITS_EOVERFLOW (JSON).
 */
#ifndef ITS_ANALYTICS_H
#define ITS_ANALYTICS_H

#include <stddef.h>
#include <stdint.h>

#include "its/json.h"
#include "its/track.h"

#define ITS_SCENE_MAX_LINES 16
#define ITS_SCENE_MAX_ZONES 16
#define ITS_SCENE_MAX_LANES 16
#define ITS_SCENE_MAX_POLY  32
#define ITS_SCENE_NAME_MAX  32

/* Class groups, from COCO ids (default map: person 0, bicycle 1, car 2, motorcycle 3, bus 5,
 * truck 7). The first four are "vehicles" for flow, density, queues and incidents. */
typedef enum its_class_group {
    ITS_CLS_CAR = 0,
    ITS_CLS_TRUCK,
    ITS_CLS_BUS,
    ITS_CLS_MOTORCYCLE,
    ITS_CLS_BICYCLE,
    ITS_CLS_PERSON,
    ITS_CLS_COUNT
} its_class_group;

const char *its_class_group_name(int group);

/* Traffic kinds: what a track is for a traffic study. A track's kind follows from its voted
 * class group: a person riding (merged with a two-wheeler, moving at vehicle speed, or on the
 * roadway where the scene marks walking zones) is a bicycle or a motorcycle; a truck is heavy
 * goods when it stands at least heavy_goods_height_m tall (needs a calibration), else light
 * goods. Scenes map kinds onto their own traffic classes (its_traffic_class). */
typedef enum its_traffic_kind {
    ITS_TK_PEDESTRIAN = 0,
    ITS_TK_BICYCLE,
    ITS_TK_MOTORCYCLE,
    ITS_TK_CAR,
    ITS_TK_LIGHT_GOODS,
    ITS_TK_HEAVY_GOODS,
    ITS_TK_BUS,
    ITS_TK_COUNT
} its_traffic_kind;

/* "pedestrian", "bicycle", "motorcycle", "car", "light_goods", "heavy_goods", "bus";
 * NULL outside the range. */
const char *its_traffic_kind_name(int kind);

#define ITS_SCENE_MAX_TCLASSES 8

typedef struct its_pt {
    double x, y;
} its_pt;

/* A counting line from a to b; a crossing whose motion has a positive dot product with
 * `positive` (an image-space vector) is counted in the positive direction. */
typedef struct its_scene_line {
    char name[ITS_SCENE_NAME_MAX];
    its_pt a, b;
    its_pt positive;
    int lanes; /* lanes the line spans, for density per lane (default 1) */
} its_scene_line;

typedef struct its_scene_zone {
    char name[ITS_SCENE_NAME_MAX];
    int n;
    its_pt poly[ITS_SCENE_MAX_POLY];
    int walk; /* people walk here (crossing, pavement): persons count as pedestrians */
} its_scene_zone;

/* A class of the scene's traffic classification: the traffic kinds it takes (bit k for
 * its_traffic_kind k; each kind in at most one class). */
typedef struct its_traffic_class {
    char name[ITS_SCENE_NAME_MAX];
    unsigned kinds;
} its_traffic_class;

/* A lane: a polygon, the legal travel direction (image-space vector) and optionally the
 * counting line that is its stop line (queue length is measured back from it). */
typedef struct its_scene_lane {
    char name[ITS_SCENE_NAME_MAX];
    int n;
    its_pt poly[ITS_SCENE_MAX_POLY];
    its_pt direction;
    int stop_line; /* index into lines, or -1 */
} its_scene_lane;

/* Tunables, the `analytics:` section of a scene file (defaults in docs/analytics.md). */
typedef struct its_analytics_params {
    double speed_window_s;          /* speed = displacement over this window (1.0) */
    double line_hysteresis_px;      /* dead band either side of a counting line (2) */
    double track_timeout_s;         /* forget a track unseen this long (2) */
    double stopped_speed_kmh;       /* below this a vehicle is stopped (5) */
    double stopped_time_s;          /* stopped-vehicle incident after this long (20) */
    double wrong_way_time_s;        /* wrong-way incident after this long (2) */
    double wrong_way_min_speed_kmh; /* only moving vehicles can be wrong-way (10) */
    double speed_drop_kmh;          /* sudden drop: speed falls by this much (30) */
    double speed_drop_window_s;     /* ... within this time (2) */
    double speed_drop_ratio;        /* ... and by at least this share of the speed (0.4) */
    double queue_speed_kmh;         /* slower than this counts as queued (5) */
    double queue_gap_m;             /* largest gap inside one queue (15) */
    double forecast_alpha;          /* Holt level smoothing (0.3) */
    double forecast_beta;           /* Holt trend smoothing (0.1) */
    double duplicate_iou;           /* push: drop a box of another class overlapping a
                                       higher-scored one this much (0.7; 0 off) */
    double rider_overlap;           /* push: a person box lying this share inside a bicycle or
                                       motorcycle box is its rider, merged into it (0.3; 0 off) */
    double rider_speed_kmh;         /* a person track this fast is riding (15; 0 off) */
    double motorcycle_speed_kmh;    /* a rider seen without its machine is on a motorcycle
                                       from this speed, else on a bicycle (30) */
    double class_vote_margin;       /* a track changes class when another class's score-weighted
                                       votes exceed its current class's this many times (1.5) */
    double crossing_margin;         /* a crossing needs the anchor this share of the box height
                                       (at least line_hysteresis_px) either side of the line (0.1) */
    double heavy_goods_height_m;    /* a truck this tall is heavy goods (3.2) */
} its_analytics_params;

typedef struct its_scene {
    char camera[64];
    double fps;
    int width_px, height_px; /* 0: not checked */
    int has_calibration;
    its_pt calib_image[4]; /* pixels */
    its_pt calib_road[4];  /* metres */
    double H[9];           /* image -> road, row-major, fitted by its_scene_validate */
    /* Where speeds are measured (image polygon; 0 points: everywhere). Far from the
     * calibration points a by-eye homography extrapolates badly: keep speeds where it holds. */
    int speed_zone_n;
    its_pt speed_zone[ITS_SCENE_MAX_POLY];
    signed char class_map[256]; /* COCO id -> its_class_group, -1: ignored */
    int n_lines, n_zones, n_lanes;
    int n_tclasses; /* traffic classes (default: one per its_traffic_kind, in its order) */
    its_traffic_class tclasses[ITS_SCENE_MAX_TCLASSES];
    its_scene_line lines[ITS_SCENE_MAX_LINES];
    its_scene_zone zones[ITS_SCENE_MAX_ZONES];
    its_scene_lane lanes[ITS_SCENE_MAX_LANES];
    its_analytics_params params;
} its_scene;

/* Defaults: no lines/zones/lanes, no calibration, 30 fps, the COCO class map. */
void its_scene_default(its_scene *s);
/* Load and validate a scene file. Errors name the file, the key and the reason:
 * "cam.yaml: zones[0].polygon: self-intersecting". ITS_ENOENT when the file cannot be read. */
int its_scene_load(const char *path, its_scene *out, char *err, size_t errlen);
int its_scene_load_string(const char *yaml, size_t len, const char *origin, its_scene *out,
                          char *err, size_t errlen);
/* Check a scene filled in by hand and fit its homography (also done by load). */
int its_scene_validate(its_scene *s, const char *origin, char *err, size_t errlen);
/* The scene as one JSON object in the scene file's keys (every value written, each number
 * with the fewest digits that read back exactly), which its_scene_load_string reads back to
 * the same scene. */
void its_scene_write(const its_scene *s, its_json *w);
/* Image pixel -> road metres through s->H. */
its_pt its_scene_to_road(const its_scene *s, its_pt img);

/* HCM level of service from density in vehicles per km per lane: 'A'..'F' ('?' if NaN). */
char its_los_from_density(double veh_per_km_lane);

/* Holt's linear exponential smoothing with its error tracked, one observation per step. */
typedef struct its_forecast {
    double alpha, beta;
    double level, trend;
    uint64_t n;                            /* observations so far */
    double hist[64];                       /* last observations, ring by n */
    double f15[64], f60[64];               /* forecasts made after observation n, ring by n */
    double next1;                          /* one-step forecast for the next observation */
    double abs_err1, abs_err15, abs_err60; /* sums of absolute errors */
    uint64_t n_err1, n_err15, n_err60;
} its_forecast;

void its_forecast_init(its_forecast *f, double alpha, double beta);
/* Add one observation (one minute of flow, veh/h). */
void its_forecast_add(its_forecast *f, double x);
/* Mean of the next h steps; NaN before two observations. */
double its_forecast_mean_ahead(const its_forecast *f, int h);
/* Mean absolute errors of the 1-step, 15-step-mean and 60-step-mean forecasts; NaN if none. */
double its_forecast_mae(const its_forecast *f, int horizon);

/*
 * Events. Instant ones (line_crossing, wrong_way, speed_drop) have phase NONE, but for a
 * line crossing whose track's class changed after it: that comes as an UPDATE of the crossing
 * (same seq) with the new class. Things that
 * last have a lifecycle, as NVR event feeds do: one START, UPDATEs every ITS_EVENT_UPDATE_S
 * while it lasts, one END, all with the same seq:
 *   zone_presence    an object inside a zone: start on entering, end on leaving or when its
 *                    track is lost (value: dwell so far, s)
 *   queue            stopped vehicles chained back from a lane's stop line: start when the
 *                    first one queues, end when none is left (value: queue length, m)
 *   stopped_vehicle  a vehicle stopped in a lane, not in a queue, for stopped_time_s: end when
 *                    it moves again (above twice stopped_speed_kmh), leaves its lane or its
 *                    track is lost (value: time stopped, s)
 */
#define ITS_EVENT_UPDATE_S 10

typedef enum its_event_type {
    ITS_EV_LINE_CROSSING = 0,
    ITS_EV_ZONE_PRESENCE,
    ITS_EV_QUEUE,
    ITS_EV_STOPPED_VEHICLE, /* this one and the ones after it are incidents */
    ITS_EV_WRONG_WAY,
    ITS_EV_SPEED_DROP,
    ITS_EV_COUNT
} its_event_type;

typedef enum its_event_phase {
    ITS_PHASE_NONE = 0, /* an instant event */
    ITS_PHASE_START,
    ITS_PHASE_UPDATE,
    ITS_PHASE_END,
} its_event_phase;

const char *its_event_type_name(its_event_type t);
/* "start", "update", "end"; NULL for ITS_PHASE_NONE. */
const char *its_event_phase_name(its_event_phase p);

typedef struct its_event {
    its_event_type type;
    its_event_phase phase;
    uint64_t seq;       /* from 1 per analytics context; kept through a lifecycle */
    uint32_t track_id;  /* 0 for queue events (no one track) */
    int group;          /* its_class_group (queue: car) */
    int tclass;         /* index into the scene's traffic classes, -1 none */
    int index;          /* line, zone or lane index (-1: none) */
    int direction;      /* crossings: +1 positive, -1 negative */
    double speed_kmh;   /* NaN if unknown */
    double value;       /* zone presence: dwell s; stopped: s stopped; drop: km/h lost;
                           queue: length m (NaN if unknown) */
    int queue_vehicles; /* queue events */
    int64_t ts_ns;
} its_event;

/* Result of one frame. Arrays parallel to tracks: speed (NaN unknown), lane (-1 none), class
 * group and traffic class as voted so far. */
typedef struct its_analytics_frame {
    int64_t ts_ns;
    uint64_t frame_no;
    const its_track *tracks;
    int n_tracks;
    const float *speed_kmh;
    const signed char *lane;
    const signed char *group;  /* voted class group (its_class_group; -1: class not mapped) */
    const signed char *tclass; /* traffic class index (-1: none) */
    const its_event *events;
    int n_events;
    int zone_count[ITS_SCENE_MAX_ZONES];
    double queue_m[ITS_SCENE_MAX_LANES]; /* NaN without calibration or stop line */
    int queue_vehicles[ITS_SCENE_MAX_LANES];
} its_analytics_frame;

/* One rolling window (1 minute or 15 minutes) at one line. */
typedef struct its_line_window {
    double span_s;                               /* time covered (less at start-up) */
    uint32_t count[ITS_CLS_COUNT][2];            /* [group][0 positive, 1 negative] */
    uint32_t traffic[ITS_SCENE_MAX_TCLASSES][2]; /* [traffic class][direction] */
    uint32_t vehicles;                           /* car + truck + bus + motorcycle */
    double flow_vph;                             /* vehicles per hour */
    double sms_kmh;                              /* space-mean speed (harmonic mean) */
    double density_vpkml;                        /* flow / speed / lanes */
    char los;                                    /* 'A'..'F', '?' unknown */
    double headway_mean_s, headway_min_s;        /* NaN with fewer than 2 vehicles */
} its_line_window;

typedef struct its_line_stats {
    uint32_t total[ITS_CLS_COUNT][2]; /* since start */
    uint32_t traffic_total[ITS_SCENE_MAX_TCLASSES][2];
    its_line_window win[2];                /* [0] 1 minute, [1] 15 minutes */
    double forecast15_vph, forecast60_vph; /* mean flow over the next 15 / 60 min */
    double forecast_mae1_vph, forecast_mae15_vph, forecast_mae60_vph;
    uint64_t forecast_minutes; /* completed minutes fed to the forecast */
} its_line_stats;

typedef struct its_zone_stats {
    int count_now;
    double occupied_pct; /* share of time with at least one object inside */
    uint64_t entries;
    double dwell_mean_s, dwell_max_s; /* over objects that left; NaN if none */
} its_zone_stats;

typedef struct its_lane_stats {
    double queue_m, queue_max_m; /* NaN when not measured */
    int queue_vehicles;
} its_lane_stats;

typedef struct its_analytics_report {
    int64_t ts_ns;
    uint64_t frames;
    double elapsed_s;
    int tracks_now;
    double mean_speed_kmh; /* over vehicles in view now; NaN if none */
    uint64_t incidents[ITS_EV_COUNT];
    uint64_t frames_refused, events_dropped, tracks_dropped;
    uint64_t duplicates_dropped; /* push: cross-class duplicate detections removed */
    uint64_t riders_merged;      /* push: person detections merged into their two-wheeler */
    uint64_t class_changes;      /* counted crossings moved to another class by the vote */
    its_line_stats lines[ITS_SCENE_MAX_LINES];
    its_zone_stats zones[ITS_SCENE_MAX_ZONES];
    its_lane_stats lanes[ITS_SCENE_MAX_LANES];
} its_analytics_report;

typedef struct its_analytics its_analytics_t;

void its_analytics_params_default(its_analytics_params *p);
/* tp: tracker parameters for push (NULL: ByteTrack defaults with the scene's frame rate). The
 * scene is copied. */
int its_analytics_create(const its_scene *scene, const its_tracker_params *tp,
                         its_analytics_t **out);
void its_analytics_destroy(its_analytics_t *a);
/* Replace the scene while tracks and counts go on (the scene is copied and validated;
 * ITS_EINVAL if it is not valid, nothing changed then). A line of the new scene with the same
 * name, end points, positive direction and lanes as one of the old is the same line: its
 * totals, windows, forecast and the tracks' state at it (the side they are on, whether they
 * were counted there) continue; any other line starts from zero, and a track counts there
 * once it has been seen on one side and then on the other. Zones alike (same name, polygon
 * and walk); presence in a zone that is gone ends without an event. Lanes, calibration, class
 * map, traffic classes and parameters are taken as they are; counts by traffic class start
 * again when the traffic classes change, speeds when the calibration does. line_map (may be
 * NULL) receives for each new line the index of the old line it continues, or -1. Not while
 * push/update run (one thread, as the rest). Allocates nothing. */
int its_analytics_set_scene(its_analytics_t *a, const its_scene *scene,
                            int line_map[ITS_SCENE_MAX_LINES]);
/* Detections of one frame: runs the camera's tracker, then update. Detectors with per-class
 * NMS may report one vehicle twice (car and truck, same box); before tracking, a detection
 * overlapping a higher-scored one of another class by duplicate_iou or more is dropped, so
 * it cannot start a second track and be counted twice. A person detection lying at least
 * rider_overlap of its area inside a bicycle or motorcycle detection is merged into it (the
 * union box, the best score, the two-wheeler's class): rider and machine are one object, one
 * track. r->tracks[i].det_index refers to f. Give push every detection down to the tracker's
 * low threshold (0.1 by default): weak detections continue tracks. */
int its_analytics_push(its_analytics_t *a, const its_det_frame *f, const its_analytics_frame **out);
/* Tracks of one frame from a tracker of the caller's own.
 *
 * Classes: a track's class group is a vote over its whole life, each frame's detection
 * weighted by its score; the class changes only when another class's votes exceed the
 * current one's class_vote_margin times. A crossing counts once per line, in the class the
 * track has when it crosses; if the vote later changes the track's class (or traffic kind),
 * the count moves with it (in the totals, and in the windows while its bucket is in them), so
 * the report counts every vehicle once, in its final class, and the crossing's event comes
 * again with the new class (phase UPDATE, the same seq).
 *
 * Crossings: a track crosses a line when its anchor goes from beyond the line's dead band on
 * one side to beyond it on the other (the band: crossing_margin of the box height, at least
 * line_hysteresis_px), the direction from that stretch of its path: jitter on the line does
 * not count. A new track (its_track origin_h > 0) starts from its origin, the detection that
 * started it: a crossing made before the tracker confirmed it still counts. */
int its_analytics_update(its_analytics_t *a, int64_t ts_ns, uint64_t frame_no,
                         const its_track *tracks, int n, const its_analytics_frame **out);
int its_analytics_get_report(its_analytics_t *a, its_analytics_report *out);

/* JSON objects into w (its/json.h; its_json_finish gives the length or ITS_EOVERFLOW): the
 * frame's tracks, speeds and events ("analytics" of docs/schema/tracks.schema.json), and the
 * report ("report" of docs/schema/window.schema.json). */
void its_analytics_frame_write(const its_analytics_t *a, const its_analytics_frame *r, its_json *w);
void its_analytics_report_write(const its_analytics_t *a, const its_analytics_report *r,
                                its_json *w);

/*
 * Checkpoints: a camera's cumulative analytics as one JSON object (docs/scale-out.md,
 * "Checkpoints", has the format), so that another process continues them: line totals (by
 * class group and traffic class), the 1- and 15-minute windows' buckets, the flow forecasts,
 * zone statistics (entries, occupancy, dwell) and the report's counters. Tracks are not in it
 * (they start again, and so do lifecycles in progress).
 *
 *     its_json w;                                           // the owner, at window ends
 *     its_json_init(&w, buf, sizeof buf);
 *     its_analytics_checkpoint_write(a, "cam-1", wall_us, &w);
 *     ...
 *     its_analytics_resumed r;                              // the next owner, before frame 1
 *     if (its_analytics_checkpoint_restore(b, text, len, wall_us, &r, err, sizeof err) < 0)
 *         log(err);                                         // b is as created: counts from 0
 *
 * Restore applies the state of a checkpoint line to the line of this context's scene with the
 * same name, end points, positive direction and lanes (as its_analytics_set_scene does), zones
 * alike (name, polygon, walk); other lines and zones start at zero. Counts by traffic class
 * continue only when the traffic classes are the same (names and kinds). The stream time goes
 * on from the checkpoint's, plus the wall-clock time between wall_us of the write and of the
 * restore, so the windows' buckets age across the move. Only before the first frame, once;
 * ITS_EPROTO (err says why) for a checkpoint that is not one of this version, and the context
 * is then unchanged. Allocates a little (the parse) and so is not for the frame path.
 */
#define ITS_CHECKPOINT_VERSION 1

typedef struct its_analytics_resumed {
    int lines, lines_kept; /* the scene's lines, those continued from the checkpoint */
    int zones, zones_kept;
    int traffic_kept; /* the counts by traffic class continued */
    double elapsed_s; /* stream time the checkpoint covered */
    double age_s;     /* wall-clock time since it was written */
} its_analytics_resumed;

/* camera: the id written into it (NULL: the scene's camera). */
void its_analytics_checkpoint_write(const its_analytics_t *a, const char *camera, int64_t wall_us,
                                    its_json *w);
int its_analytics_checkpoint_restore(its_analytics_t *a, const char *text, size_t len,
                                     int64_t wall_us, its_analytics_resumed *info, char *err,
                                     size_t errlen);

/*
 * Whole messages of schema v2 (docs/messages.md), one JSON object each into w:
 * - an event: {"v":2,"type":"event","camera":..,"ts_us":..,"frame":..,"id":..,"kind":..,..};
 *   id is "<id_prefix>-<seq>": with a prefix unique per camera and process run (itsd uses the
 *   camera id and the process start time in microseconds), the id is unique across restarts
 *   and the same through a lifecycle. ts_us: the event's wall-clock time.
 * - a window (the analytics report): {"v":2,"type":"window","camera":..,"ts_us":..,"frame":..,
 *   "report":{..}}; ts_us: the wall-clock time of the window's end.
 */
void its_analytics_event_message(const its_analytics_t *a, const its_event *e, const char *camera,
                                 const char *id_prefix, int64_t ts_us, uint64_t frame, its_json *w);
/* The event message with "evidence":{"snapshot":..,"clip":..} (links; NULL ones left out). */
void its_analytics_event_message_links(const its_analytics_t *a, const its_event *e,
                                       const char *camera, const char *id_prefix, int64_t ts_us,
                                       uint64_t frame, const char *snapshot, const char *clip,
                                       its_json *w);
void its_analytics_window_message(const its_analytics_t *a, const its_analytics_report *r,
                                  const char *camera, int64_t ts_us, uint64_t frame, its_json *w);

#endif

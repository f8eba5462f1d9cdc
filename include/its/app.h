/*
 * its/app.h - itsd's configuration: the options table, the camera list, loading, checking,
 * printing, and building a pipeline from it.
 *
 *     its_app_config c;
 *     char err[512];
 *     if (its_app_config_load(&c, "deploy/itsd.yaml", err, sizeof err) < 0) {
 *         fprintf(stderr, "%s\n", err);   // "deploy/itsd.yaml: batch.max_size: 64 is above 32"
 *         return 2;
 *     }
 *     its_app_config_print(&c, stdout);    // effective settings, loadable again
 *     its_pipeline_t *p;
 *     its_app_build_pipeline(&c, &p, err, sizeof err);
 *     its_app_config_free(&c);
 *
 * YAML: the sections below (every scalar overridable from the environment as
 * ITS_<SECTION>_<KEY>) plus `cameras:`, a list of mappings:
 *
 *     cameras:
 *       - id: cam-1                      # required, unique, [A-Za-z0-9_.-], <= 63 chars
 *         url: ${ITS_SHARED_DIR:-../shared}/media/traffic_bridge_720p.mp4   # required
 *         kind: file                     # auto|file|rtsp|http|hls|replay (default auto)
 *         loop: true                     # files and replay
 *         pace: realtime                 # realtime (default) | none (as fast as decoded)
 *         fps: 0                         # 0: the media's own rate
 *         sample_fps: 0                  # pass on at most this many frames per second of
 *                                        # media time, the video still at its own rate (0: all)
 *         phase_s: 0                     # replay, paced files: offset into the clip
 *         replay_frames: 0               # replay: frames kept in memory (0: up to 300)
 *         max_width: 0                   # 0: ingest.max_width
 *         max_height: 0
 *         scene: deploy/scenes/cam-1.yaml   # analytics scene, optional
 *         rtsp_transport: tcp            # rtsp: tcp (interleaved, default) or udp
 *         decode: auto                   # auto (NVDEC with the cuda engine, else CPU) | nvdec
 *                                        # | cpu (docs/decode.md)
 *
 * String values of url, scene, engine.model, engine.labels and sink.path may use ${VAR} and
 * ${VAR:-default}; relative paths are relative to the working directory.
 *
 * Contract: not thread-safe; load before starting threads. Every problem is an error naming
 * the origin, the key and the reason (ITS_ECONFIG, ITS_ENOENT for a missing file).
 */
#ifndef ITS_APP_H
#define ITS_APP_H

#include <stddef.h>
#include <stdio.h>

#include "its/config.h"
#include "its/pipeline.h"
#include "its/api.h"
#include "its/publish.h"

typedef enum { ITS_BACKEND_NOOP = 0, ITS_BACKEND_CPU, ITS_BACKEND_CUDA } its_backend_kind;
typedef enum { ITS_SINKT_STDOUT = 0, ITS_SINKT_FILE, ITS_SINKT_NULL } its_sink_kind;

typedef struct its_app_settings {
    char *log_level;
    char *log_format;
    int backend;
    int fallback; /* engine.fallback: 1 = cpu (a GPU engine that fails is replaced), 0 = none */
    char *model;
    char *input_size;     /* "WxH" or empty */
    char *plan_cache_dir; /* engine.plan_cache_dir: a folder, "auto" or empty (none) */
    char *labels;
    int threads;
    int engine_workers;
    int nvdec_max_sessions; /* engine.nvdec_max_sessions: 0 = no limit of ours */
    double conf, iou;
    double track_conf;
    double noop_cost_us;
    int batch_max;
    double batch_delay_ms;
    int per_camera;
    int capacity, high_water, low_water;
    int pixfmt;
    int pool_frames;
    int stall_timeout_ms, backoff_min_ms, backoff_max_ms;
    int max_width, max_height;
    int source_nice;
    int spread_phase;
    int max_cameras;
    int analytics_workers;
    int analytics_enabled;
    double window_s;
    double quality_image_fps;
    int counts_hours;
    char *evidence_dir, *evidence_events;
    double evidence_pre_s, evidence_post_s, evidence_max_age_h;
    int evidence_max_mb, evidence_ring_mb;
    char *baseline_dir;
    char *scene_dir;
    int sink;
    char *sink_path;
    double status_interval_s;
    double drain_s;
    its_publish_settings redis; /* redis.*: an empty host means no Redis sink */
    int api_enabled;
    its_api_settings api; /* api.* */
    /* cluster.*: replicas sharing the cameras through Redis (its/cluster.h) */
    int cluster_enabled;
    char *cluster_replica; /* "": ITS_REPLICA_NAME, else the host name */
    int cluster_capacity;  /* 0: ingest.max_cameras */
    int cluster_lease_ttl_ms, cluster_resync_ms;
} its_app_settings;

/* One camera as written in the YAML file (strings owned by the loader). */
typedef struct its_app_camera {
    char *id;
    char *url;
    char *kind;
    char *pace;
    char *scene;
    char *rtsp_transport;
    char *decode;
    int loop;
    double fps;
    double sample_fps;
    double phase_s;
    int replay_frames;
    int max_width, max_height;
} its_app_camera;

typedef struct its_app_cameras {
    its_app_camera *cameras;
    unsigned cameras_count;
} its_app_cameras;

typedef struct its_app_config {
    its_app_settings s;
    its_app_cameras cams;
    its_config cfg; /* the loader's state */
    /* cameras with ${VAR} expanded, as the pipeline takes them */
    its_camera_cfg *resolved;
    char **strings; /* expanded strings, owned */
    int n_strings;
    char path[512];
} its_app_config;

/* Defaults, then the file (NULL: none), then the environment; then validated (unique
 * camera ids, known kinds and paces, water marks in order, a model for the cpu backend...). */
int its_app_config_load(its_app_config *c, const char *path, char *err, size_t errlen);
int its_app_config_load_string(its_app_config *c, const char *yaml, size_t len, const char *origin,
                               char *err, size_t errlen);
/* The files the configuration names exist and are readable: the model and labels (unless
 * the backend is noop), local camera files and folders, scene files. ITS_ENOENT naming the
 * key otherwise. (Loading does not check, so a camera file may appear later.) */
int its_app_config_check_files(const its_app_config *c, char *err, size_t errlen);
/* Settings and cameras as YAML. */
int its_app_config_print(const its_app_config *c, FILE *out);
void its_app_config_free(its_app_config *c);
/* Free dst and move src into it (the loader keeps pointers into the struct, so a plain
 * struct copy is not enough). src is left empty. */
void its_app_config_move(its_app_config *dst, its_app_config *src);

/* A camera as one JSON object (the registry's form, its/cluster.h): the fields of the YAML
 * camera as written (${VAR} unexpanded), into an its_malloc'd string (ITS_MOD_APP). */
char *its_app_camera_json(const its_app_camera *a);

/* ${VAR} / ${VAR:-default} expansion into buf; ITS_EOVERFLOW if it does not fit,
 * ITS_ECONFIG for an unterminated ${. */
int its_app_expand(const char *in, char *buf, size_t len);

/* Pipeline options (infer factory, sink) from the settings; the caller then creates the
 * pipeline and adds c->resolved cameras. */
int its_app_pipeline_opts(const its_app_config *c, its_pipeline_opts *o, char *err, size_t errlen);
/* All of it: options, create, add every camera (with cluster.enabled none: the cluster
 * starts the cameras it owns, its_app_services). */
int its_app_build_pipeline(const its_app_config *c, its_pipeline_t **out, char *err, size_t errlen);

#endif

/*
 * its/metric_names.h - every metric the service exports, in one table.
 *
 *     its_metrics *reg = its_metrics_create();
 *     its_metrics_std_register(reg);                      // every row below except GPU rows
 *     its_metric *m = its_metrics_series_v(its_metrics_std(reg, ITS_M_FRAMES_DROPPED),
 *                                          "cam-1", "queue_full");
 *     its_metric_inc(m);
 *
 * Contract: this table is the single source of truth for metric names. The registry, the
 * dashboard test (tests/deploy) and docs/operations.md all follow it; a name that is not here
 * must not appear in deploy/grafana/dashboard.json or deploy/prometheus/alerts.yml.
 *
 * X(id, name, type, help, labels, buckets, flags)
 *   type:    ITS_METRIC_COUNTER / ITS_METRIC_GAUGE / ITS_METRIC_HISTOGRAM
 *   labels:  comma-separated label names ("" for none)
 *   buckets: ITS_BUCKETS_* set for histograms (ITS_BUCKETS_NONE otherwise)
 *   flags:   ITS_MF_GPU rows exist only where NVML found a GPU (its_metrics_gpu_attach)
 *
 * SPEC's own names (analytics_latency_seconds, gpu_utilization_percent) are kept verbatim so
 * its alert rules work unchanged; everything else is its_*.
 */
#ifndef ITS_METRIC_NAMES_H
#define ITS_METRIC_NAMES_H

#define ITS_METRIC_TABLE(X)                                                                        \
    X(ITS_M_LATENCY, "analytics_latency_seconds", ITS_METRIC_HISTOGRAM,                            \
      "End-to-end latency from frame capture to publication", "", ITS_BUCKETS_E2E, 0)              \
    X(ITS_M_GPU_UTIL, "gpu_utilization_percent", ITS_METRIC_GAUGE,                                 \
      "GPU utilisation over the last sample period (NVML)", "gpu", ITS_BUCKETS_NONE, ITS_MF_GPU)   \
    X(ITS_M_GPU_MEM_USED, "its_gpu_memory_used_bytes", ITS_METRIC_GAUGE,                           \
      "GPU memory in use (NVML)", "gpu", ITS_BUCKETS_NONE, ITS_MF_GPU)                             \
    X(ITS_M_GPU_MEM_TOTAL, "its_gpu_memory_total_bytes", ITS_METRIC_GAUGE,                         \
      "GPU memory in total (NVML)", "gpu", ITS_BUCKETS_NONE, ITS_MF_GPU)                           \
    X(ITS_M_STAGE_LATENCY, "its_stage_latency_seconds", ITS_METRIC_HISTOGRAM,                      \
      "Time spent in each pipeline stage", "stage", ITS_BUCKETS_STAGE, 0)                          \
    X(ITS_M_STAGE_BUDGET, "its_stage_budget_seconds", ITS_METRIC_GAUGE,                            \
      "Latency budget of each stage (SPEC)", "stage", ITS_BUCKETS_NONE, 0)                         \
    X(ITS_M_BATCH_SIZE, "its_batch_size", ITS_METRIC_HISTOGRAM, "Frames per inference batch", "",  \
      ITS_BUCKETS_BATCH, 0)                                                                        \
    X(ITS_M_QUEUE_DEPTH, "its_queue_depth", ITS_METRIC_GAUGE, "Items waiting in a queue", "queue", \
      ITS_BUCKETS_NONE, 0)                                                                         \
    X(ITS_M_FRAMES, "its_frames_total", ITS_METRIC_COUNTER, "Frames processed per camera",         \
      "camera", ITS_BUCKETS_NONE, 0)                                                               \
    X(ITS_M_FRAMES_DROPPED, "its_frames_dropped_total", ITS_METRIC_COUNTER,                        \
      "Frames dropped per camera and reason", "camera,reason", ITS_BUCKETS_NONE, 0)                \
    X(ITS_M_ERRORS, "its_errors_total", ITS_METRIC_COUNTER, "Errors by module and kind",           \
      "module,kind", ITS_BUCKETS_NONE, 0)                                                          \
    X(ITS_M_ENGINE_FALLBACK, "its_engine_fallback", ITS_METRIC_GAUGE,                              \
      "Engine workers running on the cpu engine in place of the configured GPU backend",           \
      "backend", ITS_BUCKETS_NONE, 0)                                                              \
    X(ITS_M_PLAN_CACHE, "its_engine_plan_cache_total", ITS_METRIC_COUNTER,                         \
      "GPU engine planning: plans taken from the plan cache (hit), planned anew (miss), cache "    \
      "files rejected as stale or corrupt (rejected)",                                             \
      "result", ITS_BUCKETS_NONE, 0)                                                               \
    X(ITS_M_CAMERA_FPS, "its_camera_fps", ITS_METRIC_GAUGE, "Frames per second per camera",        \
      "camera", ITS_BUCKETS_NONE, 0)                                                               \
    X(ITS_M_CAMERA_UP, "its_camera_up", ITS_METRIC_GAUGE,                                          \
      "1 while a camera delivers frames, 0 while it is down", "camera", ITS_BUCKETS_NONE, 0)       \
    X(ITS_M_CAMERA_NVDEC, "its_camera_nvdec", ITS_METRIC_GAUGE,                                    \
      "1 while a camera's video decodes on the GPU (NVDEC), 0 on the CPU", "camera",               \
      ITS_BUCKETS_NONE, 0)                                                                         \
    X(ITS_M_DECODE_FALLBACK, "its_decode_fallback_total", ITS_METRIC_COUNTER,                      \
      "Cameras with decode auto that decode on the CPU instead of NVDEC, once per camera, by "     \
      "reason (no_device, codec, sessions, open_failed)",                                          \
      "reason", ITS_BUCKETS_NONE, 0)                                                               \
    X(ITS_M_CAMERA_STALLS, "its_camera_stalls_total", ITS_METRIC_COUNTER,                          \
      "Times a camera delivered no frame for the stall timeout (then reconnected)", "camera",      \
      ITS_BUCKETS_NONE, 0)                                                                         \
    X(ITS_M_CAMERA_OPEN_FAIL, "its_camera_open_failures_total", ITS_METRIC_COUNTER,                \
      "Failed attempts to open a camera's stream", "camera", ITS_BUCKETS_NONE, 0)                  \
    X(ITS_M_CAMERA_RECONNECTS, "its_camera_reconnects_total", ITS_METRIC_COUNTER,                  \
      "Reconnects of a camera's stream after a failure or stall (with backoff)", "camera",         \
      ITS_BUCKETS_NONE, 0)                                                                         \
    X(ITS_M_CAMERAS, "its_cameras", ITS_METRIC_GAUGE, "Cameras configured", "", ITS_BUCKETS_NONE,  \
      0)                                                                                           \
    X(ITS_M_DETECTIONS, "its_detections_total", ITS_METRIC_COUNTER,                                \
      "Detections per camera and class", "camera,class", ITS_BUCKETS_NONE, 0)                      \
    X(ITS_M_VEHICLE_COUNT, "its_vehicle_count_total", ITS_METRIC_COUNTER,                          \
      "Counting-line crossings per camera, class and direction", "camera,class,direction",         \
      ITS_BUCKETS_NONE, 0)                                                                         \
    X(ITS_M_FLOW_RATE, "its_flow_rate_vehicles_per_hour", ITS_METRIC_GAUGE,                        \
      "Traffic flow per camera over the last window", "camera", ITS_BUCKETS_NONE, 0)               \
    X(ITS_M_QUALITY, "its_quality_score", ITS_METRIC_GAUGE,                                        \
      "Detection quality score in [0, 1] per camera", "camera", ITS_BUCKETS_NONE, 0)               \
    X(ITS_M_DRIFT, "its_model_drift_score", ITS_METRIC_GAUGE,                                      \
      "Drift (PSI) of a model output feature against the camera's baseline",                       \
      "camera,model,feature", ITS_BUCKETS_NONE, 0)                                                 \
    X(ITS_M_CHECKPOINTS, "its_checkpoints_total", ITS_METRIC_COUNTER,                              \
      "Analytics checkpoints of cameras (cluster) by result: written, refused, failed, restored, " \
      "absent, corrupt",                                                                           \
      "result", ITS_BUCKETS_NONE, 0)                                                               \
    X(ITS_M_PUB_MESSAGES, "its_publish_messages_total", ITS_METRIC_COUNTER,                        \
      "Messages written to Redis and acknowledged, by kind", "kind", ITS_BUCKETS_NONE, 0)          \
    X(ITS_M_PUB_REPLAYED, "its_publish_replayed_total", ITS_METRIC_COUNTER,                        \
      "Messages acknowledged after waiting in the outbox through a Redis outage", "",              \
      ITS_BUCKETS_NONE, 0)                                                                         \
    X(ITS_M_PUB_DROPPED, "its_publish_dropped_total", ITS_METRIC_COUNTER,                          \
      "Messages dropped by the publisher, by reason", "reason", ITS_BUCKETS_NONE, 0)               \
    X(ITS_M_PUB_CAM_MESSAGES, "its_publish_camera_messages_total", ITS_METRIC_COUNTER,             \
      "Messages written to Redis and acknowledged, per camera", "camera", ITS_BUCKETS_NONE, 0)     \
    X(ITS_M_PUB_CAM_REPLAYED, "its_publish_camera_replayed_total", ITS_METRIC_COUNTER,             \
      "Messages of a camera acknowledged after waiting through a Redis outage", "camera",          \
      ITS_BUCKETS_NONE, 0)                                                                         \
    X(ITS_M_PUB_CAM_DROPPED, "its_publish_camera_dropped_total", ITS_METRIC_COUNTER,               \
      "Messages dropped by the publisher, per camera and reason", "camera,reason",                 \
      ITS_BUCKETS_NONE, 0)                                                                         \
    X(ITS_M_PUB_OUTBOX, "its_publish_outbox_messages", ITS_METRIC_GAUGE,                           \
      "Messages waiting in the publisher outbox", "", ITS_BUCKETS_NONE, 0)                         \
    X(ITS_M_PUB_OUTBOX_BYTES, "its_publish_outbox_bytes", ITS_METRIC_GAUGE,                        \
      "Bytes waiting in the publisher outbox", "", ITS_BUCKETS_NONE, 0)                            \
    X(ITS_M_PUB_RECONNECTS, "its_publish_reconnects_total", ITS_METRIC_COUNTER,                    \
      "Successful reconnections to Redis after a loss", "", ITS_BUCKETS_NONE, 0)                   \
    X(ITS_M_PUB_CONNECT_FAIL, "its_publish_connect_failures_total", ITS_METRIC_COUNTER,            \
      "Failed attempts to connect to Redis", "", ITS_BUCKETS_NONE, 0)                              \
    X(ITS_M_REDIS_UP, "its_redis_up", ITS_METRIC_GAUGE,                                            \
      "1 while the publisher is connected to Redis", "", ITS_BUCKETS_NONE, 0)                      \
    X(ITS_M_CACHE_HITS, "its_cache_hits_total", ITS_METRIC_COUNTER,                                \
      "Cache reads served, by level (l1, redis)", "level", ITS_BUCKETS_NONE, 0)                    \
    X(ITS_M_CACHE_MISSES, "its_cache_misses_total", ITS_METRIC_COUNTER,                            \
      "Cache reads that found nothing", "", ITS_BUCKETS_NONE, 0)                                   \
    X(ITS_M_CACHE_ENTRIES, "its_cache_l1_entries", ITS_METRIC_GAUGE,                               \
      "Entries in the in-process L1 cache", "", ITS_BUCKETS_NONE, 0)                               \
    X(ITS_M_CACHE_BYTES, "its_cache_l1_bytes", ITS_METRIC_GAUGE,                                   \
      "Bytes held by the in-process L1 cache", "", ITS_BUCKETS_NONE, 0)                            \
    X(ITS_M_HTTP_REQUESTS, "its_http_requests_total", ITS_METRIC_COUNTER,                          \
      "HTTP API requests by route and status code", "route,code", ITS_BUCKETS_NONE, 0)             \
    X(ITS_M_SCALING, "its_scaling_recommendation", ITS_METRIC_GAUGE,                               \
      "Scale decision from SPEC's thresholds: 1 out, -1 in, 0 hold", "", ITS_BUCKETS_NONE, 0)      \
    X(ITS_M_BUILD_INFO, "its_build_info", ITS_METRIC_GAUGE, "Build information (always 1)",        \
      "version", ITS_BUCKETS_NONE, 0)

typedef enum its_metric_id {
#define ITS__METRIC_ENUM(id, name, type, help, labels, buckets, flags) id,
    ITS_METRIC_TABLE(ITS__METRIC_ENUM)
#undef ITS__METRIC_ENUM
        ITS_M_COUNT
} its_metric_id;

#endif

/*
 * bench_publish: messages per second from one publisher to a local Redis, and the publish
 * latency (message queued -> Redis acknowledged), for several pipeline depths.
 *
 *     bench_publish [-n messages] [-r host:port]
 *
 * Without -r it starts its own redis-server on a free loopback port (no persistence). A
 * "message" is what the service writes per frame: PUBLISH its:cam:{id}:detections plus
 * SET its:cam:{id}:latest EX ttl (2 commands, 5 detections, ~600 bytes of JSON), or per
 * event: PUBLISH its:events plus XADD its:events:stream MAXLEN ~. One subscriber listens on
 * the detection channels, so PUBLISH really delivers.
 */
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "its/core.h"
#include "its/publish.h"
#include "redis_fixture.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct result {
    double seconds, msgs_per_s, p50_ms, p99_ms, max_ms;
    uint64_t sent, dropped;
} result;

static int run(const char *host, int port, int depth, int n, int events, int cameras, uint64_t *lat,
               result *res)
{
    its_publish_config cfg;
    its_publish_config_default(&cfg);
    cfg.host = host;
    cfg.port = port;
    cfg.max_pipeline = depth;
    cfg.outbox_max_msgs = (size_t)depth * 2;
    cfg.command_timeout_ms = 2000;
    its_publisher *p = NULL;
    int rc = its_publisher_create(&cfg, NULL, NULL, &p);
    if (rc < 0)
        return rc;
    its_pub_detection dets[5];
    static const char *const labels[] = {"car", "truck", "bus", "person", "motorcycle"};
    for (int i = 0; i < 5; i++)
        dets[i] = (its_pub_detection){
            i, labels[i], 0.5f + 0.1f * (float)i, 0.1f * (float)i, 0.2f, 0.15f, 0.1f, i};
    uint64_t *enq = its_malloc(ITS_MOD_TEST, (size_t)depth * sizeof *enq);
    char cam[64][16];
    if (cameras > 64)
        cameras = 64;
    for (int c = 0; c < cameras; c++)
        snprintf(cam[c], sizeof cam[c], "cam-%d", c);
    /* Warm-up: connect and size the buffers. */
    its_pub_meta meta = {cam[0], 0, its_wall_ns(), its_now_ns()};
    its_publish_detections(p, &meta, dets, 5);
    its_publish_flush(p);
    uint64_t t0 = its_now_ns();
    int done = 0;
    while (done < n) {
        int batch = n - done < depth ? n - done : depth;
        for (int i = 0; i < batch; i++) {
            meta.camera_id = cam[(done + i) % cameras];
            meta.frame = (uint64_t)(done + i);
            meta.capture_wall_ns = its_wall_ns();
            meta.capture_mono_ns = enq[i] = its_now_ns();
            rc = events ? its_publish_event(p, &meta, "line_crossing",
                                            "{\"line\":\"north\",\"class\":\"car\",\"track\":7,"
                                            "\"direction\":\"in\",\"speed_kmh\":48.5}")
                        : its_publish_detections(p, &meta, dets, 5);
            if (rc < 0)
                break;
        }
        rc = its_publish_flush(p);
        uint64_t t = its_now_ns();
        if (rc < 0)
            break;
        for (int i = 0; i < batch; i++)
            lat[done + i] = t - enq[i];
        done += batch;
    }
    uint64_t t1 = its_now_ns();
    its_publish_stats st;
    its_publisher_get_stats(p, &st);
    its_publisher_destroy(p);
    its_free(enq);
    if (rc < 0)
        return rc;
    qsort(lat, (size_t)n, sizeof *lat, cmp_u64);
    res->seconds = (double)(t1 - t0) / 1e9;
    res->msgs_per_s = n / res->seconds;
    res->p50_ms = (double)lat[n / 2] / 1e6;
    res->p99_ms = (double)lat[(size_t)((double)n * 0.99)] / 1e6;
    res->max_ms = (double)lat[n - 1] / 1e6;
    res->sent = st.sent - 1; /* less the warm-up message */
    res->dropped = st.dropped_outbox + st.dropped_redis_error + st.dropped_too_large;
    return 0;
}

int main(int argc, char **argv)
{
    int n = 200000;
    const char *remote = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "n:r:")) != -1) {
        if (opt == 'n')
            n = atoi(optarg);
        else if (opt == 'r')
            remote = optarg;
        else {
            fprintf(stderr, "usage: %s [-n messages] [-r host:port]\n", argv[0]);
            return 2;
        }
    }
    if (n < 100) {
        fprintf(stderr, "-n must be at least 100\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    its_log_set_level(ITS_LOG_WARN);
    its_redis_fixture srv;
    memset(&srv, 0, sizeof srv);
    char host[256] = "127.0.0.1";
    int port;
    if (remote) {
        const char *colon = strrchr(remote, ':');
        if (!colon) {
            fprintf(stderr, "-r wants host:port\n");
            return 2;
        }
        snprintf(host, sizeof host, "%.*s", (int)(colon - remote), remote);
        port = atoi(colon + 1);
    } else {
        if (!its_redis_available() || its_redis_start(&srv) != 0) {
            fprintf(stderr, "cannot start redis-server\n");
            return 1;
        }
        port = srv.port;
    }
    /* A subscriber on every detection channel, draining in a child process. */
    pid_t sub = fork();
    if (sub == 0) {
        redisContext *c = redisConnect(host, port);
        if (!c || c->err)
            _exit(1);
        redisReply *r = redisCommand(c, "PSUBSCRIBE its:cam:*:detections");
        if (r)
            freeReplyObject(r);
        while (redisGetReply(c, (void **)&r) == REDIS_OK)
            freeReplyObject(r);
        _exit(0);
    }
    usleep(200000);
    uint64_t *lat = its_malloc(ITS_MOD_TEST, (size_t)n * sizeof *lat);
    static const struct {
        const char *name;
        int events, depth, scale;
    } cases[] = {
        {"detections", 0, 1, 10},  {"detections", 0, 16, 1},   {"detections", 0, 64, 1},
        {"detections", 0, 256, 1}, {"detections", 0, 1024, 1}, {"events+XADD", 1, 256, 1},
    };
    printf("bench_publish: one publisher -> redis-server %s:%d (%s), %d messages per row\n", host,
           port, remote ? "given" : "started by the benchmark", n);
    printf("message = 2 Redis commands (PUBLISH + SET/XADD); latency = queued -> acknowledged\n\n");
    printf("%-12s %6s %9s %8s %10s %10s %8s %8s %8s %7s\n", "kind", "depth", "messages", "seconds",
           "msg/s", "cmd/s", "p50_ms", "p99_ms", "max_ms", "dropped");
    int status = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int count = n / cases[i].scale;
        result r;
        int rc = run(host, port, cases[i].depth, count, cases[i].events, 16, lat, &r);
        if (rc < 0) {
            printf("%-12s %6d  failed: %s\n", cases[i].name, cases[i].depth, its_strerror(rc));
            status = 1;
            continue;
        }
        printf("%-12s %6d %9d %8.3f %10.0f %10.0f %8.3f %8.3f %8.3f %7llu\n", cases[i].name,
               cases[i].depth, count, r.seconds, r.msgs_per_s, 2 * r.msgs_per_s, r.p50_ms, r.p99_ms,
               r.max_ms, (unsigned long long)r.dropped);
        if (r.sent != (uint64_t)count)
            status = 1;
    }
    printf("\ntarget: >= 100000 msg/s with pipelining; SPEC publish budget 5 ms (p99)\n");
    its_free(lat);
    kill(sub, SIGTERM);
    if (!remote)
        its_redis_stop(&srv, SIGTERM);
    return status;
}

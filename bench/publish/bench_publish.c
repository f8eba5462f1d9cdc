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
#include <math.h>
#include <pthread.h>
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
    its_det dets[5];
    static const char *const labels[] = {"car", "truck", "bus", "person", "motorcycle"};
    for (int i = 0; i < 5; i++) /* boxes of a 1280 x 720 frame */
        dets[i] = (its_det){
            128.0f * (float)i, 144, 128.0f * (float)i + 192, 216, 0.5f + 0.1f * (float)i, i, i};
    uint64_t *enq = its_malloc(ITS_MOD_TEST, (size_t)depth * sizeof *enq);
    char cam[64][16];
    if (cameras > 64)
        cameras = 64;
    for (int c = 0; c < cameras; c++)
        snprintf(cam[c], sizeof cam[c], "cam-%d", c);
    /* Warm-up: connect and size the buffers. */
    its_pub_meta meta = {cam[0], 0, its_wall_ns(), its_now_ns()};
    its_publish_detections(p, &meta, dets, 5, 1280, 720, labels, 5);
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
                        : its_publish_detections(p, &meta, dets, 5, 1280, 720, labels, 5);
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

/* Through the thread-safe service: producers submit pre-built JSON (as itsd's analytics
 * workers do); throughput is submitted messages over the time until all are acknowledged. */
typedef struct prod_arg {
    its_publish_service *svc;
    int id, n;
    const char *json;
    size_t len;
} prod_arg;

static void *producer(void *arg)
{
    prod_arg *a = arg;
    char cam[16];
    snprintf(cam, sizeof cam, "cam-%d", a->id);
    its_pub_raw how = {.kind = ITS_PUB_DETECTIONS};
    for (int i = 0; i < a->n; i++) {
        /* Flow control for the measurement: keep the queue from overflowing, so the row shows
         * what the service sustains rather than how fast it can drop. */
        if (i % 64 == 0) {
            size_t queued = 0;
            its_publish_service_get_stats(a->svc, NULL, NULL, NULL, &queued);
            while (queued > 48 * 1024) {
                its_sleep_ns(50 * ITS_NS_PER_US);
                its_publish_service_get_stats(a->svc, NULL, NULL, NULL, &queued);
            }
        }
        its_pub_meta m = {cam, (uint64_t)i, its_wall_ns(), its_now_ns()};
        its_publish_service_submit(a->svc, &m, &how, a->json, a->len);
    }
    return NULL;
}

static int run_service(const char *host, int port, int producers, int n, result *res)
{
    its_publish_config cfg;
    its_publish_config_default(&cfg);
    cfg.host = host;
    cfg.port = port;
    cfg.command_timeout_ms = 2000;
    its_publish_service_config sc;
    its_publish_service_config_default(&sc);
    sc.queue_max_msgs = 65536;
    sc.drain_timeout_ms = 30000;
    its_publish_service *svc = NULL;
    int rc = its_publish_service_create(&cfg, &sc, NULL, NULL, &svc);
    if (rc < 0)
        return rc;
    static const char json[] =
        "{\"v\":1,\"camera\":\"cam-0\",\"frame\":1234,\"ts_capture_ns\":1764224000123456789,"
        "\"ts_publish_ns\":1764224000131002345,\"width\":1920,\"height\":1080,\"detections\":["
        "{\"class_id\":2,\"label\":\"car\",\"score\":0.9123,\"box\":[0.1,0.2,0.3,0.25],\"track_"
        "id\":7},"
        "{\"class_id\":7,\"label\":\"truck\",\"score\":0.8,\"box\":[0.5,0.5,0.3,0.3],\"track_id\":"
        "8},"
        "{\"class_id\":0,\"label\":\"person\",\"score\":0.7,\"box\":[0.2,0.6,0.05,0.1],\"track_"
        "id\":9},"
        "{\"class_id\":3,\"label\":\"motorcycle\",\"score\":0.6,\"box\":[0.4,0.1,0.05,0.1],\"track_"
        "id\":10},"
        "{\"class_id\":5,\"label\":\"bus\",\"score\":0.55,\"box\":[0.7,0.3,0.2,0.3],\"track_id\":"
        "null}],"
        "\"quality\":0.91}";
    pthread_t t[16];
    prod_arg a[16];
    if (producers > 16)
        producers = 16;
    uint64_t t0 = its_now_ns();
    for (int i = 0; i < producers; i++) {
        a[i] = (prod_arg){svc, i, n / producers, json, sizeof json - 1};
        pthread_create(&t[i], NULL, producer, &a[i]);
    }
    for (int i = 0; i < producers; i++)
        pthread_join(t[i], NULL);
    its_publish_stats st;
    uint64_t submitted = 0, dropped = 0;
    size_t queued = 0;
    for (;;) {
        its_publish_service_get_stats(svc, &st, &submitted, &dropped, &queued);
        if (st.sent + dropped + st.dropped_outbox >= submitted)
            break;
        its_sleep_ns(100 * ITS_NS_PER_US);
    }
    uint64_t t1 = its_now_ns();
    its_publish_service_destroy(svc);
    res->seconds = (double)(t1 - t0) / 1e9;
    res->msgs_per_s = (double)st.sent / res->seconds;
    res->p50_ms = res->p99_ms = res->max_ms = NAN;
    res->sent = st.sent;
    res->dropped = dropped + st.dropped_outbox;
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
    for (int producers = 1; producers <= 4; producers *= 4) {
        result r;
        int count = n - n % producers;
        int rc = run_service(host, port, producers, count, &r);
        char kind[32];
        snprintf(kind, sizeof kind, "service x%d", producers);
        if (rc < 0) {
            printf("%-12s %6s  failed: %s\n", kind, "-", its_strerror(rc));
            status = 1;
            continue;
        }
        printf("%-12s %6d %9d %8.3f %10.0f %10.0f %8s %8s %8s %7llu\n", kind, 256, count, r.seconds,
               r.msgs_per_s, 2 * r.msgs_per_s, "-", "-", "-", (unsigned long long)r.dropped);
    }
    printf("\n(service xN: N producer threads submit itsd-style JSON (~700 bytes) through the "
           "thread-safe\n service, pausing while its queue is 3/4 full; msg/s until all are "
           "acknowledged)\n");
    printf("\ntarget: >= 100000 msg/s with pipelining; SPEC publish budget 5 ms (p99)\n");
    its_free(lat);
    kill(sub, SIGTERM);
    if (!remote) {
        its_redis_stop(&srv, SIGTERM);
        its_redis_cleanup(&srv);
    }
    return status;
}

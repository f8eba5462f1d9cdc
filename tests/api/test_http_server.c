/*
 * The HTTP transport (src/api/server.h) on its own, over real sockets: it hands the handler
 * the method, path, headers, query arguments and body it received, sends the handler's
 * reply as given, enforces the handler's body limit, answers 500 for a handler that gives
 * no answer, and applies its bind policy. It cannot be starved: slow heads (200 connections
 * that never finish their headers) and exhausted API capacity leave the reserved paths
 * answering fast; a head trickled byte by byte is cut at the deadline, not kept alive by each
 * byte; one client address gets a bounded number of connections; and the errors the
 * transport answers itself (400 for %00, 408, 414, 431, 503) are JSON.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "its/core.h"
#include "server.h"
#include "testutil.h"

typedef struct seen {
    pthread_mutex_t mu;
    int calls;
    char method[16], path[64], window[16], auth[64];
    char body[64];
    size_t body_len;
    int too_large;
    int answer; /* 0: the handler answers nothing */
} seen;

static size_t limit(void *ud, const char *method, const char *path)
{
    return strcmp(method, "POST") == 0 ? 16 : 0;
}

static void copy(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src ? src : "(null)");
}

static void handle(void *ud, its__http_request *req)
{
    seen *s = ud;
    pthread_mutex_lock(&s->mu);
    s->calls++;
    copy(s->method, sizeof s->method, req->method);
    copy(s->path, sizeof s->path, req->path);
    copy(s->window, sizeof s->window, its__http_arg(req, "window"));
    copy(s->auth, sizeof s->auth, its__http_header(req, "authorization"));
    s->body_len = req->body_len < sizeof s->body - 1 ? req->body_len : sizeof s->body - 1;
    memcpy(s->body, req->body ? (const char *)req->body : "", s->body_len);
    s->body[s->body_len] = 0;
    s->too_large = req->body_too_large;
    int answer = s->answer;
    pthread_mutex_unlock(&s->mu);
    if (!answer)
        return;
    char text[32];
    int n = snprintf(text, sizeof text, "got %zu", req->body_len);
    its__http_reply r = {.status = 201,
                         .content_type = "text/plain",
                         .body = text,
                         .len = (size_t)n,
                         .header_name = "X-Test",
                         .header_value = "v1"};
    assert_int_equal(its__http_respond(req, &r), 0);
    assert_int_equal(its__http_respond(req, &r), ITS_EBUSY); /* one answer per request */
}

/* Send one raw request, return the whole raw response (malloc'd). */
static char *roundtrip(int port, const char *raw)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(write(fd, raw, strlen(raw)), (ssize_t)strlen(raw));
    size_t cap = 8192, len = 0;
    char *buf = malloc(cap);
    ssize_t n;
    while ((n = read(fd, buf + len, cap - len - 1)) > 0)
        len += (size_t)n;
    close(fd);
    buf[len] = 0;
    return buf;
}

static void test_handler_sees_the_request(void **state)
{
    seen s = {.mu = PTHREAD_MUTEX_INITIALIZER, .answer = 1};
    its__http_handler h = {.ud = &s, .body_limit = limit, .handle = handle};
    its__http_config c = {.bind_addr = "127.0.0.1",
                          .port = 0,
                          .loopback_only = 1,
                          .threads = 1,
                          .max_connections = 4,
                          .timeout_s = 5};
    its__http_server *srv = NULL;
    assert_int_equal(its__http_start(&c, &h, &srv), 0);
    int port = its__http_port(srv);
    assert_true(port > 0);

    char *r = roundtrip(port, "POST /a/b?window=5m HTTP/1.1\r\nHost: x\r\n"
                              "Authorization: Bearer k\r\nContent-Length: 5\r\n"
                              "Connection: close\r\n\r\nhello");
    assert_int_equal(s.calls, 1);
    assert_string_equal(s.method, "POST");
    assert_string_equal(s.path, "/a/b");
    assert_string_equal(s.window, "5m");
    assert_string_equal(s.auth, "Bearer k");
    assert_string_equal(s.body, "hello");
    assert_int_equal(s.too_large, 0);
    assert_true(strncmp(r, "HTTP/1.1 201", 12) == 0);
    assert_non_null(strstr(r, "X-Test: v1\r\n"));
    assert_non_null(strstr(r, "Content-Type: text/plain\r\n"));
    assert_non_null(strstr(r, "\r\n\r\ngot 5"));
    free(r);

    /* over the handler's limit (16 for POST): handled at once, without the body */
    r = roundtrip(port, "POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 17\r\n"
                        "Connection: close\r\n\r\n0123456789abcdefg");
    assert_int_equal(s.calls, 2);
    assert_int_equal(s.too_large, 1);
    assert_int_equal(s.body_len, 0);
    assert_non_null(strstr(r, "\r\n\r\ngot 0"));
    free(r);

    /* a GET has no query argument "window" and no body */
    r = roundtrip(port, "GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_int_equal(s.calls, 3);
    assert_string_equal(s.method, "GET");
    assert_string_equal(s.window, "(null)");
    assert_string_equal(s.auth, "(null)");
    free(r);

    /* a handler that gives no answer: the transport answers 500 */
    pthread_mutex_lock(&s.mu);
    s.answer = 0;
    pthread_mutex_unlock(&s.mu);
    r = roundtrip(port, "GET /d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_int_equal(s.calls, 4);
    assert_true(strncmp(r, "HTTP/1.1 500", 12) == 0);
    free(r);
    its__http_stop(srv);
}

static void test_bind_policy(void **state)
{
    seen s = {.mu = PTHREAD_MUTEX_INITIALIZER, .answer = 1};
    its__http_handler h = {.ud = &s, .body_limit = limit, .handle = handle};
    its__http_config c = {.bind_addr = "0.0.0.0",
                          .port = 0,
                          .loopback_only = 1,
                          .threads = 1,
                          .max_connections = 4,
                          .timeout_s = 5};
    its__http_server *srv = NULL;
    assert_int_equal(its__http_start(&c, &h, &srv), ITS_EAUTH);
    c.bind_addr = "localhost"; /* a name, not an address */
    assert_int_equal(its__http_start(&c, &h, &srv), ITS_EINVAL);
    c.bind_addr = "127.0.0.2"; /* all of 127/8 is loopback */
    assert_int_equal(its__http_start(&c, &h, &srv), 0);
    assert_true(its__http_port(srv) > 0);
    its__http_stop(srv);
    its__http_stop(NULL);
}

/* A TCP connection to 127.0.0.1:port from the loopback address src ("127.0.0.x"), or -1. */
static int connect_from(const char *src, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in b = {.sin_family = AF_INET};
    inet_pton(AF_INET, src, &b.sin_addr);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (bind(fd, (struct sockaddr *)&b, sizeof b) < 0 ||
        connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Everything the server sends until it closes (or 5 s pass) into buf; its length. */
static size_t read_all(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    ssize_t n;
    while (len + 1 < cap && (n = recv(fd, buf + len, cap - len - 1, 0)) > 0)
        len += (size_t)n;
    buf[len] = 0;
    return len;
}

/* Send raw from src and return the status of the answer, the body into body (or NULL). */
static int exchange(const char *src, int port, const char *raw, size_t rawlen, char *body,
                    size_t cap)
{
    int fd = connect_from(src, port);
    if (fd < 0)
        return -1;
    size_t off = 0;
    while (off < rawlen) {
        ssize_t w = send(fd, raw + off, rawlen - off, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    char buf[8192];
    read_all(fd, buf, sizeof buf);
    close(fd);
    int code = -1;
    sscanf(buf, "HTTP/1.1 %d", &code);
    const char *b = strstr(buf, "\r\n\r\n");
    if (body)
        snprintf(body, cap, "%s", b ? b + 4 : "");
    return code;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static const char *const reserved[] = {"/metrics", "/healthz", NULL};

static its__http_server *start_guarded(seen *s, int per_ip, int max_conn, int timeout_s)
{
    static its__http_handler h;
    h = (its__http_handler){.ud = s, .body_limit = limit, .handle = handle};
    its__http_config c = {.bind_addr = "127.0.0.1",
                          .port = 0,
                          .loopback_only = 1,
                          .threads = 2,
                          .max_connections = max_conn,
                          .timeout_s = timeout_s,
                          .per_ip_limit = per_ip,
                          .reserved_paths = reserved};
    its__http_server *srv = NULL;
    assert_int_equal(its__http_start(&c, &h, &srv), 0);
    return srv;
}

/* 200 connections that never finish their head, and every API connection held by a slow
 * body: /metrics still answers, p99 under 100 ms; an API request is refused at once with a
 * JSON 503 instead of waiting. */
static void test_slow_clients_do_not_starve(void **state)
{
    seen s = {.mu = PTHREAD_MUTEX_INITIALIZER, .answer = 1};
    its__http_server *srv = start_guarded(&s, 0, 4, 30);
    int port = its__http_port(srv);
    enum { SLOW = 200, BODIES = 4, PROBES = 100 };
    int slow[SLOW], bodies[BODIES];
    for (int i = 0; i < SLOW; i++) {
        char src[16];
        snprintf(src, sizeof src, "127.0.1.%d", 1 + i % 250);
        slow[i] = connect_from(src, port);
        assert_true(slow[i] >= 0);
        const char *part = "GET /v1/x HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n"; /* no end */
        assert_int_equal(send(slow[i], part, strlen(part), MSG_NOSIGNAL), (ssize_t)strlen(part));
    }
    for (int i = 0; i < BODIES; i++) {
        bodies[i] = connect_from("127.0.2.1", port);
        assert_true(bodies[i] >= 0);
        const char *head = "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 16\r\n\r\nab";
        assert_int_equal(send(bodies[i], head, strlen(head), MSG_NOSIGNAL), (ssize_t)strlen(head));
    }
    its_sleep_ns(300 * ITS_NS_PER_MS); /* the bodies reach the handler's daemon */

    uint64_t lat[PROBES];
    int ok = 0;
    for (int i = 0; i < PROBES; i++) {
        static const char req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
        uint64_t t0 = its_now_ns();
        int code = exchange("127.0.0.1", port, req, sizeof req - 1, NULL, 0);
        lat[i] = its_now_ns() - t0;
        ok += code == 201;
    }
    qsort(lat, PROBES, sizeof lat[0], cmp_u64);
    double p99_ms = (double)lat[PROBES * 99 / 100 - 1] / 1e6;
    print_message("/metrics under 200 slow heads and %d held API connections: %d/%d answered, "
                  "p50 %.2f ms, p99 %.2f ms\n",
                  BODIES, ok, PROBES, (double)lat[PROBES / 2] / 1e6, p99_ms);
    assert_int_equal(ok, PROBES);
    assert_true(p99_ms < 100.0);

    /* the API's capacity is exhausted: a JSON 503 at once, not a wait */
    char body[512];
    static const char api[] = "GET /v1/y HTTP/1.1\r\nHost: x\r\n\r\n";
    uint64_t t0 = its_now_ns();
    assert_int_equal(exchange("127.0.0.1", port, api, sizeof api - 1, body, sizeof body), 503);
    assert_true(its_now_ns() - t0 < 2 * ITS_NS_PER_S);
    assert_non_null(strstr(body, "{\"error\":{\"code\":\"unavailable\""));

    for (int i = 0; i < SLOW; i++)
        close(slow[i]);
    for (int i = 0; i < BODIES; i++)
        close(bodies[i]);
    its__http_stop(srv);
}

/* A head trickled one byte every 200 ms is answered 408 at the deadline (2 s) counted from
 * accept: the trickle does not extend it. A body trickled the same way is cut too. */
static void test_deadline_is_not_extended_by_trickle(void **state)
{
    seen s = {.mu = PTHREAD_MUTEX_INITIALIZER, .answer = 1};
    its__http_server *srv = start_guarded(&s, 0, 4, 2);
    int port = its__http_port(srv);
    for (int phase = 0; phase < 2; phase++) {
        int fd = connect_from("127.0.0.1", port);
        assert_true(fd >= 0);
        const char *pre = phase ? "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 16\r\n\r\n"
                                : "GET /v1/slow HTTP/1.1\r\n";
        assert_int_equal(send(fd, pre, strlen(pre), MSG_NOSIGNAL), (ssize_t)strlen(pre));
        uint64_t t0 = its_now_ns();
        int closed = 0;
        char buf[2048];
        size_t len = 0;
        for (int i = 0; i < 40 && !closed; i++) { /* up to 8 s of trickle */
            struct pollfd pf = {.fd = fd, .events = POLLIN};
            if (poll(&pf, 1, 200) > 0) {
                ssize_t n = recv(fd, buf + len, sizeof buf - len - 1, 0);
                if (n <= 0)
                    closed = 1;
                else
                    len += (size_t)n;
                continue;
            }
            if (send(fd, phase ? "a" : "X", 1, MSG_NOSIGNAL) != 1)
                closed = 1;
        }
        buf[len] = 0;
        double took = (double)(its_now_ns() - t0) / 1e9;
        print_message("%s trickled: closed after %.2f s\n", phase ? "body" : "head", took);
        assert_true(closed || len > 0);
        assert_true(took >= 1.5 && took < 4.0);
        if (phase == 0) {
            assert_true(strncmp(buf, "HTTP/1.1 408", 12) == 0);
            assert_non_null(strstr(buf, "{\"error\":{\"code\":\"timeout\""));
        }
        close(fd);
    }
    its__http_stop(srv);
}

/* One address gets per_ip_limit connections; the next is refused (JSON 503) while another
 * address is still served. */
static void test_per_address_limit(void **state)
{
    seen s = {.mu = PTHREAD_MUTEX_INITIALIZER, .answer = 1};
    its__http_server *srv = start_guarded(&s, 8, 4, 30);
    int port = its__http_port(srv);
    int held[8];
    for (int i = 0; i < 8; i++) {
        held[i] = connect_from("127.0.3.1", port);
        assert_true(held[i] >= 0);
        assert_int_equal(send(held[i], "GET /", 5, MSG_NOSIGNAL), 5);
    }
    its_sleep_ns(200 * ITS_NS_PER_MS);
    char body[512];
    static const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(exchange("127.0.3.1", port, req, sizeof req - 1, body, sizeof body), 503);
    assert_non_null(strstr(body, "\"code\":\"unavailable\""));
    assert_int_equal(exchange("127.0.3.2", port, req, sizeof req - 1, NULL, 0), 201);
    for (int i = 0; i < 8; i++)
        close(held[i]);
    its__http_stop(srv);
}

/* Request lines and heads too large, and a NUL in the target: JSON errors, never HTML, and the
 * handler never sees them. */
static void test_transport_errors_are_json(void **state)
{
    seen s = {.mu = PTHREAD_MUTEX_INITIALIZER, .answer = 1};
    its__http_server *srv = start_guarded(&s, 0, 4, 10);
    int port = its__http_port(srv);
    size_t cap = 70000;
    char *raw = malloc(cap), body[512];
    /* 414: a request line of 9000 bytes */
    int n = snprintf(raw, cap, "GET /");
    memset(raw + n, 'a', 9000);
    n += 9000;
    n += snprintf(raw + n, cap - (size_t)n, " HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(exchange("127.0.0.1", port, raw, (size_t)n, body, sizeof body), 414);
    assert_non_null(strstr(body, "{\"error\":{\"code\":\"uri_too_long\""));
    /* 431: 64 KiB of headers */
    n = snprintf(raw, cap, "GET /h HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < 1000; i++)
        n += snprintf(raw + n, cap - (size_t)n, "X-Filler-%04d: %040d\r\n", i, i);
    n += snprintf(raw + n, cap - (size_t)n, "\r\n");
    assert_int_equal(exchange("127.0.0.1", port, raw, (size_t)n, body, sizeof body), 431);
    assert_non_null(strstr(body, "{\"error\":{\"code\":\"header_too_large\""));
    /* 400: %00 would cut the path short once decoded */
    static const char nul[] = "GET /v1/cameras/abc%00def HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(exchange("127.0.0.1", port, nul, sizeof nul - 1, body, sizeof body), 400);
    assert_non_null(strstr(body, "{\"error\":{\"code\":\"bad_request\""));
    /* what libmicrohttpd would answer with an HTML page */
    static const char *const malformed[] = {
        "NOT HTTP AT ALL\r\n\r\n",
        "GET /a HTTP/1.1\r\n\r\n", /* no Host */
        "GET /a HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\n",
        "GET /a HTTP/2.0\r\nHost: x\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        int code =
            exchange("127.0.0.1", port, malformed[i], strlen(malformed[i]), body, sizeof body);
        assert_int_equal(code, i == 4 ? 505 : 400);
        assert_non_null(strstr(body, "{\"error\":{\"code\":"));
    }
    assert_int_equal(s.calls, 0);
    /* 413 stays the handler's: it sees body_too_large (16 bytes for POST here) */
    static const char big[] = "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n";
    exchange("127.0.0.1", port, big, sizeof big - 1, NULL, 0);
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.too_large, 1);
    free(raw);
    its__http_stop(srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handler_sees_the_request),
        cmocka_unit_test(test_bind_policy),
        cmocka_unit_test(test_slow_clients_do_not_starve),
        cmocka_unit_test(test_deadline_is_not_extended_by_trickle),
        cmocka_unit_test(test_per_address_limit),
        cmocka_unit_test(test_transport_errors_are_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

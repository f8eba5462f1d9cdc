/*
 * The HTTP transport (src/api/server.h) on its own, over real sockets: it hands the handler
 * the method, path, headers, query arguments and body it received, sends the handler's
 * reply as given, enforces the handler's body limit, answers 500 for a handler that gives
 * no answer, and applies its bind policy.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handler_sees_the_request),
        cmocka_unit_test(test_bind_policy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* itsd at its edge, over real HTTP with the real pipeline: camera ids of the longest length
 * kept whole (64 characters accepted exactly, 65 refused), a PUT repeated four times leaving
 * one camera, "%00" in a path refused, reads behind the token (read from a file named by
 * ITS_API_TOKEN_FILE) while /healthz and /metrics stay open, and the password of a camera URL
 * in no API answer and no log line. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "its/core.h"
#include "testutil.h"

static char itsd[1024], media[512], dir[256];
static int g_port;

#define TOKEN "edge-t0ken-from-file"

static int connect_api(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* One HTTP/1.0 request; the status, the whole response into buf. */
static int req(const char *method, const char *path, const char *token, const char *body, char *buf,
               size_t len)
{
    char head[256] = "";
    if (token)
        snprintf(head, sizeof head, "Authorization: Bearer %s\r\n", token);
    int fd = -1;
    char raw[4096];
    int n = snprintf(raw, sizeof raw,
                     "%s %s HTTP/1.0\r\n%sContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     method, path, head, body ? strlen(body) : 0, body ? body : "");
    fd = connect_api();
    if (fd < 0 || n <= 0 || (size_t)n >= sizeof raw || write(fd, raw, (size_t)n) != n) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    size_t got = 0;
    ssize_t r;
    while (got + 1 < len && (r = read(fd, buf + got, len - got - 1)) > 0)
        got += (size_t)r;
    buf[got] = 0;
    close(fd);
    int code = -1;
    sscanf(buf, "HTTP/1.%*d %d", &code);
    return code;
}

static void test_ids_and_secrets(void **state)
{
    char cfg[400], out[400], errf[400], tokf[400], buf[4096];
    snprintf(cfg, sizeof cfg, "%s/edge.yaml", dir);
    snprintf(out, sizeof out, "%s/edge.jsonl", dir);
    snprintf(errf, sizeof errf, "%s/edge.err", dir);
    snprintf(tokf, sizeof tokf, "%s/api-token", dir);
    assert_int_equal(its_test_write_file(tokf, TOKEN "\n", strlen(TOKEN) + 1), 0);
    int closed = its_test_free_port(); /* nobody listens: the camera keeps reconnecting */
    g_port = its_test_free_port();
    int n = snprintf(buf, sizeof buf,
                     "engine:\n  backend: noop\nsink:\n  type: \"null\"\n"
                     "ingest:\n  backoff_min_ms: 50\n  backoff_max_ms: 200\n"
                     "api:\n  port: %d\ncameras:\n"
                     "  - {id: door, url: \"rtsp://admin:s3cretpw@127.0.0.1:%d/live\"}\n",
                     g_port, closed);
    assert_int_equal(its_test_write_file(cfg, buf, (size_t)n), 0);
    pid_t pid = fork();
    if (pid == 0) {
        int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(errf, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(o, 1);
        dup2(e, 2);
        setenv("ITS_API_TOKEN_FILE", tokf, 1);
        execl(itsd, itsd, "-c", cfg, (char *)NULL);
        _exit(127);
    }
    static char resp[1 << 16];
    int up = 0;
    for (uint64_t end = its_now_ns() + 20 * ITS_NS_PER_S; !up && its_now_ns() < end;) {
        its_sleep_ns(100 * ITS_NS_PER_MS);
        up = req("GET", "/healthz", NULL, NULL, resp, sizeof resp) == 200;
    }
    assert_true(up);

    /* reads need the token; health and metrics do not */
    assert_int_equal(req("GET", "/v1/cameras", NULL, NULL, resp, sizeof resp), 401);
    assert_int_equal(req("GET", "/v1/cameras", "wrong", NULL, resp, sizeof resp), 401);
    assert_int_equal(req("GET", "/metrics", NULL, NULL, resp, sizeof resp), 200);
    assert_int_equal(its_test_count_in(resp, "s3cretpw"), 0);
    assert_int_equal(req("GET", "/v1/cameras", TOKEN, NULL, resp, sizeof resp), 200);
    assert_int_equal(its_test_count_in(resp, "s3cretpw"), 0);
    assert_int_equal(its_test_count_in(resp, "rtsp://admin:<redacted>@127.0.0.1:"), 1);

    /* a 64-character id, PUT four times: one camera, reachable by its whole id */
    char id64[65], path[160], body[700];
    memset(id64, 'k', 64);
    id64[64] = 0;
    snprintf(path, sizeof path, "/v1/cameras/%s", id64);
    snprintf(body, sizeof body,
             "{\"url\": \"%s/traffic_bridge_720p.mp4\", \"kind\": \"replay\", \"fps\": 10, "
             "\"replay_frames\": 5, \"loop\": true}",
             media);
    for (int i = 0; i < 4; i++) {
        int code = req("PUT", path, TOKEN, body, resp, sizeof resp);
        if (code != (i ? 200 : 201))
            fail_msg("PUT %d: %s", i, resp);
    }
    assert_int_equal(req("GET", "/v1/cameras", TOKEN, NULL, resp, sizeof resp), 200);
    char quoted[80];
    snprintf(quoted, sizeof quoted, "\"id\":\"%s\"", id64);
    assert_int_equal(its_test_count_in(resp, quoted), 1);
    assert_int_equal(its_test_count_in(resp, "\"count\":2"), 1);
    assert_int_equal(req("GET", path, TOKEN, NULL, resp, sizeof resp), 200);
    assert_int_equal(its_test_count_in(resp, quoted), 1);
    /* 65 characters: refused, not cut to 64 */
    snprintf(path, sizeof path, "/v1/cameras/%sk", id64);
    assert_int_equal(req("PUT", path, TOKEN, body, resp, sizeof resp), 400);
    assert_int_equal(its_test_count_in(resp, "\"code\":\"bad_request\""), 1);
    /* %00 would end the id early once decoded */
    assert_int_equal(req("GET", "/v1/cameras/door%00x", TOKEN, NULL, resp, sizeof resp), 400);
    assert_int_equal(its_test_count_in(resp, "{\"error\":{"), 1);
    assert_int_equal(req("DELETE", "/v1/cameras/door%00", TOKEN, NULL, resp, sizeof resp), 400);
    assert_int_equal(req("GET", "/v1/cameras", TOKEN, NULL, resp, sizeof resp), 200);
    assert_int_equal(its_test_count_in(resp, "\"count\":2"), 1);

    /* a camera added with a password: not in the answer, not in the list */
    snprintf(body, sizeof body, "{\"url\": \"rtsp://u:hunter2pw@127.0.0.1:%d/x\"}", closed);
    assert_int_equal(req("PUT", "/v1/cameras/gate", TOKEN, body, resp, sizeof resp), 201);
    assert_int_equal(its_test_count_in(resp, "hunter2pw"), 0);
    assert_int_equal(req("GET", "/v1/cameras/gate", TOKEN, NULL, resp, sizeof resp), 200);
    assert_int_equal(its_test_count_in(resp, "hunter2pw"), 0);
    its_sleep_ns(1500 * ITS_NS_PER_MS); /* a few failed connects, each logged */
    kill(pid, SIGTERM);
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st));
    size_t len = 0;
    uint8_t *log = its_test_read_file(errf, &len);
    assert_non_null(log);
    char *text = its_malloc(ITS_MOD_TEST, len + 1);
    memcpy(text, log, len);
    text[len] = 0;
    its_free(log);
    long redacted = its_test_count_in(text, "<redacted>");
    long leaked = its_test_count_in(text, "s3cretpw") + its_test_count_in(text, "hunter2pw") +
                  its_test_count_in(text, TOKEN);
    print_message("log: %ld redacted URL(s), %ld leak(s)\n", redacted, leaked);
    if (leaked)
        fail_msg("a secret in the log:\n%s", text);
    assert_true(redacted >= 2); /* both cameras were logged when added */
    its_free(text);
}

int main(void)
{
    const char *bin = getenv("ITS_BINARY_DIR");
    snprintf(itsd, sizeof itsd, "%s/tools/itsd/itsd", bin ? bin : ".");
    if (access(itsd, X_OK) != 0 || !its_test_shared_path("media", media, sizeof media))
        return its_test_skip("itsd binary or shared media missing");
    its_test_tmpdir(dir, sizeof dir);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids_and_secrets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

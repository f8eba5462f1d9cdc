#include "testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "its/alloc.h"

static const char *join(const char *env, const char *fallback, const char *rel, char *buf,
                        size_t len)
{
    const char *base = getenv(env);
    if (!base)
        base = fallback;
    snprintf(buf, len, "%s/%s", base, rel);
    return buf;
}

const char *its_test_shared_path(const char *rel, char *buf, size_t len)
{
    join("ITS_SHARED_DIR", "../shared", rel, buf, len);
    return access(buf, R_OK) == 0 ? buf : NULL;
}

int its_test_ci(void)
{
    const char *ci = getenv("CI");
    return ci && (strcmp(ci, "true") == 0 || strcmp(ci, "1") == 0);
}

int its_test_skip(const char *what)
{
    if (its_test_ci()) {
        fprintf(stderr, "CI=true and %s: failing instead of skipping (run scripts/setup.sh)\n",
                what);
        return 1;
    }
    fprintf(stderr, "%s: skipped\n", what);
    return ITS_TEST_SKIP_CODE;
}

const char *its_test_source_path(const char *rel, char *buf, size_t len)
{
    return join("ITS_SOURCE_DIR", ".", rel, buf, len);
}

const char *its_test_tmpdir(char *buf, size_t len)
{
    snprintf(buf, len, "/tmp/its-test-XXXXXX");
    return mkdtemp(buf);
}

uint8_t *its_test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *d = n >= 0 ? its_malloc(ITS_MOD_TEST, (size_t)n + 1) : NULL;
    if (d && fread(d, 1, (size_t)n, f) != (size_t)n) {
        its_free(d);
        d = NULL;
    }
    fclose(f);
    if (d) {
        d[n] = 0;
        *len = (size_t)n;
    }
    return d;
}

long its_test_count_in(const char *text, const char *needle)
{
    long n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

long its_test_count_in_file(const char *path, const char *needle)
{
    size_t len;
    uint8_t *d = its_test_read_file(path, &len);
    if (!d)
        return -1;
    d[len - (len ? 1 : 0)] = 0;
    long n = its_test_count_in((const char *)d, needle);
    its_free(d);
    return n;
}

int its_test_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(data, 1, len, f);
    return (fclose(f) == 0 && w == len) ? 0 : -1;
}

int its_test_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, (struct sockaddr *)&a, sizeof a);
    socklen_t al = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &al);
    close(fd);
    return ntohs(a.sin_port);
}

int its_test_http(int port, const char *method, const char *path, const char *body, char *buf,
                  size_t len)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    char req[2048];
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.0\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     method, path, body ? strlen(body) : 0, body ? body : "");
    if (n < 0 || (size_t)n >= sizeof req || send(fd, req, (size_t)n, 0) != n) {
        close(fd);
        return -1;
    }
    size_t got = 0;
    ssize_t r;
    while (got + 1 < len && (r = recv(fd, buf + got, len - got - 1, 0)) > 0)
        got += (size_t)r;
    buf[got] = 0;
    close(fd);
    return (int)got;
}

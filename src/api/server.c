/*
 * libmicrohttpd glue: collects a request (headers, the ?window= argument, the body up to
 * the route's limit) and hands it to its_api_handle. The body limit is enforced twice:
 * from Content-Length before reading anything (answer 413 at once) and while reading, for
 * chunked uploads that do not announce their size.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_impl.h"
#include "its/core.h"

void **its__api_server_slot(its_api *api);
void its__api_set_port(its_api *api, int port);
const its_api_config *its__api_config(const its_api *api);

typedef struct conn_ctx {
    uint8_t *body;
    size_t len, cap, limit;
    int too_large;
} conn_ctx;

static enum MHD_Result send_response(struct MHD_Connection *conn, const its_api_response *r)
{
    struct MHD_Response *mr = MHD_create_response_from_buffer(
        r->len, r->body ? r->body : (char *)"", MHD_RESPMEM_MUST_COPY);
    if (!mr)
        return MHD_NO;
    if (r->content_type)
        MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
    if (r->header_name)
        MHD_add_response_header(mr, r->header_name, r->header_value);
    MHD_add_response_header(mr, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned int)r->status, mr);
    MHD_destroy_response(mr);
    return ret;
}

static enum MHD_Result dispatch(its_api *api, struct MHD_Connection *conn, const char *url,
                                const char *method, conn_ctx *cx)
{
    its_api_request req = {
        .method = method,
        .path = url,
        .window = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "window"),
        .authorization =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
        .content_type =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE),
        .body = cx->body,
        .body_len = cx->too_large ? 0 : cx->len,
        .body_too_large = cx->too_large,
    };
    its_api_response resp;
    its_api_handle(api, &req, &resp);
    enum MHD_Result ret = send_response(conn, &resp);
    its_api_response_free(&resp);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    its_api *api = cls;
    conn_ctx *cx = *con_cls;
    if (!cx) {
        cx = its_calloc(ITS_MOD_API, 1, sizeof *cx);
        if (!cx)
            return MHD_NO;
        *con_cls = cx;
        cx->limit = its__api_body_limit(api, method, url);
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end = NULL;
            unsigned long long n = strtoull(cl, &end, 10);
            if (end != cl && !*end && n > cx->limit)
                cx->too_large = 1;
        }
        if (cx->too_large)
            return dispatch(api, conn, url, method, cx); /* answer before reading the body */
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (cx->too_large)
            return MHD_YES;
        if (n > cx->limit - cx->len) {
            cx->too_large = 1;
            its_free(cx->body);
            cx->body = NULL;
            cx->len = cx->cap = 0;
            return MHD_YES;
        }
        if (cx->len + n > cx->cap) {
            size_t cap = cx->cap ? cx->cap : 4096;
            while (cap < cx->len + n)
                cap *= 2;
            if (cap > cx->limit)
                cap = cx->limit;
            uint8_t *b = its_realloc(ITS_MOD_API, cx->body, cap);
            if (!b)
                return MHD_NO;
            cx->body = b;
            cx->cap = cap;
        }
        memcpy(cx->body + cx->len, upload_data, n);
        cx->len += n;
        return MHD_YES;
    }
    return dispatch(api, conn, url, method, cx);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    conn_ctx *cx = *con_cls;
    if (cx) {
        its_free(cx->body);
        its_free(cx);
        *con_cls = NULL;
    }
}

static void on_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void on_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && line[n - 1] == '\n')
        line[--n] = 0;
    its_logw("api", NULL, "%s", line);
}

int its__api_server_start(its_api *api)
{
    void **slot = its__api_server_slot(api);
    if (*slot)
        return ITS_EBUSY;
    const its_api_config *cfg = its__api_config(api);
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    struct sockaddr *sa;
    unsigned int flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    int loopback;
    memset(&a4, 0, sizeof a4);
    memset(&a6, 0, sizeof a6);
    if (inet_pton(AF_INET, cfg->bind_addr, &a4.sin_addr) == 1) {
        a4.sin_family = AF_INET;
        a4.sin_port = htons((uint16_t)cfg->port);
        loopback = (ntohl(a4.sin_addr.s_addr) >> 24) == 127;
        sa = (struct sockaddr *)&a4;
    } else if (inet_pton(AF_INET6, cfg->bind_addr, &a6.sin6_addr) == 1) {
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons((uint16_t)cfg->port);
        loopback = IN6_IS_ADDR_LOOPBACK(&a6.sin6_addr);
        sa = (struct sockaddr *)&a6;
        flags |= MHD_USE_IPv6;
    } else {
        its_loge("api", NULL, "bind address \"%s\" is not an IP address", cfg->bind_addr);
        return ITS_EINVAL;
    }
    if (!loopback && !cfg->token) {
        its_loge("api", NULL,
                 "refusing to serve on %s without an API token: set one, or bind 127.0.0.1",
                 cfg->bind_addr);
        return ITS_EAUTH;
    }
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, api, MHD_OPTION_EXTERNAL_LOGGER, on_log, NULL,
        MHD_OPTION_SOCK_ADDR, sa, MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)cfg->threads,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)cfg->max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)cfg->timeout_s, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, NULL, MHD_OPTION_END);
    if (!d) {
        its_loge("api", NULL, "cannot serve on %s:%d (address in use or not local?)",
                 cfg->bind_addr, cfg->port);
        return ITS_ENET;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    int port = info ? info->port : cfg->port;
    its__api_set_port(api, port);
    *slot = d;
    its_logi("api", NULL, "serving http://%s%s%s:%d/ (%s)", sa->sa_family == AF_INET6 ? "[" : "",
             cfg->bind_addr, sa->sa_family == AF_INET6 ? "]" : "", port,
             cfg->token ? "token required for changes" : "no token: loopback only");
    return 0;
}

void its__api_server_stop(its_api *api)
{
    void **slot = its__api_server_slot(api);
    if (*slot) {
        MHD_stop_daemon(*slot);
        *slot = NULL;
    }
}

/*
 * The HTTP transport (server.h) over libmicrohttpd: collects a request (headers, query
 * arguments, the body up to the handler's limit) and hands it to the handler. The body limit
 * is enforced twice: from Content-Length before reading anything (the handler answers at
 * once) and while reading, for chunked uploads that do not announce their size.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "its/core.h"
#include "server.h"

struct its__http_server {
    its__http_handler h;
    struct MHD_Daemon *daemon;
    int port;
};

typedef struct conn_ctx {
    uint8_t *body;
    size_t len, cap, limit;
    int too_large;
} conn_ctx;

int its__http_respond(its__http_request *req, const its__http_reply *r)
{
    if (req->responded)
        return ITS_EBUSY;
    req->responded = -1; /* failed, unless queued below */
    struct MHD_Response *mr = MHD_create_response_from_buffer(
        r->len, r->body ? (void *)r->body : (void *)"", MHD_RESPMEM_MUST_COPY);
    if (!mr)
        return ITS_ENOMEM;
    if (r->content_type)
        MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
    if (r->header_name)
        MHD_add_response_header(mr, r->header_name, r->header_value);
    MHD_add_response_header(mr, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result ret = MHD_queue_response(req->conn, (unsigned int)r->status, mr);
    MHD_destroy_response(mr);
    if (ret != MHD_YES)
        return ITS_EIO;
    req->responded = 1;
    return 0;
}

const char *its__http_header(const its__http_request *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *its__http_arg(const its__http_request *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

static enum MHD_Result dispatch(its__http_server *s, struct MHD_Connection *conn, const char *url,
                                const char *method, conn_ctx *cx)
{
    its__http_request req = {
        .method = method,
        .path = url,
        .body = cx->body,
        .body_len = cx->too_large ? 0 : cx->len,
        .body_too_large = cx->too_large,
        .conn = conn,
    };
    s->h.handle(s->h.ud, &req);
    if (!req.responded) {
        static const char msg[] = "the handler gave no answer\n";
        its__http_reply r = {
            .status = 500, .content_type = "text/plain", .body = msg, .len = sizeof msg - 1};
        its__http_respond(&req, &r);
    }
    return req.responded > 0 ? MHD_YES : MHD_NO; /* MHD_NO closes the connection */
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    its__http_server *s = cls;
    conn_ctx *cx = *con_cls;
    if (!cx) {
        cx = its_calloc(ITS_MOD_API, 1, sizeof *cx);
        if (!cx)
            return MHD_NO;
        *con_cls = cx;
        cx->limit = s->h.body_limit ? s->h.body_limit(s->h.ud, method, url) : 0;
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end = NULL;
            unsigned long long n = strtoull(cl, &end, 10);
            if (end != cl && !*end && n > cx->limit)
                cx->too_large = 1;
        }
        if (cx->too_large)
            return dispatch(s, conn, url, method, cx); /* answer before reading the body */
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
    return dispatch(s, conn, url, method, cx);
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

int its__http_start(const its__http_config *cfg, const its__http_handler *h, its__http_server **out)
{
    if (!cfg || !cfg->bind_addr || !h || !h->handle || !out)
        return ITS_EINVAL;
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
    if (!loopback && cfg->loopback_only)
        return ITS_EAUTH;
    its__http_server *s = its_calloc(ITS_MOD_API, 1, sizeof *s);
    if (!s)
        return ITS_ENOMEM;
    s->h = *h;
    s->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER,
                                 on_log, NULL, MHD_OPTION_SOCK_ADDR, sa,
                                 MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)cfg->threads,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned int)cfg->max_connections,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)cfg->timeout_s,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
    if (!s->daemon) {
        its_loge("api", NULL, "cannot serve on %s:%d (address in use or not local?)",
                 cfg->bind_addr, cfg->port);
        its_free(s);
        return ITS_ENET;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : cfg->port;
    *out = s;
    return 0;
}

int its__http_port(const its__http_server *s)
{
    return s ? s->port : -1;
}

void its__http_stop(its__http_server *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->daemon);
    its_free(s);
}

/*
 * The HTTP transport (server.h): a small front loop of our own accepts every connection and
 * waits, on one epoll thread and without reading anything (MSG_PEEK), until the request head
 * (request line and headers) has arrived. Only then is the connection handed to a
 * libmicrohttpd daemon (MHD_add_connection), which parses it again, collects the body and
 * calls the handler. This gives what libmicrohttpd alone does not:
 *  - a deadline for the whole request, counted from accept and never extended by a
 *    trickled byte (libmicrohttpd's own timeout restarts on every byte): a head that is not
 *    complete in time is answered 408, a handed connection past its deadline is shut down;
 *  - connections per client address limited (counted from accept, head phase included);
 *  - reserved capacity: requests for the reserved paths (/metrics, /healthz, /readyz) go to a
 *    daemon and a thread of their own, so exhausted API connections do not starve them;
 *  - every error the transport answers itself (400, 408, 414, 431, 503) is the API's JSON
 *    error, and heads too large for libmicrohttpd never reach it, so its HTML errors do not
 *    appear.
 * Every response carries "Connection: close": each request goes through the front loop.
 * The body limit is enforced twice: from Content-Length before reading anything (the handler
 * answers at once) and while reading, for chunked uploads that do not announce their size.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "its/core.h"
#include "its/json.h"
#include "server.h"

enum { SLOT_FREE, SLOT_HEAD, SLOT_API, SLOT_OPS };

/* One accepted connection, from accept until libmicrohttpd closes it. */
typedef struct slot {
    int fd, state;
    uint64_t deadline_ns;
    struct sockaddr_storage addr;
    socklen_t alen;
} slot;

struct its__http_server {
    its__http_handler h;
    its__http_config cfg;
    const char *const *reserved;
    struct MHD_Daemon *api, *ops;
    int lfd, ep, wake;
    pthread_t thread;
    int thread_started;
    atomic_int stop;
    int port;
    uint64_t timeout_ns;
    pthread_mutex_t mu; /* slots and counts: the front loop and libmicrohttpd's threads */
    slot *slots;
    int *late; /* scratch for reap */
    int n_slots, n_head, n_api, n_ops;
    char peek[ITS__HTTP_HEAD_MAX + 1];
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
    MHD_add_response_header(mr, MHD_HTTP_HEADER_CONNECTION, "close");
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

/* Must hold s->mu. */
static void slot_free(its__http_server *s, slot *sl)
{
    if (sl->state == SLOT_HEAD)
        s->n_head--;
    else if (sl->state == SLOT_API)
        s->n_api--;
    else if (sl->state == SLOT_OPS)
        s->n_ops--;
    sl->state = SLOT_FREE;
    sl->fd = -1;
}

/* libmicrohttpd tells when a handed connection closes: before it closes the socket, so the
 * front loop, which shuts down late sockets under s->mu, never touches a reused descriptor. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    its__http_server *s = cls;
    if (code != MHD_CONNECTION_NOTIFY_CLOSED)
        return;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->n_slots; i++)
        if (s->slots[i].fd == ci->connect_fd &&
            (s->slots[i].state == SLOT_API || s->slots[i].state == SLOT_OPS)) {
            slot_free(s, &s->slots[i]);
            break;
        }
    pthread_mutex_unlock(&s->mu);
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

/* ---- the front loop -------------------------------------------------------------------- */

static const char *reason_of(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 408:
        return "Request Timeout";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Service Unavailable";
    }
}

int its__http_error_json(char *buf, size_t cap, const char *code, const char *message)
{
    its_json w;
    its_json_init(&w, buf, cap);
    its_json_obj_begin(&w);
    its_json_key(&w, "error");
    its_json_obj_begin(&w);
    its_json_kstr(&w, "code", code);
    its_json_kstr(&w, "message", message);
    its_json_obj_end(&w);
    its_json_obj_end(&w);
    return its_json_finish(&w);
}

/* Answer an error on a connection still in the front loop and close it. Best effort: the
 * socket is non-blocking and the answer is a few hundred bytes. What the client sent is
 * read and dropped first, so that closing does not reset the connection under the answer. */
static void answer_close(its__http_server *s, int fd, int status, const char *code,
                         const char *message)
{
    char body[384], out[640];
    int bn = its__http_error_json(body, sizeof body, code, message);
    if (bn < 0)
        bn = 0;
    int n = snprintf(out, sizeof out,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                     "Cache-Control: no-store\r\nConnection: close\r\n\r\n%.*s",
                     status, reason_of(status), bn, bn, body);
    char sink[4096];
    for (int i = 0; i < 16 && recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0; i++)
        ;
    if (n > 0 && (size_t)n < sizeof out)
        (void)!send(fd, out, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
    shutdown(fd, SHUT_WR);
    close(fd);
    if (s->h.rejected)
        s->h.rejected(s->h.ud, status);
}

static void drop_head(its__http_server *s, slot *sl, int status, const char *code,
                      const char *message)
{
    int fd = sl->fd;
    epoll_ctl(s->ep, EPOLL_CTL_DEL, fd, NULL);
    pthread_mutex_lock(&s->mu);
    slot_free(s, sl);
    pthread_mutex_unlock(&s->mu);
    if (status)
        answer_close(s, fd, status, code, message);
    else
        close(fd);
}

static int same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    if (a->ss_family == AF_INET6)
        return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                       &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr));
    return 0;
}

static void accept_all(its__http_server *s)
{
    for (;;) {
        struct sockaddr_storage addr;
        socklen_t alen = sizeof addr;
        int fd = accept4(s->lfd, (struct sockaddr *)&addr, &alen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN, or out of descriptors: the backlog waits */
        pthread_mutex_lock(&s->mu);
        int free_i = -1, same = 0;
        for (int i = 0; i < s->n_slots; i++) {
            if (s->slots[i].state == SLOT_FREE) {
                if (free_i < 0)
                    free_i = i;
            } else if (same_addr(&s->slots[i].addr, &addr)) {
                same++;
            }
        }
        const char *why = NULL;
        if (s->cfg.per_ip_limit > 0 && same >= s->cfg.per_ip_limit)
            why = "too many connections from this address";
        else if (s->n_head >= s->cfg.max_pending || free_i < 0)
            why = "too many connections";
        if (!why) {
            slot *sl = &s->slots[free_i];
            sl->fd = fd;
            sl->state = SLOT_HEAD;
            sl->deadline_ns = its_now_ns() + s->timeout_ns;
            sl->addr = addr;
            sl->alen = alen;
            s->n_head++;
            struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET,
                                     .data.u64 = (uint64_t)free_i + 2};
            if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
                slot_free(s, sl);
                why = "internal error";
            }
        }
        pthread_mutex_unlock(&s->mu);
        if (why)
            answer_close(s, fd, 503, "unavailable", why);
    }
}

static int is_reserved(const its__http_server *s, const char *path, size_t n)
{
    for (const char *const *p = s->reserved; p && *p; p++)
        if (strlen(*p) == n && !memcmp(*p, path, n))
            return 1;
    return 0;
}

static int is_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* What libmicrohttpd would refuse with an HTML page of its own, refused here first with a
 * JSON one: a request line that is not METHOD SP target SP HTTP/1.x, a header line without a
 * name and a colon (or folded), a Content-Length that is not a number, HTTP/1.1 without Host.
 * b holds the whole head (scan bytes); the request line ends at b + line. 0 when acceptable,
 * else the status, with *why set. */
static int check_head(const char *b, size_t line, size_t scan, const char *target, size_t tlen,
                      const char *sp2, const char **why)
{
    for (const char *p = b; *p != ' '; p++)
        if (!is_tchar(*p)) {
            *why = "malformed method";
            return 400;
        }
    if (target[0] != '/' && !(tlen == 1 && target[0] == '*') && !memmem(target, tlen, "://", 3)) {
        *why = "malformed request target";
        return 400;
    }
    size_t vlen = (size_t)(b + line - (sp2 + 1));
    if (vlen && sp2[vlen] == '\r')
        vlen--;
    const char *ver = sp2 + 1;
    if (vlen != 8 || strncmp(ver, "HTTP/1.", 7) || (ver[7] != '0' && ver[7] != '1')) {
        *why = vlen > 5 && !strncmp(ver, "HTTP/", 5) ? "only HTTP/1.0 and HTTP/1.1 are served"
                                                     : "malformed request line";
        return vlen > 5 && !strncmp(ver, "HTTP/", 5) ? 505 : 400;
    }
    int host = 0;
    const char *p = b + line + 1, *end = b + scan;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            break;
        size_t n = (size_t)(nl - p);
        if (n && p[n - 1] == '\r')
            n--;
        if (!n)
            break; /* the empty line: end of the head */
        const char *colon = memchr(p, ':', n);
        size_t name = colon ? (size_t)(colon - p) : 0;
        for (size_t i = 0; i < name; i++)
            if (!is_tchar(p[i]))
                name = 0;
        if (!name) {
            *why = "malformed header line";
            return 400;
        }
        const char *v = colon + 1, *ve = p + n;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        if (name == 4 && !strncasecmp(p, "host", 4))
            host = 1;
        if (name == 14 && !strncasecmp(p, "content-length", 14)) {
            int ok = ve > v && ve - v <= 18;
            for (const char *c = v; ok && c < ve; c++)
                ok = *c >= '0' && *c <= '9';
            if (!ok) {
                *why = "Content-Length is not a number";
                return 400;
            }
        }
        p = nl + 1;
    }
    if (ver[7] == '1' && !host) {
        *why = "HTTP/1.1 request without a Host header";
        return 400;
    }
    return 0;
}

/* The head of a connection grew: check it, and hand the connection over once it is whole. */
static void head_progress(its__http_server *s, slot *sl)
{
    ssize_t n = recv(sl->fd, s->peek, sizeof s->peek, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        drop_head(s, sl, 0, NULL, NULL); /* the client went away */
        return;
    }
    if (n < 0)
        return;
    const char *b = s->peek;
    const char *eol = memchr(b, '\n', (size_t)n);
    size_t line = eol ? (size_t)(eol - b) : (size_t)n;
    if (line > ITS__HTTP_LINE_MAX) {
        drop_head(s, sl, 414, "uri_too_long",
                  "request line longer than " ITS_STR(ITS__HTTP_LINE_MAX) " bytes");
        return;
    }
    if (!eol)
        return;
    /* METHOD SP target SP version: the target without its query decides the daemon. */
    const char *sp1 = memchr(b, ' ', line);
    const char *target = sp1 ? sp1 + 1 : NULL;
    const char *sp2 = target ? memchr(target, ' ', line - (size_t)(target - b)) : NULL;
    if (!sp1 || sp1 == b || !sp2 || sp2 == target) {
        drop_head(s, sl, 400, "bad_request", "malformed request line");
        return;
    }
    for (const char *p = b; p < eol; p++)
        if ((unsigned char)*p < 0x20 && *p != '\r') {
            drop_head(s, sl, 400, "bad_request", "control character in the request line");
            return;
        }
    size_t tlen = (size_t)(sp2 - target);
    for (size_t i = 0; i + 2 < tlen; i++)
        if (target[i] == '%' && target[i + 1] == '0' && target[i + 2] == '0') {
            drop_head(s, sl, 400, "bad_request", "NUL (%00) in the request target");
            return;
        }
    /* the end of the head: an empty line */
    size_t scan = (size_t)n < ITS__HTTP_HEAD_MAX ? (size_t)n : ITS__HTTP_HEAD_MAX;
    int whole = 0;
    for (size_t i = line; i + 1 < scan && !whole; i++)
        if (b[i] == '\n' &&
            (b[i + 1] == '\n' || (b[i + 1] == '\r' && i + 2 < scan && b[i + 2] == '\n')))
            whole = 1;
    if (!whole) {
        if ((size_t)n > ITS__HTTP_HEAD_MAX)
            drop_head(s, sl, 431, "header_too_large",
                      "request head larger than " ITS_STR(ITS__HTTP_HEAD_MAX) " bytes");
        return;
    }
    const char *why = NULL;
    int status = check_head(b, (size_t)(eol - b), scan, target, tlen, sp2, &why);
    if (status) {
        drop_head(s, sl, status, status == 505 ? "http_version" : "bad_request", why);
        return;
    }
    const char *q = memchr(target, '?', tlen);
    int ops = is_reserved(s, target, q ? (size_t)(q - target) : tlen);
    epoll_ctl(s->ep, EPOLL_CTL_DEL, sl->fd, NULL);
    pthread_mutex_lock(&s->mu);
    int full = ops ? s->n_ops >= s->cfg.reserved_connections : s->n_api >= s->cfg.max_connections;
    if (full) {
        int fd = sl->fd;
        slot_free(s, sl);
        pthread_mutex_unlock(&s->mu);
        answer_close(s, fd, 503, "unavailable", "all connections are busy, retry later");
        return;
    }
    s->n_head--;
    sl->state = ops ? SLOT_OPS : SLOT_API;
    if (ops)
        s->n_ops++;
    else
        s->n_api++;
    int fd = sl->fd;
    struct sockaddr_storage addr = sl->addr;
    socklen_t alen = sl->alen;
    pthread_mutex_unlock(&s->mu);
    if (MHD_add_connection(ops ? s->ops : s->api, fd, (struct sockaddr *)&addr, alen) != MHD_YES) {
        /* libmicrohttpd closed the socket; free the slot unless its close notice did */
        pthread_mutex_lock(&s->mu);
        if (sl->fd == fd && (sl->state == SLOT_API || sl->state == SLOT_OPS))
            slot_free(s, sl);
        pthread_mutex_unlock(&s->mu);
    }
}

/* Heads past the deadline are answered 408; handed connections past it are shut down (the
 * daemon then sees the end of the stream and closes them). */
static void reap(its__http_server *s)
{
    uint64_t now = its_now_ns();
    int n_late = 0;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->n_slots; i++) {
        slot *sl = &s->slots[i];
        if (sl->state == SLOT_FREE || !sl->deadline_ns || now <= sl->deadline_ns)
            continue;
        if (sl->state == SLOT_HEAD) {
            epoll_ctl(s->ep, EPOLL_CTL_DEL, sl->fd, NULL);
            s->late[n_late++] = sl->fd;
            slot_free(s, sl);
        } else {
            shutdown(sl->fd, SHUT_RDWR);
            sl->deadline_ns = 0; /* once */
        }
    }
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < n_late; i++)
        answer_close(s, s->late[i], 408, "timeout", "request head not received in time");
}

/* The state of a slot, read under the lock (libmicrohttpd's threads free handed ones). */
static int slot_state(its__http_server *s, int i)
{
    pthread_mutex_lock(&s->mu);
    int st = s->slots[i].state;
    pthread_mutex_unlock(&s->mu);
    return st;
}

static void *front(void *arg)
{
    its__http_server *s = arg;
    struct epoll_event ev[64];
    uint64_t next_reap = 0;
    while (!atomic_load(&s->stop)) {
        int n = epoll_wait(s->ep, ev, 64, 50);
        for (int i = 0; i < n; i++) {
            uint64_t tag = ev[i].data.u64;
            if (tag == 0)
                accept_all(s);
            else if (tag >= 2 && slot_state(s, (int)(tag - 2)) == SLOT_HEAD)
                head_progress(s, &s->slots[tag - 2]);
        }
        uint64_t now = its_now_ns();
        if (now >= next_reap) {
            reap(s);
            next_reap = now + 50000000ull;
        }
    }
    return NULL;
}

/* ---- start and stop -------------------------------------------------------------------- */

/* The front loop's counts (n_api, n_ops) are what limit connections. libmicrohttpd's own limit
 * is only a backstop and is set well above them: it is split among the pool's threads, and a
 * closed connection leaves libmicrohttpd's count after its close notice has freed our slot, so
 * a limit equal to ours refuses, under load, a connection that our count admitted. */
static struct MHD_Daemon *daemon_start(its__http_server *s, unsigned int threads,
                                       unsigned int limit)
{
    limit = 2 * limit + 2 * threads;
    unsigned int flags =
        MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC;
    if (threads > 1)
        return MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER,
                                on_log, NULL, MHD_OPTION_THREAD_POOL_SIZE, threads,
                                MHD_OPTION_CONNECTION_LIMIT, limit, MHD_OPTION_CONNECTION_TIMEOUT,
                                (unsigned int)s->cfg.timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                                (size_t)ITS__HTTP_HEAD_MAX * 4, MHD_OPTION_NOTIFY_COMPLETED,
                                on_completed, NULL, MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
                                MHD_OPTION_END);
    return MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_log,
                            NULL, MHD_OPTION_CONNECTION_LIMIT, limit, MHD_OPTION_CONNECTION_TIMEOUT,
                            (unsigned int)s->cfg.timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                            (size_t)ITS__HTTP_HEAD_MAX * 4, MHD_OPTION_NOTIFY_COMPLETED,
                            on_completed, NULL, MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
                            MHD_OPTION_END);
}

int its__http_start(const its__http_config *cfg, const its__http_handler *h, its__http_server **out)
{
    if (!cfg || !cfg->bind_addr || !h || !h->handle || !out || cfg->threads < 1 ||
        cfg->max_connections < 1 || cfg->timeout_s < 0 || cfg->per_ip_limit < 0)
        return ITS_EINVAL;
    struct sockaddr_storage ss;
    socklen_t sslen;
    int loopback;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, cfg->bind_addr, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)cfg->port);
        loopback = (ntohl(a4->sin_addr.s_addr) >> 24) == 127;
        sslen = sizeof *a4;
    } else if (inet_pton(AF_INET6, cfg->bind_addr, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)cfg->port);
        loopback = IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr);
        sslen = sizeof *a6;
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
    s->cfg = *cfg;
    s->reserved = cfg->reserved_paths;
    if (s->cfg.max_pending < 1)
        s->cfg.max_pending = ITS__HTTP_MAX_PENDING;
    if (s->reserved && s->cfg.reserved_connections < 1)
        s->cfg.reserved_connections = ITS__HTTP_RESERVED;
    s->timeout_ns = (uint64_t)(cfg->timeout_s ? cfg->timeout_s : 3600) * 1000000000ull;
    s->lfd = s->ep = s->wake = -1;
    pthread_mutex_init(&s->mu, NULL);
    s->n_slots = s->cfg.max_pending + s->cfg.max_connections + s->cfg.reserved_connections;
    s->slots = its_calloc(ITS_MOD_API, (size_t)s->n_slots, sizeof *s->slots);
    s->late = its_calloc(ITS_MOD_API, (size_t)s->n_slots, sizeof *s->late);
    int rc = ITS_ENOMEM;
    if (!s->slots || !s->late)
        goto fail;
    for (int i = 0; i < s->n_slots; i++)
        s->slots[i].fd = -1;
    rc = ITS_ENET;
    int one = 1;
    s->lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->lfd < 0 || setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        (ss.ss_family == AF_INET6 &&
         setsockopt(s->lfd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0) ||
        bind(s->lfd, (struct sockaddr *)&ss, sslen) < 0 || listen(s->lfd, 1024) < 0) {
        its_loge("api", NULL, "cannot serve on %s:%d (%s)", cfg->bind_addr, cfg->port,
                 strerror(errno));
        goto fail;
    }
    sslen = sizeof ss;
    if (getsockname(s->lfd, (struct sockaddr *)&ss, &sslen) < 0)
        goto fail;
    s->port = ntohs(ss.ss_family == AF_INET ? a4->sin_port : a6->sin6_port);
    s->api = daemon_start(s, (unsigned int)cfg->threads, (unsigned int)cfg->max_connections);
    if (s->reserved)
        s->ops = daemon_start(s, 1, (unsigned int)s->cfg.reserved_connections);
    if (!s->api || (s->reserved && !s->ops)) {
        its_loge("api", NULL, "cannot start the HTTP daemon");
        goto fail;
    }
    s->ep = epoll_create1(EPOLL_CLOEXEC);
    s->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.u64 = 0};
    struct epoll_event wev = {.events = EPOLLIN, .data.u64 = 1};
    if (s->ep < 0 || s->wake < 0 || epoll_ctl(s->ep, EPOLL_CTL_ADD, s->lfd, &lev) < 0 ||
        epoll_ctl(s->ep, EPOLL_CTL_ADD, s->wake, &wev) < 0)
        goto fail;
    if (pthread_create(&s->thread, NULL, front, s) != 0)
        goto fail;
    s->thread_started = 1;
    *out = s;
    return 0;
fail:
    its__http_stop(s);
    return rc;
}

int its__http_port(const its__http_server *s)
{
    return s ? s->port : -1;
}

void its__http_stop(its__http_server *s)
{
    if (!s)
        return;
    if (s->thread_started) {
        atomic_store(&s->stop, 1);
        uint64_t one = 1;
        (void)!write(s->wake, &one, sizeof one);
        pthread_join(s->thread, NULL);
    }
    if (s->lfd >= 0)
        close(s->lfd);
    if (s->api)
        MHD_stop_daemon(s->api);
    if (s->ops)
        MHD_stop_daemon(s->ops);
    for (int i = 0; s->slots && i < s->n_slots; i++)
        if (s->slots[i].state == SLOT_HEAD)
            close(s->slots[i].fd);
    if (s->ep >= 0)
        close(s->ep);
    if (s->wake >= 0)
        close(s->wake);
    pthread_mutex_destroy(&s->mu);
    its_free(s->slots);
    its_free(s->late);
    its_free(s);
}

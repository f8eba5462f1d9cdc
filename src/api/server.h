/*
 * An HTTP/1.1 transport (libmicrohttpd) that knows nothing about what it serves: it collects
 * a request (method, path, headers, query arguments, the body up to a limit the handler sets
 * per request) and passes it to the handler, which answers with its__http_reply.
 *
 *     static void my_handle(void *ud, its__http_request *req)
 *     {
 *         its__http_reply r = {.status = 200, .content_type = "text/plain", .body = "ok",
 *                              .len = 2};
 *         its__http_respond(req, &r);
 *     }
 *     its__http_handler h = {.ud = me, .body_limit = my_limit, .handle = my_handle};
 *     static const char *const ops[] = {"/metrics", "/healthz", NULL};
 *     its__http_config c = {.bind_addr = "127.0.0.1", .port = 0, .loopback_only = 1,
 *                           .threads = 2, .max_connections = 64, .timeout_s = 10,
 *                           .per_ip_limit = 32, .reserved_paths = ops};
 *     its__http_server *s;
 *     if (its__http_start(&c, &h, &s) == 0) {
 *         int port = its__http_port(s);   // the bound port (useful with port 0)
 *         ...
 *         its__http_stop(s);              // waits for requests in flight
 *     }
 *
 * Contract: handle runs on the transport's threads, concurrently, and answers once with
 * its__http_respond before it returns (the transport answers 500 for a handler that did
 * not). The reply is copied: its memory may go as soon as its__http_respond returns. The
 * body limit is enforced twice: from Content-Length before anything is read (handle is
 * then called at once, with body_too_large set and no body) and while reading, for chunked
 * uploads that do not announce their size.
 *
 * Starvation: a connection is accepted by a front loop that waits, without reading, for the
 * whole request head; only then does libmicrohttpd see it. timeout_s is a deadline for the
 * whole request counted from accept, never extended by activity (a head late is answered
 * 408, a request late is cut). per_ip_limit bounds the connections of one client address,
 * max_pending the connections whose head is still arriving, max_connections the requests
 * handed to the handler at a time (503 beyond). Requests for reserved_paths are served by a
 * daemon and a thread of their own with reserved_connections, so they are answered while the
 * other connections are exhausted. Every response closes its connection (Connection: close).
 * Errors answered by the transport itself (400 malformed request line or "%00" in the target,
 * 408, 414 request line over ITS__HTTP_LINE_MAX, 431 head over ITS__HTTP_HEAD_MAX, 503) have
 * the API's JSON error body, {"error":{"code":...,"message":...}}.
 */
#ifndef ITS_API_SERVER_H
#define ITS_API_SERVER_H

#include <stddef.h>
#include <stdint.h>

#define ITS__HTTP_LINE_MAX    4096  /* request line; longer: 414 */
#define ITS__HTTP_HEAD_MAX    16384 /* request line and headers; larger: 431 */
#define ITS__HTTP_MAX_PENDING 1024  /* default max_pending */
#define ITS__HTTP_RESERVED    16    /* default reserved_connections */

typedef struct its__http_request {
    const char *method; /* "GET", ... */
    const char *path;   /* without the query */
    const uint8_t *body;
    size_t body_len;
    int body_too_large; /* the transport stopped reading at the limit */
    void *conn;         /* private to the transport */
    int responded;      /* private to the transport: 1 answered, -1 the answer failed */
} its__http_request;

/* A request header or query argument by name (headers case-insensitively); NULL if absent.
 * Valid during the handle call. */
const char *its__http_header(const its__http_request *r, const char *name);
const char *its__http_arg(const its__http_request *r, const char *name);

typedef struct its__http_reply {
    int status;
    const char *content_type; /* or NULL */
    const char *body;         /* len bytes, or NULL */
    size_t len;
    const char *header_name; /* one extra header or NULL */
    const char *header_value;
} its__http_reply;

/* Queue the answer to req (the first call counts; later ones return ITS_EBUSY). 0, or
 * ITS_ENOMEM / ITS_EIO when the transport could not queue it. */
int its__http_respond(its__http_request *req, const its__http_reply *reply);

typedef struct its__http_handler {
    void *ud;
    /* The largest body accepted for this request (0: none expected). */
    size_t (*body_limit)(void *ud, const char *method, const char *path);
    /* Answer req with its__http_respond; called once per request. */
    void (*handle)(void *ud, its__http_request *req);
    /* Optional: the transport answered status itself (400, 408, 414, 431, 503); called on the
     * transport's thread, must not block. */
    void (*rejected)(void *ud, int status);
} its__http_handler;

/* {"error":{"code":code,"message":message}} into buf; its length, or < 0 if it did not fit. */
int its__http_error_json(char *buf, size_t cap, const char *code, const char *message);

typedef struct its__http_config {
    const char *bind_addr; /* IPv4 or IPv6 literal */
    int port;              /* 0: any free port */
    int loopback_only;     /* refuse (ITS_EAUTH) an address that is not a loopback one */
    int threads, max_connections, timeout_s;
    int per_ip_limit;                  /* connections from one address; 0: no limit */
    int max_pending;                   /* heads still arriving; 0: ITS__HTTP_MAX_PENDING */
    const char *const *reserved_paths; /* NULL-terminated, or NULL: no reserved capacity */
    int reserved_connections;          /* 0: ITS__HTTP_RESERVED */
} its__http_config;

typedef struct its__http_server its__http_server;

/* Bind and serve on internal threads. ITS_EINVAL: not an IP address; ITS_EAUTH: not a
 * loopback address with loopback_only; ITS_ENET: the bind failed; ITS_ENOMEM. */
int its__http_start(const its__http_config *cfg, const its__http_handler *h,
                    its__http_server **out);
int its__http_port(const its__http_server *s);
/* Stop serving (waits for requests in flight) and free; NULL is a no-op. */
void its__http_stop(its__http_server *s);

#endif

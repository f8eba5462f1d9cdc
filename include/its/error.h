/*
 * its/error.h - error codes shared by every module.
 *
 *     int rc = its_queue_push(q, item);
 *     if (rc < 0)
 *         its_loge("batch", NULL, "push failed: %s", its_strerror(rc));
 *
 * Contract: functions return 0 (or a positive count) on success and a negative ITS_E* code on
 * failure. Every code comes from the one table below, which also gives its_strerror() and
 * its_errname(). Thread-safe; the returned strings are static.
 */
#ifndef ITS_ERROR_H
#define ITS_ERROR_H

#include <stdarg.h>
#include <stddef.h>

/* X(name, value, message). Values are stable: they appear in logs and metrics. */
#define ITS_ERROR_TABLE(X)                                                                         \
    X(ITS_OK, 0, "success")                                                                        \
    X(ITS_ENOMEM, -1, "out of memory")                                                             \
    X(ITS_EINVAL, -2, "invalid argument")                                                          \
    X(ITS_EIO, -3, "input/output error")                                                           \
    X(ITS_ENOENT, -4, "no such file or object")                                                    \
    X(ITS_EFULL, -5, "queue or pool full")                                                         \
    X(ITS_EEMPTY, -6, "queue or pool empty")                                                       \
    X(ITS_EAGAIN, -7, "resource temporarily unavailable")                                          \
    X(ITS_ETIMEDOUT, -8, "timed out")                                                              \
    X(ITS_ECLOSED, -9, "closed")                                                                   \
    X(ITS_ECONFIG, -10, "invalid configuration")                                                   \
    X(ITS_EMODEL, -11, "malformed model")                                                          \
    X(ITS_EUNSUPPORTED, -12, "unsupported feature")                                                \
    X(ITS_ERANGE, -13, "value out of range")                                                       \
    X(ITS_EDECODE, -14, "corrupt or undecodable media")                                            \
    X(ITS_ENET, -15, "network or connection error")                                                \
    X(ITS_EBACKEND, -16, "compute backend error")                                                  \
    X(ITS_ENODEV, -17, "no such device")                                                           \
    X(ITS_EPROTO, -18, "malformed request or protocol error")                                      \
    X(ITS_EAUTH, -19, "authentication required or failed")                                         \
    X(ITS_EEXIST, -20, "already exists")                                                           \
    X(ITS_EBUSY, -21, "busy")                                                                      \
    X(ITS_EOVERFLOW, -22, "size or count overflow")                                                \
    X(ITS_EEOF, -23, "end of stream")                                                              \
    X(ITS_EINTERNAL, -24, "internal error")

enum its_error {
#define ITS__ERR_ENUM(name, value, msg) name = value,
    ITS_ERROR_TABLE(ITS__ERR_ENUM)
#undef ITS__ERR_ENUM
};

/* Number of codes in the table (ITS_OK included). */
#define ITS_ERROR_COUNT 25

/* Human-readable message for a code; "unknown error" for codes outside the table. */
const char *its_strerror(int code);
/* Symbolic name ("ITS_ENOMEM"), for logs and metric labels; "ITS_EUNKNOWN" outside the table. */
const char *its_errname(int code);

/*
 * Write a formatted message into a caller's error buffer (err may be NULL or errlen 0: no
 * message) and return code, so that a failure path is one statement:
 *     return its_seterr(err, errlen, ITS_ECONFIG, "%s: %s: out of range", file, key);
 */
int its_seterr(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The same with a va_list, for a module's own wrapper (one that also counts, say). */
int its_vseterr(char *err, size_t errlen, int code, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

#endif

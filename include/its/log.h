/*
 * its/log.h - levelled logging with a context tag.
 *
 *     its_logi("ingest", "cam-3", "connected to %s", url);
 *     // text:  2026-11-27T06:30:00.123Z INFO  [ingest cam-3] connected to rtsp://...
 *     // json:  {"ts":"2026-11-27T06:30:00.123Z","level":"info","module":"ingest",
 *     //         "ctx":"cam-3","msg":"connected to rtsp://..."}
 *
 * Contract: any thread may log at any time; one line is written with one write(2), so lines
 * from different threads never interleave. Messages longer than ITS_LOG_LINE_MAX are cut.
 * The sink defaults to stderr; tests may point it at a file descriptor of their own.
 */
#ifndef ITS_LOG_H
#define ITS_LOG_H

#include <stdarg.h>

typedef enum its_log_level {
    ITS_LOG_DEBUG = 0,
    ITS_LOG_INFO = 1,
    ITS_LOG_WARN = 2,
    ITS_LOG_ERROR = 3,
    ITS_LOG_OFF = 4,
} its_log_level;

typedef enum its_log_format {
    ITS_LOG_TEXT = 0,
    ITS_LOG_JSON = 1,
} its_log_format;

#define ITS_LOG_LINE_MAX 2048

void its_log_set_level(its_log_level level);
its_log_level its_log_get_level(void);
void its_log_set_format(its_log_format format);
/* Write log lines to this file descriptor (default 2). */
void its_log_set_fd(int fd);
/* "debug", "info", "warn", "error", "off" -> level; ITS_EINVAL for anything else. */
int its_log_parse_level(const char *name, its_log_level *out);
/* "text" or "json" -> format; ITS_EINVAL for anything else. */
int its_log_parse_format(const char *name, its_log_format *out);

/* module: short stage name ("engine"); ctx: optional instance tag ("cam-3"), may be NULL. */
void its_log(its_log_level level, const char *module, const char *ctx, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void its_vlog(its_log_level level, const char *module, const char *ctx, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

/* Number of lines written at each level since start, for the errors-by-level metric. */
unsigned long its_log_count(its_log_level level);

#define its_logd(module, ctx, ...) its_log(ITS_LOG_DEBUG, module, ctx, __VA_ARGS__)
#define its_logi(module, ctx, ...) its_log(ITS_LOG_INFO, module, ctx, __VA_ARGS__)
#define its_logw(module, ctx, ...) its_log(ITS_LOG_WARN, module, ctx, __VA_ARGS__)
#define its_loge(module, ctx, ...) its_log(ITS_LOG_ERROR, module, ctx, __VA_ARGS__)

#endif

/*
 * Logging. Each line is formatted into a stack buffer and written with one write(2): lines
 * from concurrent threads never interleave and logging never allocates, so it is safe on the
 * hot path and inside allocation-failure paths.
 */
#include "its/log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "its/clock.h"
#include "its/error.h"
#include "its/json.h"

static atomic_int g_level = ITS_LOG_INFO;
static atomic_int g_format = ITS_LOG_TEXT;
static atomic_int g_fd = 2;
static atomic_ulong g_counts[ITS_LOG_OFF];

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};
static const char *const level_tags[] = {"DEBUG", "INFO ", "WARN ", "ERROR", "OFF  "};

void its_log_set_level(its_log_level level)
{
    atomic_store(&g_level, (int)level);
}
its_log_level its_log_get_level(void)
{
    return (its_log_level)atomic_load(&g_level);
}
void its_log_set_format(its_log_format format)
{
    atomic_store(&g_format, (int)format);
}
void its_log_set_fd(int fd)
{
    atomic_store(&g_fd, fd);
}

int its_log_parse_level(const char *name, its_log_level *out)
{
    for (int i = 0; name && i <= ITS_LOG_OFF; i++) {
        if (strcasecmp(name, level_names[i]) == 0) {
            *out = (its_log_level)i;
            return 0;
        }
    }
    return ITS_EINVAL;
}

int its_log_parse_format(const char *name, its_log_format *out)
{
    if (name && strcasecmp(name, "text") == 0)
        *out = ITS_LOG_TEXT;
    else if (name && strcasecmp(name, "json") == 0)
        *out = ITS_LOG_JSON;
    else
        return ITS_EINVAL;
    return 0;
}

unsigned long its_log_count(its_log_level level)
{
    if ((int)level < 0 || level >= ITS_LOG_OFF)
        return 0;
    return atomic_load(&g_counts[level]);
}

static size_t clamp_len(int n, size_t cap)
{
    return n < 0 ? 0 : (size_t)n >= cap ? cap - 1 : (size_t)n;
}

void its_vlog(its_log_level level, const char *module, const char *ctx, const char *fmt, va_list ap)
{
    if ((int)level < atomic_load(&g_level) || level >= ITS_LOG_OFF)
        return;
    atomic_fetch_add(&g_counts[level], 1);

    char msg[ITS_LOG_LINE_MAX];
    vsnprintf(msg, sizeof msg, fmt, ap);
    char ts[40];
    its_format_iso8601(its_wall_ns(), ts, sizeof ts);

    /* room for the message escaped at worst (\u00XX for every byte) and the other fields */
    char line[ITS_LOG_LINE_MAX * 6 + 512];
    size_t cap = sizeof line - 2, n;
    if (atomic_load(&g_format) == ITS_LOG_JSON) {
        its_json w;
        its_json_init(&w, line, cap);
        its_json_obj_begin(&w);
        its_json_kstr(&w, "ts", ts);
        its_json_kstr(&w, "level", level_names[level]);
        its_json_kstr(&w, "module", module ? module : "");
        if (ctx)
            its_json_kstr(&w, "ctx", ctx);
        its_json_kstr(&w, "msg", msg);
        its_json_obj_end(&w);
        int len = its_json_finish(&w);
        n = len < 0 ? 0 : (size_t)len;
    } else {
        n = clamp_len(snprintf(line, cap, "%s %s [%s%s%s] %s", ts, level_tags[level],
                               module ? module : "-", ctx ? " " : "", ctx ? ctx : "", msg),
                      cap);
    }
    line[n++] = '\n';
    ssize_t off = 0;
    int fd = atomic_load(&g_fd);
    while ((size_t)off < n) {
        ssize_t w = write(fd, line + off, n - (size_t)off);
        if (w <= 0)
            break;
        off += w;
    }
}

void its_log(its_log_level level, const char *module, const char *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    its_vlog(level, module, ctx, fmt, ap);
    va_end(ap);
}

#include "its/clock.h"

#include <errno.h>
#include <stdio.h>
#include <time.h>

uint64_t its_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * ITS_NS_PER_S + (uint64_t)ts.tv_nsec;
}

uint64_t its_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * ITS_NS_PER_S + (uint64_t)ts.tv_nsec;
}

void its_sleep_until_ns(uint64_t deadline_ns)
{
    struct timespec ts = {.tv_sec = (time_t)(deadline_ns / ITS_NS_PER_S),
                          .tv_nsec = (long)(deadline_ns % ITS_NS_PER_S)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

void its_sleep_ns(uint64_t ns)
{
    if (ns == 0)
        return;
    its_sleep_until_ns(its_now_ns() + ns);
}

void its_format_iso8601(uint64_t wall_ns, char *buf, unsigned len)
{
    time_t secs = (time_t)(wall_ns / ITS_NS_PER_S);
    unsigned ms = (unsigned)((wall_ns % ITS_NS_PER_S) / ITS_NS_PER_MS);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

/*
 * its/clock.h - monotonic time helpers. All timestamps in the pipeline are CLOCK_MONOTONIC
 * nanoseconds (its_now_ns); wall-clock time is used only for display (its_wall_ns).
 */
#ifndef ITS_CLOCK_H
#define ITS_CLOCK_H

#include <stdint.h>

#define ITS_NS_PER_US 1000ULL
#define ITS_NS_PER_MS 1000000ULL
#define ITS_NS_PER_S  1000000000ULL

uint64_t its_now_ns(void);
/* CLOCK_REALTIME in ns since the Unix epoch. */
uint64_t its_wall_ns(void);
/* Sleep for ns, resuming after signals; returns early only if ns == 0. */
void its_sleep_ns(uint64_t ns);
/* Sleep until the monotonic deadline (absolute, its_now_ns() time base). */
void its_sleep_until_ns(uint64_t deadline_ns);

static inline double its_ns_to_ms(uint64_t ns)
{
    return (double)ns / 1e6;
}
static inline double its_ns_to_s(uint64_t ns)
{
    return (double)ns / 1e9;
}
static inline uint64_t its_ms_to_ns(double ms)
{
    return ms <= 0 ? 0 : (uint64_t)(ms * 1e6);
}

/* Format a wall-clock ns timestamp as ISO 8601 UTC with milliseconds into buf (>= 32 bytes). */
void its_format_iso8601(uint64_t wall_ns, char *buf, unsigned len);

#endif

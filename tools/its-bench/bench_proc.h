/* Process, port and HTTP helpers for its-bench. */
#ifndef ITS_BENCH_PROC_H
#define ITS_BENCH_PROC_H

#include <stddef.h>
#include <sys/types.h>

/* A free TCP port on 127.0.0.1 (bound then released), or -1. */
int free_port(void);
/* fork+exec argv with stdout and stderr to log (append; NULL: /dev/null). -1 on error. */
pid_t spawn(char *const argv[], const char *log);
/* Wait up to timeout_ms for pid to exit; its status, or -1 if it did not. */
int wait_exit(pid_t pid, int timeout_ms);
/* CPU seconds (user + system) of a live process; -1 if unreadable. */
double proc_cpu_s(pid_t pid);
/* VmHWM of a live process (or of ourselves when pid is 0) in MiB; -1 if unreadable. */
double proc_peak_rss_mb(pid_t pid);
/* GET path from 127.0.0.1:port; the body (malloc'd via its_malloc) or NULL. */
char *http_get(int port, const char *path, int timeout_ms);
/* Sum of every sample of a Prometheus metric whose labels contain `label_match` (may be
 * NULL: all), from a text exposition; NaN if the metric is absent. */
double prom_sum(const char *text, const char *metric, const char *label_match);

#endif

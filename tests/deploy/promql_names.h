/* Metric names referenced by a PromQL expression (a small scanner, enough for our own
 * dashboards and rules: it skips strings, label matchers, ranges, function names, numbers,
 * $variables and the label lists of by/without/on/ignoring/group_left/group_right). */
#ifndef ITS_PROMQL_NAMES_H
#define ITS_PROMQL_NAMES_H

#include <stddef.h>

/* Calls fn(ud, name) for each metric name in expr; returns the count. */
int promql_metric_names(const char *expr, void (*fn)(void *ud, const char *name), void *ud);

#endif

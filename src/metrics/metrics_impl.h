/* Internals shared by the files of src/metrics. */
#ifndef ITS_METRICS_IMPL_H
#define ITS_METRICS_IMPL_H

#include <stddef.h>

#include "its/metrics.h"

its_metric_family *its__metrics_std_register_one(its_metrics *reg, its_metric_id id);
/* The ud of the first collector added with fn, or NULL (a module's state, so that attaching
 * it twice is a no-op). */
void *its__metrics_collector_ud(its_metrics *reg, its_metrics_collect_fn fn);
void its__metrics_fmt_double(double v, char *buf, size_t len);

#endif

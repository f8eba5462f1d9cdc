/* Internals shared by the files of src/metrics. */
#ifndef ITS_METRICS_IMPL_H
#define ITS_METRICS_IMPL_H

#include <stddef.h>

#include "its/metrics.h"

its_metric_family *its__metrics_std_register_one(its_metrics *reg, its_metric_id id);
void **its__metrics_gpu_slot(its_metrics *reg);
void **its__metrics_scaling_slot(its_metrics *reg);
void its__metrics_gpu_free(void *gpu);
void its__metrics_fmt_double(double v, char *buf, size_t len);

#endif

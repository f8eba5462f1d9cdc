/*
 * GPU utilisation through NVML. The library is opened with dlopen at run time so the daemon
 * links and runs on machines without the NVIDIA driver; the few entry points we need are
 * declared here with the ABI the driver documents (nvml.h): every call returns an int status,
 * 0 meaning success, and devices are opaque pointers.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include "its/core.h"
#include "its/metrics.h"
#include "metrics_impl.h"

#define MAX_GPUS 16

typedef struct nvml_utilization {
    unsigned int gpu;
    unsigned int memory;
} nvml_utilization;

typedef struct nvml_memory {
    unsigned long long total;
    unsigned long long free;
    unsigned long long used;
} nvml_memory;

typedef struct gpu_state {
    void *lib;
    int (*shutdown)(void);
    int (*utilization)(void *dev, nvml_utilization *u);
    int (*memory)(void *dev, nvml_memory *m);
    int count;
    void *dev[MAX_GPUS];
    its_metric *util[MAX_GPUS], *used[MAX_GPUS], *total[MAX_GPUS];
} gpu_state;

static void gpu_free(void *p)
{
    gpu_state *g = p;
    if (!g)
        return;
    if (g->shutdown)
        g->shutdown();
    if (g->lib)
        dlclose(g->lib);
    its_free(g);
}

/* A failed sample leaves the last value: a transient NVML error should not look like an idle
 * GPU. */
static void collect(void *ud, its_metrics *reg)
{
    gpu_state *g = ud;
    for (int i = 0; i < g->count; i++) {
        nvml_utilization u;
        nvml_memory m;
        if (g->utilization(g->dev[i], &u) == 0)
            its_metric_set(g->util[i], u.gpu);
        if (g->memory(g->dev[i], &m) == 0) {
            its_metric_set(g->used[i], (double)m.used);
            its_metric_set(g->total[i], (double)m.total);
        }
    }
}

int its_metrics_gpu_attach(its_metrics *reg)
{
    if (!reg)
        return ITS_EINVAL;
    gpu_state *had = its__metrics_collector_ud(reg, collect);
    if (had)
        return had->count;
    const char *path = getenv("ITS_NVML_LIBRARY");
    void *lib = dlopen(path && *path ? path : "libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        its_logi("metrics", NULL, "no NVML (%s): GPU metrics disabled", dlerror());
        return ITS_ENODEV;
    }
    gpu_state *g = its_calloc(ITS_MOD_METRICS, 1, sizeof *g);
    if (!g) {
        dlclose(lib);
        return ITS_ENOMEM;
    }
    g->lib = lib;
    int (*init)(void) = (int (*)(void))dlsym(lib, "nvmlInit_v2");
    int (*count)(unsigned int *) = (int (*)(unsigned int *))dlsym(lib, "nvmlDeviceGetCount_v2");
    int (*handle)(unsigned int, void **) =
        (int (*)(unsigned int, void **))dlsym(lib, "nvmlDeviceGetHandleByIndex_v2");
    g->shutdown = (int (*)(void))dlsym(lib, "nvmlShutdown");
    g->utilization =
        (int (*)(void *, nvml_utilization *))dlsym(lib, "nvmlDeviceGetUtilizationRates");
    g->memory = (int (*)(void *, nvml_memory *))dlsym(lib, "nvmlDeviceGetMemoryInfo");
    unsigned int n = 0;
    if (!init || !count || !handle || !g->shutdown || !g->utilization || !g->memory) {
        its_logw("metrics", NULL, "NVML lacks an entry point: GPU metrics disabled");
        g->shutdown = NULL;
        gpu_free(g);
        return ITS_ENODEV;
    }
    if (init() != 0) {
        its_logi("metrics", NULL, "nvmlInit failed (no driver or GPU): GPU metrics disabled");
        g->shutdown = NULL;
        gpu_free(g);
        return ITS_ENODEV;
    }
    if (count(&n) != 0 || n == 0) {
        gpu_free(g);
        return ITS_ENODEV;
    }
    its_metric_family *fu = its__metrics_std_register_one(reg, ITS_M_GPU_UTIL);
    its_metric_family *fm = its__metrics_std_register_one(reg, ITS_M_GPU_MEM_USED);
    its_metric_family *ft = its__metrics_std_register_one(reg, ITS_M_GPU_MEM_TOTAL);
    for (unsigned int i = 0; i < n && g->count < MAX_GPUS; i++) {
        void *dev = NULL;
        if (handle(i, &dev) != 0)
            continue;
        char idx[16];
        snprintf(idx, sizeof idx, "%u", i);
        int k = g->count++;
        g->dev[k] = dev;
        g->util[k] = its_metrics_series_v(fu, idx);
        g->used[k] = its_metrics_series_v(fm, idx);
        g->total[k] = its_metrics_series_v(ft, idx);
    }
    if (g->count == 0) {
        gpu_free(g);
        return ITS_ENODEV;
    }
    collect(g, reg);
    int rc = its_metrics_add_collector(reg, collect, g, gpu_free);
    if (rc < 0) {
        gpu_free(g);
        return rc;
    }
    its_logi("metrics", NULL, "NVML: %d GPU(s)", g->count);
    return g->count;
}

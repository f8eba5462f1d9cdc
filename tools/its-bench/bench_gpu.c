/*
 * its-bench's GPU record: NVML, opened with dlopen at run time (ITS_NVML_LIBRARY, else the
 * driver's libnvidia-ml.so.1), sampled every 200 ms on a thread of its own while a
 * measurement window is open. The entry points are declared with the ABI nvml.h documents
 * (int status, 0 = success; opaque device handles). No library, no driver or no GPU is not
 * an error: the figures stay NaN (null in the JSON) and the note says why.
 */
#include "bench_gpu.h"

#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "its/core.h"

#define SAMPLE_NS (200 * ITS_NS_PER_MS)

typedef struct nvml_utilization {
    unsigned int gpu;
    unsigned int memory;
} nvml_utilization;

typedef struct nvml_memory {
    unsigned long long total;
    unsigned long long free;
    unsigned long long used;
} nvml_memory;

static struct {
    void *lib;
    void *dev;
    int (*shutdown)(void);
    int (*util)(void *dev, nvml_utilization *u);
    int (*mem)(void *dev, nvml_memory *m);
    pthread_t thread;
    int running;
    atomic_int stop, window;
    pthread_mutex_t mu; /* the accumulators */
    double util_sum, mem_peak_mb;
    int samples;
    char name[96];
    char note[256];
} g = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void sample(void)
{
    nvml_utilization u;
    nvml_memory m;
    int ok_u = g.util(g.dev, &u) == 0;
    int ok_m = g.mem(g.dev, &m) == 0;
    pthread_mutex_lock(&g.mu);
    if (ok_u) {
        g.util_sum += u.gpu;
        g.samples++;
    }
    if (ok_m && (double)m.used / 1048576.0 > g.mem_peak_mb)
        g.mem_peak_mb = (double)m.used / 1048576.0;
    pthread_mutex_unlock(&g.mu);
}

static void *sampler(void *arg)
{
    (void)arg;
    while (!atomic_load(&g.stop)) {
        if (atomic_load(&g.window))
            sample();
        its_sleep_ns(SAMPLE_NS);
    }
    return NULL;
}

static void drop_lib(const char *why)
{
    snprintf(g.note, sizeof g.note, "%s", why);
    if (g.lib)
        dlclose(g.lib);
    g.lib = NULL;
}

int bench_gpu_start(void)
{
    if (g.lib)
        return 0;
    const char *path = getenv("ITS_NVML_LIBRARY");
    g.lib = dlopen(path && *path ? path : "libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!g.lib) {
        char why[256];
        snprintf(why, sizeof why, "NVML absent (%.120s)", dlerror());
        drop_lib(why);
        return ITS_ENODEV;
    }
    int (*init)(void) = (int (*)(void))dlsym(g.lib, "nvmlInit_v2");
    int (*handle)(unsigned int, void **) =
        (int (*)(unsigned int, void **))dlsym(g.lib, "nvmlDeviceGetHandleByIndex_v2");
    int (*name)(void *, char *, unsigned int) =
        (int (*)(void *, char *, unsigned int))dlsym(g.lib, "nvmlDeviceGetName");
    g.shutdown = (int (*)(void))dlsym(g.lib, "nvmlShutdown");
    g.util = (int (*)(void *, nvml_utilization *))dlsym(g.lib, "nvmlDeviceGetUtilizationRates");
    g.mem = (int (*)(void *, nvml_memory *))dlsym(g.lib, "nvmlDeviceGetMemoryInfo");
    if (!init || !handle || !g.shutdown || !g.util || !g.mem) {
        drop_lib("NVML lacks an entry point");
        return ITS_ENODEV;
    }
    if (init() != 0) {
        drop_lib("nvmlInit failed (no driver or no GPU)");
        return ITS_ENODEV;
    }
    if (handle(0, &g.dev) != 0) {
        g.shutdown();
        drop_lib("NVML found no GPU");
        return ITS_ENODEV;
    }
    /* the utilisation of GPU 0, the one itsd's engines use (CUDA_VISIBLE_DEVICES aside) */
    if (!name || name(g.dev, g.name, sizeof g.name) != 0)
        g.name[0] = '\0';
    atomic_init(&g.stop, 0);
    atomic_init(&g.window, 0);
    if (pthread_create(&g.thread, NULL, sampler, NULL) != 0) {
        g.shutdown();
        drop_lib("cannot start the NVML sampler");
        return ITS_ENOMEM;
    }
    g.running = 1;
    return 0;
}

void bench_gpu_window(int open)
{
    if (open) {
        pthread_mutex_lock(&g.mu);
        g.util_sum = 0;
        g.samples = 0;
        g.mem_peak_mb = 0;
        pthread_mutex_unlock(&g.mu);
    }
    atomic_store(&g.window, open);
}

void bench_gpu_result(double *util_mean, double *mem_peak_mb, const char **name, const char **note)
{
    pthread_mutex_lock(&g.mu);
    *util_mean = g.samples ? g.util_sum / g.samples : NAN;
    *mem_peak_mb = g.samples ? g.mem_peak_mb : NAN;
    pthread_mutex_unlock(&g.mu);
    *name = g.name[0] ? g.name : NULL;
    if (!g.lib)
        *note = g.note[0] ? g.note : "bench_gpu_start not called";
    else if (isnan(*util_mean))
        *note = "NVML gave no sample during the measured window";
    else
        *note = NULL;
}

void bench_gpu_stop(void)
{
    if (g.running) {
        atomic_store(&g.stop, 1);
        pthread_join(g.thread, NULL);
        g.running = 0;
    }
    if (g.lib) {
        g.shutdown();
        dlclose(g.lib);
        g.lib = NULL;
    }
}

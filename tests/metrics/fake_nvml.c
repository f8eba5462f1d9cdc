/*
 * A stand-in for the NVIDIA driver's NVML library (libnvidia-ml.so.1), for machines without a
 * GPU: the entry points itsd's GPU metrics use (src/metrics/gpu.c), with the ABI nvml.h
 * documents, reporting one GPU at 73% utilisation with 1 GiB of 80 GiB used. Loaded through
 * ITS_NVML_LIBRARY by the metrics and its-bench tests, to check that the readings travel from
 * the driver library to /metrics and into its-bench's report.
 */
typedef struct {
    unsigned int gpu, memory;
} fake_utilization;

typedef struct {
    unsigned long long total, free, used;
} fake_memory;

static int fake_device; /* the handle's target */

int nvmlInit_v2(void);
int nvmlShutdown(void);
int nvmlDeviceGetCount_v2(unsigned int *n);
int nvmlDeviceGetHandleByIndex_v2(unsigned int i, void **dev);
int nvmlDeviceGetUtilizationRates(void *dev, fake_utilization *u);
int nvmlDeviceGetMemoryInfo(void *dev, fake_memory *m);

int nvmlInit_v2(void)
{
    return 0;
}

int nvmlShutdown(void)
{
    return 0;
}

int nvmlDeviceGetCount_v2(unsigned int *n)
{
    *n = 1;
    return 0;
}

int nvmlDeviceGetHandleByIndex_v2(unsigned int i, void **dev)
{
    if (i != 0)
        return 2; /* NVML_ERROR_INVALID_ARGUMENT */
    *dev = &fake_device;
    return 0;
}

int nvmlDeviceGetUtilizationRates(void *dev, fake_utilization *u)
{
    if (dev != &fake_device)
        return 2;
    u->gpu = 73;
    u->memory = 41;
    return 0;
}

int nvmlDeviceGetMemoryInfo(void *dev, fake_memory *m)
{
    if (dev != &fake_device)
        return 2;
    m->total = 80ull << 30;
    m->used = 1ull << 30;
    m->free = m->total - m->used;
    return 0;
}

int nvmlDeviceGetName(void *dev, char *name, unsigned int len);

int nvmlDeviceGetName(void *dev, char *name, unsigned int len)
{
    static const char model[] = "its fake GPU";
    if (dev != &fake_device || len < sizeof model)
        return 2;
    for (unsigned int i = 0; i < sizeof model; i++)
        name[i] = model[i];
    return 0;
}

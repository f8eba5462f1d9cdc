/*
 * GPU utilisation and memory for its-bench, read from the driver's NVML (GPU 0) every 200 ms
 * while a measurement window is open.
 *
 *     bench_gpu_start();            // once; ITS_ENODEV (and a note) where there is no NVML
 *     bench_gpu_window(1);          // the measured window opens: accumulators reset
 *     ...
 *     bench_gpu_window(0);
 *     bench_gpu_result(&util, &mem, &name, &note);   // NaN figures and a note if unmeasured
 *     bench_gpu_stop();             // at exit
 *
 * Contract: start/stop from the main thread only; window and result from the thread that runs
 * the benchmark. Without NVML every call is harmless and the figures are NaN.
 */
#ifndef ITS_BENCH_GPU_H
#define ITS_BENCH_GPU_H

int bench_gpu_start(void);
void bench_gpu_window(int open);
/* Mean utilisation (percent) and peak memory used (MiB) over the last window, NaN if no
 * sample; name: the GPU's model (NULL if unknown); note: why nothing was measured (NULL if
 * something was). The strings live until bench_gpu_stop. */
void bench_gpu_result(double *util_mean, double *mem_peak_mb, const char **name, const char **note);
void bench_gpu_stop(void);

#endif

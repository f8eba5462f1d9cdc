/*
 * cuda_check.h - status checks for the CUDA runtime, cuDNN and cuBLAS(Lt), private to the
 * cuda backend.
 *
 *     ITS_CUDA_TRY(cudaMalloc(&p, n));      // on failure: logs call site, returns ITS_E*
 *     ITS_CUDNN_TRY(cudnnCreate(&h));
 *     ITS_CUBLAS_TRY(cublasLtCreate(&lt));
 *
 * Each macro evaluates the call once; on failure it logs "file:line: call: library message"
 * once (module "engine", context "cuda") and makes the enclosing function return a negative
 * ITS_E* code: ITS_ENOMEM for out-of-memory statuses, ITS_ENODEV when there is no usable GPU,
 * ITS_EBACKEND otherwise. The enclosing function must return int.
 */
#ifndef ITS_CUDA_CHECK_H
#define ITS_CUDA_CHECK_H

#include <cuda_runtime_api.h>

#include "its/error.h"
#include "its/log.h"

#ifdef __cplusplus
extern "C" {
#endif

int its__cuda_status(int st, const char *call, const char *file, int line);
int its__cudnn_status(int st, const char *call, const char *file, int line);
int its__cublas_status(int st, const char *call, const char *file, int line);

#ifdef __cplusplus
}
#endif

#define ITS__TRY(kind, call)                                                                       \
    do {                                                                                           \
        int its__st = (int)(call);                                                                 \
        if (its__st != 0)                                                                          \
            return its__##kind##_status(its__st, #call, __FILE__, __LINE__);                       \
    } while (0)

#define ITS_CUDA_TRY(call)   ITS__TRY(cuda, call)
#define ITS_CUDNN_TRY(call)  ITS__TRY(cudnn, call)
#define ITS_CUBLAS_TRY(call) ITS__TRY(cublas, call)
/* After a kernel launch: the launch error, if any. */
#define ITS_CUDA_TRY_LAUNCH() ITS_CUDA_TRY(cudaGetLastError())

#endif

/* Status conversion for cuda_check.h: one log line per failure, naming the call site. */
#include "cuda_check.h"

#include <cublas_api.h>
#include <cudnn.h>

int its__cuda_status(int st, const char *call, const char *file, int line)
{
    cudaError_t e = (cudaError_t)st;
    its_loge("engine", "cuda", "%s:%d: %s: %s (%s)", file, line, call, cudaGetErrorString(e),
             cudaGetErrorName(e));
    if (e == cudaErrorMemoryAllocation)
        return ITS_ENOMEM;
    if (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver || e == cudaErrorInvalidDevice)
        return ITS_ENODEV;
    return ITS_EBACKEND;
}

int its__cudnn_status(int st, const char *call, const char *file, int line)
{
    char msg[256];
    cudnnGetLastErrorString(msg, sizeof msg);
    its_loge("engine", "cuda", "%s:%d: %s: %s%s%s", file, line, call,
             cudnnGetErrorString((cudnnStatus_t)st), msg[0] ? ": " : "", msg);
    if (st == CUDNN_STATUS_ALLOC_FAILED)
        return ITS_ENOMEM;
    if (st == CUDNN_STATUS_NOT_SUPPORTED)
        return ITS_EUNSUPPORTED;
    return ITS_EBACKEND;
}

int its__cublas_status(int st, const char *call, const char *file, int line)
{
    its_loge("engine", "cuda", "%s:%d: %s: cuBLAS status %d", file, line, call, st);
    if (st == CUBLAS_STATUS_ALLOC_FAILED)
        return ITS_ENOMEM;
    if (st == CUBLAS_STATUS_NOT_SUPPORTED)
        return ITS_EUNSUPPORTED;
    return ITS_EBACKEND;
}

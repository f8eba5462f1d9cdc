/*
 * cuda_graph.c - execution of the cuda backend (cuda_internal.h): the device arena and the
 * pinned staging of the largest plan, the choice of each convolution's cuDNN algorithm, and
 * one CUDA graph per prepared batch size (upload, network, output conversion, download) plus
 * a network-only one that the benchmark replays. The frames path captures its own graphs
 * (cuda_frames.c) around the same steps.
 */
#include <stdlib.h>
#include <string.h>

#include "its/clock.h"
#include "its/error.h"
#include "its/log.h"

#include "cuda_check.h"
#include "cuda_internal.h"

plan *its__cuda_find_plan(cuda_ctx *c, int batch)
{
    for (int i = 0; i < c->n_plans; i++)
        if (c->plans[i].batch == batch)
            return &c->plans[i];
    return NULL;
}

int its__cuda_exec_net(cuda_ctx *c, plan *p, cudaStream_t strm)
{
    ITS_CUDNN_TRY(cudnnSetStream(c->dnn, strm));
    ITS_CUBLAS_TRY(cublasSetStream(c->blas, strm));
    for (int i = 0; i < p->n_steps; i++) {
        int rc = its__cuda_exec_step(c, p, &p->steps[i], strm);
        if (rc < 0) {
            int node = p->steps[i].node;
            its_loge("engine", "cuda", "step %d (node '%s') failed: %s", i,
                     node >= 0 ? c->g->nodes[node].name : "(conversion)", its_strerror(rc));
            return rc;
        }
    }
    return 0;
}

int its__cuda_end_capture(cuda_ctx *c, int rc, cudaGraphExec_t *exec)
{
    cudaGraph_t graph;
    cudaError_t e = cudaStreamEndCapture(c->stream, &graph);
    if (rc < 0) {
        if (e == cudaSuccess)
            cudaGraphDestroy(graph);
        return rc;
    }
    ITS_CUDA_TRY(e);
    e = cudaGraphInstantiate(exec, graph, 0);
    cudaGraphDestroy(graph);
    ITS_CUDA_TRY(e);
    return 0;
}

static int capture(cuda_ctx *c, plan *p, int full, cudaGraphExec_t *exec)
{
    const its_graph *g = c->g;
    ITS_CUDA_TRY(cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal));
    int rc = 0;
    for (int k = 0; full && rc == 0 && k < g->n_inputs; k++)
        if (cudaMemcpyAsync(c->arena + p->bufs[p->in_buf[k]].off, c->pin_in[k], p->in_bytes[k],
                            cudaMemcpyHostToDevice, c->stream) != cudaSuccess)
            rc = ITS_EBACKEND;
    if (rc == 0)
        rc = its__cuda_exec_net(c, p, c->stream);
    for (int k = 0; full && rc == 0 && k < g->n_outputs; k++)
        if (cudaMemcpyAsync(c->pin_out[k], c->arena + p->bufs[p->out_buf[k]].off, p->out_bytes[k],
                            cudaMemcpyDeviceToHost, c->stream) != cudaSuccess)
            rc = ITS_EBACKEND;
    return its__cuda_end_capture(c, rc, exec);
}

int its__cuda_finalize(cuda_ctx *c, char *err, size_t errlen)
{
    const its_graph *g = c->g;
    size_t act = 0;
    for (int i = 0; i < c->n_plans; i++)
        if (c->plans[i].arena > act)
            act = c->plans[i].arena;
    c->act_size = act;
    c->arena_size = act + CONV_WS + CUBLAS_WS;
    if (cudaMalloc((void **)&c->arena, c->arena_size) != cudaSuccess)
        FAIL(ITS_ENOMEM, "cuda: cannot allocate the %zu-byte arena", c->arena_size);
    c->conv_ws = c->arena + act;
    c->blas_ws = c->arena + act + CONV_WS;
    ITS_CUBLAS_TRY(cublasSetWorkspace(c->blas, c->blas_ws, CUBLAS_WS));
    /* poison once: a read of memory no step wrote shows up as NaN in the parity tests */
    ITS_CUDA_TRY(cudaMemset(c->arena, 0xFF, act));
    for (int k = 0; k < g->n_inputs; k++) {
        for (int i = 0; i < c->n_plans; i++)
            if (c->plans[i].in_bytes[k] > c->pin_in_bytes[k])
                c->pin_in_bytes[k] = c->plans[i].in_bytes[k];
        if (cudaHostAlloc(&c->pin_in[k], c->pin_in_bytes[k], cudaHostAllocDefault) != cudaSuccess)
            FAIL(ITS_ENOMEM, "cuda: cannot allocate pinned input staging");
        memset(c->pin_in[k], 0, c->pin_in_bytes[k]);
    }
    for (int k = 0; k < g->n_outputs; k++) {
        for (int i = 0; i < c->n_plans; i++)
            if (c->plans[i].out_bytes[k] > c->pin_out_bytes[k])
                c->pin_out_bytes[k] = c->plans[i].out_bytes[k];
        if (cudaHostAlloc(&c->pin_out[k], c->pin_out_bytes[k], cudaHostAllocDefault) != cudaSuccess)
            FAIL(ITS_ENOMEM, "cuda: cannot allocate pinned output staging");
    }
    double t0 = (double)its_now_ns();
    for (int i = 0; !c->is_share && i < c->n_plans; i++) { /* a shared context has them */
        plan *p = &c->plans[i];
        for (int s = 0; s < p->n_steps; s++)
            if (p->steps[s].kind == ST_CONV) {
                const step *st = &p->steps[s];
                conv_desc *cd = &p->convs[st->conv];
                int rc = 0;
                if (cd->fused > 0) { /* built at planning; pick among its candidates */
                    fused_cache *fc = &c->fcache[cd->fused - 1];
                    if (!fc->tuned) {
                        ITS_CUDNN_TRY(cudnnSetStream(c->dnn, c->stream));
                        rc = its__fconv_tune(c->dnn, &fc->f, ptr_of(c, p, &st->a), st->w, st->bias,
                                             st->b.buf >= 0 ? ptr_of(c, p, &st->b) : NULL,
                                             ptr_of(c, p, &st->out), c->conv_ws, c->stream);
                        fc->tuned = 1;
                    }
                } else {
                    rc = its__cuda_find_algo(c, p, &p->steps[s]);
                }
                if (rc < 0)
                    FAIL(rc, "node '%s' (Conv): no usable cuDNN algorithm (batch %d)",
                         g->nodes[p->steps[s].node].name, p->batch);
            }
    }
    c->load_ms_find += ((double)its_now_ns() - t0) / 1e6;
    ITS_CUDA_TRY(cudaMemset(c->arena, 0xFF, act)); /* tuning wrote into the arena: re-poison */
    for (int i = 0; i < c->n_plans; i++) {
        plan *p = &c->plans[i];
        int rc = capture(c, p, 1, &p->exec_full);
        if (rc == 0)
            rc = capture(c, p, 0, &p->exec_net);
        if (rc < 0)
            FAIL(rc, "cuda: CUDA graph capture failed for batch %d", p->batch);
    }
    ITS_CUDA_TRY(cudaStreamSynchronize(c->stream));
    c->finalized = 1;
    if (!c->is_share)
        its__cuda_plan_cache_close(c);
    its_logi("engine", "cuda",
             "device arena %zu bytes (activations %zu), weights %zu bytes, %d fused cuDNN conv "
             "graphs (%d shapes without one), %d legacy algorithms chosen, in %.0f ms; %d CUDA "
             "graphs captured",
             c->arena_size, c->act_size, c->wbytes, c->n_fused_ok, c->n_fused_fail, c->n_algos,
             c->load_ms_find, 2 * c->n_plans);
    return 0;
}

/* ---- the devtools extension: replays for the benchmark ---- */

int its__cuda_time_net(void *vctx, int batch, int iters, float *ms, int n_ms)
{
    cuda_ctx *c = vctx;
    plan *p = its__cuda_find_plan(c, batch);
    if (!p || !c->finalized || iters < 1 || n_ms < iters)
        return ITS_EINVAL;
    cudaEvent_t ev[2];
    ITS_CUDA_TRY(cudaEventCreate(&ev[0]));
    ITS_CUDA_TRY(cudaEventCreate(&ev[1]));
    for (int i = 0; i < 10; i++)
        ITS_CUDA_TRY(cudaGraphLaunch(p->exec_net, c->stream));
    for (int i = 0; i < iters; i++) {
        ITS_CUDA_TRY(cudaEventRecord(ev[0], c->stream));
        ITS_CUDA_TRY(cudaGraphLaunch(p->exec_net, c->stream));
        ITS_CUDA_TRY(cudaEventRecord(ev[1], c->stream));
        ITS_CUDA_TRY(cudaEventSynchronize(ev[1]));
        ITS_CUDA_TRY(cudaEventElapsedTime(&ms[i], ev[0], ev[1]));
    }
    cudaEventDestroy(ev[0]);
    cudaEventDestroy(ev[1]);
    return 0;
}

int its__cuda_replay_net(void *vctx, int batch)
{
    cuda_ctx *c = vctx;
    plan *p = its__cuda_find_plan(c, batch);
    if (!p || !c->finalized)
        return ITS_EINVAL;
    ITS_CUDA_TRY(cudaGraphLaunch(p->exec_net, c->stream));
    ITS_CUDA_TRY(cudaStreamSynchronize(c->stream));
    return 0;
}

size_t its__cuda_weight_bytes(void *vctx)
{
    return ((cuda_ctx *)vctx)->wbytes;
}

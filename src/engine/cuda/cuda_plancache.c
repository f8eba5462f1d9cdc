/*
 * cuda_plancache.c - the cuda backend's use of the plan cache (src/engine/plancache.h;
 * docs/cuda.md, "Plan cache").
 *
 * Key: the engine's part (model hash, input size, batch sizes) plus the GPU (name, compute
 * capability, UUID), the driver and cuDNN versions, the cache format and the planning
 * switches (ITS_CUDA_TUNE, ITS_CUDA_NO_VIEWS, ITS_CUDA_LEGACY_CONV, ITS_CUDA_DIRECT,
 * ITS_CUDA_NO_FIND). Records:
 *   FUSED  key: the fused convolution's spec (25 int64)
 *          value: ok, engine global index, knob count, graph variant, the knobs (type,
 *          value), then the length and bytes of the execution plan's JSON serialisation (0
 *          where cuDNN does not serialise that engine); ok 0: no engine takes the graph
 *   ALGO   key: a legacy convolution's shape key (12 int32); value: the algorithm (int32)
 * A cached plan is loaded from its JSON where there is one, else rebuilt from its engine
 * configuration; either way no heuristics query and no autotuning runs. One that no longer
 * builds is planned anew (logged once per file, counted as a rejected file) and the file is
 * rewritten at the end of planning, as it is whenever anything had to be planned anew.
 */
#include <stdlib.h>
#include <string.h>

#include "its/alloc.h"
#include "its/error.h"
#include "its/log.h"

#include "cuda_internal.h"

enum { KIND_FUSED = 1, KIND_ALGO = 2 };
#define SPEC_N 25

static void spec_key(const its_fconv_spec *s, int64_t *k)
{
    uint32_t a;
    memcpy(&a, &s->alpha, sizeof a);
    int64_t v[SPEC_N] = {s->n,         s->c,   s->h,       s->w,        s->k,
                         s->r,         s->s,   s->oh,      s->ow,       s->ph,
                         s->pw,        s->sh,  s->sw,      s->dh,       s->dw,
                         s->groups,    s->act, (int64_t)a, s->has_bias, s->has_sum,
                         s->sum_first, s->xcs, s->ycs,     s->scs,      s->max_ws};
    memcpy(k, v, sizeof v);
}

static int env_int(const char *name, int dflt)
{
    const char *v = getenv(name);
    return v ? atoi(v) : dflt;
}

void its__cuda_plan_cache_open(void *vctx, const its_backend_cache *bc)
{
    cuda_ctx *c = vctx;
    struct cudaDeviceProp prop;
    int driver = 0;
    if (cudaGetDeviceProperties(&prop, c->device) != cudaSuccess ||
        cudaDriverGetVersion(&driver) != cudaSuccess) {
        its_logw("engine", "cuda", "plan cache: device properties unavailable; planning anew");
        return;
    }
    char uuid[40] = "GPU-";
    for (int i = 0; i < 16; i++)
        snprintf(uuid + 4 + 2 * i, 3, "%02x", (unsigned char)prop.uuid.bytes[i]);
    char tuning[160];
    snprintf(tuning, sizeof tuning, "tune=%d views=%d legacy=%d direct=%d find=%d",
             env_int("ITS_CUDA_TUNE", 1), getenv("ITS_CUDA_NO_VIEWS") ? 0 : 1,
             getenv("ITS_CUDA_LEGACY_CONV") ? 1 : 0, env_int("ITS_CUDA_DIRECT", 0),
             getenv("ITS_CUDA_NO_FIND") ? 0 : 1);
    its_plancache_key k = {.model_hash = bc->model_hash,
                           .in_w = bc->in_w,
                           .in_h = bc->in_h,
                           .batches = bc->batches,
                           .n_batches = bc->n_batches,
                           .backend = "cuda",
                           .device = prop.name,
                           .uuid = uuid,
                           .cc_major = prop.major,
                           .cc_minor = prop.minor,
                           .driver = driver,
                           .lib_version = (long)cudnnGetVersion(),
                           .format = ITS_PLANCACHE_FORMAT,
                           .tuning = tuning};
    char text[ITS_PLANCACHE_KEY_MAX], path[4096], err[512];
    if (its_plancache_key_text(&k, text, sizeof text) < 0 ||
        its_plancache_path(bc->dir, text, path, sizeof path) < 0) {
        its_logw("engine", "cuda", "plan cache: key or path too long; planning anew");
        return;
    }
    its_plancache *pc = NULL;
    int rc = its_plancache_read(path, text, &pc, err, sizeof err);
    if (rc == ITS_ENOENT) {
        its_logi("engine", "cuda", "plan cache: no file yet (%s); planning anew", path);
    } else if (rc < 0) {
        its_logw("engine", "cuda", "%s; planning anew, the file will be rewritten", err);
        its__engine_count_plans(0, 0, 1, 0);
        c->pc_warned = 1;
        c->pc_dirty = 1;
    } else {
        its_logi("engine", "cuda", "plan cache: %d records from %s", its_plancache_count(pc), path);
    }
    if (!pc)
        pc = its_plancache_new(text);
    size_t pl = strlen(path) + 1;
    c->pc_path = pc ? its_malloc(ITS_MOD_ENGINE, pl) : NULL;
    if (!c->pc_path) {
        its_plancache_free(pc);
        return;
    }
    memcpy(c->pc_path, path, pl);
    c->pcache = pc;
}

/* A cached entry that no longer builds: said once per file. */
static void rejected(cuda_ctx *c, const char *what)
{
    c->pc_dirty = 1;
    if (c->pc_warned)
        return;
    c->pc_warned = 1;
    its__engine_count_plans(0, 0, 1, 0);
    its_logw("engine", "cuda", "plan cache %s: %s; planning it anew, the file will be rewritten",
             c->pc_path, what);
}

int its__cuda_pc_fused(cuda_ctx *c, const its_fconv_spec *spec, its_fconv *f)
{
    if (!c->pcache)
        return -1;
    int64_t key[SPEC_N];
    spec_key(spec, key);
    size_t n = 0;
    const uint8_t *v = its_plancache_find(c->pcache, KIND_FUSED, key, sizeof key, &n);
    int64_t h[4];
    its_fconv_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    if (!v || n < sizeof h) {
        c->pc_misses++;
        return -1;
    }
    memcpy(h, v, sizeof h);
    if (h[0] == 0) {
        c->pc_hits++;
        return 0;
    }
    size_t at = sizeof h;
    int64_t jl = 0;
    if (h[2] < 0 || h[2] > ITS_FCONV_MAX_KNOBS || n < at + (size_t)h[2] * 16 + 8) {
        rejected(c, "a malformed record");
        c->pc_misses++;
        return -1;
    }
    cfg.engine = h[1];
    cfg.n_knobs = (int32_t)h[2];
    cfg.virt_like_y = (int32_t)h[3];
    for (int i = 0; i < cfg.n_knobs; i++, at += 16) {
        memcpy(&cfg.knob_type[i], v + at, 8);
        memcpy(&cfg.knob_value[i], v + at + 8, 8);
    }
    memcpy(&jl, v + at, 8);
    at += 8;
    if (jl < 0 || (size_t)jl != n - at) {
        rejected(c, "a malformed record");
        c->pc_misses++;
        return -1;
    }
    if (jl > 0 && its__fconv_load_json(c->dnn, spec, (const char *)v + at, (size_t)jl, f) == 0) {
        f->cfg = cfg;
        f->cand_cfg[0] = cfg;
        c->pc_hits++;
        return 1;
    }
    if (cfg.engine >= 0 && its__fconv_build_cfg(c->dnn, spec, &cfg, f) == 0) {
        c->pc_hits++;
        return 1;
    }
    rejected(c, "a cached cuDNN configuration no longer builds");
    c->pc_misses++;
    return -1;
}

int its__cuda_pc_algo(cuda_ctx *c, const int *key, cudnnConvolutionFwdAlgo_t *algo)
{
    if (!c->pcache)
        return 0;
    size_t n = 0;
    const void *v = its_plancache_find(c->pcache, KIND_ALGO, key, 12 * sizeof(int), &n);
    int32_t a;
    if (!v || n != sizeof a) {
        c->pc_misses++;
        return 0;
    }
    memcpy(&a, v, sizeof a);
    if (a < 0 || a >= CUDNN_CONVOLUTION_FWD_ALGO_COUNT) {
        rejected(c, "a malformed record");
        c->pc_misses++;
        return 0;
    }
    *algo = (cudnnConvolutionFwdAlgo_t)a;
    c->pc_hits++;
    return 1;
}

/* The record of one fused graph (value bytes in *out, its_malloc'd). */
static int fused_value(const fused_cache *fc, uint8_t **out, size_t *len)
{
    char *json = NULL;
    size_t jl = 0;
    const its_fconv_cfg *cfg = &fc->f.cfg;
    if (fc->ok && its__fconv_json(&fc->f, &json, &jl) < 0)
        jl = 0;
    int nk = fc->ok ? cfg->n_knobs : 0;
    size_t n = 4 * 8 + (size_t)nk * 16 + 8 + jl;
    uint8_t *v = its_malloc(ITS_MOD_ENGINE, n);
    if (!v) {
        its_free(json);
        return ITS_ENOMEM;
    }
    int64_t h[4] = {fc->ok, fc->ok ? cfg->engine : -1, nk, fc->ok ? cfg->virt_like_y : 0};
    memcpy(v, h, sizeof h);
    size_t at = sizeof h;
    for (int i = 0; i < nk; i++, at += 16) {
        memcpy(v + at, &cfg->knob_type[i], 8);
        memcpy(v + at + 8, &cfg->knob_value[i], 8);
    }
    int64_t j = (int64_t)jl;
    memcpy(v + at, &j, 8);
    if (jl)
        memcpy(v + at + 8, json, jl);
    its_free(json);
    *out = v;
    *len = n;
    return 0;
}

void its__cuda_plan_cache_close(cuda_ctx *c)
{
    its__engine_count_plans(c->pc_hits, c->pc_misses, 0, c->pc_searches);
    if (!c->pcache)
        return;
    if (c->pc_dirty || c->pc_misses > 0) {
        /* a fresh file of what this planning used: entries of an older planning go */
        its_plancache *pc = c->pcache;
        its_plancache_clear(pc);
        char err[512];
        int rc = 0, n_json = 0;
        for (int i = 0; rc == 0 && i < c->n_fused; i++) {
            const fused_cache *fc = &c->fcache[i];
            if (fc->ok && fc->f.cfg.engine < 0)
                continue; /* configuration unknown: planned anew next time */
            int64_t key[SPEC_N];
            spec_key(&fc->spec, key);
            uint8_t *v = NULL;
            size_t vl = 0;
            rc = fused_value(fc, &v, &vl);
            if (rc == 0) {
                n_json += vl > 4 * 8 + (size_t)fc->f.cfg.n_knobs * 16 + 8;
                rc = its_plancache_add(pc, KIND_FUSED, key, sizeof key, v, vl);
            }
            its_free(v);
        }
        for (int i = 0; rc == 0 && i < c->n_algos; i++) {
            int32_t a = (int32_t)c->algos[i].algo;
            rc = its_plancache_add(pc, KIND_ALGO, c->algos[i].key, sizeof c->algos[i].key, &a,
                                   sizeof a);
        }
        if (rc == 0)
            rc = its_plancache_write(pc, c->pc_path, err, sizeof err);
        else
            snprintf(err, sizeof err, "%s", its_strerror(rc));
        if (rc < 0)
            its_logw("engine", "cuda", "plan cache: not written: %s", err);
        else
            its_logi("engine", "cuda",
                     "plan cache: %d records (%d with a serialised plan) written to %s",
                     its_plancache_count(pc), n_json, c->pc_path);
    } else {
        its_logi("engine", "cuda", "plan cache: every plan from %s (%llu records used)", c->pc_path,
                 (unsigned long long)c->pc_hits);
    }
    its_plancache_free(c->pcache);
    c->pcache = NULL;
    its_free(c->pc_path);
    c->pc_path = NULL;
}

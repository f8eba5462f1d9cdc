/*
 * engine.c - the public API (its/engine.h): models, engines, backend selection, the loading
 * of backend modules, and the extensions (frames path, host memory) looked up in backends.
 */
#include <ctype.h>
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "its/alloc.h"
#include "its/engine.h"
#include "its/error.h"
#include "its/log.h"

#include "backend.h"
#include "ir.h"
#include "plancache.h"

#define MAX_MODEL_BYTES ((size_t)1 << 30)

static _Atomic uint64_t n_models_loaded, n_models_rejected, n_engines_created, n_engines_failed,
    n_runs, n_runs_failed, n_det_batches, n_det_frames, n_det_failed, n_plan_hits, n_plan_misses,
    n_plan_rejected, n_plan_searches, n_engines_shared;

void its__engine_count_plans(uint64_t hits, uint64_t misses, uint64_t rejected, uint64_t searches)
{
    n_plan_hits += hits;
    n_plan_misses += misses;
    n_plan_rejected += rejected;
    n_plan_searches += searches;
}

void its_engine_get_counters(its_engine_counters *out)
{
    out->models_loaded = n_models_loaded;
    out->models_rejected = n_models_rejected;
    out->engines_created = n_engines_created;
    out->engines_failed = n_engines_failed;
    out->runs = n_runs;
    out->runs_failed = n_runs_failed;
    out->detect_batches = n_det_batches;
    out->detect_frames = n_det_frames;
    out->detect_failed = n_det_failed;
    out->plan_cache_hits = n_plan_hits;
    out->plan_cache_misses = n_plan_misses;
    out->plan_cache_rejected = n_plan_rejected;
    out->plan_searches = n_plan_searches;
    out->engines_shared = n_engines_shared;
}
#define MAX_PLANS 8

struct its_model {
    its_graph g;
    its_tensor_desc *in, *out;
    int broken;    /* a failed its_model_set_input_size left the graph half rewritten */
    char hash[65]; /* hex SHA-256 of the ONNX bytes (and any frozen input values) */
};

struct its_engine {
    const its_model_t *model;
    its_graph g; /* the engine's copy, after backend passes */
    const its_backend_i *b;
    void *ctx;
    int batches[MAX_PLANS], n_batches;
    its_shape *shapes[MAX_PLANS];       /* per prepared batch, per tensor */
    const its_backend_frames_i *frames; /* the backend's frames path, or NULL */
    /* Sharing (its_engine_share): an engine made by sharing points at the engine that owns
     * the graph and the shapes (origin) and only borrows them; the owner lives on, without
     * its backend context, until the last engine sharing it is destroyed. */
    its_engine_t *origin;
    _Atomic int refs; /* the owner: itself plus the engines sharing it */
    its_engine_opts opts;
    char bname[32];
    int det_max;  /* frames path: max_det once set up, else 0 */
    int det_n[2]; /* frames path: frames of the batch behind each ticket */
};

static void fill_desc(const its_graph *g, int t, its_tensor_desc *d, int symbolic)
{
    const its_ir_tensor *T = &g->tensors[t];
    d->name = T->name;
    d->dtype = T->dtype;
    d->rank = T->shape.rank;
    memcpy(d->dims, T->shape.dims, sizeof d->dims);
    if (symbolic && T->batched && d->rank > 0)
        d->dims[0] = -1;
}

/* Turn graph inputs into constants with the given values (before inference and folding). */
static int freeze_inputs(its_graph *g, const its_input_value *vals, int n, char *err, size_t errlen)
{
    for (int v = 0; v < n; v++) {
        int k = 0;
        while (k < g->n_inputs && strcmp(g->tensors[g->inputs[k]].name, vals[v].name) != 0)
            k++;
        if (k == g->n_inputs) {
            return its_seterr(err, errlen, ITS_ENOENT, "no graph input '%s' to freeze",
                              vals[v].name);
        }
        its_ir_tensor *T = &g->tensors[g->inputs[k]];
        int64_t ne = 1;
        for (int d = 0; d < T->shape.rank; d++)
            ne *= T->shape.dims[d] < 0 ? -1 : T->shape.dims[d];
        size_t want = ne < 0 ? 0 : (size_t)ne * its__dtype_size(T->dtype);
        if (ne < 0 || want != vals[v].bytes) {
            return its_seterr(err, errlen, ITS_EINVAL,
                              "frozen input '%s': size does not match its shape", vals[v].name);
        }
        T->data = its_malloc(ITS_MOD_ENGINE, want ? want : 1);
        if (!T->data)
            return ITS_ENOMEM;
        if (want)
            memcpy(T->data, vals[v].data, want);
        T->kind = ITS_TK_CONST;
        memmove(&g->inputs[k], &g->inputs[k + 1], (size_t)(g->n_inputs - k - 1) * sizeof(int));
        g->n_inputs--;
    }
    return 0;
}

int its_model_load_buffer(const void *data, size_t len, its_model_t **out, char *err, size_t errlen)
{
    return its_model_load_buffer_frozen(data, len, NULL, 0, out, err, errlen);
}

int its_model_load_buffer_frozen(const void *data, size_t len, const its_input_value *vals,
                                 int n_vals, its_model_t **out, char *err, size_t errlen)
{
    char local[256];
    if (!err || !errlen) {
        err = local;
        errlen = sizeof local;
    }
    err[0] = 0;
    if (!out)
        return ITS_EINVAL;
    *out = NULL;
    its_model_t *m = its_calloc(ITS_MOD_ENGINE, 1, sizeof *m);
    if (!m) {
        return its_seterr(err, errlen, ITS_ENOMEM, "out of memory");
    }
    int rc = its__onnx_load(data, len, &m->g, err, errlen);
    if (rc == 0 && n_vals > 0)
        rc = freeze_inputs(&m->g, vals, n_vals, err, errlen);
    its_plancache_sha256_hex(data, len, m->hash);
    for (int v = 0; rc == 0 && v < n_vals; v++) { /* frozen inputs change the graph */
        char text[64 + 2 * 65 + 2], h[65];
        its_plancache_sha256_hex(vals[v].name, strlen(vals[v].name), h);
        int n = snprintf(text, sizeof text, "%s %s ", m->hash, h);
        its_plancache_sha256_hex(vals[v].data, vals[v].bytes, text + n);
        its_plancache_sha256_hex(text, strlen(text), m->hash);
    }
    if (rc == 0)
        rc = its__graph_infer(&m->g, err, errlen);
    if (rc == 0)
        rc = its__graph_optimize(&m->g, err, errlen);
    if (rc == 0) {
        int symbolic = 0;
        for (int k = 0; k < m->g.n_inputs; k++)
            if (m->g.tensors[m->g.inputs[k]].shape.rank > 0 &&
                m->g.tensors[m->g.inputs[k]].shape.dims[0] < 0)
                symbolic = 1;
        m->in = its_calloc(ITS_MOD_ENGINE, (size_t)m->g.n_inputs + 1, sizeof *m->in);
        m->out = its_calloc(ITS_MOD_ENGINE, (size_t)m->g.n_outputs + 1, sizeof *m->out);
        if (!m->in || !m->out) {
            rc = ITS_ENOMEM;
        } else {
            for (int k = 0; k < m->g.n_inputs; k++)
                fill_desc(&m->g, m->g.inputs[k], &m->in[k], symbolic);
            for (int k = 0; k < m->g.n_outputs; k++)
                fill_desc(&m->g, m->g.outputs[k], &m->out[k], symbolic);
        }
    }
    if (rc < 0) {
        if (rc == ITS_ENOMEM && !err[0])
            its_seterr(err, errlen, rc, "out of memory");
        its_loge("engine", NULL, "model rejected: %s", err);
        n_models_rejected++;
        its_model_free(m);
        return rc;
    }
    its_logi("engine", NULL, "model loaded: opset %lld, %d nodes after passes, %d tensors",
             (long long)m->g.opset, m->g.n_nodes, m->g.n_tensors);
    n_models_loaded++;
    *out = m;
    return 0;
}

int its_model_set_input_size(its_model_t *m, int width, int height, char *err, size_t errlen)
{
    char local[256];
    if (!err || !errlen) {
        err = local;
        errlen = sizeof local;
    }
    err[0] = 0;
    if (!m || m->broken) {
        return its_seterr(err, errlen, ITS_EINVAL, "%s",
                          m ? "model unusable after a failed resize" : "no model");
    }
    if (m->g.n_inputs != 1 || m->g.tensors[m->g.inputs[0]].shape.rank != 4) {
        return its_seterr(err, errlen, ITS_EUNSUPPORTED, /* nothing touched */
                          "input size: the model needs one [N, C, H, W] input");
    }
    int rc = its__graph_set_input_hw(&m->g, height, width, err, errlen);
    if (rc < 0) {
        /* the graph may be half rewritten: refuse engines from it from now on */
        if (rc != ITS_EINVAL)
            m->broken = 1;
        its_loge("engine", NULL, "input size %dx%d refused: %s", width, height, err);
        return rc;
    }
    int symbolic = m->in[0].rank > 0 && m->in[0].dims[0] < 0;
    for (int k = 0; k < m->g.n_inputs; k++)
        fill_desc(&m->g, m->g.inputs[k], &m->in[k], symbolic);
    for (int k = 0; k < m->g.n_outputs; k++)
        fill_desc(&m->g, m->g.outputs[k], &m->out[k], symbolic);
    its_logi("engine", NULL, "model input set to %dx%d", width, height);
    return 0;
}

int its_model_parse_size(const char *s, int *width, int *height)
{
    int w = 0, h = 0, used = 0;
    if (!s || sscanf(s, "%5dx%5d%n", &w, &h, &used) != 2 || s[used] || w < 1 || h < 1 || w > 8192 ||
        h > 8192)
        return ITS_EINVAL;
    *width = w;
    *height = h;
    return 0;
}

int its_model_load(const char *path, its_model_t **out, char *err, size_t errlen)
{
    if (!path || !out) {
        return its_seterr(err, errlen, ITS_EINVAL, "no model path");
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        return its_seterr(err, errlen, ITS_ENOENT, "cannot open model '%s'", path);
    }
    size_t cap = 1 << 20, len = 0;
    uint8_t *buf = its_malloc(ITS_MOD_ENGINE, cap);
    int rc = 0;
    while (buf) {
        if (len == cap) {
            if (cap >= MAX_MODEL_BYTES) {
                rc = its_seterr(err, errlen, ITS_EMODEL, "model '%s' is larger than 1 GiB", path);
                break;
            }
            uint8_t *nb = its_realloc(ITS_MOD_ENGINE, buf, cap * 2);
            if (!nb)
                break;
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + len, 1, cap - len, f);
        len += r;
        if (r == 0) {
            if (ferror(f)) {
                rc = its_seterr(err, errlen, ITS_EIO, "read error on '%s'", path);
            }
            break;
        }
    }
    fclose(f);
    if (!buf) {
        return its_seterr(err, errlen, ITS_ENOMEM, "out of memory");
    }
    if (rc == 0)
        rc = its_model_load_buffer(buf, len, out, err, errlen);
    its_free(buf);
    return rc;
}

void its_model_free(its_model_t *m)
{
    if (!m)
        return;
    its__graph_free(&m->g);
    its_free(m->in);
    its_free(m->out);
    its_free(m);
}

int its_model_n_inputs(const its_model_t *m)
{
    return m->g.n_inputs;
}

int its_model_n_outputs(const its_model_t *m)
{
    return m->g.n_outputs;
}

const its_tensor_desc *its_model_input(const its_model_t *m, int i)
{
    return i >= 0 && i < m->g.n_inputs ? &m->in[i] : NULL;
}

const its_tensor_desc *its_model_output(const its_model_t *m, int i)
{
    return i >= 0 && i < m->g.n_outputs ? &m->out[i] : NULL;
}

const char *its_model_meta(const its_model_t *m, const char *key)
{
    for (int i = 0; i < m->g.n_meta; i++)
        if (strcmp(m->g.meta[i].key, key) == 0)
            return m->g.meta[i].value;
    return NULL;
}

int its_model_n_nodes(const its_model_t *m)
{
    return m->g.n_nodes;
}

/* ---- Backend modules ------------------------------------------------------------------------
 *
 * A backend built as a module (its_<name>.so) is opened on the first request for it, never
 * before, and never closed (its state, such as pinned memory blocks, lives as long as the
 * process). The file is looked for, in order:
 *   1. $ITS_<NAME>_MODULE (e.g. ITS_CUDA_MODULE): that file, and nothing else;
 *   2. beside the executable (/proc/self/exe's folder);
 *   3. ../lib/its-analytics/ from the executable's folder (an installed tree);
 *   4. the build tree's lib/ (its__backend_module_dir), for binaries run where they were built.
 * A module that is missing or fails to load (dlerror's text: a missing cuDNN, an undefined
 * symbol) makes the backend unavailable with that reason, logged once and given to
 * its_engine_create's err; the outcome is remembered. */

#define MAX_MODULES 8

typedef struct module_slot {
    int tried;
    const its_backend_i *iface;
    char why[512];
} module_slot;

static module_slot modules[MAX_MODULES];
static pthread_mutex_t modules_mu = PTHREAD_MUTEX_INITIALIZER;

/* snprintf into why; a message cut at len is still a message. */
static void say(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void say(char *why, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
}

static const its_backend_i *open_module(const char *path, const char *name, char *why, size_t len)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *de = dlerror();
        say(why, len, "backend '%s': cannot load %s: %s", name, path, de ? de : "?");
        return NULL;
    }
    void *sym = dlsym(h, ITS_BACKEND_MODULE_ENTRY);
    its_backend_module_fn entry = NULL;
    if (sym)
        memcpy(&entry, &sym, sizeof entry); /* object to function pointer, as POSIX allows */
    const its_backend_i *b = entry ? entry() : NULL;
    if (!b || !b->name || strcmp(b->name, name) != 0) {
        say(why, len, "backend '%s': %s is not its module (no %s, or another backend)", name, path,
            ITS_BACKEND_MODULE_ENTRY);
        dlclose(h);
        return NULL;
    }
    its_logi("engine", name, "backend module %s loaded", path);
    return b;
}

/* dir/rel/file into path if it fits and names an existing file. */
static int candidate(char *path, size_t len, const char *dir, const char *rel, const char *file)
{
    int n = snprintf(path, len, "%s%s/%s", dir, rel, file);
    return n > 0 && (size_t)n < len && access(path, F_OK) == 0;
}

static const its_backend_i *load_module(const char *name, char *why, size_t len)
{
    char file[64], env[64], path[PATH_MAX], dir[PATH_MAX];
    say(file, sizeof file, "its_%s.so", name);
    say(env, sizeof env, "ITS_%s_MODULE", name);
    for (char *c = env + 4; *c; c++)
        *c = (char)toupper((unsigned char)*c);
    const char *over = getenv(env);
    if (over && *over)
        return open_module(over, name, why, len);
    ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
    dir[n > 0 ? n : 0] = 0;
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    if (n > 0 && (candidate(path, sizeof path, dir, "", file) ||
                  candidate(path, sizeof path, dir, "/../lib/its-analytics", file)))
        return open_module(path, name, why, len);
    if (candidate(path, sizeof path, its__backend_module_dir, "", file))
        return open_module(path, name, why, len);
    say(why, len,
        "backend '%s': module %s not found beside the executable (%s), in "
        "../lib/its-analytics from there, or in %s; set %s to its path",
        name, file, n > 0 ? dir : "?", its__backend_module_dir, env);
    return NULL;
}

const its_backend_i *its__backend_find(const char *name, char *err, size_t errlen)
{
    for (int i = 0; its__backends[i]; i++)
        if (strcmp(its__backends[i]->iface->name, name) == 0)
            return its__backends[i]->iface;
    for (int i = 0; its__backend_modules[i] && i < MAX_MODULES; i++) {
        if (strcmp(its__backend_modules[i], name) != 0)
            continue;
        module_slot *m = &modules[i];
        pthread_mutex_lock(&modules_mu);
        if (!m->tried) {
            m->tried = 1;
            m->iface = load_module(name, m->why, sizeof m->why);
            if (!m->iface)
                its_logw("engine", name, "%s", m->why);
        }
        pthread_mutex_unlock(&modules_mu);
        if (!m->iface && err && errlen)
            snprintf(err, errlen, "%s", m->why);
        return m->iface;
    }
    if (err && errlen)
        snprintf(err, errlen, "no backend '%s' in this build", name);
    return NULL;
}

int its_engine_backend_available(const char *backend)
{
    const its_backend_i *b = its__backend_find(backend ? backend : "cpu", NULL, 0);
    return b && b->available();
}

/* The extension table `name` of backend b, or NULL (backend.h). */
static const void *backend_ext(const its_backend_i *b, const char *name)
{
    return b->get_proc ? b->get_proc(name) : NULL;
}

/* The batch sizes an engine prepares: 1, 2, 4, ... below max_batch, then max_batch. */
static int batch_list(int max_batch, int *b)
{
    int n = 0;
    for (int bs = 1;; bs *= 2) {
        int B = bs < max_batch ? bs : max_batch;
        if (n == MAX_PLANS - 1 && B != max_batch)
            B = max_batch;
        b[n++] = B;
        if (B == max_batch)
            return n;
    }
}

/* Give the backend the engine's part of the plan cache key (plancache.h). */
static void plan_cache_setup(its_engine_t *e, const its_engine_opts *o, int max_batch)
{
    const char *dir = its_plancache_dir(o->plan_cache_dir);
    if (!dir || !e->b->plan_cache)
        return;
    int b[MAX_PLANS];
    int n = batch_list(max_batch, b);
    int w = 0, h = 0;
    if (e->g.n_inputs > 0 && e->g.tensors[e->g.inputs[0]].shape.rank == 4) {
        h = (int)e->g.tensors[e->g.inputs[0]].shape.dims[2];
        w = (int)e->g.tensors[e->g.inputs[0]].shape.dims[3];
    }
    its_backend_cache bc = {.dir = dir,
                            .model_hash = e->model->hash,
                            .in_w = w,
                            .in_h = h,
                            .batches = b,
                            .n_batches = n};
    e->b->plan_cache(e->ctx, &bc);
}

int its_engine_create(const its_model_t *m, const its_engine_opts *opts, its_engine_t **out,
                      char *err, size_t errlen)
{
    char local[256];
    if (!err || !errlen) {
        err = local;
        errlen = sizeof local;
    }
    err[0] = 0;
    if (!m || !out)
        return ITS_EINVAL;
    *out = NULL;
    if (m->broken) {
        return its_seterr(err, errlen, ITS_EINVAL, "model unusable after a failed input resize");
    }
    its_engine_opts o = {0};
    if (opts)
        o = *opts;
    const char *bname = o.backend ? o.backend : "cpu";
    int max_batch = o.max_batch > 0 ? o.max_batch : 1;
    if (max_batch > 1024) {
        return its_seterr(err, errlen, ITS_EINVAL, "max_batch above 1024");
    }
    const its_backend_i *b = its__backend_find(bname, err, errlen);
    if (!b)
        return ITS_ENODEV; /* err says why */
    if (!b->available()) {
        return its_seterr(err, errlen, ITS_ENODEV,
                          "backend '%s' is not available here (no usable device)", bname);
    }
    its_engine_t *e = its_calloc(ITS_MOD_ENGINE, 1, sizeof *e);
    if (!e)
        return ITS_ENOMEM;
    e->model = m;
    e->b = b;
    e->refs = 1;
    snprintf(e->bname, sizeof e->bname, "%s", bname);
    e->opts = o;
    e->opts.backend = e->bname;
    e->opts.plan_cache_dir = NULL; /* not kept: only planning reads it */
    int rc = its__graph_clone(&m->g, &e->g);
    if (rc < 0) {
        its_free(e);
        return its_seterr(err, errlen, rc, "out of memory");
    }
    rc = b->init(&o, &e->ctx, err, errlen);
    e->frames = backend_ext(b, ITS_BACKEND_EXT_FRAMES);
    if (rc == 0 && b->optimize)
        rc = b->optimize(e->ctx, &e->g, err, errlen);
    for (int i = 0; rc == 0 && i < e->g.n_nodes; i++) {
        if (!b->supports_op(e->ctx, &e->g, i)) {
            snprintf(err, errlen, "node '%s' (%s): not supported by the %s backend",
                     e->g.nodes[i].name, its__op_name(e->g.nodes[i].op), b->name);
            rc = ITS_EUNSUPPORTED;
        }
    }
    int batched = 0;
    for (int k = 0; k < e->g.n_inputs; k++)
        batched |= e->g.tensors[e->g.inputs[k]].batched;
    if (!batched)
        max_batch = 1;
    if (rc == 0)
        plan_cache_setup(e, &o, max_batch);
    int sizes[MAX_PLANS];
    int n_sizes = batch_list(max_batch, sizes);
    for (int k = 0; rc == 0 && k < n_sizes; k++) {
        int B = sizes[k];
        e->shapes[e->n_batches] =
            its_malloc(ITS_MOD_ENGINE, (size_t)(e->g.n_tensors + 1) * sizeof(its_shape));
        if (!e->shapes[e->n_batches]) {
            rc = ITS_ENOMEM;
            break;
        }
        e->batches[e->n_batches] = B;
        its_shape *sh = e->shapes[e->n_batches++];
        rc = its__infer_shapes(&e->g, B, sh, err, errlen);
        if (rc == 0)
            rc = b->prepare(e->ctx, &e->g, B, sh, err, errlen);
    }
    if (rc < 0) {
        if (rc == ITS_ENOMEM && !err[0])
            its_seterr(err, errlen, rc, "out of memory");
        its_loge("engine", bname, "engine creation failed: %s", err);
        n_engines_failed++;
        its_engine_destroy(e);
        return rc;
    }
    its_logi("engine", bname, "engine ready: %d nodes, batch sizes up to %d, arena %zu bytes",
             e->g.n_nodes, max_batch, b->arena_bytes(e->ctx));
    n_engines_created++;
    *out = e;
    return 0;
}

int its_engine_share(its_engine_t *base, its_engine_t **out, char *err, size_t errlen)
{
    char local[256];
    if (!err || !errlen) {
        err = local;
        errlen = sizeof local;
    }
    err[0] = 0;
    if (!base || !out || !base->ctx)
        return ITS_EINVAL;
    *out = NULL;
    if (!base->b->share) /* nothing to share (cpu): an engine of its own, as before */
        return its_engine_create(base->model, &base->opts, out, err, errlen);
    its_engine_t *owner = base->origin ? base->origin : base;
    its_engine_t *e = its_calloc(ITS_MOD_ENGINE, 1, sizeof *e);
    if (!e)
        return its_seterr(err, errlen, ITS_ENOMEM, "out of memory");
    e->model = owner->model;
    e->g = owner->g; /* borrowed: only the owner frees it */
    e->b = owner->b;
    e->n_batches = owner->n_batches;
    e->frames = owner->frames;
    e->origin = owner;
    e->opts = owner->opts;
    memcpy(e->bname, owner->bname, sizeof e->bname);
    e->opts.backend = e->bname;
    memcpy(e->batches, owner->batches, sizeof e->batches);
    memcpy(e->shapes, owner->shapes, sizeof e->shapes);
    int rc = base->b->share(base->ctx, &e->ctx, err, errlen);
    if (rc < 0) {
        if (rc == ITS_ENOMEM && !err[0])
            its_seterr(err, errlen, rc, "out of memory");
        its_loge("engine", e->bname, "shared engine failed: %s", err);
        n_engines_failed++;
        its_free(e);
        return rc;
    }
    owner->refs++;
    n_engines_shared++;
    its_logi("engine", e->bname, "engine ready, sharing weights and plans: arena %zu bytes",
             e->b->arena_bytes(e->ctx));
    *out = e;
    return 0;
}

static void release(its_engine_t *owner)
{
    if (--owner->refs > 0)
        return;
    for (int i = 0; i < owner->n_batches; i++)
        its_free(owner->shapes[i]);
    its__graph_free(&owner->g);
    its_free(owner);
}

void its_engine_destroy(its_engine_t *e)
{
    if (!e)
        return;
    if (e->ctx)
        e->b->free(e->ctx);
    e->ctx = NULL;
    if (e->origin) {
        its_engine_t *owner = e->origin;
        its_free(e);
        release(owner);
    } else {
        release(e);
    }
}

static int pick_plan(const its_engine_t *e, int n)
{
    for (int i = 0; i < e->n_batches; i++)
        if (e->batches[i] >= n)
            return i;
    return -1;
}

int its_engine_run_io(its_engine_t *e, int n, const void *const *inputs, void *const *outputs)
{
    if (!e || !inputs || !outputs || n < 1)
        return ITS_EINVAL;
    int p = pick_plan(e, n);
    if (p < 0)
        return ITS_ERANGE;
    int rc = e->b->run(e->ctx, e->batches[p], n, inputs, outputs);
    if (rc == 0)
        rc = e->b->sync(e->ctx);
    n_runs++;
    if (rc < 0) {
        n_runs_failed++;
        its_loge("engine", e->b->name, "run of batch %d failed: %s", n, its_strerror(rc));
    }
    return rc;
}

int its_engine_run(its_engine_t *e, int n, const float *input, float *const *outputs)
{
    if (!e || !input || !outputs)
        return ITS_EINVAL;
    if (e->g.n_inputs != 1 || e->g.tensors[e->g.inputs[0]].dtype != ITS_DT_FLOAT32)
        return ITS_EUNSUPPORTED;
    for (int k = 0; k < e->g.n_outputs; k++)
        if (e->g.tensors[e->g.outputs[k]].dtype != ITS_DT_FLOAT32)
            return ITS_EUNSUPPORTED;
    const void *in[1] = {input};
    return its_engine_run_io(e, n, in, (void *const *)outputs);
}

int its_engine_max_batch(const its_engine_t *e)
{
    return e->batches[e->n_batches - 1];
}

int its_engine_batch_sizes(const its_engine_t *e, int *sizes, int cap)
{
    if (!e || cap < 0 || (cap > 0 && !sizes))
        return ITS_EINVAL;
    for (int i = 0; i < e->n_batches && i < cap; i++)
        sizes[i] = e->batches[i];
    return e->n_batches;
}

int its_engine_batches_padded(const its_engine_t *e)
{
    return e && e->b->padded_batches;
}

int its_engine_output_shape(const its_engine_t *e, int i, int n, its_tensor_desc *out)
{
    if (!e || !out || i < 0 || i >= e->g.n_outputs || n < 1)
        return ITS_EINVAL;
    int p = pick_plan(e, n);
    if (p < 0)
        return ITS_ERANGE;
    int t = e->g.outputs[i];
    const its_ir_tensor *T = &e->g.tensors[t];
    out->name = T->name;
    out->dtype = T->dtype;
    out->rank = e->shapes[p][t].rank;
    memcpy(out->dims, e->shapes[p][t].dims, sizeof out->dims);
    if (T->batched && out->rank > 0 && e->batches[p] > 0)
        out->dims[0] = out->dims[0] / e->batches[p] * n;
    return 0;
}

size_t its_engine_arena_bytes(const its_engine_t *e)
{
    return e->b->arena_bytes(e->ctx);
}

const char *its_engine_backend_name(const its_engine_t *e)
{
    return e->b->name;
}

/* Asynchronous runs: the backend's run without its sync (see engine.h). */
int its_engine_submit(its_engine_t *e, int n, const void *const *inputs, void *const *outputs)
{
    if (!e || !inputs || !outputs || n < 1)
        return ITS_EINVAL;
    int p = pick_plan(e, n);
    if (p < 0)
        return ITS_ERANGE;
    return e->b->run(e->ctx, e->batches[p], n, inputs, outputs);
}

int its_engine_wait(its_engine_t *e)
{
    if (!e)
        return ITS_EINVAL;
    return e->b->sync(e->ctx);
}

int its_engine_describe(const its_engine_t *e, char *buf, size_t len)
{
    if (!e || !buf || !len)
        return ITS_EINVAL;
    int counts[ITS_OP_COUNT] = {0}, fused_act = 0, fused_sum = 0, fused_fq = 0, int8 = 0;
    for (int i = 0; i < e->g.n_nodes; i++) {
        const its_ir_node *n = &e->g.nodes[i];
        counts[n->op]++;
        fused_act += n->act != ITS_ACT_NONE;
        fused_sum += n->sum >= 0;
        fused_fq += n->fq_on[0] + n->fq_on[1];
        int8 += n->q_src;
    }
    size_t off = 0;
    int w = snprintf(buf, len,
                     "backend %s, %d nodes (conv+act %d, conv+sum %d, conv+qdq %d, int8 conv %d):",
                     e->b->name, e->g.n_nodes, fused_act, fused_sum, fused_fq, int8);
    off = w > 0 ? (size_t)w : 0;
    for (int op = 1; op < ITS_OP_COUNT && off < len; op++) {
        if (!counts[op])
            continue;
        w = snprintf(buf + off, len - off, " %s %d", its__op_name((its_op)op), counts[op]);
        off += w > 0 ? (size_t)w : 0;
    }
    return 0;
}

/* ---- the frames path (its_engine_detect_*) ------------------------------------------------ */

/* The frames path decodes a YOLOv8/YOLO11 head only: one float32 input [N, 3, H, W] (H, W
 * multiples of 32) and one float32 output [N, 4 + C, A], A the anchors of strides 8/16/32.
 * YOLOv5/YOLOX ([N, A, 5 + C]), NanoDet (several outputs) and end-to-end exports ([N, K, 6])
 * do not fit and are refused. */
static int check_yolov8_head(const its_engine_t *e, char *err, size_t errlen)
{
    const its_graph *g = &e->g;
    if (g->n_inputs != 1 || g->n_outputs != 1) {
        snprintf(err, errlen,
                 "frames path: %d inputs and %d outputs; a YOLOv8/YOLO11 detector has "
                 "one of each",
                 g->n_inputs, g->n_outputs);
        return ITS_EUNSUPPORTED;
    }
    const its_shape *sh = e->shapes[e->n_batches - 1];
    const its_shape *is = &sh[g->inputs[0]], *os = &sh[g->outputs[0]];
    if (g->tensors[g->inputs[0]].dtype != ITS_DT_FLOAT32 ||
        g->tensors[g->outputs[0]].dtype != ITS_DT_FLOAT32 || is->rank != 4 || is->dims[1] != 3 ||
        is->dims[2] < 32 || is->dims[3] < 32 || is->dims[2] % 32 || is->dims[3] % 32) {
        snprintf(err, errlen,
                 "frames path: the input is not float32 [N, 3, H, W] with H and W "
                 "multiples of 32");
        return ITS_EUNSUPPORTED;
    }
    int64_t h = is->dims[2], w = is->dims[3];
    int64_t anchors = (h / 8) * (w / 8) + (h / 16) * (w / 16) + (h / 32) * (w / 32);
    if (os->rank != 3 || os->dims[1] < 5 || os->dims[2] != anchors) {
        snprintf(err, errlen,
                 "frames path: the output is not a YOLOv8/YOLO11 head [N, 4 + C, %lld]",
                 (long long)anchors);
        return ITS_EUNSUPPORTED;
    }
    return 0;
}

int its_engine_detect_setup(its_engine_t *e, const its_engine_detect_opts *opts, char *err,
                            size_t errlen)
{
    char local[256];
    if (!err || !errlen) {
        err = local;
        errlen = sizeof local;
    }
    err[0] = 0;
    if (!e || !opts) {
        snprintf(err, errlen, "frames path: no engine or options");
        return ITS_EINVAL;
    }
    if (e->det_max) {
        snprintf(err, errlen, "frames path: already set up");
        return ITS_EINVAL;
    }
    its_engine_detect_opts o = *opts;
    if (o.conf == 0)
        o.conf = (float)ITS_DET_CONF_DEFAULT;
    if (o.iou == 0)
        o.iou = (float)ITS_DET_IOU_DEFAULT;
    if (!o.max_det)
        o.max_det = 300;
    if (!o.max_cand)
        o.max_cand = 1024;
    if (!o.max_width)
        o.max_width = 1920;
    if (!o.max_height)
        o.max_height = 1080;
    if (!(o.conf > 0 && o.conf <= 1) || !(o.iou > 0 && o.iou <= 1) || o.max_det < 1 ||
        o.max_det > 1000 || o.max_cand < 1 || o.max_cand > 1024 || o.max_width < 1 ||
        o.max_height < 1 || o.max_width > 16384 || o.max_height > 16384) {
        snprintf(err, errlen,
                 "frames path: options out of range (conf and iou in (0, 1], max_det "
                 "1..1000, max_cand 1..1024, frames up to 16384 x 16384)");
        return ITS_EINVAL;
    }
    /* the model first, so the reason given is the model's where both would refuse */
    int rc = check_yolov8_head(e, err, errlen);
    if (rc == 0 && !e->frames) {
        snprintf(err, errlen, "frames path: the %s backend has none (pre-process on the host)",
                 e->b->name);
        rc = ITS_EUNSUPPORTED;
    }
    if (rc == 0)
        rc = e->frames->setup(e->ctx, &o, err, errlen);
    if (rc < 0) {
        if (!err[0])
            snprintf(err, errlen, "frames path: setup failed: %s", its_strerror(rc));
        if (rc == ITS_EUNSUPPORTED)
            its_logi("engine", e->b->name, "%s", err);
        else
            its_logw("engine", e->b->name, "%s", err);
        return rc;
    }
    e->det_max = o.max_det;
    its_logi("engine", e->b->name,
             "frames path ready: conf %.2f, iou %.2f, max_det %d, frames up to %dx%d", o.conf,
             o.iou, o.max_det, o.max_width, o.max_height);
    return 0;
}

int its_engine_detect_submit(its_engine_t *e, int n, const its_engine_frame *frames)
{
    if (!e || !frames || n < 1)
        return ITS_EINVAL;
    if (!e->det_max)
        return ITS_EINVAL; /* not set up */
    int p = pick_plan(e, n);
    if (p < 0) {
        n_det_failed++;
        return ITS_ERANGE;
    }
    int t = e->frames->submit(e->ctx, e->batches[p], n, frames);
    if (t < 0 || t > 1) {
        n_det_failed++;
        return t < 0 ? t : ITS_EBACKEND;
    }
    e->det_n[t] = n;
    n_det_batches++;
    n_det_frames += (uint64_t)n;
    return t;
}

int its_engine_detect_wait(its_engine_t *e, int ticket, its_engine_det_list *lists, its_det *dets)
{
    if (!e || !lists || !dets || !e->det_max || ticket < 0 || ticket > 1 || !e->det_n[ticket])
        return ITS_EINVAL;
    e->det_n[ticket] = 0;
    int rc = e->frames->wait(e->ctx, ticket, lists, dets);
    if (rc < 0) {
        uint64_t k = ++n_det_failed; /* logged at the 1st, 2nd, 4th, 8th... failure */
        if ((k & (k - 1)) == 0)
            its_loge("engine", e->b->name, "frames path: batch failed: %s (%llu failures)",
                     its_strerror(rc), (unsigned long long)k);
    }
    return rc;
}

int its_engine_detect_poll(its_engine_t *e, int ticket)
{
    if (!e || !e->det_max || ticket < 0 || ticket > 1 || !e->det_n[ticket])
        return ITS_EINVAL;
    return e->frames->poll ? e->frames->poll(e->ctx, ticket) : 1;
}

int its_engine_detect_max_det(const its_engine_t *e)
{
    return e ? e->det_max : 0;
}

void *its_engine_host_alloc(const char *backend, size_t bytes)
{
    const its_backend_i *b = its__backend_find(backend ? backend : "cpu", NULL, 0);
    const its_backend_host_mem_i *hm = b ? backend_ext(b, ITS_BACKEND_EXT_HOST_MEM) : NULL;
    if (!hm || !bytes || !b->available())
        return NULL;
    return hm->alloc(bytes);
}

void its_engine_host_free(const char *backend, void *p)
{
    if (!p)
        return;
    const its_backend_i *b = its__backend_find(backend ? backend : "cpu", NULL, 0);
    const its_backend_host_mem_i *hm = b ? backend_ext(b, ITS_BACKEND_EXT_HOST_MEM) : NULL;
    if (hm)
        hm->free(p);
}

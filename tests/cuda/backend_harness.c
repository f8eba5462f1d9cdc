/* backend_harness.c - see backend_harness.h. */
#include "backend_harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "its/alloc.h"
#include "its/error.h"

static int read_all(const char *path, void **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return ITS_ENOENT;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *data = its_malloc(ITS_MOD_TEST, n > 0 ? (size_t)n : 1);
    if (!*data) {
        fclose(f);
        return ITS_ENOMEM;
    }
    *len = fread(*data, 1, (size_t)n, f);
    fclose(f);
    return *len == (size_t)n ? 0 : ITS_EIO;
}

int its_bh_load(its_bh *h, const char *path, const char *backend, int max_batch, int probe,
                char *err, size_t errlen)
{
    memset(h, 0, sizeof *h);
    its_graph model;
    its__graph_init(&model);
    void *data = NULL;
    size_t len = 0;
    int rc = read_all(path, &data, &len);
    if (rc < 0) {
        snprintf(err, errlen, "%s: cannot read", path);
        return rc;
    }
    rc = its__onnx_load(data, len, &model, err, errlen);
    its_free(data);
    if (rc == 0)
        rc = its__graph_infer(&model, err, errlen);
    if (rc == 0)
        rc = its__graph_optimize(&model, err, errlen);
    /* ITS_BH_INPUT_SIZE=WxH: run at that input size (its_model_set_input_size's pass) */
    const char *isz = getenv("ITS_BH_INPUT_SIZE");
    int iw = 0, ih = 0;
    if (rc == 0 && isz && *isz) {
        if (sscanf(isz, "%dx%d", &iw, &ih) != 2) {
            snprintf(err, errlen, "ITS_BH_INPUT_SIZE '%s' is not WxH", isz);
            rc = ITS_EINVAL;
        } else {
            rc = its__graph_set_input_hw(&model, ih, iw, err, errlen);
        }
    }
    if (rc == 0 && probe) {
        for (int t = 0; t < model.n_tensors; t++) {
            its_ir_tensor *T = &model.tensors[t];
            if (T->kind != ITS_TK_ACT || T->dtype != ITS_DT_FLOAT32 || (T->flags & ITS_TF_OUTPUT))
                continue;
            int *o = its_realloc(ITS_MOD_ENGINE, model.outputs,
                                 (size_t)(model.n_outputs + 1) * sizeof(int));
            if (!o) {
                rc = ITS_ENOMEM;
                break;
            }
            model.outputs = o;
            model.outputs[model.n_outputs++] = t;
            T->flags |= ITS_TF_OUTPUT;
        }
        if (rc == 0)
            rc = its__graph_toposort(&model, err, errlen);
    }
    if (rc == 0)
        rc = its__graph_clone(&model, &h->g);
    /* the clone borrows the weights: keep them by moving ownership to the clone */
    for (int t = 0; rc == 0 && t < model.n_tensors; t++) {
        h->g.tensors[t].flags &= ~ITS_TF_BORROWED;
        model.tensors[t].data = NULL;
    }
    its__graph_free(&model);
    if (rc < 0)
        return rc;
    h->b = its__backend_find(backend, err, errlen); /* loads the module of "cuda" */
    if (!h->b)
        return ITS_ENODEV;
    if (!h->b->available()) {
        snprintf(err, errlen, "backend %s not available", backend);
        return ITS_ENODEV;
    }
    its_engine_opts o = {.backend = backend, .threads = 0, .max_batch = max_batch};
    if ((rc = h->b->init(&o, &h->ctx, err, errlen)) < 0)
        return rc;
    if (h->b->optimize && (rc = h->b->optimize(h->ctx, &h->g, err, errlen)) < 0)
        return rc;
    for (int i = 0; i < h->g.n_nodes; i++)
        if (!h->b->supports_op(h->ctx, &h->g, i)) {
            snprintf(err, errlen, "node '%s' (%s) unsupported by %s", h->g.nodes[i].name,
                     its__op_name(h->g.nodes[i].op), backend);
            return ITS_EUNSUPPORTED;
        }
    for (int bs = 1;; bs *= 2) {
        int B = bs < max_batch ? bs : max_batch;
        if (h->n_batches == ITS_BH_MAX_PLANS)
            return ITS_ERANGE;
        its_shape *sh = its_malloc(ITS_MOD_TEST, (size_t)(h->g.n_tensors + 1) * sizeof *sh);
        if (!sh)
            return ITS_ENOMEM;
        h->shapes[h->n_batches] = sh;
        h->batches[h->n_batches++] = B;
        if ((rc = its__infer_shapes(&h->g, B, sh, err, errlen)) < 0)
            return rc;
        if ((rc = h->b->prepare(h->ctx, &h->g, B, sh, err, errlen)) < 0)
            return rc;
        if (B == max_batch)
            break;
    }
    return 0;
}

const its_shape *its_bh_shapes(const its_bh *h, int batch)
{
    for (int i = 0; i < h->n_batches; i++)
        if (h->batches[i] == batch)
            return h->shapes[i];
    return NULL;
}

int its_bh_run(its_bh *h, int batch, int n, const void *const *in, void *const *out)
{
    int rc = h->b->run(h->ctx, batch, n, in, out);
    return rc < 0 ? rc : h->b->sync(h->ctx);
}

const void *its_bh_ext(const char *backend, const char *name)
{
    const its_backend_i *b = its__backend_find(backend, NULL, 0);
    return b && b->get_proc ? b->get_proc(name) : NULL;
}

void its_bh_free(its_bh *h)
{
    if (h->b && h->ctx)
        h->b->free(h->ctx);
    for (int i = 0; i < h->n_batches; i++)
        its_free(h->shapes[i]);
    its__graph_free(&h->g);
    memset(h, 0, sizeof *h);
}

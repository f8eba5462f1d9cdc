/*
 * onnx_load.c - ONNX ModelProto -> its_graph.
 *
 * The protobuf is decoded by protobuf-c code generated at build time from Debian's
 * onnx.proto; protobuf-c rejects truncated or ill-typed wire data. Everything it accepts is
 * then validated here before the graph is used: opset, tensor types, dims (no negative or
 * absurd sizes, element counts that overflow), initializer byte counts against their dims,
 * names (dangling inputs, duplicate definitions), ops and attribute kinds. Structural
 * problems (cycles, dangling names) are found by its__graph_toposort; shapes and attribute
 * values by shape inference. Every error names the node (or initializer, or input) and why.
 *
 * Old exporters (IR < 4, e.g. nanodet-m) list every initializer among the graph inputs as
 * well; an input with an initializer of the same name is a constant, not a runtime input.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "its/alloc.h"
#include "its/error.h"

#include "ir.h"
#include "onnx.pb-c.h"

/* Limits for hostile files: any single dim, any tensor's element count. */
#define MAX_DIM   ((int64_t)1 << 31)
#define MAX_NUMEL ((int64_t)1 << 31)
#define MAX_NODES 1000000

/* allocator_data points at a flag set when an allocation fails, so that a NULL from
 * protobuf-c can be told apart: out of memory versus corrupt input. */
static void *pb_alloc(void *data, size_t size)
{
    void *p = its_malloc(ITS_MOD_ENGINE, size ? size : 1);
    if (!p && data)
        *(int *)data = 1;
    return p;
}

static void pb_free(void *data, void *p)
{
    (void)data;
    its_free(p);
}

static int dtype_ok(int32_t dt)
{
    switch (dt) {
    case ITS_DT_FLOAT32:
    case ITS_DT_UINT8:
    case ITS_DT_INT8:
    case ITS_DT_INT32:
    case ITS_DT_INT64:
    case ITS_DT_BOOL:
    case ITS_DT_FLOAT16:
        return 1;
    }
    return 0;
}

static int check_dims(const int64_t *dims, size_t n, int64_t *numel, const char *what,
                      const char *name, char *err, size_t errlen)
{
    if (n > ITS_MAX_DIMS) {
        snprintf(err, errlen, "%s '%s': rank %zu exceeds %d", what, name, n, ITS_MAX_DIMS);
        return ITS_EMODEL;
    }
    int64_t e = 1;
    for (size_t i = 0; i < n; i++) {
        if (dims[i] < 0 || dims[i] > MAX_DIM) {
            snprintf(err, errlen, "%s '%s': dimension %zu is %lld", what, name, i,
                     (long long)dims[i]);
            return ITS_EMODEL;
        }
        if (dims[i] && e > MAX_NUMEL / dims[i]) {
            snprintf(err, errlen, "%s '%s': element count overflows", what, name);
            return ITS_EMODEL;
        }
        e *= dims[i];
    }
    *numel = e;
    return 0;
}

/* Weights that are NaN or infinite make every output they touch meaningless, silently (a
 * detector then finds fewer objects): an initializer carrying one is refused at load. A
 * single-element initializer may be infinite (a bound such as Clip's max), never NaN. */
static int check_finite(const its_ir_tensor *T, int64_t numel, const char *what, const char *name,
                        char *err, size_t errlen)
{
    if (strcmp(what, "initializer"))
        return 0; /* test data and Constant nodes may hold NaN or infinity on purpose */
    for (int64_t i = 0; i < numel; i++) {
        int nan = 0, inf = 0;
        if (T->dtype == ITS_DT_FLOAT32) {
            float v;
            memcpy(&v, (const char *)T->data + (size_t)i * sizeof v, sizeof v);
            nan = isnan(v);
            inf = isinf(v);
        } else if (T->dtype == ITS_DT_FLOAT16) {
            uint16_t h;
            memcpy(&h, (const char *)T->data + (size_t)i * sizeof h, sizeof h);
            nan = (h & 0x7c00) == 0x7c00 && (h & 0x03ff); /* exponent all ones */
            inf = (h & 0x7c00) == 0x7c00 && !(h & 0x03ff);
        } else {
            return 0;
        }
        if (nan || (inf && numel > 1)) {
            snprintf(err, errlen, "%s '%s': element %lld is not finite (%s)", what, name,
                     (long long)i, nan ? "NaN" : "infinity");
            return ITS_EMODEL;
        }
    }
    return 0;
}

/* Decode one TensorProto into dense data (raw_data or the typed repeated field). */
static int load_tensor(const Onnx__TensorProto *tp, its_graph *g, int t, const char *what,
                       char *err, size_t errlen)
{
    its_ir_tensor *T = &g->tensors[t];
    const char *name = tp->name ? tp->name : "";
    if (tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL || tp->n_external_data) {
        snprintf(err, errlen, "%s '%s': external data is not supported", what, name);
        return ITS_EUNSUPPORTED;
    }
    if (!tp->has_data_type || !dtype_ok(tp->data_type)) {
        snprintf(err, errlen, "%s '%s': unsupported data type %d", what, name, (int)tp->data_type);
        return ITS_EUNSUPPORTED;
    }
    int64_t numel;
    int rc = check_dims(tp->dims, tp->n_dims, &numel, what, name, err, errlen);
    if (rc < 0)
        return rc;
    its_dtype dt = (its_dtype)tp->data_type;
    size_t es = its__dtype_size(dt);
    size_t bytes = (size_t)numel * es;
    T->dtype = dt;
    T->shape.rank = (int)tp->n_dims;
    for (size_t i = 0; i < tp->n_dims; i++)
        T->shape.dims[i] = tp->dims[i];
    /* the data must be there before anything is allocated for it: a hostile header may claim
     * billions of elements and carry none */
    size_t have;
    if (tp->has_raw_data) {
        have = tp->raw_data.len;
        if (have != bytes) {
            snprintf(err, errlen, "%s '%s': has %zu bytes of data, its shape needs %zu", what, name,
                     have, bytes);
            return ITS_EMODEL;
        }
    } else {
        switch (dt) {
        case ITS_DT_FLOAT32:
            have = tp->n_float_data;
            break;
        case ITS_DT_INT64:
            have = tp->n_int64_data;
            break;
        default: /* int32, uint8, int8, bool, float16 are carried in int32_data */
            have = tp->n_int32_data;
            break;
        }
        if (have != (size_t)numel) {
            snprintf(err, errlen, "%s '%s': has %zu values, its shape needs %lld", what, name, have,
                     (long long)numel);
            return ITS_EMODEL;
        }
    }
    T->data = its_malloc(ITS_MOD_ENGINE, bytes ? bytes : 1);
    if (!T->data)
        return ITS_ENOMEM;
    if (tp->has_raw_data) {
        if (bytes)
            memcpy(T->data, tp->raw_data.data, bytes);
        return check_finite(T, numel, what, name, err, errlen);
    }
    for (size_t i = 0; i < have; i++) {
        switch (dt) {
        case ITS_DT_FLOAT32:
            ((float *)T->data)[i] = tp->float_data[i];
            break;
        case ITS_DT_INT64:
            ((int64_t *)T->data)[i] = tp->int64_data[i];
            break;
        case ITS_DT_INT32:
            ((int32_t *)T->data)[i] = tp->int32_data[i];
            break;
        case ITS_DT_FLOAT16:
            ((uint16_t *)T->data)[i] = (uint16_t)tp->int32_data[i];
            break;
        default:
            ((uint8_t *)T->data)[i] = (uint8_t)tp->int32_data[i];
            break;
        }
    }
    return check_finite(T, numel, what, name, err, errlen);
}

static int copy_attr(const Onnx__NodeProto *np, const Onnx__AttributeProto *ap, its_attr *a,
                     char *err, size_t errlen)
{
    memset(a, 0, sizeof *a);
    a->name = its_strdup(ITS_MOD_ENGINE, ap->name ? ap->name : "");
    if (!a->name)
        return ITS_ENOMEM;
    switch (ap->type) {
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT:
        a->kind = ITS_ATTR_INT;
        a->i = ap->i;
        return 0;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT:
        a->kind = ITS_ATTR_FLOAT;
        a->f = ap->f;
        return 0;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING:
        a->kind = ITS_ATTR_STRING;
        a->s = its_strndup(ITS_MOD_ENGINE, ap->s.data ? (const char *)ap->s.data : "",
                           ap->s.data ? ap->s.len : 0);
        return a->s ? 0 : ITS_ENOMEM;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS:
        a->kind = ITS_ATTR_INTS;
        if (ap->n_ints > 64)
            break;
        a->n = (int)ap->n_ints;
        a->ints = its_malloc(ITS_MOD_ENGINE, (ap->n_ints + 1) * sizeof(int64_t));
        if (!a->ints)
            return ITS_ENOMEM;
        if (ap->n_ints)
            memcpy(a->ints, ap->ints, ap->n_ints * sizeof(int64_t));
        return 0;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS:
        a->kind = ITS_ATTR_FLOATS;
        if (ap->n_floats > 64)
            break;
        a->n = (int)ap->n_floats;
        a->floats = its_malloc(ITS_MOD_ENGINE, (ap->n_floats + 1) * sizeof(float));
        if (!a->floats)
            return ITS_ENOMEM;
        if (ap->n_floats)
            memcpy(a->floats, ap->floats, ap->n_floats * sizeof(float));
        return 0;
    default:
        break;
    }
    snprintf(err, errlen, "node '%s' (%s): attribute '%s' has an unsupported kind or size",
             np->name ? np->name : "", np->op_type ? np->op_type : "", a->name);
    return ITS_EUNSUPPORTED;
}

/* A Constant node becomes a constant tensor (no node). */
static int load_constant_node(const Onnx__NodeProto *np, its_graph *g, char *err, size_t errlen)
{
    const char *nname = np->name ? np->name : "";
    if (np->n_output != 1 || np->n_attribute != 1 || !np->output[0] || !*np->output[0]) {
        snprintf(err, errlen, "node '%s' (Constant): needs one output and one attribute", nname);
        return ITS_EMODEL;
    }
    int t = its__graph_find_tensor(g, np->output[0]);
    if (t < 0 || g->tensors[t].kind != ITS_TK_ACT || g->tensors[t].data) {
        snprintf(err, errlen, "node '%s' (Constant): output '%s' is defined twice", nname,
                 np->output[0]);
        return ITS_EMODEL;
    }
    its_ir_tensor *T = &g->tensors[t];
    const Onnx__AttributeProto *a = np->attribute[0];
    const char *an = a->name ? a->name : "";
    T->kind = ITS_TK_CONST;
    if (strcmp(an, "value") == 0 && a->t)
        return load_tensor(a->t, g, t, "Constant node", err, errlen);
    size_t n = 1;
    if (strcmp(an, "value_float") == 0) {
        T->dtype = ITS_DT_FLOAT32;
    } else if (strcmp(an, "value_int") == 0) {
        T->dtype = ITS_DT_INT64;
    } else if (strcmp(an, "value_floats") == 0 && a->n_floats <= (1u << 20)) {
        T->dtype = ITS_DT_FLOAT32;
        n = a->n_floats;
        T->shape.rank = 1;
    } else if (strcmp(an, "value_ints") == 0 && a->n_ints <= (1u << 20)) {
        T->dtype = ITS_DT_INT64;
        n = a->n_ints;
        T->shape.rank = 1;
    } else {
        snprintf(err, errlen, "node '%s' (Constant): unsupported attribute '%s'", nname, an);
        return ITS_EUNSUPPORTED;
    }
    T->shape.dims[0] = (int64_t)n;
    T->data = its_malloc(ITS_MOD_ENGINE, (n ? n : 1) * 8);
    if (!T->data)
        return ITS_ENOMEM;
    if (strcmp(an, "value_float") == 0)
        ((float *)T->data)[0] = a->f;
    else if (strcmp(an, "value_int") == 0)
        ((int64_t *)T->data)[0] = a->i;
    else if (T->dtype == ITS_DT_FLOAT32 && n)
        memcpy(T->data, a->floats, n * sizeof(float));
    else if (n)
        memcpy(T->data, a->ints, n * sizeof(int64_t));
    return 0;
}

/* Tensor for a name, created (as an activation) on first use. */
static int tensor_for(its_graph *g, const char *name)
{
    int t = its__graph_find_tensor(g, name);
    if (t >= 0)
        return t;
    return its__graph_add_tensor(g, name, (its_dtype)0, ITS_TK_ACT);
}

/* A linear name lookup per node would be O(n^2) on big graphs; the models here have under
 * 2000 tensors, which keeps it in the low milliseconds. */
static int build_graph(const Onnx__ModelProto *mp, its_graph *g, char *err, size_t errlen)
{
    const Onnx__GraphProto *gp = mp->graph;
    int rc;
    if (!gp) {
        snprintf(err, errlen, "model has no graph");
        return ITS_EMODEL;
    }
    g->ir_version = mp->ir_version;
    g->opset = -1;
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = mp->opset_import[i];
        if (!o->domain || !*o->domain || strcmp(o->domain, "ai.onnx") == 0)
            g->opset = o->version;
    }
    if (g->opset < 0 && mp->n_opset_import == 0)
        g->opset = 1;
    if (g->opset < 7 || g->opset > 20) {
        snprintf(err, errlen, "unsupported ai.onnx opset %lld (supported: 7-20)",
                 (long long)g->opset);
        return ITS_EUNSUPPORTED;
    }
    if (gp->n_node > MAX_NODES) {
        snprintf(err, errlen, "graph has %zu nodes (limit %d)", gp->n_node, MAX_NODES);
        return ITS_EMODEL;
    }
    /* Initializers. */
    for (size_t i = 0; i < gp->n_initializer; i++) {
        const Onnx__TensorProto *tp = gp->initializer[i];
        if (!tp->name || !*tp->name) {
            snprintf(err, errlen, "initializer %zu has no name", i);
            return ITS_EMODEL;
        }
        if (its__graph_find_tensor(g, tp->name) >= 0) {
            snprintf(err, errlen, "initializer '%s' is defined twice", tp->name);
            return ITS_EMODEL;
        }
        int t = its__graph_add_tensor(g, tp->name, (its_dtype)0, ITS_TK_CONST);
        if (t < 0)
            return t;
        rc = load_tensor(tp, g, t, "initializer", err, errlen);
        if (rc < 0)
            return rc;
    }
    /* Runtime inputs. */
    g->inputs = its_malloc(ITS_MOD_ENGINE, (gp->n_input + 1) * sizeof(int));
    g->outputs = its_malloc(ITS_MOD_ENGINE, (gp->n_output + 1) * sizeof(int));
    if (!g->inputs || !g->outputs)
        return ITS_ENOMEM;
    for (size_t i = 0; i < gp->n_input; i++) {
        const Onnx__ValueInfoProto *vi = gp->input[i];
        const char *name = vi->name ? vi->name : "";
        if (its__graph_find_tensor(g, name) >= 0) {
            if (g->tensors[its__graph_find_tensor(g, name)].kind == ITS_TK_CONST)
                continue; /* a weight listed as an input (old exporters) */
            snprintf(err, errlen, "graph input '%s' is listed twice", name);
            return ITS_EMODEL;
        }
        const Onnx__TypeProto *tp = vi->type;
        if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type ||
            !dtype_ok(tp->tensor_type->elem_type)) {
            snprintf(err, errlen, "graph input '%s': not a tensor of a supported type", name);
            return ITS_EUNSUPPORTED;
        }
        int t = its__graph_add_tensor(g, name, (its_dtype)tp->tensor_type->elem_type, ITS_TK_INPUT);
        if (t < 0)
            return t;
        its_ir_tensor *T = &g->tensors[t];
        const Onnx__TensorShapeProto *sp = tp->tensor_type->shape;
        if (!sp) {
            snprintf(err, errlen, "graph input '%s' has no shape", name);
            return ITS_EUNSUPPORTED;
        }
        if (sp->n_dim > ITS_MAX_DIMS) {
            snprintf(err, errlen, "graph input '%s': rank %zu exceeds %d", name, sp->n_dim,
                     ITS_MAX_DIMS);
            return ITS_EMODEL;
        }
        T->shape.rank = (int)sp->n_dim;
        for (size_t d = 0; d < sp->n_dim; d++) {
            const Onnx__TensorShapeProto__Dimension *dm = sp->dim[d];
            int64_t v = -1;
            if (dm->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE)
                v = dm->dim_value;
            if (v < 0 || v > MAX_DIM || (v == 0 && d == 0)) {
                if (d != 0) {
                    snprintf(err, errlen,
                             "graph input '%s': dimension %zu is symbolic or invalid (only "
                             "the batch dimension may be)",
                             name, d);
                    return ITS_EUNSUPPORTED;
                }
                v = -1; /* symbolic batch */
            }
            T->shape.dims[d] = v;
        }
        int64_t numel = 1;
        for (int d = 0; d < T->shape.rank; d++) {
            int64_t v = T->shape.dims[d] < 0 ? 1 : T->shape.dims[d];
            if (v && numel > MAX_NUMEL / v) {
                snprintf(err, errlen, "graph input '%s': element count overflows", name);
                return ITS_EMODEL;
            }
            numel *= v;
        }
        g->inputs[g->n_inputs++] = t;
    }
    /* Nodes: outputs first so that names resolve whatever the node order. */
    for (size_t i = 0; i < gp->n_node; i++) {
        const Onnx__NodeProto *np = gp->node[i];
        for (size_t o = 0; o < np->n_output; o++) {
            if (!np->output[o] || !*np->output[o])
                continue;
            int t = its__graph_find_tensor(g, np->output[o]);
            if (t >= 0 && g->tensors[t].kind != ITS_TK_ACT) {
                snprintf(err, errlen,
                         "node '%s' (%s): output '%s' redefines an input or "
                         "initializer",
                         np->name ? np->name : "", np->op_type ? np->op_type : "", np->output[o]);
                return ITS_EMODEL;
            }
            if (t < 0 && (t = tensor_for(g, np->output[o])) < 0)
                return t;
        }
    }
    for (size_t i = 0; i < gp->n_node; i++) {
        const Onnx__NodeProto *np = gp->node[i];
        const char *nname = np->name ? np->name : "";
        const char *opn = np->op_type ? np->op_type : "";
        if (np->domain && *np->domain && strcmp(np->domain, "ai.onnx") != 0) {
            snprintf(err, errlen, "node '%s' (%s): unsupported domain '%s'", nname, opn,
                     np->domain);
            return ITS_EUNSUPPORTED;
        }
        if (strcmp(opn, "Constant") == 0) {
            rc = load_constant_node(np, g, err, errlen);
            if (rc < 0)
                return rc;
            continue;
        }
        its_op op = its__op_from_name(opn);
        if (op == ITS_OP_NONE) {
            snprintf(err, errlen, "node '%s' (%s): unsupported op", nname, opn);
            return ITS_EUNSUPPORTED;
        }
        if (np->n_input > 4096 || np->n_output > 4096) {
            snprintf(err, errlen, "node '%s' (%s): too many inputs or outputs", nname, opn);
            return ITS_EMODEL;
        }
        int in[4096], out[4096];
        for (size_t k = 0; k < np->n_input; k++) {
            if (!np->input[k] || !*np->input[k]) {
                in[k] = -1;
                continue;
            }
            int t = its__graph_find_tensor(g, np->input[k]);
            if (t < 0) {
                snprintf(err, errlen, "node '%s' (%s): input '%s' is never produced", nname, opn,
                         np->input[k]);
                return ITS_EMODEL;
            }
            in[k] = t;
        }
        for (size_t k = 0; k < np->n_output; k++)
            out[k] =
                (!np->output[k] || !*np->output[k]) ? -1 : its__graph_find_tensor(g, np->output[k]);
        int n = its__graph_add_node(g, nname, op, (int)np->n_input, in, (int)np->n_output, out);
        if (n < 0)
            return n;
        its_ir_node *N = &g->nodes[n];
        if (np->n_attribute) {
            N->attrs = its_calloc(ITS_MOD_ENGINE, np->n_attribute, sizeof(its_attr));
            if (!N->attrs)
                return ITS_ENOMEM;
            for (size_t a = 0; a < np->n_attribute; a++) {
                rc = copy_attr(np, np->attribute[a], &N->attrs[a], err, errlen);
                N->n_attrs = (int)a + 1;
                if (rc < 0)
                    return rc;
            }
        }
    }
    for (size_t i = 0; i < gp->n_output; i++) {
        const char *name = gp->output[i]->name ? gp->output[i]->name : "";
        int t = its__graph_find_tensor(g, name);
        if (t < 0) {
            snprintf(err, errlen, "graph output '%s' is never produced", name);
            return ITS_EMODEL;
        }
        g->tensors[t].flags |= ITS_TF_OUTPUT;
        g->outputs[g->n_outputs++] = t;
    }
    if (g->n_outputs == 0) {
        snprintf(err, errlen, "graph has no outputs");
        return ITS_EMODEL;
    }
    /* Metadata. */
    if (mp->n_metadata_props) {
        g->meta = its_calloc(ITS_MOD_ENGINE, mp->n_metadata_props, sizeof(its_meta));
        if (!g->meta)
            return ITS_ENOMEM;
        for (size_t i = 0; i < mp->n_metadata_props; i++) {
            const Onnx__StringStringEntryProto *e = mp->metadata_props[i];
            g->meta[i].key = its_strdup(ITS_MOD_ENGINE, e->key ? e->key : "");
            g->meta[i].value = its_strdup(ITS_MOD_ENGINE, e->value ? e->value : "");
            g->n_meta = (int)i + 1;
            if (!g->meta[i].key || !g->meta[i].value)
                return ITS_ENOMEM;
        }
    }
    return its__graph_toposort(g, err, errlen);
}

int its__onnx_load(const void *data, size_t len, its_graph *g, char *err, size_t errlen)
{
    its__graph_init(g);
    if (!data || len == 0) {
        snprintf(err, errlen, "empty model file");
        return ITS_EMODEL;
    }
    int oom = 0;
    ProtobufCAllocator pb_allocator = {pb_alloc, pb_free, &oom};
    Onnx__ModelProto *mp = onnx__model_proto__unpack(&pb_allocator, len, data);
    if (!mp && oom) {
        snprintf(err, errlen, "out of memory while decoding the model");
        return ITS_ENOMEM;
    }
    if (!mp) {
        snprintf(err, errlen, "not a valid ONNX protobuf (truncated or corrupt, %zu bytes)", len);
        return ITS_EMODEL;
    }
    int rc = build_graph(mp, g, err, errlen);
    onnx__model_proto__free_unpacked(mp, &pb_allocator);
    if (rc < 0)
        its__graph_free(g);
    return rc;
}

int its__onnx_load_tensor(const void *data, size_t len, its_dtype *dt, its_shape *shape, void **out,
                          char *name, size_t namelen, char *err, size_t errlen)
{
    ProtobufCAllocator pb_allocator = {pb_alloc, pb_free, NULL};
    Onnx__TensorProto *tp = onnx__tensor_proto__unpack(&pb_allocator, len, data);
    if (!tp) {
        snprintf(err, errlen, "not a valid TensorProto");
        return ITS_EMODEL;
    }
    its_graph g;
    its__graph_init(&g);
    int t = its__graph_add_tensor(&g, tp->name ? tp->name : "", (its_dtype)0, ITS_TK_CONST);
    int rc = t < 0 ? t : load_tensor(tp, &g, t, "tensor", err, errlen);
    if (rc == 0) {
        *dt = g.tensors[t].dtype;
        *shape = g.tensors[t].shape;
        *out = g.tensors[t].data;
        g.tensors[t].data = NULL;
        if (name && namelen)
            snprintf(name, namelen, "%s", tp->name ? tp->name : "");
    }
    its__graph_free(&g);
    onnx__tensor_proto__free_unpacked(tp, &pb_allocator);
    return rc;
}

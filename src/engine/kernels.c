/*
 * kernels.c - portable reference kernels for every op, on dense row-major host memory.
 *
 * Constant folding runs them at load time, and the CPU backend runs them for every op that
 * oneDNN does not take (everything but Conv): they are written to be reasonably fast
 * (contiguous fast paths, OpenMP over the outer loops) rather than only obviously correct.
 *
 * Integer semantics follow the ONNX spec exactly: QuantizeLinear and DynamicQuantizeLinear
 * round half to even (nearbyintf in the default rounding mode) and saturate; ConvInteger
 * accumulates in int32; Cast from float to an integer saturates instead of invoking C's
 * undefined behaviour.
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "its/error.h"

#include "ir.h"
#include "ops_impl.h"
#include "team.h"

#define PAR_MIN 32768 /* elements below which threading costs more than it gains */

static int64_t numel(const its_shape *s)
{
    return its__shape_numel(s);
}

/* ---- elementwise binary with numpy broadcasting ---- */

/* Strides (in elements) of `s` broadcast to rank r of the output: 0 on broadcast dims. */
static void bstrides(const its_shape *s, const its_shape *o, int64_t *st)
{
    int64_t acc = 1;
    for (int i = o->rank - 1; i >= 0; i--) {
        int si = i - (o->rank - s->rank);
        int64_t d = si >= 0 ? s->dims[si] : 1;
        st[i] = d == 1 ? 0 : acc;
        acc *= d;
    }
}

#define BIN_LOOP(T, EXPR)                                                                          \
    do {                                                                                           \
        const T *A = a;                                                                            \
        const T *B = b;                                                                            \
        T *O = o;                                                                                  \
        int64_t n = numel(os);                                                                     \
        if (numel(as) == n && numel(bs) == n) {                                                    \
            _Pragma("omp parallel for if (n > PAR_MIN)") for (int64_t i = 0; i < n; i++)           \
            {                                                                                      \
                T x = A[i], y = B[i];                                                              \
                O[i] = (EXPR);                                                                     \
            }                                                                                      \
        } else if (numel(bs) == 1) {                                                               \
            T y = B[0];                                                                            \
            _Pragma("omp parallel for if (n > PAR_MIN)") for (int64_t i = 0; i < n; i++)           \
            {                                                                                      \
                T x = A[i];                                                                        \
                O[i] = (EXPR);                                                                     \
            }                                                                                      \
        } else {                                                                                   \
            int64_t sa[ITS_MAX_DIMS], sb[ITS_MAX_DIMS];                                            \
            bstrides(as, os, sa);                                                                  \
            bstrides(bs, os, sb);                                                                  \
            int r = os->rank;                                                                      \
            int64_t inner = r ? os->dims[r - 1] : 1;                                               \
            int64_t rows = inner ? n / inner : 0;                                                  \
            int64_t ia = r ? sa[r - 1] : 0, ib = r ? sb[r - 1] : 0;                                \
            _Pragma("omp parallel for if (n > PAR_MIN)") for (int64_t row = 0; row < rows; row++)  \
            {                                                                                      \
                int64_t rem = row, oa = 0, ob = 0;                                                 \
                for (int d = r - 2; d >= 0; d--) {                                                 \
                    int64_t c = rem % os->dims[d];                                                 \
                    rem /= os->dims[d];                                                            \
                    oa += c * sa[d];                                                               \
                    ob += c * sb[d];                                                               \
                }                                                                                  \
                T *orow = O + row * inner;                                                         \
                for (int64_t j = 0; j < inner; j++) {                                              \
                    T x = A[oa + j * ia], y = B[ob + j * ib];                                      \
                    orow[j] = (EXPR);                                                              \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    } while (0)

static int int_div_ok(its_dtype dt, const void *b, const its_shape *bs)
{
    int64_t n = numel(bs);
    for (int64_t i = 0; i < n; i++) {
        int64_t v = dt == ITS_DT_INT32   ? ((const int32_t *)b)[i]
                    : dt == ITS_DT_INT64 ? ((const int64_t *)b)[i]
                    : dt == ITS_DT_UINT8 ? ((const uint8_t *)b)[i]
                                         : ((const int8_t *)b)[i];
        if (v == 0)
            return 0;
    }
    return 1;
}

#define BIN_ALL(T)                                                                                 \
    switch (op) {                                                                                  \
    case ITS_OP_ADD:                                                                               \
        BIN_LOOP(T, (T)(x + y));                                                                   \
        break;                                                                                     \
    case ITS_OP_SUB:                                                                               \
        BIN_LOOP(T, (T)(x - y));                                                                   \
        break;                                                                                     \
    case ITS_OP_MUL:                                                                               \
        BIN_LOOP(T, (T)(x * y));                                                                   \
        break;                                                                                     \
    default:                                                                                       \
        BIN_LOOP(T, (T)(x / y));                                                                   \
        break;                                                                                     \
    }

/* Integer add/sub/mul wrap like ONNX Runtime does; computed in unsigned to avoid C's UB. */
#define BIN_INT(T, U)                                                                              \
    switch (op) {                                                                                  \
    case ITS_OP_ADD:                                                                               \
        BIN_LOOP(T, (T)((U)x + (U)y));                                                             \
        break;                                                                                     \
    case ITS_OP_SUB:                                                                               \
        BIN_LOOP(T, (T)((U)x - (U)y));                                                             \
        break;                                                                                     \
    case ITS_OP_MUL:                                                                               \
        BIN_LOOP(T, (T)((U)x * (U)y));                                                             \
        break;                                                                                     \
    default:                                                                                       \
        BIN_LOOP(T, (T)(x / y));                                                                   \
        break;                                                                                     \
    }

static int binary(its_op op, its_dtype dt, const its_shape *as, const void *a, const its_shape *bs,
                  const void *b, const its_shape *os, void *o)
{
    if (op == ITS_OP_DIV && dt != ITS_DT_FLOAT32 && !int_div_ok(dt, b, bs))
        return ITS_ERANGE;
    switch (dt) {
    case ITS_DT_FLOAT32:
        BIN_ALL(float);
        return 0;
    case ITS_DT_INT32:
        BIN_INT(int32_t, uint32_t);
        return 0;
    case ITS_DT_INT64:
        BIN_INT(int64_t, uint64_t);
        return 0;
    case ITS_DT_UINT8:
        BIN_INT(uint8_t, uint32_t);
        return 0;
    case ITS_DT_INT8:
        BIN_INT(int8_t, uint32_t);
        return 0;
    default:
        return ITS_EUNSUPPORTED;
    }
}

/* ---- unary ---- */

static void sigmoid_range(void *arg, int64_t i0, int64_t i1)
{
    const float *const *xy = arg;
    const float *x = xy[0];
    float *y = (float *)(uintptr_t)xy[1];
    for (int64_t i = i0; i < i1; i++)
        y[i] = 1.f / (1.f + expf(-x[i]));
}

static void unary(const its_ir_node *n, const float *x, float *y, int64_t ne)
{
    switch (n->op) {
    case ITS_OP_SIGMOID: {
        const float *xy[2] = {x, y};
        its__par_range(ne, 1, sigmoid_range, xy);
        break;
    }
    case ITS_OP_SILU:
#pragma omp parallel for if (ne > PAR_MIN)
        for (int64_t i = 0; i < ne; i++)
            y[i] = x[i] / (1.f + expf(-x[i]));
        break;
    case ITS_OP_RELU:
#pragma omp parallel for if (ne > PAR_MIN)
        for (int64_t i = 0; i < ne; i++)
            y[i] = x[i] > 0.f ? x[i] : 0.f;
        break;
    default: { /* LeakyRelu */
        float al = its__attr_f(n, "alpha", 0.01f);
#pragma omp parallel for if (ne > PAR_MIN)
        for (int64_t i = 0; i < ne; i++)
            y[i] = x[i] >= 0.f ? x[i] : x[i] * al;
        break;
    }
    }
}

/*
 * expf for the softmax's vector loops: 2^n * p(r) with n = round(x / ln2), r = x - n ln2
 * (ln2 split in two for accuracy) and a degree-6 polynomial for e^r on [-ln2/2, ln2/2];
 * relative error at most 2.5e-7 (measured over [-80, 0]); no libm call, so the loops
 * vectorize. Inputs are <= 0 here (x - max); below -87 the result flushes to 0.
 */
static inline float exp_neg(float x)
{
    x = x > -87.f ? x : -87.f;
    float n = (x * 1.44269504f + 12582912.f) - 12582912.f; /* round to nearest */
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.f / 720.f;
    p = p * r + 1.f / 120.f;
    p = p * r + 1.f / 24.f;
    p = p * r + 1.f / 6.f;
    p = p * r + 0.5f;
    p = p * r + 1.f;
    p = p * r + 1.f;
    union {
        int32_t i;
        float f;
    } sc = {.i = ((int32_t)n + 127) << 23};
    return p * sc.f;
}

typedef struct softmax_job {
    const float *x;
    float *y;
    int64_t dim, inner, per;
} softmax_job;

enum { SOFTMAX_CH = 256 };

/* reduce across rows of `inner` contiguous floats: vector loops over chunks of the inner
 * dimension (the DFL head: [1, 16, 4, 8400] over axis 1) */
static void softmax_chunks(void *arg, int64_t t0, int64_t t1)
{
    const softmax_job *jb = arg;
    const int64_t dim = jb->dim, inner = jb->inner, per = jb->per;
    for (int64_t t = t0; t < t1; t++) {
        int64_t o = t / per, j0 = t % per * SOFTMAX_CH;
        int64_t nj = inner - j0 < SOFTMAX_CH ? inner - j0 : SOFTMAX_CH;
        const float *xp = jb->x + o * dim * inner + j0;
        float *yp = jb->y + o * dim * inner + j0;
        float mx[SOFTMAX_CH], sum[SOFTMAX_CH];
        for (int64_t j = 0; j < nj; j++) {
            mx[j] = xp[j];
            sum[j] = 0.f;
        }
        for (int64_t d = 1; d < dim; d++)
#pragma omp simd
            for (int64_t j = 0; j < nj; j++)
                mx[j] = xp[d * inner + j] > mx[j] ? xp[d * inner + j] : mx[j];
        for (int64_t d = 0; d < dim; d++)
#pragma omp simd
            for (int64_t j = 0; j < nj; j++) {
                float e = exp_neg(xp[d * inner + j] - mx[j]);
                yp[d * inner + j] = e;
                sum[j] += e;
            }
        for (int64_t j = 0; j < nj; j++)
            sum[j] = 1.f / sum[j];
        for (int64_t d = 0; d < dim; d++)
#pragma omp simd
            for (int64_t j = 0; j < nj; j++)
                yp[d * inner + j] *= sum[j];
    }
}

static void softmax(const float *x, float *y, int64_t outer, int64_t dim, int64_t inner)
{
    if (inner >= 16) {
        softmax_job j = {x, y, dim, inner, (inner + SOFTMAX_CH - 1) / SOFTMAX_CH};
        its__par_range(outer * j.per, dim * SOFTMAX_CH, softmax_chunks, &j);
        return;
    }
#pragma omp parallel for collapse(2) if (outer * dim * inner > PAR_MIN)
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t in = 0; in < inner; in++) {
            const float *xp = x + o * dim * inner + in;
            float *yp = y + o * dim * inner + in;
            float mx = -INFINITY;
            for (int64_t d = 0; d < dim; d++)
                mx = xp[d * inner] > mx ? xp[d * inner] : mx;
            float sum = 0.f;
            for (int64_t d = 0; d < dim; d++) {
                float e = expf(xp[d * inner] - mx);
                yp[d * inner] = e;
                sum += e;
            }
            float inv = 1.f / sum;
            for (int64_t d = 0; d < dim; d++)
                yp[d * inner] *= inv;
        }
    }
}

/* ---- data movement ---- */

static void transpose(const its_shape *xs, const void *x, const int *perm, void *y, size_t es)
{
    int r = xs->rank;
    int64_t xst[ITS_MAX_DIMS], ost[ITS_MAX_DIMS], od[ITS_MAX_DIMS];
    int64_t acc = 1;
    for (int i = r - 1; i >= 0; i--) {
        xst[i] = acc;
        acc *= xs->dims[i];
    }
    for (int i = 0; i < r; i++) {
        od[i] = xs->dims[perm[i]];
        ost[i] = xst[perm[i]]; /* input stride for output dim i */
    }
    int64_t n = acc;
    if (r == 0) {
        memcpy(y, x, es);
        return;
    }
    int64_t inner = od[r - 1], rows = inner ? n / inner : 0, is = ost[r - 1];
    int kc = -1; /* the output dim that walks the input contiguously */
    for (int d = 0; d < r - 1; d++)
        if (ost[d] == 1 && od[d] > 1)
            kc = d;
    if (es == 4 && is != 1 && kc >= 0 && inner > 1) {
        /* a strided gather along the output rows: tile output dims (kc, r-1) in 32x32
         * blocks so that reads (along kc) and writes (along r-1) both stay in cache lines */
        int64_t yst[ITS_MAX_DIMS], a2 = 1;
        for (int d = r - 1; d >= 0; d--) {
            yst[d] = a2;
            a2 *= od[d];
        }
        const int64_t T = 32, ta = (od[kc] + T - 1) / T, tb = (inner + T - 1) / T;
        int64_t outer = n / (od[kc] * inner);
#pragma omp parallel for if (n > PAR_MIN)
        for (int64_t t = 0; t < outer * ta * tb; t++) {
            int64_t o = t / (ta * tb), a0 = (t / tb) % ta * T, b0 = t % tb * T;
            int64_t a1 = a0 + T < od[kc] ? a0 + T : od[kc], b1 = b0 + T < inner ? b0 + T : inner;
            int64_t rem = o, xo = 0, yo = 0;
            for (int d = r - 2; d >= 0; d--) {
                if (d == kc)
                    continue;
                int64_t c = rem % od[d];
                rem /= od[d];
                xo += c * ost[d];
                yo += c * yst[d];
            }
            const float *xp = (const float *)x + xo;
            float *yp = (float *)y + yo;
            for (int64_t a = a0; a < a1; a++)
                for (int64_t b = b0; b < b1; b++)
                    yp[a * yst[kc] + b] = xp[a + b * is];
        }
        return;
    }
#pragma omp parallel for if (n > PAR_MIN)
    for (int64_t row = 0; row < rows; row++) {
        int64_t rem = row, off = 0;
        for (int d = r - 2; d >= 0; d--) {
            off += (rem % od[d]) * ost[d];
            rem /= od[d];
        }
        char *yp = (char *)y + (size_t)(row * inner) * es;
        const char *xp = (const char *)x;
        if (es == 4) {
            for (int64_t j = 0; j < inner; j++)
                ((uint32_t *)yp)[j] = ((const uint32_t *)xp)[off + j * is];
        } else {
            for (int64_t j = 0; j < inner; j++)
                memcpy(yp + (size_t)j * es, xp + (size_t)(off + j * is) * es, es);
        }
    }
}

typedef struct slice_job {
    const its_shape *os;
    const its_slice_params *p;
    const int64_t *xst;
    int64_t inner, base;
    int r, contiguous;
    const void *x;
    void *y;
    size_t es;
} slice_job;

static void slice_rows(void *arg, int64_t r0, int64_t r1)
{
    const slice_job *j = arg;
    const its_shape *os = j->os;
    const its_slice_params *p = j->p;
    int r = j->r;
    int64_t inner = j->inner;
    size_t es = j->es;
    for (int64_t row = r0; row < r1; row++) {
        int64_t rem = row, off = j->base;
        for (int d = r - 2; d >= 0; d--) {
            off += (rem % os->dims[d]) * p->step[d] * j->xst[d];
            rem /= os->dims[d];
        }
        char *yp = (char *)j->y + (size_t)(row * inner) * es;
        const char *xp = (const char *)j->x;
        if (j->contiguous) {
            memcpy(yp, xp + (size_t)off * es, (size_t)inner * es);
        } else if (es == 4) {
            int64_t st = p->step[r - 1];
            const uint32_t *xr = (const uint32_t *)xp + off;
            for (int64_t k = 0; k < inner; k++)
                ((uint32_t *)yp)[k] = xr[k * st];
        } else {
            int64_t st = p->step[r - 1];
            for (int64_t k = 0; k < inner; k++)
                memcpy(yp + (size_t)k * es, xp + (size_t)(off + k * st) * es, es);
        }
    }
}

static void slice(const its_shape *xs, const void *x, const its_slice_params *p,
                  const its_shape *os, void *y, size_t es)
{
    int r = xs->rank;
    int64_t xst[ITS_MAX_DIMS], acc = 1;
    for (int i = r - 1; i >= 0; i--) {
        xst[i] = acc;
        acc *= xs->dims[i];
    }
    int64_t n = numel(os);
    if (n == 0)
        return;
    if (r == 0) {
        memcpy(y, x, es);
        return;
    }
    slice_job j = {.os = os,
                   .p = p,
                   .xst = xst,
                   .inner = os->dims[r - 1],
                   .r = r,
                   .contiguous = p->step[r - 1] == 1,
                   .x = x,
                   .y = y,
                   .es = es};
    for (int d = 0; d < r; d++)
        j.base += p->start[d] * xst[d];
    its__par_range(n / j.inner, j.inner, slice_rows, &j);
}

static inline void copy_f32(float *restrict y, const float *restrict x, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i];
}

/* Concat/Split: [outer, axis*inner] blocks copied with memcpy, rows in parallel (channels-last
 * tensors have one short row per pixel). The joined tensor has rows of `row` elements; piece
 * k is the columns [offs[k], offs[k+1]) of every row, stored densely in part[k]. */
typedef struct pieces_job {
    int nk, join; /* join: pieces -> whole (Concat), else whole -> pieces (Split) */
    int64_t row, offs[ITS_IR_MAX_IO + 1];
    size_t es;
    char *whole;
    char *part[ITS_IR_MAX_IO];
} pieces_job;

static void pieces_rows(void *arg, int64_t o0, int64_t o1)
{
    const pieces_job *j = arg;
    size_t es = j->es;
    for (int64_t o = o0; o < o1; o++)
        for (int k = 0; k < j->nk; k++) {
            int64_t w = j->offs[k + 1] - j->offs[k];
            if (!j->part[k])
                continue;
            char *whole = j->whole + (size_t)(o * j->row + j->offs[k]) * es;
            char *part = j->part[k] + (size_t)(o * w) * es;
            if (es == 4 && w <= 256) { /* short rows: an inline loop beats memcpy calls */
                if (j->join)
                    copy_f32((float *)whole, (const float *)part, w);
                else
                    copy_f32((float *)part, (const float *)whole, w);
            } else {
                memcpy(j->join ? whole : part, j->join ? part : whole, (size_t)w * es);
            }
        }
}

/* sizes[k]: piece k's extent along the axis (for Split from its__split_params, not from the
 * outputs' shapes: an output nobody reads has none, and its share must still be skipped). */
static void pieces(int join, int nk, int axis, const its_shape *ws, void *whole,
                   const int64_t *sizes, void *const *part, size_t es)
{
    pieces_job j = {.nk = nk < ITS_IR_MAX_IO ? nk : ITS_IR_MAX_IO, .join = join, .es = es};
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < axis; d++)
        outer *= ws->dims[d];
    for (int d = axis + 1; d < ws->rank; d++)
        inner *= ws->dims[d];
    j.row = ws->dims[axis] * inner;
    j.whole = whole;
    for (int k = 0; k < j.nk; k++) {
        j.offs[k + 1] = j.offs[k] + sizes[k] * inner;
        j.part[k] = part[k];
    }
    its__par_range(outer, j.row, pieces_rows, &j);
}

static void concat(const its_ir_node *n, int axis, const its_shape *ins, const void *const *in,
                   const its_shape *os, void *y, size_t es)
{
    int64_t sizes[ITS_IR_MAX_IO];
    void *part[ITS_IR_MAX_IO];
    int nk = n->n_in < ITS_IR_MAX_IO ? n->n_in : ITS_IR_MAX_IO;
    for (int k = 0; k < nk; k++) {
        sizes[k] = ins[k].dims[axis];
        part[k] = (void *)(uintptr_t)in[k]; /* only read */
    }
    pieces(1, nk, axis, os, y, sizes, part, es);
}

static void split(int no, int axis, const its_shape *xs, const void *x, const int64_t *sizes,
                  void *const *out, size_t es)
{
    pieces(0, no, axis, xs, (void *)(uintptr_t)x, sizes, out, es);
}

typedef struct t2d_job {
    int64_t rows, cols, per, tr, tc; /* per: column chunks of a plane set; tr, tc: tiles */
    const void *x;
    void *y;
    size_t es;
} t2d_job;

/* a few planes (the network input, float or 8-bit quantized): interleave per pixel, tasks of
 * CH pixels */
enum { T2D_CH = 4096, T2D_TILE = 32 };
#define ITS__PLANES_TO_PIXELS(type)                                                                \
    for (int64_t t = t0; t < t1; t++) {                                                            \
        int64_t b = t / j->per, c0 = t % j->per * T2D_CH;                                          \
        int64_t c1 = c0 + T2D_CH < cols ? c0 + T2D_CH : cols;                                      \
        const type *xb = (const type *)j->x + b * rows * cols;                                     \
        type *yb = (type *)j->y + b * rows * cols;                                                 \
        for (int64_t r = 0; r < rows; r++)                                                         \
            for (int64_t c = c0; c < c1; c++)                                                      \
                yb[c * rows + r] = xb[r * cols + c];                                               \
    }

static void t2d_planes(void *arg, int64_t t0, int64_t t1)
{
    const t2d_job *j = arg;
    int64_t rows = j->rows, cols = j->cols;
    if (j->es == 1)
        ITS__PLANES_TO_PIXELS(uint8_t)
    else
        ITS__PLANES_TO_PIXELS(float)
}
#undef ITS__PLANES_TO_PIXELS

#define ITS__TILE(type)                                                                            \
    do {                                                                                           \
        const type *xb = (const type *)j->x + b * rows * cols;                                     \
        type *yb = (type *)j->y + b * rows * cols;                                                 \
        for (int64_t c = c0; c < c1; c++)                                                          \
            for (int64_t r = r0; r < r1; r++)                                                      \
                yb[c * rows + r] = xb[r * cols + c];                                               \
    } while (0)

static void t2d_tiles(void *arg, int64_t t0, int64_t t1)
{
    const t2d_job *j = arg;
    const int64_t T = T2D_TILE, rows = j->rows, cols = j->cols, tr = j->tr, tc = j->tc;
    for (int64_t t = t0; t < t1; t++) {
        int64_t b = t / (tr * tc), r0 = (t / tc) % tr * T, c0 = t % tc * T;
        int64_t r1 = r0 + T < rows ? r0 + T : rows, c1 = c0 + T < cols ? c0 + T : cols;
        if (j->es == 4)
            ITS__TILE(float);
        else
            ITS__TILE(uint8_t);
    }
}
#undef ITS__TILE

/* y[c][r] = x[r][c] for each of n [rows, cols] matrices of 4-byte (es 4) or 1-byte elements,
 * in 32x32 tiles. */
static void transpose_2d(int64_t n, int64_t rows, int64_t cols, const void *xv, void *yv, size_t es)
{
    t2d_job j = {.rows = rows, .cols = cols, .x = xv, .y = yv, .es = es};
    if (rows <= 4 && (es == 1 || es == 4)) {
        j.per = (cols + T2D_CH - 1) / T2D_CH;
        its__par_range(n * j.per, rows * T2D_CH, t2d_planes, &j);
        return;
    }
    j.tr = (rows + T2D_TILE - 1) / T2D_TILE;
    j.tc = (cols + T2D_TILE - 1) / T2D_TILE;
    its__par_range(n * j.tr * j.tc, T2D_TILE * T2D_TILE, t2d_tiles, &j);
}

/* ---- Resize (last two dims) ---- */

/* out_len is in * scale (fractional when scales were given), as the ONNX reference uses. */
static float src_coord(its_resize_coord c, float dst, float scale, int64_t in, float out_len)
{
    int64_t out = (int64_t)out_len;
    switch (c) {
    case ITS_RC_ASYMMETRIC:
        return dst / scale;
    case ITS_RC_PYTORCH_HALF_PIXEL:
        return out > 1 ? (dst + 0.5f) / scale - 0.5f : 0.f;
    case ITS_RC_ALIGN_CORNERS:
        return out_len > 1.f ? dst * (float)(in - 1) / (out_len - 1.f) : 0.f;
    case ITS_RC_TF_HALF_PIXEL_FOR_NN:
        return (dst + 0.5f) / scale;
    default:
        return (dst + 0.5f) / scale - 0.5f;
    }
}

static int64_t nearest_idx(its_resize_nearest m, float s, int64_t in)
{
    int64_t i;
    switch (m) {
    case ITS_RN_FLOOR:
        i = (int64_t)floorf(s);
        break;
    case ITS_RN_CEIL:
        i = (int64_t)ceilf(s);
        break;
    case ITS_RN_ROUND_PREFER_CEIL:
        i = (int64_t)floorf(s + 0.5f);
        break;
    default: /* round_prefer_floor */
        i = (s - floorf(s) == 0.5f) ? (int64_t)floorf(s) : (int64_t)floorf(s + 0.5f);
        break;
    }
    return i < 0 ? 0 : i >= in ? in - 1 : i;
}

static void resize(const its_resize_params *p, const its_shape *xs, const float *x,
                   const its_shape *os, float *y)
{
    int r = xs->rank;
    int64_t ih = xs->dims[r - 2], iw = xs->dims[r - 1], oh = os->dims[r - 2], ow = os->dims[r - 1];
    int64_t hw = ih * iw;
    int64_t planes = hw > 0 ? numel(xs) / hw : 0;
    float sh = p->scale[r - 2], sw = p->scale[r - 1];
    if (!p->linear && sh == 2.f && sw == 2.f && p->coord == ITS_RC_ASYMMETRIC &&
        p->nearest == ITS_RN_FLOOR && oh == 2 * ih && ow == 2 * iw) {
        /* the YOLO upsample: each input pixel becomes a 2x2 block */
#pragma omp parallel for
        for (int64_t pl = 0; pl < planes; pl++)
            for (int64_t i = 0; i < ih; i++) {
                const float *xr = x + (pl * ih + i) * iw;
                float *y0 = y + (pl * oh + 2 * i) * ow;
                for (int64_t j = 0; j < iw; j++)
                    y0[2 * j] = y0[2 * j + 1] = xr[j];
                memcpy(y0 + ow, y0, (size_t)ow * sizeof(float));
            }
        return;
    }
#pragma omp parallel for
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * ih * iw;
        float *yp = y + pl * oh * ow;
        for (int64_t i = 0; i < oh; i++) {
            float fy = src_coord(p->coord, (float)i, sh, ih, (float)ih * sh);
            for (int64_t j = 0; j < ow; j++) {
                float fx = src_coord(p->coord, (float)j, sw, iw, (float)iw * sw);
                if (!p->linear) {
                    yp[i * ow + j] =
                        xp[nearest_idx(p->nearest, fy, ih) * iw + nearest_idx(p->nearest, fx, iw)];
                    continue;
                }
                float cy = fy < 0.f ? 0.f : fy > (float)(ih - 1) ? (float)(ih - 1) : fy;
                float cx = fx < 0.f ? 0.f : fx > (float)(iw - 1) ? (float)(iw - 1) : fx;
                int64_t y0 = (int64_t)cy, x0 = (int64_t)cx;
                int64_t y1 = y0 + 1 < ih ? y0 + 1 : y0, x1 = x0 + 1 < iw ? x0 + 1 : x0;
                float dy = cy - (float)y0, dx = cx - (float)x0;
                float v00 = xp[y0 * iw + x0], v01 = xp[y0 * iw + x1];
                float v10 = xp[y1 * iw + x0], v11 = xp[y1 * iw + x1];
                yp[i * ow + j] = v00 * (1 - dy) * (1 - dx) + v01 * (1 - dy) * dx +
                                 v10 * dy * (1 - dx) + v11 * dy * dx;
            }
        }
    }
}

/* ---- MaxPool ---- */

#define MAXPOOL_T(T, LOWEST)                                                                       \
    do {                                                                                           \
        const T *X = x;                                                                            \
        T *Y = y;                                                                                  \
        _Pragma("omp parallel for") for (int64_t pl = 0; pl < p->n * p->c; pl++)                   \
        {                                                                                          \
            const T *xp = X + pl * p->ih * p->iw;                                                  \
            T *yp = Y + pl * p->oh * p->ow;                                                        \
            for (int64_t i = 0; i < p->oh; i++)                                                    \
                for (int64_t j = 0; j < p->ow; j++) {                                              \
                    T m = LOWEST;                                                                  \
                    for (int64_t ki = 0; ki < p->kh; ki++) {                                       \
                        int64_t yy = i * p->sh - p->pt + ki * p->dh;                               \
                        if (yy < 0 || yy >= p->ih)                                                 \
                            continue;                                                              \
                        for (int64_t kj = 0; kj < p->kw; kj++) {                                   \
                            int64_t xx = j * p->sw - p->pl + kj * p->dw;                           \
                            if (xx < 0 || xx >= p->iw)                                             \
                                continue;                                                          \
                            T v = xp[yy * p->iw + xx];                                             \
                            m = v > m ? v : m;                                                     \
                        }                                                                          \
                    }                                                                              \
                    yp[i * p->ow + j] = m;                                                         \
                }                                                                                  \
        }                                                                                          \
    } while (0)

static void maxpool(const its_win_params *p, its_dtype dt, const void *x, void *y)
{
    if (dt == ITS_DT_FLOAT32)
        MAXPOOL_T(float, -INFINITY);
    else if (dt == ITS_DT_UINT8)
        MAXPOOL_T(uint8_t, 0);
    else
        MAXPOOL_T(int8_t, -128);
}

/* ---- Conv (reference, float) and ConvInteger (int32 accumulation) ---- */

static void conv_ref(const its_win_params *p, const float *x, const float *w, const float *b,
                     float *y)
{
    int64_t cg = p->c / p->group, mg = p->m / p->group;
#pragma omp parallel for collapse(2)
    for (int64_t nn = 0; nn < p->n; nn++)
        for (int64_t m = 0; m < p->m; m++) {
            int64_t g = m / mg;
            float *yp = y + (nn * p->m + m) * p->oh * p->ow;
            for (int64_t i = 0; i < p->oh; i++)
                for (int64_t j = 0; j < p->ow; j++) {
                    float acc = b ? b[m] : 0.f;
                    for (int64_t c = 0; c < cg; c++) {
                        const float *xp = x + (nn * p->c + g * cg + c) * p->ih * p->iw;
                        const float *wp = w + (m * cg + c) * p->kh * p->kw;
                        for (int64_t ki = 0; ki < p->kh; ki++) {
                            int64_t yy = i * p->sh - p->pt + ki * p->dh;
                            if (yy < 0 || yy >= p->ih)
                                continue;
                            for (int64_t kj = 0; kj < p->kw; kj++) {
                                int64_t xx = j * p->sw - p->pl + kj * p->dw;
                                if (xx < 0 || xx >= p->iw)
                                    continue;
                                acc += xp[yy * p->iw + xx] * wp[ki * p->kw + kj];
                            }
                        }
                    }
                    yp[i * p->ow + j] = acc;
                }
        }
}

static inline int32_t ld8(const void *p, int64_t i, int is_signed)
{
    return is_signed ? ((const int8_t *)p)[i] : ((const uint8_t *)p)[i];
}

/*
 * ConvInteger: y = sum (x - x_zp) * (w - w_zp) in int32. Padding contributes zero (the
 * padded value equals x_zp). Weights are widened to int16 once per output channel so that
 * the inner loop is a plain integer multiply-add the compiler vectorises.
 */
static void conv_integer(const its_win_params *p, const void *x, int xs, int32_t xzp, const void *w,
                         int ws, const void *wzp, int64_t n_wzp, int32_t *y)
{
    int64_t cg = p->c / p->group, mg = p->m / p->group;
    int64_t plane = p->ih * p->iw, kk = p->kh * p->kw;
#pragma omp parallel for collapse(2)
    for (int64_t nn = 0; nn < p->n; nn++)
        for (int64_t m = 0; m < p->m; m++) {
            int64_t g = m / mg;
            int32_t wz = wzp ? ld8(wzp, n_wzp > 1 ? m : 0, ws) : 0;
            int32_t *yp = y + (nn * p->m + m) * p->oh * p->ow;
            for (int64_t i = 0; i < p->oh * p->ow; i++)
                yp[i] = 0;
            for (int64_t c = 0; c < cg; c++) {
                const int64_t xbase = (nn * p->c + g * cg + c) * plane;
                for (int64_t ki = 0; ki < p->kh; ki++)
                    for (int64_t kj = 0; kj < p->kw; kj++) {
                        int32_t wv = ld8(w, (m * cg + c) * kk + ki * p->kw + kj, ws) - wz;
                        if (wv == 0)
                            continue;
                        for (int64_t i = 0; i < p->oh; i++) {
                            int64_t yy = i * p->sh - p->pt + ki * p->dh;
                            if (yy < 0 || yy >= p->ih)
                                continue;
                            int32_t *yr = yp + i * p->ow;
                            int64_t j0 = 0, j1 = p->ow;
                            /* columns whose tap lands inside the row */
                            while (j0 < j1 && j0 * p->sw - p->pl + kj * p->dw < 0)
                                j0++;
                            while (j1 > j0 && (j1 - 1) * p->sw - p->pl + kj * p->dw >= p->iw)
                                j1--;
                            int64_t xo = xbase + yy * p->iw - p->pl + kj * p->dw;
                            if (xs) {
                                const int8_t *xp = (const int8_t *)x + xo;
                                for (int64_t j = j0; j < j1; j++)
                                    yr[j] += ((int32_t)xp[j * p->sw] - xzp) * wv;
                            } else {
                                const uint8_t *xp = (const uint8_t *)x + xo;
                                for (int64_t j = j0; j < j1; j++)
                                    yr[j] += ((int32_t)xp[j * p->sw] - xzp) * wv;
                            }
                        }
                    }
            }
        }
}

/* ---- MatMul (float, broadcast batch) ---- */

static void matmul(const its_shape *as, const float *a, const its_shape *bs, const float *b,
                   const its_shape *os, float *y)
{
    its_shape A = *as, B = *bs;
    if (A.rank == 1) {
        A.rank = 2;
        A.dims[1] = A.dims[0];
        A.dims[0] = 1;
    }
    if (B.rank == 1) {
        B.rank = 2;
        B.dims[1] = 1;
    }
    int64_t M = A.dims[A.rank - 2], K = A.dims[A.rank - 1], N = B.dims[B.rank - 1];
    its_shape ba = A, bb = B, bo;
    ba.rank -= 2;
    bb.rank -= 2;
    its__broadcast(&ba, &bb, &bo);
    int64_t sa[ITS_MAX_DIMS], sb[ITS_MAX_DIMS];
    bstrides(&ba, &bo, sa);
    bstrides(&bb, &bo, sb);
    int64_t nb = numel(&bo);
    (void)os;
#pragma omp parallel for collapse(2)
    for (int64_t bi = 0; bi < nb; bi++)
        for (int64_t i = 0; i < M; i++) {
            int64_t rem = bi, oa = 0, ob = 0;
            for (int d = bo.rank - 1; d >= 0; d--) {
                int64_t c = rem % bo.dims[d];
                rem /= bo.dims[d];
                oa += c * sa[d];
                ob += c * sb[d];
            }
            const float *ap = a + oa * M * K + i * K;
            const float *bp = b + ob * K * N;
            float *yp = y + (bi * M + i) * N;
            for (int64_t j = 0; j < N; j++)
                yp[j] = 0.f;
            for (int64_t k = 0; k < K; k++) {
                float av = ap[k];
                const float *br = bp + k * N;
                for (int64_t j = 0; j < N; j++)
                    yp[j] += av * br[j];
            }
        }
}

/* ---- quantization ---- */

static inline int32_t sat(float v, int lo, int hi)
{
    if (!(v >= (float)lo)) /* also NaN */
        return v != v ? 0 : lo;
    if (v > (float)hi)
        return hi;
    return (int32_t)v;
}

static void quant_index(const its_shape *xs, int axis, int64_t *outer, int64_t *ch, int64_t *inner)
{
    *outer = 1;
    *ch = 1;
    *inner = 1;
    if (axis < 0) {
        *inner = numel(xs);
        return;
    }
    for (int d = 0; d < xs->rank; d++) {
        if (d < axis)
            *outer *= xs->dims[d];
        else if (d == axis)
            *ch = xs->dims[d];
        else
            *inner *= xs->dims[d];
    }
}

/*
 * float -> 8 bit: sat(round_half_even(x / s) + z). Clamping x / s to [lo - z, hi - z] before
 * rounding is the same (the bounds are integers) and lets the rounding be the add-subtract of
 * 1.5 * 2^23 (exact round-half-even for |q| < 2^22 in the default rounding mode), so the loop
 * vectorizes. NaN gives 0 like sat().
 */
static void quant_f32_run(const float *x, int64_t ne, float s, int32_t z, int is_s8, void *y)
{
    const float lo = (float)((is_s8 ? -128 : 0) - z), hi = (float)((is_s8 ? 127 : 255) - z);
    const float magic = 12582912.f, fz = (float)z;
    if (is_s8) {
        int8_t *o = y;
#pragma omp simd
        for (int64_t i = 0; i < ne; i++) {
            float q = x[i] / s;
            q = q == q ? q : -fz;
            q = q > lo ? q : lo;
            q = q < hi ? q : hi;
            o[i] = (int8_t)((int32_t)((q + magic) - magic) + z);
        }
    } else {
        uint8_t *o = y;
#pragma omp simd
        for (int64_t i = 0; i < ne; i++) {
            float q = x[i] / s;
            q = q == q ? q : -fz;
            q = q > lo ? q : lo;
            q = q < hi ? q : hi;
            o[i] = (uint8_t)((int32_t)((q + magic) - magic) + z);
        }
    }
}

static void dequant_8_run(const void *x, int64_t ne, float s, int32_t z, int is_s8, float *y)
{
    if (is_s8) {
        const int8_t *v = x;
#pragma omp simd
        for (int64_t i = 0; i < ne; i++)
            y[i] = (float)((int32_t)v[i] - z) * s;
    } else {
        const uint8_t *v = x;
#pragma omp simd
        for (int64_t i = 0; i < ne; i++)
            y[i] = (float)((int32_t)v[i] - z) * s;
    }
}

#define QCHUNK 16384 /* elements per parallel chunk of the 8-bit fast paths */

static void quantize(const its_shape *xs, its_dtype xt, const void *x, int axis, const float *scale,
                     its_dtype yt, const void *zp, void *y)
{
    int64_t outer, ch, inner;
    quant_index(xs, axis, &outer, &ch, &inner);
    int lo = yt == ITS_DT_INT8 ? -128 : 0, hi = yt == ITS_DT_INT8 ? 127 : 255;
    if (xt == ITS_DT_FLOAT32) { /* the fast path: chunks of one channel's run */
        int64_t per = (inner + QCHUNK - 1) / QCHUNK, total = outer * ch * per;
        int s8 = yt == ITS_DT_INT8;
#pragma omp parallel for if (outer * ch * inner > PAR_MIN)
        for (int64_t k = 0; k < total; k++) {
            int64_t oc = k / per, part = k % per, c = oc % ch;
            int64_t i0 = part * QCHUNK, i1 = i0 + QCHUNK < inner ? i0 + QCHUNK : inner;
            int32_t z = zp ? ld8(zp, c, s8) : 0;
            quant_f32_run((const float *)x + oc * inner + i0, i1 - i0, scale[c], z, s8,
                          (uint8_t *)y + oc * inner + i0);
        }
        return;
    }
#pragma omp parallel for collapse(2) if (outer * ch * inner > PAR_MIN)
    for (int64_t o = 0; o < outer; o++)
        for (int64_t c = 0; c < ch; c++) {
            float s = scale[c];
            int32_t z = zp ? ld8(zp, c, yt == ITS_DT_INT8) : 0;
            int64_t base = (o * ch + c) * inner;
            for (int64_t i = 0; i < inner; i++) {
                float v = (float)((const int32_t *)x)[base + i];
                float q = nearbyintf(v / s) + (float)z;
                int32_t r = sat(q, lo, hi);
                if (yt == ITS_DT_INT8)
                    ((int8_t *)y)[base + i] = (int8_t)r;
                else
                    ((uint8_t *)y)[base + i] = (uint8_t)r;
            }
        }
}

static void dequantize(const its_shape *xs, its_dtype xt, const void *x, int axis,
                       const float *scale, const void *zp, float *y)
{
    int64_t outer, ch, inner;
    quant_index(xs, axis, &outer, &ch, &inner);
    if (xt != ITS_DT_INT32) { /* 8-bit fast path, chunked like quantize */
        int64_t per = (inner + QCHUNK - 1) / QCHUNK, total = outer * ch * per;
        int s8 = xt == ITS_DT_INT8;
#pragma omp parallel for if (outer * ch * inner > PAR_MIN)
        for (int64_t k = 0; k < total; k++) {
            int64_t oc = k / per, part = k % per, c = oc % ch;
            int64_t i0 = part * QCHUNK, i1 = i0 + QCHUNK < inner ? i0 + QCHUNK : inner;
            int32_t z = zp ? ld8(zp, c, s8) : 0;
            dequant_8_run((const uint8_t *)x + oc * inner + i0, i1 - i0, scale[c], z, s8,
                          y + oc * inner + i0);
        }
        return;
    }
#pragma omp parallel for collapse(2) if (outer * ch * inner > PAR_MIN)
    for (int64_t o = 0; o < outer; o++)
        for (int64_t c = 0; c < ch; c++) {
            float s = scale[c];
            int32_t z = zp ? ((const int32_t *)zp)[c] : 0;
            int64_t base = (o * ch + c) * inner;
            for (int64_t i = 0; i < inner; i++)
                y[base + i] = (float)((int64_t)((const int32_t *)x)[base + i] - z) * s;
        }
}

/*
 * DynamicQuantizeLinear (uint8): the range always includes 0; scale = (max - min) / 255;
 * zero point = saturate(round_half_even(0 - min / scale)); y = saturate(round(x / scale) +
 * zp). An all-zero input would give scale 0; like ONNX Runtime we report scale 1 and zero
 * point 0 instead of dividing by zero.
 */
static void dyn_quant(const float *x, int64_t ne, uint8_t *y, float *yscale, uint8_t *yzp)
{
    float mn = 0.f, mx = 0.f;
    for (int64_t i = 0; i < ne; i++) {
        mn = x[i] < mn ? x[i] : mn;
        mx = x[i] > mx ? x[i] : mx;
    }
    if (mx == mn) { /* all zeros: ONNX Runtime reports scale 1, zero point 0 */
        *yscale = 1.f;
        *yzp = 0;
        memset(y, 0, (size_t)ne);
        return;
    }
    float scale = (mx - mn) / 255.f;
    float zpf = nearbyintf(0.f - mn / scale);
    int32_t zp = sat(zpf, 0, 255);
    *yscale = scale;
    *yzp = (uint8_t)zp;
#pragma omp parallel for if (ne > PAR_MIN)
    for (int64_t i = 0; i < ne; i++)
        y[i] = (uint8_t)sat(nearbyintf(x[i] / scale) + (float)zp, 0, 255);
}

/* ---- Cast ---- */

static double ld_any(its_dtype dt, const void *p, int64_t i)
{
    switch (dt) {
    case ITS_DT_FLOAT32:
        return ((const float *)p)[i];
    case ITS_DT_UINT8:
        return ((const uint8_t *)p)[i];
    case ITS_DT_INT8:
        return ((const int8_t *)p)[i];
    case ITS_DT_INT32:
        return ((const int32_t *)p)[i];
    case ITS_DT_INT64:
        return (double)((const int64_t *)p)[i];
    case ITS_DT_BOOL:
        return ((const uint8_t *)p)[i] != 0;
    case ITS_DT_FLOAT16:
        return its__half_to_float(((const uint16_t *)p)[i]);
    }
    return 0;
}

static double clampd(double v, double lo, double hi)
{
    if (v != v)
        return 0;
    return v < lo ? lo : v > hi ? hi : v;
}

static void cast(its_dtype xt, const void *x, its_dtype yt, void *y, int64_t ne)
{
    if (xt == yt) {
        memcpy(y, x, (size_t)ne * its__dtype_size(xt));
        return;
    }
    if (xt == ITS_DT_INT64 && yt == ITS_DT_FLOAT32) {
        for (int64_t i = 0; i < ne; i++)
            ((float *)y)[i] = (float)((const int64_t *)x)[i];
        return;
    }
    if (xt == ITS_DT_INT32 && yt == ITS_DT_FLOAT32) { /* ConvInteger -> float, hot */
#pragma omp parallel for if (ne > PAR_MIN)
        for (int64_t i = 0; i < ne; i++)
            ((float *)y)[i] = (float)((const int32_t *)x)[i];
        return;
    }
    for (int64_t i = 0; i < ne; i++) {
        double v = ld_any(xt, x, i);
        switch (yt) {
        case ITS_DT_FLOAT32:
            ((float *)y)[i] = (float)v;
            break;
        case ITS_DT_FLOAT16:
            ((uint16_t *)y)[i] = its__float_to_half((float)v);
            break;
        case ITS_DT_UINT8:
            ((uint8_t *)y)[i] = (uint8_t)clampd(trunc(v), 0, 255);
            break;
        case ITS_DT_INT8:
            ((int8_t *)y)[i] = (int8_t)clampd(trunc(v), -128, 127);
            break;
        case ITS_DT_INT32:
            ((int32_t *)y)[i] = (int32_t)clampd(trunc(v), -2147483648.0, 2147483647.0);
            break;
        case ITS_DT_INT64:
            ((int64_t *)y)[i] = (int64_t)clampd(trunc(v), -9.2e18, 9.2e18);
            break;
        case ITS_DT_BOOL:
            ((uint8_t *)y)[i] = v != 0;
            break;
        }
    }
}

/* ---- dispatch ---- */

int its__kernel_run(const its_graph *g, const its_ir_node *n, const its_shape *is,
                    const void *const *in, const its_shape *os, void *const *out)
{
    char err[8];
    const size_t E = sizeof err;
    its_dtype xt = g->tensors[n->in[0]].dtype;
    its_dtype yt = n->n_out > 0 && n->out[0] >= 0 ? g->tensors[n->out[0]].dtype : xt;
    size_t es = its__dtype_size(xt);
    int rc = 0;
    switch (n->op) {
    case ITS_OP_ADD:
    case ITS_OP_SUB:
    case ITS_OP_MUL:
    case ITS_OP_DIV:
        return binary(n->op, xt, &is[0], in[0], &is[1], in[1], &os[0], out[0]);
    case ITS_OP_SIGMOID:
    case ITS_OP_LEAKY_RELU:
    case ITS_OP_RELU:
    case ITS_OP_SILU:
        unary(n, in[0], out[0], numel(&is[0]));
        return 0;
    case ITS_OP_SOFTMAX: {
        int64_t o, d, i;
        if ((rc = its__softmax_params(g, n, &is[0], &o, &d, &i, err, E)) < 0)
            return rc;
        softmax(in[0], out[0], o, d, i);
        return 0;
    }
    case ITS_OP_TRANSPOSE: {
        int perm[ITS_MAX_DIMS];
        if ((rc = its__transpose_perm(n, is[0].rank, perm, err, E)) < 0)
            return rc;
        transpose(&is[0], in[0], perm, out[0], es);
        return 0;
    }
    case ITS_OP_SLICE: {
        its_slice_params p;
        its_shape o;
        if ((rc = its__slice_params(g, n, &is[0], &p, &o, err, E)) < 0)
            return rc;
        slice(&is[0], in[0], &p, &os[0], out[0], es);
        return 0;
    }
    case ITS_OP_CONCAT: {
        int axis;
        if ((rc = its__concat_axis(n, is[0].rank, &axis, err, E)) < 0)
            return rc;
        concat(n, axis, is, in, &os[0], out[0], es);
        return 0;
    }
    case ITS_OP_SPLIT: {
        int axis;
        int64_t sizes[ITS_IR_MAX_IO];
        if ((rc = its__split_params(g, n, &is[0], &axis, sizes, err, E)) < 0)
            return rc;
        split(n->n_out, axis, &is[0], in[0], sizes, out, es);
        return 0;
    }
    case ITS_OP_RESHAPE:
    case ITS_OP_IDENTITY:
        if (out[0] != in[0])
            memcpy(out[0], in[0], (size_t)numel(&is[0]) * es);
        return 0;
    case ITS_OP_RESIZE: {
        its_resize_params p;
        its_shape o;
        if ((rc = its__resize_params(g, n, &is[0], (int)os[0].dims[0], &p, &o, err, E)) < 0)
            return rc;
        resize(&p, &is[0], in[0], &os[0], out[0]);
        return 0;
    }
    case ITS_OP_MAXPOOL: {
        its_win_params p;
        if ((rc = its__win_params(g, n, &is[0], NULL, &p, err, E)) < 0)
            return rc;
        maxpool(&p, xt, in[0], out[0]);
        return 0;
    }
    case ITS_OP_CONV: {
        its_win_params p;
        if ((rc = its__win_params(g, n, &is[0], &is[1], &p, err, E)) < 0)
            return rc;
        conv_ref(&p, in[0], in[1], n->n_in > 2 && n->in[2] >= 0 ? in[2] : NULL, out[0]);
        return 0;
    }
    case ITS_OP_CONV_INTEGER: {
        its_win_params p;
        if ((rc = its__win_params(g, n, &is[0], &is[1], &p, err, E)) < 0)
            return rc;
        int xs = xt == ITS_DT_INT8, ws = g->tensors[n->in[1]].dtype == ITS_DT_INT8;
        int32_t xzp = n->n_in > 2 && n->in[2] >= 0 ? ld8(in[2], 0, xs) : 0;
        const void *wzp = n->n_in > 3 && n->in[3] >= 0 ? in[3] : NULL;
        conv_integer(&p, in[0], xs, xzp, in[1], ws, wzp, wzp ? numel(&is[3]) : 0, out[0]);
        return 0;
    }
    case ITS_OP_MATMUL:
        matmul(&is[0], in[0], &is[1], in[1], &os[0], out[0]);
        return 0;
    case ITS_OP_QUANTIZE_LINEAR:
    case ITS_OP_DEQUANTIZE_LINEAR: {
        int axis;
        if ((rc = its__quant_axis(g, n, &is[0], &is[1], &axis, err, E)) < 0)
            return rc;
        const void *zp = n->n_in > 2 && n->in[2] >= 0 ? in[2] : NULL;
        if (n->op == ITS_OP_QUANTIZE_LINEAR)
            quantize(&is[0], xt, in[0], axis, in[1], yt, zp, out[0]);
        else
            dequantize(&is[0], xt, in[0], axis, in[1], zp, out[0]);
        return 0;
    }
    case ITS_OP_DYNAMIC_QUANTIZE_LINEAR: {
        float sc;
        uint8_t zp;
        dyn_quant(in[0], numel(&is[0]), out[0], out[1] ? (float *)out[1] : &sc,
                  out[2] ? (uint8_t *)out[2] : &zp);
        return 0;
    }
    case ITS_OP_CAST:
        cast(xt, in[0], yt, out[0], numel(&is[0]));
        return 0;
    case ITS_OP_LAYOUT:
        return its__kernel_run_nhwc(g, n, is, in, os, out);
    default:
        return ITS_EUNSUPPORTED;
    }
}

/* ---- channels-last variants ---- */

static its_shape nhwc_shape(const its_shape *s)
{
    its_shape p = *s;
    p.dims[1] = s->dims[2];
    p.dims[2] = s->dims[3];
    p.dims[3] = s->dims[1];
    return p;
}

static int same_shape(const its_shape *a, const its_shape *b)
{
    if (a->rank != b->rank)
        return 0;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i])
            return 0;
    return 1;
}

int its__nhwc_capable(const its_graph *g, const its_ir_node *n)
{
    const its_ir_tensor *x = n->n_in > 0 && n->in[0] >= 0 ? &g->tensors[n->in[0]] : NULL;
    if (!x || x->shape.rank != 4)
        return 0;
    if (n->op == ITS_OP_QUANTIZE_LINEAR || n->op == ITS_OP_DEQUANTIZE_LINEAR)
        return its__shape_numel(&g->tensors[n->in[1]].shape) == 1; /* per-tensor: elementwise */
    if (x->dtype != ITS_DT_FLOAT32)
        return 0;
    char err[8];
    switch (n->op) {
    case ITS_OP_SIGMOID:
    case ITS_OP_SILU:
    case ITS_OP_RELU:
    case ITS_OP_LEAKY_RELU:
    case ITS_OP_LAYOUT:
        return 1;
    case ITS_OP_ADD:
    case ITS_OP_SUB:
    case ITS_OP_MUL:
    case ITS_OP_DIV: {
        /* same-shape activations, or a scalar operand; never a broadcast */
        const its_ir_tensor *y = &g->tensors[n->in[1]];
        if (its__shape_numel(&y->shape) == 1)
            return 1;
        return same_shape(&x->shape, &y->shape) && x->kind != ITS_TK_CONST &&
               y->kind != ITS_TK_CONST && x->batched == y->batched;
    }
    case ITS_OP_CONCAT: {
        int axis;
        return its__concat_axis(n, 4, &axis, err, sizeof err) == 0 && axis == 1;
    }
    case ITS_OP_SPLIT:
        return its__attr_i(n, "axis", 0) == 1 || its__attr_i(n, "axis", 0) == -3;
    case ITS_OP_MAXPOOL:
    case ITS_OP_RESIZE:
        return n->n_out == 1 || n->out[1] < 0;
    default:
        return 0;
    }
}

typedef struct win_job {
    const void *p; /* its_win_params or its_resize_params */
    const its_shape *xs, *os;
    const float *x;
    float *y;
} win_job;

/* output rows [r0, r1) of all images (row r: image r / oh, row r % oh) */
static void maxpool_nhwc_rows(void *arg, int64_t r0, int64_t r1)
{
    const win_job *jb = arg;
    const its_win_params *p = jb->p;
    const float *x = jb->x;
    int64_t C = p->c;
    for (int64_t r = r0; r < r1; r++) {
        int64_t nn = r / p->oh, i = r % p->oh;
        for (int64_t j = 0; j < p->ow; j++) {
            float *yp = jb->y + ((nn * p->oh + i) * p->ow + j) * C;
            for (int64_t c = 0; c < C; c++)
                yp[c] = -INFINITY;
            for (int64_t ki = 0; ki < p->kh; ki++) {
                int64_t yy = i * p->sh - p->pt + ki * p->dh;
                if (yy < 0 || yy >= p->ih)
                    continue;
                for (int64_t kj = 0; kj < p->kw; kj++) {
                    int64_t xx = j * p->sw - p->pl + kj * p->dw;
                    if (xx < 0 || xx >= p->iw)
                        continue;
                    const float *xp = x + ((nn * p->ih + yy) * p->iw + xx) * C;
                    for (int64_t c = 0; c < C; c++)
                        yp[c] = xp[c] > yp[c] ? xp[c] : yp[c];
                }
            }
        }
    }
}

static void maxpool_nhwc(const its_win_params *p, const float *x, float *y)
{
    win_job j = {.p = p, .x = x, .y = y};
    its__par_range(p->n * p->oh, p->ow * p->c * p->kh * p->kw, maxpool_nhwc_rows, &j);
}

static void resize_nhwc_rows(void *arg, int64_t r0, int64_t r1)
{
    const win_job *jb = arg;
    const its_resize_params *p = jb->p;
    const float *x = jb->x;
    int64_t C = jb->xs->dims[1], ih = jb->xs->dims[2], iw = jb->xs->dims[3];
    int64_t oh = jb->os->dims[2], ow = jb->os->dims[3];
    float sh = p->scale[2], sw = p->scale[3];
    size_t px = (size_t)C * sizeof(float);
    for (int64_t r = r0; r < r1; r++) {
        int64_t nn = r / oh, i = r % oh;
        float fy = src_coord(p->coord, (float)i, sh, ih, (float)ih * sh);
        for (int64_t j = 0; j < ow; j++) {
            float fx = src_coord(p->coord, (float)j, sw, iw, (float)iw * sw);
            float *yp = jb->y + ((nn * oh + i) * ow + j) * C;
            if (!p->linear) {
                int64_t sy = nearest_idx(p->nearest, fy, ih);
                int64_t sx = nearest_idx(p->nearest, fx, iw);
                memcpy(yp, x + ((nn * ih + sy) * iw + sx) * C, px);
                continue;
            }
            float cy = fy < 0.f ? 0.f : fy > (float)(ih - 1) ? (float)(ih - 1) : fy;
            float cx = fx < 0.f ? 0.f : fx > (float)(iw - 1) ? (float)(iw - 1) : fx;
            int64_t y0 = (int64_t)cy, x0 = (int64_t)cx;
            int64_t y1 = y0 + 1 < ih ? y0 + 1 : y0, x1 = x0 + 1 < iw ? x0 + 1 : x0;
            float dy = cy - (float)y0, dx = cx - (float)x0;
            const float *p00 = x + ((nn * ih + y0) * iw + x0) * C;
            const float *p01 = x + ((nn * ih + y0) * iw + x1) * C;
            const float *p10 = x + ((nn * ih + y1) * iw + x0) * C;
            const float *p11 = x + ((nn * ih + y1) * iw + x1) * C;
            float w00 = (1 - dy) * (1 - dx), w01 = (1 - dy) * dx, w10 = dy * (1 - dx),
                  w11 = dy * dx;
            for (int64_t c = 0; c < C; c++)
                yp[c] = p00[c] * w00 + p01[c] * w01 + p10[c] * w10 + p11[c] * w11;
        }
    }
}

static void resize_nhwc(const its_resize_params *p, const its_shape *xs, const float *x,
                        const its_shape *os, float *y)
{
    win_job j = {.p = p, .xs = xs, .os = os, .x = x, .y = y};
    its__par_range(os->dims[0] * os->dims[2], os->dims[3] * xs->dims[1], resize_nhwc_rows, &j);
}

int its__kernel_run_nhwc(const its_graph *g, const its_ir_node *n, const its_shape *is,
                         const void *const *in, const its_shape *os, void *const *out)
{
    char err[8];
    const size_t E = sizeof err;
    int rc;
    switch (n->op) {
    case ITS_OP_LAYOUT: {
        int to = (int)its__attr_i(n, "to", 1);
        int64_t N = is[0].dims[0], C = is[0].dims[1], HW = is[0].dims[2] * is[0].dims[3];
        size_t es = its__dtype_size(g->tensors[n->in[0]].dtype);
        if (to) /* NCHW -> NHWC: per image [C, HW] -> [HW, C] */
            transpose_2d(N, C, HW, in[0], out[0], es);
        else /* physical NHWC -> NCHW */
            transpose_2d(N, HW, C, in[0], out[0], es);
        return 0;
    }
    case ITS_OP_CONCAT: {
        its_shape ps[ITS_IR_MAX_IO], po = nhwc_shape(&os[0]);
        for (int k = 0; k < n->n_in; k++)
            ps[k] = nhwc_shape(&is[k]);
        concat(n, 3, ps, in, &po, out[0], sizeof(float));
        return 0;
    }
    case ITS_OP_SPLIT: { /* channels, physically the last axis */
        its_shape px = nhwc_shape(&is[0]);
        int axis;
        int64_t sizes[ITS_IR_MAX_IO];
        if ((rc = its__split_params(g, n, &is[0], &axis, sizes, err, E)) < 0)
            return rc;
        split(n->n_out, 3, &px, in[0], sizes, out, sizeof(float));
        return 0;
    }
    case ITS_OP_MAXPOOL: {
        its_win_params p;
        if ((rc = its__win_params(g, n, &is[0], NULL, &p, err, E)) < 0)
            return rc;
        maxpool_nhwc(&p, in[0], out[0]);
        return 0;
    }
    case ITS_OP_RESIZE: {
        its_resize_params p;
        its_shape o;
        if ((rc = its__resize_params(g, n, &is[0], (int)os[0].dims[0], &p, &o, err, E)) < 0)
            return rc;
        resize_nhwc(&p, &is[0], in[0], &os[0], out[0]);
        return 0;
    }
    case ITS_OP_SIGMOID:
    case ITS_OP_SILU:
    case ITS_OP_RELU:
    case ITS_OP_LEAKY_RELU:
    case ITS_OP_ADD:
    case ITS_OP_SUB:
    case ITS_OP_MUL:
    case ITS_OP_DIV: /* elementwise: the same in any layout shared by all operands */
    case ITS_OP_QUANTIZE_LINEAR:
    case ITS_OP_DEQUANTIZE_LINEAR:
        return its__kernel_run(g, n, is, in, os, out);
    default:
        return ITS_EUNSUPPORTED;
    }
}

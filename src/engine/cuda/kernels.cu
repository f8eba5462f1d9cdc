/*
 * kernels.cu - the cuda backend's own kernels (cuda_kernels.h): strided element-wise and copy
 * with broadcasting and fp32/fp16 conversion (layout changes, concat into slices, split,
 * slice, transpose, residual adds), the convolution epilogue (bias, activation, residual),
 * softmax, max pooling and nearest upsampling. All fp16 storage with fp32 arithmetic.
 */
#include "cuda_kernels.h"

#include <cuda_fp16.h>

#include "cuda_check.h"

namespace
{

struct nd_args {
    int rank;
    int64_t dims[ITS_CUDA_ND_MAX];
    int64_t st[3][ITS_CUDA_ND_MAX];
};

__device__ __forceinline__ float act_f(int act, float v, float alpha)
{
    switch (act) {
    case 1:
        return fmaxf(v, 0.0f);
    case 2:
        return v >= 0.0f ? v : v * alpha;
    case 3:
        return 1.0f / (1.0f + __expf(-v));
    case 4:
        return v / (1.0f + __expf(-v));
    default:
        return v;
    }
}

template <bool AF32, bool OF32>
__global__ void ewise_nd(int op, const void *a, const __half *b, void *out, nd_args nd,
                         int64_t total, float alpha)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t rem = i, oo = 0, ia = 0, ib = 0;
        for (int d = nd.rank - 1; d >= 0; d--) {
            int64_t q = rem / nd.dims[d], idx = rem - q * nd.dims[d];
            rem = q;
            oo += idx * nd.st[0][d];
            ia += idx * nd.st[1][d];
            ib += idx * nd.st[2][d];
        }
        float x = AF32 ? ((const float *)a)[ia] : __half2float(((const __half *)a)[ia]);
        float r;
        switch (op) {
        case ITS_CUDA_EW_ADD:
            r = x + __half2float(b[ib]);
            break;
        case ITS_CUDA_EW_SUB:
            r = x - __half2float(b[ib]);
            break;
        case ITS_CUDA_EW_MUL:
            r = x * __half2float(b[ib]);
            break;
        case ITS_CUDA_EW_DIV:
            r = x / __half2float(b[ib]);
            break;
        case ITS_CUDA_EW_SIGMOID:
            r = act_f(3, x, 0.0f);
            break;
        case ITS_CUDA_EW_SILU:
            r = act_f(4, x, 0.0f);
            break;
        case ITS_CUDA_EW_RELU:
            r = act_f(1, x, 0.0f);
            break;
        case ITS_CUDA_EW_LEAKY:
            r = act_f(2, x, alpha);
            break;
        default:
            r = x;
        }
        if (OF32)
            ((float *)out)[oo] = r;
        else
            ((__half *)out)[oo] = __float2half_rn(r);
    }
}

__device__ __forceinline__ float ew_apply(int op, float x, float y, float alpha)
{
    switch (op) {
    case ITS_CUDA_EW_ADD:
        return x + y;
    case ITS_CUDA_EW_SUB:
        return x - y;
    case ITS_CUDA_EW_MUL:
        return x * y;
    case ITS_CUDA_EW_DIV:
        return x / y;
    case ITS_CUDA_EW_SIGMOID:
        return act_f(3, x, 0.0f);
    case ITS_CUDA_EW_SILU:
        return act_f(4, x, 0.0f);
    case ITS_CUDA_EW_RELU:
        return act_f(1, x, 0.0f);
    case ITS_CUDA_EW_LEAKY:
        return act_f(2, x, alpha);
    default:
        return x;
    }
}

/* fp16 -> fp16, innermost dim contiguous in out and a (and b, or b constant along it), a
 * multiple of 8: 16-byte loads and stores, 32-bit index arithmetic over <= 4 collapsed dims.
 * dims[rank-1] is counted in groups of 8. */
struct vec_args {
    int rank;
    int dims[4];
    int st[3][4]; /* element strides; st[k][rank-1] is 1 (or 0 for a broadcast b) */
};

__global__ void ewise_vec8(int op, const __half *a, const __half *b, __half *out, vec_args v,
                           int total8, float alpha)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total8; i += gridDim.x * blockDim.x) {
        int rem = i, oo = 0, ia = 0, ib = 0;
        for (int d = v.rank - 1; d >= 0; d--) {
            int dd = d == v.rank - 1 ? v.dims[d] / 8 : v.dims[d];
            int q = rem / dd, idx = rem - q * dd;
            rem = q;
            if (d == v.rank - 1)
                idx *= 8;
            oo += idx * v.st[0][d];
            ia += idx * v.st[1][d];
            ib += idx * v.st[2][d];
        }
        uint4 va = *reinterpret_cast<const uint4 *>(a + ia);
        if (op == ITS_CUDA_EW_COPY) {
            *reinterpret_cast<uint4 *>(out + oo) = va;
            continue;
        }
        __half2 *ha = reinterpret_cast<__half2 *>(&va);
        float bv[8];
        if (b) {
            if (v.st[2][v.rank - 1] == 1) {
                uint4 vb = *reinterpret_cast<const uint4 *>(b + ib);
                const __half2 *hb = reinterpret_cast<const __half2 *>(&vb);
#pragma unroll
                for (int j = 0; j < 4; j++) {
                    float2 f = __half22float2(hb[j]);
                    bv[2 * j] = f.x;
                    bv[2 * j + 1] = f.y;
                }
            } else {
                float f = __half2float(b[ib]);
#pragma unroll
                for (int j = 0; j < 8; j++)
                    bv[j] = f;
            }
        }
#pragma unroll
        for (int j = 0; j < 4; j++) {
            float2 f = __half22float2(ha[j]);
            f.x = ew_apply(op, f.x, b ? bv[2 * j] : 0.0f, alpha);
            f.y = ew_apply(op, f.y, b ? bv[2 * j + 1] : 0.0f, alpha);
            ha[j] = __floats2half2_rn(f.x, f.y);
        }
        *reinterpret_cast<uint4 *>(out + oo) = va;
    }
}

/* Planar to interleaved with few channels (NCHW fp32 input -> NHWC fp16): one thread per
 * pixel, each plane read coalesced. out[b][i][c] = in[b][c][i], c < nc <= 8. */
template <typename TI, typename TO>
__global__ void planar_to_packed(const TI *in, TO *out, int64_t pix, int nc, int batch)
{
    int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (t >= pix * batch)
        return;
    int64_t b = t / pix, i = t - b * pix;
    const TI *src = in + b * pix * nc + i;
    TO *dst = out + (b * pix + i) * nc;
    for (int c = 0; c < nc; c++)
        dst[c] = (TO)(float)src[(int64_t)c * pix];
}

/* Batched 2-D transpose through shared memory (layout changes NCHW <-> NHWC):
 * out[b][i][j] = in[b][j][i], i < d1, j < d2; both sides coalesced. */
template <typename TI, typename TO>
__global__ void transpose_tiled(const TI *in, TO *out, int d1, int d2)
{
    __shared__ float tile[32][33];
    int b = blockIdx.z;
    int i0 = blockIdx.y * 32, j0 = blockIdx.x * 32;
    const TI *src = in + (size_t)b * d1 * d2;
    TO *dst = out + (size_t)b * d1 * d2;
    for (int k = threadIdx.y; k < 32; k += 8) {
        int j = j0 + k, i = i0 + threadIdx.x;
        if (i < d1 && j < d2)
            tile[k][threadIdx.x] = (float)src[(size_t)j * d1 + i];
    }
    __syncthreads();
    for (int k = threadIdx.y; k < 32; k += 8) {
        int i = i0 + k, j = j0 + threadIdx.x;
        if (i < d1 && j < d2)
            dst[(size_t)i * d2 + j] = (TO)tile[threadIdx.x][k];
    }
}

/* 8 channels (16 bytes) per thread when k % 8 == 0, the common case. */
__global__ void conv_epilogue8(__half *y, const float *bias, const __half *sum, int64_t total8,
                               int k, int act, float alpha, int sum_first)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total8;
         i += (int64_t)gridDim.x * blockDim.x) {
        uint4 v = reinterpret_cast<uint4 *>(y)[i];
        uint4 s = sum ? reinterpret_cast<const uint4 *>(sum)[i] : make_uint4(0, 0, 0, 0);
        __half2 *hv = reinterpret_cast<__half2 *>(&v);
        const __half2 *hs = reinterpret_cast<const __half2 *>(&s);
        int c0 = (int)((i * 8) % k);
#pragma unroll
        for (int j = 0; j < 4; j++) {
            float2 f = __half22float2(hv[j]);
            float2 fs = __half22float2(hs[j]);
            if (bias) {
                f.x += bias[c0 + 2 * j];
                f.y += bias[c0 + 2 * j + 1];
            }
            if (sum_first) {
                f.x = act_f(act, f.x + fs.x, alpha);
                f.y = act_f(act, f.y + fs.y, alpha);
            } else {
                f.x = act_f(act, f.x, alpha) + fs.x;
                f.y = act_f(act, f.y, alpha) + fs.y;
            }
            hv[j] = __floats2half2_rn(f.x, f.y);
        }
        reinterpret_cast<uint4 *>(y)[i] = v;
    }
}

__global__ void conv_epilogue1(__half *y, const float *bias, const __half *sum, int64_t total,
                               int k, int act, float alpha, int sum_first)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        float f = __half2float(y[i]) + (bias ? bias[i % k] : 0.0f);
        float s = sum ? __half2float(sum[i]) : 0.0f;
        f = sum_first ? act_f(act, f + s, alpha) : act_f(act, f, alpha) + s;
        y[i] = __float2half_rn(f);
    }
}

__global__ void softmax_mid(const __half *x, __half *y, int64_t outer, int n, int64_t inner)
{
    int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (t >= outer * inner)
        return;
    int64_t o = t / inner, in = t - o * inner;
    const __half *px = x + o * n * inner + in;
    __half *py = y + o * n * inner + in;
    float m = -INFINITY;
    for (int j = 0; j < n; j++)
        m = fmaxf(m, __half2float(px[(int64_t)j * inner]));
    float s = 0.0f;
    for (int j = 0; j < n; j++)
        s += __expf(__half2float(px[(int64_t)j * inner]) - m);
    float inv = 1.0f / s;
    for (int j = 0; j < n; j++)
        py[(int64_t)j * inner] =
            __float2half_rn(__expf(__half2float(px[(int64_t)j * inner]) - m) * inv);
}

/* Rows of length n contiguous (inner == 1): one warp per row. */
__global__ void softmax_rows(const __half *x, __half *y, int64_t rows, int n)
{
    int64_t row = (blockIdx.x * (int64_t)blockDim.x + threadIdx.x) / 32;
    int lane = threadIdx.x & 31;
    if (row >= rows)
        return;
    const __half *px = x + row * n;
    __half *py = y + row * n;
    float m = -INFINITY;
    for (int j = lane; j < n; j += 32)
        m = fmaxf(m, __half2float(px[j]));
    for (int o = 16; o > 0; o >>= 1)
        m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
    float s = 0.0f;
    for (int j = lane; j < n; j += 32)
        s += __expf(__half2float(px[j]) - m);
    for (int o = 16; o > 0; o >>= 1)
        s += __shfl_xor_sync(0xffffffffu, s, o);
    float inv = 1.0f / s;
    for (int j = lane; j < n; j += 32)
        py[j] = __float2half_rn(__expf(__half2float(px[j]) - m) * inv);
}

/* One thread per (b, oy, ox, 2 channels). */
__global__ void maxpool_nhwc(const __half *x, int64_t xcs, __half *y, int64_t ycs, int b, int h,
                             int w, int c, int k, int stride, int pad, int oh, int ow)
{
    int64_t total = (int64_t)b * oh * ow * c;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        int ch = (int)(i % c);
        int64_t p = i / c;
        int ox = (int)(p % ow);
        p /= ow;
        int oy = (int)(p % oh);
        int bb = (int)(p / oh);
        float m = -INFINITY;
        for (int dy = 0; dy < k; dy++) {
            int iy = oy * stride - pad + dy;
            if (iy < 0 || iy >= h)
                continue;
            for (int dx = 0; dx < k; dx++) {
                int ix = ox * stride - pad + dx;
                if (ix < 0 || ix >= w)
                    continue;
                m = fmaxf(m, __half2float(x[(((int64_t)bb * h + iy) * w + ix) * xcs + ch]));
            }
        }
        y[(((int64_t)bb * oh + oy) * ow + ox) * ycs + ch] = __float2half_rn(m);
    }
}

/* 8 channels (16 bytes) per thread: c8 = c / 8. */
__global__ void upsample_nhwc8(const uint4 *x, int64_t xcs8, uint4 *y, int64_t ycs8, int b, int h,
                               int w, int c8, int fy, int fx)
{
    int oh = h * fy, ow = w * fx;
    int64_t total = (int64_t)b * oh * ow * c8;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        int ch = (int)(i % c8);
        int64_t p = i / c8;
        int ox = (int)(p % ow);
        p /= ow;
        int oy = (int)(p % oh);
        int bb = (int)(p / oh);
        y[(((int64_t)bb * oh + oy) * ow + ox) * ycs8 + ch] =
            x[(((int64_t)bb * h + oy / fy) * w + ox / fx) * xcs8 + ch];
    }
}

__global__ void maxpool_nhwc8(const __half2 *x, int64_t xcs2, __half2 *y, int64_t ycs2, int b,
                              int h, int w, int c2, int k, int stride, int pad, int oh, int ow)
{
    int c8 = c2 / 4;
    int64_t total = (int64_t)b * oh * ow * c8;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        int ch = (int)(i % c8);
        int64_t p = i / c8;
        int ox = (int)(p % ow);
        p /= ow;
        int oy = (int)(p % oh);
        int bb = (int)(p / oh);
        __half2 m[4];
        for (int j = 0; j < 4; j++)
            m[j] = __float2half2_rn(-65504.0f);
        for (int dy = 0; dy < k; dy++) {
            int iy = oy * stride - pad + dy;
            if (iy < 0 || iy >= h)
                continue;
            for (int dx = 0; dx < k; dx++) {
                int ix = ox * stride - pad + dx;
                if (ix < 0 || ix >= w)
                    continue;
                uint4 v = reinterpret_cast<const uint4 *>(x + (((int64_t)bb * h + iy) * w + ix) *
                                                                  xcs2)[ch];
                const __half2 *hv = reinterpret_cast<const __half2 *>(&v);
                for (int j = 0; j < 4; j++)
                    m[j] = __hmax2(m[j], hv[j]);
            }
        }
        reinterpret_cast<uint4 *>(y + (((int64_t)bb * oh + oy) * ow + ox) * ycs2)[ch] =
            *reinterpret_cast<uint4 *>(m);
    }
}

__global__ void upsample_nhwc(const uint16_t *x, int64_t xcs, uint16_t *y, int64_t ycs, int b,
                              int h, int w, int c, int fy, int fx)
{
    int oh = h * fy, ow = w * fx;
    int64_t total = (int64_t)b * oh * ow * c;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        int ch = (int)(i % c);
        int64_t p = i / c;
        int ox = (int)(p % ow);
        p /= ow;
        int oy = (int)(p % oh);
        int bb = (int)(p / oh);
        y[(((int64_t)bb * oh + oy) * ow + ox) * ycs + ch] =
            x[(((int64_t)bb * h + oy / fy) * w + ox / fx) * xcs + ch];
    }
}

unsigned grid_for(int64_t total, int threads)
{
    int64_t g = (total + threads - 1) / threads;
    if (g > 132 * 32)
        g = 132 * 32; /* grid-stride beyond this: enough waves for an H100 */
    return (unsigned)(g < 1 ? 1 : g);
}

} // namespace

extern "C" int its_cuda_ewise(its_cuda_ew op, const void *a, int a_f32, const void *b, void *out,
                              int out_f32, const its_cuda_nd *nd, float alpha, cudaStream_t stream)
{
    if (!nd || nd->rank < 0 || nd->rank > ITS_CUDA_ND_MAX || !a || !out)
        return ITS_EINVAL;
    bool binary = op >= ITS_CUDA_EW_ADD && op <= ITS_CUDA_EW_DIV;
    if (binary && !b)
        return ITS_EINVAL;
    /* Visit dims in the output's physical order (largest stride first: NHWC outputs are
     * walked N, H, W, C), drop size-1 dims, merge neighbours that are contiguous for every
     * operand: a channel concat into NHWC becomes [N*H*W, C_in] with a contiguous inner dim. */
    int order[ITS_CUDA_ND_MAX];
    for (int d = 0; d < nd->rank; d++) {
        int j = d;
        while (j > 0 && nd->stride[0][order[j - 1]] < nd->stride[0][d]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = d;
    }
    nd_args args;
    args.rank = 0;
    int64_t total = 1;
    for (int dd = 0; dd < nd->rank; dd++) {
        int d = order[dd];
        total *= nd->dims[d];
        if (nd->dims[d] == 1)
            continue;
        int r = args.rank;
        bool merge = r > 0;
        for (int k = 0; k < 3 && merge; k++)
            merge = args.st[k][r - 1] == nd->stride[k][d] * nd->dims[d];
        if (merge) {
            args.dims[r - 1] *= nd->dims[d];
            for (int k = 0; k < 3; k++)
                args.st[k][r - 1] = nd->stride[k][d];
            continue;
        }
        args.dims[r] = nd->dims[d];
        for (int k = 0; k < 3; k++)
            args.st[k][r] = nd->stride[k][d];
        args.rank++;
    }
    if (total <= 0)
        return 0;
    if (args.rank == 0) {
        args.rank = 1;
        args.dims[0] = 1;
        for (int k = 0; k < 3; k++)
            args.st[k][0] = 1;
    }
    const __half *hb = (const __half *)b;
    int r = args.rank;
    if (op == ITS_CUDA_EW_COPY && (r == 2 || r == 3)) {
        int64_t bt = r == 3 ? args.dims[0] : 1, d1 = args.dims[r - 2], d2 = args.dims[r - 1];
        const int64_t *so = args.st[0] + (r - 2), *si = args.st[1] + (r - 2);
        bool tr = so[0] == d2 && so[1] == 1 && si[0] == 1 && si[1] == d1 &&
                  (r == 2 || (args.st[0][0] == d1 * d2 && args.st[1][0] == d1 * d2)) &&
                  d1 < 65536 * 32 && bt < 65536;
        if (tr && d2 <= 8) {
            int64_t t = bt * d1;
            unsigned g = (unsigned)((t + 255) / 256);
            if (a_f32 && !out_f32)
                planar_to_packed<float, __half>
                    <<<g, 256, 0, stream>>>((const float *)a, (__half *)out, d1, (int)d2, (int)bt);
            else if (!a_f32 && !out_f32)
                planar_to_packed<__half, __half>
                    <<<g, 256, 0, stream>>>((const __half *)a, (__half *)out, d1, (int)d2, (int)bt);
            else
                tr = false; /* fall through to the generic kernel */
            if (tr) {
                ITS_CUDA_TRY_LAUNCH();
                return 0;
            }
        }
        if (tr) {
            dim3 grid((unsigned)((d2 + 31) / 32), (unsigned)((d1 + 31) / 32), (unsigned)bt);
            dim3 block(32, 8);
            if (a_f32 && !out_f32)
                transpose_tiled<float, __half>
                    <<<grid, block, 0, stream>>>((const float *)a, (__half *)out, (int)d1, (int)d2);
            else if (!a_f32 && out_f32)
                transpose_tiled<__half, float>
                    <<<grid, block, 0, stream>>>((const __half *)a, (float *)out, (int)d1, (int)d2);
            else if (a_f32)
                transpose_tiled<float, float>
                    <<<grid, block, 0, stream>>>((const float *)a, (float *)out, (int)d1, (int)d2);
            else
                transpose_tiled<__half, __half><<<grid, block, 0, stream>>>(
                    (const __half *)a, (__half *)out, (int)d1, (int)d2);
            ITS_CUDA_TRY_LAUNCH();
            return 0;
        }
    }
    bool vec = !a_f32 && !out_f32 && r <= 4 && total < (1ll << 31) && args.dims[r - 1] % 8 == 0 &&
               args.st[0][r - 1] == 1 && args.st[1][r - 1] == 1 &&
               (!binary || args.st[2][r - 1] == 1 || args.st[2][r - 1] == 0) &&
               ((uintptr_t)a & 15) == 0 && ((uintptr_t)out & 15) == 0 &&
               (!binary || ((uintptr_t)b & 15) == 0);
    for (int d = 0; vec && d < r - 1; d++)
        for (int k = 0; k < 3; k++)
            vec = vec && args.st[k][d] % 8 == 0 && args.st[k][d] < (1ll << 31);
    if (vec) {
        vec_args v;
        v.rank = r;
        for (int d = 0; d < r; d++) {
            v.dims[d] = (int)args.dims[d];
            for (int k = 0; k < 3; k++)
                v.st[k][d] = (int)args.st[k][d];
        }
        int total8 = (int)(total / 8);
        ewise_vec8<<<grid_for(total8, 256), 256, 0, stream>>>(
            op, (const __half *)a, binary ? hb : nullptr, (__half *)out, v, total8, alpha);
        ITS_CUDA_TRY_LAUNCH();
        return 0;
    }
    unsigned g = grid_for(total, 256);
    if (a_f32 && out_f32)
        ewise_nd<true, true><<<g, 256, 0, stream>>>(op, a, hb, out, args, total, alpha);
    else if (a_f32)
        ewise_nd<true, false><<<g, 256, 0, stream>>>(op, a, hb, out, args, total, alpha);
    else if (out_f32)
        ewise_nd<false, true><<<g, 256, 0, stream>>>(op, a, hb, out, args, total, alpha);
    else
        ewise_nd<false, false><<<g, 256, 0, stream>>>(op, a, hb, out, args, total, alpha);
    ITS_CUDA_TRY_LAUNCH();
    return 0;
}

extern "C" int its_cuda_conv_epilogue(void *y, const float *bias, const void *sum, int64_t total,
                                      int k, int act, float alpha, int sum_first,
                                      cudaStream_t stream)
{
    if (!y || k <= 0 || total % k)
        return ITS_EINVAL;
    if (k % 8 == 0 && ((uintptr_t)y & 15) == 0 && ((uintptr_t)sum & 15) == 0)
        conv_epilogue8<<<grid_for(total / 8, 256), 256, 0, stream>>>(
            (__half *)y, bias, (const __half *)sum, total / 8, k, act, alpha, sum_first);
    else
        conv_epilogue1<<<grid_for(total, 256), 256, 0, stream>>>(
            (__half *)y, bias, (const __half *)sum, total, k, act, alpha, sum_first);
    ITS_CUDA_TRY_LAUNCH();
    return 0;
}

extern "C" int its_cuda_softmax(const void *x, void *y, int64_t outer, int n, int64_t inner,
                                cudaStream_t stream)
{
    if (!x || !y || outer <= 0 || n <= 0 || inner <= 0)
        return ITS_EINVAL;
    if (inner == 1) {
        int64_t threads = outer * 32;
        softmax_rows<<<(unsigned)((threads + 255) / 256), 256, 0, stream>>>((const __half *)x,
                                                                            (__half *)y, outer, n);
    } else {
        softmax_mid<<<(unsigned)((outer * inner + 255) / 256), 256, 0, stream>>>(
            (const __half *)x, (__half *)y, outer, n, inner);
    }
    ITS_CUDA_TRY_LAUNCH();
    return 0;
}

extern "C" int its_cuda_maxpool_nhwc(const void *x, int64_t xcs, void *y, int64_t ycs, int b, int h,
                                     int w, int c, int k, int stride, int pad, int oh, int ow,
                                     cudaStream_t stream)
{
    if (!x || !y || b <= 0 || c <= 0 || k <= 0 || stride <= 0 || pad < 0 || pad >= k)
        return ITS_EINVAL;
    xcs = xcs > 0 ? xcs : c;
    ycs = ycs > 0 ? ycs : c;
    if (xcs < c || ycs < c)
        return ITS_EINVAL;
    if (c % 8 == 0 && xcs % 8 == 0 && ycs % 8 == 0 && ((uintptr_t)x & 15) == 0 &&
        ((uintptr_t)y & 15) == 0)
        maxpool_nhwc8<<<grid_for((int64_t)b * oh * ow * (c / 8), 256), 256, 0, stream>>>(
            (const __half2 *)x, xcs / 2, (__half2 *)y, ycs / 2, b, h, w, c / 2, k, stride, pad, oh,
            ow);
    else
        maxpool_nhwc<<<grid_for((int64_t)b * oh * ow * c, 256), 256, 0, stream>>>(
            (const __half *)x, xcs, (__half *)y, ycs, b, h, w, c, k, stride, pad, oh, ow);
    ITS_CUDA_TRY_LAUNCH();
    return 0;
}

extern "C" int its_cuda_upsample_nhwc(const void *x, int64_t xcs, void *y, int64_t ycs, int b,
                                      int h, int w, int c, int fy, int fx, cudaStream_t stream)
{
    if (!x || !y || b <= 0 || c <= 0 || fy <= 0 || fx <= 0)
        return ITS_EINVAL;
    xcs = xcs > 0 ? xcs : c;
    ycs = ycs > 0 ? ycs : c;
    if (xcs < c || ycs < c)
        return ITS_EINVAL;
    if (c % 8 == 0 && xcs % 8 == 0 && ycs % 8 == 0 && ((uintptr_t)x & 15) == 0 &&
        ((uintptr_t)y & 15) == 0)
        upsample_nhwc8<<<grid_for((int64_t)b * h * fy * w * fx * (c / 8), 256), 256, 0, stream>>>(
            (const uint4 *)x, xcs / 8, (uint4 *)y, ycs / 8, b, h, w, c / 8, fy, fx);
    else
        upsample_nhwc<<<grid_for((int64_t)b * h * fy * w * fx * c, 256), 256, 0, stream>>>(
            (const uint16_t *)x, xcs, (uint16_t *)y, ycs, b, h, w, c, fy, fx);
    ITS_CUDA_TRY_LAUNCH();
    return 0;
}

/*
 * prepost.cu - the cuda backend's pre-processing (letterbox of a mixed batch of 8-bit frames)
 * and post-processing (YOLOv8/YOLO11 decode and class-aware NMS). See cuda_prepost.h.
 *
 * Everything here is a fixed-shape launch for a given batch size, so the engine captures it
 * into the same CUDA graph as the network: one graph replay takes uploaded frames to a compact
 * detection list per image.
 */
#include "cuda_prepost.h"

#include "cuda_check.h"

#include <cuda_fp16.h>
#include <math.h>

namespace
{

/* ---- letterbox ------------------------------------------------------------------------- */

__device__ __forceinline__ void load_rgb(const its_cuda_frame &f, int x, int y, float *rgb)
{
    if (f.fmt == ITS_PIX_NV12) {
        float Y = f.data[(size_t)y * f.stride + x];
        const uint8_t *uv = f.uv + (size_t)(y >> 1) * f.uv_stride + (x & ~1);
        float U = uv[0] - 128.0f, V = uv[1] - 128.0f;
        float yy = 1.164383f * (Y - 16.0f);
        rgb[0] = fminf(fmaxf(yy + 1.596027f * V, 0.0f), 255.0f);
        rgb[1] = fminf(fmaxf(yy - 0.391762f * U - 0.812968f * V, 0.0f), 255.0f);
        rgb[2] = fminf(fmaxf(yy + 2.017232f * U, 0.0f), 255.0f);
        return;
    }
    const uint8_t *p = f.data + (size_t)y * f.stride + (size_t)x * 3;
    if (f.fmt == ITS_PIX_BGR24) {
        rgb[0] = p[2];
        rgb[1] = p[1];
        rgb[2] = p[0];
    } else {
        rgb[0] = p[0];
        rgb[1] = p[1];
        rgb[2] = p[2];
    }
}

/* The value of canvas pixel (x, y) of frame f: 114 outside the image, else a bilinear sample
 * with half-pixel centres and clamped edges; RGB in [0, 1]. */
__device__ __forceinline__ void canvas_pixel(const its_cuda_frame &f, int x, int y, float *out)
{
    int ix = x - f.left, iy = y - f.top;
    if (ix < 0 || iy < 0 || ix >= f.new_w || iy >= f.new_h) {
        out[0] = out[1] = out[2] = 114.0f / 255.0f;
        return;
    }
    float sx = ((float)ix + 0.5f) * ((float)f.width / (float)f.new_w) - 0.5f;
    float sy = ((float)iy + 0.5f) * ((float)f.height / (float)f.new_h) - 0.5f;
    sx = fmaxf(sx, 0.0f);
    sy = fmaxf(sy, 0.0f);
    int x0 = min((int)sx, f.width - 1), y0 = min((int)sy, f.height - 1);
    int x1 = min(x0 + 1, f.width - 1), y1 = min(y0 + 1, f.height - 1);
    float ax = sx - (float)x0, ay = sy - (float)y0;
    if (x0 == f.width - 1)
        ax = 0.0f;
    if (y0 == f.height - 1)
        ay = 0.0f;
    float p00[3], p01[3], p10[3], p11[3];
    load_rgb(f, x0, y0, p00);
    load_rgb(f, x1, y0, p01);
    load_rgb(f, x0, y1, p10);
    load_rgb(f, x1, y1, p11);
#pragma unroll
    for (int c = 0; c < 3; c++) {
        float top = p00[c] + (p01[c] - p00[c]) * ax;
        float bot = p10[c] + (p11[c] - p10[c]) * ax;
        out[c] = (top + (bot - top) * ay) * (1.0f / 255.0f);
    }
}

__global__ void letterbox_nhwc_f16(const its_cuda_frame *frames, int dst_w, int dst_h, int channels,
                                   __half *out)
{
    int b = blockIdx.y;
    int pix = blockIdx.x * blockDim.x + threadIdx.x;
    if (pix >= dst_w * dst_h)
        return;
    its_cuda_frame f = frames[b];
    float rgb[3];
    canvas_pixel(f, pix % dst_w, pix / dst_w, rgb);
    __half *o = out + ((size_t)b * dst_w * dst_h + pix) * channels;
    if (channels == 4) {
        __half2 lo = __floats2half2_rn(rgb[0], rgb[1]);
        __half2 hi = __floats2half2_rn(rgb[2], 0.0f);
        uint2 v;
        v.x = *reinterpret_cast<uint32_t *>(&lo);
        v.y = *reinterpret_cast<uint32_t *>(&hi);
        *reinterpret_cast<uint2 *>(o) = v;
        return;
    }
    for (int c = 0; c < channels; c++)
        o[c] = __float2half_rn(c < 3 ? rgb[c] : 0.0f);
}

__global__ void letterbox_nchw_f32(const its_cuda_frame *frames, int dst_w, int dst_h, float *out)
{
    int b = blockIdx.y;
    int pix = blockIdx.x * blockDim.x + threadIdx.x;
    if (pix >= dst_w * dst_h)
        return;
    its_cuda_frame f = frames[b];
    float rgb[3];
    canvas_pixel(f, pix % dst_w, pix / dst_w, rgb);
    size_t plane = (size_t)dst_w * dst_h;
    for (int c = 0; c < 3; c++)
        out[((size_t)b * 3 + c) * plane + pix] = rgb[c];
}

/* ---- decode + NMS ---------------------------------------------------------------------- */

constexpr int kMaxCand = 1024;       /* candidates that enter NMS per image */
constexpr int kSortN = 2 * kMaxCand; /* keys sorted per round */
constexpr int kNmsThreads = 512;

struct scratch_layout {
    int *count;     /* [n] candidates over the threshold */
    uint64_t *keys; /* [n][n_anchor] (score bits << 32) | ~anchor */
    int32_t *cls;   /* [n][n_anchor] best class per anchor */
};

__host__ __device__ inline size_t align256(size_t x)
{
    return (x + 255) & ~(size_t)255;
}

__host__ __device__ inline scratch_layout carve(void *base, int n, int n_anchor)
{
    scratch_layout s;
    char *p = (char *)base;
    s.count = (int *)p;
    p += align256(sizeof(int) * (size_t)n);
    s.keys = (uint64_t *)p;
    p += align256(sizeof(uint64_t) * (size_t)n * n_anchor);
    s.cls = (int32_t *)p;
    return s;
}

template <typename T> __device__ __forceinline__ float ld(const T *p);
template <> __device__ __forceinline__ float ld<float>(const float *p)
{
    return *p;
}
template <> __device__ __forceinline__ float ld<__half>(const __half *p)
{
    return __half2float(*p);
}

__global__ void zero_counts(int *count, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        count[i] = 0;
}

template <typename T>
__global__ void decode_candidates(const T *head, int n_cls, int n_anchor, float conf,
                                  scratch_layout s)
{
    int b = blockIdx.y;
    int a = blockIdx.x * blockDim.x + threadIdx.x;
    if (a >= n_anchor)
        return;
    const T *sc = head + ((size_t)b * (4 + n_cls) + 4) * n_anchor + a;
    float best = ld(sc);
    int bc = 0;
    for (int c = 1; c < n_cls; c++) {
        float v = ld(sc + (size_t)c * n_anchor);
        if (v > best) {
            best = v;
            bc = c;
        }
    }
    if (!(best >= conf) || !(best > 0.0f)) /* NaN never passes */
        return;
    int pos = atomicAdd(&s.count[b], 1);
    s.keys[(size_t)b * n_anchor + pos] =
        ((uint64_t)__float_as_uint(best) << 32) | (uint32_t)(0xFFFFFFFFu - (uint32_t)a);
    s.cls[(size_t)b * n_anchor + a] = bc;
}

/* Descending bitonic sort of kSortN keys in shared memory. */
__device__ void bitonic_desc(uint64_t *k)
{
    for (int size = 2; size <= kSortN; size <<= 1) {
        for (int stride = size >> 1; stride > 0; stride >>= 1) {
            for (int i = threadIdx.x; i < kSortN; i += blockDim.x) {
                int j = i ^ stride;
                if (j > i) {
                    uint64_t a = k[i], b = k[j];
                    bool desc = (i & size) == 0;
                    if (desc ? (a < b) : (a > b)) {
                        k[i] = b;
                        k[j] = a;
                    }
                }
            }
            __syncthreads();
        }
    }
}

template <typename T>
__global__ void __launch_bounds__(kNmsThreads)
    nms_per_image(const T *head, int n_cls, int n_anchor, float iou_thr, int max_cand, int max_det,
                  const its_cuda_frame *frames, scratch_layout s, its_engine_det_list *lists,
                  its_det *dets)
{
    __shared__ uint64_t keys[kSortN];
    __shared__ float4 box[kMaxCand];
    __shared__ int cls[kMaxCand];
    __shared__ unsigned char supp[kMaxCand];
    int b = blockIdx.x;
    int count = s.count[b];
    const uint64_t *src = s.keys + (size_t)b * n_anchor;

    /* Top max_cand keys by (score, lower anchor): the first round sorts up to kSortN keys,
     * each later round merges kSortN - kMaxCand more into the kept kMaxCand. */
    for (int i = threadIdx.x; i < kSortN; i += blockDim.x)
        keys[i] = i < count ? src[i] : 0;
    __syncthreads();
    bitonic_desc(keys);
    for (int base = kSortN; base < count; base += kSortN - kMaxCand) {
        for (int i = kMaxCand + threadIdx.x; i < kSortN; i += blockDim.x) {
            int idx = base + i - kMaxCand;
            keys[i] = idx < count ? src[idx] : 0;
        }
        __syncthreads();
        bitonic_desc(keys);
    }
    int k = min(count, max_cand);
    const T *hb = head + (size_t)b * (4 + n_cls) * n_anchor;
    for (int i = threadIdx.x; i < k; i += blockDim.x) {
        int a = (int)(0xFFFFFFFFu - (uint32_t)(keys[i] & 0xFFFFFFFFu));
        float cx = ld(hb + a), cy = ld(hb + n_anchor + a);
        float w = ld(hb + 2 * (size_t)n_anchor + a), h = ld(hb + 3 * (size_t)n_anchor + a);
        box[i] = make_float4(cx - 0.5f * w, cy - 0.5f * h, cx + 0.5f * w, cy + 0.5f * h);
        cls[i] = s.cls[(size_t)b * n_anchor + a];
        supp[i] = 0;
    }
    __syncthreads();

    its_cuda_frame f = frames[b];
    its_det *out = dets + (size_t)b * max_det;
    int kept = 0;
    for (int i = 0; i < k && kept < max_det; i++) {
        if (supp[i]) /* uniform: written only before the last barrier */
            continue;
        float4 bi = box[i];
        if (threadIdx.x == 0) {
            its_det d;
            float inv = 1.0f / f.scale;
            d.x1 = fminf(fmaxf((bi.x - f.left) * inv, 0.0f), (float)f.width);
            d.y1 = fminf(fmaxf((bi.y - f.top) * inv, 0.0f), (float)f.height);
            d.x2 = fminf(fmaxf((bi.z - f.left) * inv, 0.0f), (float)f.width);
            d.y2 = fminf(fmaxf((bi.w - f.top) * inv, 0.0f), (float)f.height);
            d.score = __uint_as_float((uint32_t)(keys[i] >> 32));
            d.class_id = cls[i];
            d.track_id = 0;
            out[kept] = d;
        }
        kept++;
        float ai = fmaxf(bi.z - bi.x, 0.0f) * fmaxf(bi.w - bi.y, 0.0f);
        for (int j = i + 1 + threadIdx.x; j < k; j += blockDim.x) {
            if (supp[j] || cls[j] != cls[i])
                continue;
            float4 bj = box[j];
            float iw = fminf(bi.z, bj.z) - fmaxf(bi.x, bj.x);
            float ih = fminf(bi.w, bj.w) - fmaxf(bi.y, bj.y);
            float inter = fmaxf(iw, 0.0f) * fmaxf(ih, 0.0f);
            float aj = fmaxf(bj.z - bj.x, 0.0f) * fmaxf(bj.w - bj.y, 0.0f);
            float uni = ai + aj - inter;
            if (uni > 0.0f && inter > iou_thr * uni)
                supp[j] = 1;
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        its_engine_det_list l;
        l.count = kept;
        l.n_cand = count;
        l.truncated = count > max_cand;
        l.reserved = 0;
        lists[b] = l;
    }
}

} // namespace

extern "C" void its_cuda_letterbox_plan(its_cuda_frame *f, int n, int dst_w, int dst_h)
{
    for (int i = 0; i < n; i++) {
        double r = fmin((double)dst_w / f[i].width, (double)dst_h / f[i].height);
        int nw = (int)lround(f[i].width * r), nh = (int)lround(f[i].height * r);
        nw = nw < 1 ? 1 : (nw > dst_w ? dst_w : nw);
        nh = nh < 1 ? 1 : (nh > dst_h ? dst_h : nh);
        f[i].new_w = nw;
        f[i].new_h = nh;
        f[i].left = (int)lround((dst_w - nw) / 2.0 - 0.1);
        f[i].top = (int)lround((dst_h - nh) / 2.0 - 0.1);
        f[i].scale = (float)r;
    }
}

extern "C" int its_cuda_letterbox(const its_cuda_frame *d_frames, int n, int dst_w, int dst_h,
                                  int channels, void *d_out, cudaStream_t stream)
{
    if (n <= 0 || channels < 3 || channels > 8)
        return ITS_EINVAL;
    dim3 grid((unsigned)((dst_w * dst_h + 255) / 256), (unsigned)n);
    letterbox_nhwc_f16<<<grid, 256, 0, stream>>>(d_frames, dst_w, dst_h, channels, (__half *)d_out);
    ITS_CUDA_TRY_LAUNCH();
    return 0;
}

extern "C" int its_cuda_letterbox_nchw_f32(const its_cuda_frame *d_frames, int n, int dst_w,
                                           int dst_h, float *d_out, cudaStream_t stream)
{
    if (n <= 0)
        return ITS_EINVAL;
    dim3 grid((unsigned)((dst_w * dst_h + 255) / 256), (unsigned)n);
    letterbox_nchw_f32<<<grid, 256, 0, stream>>>(d_frames, dst_w, dst_h, d_out);
    ITS_CUDA_TRY_LAUNCH();
    return 0;
}

extern "C" size_t its_cuda_decode_scratch_bytes(int n, int n_anchor)
{
    return align256(sizeof(int) * (size_t)n) + align256(sizeof(uint64_t) * (size_t)n * n_anchor) +
           align256(sizeof(int32_t) * (size_t)n * n_anchor);
}

extern "C" int its_cuda_decode_nms(const void *d_head, int is_f16, int n, int n_cls, int n_anchor,
                                   float conf, float iou, int max_cand, int max_det,
                                   const its_cuda_frame *d_frames, void *d_scratch,
                                   its_engine_det_list *d_lists, its_det *d_dets,
                                   cudaStream_t stream)
{
    if (n <= 0 || n_cls <= 0 || n_anchor <= 0 || max_cand <= 0 || max_cand > kMaxCand ||
        max_det <= 0)
        return ITS_EINVAL;
    scratch_layout s = carve(d_scratch, n, n_anchor);
    zero_counts<<<(n + 255) / 256, 256, 0, stream>>>(s.count, n);
    dim3 grid((unsigned)((n_anchor + 255) / 256), (unsigned)n);
    if (is_f16) {
        decode_candidates<__half>
            <<<grid, 256, 0, stream>>>((const __half *)d_head, n_cls, n_anchor, conf, s);
        nms_per_image<__half><<<n, kNmsThreads, 0, stream>>>((const __half *)d_head, n_cls,
                                                             n_anchor, iou, max_cand, max_det,
                                                             d_frames, s, d_lists, d_dets);
    } else {
        decode_candidates<float>
            <<<grid, 256, 0, stream>>>((const float *)d_head, n_cls, n_anchor, conf, s);
        nms_per_image<float><<<n, kNmsThreads, 0, stream>>>((const float *)d_head, n_cls, n_anchor,
                                                            iou, max_cand, max_det, d_frames, s,
                                                            d_lists, d_dets);
    }
    ITS_CUDA_TRY_LAUNCH();
    return 0;
}

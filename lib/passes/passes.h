/*
 * passes.h - the pass registry and helpers shared by passes.
 *
 * Adding a pass takes three edits:
 *   1. lib/passes/NAME.c: a static option table (hpcz_pass_opt[], zero-terminated),
 *      a run function `static hpcz_status run(hpcz_model *, const hpcz_pass_args *,
 *      hpcz_pass_ctx *, hpcz_error *)`, and `const hpcz_pass hpcz_pass_NAME = {...}`;
 *   2. its declaration below (extern const hpcz_pass hpcz_pass_NAME;);
 *   3. a row in the table in lib/passes/registry.c (and the file in meson.build).
 * The option table gives parsing, defaults, validation and `hpcz passes` help
 * for free. A pass changes the model only through the IR API, reports what it
 * did with hpcz_pass_note, and leaves a model that hpcz_model_verify accepts.
 */
#ifndef HPCZ_PASSES_H
#define HPCZ_PASSES_H

#include "internal.h"

#include <regex.h>

extern const hpcz_pass hpcz_pass_fold_bn;
extern const hpcz_pass hpcz_pass_eliminate;
extern const hpcz_pass hpcz_pass_dce;
extern const hpcz_pass hpcz_pass_fold_constants;
extern const hpcz_pass hpcz_pass_upgrade_opset;
extern const hpcz_pass hpcz_pass_quantize_int8;
extern const hpcz_pass hpcz_pass_quantize_int4;
extern const hpcz_pass hpcz_pass_early_fp16;
extern const hpcz_pass hpcz_pass_to_fp16;
extern const hpcz_pass hpcz_pass_quantize_static;
extern const hpcz_pass hpcz_pass_quantize_dynamic;
extern const hpcz_pass hpcz_pass_prune_magnitude;
extern const hpcz_pass hpcz_pass_prune_nm;
extern const hpcz_pass hpcz_pass_prune_channel;
extern const hpcz_pass hpcz_pass_prune_reconstruct;
extern const hpcz_pass hpcz_pass_quantize_gptq;
extern const hpcz_pass hpcz_pass_quantize_adaround;
extern const hpcz_pass hpcz_pass_recalibrate_bn;
extern const hpcz_pass hpcz_pass_int4_matmulnbits;
extern const hpcz_pass hpcz_pass_smooth_quant;
extern const hpcz_pass hpcz_pass_bias_correct;
extern const hpcz_pass hpcz_pass_equalize;

/* ---- node selection shared by quantization and pruning */
typedef struct hpcz_node_filter {
    regex_t inc, exc;
    bool has_inc, has_exc;
    char *ops; /* comma-separated op types, NULL = any */
} hpcz_node_filter;
/* Every item of a comma list an op type name ("Conv, MatMul"); usage error. */
hpcz_status hpcz_op_list_check(const char *list, hpcz_error *err);
hpcz_status hpcz_filter_init(hpcz_node_filter *f, const char *include, const char *exclude,
                             const char *op_types, hpcz_error *err);
/* op type allowed, include matches name or op type (if given), exclude matches neither */
bool hpcz_filter_match(const hpcz_node_filter *f, const hpcz_node *n);
bool hpcz_filter_op_allowed(const hpcz_node_filter *f, const char *op_type);
/* --include/--exclude alone (the op-type list not checked). */
bool hpcz_filter_names_match(const hpcz_node_filter *f, const hpcz_node *n);
void hpcz_filter_release(hpcz_node_filter *f);

/* ---- a float16 copy of float constant t, named name (lib/passes/fp16.c) */
hpcz_tensor *hpcz_tensor_to_half(hpcz_model *m, hpcz_tensor *t, const char *name, hpcz_error *err);

/* ---- embedding tables (lib/passes/quantize_gather.c): every Gather that f
 * selects, on axis 0 of a constant float table (at least min_size elements)
 * with integer indices, reads an int8 table with a scale per row (rounding
 * range min/max, or the squared-error clipping with mse); with block4 > 0, a
 * 2-D table whose rows are whole blocks of block4 becomes symmetric int4 in
 * those blocks, read by com.microsoft::GatherBlockQuantized. Nothing when f
 * leaves Gather out. Tables other nodes read too stay float. */
hpcz_status hpcz_quantize_gather(hpcz_model *m, const hpcz_node_filter *f, int64_t min_size, bool mse,
                                 int64_t block4, hpcz_pass_ctx *ctx, hpcz_error *err);

/* ---- activation moments without data (lib/passes/act_means.c): per
 * channel (axis 1) means and variances of g's values carried from its
 * inputs (taken as zero mean, variance 1/3: data in [-1, 1]) through Conv, BatchNorm,
 * activations, affine constants, Add/Mul of two tensors, pooling and
 * Concat. Uses the values' aux until freed; g must not change meanwhile. */
typedef struct hpcz_act_means hpcz_act_means;
hpcz_act_means *hpcz_act_means_estimate(hpcz_graph *g); /* NULL: out of memory */
/* The C means of v (and *var its variances), or NULL when unknown, not C
 * channels, or v is a graph input itself. Owned by am. */
const double *hpcz_act_means_of(const hpcz_act_means *am, const hpcz_value *v, int64_t C, const double **var);
void hpcz_act_means_free(hpcz_act_means *am);

/* ---- weights as quantize-int8 rounds them (lib/passes/quantize_weights.c),
 * for passes that correct what the rounding changes: for every weight of
 * the main graph that quantize-int8 with the options in `a` (per-channel,
 * weight-dtype, symmetric, reduce-range, clip, op-types, include, exclude,
 * min-size: a's pass must have them) would quantize per channel or tensor,
 * fn gets the node, the weight's input index, its output-channel axis, the
 * float values and the dequantized 8-bit ones (both borrowed for the call).
 * Stops at the first status fn returns. */
typedef hpcz_status (*hpcz_rounded_fn)(void *user, hpcz_node *n, size_t idx, int channel_axis, const float *w,
                                       const float *wq, hpcz_error *err);
hpcz_status hpcz_int8_weights_each(hpcz_model *m, const hpcz_pass_args *a, hpcz_pass_ctx *ctx,
                                   hpcz_rounded_fn fn, void *user, hpcz_error *err);

/* ---- bias correction (lib/passes/bias_correct.c) against a quantized copy
 * q of m (same node output names): every Conv/Gemm/MatMul+Add of m whose
 * counterpart in q reads its weight through DequantizeLinear of constants
 * gets the mean output shift of that rounding, measured on ctx->data's
 * input means, taken off its bias (quantize-static{bias-correct}). Nothing
 * without ctx->data. */
typedef struct hpcz_bias_undo hpcz_bias_undo;
/* *undo (when undo is not NULL): the biases as they were, for
 * hpcz_bias_undo_apply; free it with hpcz_bias_undo_free (NULL: nothing). */
hpcz_status hpcz_bias_correct_like(hpcz_model *m, const hpcz_model *q, hpcz_pass_ctx *ctx, size_t *corrected,
                                   hpcz_bias_undo **undo, hpcz_error *err);
void hpcz_bias_undo_apply(hpcz_bias_undo *u);
void hpcz_bias_undo_free(hpcz_bias_undo *u);

/* ---- opset upgrade (lib/passes/opset.c): rewrites every ai.onnx node whose
 * schema changed between the model's opset and `target`, then sets the
 * import. Fails (changing nothing) on ops it cannot convert. */
hpcz_status hpcz_model_upgrade_opset(hpcz_model *m, int64_t target, hpcz_pass_ctx *ctx,
                                     hpcz_error *err);

/* ---- helpers */

/* Use counts of every value in g (including reads from nested subgraphs and
 * graph outputs), stored in value->aux. */
void hpcz_count_uses(hpcz_graph *g);

/* Makes the node's output `out` the same value as its input `in` and marks the
 * node dead (aux = -1; call hpcz_graph_sweep). Keeps graph output names: when
 * `out` is a graph output, the producer of `in` is renamed instead, if that is
 * safe. Returns false (and changes nothing) when it cannot. Needs fresh use
 * counts (hpcz_count_uses). */
bool hpcz_bypass_node(hpcz_graph *g, hpcz_node *n, hpcz_value *in, hpcz_value *out);

/* Fresh unique value/tensor name "<base>_<suffix>[_N]" in g's scope. */
const char *hpcz_unique_name(hpcz_graph *g, const char *base, const char *suffix);

/* Adds t as initializer of g; its value (shaped like t). */
hpcz_value *hpcz_add_init_value(hpcz_graph *g, hpcz_tensor *t, hpcz_error *err);

/* A new float32 initializer in g, with an owned zeroed payload. */
hpcz_tensor *hpcz_new_float_init(hpcz_graph *g, const char *name, int ndim, const int64_t *dims,
                                 hpcz_error *err);

/* Makes t safe to modify for node use: if the value has other users, copies it
 * into a new initializer and rewires `user`'s input `idx`. Returns the tensor to
 * write, or NULL on error. The payload is materialized and owned. */
/* Reader counts of every value of the model, for a pass that asks "is this
 * weight shared?" once per layer (hpcz_writable_weight scanned the whole
 * model each time: quadratic, 8 s for a 20k-layer chain). Between begin and
 * end the pass changes which node reads what only through
 * hpcz_writable_weight, which keeps the counts. Nested begins are counted. */
/* A set of pointers (open addressing); add returns 1 when new, 0 when seen,
 * -1 out of memory. */
typedef struct hpcz_ptrset {
    const void **k;
    size_t n, cap;
} hpcz_ptrset;
int hpcz_ptrset_add(hpcz_ptrset *s, const void *p);
bool hpcz_ptrset_has(const hpcz_ptrset *s, const void *p);
void hpcz_ptrset_free(hpcz_ptrset *s);
hpcz_status hpcz_uses_begin(hpcz_model *m, hpcz_error *err);
/* Folds Mul/Add of per-channel constants after a 2-D Conv into its weights
 * and bias (fold_bn.c); counts the Convs changed in *folded. */
hpcz_status hpcz_fold_conv_affine(hpcz_graph *g, hpcz_pass_ctx *ctx, size_t *folded, hpcz_error *err);
/* Folds a * x + b (scalar constants) read by a 2-D Conv without padding into
 * its weights and bias (fold_bn.c); counts the Convs changed in *folded. */
hpcz_status hpcz_fold_affine_into_conv(hpcz_graph *g, hpcz_pass_ctx *ctx, size_t *folded, hpcz_error *err);
/* HardSwish written out, x * Clip(x + 3, 0, 6) / 6, made the HardSwish op
 * of opset 14 (fold_bn.c; the model's opset raised when it can be; pass
 * names the notes). Returns the number rewritten; err set on failure. */
size_t hpcz_fuse_hardswish(hpcz_model *m, hpcz_graph *g, hpcz_pass_ctx *ctx, const char *pass,
                           hpcz_error *err);
/* A MaxPool after monotone activations (Relu, LeakyRelu, Max/Min/Clip by
 * constants, ...), read by a QuantizeLinear, moved before them: the same
 * values, and ONNX Runtime then
 * pools in float instead of on uint8 codes (ort_forms.c). Returns the number
 * moved; err set on failure. */
size_t hpcz_maxpool_first(hpcz_graph *g, hpcz_pass_ctx *ctx, hpcz_error *err);
/* DequantizeLinear -> HardSwish -> QuantizeLinear (an int8 region's
 * HardSwish) written as its input times a quantized gate, a depthwise 1x1
 * Conv (1/6, 1/2) whose QuantizeLinear (1/255 from 0) clamps it to [0, 1],
 * which ONNX Runtime runs as QLinearConv and QLinearMul (ort_forms.c).
 * Returns the number rewritten; err set on failure. */
size_t hpcz_hardswish_gate(hpcz_graph *g, hpcz_pass_ctx *ctx, hpcz_error *err);
void hpcz_uses_end(hpcz_model *m);
hpcz_tensor *hpcz_writable_weight(hpcz_graph *g, hpcz_node *user, size_t idx, hpcz_error *err);

/* The lowest output SQNR (dB) of b against a on ctx->data (at most
 * ctx->data_samples samples, ctx->threads): how close a quantized b is. */
hpcz_status hpcz_worst_sqnr(hpcz_model *a, hpcz_model *b, const hpcz_pass_ctx *ctx, double *out, hpcz_error *err);

/* Removes g's initializers that nothing reads any more; returns how many. */
size_t hpcz_drop_unused_inits(hpcz_graph *g);

/* A new initializer "<base>_const[_N]" holding a copy of data; its value. */
hpcz_value *hpcz_new_const(hpcz_graph *g, const char *base, int dtype, int ndim,
                           const int64_t *dims, const void *data, hpcz_error *err);
/* Imports `domain` at `version` unless the model imports it already. */
hpcz_status hpcz_import_opset(hpcz_model *m, const char *domain, int64_t version, hpcz_error *err);
/* Sets input idx, growing the input list with empty inputs as needed. */
bool hpcz_node_set_input(hpcz_node *n, size_t idx, hpcz_value *v);
void hpcz_node_remove_attr(hpcz_node *n, const char *name);
/* Adds (or resets) an attribute; fill in its value. */
hpcz_attr *hpcz_node_add_attr(hpcz_node *n, const char *name, hpcz_attr_type type);

#endif

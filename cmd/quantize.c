/*
 * quantize.c - `hpcz quantize IN -o OUT`: a preset pipeline of clean-ups and a
 * quantization pass, with a one-screen summary of what changed.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <sys/stat.h>
#include <time.h>

enum {
    OPT_OUTPUT = 'o',
    OPT_MODE = 256,
    OPT_DTYPE,
    OPT_PER_CHANNEL,
    OPT_PER_TENSOR,
    OPT_SYMMETRIC,
    OPT_ASYMMETRIC,
    OPT_WEIGHT_DTYPE,
    OPT_REDUCE_RANGE,
    OPT_BLOCK_SIZE,
    OPT_INCLUDE,
    OPT_EXCLUDE,
    OPT_OP_TYPES,
    OPT_KEEP_IO,
    OPT_DRY_RUN,
    OPT_JSON,
    OPT_NO_FOLD,
    OPT_ALLOW_REQUANT,
    OPT_PASSES,
    OPT_IN_PLACE,
    OPT_CLIP,
    OPT_CALIB,
    OPT_CALIB_SAMPLES,
    OPT_CALIB_METHOD,
    OPT_CALIB_MASK,
    OPT_SMOOTH_QUANT,
    OPT_BIAS_CORRECTION,
    OPT_NO_BIAS_CORRECTION,
    OPT_CALIB_TABLE,
    OPT_ACT_DTYPE,
    OPT_PLACEMENT,
    OPT_FALLBACK_WEIGHTS,
    OPT_THREADS,
    OPT_NO_REDUCE_RANGE,
    OPT_REPORT,
    OPT_DATA,
    OPT_LABELS,
    OPT_AUTO_FALLBACK,
    OPT_BUDGET,
    OPT_ALGO,
    OPT_JSON_FILE,
    OPT_INT4_FORMAT,
    OPT_FORCE = 'f',
};

static const cli_opt opts[] = {
    {"output", OPT_OUTPUT, required_argument, "FILE", "write the quantized model to FILE ('-': stdout)",
     NULL, CLI_FILES_MODEL},
    {"force", OPT_FORCE, no_argument, NULL, "write the model to standard output even when it is a terminal"},
    {"mode", OPT_MODE, required_argument, "MODE",
     "weight-only (default): weights quantized, activations stay float; dynamic: MatMul/Gemm "
     "with int8 weights and activations quantized at run time; static: weights and "
     "activations in int8 with calibrated ranges (QDQ)",
     "weight-only|dynamic|static"},
    {"algo", OPT_ALGO, required_argument, "ALGO",
     "weight-only: gptq (the default with --calib: quantize columns in order and compensate "
     "each error on the rest, using the layer inputs' Gram matrix on the calibration data) or "
     "rtn (round to nearest, the default without data)",
     "rtn|gptq"},
    {"calib", OPT_CALIB, required_argument, "DATA",
     "calibration data: a folder of .npy (INPUT.npy with a batch axis, or INPUT_K.npy per "
     "sample) or test_data_set_* folders, or random:N (seeded, only a proxy)",
     NULL, "npy"},
    {"calib-samples", OPT_CALIB_SAMPLES, required_argument, "N", "use at most N calibration samples"},
    CLI_CALIB_MASK_OPTION(OPT_CALIB_MASK),
    CLI_DIM_OPTION,
    {"calib-method", OPT_CALIB_METHOD, required_argument, "M",
     "minmax (default; entropy for static int8 when SmoothQuant smoothed the model), mean-minmax (the "
     "mean of each sample's min and max), moving-minmax, percentile:99.99, entropy or mse",
     "minmax|mean-minmax|moving-minmax|entropy|mse"},
    {"calib-table", OPT_CALIB_TABLE, required_argument, "FILE",
     "reuse ranges from 'hpcz calibrate' instead of calibrating", NULL, "json"},
    {"act-dtype", OPT_ACT_DTYPE, required_argument, "TYPE", "static: uint8 (default) or int8 activations (asymmetric unless --symmetric)",
     "uint8|int8"},
    {"placement", OPT_PLACEMENT, required_argument, "HOW",
     "static: latency (default): ops in int8 only where ONNX Runtime runs them faster than "
     "float: Conv/Gemm/MatMul with at least 16 products per output and 1e6 multiply-adds per "
     "sample, the others (depthwise convolutions too) only when fed by int8 ops; all: every "
     "selected op in int8",
     "latency|all"},
    {"smooth-quant", OPT_SMOOTH_QUANT, optional_argument, "ALPHA",
     "static: SmoothQuant before calibration: divide the outlier channels of each LayerNormalization "
     "output read by matrix products by max|X|^ALPHA / max|W|^(1-ALPHA), folded into its scale and bias, "
     "and multiply the weights by the same (default: on at 0.5 with --calib; 0 turns it off)"},
    {"bias-correction", OPT_BIAS_CORRECTION, no_argument, NULL,
     "static and weight-only int8 (--algo rtn) with --calib: subtract from each layer's bias the mean output "
     "shift its rounded weights cause, from input means on the data (default: static with --calib, kept only "
     "where the calibration data's worst output SQNR does not drop; weight-only: off)"},
    {"no-bias-correction", OPT_NO_BIAS_CORRECTION, no_argument, NULL, "leave the biases as they are"},
    {"threads", OPT_THREADS, required_argument, "N", "threads for calibration (default: all cores)"},
    CLI_DEVICE_OPTION,
    {"dtype", OPT_DTYPE, required_argument, "TYPE",
     "int8 (default), int4 (blocked, opset 21) or fp16 (float16 weights and compute)",
     "int8|int4|fp16"},
    {"int4-format", OPT_INT4_FORMAT, required_argument, "FORM",
     "int4: qdq (default: int4 weights behind opset-21 DequantizeLinear) or matmulnbits (MatMul "
     "nodes become com.microsoft::MatMulNBits, ONNX Runtime's 4-bit kernel; Gemm and Conv stay QDQ)",
     "qdq|matmulnbits"},
    {"per-channel", OPT_PER_CHANNEL, no_argument, NULL, "one int8 scale per output channel (default)"},
    {"per-tensor", OPT_PER_TENSOR, no_argument, NULL, "one int8 scale per weight tensor"},
    {"symmetric", OPT_SYMMETRIC, no_argument, NULL,
     "zero point 0 (default for int8; int4 then uses int4 instead of uint4)"},
    {"asymmetric", OPT_ASYMMETRIC, no_argument, NULL,
     "a zero point per scale (default for int4)"},
    {"weight-dtype", OPT_WEIGHT_DTYPE, required_argument, "TYPE",
     "int8 or uint8 weights (default int8; uint8 with per-column zero points in dynamic mode)",
     "int8|uint8"},
    {"reduce-range", OPT_REDUCE_RANGE, no_argument, NULL,
     "weights within [-64, 64] in every layer, for engines that add u8*s8 pairs in 16 bits (x86 "
     "without VNNI: ONNX Runtime's kernels saturate otherwise). Static mode's default decides per "
     "layer: reduced where the largest pair of neighbouring weight codes times the activation code "
     "99% of the calibration values stay below passes 32767, full range elsewhere"},
    {"no-reduce-range", OPT_NO_REDUCE_RANGE, no_argument, NULL, "full 8-bit weights in every layer"},
    {"block-size", OPT_BLOCK_SIZE, required_argument, "N",
     "weights in blocks of N along the reduction axis: 16..1024, power of 2 (int4: default 32; "
     "int8 weight-only: per channel unless given)"},
    {"clip", OPT_CLIP, required_argument, "HOW",
     "weight range: mse (default: the clipping with least squared error) or minmax",
     "mse|minmax"},
    {"op-types", OPT_OP_TYPES, required_argument, "LIST",
     "ops whose weights are quantized (default Conv,ConvTranspose,Gemm,MatMul,Gather; dynamic: "
     "MatMul,Gemm,Gather). Gather: embedding tables (constant table, integer indices) in int8 "
     "with a scale per row, in every mode"},
    {"include", OPT_INCLUDE, required_argument, "REGEX",
     "only nodes whose name or op type matches (POSIX extended regex)"},
    {"exclude", OPT_EXCLUDE, required_argument, "REGEX", "skip nodes whose name or op type matches"},
    {"keep-io-types", OPT_KEEP_IO, no_argument, NULL,
     "fp16: model inputs and outputs stay float32 (Casts inside)"},
    {"no-fold", OPT_NO_FOLD, no_argument, NULL,
     "do not fold BatchNormalization and remove no-op nodes first"},
    {"allow-requantize", OPT_ALLOW_REQUANT, no_argument, NULL,
     "quantize the float weights left in an already quantized model"},
    {"passes", OPT_PASSES, required_argument, "PIPELINE",
     "run this pipeline instead of the preset (hpcz passes lists them)"},
    {"dry-run", OPT_DRY_RUN, no_argument, NULL,
     "print the plan per tensor and the resulting sizes; write nothing"},
    {"json", OPT_JSON, no_argument, NULL,
     "print the summary as JSON (schema hpcz.quantize 1, see docs/json.md) on stdout"},
    {"json-file", OPT_JSON_FILE, required_argument, "FILE", "write the JSON summary to FILE instead",
     NULL, "json"},
    {"data", OPT_DATA, required_argument, "DATA",
     "data for --report and the gates (default: the --calib data)", NULL, "npy"},
    {"labels", OPT_LABELS, required_argument, "FILE", "class index per --data sample (.npy): accuracy and its drop",
     NULL, "npy"},
    {"report", OPT_REPORT, required_argument, "FILE",
     "compare with the original on --data and write the report (JSON, schema hpcz.report 1) to "
     "FILE ('-': stdout)", NULL, "json"},
    CLI_GATE_OPTIONS,
    {"auto-fallback", OPT_AUTO_FALLBACK, no_argument, NULL,
     "when a gate breaks, return the most sensitive layers to float (ranked by one per-layer "
     "comparison, then bisected) until the gates hold"},
    {"fallback-weights", OPT_FALLBACK_WEIGHTS, required_argument, "TYPE",
     "static --auto-fallback: the weights of layers returned to float stay int8 (default: "
     "weight-only, per channel, so the model stays small) or go back to float",
     "int8|float"},
    {"budget", OPT_BUDGET, required_argument, "SECONDS", "time limit for --auto-fallback; the best model found is kept"},
    {"in-place", OPT_IN_PLACE, no_argument, NULL, "allow OUT to be IN"},
    {"verbose", 'v', no_argument, NULL, "print what every pass did"},
    {"quiet", 'q', no_argument, NULL, "no summary on stderr"},
    {0},
};

const cli_cmd_info cmd_quantize_info = {
    "quantize", "IN -o OUT [options]",
    "Quantize a model's weights and write it in QDQ form (integer initializers behind "
    "DequantizeLinear), which ONNX Runtime runs and fuses into integer kernels, or convert it "
    "to float16.",
    "The preset pipeline is 'fold-bn,eliminate,<quantization pass>,dce'; --passes replaces it. "
    "The same input and options always give the same bytes. A summary of what changed goes to "
    "stderr; --json prints it for machines.",
    opts,
    .exits = cli_exits_gates,
    .max_operands = 1,
    .operand_files = CLI_FILES_MODEL,
    .legacy = CLI_LEGACY_JSON_FILE,
};

typedef struct notes {
    char **lines;
    size_t n, cap;
} notes;

static void collect_note(void *user, const char *pass, const char *msg)
{
    notes *nt = user;
    if (cli_verbosity > 0)
        fprintf(stderr, "hpcz: %s: %s\n", pass, msg);
    if (nt->n == nt->cap) {
        nt->cap = nt->cap ? nt->cap * 2 : 64;
        char **nl = realloc(nt->lines, nt->cap * sizeof *nl);
        if (!nl)
            return;
        nt->lines = nl;
    }
    size_t l = strlen(pass) + strlen(msg) + 3;
    char *s = malloc(l);
    if (!s)
        return;
    snprintf(s, l, "%s: %s", pass, msg);
    nt->lines[nt->n++] = s;
}

static size_t count_quant_nodes(hpcz_model *m)
{
    static const char *const q[] = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear",
                                    "QLinearConv", "QLinearMatMul", "MatMulInteger",
                                    "ConvInteger", "MatMulNBits", "GatherBlockQuantized"};
    hpcz_model_summary s;
    hpcz_error err;
    if (hpcz_model_summarize_sizes(m, &s, &err))
        return 0;
    size_t n = 0;
    for (size_t i = 0; i < s.n_ops; i++)
        for (size_t k = 0; k < sizeof q / sizeof q[0]; k++)
            if (!strcmp(s.ops[i].op_type, q[k]))
                n += s.ops[i].count;
    hpcz_model_summary_release(&s);
    return n;
}

/* Nodes of the selected op types, quantized (weight from a DequantizeLinear)
 * or not, by op type. */
typedef struct op_tally {
    const char *op;
    size_t quantized, kept;
} op_tally;

typedef struct tally {
    op_tally t[32];
    size_t n;
    const char *op_types;
    int fp16;
} tally;

static int tally_graph(hpcz_graph *g, void *ctx)
{
    tally *t = ctx;
    for (size_t i = 0; i < g->n_nodes; i++) {
        const hpcz_node *n = g->nodes[i];
        /* MatMulNBits is a quantized MatMul (--int4-format matmulnbits),
         * GatherBlockQuantized an int4 embedding table */
        const char *op = !strcmp(n->op_type, "MatMulNBits")            ? "MatMul"
                         : !strcmp(n->op_type, "GatherBlockQuantized") ? "Gather"
                                                                       : n->op_type;
        if (!hpcz_list_contains(t->op_types, op) || n->n_inputs < 2 || !n->inputs[1])
            continue;
        const hpcz_value *w = n->inputs[1];
        bool q;
        if (!strcmp(n->op_type, "Gather") && op == n->op_type) {
            /* embedding tables only: a Gather over computed data has no weight */
            const hpcz_value *d = n->inputs[0];
            const hpcz_attr *cv = d && d->producer && !strcmp(d->producer->op_type, "Constant")
                                      ? hpcz_node_attr(d->producer, "value") : NULL;
            const hpcz_tensor *tab = !d ? NULL : d->init ? d->init : cv ? cv->t : NULL;
            bool fl = tab && (tab->dtype == HPCZ_DTYPE_FLOAT || tab->dtype == HPCZ_DTYPE_FLOAT16);
            /* int64 constants are shape arithmetic; one value per row, the
             * row scales of a quantized table */
            if (!tab || (!fl && hpcz_dtype_bits(tab->dtype) > 8) || tab->ndim < 1 || tab->numel == tab->dims[0])
                continue;
            q = !fl;
        } else if (!strcmp(n->op_type, "MatMulInteger") || !strcmp(n->op_type, "ConvInteger") ||
                   op != n->op_type)
            q = true;
        else if (t->fp16)
            q = w->dtype == HPCZ_DTYPE_FLOAT16;
        else
            q = w->producer && !strcmp(w->producer->op_type, "DequantizeLinear");
        op_tally *e = NULL;
        for (size_t k = 0; k < t->n && !e; k++)
            if (!strcmp(t->t[k].op, op))
                e = &t->t[k];
        if (!e && t->n < 32) {
            e = &t->t[t->n++];
            e->op = op;
            e->quantized = e->kept = 0;
        }
        if (e) {
            if (q)
                e->quantized++;
            else
                e->kept++;
        }
    }
    return 0;
}

/* ------------------------------------------------------------ auto-fallback */

/* float16 converts again with a node kept float32: the first run's notes
 * describe a model that is gone */
static void nonfinite_retry(void *user, const char *msg)
{
    notes *nt = user;
    cli_note("%s", msg);
    for (size_t i = 0; i < nt->n; i++)
        free(nt->lines[i]);
    nt->n = 0;
}

static int repair_nonfinite(const char *in, const char *data, int fp16, int threads, const uint8_t *orig_bytes,
                            size_t orig_len, hpcz_pipeline *pl, hpcz_pass_ctx *ctx, notes *nt, hpcz_model **m)
{
    hpcz_error err;
    if (hpcz_repair_nonfinite(orig_bytes, orig_len, data, fp16, threads, pl, ctx, nonfinite_retry, nt, m, &err))
        return err.status == HPCZ_ERR_INVALID ? cli_error("%s: %s", in, err.msg) : cli_file_error(data, &err);
    return EXIT_OK;
}

/* hpcz_autofallback with the labels file loaded; errors printed. */
static int run_fallback(hpcz_fallback_opts *o, const char *labels, hpcz_model *first, hpcz_model **better,
                        hpcz_fallback_result *fb)
{
    hpcz_error err;
    hpcz_array lab = {0};
    if (labels) {
        if (hpcz_npy_load(labels, &lab, &err))
            return cli_file_error(labels, &err);
        if (lab.dtype != HPCZ_DTYPE_INT64 || lab.ndim != 1) {
            hpcz_array_release(&lab);
            return cli_error("%s: labels must be a 1-D int64 array", labels);
        }
        o->labels = lab.data;
        o->n_labels = (size_t)lab.numel;
    }
    hpcz_status st = hpcz_autofallback(o, first, better, fb, &err);
    hpcz_array_release(&lab);
    o->labels = NULL;
    if (st)
        return cli_error("%s", err.msg);
    if (fb->budget_reached)
        cli_warn("auto-fallback: --budget of %g s reached", o->budget_s);
    return EXIT_OK;
}


int cmd_quantize(int argc, char **argv)
{
    cli_dims dims = {0};
    const char *out = NULL, *mode = "weight-only", *dtype = "int8", *weight_dtype = NULL;
    const char *include = NULL, *exclude = NULL, *op_types = NULL, *json = NULL, *passes = NULL;
    const char *clip = "mse";
    int per_channel = 1, symmetric = -1, reduce_range = -1, keep_io = 0, dry_run = 0, fold = 1;
    int allow_requant = 0, in_place = 0, threads = 0, force = 0, json_flag = 0;
    const char *json_file = NULL;
    const char *calib = NULL, *calib_mask = NULL, *calib_method = "minmax", *calib_table = NULL, *act_dtype = "uint8", *placement = "latency",
               *fallback_weights = "int8";
    long long calib_samples = 0;
    double smooth = -1; /* --smooth-quant: -1 not given */
    int bias_correct = -1;
    bool method_given = false;
    const char *report = NULL, *data = NULL, *labels = NULL;
    int auto_fallback = 0;
    const char *algo = NULL; /* weight-only: gptq with --calib, else rtn */
    const char *int4_format = NULL; /* int4: qdq (default) or matmulnbits */
    double budget = 0;
    cli_gates gates;
    cli_gates_init(&gates);
    long long block = 0; /* 0: not given (int4: 32; int8: per channel) */
    int c;
    while ((c = cli_getopt(argc, argv, &cmd_quantize_info)) != -1) {
        switch (c) {
        case 'h':
            return EXIT_OK;
        case OPT_OUTPUT:
            out = optarg;
            break;
        case OPT_MODE:
            mode = optarg;
            break;
        case OPT_DTYPE:
            dtype = optarg;
            break;
        case OPT_INT4_FORMAT:
            int4_format = optarg;
            break;
        case OPT_PER_CHANNEL:
            per_channel = 1;
            break;
        case OPT_PER_TENSOR:
            per_channel = 0;
            break;
        case OPT_SYMMETRIC:
            symmetric = 1;
            break;
        case OPT_ASYMMETRIC:
            symmetric = 0;
            break;
        case OPT_WEIGHT_DTYPE:
            weight_dtype = optarg;
            break;
        case OPT_REDUCE_RANGE:
            reduce_range = 1;
            break;
        case OPT_NO_REDUCE_RANGE:
            reduce_range = 0;
            break;
        case OPT_BLOCK_SIZE:
            if (!cli_parse_int(&cmd_quantize_info, "block-size", optarg, 16, 1024, &block))
                return EXIT_USAGE;
            if (block & (block - 1))
                return cli_usage_error(&cmd_quantize_info, "--block-size: %lld is not a power of 2", block);
            break;
        case OPT_CLIP:
            clip = optarg;
            break;
        case OPT_CALIB:
            calib = optarg;
            break;
        case CLI_OPT_DIM:
            if (!cli_dims_option(&cmd_quantize_info, &dims, optarg))
                return EXIT_USAGE;
            break;
        case OPT_CALIB_SAMPLES:
            if (!cli_parse_int(&cmd_quantize_info, "calib-samples", optarg, 1, 100000000, &calib_samples))
                return EXIT_USAGE;
            break;
        case OPT_CALIB_MASK:
            calib_mask = optarg;
            break;
        case OPT_CALIB_METHOD:
            calib_method = optarg;
            method_given = true;
            break;
        case OPT_CALIB_TABLE:
            calib_table = optarg;
            break;
        case OPT_ACT_DTYPE:
            act_dtype = optarg;
            break;
        case OPT_PLACEMENT:
            placement = optarg;
            break;
        case OPT_SMOOTH_QUANT: {
            char *end;
            smooth = optarg ? strtod(optarg, &end) : 0.5;
            if (optarg && (end == optarg || *end || !(smooth >= 0 && smooth <= 1)))
                return cli_usage_error(&cmd_quantize_info, "--smooth-quant: '%s' is not an alpha in [0, 1]", optarg);
            break;
        }
        case OPT_BIAS_CORRECTION:
        case OPT_NO_BIAS_CORRECTION:
            bias_correct = c == OPT_BIAS_CORRECTION;
            break;
        case OPT_FALLBACK_WEIGHTS:
            fallback_weights = optarg;
            break;
        case OPT_THREADS: {
            long long t;
            if (!cli_parse_int(&cmd_quantize_info, "threads", optarg, 0, 1024, &t))
                return EXIT_USAGE;
            threads = (int)t;
            break;
        }
        case CLI_OPT_DEVICE: {
            int rc = cli_device_option(&cmd_quantize_info, optarg);
            if (rc)
                return rc;
            break;
        }
        case OPT_INCLUDE:
            include = optarg;
            break;
        case OPT_EXCLUDE:
            exclude = optarg;
            break;
        case OPT_OP_TYPES:
            op_types = optarg;
            break;
        case OPT_KEEP_IO:
            keep_io = 1;
            break;
        case OPT_NO_FOLD:
            fold = 0;
            break;
        case OPT_ALLOW_REQUANT:
            allow_requant = 1;
            break;
        case OPT_PASSES:
            passes = optarg;
            break;
        case OPT_DRY_RUN:
            dry_run = 1;
            break;
        case OPT_JSON:
            json_flag = 1;
            break;
        case OPT_JSON_FILE:
            json_file = optarg;
            break;
        case OPT_FORCE:
            force = 1;
            break;
        case OPT_IN_PLACE:
            in_place = 1;
            break;
        case OPT_REPORT:
            report = optarg;
            break;
        case OPT_ALGO:
            algo = optarg;
            break;
        case OPT_DATA:
            data = optarg;
            break;
        case OPT_LABELS:
            labels = optarg;
            break;
        case OPT_AUTO_FALLBACK:
            auto_fallback = 1;
            break;
        case OPT_BUDGET: {
            char *end;
            budget = strtod(optarg, &end);
            if (end == optarg || *end || !(budget > 0))
                return cli_usage_error(&cmd_quantize_info, "--budget: '%s' is not a positive number of seconds", optarg);
            break;
        }
        case 'v':
            cli_verbosity = 1;
            break;
        case 'q':
            cli_verbosity = -1;
            break;
        default:
            if (c >= CLI_OPT_GATE_FIRST && c <= CLI_OPT_GATE_LAST) {
                if (!cli_gates_option(&cmd_quantize_info, &gates, c, optarg))
                    return EXIT_USAGE;
                break;
            }
            return EXIT_USAGE;
        }
    }
    const char *in = cli_operand(&cmd_quantize_info, argc, argv, "IN");
    if (!in)
        return EXIT_USAGE;
    if (!data && calib)
        data = calib;
    bool evaluate = report || gates.n || auto_fallback;
    if (evaluate && !data)
        return cli_usage_error(&cmd_quantize_info, "--report and the gates need data: --data DIR (or --calib DIR)");
    if (auto_fallback && !gates.n)
        return cli_usage_error(&cmd_quantize_info, "--auto-fallback needs a gate to satisfy (e.g. --max-top1-drop 0.5)");
    if (!out && !dry_run)
        return cli_usage_error(&cmd_quantize_info, "missing -o OUT (or --dry-run)");
    if (calib_mask && !calib)
        return cli_usage_error(&cmd_quantize_info, "--calib-mask selects tokens of the calibration data: give --calib DATA");
    if (smooth > 0 && passes)
        return cli_usage_error(&cmd_quantize_info, "--smooth-quant and --passes: put smooth-quant in a pipeline "
                               "of its own first");
    if (bias_correct > 0 && passes)
        return cli_usage_error(&cmd_quantize_info, "--bias-correction and --passes: add the bias-correct pass "
                               "to the pipeline instead");
    if (int4_format && passes)
        return cli_usage_error(&cmd_quantize_info, "--int4-format and --passes: add the int4-matmulnbits pass "
                               "to the pipeline instead");
    /* what the options mean: the library's recipe (lib/passes/recipe.c) */
    hpcz_quantize_recipe rq;
    hpcz_quantize_recipe_init(&rq);
    rq.mode = mode;
    rq.dtype = dtype;
    rq.per_channel = per_channel;
    rq.symmetric = symmetric;
    rq.weight_dtype = weight_dtype;
    rq.reduce_range = reduce_range;
    rq.block = (int)block;
    rq.clip = clip;
    rq.algo = algo;
    rq.int4_format = int4_format;
    rq.act_dtype = act_dtype;
    rq.placement = placement;
    rq.fallback_weights = fallback_weights;
    rq.keep_io_types = keep_io;
    rq.fold = fold;
    rq.op_types = op_types;
    rq.include = include;
    rq.exclude = exclude;
    rq.have_calib = calib != NULL;
    rq.have_table = calib_table != NULL;
    rq.smooth = passes ? 0 : smooth;
    /* the fallback search requantizes many times: correction only when asked */
    rq.bias_correct = passes || (auto_fallback && bias_correct < 0) ? 0 : bias_correct;
    {
        hpcz_error rerr;
        if (hpcz_quantize_recipe_resolve(&rq, &rerr))
            return cli_usage_error(&cmd_quantize_info, "%s", rerr.msg);
    }
    int is_static = !strcmp(mode, "static"), is_dynamic = !strcmp(mode, "dynamic");
    int fp16 = !strcmp(dtype, "fp16") || !strcmp(dtype, "float16");
    int int4 = !strcmp(dtype, "int4");
    int algo_default = rq.algo_default;
    algo = rq.algo;
    weight_dtype = rq.weight_dtype;
    block = rq.block;
    int gptq = !strcmp(algo, "gptq");
    hpcz_calib_opts copts = {0};
    {
        hpcz_error cerr;
        if (hpcz_calib_method_parse(calib_method, &copts, &cerr))
            return cli_usage_error(&cmd_quantize_info, "--calib-method: %s", cerr.msg);
        copts.bits = 8;
        copts.threads = threads;
    }
    if ((include && !cli_check_regex(&cmd_quantize_info, "include", include)) ||
        (exclude && !cli_check_regex(&cmd_quantize_info, "exclude", exclude)))
        return EXIT_USAGE;
    if (json_flag && json_file)
        return cli_usage_error(&cmd_quantize_info, "--json and --json-file: give one");
    json = json_flag ? "-" : json_file;
    if ((out && !dry_run && !strcmp(out, "-") && !cli_claim_stdout(&cmd_quantize_info, "-o -")) ||
        (json_flag && !cli_claim_stdout(&cmd_quantize_info, "--json")) ||
        (json_file && !strcmp(json_file, "-") && !cli_claim_stdout(&cmd_quantize_info, "--json-file -")) ||
        (report && !strcmp(report, "-") && !cli_claim_stdout(&cmd_quantize_info, "--report -")))
        return EXIT_USAGE;
    if (out && !dry_run && !strcmp(out, "-") && !cli_binary_stdout_ok(&cmd_quantize_info, force))
        return EXIT_USAGE;
    if (out && !in_place && cli_same_file(in, out))
        return cli_error("%s: refusing to overwrite the input (use --in-place)", out);
    {
        const char *outs[] = {out, json, report};
        for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++) {
            int orc = cli_check_output(outs[i]);
            if (orc)
                return orc;
        }
    }

    /* the preset pipeline, as a string: what --passes would say */
    char spec[2048], smooth_spec[2048] = "";
    if (passes) {
        snprintf(spec, sizeof spec, "%s", passes);
    } else {
        hpcz_error rerr;
        if (hpcz_quantize_recipe_pipeline(&rq, spec, sizeof spec, smooth_spec, sizeof smooth_spec, &rerr))
            return cli_usage_error(&cmd_quantize_info, "%s", rerr.msg);
    }
    hpcz_error err = {0};
    hpcz_pipeline *pl = hpcz_pipeline_parse(spec, &err);
    if (!pl)
        return cli_usage_error(&cmd_quantize_info, "%s", err.msg);

    hpcz_model *m = hpcz_model_load(in, NULL, &err);
    if (!m) {
        hpcz_pipeline_free(pl);
        return cli_file_error(in, &err);
    }
    int grc = cli_check_gate_outputs(&cmd_quantize_info, &gates, m);
    if (!grc)
        grc = cli_dims_apply(&cmd_quantize_info, &dims, m);
    if (!grc && calib)
        grc = cli_calib_mask(&cmd_quantize_info, m, calib_mask, &copts.mask_input);
    if (grc) {
        hpcz_pipeline_free(pl);
        hpcz_model_free(m);
        return grc;
    }
    uint64_t in_bytes = m->file_size;
    hpcz_model_summary before;
    if (hpcz_model_summarize_sizes(m, &before, &err)) {
        hpcz_pipeline_free(pl);
        hpcz_model_free(m);
        return cli_file_error(in, &err);
    }
    size_t already = count_quant_nodes(m);
    if (already && !allow_requant) {
        hpcz_model_summary_release(&before);
        hpcz_pipeline_free(pl);
        hpcz_model_free(m);
        return cli_error("%s: the model is already quantized (%zu quantization nodes); "
                         "--allow-requantize quantizes the float weights left",
                         strcmp(in, "-") ? in : "<stdin>", already);
    }
    uint8_t *orig_bytes = NULL;
    size_t orig_len = 0;
    /* the data the compressed model is checked on for NaN/Inf */
    const char *finite_data = calib ? calib : data;
    if (fp16 && !finite_data)
        cli_note("float16 without --calib or --data: only constants were checked, not activation ranges "
                 "(values past 65504 become Inf); give data to keep such nodes in float32");
    if ((evaluate || finite_data) && hpcz_onnx_serialize(m, NULL, &orig_bytes, &orig_len, &err)) {
        hpcz_model_summary_release(&before);
        hpcz_pipeline_free(pl);
        hpcz_model_free(m);
        return cli_file_error(in, &err);
    }
    notes nt = {0};
    hpcz_pass_ctx ctx;
    hpcz_pass_ctx_init(&ctx);
    ctx.log = collect_note;
    ctx.log_user = &nt;
    hpcz_status st = HPCZ_OK;
    hpcz_model *orig = NULL;
    hpcz_fallback_result fb = {0};
    hpcz_calib_table *table = NULL;
    int rc = EXIT_OK;
    uint8_t *bytes = NULL;
    size_t out_bytes = 0;
    hpcz_model_summary after;
    memset(&after, 0, sizeof after);
    ctx.data = calib;
    ctx.data_samples = (size_t)calib_samples;
    ctx.data_mask = copts.mask_input;
    ctx.threads = threads;
    if ((is_static && (calib || calib_table)) || (fp16 && calib)) {
        /* ranges are measured on the model as the quantization pass will see
         * it: after the preset's clean-ups (float16: the ranges float16
         * cannot carry keep their nodes in float32) */
        if (!passes && fold && is_static) {
            hpcz_pipeline *pre = hpcz_pipeline_parse("fold-bn,eliminate", &err);
            st = pre ? hpcz_pipeline_run(pre, m, &ctx, &err) : err.status;
            hpcz_pipeline_free(pre);
            if (!st) {
                hpcz_pipeline_free(pl);
                char *q = strstr(spec, "fold-bn,eliminate,");
                pl = hpcz_pipeline_parse(q ? q + strlen("fold-bn,eliminate,") : spec, &err);
                if (!pl)
                    st = err.status;
            }
        }
        if (!st && smooth_spec[0]) {
            hpcz_pipeline *sq = hpcz_pipeline_parse(smooth_spec, &err);
            st = sq ? hpcz_pipeline_run(sq, m, &ctx, &err) : err.status;
            hpcz_pipeline_free(sq);
            /* a smoothed transformer: minmax ranges of its GELU outputs and
             * residual sums waste the levels on rare values; entropy keeps
             * static int8 at or above dynamic on the zoo's MiniLM (README) */
            bool smoothed = false;
            for (size_t i = 0; i < nt.n && !smoothed; i++)
                smoothed = !strncmp(nt.lines[i], "smooth-quant: smoothed", 22);
            if (!st && smoothed && !method_given) {
                hpcz_calib_method_parse("entropy", &copts, &err);
                copts.bits = 8;
                cli_note("static int8: entropy calibration, as for transformers (SmoothQuant applied); "
                         "--calib-method chooses another");
            }
        }
        if (!st && calib_table) {
            table = hpcz_calib_table_load(calib_table, &err);
            if (table && hpcz_calib_table_check(table, m, &err)) {
                hpcz_calib_table_free(table);
                table = NULL;
            }
            if (!table) {
                hpcz_pipeline_free(pl);
                rc = cli_file_error(calib_table, &err);
                goto early;
            }
        } else if (!st) {
            rc = cli_calibrate(m, calib, (size_t)calib_samples, &copts, &table);
            if (rc) {
                hpcz_pipeline_free(pl);
                goto early;
            }
        }
        ctx.calib = table;
    }
    if (!st)
        st = hpcz_pipeline_run(pl, m, &ctx, &err);
    if (st) {
        hpcz_pipeline_free(pl);
        rc = cli_file_error(in, &err);
        goto done;
    }
    if (finite_data && (rc = repair_nonfinite(in, finite_data, fp16, threads, orig_bytes, orig_len, pl,
                                               &ctx, &nt, &m))) {
        hpcz_pipeline_free(pl);
        goto done;
    }
    if (evaluate) {
        orig = hpcz_onnx_load_buffer(orig_bytes, orig_len, NULL, &err);
        if (!orig) {
            hpcz_pipeline_free(pl);
            rc = cli_file_error(in, &err);
            goto done;
        }
        orig->file_size = in_bytes;
        orig->path = in;
    }
    if (auto_fallback) {
        /* the same pipeline with kept-weights=float, for models whose int8
         * weights alone already break the gates */
        hpcz_pipeline *pl_float = NULL;
        char *kw = strstr(spec, "kept-weights=int8");
        if (kw) {
            char fspec[sizeof spec + 8];
            snprintf(fspec, sizeof fspec, "%.*skept-weights=float%s", (int)(kw - spec), spec,
                     kw + strlen("kept-weights=int8"));
            char *fq = strstr(fspec, "fold-bn,eliminate,");
            if (!passes && fold && is_static && fq)
                memmove(fq, fq + strlen("fold-bn,eliminate,"), strlen(fq + strlen("fold-bn,eliminate,")) + 1);
            pl_float = hpcz_pipeline_parse(fspec, &err);
        }
        hpcz_fallback_opts fo = {.orig = orig,
                                 .bytes = orig_bytes,
                                 .len = orig_len,
                                 .fold = !passes && fold,
                                 .post = pl,
                                 .post_float = pl_float,
                                 .table = table,
                                 .data = data,
                                 .gates = gates.g,
                                 .n_gates = gates.n,
                                 .threads = threads,
                                 .budget_s = budget,
                                 .prepare = smooth_spec[0] ? smooth_spec : NULL,
                                 .prepare_data = calib,
                                 .prepare_mask = copts.mask_input,
                                 .prepare_samples = (size_t)calib_samples};
        hpcz_model *better = NULL;
        rc = run_fallback(&fo, labels, m, &better, &fb);
        hpcz_pipeline_free(pl_float);
        if (rc) {
            hpcz_pipeline_free(pl);
            goto done;
        }
        if (better) {
            hpcz_model_free(m);
            m = better;
            /* the first run's notes describe a model that is gone */
            for (size_t i = 0; i < nt.n; i++)
                free(nt.lines[i]);
            nt.n = 0;
        }
    }
    hpcz_pipeline_free(pl);
    if (hpcz_model_summarize_sizes(m, &after, &err)) {
        rc = cli_file_error(in, &err);
        goto done;
    }
    /* the size of what would be written (deterministic; only standard output
     * needs the bytes in memory) */
    if (out && !dry_run && !strcmp(out, "-") ? hpcz_onnx_serialize(m, NULL, &bytes, &out_bytes, &err)
                                             : hpcz_onnx_serialized_size(m, NULL, &out_bytes, &err)) {
        rc = cli_file_error(out ? out : in, &err);
        goto done;
    }
    if (!dry_run) {
        if (!strcmp(out, "-")) {
            if (fwrite(bytes, 1, out_bytes, stdout) != out_bytes || fflush(stdout)) {
                rc = cli_error("writing standard output failed");
                goto done;
            }
        } else if ((st = hpcz_model_save(m, out, HPCZ_FORMAT_AUTO, &(hpcz_save_opts){.overwrite_inputs = in_place}, NULL, &err))) {
            rc = cli_file_error(out, &err);
            goto done;
        } else if (hpcz_format_from_path(out) == HPCZ_FORMAT_HPCZ) {
            struct stat ost;
            if (stat(out, &ost) == 0)
                out_bytes = (size_t)ost.st_size; /* the container, not the ONNX form */
        }
    }
    tally t = {.op_types = op_types ? op_types
                           : is_dynamic ? "MatMul,Gemm,MatMulInteger,Gather"
                                        : "Conv,ConvTranspose,Gemm,MatMul,Gather",
               .fp16 = fp16};
    hpcz_model_foreach_graph(m, tally_graph, &t);
    if (dry_run) {
        /* the plan per tensor: the notes of the quantization pass */
        FILE *pf = (json && !strcmp(json, "-")) || (report && !strcmp(report, "-")) ? stderr : stdout;
        for (size_t i = 0; i < nt.n; i++)
            if (!strncmp(nt.lines[i], "quantize: ", 10) || !strncmp(nt.lines[i], "to-fp16: ", 9))
                fprintf(pf, "%s\n", strchr(nt.lines[i], ' ') + 1);
        uint64_t wbits = 0;
        for (size_t i = 0; i < after.n_dtypes; i++)
            wbits += after.dtypes[i].bytes * 8;
        fprintf(pf, "weights: %s -> %s (%.2f bits per weight overall)\n",
                cli_bytes(before.param_bytes), cli_bytes(after.param_bytes),
                before.params ? (double)wbits / (double)before.params : 0.0);
        fprintf(pf, "model: %s -> %s (not written: --dry-run)\n", cli_bytes(in_bytes),
                cli_bytes(out_bytes));
    }
    if (cli_verbosity >= 0) {
        const char *gq = algo_default ? " (GPTQ: the default with --calib; --algo rtn rounds to nearest)"
                                      : " (GPTQ)";
        char wo[128];
        snprintf(wo, sizeof wo, "%s weight-only%s", int4 ? "int4" : "int8", gptq ? gq : "");
        const char *what = fp16 ? "fp16"
                           : is_static ? "int8 static"
                           : is_dynamic ? (!strcmp(weight_dtype, "uint8") ? "int8 dynamic (uint8 weights)"
                                                                          : "int8 dynamic (int8 weights)")
                           : wo;
        fprintf(stderr, "hpcz quantize: %s, %s\n", what,
                fp16 ? (keep_io ? "float32 inputs/outputs" : "float16 inputs/outputs")
                     : (int4 || block ? "blocked scales" : (per_channel ? "per-channel scales" : "per-tensor scales")));
        fprintf(stderr, "  size     %s -> %s (%.1f%%)\n", cli_bytes(in_bytes), cli_bytes(out_bytes),
                in_bytes ? 100.0 * (double)out_bytes / (double)in_bytes : 0.0);
        fprintf(stderr, "  weights  %s -> %s\n", cli_bytes(before.param_bytes), cli_bytes(after.param_bytes));
        for (size_t i = 0; i < t.n; i++)
            fprintf(stderr, "  %-16s %zu %s, %zu kept float\n", t.t[i].op, t.t[i].quantized,
                    fp16 ? "float16" : "quantized", t.t[i].kept);
        fprintf(stderr, "  nodes    %zu -> %zu\n", before.n_nodes_total, after.n_nodes_total);
        if (table)
            fprintf(stderr, "  calibration  %s over %zu sample%s%s%s%s\n", table->method, table->samples,
                    table->samples == 1 ? "" : "s", calib_table ? " (from " : "",
                    calib_table ? calib_table : (table->random ? " of random data: a proxy, not your data" : ""),
                    calib_table ? ")" : "");
        for (size_t i = 0; i < nt.n; i++)
            if (strstr(nt.lines[i], "activation tensors quantized"))
                fprintf(stderr, "  %s\n", strchr(nt.lines[i], ' ') + 1);
        for (size_t i = 0; i < nt.n; i++)
            if (strstr(nt.lines[i], "kept float32") || strstr(nt.lines[i], "the model stays float"))
                fprintf(stderr, "  %s\n", strchr(nt.lines[i], ' ') + 1);
    }
    if (json) {
        FILE *jf = !strcmp(json, "-") ? stdout : NULL;
        hpcz_outfile *of = NULL;
        if (!jf) {
            of = hpcz_outfile_open(json, &err);
            if (!of) {
                rc = cli_file_error(json, &err);
                goto done;
            }
            jf = hpcz_outfile_stream(of);
        }
        hpcz_json j;
        hpcz_json_init(&j, jf);
        hpcz_json_object_begin(&j, NULL);
        hpcz_json_string(&j, "schema", "hpcz.quantize");
        hpcz_json_int(&j, "version", 1);
        hpcz_json_string(&j, "input", in);
        hpcz_json_string(&j, "output", dry_run ? NULL : out);
        hpcz_json_bool(&j, "dry_run", dry_run);
        hpcz_json_string(&j, "pipeline", spec);
        hpcz_json_string(&j, "mode", mode);
        hpcz_json_string(&j, "dtype", fp16 ? "fp16" : dtype);
        hpcz_json_string(&j, "algo", is_static || is_dynamic || fp16 || passes ? NULL : algo);
        if (table) {
            hpcz_json_object_begin(&j, "calibration");
            hpcz_json_string(&j, "method", table->method);
            hpcz_json_uint(&j, "samples", table->samples);
            hpcz_json_bool(&j, "random_data", table->random);
            hpcz_json_string(&j, "table", calib_table);
            hpcz_json_object_end(&j);
        }
        hpcz_json_object_begin(&j, "size");
        hpcz_json_uint(&j, "before", in_bytes);
        hpcz_json_uint(&j, "after", out_bytes);
        hpcz_json_uint(&j, "weight_bytes_before", before.param_bytes);
        hpcz_json_uint(&j, "weight_bytes_after", after.param_bytes);
        hpcz_json_object_end(&j);
        hpcz_json_array_begin(&j, "ops");
        for (size_t i = 0; i < t.n; i++) {
            hpcz_json_object_begin(&j, NULL);
            hpcz_json_string(&j, "op_type", t.t[i].op);
            hpcz_json_uint(&j, "quantized", t.t[i].quantized);
            hpcz_json_uint(&j, "kept_float", t.t[i].kept);
            hpcz_json_object_end(&j);
        }
        hpcz_json_array_end(&j);
        hpcz_json_array_begin(&j, "notes");
        for (size_t i = 0; i < nt.n; i++)
            hpcz_json_string(&j, NULL, nt.lines[i]);
        hpcz_json_array_end(&j);
        hpcz_json_object_end(&j);
        hpcz_json_finish(&j);
        if (of && hpcz_outfile_commit(of, &err))
            rc = cli_file_error(json, &err);
    }
    if (fb.n_kept && cli_verbosity >= 0) {
        fprintf(stderr, "  auto-fallback: %zu layer%s kept float (%s weights%s), %d evaluations in %.2f s "
                "(one evaluation: %.2f s)%s\n",
                fb.n_kept, fb.n_kept == 1 ? "" : "s", fb.float_weights ? "float" : "int8",
                fb.float_weights ? ": with int8 weights even every layer broke the gates" : "",
                fb.evaluations, fb.seconds, fb.one_eval,
                fb.satisfied ? "" : ", gates still broken: kept the best model found");
        for (size_t i = 0; i < fb.n_kept; i++)
            fprintf(stderr, "    %s (%s): its output was at %.1f dB SQNR quantized\n", fb.kept[i],
                    fb.kept_op[i], fb.kept_sqnr[i]);
    } else if (auto_fallback && cli_verbosity >= 0 && fb.evaluations) {
        fprintf(stderr, "  auto-fallback: the gates hold with every layer quantized (%d evaluation%s)\n",
                fb.evaluations, fb.evaluations == 1 ? "" : "s");
    }
    if (evaluate && !rc) {
        cli_report_opts ro = {0};
        ro.a_path = in;
        ro.b_path = dry_run ? "(not written)" : out;
        ro.data = data;
        ro.labels = labels;
        ro.json = report;
        ro.threads = threads;
        ro.gates = &gates;
        ro.text = NULL;
        rc = cli_report(orig, m, &ro);
    }
done:
early:
    hpcz_fallback_result_release(&fb);
    hpcz_model_free(orig);
    free(orig_bytes);
    free(bytes);
    hpcz_calib_table_free(table);
    for (size_t i = 0; i < nt.n; i++)
        free(nt.lines[i]);
    free(nt.lines);
    hpcz_model_summary_release(&before);
    hpcz_model_summary_release(&after);
    hpcz_model_free(m);
    return rc;
}

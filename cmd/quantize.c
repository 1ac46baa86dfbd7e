/*
 * quantize.c - `hpcz quantize IN -o OUT`: a preset pipeline of clean-ups and a
 * quantization pass, with a one-screen summary of what changed.
 */
#include "jobs.h"

#include <stdlib.h>
#include <string.h>

enum {
    OPT_OUTPUT = 'o', OPT_MODE = 256, OPT_DTYPE, OPT_PER_CHANNEL, OPT_PER_TENSOR, OPT_SYMMETRIC, OPT_ASYMMETRIC,
    OPT_WEIGHT_DTYPE, OPT_REDUCE_RANGE, OPT_BLOCK_SIZE, OPT_INCLUDE, OPT_EXCLUDE, OPT_OP_TYPES, OPT_KEEP_IO,
    OPT_DRY_RUN, OPT_JSON, OPT_NO_FOLD, OPT_ALLOW_REQUANT, OPT_PASSES, OPT_IN_PLACE, OPT_CLIP, OPT_CALIB,
    OPT_CALIB_SAMPLES, OPT_CALIB_METHOD, OPT_CALIB_MASK, OPT_SMOOTH_QUANT, OPT_BIAS_CORRECTION,
    OPT_NO_BIAS_CORRECTION, OPT_EQUALIZE, OPT_NO_EQUALIZE, OPT_CALIB_TABLE, OPT_ACT_DTYPE,
    OPT_PLACEMENT, OPT_FALLBACK_WEIGHTS, OPT_PLACED_WEIGHTS, OPT_THREADS, OPT_NO_REDUCE_RANGE, OPT_REPORT, OPT_DATA, OPT_LABELS,
    OPT_AUTO_FALLBACK, OPT_BUDGET, OPT_ALGO, OPT_ROUNDING, OPT_EARLY_FP16, OPT_JSON_FILE, OPT_INT4_FORMAT, OPT_FORCE = 'f',
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
     "each error on the rest, using the layer inputs' Gram matrix on the first three quarters of "
     "the calibration samples; a layer keeps round to nearest where that is closer on the last "
     "quarter, held out) or rtn (round to nearest, the default without data); adaround (weight-only "
     "int8/int4 and static, with --calib): each weight rounded up or down to make the layer's output "
     "error on its inputs least (AdaRound, 300 Adam steps per layer on the Gram matrix; static: on the "
     "inputs the quantized model gives the layer, at the scales static mode chose), kept per layer "
     "where closer than round to nearest (and GPTQ, weight-only) on the held-out quarter",
     "rtn|gptq|adaround"},
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
     "sample (and, when fed by a float op, 48 per value converted to and from int8 around "
     "them), the others (depthwise convolutions too) only when fed by int8 ops; Mul/Add of "
     "per-channel constants after a Conv are folded into it and x*Clip(x+3,0,6)/6 becomes "
     "HardSwish first, and a float MaxPool between monotone activations and an int8 op is moved "
     "before the activations; all: every selected op in int8, the graph's own forms; hpcz: for "
     "files run by hpcz (hpcz's int8 kernels beat its float ones on every op kind, depthwise "
     "convolutions and int8 islands too): every selected op in int8 with latency's float "
     "rewrites, except ops without weights whose output no int8 op reads (the graph's "
     "outputs stay unrounded)",
     "latency|all|hpcz"},
    {"smooth-quant", OPT_SMOOTH_QUANT, optional_argument, "ALPHA",
     "static: SmoothQuant before calibration: divide the outlier channels of each LayerNormalization "
     "output read by matrix products by max|X|^ALPHA / max|W|^(1-ALPHA), folded into its scale and bias, "
     "and multiply the weights by the same (default: on at 0.5 with --calib; 0 turns it off)"},
    {"bias-correction", OPT_BIAS_CORRECTION, no_argument, NULL,
     "static and weight-only int8 (--algo rtn) with --calib: subtract from each layer's bias the mean output "
     "shift its rounded weights cause, from input means on the data, kept only where the calibration data's "
     "worst output SQNR does not drop (default: static with --calib; weight-only: off)"},
    {"no-bias-correction", OPT_NO_BIAS_CORRECTION, no_argument, NULL, "leave the biases as they are"},
    {"equalize", OPT_EQUALIZE, no_argument, NULL,
     "static with --calib: cross-layer equalization before calibration: scale each output channel of a "
     "Conv/Gemm/MatMul and the matching input channel of the next (through Relu-like ops only) so both "
     "layers' channel weight ranges become equal (default: on, kept only where the calibration data's worst "
     "output SQNR does not drop)"},
    {"no-equalize", OPT_NO_EQUALIZE, no_argument, NULL, "leave the weights' channel ranges as they are"},
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
    {"rounding", OPT_ROUNDING, required_argument, "HOW",
     "weight-only int8 without GPTQ: balanced (default: each channel's rounding errors made to sum to "
     "~0, weighted by input means estimated from the weights, so no output shift piles up) or nearest",
     "balanced|nearest"},
    {"early-fp16", OPT_EARLY_FP16, required_argument, "PCT",
     "weight-only int8 per channel, a net whose output is a dense map (reached from a ConvTranspose/Resize "
     "through elementwise ops, Conv and Concat: segmentation, text detection): its earliest convolutions, "
     "up to PCT percent of the convolution weights, keep float16 weights, their rounding noise reaching "
     "such an output unaveraged (default 1.5; 0: off)"},
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
     "weight-only, per channel, so the model stays small), become float16 read through a Cast, "
     "or go back to float",
     "int8|fp16|float"},
    {"placed-weights", OPT_PLACED_WEIGHTS, required_argument, "TYPE",
     "static: the weights of layers the latency placement leaves float, once some op runs in "
     "int8: float16 read through a Cast (default: half the bytes, and ONNX Runtime folds the "
     "Cast at load, so float speed), float, or int8 weight-only: smallest, but ONNX Runtime "
     "then dequantizes them every run and cannot prepack them (ppocr_cls: 0.36x the fp32 size "
     "at 1.6x its latency)",
     "fp16|float|int8"},
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

int cmd_quantize(int argc, char **argv)
{
    cli_dims dims = {0};
    hpcz_quantize_opts o;
    hpcz_quantize_opts_init(&o);
    hpcz_quantize_recipe *rq = &o.recipe;
    const char *out = NULL, *json = NULL, *json_file = NULL, *report = NULL;
    int dry_run = 0, force = 0, json_flag = 0;
    double smooth = -1; /* --smooth-quant: -1 not given */
    long long n;
    cli_gates gates = {0};
    const cli_store store[] = {
        CLI_TEXT(OPT_OUTPUT, &out), CLI_TEXT(OPT_MODE, &rq->mode), CLI_TEXT(OPT_DTYPE, &rq->dtype),
        CLI_TEXT(OPT_INT4_FORMAT, &rq->int4_format), CLI_TEXT(OPT_WEIGHT_DTYPE, &rq->weight_dtype),
        CLI_TEXT(OPT_CLIP, &rq->clip), CLI_TEXT(OPT_ROUNDING, &rq->rounding), CLI_TEXT(OPT_ALGO, &rq->algo), CLI_TEXT(OPT_ACT_DTYPE, &rq->act_dtype),
        CLI_TEXT(OPT_PLACEMENT, &rq->placement), CLI_TEXT(OPT_FALLBACK_WEIGHTS, &rq->fallback_weights),
        CLI_TEXT(OPT_PLACED_WEIGHTS, &rq->placed_weights),
        CLI_TEXT(OPT_INCLUDE, &rq->include), CLI_TEXT(OPT_EXCLUDE, &rq->exclude),
        CLI_TEXT(OPT_OP_TYPES, &rq->op_types), CLI_TEXT(OPT_CALIB, &o.calib), CLI_TEXT(OPT_CALIB_MASK, &o.calib_mask),
        CLI_TEXT(OPT_CALIB_METHOD, &o.calib_method), CLI_TEXT(OPT_CALIB_TABLE, &o.calib_table),
        CLI_TEXT(OPT_PASSES, &o.passes), CLI_TEXT(OPT_JSON_FILE, &json_file), CLI_TEXT(OPT_REPORT, &report),
        CLI_TEXT(OPT_DATA, &o.data), CLI_TEXT(OPT_LABELS, &o.labels),
        CLI_FLAG(OPT_PER_CHANNEL, &rq->per_channel, 1), CLI_FLAG(OPT_PER_TENSOR, &rq->per_channel, 0),
        CLI_FLAG(OPT_SYMMETRIC, &rq->symmetric, 1), CLI_FLAG(OPT_ASYMMETRIC, &rq->symmetric, 0),
        CLI_FLAG(OPT_REDUCE_RANGE, &rq->reduce_range, 1), CLI_FLAG(OPT_NO_REDUCE_RANGE, &rq->reduce_range, 0),
        CLI_FLAG(OPT_BIAS_CORRECTION, &rq->bias_correct, 1), CLI_FLAG(OPT_NO_BIAS_CORRECTION, &rq->bias_correct, 0),
        CLI_FLAG(OPT_EQUALIZE, &rq->equalize, 1), CLI_FLAG(OPT_NO_EQUALIZE, &rq->equalize, 0),
        CLI_FLAG(OPT_KEEP_IO, &rq->keep_io_types, 1), CLI_FLAG(OPT_NO_FOLD, &rq->fold, 0),
        CLI_FLAG(OPT_ALLOW_REQUANT, &o.allow_requantize, 1), CLI_FLAG(OPT_DRY_RUN, &dry_run, 1),
        CLI_FLAG(OPT_JSON, &json_flag, 1), CLI_FLAG(OPT_FORCE, &force, 1), CLI_FLAG(OPT_IN_PLACE, &o.in_place, 1),
        CLI_FLAG(OPT_AUTO_FALLBACK, &o.auto_fallback, 1), CLI_FLAG('v', &cli_verbosity, 1),
        CLI_FLAG('q', &cli_verbosity, -1),
    };
    int c;
    while ((c = cli_getopt(argc, argv, &cmd_quantize_info)) != -1) {
        if (cli_store_option(store, sizeof store / sizeof store[0], c, optarg))
            continue;
        switch (c) {
        case 'h':
            return EXIT_OK;
        case OPT_BLOCK_SIZE:
            if (!cli_parse_int(&cmd_quantize_info, "block-size", optarg, 16, 1024, &n))
                return EXIT_USAGE;
            if (n & (n - 1))
                return cli_usage_error(&cmd_quantize_info, "--block-size: %lld is not a power of 2", n);
            rq->block = (int)n;
            break;
        case CLI_OPT_DIM:
            if (!cli_dims_option(&cmd_quantize_info, &dims, optarg))
                return EXIT_USAGE;
            break;
        case OPT_CALIB_SAMPLES:
            if (!cli_parse_int(&cmd_quantize_info, "calib-samples", optarg, 1, 100000000, &n))
                return EXIT_USAGE;
            o.calib_samples = (size_t)n;
            break;
        case OPT_SMOOTH_QUANT: {
            char *end;
            smooth = optarg ? strtod(optarg, &end) : 0.5;
            if (optarg && (end == optarg || *end || !(smooth >= 0 && smooth <= 1)))
                return cli_usage_error(&cmd_quantize_info, "--smooth-quant: '%s' is not an alpha in [0, 1]", optarg);
            break;
        }
        case OPT_EARLY_FP16: {
            char *end;
            double pct = strtod(optarg, &end);
            if (end == optarg || *end || !(pct >= 0 && pct <= 100))
                return cli_usage_error(&cmd_quantize_info, "--early-fp16: '%s' is not a percentage in [0, 100]",
                                       optarg);
            rq->early_fp16 = pct;
            break;
        }
        case OPT_THREADS:
            if (!cli_parse_int(&cmd_quantize_info, "threads", optarg, 0, 1024, &n))
                return EXIT_USAGE;
            o.threads = (int)n;
            break;
        case CLI_OPT_DEVICE: {
            int rc = cli_device_option(&cmd_quantize_info, optarg);
            if (rc)
                return rc;
            break;
        }
        case OPT_BUDGET: {
            char *end;
            o.budget_s = strtod(optarg, &end);
            if (end == optarg || *end || !(o.budget_s > 0))
                return cli_usage_error(&cmd_quantize_info, "--budget: '%s' is not a positive number of seconds", optarg);
            break;
        }
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
    if (!o.data && o.calib)
        o.data = o.calib;
    bool evaluate = report || gates.n || o.auto_fallback;
    if (evaluate && !o.data)
        return cli_usage_error(&cmd_quantize_info, "--report and the gates need data: --data DIR (or --calib DIR)");
    if (o.auto_fallback && !gates.n)
        return cli_usage_error(&cmd_quantize_info, "--auto-fallback needs a gate to satisfy (e.g. --max-top1-drop 0.5)");
    if (!out && !dry_run)
        return cli_usage_error(&cmd_quantize_info, "missing -o OUT (or --dry-run)");
    if (o.calib_mask && !o.calib)
        return cli_usage_error(&cmd_quantize_info, "--calib-mask selects tokens of the calibration data: give --calib DATA");
    if (smooth > 0 && o.passes)
        return cli_usage_error(&cmd_quantize_info, "--smooth-quant and --passes: put smooth-quant in a pipeline "
                               "of its own first");
    if (rq->bias_correct > 0 && o.passes)
        return cli_usage_error(&cmd_quantize_info, "--bias-correction and --passes: add the bias-correct pass "
                               "to the pipeline instead");
    if (rq->equalize > 0 && o.passes)
        return cli_usage_error(&cmd_quantize_info, "--equalize and --passes: put equalize in a pipeline of its own "
                               "first (hpcz convert --passes fold-bn,equalize)");
    if (rq->int4_format && o.passes)
        return cli_usage_error(&cmd_quantize_info, "--int4-format and --passes: add the int4-matmulnbits pass "
                               "to the pipeline instead");
    /* what the options mean: the library's recipe (lib/passes/recipe.c) */
    rq->smooth = smooth;
    hpcz_error err = {0};
    if (hpcz_quantize_check(&o, &err))
        return cli_usage_error(&cmd_quantize_info, "%s", err.msg);
    if ((rq->include && !cli_check_regex(&cmd_quantize_info, "include", rq->include)) ||
        (rq->exclude && !cli_check_regex(&cmd_quantize_info, "exclude", rq->exclude)))
        return EXIT_USAGE;
    cli_outputs co = {.in = in, .out = out, .json_file = json_file, .report = report, .model_out = !dry_run,
                      .json_flag = json_flag, .force = force, .in_place = o.in_place};
    int rc = cli_check_outputs(&cmd_quantize_info, &co, &json);
    hpcz_model *m = rc ? NULL : cli_job_load(&cmd_quantize_info, in, &gates, &dims, o.calib, o.calib_mask, NULL, &rc);
    if (!m)
        return rc;
    o.gates = gates.g;
    o.n_gates = gates.n;
    o.keep_original = evaluate;
    o.output = dry_run ? NULL : out;
    o.hooks = cli_job_hooks(true);
    hpcz_quantize_result res;
    if (hpcz_quantize_run(&m, &o, &res, &err))
        rc = cli_job_error(&err);
    if (!rc && dry_run) /* the plan gives way to the output asked for */
        hpcz_quantize_write_plan((json && !strcmp(json, "-")) || (report && !strcmp(report, "-")) ? stderr : stdout, &res);
    if (!rc && cli_verbosity >= 0)
        hpcz_quantize_write_text(stderr, &o, &res);
    hpcz_outfile *of;
    FILE *jf = !rc && json ? cli_out_open(json, &of) : NULL;
    if (jf) {
        hpcz_quantize_write_json(jf, in, &o, &res);
        rc = cli_out_commit(json, of);
    } else if (!rc && json) {
        rc = EXIT_FAIL;
    }
    if (!rc && cli_verbosity >= 0)
        hpcz_quantize_write_fallback(stderr, &o, &res);
    if (!rc && evaluate) {
        cli_report_opts ro = {.a_path = in, .b_path = dry_run ? "(not written)" : out, .data = o.data,
                              .labels = o.labels, .json = report, .threads = o.threads, .gates = &gates};
        rc = cli_report(res.orig, m, &ro);
    }
    hpcz_quantize_result_release(&res);
    hpcz_model_free(m);
    return rc;
}

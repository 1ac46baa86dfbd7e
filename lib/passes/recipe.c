/*
 * recipe.c - what `hpcz quantize`'s options mean, as a pass pipeline: the
 * mode (weight-only, dynamic, static) and dtype (int8, int4, fp16) with
 * their choices become the string --passes would take, checked for choices
 * that contradict each other. A program linking libhpcz gets the same
 * pipelines as the command line from the same choices.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void hpcz_quantize_recipe_init(hpcz_quantize_recipe *r)
{
    memset(r, 0, sizeof *r);
    r->mode = "weight-only";
    r->dtype = "int8";
    r->per_channel = 1;
    r->symmetric = -1;
    r->reduce_range = -1;
    r->clip = "mse";
    r->early_fp16 = -1;
    r->act_dtype = "uint8";
    r->placement = "latency";
    r->fallback_weights = "int8";
    r->placed_weights = "fp16";
    r->fold = 1;
    r->smooth = -1;
    r->bias_correct = -1;
    r->equalize = -1;
}

static int is(const char *a, const char *b)
{
    return a && !strcmp(a, b);
}

/* include/exclude go inside a pipeline's braces */
static int plain_regex(const char *s)
{
    return !s || !strpbrk(s, ",{}");
}

hpcz_status hpcz_quantize_recipe_resolve(hpcz_quantize_recipe *r, hpcz_error *err)
{
#define USAGE(...) return hpcz_fail(err, HPCZ_ERR_USAGE, __VA_ARGS__)
    int is_static = is(r->mode, "static"), is_dynamic = is(r->mode, "dynamic");
    if (!is(r->mode, "weight-only") && !is_static && !is_dynamic)
        USAGE("--mode: '%s' is not weight-only, dynamic or static", r->mode);
    int fp16 = is(r->dtype, "fp16") || is(r->dtype, "float16");
    int int4 = is(r->dtype, "int4");
    if (!fp16 && !int4 && !is(r->dtype, "int8"))
        USAGE("--dtype: '%s' is not int8, int4 or fp16", r->dtype);
    if (!is(r->fallback_weights, "int8") && !is(r->fallback_weights, "fp16") && !is(r->fallback_weights, "float"))
        USAGE("--fallback-weights: '%s' is not int8, fp16 or float", r->fallback_weights);
    if (!is(r->placed_weights, "fp16") && !is(r->placed_weights, "int8") && !is(r->placed_weights, "float"))
        USAGE("--placed-weights: '%s' is not fp16, float or int8", r->placed_weights);
    if (!is(r->placement, "latency") && !is(r->placement, "all") && !is(r->placement, "hpcz"))
        USAGE("--placement: '%s' is not latency, all or hpcz", r->placement);
    if (!is(r->act_dtype, "uint8") && !is(r->act_dtype, "int8"))
        USAGE("--act-dtype: '%s' is not uint8 or int8", r->act_dtype);
    if (is_dynamic && (fp16 || int4))
        USAGE("--mode dynamic quantizes to int8: drop --dtype %s", r->dtype);
    if (!is(r->placed_weights, "fp16") && !is_static)
        USAGE("--placed-weights %s applies to --mode static", r->placed_weights);
    if (is_static && (fp16 || int4))
        USAGE("--mode static quantizes to int8: drop --dtype %s", r->dtype);
    if (is_static && !r->have_calib && !r->have_table)
        USAGE("--mode static needs calibration data: --calib DIR (or --calib random:N as a proxy) or "
              "--calib-table FILE");
    if (r->smooth > 0 && (!is_static || !r->have_calib))
        USAGE("--smooth-quant is for --mode static with --calib DATA");
    if (r->have_calib && r->have_table)
        USAGE("--calib and --calib-table: give one");
    /* weight-only with calibration data: GPTQ unless --algo rtn says otherwise */
    r->algo_default = !r->algo;
    if (!r->algo)
        r->algo = !is_static && !is_dynamic && !fp16 && r->have_calib ? "gptq" : "rtn";
    int gptq = is(r->algo, "gptq"), adaround = is(r->algo, "adaround");
    if (!gptq && !adaround && !is(r->algo, "rtn"))
        USAGE("--algo: '%s' is not rtn, gptq or adaround", r->algo);
    if (gptq && (is_static || is_dynamic || fp16))
        USAGE("--algo gptq is for weight-only int8/int4");
    if (adaround && (is_dynamic || fp16))
        USAGE("--algo adaround is for weight-only int8/int4 and --mode static");
    if ((gptq || adaround) && !r->have_calib)
        USAGE("--algo %s needs calibration data: --calib DIR (or random:N)", r->algo);
    /* weight-only AdaRound: GPTQ's pipeline with its rounding (and GPTQ
     * itself as one of the candidates) */
    gptq |= adaround && !is_static;
    if (r->block && (is_static || is_dynamic || fp16))
        USAGE("--block-size is for weight-only int8 and int4");
    if (r->block && (r->block < 16 || r->block > 1024 || (r->block & (r->block - 1))))
        USAGE("--block-size: %d is not a power of 2 from 16 to 1024", r->block);
    if (!r->block && int4)
        r->block = 32;
    if (r->int4_format && !is(r->int4_format, "qdq") && !is(r->int4_format, "matmulnbits"))
        USAGE("--int4-format: '%s' is not qdq or matmulnbits", r->int4_format);
    if (r->int4_format && (!int4 || is_static || is_dynamic))
        USAGE("--int4-format is for --dtype int4 (weight-only)");
    /* dynamic: uint8 weights with a zero point per column by default (ONNX
     * Runtime runs them with u8*u8 kernels, which do not saturate) */
    if (!r->weight_dtype)
        r->weight_dtype = is_dynamic ? "uint8" : "int8";
    if (!is(r->weight_dtype, "int8") && !is(r->weight_dtype, "uint8"))
        USAGE("--weight-dtype: '%s' is not int8 or uint8", r->weight_dtype);
    /* u8*s8 pair saturation on x86 without VNNI: static mode decides per
     * layer (reduce-range=auto) unless told */
    r->static_reduce_range = r->reduce_range < 0 ? "auto" : r->reduce_range ? "true" : "false";
    if (r->reduce_range < 0)
        r->reduce_range = is_dynamic && is(r->weight_dtype, "int8");
    if (!is(r->clip, "mse") && !is(r->clip, "minmax"))
        USAGE("--clip: '%s' is not mse or minmax", r->clip);
    /* bias correction measures input means on the data, for a rounding it
     * can repeat: round-to-nearest 8-bit weights per channel or tensor */
    int w8_rtn = !is_static && !is_dynamic && !fp16 && !int4 && !gptq && !r->block;
    if (r->rounding && !is(r->rounding, "balanced") && !is(r->rounding, "nearest"))
        USAGE("--rounding: '%s' is not balanced or nearest", r->rounding);
    if (is(r->rounding, "balanced") && !w8_rtn)
        USAGE("--rounding balanced is for weight-only int8 rounded to nearest (no --block-size, no GPTQ)");
    /* weight-only int8 without data: balanced (README, quantize section) */
    if (!r->rounding)
        r->rounding = w8_rtn ? "balanced" : "nearest";
    /* early-fp16: weight-only int8 per channel (GPTQ too) */
    int w8_pc = !is_static && !is_dynamic && !fp16 && !int4 && !r->block && r->per_channel;
    if (r->early_fp16 > 0 && !w8_pc)
        USAGE("--early-fp16 is for weight-only int8 per channel (no --block-size)");
    if (r->early_fp16 < 0)
        r->early_fp16 = w8_pc ? 1.5 : 0;
    if (r->bias_correct > 0 && !(is_static || w8_rtn))
        USAGE("--bias-correction is for --mode static and weight-only int8 with --algo rtn");
    if (r->bias_correct > 0 && !r->have_calib)
        USAGE("--bias-correction needs calibration data: --calib DIR");
    /* AdaRound's output error includes the mean shift a correction takes off */
    if (r->bias_correct > 0 && adaround)
        USAGE("--bias-correction and --algo adaround: AdaRound's rounding already minimises the output shift");
    /* static with data: on, since quantize-static keeps the correction only
     * where the calibration data says it helps (ddddocr_det would lose 5 dB);
     * weight-only: off unless asked (no such check; README) */
    if (r->bias_correct < 0)
        r->bias_correct = is_static && r->have_calib && !adaround;
    /* equalization changes the activation ranges: measured after it */
    if (r->equalize > 0 && (!is_static || !r->have_calib))
        USAGE("--equalize is for --mode static with --calib DATA (a --calib-table holds the ranges of the "
              "model before equalization)");
    if (r->equalize < 0 && !(is_static && r->have_calib))
        r->equalize = 0;
    if (!plain_regex(r->include) || !plain_regex(r->exclude))
        USAGE("--include/--exclude: use '|' instead of ',' and no braces");
#undef USAGE
    r->resolved = 1;
    return HPCZ_OK;
}

hpcz_status hpcz_quantize_recipe_pipeline(hpcz_quantize_recipe *r, char *spec, size_t cap, char *smooth,
                                          size_t smooth_cap, hpcz_error *err)
{
    if (!r->resolved) {
        hpcz_status st = hpcz_quantize_recipe_resolve(r, err);
        if (st)
            return st;
    }
    int is_static = is(r->mode, "static"), is_dynamic = is(r->mode, "dynamic");
    int fp16 = is(r->dtype, "fp16") || is(r->dtype, "float16"), int4 = is(r->dtype, "int4");
    int adaround = is(r->algo, "adaround"), gptq = is(r->algo, "gptq") || (adaround && !is_static);
    int nbits = is(r->int4_format, "matmulnbits");
    const char *inc = r->include, *exc = r->exclude;
    char filt[1024] = "";
    size_t k = 0;
    if (r->op_types) /* the pipeline parser keeps a list's commas in its value */
        k += (size_t)snprintf(filt + k, sizeof filt - k, ",op-types=%s", r->op_types);
    if (inc && k < sizeof filt)
        k += (size_t)snprintf(filt + k, sizeof filt - k, ",include=%s", inc);
    if (exc && k < sizeof filt)
        snprintf(filt + k, sizeof filt - k, ",exclude=%s", exc);
    /* bias correction: weight-only, a pass told how quantize-int8 will round
     * the weights; static decides per layer (placement, reduce-range=auto),
     * so quantize-static corrects for its own rounding (bias-correct=true) */
    /* weight-only int8 per channel rounded here: a dense-prediction net's
     * earliest convolutions keep float16 weights (quantize-int8's
     * early-fp16; README, quantize section; GPTQ: the early-fp16 pass) */
    char early[32] = "";
    if (!is_static && !is_dynamic && !fp16 && !int4 && !gptq && !r->block && r->per_channel && r->early_fp16 > 0)
        snprintf(early, sizeof early, ",early-fp16=%g", r->early_fp16);
    char bc[1400] = "";
    if (r->bias_correct > 0 && !is_static)
        snprintf(bc, sizeof bc,
                 "bias-correct{per-channel=%s,weight-dtype=%s,symmetric=%s,reduce-range=%s,clip=%s,check=true%s%s%s},",
                 r->per_channel ? "true" : "false", r->weight_dtype,
                 r->symmetric == 0 || is(r->weight_dtype, "uint8") ? "false" : "true",
                 r->reduce_range ? "true" : "false", r->clip,
                 is(r->rounding, "balanced") ? ",rounding=balanced" : "", early, filt);
    /* SmoothQuant: on by default for static int8 calibrated here (it does
     * nothing on models without LayerNormalization -> MatMul) */
    if (smooth && smooth_cap) {
        /* cross-layer equalization first (quantize_job.c checks the default
         * on the calibration data) */
        int k = r->equalize ? snprintf(smooth, smooth_cap, "equalize") : 0;
        smooth[k] = 0;
        if (is_static && r->have_calib && r->smooth != 0)
            snprintf(smooth + k, smooth_cap - (size_t)k, "%ssmooth-quant{alpha=%g}", k ? "," : "",
                     r->smooth < 0 ? 0.5 : r->smooth);
    }
    char q[4096];
    if (fp16) {
        snprintf(q, sizeof q, "to-fp16{keep-io-types=%s%s%s%s%s}", r->keep_io_types ? "true" : "false",
                 inc ? ",include=" : "", inc ? inc : "", exc ? ",exclude=" : "", exc ? exc : "");
    } else if (gptq) {
        /* then round-to-nearest for the layers GPTQ cannot measure (subgraphs);
         * int8 GPTQ is per channel, and so is that unless a block size is given */
        char rblk[48] = "", gf[1024] = "";
        if (r->block)
            snprintf(rblk, sizeof rblk, "block-size=%d%s", r->block, int4 ? "," : "");
        /* --include and --exclude for both passes */
        snprintf(gf, sizeof gf, "%s%s%s%s", inc ? ",include=" : "", inc ? inc : "", exc ? ",exclude=" : "",
                 exc ? exc : "");
        /* int8 per channel: early-fp16 first, as its own pass (GPTQ rounds
         * the weights before quantize-int8 writes them) */
        char eg[1100] = "";
        if (!int4 && !r->block && r->per_channel && r->early_fp16 > 0)
            snprintf(eg, sizeof eg, "early-fp16{share=%g%s},", r->early_fp16, gf);
        snprintf(q, sizeof q, "%squantize-%s{dtype=%s,block-size=%d,symmetric=%s%s},%s{%s%s%s}", eg,
                 adaround ? "adaround" : "gptq",
                 int4 ? "int4" : "int8", r->block ? r->block : 32, r->symmetric == 1 ? "true" : "false", gf,
                 int4 ? "quantize-int4" : "quantize-int8", rblk,
                 int4 ? (r->symmetric == 1 ? "symmetric=true" : "symmetric=false") : "",
                 r->block || int4 ? gf : gf + (*gf == ','));
    } else if (int4) {
        snprintf(q, sizeof q, "quantize-int4{block-size=%d,symmetric=%s,clip=%s%s}", r->block,
                 r->symmetric == 1 ? "true" : "false", r->clip, filt);
    } else if (is_dynamic) {
        snprintf(q, sizeof q, "quantize-dynamic{per-channel=%s,weight-dtype=%s,reduce-range=%s%s}",
                 r->per_channel ? "true" : "false", r->weight_dtype, r->reduce_range ? "true" : "false", filt);
    } else if (is_static) {
        snprintf(q, sizeof q,
                 "quantize-static{per-channel=%s,weight-dtype=%s,act-dtype=%s,act-symmetric=%s,"
                 "reduce-range=%s,clip=%s,placement=%s,kept-weights=%s,placed-weights=%s%s%s%s%s}",
                 r->per_channel ? "true" : "false", r->weight_dtype, r->act_dtype,
                 r->symmetric == 1 ? "true" : "false", r->static_reduce_range, r->clip, r->placement,
                 r->fallback_weights, r->placed_weights,
                 r->bias_correct > 0 ? ",bias-correct=true" : "", adaround ? ",adaround=true" : "",
                 r->size_search ? ",min-macs-per-value=0" : "", filt);
    } else {
        char blk[32] = "";
        if (r->block)
            snprintf(blk, sizeof blk, ",block-size=%d", r->block);
        snprintf(q, sizeof q,
                 "quantize-int8{per-channel=%s,weight-dtype=%s,symmetric=%s,reduce-range=%s%s,clip=%s%s%s%s}",
                 r->per_channel ? "true" : "false", r->weight_dtype,
                 r->symmetric == 0 || is(r->weight_dtype, "uint8") ? "false" : "true",
                 r->reduce_range ? "true" : "false", blk, r->clip,
                 is(r->rounding, "balanced") ? ",rounding=balanced" : "", early, filt);
    }
    if (strlen(q) + 1 >= sizeof q) /* a pass cut short by snprintf */
        return hpcz_fail(err, HPCZ_ERR_USAGE, "the pipeline is too long (op types, include or exclude)");
    if ((size_t)snprintf(spec, cap, "%s%s%s%s,dce", r->fold ? "fold-bn,eliminate," : "", bc, q,
                         nbits ? ",int4-matmulnbits" : "") >= cap)
        return hpcz_fail(err, HPCZ_ERR_USAGE, "the pipeline is too long (op types, include or exclude)");
    return HPCZ_OK;
}

/* ------------------------------------------------------------ prune */

void hpcz_prune_recipe_init(hpcz_prune_recipe *r)
{
    memset(r, 0, sizeof *r);
    r->method = "magnitude";
    r->sparsity = 0.5;
    r->ratio = 0.25;
    r->scope = "layer";
    r->pattern = "2:4";
    r->fold = 1;
}

hpcz_status hpcz_prune_recipe_resolve(hpcz_prune_recipe *r, hpcz_error *err)
{
#define USAGE(...) return hpcz_fail(err, HPCZ_ERR_USAGE, __VA_ARGS__)
    int channel = is(r->method, "channel"), magnitude = is(r->method, "magnitude"), nm = is(r->method, "nm");
    if (r->recalibrate_bn && !r->have_calib)
        USAGE("--recalibrate-bn needs calibration data: --calib DIR");
    if (r->reconstruct > 0 && !r->have_calib)
        USAGE("--reconstruct needs calibration data: --calib DIR (or random:N)");
    if (r->reconstruct > 0 && !magnitude && !nm && !channel)
        USAGE("--reconstruct works with --method magnitude, nm or channel");
    if (r->reconstruct == 0 && !channel)
        USAGE("--no-reconstruct works with --method channel");
    /* with data: channels ranked on the data by default */
    r->channel_data = channel && r->have_calib;
    if (!r->criterion)
        r->criterion = r->channel_data ? "energy" : "l1";
    if (is(r->criterion, "energy") && !r->have_calib)
        USAGE("--criterion energy measures on data: --calib DIR");
    if (r->reconstruct > 0 && is(r->scope, "global"))
        USAGE("--reconstruct chooses per layer: drop --scope global");
    if (r->targeted && r->reconstruct > 0)
        USAGE("--target-* and --reconstruct: not together yet");
    if (!magnitude && !nm && !channel)
        USAGE("--method: '%s' is not magnitude, nm or channel", r->method);
    if (!is(r->criterion, "l1") && !is(r->criterion, "l2") && !is(r->criterion, "bn-gamma") &&
        !is(r->criterion, "energy"))
        USAGE("--criterion: '%s' is not l1, l2, bn-gamma or energy", r->criterion);
    if (!is(r->scope, "layer") && !is(r->scope, "global"))
        USAGE("--scope: '%s' is not layer or global", r->scope);
    if (!(r->sparsity >= 0 && r->sparsity < 1))
        USAGE("--sparsity: %g is not in [0, 1)", r->sparsity);
    if (!(r->ratio >= 0 && r->ratio < 1))
        USAGE("--ratio: %g is not in [0, 1)", r->ratio);
    {
        const char *colon = strchr(r->pattern, ':');
        char *e1 = NULL, *e2 = NULL;
        long long pn = 0, pm = 0;
        if (colon) {
            pn = strtoll(r->pattern, &e1, 10);
            pm = strtoll(colon + 1, &e2, 10);
        }
        if (!colon || e1 != colon || *e2 || pn < 1 || pm < 2 || pm > 64 || pn >= pm)
            USAGE("--pattern: '%s' is not N:M with 1 <= N < M <= 64 (e.g. 2:4)", r->pattern);
        r->n = (int)pn;
        r->m = (int)pm;
    }
    if (!plain_regex(r->include) || !plain_regex(r->exclude))
        USAGE("--include/--exclude: use '|' instead of ',' and no braces");
#undef USAGE
    r->resolved = 1;
    return HPCZ_OK;
}

hpcz_status hpcz_prune_recipe_pipeline(hpcz_prune_recipe *r, char *spec, size_t cap, hpcz_error *err)
{
    if (!r->resolved) {
        hpcz_status st = hpcz_prune_recipe_resolve(r, err);
        if (st)
            return st;
    }
    const char *inc = r->include, *exc = r->exclude, *ops = r->op_types;
    const char *pre = r->fold ? "fold-bn,dce," : "";
    char filt[1024] = "";
    size_t k = (size_t)snprintf(filt, sizeof filt, ",min-params=%lld,keep-first-last=%s", (long long)r->min_params,
                                r->keep_first_last ? "true" : "false");
    if (ops && k < sizeof filt)
        k += (size_t)snprintf(filt + k, sizeof filt - k, ",op-types=%s", ops);
    if (inc && k < sizeof filt)
        k += (size_t)snprintf(filt + k, sizeof filt - k, ",include=%s", inc);
    if (exc && k < sizeof filt)
        snprintf(filt + k, sizeof filt - k, ",exclude=%s", exc);
    int n;
    if (is(r->method, "channel"))
        /* with data: small constants folded first (an SE gate's bias computed
         * by a Reshape of constants left its block untraceable), channels
         * ranked on the data, the layers reading them re-solved */
        n = snprintf(spec, cap, "%sprune-channel{ratio=%g,criterion=%s%s%s%s%s%s}%s%s",
                     r->channel_data ? "fold-constants{max-bytes=16384}," : "", r->ratio, r->criterion,
                     r->channel_data && r->reconstruct != 0 && !r->targeted ? ",reconstruct=true" : "",
                     inc ? ",include=" : "", inc ? inc : "", exc ? ",exclude=" : "", exc ? exc : "",
                     r->recalibrate_bn ? ",recalibrate-bn" : "", r->fold ? ",fold-bn,dce" : "");
    else if (r->reconstruct > 0 && is(r->method, "magnitude"))
        n = snprintf(spec, cap, "%sprune-reconstruct{sparsity=%g%s%s%s%s}", pre, r->sparsity, ops ? ",op-types=" : "",
                     ops ? ops : "", inc ? ",include=" : "", inc ? inc : "");
    else if (r->reconstruct > 0)
        n = snprintf(spec, cap, "%sprune-reconstruct{n=%d,m=%d%s%s%s%s}", pre, r->n, r->m, ops ? ",op-types=" : "",
                     ops ? ops : "", inc ? ",include=" : "", inc ? inc : "");
    else if (is(r->method, "magnitude"))
        n = snprintf(spec, cap, "%sprune-magnitude{sparsity=%g,scope=%s%s}", pre, r->sparsity, r->scope, filt);
    else
        n = snprintf(spec, cap, "%sprune-nm{n=%d,m=%d%s}", pre, r->n, r->m, filt);
    if (n < 0 || (size_t)n >= cap)
        return hpcz_fail(err, HPCZ_ERR_USAGE, "the pipeline is too long (op types, include or exclude)");
    return HPCZ_OK;
}

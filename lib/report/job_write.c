/*
 * job_write.c - what `hpcz quantize`, `hpcz prune` and `hpcz passes` show:
 * summaries for people and JSON documents (docs/json.md), from the jobs'
 * results, and a pass's options.
 */
#include "internal.h"

#include <math.h>
#include <stdio.h>

/* Opens a document of schema version 1 in j: schema, version and, when
 * given, the input and output. */
static void doc_begin(hpcz_json *j, FILE *f, const char *schema, const char *const *in_out)
{
    hpcz_json_init(j, f);
    hpcz_json_object_begin(j, NULL);
    hpcz_json_string(j, "schema", schema);
    hpcz_json_int(j, "version", 1);
    if (in_out) {
        hpcz_json_string(j, "input", in_out[0]);
        hpcz_json_string(j, "output", in_out[1]);
    }
}

/* ------------------------------------------------------------ quantize */

static int is(const char *a, const char *b)
{
    return a && !strcmp(a, b);
}

void hpcz_quantize_write_plan(FILE *f, const hpcz_quantize_result *res)
{
    /* the plan per tensor: the notes of the quantization pass */
    for (size_t i = 0; i < res->n_notes; i++)
        if (!strncmp(res->notes[i], "quantize: ", 10) || !strncmp(res->notes[i], "to-fp16: ", 9))
            fprintf(f, "%s\n", strchr(res->notes[i], ' ') + 1);
    uint64_t wbits = 0;
    for (size_t i = 0; i < res->after.n_dtypes; i++)
        wbits += res->after.dtypes[i].bytes * 8;
    char b[4][32];
    fprintf(f, "weights: %s -> %s (%.2f bits per weight overall)\n", hpcz_fmt_bytes(res->before.param_bytes, b[0]),
            hpcz_fmt_bytes(res->after.param_bytes, b[1]),
            res->before.params ? (double)wbits / (double)res->before.params : 0.0);
    fprintf(f, "model: %s -> %s (not written: --dry-run)\n", hpcz_fmt_bytes(res->in_bytes, b[2]),
            hpcz_fmt_bytes(res->out_bytes, b[3]));
}

void hpcz_quantize_write_text(FILE *f, const hpcz_quantize_opts *o, const hpcz_quantize_result *res)
{
    const hpcz_quantize_recipe *r = &res->recipe;
    int fp16 = is(r->dtype, "fp16") || is(r->dtype, "float16"), int4 = is(r->dtype, "int4");
    const char *gq = r->algo_default ? " (GPTQ: the default with --calib; --algo rtn rounds to nearest)" : " (GPTQ)";
    char wo[128], b[4][32];
    snprintf(wo, sizeof wo, "%s weight-only%s", int4 ? "int4" : "int8",
             is(r->algo, "gptq") ? gq : is(r->algo, "adaround") ? " (AdaRound)" : "");
    const char *what = fp16                    ? "fp16"
                       : is(r->mode, "static")  ? (is(r->algo, "adaround") ? "int8 static (AdaRound)" : "int8 static")
                       : is(r->mode, "dynamic") ? (is(r->weight_dtype, "uint8") ? "int8 dynamic (uint8 weights)"
                                                                                : "int8 dynamic (int8 weights)")
                                                : wo;
    fprintf(f, "hpcz quantize: %s, %s\n", what,
            fp16 ? (r->keep_io_types ? "float32 inputs/outputs" : "float16 inputs/outputs")
                 : (int4 || r->block ? "blocked scales" : (r->per_channel ? "per-channel scales" : "per-tensor scales")));
    fprintf(f, "  size     %s -> %s (%.1f%%)\n", hpcz_fmt_bytes(res->in_bytes, b[0]), hpcz_fmt_bytes(res->out_bytes, b[1]),
            res->in_bytes ? 100.0 * (double)res->out_bytes / (double)res->in_bytes : 0.0);
    fprintf(f, "  weights  %s -> %s\n", hpcz_fmt_bytes(res->before.param_bytes, b[2]),
            hpcz_fmt_bytes(res->after.param_bytes, b[3]));
    for (size_t i = 0; i < res->n_ops; i++)
        fprintf(f, "  %-16s %zu %s, %zu kept float\n", res->ops[i].op, res->ops[i].quantized,
                fp16 ? "float16" : "quantized", res->ops[i].kept);
    fprintf(f, "  nodes    %zu -> %zu\n", res->before.n_nodes_total, res->after.n_nodes_total);
    const hpcz_calib_table *t = res->table;
    const char *tab = o->calib_table;
    if (t)
        fprintf(f, "  calibration  %s over %zu sample%s%s%s%s\n", t->method, t->samples, t->samples == 1 ? "" : "s",
                tab ? " (from " : "", tab ? tab : (t->random ? " of random data: a proxy, not your data" : ""),
                tab ? ")" : "");
    for (size_t i = 0; i < res->n_notes; i++)
        if (strstr(res->notes[i], "activation tensors quantized"))
            fprintf(f, "  %s\n", strchr(res->notes[i], ' ') + 1);
    for (size_t i = 0; i < res->n_notes; i++)
        if (strstr(res->notes[i], "kept float32") || strstr(res->notes[i], "the model stays float") ||
            strstr(res->notes[i], "(placed-weights="))
            fprintf(f, "  %s\n", strchr(res->notes[i], ' ') + 1);
}

void hpcz_quantize_write_fallback(FILE *f, const hpcz_quantize_opts *o, const hpcz_quantize_result *res)
{
    const hpcz_fallback_result *fb = &res->fallback;
    if (fb->n_kept) {
        fprintf(f, "  auto-fallback: %zu layer%s kept float (%s weights%s), %d evaluations in %.2f s "
                "(one evaluation: %.2f s)%s\n",
                fb->n_kept, fb->n_kept == 1 ? "" : "s",
                fb->float_weights ? "float" : fb->fp16_weights ? "fp16" : res->recipe.fallback_weights,
                fb->float_weights || fb->fp16_weights
                    ? (fb->float_weights && strcmp(res->recipe.fallback_weights, "int8")
                           ? ": with fp16 weights even every layer broke the gates"
                           : fb->float_weights ? ": with int8 and fp16 weights even every layer broke the gates"
                                               : ": with int8 weights even every layer broke the gates")
                    : "", fb->evaluations,
                fb->seconds, fb->one_eval, fb->satisfied ? "" : ", gates still broken: kept the best model found");
        for (size_t i = 0; i < fb->n_kept; i++)
            fprintf(f, "    %s (%s): its output was at %.1f dB SQNR quantized\n", fb->kept[i], fb->kept_op[i],
                    fb->kept_sqnr[i]);
    } else if (o->auto_fallback && fb->evaluations) {
        fprintf(f, "  auto-fallback: the gates hold with every layer quantized (%d evaluation%s)\n", fb->evaluations,
                fb->evaluations == 1 ? "" : "s");
    }
    if (o->auto_fallback && fb->cos_margin > 0)
        fprintf(f, "  auto-fallback: --min-cosine held with a margin of %.2g for data other than %s "
                "(2 standard errors of the per-sample cosines)\n", fb->cos_margin, o->data ? o->data : o->calib);
}

void hpcz_quantize_write_json(FILE *f, const char *in, const hpcz_quantize_opts *o, const hpcz_quantize_result *res)
{
    const hpcz_quantize_recipe *r = &res->recipe;
    int fp16 = is(r->dtype, "fp16") || is(r->dtype, "float16");
    hpcz_json j;
    doc_begin(&j, f, "hpcz.quantize", (const char *const[]){in, o->output});
    hpcz_json_bool(&j, "dry_run", !o->output);
    hpcz_json_string(&j, "pipeline", res->pipeline);
    hpcz_json_string(&j, "mode", r->mode);
    hpcz_json_string(&j, "dtype", fp16 ? "fp16" : r->dtype);
    hpcz_json_string(&j, "algo",
                     (is(r->mode, "static") && !is(r->algo, "adaround")) || is(r->mode, "dynamic") || fp16 || o->passes
                         ? NULL
                         : r->algo);
    if (res->table) {
        hpcz_json_object_begin(&j, "calibration");
        hpcz_json_string(&j, "method", res->table->method);
        hpcz_json_uint(&j, "samples", res->table->samples);
        hpcz_json_bool(&j, "random_data", res->table->random);
        hpcz_json_string(&j, "table", o->calib_table);
        hpcz_json_object_end(&j);
    }
    hpcz_json_object_begin(&j, "size");
    hpcz_json_uint(&j, "before", res->in_bytes);
    hpcz_json_uint(&j, "after", res->out_bytes);
    hpcz_json_uint(&j, "weight_bytes_before", res->before.param_bytes);
    hpcz_json_uint(&j, "weight_bytes_after", res->after.param_bytes);
    hpcz_json_object_end(&j);
    hpcz_json_array_begin(&j, "ops");
    for (size_t i = 0; i < res->n_ops; i++) {
        hpcz_json_object_begin(&j, NULL);
        hpcz_json_string(&j, "op_type", res->ops[i].op);
        hpcz_json_uint(&j, "quantized", res->ops[i].quantized);
        hpcz_json_uint(&j, "kept_float", res->ops[i].kept);
        hpcz_json_object_end(&j);
    }
    hpcz_json_array_end(&j);
    if (o->auto_fallback) {
        const hpcz_fallback_result *fb = &res->fallback;
        hpcz_json_object_begin(&j, "auto_fallback");
        hpcz_json_bool(&j, "gates_hold", fb->satisfied);
        hpcz_json_uint(&j, "evaluations", (uint64_t)fb->evaluations);
        hpcz_json_double(&j, "cosine_margin", fb->cos_margin);
        hpcz_json_string(&j, "kept_weights", fb->float_weights  ? "float"
                                              : fb->fp16_weights ? "fp16"
                                                                 : res->recipe.fallback_weights);
        hpcz_json_array_begin(&j, "kept_float");
        for (size_t i = 0; i < fb->n_kept; i++) {
            hpcz_json_object_begin(&j, NULL);
            hpcz_json_string(&j, "node", fb->kept[i]);
            hpcz_json_string(&j, "op_type", fb->kept_op[i]);
            hpcz_json_double(&j, "sqnr_db", fb->kept_sqnr[i]);
            hpcz_json_object_end(&j);
        }
        hpcz_json_array_end(&j);
        hpcz_json_object_end(&j);
    }
    hpcz_json_array_begin(&j, "notes");
    for (size_t i = 0; i < res->n_notes; i++)
        hpcz_json_string(&j, NULL, res->notes[i]);
    hpcz_json_array_end(&j);
    hpcz_json_object_end(&j);
    hpcz_json_finish(&j);
}

/* ------------------------------------------------------------ prune */

void hpcz_prune_write_text(FILE *f, const hpcz_prune_result *res, int dry_run)
{
    const hpcz_model_summary *b = &res->before, *a = &res->after;
    uint64_t nz_b = b->params - (uint64_t)b->zeros, nz_a = a->params - (uint64_t)a->zeros;
    char s[4][32];
    fprintf(f, "hpcz prune: %s\n", res->pipeline);
    fprintf(f, "  parameters  %s -> %s\n", hpcz_fmt_count(b->params, s[0]), hpcz_fmt_count(a->params, s[1]));
    fprintf(f, "  non-zeros   %s -> %s (%.1f%% of the parameters are zero)\n", hpcz_fmt_count(nz_b, s[2]),
            hpcz_fmt_count(nz_a, s[3]), a->params ? 100.0 * (double)a->zeros / (double)a->params : 0.0);
    if (res->have_macs)
        fprintf(f, "  MACs        %s -> %s per sample (%.1f%%)%s\n", hpcz_fmt_count(res->macs_before.macs, s[0]),
                hpcz_fmt_count(res->macs_after.macs, s[1]),
                res->macs_before.macs ? 100.0 * (double)res->macs_after.macs / (double)res->macs_before.macs : 0.0,
                res->macs_before.estimate || res->macs_after.estimate
                    ? " (estimate: Loop/If bodies counted once, or shapes known only at run time)" : "");
    fprintf(f, "  %-32s %-10s %10s %10s %8s %8s\n", "layer", "op", "weights", "after", "zeros", "after");
    for (size_t i = 0; i < res->n_layers; i++) {
        const hpcz_prune_layer *l = &res->layers[i];
        const char *nm = l->node->name && *l->node->name ? l->node->name : l->node->outputs[0]->name;
        fprintf(f, "  %-32.32s %-10s %10s %10s %7.1f%% %7.1f%%\n", nm, l->node->op_type,
                hpcz_fmt_count((uint64_t)l->numel, s[0]), hpcz_fmt_count((uint64_t)l->numel_after, s[1]),
                100.0 * (double)l->zeros_before / (double)l->numel,
                l->numel_after ? 100.0 * (double)l->zeros_after / (double)l->numel_after : 0.0);
    }
    if (dry_run)
        fprintf(f, "  (not written: --dry-run)\n");
}

void hpcz_prune_write_delta(FILE *f, const hpcz_compare_result *r, const char *data)
{
    for (size_t i = 0; i < r->n_outputs; i++) {
        const hpcz_output_metrics *om = &r->outputs[i];
        fprintf(f, "  output '%s' on %s (%zu samples): cosine %.6f, SQNR %.2f dB", om->name, data, r->samples,
                om->cosine, om->sqnr_db);
        if (om->is_scores)
            fprintf(f, ", top-1 agreement %.2f%%", 100 * om->top1_agreement);
        fputc('\n', f);
    }
}

void hpcz_prune_write_json(FILE *f, const char *in, const char *out, const hpcz_prune_result *res)
{
    hpcz_json j;
    doc_begin(&j, f, "hpcz.prune", (const char *const[]){in, out});
    hpcz_json_string(&j, "pipeline", res->pipeline);
    hpcz_json_object_begin(&j, "parameters");
    hpcz_json_uint(&j, "before", res->before.params);
    hpcz_json_uint(&j, "after", res->after.params);
    hpcz_json_object_end(&j);
    hpcz_json_object_begin(&j, "nonzeros");
    hpcz_json_uint(&j, "before", res->before.params - (uint64_t)res->before.zeros);
    hpcz_json_uint(&j, "after", res->after.params - (uint64_t)res->after.zeros);
    hpcz_json_object_end(&j);
    if (res->have_macs) {
        hpcz_json_object_begin(&j, "macs_per_sample");
        hpcz_json_uint(&j, "before", res->macs_before.macs);
        hpcz_json_uint(&j, "after", res->macs_after.macs);
        hpcz_json_bool(&j, "estimate", res->macs_before.estimate || res->macs_after.estimate);
        hpcz_json_object_end(&j);
    } else {
        hpcz_json_null(&j, "macs_per_sample");
    }
    hpcz_json_array_begin(&j, "layers");
    for (size_t i = 0; i < res->n_layers; i++) {
        const hpcz_prune_layer *l = &res->layers[i];
        hpcz_json_object_begin(&j, NULL);
        hpcz_json_string(&j, "node", l->node->name);
        hpcz_json_string(&j, "op_type", l->node->op_type);
        hpcz_json_int(&j, "weights", l->numel);
        hpcz_json_int(&j, "weights_after", l->numel_after);
        hpcz_json_double(&j, "sparsity_before", (double)l->zeros_before / (double)l->numel);
        hpcz_json_double(&j, "sparsity_after", l->numel_after ? (double)l->zeros_after / (double)l->numel_after : 0.0);
        hpcz_json_object_end(&j);
    }
    hpcz_json_array_end(&j);
    hpcz_json_object_end(&j);
    hpcz_json_finish(&j);
}

/* ------------------------------------------------------------ sensitivity */

void hpcz_sensitivity_write_text(FILE *f, const hpcz_sensitivity *s, const char *data)
{
    fprintf(f, "sensitivity: %s pruning of one layer at a time, output SQNR dB (top-1 agreement) on %s\n",
            s->channel ? "channel" : "magnitude", data);
    fprintf(f, "  %-32s %10s", "layer", "weights");
    for (int k = 0; k < HPCZ_SENS_RATIOS; k++)
        fprintf(f, "   %13.0f%%", 100 * hpcz_sensitivity_ratios[k]);
    fprintf(f, "\n");
    char b[32];
    for (size_t i = 0; i < s->n; i++) {
        const hpcz_sens_layer *r = &s->layers[i];
        fprintf(f, "  %-32.32s %10s", r->node, hpcz_fmt_count((uint64_t)r->weights, b));
        for (int k = 0; k < HPCZ_SENS_RATIOS; k++) {
            if (isnan(r->sqnr[k]))
                fprintf(f, "   %14s", "-");
            else
                fprintf(f, "   %6.1f (%5.1f%%)", r->sqnr[k], 100 * r->agree[k]);
        }
        fprintf(f, "\n");
    }
    fprintf(f, "  (%zu evaluations; '-': not prunable alone)\n", s->evals);
}

void hpcz_sensitivity_write_json(FILE *f, const hpcz_sensitivity *s, const char *method)
{
    hpcz_json j;
    doc_begin(&j, f, "hpcz.sensitivity", NULL);
    hpcz_json_string(&j, "method", method);
    hpcz_json_array_begin(&j, "ratios");
    for (int k = 0; k < HPCZ_SENS_RATIOS; k++)
        hpcz_json_double(&j, NULL, hpcz_sensitivity_ratios[k]);
    hpcz_json_array_end(&j);
    hpcz_json_array_begin(&j, "layers");
    for (size_t i = 0; i < s->n; i++) {
        const hpcz_sens_layer *r = &s->layers[i];
        hpcz_json_object_begin(&j, NULL);
        hpcz_json_string(&j, "node", r->node);
        hpcz_json_int(&j, "weights", r->weights);
        hpcz_json_array_begin(&j, "sqnr_db");
        for (int k = 0; k < HPCZ_SENS_RATIOS; k++)
            hpcz_json_double(&j, NULL, r->sqnr[k]);
        hpcz_json_array_end(&j);
        hpcz_json_array_begin(&j, "top1_agreement");
        for (int k = 0; k < HPCZ_SENS_RATIOS; k++)
            hpcz_json_double(&j, NULL, isnan(r->sqnr[k]) ? NAN : r->agree[k]);
        hpcz_json_array_end(&j);
        hpcz_json_object_end(&j);
    }
    hpcz_json_array_end(&j);
    hpcz_json_object_end(&j);
    hpcz_json_finish(&j);
}

/* ------------------------------------------------------------ passes */

static const char *type_name(const hpcz_pass_opt *o)
{
    switch (o->type) {
    case HPCZ_OPT_BOOL:
        return "bool";
    case HPCZ_OPT_INT:
        return "int";
    case HPCZ_OPT_FLOAT:
        return "number";
    case HPCZ_OPT_STRING:
        return "text";
    case HPCZ_OPT_ENUM:
        return o->choices;
    }
    return "?";
}

void hpcz_pass_write_help(FILE *f, const hpcz_pass *p)
{
    fprintf(f, "%s\n    %s\n", p->name, p->summary);
    for (const hpcz_pass_opt *o = p->opts; o && o->name; o++) {
        fprintf(f, "    %-18s %-16s %s", o->name, type_name(o), o->help);
        if (o->dflt)
            fprintf(f, " (default %s)", o->dflt);
        fprintf(f, "\n");
    }
}

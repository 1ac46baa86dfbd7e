/*
 * report.c - `hpcz report ORIGINAL COMPRESSED --data DIR`: the accuracy
 * delta in text, JSON and Markdown (+SVG), and CI gates with exit status 3.
 * The gate and report code is shared with quantize and prune (--report).
 */
#include "cli.h"

#include <sys/stat.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------ gates */

void cli_gates_init(cli_gates *g)
{
    memset(g, 0, sizeof *g);
}

static bool parse_gate(const cli_cmd_info *info, const char *arg, cli_gates *g, int kind)
{
    if (g->n >= CLI_MAX_GATES) {
        cli_usage_error(info, "--%s: too many gates", hpcz_gate_name(kind));
        return false;
    }
    hpcz_error err;
    if (hpcz_gate_parse(kind, arg, &g->g[g->n], &err)) {
        cli_usage_error(info, "--%s: %s", hpcz_gate_name(kind), err.msg);
        return false;
    }
    g->n++;
    return true;
}

bool cli_gates_option(const cli_cmd_info *info, cli_gates *g, int key, const char *arg)
{
    if (key < CLI_OPT_GATE_FIRST || key > CLI_OPT_GATE_LAST)
        return false;
    /* the option keys follow the library's gate kinds */
    return parse_gate(info, arg, g, HPCZ_GATE_MAX_TOP1_DROP + (key - CLI_OPT_GATE_FIRST));
}

int cli_check_gate_outputs(const cli_cmd_info *info, const cli_gates *g, const hpcz_model *m)
{
    const hpcz_gate *bad = hpcz_gates_unknown_output(g->g, g->n, m);
    if (!bad)
        return EXIT_OK;
    const hpcz_graph *gr = m->graph;
    const char *names[256];
    size_t n = 0;
    for (size_t i = 0; i < gr->n_outputs && n < 256; i++)
        if (gr->outputs[i])
            names[n++] = gr->outputs[i]->name;
    const char *near = cli_closest(bad->output, names, n, sizeof *names);
    char list[512];
    cli_list_names(list, sizeof list, names, n);
    if (near)
        return cli_usage_error(info, "--%s: the model has no output '%s'; did you mean '%s'?",
                               hpcz_gate_name(bad->kind), bad->output, near);
    return cli_usage_error(info, "--%s: the model has no output '%s' (outputs: %s)", hpcz_gate_name(bad->kind),
                           bad->output, list);
}

bool cli_gates_pass(const cli_gates *g, const hpcz_compare_result *r, double *worst_sqnr)
{
    bool ok = hpcz_gates_hold(g->g, g->n, r) == 1;
    if (worst_sqnr) {
        *worst_sqnr = INFINITY;
        for (size_t i = 0; i < r->n_outputs; i++)
            if (r->outputs[i].sqnr_db < *worst_sqnr)
                *worst_sqnr = r->outputs[i].sqnr_db;
    }
    return ok;
}

/* ------------------------------------------------------------ sizes & latency */

typedef struct model_size {
    uint64_t file, params, nonzeros, param_bytes;
    double bits_per_weight;
    double latency_ms; /* median; < 0: not measured */
    double latency_min_ms;
    double latency_ratio; /* compressed: its median / the original's */
    int latency_runs;
} model_size;

static void sizes_of(hpcz_model *m, model_size *s)
{
    hpcz_model_summary sum;
    hpcz_error e;
    memset(s, 0, sizeof *s);
    s->latency_ms = -1;
    s->file = m->file_size;
    if (hpcz_model_summarize(m, &sum, &e) == HPCZ_OK) {
        s->params = sum.params;
        s->nonzeros = sum.params - (uint64_t)sum.zeros;
        s->param_bytes = sum.param_bytes;
        /* weights only: integer scale/zero-point tensors count in the bytes */
        s->bits_per_weight = sum.params ? 8.0 * (double)sum.param_bytes / (double)sum.params : 0;
        hpcz_model_summary_release(&sum);
    }
}

/* Latency of both models, alternated (hpcz_bench_pair), into their sizes. */
static hpcz_status bench(hpcz_model *a, hpcz_model *b, const char *data, int threads, int runs,
                         model_size *sa, model_size *sb, hpcz_error *err)
{
    hpcz_bench_result ra, rb;
    hpcz_status st = hpcz_bench_pair(a, b, data, threads, runs, &ra, &rb, err);
    if (st)
        return st;
    model_size *ms[2] = {sa, sb};
    const hpcz_bench_result *br[2] = {&ra, &rb};
    for (int k = 0; k < 2; k++) {
        ms[k]->latency_ms = br[k]->median_ms;
        ms[k]->latency_min_ms = br[k]->min_ms;
        ms[k]->latency_ratio = br[k]->ratio;
        ms[k]->latency_runs = runs;
    }
    return HPCZ_OK;
}

/* ------------------------------------------------------------ writers */

static void print_text(FILE *f, const char *a_path, const char *b_path, const char *data,
                       const char *labels, const hpcz_compare_result *r, const model_size *sa,
                       const model_size *sb, const hpcz_gate_result *gr, size_t ng, size_t max_layers)
{
    fprintf(f, "hpcz report: %s vs %s\n", a_path, b_path);
    fprintf(f, "data: %s (%zu samples)%s%s\n\n", data, r->samples, labels ? ", labels: " : "",
            labels ? labels : "");
    fprintf(f, "outputs\n  %-16s %11s %11s %11s %9s %9s %8s %9s %9s\n", "name", "max abs", "mean abs",
            "rmse", "cosine", "worst cos", "SQNR dB", "top-1 agr", "top-5 agr");
    for (size_t i = 0; i < r->n_outputs; i++) {
        const hpcz_output_metrics *m = &r->outputs[i];
        char t1[16] = "-", t5[16] = "-";
        if (m->is_scores) {
            snprintf(t1, sizeof t1, "%.2f%%", 100 * m->top1_agreement);
            snprintf(t5, sizeof t5, "%.2f%%", 100 * m->top5_agreement);
        }
        fprintf(f, "  %-16s %11.4g %11.4g %11.4g %9.6f %9.6f %8.2f %9s %9s\n", m->name, m->max_abs,
                m->mean_abs, m->rmse, m->cosine, m->cos_worst, m->sqnr_db, t1, t5);
    }
    for (size_t i = 0; i < r->n_outputs; i++) {
        const hpcz_output_metrics *m = &r->outputs[i];
        if (!m->has_labels)
            continue;
        fprintf(f, "\naccuracy on the labels\n  %-16s %.2f%% -> %.2f%%, drop %.2f points (95%% CI %.2f to %.2f)\n",
                m->name, 100 * m->acc_a, 100 * m->acc_b, m->drop_points, m->drop_points - m->drop_ci95,
                m->drop_points + m->drop_ci95);
    }
    fprintf(f, "\nsizes                %14s %14s\n", "original", "compressed");
    fprintf(f, "  file               %14s %14s\n", cli_bytes(sa->file), cli_bytes(sb->file));
    fprintf(f, "  parameters         %14s %14s\n", cli_count(sa->params), cli_count(sb->params));
    fprintf(f, "  non-zeros          %14s %14s\n", cli_count(sa->nonzeros), cli_count(sb->nonzeros));
    fprintf(f, "  weight bytes       %14s %14s\n", cli_bytes(sa->param_bytes), cli_bytes(sb->param_bytes));
    fprintf(f, "  bits per weight    %14.2f %14.2f\n", sa->bits_per_weight, sb->bits_per_weight);
    if (sa->latency_ms >= 0) {
        fprintf(f, "  latency (median)   %11.3f ms %11.3f ms\n", sa->latency_ms, sb->latency_ms);
        fprintf(f, "  latency ratio      %14.3f (compressed / original: %s; hpcz runtime, %d runs "
                   "each, alternating)\n",
                sb->latency_ratio, sb->latency_ratio < 1 ? "faster" : sb->latency_ratio > 1 ? "slower" : "same",
                sb->latency_runs);
    }
    if (r->n_layers) {
        fprintf(f, "\nlayers, worst first (%zu compared)\n  %-44s %-18s %-34s %8s %9s %10s\n", r->n_layers,
                "tensor", "op", "what was done", "SQNR dB", "cosine", "max abs");
        for (size_t i = 0; i < r->n_layers && i < max_layers; i++) {
            const hpcz_layer_metrics *l = &r->layers[i];
            fprintf(f, "  %-44.44s %-18.18s %-34.34s %8.2f %9.6f %10.4g\n", l->name, l->op_type, l->what,
                    l->sqnr_db, l->cosine, l->max_abs);
        }
        if (r->n_layers > max_layers)
            fprintf(f, "  ... %zu more (--all-layers)\n", r->n_layers - max_layers);
    }
    if (r->n_unmatched) {
        fprintf(f, "\nunmatched (no counterpart in the compressed model, or reshaped): %zu\n", r->n_unmatched);
        for (size_t i = 0; i < r->n_unmatched && i < max_layers; i++)
            fprintf(f, "  %s\n", r->unmatched[i]);
    }
    if (ng) {
        fprintf(f, "\ngates\n");
        for (size_t i = 0; i < ng; i++) {
            const hpcz_gate_result *x = &gr[i];
            fprintf(f, "  %s %s %g on %s: measured %.6g%s\n", x->broken ? "BROKEN" : "ok    ",
                    hpcz_gate_name(x->gate->kind), x->gate->value, x->output, x->measured,
                    x->proxy ? " (no labels: share of changed top-1 predictions, an upper bound)" : "");
        }
    }
}

static void write_json(FILE *f, const char *a_path, const char *b_path, const char *data,
                       const char *labels, const hpcz_compare_result *r, const model_size *sa,
                       const model_size *sb, const hpcz_gate_result *gr, size_t ng)
{
    hpcz_json j;
    hpcz_json_init(&j, f);
    hpcz_json_object_begin(&j, NULL);
    hpcz_json_string(&j, "schema", "hpcz.report");
    hpcz_json_int(&j, "version", 1);
    hpcz_json_string(&j, "original", a_path);
    hpcz_json_string(&j, "compressed", b_path);
    hpcz_json_string(&j, "data", data);
    hpcz_json_string(&j, "labels", labels);
    hpcz_json_uint(&j, "samples", r->samples);
    hpcz_json_array_begin(&j, "outputs");
    for (size_t i = 0; i < r->n_outputs; i++) {
        const hpcz_output_metrics *m = &r->outputs[i];
        hpcz_json_object_begin(&j, NULL);
        hpcz_json_string(&j, "name", m->name);
        hpcz_json_double(&j, "max_abs", m->max_abs);
        hpcz_json_double(&j, "mean_abs", m->mean_abs);
        hpcz_json_double(&j, "rmse", m->rmse);
        hpcz_json_double(&j, "cosine", m->cosine);
        hpcz_json_double(&j, "cosine_worst", m->cos_worst);
        hpcz_json_double(&j, "cosine_mean", m->cos_mean);
        hpcz_json_double(&j, "sqnr_db", m->sqnr_db); /* null when identical */
        hpcz_json_bool(&j, "identical", isinf(m->sqnr_db) && m->sqnr_db > 0);
        if (m->is_scores) {
            hpcz_json_double(&j, "top1_agreement", m->top1_agreement);
            hpcz_json_double(&j, "top5_agreement", m->top5_agreement);
        } else {
            hpcz_json_null(&j, "top1_agreement");
            hpcz_json_null(&j, "top5_agreement");
        }
        if (m->has_labels) {
            hpcz_json_object_begin(&j, "accuracy");
            hpcz_json_double(&j, "original", m->acc_a);
            hpcz_json_double(&j, "compressed", m->acc_b);
            hpcz_json_double(&j, "drop_points", m->drop_points);
            hpcz_json_double(&j, "drop_ci95_points", m->drop_ci95);
            hpcz_json_object_end(&j);
        } else {
            hpcz_json_null(&j, "accuracy");
        }
        hpcz_json_object_end(&j);
    }
    hpcz_json_array_end(&j);
    const model_size *ss[2] = {sa, sb};
    const char *keys[2] = {"original", "compressed"};
    hpcz_json_object_begin(&j, "sizes");
    for (int k = 0; k < 2; k++) {
        hpcz_json_object_begin(&j, keys[k]);
        hpcz_json_uint(&j, "file_bytes", ss[k]->file);
        hpcz_json_uint(&j, "parameters", ss[k]->params);
        hpcz_json_uint(&j, "nonzeros", ss[k]->nonzeros);
        hpcz_json_uint(&j, "weight_bytes", ss[k]->param_bytes);
        hpcz_json_double(&j, "bits_per_weight", ss[k]->bits_per_weight);
        if (ss[k]->latency_ms >= 0)
            hpcz_json_double(&j, "latency_median_ms", ss[k]->latency_ms);
        else
            hpcz_json_null(&j, "latency_median_ms");
        hpcz_json_object_end(&j);
    }
    hpcz_json_object_end(&j);
    if (sa->latency_ms >= 0) {
        hpcz_json_object_begin(&j, "latency");
        hpcz_json_double(&j, "original_median_ms", sa->latency_ms);
        hpcz_json_double(&j, "compressed_median_ms", sb->latency_ms);
        hpcz_json_double(&j, "ratio", sb->latency_ratio);
        hpcz_json_int(&j, "runs", sb->latency_runs);
        hpcz_json_string(&j, "runtime", "hpcz");
        hpcz_json_object_end(&j);
    } else {
        hpcz_json_null(&j, "latency");
    }
    hpcz_json_array_begin(&j, "layers");
    for (size_t i = 0; i < r->n_layers; i++) {
        const hpcz_layer_metrics *l = &r->layers[i];
        hpcz_json_object_begin(&j, NULL);
        hpcz_json_string(&j, "tensor", l->name);
        hpcz_json_string(&j, "matched", l->matched);
        hpcz_json_string(&j, "op_type", l->op_type);
        hpcz_json_string(&j, "what", l->what);
        hpcz_json_double(&j, "sqnr_db", l->sqnr_db); /* null when identical */
        hpcz_json_bool(&j, "identical", isinf(l->sqnr_db) && l->sqnr_db > 0);
        hpcz_json_double(&j, "cosine", l->cosine);
        hpcz_json_double(&j, "max_abs", l->max_abs);
        hpcz_json_uint(&j, "order", l->order);
        hpcz_json_object_end(&j);
    }
    hpcz_json_array_end(&j);
    hpcz_json_array_begin(&j, "unmatched");
    for (size_t i = 0; i < r->n_unmatched; i++)
        hpcz_json_string(&j, NULL, r->unmatched[i]);
    hpcz_json_array_end(&j);
    hpcz_json_array_begin(&j, "gates");
    bool any = false;
    for (size_t i = 0; i < ng; i++) {
        hpcz_json_object_begin(&j, NULL);
        hpcz_json_string(&j, "gate", hpcz_gate_name(gr[i].gate->kind));
        hpcz_json_string(&j, "output", gr[i].output);
        hpcz_json_double(&j, "threshold", gr[i].gate->value);
        hpcz_json_double(&j, "measured", gr[i].measured);
        hpcz_json_bool(&j, "broken", gr[i].broken);
        hpcz_json_bool(&j, "upper_bound", gr[i].proxy);
        hpcz_json_object_end(&j);
        any |= gr[i].broken;
    }
    hpcz_json_array_end(&j);
    hpcz_json_bool(&j, "passed", !any);
    hpcz_json_object_end(&j);
    hpcz_json_finish(&j);
}

/* A Markdown code span that stays one table cell: a fence longer than any
 * run of backticks inside, '|' escaped (GFM splits cells on it even in
 * code), control characters and bytes that are no UTF-8 as U+FFFD. */
static void md_code(FILE *f, const char *s)
{
    size_t run = 0, longest = 0;
    for (const char *p = s; *p; p++) {
        run = *p == '`' ? run + 1 : 0;
        longest = run > longest ? run : longest;
    }
    char fence[8] = "`";
    size_t fl = longest + 1 < sizeof fence ? longest + 1 : sizeof fence - 1;
    memset(fence, '`', fl);
    fence[fl] = 0;
    bool pad = s[0] == '`' || (*s && s[strlen(s) - 1] == '`');
    fprintf(f, "%s%s", fence, pad ? " " : "");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        size_t l = hpcz_utf8_len(p);
        if (*p == '|')
            fputs("\\|", f);
        else if (!l || *p < 0x20 || *p == 0x7f)
            fputs("\xef\xbf\xbd", f);
        else {
            fwrite(p, 1, l, f);
            p += l - 1;
        }
    }
    fprintf(f, "%s%s", pad ? " " : "", fence);
}

static void xml_escape(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        size_t l = hpcz_utf8_len(p);
        if (!l || (*p < 0x20 && *p != '\t' && *p != '\n') || *p == 0x7f) {
            fputs("\xef\xbf\xbd", f); /* not allowed in XML, or not UTF-8 */
            continue;
        }
        if (l > 1) {
            fwrite(p, 1, l, f);
            p += l - 1;
            continue;
        }
        switch (*p) {
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '&':
            fputs("&amp;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        default:
            fputc(*p, f);
        }
    }
}

static int cmp_order(const void *x, const void *y)
{
    const hpcz_layer_metrics *a = *(const hpcz_layer_metrics *const *)x;
    const hpcz_layer_metrics *b = *(const hpcz_layer_metrics *const *)y;
    return a->order < b->order ? -1 : a->order > b->order;
}

/* Horizontal bars of per-layer SQNR in execution order; red below 20 dB. */
static void write_svg(FILE *f, const hpcz_compare_result *r)
{
    size_t n = r->n_layers;
    const hpcz_layer_metrics **ord = malloc((n ? n : 1) * sizeof *ord);
    if (!ord)
        return;
    for (size_t i = 0; i < n; i++)
        ord[i] = &r->layers[i];
    qsort(ord, n, sizeof *ord, cmp_order);
    double maxv = 10;
    for (size_t i = 0; i < n; i++)
        if (ord[i]->sqnr_db > maxv && ord[i]->sqnr_db < 199)
            maxv = ord[i]->sqnr_db;
    maxv = ceil(maxv / 10) * 10;
    int row = 18, left = 320, width = 420, top = 40, h = top + (int)n * row + 40;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
               "font-family=\"sans-serif\" font-size=\"11\">\n", left + width + 70, h);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    fprintf(f, "<text x=\"10\" y=\"20\" font-size=\"14\">Per-layer SQNR (dB), compressed vs original</text>\n");
    for (int t = 0; t <= (int)maxv; t += 10) {
        double x = left + (double)t / maxv * width;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/>\n", x, top - 5, x,
                top + (int)n * row);
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" fill=\"#555\">%d</text>\n", x,
                top + (int)n * row + 15, t);
    }
    for (size_t i = 0; i < n; i++) {
        const hpcz_layer_metrics *l = ord[i];
        double v = l->sqnr_db < 0 ? 0 : l->sqnr_db > maxv ? maxv : l->sqnr_db;
        int y = top + (int)i * row;
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", left - 6, y + 12);
        char label[80];
        snprintf(label, sizeof label, "%.40s (%s)", l->name, l->op_type);
        xml_escape(f, label);
        fprintf(f, "</text>\n<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\"><title>",
                left, y + 2, v / maxv * width, row - 4, l->sqnr_db < 20 ? "#d9534f" : "#4a7ebb");
        xml_escape(f, l->name);
        fprintf(f, ": %.2f dB, %s</title></rect>\n", l->sqnr_db, l->what);
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" fill=\"#333\">%.1f</text>\n", left + v / maxv * width + 4, y + 12,
                l->sqnr_db);
    }
    fprintf(f, "</svg>\n");
    free(ord);
}

static int write_md(const char *path, const char *a_path, const char *b_path, const char *data,
                    const hpcz_compare_result *r, const model_size *sa, const model_size *sb,
                    const hpcz_gate_result *gr, size_t ng)
{
    hpcz_error err;
    /* the chart goes next to the Markdown file, linked relatively; a report
     * sent to standard output, a pipe or a device has no "next to" (it used
     * to make a file named "-.svg"), so it goes without the chart */
    struct stat stt;
    bool chart = strcmp(path, "-") && (stat(path, &stt) || S_ISREG(stt.st_mode));
    char svg[4096];
    snprintf(svg, sizeof svg, "%s", path);
    char *dot = strrchr(svg, '.');
    char *slash = strrchr(svg, '/');
    if (dot && (!slash || dot > slash))
        *dot = 0;
    strncat(svg, ".svg", sizeof svg - strlen(svg) - 1);
    const char *svg_base = strrchr(svg, '/') ? strrchr(svg, '/') + 1 : svg;
    if (chart && r->n_layers) {
        hpcz_outfile *so = hpcz_outfile_open(svg, &err);
        if (!so)
            return cli_file_error(svg, &err);
        write_svg(hpcz_outfile_stream(so), r);
        if (hpcz_outfile_commit(so, &err))
            return cli_file_error(svg, &err);
    }
    hpcz_outfile *of = hpcz_outfile_open(path, &err);
    if (!of)
        return cli_file_error(path, &err);
    FILE *f = hpcz_outfile_stream(of);
    bool any = false;
    for (size_t i = 0; i < ng; i++)
        any |= gr[i].broken;
    fputs("# hpcz accuracy report\n\n", f);
    md_code(f, a_path);
    fputs(" vs ", f);
    md_code(f, b_path);
    fputs(" on ", f);
    md_code(f, data);
    fprintf(f, " (%zu samples)%s\n\n", r->samples,
            ng ? (any ? " — **gates broken**" : " — gates passed") : "");
    fprintf(f, "## Outputs\n\n| output | max abs | mean abs | cosine | worst sample cosine | SQNR dB | "
               "top-1 agreement | accuracy |\n|---|---:|---:|---:|---:|---:|---:|---|\n");
    for (size_t i = 0; i < r->n_outputs; i++) {
        const hpcz_output_metrics *m = &r->outputs[i];
        char acc[96] = "";
        if (m->has_labels)
            snprintf(acc, sizeof acc, "%.2f%% → %.2f%% (drop %.2f ± %.2f)", 100 * m->acc_a, 100 * m->acc_b,
                     m->drop_points, m->drop_ci95);
        char agr[32] = "";
        if (m->is_scores)
            snprintf(agr, sizeof agr, "%.2f%%", 100 * m->top1_agreement);
        fputs("| ", f);
        md_code(f, m->name);
        fprintf(f, " | %.4g | %.4g | %.6f | %.6f | %.2f | %s | %s |\n", m->max_abs, m->mean_abs, m->cosine,
                m->cos_worst, m->sqnr_db, agr, acc);
    }
    fprintf(f, "\n## Sizes\n\n| | original | compressed |\n|---|---:|---:|\n");
    fprintf(f, "| file | %s | %s |\n", cli_bytes(sa->file), cli_bytes(sb->file));
    fprintf(f, "| parameters | %s | %s |\n", cli_count(sa->params), cli_count(sb->params));
    fprintf(f, "| non-zeros | %s | %s |\n", cli_count(sa->nonzeros), cli_count(sb->nonzeros));
    fprintf(f, "| bits per weight | %.2f | %.2f |\n", sa->bits_per_weight, sb->bits_per_weight);
    if (sa->latency_ms >= 0) {
        fprintf(f, "| latency (median) | %.3f ms | %.3f ms |\n", sa->latency_ms, sb->latency_ms);
        fprintf(f, "| latency ratio (compressed / original) | | %.3f |\n", sb->latency_ratio);
    }
    if (r->n_layers) {
        if (chart)
            fprintf(f, "\n## Layers\n\n![per-layer SQNR](%s)\n\n", svg_base);
        else
            fprintf(f, "\n## Layers\n\n(no chart: this report was not written to a file)\n\n");
        fprintf(f, "| tensor | op | what was done | SQNR dB | cosine |\n|---|---|---|---:|---:|\n");
        for (size_t i = 0; i < r->n_layers; i++) {
            fputs("| ", f);
            md_code(f, r->layers[i].name);
            fputs(" | ", f);
            md_code(f, r->layers[i].op_type);
            fprintf(f, " | %s | %.2f | %.6f |\n", r->layers[i].what, r->layers[i].sqnr_db,
                    r->layers[i].cosine);
        }
    }
    if (ng) {
        fprintf(f, "\n## Gates\n\n| gate | output | threshold | measured | |\n|---|---|---:|---:|---|\n");
        for (size_t i = 0; i < ng; i++) {
            fprintf(f, "| %s | ", hpcz_gate_name(gr[i].gate->kind));
            md_code(f, gr[i].output);
            fprintf(f, " | %g | %.6g | %s |\n", gr[i].gate->value, gr[i].measured,
                    gr[i].broken ? "**broken**" : "ok");
        }
    }
    if (hpcz_outfile_commit(of, &err))
        return cli_file_error(path, &err);
    return EXIT_OK;
}

/* ------------------------------------------------------------ shared driver */

static void progress_bar(void *ctx, size_t done, size_t total)
{
    (void)ctx;
    int width = 30, fill = total ? (int)((double)done / (double)total * width) : width;
    dprintf(STDERR_FILENO, "\rcomparing [%.*s%*s] %zu/%zu", fill, "##############################",
            width - fill, "", done, total);
    if (done >= total)
        dprintf(STDERR_FILENO, "\r\033[K");
}

int cli_report(hpcz_model *a, hpcz_model *b, const cli_report_opts *o)
{
    hpcz_error err = {0};
    hpcz_array labels = {0};
    if (o->labels) {
        if (hpcz_npy_load(o->labels, &labels, &err))
            return cli_file_error(o->labels, &err);
        if ((labels.dtype != HPCZ_DTYPE_INT64 && labels.dtype != HPCZ_DTYPE_INT32) || labels.ndim != 1) {
            hpcz_array_release(&labels);
            return cli_error("%s: labels must be a 1-D int64 or int32 array of class indices", o->labels);
        }
        if (labels.dtype == HPCZ_DTYPE_INT32) {
            hpcz_array l64;
            if (hpcz_array_alloc(&l64, HPCZ_DTYPE_INT64, 1, labels.dims, &err)) {
                hpcz_array_release(&labels);
                return cli_error("%s", err.msg);
            }
            for (int64_t i = 0; i < labels.numel; i++)
                ((int64_t *)l64.data)[i] = ((int32_t *)labels.data)[i];
            hpcz_array_release(&labels);
            labels = l64;
        }
    }
    hpcz_compare_opts co = {0};
    co.threads = o->threads;
    co.per_layer = !o->no_layers;
    co.max_samples = o->max_samples;
    if (o->labels) {
        co.labels = labels.data;
        co.n_labels = (size_t)labels.numel;
        if (o->max_samples && co.n_labels > o->max_samples)
            co.n_labels = o->max_samples;
    }
    if (isatty(STDERR_FILENO) && cli_verbosity >= 0)
        co.progress = progress_bar;
    hpcz_compare_result *r = NULL;
    hpcz_status st = hpcz_compare(a, b, o->data, &co, &r, &err);
    if (st) {
        hpcz_array_release(&labels);
        /* a model the runtime cannot plan is named by its file (the
         * compressed one may only exist in memory) */
        static const char *const pre[2] = {"original model: ", "compressed model: "};
        for (int k = 0; k < 2; k++)
            if (!strncmp(err.msg, pre[k], strlen(pre[k]))) {
                const char *path = k ? o->b_path : o->a_path;
                const char *rest = err.msg + strlen(pre[k]);
                return path ? cli_error("%s: %s", path, rest) : cli_error("%s%s", pre[k], rest);
            }
        const char *what = o->labels && (strstr(err.msg, "labels") || !strncmp(err.msg, "label ", 6)) ? o->labels : o->data;
        return cli_file_error(what, &err);
    }
    model_size sa, sb;
    sizes_of(a, &sa);
    sizes_of(b, &sb);
    if (o->bench > 0) {
        if ((st = bench(a, b, o->data, o->threads, o->bench, &sa, &sb, &err))) {
            hpcz_compare_result_free(r);
            hpcz_array_release(&labels);
            return cli_error("benchmark: %s", err.msg);
        }
    }
    hpcz_gate_result gr[CLI_MAX_GATES * 8];
    size_t ng = hpcz_gates_check(o->gates->g, o->gates->n, r, gr, sizeof gr / sizeof gr[0]);
    int rc = EXIT_OK;
    for (size_t i = 0; i < ng; i++)
        if (gr[i].broken)
            rc = EXIT_THRESHOLD;
    if (o->text && cli_verbosity >= 0)
        print_text(o->text, o->a_path, o->b_path, o->data, o->labels, r, &sa, &sb, gr, ng,
                   o->all_layers ? (size_t)-1 : 20);
    if (o->json) {
        if (!strcmp(o->json, "-")) {
            write_json(stdout, o->a_path, o->b_path, o->data, o->labels, r, &sa, &sb, gr, ng);
        } else {
            hpcz_outfile *of = hpcz_outfile_open(o->json, &err);
            if (!of) {
                rc = cli_file_error(o->json, &err);
            } else {
                write_json(hpcz_outfile_stream(of), o->a_path, o->b_path, o->data, o->labels, r, &sa, &sb,
                           gr, ng);
                if (hpcz_outfile_commit(of, &err))
                    rc = cli_file_error(o->json, &err);
            }
        }
    }
    if (o->md) {
        int mr = write_md(o->md, o->a_path, o->b_path, o->data, r, &sa, &sb, gr, ng);
        if (mr)
            rc = mr;
    }
    for (size_t i = 0; i < ng; i++)
        if (gr[i].broken)
            fprintf(stderr, "hpcz: threshold broken: %s %g on '%s' (measured %.6g)\n",
                    hpcz_gate_name(gr[i].gate->kind), gr[i].gate->value, gr[i].output, gr[i].measured);
    hpcz_compare_result_free(r);
    hpcz_array_release(&labels);
    return rc;
}

/* ------------------------------------------------------------ command */

enum {
    OPT_DATA = 'd',
    OPT_LABELS = 256,
    OPT_JSON,
    OPT_MD,
    OPT_BENCH,
    OPT_THREADS,
    OPT_SAMPLES,
    OPT_NO_LAYERS,
    OPT_ALL_LAYERS,
    OPT_JSON_FILE,
};

static const cli_opt opts[] = {
    {"data", OPT_DATA, required_argument, "DATA",
     "inputs: a folder of .npy (INPUT.npy with a batch axis, or INPUT_K.npy), test_data_set_* "
     "folders, a .npy file, or random:N", NULL, "npy"},
    {"labels", OPT_LABELS, required_argument, "FILE", "class index per sample (.npy, int64): accuracy and its drop",
     NULL, "npy"},
    {"samples", OPT_SAMPLES, required_argument, "N", "use the first N samples"},
    {"json", OPT_JSON, no_argument, NULL,
     "print the report as JSON (schema hpcz.report 1, see docs/json.md) on stdout instead of text"},
    {"json-file", OPT_JSON_FILE, required_argument, "FILE", "write the JSON report to FILE (the text still goes to stdout)",
     NULL, "json"},
    {"md", OPT_MD, required_argument, "FILE", "write a Markdown report, with its SVG chart next to it",
     NULL, "md"},
    {"bench", OPT_BENCH, required_argument, "N", "also time both models with hpcz's runtime on one sample, N runs each, alternating: both medians and their ratio (compressed / original)"},
    {"threads", OPT_THREADS, required_argument, "N", "threads (default: all cores)"},
    CLI_DEVICE_OPTION,
    {"no-layers", OPT_NO_LAYERS, no_argument, NULL, "compare outputs only"},
    {"all-layers", OPT_ALL_LAYERS, no_argument, NULL, "list every layer in the text report (default: 20 worst)"},
    CLI_GATE_OPTIONS,
    {"quiet", 'q', no_argument, NULL, "no text report"},
    {0},
};

const cli_cmd_info cmd_report_info = {
    "report", "ORIGINAL COMPRESSED --data DATA [options]",
    "Run both models on the same inputs with hpcz's runtime and report how the compressed one "
    "differs: per output (max/mean abs error, RMSE, cosine, SQNR, top-1/top-5 agreement, accuracy "
    "against labels with a 95% interval), per layer (every intermediate tensor matched by name, "
    "through QDQ pairs, worst first), sizes and latency.",
    "Gates take NUMBER or OUTPUT=NUMBER; a broken gate is named on stderr and gives exit status 3.",
    opts,
    .exits = cli_exits_gates,
    .max_operands = 2,
    .operand_files = CLI_FILES_MODEL,
    .legacy = CLI_LEGACY_JSON_FILE,
};

int cmd_report(int argc, char **argv)
{
    cli_gates gates;
    cli_gates_init(&gates);
    cli_report_opts ro = {0};
    ro.gates = &gates;
    ro.text = stdout;
    long long n;
    int c;
    bool json_flag = false;
    const char *json_file = NULL;
    while ((c = cli_getopt(argc, argv, &cmd_report_info)) != -1) {
        switch (c) {
        case 'h':
            return EXIT_OK;
        case OPT_DATA:
            ro.data = optarg;
            break;
        case OPT_LABELS:
            ro.labels = optarg;
            break;
        case OPT_JSON:
            json_flag = true;
            break;
        case OPT_JSON_FILE:
            json_file = optarg;
            break;
        case OPT_MD:
            ro.md = optarg;
            break;
        case OPT_BENCH:
            if (!cli_parse_int(&cmd_report_info, "bench", optarg, 1, 100000, &n))
                return EXIT_USAGE;
            ro.bench = (int)n;
            break;
        case OPT_THREADS:
            if (!cli_parse_int(&cmd_report_info, "threads", optarg, 0, 1024, &n))
                return EXIT_USAGE;
            ro.threads = (int)n;
            break;
        case CLI_OPT_DEVICE:
            if ((n = cli_device_option(&cmd_report_info, optarg)))
                return (int)n;
            break;
        case OPT_SAMPLES:
            if (!cli_parse_int(&cmd_report_info, "samples", optarg, 1, 1000000000, &n))
                return EXIT_USAGE;
            ro.max_samples = (size_t)n;
            break;
        case OPT_NO_LAYERS:
            ro.no_layers = 1;
            break;
        case OPT_ALL_LAYERS:
            ro.all_layers = 1;
            break;
        case 'q':
            cli_verbosity = -1;
            break;
        default:
            if (c >= CLI_OPT_GATE_FIRST && c <= CLI_OPT_GATE_LAST) {
                if (!cli_gates_option(&cmd_report_info, &gates, c, optarg))
                    return EXIT_USAGE;
                break;
            }
            return EXIT_USAGE;
        }
    }
    if (argc - optind < 2)
        return cli_usage_error(&cmd_report_info, "needs ORIGINAL and COMPRESSED");
    if (argc - optind > 2)
        return cli_usage_error(&cmd_report_info, "unexpected argument '%s'", argv[optind + 2]);
    if (!ro.data)
        return cli_usage_error(&cmd_report_info, "missing --data DATA");
    if (json_flag && json_file)
        return cli_usage_error(&cmd_report_info, "--json and --json-file: give one");
    ro.json = json_flag ? "-" : json_file;
    /* the text report is the default on stdout; an output asked for there
     * replaces it, two are an error */
    if ((json_flag && !cli_claim_stdout(&cmd_report_info, "--json")) ||
        (json_file && !strcmp(json_file, "-") && !cli_claim_stdout(&cmd_report_info, "--json-file -")) ||
        (ro.md && !strcmp(ro.md, "-") && !cli_claim_stdout(&cmd_report_info, "--md -")))
        return EXIT_USAGE;
    if ((ro.json && !strcmp(ro.json, "-")) || (ro.md && !strcmp(ro.md, "-")))
        ro.text = NULL;
    ro.a_path = argv[optind];
    ro.b_path = argv[optind + 1];
    if (!strcmp(ro.a_path, "-") && !strcmp(ro.b_path, "-"))
        return cli_usage_error(&cmd_report_info, "only one model can come from standard input");
    hpcz_error err = {0};
    hpcz_model *a = hpcz_model_load(ro.a_path, NULL, &err);
    if (!a)
        return cli_file_error(ro.a_path, &err);
    hpcz_model *b = hpcz_model_load(ro.b_path, NULL, &err);
    if (!b) {
        hpcz_model_free(a);
        return cli_file_error(ro.b_path, &err);
    }
    int rc = cli_check_gate_outputs(&cmd_report_info, &gates, a);
    if (!rc)
        rc = cli_report(a, b, &ro);
    hpcz_model_free(a);
    hpcz_model_free(b);
    return rc;
}

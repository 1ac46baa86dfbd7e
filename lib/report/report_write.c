/*
 * report_write.c - the accuracy report of two models (a hpcz_compare result,
 * sizes, latency, gates) as text for people, JSON for machines (schema
 * hpcz.report 1, docs/json.md) and Markdown with an SVG chart for review;
 * and the report itself (hpcz_report_make: compare, sizes, latency, gates).
 */
#include "internal.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* the fields every writer reads */
#define REPORT_FIELDS(rep)                                                                         \
    const char *a_path = (rep)->a_path ? (rep)->a_path : "original";                               \
    const char *b_path = (rep)->b_path ? (rep)->b_path : "compressed";                             \
    const char *data = (rep)->data ? (rep)->data : "";                                             \
    const char *labels = (rep)->labels;                                                            \
    const hpcz_compare_result *r = (rep)->result;                                                  \
    const hpcz_model_sizes *sa = &(rep)->a, *sb = &(rep)->b;                                       \
    const hpcz_gate_result *gr = (rep)->gates;                                                     \
    size_t ng = (rep)->n_gates;                                                                    \
    (void)a_path, (void)b_path, (void)data, (void)labels, (void)r, (void)sa, (void)sb, (void)gr, (void)ng

/* "1.5 MiB", "1,234,567": into a buffer that lives for the statement */
#define B(n) hpcz_fmt_bytes((n), (char[32]){0})
#define C(n) hpcz_fmt_count((n), (char[32]){0})

static hpcz_status file_fail(hpcz_error *err, const char *path)
{
    size_t l = strlen(path);
    if (err && !(strncmp(err->msg, path, l) == 0 && err->msg[l] == ':'))
        hpcz_error_prefix(err, path);
    return err ? err->status : HPCZ_ERR_IO;
}

const char *hpcz_fmt_bytes(uint64_t n, char buf[32])
{
    const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, 32, "%llu B", (unsigned long long)n);
    else
        snprintf(buf, 32, "%.1f %s", v, units[u]);
    return buf;
}

const char *hpcz_fmt_count(uint64_t n, char buf[32])
{
    char tmp[32];
    int len = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)n);
    int o = 0;
    for (int i = 0; i < len; i++) {
        if (i && (len - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = tmp[i];
    }
    buf[o] = 0;
    return buf;
}


void hpcz_model_sizes_of(hpcz_model *m, hpcz_model_sizes *s)
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

/* ------------------------------------------------------------ writers */

void hpcz_report_write_text(FILE *f, const hpcz_report *rep, size_t max_layers)
{
    REPORT_FIELDS(rep);
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
    fprintf(f, "  file               %14s %14s\n", B(sa->file), B(sb->file));
    fprintf(f, "  parameters         %14s %14s\n", C(sa->params), C(sb->params));
    fprintf(f, "  non-zeros          %14s %14s\n", C(sa->nonzeros), C(sb->nonzeros));
    fprintf(f, "  weight bytes       %14s %14s\n", B(sa->param_bytes), B(sb->param_bytes));
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

void hpcz_report_write_json(FILE *f, const hpcz_report *rep)
{
    REPORT_FIELDS(rep);
    hpcz_json j;
    hpcz_json_document(&j, f, "hpcz.report", 1);
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
    const hpcz_model_sizes *ss[2] = {sa, sb};
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

hpcz_status hpcz_report_write_md(const char *path, const hpcz_report *rep, hpcz_error *err)
{
    REPORT_FIELDS(rep);
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
        hpcz_outfile *so = hpcz_outfile_open(svg, err);
        if (!so)
            return file_fail(err, svg);
        write_svg(hpcz_outfile_stream(so), r);
        if (hpcz_outfile_commit(so, err))
            return file_fail(err, svg);
    }
    hpcz_outfile *of = hpcz_outfile_open(path, err);
    if (!of)
        return file_fail(err, path);
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
    fprintf(f, "| file | %s | %s |\n", B(sa->file), B(sb->file));
    fprintf(f, "| parameters | %s | %s |\n", C(sa->params), C(sb->params));
    fprintf(f, "| non-zeros | %s | %s |\n", C(sa->nonzeros), C(sb->nonzeros));
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
    if (hpcz_outfile_commit(of, err))
        return file_fail(err, path);
    return HPCZ_OK;
}


/* ------------------------------------------------------------ making one */

hpcz_status hpcz_report_make(hpcz_model *a, hpcz_model *b, const hpcz_report_opts *o, hpcz_report *rep,
                             hpcz_error *err)
{
    hpcz_compare_opts co = {.threads = o->threads, .per_layer = o->per_layer, .max_samples = o->max_samples,
                            .labels = o->labels, .n_labels = o->n_labels, .progress = o->progress,
                            .progress_ctx = o->progress_ctx};
    if (o->max_samples && co.n_labels > o->max_samples)
        co.n_labels = o->max_samples;
    hpcz_compare_result *r = NULL;
    if (hpcz_compare(a, b, o->data, &co, &r, err))
        return err->status;
    rep->result = r;
    hpcz_model_sizes_of(a, &rep->a);
    hpcz_model_sizes_of(b, &rep->b);
    if (o->bench > 0) {
        hpcz_bench_result br[2];
        if (hpcz_bench_pair(a, b, o->data, o->threads, o->bench, &br[0], &br[1], err)) {
            hpcz_error_prefix(err, "benchmark");
            return err->status;
        }
        hpcz_model_sizes *ms[2] = {&rep->a, &rep->b};
        for (int k = 0; k < 2; k++) {
            ms[k]->latency_ms = br[k].median_ms;
            ms[k]->latency_min_ms = br[k].min_ms;
            ms[k]->latency_ratio = br[k].ratio;
            ms[k]->latency_runs = o->bench;
        }
    }
    /* a gate applies to one output or to each */
    size_t cap = o->n_gates * (r->n_outputs ? r->n_outputs : 1);
    hpcz_gate_result *gr = calloc(cap + 1, sizeof *gr);
    if (!gr)
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    rep->n_gates = hpcz_gates_check(o->gates, o->n_gates, r, gr, cap);
    rep->gates = gr;
    return HPCZ_OK;
}

int hpcz_report_broken(const hpcz_report *rep)
{
    for (size_t i = 0; i < rep->n_gates; i++)
        if (rep->gates[i].broken)
            return 1;
    return 0;
}

void hpcz_report_release(hpcz_report *rep)
{
    hpcz_compare_result_free((hpcz_compare_result *)rep->result);
    free((hpcz_gate_result *)rep->gates);
    rep->result = NULL;
    rep->gates = NULL;
    rep->n_gates = 0;
}

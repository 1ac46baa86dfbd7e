/*
 * inspect.c - a model summary as text and as JSON (schema hpcz.inspect 1,
 * docs/json.md): what `hpcz inspect` prints, with the .hpcz container's
 * storage.
 */
#include "internal.h"

#include <stdbool.h>
#include <stdlib.h>

/* "1.5 MiB", "12,345" in a buffer that lives as long as the statement */
#define BYTES(n) hpcz_fmt_bytes((n), (char[32]){0})
#define COUNT(n) hpcz_fmt_count((n), (char[32]){0})

static void json_values(hpcz_json *j, const char *key, hpcz_value **vals, size_t n)
{
    hpcz_json_array_begin(j, key);
    for (size_t i = 0; i < n; i++) {
        const hpcz_value *v = vals[i];
        hpcz_json_object_begin(j, NULL);
        hpcz_json_string(j, "name", v->name);
        hpcz_json_string(j, "dtype", v->dtype ? hpcz_dtype_name(v->dtype) : NULL);
        if (v->ndim < 0) {
            hpcz_json_null(j, "shape");
        } else {
            hpcz_json_array_begin(j, "shape");
            for (int d = 0; d < v->ndim; d++) {
                if (v->dims[d].size >= 0)
                    hpcz_json_int(j, NULL, v->dims[d].size);
                else
                    hpcz_json_string(j, NULL, v->dims[d].param);
            }
            hpcz_json_array_end(j);
        }
        hpcz_json_bool(j, "has_initializer", v->init != NULL);
        hpcz_json_object_end(j);
    }
    hpcz_json_array_end(j);
}

/* Graph inputs that are really initializers (IR < 4 style) are not inputs a
 * user feeds: list them apart. */
size_t hpcz_graph_fed_inputs(const hpcz_graph *g, hpcz_value **out)
{
    size_t k = 0;
    for (size_t i = 0; i < g->n_inputs; i++)
        if (!g->inputs[i]->init)
            out[k++] = g->inputs[i];
    return k;
}

void hpcz_model_summary_write_json(FILE *f, const hpcz_model *m, const hpcz_model_summary *s)
{
    hpcz_json j;
    hpcz_json_document(&j, f, "hpcz.inspect", 1);
    hpcz_json_object_begin(&j, "file");
    hpcz_json_string(&j, "path", m->path);
    hpcz_json_uint(&j, "bytes", m->file_size);
    hpcz_json_string(&j, "format", hpcz_model_format(m));
    hpcz_hpcz_info hi;
    int is_hpcz = hpcz_hpcz_model_info(m, &hi);
    if (is_hpcz) {
        char ver[32];
        snprintf(ver, sizeof ver, "%d.%d", hi.major, hi.minor);
        hpcz_json_string(&j, "hpcz_version", ver);
        hpcz_json_uint(&j, "skeleton_bytes", hi.skeleton_bytes);
        hpcz_json_uint(&j, "table_tensors", hi.n_tensors);
        hpcz_json_uint(&j, "stored_bytes", hi.stored_bytes);
        hpcz_json_uint(&j, "raw_bytes", hi.raw_bytes);
        hpcz_json_object_begin(&j, "encodings");
        for (int e = 0; e < HPCZ_HPCZ_ENC_COUNT; e++)
            hpcz_json_uint(&j, hpcz_hpcz_encoding_name(e), hi.by_encoding[e]);
        hpcz_json_object_end(&j);
    }
    hpcz_json_object_end(&j);
    hpcz_json_int(&j, "ir_version", m->ir_version);
    hpcz_json_object_begin(&j, "producer");
    hpcz_json_string(&j, "name", m->producer_name);
    hpcz_json_string(&j, "version", m->producer_version);
    hpcz_json_object_end(&j);
    hpcz_json_array_begin(&j, "opsets");
    for (size_t i = 0; i < m->n_opsets; i++) {
        hpcz_json_object_begin(&j, NULL);
        hpcz_json_string(&j, "domain", *m->opsets[i].domain ? m->opsets[i].domain : "ai.onnx");
        hpcz_json_int(&j, "version", m->opsets[i].version);
        hpcz_json_object_end(&j);
    }
    hpcz_json_array_end(&j);
    hpcz_value **ins = malloc((m->graph->n_inputs + 1) * sizeof *ins);
    size_t n_ins = ins ? hpcz_graph_fed_inputs(m->graph, ins) : 0;
    json_values(&j, "inputs", ins, n_ins);
    free(ins);
    json_values(&j, "outputs", m->graph->outputs, m->graph->n_outputs);
    hpcz_json_object_begin(&j, "nodes");
    hpcz_json_uint(&j, "total", s->n_nodes_total);
    hpcz_json_uint(&j, "main_graph", s->n_nodes);
    hpcz_json_uint(&j, "subgraphs", s->n_subgraphs);
    hpcz_json_object_end(&j);
    hpcz_json_array_begin(&j, "op_types");
    for (size_t i = 0; i < s->n_ops; i++) {
        hpcz_json_object_begin(&j, NULL);
        hpcz_json_string(&j, "op_type", s->ops[i].op_type);
        hpcz_json_string(&j, "domain", *s->ops[i].domain ? s->ops[i].domain : "ai.onnx");
        hpcz_json_uint(&j, "count", s->ops[i].count);
        hpcz_json_object_end(&j);
    }
    hpcz_json_array_end(&j);
    hpcz_json_object_begin(&j, "parameters");
    hpcz_json_uint(&j, "count", s->params);
    hpcz_json_uint(&j, "bytes", s->param_bytes);
    hpcz_json_int(&j, "zeros", s->zeros);
    hpcz_json_double(&j, "sparsity", s->params ? (double)s->zeros / (double)s->params : 0.0);
    hpcz_json_array_begin(&j, "by_dtype");
    for (size_t i = 0; i < s->n_dtypes; i++) {
        hpcz_json_object_begin(&j, NULL);
        hpcz_json_string(&j, "dtype", hpcz_dtype_name(s->dtypes[i].dtype));
        hpcz_json_uint(&j, "tensors", s->dtypes[i].tensors);
        hpcz_json_uint(&j, "count", s->dtypes[i].params);
        hpcz_json_uint(&j, "bytes", s->dtypes[i].bytes);
        hpcz_json_object_end(&j);
    }
    hpcz_json_array_end(&j);
    hpcz_json_object_end(&j);
    hpcz_json_array_begin(&j, "tensors");
    for (size_t i = 0; i < s->n_weights; i++) {
        const hpcz_weight_stat *w = &s->weights[i];
        hpcz_json_object_begin(&j, NULL);
        hpcz_json_string(&j, "name", w->name);
        hpcz_json_string(&j, "dtype", hpcz_dtype_name(w->tensor->dtype));
        hpcz_json_array_begin(&j, "shape");
        for (int d = 0; d < w->tensor->ndim; d++)
            hpcz_json_int(&j, NULL, w->tensor->dims[d]);
        hpcz_json_array_end(&j);
        hpcz_json_int(&j, "count", w->tensor->numel);
        hpcz_json_uint(&j, "bytes", w->bytes);
        if (w->zeros >= 0) {
            hpcz_json_int(&j, "zeros", w->zeros);
            hpcz_json_double(&j, "sparsity",
                             w->tensor->numel ? (double)w->zeros / (double)w->tensor->numel : 0.0);
        } else {
            hpcz_json_null(&j, "zeros");
            hpcz_json_null(&j, "sparsity");
        }
        hpcz_json_string(&j, "source", w->source);
        hpcz_json_string(&j, "graph", w->graph);
        hpcz_json_bool(&j, "external", w->tensor->external);
        if (is_hpcz) {
            hpcz_hpcz_tensor_info ti;
            if (hpcz_hpcz_tensor_storage(w->tensor, &ti)) {
                hpcz_json_string(&j, "encoding", hpcz_hpcz_encoding_name(ti.encoding));
                hpcz_json_uint(&j, "stored_bytes", ti.stored_bytes);
            } else {
                hpcz_json_string(&j, "encoding", "inline");
                hpcz_json_null(&j, "stored_bytes");
            }
        }
        hpcz_json_object_end(&j);
    }
    hpcz_json_array_end(&j);
    hpcz_json_object_begin(&j, "metadata");
    for (size_t i = 0; i < m->n_meta; i++)
        hpcz_json_string(&j, m->meta[i].key ? m->meta[i].key : "", m->meta[i].value);
    hpcz_json_object_end(&j);
    hpcz_json_object_end(&j);
    hpcz_json_finish(&j);
}

/* ------------------------------------------------------------ text */

void hpcz_tensor_shape_str(const hpcz_tensor *t, char *buf, size_t cap)
{
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < t->ndim && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", i ? "," : "", (long long)t->dims[i]);
    if (k < cap)
        snprintf(buf + k, cap - k, "]");
}

static void text_values(FILE *f, const char *label, hpcz_value **vals, size_t n, size_t w)
{
    if (n == 0)
        fprintf(f, "%-10s (none)\n", label);
    for (size_t i = 0; i < n; i++) {
        char shape[512];
        hpcz_value_shape_str(vals[i], shape, sizeof shape);
        fprintf(f, "%-10s %-*s  %-8s %s\n", i ? "" : label, (int)w, vals[i]->name,
                vals[i]->dtype ? hpcz_dtype_name(vals[i]->dtype) : "?", shape);
    }
}

void hpcz_model_summary_write_text(FILE *f, const hpcz_model *m, const hpcz_model_summary *s, size_t top)
{
    fprintf(f, "%-10s %s (%s)\n", "model", strcmp(m->path, "-") ? m->path : "<stdin>",
            BYTES(m->file_size));
    fprintf(f, "%-10s ir %lld", "format", (long long)m->ir_version);
    if (m->producer_name && *m->producer_name)
        fprintf(f, ", producer %s%s%s", m->producer_name, m->producer_version ? " " : "",
                m->producer_version ? m->producer_version : "");
    hpcz_hpcz_info hi;
    bool is_hpcz = hpcz_hpcz_model_info(m, &hi);
    if (is_hpcz) {
        fprintf(f, "\n%-10s hpcz %d.%d, %lu tensor%s in the table (", "container", hi.major,
                hi.minor, (unsigned long)hi.n_tensors, hi.n_tensors == 1 ? "" : "s");
        const char *sep = "";
        for (int e = 0; e < HPCZ_HPCZ_ENC_COUNT; e++)
            if (hi.by_encoding[e]) {
                fprintf(f, "%s%lu %s", sep, (unsigned long)hi.by_encoding[e],
                        hpcz_hpcz_encoding_name(e));
                sep = ", ";
            }
        fprintf(f, "%s), %s", *sep ? "" : "none", BYTES(hi.stored_bytes));
        fprintf(f, " stored for %s", BYTES(hi.raw_bytes));
    }
    fprintf(f, "\n%-10s", "opsets");
    for (size_t i = 0; i < m->n_opsets; i++)
        fprintf(f, " %s %lld%s", *m->opsets[i].domain ? m->opsets[i].domain : "ai.onnx",
                (long long)m->opsets[i].version, i + 1 < m->n_opsets ? "," : "");
    fputc('\n', f);
    hpcz_value **ins = malloc((m->graph->n_inputs + 1) * sizeof *ins);
    size_t n_ins = ins ? hpcz_graph_fed_inputs(m->graph, ins) : 0;
    size_t w = 4;
    for (size_t i = 0; i < n_ins; i++)
        if (strlen(ins[i]->name) > w)
            w = strlen(ins[i]->name);
    for (size_t i = 0; i < m->graph->n_outputs; i++)
        if (strlen(m->graph->outputs[i]->name) > w)
            w = strlen(m->graph->outputs[i]->name);
    text_values(f, "inputs", ins, n_ins, w);
    free(ins);
    text_values(f, "outputs", m->graph->outputs, m->graph->n_outputs, w);
    fprintf(f, "%-10s %s", "nodes", COUNT(s->n_nodes_total));
    if (s->n_subgraphs)
        fprintf(f, " (%s in %zu subgraph%s)", COUNT(s->n_nodes_total - s->n_nodes),
                s->n_subgraphs, s->n_subgraphs == 1 ? "" : "s");
    fputc('\n', f);
    for (size_t i = 0; i < s->n_ops; i++) {
        if (i % 4 == 0)
            fprintf(f, "%-10s", i ? "" : "ops");
        char op[256];
        if (*s->ops[i].domain)
            snprintf(op, sizeof op, "%s:%s", s->ops[i].domain, s->ops[i].op_type);
        else
            snprintf(op, sizeof op, "%s", s->ops[i].op_type);
        fprintf(f, " %s %zu%s", op, s->ops[i].count,
                i + 1 < s->n_ops ? (i % 4 == 3 ? ",\n" : ",") : "\n");
    }
    fprintf(f, "%-10s %s (%s)", "params", COUNT(s->params), BYTES(s->param_bytes));
    if (s->params)
        fprintf(f, ", sparsity %.1f%%", 100.0 * (double)s->zeros / (double)s->params);
    fputc('\n', f);
    for (size_t i = 0; i < s->n_dtypes; i++)
        fprintf(f, "%-10s   %-8s %s in %llu tensor%s (%s)\n", "", hpcz_dtype_name(s->dtypes[i].dtype),
                COUNT(s->dtypes[i].params), (unsigned long long)s->dtypes[i].tensors,
                s->dtypes[i].tensors == 1 ? "" : "s", BYTES(s->dtypes[i].bytes));
    if (!s->n_weights)
        return;
    size_t shown = s->n_weights < top ? s->n_weights : top;
    fprintf(f, "\n%s tensors%s:\n", shown < s->n_weights ? "largest" : "all",
            shown < s->n_weights ? "" : "");
    size_t nw = 4;
    for (size_t i = 0; i < shown; i++)
        if (strlen(s->weights[i].name) > nw)
            nw = strlen(s->weights[i].name);
    if (nw > 48)
        nw = 48;
    fprintf(f, "  %-*s  %-8s %-20s %12s %10s %8s", (int)nw, "name", "dtype", "shape", "params",
            "bytes", "zeros");
    if (is_hpcz)
        fprintf(f, "  %-11s %10s", "encoding", "stored");
    fputc('\n', f);
    for (size_t i = 0; i < shown; i++) {
        const hpcz_weight_stat *w = &s->weights[i];
        char shape[256], zeros[32];
        hpcz_tensor_shape_str(w->tensor, shape, sizeof shape);
        if (w->zeros < 0)
            snprintf(zeros, sizeof zeros, "-");
        else
            snprintf(zeros, sizeof zeros, "%.1f%%",
                     w->tensor->numel ? 100.0 * (double)w->zeros / (double)w->tensor->numel : 0.0);
        fprintf(f, "  %-*s  %-8s %-20s %12s %10s %8s", (int)nw, w->name,
                hpcz_dtype_name(w->tensor->dtype), shape, COUNT((uint64_t)w->tensor->numel),
                BYTES(w->bytes), zeros);
        if (is_hpcz) {
            hpcz_hpcz_tensor_info ti;
            if (hpcz_hpcz_tensor_storage(w->tensor, &ti))
                fprintf(f, "  %-11s %10s", hpcz_hpcz_encoding_name(ti.encoding),
                        BYTES(ti.stored_bytes));
            else
                fprintf(f, "  %-11s %10s", "inline", "-");
        }
        fprintf(f, "%s\n", !strcmp(w->source, "constant") ? "  (Constant node)" : "");
    }
    if (shown < s->n_weights)
        fprintf(f, "  ... %zu more (--all lists every tensor)\n", s->n_weights - shown);
}

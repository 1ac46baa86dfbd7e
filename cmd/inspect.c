/*
 * inspect.c - `hpcz inspect MODEL`: what is in a model.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

enum { OPT_TOP = 'n', OPT_ALL = 'a', OPT_JSON = 256 };

static const cli_opt opts[] = {
    {"json", OPT_JSON, no_argument, NULL,
     "print a JSON document (schema hpcz.inspect version 1, see docs/json.md) instead of text"},
    {"top", OPT_TOP, required_argument, "N", "list the N largest tensors (default 10)"},
    {"all", OPT_ALL, no_argument, NULL, "list every tensor"},
    {"quiet", 'q', no_argument, NULL, "no warnings on stderr"},
    {0},
};

const cli_cmd_info cmd_inspect_info = {
    "inspect", "MODEL [options]",
    "Show a model's inputs and outputs, opsets, node count, op histogram, parameters and bytes "
    "per dtype, the largest tensors with their sparsity (share of exact zeros), and file size.",
    "MODEL is an ONNX or .hpcz file, or '-' for standard input. Weights are initializers and the tensors "
    "of Constant nodes, in subgraphs too.",
    opts,
    .exits = cli_exits_basic,
    .max_operands = 1,
    .operand_files = CLI_FILES_MODEL,
    .legacy = CLI_LEGACY_J_JSON,
};

static void tensor_shape_str(char *buf, size_t cap, const hpcz_tensor *t)
{
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < t->ndim && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", i ? "," : "", (long long)t->dims[i]);
    if (k < cap)
        snprintf(buf + k, cap - k, "]");
}

static void print_values(const char *label, hpcz_value **vals, size_t n, size_t w)
{
    if (n == 0)
        printf("%-10s (none)\n", label);
    for (size_t i = 0; i < n; i++) {
        char shape[512];
        hpcz_value_shape_str(vals[i], shape, sizeof shape);
        printf("%-10s %-*s  %-8s %s\n", i ? "" : label, (int)w, vals[i]->name,
               vals[i]->dtype ? hpcz_dtype_name(vals[i]->dtype) : "?", shape);
    }
}

static void print_text(const hpcz_model *m, const hpcz_model_summary *s, size_t top)
{
    printf("%-10s %s (%s)\n", "model", strcmp(m->path, "-") ? m->path : "<stdin>",
           cli_bytes(m->file_size));
    printf("%-10s ir %lld", "format", (long long)m->ir_version);
    if (m->producer_name && *m->producer_name)
        printf(", producer %s%s%s", m->producer_name, m->producer_version ? " " : "",
               m->producer_version ? m->producer_version : "");
    hpcz_hpcz_info hi;
    bool is_hpcz = hpcz_hpcz_model_info(m, &hi);
    if (is_hpcz) {
        printf("\n%-10s hpcz %d.%d, %lu tensor%s in the table (", "container", hi.major,
               hi.minor, (unsigned long)hi.n_tensors, hi.n_tensors == 1 ? "" : "s");
        const char *sep = "";
        for (int e = 0; e < HPCZ_HPCZ_ENC_COUNT; e++)
            if (hi.by_encoding[e]) {
                printf("%s%lu %s", sep, (unsigned long)hi.by_encoding[e],
                       hpcz_hpcz_encoding_name(e));
                sep = ", ";
            }
        printf("%s), %s", *sep ? "" : "none", cli_bytes(hi.stored_bytes));
        printf(" stored for %s", cli_bytes(hi.raw_bytes));
    }
    printf("\n%-10s", "opsets");
    for (size_t i = 0; i < m->n_opsets; i++)
        printf(" %s %lld%s", *m->opsets[i].domain ? m->opsets[i].domain : "ai.onnx",
               (long long)m->opsets[i].version, i + 1 < m->n_opsets ? "," : "");
    printf("\n");
    hpcz_value **ins = malloc((m->graph->n_inputs + 1) * sizeof *ins);
    size_t n_ins = ins ? hpcz_graph_fed_inputs(m->graph, ins) : 0;
    size_t w = 4;
    for (size_t i = 0; i < n_ins; i++)
        if (strlen(ins[i]->name) > w)
            w = strlen(ins[i]->name);
    for (size_t i = 0; i < m->graph->n_outputs; i++)
        if (strlen(m->graph->outputs[i]->name) > w)
            w = strlen(m->graph->outputs[i]->name);
    print_values("inputs", ins, n_ins, w);
    free(ins);
    print_values("outputs", m->graph->outputs, m->graph->n_outputs, w);
    printf("%-10s %s", "nodes", cli_count(s->n_nodes_total));
    if (s->n_subgraphs)
        printf(" (%s in %zu subgraph%s)", cli_count(s->n_nodes_total - s->n_nodes),
               s->n_subgraphs, s->n_subgraphs == 1 ? "" : "s");
    printf("\n");
    for (size_t i = 0; i < s->n_ops; i++) {
        if (i % 4 == 0)
            printf("%-10s", i ? "" : "ops");
        char op[256];
        if (*s->ops[i].domain)
            snprintf(op, sizeof op, "%s:%s", s->ops[i].domain, s->ops[i].op_type);
        else
            snprintf(op, sizeof op, "%s", s->ops[i].op_type);
        printf(" %s %zu%s", op, s->ops[i].count,
               i + 1 < s->n_ops ? (i % 4 == 3 ? ",\n" : ",") : "\n");
    }
    printf("%-10s %s (%s)", "params", cli_count(s->params), cli_bytes(s->param_bytes));
    if (s->params)
        printf(", sparsity %.1f%%", 100.0 * (double)s->zeros / (double)s->params);
    printf("\n");
    for (size_t i = 0; i < s->n_dtypes; i++)
        printf("%-10s   %-8s %s in %llu tensor%s (%s)\n", "", hpcz_dtype_name(s->dtypes[i].dtype),
               cli_count(s->dtypes[i].params), (unsigned long long)s->dtypes[i].tensors,
               s->dtypes[i].tensors == 1 ? "" : "s", cli_bytes(s->dtypes[i].bytes));
    if (!s->n_weights)
        return;
    size_t shown = s->n_weights < top ? s->n_weights : top;
    printf("\n%s tensors%s:\n", shown < s->n_weights ? "largest" : "all",
           shown < s->n_weights ? "" : "");
    size_t nw = 4;
    for (size_t i = 0; i < shown; i++)
        if (strlen(s->weights[i].name) > nw)
            nw = strlen(s->weights[i].name);
    if (nw > 48)
        nw = 48;
    printf("  %-*s  %-8s %-20s %12s %10s %8s", (int)nw, "name", "dtype", "shape", "params",
           "bytes", "zeros");
    if (is_hpcz)
        printf("  %-11s %10s", "encoding", "stored");
    printf("\n");
    for (size_t i = 0; i < shown; i++) {
        const hpcz_weight_stat *w = &s->weights[i];
        char shape[256], zeros[32];
        tensor_shape_str(shape, sizeof shape, w->tensor);
        if (w->zeros < 0)
            snprintf(zeros, sizeof zeros, "-");
        else
            snprintf(zeros, sizeof zeros, "%.1f%%",
                     w->tensor->numel ? 100.0 * (double)w->zeros / (double)w->tensor->numel : 0.0);
        printf("  %-*s  %-8s %-20s %12s %10s %8s", (int)nw, w->name,
               hpcz_dtype_name(w->tensor->dtype), shape, cli_count((uint64_t)w->tensor->numel),
               cli_bytes(w->bytes), zeros);
        if (is_hpcz) {
            hpcz_hpcz_tensor_info ti;
            if (hpcz_hpcz_tensor_storage(w->tensor, &ti))
                printf("  %-11s %10s", hpcz_hpcz_encoding_name(ti.encoding),
                       cli_bytes(ti.stored_bytes));
            else
                printf("  %-11s %10s", "inline", "-");
        }
        printf("%s\n", !strcmp(w->source, "constant") ? "  (Constant node)" : "");
    }
    if (shown < s->n_weights)
        printf("  ... %zu more (--all lists every tensor)\n", s->n_weights - shown);
}

int cmd_inspect(int argc, char **argv)
{
    bool json = false;
    long long top = 10;
    int c;
    while ((c = cli_getopt(argc, argv, &cmd_inspect_info)) != -1) {
        switch (c) {
        case 'h':
            return EXIT_OK;
        case '?':
            return EXIT_USAGE;
        case OPT_JSON:
            json = true;
            break;
        case OPT_TOP:
            if (!cli_parse_int(&cmd_inspect_info, "top", optarg, 0, 1000000000, &top))
                return EXIT_USAGE;
            break;
        case OPT_ALL:
            top = -1;
            break;
        case 'q':
            cli_verbosity = -1;
            break;
        default:
            return EXIT_USAGE;
        }
    }
    const char *path = cli_operand(&cmd_inspect_info, argc, argv, "MODEL");
    if (!path)
        return EXIT_USAGE;
    hpcz_error err = {0};
    hpcz_model *m = hpcz_model_load(path, NULL, &err);
    if (!m)
        return cli_file_error(path, &err);
    hpcz_model_summary s;
    if (hpcz_model_summarize(m, &s, &err)) {
        hpcz_model_free(m);
        return cli_file_error(path, &err);
    }
    if (json)
        hpcz_model_summary_write_json(stdout, m, &s); /* machines get every tensor */
    else
        print_text(m, &s, top < 0 ? (size_t)-1 : (size_t)top);
    hpcz_model_summary_release(&s);
    hpcz_model_free(m);
    if (fflush(stdout) != 0 || ferror(stdout))
        return cli_error("writing standard output failed");
    return EXIT_OK;
}

/*
 * test_cmdlib.c - what `hpcz run`, `inspect`, `report` and `batch` compute,
 * through the public API alone: numbers against references (torch's digits
 * logits, values worked out by hand) and the error messages.
 *   test_cmdlib SOURCE_ROOT HPCZ_EXECUTABLE
 */
#include "hpcz.h"
#include "check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHECK_MSG(err, text)                                                                       \
    do {                                                                                           \
        CHECK(strstr((err).msg, (text)) != NULL);                                                  \
        if (!strstr((err).msg, (text)))                                                            \
            printf("  got: %s\n", (err).msg);                                                      \
    } while (0)

static char root[2048], tmp[2048];

static const char *at(const char *rel)
{
    static char bufs[8][4200];
    static int k;
    char *b = bufs[k++ & 7];
    snprintf(b, sizeof bufs[0], "%s/%s", root, rel);
    return b;
}

static hpcz_array floats(int n, const float *v)
{
    hpcz_array a;
    int64_t d = n;
    hpcz_error err;
    if (hpcz_array_alloc(&a, HPCZ_DTYPE_FLOAT, 1, &d, &err))
        abort();
    memcpy(a.data, v, (size_t)n * sizeof *v);
    return a;
}

/* ------------------------------------------------------------ arrays */

static void test_arrays(void)
{
    hpcz_error err;
    /* stats: NaN left out, Inf in min/max only */
    hpcz_array a = floats(5, (const float[]){1, -2, NAN, INFINITY, 3});
    hpcz_array_stat s;
    hpcz_array_stats(&a, &s);
    CHECK(s.min == -2 && isinf(s.max) && s.nan == 1 && s.inf == 1 && s.finite == 3);
    CHECK(fabs(s.mean - 2.0 / 3.0) < 1e-12);
    hpcz_array_release(&a);
    hpcz_array none = floats(2, (const float[]){NAN, NAN});
    hpcz_array_stats(&none, &s);
    CHECK(s.nan == 2 && isnan(s.mean));
    hpcz_array_release(&none);

    /* diff: ref (3,4,0), got (3,4,1): max abs 1, RMSE sqrt(1/3),
     * cosine 25/(5*sqrt(26)), SQNR 10*log10(25/1) */
    hpcz_array r = floats(3, (const float[]){3, 4, 0}), g = floats(3, (const float[]){3, 4, 1});
    hpcz_array_difference d;
    CHECK(hpcz_array_diff(&r, &g, &d, &err) == HPCZ_OK);
    CHECK(d.count == 3 && d.max_abs == 1 && d.mismatched_nonfinite == 0);
    CHECK(fabs(d.rmse - sqrt(1.0 / 3.0)) < 1e-12);
    CHECK(fabs(d.cosine - 25.0 / (5.0 * sqrt(26.0))) < 1e-12);
    CHECK(fabs(d.sqnr_db - 10 * log10(25.0)) < 1e-9);
    CHECK(hpcz_array_diff(&r, &r, &d, &err) == HPCZ_OK && isinf(d.sqnr_db) && d.cosine == 1 && d.max_abs == 0);
    hpcz_array g2 = floats(2, (const float[]){3, 4});
    CHECK(hpcz_array_diff(&r, &g2, &d, &err) == HPCZ_ERR_USAGE);
    CHECK_MSG(err, "shapes differ: expected float [3], got float [2]");
    hpcz_array nan1 = floats(3, (const float[]){3, NAN, 0});
    CHECK(hpcz_array_diff(&r, &nan1, &d, &err) == HPCZ_OK && d.mismatched_nonfinite == 1 && d.max_abs == 0);
    hpcz_array_release(&r);
    hpcz_array_release(&g);
    hpcz_array_release(&g2);
    hpcz_array_release(&nan1);

    /* load: the .npy and the TensorProto of the same tensor are equal */
    hpcz_array npy = {0}, pb = {0};
    CHECK(hpcz_array_load(at("tests/data/reference/digits8/input.npy"), &npy, &err) == HPCZ_OK);
    CHECK(hpcz_array_load(at("samples/digits/test_data_set_0/input_0.pb"), &pb, &err) == HPCZ_OK);
    CHECK(npy.numel == 512 && pb.numel == 512 && npy.ndim == 4 && !memcmp(npy.data, pb.data, 512 * 4));
    hpcz_array_release(&npy);
    hpcz_array_release(&pb);
    CHECK(hpcz_array_load(at("missing.npy"), &npy, &err) != HPCZ_OK);
    CHECK_MSG(err, "no such file");

    /* labels: int64 as they are, int32 widened, anything else refused */
    hpcz_array l = {0};
    CHECK(hpcz_labels_load(at("samples/digits/test_labels.npy"), &l, &err) == HPCZ_OK);
    CHECK(l.dtype == HPCZ_DTYPE_INT64 && l.numel == 450);
    hpcz_array_release(&l);
    CHECK(hpcz_labels_load(at("tests/data/reference/digits8/logits.npy"), &l, &err) == HPCZ_ERR_INVALID);
    CHECK_MSG(err, "labels must be a 1-D int64 or int32 array of class indices");
    char p32[4200];
    snprintf(p32, sizeof p32, "%s/l32.npy", tmp);
    hpcz_array i32;
    int64_t three = 3;
    hpcz_array_alloc(&i32, HPCZ_DTYPE_INT32, 1, &three, &err);
    ((int32_t *)i32.data)[0] = 7, ((int32_t *)i32.data)[1] = -1, ((int32_t *)i32.data)[2] = 2;
    CHECK(hpcz_npy_save(p32, &i32, &err) == HPCZ_OK);
    CHECK(hpcz_labels_load(p32, &l, &err) == HPCZ_OK && l.dtype == HPCZ_DTYPE_INT64);
    CHECK(l.numel == 3 && ((int64_t *)l.data)[0] == 7 && ((int64_t *)l.data)[1] == -1);
    hpcz_array_release(&l);
    hpcz_array_release(&i32);
}

/* ------------------------------------------------------------ run */

static void test_run(void)
{
    hpcz_error err;
    hpcz_model *m = hpcz_model_load(at("samples/digits_cnn.onnx"), NULL, &err);
    CHECK(m != NULL);
    if (!m)
        return;
    const char *names[] = {"input"}, *files[] = {at("tests/data/reference/digits8/input.npy")};
    char outdir[4200];
    snprintf(outdir, sizeof outdir, "%s/out", tmp);
    hpcz_run_opts o = {.threads = 2, .n_inputs = 1, .input_names = names, .input_files = files,
                       .outdir = outdir, .bench = 3, .profile = 1};
    hpcz_run_result r;
    CHECK(hpcz_run(m, &o, &r, &err) == HPCZ_OK);
    CHECK(r.n_inputs == 1 && r.n_outputs == 1 && r.runs == 3);
    /* against torch's logits */
    hpcz_array want = {0}, saved = {0};
    hpcz_array_difference d;
    CHECK(hpcz_array_load(at("tests/data/reference/digits8/logits.npy"), &want, &err) == HPCZ_OK);
    CHECK(hpcz_array_diff(&want, &r.outputs[0], &d, &err) == HPCZ_OK);
    CHECK(d.count == 80 && d.max_abs < 1e-4 && d.cosine > 0.999999);
    /* the output written is the output returned */
    CHECK(r.files[0] && strstr(r.files[0], "/out/logits.npy"));
    CHECK(hpcz_array_load(r.files[0], &saved, &err) == HPCZ_OK);
    CHECK(saved.numel == 80 && !memcmp(saved.data, r.outputs[0].data, 80 * sizeof(float)));
    /* timing and profile add up */
    CHECK(r.min_ms > 0 && r.median_ms >= r.min_ms);
    uint64_t ns = 0, flops = 0;
    size_t nodes = 0;
    for (size_t q = 0; q < r.n_ops; q++) {
        ns += r.ops[q].ns, flops += r.ops[q].flops, nodes += r.ops[q].nodes;
        CHECK(q == 0 || r.ops[q - 1].ns >= r.ops[q].ns);
    }
    CHECK(ns == r.total_ns && nodes == hpcz_plan_n_nodes(r.plan) && flops > 0);
    CHECK(r.n_nodes > 0 && r.n_nodes <= nodes);
    /* the JSON document */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    hpcz_run_write_json(f, "digits_cnn.onnx", &r);
    fclose(f);
    hpcz_jval *j = hpcz_json_parse(buf, len, &err);
    CHECK(j != NULL);
    if (j) {
        const hpcz_jval *outs = hpcz_json_get(j, "outputs"), *bench = hpcz_json_get(j, "bench");
        CHECK(!strcmp(hpcz_json_get(j, "schema")->s, "hpcz.run"));
        CHECK(outs && outs->n == 1 && !strcmp(hpcz_json_get(outs->items[0], "file")->s, r.files[0]));
        CHECK(bench && hpcz_json_get(bench, "runs")->num == 3);
        CHECK(hpcz_json_get(j, "profile") && hpcz_json_get(j, "profile")->n == r.n_ops);
        hpcz_json_free(j);
    }
    free(buf);
    hpcz_array_release(&want);
    hpcz_array_release(&saved);
    hpcz_run_result_release(&r);

    /* the messages a caller shows */
    hpcz_run_opts none = {0};
    CHECK(hpcz_run(m, &none, &r, &err) == HPCZ_ERR_USAGE && r.about == NULL);
    CHECK_MSG(err, "missing input 'input' (float [batch,1,8,8]); pass --input NAME=FILE");
    hpcz_run_result_release(&r);
    const char *bad[] = {"x"};
    hpcz_run_opts wrong = {.n_inputs = 1, .input_names = bad, .input_files = files};
    CHECK(hpcz_run(m, &wrong, &r, &err) == HPCZ_ERR_USAGE);
    CHECK_MSG(err, "model has no input 'x' (inputs: input)");
    hpcz_run_result_release(&r);
    const char *gone[] = {at("nowhere.npy")};
    hpcz_run_opts missing = {.n_inputs = 1, .input_names = names, .input_files = gone};
    CHECK(hpcz_run(m, &missing, &r, &err) == HPCZ_ERR_IO && r.about && strstr(r.about, "nowhere.npy"));
    hpcz_run_result_release(&r);
    const char *labels[] = {at("samples/digits/test_labels.npy")};
    hpcz_run_opts shape = {.n_inputs = 1, .input_names = names, .input_files = labels};
    CHECK(hpcz_run(m, &shape, &r, &err) != HPCZ_OK && r.about == m->path);
    CHECK_MSG(err, "input 'input'");
    hpcz_run_result_release(&r);
    /* a test-data folder: input_0.pb in graph input order */
    hpcz_run_opts dir = {.inputs_dir = at("samples/digits/test_data_set_0")};
    CHECK(hpcz_run(m, &dir, &r, &err) == HPCZ_OK && r.outputs[0].numel == 80 && !r.files[0]);
    hpcz_array_release(&want);
    CHECK(hpcz_array_load(at("samples/digits/test_data_set_0/output_0.pb"), &want, &err) == HPCZ_OK);
    CHECK(hpcz_array_diff(&want, &r.outputs[0], &d, &err) == HPCZ_OK && d.max_abs < 1e-4);
    hpcz_array_release(&want);
    hpcz_run_result_release(&r);

    /* names and dims */
    const char *dims[] = {"batch", "bach"};
    size_t badi = 9;
    CHECK(hpcz_model_check_dims(m, dims, 1, &badi, &err) == HPCZ_OK);
    CHECK(hpcz_model_check_dims(m, dims, 2, &badi, &err) == HPCZ_ERR_USAGE && badi == 1);
    CHECK_MSG(err, "the model has no symbolic dimension 'bach'; did you mean 'batch'?");
    const char *far[] = {"sequence"};
    CHECK(hpcz_model_check_dims(m, far, 1, &badi, &err) == HPCZ_ERR_USAGE && badi == 0);
    CHECK_MSG(err, "the model has no symbolic dimension 'sequence' (it has 'batch')");
    hpcz_value *ins[4];
    CHECK(hpcz_graph_fed_inputs(m->graph, ins) == 1 && !strcmp(ins[0]->name, "input"));
    char shape_s[64];
    hpcz_value_shape_str(ins[0], shape_s, sizeof shape_s);
    CHECK(!strcmp(shape_s, "[batch,1,8,8]"));

    /* inspect's JSON: the summary's numbers */
    hpcz_model_summary s;
    CHECK(hpcz_model_summarize(m, &s, &err) == HPCZ_OK);
    f = open_memstream(&buf, &len);
    hpcz_model_summary_write_json(f, m, &s);
    fclose(f);
    j = hpcz_json_parse(buf, len, &err);
    CHECK(j != NULL);
    if (j) {
        const hpcz_jval *p = hpcz_json_get(j, "parameters");
        CHECK(!strcmp(hpcz_json_get(j, "schema")->s, "hpcz.inspect"));
        CHECK(p && hpcz_json_get(p, "count")->num == (double)s.params);
        CHECK(hpcz_json_get(j, "tensors")->n == s.n_weights);
        CHECK(hpcz_json_get(j, "inputs")->n == 1);
        hpcz_json_free(j);
    }
    free(buf);
    /* inspect's text: inputs with their shapes, the largest tensor only */
    f = open_memstream(&buf, &len);
    hpcz_model_summary_write_text(f, m, &s, 1);
    fclose(f);
    char line[256], w_shape[64];
    hpcz_tensor_shape_str(s.weights[0].tensor, w_shape, sizeof w_shape);
    CHECK(w_shape[0] == '[' && strchr(w_shape, ']') && strstr(buf, w_shape));
    CHECK(strstr(buf, "\ninputs     input   float    [batch,1,8,8]\n") != NULL);
    snprintf(line, sizeof line, "\nlargest tensors:\n  name");
    CHECK(strstr(buf, line) && strstr(buf, s.weights[0].name) && !strstr(buf, s.weights[1].name));
    snprintf(line, sizeof line, "  ... %zu more (--all lists every tensor)\n", s.n_weights - 1);
    CHECK(len > strlen(line) && !strcmp(buf + len - strlen(line), line));
    free(buf);
    hpcz_model_summary_release(&s);
    hpcz_model_free(m);
}

/* ------------------------------------------------------------ report */

static void test_report(void)
{
    hpcz_error err;
    hpcz_model *a = hpcz_model_load(at("samples/digits_cnn.onnx"), NULL, &err);
    hpcz_model *b = hpcz_model_load(at("samples/digits_mlp.onnx"), NULL, &err);
    CHECK(a && b);
    if (!a || !b)
        return;
    hpcz_gate gates[2];
    CHECK(hpcz_gate_parse(HPCZ_GATE_MAX_ABS, "0", &gates[0], &err) == HPCZ_OK);
    CHECK(hpcz_gate_parse(HPCZ_GATE_MIN_SQNR, "logits=20", &gates[1], &err) == HPCZ_OK);
    const hpcz_gate *bad = gates;
    CHECK(hpcz_gates_check_outputs(gates, 2, a, &bad, &err) == HPCZ_OK && bad == NULL);
    hpcz_gate typo;
    CHECK(hpcz_gate_parse(HPCZ_GATE_MIN_COSINE, "logit=0.9", &typo, &err) == HPCZ_OK);
    CHECK(hpcz_gates_check_outputs(&typo, 1, a, &bad, &err) == HPCZ_ERR_USAGE && bad == &typo);
    CHECK_MSG(err, "the model has no output 'logit'; did you mean 'logits'?");
    /* --min-cosine: the lower of the pooled cosine and the per-sample mean */
    hpcz_gate cg;
    CHECK(hpcz_gate_parse(HPCZ_GATE_MIN_COSINE, "0.99", &cg, &err) == HPCZ_OK);
    hpcz_output_metrics om = {.name = "logits", .cosine = 0.995, .cos_mean = 0.985, .cos_worst = 0.9};
    hpcz_compare_result cr = {.samples = 4, .n_outputs = 1, .outputs = &om};
    hpcz_gate_result gr;
    CHECK(hpcz_gates_check(&cg, 1, &cr, &gr, 1) == 1 && gr.broken && gr.measured == 0.985);
    om.cos_mean = 0.999;
    CHECK(hpcz_gates_check(&cg, 1, &cr, &gr, 1) == 1 && !gr.broken && gr.measured == 0.995);
    hpcz_array labels = {0};
    CHECK(hpcz_labels_load(at("samples/digits/test_labels.npy"), &labels, &err) == HPCZ_OK);
    hpcz_report_opts o = {.data = at("samples/digits/test_input.npy"), .labels = labels.data,
                          .n_labels = (size_t)labels.numel, .threads = 1, .max_samples = 100, .gates = gates,
                          .n_gates = 2};
    /* a model against itself: identical, every gate holds */
    hpcz_report rep = {0};
    CHECK(hpcz_report_make(a, a, &o, &rep, &err) == HPCZ_OK);
    CHECK(rep.result && rep.result->samples == 100 && isinf(rep.result->outputs[0].sqnr_db));
    CHECK(rep.n_gates == 2 && !hpcz_report_broken(&rep) && rep.a.params == rep.b.params);
    CHECK(rep.result->outputs[0].drop_points == 0 && rep.a.latency_ms < 0);
    hpcz_report_release(&rep);
    /* another model: the max-abs gate breaks, with the measured error */
    o.bench = 2;
    CHECK(hpcz_report_make(a, b, &o, &rep, &err) == HPCZ_OK);
    CHECK(hpcz_report_broken(&rep) && rep.gates[0].broken && rep.gates[0].measured > 0);
    CHECK(rep.gates[0].measured == rep.result->outputs[0].max_abs);
    CHECK(rep.b.latency_runs == 2 && rep.b.latency_ms > 0 && rep.b.latency_ratio > 0);
    hpcz_report_release(&rep);
    o.data = at("missing_folder");
    CHECK(hpcz_report_make(a, b, &o, &rep, &err) != HPCZ_OK && !rep.result);
    hpcz_report_release(&rep);
    hpcz_array_release(&labels);
    hpcz_model_free(a);
    hpcz_model_free(b);
}

/* ------------------------------------------------------------ batch */

typedef struct seen {
    int jobs, commands;
    char last_arg[4096];
} seen;

static void on_job(void *ctx, const hpcz_batch_job *j, const hpcz_batch_state *s)
{
    seen *n = ctx;
    (void)j;
    n->jobs += s->status == 0;
}

static void on_command(void *ctx, char *const *argv)
{
    seen *n = ctx;
    int k = 0;
    while (argv[k + 1])
        k++;
    n->commands++;
    snprintf(n->last_arg, sizeof n->last_arg, "%s %s", argv[1], argv[k]);
}

static void test_batch(const char *exe)
{
    hpcz_error err;
    char src[2100], out[2100], cmd[16000];
    snprintf(src, sizeof src, "%s/zoo", tmp);
    snprintf(out, sizeof out, "%s/batch", tmp);
    snprintf(cmd, sizeof cmd, "mkdir -p %s/f && cp %s %s/a.onnx && cp %s %s/f/b.onnx", src,
             at("samples/digits_mlp.onnx"), src, at("samples/digits_cnn.onnx"), src);
    CHECK(system(cmd) == 0);
    seen n = {0};
    hpcz_batch_opts o = {.src = src, .outdir = out, .recipe = "convert", .exe = exe, .jobs = 2,
                         .progress = on_job, .ctx = &n};
    hpcz_batch_result r;
    CHECK(hpcz_batch_run(&o, &r, &err) == HPCZ_OK);
    CHECK(r.n_ok == 2 && r.n_failed == 0 && n.jobs == 2 && r.lo == 0 && r.hi == 2);
    CHECK(!strcmp(hpcz_batch_status_name(r.state[0].status), "ok") && r.state[0].out_bytes > 0);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    hpcz_batch_write_json(f, o.recipe, &r);
    fclose(f);
    hpcz_jval *j = hpcz_json_parse(buf, len, &err);
    CHECK(j && hpcz_json_get(j, "models")->n == 2);
    if (j) {
        const hpcz_jval *m0 = hpcz_json_get(j, "models")->items[0];
        CHECK(!strcmp(hpcz_json_get(m0, "name")->s, "a") && !strcmp(hpcz_json_get(m0, "status")->s, "ok"));
        CHECK(hpcz_json_get(hpcz_json_get(j, "shard"), "n")->num == 1);
        hpcz_json_free(j);
    }
    free(buf);
    hpcz_batch_result_release(&r);
    /* resumed: nothing runs again */
    CHECK(hpcz_batch_run(&o, &r, &err) == HPCZ_OK && r.n_skipped == 2 && r.n_ok == 0);
    CHECK(!strcmp(hpcz_batch_status_name(r.state[1].status), "done before"));
    hpcz_batch_result_release(&r);
    /* the second of two shards, as a dry run: the command, nothing run */
    hpcz_batch_opts dry = o;
    dry.force = 1, dry.dry_run = 1, dry.command = on_command, dry.shard_index = 1, dry.shard_count = 2;
    CHECK(hpcz_batch_run(&dry, &r, &err) == HPCZ_OK && n.commands == 1 && r.lo == 1 && r.hi == 2);
    CHECK(strstr(n.last_arg, "convert ") == n.last_arg && strstr(n.last_arg, "/f/b.onnx"));
    hpcz_batch_result_release(&r);
    /* where the summary goes by default: one per shard */
    char want[2200], got[2200];
    hpcz_batch_summary_path(&dry, got, sizeof got);
    snprintf(want, sizeof want, "%s/batch-summary-2-of-2.json", out);
    CHECK(!strcmp(got, want));
    hpcz_batch_summary_path(&o, got, sizeof got);
    snprintf(want, sizeof want, "%s/batch-summary.json", out);
    CHECK(!strcmp(got, want));
    /* cancelled before the start: no job runs */
    static volatile int stop = 1;
    hpcz_batch_opts cancel = o;
    cancel.force = 1, cancel.cancel = &stop;
    CHECK(hpcz_batch_run(&cancel, &r, &err) == HPCZ_ERR_CANCELLED && r.n_ok == 0);
    CHECK(!strcmp(hpcz_batch_status_name(r.state[0].status), "not run"));
    hpcz_batch_result_release(&r);
    hpcz_batch_stop_workers(); /* none running: nothing to do */
    /* recipes batch cannot run */
    hpcz_batch_opts bad = o;
    bad.recipe = "run --bench 3";
    CHECK(hpcz_batch_run(&bad, &r, &err) == HPCZ_ERR_USAGE);
    CHECK_MSG(err, "--recipe must start with quantize, prune or convert");
    hpcz_batch_result_release(&r);
    bad.recipe = "quantize -o x.onnx";
    CHECK(hpcz_batch_run(&bad, &r, &err) == HPCZ_ERR_USAGE);
    CHECK_MSG(err, "--recipe: leave -o out (batch names the outputs)");
    hpcz_batch_result_release(&r);
    bad.recipe = "@/nonexistent/recipe.txt";
    CHECK(hpcz_batch_run(&bad, &r, &err) == HPCZ_ERR_IO);
    CHECK_MSG(err, "/nonexistent/recipe.txt: no such file");
    hpcz_batch_result_release(&r);
}

/* ------------------------------------------------------------ names, files */

static void test_names_files(void)
{
    CHECK(hpcz_edit_distance("quantise", "quantize") == 1);
    CHECK(hpcz_edit_distance("mdoe", "mode") == 1); /* a transposition */
    CHECK(hpcz_edit_distance("", "abc") == 3);
    const char *const names[] = {"quantize", "prune", "report"};
    CHECK(!strcmp(hpcz_closest("quantise", names, 3, sizeof *names), "quantize"));
    CHECK(hpcz_closest("quantize", names, 3, sizeof *names) == NULL); /* itself: no suggestion */
    CHECK(hpcz_closest("xyz", names, 3, sizeof *names) == NULL);
    char list[64];
    hpcz_list_names(list, sizeof list, names, 3);
    CHECK(!strcmp(list, "'quantize', 'prune', 'report'"));
    const char *const longer[] = {"a", "a_name_that_does_not_fit"};
    hpcz_list_names(list, 16, longer, 2);
    CHECK(!strcmp(list, "'a'..."));
    const char *const three[] = {"abc", "defg", "hi"}; /* the third does not fit */
    hpcz_list_names(list, 17, three, 3);
    CHECK(!strcmp(list, "'abc', 'defg'..."));
    hpcz_list_names(list, 16, three, 3);
    CHECK(!strcmp(list, "'abc'..."));
    uint64_t v = 0;
    CHECK(hpcz_parse_size("4096", &v) && v == 4096);
    CHECK(hpcz_parse_size("64K", &v) && v == 65536);
    CHECK(hpcz_parse_size("1.5m", &v) && v == 1572864);
    CHECK(hpcz_parse_size("2GiB", &v) && v == 2147483648ull);
    CHECK(!hpcz_parse_size("", &v) && !hpcz_parse_size("12Q", &v) && !hpcz_parse_size("-1", &v));
    char p[4200], q[4200];
    snprintf(p, sizeof p, "%s/same", tmp);
    snprintf(q, sizeof q, "%s/./same", tmp);
    FILE *f = fopen(p, "w");
    fclose(f);
    CHECK(hpcz_same_file(p, q) && !hpcz_same_file(p, "-") && !hpcz_same_file(p, root));
    hpcz_error err;
    CHECK(hpcz_output_check(p, &err) == HPCZ_OK && hpcz_output_check("-", &err) == HPCZ_OK);
    CHECK(hpcz_output_check(tmp, &err) == HPCZ_ERR_IO);
    CHECK_MSG(err, ": is a directory");
    snprintf(q, sizeof q, "%s/no/such/out.onnx", tmp);
    CHECK(hpcz_output_check(q, &err) == HPCZ_ERR_IO);
    CHECK_MSG(err, "out.onnx: cannot create a file there: no such folder");
    /* shards as K/N */
    uint64_t index, count;
    CHECK(hpcz_batch_shard_parse("3/4", &index, &count, &err) == HPCZ_OK && index == 2 && count == 4);
    CHECK(hpcz_batch_shard_parse("0/4", &index, &count, &err) == HPCZ_ERR_USAGE);
    CHECK_MSG(err, "'0/4': K counts from 1; for ids from 0 (Slurm's --array=0-3) use --shard-index I --shard-count 4");
    CHECK(hpcz_batch_shard_parse("5/4", &index, &count, &err) == HPCZ_ERR_USAGE);
    CHECK_MSG(err, "'5/4' is not K/N with 1 <= K <= N");
    CHECK(hpcz_batch_shard_parse("1/2000000", &index, &count, &err) == HPCZ_ERR_USAGE);
    CHECK_MSG(err, "N is at most 1000000");
    CHECK(hpcz_batch_shard_parse("2", &index, &count, &err) == HPCZ_ERR_USAGE);
    /* calibration ranges that saw NaN/Inf */
    hpcz_calib_range cr[3] = {{.name = "a", .finite = 9}, {.name = "b", .nonfinite = 2, .finite = 7},
                              {.name = "c", .nonfinite = 9}};
    hpcz_calib_table ct = {.n = 3, .r = cr};
    const hpcz_calib_range *first, *empty;
    CHECK(hpcz_calib_table_nonfinite(&ct, &first, &empty) == 2 && first == &cr[1] && empty == &cr[2]);
    ct.n = 2;
    CHECK(hpcz_calib_table_nonfinite(&ct, &first, NULL) == 1 && first == &cr[1]);
    ct.n = 1;
    CHECK(hpcz_calib_table_nonfinite(&ct, &first, &empty) == 0 && !first && !empty);
    /* terminal text: escapes shown, UTF-8 kept, a sequence cut between two
     * writes completed by the second */
    hpcz_text_escape te = {0};
    char esc[128];
    size_t k = hpcz_text_escape_run(&te, "a\x1b[2Jb\t\xff\x7f", 9, esc);
    CHECK(k == 18 && !memcmp(esc, "a\\x1b[2Jb\t\\xff\\x7f", 18) && te.n_pend == 0);
    k = hpcz_text_escape_run(&te, "\xc3", 1, esc);
    CHECK(k == 0 && te.n_pend == 1);
    k += hpcz_text_escape_run(&te, "\xa9!", 2, esc + k);
    CHECK(k == 3 && !memcmp(esc, "\xc3\xa9!", 3));
    k = hpcz_text_escape_run(&te, "\xe2\x82", 2, esc);
    k += hpcz_text_escape_end(&te, esc + k);
    CHECK(k == 8 && !memcmp(esc, "\\xe2\\x82", 8) && te.n_pend == 0);
    /* a user's own OPENBLAS_CORETYPE: no re-exec, back at once */
    setenv("OPENBLAS_CORETYPE", "Haswell", 1);
    hpcz_runtime_pick_blas(NULL);
    passed++;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: test_cmdlib SOURCE_ROOT HPCZ_EXECUTABLE\n");
        return 2;
    }
    snprintf(root, sizeof root, "%s", argv[1]);
    snprintf(tmp, sizeof tmp, "%s", "/tmp/hpcz-test-cmdlib-XXXXXX");
    if (!mkdtemp(tmp))
        return 1;
    test_arrays();
    test_run();
    test_report();
    test_batch(argv[2]);
    test_names_files();
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0)
        failed++;
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

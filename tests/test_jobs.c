/*
 * test_jobs.c - the quantize, prune and calibrate jobs called as a program
 * linking libhpcz calls them: options, results checked against the models
 * they wrote, progress and notes through the hooks, cancellation.
 *   test_jobs SOURCE_ROOT
 */
#include "hpcz.h"
#include "check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[4096], tmp[4096];

static const char *path(const char *base, const char *rel)
{
    static char bufs[8][4096 + 256];
    static int k;
    char *b = bufs[k++ & 7];
    snprintf(b, sizeof bufs[0], "%s/%s", base, rel);
    return b;
}

/* What the hooks saw. */
typedef struct seen {
    size_t progress, notes, messages, warnings;
    size_t last_done, last_total;
    char stage[32];
    int backwards;       /* done went down within a stage */
    int cancel_at;       /* > 0: set cancel on this progress call */
    volatile int cancel;
} seen;

static void on_progress(void *user, const char *stage, size_t done, size_t total)
{
    seen *s = user;
    if (!strcmp(s->stage, stage) && done < s->last_done)
        s->backwards = 1;
    snprintf(s->stage, sizeof s->stage, "%s", stage);
    s->last_done = done;
    s->last_total = total;
    if (++s->progress == (size_t)s->cancel_at)
        s->cancel = 1;
}

static void on_log(void *user, const char *pass, const char *msg)
{
    (void)pass;
    (void)msg;
    ((seen *)user)->notes++;
}

static void on_message(void *user, int warning, const char *msg)
{
    (void)msg;
    seen *s = user;
    s->messages++;
    s->warnings += warning != 0;
}

static hpcz_job_hooks hooks(seen *s)
{
    return (hpcz_job_hooks){.log = on_log, .message = on_message, .progress = on_progress, .user = s,
                            .cancel = &s->cancel};
}

static size_t count_op(hpcz_model *m, const char *op)
{
    size_t n = 0;
    for (size_t i = 0; i < m->graph->n_nodes; i++)
        n += !strcmp(m->graph->nodes[i]->op_type, op);
    return n;
}

static uint64_t file_size(const char *p)
{
    struct stat st;
    return stat(p, &st) ? 0 : (uint64_t)st.st_size;
}

static void test_quantize_check(void)
{
    hpcz_quantize_opts o;
    hpcz_quantize_opts_init(&o);
    hpcz_error err = {0};
    CHECK(!strcmp(o.recipe.mode, "weight-only") && !strcmp(o.recipe.dtype, "int8") && o.recipe.fold == 1);
    CHECK(hpcz_quantize_check(&o, &err) == HPCZ_OK);
    o.recipe.dtype = "int3";
    CHECK(hpcz_quantize_check(&o, &err) == HPCZ_ERR_USAGE && strstr(err.msg, "--dtype"));
    o.recipe.dtype = "int8";
    o.recipe.mode = "static"; /* static needs calibration data */
    CHECK(hpcz_quantize_check(&o, &err) == HPCZ_ERR_USAGE && strstr(err.msg, "--calib"));
    o.calib = "random:4";
    o.calib_method = "median";
    CHECK(hpcz_quantize_check(&o, &err) == HPCZ_ERR_USAGE && !strncmp(err.msg, "--calib-method: ", 16));
    o.calib_method = NULL;
    o.passes = "fold-b";
    CHECK(hpcz_quantize_check(&o, &err) == HPCZ_ERR_USAGE && strstr(err.msg, "fold-bn"));
}

/* Static int8 with calibration on the digits CNN, written to a file, kept
 * original compared on the test data with a gate. */
static void test_quantize_static(void)
{
    hpcz_error err = {0};
    hpcz_model *m = hpcz_model_load(path(root, "samples/digits_cnn.onnx"), NULL, &err);
    CHECK(m != NULL);
    if (!m)
        return;
    seen s = {0};
    hpcz_quantize_opts o;
    hpcz_quantize_opts_init(&o);
    o.recipe.mode = "static";
    o.recipe.placement = "all"; /* the latency placement finds the digits CNN too small for int8 */
    o.calib = path(root, "samples/digits/calib");
    o.keep_original = 1;
    o.threads = 1;
    o.output = path(tmp, "q.onnx");
    o.hooks = hooks(&s);
    hpcz_quantize_result res;
    hpcz_status st = hpcz_quantize_run(&m, &o, &res, &err);
    CHECK(st == HPCZ_OK);
    if (st) {
        printf("  %s\n", err.msg);
        hpcz_quantize_result_release(&res);
        hpcz_model_free(m);
        return;
    }
    /* progress: the calibration batches, in order, ending at the total */
    CHECK(s.progress >= 1 && !s.backwards && !strcmp(s.stage, "calibrating") && s.last_done == s.last_total);
    CHECK(s.notes == res.n_notes && res.n_notes > 0);
    CHECK(res.table && res.table->samples == s.last_total && !res.table->random);
    CHECK(strstr(res.pipeline, "quantize-static") != NULL);
    /* what was written is what the result says */
    CHECK(res.out_bytes == file_size(o.output) && res.out_bytes > 0);
    CHECK(res.in_bytes == file_size(path(root, "samples/digits_cnn.onnx")));
    hpcz_model *w = hpcz_model_load(o.output, NULL, &err);
    CHECK(w && count_op(w, "QuantizeLinear") > 0 && count_op(w, "QuantizeLinear") == count_op(m, "QuantizeLinear"));
    hpcz_model_free(w);
    size_t conv_q = 0, conv_kept = 0;
    for (size_t i = 0; i < res.n_ops; i++)
        if (!strcmp(res.ops[i].op, "Conv")) {
            conv_q = res.ops[i].quantized;
            conv_kept = res.ops[i].kept;
        }
    CHECK(conv_q > 0 && conv_q + conv_kept == count_op(res.orig, "Conv"));
    CHECK(res.after.param_bytes < res.before.param_bytes / 2);
    /* the original is kept for a comparison: int8 stays close */
    CHECK(res.orig != NULL && count_op(res.orig, "QuantizeLinear") == 0);
    hpcz_compare_result *r = NULL;
    hpcz_compare_opts co = {.threads = 1};
    CHECK(hpcz_compare(res.orig, m, path(root, "samples/digits/test_input.npy"), &co, &r, &err) == HPCZ_OK);
    if (r) {
        hpcz_gate g;
        CHECK(hpcz_gate_parse(HPCZ_GATE_MIN_SQNR, "20", &g, &err) == HPCZ_OK);
        CHECK(hpcz_gates_hold(&g, 1, r) == 1);
        CHECK(r->outputs[0].top1_agreement > 0.95);
        hpcz_compare_result_free(r);
    }
    /* its JSON names what the result holds */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    hpcz_quantize_write_json(f, "digits_cnn.onnx", &o, &res);
    fclose(f);
    hpcz_jval *j = hpcz_json_parse(buf, len, &err);
    CHECK(j && !strcmp(hpcz_json_get(j, "schema")->s, "hpcz.quantize") &&
          hpcz_json_get(hpcz_json_get(j, "size"), "after")->num == (double)res.out_bytes &&
          hpcz_json_get(j, "notes")->n == res.n_notes);
    hpcz_json_free(j);
    free(buf);
    hpcz_quantize_result_release(&res);
    hpcz_model_free(m);
}

/* A cancel flag set by the first progress call: a distinct status, nothing written. */
static void test_quantize_cancel(void)
{
    hpcz_error err = {0};
    hpcz_model *m = hpcz_model_load(path(root, "samples/digits_cnn.onnx"), NULL, &err);
    seen s = {.cancel_at = 1};
    hpcz_quantize_opts o;
    hpcz_quantize_opts_init(&o);
    o.recipe.mode = "static";
    o.calib = path(root, "samples/digits/calib");
    o.output = path(tmp, "cancelled.onnx");
    o.hooks = hooks(&s);
    hpcz_quantize_result res;
    CHECK(hpcz_quantize_run(&m, &o, &res, &err) == HPCZ_ERR_CANCELLED);
    CHECK(s.cancel && s.progress >= 1);
    CHECK(access(o.output, F_OK) != 0);
    hpcz_quantize_result_release(&res);
    hpcz_model_free(m);
}

/* Errors name their file; data that do not fit are the caller's usage error. */
static void test_quantize_errors(void)
{
    hpcz_error err = {0};
    const char *model = path(root, "samples/digits_cnn.onnx");
    hpcz_model *m = hpcz_model_load(model, NULL, &err);
    hpcz_quantize_opts o;
    hpcz_quantize_opts_init(&o);
    o.recipe.mode = "static";
    o.calib_table = path(tmp, "missing.json");
    hpcz_quantize_result res;
    CHECK(hpcz_quantize_run(&m, &o, &res, &err) != HPCZ_OK && !strncmp(err.msg, o.calib_table, strlen(o.calib_table)));
    hpcz_quantize_result_release(&res);
    o.calib_table = NULL;
    o.calib = path(root, "samples/digits_mlp.onnx"); /* not data */
    CHECK(hpcz_quantize_run(&m, &o, &res, &err) != HPCZ_OK);
    hpcz_quantize_result_release(&res);
    o.calib = "random:0";
    CHECK(hpcz_quantize_run(&m, &o, &res, &err) == HPCZ_ERR_USAGE);
    hpcz_quantize_result_release(&res);
    hpcz_model_free(m);
    /* a quantized model is refused unless allowed */
    m = hpcz_model_load(model, NULL, &err);
    hpcz_quantize_opts_init(&o);
    CHECK(hpcz_quantize_run(&m, &o, &res, &err) == HPCZ_OK && res.n_ops > 0);
    hpcz_quantize_result_release(&res);
    CHECK(hpcz_quantize_run(&m, &o, &res, &err) == HPCZ_ERR_INVALID && strstr(err.msg, "already quantized") &&
          !strncmp(err.msg, model, strlen(model)));
    hpcz_quantize_result_release(&res);
    hpcz_model_free(m);
}

static void test_prune(void)
{
    hpcz_error err = {0};
    hpcz_model *m = hpcz_model_load(path(root, "samples/digits_mlp.onnx"), NULL, &err);
    hpcz_prune_opts o;
    hpcz_prune_opts_init(&o);
    CHECK(o.target_params == -1 && !strcmp(o.recipe.method, "magnitude") && o.recipe.sparsity == 0.5 &&
          o.recipe.fold == 0);
    o.recipe.sparsity = 0.75;
    o.output = path(tmp, "p.onnx");
    o.data = path(root, "samples/digits/test_input.npy");
    o.measure_delta = 1;
    seen s = {0};
    o.hooks = hooks(&s);
    hpcz_prune_result res;
    CHECK(hpcz_prune_run(m, &o, &res, &err) == HPCZ_OK);
    CHECK(res.n_layers >= 2 && strstr(res.pipeline, "prune-magnitude"));
    for (size_t i = 0; i < res.n_layers; i++) {
        double sp = (double)res.layers[i].zeros_after / (double)res.layers[i].numel_after;
        CHECK(fabs(sp - 0.75) < 0.01);
    }
    CHECK(res.after.params == res.before.params && res.after.zeros > res.before.zeros);
    CHECK(res.have_macs && res.macs_after.macs == res.macs_before.macs); /* zeros remove no MACs */
    CHECK(res.delta && res.delta->n_outputs == 1 && res.delta->outputs[0].sqnr_db < 100);
    CHECK(res.orig == NULL); /* not asked to keep it */
    hpcz_model *w = hpcz_model_load(o.output, NULL, &err);
    hpcz_model_summary sw = {0};
    CHECK(w && hpcz_model_summarize(w, &sw, &err) == HPCZ_OK && sw.zeros == res.after.zeros);
    hpcz_model_summary_release(&sw);
    hpcz_model_free(w);
    hpcz_prune_result_release(&res);
    hpcz_model_free(m);
}

/* A parameter budget: sensitivity measured with progress, each chosen layer
 * said as a note; cancelled inside the sensitivity run. */
static void test_prune_budget(void)
{
    hpcz_error err = {0};
    hpcz_model *m = hpcz_model_load(path(root, "samples/digits_mlp.onnx"), NULL, &err);
    hpcz_model_summary before;
    hpcz_model_summarize(m, &before, &err);
    hpcz_prune_opts o;
    hpcz_prune_opts_init(&o);
    o.calib = path(root, "samples/digits/calib");
    o.target_params = (int64_t)before.params / 2;
    seen s = {0};
    o.hooks = hooks(&s);
    hpcz_prune_result res;
    CHECK(hpcz_prune_run(m, &o, &res, &err) == HPCZ_OK);
    CHECK(s.progress > 0 && !strcmp(s.stage, "sensitivity") && s.last_done == s.last_total);
    CHECK(s.messages > 0 && s.warnings == 0);
    CHECK(res.after.params - (uint64_t)res.after.zeros <= (uint64_t)o.target_params);
    hpcz_prune_result_release(&res);
    hpcz_model_free(m);
    m = hpcz_model_load(path(root, "samples/digits_mlp.onnx"), NULL, &err);
    seen c = {.cancel_at = 1};
    o.hooks = hooks(&c);
    o.output = path(tmp, "cancelled.onnx");
    CHECK(hpcz_prune_run(m, &o, &res, &err) == HPCZ_ERR_CANCELLED);
    CHECK(access(o.output, F_OK) != 0);
    hpcz_prune_result_release(&res);
    hpcz_model_summary_release(&before);
    hpcz_model_free(m);
}

static void test_calibrate_model(void)
{
    hpcz_error err = {0};
    hpcz_model *m = hpcz_model_load(path(root, "samples/digits_cnn.onnx"), NULL, &err);
    hpcz_calib_opts co = {.bits = 8, .threads = 1};
    seen s = {0};
    hpcz_job_hooks h = hooks(&s);
    hpcz_calib_table *t = NULL;
    CHECK(hpcz_calibrate_model(m, "random:3", 0, &co, 1, &h, &t, &err) == HPCZ_OK);
    CHECK(t && t->random && t->samples == 3 && t->n > 0);
    CHECK(s.warnings == 1); /* random data: a proxy */
    CHECK(count_op(m, "BatchNormalization") == 0);
    hpcz_calib_table_free(t);
    hpcz_model_free(m);
}

/* --calib-mask's default as a library user gets it: an input named
 * attention_mask, "none", or a name that must be an input; the jobs resolve
 * their calib_mask the same way. */
static void test_calib_mask(void)
{
    hpcz_error err = {0};
    hpcz_model *m = hpcz_model_load(path(root, "samples/digits_cnn.onnx"), NULL, &err);
    const char *mask = "unset", *x = m->graph->inputs[0]->name;
    CHECK(hpcz_calib_mask_resolve(m, NULL, &mask, &err) == HPCZ_OK && !mask);
    CHECK(hpcz_calib_mask_resolve(m, x, &mask, &err) == HPCZ_OK && mask && !strcmp(mask, x));
    CHECK(hpcz_calib_mask_resolve(m, "mask", &mask, &err) == HPCZ_ERR_USAGE && !mask &&
          !strcmp(err.msg, "the model has no input 'mask' (none: no mask)"));
    hpcz_value *v = hpcz_graph_value(m->graph, "attention_mask");
    v->is_input = 1;
    v->dtype = HPCZ_DTYPE_INT64;
    CHECK(hpcz_graph_add_input(m->graph, v, &err) == HPCZ_OK);
    CHECK(hpcz_calib_mask_resolve(m, NULL, &mask, &err) == HPCZ_OK && mask && !strcmp(mask, "attention_mask"));
    CHECK(hpcz_calib_mask_resolve(m, "none", &mask, &err) == HPCZ_OK && !mask);
    hpcz_model_free(m);

    m = hpcz_model_load(path(root, "samples/digits_cnn.onnx"), NULL, &err);
    hpcz_quantize_opts q;
    hpcz_quantize_opts_init(&q);
    q.calib = "random:2";
    q.calib_mask = "mask";
    hpcz_quantize_result qres;
    CHECK(hpcz_quantize_run(&m, &q, &qres, &err) == HPCZ_ERR_USAGE &&
          !strcmp(err.msg, "--calib-mask: the model has no input 'mask' (none: no mask)"));
    hpcz_quantize_result_release(&qres);
    hpcz_prune_opts p;
    hpcz_prune_opts_init(&p);
    p.calib = "random:2";
    p.calib_mask = "mask";
    hpcz_prune_result pres;
    CHECK(hpcz_prune_run(m, &p, &pres, &err) == HPCZ_ERR_USAGE && strstr(err.msg, "no input 'mask'"));
    hpcz_prune_result_release(&pres);
    hpcz_model_free(m);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    snprintf(root, sizeof root, "%s", argc > 1 ? argv[1] : ".");
    snprintf(tmp, sizeof tmp, "%s/hpcz-test-jobs.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    test_quantize_check();
    test_quantize_static();
    test_quantize_cancel();
    test_quantize_errors();
    test_prune();
    test_prune_budget();
    test_calibrate_model();
    test_calib_mask();
    const char *files[] = {"q.onnx", "p.onnx", "cancelled.onnx"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        unlink(path(tmp, files[i]));
    rmdir(tmp);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}

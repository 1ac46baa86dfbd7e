/*
 * test_samples.c - the committed samples through the runtime:
 *  - digits_cnn on digits/test_data_set_0 against torch's logits;
 *  - both digits models on the whole test split: the accuracies of
 *    digits/accuracy.json;
 *  - every samples/patterns model and case against its expected outputs;
 *  - every one of them again with 1 and 2 threads: identical bytes;
 *  - the observer sees every node output once per run (its run, unfused,
 *    also within the tolerance).
 * Tolerance: |a - b| <= 1e-5 + 1e-4 |b|.
 *
 * Usage: test_samples SAMPLES_DIR
 */
#include "hpcz.h"

#include <dirent.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int failures, checks;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        checks++;                                                                                  \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            printf("FAIL: ");                                                                      \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
        }                                                                                          \
    } while (0)

static bool exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static bool close_enough(const hpcz_array *got, const hpcz_array *want, char *why, size_t cap)
{
    char g[160], w[160];
    if (got->dtype != want->dtype || got->ndim != want->ndim ||
        memcmp(got->dims, want->dims, (size_t)got->ndim * sizeof got->dims[0])) {
        hpcz_array_describe(got, g, sizeof g);
        hpcz_array_describe(want, w, sizeof w);
        snprintf(why, cap, "got %s, expected %s", g, w);
        return false;
    }
    if (got->dtype != HPCZ_DTYPE_FLOAT) {
        if (memcmp(got->data, want->data, got->nbytes)) {
            snprintf(why, cap, "values differ");
            return false;
        }
        return true;
    }
    const float *a = got->data, *b = want->data;
    for (int64_t i = 0; i < got->numel; i++)
        if (!(fabsf(a[i] - b[i]) <= 1e-5f + 1e-4f * fabsf(b[i]))) {
            snprintf(why, cap, "element %lld: got %.8g, expected %.8g", (long long)i, a[i], b[i]);
            return false;
        }
    return true;
}

typedef struct obs_count {
    size_t calls;
} obs_count;

static void observer(void *ctx, const hpcz_node *node, const char *name, const hpcz_array *a)
{
    (void)node;
    (void)name;
    (void)a;
    ((obs_count *)ctx)->calls++;
}

/* Runs m on ins with `threads`; outs receive the results. */
static bool run_model(hpcz_model *m, int threads, const hpcz_array *ins, hpcz_array *outs,
                      obs_count *obs, char *why, size_t cap)
{
    hpcz_error err = {0};
    hpcz_plan_opts po = {.threads = threads};
    if (obs) {
        po.observer = observer;
        po.observer_ctx = obs;
    }
    hpcz_plan *p = hpcz_plan_new(m, &po, &err);
    if (!p) {
        snprintf(why, cap, "plan: %.400s", err.msg);
        return false;
    }
    bool ok = hpcz_plan_run(p, ins, outs, &err) == HPCZ_OK;
    /* a second run on the same plan must give the same result */
    if (ok) {
        hpcz_array again[16];
        memset(again, 0, sizeof again);
        size_t no = hpcz_plan_n_outputs(p);
        ok = no <= 16 && hpcz_plan_run(p, ins, again, &err) == HPCZ_OK;
        for (size_t i = 0; ok && i < no; i++)
            ok = again[i].nbytes == outs[i].nbytes &&
                 !memcmp(again[i].data, outs[i].data, outs[i].nbytes);
        for (size_t i = 0; i < 16; i++)
            hpcz_array_release(&again[i]);
        if (!ok && !err.msg[0])
            snprintf(err.msg, sizeof err.msg, "second run differs");
    }
    if (!ok)
        snprintf(why, cap, "run: %.400s", err.msg);
    hpcz_plan_free(p);
    return ok;
}

/* Runs with 1 and 2 threads, compares the two bit for bit and with want. */
static void check_model(const char *label, hpcz_model *m, const hpcz_array *ins,
                        const hpcz_array *want, size_t n_out)
{
    hpcz_array o1[16], o2[16], o3[16];
    memset(o1, 0, sizeof o1);
    memset(o2, 0, sizeof o2);
    memset(o3, 0, sizeof o3);
    char why[512] = "";
    obs_count obs = {0};
    bool ok = n_out <= 16 && run_model(m, 1, ins, o1, NULL, why, sizeof why);
    CHECK(ok, "%s: %s", label, why);
    /* under an observer nothing is fused (a BatchNormalization folded into
     * its Conv gives other bits): close to the expected values, not equal */
    bool ok3 = ok && run_model(m, 1, ins, o3, &obs, why, sizeof why);
    CHECK(ok3, "%s (observer): %s", label, why);
    for (size_t i = 0; ok3 && want && i < n_out; i++) {
        bool good = close_enough(&o3[i], &want[i], why, sizeof why);
        CHECK(good, "%s (observer): output %zu: %s", label, i, why);
    }
    if (ok) {
        ok = run_model(m, 2, ins, o2, NULL, why, sizeof why);
        CHECK(ok, "%s (2 threads): %s", label, why);
        for (size_t i = 0; ok && i < n_out; i++) {
            CHECK(o1[i].nbytes == o2[i].nbytes && !memcmp(o1[i].data, o2[i].data, o1[i].nbytes),
                  "%s: output %zu differs between 1 and 2 threads", label, i);
            if (want) {
                bool good = close_enough(&o1[i], &want[i], why, sizeof why);
                CHECK(good, "%s: output %zu: %s", label, i, why);
            }
        }
        CHECK(obs.calls >= n_out, "%s: observer called %zu times", label, obs.calls);
        printf("%s %s (observer saw %zu tensors)\n", ok ? "ok  " : "FAIL", label, obs.calls);
    }
    for (size_t i = 0; i < 16; i++) {
        hpcz_array_release(&o1[i]);
        hpcz_array_release(&o2[i]);
        hpcz_array_release(&o3[i]);
    }
}

static bool load_pb(const char *path, hpcz_array *a)
{
    hpcz_error err = {0};
    hpcz_tensor *t = hpcz_tensorproto_load(path, &err);
    if (!t)
        return false;
    bool ok = hpcz_array_from_tensor(t, a, &err) == HPCZ_OK;
    hpcz_model_free(t->model);
    return ok;
}

static int64_t accuracy_field(const char *dir, const char *model)
{
    /* digits/accuracy.json: {"digits_cnn": {"correct": N, ...}, ...} */
    char path[4096];
    snprintf(path, sizeof path, "%s/digits/accuracy.json", dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char key[64];
    snprintf(key, sizeof key, "\"%s\"", model);
    const char *p = strstr(buf, key);
    if (!p || !(p = strstr(p, "\"correct\"")))
        return -1;
    p = strchr(p, ':');
    return p ? strtoll(p + 1, NULL, 10) : -1;
}

static void check_digits(const char *dir)
{
    const char *models[] = {"digits_cnn", "digits_mlp"};
    hpcz_error err = {0};
    char path[4096];
    hpcz_array x = {0}, labels = {0};
    snprintf(path, sizeof path, "%s/digits/test_input.npy", dir);
    CHECK(hpcz_npy_load(path, &x, &err) == HPCZ_OK, "%s: %s", path, err.msg);
    snprintf(path, sizeof path, "%s/digits/test_labels.npy", dir);
    CHECK(hpcz_npy_load(path, &labels, &err) == HPCZ_OK, "%s: %s", path, err.msg);
    for (size_t k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s/%s.onnx", dir, models[k]);
        hpcz_model *m = hpcz_onnx_load(path, NULL, &err);
        CHECK(m != NULL, "%s: %s", path, err.msg);
        if (!m)
            continue;
        if (k == 0) {
            hpcz_array in = {0}, want = {0};
            snprintf(path, sizeof path, "%s/digits/test_data_set_0/input_0.pb", dir);
            bool a = load_pb(path, &in);
            snprintf(path, sizeof path, "%s/digits/test_data_set_0/output_0.pb", dir);
            bool b = load_pb(path, &want);
            CHECK(a && b, "digits test_data_set_0 unreadable");
            if (a && b)
                check_model("digits_cnn test_data_set_0", m, &in, &want, 1);
            hpcz_array_release(&in);
            hpcz_array_release(&want);
        }
        if (x.data && labels.data) {
            hpcz_array out = {0};
            char why[512] = "";
            bool ok = run_model(m, 0, &x, &out, NULL, why, sizeof why);
            CHECK(ok, "%s on the test split: %s", models[k], why);
            if (ok && out.ndim == 2 && out.dims[1] == 10 && out.dims[0] == labels.numel) {
                int64_t correct = 0;
                const float *l = out.data;
                for (int64_t i = 0; i < out.dims[0]; i++) {
                    int best = 0;
                    for (int j = 1; j < 10; j++)
                        if (l[i * 10 + j] > l[i * 10 + best])
                            best = j;
                    correct += best == ((const int64_t *)labels.data)[i];
                }
                int64_t want = accuracy_field(dir, models[k]);
                CHECK(want < 0 || correct == want, "%s: %lld correct, accuracy.json says %lld",
                      models[k], (long long)correct, (long long)want);
                printf("ok   %s accuracy %lld/%lld\n", models[k], (long long)correct,
                       (long long)out.dims[0]);
            }
            hpcz_array_release(&out);
        }
        hpcz_model_free(m);
    }
    hpcz_array_release(&x);
    hpcz_array_release(&labels);
}

/* patterns/<model>.onnx with <model>.input_<name>[_<case>].npy and
 * <model>.output_<name>[_<case>].npy */
static void check_patterns(const char *dir)
{
    char pdir[4096];
    snprintf(pdir, sizeof pdir, "%s/patterns", dir);
    DIR *d = opendir(pdir);
    CHECK(d != NULL, "%s missing", pdir);
    if (!d)
        return;
    struct dirent *de;
    char *names[256];
    size_t nn = 0;
    while ((de = readdir(d)) && nn < 256) {
        size_t l = strlen(de->d_name);
        if (l > 5 && !strcmp(de->d_name + l - 5, ".onnx"))
            names[nn++] = strndup(de->d_name, l - 5);
    }
    closedir(d);
    size_t models_checked = 0;
    for (size_t k = 0; k < nn; k++) {
        char path[8192];
        hpcz_error err = {0};
        snprintf(path, sizeof path, "%s/%s.onnx", pdir, names[k]);
        hpcz_model *m = hpcz_onnx_load(path, NULL, &err);
        CHECK(m != NULL, "%s: %s", path, err.msg);
        hpcz_plan *p = m ? hpcz_plan_new(m, NULL, &err) : NULL;
        CHECK(!m || p, "%s: %s", names[k], err.msg);
        if (!p) {
            hpcz_model_free(m);
            free(names[k]);
            continue;
        }
        /* cases: suffixes of the first output's files */
        const char *out0 = hpcz_plan_output(p, 0)->name;
        char prefix[2048];
        snprintf(prefix, sizeof prefix, "%s.output_%s", names[k], out0);
        char *cases[32];
        size_t nc = 0;
        d = opendir(pdir);
        while (d && (de = readdir(d)) && nc < 32) {
            size_t pl = strlen(prefix), l = strlen(de->d_name);
            if (strncmp(de->d_name, prefix, pl) || l < pl + 4 || strcmp(de->d_name + l - 4, ".npy"))
                continue;
            if (l == pl + 4)
                cases[nc++] = strdup("");
            else if (de->d_name[pl] == '_')
                cases[nc++] = strndup(de->d_name + pl, l - pl - 4); /* "_true" */
        }
        if (d)
            closedir(d);
        CHECK(nc > 0, "%s: no expected outputs", names[k]);
        size_t ni = hpcz_plan_n_inputs(p), no = hpcz_plan_n_outputs(p);
        for (size_t ci = 0; ci < nc; ci++) {
            hpcz_array ins[16], want[16];
            memset(ins, 0, sizeof ins);
            memset(want, 0, sizeof want);
            bool ok = ni <= 16 && no <= 16;
            for (size_t i = 0; ok && i < ni; i++) {
                const char *in = hpcz_plan_input(p, i)->name;
                snprintf(path, sizeof path, "%s/%s.input_%s%s.npy", pdir, names[k], in, cases[ci]);
                if (!exists(path))
                    snprintf(path, sizeof path, "%s/%s.input_%s.npy", pdir, names[k], in);
                ok = hpcz_npy_load(path, &ins[i], &err) == HPCZ_OK;
                CHECK(ok, "%s: %s", path, err.msg);
                if (ok) {
                    ok = hpcz_plan_check_input(p, i, &ins[i], &err) == HPCZ_OK;
                    CHECK(ok, "%s: %s", names[k], err.msg);
                }
            }
            for (size_t i = 0; ok && i < no; i++) {
                snprintf(path, sizeof path, "%s/%s.output_%s%s.npy", pdir, names[k],
                         hpcz_plan_output(p, i)->name, cases[ci]);
                ok = hpcz_npy_load(path, &want[i], &err) == HPCZ_OK;
                CHECK(ok, "%s: %s", path, err.msg);
            }
            if (ok) {
                char label[512];
                snprintf(label, sizeof label, "patterns/%s%s", names[k], cases[ci]);
                check_model(label, m, ins, want, no);
            }
            for (size_t i = 0; i < 16; i++) {
                hpcz_array_release(&ins[i]);
                hpcz_array_release(&want[i]);
            }
            free(cases[ci]);
        }
        models_checked++;
        hpcz_plan_free(p);
        hpcz_model_free(m);
        free(names[k]);
    }
    CHECK(models_checked >= 5, "only %zu pattern models found", models_checked);
}

/* y of if_subgraph.onnx computed here: x W + b (then), Relu(x) * 2 (else). */
static void if_reference(const float *x, int64_t rows, const float *w, const float *b, bool take,
                         float *y)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < 16; j++) {
            float acc = b[j];
            for (int64_t k = 0; k < 16; k++)
                acc += x[r * 16 + k] * w[k * 16 + j];
            y[r * 16 + j] = take ? acc : (x[r * 16 + j] > 0 ? x[r * 16 + j] * 2 : 0);
        }
}

/* One plan of if_subgraph.onnx with x's rows made symbolic, run with 2, 3
 * and 2 rows again and both branches: each new shape re-plans the main
 * graph, which must drop the bodies planned for the old one (they are
 * planned with static shapes); then under weights_change, W changed in
 * place between runs. */
static void check_if_replan(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/patterns/if_subgraph.onnx", dir);
    hpcz_error err = {0};
    hpcz_model *m = hpcz_onnx_load(path, NULL, &err);
    CHECK(m != NULL, "%s: %s", path, err.msg);
    if (!m)
        return;
    hpcz_value *xv = NULL;
    for (size_t i = 0; i < m->graph->n_inputs; i++)
        if (!strcmp(m->graph->inputs[i]->name, "x"))
            xv = m->graph->inputs[i];
    float *w = NULL, *b = NULL;
    for (size_t i = 0; i < m->graph->n_inits; i++) {
        hpcz_tensor *t = m->graph->inits[i];
        if (!strcmp(t->name, "W"))
            w = hpcz_tensor_data(t, &err);
        else if (!strcmp(t->name, "b"))
            b = hpcz_tensor_data(t, &err);
    }
    CHECK(xv && xv->ndim == 2 && w && b, "if_subgraph: x, W or b missing");
    if (!xv || xv->ndim != 2 || !w || !b) {
        hpcz_model_free(m);
        return;
    }
    xv->dims[0].size = -1;
    float xs[3 * 16], want[3 * 16];
    for (int i = 0; i < 3 * 16; i++)
        xs[i] = (float)((i * 37) % 23 - 11) / 7.0f;
    for (int wc = 0; wc < 2; wc++) {
        hpcz_plan_opts po = {.threads = 2, .weights_change = wc};
        hpcz_plan *p = hpcz_plan_new(m, &po, &err);
        CHECK(p != NULL, "if_subgraph: %s", err.msg);
        if (!p)
            break;
        static const int64_t rows[] = {2, 3, 2, 3, 2};
        static const bool take[] = {true, true, true, false, true};
        for (int r = 0; r < 5; r++) {
            uint8_t cond = take[r];
            if (wc && r == 4)
                for (int i = 0; i < 16 * 16; i++)
                    w[i] *= -2.0f; /* the caller changes W between runs */
            hpcz_array ins[2] = {{.dtype = HPCZ_DTYPE_FLOAT, .ndim = 2, .dims = {rows[r], 16},
                                  .numel = rows[r] * 16, .nbytes = (size_t)rows[r] * 64, .data = xs},
                                 {.dtype = HPCZ_DTYPE_BOOL, .numel = 1, .nbytes = 1, .data = &cond}};
            if (hpcz_plan_input_index(p, "x") != 0) {
                hpcz_array t = ins[0];
                ins[0] = ins[1];
                ins[1] = t;
            }
            hpcz_array y = {0};
            bool ok = hpcz_plan_run(p, ins, &y, &err) == HPCZ_OK;
            CHECK(ok, "if_subgraph run %d: %s", r, err.msg);
            if (!ok)
                break;
            if_reference(xs, rows[r], w, b, take[r], want);
            hpcz_array ref = {.dtype = HPCZ_DTYPE_FLOAT, .ndim = 2, .dims = {rows[r], 16},
                              .numel = rows[r] * 16, .nbytes = (size_t)rows[r] * 64, .data = want};
            char why[256] = "";
            CHECK(close_enough(&y, &ref, why, sizeof why),
                  "if_subgraph%s run %d (%lld rows, %s branch): %s", wc ? " (weights_change)" : "",
                  r, (long long)rows[r], take[r] ? "then" : "else", why);
            hpcz_array_release(&y);
        }
        hpcz_plan_free(p);
    }
    printf("ok   if_subgraph re-planned with new shapes, and with weights_change\n");
    hpcz_model_free(m);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_samples SAMPLES_DIR\n");
        return 2;
    }
    check_digits(argv[1]);
    check_patterns(argv[1]);
    check_if_replan(argv[1]);
    printf("%d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}

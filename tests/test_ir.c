/*
 * test_ir.c - the IR API that passes use (build, rewire, sweep, toposort,
 * verify) and external data save/load, on models built in the test.
 */
#include "hpcz.h"
#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static hpcz_value *input(hpcz_graph *g, const char *name, int dtype, int64_t n)
{
    hpcz_value *v = hpcz_graph_value(g, name);
    v->is_input = 1;
    v->dtype = dtype;
    v->ndim = 1;
    v->dims = hpcz_model_alloc(g->model, sizeof *v->dims);
    v->dims[0].size = n;
    hpcz_error err;
    hpcz_graph_add_input(g, v, &err);
    return v;
}

/* y = Relu(x + w) with w an initializer of n floats 0..n-1 */
static hpcz_model *small_model(int64_t n)
{
    hpcz_model *m = hpcz_model_new();
    hpcz_graph *g = m->graph;
    hpcz_value *x = input(g, "x", HPCZ_DTYPE_FLOAT, n);
    hpcz_tensor *w = hpcz_tensor_new(m, "w", HPCZ_DTYPE_FLOAT, 1, &n);
    float *wd = hpcz_tensor_alloc(w);
    for (int64_t i = 0; i < n; i++)
        wd[i] = (float)i;
    hpcz_error err;
    hpcz_graph_add_initializer(g, w, &err);
    hpcz_node *add = hpcz_graph_add_node(g, "Add", "add", 2, 1);
    add->inputs[0] = x;
    add->inputs[1] = hpcz_graph_find_value(g, "w");
    hpcz_node_set_output(add, 0, hpcz_graph_value(g, "s"));
    hpcz_node *relu = hpcz_graph_add_node(g, "Relu", "relu", 1, 1);
    relu->inputs[0] = add->outputs[0];
    hpcz_node_set_output(relu, 0, hpcz_graph_value(g, "y"));
    relu->outputs[0]->dtype = HPCZ_DTYPE_FLOAT;
    hpcz_graph_add_output(g, relu->outputs[0], &err);
    return m;
}

static void test_build_and_rewire(void)
{
    hpcz_model *m = small_model(8);
    hpcz_error err = {0};
    CHECK(hpcz_model_verify(m, &err) == HPCZ_OK);
    hpcz_graph *g = m->graph;
    /* out of order: toposort restores producer-before-consumer */
    hpcz_node *t = g->nodes[0];
    g->nodes[0] = g->nodes[1];
    g->nodes[1] = t;
    CHECK(hpcz_graph_toposort(g, &err) == HPCZ_OK);
    CHECK(!strcmp(g->nodes[0]->op_type, "Add") && !strcmp(g->nodes[1]->op_type, "Relu"));
    /* bypass Relu: rewire its output's uses to its input, then sweep it */
    hpcz_node *relu = g->nodes[1];
    size_t n = hpcz_graph_replace_uses(g, relu->outputs[0], relu->inputs[0]);
    CHECK(n == 1 && g->outputs[0] == relu->inputs[0]);
    relu->aux = -1;
    hpcz_graph_sweep(g);
    CHECK(g->n_nodes == 1);
    CHECK(hpcz_graph_count_uses(g, hpcz_graph_find_value(g, "x")) == 1);
    CHECK(hpcz_model_verify(m, &err) == HPCZ_OK);
    /* an input nobody defines is caught, with the node named */
    hpcz_node *bad = hpcz_graph_add_node(g, "Neg", "neg", 1, 1);
    bad->inputs[0] = hpcz_graph_value(g, "ghost");
    hpcz_node_set_output(bad, 0, hpcz_graph_value(g, "z"));
    CHECK(hpcz_model_verify(m, &err) == HPCZ_ERR_INVALID);
    CHECK(strstr(err.msg, "'ghost' is not defined") != NULL);
    /* a cycle is caught */
    bad->inputs[0] = bad->outputs[0];
    CHECK(hpcz_model_verify(m, &err) == HPCZ_ERR_INVALID && strstr(err.msg, "cycle"));
    hpcz_model_free(m);
}

static void test_attrs_and_opsets(void)
{
    hpcz_model *m = small_model(4);
    CHECK(hpcz_model_opset(m, NULL) == 21 && hpcz_model_opset(m, "ai.onnx") == 21);
    CHECK(hpcz_model_opset(m, "com.microsoft") == 0);
    hpcz_node *n = m->graph->nodes[0];
    CHECK(hpcz_node_attr_int(n, "axis", -7) == -7);
    CHECK(hpcz_dtype_nbytes(HPCZ_DTYPE_INT4, 5) == 3);
    CHECK(hpcz_dtype_nbytes(HPCZ_DTYPE_FLOAT16, 3) == 6);
    CHECK(!strcmp(hpcz_dtype_name(HPCZ_DTYPE_BFLOAT16), "bfloat16"));
    CHECK(!strcmp(hpcz_dtype_name(99), "dtype99"));
    hpcz_model_free(m);
}

static void test_serialize_new_model(void)
{
    hpcz_model *m = small_model(16);
    hpcz_error err = {0};
    uint8_t *buf;
    size_t len;
    CHECK(hpcz_onnx_serialize(m, NULL, &buf, &len, &err) == HPCZ_OK);
    hpcz_model *m2 = hpcz_onnx_load_buffer(buf, len, NULL, &err);
    CHECK(m2 != NULL);
    if (m2) {
        CHECK(m2->graph->n_nodes == 2 && m2->graph->n_inits == 1);
        float *w = hpcz_tensor_data(m2->graph->inits[0], &err);
        CHECK(w && w[15] == 15.0f);
        CHECK(hpcz_model_opset(m2, "") == 21);
        CHECK(m2->graph->inputs[0]->dims[0].size == 16);
        hpcz_model_free(m2);
    }
    free(buf);
    hpcz_model_free(m);
}

static void test_external_data(void)
{
    char dir[] = "/tmp/hpcz-test-ir-XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(!"mkdtemp");
        return;
    }
    char path[512], data[512], path2[512];
    snprintf(path, sizeof path, "%s/m.onnx", dir);
    snprintf(data, sizeof data, "%s/m.onnx.data", dir);
    snprintf(path2, sizeof path2, "%s/inline.onnx", dir);
    hpcz_model *m = small_model(1000);
    hpcz_error err = {0};
    hpcz_save_opts so = {.external = 1, .external_threshold = 1024};
    CHECK(hpcz_onnx_save(m, path, &so, &err) == HPCZ_OK);
    struct stat st;
    CHECK(stat(data, &st) == 0 && st.st_size == 4000);
    hpcz_model *m2 = hpcz_onnx_load(path, NULL, &err);
    CHECK(m2 != NULL);
    if (m2) {
        hpcz_tensor *w = m2->graph->inits[0];
        CHECK(w->external);
        float *wd = hpcz_tensor_data(w, &err);
        CHECK(wd && wd[999] == 999.0f);
        /* external -> inline: same model as serializing the original */
        CHECK(hpcz_onnx_save(m2, path2, NULL, &err) == HPCZ_OK);
        uint8_t *a, *b, *ca, *cb;
        size_t al, bl, cal, cbl;
        CHECK(hpcz_onnx_serialize(m, NULL, &a, &al, &err) == HPCZ_OK);
        CHECK(hpcz_file_read(path2, 1 << 20, &b, &bl, &err) == HPCZ_OK);
        CHECK(hpcz_onnx_canonicalize(a, al, &ca, &cal, &err) == HPCZ_OK);
        CHECK(hpcz_onnx_canonicalize(b, bl, &cb, &cbl, &err) == HPCZ_OK);
        CHECK(cal == cbl && memcmp(ca, cb, cal) == 0);
        free(a);
        free(b);
        free(ca);
        free(cb);
        hpcz_model_free(m2);
    }
    /* a data file shorter than the tensor claims is an error, not a read past the end */
    CHECK(truncate(data, 100) == 0);
    hpcz_model *m3 = hpcz_onnx_load(path, NULL, &err);
    CHECK(m3 == NULL && strstr(err.msg, "past the end"));
    hpcz_model_free(m3);
    unlink(path);
    unlink(data);
    unlink(path2);
    rmdir(dir);
    hpcz_model_free(m);
}

int main(void)
{
    test_build_and_rewire();
    test_attrs_and_opsets();
    test_serialize_new_model();
    test_external_data();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

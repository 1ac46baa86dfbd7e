/*
 * test_plan_scale.c - planning stays near-linear in the node count.
 *
 * Placing the arena compared every buffer with every placed one: a 200k-node
 * chain took 18 s to plan, a 80k-node chain with an initializer per node 10 s.
 * Bounds here are generous (debug + sanitizer builds) and in CPU time, not
 * wall time, so a loaded machine does not break them: the quadratic planner
 * took minutes on these graphs. The chain is also planned at a quarter of its
 * length: 4x the nodes must cost less than 8x the time (quadratic: 16x). Also checked: the results
 * of a run, the arena size (the greedy placement is unchanged), a graph with
 * thousands of outputs alive together (the bounded fallback, whose placement
 * debug builds verify), shapes-only plans, and run time per node.
 */
#include "hpcz.h"
#include "../check.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WIDTH 16

/* CPU time of this process (plans here run on one thread) */
static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void set_shape(hpcz_model *m, hpcz_value *v)
{
    v->dtype = HPCZ_DTYPE_FLOAT;
    v->ndim = 2;
    v->dims = hpcz_model_alloc(m, 2 * sizeof *v->dims);
    v->dims[0].size = 1;
    v->dims[1].size = WIDTH;
}

/* x -> n nodes alternating Relu(t) and Add(t, c) (c a shared initializer
 * of 0.5) -> y; every `every`-th value is also a graph output (0: none). */
static hpcz_model *chain(size_t n, size_t every)
{
    hpcz_model *m = hpcz_model_new();
    hpcz_graph *g = m->graph;
    hpcz_error err;
    hpcz_value *x = hpcz_graph_value(g, "x");
    set_shape(m, x);
    hpcz_graph_add_input(g, x, &err);
    int64_t w = WIDTH;
    hpcz_tensor *c = hpcz_tensor_new(m, "c", HPCZ_DTYPE_FLOAT, 1, &w);
    float *cd = hpcz_tensor_alloc(c);
    for (int i = 0; i < WIDTH; i++)
        cd[i] = 0.5f;
    hpcz_graph_add_initializer(g, c, &err);
    hpcz_value *prev = x, *cv = hpcz_graph_find_value(g, "c");
    for (size_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "t%zu", i);
        bool add = i % 2;
        /* unnamed nodes: add_node's uniqueness check is for passes */
        hpcz_node *nd = hpcz_graph_add_node(g, add ? "Add" : "Relu", NULL, add ? 2 : 1, 1);
        nd->inputs[0] = prev;
        if (add)
            nd->inputs[1] = cv;
        hpcz_value *v = hpcz_graph_value(g, name);
        hpcz_node_set_output(nd, 0, v);
        prev = v;
        if ((every && i % every == 0) || i + 1 == n) {
            set_shape(m, v);
            hpcz_graph_add_output(g, v, &err);
        }
    }
    return m;
}

/* Plans (and runs once) a chain; returns the plan time in seconds. */
static double plan_chain(size_t n, size_t every, double bound, const char *what)
{
    hpcz_model *m = chain(n, every);
    hpcz_error err = {0};
    hpcz_plan_opts o = {0};
    o.threads = 1;
    double t0 = now();
    hpcz_plan *p = hpcz_plan_new(m, &o, &err);
    double t = now() - t0;
    CHECK(p != NULL);
    if (!p) {
        printf("  %s: %s\n", what, err.msg);
        hpcz_model_free(m);
        return t;
    }
    hpcz_plan_stats st;
    hpcz_plan_get_stats(p, &st);
    size_t n_out = hpcz_plan_n_outputs(p);
    printf("  %-34s %7zu nodes, %5zu outputs: plan %.3f s CPU (bound %.0f s), arena %llu B\n", what, n,
           n_out, t, bound, (unsigned long long)st.arena_bytes);
    CHECK(t < bound);
    /* Relu and Add(., 0.5) over a chain: two buffers of 64 B alive at a
     * time, plus one per graph output */
    CHECK(st.arena_bytes <= (uint64_t)(n_out + 2) * 64);
    hpcz_array in = {0}, *out = calloc(n_out, sizeof *out);
    int64_t d[2] = {1, WIDTH};
    CHECK(hpcz_array_alloc(&in, HPCZ_DTYPE_FLOAT, 2, d, &err) == HPCZ_OK);
    for (int i = 0; i < WIDTH; i++)
        ((float *)in.data)[i] = (float)(i - 8);
    double r0 = now();
    hpcz_status rs = hpcz_plan_run(p, &in, out, &err);
    double rt = now() - r0;
    CHECK(rs == HPCZ_OK);
    if (rs == HPCZ_OK) {
        /* the last output: Relu then n/2 times +0.5 */
        const float *y = out[n_out - 1].data;
        bool ok = true;
        for (int i = 0; i < WIDTH; i++)
            ok &= fabsf(y[i] - (fmaxf((float)(i - 8), 0.0f) + 0.5f * (float)(n / 2))) < 1e-3f;
        CHECK(ok);
        printf("  %-34s run %.2f us per node (first run)\n", "", rt / (double)n * 1e6);
    }
    for (size_t k = 0; k < n_out; k++)
        hpcz_array_release(&out[k]);
    free(out);
    hpcz_array_release(&in);
    hpcz_plan_free(p);
    hpcz_model_free(m);
    return t;
}

/* A shapes-only plan of the same chain: shapes of every node, no run. */
static void shapes_only(void)
{
    hpcz_model *m = chain(1000, 0);
    hpcz_error err = {0};
    hpcz_plan_opts o = {0};
    o.threads = 1;
    o.shapes_only = 1;
    hpcz_plan *p = hpcz_plan_new(m, &o, &err);
    CHECK(p != NULL);
    if (p) {
        hpcz_plan_stats st;
        hpcz_plan_get_stats(p, &st);
        CHECK(st.arena_bytes == 0);
        const hpcz_array *y = hpcz_plan_node_output(p, hpcz_plan_n_nodes(p) - 1, 0);
        CHECK(y && y->ndim == 2 && y->dims[1] == WIDTH && !y->data);
        hpcz_array in = {0}, out = {0};
        int64_t d[2] = {1, WIDTH};
        hpcz_array_alloc(&in, HPCZ_DTYPE_FLOAT, 2, d, &err);
        CHECK(hpcz_plan_run(p, &in, &out, &err) == HPCZ_ERR_USAGE);
        hpcz_array_release(&in);
        hpcz_plan_free(p);
    }
    hpcz_model_free(m);
}

int main(void)
{
    double quarter = plan_chain(25000, 0, 5.0, "chain, a quarter as long");
    double whole = plan_chain(100000, 0, 5.0, "chain");
    printf("  4x the nodes: %.1fx the plan time (bound 8x)\n", whole / quarter);
    CHECK(whole < 8 * quarter + 0.05);
    /* 2000 outputs alive together: past the placement's work budget, the
     * long-lived buffers go in a region of their own (and debug builds check
     * every pair of the placement) */
    plan_chain(2000, 1, 5.0, "chain, every value an output");
    plan_chain(40000, 10, 5.0, "chain, every 10th value an output");
    shapes_only();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

/*
 * op_model.h - one-node (or two-node) float models from a compact spec, and
 * seeded random data: shared by the kernel tests (tests/runtime/test_kernels.c,
 * tests/gpu/test_gpu_kernels.c). Include once, after hpcz.h.
 */
#ifndef HPCZ_TEST_OP_MODEL_H
#define HPCZ_TEST_OP_MODEL_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "op_attrs.h"

#include "../rng.h" /* frand */

typedef struct spec {
    const char *label;
    const char *op;
    int n_in;
    int64_t shapes[4][5];
    int ranks[4];
    bool positive;     /* inputs in (0.1, 1.1] (Sqrt, Log) */
    double tol;        /* bound on max|cpu - ref| / max|ref| */
    const char *attrs; /* "name=i:1;name=is:1,1;name=f:0.5;name=s:tanh" */
    const char *then_op; /* a second node fed by the first (fusion) */
} spec;

/* Set while a test wants constant weights: inputs 1.. become initializers
 * (the weights are then packed at plan time). */
static bool const_weights;

static hpcz_value *value(hpcz_graph *g, const char *name, int rank, const int64_t *dims)
{
    hpcz_value *v = hpcz_graph_value(g, name);
    v->dtype = HPCZ_DTYPE_FLOAT;
    v->ndim = rank;
    if (rank >= 0 && dims) {
        v->dims = hpcz_model_alloc(g->model, (size_t)(rank + 1) * sizeof *v->dims);
        for (int i = 0; i < rank; i++)
            v->dims[i].size = dims[i];
    } else {
        v->ndim = -1;
    }
    return v;
}

/* const_weights: inputs 1.. become initializers holding ins[i]'s values
 * (ins may be NULL otherwise). */
static inline hpcz_model *build(const spec *s, const hpcz_array *ins)
{
    hpcz_model *m = hpcz_model_new();
    hpcz_graph *g = m->graph;
    g->inputs = hpcz_model_alloc(m, 4 * sizeof *g->inputs);
    g->outputs = hpcz_model_alloc(m, 1 * sizeof *g->outputs);
    hpcz_node *n = hpcz_graph_add_node(g, s->op, "n0", (size_t)s->n_in, 1);
    parse_attrs(m, n, s->attrs);
    for (int i = 0; i < s->n_in; i++) {
        char name[16];
        snprintf(name, sizeof name, "x%d", i);
        if (const_weights && ins && i > 0) {
            hpcz_error err = {0};
            hpcz_tensor *t = hpcz_tensor_new(m, name, HPCZ_DTYPE_FLOAT, s->ranks[i], s->shapes[i]);
            memcpy(hpcz_tensor_alloc(t), ins[i].data, ins[i].nbytes);
            hpcz_graph_add_initializer(g, t, &err);
            n->inputs[i] = hpcz_graph_value(g, name);
            continue;
        }
        hpcz_value *v = value(g, name, s->ranks[i], s->shapes[i]);
        v->is_input = 1;
        g->inputs[g->n_inputs++] = v;
        n->inputs[i] = v;
    }
    hpcz_value *y = value(g, "y0", -1, NULL);
    y->producer = n;
    n->outputs[0] = y;
    if (s->then_op) {
        /* Clip gets constant bounds [-0.25, 0.5] */
        bool clip = !strcmp(s->then_op, "Clip");
        hpcz_node *n2 = hpcz_graph_add_node(g, s->then_op, "n1", clip ? 3 : 1, 1);
        n2->inputs[0] = y;
        for (int i = 1; clip && i < 3; i++) {
            hpcz_error err = {0};
            hpcz_tensor *t = hpcz_tensor_new(m, i == 1 ? "clip_lo" : "clip_hi", HPCZ_DTYPE_FLOAT, 0, NULL);
            *(float *)hpcz_tensor_alloc(t) = i == 1 ? -0.25f : 0.5f;
            hpcz_graph_add_initializer(g, t, &err);
            n2->inputs[i] = hpcz_graph_value(g, t->name);
        }
        y = value(g, "y1", -1, NULL);
        y->producer = n2;
        n2->outputs[0] = y;
    }
    y->is_output = 1;
    g->outputs[g->n_outputs++] = y;
    return m;
}

/* Largest |a - ref| over float32 arrays, relative to max |ref| (at least
 * 1e-3); INFINITY where one side is NaN and the other not. */
static inline double norm_err(const hpcz_array *a, const hpcz_array *ref)
{
    double maxref = 0, maxerr = 0;
    for (int64_t k = 0; k < a->numel && k < ref->numel; k++) {
        double x = ((const float *)a->data)[k], y = ((const float *)ref->data)[k];
        maxref = fmax(maxref, fabs(y));
        maxerr = fmax(maxerr, fabs(x - y));
        if (isnan(x) != isnan(y))
            maxerr = INFINITY;
    }
    return maxerr / fmax(maxref, 1e-3);
}

#endif

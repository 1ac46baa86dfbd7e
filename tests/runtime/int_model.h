/* Building integer test models through the IR: an initializer of any dtype,
 * and one integer element written by dtype (uint8, int8, else int32). Shared
 * by the int8 kernel tests on the CPU (test_qfuse.c) and the GPU
 * (tests/gpu/test_gpu_qgemm.c). */
#ifndef HPCZ_TESTS_INT_MODEL_H
#define HPCZ_TESTS_INT_MODEL_H

#include "hpcz.h"

#include <stdint.h>

/* a new initializer `name` [dims] of dtype dt; its zeroed data */
static inline void *init(hpcz_model *m, const char *name, int dt, int ndim, const int64_t *dims)
{
    hpcz_error err = {0};
    hpcz_tensor *t = hpcz_tensor_new(m, name, dt, ndim, dims);
    void *d = hpcz_tensor_alloc(t);
    hpcz_graph_add_initializer(m->graph, t, &err);
    return d;
}

static inline void set_int(void *p, int dt, int64_t i, int v)
{
    if (dt == HPCZ_DTYPE_UINT8)
        ((uint8_t *)p)[i] = (uint8_t)v;
    else if (dt == HPCZ_DTYPE_INT8)
        ((int8_t *)p)[i] = (int8_t)v;
    else
        ((int32_t *)p)[i] = v;
}

#endif

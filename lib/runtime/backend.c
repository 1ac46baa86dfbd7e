/*
 * backend.c - the op registry and the backend table.
 *
 * Only this file knows which backends were compiled in. A backend answers
 * supports_op for a node and runs it; the engine never looks at op names.
 */
#include "rt.h"

#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static const rt_op_table *const tables[] = {
    &rt_ops_elementwise, &rt_ops_gemm, &rt_ops_conv,    &rt_ops_pool,
    &rt_ops_norm,        &rt_ops_reduce, &rt_ops_shape, &rt_ops_rnn,
    &rt_ops_control,     &rt_ops_quant, &rt_ops_misc,
};

static bool same_domain(const char *a, const char *b)
{
    if (!a || !strcmp(a, "ai.onnx"))
        a = "";
    if (!b || !strcmp(b, "ai.onnx"))
        b = "";
    return strcmp(a, b) == 0;
}

/* Entries of one op are listed by ascending min_opset; the newest entry not
 * newer than the node's opset applies. */
const rt_op *rt_op_find(const char *domain, const char *name, int opset)
{
    const rt_op *best = NULL;
    for (size_t t = 0; t < HPCZ_ARRAY_SIZE(tables); t++)
        for (size_t i = 0; i < tables[t]->n; i++) {
            const rt_op *op = &tables[t]->ops[i];
            if (strcmp(op->name, name) || !same_domain(op->domain, domain))
                continue;
            if (op->min_opset <= opset && (!best || op->min_opset > best->min_opset))
                best = op;
        }
    return best;
}

/* ---------------------------------------------------------------- cpu */

static int cpu_supports(const hpcz_node *n, const int *dtypes)
{
    int opset = (int)hpcz_node_opset(n);
    const rt_op *op = rt_op_find(n->domain, n->op_type, opset);
    if (!op)
        return 0;
    if (op->check && !op->check(n))
        return 0;
    if (dtypes && op->tmask && n->n_inputs && dtypes[0] && !(op->tmask & RT_T(dtypes[0])))
        return 0;
    return 1;
}

static void *cpu_alloc(size_t n)
{
    return rt_alloc(n);
}

static void cpu_copy(void *dst, const void *src, size_t n)
{
    memcpy(dst, src, n);
}

static hpcz_status cpu_run_node(rt_ctx *c)
{
    if (c->op->check && !c->op->check(c->node))
        return rt_unsupported(c);
    return c->op->run(c);
}

static void cpu_set_threads(int n)
{
    /* OpenBLAS partitions sgemm by blocks of C, never along K, so each
     * element of C is the same sum whatever the thread count. */
    openblas_set_num_threads(n);
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
}

static const rt_backend cpu_backend = {
    .name = "cpu",
    .supports_op = cpu_supports,
    .alloc = cpu_alloc,
    .free = rt_free,
    .copy_in = cpu_copy,
    .copy_out = cpu_copy,
    .run_node = cpu_run_node,
    .set_threads = cpu_set_threads,
};

static const rt_backend *const backends[] = {&cpu_backend};

const rt_backend *rt_backend_get(const char *name)
{
    if (!name || !*name)
        return backends[0];
    for (size_t i = 0; i < HPCZ_ARRAY_SIZE(backends); i++)
        if (!strcmp(backends[i]->name, name))
            return backends[i];
    return NULL;
}

void rt_sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
              int64_t lda, const float *b, int64_t ldb, float beta, float *cm, int64_t ldc)
{
    if (m <= 0 || n <= 0)
        return;
    if (k <= 0) {
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++)
                cm[i * ldc + j] = beta == 0 ? 0 : beta * cm[i * ldc + j];
        return;
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (blasint)m, (blasint)n, (blasint)k, alpha, a, (blasint)lda, b, (blasint)ldb, beta,
                cm, (blasint)ldc);
}

/*
 * pool.c - the runtime's thread pool.
 *
 * Why not OpenMP: an OpenMP parallel loop ends in a barrier that every team
 * thread must reach, so on a loaded machine one descheduled worker stalls
 * every op (measured: 5x slower than one thread with a second process
 * busy). Here the caller takes tasks too and never waits for a worker that
 * has not started one: a late worker simply finds no task left. Workers spin
 * briefly for the next job (ops follow each other within microseconds), then
 * sleep on a condition variable.
 *
 * Tasks are numbered and each is always the same piece of work, so which
 * thread runs a task never changes a result.
 */
#include "rt.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

#define POOL_MAX 64
#define SPIN_ROUNDS 4000 /* ~10-20 us of pause instructions, yielding now and then */

typedef struct job {
    rt_task_fn fn;
    void *ctx;
    int64_t n;
    atomic_int_fast64_t next, done;
} job;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t wake;
    pthread_t th[POOL_MAX];
    int started;
    atomic_uint_fast64_t gen;
    job *cur;
    int want;          /* workers that may join the current job */
    atomic_int active; /* workers holding a pointer to the current job */
} P = {.mu = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

/* Set while a thread runs tasks: a task that itself calls rt_parallel_for
 * runs that loop inline instead of waiting on workers busy with its parent. */
static _Thread_local bool in_task;

static void run_tasks(job *j)
{
    in_task = true;
    for (;;) {
        int64_t i = atomic_fetch_add(&j->next, 1);
        if (i >= j->n)
            break;
        j->fn(j->ctx, i);
        atomic_fetch_add(&j->done, 1);
    }
    in_task = false;
}

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    uint64_t seen = atomic_load(&P.gen);
    for (;;) {
        for (int s = 0; s < SPIN_ROUNDS && atomic_load_explicit(&P.gen, memory_order_acquire) == seen;
             s++) {
            CPU_RELAX();
            if (s % 512 == 511)
                sched_yield(); /* on a busy machine, let the caller's thread run */
        }
        pthread_mutex_lock(&P.mu);
        while (atomic_load(&P.gen) == seen)
            pthread_cond_wait(&P.wake, &P.mu);
        seen = atomic_load(&P.gen);
        job *j = id < P.want ? P.cur : NULL;
        if (j)
            atomic_fetch_add(&P.active, 1);
        pthread_mutex_unlock(&P.mu);
        if (j) {
            run_tasks(j);
            atomic_fetch_sub(&P.active, 1);
        }
    }
    return NULL;
}

void rt_parallel_for(int64_t n, rt_task_fn fn, void *ctx)
{
    int t = rt_threads();
    if (t > POOL_MAX + 1)
        t = POOL_MAX + 1;
    if (t <= 1 || n <= 1 || in_task) {
        for (int64_t i = 0; i < n; i++)
            fn(ctx, i);
        return;
    }
    job j = {.fn = fn, .ctx = ctx, .n = n};
    atomic_init(&j.next, 0);
    atomic_init(&j.done, 0);
    pthread_mutex_lock(&P.mu);
    while (P.started < t - 1) {
        if (pthread_create(&P.th[P.started], NULL, worker, (void *)(intptr_t)P.started) != 0)
            break;
        pthread_detach(P.th[P.started]);
        P.started++;
    }
    /* a worker still inside the previous job only leaves it: wait for that */
    while (atomic_load(&P.active) > 0) {
        pthread_mutex_unlock(&P.mu);
        CPU_RELAX();
        pthread_mutex_lock(&P.mu);
    }
    P.cur = &j;
    P.want = t - 1 < P.started ? t - 1 : P.started;
    atomic_fetch_add_explicit(&P.gen, 1, memory_order_release);
    pthread_cond_broadcast(&P.wake);
    pthread_mutex_unlock(&P.mu);
    run_tasks(&j);
    /* tasks a worker started must finish; tasks nobody started were ours */
    while (atomic_load(&j.done) < n)
        CPU_RELAX();
    pthread_mutex_lock(&P.mu);
    P.cur = NULL; /* late wakers find no job */
    pthread_mutex_unlock(&P.mu);
    while (atomic_load(&P.active) > 0)
        CPU_RELAX();
}

void rt_parallel_for_work(int64_t n, rt_task_fn fn, void *ctx, double work)
{
    if (work < 65536) {
        for (int64_t i = 0; i < n; i++)
            fn(ctx, i);
        return;
    }
    rt_parallel_for(n, fn, ctx);
}

/*
 * team.c - worker threads that claim a step's tasks one at a time (see team.h).
 *
 * One 64-bit word holds the job: its generation (high 32 bits), its task count (16 bits) and
 * the next unclaimed task (low 16 bits). A worker claims task k of generation g with a
 * compare-and-swap from (g, n, k) to (g, n, k + 1), k < n, so it can never take a task of a
 * job it did not see published, nor one past the end of its own job (the count lives in the
 * same word: a count read separately could already be the next job's while the word still
 * holds this one, fully claimed). The caller publishes the next job only after every task of
 * this one has been claimed and finished, which the worker's own claim holds back until it
 * is done; so the job's function and argument, read after the claim, cannot change.
 */
#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "its/alloc.h"
#include "its/clock.h"
#include "its/error.h"

#include "team.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield")
#else
#define cpu_relax() ((void)0)
#endif

#define TEAM_MAX 256

typedef struct worker {
    struct its__team *team;
    int id;
    pthread_t th;
} worker;

struct its__team {
    int n; /* threads, the caller included */
    uint64_t spin_ns;
    _Atomic uint64_t state; /* generation << 32 | tasks << 16 | next task */
    atomic_int done;
    its__team_fn fn; /* written before the generation is published, read after a claim */
    void *arg;
    uint32_t gen; /* the caller's copy */
    atomic_int sleepers;
    atomic_int quit;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    worker *w;
    int started;
};

#define TASKS_MAX 0xffff

static uint32_t gen_of(uint64_t s)
{
    return (uint32_t)(s >> 32);
}

static int tasks_of(uint64_t s)
{
    return (int)((s >> 16) & TASKS_MAX);
}

static int next_of(uint64_t s)
{
    return (int)(s & TASKS_MAX);
}

/* Claim and run tasks of generation g until none is left or a newer job is out. */
static void work(its__team *t, uint32_t g, int id)
{
    for (;;) {
        uint64_t s = atomic_load_explicit(&t->state, memory_order_acquire);
        if (gen_of(s) != g || next_of(s) >= tasks_of(s))
            return;
        if (!atomic_compare_exchange_weak_explicit(&t->state, &s, s + 1, memory_order_acq_rel,
                                                   memory_order_acquire))
            continue;
        t->fn(t->arg, next_of(s), id);
        atomic_fetch_add_explicit(&t->done, 1, memory_order_release);
    }
}

/* Wait for a generation other than seen (or quit): spin up to spin_ns, then sleep. */
static uint32_t wait_job(its__team *t, uint32_t seen)
{
    uint64_t deadline = its_now_ns() + t->spin_ns;
    for (unsigned i = 1;; i++) {
        uint32_t g = gen_of(atomic_load_explicit(&t->state, memory_order_acquire));
        if (g != seen || atomic_load_explicit(&t->quit, memory_order_relaxed))
            return g;
        if ((i & 63) == 0 && its_now_ns() >= deadline)
            break;
        cpu_relax();
    }
    pthread_mutex_lock(&t->mu);
    atomic_fetch_add(&t->sleepers, 1); /* seq_cst: pairs with the publisher's store and load */
    uint32_t g;
    while ((g = gen_of(atomic_load(&t->state))) == seen && !atomic_load(&t->quit))
        pthread_cond_wait(&t->cv, &t->mu);
    atomic_fetch_sub(&t->sleepers, 1);
    pthread_mutex_unlock(&t->mu);
    return g;
}

static void *worker_main(void *p)
{
    worker *w = p;
    its__team *t = w->team;
    uint32_t seen = 0;
    while (!atomic_load_explicit(&t->quit, memory_order_relaxed)) {
        seen = wait_job(t, seen);
        work(t, seen, w->id);
    }
    return NULL;
}

int its__team_create(int threads, int spin_us, its__team **out)
{
    *out = NULL;
    if (threads < 1 || threads > TEAM_MAX || spin_us < 0)
        return ITS_EINVAL;
    its__team *t = its_calloc(ITS_MOD_ENGINE, 1, sizeof *t);
    if (!t)
        return ITS_ENOMEM;
    t->n = threads;
    t->spin_ns = (uint64_t)spin_us * 1000u;
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    if (threads > 1) {
        t->w = its_calloc(ITS_MOD_ENGINE, (size_t)threads, sizeof *t->w);
        if (!t->w) {
            its__team_destroy(t);
            return ITS_ENOMEM;
        }
        for (int i = 1; i < threads; i++) {
            t->w[i].team = t;
            t->w[i].id = i;
            if (pthread_create(&t->w[i].th, NULL, worker_main, &t->w[i]) != 0) {
                its__team_destroy(t);
                return ITS_EAGAIN;
            }
            t->started = i;
        }
    }
    *out = t;
    return 0;
}

int its__team_threads(const its__team *t)
{
    return t->n;
}

void its__team_run(its__team *t, int ntasks, its__team_fn fn, void *arg)
{
    if (t->n == 1 || ntasks <= 1 || ntasks > TASKS_MAX) {
        for (int k = 0; k < ntasks; k++)
            fn(arg, k, 0);
        return;
    }
    t->fn = fn;
    t->arg = arg;
    atomic_store_explicit(&t->done, 0, memory_order_relaxed);
    t->gen++;
    /* seq_cst: see wait_job */
    atomic_store(&t->state, (uint64_t)t->gen << 32 | (uint64_t)ntasks << 16);
    if (atomic_load(&t->sleepers) > 0) {
        pthread_mutex_lock(&t->mu);
        pthread_cond_broadcast(&t->cv);
        pthread_mutex_unlock(&t->mu);
    }
    work(t, t->gen, 0);
    /* what is left runs on workers that claimed it, awake */
    while (atomic_load_explicit(&t->done, memory_order_acquire) < ntasks)
        cpu_relax();
}

void its__team_destroy(its__team *t)
{
    if (!t)
        return;
    atomic_store(&t->quit, 1);
    pthread_mutex_lock(&t->mu);
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    for (int i = 1; i <= t->started; i++)
        pthread_join(t->w[i].th, NULL);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    its_free(t->w);
    its_free(t);
}

/* ---- parallel loops ---- */

#define RANGES_PER_THREAD 4 /* so that a late worker still finds some */

static _Thread_local its__team *bound;

void its__team_bind(its__team *t)
{
    bound = t;
}

typedef struct range_job {
    its__range_fn fn;
    void *arg;
    int64_t n;
    int parts;
} range_job;

static void range_task(void *arg, int k, int thread)
{
    (void)thread;
    range_job *j = arg;
    j->fn(j->arg, j->n * k / j->parts, j->n * (k + 1) / j->parts);
}

void its__par_range(int64_t n, int64_t unit, its__range_fn fn, void *arg)
{
    if (n <= 0)
        return;
    int64_t work = n * (unit > 0 ? unit : 1);
    int64_t most = work / (ITS__PAR_MIN / 2); /* ranges of at least half the threshold */
    most = most < n ? most : n;
    if (work <= ITS__PAR_MIN || most < 2) {
        fn(arg, 0, n);
        return;
    }
    if (bound) {
        int64_t parts = (int64_t)bound->n * RANGES_PER_THREAD;
        range_job j = {fn, arg, n, (int)(parts < most ? parts : most)};
        its__team_run(bound, j.parts, range_task, &j);
        return;
    }
    int64_t parts = omp_get_max_threads();
    parts = parts < most ? parts : most;
    if (parts < 2) {
        fn(arg, 0, n);
        return;
    }
#pragma omp parallel for
    for (int64_t k = 0; k < parts; k++)
        fn(arg, n * k / parts, n * (k + 1) / parts);
}

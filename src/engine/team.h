/*
 * team.h - the CPU backend's own worker threads for splitting one step into tasks.
 *
 *     its__team *t;
 *     its__team_create(2, 100, &t);        // the caller plus 1 worker; spin 100 us when idle
 *     its__team_run(t, 8, fn, arg);        // fn(arg, task, thread) for task 0..7, then returns
 *     its__team_destroy(t);
 *
 * Why not OpenMP: a libgomp parallel region ends in a barrier, so the caller always waits for
 * every thread of the team, and a thread that sleeps between regions (OMP_WAIT_POLICY=
 * passive) makes every region pay its wake-up, tens of microseconds on a VM, about 150 times
 * per inference. Here tasks are claimed one at a time by whoever is free: the caller starts at
 * once, a worker that wakes late finds fewer tasks (or none) left, and the caller only waits
 * for tasks that a worker has actually started. Idle workers spin for at most spin_us, then
 * sleep on a condition variable, so an idle engine costs no CPU.
 *
 * Contract: its__team_run is called by one thread at a time (the engine's run lock); jobs of
 * more than 65535 tasks run on the caller alone. thread
 * is 0 for the caller and 1..n-1 for the workers, stable for the team's life (per-thread
 * scratch memory). A team of 1 runs every task on the caller.
 */
#ifndef ITS_ENGINE_TEAM_H
#define ITS_ENGINE_TEAM_H

#include <stdint.h>

typedef struct its__team its__team;

typedef void (*its__team_fn)(void *arg, int task, int thread);

int its__team_create(int threads, int spin_us, its__team **out);
void its__team_run(its__team *t, int ntasks, its__team_fn fn, void *arg);
int its__team_threads(const its__team *t);
void its__team_destroy(its__team *t);

/*
 * Parallel loops of the kernels (kernels.c). its__par_range runs fn over [0, n) cut into
 * ranges: on the team bound to the calling thread (its__team_bind; the cpu backend binds its
 * team for the duration of a run), ranges claimed dynamically, or else on OpenMP, one range
 * per thread. Loops of fewer than ITS__PAR_MIN units of work (n * unit) run on the caller.
 */
#define ITS__PAR_MIN 32768

typedef void (*its__range_fn)(void *arg, int64_t lo, int64_t hi);

void its__team_bind(its__team *t);
void its__par_range(int64_t n, int64_t unit, its__range_fn fn, void *arg);

#endif

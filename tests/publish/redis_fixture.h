/* A real redis-server for tests and benchmarks: started on a free loopback port in a fresh
 * temporary directory, without persistence, killed with the test (PR_SET_PDEATHSIG). */
#ifndef ITS_REDIS_FIXTURE_H
#define ITS_REDIS_FIXTURE_H

#include <sys/types.h>

typedef struct its_redis_fixture {
    pid_t pid;
    int port;
    char dir[128];
    char password[64];
    int persist; /* append-only file fsynced on every write: acknowledged writes survive a kill */
} its_redis_fixture;

/* 1 if redis-server is on PATH. */
int its_redis_available(void);
/* A port nobody listens on now (bind to 0, read it back). */
int its_redis_free_port(void);
/* Start on r->port (0: pick one) with r->password (empty: none); waits until it answers
 * PING. 0 on success. */
int its_redis_start(its_redis_fixture *r);
/* Stop with the signal (SIGKILL to simulate a crash) and reap it. */
void its_redis_stop(its_redis_fixture *r, int sig);
/* Stop (if running) and remove the server's temporary directory. */
void its_redis_cleanup(its_redis_fixture *r);

#endif

/*
 * its/redis.h - one way to reach the Redis master: directly at host:port, or through Redis
 * Sentinel, asking the Sentinels which server is the master of a named group.
 *
 *     its_redis_target t;
 *     its_redis_target_default(&t);
 *     t.sentinels = "10.0.0.1:26379,10.0.0.2:26379";   // or t.host = "127.0.0.1", t.port = 6379
 *     t.master_name = "its";
 *     char err[256];
 *     redisContext *c = its_redis_connect(&t, err, sizeof err);
 *     if (!c) fprintf(stderr, "%s\n", err);
 *     ... redisCommand(c, ...); redisFree(c);
 *
 * With sentinels set, every connect asks the Sentinels in the order given (the first that
 * answers wins) for SENTINEL get-master-addr-by-name, connects there, authenticates, selects
 * the database and checks with ROLE that the server really is a master: a Sentinel that has not
 * yet seen a failover, or an old master that came back as a replica, is refused (the caller
 * retries after its backoff and asks again). Without sentinels it connects to host:port, with
 * the same AUTH, SELECT and a PING. So a caller follows a failover by reconnecting after a
 * lost connection or a READONLY reply, which the publisher already does.
 *
 * Contract: blocking, bounded by connect_timeout_ms per server and command_timeout_ms per
 * command; thread-safe (no shared state). The returned context has command_timeout_ms set and
 * TCP keep-alive on; the caller frees it with redisFree. On failure NULL, err says why, and
 * *rc (if rc is not NULL) is ITS_ENET (nobody answered, or no master), ITS_EAUTH (AUTH or
 * SELECT refused) or ITS_ENOMEM.
 */
#ifndef ITS_REDIS_H
#define ITS_REDIS_H

#include <stddef.h>

struct redisContext;

#define ITS_REDIS_MASTER_NAME "its"

typedef struct its_redis_target {
    const char *host; /* without sentinels: the server */
    int port;
    const char *sentinels;   /* "host:port,host:port,..."; NULL or "": none */
    const char *master_name; /* the Sentinels' name of the master group */
    const char *username;    /* NULL: AUTH with the password alone */
    const char *password;    /* NULL: no AUTH (the Sentinels are asked without it) */
    int db;
    int connect_timeout_ms, command_timeout_ms;
} its_redis_target;

void its_redis_target_default(its_redis_target *t);

struct redisContext *its_redis_connect(const its_redis_target *t, int *rc, char *err,
                                       size_t errlen);

/* Ask the Sentinels for the master's address only. 0, or ITS_ENET / ITS_EINVAL. */
int its_redis_sentinel_master(const its_redis_target *t, char *host, size_t hostlen, int *port,
                              char *err, size_t errlen);

#endif

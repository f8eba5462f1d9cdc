/*
 * Reaching the Redis master (its/redis.h): directly or through Sentinel.
 */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "its/core.h"
#include "its/redis.h"

void its_redis_target_default(its_redis_target *t)
{
    memset(t, 0, sizeof *t);
    t->host = "127.0.0.1";
    t->port = 6379;
    t->master_name = ITS_REDIS_MASTER_NAME;
    t->connect_timeout_ms = 200;
    t->command_timeout_ms = 100;
}

static struct timeval tv_ms(int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return tv;
}

static redisContext *open_conn(const char *host, int port, const its_redis_target *t)
{
    redisContext *c = redisConnectWithTimeout(host, port, tv_ms(t->connect_timeout_ms));
    if (c && !c->err && redisSetTimeout(c, tv_ms(t->command_timeout_ms)) == REDIS_OK &&
        redisEnableKeepAlive(c) == REDIS_OK)
        return c;
    if (c)
        redisFree(c);
    return NULL;
}

int its_redis_sentinel_master(const its_redis_target *t, char *host, size_t hostlen, int *port,
                              char *err, size_t errlen)
{
    if (!t->sentinels || !*t->sentinels || !t->master_name)
        return its_seterr(err, errlen, ITS_EINVAL, "redis: no sentinels");
    const char *p = t->sentinels;
    char last[320] = "no sentinel answered";
    while (*p) {
        size_t n = strcspn(p, ", ");
        char item[128];
        if (n > 0 && n < sizeof item) {
            memcpy(item, p, n);
            item[n] = 0;
            char *colon = strrchr(item, ':');
            int sport = 26379;
            if (colon) {
                *colon = 0;
                sport = atoi(colon + 1);
            }
            redisContext *c = sport > 0 && sport < 65536 ? open_conn(item, sport, t) : NULL;
            redisReply *r =
                c ? redisCommand(c, "SENTINEL get-master-addr-by-name %s", t->master_name) : NULL;
            if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                r->element[0]->type == REDIS_REPLY_STRING &&
                r->element[1]->type == REDIS_REPLY_STRING &&
                snprintf(host, hostlen, "%s", r->element[0]->str) < (int)hostlen) {
                *port = atoi(r->element[1]->str);
                freeReplyObject(r);
                redisFree(c);
                return 0;
            }
            snprintf(last, sizeof last, "sentinel %s:%d: %s", item, sport,
                     !c                                  ? "cannot connect"
                     : r && r->type == REDIS_REPLY_ERROR ? r->str
                     : r                                 ? "no such master"
                                                         : c->errstr);
            if (r)
                freeReplyObject(r);
            if (c)
                redisFree(c);
        }
        p += n;
        p += strspn(p, ", ");
    }
    return its_seterr(err, errlen, ITS_ENET, "redis: master '%s' not found: %s", t->master_name,
                      last);
}

/* One setup command that must answer +OK (AUTH, SELECT). */
static int setup(redisContext *c, redisReply *r, const char *what, char *err, size_t errlen)
{
    int ok = r && r->type == REDIS_REPLY_STATUS;
    int rc = ok ? 0 : r ? ITS_EAUTH : ITS_ENET;
    if (!ok)
        its_seterr(err, errlen, rc, "redis: %s refused: %s", what,
                   r && r->type == REDIS_REPLY_ERROR ? r->str : c->errstr);
    if (r)
        freeReplyObject(r);
    return rc;
}

redisContext *its_redis_connect(const its_redis_target *t, int *rcp, char *err, size_t errlen)
{
    char host[128];
    int port = t->port, rc = 0, sentinel = t->sentinels && *t->sentinels;
    if (sentinel)
        rc = its_redis_sentinel_master(t, host, sizeof host, &port, err, errlen);
    else if (!t->host || snprintf(host, sizeof host, "%s", t->host) >= (int)sizeof host)
        rc = its_seterr(err, errlen, ITS_EINVAL, "redis: no host");
    redisContext *c = NULL;
    if (rc == 0 && !(c = open_conn(host, port, t)))
        rc = its_seterr(err, errlen, ITS_ENET, "redis: cannot connect to %s:%d", host, port);
    if (rc == 0 && t->password)
        rc = setup(c,
                   t->username ? redisCommand(c, "AUTH %s %s", t->username, t->password)
                               : redisCommand(c, "AUTH %s", t->password),
                   "AUTH", err, errlen);
    if (rc == 0 && t->db)
        rc = setup(c, redisCommand(c, "SELECT %d", t->db), "SELECT", err, errlen);
    if (rc == 0) {
        /* A server that wants a password we lack accepts the connection and refuses every
         * command: find out now. Through Sentinel, also that the server is the master. */
        redisReply *r = redisCommand(c, sentinel ? "ROLE" : "PING");
        if (!r || r->type == REDIS_REPLY_ERROR)
            rc = its_seterr(err, errlen, r ? ITS_EAUTH : ITS_ENET, "redis: %s:%d: %s", host, port,
                            r ? r->str : c->errstr);
        else if (sentinel && (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
                              r->element[0]->type != REDIS_REPLY_STRING ||
                              strcmp(r->element[0]->str, "master")))
            rc = its_seterr(err, errlen, ITS_ENET,
                            "redis: %s:%d, the master the sentinels named, is not a master (yet)",
                            host, port);
        if (r)
            freeReplyObject(r);
    }
    if (rcp)
        *rcp = rc;
    if (rc < 0) {
        if (c)
            redisFree(c);
        return NULL;
    }
    return c;
}

/*
 * The cluster coordination (its/cluster.h): registry, leases, owners, fencing.
 *
 * Two connections: `cmd` (mutex-guarded; the thread's renewals and reads, and the API's
 * registry writes) and `sub`, the thread's own, subscribed to the change channel and polled
 * between ticks, so that a change wakes the thread at once. A lost connection is remade at
 * the next tick (through Sentinel where configured, its/redis.h); a missed change message is
 * healed by the periodic full read of the registry.
 */
#include <hiredis/hiredis.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "its/cluster.h"
#include "its/core.h"

/* Renews the lease and the owner keys of the cameras held, records the member, prunes members
 * without a lease. ARGV: prefix, replica, token, ttl_ms, capacity, camera ids...
 * Returns {0} when the lease is not ours, else {1, {cameras lost}, {name, capacity, ...}}. */
static const char renew_lua[] =
    "local p, me, tok, ttl = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])\n"
    "local lease = p .. ':lease:' .. me\n"
    "if redis.call('GET', lease) ~= tok then return {0} end\n"
    "redis.call('PEXPIRE', lease, ttl)\n"
    "redis.call('HSET', p .. ':members', me, ARGV[5])\n"
    "local lost = {}\n"
    "for i = 6, #ARGV do\n"
    "  local k = p .. ':owner:' .. ARGV[i]\n"
    "  if redis.call('GET', k) == me then redis.call('PEXPIRE', k, ttl)\n"
    "  else lost[#lost + 1] = ARGV[i] end\n"
    "end\n"
    "local live, m = {}, redis.call('HGETALL', p .. ':members')\n"
    "for i = 1, #m, 2 do\n"
    "  if redis.call('EXISTS', p .. ':lease:' .. m[i]) == 1 then\n"
    "    live[#live + 1] = m[i]; live[#live + 1] = m[i + 1]\n"
    "  else redis.call('HDEL', p .. ':members', m[i]) end\n"
    "end\n"
    "return {1, lost, live}\n";

/* Hands a camera over: our owner key becomes "-" for the gap. KEYS[1] owner key; ARGV: replica,
 * gap_ms. */
static const char release_lua[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
                                  "  return redis.call('SET', KEYS[1], '-', 'PX', ARGV[2])\n"
                                  "end\n"
                                  "return 0\n";

/* Takes a camera: SET owner NX PX, and on success a new epoch for it (the fencing token of its
 * checkpoints). KEYS: owner, checkpoint; ARGV: replica, ttl_ms. Returns the epoch (>= 1), 0
 * when someone holds it, or -(ms left) while it is in a handover gap. */
static const char take_lua[] = "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then\n"
                               "  return redis.call('HINCRBY', KEYS[2], 'epoch', 1)\n"
                               "end\n"
                               "if redis.call('GET', KEYS[1]) == '-' then\n"
                               "  local t = redis.call('PTTL', KEYS[1])\n"
                               "  if t < 1 then t = 1 end\n"
                               "  return -t\n"
                               "end\n"
                               "return 0\n";

/* Writes a checkpoint if the camera is still ours under the epoch we took it with. KEYS: owner,
 * checkpoint; ARGV: replica, epoch, data. 1 written, 0 refused. */
static const char save_lua[] = "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end\n"
                               "if redis.call('HGET', KEYS[2], 'epoch') ~= ARGV[2] then\n"
                               "  return 0\n"
                               "end\n"
                               "redis.call('HSET', KEYS[2], 'data', ARGV[3])\n"
                               "return 1\n";

/* Gives up the lease if it is ours. KEYS: lease, members; ARGV: token, replica. */
static const char drop_lua[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
    "  redis.call('DEL', KEYS[1]); redis.call('HDEL', KEYS[2], ARGV[2])\n"
    "end\n"
    "return 1\n";

typedef struct cam {
    char id[ITS_CLUSTER_NAME_MAX + 2];
    char *spec;        /* the registry's, NULL: gone from the registry */
    char *running;     /* the spec it was started with, NULL: not served here */
    int mine;          /* this view assigns it to us */
    int closing;       /* stopped: its frames in flight may not be through yet */
    int handing;       /* stopped for a handover: released once closed */
    uint64_t retry_ns; /* a start failed: not again before this */
} cam;

/* A camera started here and the epoch it was taken with (its checkpoints' fencing token). */
typedef struct held {
    char id[ITS_CLUSTER_NAME_MAX + 2];
    long long epoch;
} held;

typedef struct member {
    char name[ITS_CLUSTER_NAME_MAX + 2];
    double cap;
    int quota, n;
} member;

struct its_cluster {
    its_cluster_config cfg;
    char replica[ITS_CLUSTER_NAME_MAX + 1];
    char prefix[64];
    its_cluster_ops ops;
    pthread_mutex_t mu; /* cmd */
    redisContext *cmd;
    uint64_t cmd_retry_ns;
    int cmd_failing;   /* failed connects in a row */
    redisContext *sub; /* the thread's */
    pthread_t thread;
    int started, left;
    atomic_int stop;
    atomic_int frozen, frozen_ack; /* its_cluster_freeze asked; the thread has seen it */
    /* the thread's state */
    char token[40];
    int held;              /* the lease is ours */
    uint64_t last_ok;      /* when the last successful renewal was sent */
    uint64_t settle_until; /* a new lease: no cameras before this */
    int dirty;             /* read the registry at the next tick */
    uint64_t next_resync;
    cam *cams;
    int n_cams, cap_cams;
    member *members;
    int n_members, cap_members;
    atomic_int serving, n_live;
    atomic_int ready; /* the lease is held (its_cluster_ready) */
    char **seeds;     /* id, spec, id, spec... */
    int n_seeds, cap_seeds, seeded, seeds_logged;
    int renew_now; /* a change was published: renew (and see the members) at once */
    /* checkpoints: their own connection (a slow write never delays a renewal), the epochs of
     * the cameras held, and the lease's validity as the fence sees it */
    pthread_mutex_t ck_mu; /* ck, ck_retry_ns, helds */
    redisContext *ck;
    uint64_t ck_retry_ns;
    held *helds;
    int n_helds, cap_helds;
    _Atomic uint64_t valid_until;
};

void its_cluster_config_default(its_cluster_config *c)
{
    memset(c, 0, sizeof *c);
    c->capacity = 64;
    c->lease_ttl_ms = ITS_CLUSTER_LEASE_TTL_MS;
    c->resync_ms = ITS_CLUSTER_RESYNC_MS;
    c->handover_gap_ms = ITS_CLUSTER_HANDOVER_GAP_MS;
    c->prefix = "its:cluster";
    its_redis_target_default(&c->redis);
}

static int valid_name(const char *s)
{
    size_t n = 0;
    for (; s && s[n]; n++) {
        char ch = s[n];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_' || ch == '.'))
            return 0;
    }
    return n >= 1 && n <= ITS_CLUSTER_NAME_MAX;
}

/* ---- Redis ----------------------------------------------------------------------------- */

/* The command connection, made if needed (at most one attempt per 500 ms); caller holds mu. */
static redisContext *cmd_conn(its_cluster *c)
{
    if (c->cmd)
        return c->cmd;
    uint64_t now = its_now_ns();
    if (now < c->cmd_retry_ns)
        return NULL;
    char err[256];
    c->cmd = its_redis_connect(&c->cfg.redis, NULL, err, sizeof err);
    if (!c->cmd) {
        c->cmd_retry_ns = now + 500 * ITS_NS_PER_MS;
        if (!c->cmd_failing++) /* once per outage */
            its_logw("cluster", NULL, "%s", err);
    } else if (c->cmd_failing) {
        its_logi("cluster", NULL, "Redis back after %d failed connects", c->cmd_failing);
        c->cmd_failing = 0;
    }
    return c->cmd;
}

/* A reply, or NULL after a connection error (the connection is then dropped). Caller holds
 * mu. An error reply that says the server is no longer the master drops it too. */
static redisReply *cmd_argv(its_cluster *c, int argc, const char **argv)
{
    redisContext *rc = cmd_conn(c);
    if (!rc)
        return NULL;
    redisReply *r = redisCommandArgv(rc, argc, argv, NULL);
    if (!r || (r->type == REDIS_REPLY_ERROR &&
               (!strncmp(r->str, "READONLY", 8) || !strncmp(r->str, "MASTERDOWN", 10) ||
                !strncmp(r->str, "LOADING", 7)))) {
        its_logw("cluster", NULL, "Redis: %s", r ? r->str : rc->errstr);
        if (r)
            freeReplyObject(r);
        redisFree(c->cmd);
        c->cmd = NULL;
        return NULL;
    }
    return r;
}

static void key(its_cluster *c, char *buf, size_t len, const char *what, const char *name)
{
    snprintf(buf, len, "%s:%s%s%s", c->prefix, what, name ? ":" : "", name ? name : "");
}

/* A camera's checkpoint key, "<prefix>:<what>:{<camera>}": the camera's hash tag, its slot in a
 * Redis Cluster. (The owner key keeps its name without the tag, so that replicas of earlier
 * builds and this one agree on it during a rolling update; docs/scale-out.md.) */
static void cam_key(its_cluster *c, char *buf, size_t len, const char *what, const char *id)
{
    snprintf(buf, len, "%s:%s:{%s}", c->prefix, what, id);
}

static int notify(its_cluster *c, const char *id)
{
    char ch[96];
    key(c, ch, sizeof ch, "changes", NULL);
    const char *argv[] = {"PUBLISH", ch, id};
    redisReply *r = cmd_argv(c, 3, argv);
    if (r)
        freeReplyObject(r);
    return r ? 0 : ITS_ENET;
}

static int hash_write(its_cluster *c, const char *cmd, const char *id, const char *spec)
{
    if (!valid_name(id) || (spec && !*spec))
        return ITS_EINVAL;
    char k[96];
    key(c, k, sizeof k, "cameras", NULL);
    const char *argv[] = {cmd, k, id, spec};
    pthread_mutex_lock(&c->mu);
    redisReply *r = cmd_argv(c, spec ? 4 : 3, argv);
    int rc = !r ? ITS_ENET : r->type == REDIS_REPLY_INTEGER ? (int)r->integer : ITS_EPROTO;
    if (r && r->type == REDIS_REPLY_ERROR)
        its_loge("cluster", id, "%s refused: %s", cmd, r->str);
    if (r)
        freeReplyObject(r);
    if (rc > 0 || (rc == 0 && !strcmp(cmd, "HSET")))
        notify(c, id);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

int its_cluster_seed(its_cluster *c, const char *id, const char *spec)
{
    if (c->started || !valid_name(id) || !spec || !*spec)
        return ITS_EINVAL;
    if (c->n_seeds == c->cap_seeds) {
        int cap = c->cap_seeds ? 2 * c->cap_seeds : 16;
        char **v = its_realloc(ITS_MOD_APP, c->seeds, (size_t)cap * 2 * sizeof *v);
        if (!v)
            return ITS_ENOMEM;
        c->seeds = v;
        c->cap_seeds = cap;
    }
    char *a = its_strdup(ITS_MOD_APP, id), *b = its_strdup(ITS_MOD_APP, spec);
    if (!a || !b) {
        its_free(a);
        its_free(b);
        return ITS_ENOMEM;
    }
    c->seeds[2 * c->n_seeds] = a;
    c->seeds[2 * c->n_seeds + 1] = b;
    c->n_seeds++;
    return 0;
}

/* The thread, until done: the seeds into the registry (HSETNX). 0 done, ITS_ENET. */
static int write_seeds(its_cluster *c)
{
    int added = 0;
    while (c->seeded < c->n_seeds) {
        int rc = hash_write(c, "HSETNX", c->seeds[2 * c->seeded], c->seeds[2 * c->seeded + 1]);
        if (rc == ITS_ENET)
            return rc;
        added += rc == 1;
        c->seeded++;
    }
    if (c->n_seeds && !c->seeds_logged) {
        its_logi("cluster", NULL, "registry seeded from the file: %d of %d cameras were new", added,
                 c->n_seeds);
        c->seeds_logged = 1;
    }
    return 0;
}

int its_cluster_put(its_cluster *c, const char *id, const char *spec, int replace)
{
    int rc = hash_write(c, replace ? "HSET" : "HSETNX", id, spec);
    if (rc < 0)
        return rc;
    if (replace)
        return rc == 1 ? 0 : 1; /* HSET: 1 new field, 0 updated */
    return rc == 1 ? 0 : ITS_EEXIST;
}

int its_cluster_remove(its_cluster *c, const char *id)
{
    int rc = hash_write(c, "HDEL", id, NULL);
    if (rc == 1) { /* its checkpoint goes with it (a camera added again starts at zero) */
        char k[160];
        cam_key(c, k, sizeof k, "ckpt", id);
        const char *argv[] = {"DEL", k};
        pthread_mutex_lock(&c->mu);
        redisReply *r = cmd_argv(c, 2, argv);
        pthread_mutex_unlock(&c->mu);
        if (r)
            freeReplyObject(r);
    }
    return rc < 0 ? rc : rc == 1 ? 0 : ITS_ENOENT;
}

/* ---- the registry ---------------------------------------------------------------------- */

static int cam_cmp(const void *a, const void *b)
{
    return strcmp(((const cam *)a)->id, ((const cam *)b)->id);
}

static cam *find_cam(its_cluster *c, const char *id)
{
    cam k;
    snprintf(k.id, sizeof k.id, "%s", id);
    return c->n_cams ? bsearch(&k, c->cams, (size_t)c->n_cams, sizeof *c->cams, cam_cmp) : NULL;
}

/* HGETALL of the registry into cams (kept sorted by id). 0 or ITS_ENET. */
static int read_registry(its_cluster *c)
{
    char k[96];
    key(c, k, sizeof k, "cameras", NULL);
    const char *argv[] = {"HGETALL", k};
    pthread_mutex_lock(&c->mu);
    redisReply *r = cmd_argv(c, 2, argv);
    pthread_mutex_unlock(&c->mu);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r)
            freeReplyObject(r);
        return ITS_ENET;
    }
    for (int i = 0; i < c->n_cams; i++) {
        its_free(c->cams[i].spec);
        c->cams[i].spec = NULL;
    }
    int n0 = c->n_cams;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *id = r->element[i], *spec = r->element[i + 1];
        if (id->type != REDIS_REPLY_STRING || spec->type != REDIS_REPLY_STRING ||
            !valid_name(id->str))
            continue;
        cam k2, *e; /* the first n0 entries are sorted; new ones are appended after them */
        snprintf(k2.id, sizeof k2.id, "%s", id->str);
        e = n0 ? bsearch(&k2, c->cams, (size_t)n0, sizeof *c->cams, cam_cmp) : NULL;
        if (!e) {
            if (c->n_cams == c->cap_cams) {
                int cap = c->cap_cams ? 2 * c->cap_cams : 64;
                cam *v = its_realloc(ITS_MOD_APP, c->cams, (size_t)cap * sizeof *v);
                if (!v)
                    break;
                c->cams = v;
                c->cap_cams = cap;
            }
            e = &c->cams[c->n_cams++];
            memset(e, 0, sizeof *e);
            snprintf(e->id, sizeof e->id, "%s", id->str);
        }
        e->spec = its_strdup(ITS_MOD_APP, spec->str);
    }
    freeReplyObject(r);
    /* entries neither in the registry nor served go */
    int w = 0;
    for (int i = 0; i < c->n_cams; i++) {
        if (!c->cams[i].spec && !c->cams[i].running)
            continue;
        c->cams[w++] = c->cams[i];
    }
    c->n_cams = w;
    if (c->n_cams > 1) /* cams is NULL while the registry has been empty */
        qsort(c->cams, (size_t)c->n_cams, sizeof *c->cams, cam_cmp);
    return 0;
}

/* ---- ownership ------------------------------------------------------------------------- */

/* h(camera, replica) uniform in (0, 1): FNV-1a over "camera\0replica", then a 64-bit
 * finaliser (splitmix64), so that similar names give unrelated values. */
static double unit_hash(const char *a, const char *b)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = a; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    h = (h ^ 0) * 1099511628211ull;
    for (const char *p = b; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return ((double)(h >> 11) + 0.5) / 9007199254740992.0;
}

/* Marks the cameras the current view assigns to us (its/cluster.h has the rule). */
static void assign(its_cluster *c)
{
    int n = 0;
    double total = 0;
    for (int i = 0; i < c->n_cams; i++) {
        c->cams[i].mine = 0;
        n += c->cams[i].spec != NULL;
    }
    for (int m = 0; m < c->n_members; m++) {
        total += c->members[m].cap;
        c->members[m].n = 0;
    }
    if (total <= 0 || !c->held)
        return;
    for (int m = 0; m < c->n_members; m++) {
        double q = ceil((double)n * c->members[m].cap / total - 1e-9);
        c->members[m].quota = (int)(q < c->members[m].cap ? q : c->members[m].cap);
    }
    for (int i = 0; i < c->n_cams; i++) { /* sorted by id */
        cam *e = &c->cams[i];
        if (!e->spec)
            continue;
        int best = -1;
        double best_s = -1;
        for (int m = 0; m < c->n_members; m++) {
            member *mb = &c->members[m];
            if (mb->n >= mb->quota)
                continue;
            double s = mb->cap / -log(unit_hash(e->id, mb->name));
            if (s > best_s) {
                best_s = s;
                best = m;
            }
        }
        if (best >= 0) {
            c->members[best].n++;
            e->mine = !strcmp(c->members[best].name, c->replica);
        }
    }
}

/* Our owner key of the camera becomes "-" for the handover gap. */
static void release(its_cluster *c, const char *id)
{
    char k[160], gap[16];
    key(c, k, sizeof k, "owner", id);
    snprintf(gap, sizeof gap, "%d", c->cfg.handover_gap_ms);
    const char *argv[] = {"EVAL", release_lua, "1", k, c->replica, gap};
    pthread_mutex_lock(&c->mu);
    redisReply *r = cmd_argv(c, 6, argv);
    pthread_mutex_unlock(&c->mu);
    if (r)
        freeReplyObject(r);
}

/* The epoch the camera was taken with, set (epoch > 0) or forgotten (0). */
static void set_epoch(its_cluster *c, const char *id, long long epoch)
{
    pthread_mutex_lock(&c->ck_mu);
    int i = 0;
    while (i < c->n_helds && strcmp(c->helds[i].id, id))
        i++;
    if (epoch <= 0) {
        if (i < c->n_helds)
            c->helds[i] = c->helds[--c->n_helds];
    } else {
        if (i == c->n_helds && c->n_helds == c->cap_helds) {
            int cap = c->cap_helds ? 2 * c->cap_helds : 16;
            held *v = its_realloc(ITS_MOD_APP, c->helds, (size_t)cap * sizeof *v);
            if (v) {
                c->helds = v;
                c->cap_helds = cap;
            }
        }
        if (i < c->cap_helds) { /* out of memory: no checkpoints for it */
            if (i == c->n_helds)
                c->n_helds++;
            snprintf(c->helds[i].id, sizeof c->helds[i].id, "%s", id);
            c->helds[i].epoch = epoch;
        }
    }
    pthread_mutex_unlock(&c->ck_mu);
}

/* Stops a camera. A handover keeps its epoch and owner key until hand_over() (its last
 * checkpoint is still to be written); any other stop forgets them at once. */
static void stop_cam(its_cluster *c, cam *e, int handover)
{
    if (!e->running)
        return;
    c->ops.stop(c->ops.ud, e->id);
    e->closing = 1;
    if (handover)
        e->handing = 1;
    else
        set_epoch(c, e->id, 0);
    its_free(e->running);
    e->running = NULL;
    atomic_fetch_sub(&c->serving, 1);
}

/* Waits until every camera stopped since the last wait has closed (ops.closed: its frames in
 * flight through, its last checkpoint written), all together, at most
 * ITS_CLUSTER_CLOSE_WAIT_MS and half the fence's margin (no renewal is sent meanwhile). */
static void wait_closed(its_cluster *c)
{
    int ms = (c->cfg.lease_ttl_ms - c->cfg.handover_gap_ms) / 2;
    ms = ms < ITS_CLUSTER_CLOSE_WAIT_MS ? ms : ITS_CLUSTER_CLOSE_WAIT_MS;
    uint64_t until = its_now_ns() + (uint64_t)ms * ITS_NS_PER_MS;
    for (int open = c->ops.closed != NULL; open && its_now_ns() < until;) {
        open = 0;
        for (int i = 0; i < c->n_cams && !open; i++)
            open = c->cams[i].closing && !c->ops.closed(c->ops.ud, c->cams[i].id);
        if (open)
            its_sleep_ns(10 * ITS_NS_PER_MS);
    }
    for (int i = 0; i < c->n_cams; i++)
        c->cams[i].closing = 0;
}

/* The cameras stopped for a handover: once closed, each is released. */
static void hand_over(its_cluster *c)
{
    wait_closed(c);
    for (int i = 0; i < c->n_cams; i++) {
        cam *e = &c->cams[i];
        if (!e->handing)
            continue;
        e->handing = 0;
        set_epoch(c, e->id, 0);
        release(c, e->id);
    }
}

static void stop_all(its_cluster *c, const char *why)
{
    int n = atomic_load(&c->serving);
    if (n > 0)
        its_logw("cluster", NULL, "stopping all %d cameras: %s", n, why);
    for (int i = 0; i < c->n_cams; i++)
        stop_cam(c, &c->cams[i], 0);
}

/* The take script: 1 taken (*epoch set), 0 someone else's, < 0 Redis away; *gap_ms: the
 * handover gap left (0: none). */
static int take(its_cluster *c, const char *id, long long *epoch, long long *gap_ms)
{
    char k[160], ck[160], ttl[16];
    key(c, k, sizeof k, "owner", id);
    cam_key(c, ck, sizeof ck, "ckpt", id);
    snprintf(ttl, sizeof ttl, "%d", c->cfg.lease_ttl_ms);
    const char *argv[] = {"EVAL", take_lua, "2", k, ck, c->replica, ttl};
    pthread_mutex_lock(&c->mu);
    redisReply *r = cmd_argv(c, 7, argv);
    pthread_mutex_unlock(&c->mu);
    *epoch = *gap_ms = 0;
    int rc = ITS_ENET;
    if (r && r->type == REDIS_REPLY_INTEGER) {
        rc = r->integer > 0;
        *epoch = r->integer > 0 ? r->integer : 0;
        *gap_ms = r->integer < 0 ? -r->integer : 0;
    } else if (r) {
        its_loge("cluster", id, "take refused: %s", r->type == REDIS_REPLY_ERROR ? r->str : "?");
    }
    if (r)
        freeReplyObject(r);
    return rc;
}

/* Start, stop or restart what the view says. */
static void reconcile(its_cluster *c)
{
    for (int i = 0; i < c->n_cams; i++) {
        cam *e = &c->cams[i];
        if (e->running && (!e->mine || !e->spec)) {
            its_logi("cluster", e->id, "handing over (%s)",
                     e->spec ? "owned elsewhere" : "removed");
            stop_cam(c, e, 1);
        } else if (e->running && strcmp(e->running, e->spec) != 0) {
            /* stopped and released like a handover: started again after the gap */
            its_logi("cluster", e->id, "settings changed: restarting");
            stop_cam(c, e, 1);
        }
    }
    hand_over(c);
    int capacity = c->cfg.capacity;
    for (int i = 0; i < c->n_cams; i++) {
        cam *e = &c->cams[i];
        if (!e->mine || e->running || !e->spec || atomic_load(&c->serving) >= capacity ||
            its_now_ns() < e->retry_ns)
            continue;
        long long epoch, gap_ms;
        int t = take(c, e->id, &epoch, &gap_ms);
        if (t < 0)
            return;
        if (t == 0) { /* the previous owner has not let go yet; after a handover gap, at once */
            if (gap_ms > 0)
                e->retry_ns = its_now_ns() + (uint64_t)(gap_ms + 10) * ITS_NS_PER_MS;
            continue;
        }
        set_epoch(c, e->id, epoch); /* before start: the camera may checkpoint at once */
        int rc = c->ops.start(c->ops.ud, e->id, e->spec);
        if (rc == 0 && !(e->running = its_strdup(ITS_MOD_APP, e->spec))) {
            c->ops.stop(c->ops.ud, e->id);
            rc = ITS_ENOMEM;
        }
        if (rc < 0) {
            its_logw("cluster", e->id, "cannot start (%s): released, tried again in %d ms",
                     its_strerror(rc), c->cfg.resync_ms);
            set_epoch(c, e->id, 0);
            release(c, e->id);
            e->retry_ns = its_now_ns() + (uint64_t)c->cfg.resync_ms * ITS_NS_PER_MS;
            continue;
        }
        atomic_fetch_add(&c->serving, 1);
        its_logi("cluster", e->id, "serving");
    }
}

/* The renewal script's reply into members and lost cameras. */
static void apply_renewal(its_cluster *c, const redisReply *r)
{
    const redisReply *lost = r->element[1], *live = r->element[2];
    for (size_t i = 0; lost->type == REDIS_REPLY_ARRAY && i < lost->elements; i++) {
        cam *e = lost->element[i]->type == REDIS_REPLY_STRING ? find_cam(c, lost->element[i]->str)
                                                              : NULL;
        if (e && e->running && !atomic_load(&c->frozen_ack)) {
            its_logw("cluster", e->id, "owner key lost: stopping");
            stop_cam(c, e, 0);
        }
    }
    int n = live->type == REDIS_REPLY_ARRAY ? (int)live->elements / 2 : 0;
    if (n > c->cap_members) {
        member *v = its_realloc(ITS_MOD_APP, c->members, (size_t)n * sizeof *v);
        if (!v)
            return;
        c->members = v;
        c->cap_members = n;
    }
    c->n_members = 0;
    for (int i = 0; i < n; i++) {
        const redisReply *nm = live->element[2 * i], *cp = live->element[2 * i + 1];
        if (nm->type != REDIS_REPLY_STRING || cp->type != REDIS_REPLY_STRING ||
            !valid_name(nm->str))
            continue;
        member *m = &c->members[c->n_members++];
        snprintf(m->name, sizeof m->name, "%s", nm->str);
        m->cap = atof(cp->str);
    }
    atomic_store(&c->n_live, c->n_members);
}

static void new_token(its_cluster *c)
{
    uint64_t a = its_now_ns() ^ ((uint64_t)(uintptr_t)c << 17), b = its_wall_ns();
    a ^= a >> 33;
    a *= 0xff51afd7ed558ccdull;
    a ^= a >> 33;
    snprintf(c->token, sizeof c->token, "%016llx%016llx", (unsigned long long)a,
             (unsigned long long)b);
}

/* The renewal script with the current token: 1 renewed (members and lost cameras applied),
 * 0 the lease is not ours, < 0 Redis away or refusing. */
static int renew_script(its_cluster *c, const char *ttl, const char *capv, uint64_t sent)
{
    int n = 5;
    for (int i = 0; i < c->n_cams; i++)
        n += c->cams[i].running != NULL;
    const char **argv = its_malloc(ITS_MOD_APP, (size_t)(n + 3) * sizeof *argv);
    if (!argv)
        return ITS_ENOMEM;
    char nkeys[] = "0";
    argv[0] = "EVAL";
    argv[1] = renew_lua;
    argv[2] = nkeys;
    argv[3] = c->prefix;
    argv[4] = c->replica;
    argv[5] = c->token;
    argv[6] = ttl;
    argv[7] = capv;
    int k = 8;
    for (int i = 0; i < c->n_cams; i++)
        if (c->cams[i].running)
            argv[k++] = c->cams[i].id;
    pthread_mutex_lock(&c->mu);
    redisReply *r = cmd_argv(c, k, argv);
    pthread_mutex_unlock(&c->mu);
    its_free(argv);
    int rc = ITS_ENET;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
        r->element[0]->type == REDIS_REPLY_INTEGER) {
        rc = r->element[0]->integer == 1 && r->elements == 3;
        if (rc) {
            c->last_ok = sent;
            apply_renewal(c, r);
        }
    } else if (r && r->type == REDIS_REPLY_ERROR) {
        its_loge("cluster", NULL, "lease renewal refused: %s", r->str);
        rc = ITS_EPROTO;
    }
    if (r)
        freeReplyObject(r);
    return rc;
}

static void lease_taken(its_cluster *c, uint64_t sent, const char *how)
{
    c->held = 1;
    /* replicas starting together see each other before either takes cameras */
    c->settle_until = sent + (uint64_t)c->cfg.lease_ttl_ms * ITS_NS_PER_MS / 4;
    its_logi("cluster", NULL, "replica %s %s its lease (capacity %d)", c->replica, how,
             c->cfg.capacity);
}

/* One renewal; without a lease, one attempt to take one. A replica fenced while its lease
 * lived on in Redis (an outage shorter than the lease) renews that lease again instead of
 * waiting for it to expire: its cameras were stopped, and it takes each back only through
 * its owner key, as any other replica would. */
static void renew(its_cluster *c)
{
    char lease[160], ttl[16], capv[16];
    key(c, lease, sizeof lease, "lease", c->replica);
    snprintf(ttl, sizeof ttl, "%d", c->cfg.lease_ttl_ms);
    snprintf(capv, sizeof capv, "%d", c->cfg.capacity);
    uint64_t sent = its_now_ns();
    if (c->held || c->token[0]) {
        int rc = renew_script(c, ttl, capv, sent);
        if (rc == 1 && !c->held)
            lease_taken(c, sent, "renews");
        if (rc != 0)
            return;
        if (c->held) {
            c->held = 0;
            c->n_members = 0;
            atomic_store(&c->valid_until, 0);
            stop_all(c, "the lease is gone (expired or taken)");
            /* a new lease opens the output again (its_sink_fenced): not before the frames
             * these cameras had in flight (a stalled process's) are through and dropped */
            wait_closed(c);
        }
        c->token[0] = 0;
    }
    new_token(c);
    const char *argv[] = {"SET", lease, c->token, "NX", "PX", ttl};
    pthread_mutex_lock(&c->mu);
    redisReply *r = cmd_argv(c, 6, argv);
    pthread_mutex_unlock(&c->mu);
    int taken = r && r->type == REDIS_REPLY_STATUS;
    if (r)
        freeReplyObject(r);
    if (!taken) {
        c->token[0] = 0; /* someone holds a lease of this name: wait for it to expire */
        return;
    }
    c->last_ok = sent;
    lease_taken(c, sent, "holds");
    renew_script(c, ttl, capv, sent); /* the members, at once */
}

/* ---- the change subscription ----------------------------------------------------------- */

static void sub_open(its_cluster *c)
{
    char err[256], ch[96];
    c->sub = its_redis_connect(&c->cfg.redis, NULL, err, sizeof err);
    if (!c->sub)
        return;
    key(c, ch, sizeof ch, "changes", NULL);
    redisReply *r = redisCommand(c->sub, "SUBSCRIBE %s", ch);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        redisFree(c->sub);
        c->sub = NULL;
    }
    if (r)
        freeReplyObject(r);
    c->dirty = 1; /* changes may have been missed while unsubscribed */
}

/* Waits for a change message until deadline; sets dirty when one came. */
static void sub_wait(its_cluster *c, uint64_t deadline)
{
    for (;;) {
        uint64_t now = its_now_ns();
        if (now >= deadline || atomic_load(&c->stop) ||
            (atomic_load(&c->frozen) && !atomic_load(&c->frozen_ack)))
            return;
        int ms = (int)((deadline - now) / ITS_NS_PER_MS) + 1;
        if (ms > 100)
            ms = 100; /* to notice stop */
        if (!c->sub) {
            its_sleep_ns((uint64_t)ms * ITS_NS_PER_MS);
            continue;
        }
        struct pollfd pfd = {.fd = c->sub->fd, .events = POLLIN};
        if (poll(&pfd, 1, ms) <= 0)
            continue;
        if (redisBufferRead(c->sub) != REDIS_OK) {
            redisFree(c->sub);
            c->sub = NULL;
            return;
        }
        void *reply = NULL;
        while (redisGetReplyFromReader(c->sub, &reply) == REDIS_OK && reply) {
            c->dirty = 1;
            c->renew_now = 1;
            freeReplyObject(reply);
            reply = NULL;
        }
        if (c->dirty)
            return;
    }
}

/* ---- the thread ------------------------------------------------------------------------ */

/* Frozen (a graceful stop's drain): the lease and the owner keys of the cameras served are
 * renewed, nothing else; a lease lost or fenced closes the output and checkpoints (no camera is
 * stopped here: the pipeline is stopping them), and no new lease is taken. */
static void renew_frozen(its_cluster *c, uint64_t fence)
{
    char ttl[16], capv[16];
    snprintf(ttl, sizeof ttl, "%d", c->cfg.lease_ttl_ms);
    snprintf(capv, sizeof capv, "%d", c->cfg.capacity);
    if (c->held && renew_script(c, ttl, capv, its_now_ns()) == 0)
        c->held = 0;
    if (c->held && its_now_ns() - c->last_ok >= fence)
        c->held = 0;
    atomic_store(&c->valid_until, c->held ? c->last_ok + fence : 0);
    if (c->ops.lease)
        c->ops.lease(c->ops.ud, c->held ? c->last_ok + fence : 0);
}

static void *run(void *arg)
{
    its_cluster *c = arg;
    uint64_t tick = (uint64_t)c->cfg.lease_ttl_ms * ITS_NS_PER_MS / 4;
    uint64_t fence = (uint64_t)(c->cfg.lease_ttl_ms - c->cfg.handover_gap_ms) * ITS_NS_PER_MS;
    uint64_t next_renew = 0;
    while (!atomic_load(&c->stop)) {
        uint64_t now = its_now_ns();
        if (atomic_load(&c->frozen)) {
            atomic_store(&c->frozen_ack, 1);
            if (now >= next_renew) {
                renew_frozen(c, fence);
                next_renew = now + tick;
            }
            sub_wait(c, next_renew);
            continue;
        }
        atomic_store(&c->ready, c->held);
        if (c->seeded < c->n_seeds && write_seeds(c) < 0) {
            sub_wait(c, now + 500 * ITS_NS_PER_MS);
            continue;
        }
        if (now >= next_renew || c->renew_now) {
            c->renew_now = 0;
            renew(c);
            next_renew = now + tick;
            if (c->held && its_now_ns() - c->last_ok >= fence) {
                c->held = 0;
                c->n_members = 0;
                atomic_store(&c->valid_until, 0);
                stop_all(c, "no lease renewal for too long (fenced)");
            }
            atomic_store(&c->valid_until, c->held ? c->last_ok + fence : 0);
            if (c->ops.lease)
                c->ops.lease(c->ops.ud, c->held ? c->last_ok + fence : 0);
        }
        if (!c->sub)
            sub_open(c);
        if (c->dirty || now >= c->next_resync) {
            if (read_registry(c) == 0) {
                c->dirty = 0;
                c->next_resync = now + (uint64_t)c->cfg.resync_ms * ITS_NS_PER_MS;
            }
        }
        if (c->held && its_now_ns() >= c->settle_until) {
            assign(c);
            reconcile(c);
        }
        /* a camera waiting out a handover gap is taken when the gap ends */
        uint64_t wake = next_renew;
        for (int i = 0; c->held && i < c->n_cams; i++) {
            const cam *e = &c->cams[i];
            if (e->mine && !e->running && e->spec && e->retry_ns > its_now_ns() &&
                e->retry_ns < wake)
                wake = e->retry_ns;
        }
        sub_wait(c, wake);
    }
    return NULL;
}

int its_cluster_create(const its_cluster_config *cfg, const its_cluster_ops *ops, its_cluster **out,
                       char *err, size_t errlen)
{
    *out = NULL;
    if (!valid_name(cfg->replica))
        return its_seterr(err, errlen, ITS_ECONFIG,
                          "cluster: replica name '%s' may hold only letters, digits, '-', '_', "
                          "'.' (1 to %d)",
                          cfg->replica ? cfg->replica : "", ITS_CLUSTER_NAME_MAX);
    if (cfg->capacity < 1 || cfg->lease_ttl_ms < 3000 || cfg->resync_ms < 100 ||
        cfg->handover_gap_ms <= 1000 || cfg->handover_gap_ms > cfg->lease_ttl_ms / 2 || !ops ||
        !ops->start || !ops->stop)
        return its_seterr(err, errlen, ITS_ECONFIG,
                          "cluster: need capacity >= 1, lease_ttl_ms >= 3000, a handover gap "
                          "above 1000 ms and at most half the lease");
    its_cluster *c = its_calloc(ITS_MOD_APP, 1, sizeof *c);
    if (!c)
        return its_seterr(err, errlen, ITS_ENOMEM, "cluster: out of memory");
    c->cfg = *cfg;
    c->ops = *ops;
    snprintf(c->replica, sizeof c->replica, "%s", cfg->replica);
    snprintf(c->prefix, sizeof c->prefix, "%s", cfg->prefix ? cfg->prefix : "its:cluster");
    c->cfg.replica = c->replica;
    c->cfg.prefix = c->prefix;
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->ck_mu, NULL);
    *out = c;
    return 0;
}

int its_cluster_ready(its_cluster *c)
{
    return c && atomic_load(&c->ready);
}

int its_cluster_start(its_cluster *c)
{
    if (c->started || c->left)
        return ITS_EINVAL;
    if (pthread_create(&c->thread, NULL, run, c) != 0)
        return ITS_ENOMEM;
    c->started = 1;
    return 0;
}

void its_cluster_counts(its_cluster *c, int *serving, int *members)
{
    if (serving)
        *serving = c ? atomic_load(&c->serving) : 0;
    if (members)
        *members = c ? atomic_load(&c->n_live) : 0;
}

void its_cluster_freeze(its_cluster *c)
{
    if (!c)
        return;
    atomic_store(&c->frozen, 1);
    atomic_store(&c->ready, 0);
    c->left = 1;                                       /* not started again */
    while (c->started && !atomic_load(&c->frozen_ack)) /* a reconcile in progress ends */
        its_sleep_ns(2 * ITS_NS_PER_MS);
}

void its_cluster_leave(its_cluster *c)
{
    if (!c)
        return;
    its_cluster_freeze(c);
    if (c->started) { /* the renewals end here */
        atomic_store(&c->stop, 1);
        pthread_join(c->thread, NULL);
        c->started = 0;
    }
    atomic_store(&c->valid_until, 0); /* the cameras' last checkpoints are written */
    pthread_mutex_lock(&c->ck_mu);
    c->n_helds = 0;
    pthread_mutex_unlock(&c->ck_mu);
    if (!c->held && !c->token[0])
        return;
    /* the cameras stopped with the pipeline: only their keys are handed over */
    int n = 0;
    for (int i = 0; i < c->n_cams; i++)
        if (c->cams[i].running) {
            release(c, c->cams[i].id);
            its_free(c->cams[i].running);
            c->cams[i].running = NULL;
            n++;
        }
    atomic_store(&c->serving, 0);
    char lease[160], members[96];
    key(c, lease, sizeof lease, "lease", c->replica);
    key(c, members, sizeof members, "members", NULL);
    const char *argv[] = {"EVAL", drop_lua, "2", lease, members, c->token, c->replica};
    pthread_mutex_lock(&c->mu);
    redisReply *r = cmd_argv(c, 7, argv);
    if (r)
        notify(c, "-"); /* the others see the members at once, not at their next renewal */
    pthread_mutex_unlock(&c->mu);
    if (r)
        freeReplyObject(r);
    c->held = 0;
    its_logi("cluster", NULL, "left the cluster: %d cameras handed over, lease given up", n);
}

void its_cluster_destroy(its_cluster *c)
{
    if (!c)
        return;
    its_cluster_leave(c);
    if (c->cmd)
        redisFree(c->cmd);
    if (c->sub)
        redisFree(c->sub);
    if (c->ck)
        redisFree(c->ck);
    its_free(c->helds);
    pthread_mutex_destroy(&c->ck_mu);
    for (int i = 0; i < c->n_cams; i++) {
        its_free(c->cams[i].spec);
        its_free(c->cams[i].running);
    }
    its_free(c->cams);
    its_free(c->members);
    for (int i = 0; i < 2 * c->n_seeds; i++)
        its_free(c->seeds[i]);
    its_free(c->seeds);
    pthread_mutex_destroy(&c->mu);
    its_free(c);
}

/* ---- checkpoints ----------------------------------------------------------------------- */

/* A command on the checkpoint connection (made if needed, at most once per 500 ms); caller
 * holds ck_mu. NULL after a connection error (the connection is then dropped). */
static redisReply *ck_argv(its_cluster *c, int argc, const char **argv, const size_t *lens)
{
    uint64_t now = its_now_ns();
    if (!c->ck && now >= c->ck_retry_ns) {
        char err[256];
        if (!(c->ck = its_redis_connect(&c->cfg.redis, NULL, err, sizeof err))) {
            c->ck_retry_ns = now + 500 * ITS_NS_PER_MS;
            its_logw("cluster", NULL, "checkpoints: %s", err);
        }
    }
    if (!c->ck)
        return NULL;
    redisReply *r = redisCommandArgv(c->ck, argc, argv, lens);
    if (!r || (r->type == REDIS_REPLY_ERROR &&
               (!strncmp(r->str, "READONLY", 8) || !strncmp(r->str, "MASTERDOWN", 10) ||
                !strncmp(r->str, "LOADING", 7)))) {
        its_logw("cluster", NULL, "checkpoints: Redis: %s", r ? r->str : c->ck->errstr);
        if (r)
            freeReplyObject(r);
        redisFree(c->ck);
        c->ck = NULL;
        return NULL;
    }
    return r;
}

int its_cluster_checkpoint_save(its_cluster *c, const char *id, const char *data, size_t len)
{
    if (!c || !valid_name(id) || !data)
        return ITS_EINVAL;
    if (its_now_ns() >= atomic_load(&c->valid_until))
        return ITS_EBUSY; /* fenced, or leaving: the camera may be someone else's by now */
    char k[160], ck[160], ep[24];
    key(c, k, sizeof k, "owner", id);
    cam_key(c, ck, sizeof ck, "ckpt", id);
    pthread_mutex_lock(&c->ck_mu);
    long long epoch = 0;
    for (int i = 0; i < c->n_helds && !epoch; i++)
        if (!strcmp(c->helds[i].id, id))
            epoch = c->helds[i].epoch;
    if (!epoch) {
        pthread_mutex_unlock(&c->ck_mu);
        return ITS_EBUSY;
    }
    snprintf(ep, sizeof ep, "%lld", epoch);
    const char *argv[] = {"EVAL", save_lua, "2", k, ck, c->replica, ep, data};
    size_t lens[8];
    for (int i = 0; i < 7; i++)
        lens[i] = strlen(argv[i]);
    lens[7] = len;
    redisReply *r = ck_argv(c, 8, argv, lens);
    pthread_mutex_unlock(&c->ck_mu);
    int rc = !r                               ? ITS_ENET
             : r->type != REDIS_REPLY_INTEGER ? ITS_EPROTO
             : r->integer == 1                ? 0
                                              : ITS_EBUSY;
    if (r && r->type == REDIS_REPLY_ERROR)
        its_loge("cluster", id, "checkpoint refused: %s", r->str);
    if (r)
        freeReplyObject(r);
    return rc;
}

int its_cluster_checkpoint_load(its_cluster *c, const char *id, char **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    if (!c || !valid_name(id))
        return ITS_EINVAL;
    char ck[160];
    cam_key(c, ck, sizeof ck, "ckpt", id);
    const char *argv[] = {"HGET", ck, "data"};
    pthread_mutex_lock(&c->ck_mu);
    redisReply *r = ck_argv(c, 3, argv, NULL);
    pthread_mutex_unlock(&c->ck_mu);
    int rc = !r                              ? ITS_ENET
             : r->type == REDIS_REPLY_STRING ? 0
             : r->type == REDIS_REPLY_NIL    ? ITS_ENOENT
                                             : ITS_EPROTO;
    if (rc == 0) {
        if ((*data = its_malloc(ITS_MOD_APP, r->len + 1))) {
            memcpy(*data, r->str, r->len);
            (*data)[r->len] = 0;
            *len = r->len;
        } else {
            rc = ITS_ENOMEM;
        }
    }
    if (r)
        freeReplyObject(r);
    return rc;
}

/*
 * The L1 cache: a hash table with chaining plus an intrusive LRU list, bounded both in
 * entries and in bytes, under one mutex (reads come from the HTTP API's threads, writes from
 * the publishers; both are short). An entry is one block holding key and value; overwriting
 * a key reuses its block when the new value fits, so the steady state (the same keys
 * rewritten every frame or window) does not allocate.
 *
 * On an L1 miss its_cache_get asks Redis with GET and PTTL in one round trip on a private
 * connection, and warms L1 with what Redis says is left of the TTL.
 */
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <string.h>
#include <sys/time.h>

#include "its/core.h"
#include "its/publish.h"
#include "publish_impl.h"

typedef struct entry {
    struct entry *hnext;       /* hash chain */
    struct entry *prev, *next; /* LRU list, most recent at head */
    uint64_t hash;
    uint64_t expire_ns;
    size_t klen, vlen, cap; /* cap: bytes available for key + value + 2 NULs */
    char data[];            /* key NUL value NUL */
} entry;

struct its_cache {
    pthread_mutex_t lock;
    pthread_mutex_t rlock; /* the Redis connection */
    size_t max_entries, max_bytes;
    entry **table;
    size_t nbuckets; /* power of two */
    entry *head, *tail;
    size_t entries, bytes;
    its_cache_stats st;
    /* Redis read-through */
    char *host, *username, *password, *sentinels, *master_name;
    int port, db, connect_timeout_ms, command_timeout_ms;
    redisContext *rc;
    uint64_t next_connect_ns;
    its_metric *m_hit_l1, *m_hit_redis, *m_miss, *m_entries, *m_bytes;
};

void its_cache_config_default(its_cache_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->max_entries = ITS_CACHE_MAX_ENTRIES;
    cfg->max_bytes = (size_t)ITS_CACHE_MAX_MB << 20;
    cfg->port = ITS_PUBLISH_PORT;
    cfg->connect_timeout_ms = ITS_PUBLISH_CONNECT_TIMEOUT_MS;
    cfg->command_timeout_ms = ITS_PUBLISH_COMMAND_TIMEOUT_MS;
}

static uint64_t fnv1a(const char *s, size_t *len)
{
    uint64_t h = 1469598103934665603ULL;
    const char *p = s;
    for (; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    *len = (size_t)(p - s);
    return h;
}

static size_t entry_cost(const entry *e)
{
    return e->klen + e->vlen;
}

int its_cache_create(const its_cache_config *cfg, its_metrics *metrics, its_cache **out)
{
    its_cache_config def;
    if (!cfg) {
        its_cache_config_default(&def);
        cfg = &def;
    }
    if (!out || cfg->max_entries == 0 || cfg->max_bytes == 0 || cfg->max_entries > (1u << 24))
        return ITS_EINVAL;
    its_cache *c = its_calloc(ITS_MOD_PUBLISH, 1, sizeof *c);
    if (!c)
        return ITS_ENOMEM;
    pthread_mutex_init(&c->lock, NULL);
    pthread_mutex_init(&c->rlock, NULL);
    c->max_entries = cfg->max_entries;
    c->max_bytes = cfg->max_bytes;
    c->nbuckets = 16;
    while (c->nbuckets < cfg->max_entries * 2)
        c->nbuckets *= 2;
    c->table = its_calloc(ITS_MOD_PUBLISH, c->nbuckets, sizeof *c->table);
    c->port = cfg->port;
    c->db = cfg->db;
    c->connect_timeout_ms =
        cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : ITS_PUBLISH_CONNECT_TIMEOUT_MS;
    c->command_timeout_ms =
        cfg->command_timeout_ms > 0 ? cfg->command_timeout_ms : ITS_PUBLISH_COMMAND_TIMEOUT_MS;
    int bad = !c->table;
    if (cfg->host)
        bad |= !(c->host = its_strdup(ITS_MOD_PUBLISH, cfg->host));
    if (cfg->username)
        bad |= !(c->username = its_strdup(ITS_MOD_PUBLISH, cfg->username));
    if (cfg->password)
        bad |= !(c->password = its_strdup(ITS_MOD_PUBLISH, cfg->password));
    if (cfg->sentinels && cfg->sentinels[0])
        bad |= !(c->sentinels = its_strdup(ITS_MOD_PUBLISH, cfg->sentinels));
    if (cfg->master_name)
        bad |= !(c->master_name = its_strdup(ITS_MOD_PUBLISH, cfg->master_name));
    if (bad) {
        its_cache_destroy(c);
        return ITS_ENOMEM;
    }
    if (metrics) {
        c->m_hit_l1 = its_metrics_series_v(its_metrics_std(metrics, ITS_M_CACHE_HITS), "l1");
        c->m_hit_redis = its_metrics_series_v(its_metrics_std(metrics, ITS_M_CACHE_HITS), "redis");
        c->m_miss = its_metrics_series(its_metrics_std(metrics, ITS_M_CACHE_MISSES), NULL);
        c->m_entries = its_metrics_series(its_metrics_std(metrics, ITS_M_CACHE_ENTRIES), NULL);
        c->m_bytes = its_metrics_series(its_metrics_std(metrics, ITS_M_CACHE_BYTES), NULL);
    }
    *out = c;
    return 0;
}

void its_cache_destroy(its_cache *c)
{
    if (!c)
        return;
    for (entry *e = c->head; e;) {
        entry *n = e->next;
        its_free(e);
        e = n;
    }
    if (c->rc)
        redisFree(c->rc);
    its_free(c->table);
    its_free(c->host);
    its_free(c->username);
    its_free(c->password);
    its_free(c->sentinels);
    its_free(c->master_name);
    pthread_mutex_destroy(&c->lock);
    pthread_mutex_destroy(&c->rlock);
    its_free(c);
}

static void lru_unlink(its_cache *c, entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push_front(its_cache *c, entry *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (!c->tail)
        c->tail = e;
}

static entry **find_slot(its_cache *c, const char *key, size_t klen, uint64_t h)
{
    entry **pp = &c->table[h & (c->nbuckets - 1)];
    while (*pp && !((*pp)->hash == h && (*pp)->klen == klen && !memcmp((*pp)->data, key, klen)))
        pp = &(*pp)->hnext;
    return pp;
}

static void remove_entry(its_cache *c, entry *e)
{
    entry **pp = find_slot(c, e->data, e->klen, e->hash);
    if (*pp == e)
        *pp = e->hnext;
    lru_unlink(c, e);
    c->entries--;
    c->bytes -= entry_cost(e);
    its_free(e);
}

static void publish_gauges(its_cache *c)
{
    c->st.entries = c->entries;
    c->st.bytes = c->bytes;
    its_metric_set(c->m_entries, (double)c->entries);
    its_metric_set(c->m_bytes, (double)c->bytes);
}

int its_cache_put(its_cache *c, const char *key, const void *val, size_t len, int ttl_s)
{
    if (!c || !key || (!val && len) || ttl_s <= 0)
        return ITS_EINVAL;
    size_t klen;
    uint64_t h = fnv1a(key, &klen);
    if (klen + len > c->max_bytes)
        return ITS_EOVERFLOW;
    uint64_t expire = its_now_ns() + (uint64_t)ttl_s * ITS_NS_PER_S;
    pthread_mutex_lock(&c->lock);
    entry **pp = find_slot(c, key, klen, h);
    entry *e = *pp;
    if (e && e->cap >= klen + len + 2) {
        /* Rewrite in place: the common case. */
        c->bytes -= entry_cost(e);
        lru_unlink(c, e);
    } else {
        if (e)
            remove_entry(c, e);
        size_t cap = klen + len + 2;
        cap += cap / 4; /* room for the value to grow a little without a new block */
        e = its_malloc(ITS_MOD_PUBLISH, sizeof *e + cap);
        if (!e) {
            pthread_mutex_unlock(&c->lock);
            return ITS_ENOMEM;
        }
        memset(e, 0, sizeof *e);
        e->cap = cap;
        e->hash = h;
        e->klen = klen;
        memcpy(e->data, key, klen + 1);
        pp = find_slot(c, key, klen, h);
        e->hnext = *pp;
        *pp = e;
        c->entries++;
    }
    memcpy(e->data + klen + 1, val, len);
    e->data[klen + 1 + len] = 0;
    e->vlen = len;
    e->expire_ns = expire;
    c->bytes += entry_cost(e);
    lru_push_front(c, e);
    /* Evict from the cold end until both bounds hold (never the entry just written). */
    while ((c->entries > c->max_entries || c->bytes > c->max_bytes) && c->tail != e) {
        remove_entry(c, c->tail);
        c->st.evictions++;
    }
    publish_gauges(c);
    pthread_mutex_unlock(&c->lock);
    return 0;
}

/* Looks key up under the lock; copies the value out. */
static int l1_lookup(its_cache *c, const char *key, char **val, size_t *len)
{
    size_t klen;
    uint64_t h = fnv1a(key, &klen);
    int rc = ITS_ENOENT;
    pthread_mutex_lock(&c->lock);
    entry *e = *find_slot(c, key, klen, h);
    if (e && e->expire_ns <= its_now_ns()) {
        remove_entry(c, e);
        c->st.expired++;
        publish_gauges(c);
        e = NULL;
    }
    if (e) {
        char *copy = its_malloc(ITS_MOD_PUBLISH, e->vlen + 1);
        if (!copy) {
            rc = ITS_ENOMEM;
        } else {
            memcpy(copy, e->data + e->klen + 1, e->vlen + 1);
            *val = copy;
            if (len)
                *len = e->vlen;
            lru_unlink(c, e);
            lru_push_front(c, e);
            c->st.hits_l1++;
            rc = 0;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

int its_cache_get_l1(its_cache *c, const char *key, char **val, size_t *len)
{
    if (!c || !key || !val)
        return ITS_EINVAL;
    int rc = l1_lookup(c, key, val, len);
    if (rc == 0)
        its_metric_inc(c->m_hit_l1);
    return rc;
}

static int redis_connect(its_cache *c)
{
    its_redis_target t;
    its_redis_target_default(&t);
    t.host = c->host;
    t.port = c->port;
    t.sentinels = c->sentinels;
    if (c->master_name)
        t.master_name = c->master_name;
    t.username = c->username;
    t.password = c->password;
    t.db = c->db;
    t.connect_timeout_ms = c->connect_timeout_ms;
    t.command_timeout_ms = c->command_timeout_ms;
    char err[256];
    int rc = 0;
    c->rc = its_redis_connect(&t, &rc, err, sizeof err);
    return c->rc ? 0 : rc;
}

/* Redis I/O happens under rlock, never under the L1 lock, so that L1 readers and the
 * publishers never wait for the network; API reads that miss L1 take turns on the one
 * connection (they are rare, and each is bounded by the command timeout). */
static int redis_get(its_cache *c, const char *key, char **val, size_t *len)
{
    pthread_mutex_lock(&c->rlock);
    int rc = 0;
    uint64_t now = its_now_ns();
    if (!c->rc) {
        if (now < c->next_connect_ns) {
            pthread_mutex_unlock(&c->rlock);
            return ITS_ENET;
        }
        rc = redis_connect(c);
        if (rc < 0) {
            c->next_connect_ns = now + ITS_NS_PER_S;
            pthread_mutex_unlock(&c->rlock);
            return rc == ITS_EAUTH ? ITS_EAUTH : ITS_ENET;
        }
    }
    redisReply *g = NULL, *t = NULL;
    if (redisAppendCommand(c->rc, "GET %s", key) != REDIS_OK ||
        redisAppendCommand(c->rc, "PTTL %s", key) != REDIS_OK ||
        redisGetReply(c->rc, (void **)&g) != REDIS_OK ||
        redisGetReply(c->rc, (void **)&t) != REDIS_OK) {
        if (g)
            freeReplyObject(g);
        redisFree(c->rc);
        c->rc = NULL;
        c->next_connect_ns = now + ITS_NS_PER_S;
        pthread_mutex_unlock(&c->rlock);
        return ITS_ENET;
    }
    long long pttl = t->type == REDIS_REPLY_INTEGER ? t->integer : -2;
    if (g->type == REDIS_REPLY_STRING) {
        char *copy = its_malloc(ITS_MOD_PUBLISH, (size_t)g->len + 1);
        if (!copy) {
            rc = ITS_ENOMEM;
        } else {
            memcpy(copy, g->str, (size_t)g->len);
            copy[g->len] = 0;
            *val = copy;
            if (len)
                *len = (size_t)g->len;
            /* A key without a TTL (pttl -1) is warmed for SPEC's default 300 s. */
            int ttl_s = pttl > 0 ? (int)((pttl + 999) / 1000) : pttl == -1 ? 300 : 0;
            if (ttl_s > 0)
                its_cache_put(c, key, copy, (size_t)g->len, ttl_s);
        }
    } else {
        rc = g->type == REDIS_REPLY_NIL ? ITS_ENOENT : ITS_EPROTO;
    }
    freeReplyObject(g);
    freeReplyObject(t);
    pthread_mutex_unlock(&c->rlock);
    return rc;
}

int its_cache_get(its_cache *c, const char *key, char **val, size_t *len)
{
    if (!c || !key || !val)
        return ITS_EINVAL;
    int rc = l1_lookup(c, key, val, len);
    if (rc == 0) {
        its_metric_inc(c->m_hit_l1);
        return 0;
    }
    if (rc != ITS_ENOENT)
        return rc;
    if (!c->host) {
        rc = ITS_ENOENT;
    } else {
        rc = redis_get(c, key, val, len);
        if (rc == 0) {
            pthread_mutex_lock(&c->lock);
            c->st.hits_redis++;
            pthread_mutex_unlock(&c->lock);
            its_metric_inc(c->m_hit_redis);
            return 0;
        }
    }
    if (rc == ITS_ENOENT) {
        pthread_mutex_lock(&c->lock);
        c->st.misses++;
        pthread_mutex_unlock(&c->lock);
        its_metric_inc(c->m_miss);
    }
    return rc;
}

void its_cache_remove(its_cache *c, const char *key)
{
    if (!c || !key)
        return;
    size_t klen;
    uint64_t h = fnv1a(key, &klen);
    pthread_mutex_lock(&c->lock);
    entry *e = *find_slot(c, key, klen, h);
    if (e)
        remove_entry(c, e);
    publish_gauges(c);
    pthread_mutex_unlock(&c->lock);
}

void its_cache_get_stats(its_cache *c, its_cache_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    *out = c->st;
    out->entries = c->entries;
    out->bytes = c->bytes;
    pthread_mutex_unlock(&c->lock);
}

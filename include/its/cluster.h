/*
 * its/cluster.h - many itsd replicas sharing one fleet of cameras through Redis: a shared
 * camera registry, a lease per replica, and each camera owned by exactly one live replica.
 *
 *     its_cluster_config cc;
 *     its_cluster_config_default(&cc);
 *     cc.replica = "itsd-0"; cc.capacity = 64; cc.redis = target;   // its/redis.h
 *     its_cluster_ops ops = {.ud = app, .start = start_camera, .stop = stop_camera};
 *     its_cluster *cl;
 *     if (its_cluster_create(&cc, &ops, &cl, err, sizeof err) < 0) ...
 *     its_cluster_seed(cl, "cam-1", "{\"id\":\"cam-1\",\"url\":\"rtsp://...\"}");  // if absent
 *     its_cluster_start(cl);                      // the coordination thread
 *     its_cluster_put(cl, "cam-2", json, 0);      // API: add (ITS_EEXIST if there)
 *     its_cluster_remove(cl, "cam-2");            // API: remove
 *     its_cluster_freeze(cl);                     // no more starts/stops; then drain the cameras
 *     its_cluster_leave(cl);                      // hand them over, drop the lease
 *     its_cluster_destroy(cl);
 *
 * Redis layout (prefix "its:cluster"; docs/scale-out.md):
 *   HASH   {p}:cameras          camera id -> its settings, one JSON object (the registry)
 *   PUBSUB {p}:changes          a camera id, published after every registry write
 *   STRING {p}:lease:{replica}  the replica's lease: a random token, PX lease_ttl_ms
 *   HASH   {p}:members          replica -> capacity (entries without a lease are pruned)
 *   STRING {p}:owner:{camera}   the replica serving the camera, PX lease_ttl_ms; "-" for
 *                               handover_gap_ms after a release (nobody may take it yet)
 *   HASH   {p}:ckpt:{<camera>}  epoch: incremented by every take of the camera; data: its
 *                               last checkpoint (its/analytics.h), written by its owner
 * ({<camera>}: the braces are in the key, the camera's Redis Cluster hash tag.)
 *
 * The thread, every lease_ttl_ms / 4: renews the lease and the owner keys of the cameras it
 * serves in one Lua script (which also returns the live members and their capacities), reads
 * the registry when a change was published or every resync_ms, and computes the owner of every
 * camera: weighted rendezvous hashing (score capacity / -ln(h(camera, replica)), h uniform in
 * (0, 1)) with bounded loads (cameras in id order, each to its highest-scoring replica that has
 * fewer than min(capacity, ceil(N x capacity / total capacity)) cameras). Every replica with the
 * same view computes the same owners, the split follows the capacities within rounding, and a
 * membership change moves a replica's share plus the few cameras its quota pushes on. A camera
 * it should own is started only once it holds the camera's owner key (SET NX PX): a previous
 * owner must have released it or died, so no camera runs twice. A camera it no longer owns is
 * stopped, then its key is set to "-" for handover_gap_ms, so the next owner's first frame comes
 * more than a second after the last one here.
 *
 * A replica that has just taken its lease waits one renewal period before it takes cameras,
 * so that replicas starting together see each other first and no camera moves twice.
 *
 * Fencing: when no renewal has succeeded for lease_ttl_ms - handover_gap_ms (Redis away, this
 * process stalled), every camera is stopped before the lease and owner keys can expire in Redis
 * and others take them; a renewal that finds the lease gone or someone else's stops everything
 * at once. Either way the replica then takes nothing until it holds a new lease (SET NX, which
 * waits out a lease of the same name still held, e.g. by a process killed a moment ago).
 *
 * Checkpoints: a take (SET owner NX in a script) also increments the camera's epoch, the
 * fencing token of its checkpoints: its_cluster_checkpoint_save writes only while the lease is
 * valid here, the owner key names this replica and the epoch is the one of this replica's
 * take, in one script; so an owner that was fenced, stalled or has handed the camera over can
 * never overwrite a newer owner's checkpoint. A change published on the change channel (a
 * registry write, a replica leaving) makes every replica renew at once and so see the members;
 * a camera in a handover gap is taken as soon as the gap ends, so a graceful leave moves the
 * cameras in about handover_gap_ms.
 *
 * Contract: the ops run on the cluster thread only. put/remove/seed may be called from any
 * thread (one mutex-guarded connection; blocking, bounded by the Redis timeouts). The Redis
 * target's strings must outlive the cluster.
 */
#ifndef ITS_CLUSTER_H
#define ITS_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "its/redis.h"

#define ITS_CLUSTER_NAME_MAX        63
#define ITS_CLUSTER_LEASE_TTL_MS    10000
#define ITS_CLUSTER_RESYNC_MS       5000
#define ITS_CLUSTER_HANDOVER_GAP_MS 1500
#define ITS_CLUSTER_CLOSE_WAIT_MS   2000

typedef struct its_cluster its_cluster;

typedef struct its_cluster_ops {
    void *ud;
    /* Serve the camera (spec: the registry's JSON). 0, or < 0: it is released and retried at
     * the next resync. */
    int (*start)(void *ud, const char *id, const char *spec);
    /* Stop serving it; when this returns, it produces no new frames. */
    void (*stop)(void *ud, const char *id);
    /* Optional: 1 once a stopped camera has finished (its frames in flight done, its last
     * checkpoint written), else 0. Polled for the cameras just stopped, all together, for at
     * most ITS_CLUSTER_CLOSE_WAIT_MS (and half of lease_ttl_ms - handover_gap_ms): by a handover
     * before it releases them, and after a lost lease before a new one is taken (which opens the
     * output again). */
    int (*closed)(void *ud, const char *id);
    /* Optional: the lease is valid until valid_until_ns (its_now_ns() base; the fence time,
     * lease_ttl_ms - handover_gap_ms after the last renewal sent), 0 when there is none.
     * Called at every renewal and loss; what this replica publishes should be gated on it
     * (itsd: its_sink_fenced), since a stalled process's threads run on for a moment before
     * the cluster thread notices. */
    void (*lease)(void *ud, uint64_t valid_until_ns);
} its_cluster_ops;

typedef struct its_cluster_config {
    const char *replica; /* [A-Za-z0-9_.-]{1,63} */
    int capacity;        /* cameras this replica can serve; its weight */
    int lease_ttl_ms;    /* >= 3000 */
    int resync_ms;       /* full registry read at least this often */
    int handover_gap_ms; /* a released camera stays nobody's this long (> 1000) */
    const char *prefix;  /* key prefix, default "its:cluster" */
    its_redis_target redis;
} its_cluster_config;

void its_cluster_config_default(its_cluster_config *c);

int its_cluster_create(const its_cluster_config *cfg, const its_cluster_ops *ops, its_cluster **out,
                       char *err, size_t errlen);
/* Starts the coordination thread. */
int its_cluster_start(its_cluster *c);
/* Before its_cluster_start: a camera for the registry if it has none of that id (the YAML
 * file's cameras), written by the thread once Redis answers, before it takes a lease. 0,
 * ITS_EINVAL, ITS_ENOMEM. */
int its_cluster_seed(its_cluster *c, const char *id, const char *spec);
/* The registry from any thread. put: 0 added, 1 replaced, ITS_EEXIST (replace 0 and
 * present); remove: 0, ITS_ENOENT. ITS_ENET: Redis unreachable. */
int its_cluster_put(its_cluster *c, const char *id, const char *spec, int replace);
int its_cluster_remove(its_cluster *c, const char *id);
/* 1 while the replica holds its lease and can take cameras (what /readyz answers in a
 * cluster), else 0. Any thread. */
int its_cluster_ready(its_cluster *c);
/* Cameras this replica serves now, and live members in its last view. */
void its_cluster_counts(its_cluster *c, int *serving, int *members);
/* No camera is started or stopped any more (when this returns); the thread only renews the
 * lease and the owner keys of the cameras served, so that a drain's messages pass the fence
 * and its last checkpoints can be written however long it takes, until leave hands them over.
 * Idempotent. */
void its_cluster_freeze(its_cluster *c);
/* Freezes, stops the thread, then hands over every camera it served (its owner key becomes "-" for
 * handover_gap_ms; the ops are not called: the caller has stopped the cameras, e.g. the
 * pipeline drained) and gives up the lease. Idempotent; destroy does it too. */
void its_cluster_leave(its_cluster *c);
void its_cluster_destroy(its_cluster *c);

/* Checkpoints, from any thread (their own connection; blocking, bounded by the Redis
 * timeouts). save: 0 written; ITS_EBUSY refused (the camera is not held here under a valid
 * lease, or a newer take exists); ITS_ENET Redis away. load: 0 and *data (NUL-terminated,
 * its_free it) of *len bytes; ITS_ENOENT none; ITS_ENET. */
int its_cluster_checkpoint_save(its_cluster *c, const char *id, const char *data, size_t len);
int its_cluster_checkpoint_load(its_cluster *c, const char *id, char **data, size_t *len);

#endif

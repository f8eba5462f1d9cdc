/*
 * plancache.h - the on-disk plan cache's files (private to the engine and its backends).
 *
 * What a backend decides when it plans an engine (for the cuda backend: the cuDNN engine
 * configuration each fused convolution got from the heuristics or the autotuner, the
 * serialised execution plan where cuDNN can give one, the legacy algorithm of the others) is
 * kept in one file per key, so that the next load of the same model on the same machine
 * skips the search. This module only handles keys and files; what a record means is the
 * backend's business (docs/cuda.md, "Plan cache").
 *
 *     its_plancache_key k = {.model_hash = hash, .in_w = 640, .in_h = 640, .batches = b,
 *                            .n_batches = 6, .device = "NVIDIA H100 ...", ...};
 *     char text[ITS_PLANCACHE_KEY_MAX], path[4096];
 *     its_plancache_key_text(&k, text, sizeof text);
 *     its_plancache_path(dir, text, path, sizeof path);
 *     its_plancache *pc = NULL;
 *     if (its_plancache_read(path, text, &pc, err, sizeof err) < 0)   // none, stale, corrupt
 *         pc = its_plancache_new(text);                                // plan from scratch
 *     const void *v = its_plancache_find(pc, KIND, key, klen, &vlen);  // NULL: not cached
 *     its_plancache_add(pc, KIND, key, klen, value, vlen);
 *     its_plancache_write(pc, path, err, sizeof err);                  // atomic
 *     its_plancache_free(pc);
 *
 * The key text names every field, one per line, in a fixed order; the file name is the first
 * 32 hex digits of its SHA-256 plus ".plan", and the file repeats the whole key text, so a
 * file is only ever used for exactly its key. File layout (integers little-endian):
 *     "ITSPLANC" | u32 format | u32 key length | key text | u32 records |
 *     records: u32 kind, u32 key length, u32 value length, key, value | SHA-256 of all before
 * Contract: read accepts a file only when magic, format version, checksum, key text and every
 * length agree; it returns ITS_ENOENT when there is no file, ITS_EDECODE (err says what:
 * truncated, checksum, format version, other key) otherwise, and never a partial cache.
 * write creates the folder (and its parents), writes a temporary file beside the target,
 * fsyncs it and renames it over the target, so a reader sees the old file or the new one,
 * never a torn one. Not thread-safe per object; different objects are independent.
 */
#ifndef ITS_ENGINE_PLANCACHE_H
#define ITS_ENGINE_PLANCACHE_H

#include <stddef.h>
#include <stdint.h>

/* The layout above; a change to it or to what a backend's records mean bumps it. */
#define ITS_PLANCACHE_FORMAT  1
#define ITS_PLANCACHE_KEY_MAX 1024
#define ITS_PLANCACHE_MAX_B   8

typedef struct its_plancache_key {
    const char *model_hash; /* hex SHA-256 of the ONNX bytes (its__model_hash) */
    int in_w, in_h;         /* network input size */
    const int *batches;     /* the prepared batch sizes */
    int n_batches;
    const char *backend; /* "cuda" */
    const char *device;  /* GPU name */
    const char *uuid;    /* GPU UUID ("" if unknown) */
    int cc_major, cc_minor;
    int driver;         /* driver version (cudaDriverGetVersion) */
    long lib_version;   /* cuDNN version (cudnnGetVersion) */
    int format;         /* ITS_PLANCACHE_FORMAT */
    const char *tuning; /* the planning switches, e.g. "tune=1 views=1 legacy=0 direct=0" */
} its_plancache_key;

typedef struct its_plancache its_plancache;

/* The key's text; ITS_EOVERFLOW if it does not fit in len, ITS_EINVAL for a missing field. */
int its_plancache_key_text(const its_plancache_key *k, char *buf, size_t len);
/* dir/<32 hex digits of SHA-256(key_text)>.plan */
int its_plancache_path(const char *dir, const char *key_text, char *buf, size_t len);
/* hex SHA-256 (64 digits and a NUL) of data */
void its_plancache_sha256_hex(const void *data, size_t len, char out[65]);

/* An empty cache for key_text; NULL when out of memory. */
its_plancache *its_plancache_new(const char *key_text);
void its_plancache_free(its_plancache *pc);
int its_plancache_count(const its_plancache *pc);
/* Drop every record (the key stays). */
void its_plancache_clear(its_plancache *pc);
/* Add a record (a later one with the same kind and key replaces it). */
int its_plancache_add(its_plancache *pc, uint32_t kind, const void *key, size_t klen,
                      const void *val, size_t vlen);
/* The value of (kind, key), its length in *vlen; NULL when absent. */
const void *its_plancache_find(const its_plancache *pc, uint32_t kind, const void *key, size_t klen,
                               size_t *vlen);
int its_plancache_read(const char *path, const char *key_text, its_plancache **out, char *err,
                       size_t errlen);
int its_plancache_write(const its_plancache *pc, const char *path, char *err, size_t errlen);

/*
 * The plan cache folder an engine uses: opt when not NULL ("" disables), else the
 * environment's ITS_PLAN_CACHE_DIR (for tools; "" disables), else none (NULL).
 */
const char *its_plancache_dir(const char *opt);

#endif

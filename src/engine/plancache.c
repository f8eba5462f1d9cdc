/*
 * plancache.c - keys and files of the on-disk plan cache (plancache.h). SHA-256 from
 * nettle names the files and checks their contents.
 */
#include "plancache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nettle/sha2.h>

#include "its/alloc.h"
#include "its/error.h"

#define MAGIC    "ITSPLANC"
#define MAX_FILE ((size_t)256 << 20)
#define MAX_BLOB ((uint32_t)64 << 20)
#define DIGEST   SHA256_DIGEST_SIZE

typedef struct rec {
    uint32_t kind, klen, vlen;
    uint8_t *data; /* key then value */
} rec;

struct its_plancache {
    char *key;
    rec *recs;
    int n, cap;
};

void its_plancache_sha256_hex(const void *data, size_t len, char out[65])
{
    struct sha256_ctx s;
    uint8_t d[DIGEST];
    sha256_init(&s);
    sha256_update(&s, len, data);
    sha256_digest(&s, DIGEST, d);
    for (int i = 0; i < DIGEST; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

int its_plancache_key_text(const its_plancache_key *k, char *buf, size_t len)
{
    if (!k || !buf || !k->model_hash || !k->backend || !k->device || !k->tuning ||
        k->n_batches < 1 || k->n_batches > ITS_PLANCACHE_MAX_B || !k->batches)
        return ITS_EINVAL;
    char bs[ITS_PLANCACHE_MAX_B * 12] = "";
    size_t at = 0;
    for (int i = 0; i < k->n_batches; i++)
        at += (size_t)snprintf(bs + at, sizeof bs - at, "%s%d", i ? "," : "", k->batches[i]);
    int n = snprintf(buf, len,
                     "format=%d\nmodel=%s\ninput=%dx%d\nbatches=%s\nbackend=%s\ndevice=%s\n"
                     "uuid=%s\ncc=%d.%d\ndriver=%d\nlib=%ld\ntuning=%s\n",
                     k->format, k->model_hash, k->in_w, k->in_h, bs, k->backend, k->device,
                     k->uuid ? k->uuid : "", k->cc_major, k->cc_minor, k->driver, k->lib_version,
                     k->tuning);
    return n < 0 || (size_t)n >= len ? ITS_EOVERFLOW : 0;
}

int its_plancache_path(const char *dir, const char *key_text, char *buf, size_t len)
{
    if (!dir || !*dir || !key_text)
        return ITS_EINVAL;
    char h[65];
    its_plancache_sha256_hex(key_text, strlen(key_text), h);
    int n = snprintf(buf, len, "%s/%.32s.plan", dir, h);
    return n < 0 || (size_t)n >= len ? ITS_EOVERFLOW : 0;
}

const char *its_plancache_dir(const char *opt)
{
    const char *d = opt ? opt : getenv("ITS_PLAN_CACHE_DIR");
    return d && *d ? d : NULL;
}

/* ---- the cache in memory ---- */

its_plancache *its_plancache_new(const char *key_text)
{
    its_plancache *pc = its_calloc(ITS_MOD_ENGINE, 1, sizeof *pc);
    if (!pc)
        return NULL;
    size_t n = strlen(key_text ? key_text : "") + 1;
    pc->key = its_malloc(ITS_MOD_ENGINE, n);
    if (!pc->key) {
        its_free(pc);
        return NULL;
    }
    memcpy(pc->key, key_text ? key_text : "", n);
    return pc;
}

void its_plancache_free(its_plancache *pc)
{
    if (!pc)
        return;
    for (int i = 0; i < pc->n; i++)
        its_free(pc->recs[i].data);
    its_free(pc->recs);
    its_free(pc->key);
    its_free(pc);
}

void its_plancache_clear(its_plancache *pc)
{
    if (!pc)
        return;
    for (int i = 0; i < pc->n; i++)
        its_free(pc->recs[i].data);
    pc->n = 0;
}

int its_plancache_count(const its_plancache *pc)
{
    return pc ? pc->n : 0;
}

static rec *lookup(const its_plancache *pc, uint32_t kind, const void *key, size_t klen)
{
    for (int i = 0; i < pc->n; i++) {
        rec *r = &pc->recs[i];
        if (r->kind == kind && r->klen == klen && memcmp(r->data, key, klen) == 0)
            return r;
    }
    return NULL;
}

const void *its_plancache_find(const its_plancache *pc, uint32_t kind, const void *key, size_t klen,
                               size_t *vlen)
{
    rec *r = pc ? lookup(pc, kind, key, klen) : NULL;
    if (!r)
        return NULL;
    if (vlen)
        *vlen = r->vlen;
    return r->data + r->klen;
}

int its_plancache_add(its_plancache *pc, uint32_t kind, const void *key, size_t klen,
                      const void *val, size_t vlen)
{
    if (!pc || (klen && !key) || (vlen && !val))
        return ITS_EINVAL;
    if (klen > MAX_BLOB || vlen > MAX_BLOB)
        return ITS_EOVERFLOW;
    uint8_t *d = its_malloc(ITS_MOD_ENGINE, klen + vlen + 1);
    if (!d)
        return ITS_ENOMEM;
    if (klen)
        memcpy(d, key, klen);
    if (vlen)
        memcpy(d + klen, val, vlen);
    rec *r = lookup(pc, kind, key, klen);
    if (!r) {
        if (pc->n == pc->cap) {
            int cap = pc->cap ? pc->cap * 2 : 64;
            rec *nr = its_realloc(ITS_MOD_ENGINE, pc->recs, (size_t)cap * sizeof *nr);
            if (!nr) {
                its_free(d);
                return ITS_ENOMEM;
            }
            pc->recs = nr;
            pc->cap = cap;
        }
        r = &pc->recs[pc->n++];
    } else {
        its_free(r->data);
    }
    r->kind = kind;
    r->klen = (uint32_t)klen;
    r->vlen = (uint32_t)vlen;
    r->data = d;
    return 0;
}

/* ---- files ---- */

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16),
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int fail(char *err, size_t errlen, int rc, const char *path, const char *what)
{
    if (err && errlen)
        snprintf(err, errlen, "plan cache '%s': %s", path, what);
    return rc;
}

int its_plancache_read(const char *path, const char *key_text, its_plancache **out, char *err,
                       size_t errlen)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail(err, errlen, errno == ENOENT ? ITS_ENOENT : ITS_EIO, path,
                    errno == ENOENT ? "no such file" : strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) < 0 || st.st_size < 0 || (size_t)st.st_size > MAX_FILE) {
        fclose(f);
        return fail(err, errlen, ITS_EDECODE, path, "unreadable or too large");
    }
    size_t n = (size_t)st.st_size;
    uint8_t *b = its_malloc(ITS_MOD_ENGINE, n + 1);
    if (!b) {
        fclose(f);
        return fail(err, errlen, ITS_ENOMEM, path, "out of memory");
    }
    size_t got = fread(b, 1, n, f);
    fclose(f);
    int rc = ITS_EDECODE;
    const char *why = NULL;
    size_t klen_text = strlen(key_text);
    size_t at = 16;
    its_plancache *pc = NULL;
    if (got != n)
        why = "read error";
    else if (n < 8 || memcmp(b, MAGIC, 8) != 0)
        why = n < 8 ? "truncated" : "not a plan cache file";
    else if (n < 16 + DIGEST)
        why = "truncated";
    else if (get32(b + 8) != ITS_PLANCACHE_FORMAT)
        why = "another cache format version";
    if (!why) {
        struct sha256_ctx s;
        uint8_t d[DIGEST];
        sha256_init(&s);
        sha256_update(&s, n - DIGEST, b);
        sha256_digest(&s, DIGEST, d);
        if (memcmp(d, b + n - DIGEST, DIGEST) != 0)
            why = "checksum mismatch (truncated or corrupt)";
    }
    size_t end = n - DIGEST;
    if (!why) {
        uint32_t kl = get32(b + 12);
        if (kl != klen_text || at + kl > end || memcmp(b + at, key_text, kl) != 0)
            why = "written for another key";
        at += kl;
    }
    if (!why && at + 4 > end)
        why = "truncated";
    if (!why && !(pc = its_plancache_new(key_text))) {
        rc = ITS_ENOMEM;
        why = "out of memory";
    }
    if (!why) {
        uint32_t nrec = get32(b + at);
        at += 4;
        for (uint32_t i = 0; i < nrec && !why; i++) {
            if (at + 12 > end) {
                why = "truncated record";
                break;
            }
            uint32_t kind = get32(b + at), kl = get32(b + at + 4), vl = get32(b + at + 8);
            at += 12;
            if (kl > end - at || vl > end - at - kl) {
                why = "record longer than the file";
                break;
            }
            int arc = its_plancache_add(pc, kind, b + at, kl, b + at + kl, vl);
            if (arc < 0) {
                rc = arc;
                why = "cannot keep a record";
            }
            at += (size_t)kl + vl;
        }
        if (!why && at != end)
            why = "trailing bytes after the records";
    }
    its_free(b);
    if (why) {
        its_plancache_free(pc);
        return fail(err, errlen, rc, path, why);
    }
    *out = pc;
    return 0;
}

/* mkdir -p */
static int make_dirs(const char *dir)
{
    char p[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof p)
        return -1;
    memcpy(p, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != 0)
            continue;
        char c = p[i];
        p[i] = 0;
        if (mkdir(p, 0755) < 0 && errno != EEXIST)
            return -1;
        p[i] = c;
    }
    return 0;
}

static int write_all(int fd, const void *data, size_t n, struct sha256_ctx *s)
{
    const uint8_t *p = data;
    if (s)
        sha256_update(s, n, p);
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int its_plancache_write(const its_plancache *pc, const char *path, char *err, size_t errlen)
{
    if (!pc || !path)
        return ITS_EINVAL;
    char dir[4096], tmp[4200];
    size_t pl = strlen(path);
    if (pl >= sizeof dir)
        return fail(err, errlen, ITS_EOVERFLOW, path, "path too long");
    memcpy(dir, path, pl + 1);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = 0;
        if (make_dirs(dir) < 0)
            return fail(err, errlen, ITS_EIO, path, "cannot create the folder");
    }
    snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0)
        return fail(err, errlen, ITS_EIO, path, "cannot create a temporary file");
    fchmod(fd, 0644);
    struct sha256_ctx s;
    sha256_init(&s);
    uint8_t h[16];
    size_t kl = strlen(pc->key);
    memcpy(h, MAGIC, 8);
    put32(h + 8, ITS_PLANCACHE_FORMAT);
    put32(h + 12, (uint32_t)kl);
    int bad = write_all(fd, h, 16, &s) < 0 || write_all(fd, pc->key, kl, &s) < 0;
    put32(h, (uint32_t)pc->n);
    bad = bad || write_all(fd, h, 4, &s) < 0;
    for (int i = 0; i < pc->n && !bad; i++) {
        const rec *r = &pc->recs[i];
        put32(h, r->kind);
        put32(h + 4, r->klen);
        put32(h + 8, r->vlen);
        bad = write_all(fd, h, 12, &s) < 0 ||
              write_all(fd, r->data, (size_t)r->klen + r->vlen, &s) < 0;
    }
    uint8_t d[DIGEST];
    sha256_digest(&s, DIGEST, d);
    bad = bad || write_all(fd, d, DIGEST, NULL) < 0 || fsync(fd) < 0;
    bad = close(fd) < 0 || bad;
    if (bad || rename(tmp, path) < 0) {
        unlink(tmp);
        return fail(err, errlen, ITS_EIO, path, "cannot write the file");
    }
    return 0;
}

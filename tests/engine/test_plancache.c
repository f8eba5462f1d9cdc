/*
 * test_plancache.c - the plan cache's keys and files (src/engine/plancache.h), without a GPU.
 *
 * - every field of the key changes the key text and the file name;
 * - records written and read back are the ones added (binary, empty values, a replaced
 *   record), in a folder created on the way;
 * - a write replaces the file by rename: a reader holding the old file still reads it whole,
 *   no temporary file stays behind, and a write that cannot happen leaves the old file;
 * - a file built here byte by byte from the layout documented in plancache.h (an independent
 *   writer, with nettle's SHA-256) is read; the same file with another format version,
 *   another key, a flipped byte, or cut at any length is rejected (ITS_EDECODE, no cache
 *   returned), and a missing file is ITS_ENOENT;
 * - the folder: the option, else ITS_PLAN_CACHE_DIR, "" disabling either.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include <cmocka.h>
#include <nettle/sha2.h>

#include "its/alloc.h"
#include "its/error.h"

#include "plancache.h"
#include "testutil.h"

static const int batches[] = {1, 2, 4, 8, 16, 32};

static its_plancache_key base_key(void)
{
    its_plancache_key k = {.model_hash =
                               "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                           .in_w = 640,
                           .in_h = 640,
                           .batches = batches,
                           .n_batches = 6,
                           .backend = "cuda",
                           .device = "NVIDIA H100 80GB HBM3",
                           .uuid = "GPU-0123456789abcdef0123456789abcdef",
                           .cc_major = 9,
                           .cc_minor = 0,
                           .driver = 12080,
                           .lib_version = 91900,
                           .format = ITS_PLANCACHE_FORMAT,
                           .tuning = "tune=1 views=1 legacy=0 direct=0 find=1"};
    return k;
}

static void key_and_path(const its_plancache_key *k, char *text, char *path)
{
    assert_int_equal(its_plancache_key_text(k, text, ITS_PLANCACHE_KEY_MAX), 0);
    assert_int_equal(its_plancache_path("/var/cache/itsd", text, path, 512), 0);
}

static void test_key_fields(void **state)
{
    (void)state;
    its_plancache_key k0 = base_key();
    char t0[ITS_PLANCACHE_KEY_MAX], p0[512];
    key_and_path(&k0, t0, p0);
    /* the file name: the folder, 32 hex digits, .plan */
    assert_int_equal(strlen(p0), strlen("/var/cache/itsd/") + 32 + strlen(".plan"));
    assert_string_equal(p0 + strlen(p0) - 5, ".plan");
    /* the same key: the same text and file */
    char t1[ITS_PLANCACHE_KEY_MAX], p1[512];
    key_and_path(&k0, t1, p1);
    assert_string_equal(t0, t1);
    assert_string_equal(p0, p1);
    static const int other_b[] = {1, 2, 4, 8, 16, 24};
    enum { N_CHANGES = 15 };
    for (int i = 0; i < N_CHANGES; i++) {
        its_plancache_key k = base_key();
        switch (i) {
        case 0:
            k.model_hash = "0f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
            break;
        case 1:
            k.in_w = 384;
            break;
        case 2:
            k.in_h = 384;
            break;
        case 3:
            k.batches = other_b;
            break;
        case 4:
            k.n_batches = 5;
            break;
        case 5:
            k.backend = "cuda2";
            break;
        case 6:
            k.device = "NVIDIA H200";
            break;
        case 7:
            k.uuid = "GPU-fedcba9876543210fedcba9876543210";
            break;
        case 8:
            k.cc_major = 8;
            break;
        case 9:
            k.cc_minor = 9;
            break;
        case 10:
            k.driver = 12090;
            break;
        case 11:
            k.lib_version = 91000;
            break;
        case 12:
            k.format = ITS_PLANCACHE_FORMAT + 1;
            break;
        case 13:
            k.tuning = "tune=4 views=1 legacy=0 direct=0 find=1";
            break;
        case 14:
            k.uuid = NULL;
            break;
        }
        char t[ITS_PLANCACHE_KEY_MAX], p[512];
        key_and_path(&k, t, p);
        if (strcmp(t, t0) == 0 || strcmp(p, p0) == 0)
            fail_msg("changing key field %d left the key or file name unchanged", i);
    }
    /* missing fields and a text that does not fit are refused */
    its_plancache_key k = base_key();
    k.model_hash = NULL;
    assert_int_equal(its_plancache_key_text(&k, t1, sizeof t1), ITS_EINVAL);
    k = base_key();
    k.n_batches = 0;
    assert_int_equal(its_plancache_key_text(&k, t1, sizeof t1), ITS_EINVAL);
    k = base_key();
    assert_int_equal(its_plancache_key_text(&k, t1, 40), ITS_EOVERFLOW);
    assert_int_equal(its_plancache_path("", t0, p1, sizeof p1), ITS_EINVAL);
}

static its_plancache *sample(const char *key)
{
    its_plancache *pc = its_plancache_new(key);
    assert_non_null(pc);
    int64_t spec[3] = {1, 64, 80};
    uint8_t val[300];
    for (int i = 0; i < (int)sizeof val; i++)
        val[i] = (uint8_t)(i * 7 + 3);
    assert_int_equal(its_plancache_add(pc, 1, spec, sizeof spec, val, sizeof val), 0);
    spec[0] = 2;
    assert_int_equal(its_plancache_add(pc, 1, spec, sizeof spec, "x", 0), 0);
    int32_t k12[12] = {3, 1, 2};
    int32_t algo = 6;
    assert_int_equal(its_plancache_add(pc, 2, k12, sizeof k12, &algo, sizeof algo), 0);
    /* a later record with the same kind and key replaces the first */
    algo = 1;
    assert_int_equal(its_plancache_add(pc, 2, k12, sizeof k12, &algo, sizeof algo), 0);
    assert_int_equal(its_plancache_count(pc), 3);
    return pc;
}

static void check_sample(const its_plancache *pc)
{
    assert_int_equal(its_plancache_count(pc), 3);
    int64_t spec[3] = {1, 64, 80};
    size_t n = 0;
    const uint8_t *v = its_plancache_find(pc, 1, spec, sizeof spec, &n);
    assert_non_null(v);
    assert_int_equal(n, 300);
    for (int i = 0; i < 300; i++)
        assert_int_equal(v[i], (uint8_t)(i * 7 + 3));
    spec[0] = 2;
    assert_non_null(its_plancache_find(pc, 1, spec, sizeof spec, &n));
    assert_int_equal(n, 0);
    spec[0] = 3;
    assert_null(its_plancache_find(pc, 1, spec, sizeof spec, &n));
    int32_t k12[12] = {3, 1, 2};
    int32_t algo = 0;
    v = its_plancache_find(pc, 2, k12, sizeof k12, &n);
    assert_non_null(v);
    assert_int_equal(n, sizeof algo);
    memcpy(&algo, v, sizeof algo);
    assert_int_equal(algo, 1);
    /* the kind is part of the record's identity */
    assert_null(its_plancache_find(pc, 1, k12, sizeof k12, &n));
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void test_round_trip(void **state)
{
    (void)state;
    char tmp[256], dir[400], path[512], err[512], text[ITS_PLANCACHE_KEY_MAX];
    its_test_tmpdir(tmp, sizeof tmp);
    snprintf(dir, sizeof dir, "%s/a/b/plans", tmp); /* created on the way */
    its_plancache_key k = base_key();
    key_and_path(&k, text, path);
    assert_int_equal(its_plancache_path(dir, text, path, sizeof path), 0);
    its_plancache *pc = sample(text);
    assert_int_equal(its_plancache_write(pc, path, err, sizeof err), 0);
    its_plancache_free(pc);
    its_plancache *back = NULL;
    assert_int_equal(its_plancache_read(path, text, &back, err, sizeof err), 0);
    check_sample(back);
    its_plancache_clear(back);
    assert_int_equal(its_plancache_count(back), 0);
    its_plancache_free(back);
    assert_int_equal(count_entries(dir), 1); /* the file, no temporary left */
}

static void test_atomic_replace(void **state)
{
    (void)state;
    char dir[256], path[512], err[512];
    its_test_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/x.plan", dir);
    its_plancache *a = sample("key-a");
    assert_int_equal(its_plancache_write(a, path, err, sizeof err), 0);
    size_t len_a = 0;
    uint8_t *bytes_a = its_test_read_file(path, &len_a);
    assert_non_null(bytes_a);
    FILE *old = fopen(path, "rb"); /* a reader in the middle of loading */
    assert_non_null(old);
    its_plancache *b = its_plancache_new("key-a");
    assert_int_equal(its_plancache_add(b, 9, "k", 1, "v", 1), 0);
    assert_int_equal(its_plancache_write(b, path, err, sizeof err), 0);
    /* the old reader sees the whole old file; a new one sees the new file */
    uint8_t *got = malloc(len_a + 16);
    assert_non_null(got);
    assert_int_equal(fread(got, 1, len_a + 16, old), len_a);
    assert_memory_equal(got, bytes_a, len_a);
    fclose(old);
    free(got);
    its_plancache *back = NULL;
    assert_int_equal(its_plancache_read(path, "key-a", &back, err, sizeof err), 0);
    assert_int_equal(its_plancache_count(back), 1);
    assert_non_null(its_plancache_find(back, 9, "k", 1, NULL));
    its_plancache_free(back);
    assert_int_equal(count_entries(dir), 1);
    /* a write that cannot happen (the folder is a file) fails and leaves nothing */
    char bad[600];
    snprintf(bad, sizeof bad, "%s/x.plan/y.plan", dir);
    assert_int_equal(its_plancache_write(a, bad, err, sizeof err), ITS_EIO);
    assert_int_equal(count_entries(dir), 1);
    its_plancache_free(a);
    its_plancache_free(b);
    its_free(bytes_a);
}

/* A file written here from the documented layout, not by the module. */
static size_t hand_file(uint8_t *buf, uint32_t format, const char *key)
{
    size_t at = 0;
    memcpy(buf, "ITSPLANC", 8);
    at = 8;
#define PUT32(v)                                                                                   \
    do {                                                                                           \
        uint32_t v_ = (v);                                                                         \
        buf[at++] = (uint8_t)v_;                                                                   \
        buf[at++] = (uint8_t)(v_ >> 8);                                                            \
        buf[at++] = (uint8_t)(v_ >> 16);                                                           \
        buf[at++] = (uint8_t)(v_ >> 24);                                                           \
    } while (0)
    PUT32(format);
    PUT32((uint32_t)strlen(key));
    memcpy(buf + at, key, strlen(key));
    at += strlen(key);
    PUT32(2); /* records */
    PUT32(1); /* kind */
    PUT32(3); /* key length */
    PUT32(5); /* value length */
    memcpy(buf + at, "abchello", 8);
    at += 8;
    PUT32(2);
    PUT32(1);
    PUT32(0);
    buf[at++] = 'z';
#undef PUT32
    struct sha256_ctx s;
    sha256_init(&s);
    sha256_update(&s, at, buf);
    sha256_digest(&s, SHA256_DIGEST_SIZE, buf + at);
    return at + SHA256_DIGEST_SIZE;
}

static void expect_rejected(const char *path, const char *key, const char *why)
{
    its_plancache *pc = (its_plancache *)(uintptr_t)1;
    char err[512] = "";
    int rc = its_plancache_read(path, key, &pc, err, sizeof err);
    if (rc != ITS_EDECODE || pc != NULL)
        fail_msg("%s: read returned %d (%s), want ITS_EDECODE and no cache", why, rc, err);
    assert_non_null(strstr(err, path));
}

static void test_rejected_files(void **state)
{
    (void)state;
    char dir[256], path[512], err[512];
    its_test_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/h.plan", dir);
    uint8_t buf[512];
    size_t n = hand_file(buf, ITS_PLANCACHE_FORMAT, "the key");
    assert_int_equal(its_test_write_file(path, buf, n), 0);
    its_plancache *pc = NULL;
    assert_int_equal(its_plancache_read(path, "the key", &pc, err, sizeof err), 0);
    size_t vl = 0;
    const char *v = its_plancache_find(pc, 1, "abc", 3, &vl);
    assert_non_null(v);
    assert_int_equal(vl, 5);
    assert_memory_equal(v, "hello", 5);
    assert_non_null(its_plancache_find(pc, 2, "z", 1, &vl));
    assert_int_equal(vl, 0);
    its_plancache_free(pc);

    /* another key (a stale file under a colliding name) */
    expect_rejected(path, "another key", "other key");
    /* another format version, checksum and all valid */
    n = hand_file(buf, ITS_PLANCACHE_FORMAT + 1, "the key");
    assert_int_equal(its_test_write_file(path, buf, n), 0);
    expect_rejected(path, "the key", "format version");
    its_plancache *tmp = NULL;
    its_plancache_read(path, "the key", &tmp, err, sizeof err);
    assert_non_null(strstr(err, "format version"));
    /* any single flipped byte */
    n = hand_file(buf, ITS_PLANCACHE_FORMAT, "the key");
    for (size_t i = 0; i < n; i++) {
        buf[i] ^= 0x40;
        assert_int_equal(its_test_write_file(path, buf, n), 0);
        char why[64];
        snprintf(why, sizeof why, "byte %zu flipped", i);
        expect_rejected(path, "the key", why);
        buf[i] ^= 0x40;
    }
    /* cut at every length */
    for (size_t len = 0; len < n; len++) {
        assert_int_equal(its_test_write_file(path, buf, len), 0);
        char why[64];
        snprintf(why, sizeof why, "cut to %zu bytes", len);
        expect_rejected(path, "the key", why);
    }
    /* a record longer than the file, with a valid checksum over the lie */
    n = hand_file(buf, ITS_PLANCACHE_FORMAT, "the key");
    size_t rec = 16 + strlen("the key") + 4 + 8; /* the first record's value length */
    buf[rec] = 200;
    struct sha256_ctx s;
    sha256_init(&s);
    sha256_update(&s, n - SHA256_DIGEST_SIZE, buf);
    sha256_digest(&s, SHA256_DIGEST_SIZE, buf + n - SHA256_DIGEST_SIZE);
    assert_int_equal(its_test_write_file(path, buf, n), 0);
    expect_rejected(path, "the key", "record longer than the file");
    /* no file */
    snprintf(path, sizeof path, "%s/none.plan", dir);
    pc = NULL;
    assert_int_equal(its_plancache_read(path, "the key", &pc, err, sizeof err), ITS_ENOENT);
    assert_null(pc);
}

static void test_dir_choice(void **state)
{
    (void)state;
    unsetenv("ITS_PLAN_CACHE_DIR");
    assert_null(its_plancache_dir(NULL));
    assert_string_equal(its_plancache_dir("/x"), "/x");
    assert_null(its_plancache_dir(""));
    setenv("ITS_PLAN_CACHE_DIR", "/from/env", 1);
    assert_string_equal(its_plancache_dir(NULL), "/from/env");
    assert_string_equal(its_plancache_dir("/x"), "/x");
    assert_null(its_plancache_dir(""));
    setenv("ITS_PLAN_CACHE_DIR", "", 1);
    assert_null(its_plancache_dir(NULL));
    unsetenv("ITS_PLAN_CACHE_DIR");
}

static void test_model_hash(void **state)
{
    (void)state;
    /* FIPS 180-2's example: SHA-256("abc") */
    char h[65];
    its_plancache_sha256_hex("abc", 3, h);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_fields),     cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_atomic_replace), cmocka_unit_test(test_rejected_files),
        cmocka_unit_test(test_dir_choice),     cmocka_unit_test(test_model_hash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

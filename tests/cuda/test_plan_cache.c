/*
 * The plan cache and engine sharing on the GPU (YOLO11n, the public API; exits 77 without a
 * GPU). In an empty cache folder:
 *   cold    its_engine_create plans (cuDNN heuristics queries, algorithm searches: the
 *           engine counters' plan_searches > 0, every lookup a miss) and writes one file;
 *   shared  its_engine_share of it plans nothing, detects the same, and keeps working after
 *           the engine it shares is destroyed;
 *   warm    a second create with the same folder plans nothing (no search, no miss, hits),
 *           takes under half the cold time, and gives the cold engine's detections (same
 *           count and classes per photo, boxes within 1e-3 px, scores within 1e-4; printed:
 *           whether bitwise equal);
 *   broken  the file rewritten with every cached cuDNN configuration pointing at an engine
 *           that does not exist and no serialised plan: the load counts one rejected file,
 *           plans anew, detects the same, and rewrites the file (the next load is warm);
 *   cut     a file cut in half (batch 1 engine): rejected, planned anew, rewritten.
 * Times and counters are printed for the record (bench/gpu/start.sh measures itsd itself).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>
#include <unistd.h>

#include "testutil.h"

#include "its/alloc.h"
#include "its/clock.h"
#include "its/engine.h"
#include "its/error.h"
#include "its/media.h"

#include "plancache.h"

#define MODEL  "models/yolo11n-fp32-dequant/yolo11n_fp32_dequant.onnx"
#define NP     4
#define MAXDET 300

static const char *const photos[NP] = {"media/bus.jpg", "media/zidane.jpg",
                                       "media/street_nyc_bus_lane.jpg", "media/person.jpg"};
static its_image img[NP];
static its_model_t *model;
static char dir[256];

typedef struct result {
    int n[NP];
    its_det d[NP][MAXDET];
} result;

static result cold_res;

static void detect(its_engine_t *e, result *r)
{
    char err[512];
    its_engine_detect_opts o = {
        .conf = 0.25f, .iou = 0.45f, .max_det = MAXDET, .max_width = 2048, .max_height = 1080};
    if (its_engine_detect_max_det(e) == 0 && its_engine_detect_setup(e, &o, err, sizeof err) < 0)
        fail_msg("detect setup: %s", err);
    its_engine_frame f[NP];
    for (int i = 0; i < NP; i++)
        f[i] = (its_engine_frame){.data = img[i].data,
                                  .width = img[i].width,
                                  .height = img[i].height,
                                  .stride = img[i].stride,
                                  .pixfmt = ITS_PIX_RGB24};
    its_engine_det_list l[NP];
    its_det *d = malloc(sizeof *d * NP * MAXDET);
    assert_non_null(d);
    int t = its_engine_detect_submit(e, NP, f);
    assert_true(t >= 0);
    assert_int_equal(its_engine_detect_wait(e, t, l, d), NP);
    for (int i = 0; i < NP; i++) {
        r->n[i] = l[i].count;
        memcpy(r->d[i], d + (size_t)i * MAXDET, sizeof(its_det) * (size_t)l[i].count);
    }
    free(d);
}

/* The same detections as the cold engine's (see the header). */
static void same_as_cold(const result *r, const char *what)
{
    int total = 0, bitwise = 1;
    float dbox = 0, dscore = 0;
    for (int i = 0; i < NP; i++) {
        if (r->n[i] != cold_res.n[i])
            fail_msg("%s: photo %d: %d detections, cold %d", what, i, r->n[i], cold_res.n[i]);
        total += r->n[i];
        for (int j = 0; j < r->n[i]; j++) {
            const its_det *a = &r->d[i][j], *b = &cold_res.d[i][j];
            if (a->class_id != b->class_id)
                fail_msg("%s: photo %d det %d: class %d, cold %d", what, i, j, a->class_id,
                         b->class_id);
            dbox = fmaxf(dbox, fmaxf(fmaxf(fabsf(a->x1 - b->x1), fabsf(a->y1 - b->y1)),
                                     fmaxf(fabsf(a->x2 - b->x2), fabsf(a->y2 - b->y2))));
            dscore = fmaxf(dscore, fabsf(a->score - b->score));
            bitwise &= memcmp(a, b, sizeof *a) == 0;
        }
    }
    printf("  %s: %d detections, max |box diff| %.2g px, max |score diff| %.2g, bitwise %s\n", what,
           total, (double)dbox, (double)dscore, bitwise ? "equal" : "different");
    assert_true(total > 10);
    assert_true(dbox <= 1e-3f);
    assert_true(dscore <= 1e-4f);
}

typedef struct load {
    its_engine_t *e;
    double ms;
    its_engine_counters d; /* counter deltas */
} load;

static load create(int max_batch, const char *what)
{
    char err[512];
    its_engine_opts o = {.backend = "cuda", .max_batch = max_batch, .plan_cache_dir = dir};
    its_engine_counters c0, c1;
    its_engine_get_counters(&c0);
    load l = {0};
    uint64_t t0 = its_now_ns();
    if (its_engine_create(model, &o, &l.e, err, sizeof err) < 0)
        fail_msg("%s: cuda engine: %s", what, err);
    l.ms = (double)(its_now_ns() - t0) / 1e6;
    its_engine_get_counters(&c1);
    l.d.plan_searches = c1.plan_searches - c0.plan_searches;
    l.d.plan_cache_hits = c1.plan_cache_hits - c0.plan_cache_hits;
    l.d.plan_cache_misses = c1.plan_cache_misses - c0.plan_cache_misses;
    l.d.plan_cache_rejected = c1.plan_cache_rejected - c0.plan_cache_rejected;
    printf("%s (max_batch %d): %.0f ms; searches %llu, hits %llu, misses %llu, rejected %llu\n",
           what, max_batch, l.ms, (unsigned long long)l.d.plan_searches,
           (unsigned long long)l.d.plan_cache_hits, (unsigned long long)l.d.plan_cache_misses,
           (unsigned long long)l.d.plan_cache_rejected);
    return l;
}

/* The one .plan file of the folder whose name is not skip (NULL: any); 0 if found. */
static int plan_file(char *out, size_t len, const char *skip)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    int found = -1;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n > 5 && strcmp(e->d_name + n - 5, ".plan") == 0 &&
            (!skip || !strstr(skip, e->d_name))) {
            snprintf(out, len, "%s/%s", dir, e->d_name);
            found = 0;
        }
    }
    closedir(d);
    return found;
}

static char file8[600]; /* the max_batch 8 engine's file */

static void test_cold_shared_warm(void **st)
{
    (void)st;
    load cold = create(8, "cold");
    assert_true(cold.d.plan_searches > 0);
    assert_int_equal(cold.d.plan_cache_hits, 0);
    assert_true(cold.d.plan_cache_misses > 0);
    assert_int_equal(cold.d.plan_cache_rejected, 0);
    assert_int_equal(plan_file(file8, sizeof file8, NULL), 0);
    detect(cold.e, &cold_res);

    its_engine_counters c0, c1;
    its_engine_get_counters(&c0);
    its_engine_t *sh = NULL;
    char err[512];
    uint64_t t0 = its_now_ns();
    if (its_engine_share(cold.e, &sh, err, sizeof err) < 0)
        fail_msg("share: %s", err);
    printf("shared: %.0f ms\n", (double)(its_now_ns() - t0) / 1e6);
    its_engine_get_counters(&c1);
    assert_int_equal(c1.plan_searches, c0.plan_searches);
    assert_int_equal(c1.engines_shared - c0.engines_shared, 1);
    result r;
    detect(sh, &r);
    same_as_cold(&r, "shared");
    its_engine_destroy(cold.e); /* the shared engine outlives it */
    detect(sh, &r);
    same_as_cold(&r, "shared, after the first is destroyed");
    its_engine_destroy(sh);

    load warm = create(8, "warm");
    assert_int_equal(warm.d.plan_searches, 0);
    assert_int_equal(warm.d.plan_cache_misses, 0);
    assert_int_equal(warm.d.plan_cache_rejected, 0);
    assert_true(warm.d.plan_cache_hits > 0);
    printf("warm/cold: %.2f\n", warm.ms / cold.ms);
    assert_true(warm.ms < cold.ms / 2);
    detect(warm.e, &r);
    same_as_cold(&r, "warm");
    its_engine_destroy(warm.e);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The value layout of a FUSED record (src/engine/cuda/cuda_plancache.c): ok, engine, knobs,
 * variant (int64 each), knob pairs, the JSON's length and bytes. Every configuration is
 * pointed at an engine index cuDNN does not have, and the JSON dropped. */
static void break_configs(const char *path)
{
    char err[512], text[ITS_PLANCACHE_KEY_MAX];
    /* the key text is in the file: header (16 bytes), then the text */
    size_t len = 0;
    uint8_t *raw = its_test_read_file(path, &len);
    assert_non_null(raw);
    uint32_t kl = rd32(raw + 12);
    assert_true(kl < sizeof text && 16 + kl <= len);
    memcpy(text, raw + 16, kl);
    text[kl] = 0;
    its_free(raw);
    its_plancache *pc = NULL; /* the file is valid before */
    assert_int_equal(its_plancache_read(path, text, &pc, err, sizeof err), 0);
    its_plancache_free(pc);
    its_plancache *out = its_plancache_new(text);
    int n_broken = 0;
    /* walk the records through the file's layout (plancache.h; the module has no iterator) */
    raw = its_test_read_file(path, &len);
    assert_non_null(raw);
    size_t at = 16 + kl;
    uint32_t nrec = rd32(raw + at);
    at += 4;
    for (uint32_t i = 0; i < nrec; i++) {
        uint32_t kind = rd32(raw + at), klen = rd32(raw + at + 4), vlen = rd32(raw + at + 8);
        at += 12;
        const uint8_t *key = raw + at, *val = raw + at + klen;
        at += (size_t)klen + vlen;
        int64_t v[4] = {0};
        if (kind == 1 && vlen >= sizeof v)
            memcpy(v, val, sizeof v);
        if (kind == 1 && v[0] == 1) { /* a fused graph with an engine */
            size_t nv = sizeof v + (size_t)v[2] * 16 + 8;
            uint8_t *b = malloc(nv);
            assert_non_null(b);
            memcpy(b, val, nv - 8);
            int64_t bogus = 1000000, no_json = 0;
            memcpy(b + 8, &bogus, 8);
            memcpy(b + nv - 8, &no_json, 8);
            assert_int_equal(its_plancache_add(out, kind, key, klen, b, nv), 0);
            free(b);
            n_broken++;
        } else {
            assert_int_equal(its_plancache_add(out, kind, key, klen, val, vlen), 0);
        }
    }
    its_free(raw);
    printf("broken: %d cached configurations pointed at engine 1000000\n", n_broken);
    assert_true(n_broken > 10);
    assert_int_equal(its_plancache_write(out, path, err, sizeof err), 0);
    its_plancache_free(out);
}

static void test_broken_configs(void **st)
{
    (void)st;
    break_configs(file8);
    load l = create(8, "broken");
    assert_int_equal(l.d.plan_cache_rejected, 1); /* once per file */
    assert_true(l.d.plan_searches > 0);
    result r;
    detect(l.e, &r);
    same_as_cold(&r, "after the broken configurations");
    its_engine_destroy(l.e);
    load again = create(8, "rewritten");
    assert_int_equal(again.d.plan_searches, 0);
    assert_int_equal(again.d.plan_cache_rejected, 0);
    its_engine_destroy(again.e);
}

static void test_cut_file(void **st)
{
    (void)st;
    load l = create(1, "cold, batch 1");
    its_engine_destroy(l.e);
    char f1[600];
    assert_int_equal(plan_file(f1, sizeof f1, file8), 0);
    size_t len = 0;
    uint8_t *raw = its_test_read_file(f1, &len);
    assert_non_null(raw);
    assert_int_equal(its_test_write_file(f1, raw, len / 2), 0);
    its_free(raw);
    l = create(1, "cut file");
    assert_int_equal(l.d.plan_cache_rejected, 1);
    assert_true(l.d.plan_searches > 0);
    its_engine_destroy(l.e);
    l = create(1, "rewritten, batch 1");
    assert_int_equal(l.d.plan_searches, 0);
    assert_int_equal(l.d.plan_cache_rejected, 0);
    its_engine_destroy(l.e);
}

int main(void)
{
    if (!its_engine_backend_available("cuda")) {
        printf("no CUDA device: skipped\n");
        return 77;
    }
    char path[512], err[512];
    for (int i = 0; i < NP; i++) {
        assert_non_null(its_test_shared_path(photos[i], path, sizeof path));
        its_image_opts io = {.fmt = ITS_PIX_RGB24};
        if (its_image_load(path, &io, &img[i], err, sizeof err) < 0) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
    }
    assert_non_null(its_test_shared_path(MODEL, path, sizeof path));
    if (its_model_load(path, &model, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    its_test_tmpdir(dir, sizeof dir);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cold_shared_warm),
        cmocka_unit_test(test_broken_configs),
        cmocka_unit_test(test_cut_file),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    its_model_free(model);
    for (int i = 0; i < NP; i++)
        its_image_free(&img[i]);
    return rc;
}

/*
 * The engine's boundary with its backends, through the public API only:
 * - a cpu engine (create, run, host memory and availability queries for "cpu") maps no CUDA
 *   library and no backend module: /proc/self/maps has no libcudart, libcublas, libcudnn,
 *   libcuda or its_cuda;
 * - in a build with the cuda module, a cuda engine on a machine without a GPU fails with
 *   ITS_ENODEV and a message, after loading the module cleanly (every engine function it
 *   needs resolved); a module that is missing, or is not a loadable file, fails with a
 *   message naming the path and dlerror's reason, never a crash (each in a child process:
 *   the engine tries a module once per process);
 * - the prepared batch sizes: 1, 2, 4, ... below max_batch, then max_batch (the rule of
 *   its/engine.h), and the cpu backend does not pad batches.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#include "its/engine.h"
#include "its/error.h"

#include "model_zoo.h"

static its_model_t *zoo_model(void)
{
    pbw pb = {0};
    zoo_build(ZOO_VALID, &pb);
    its_model_t *m = NULL;
    char err[256];
    int rc = its_model_load_buffer(pb.buf, pb.len, &m, err, sizeof err);
    pbw_free(&pb);
    if (rc < 0)
        fail_msg("zoo model: %s", err);
    return m;
}

/* Lines of /proc/self/maps naming any of the given substrings (printed), or 0. */
static int maps_with(const char *const *names)
{
    FILE *f = fopen("/proc/self/maps", "r");
    assert_non_null(f);
    char line[1024];
    int hits = 0;
    while (fgets(line, sizeof line, f))
        for (int i = 0; names[i]; i++)
            if (strstr(line, names[i])) {
                printf("mapped: %s", line);
                hits++;
                break;
            }
    fclose(f);
    return hits;
}

static const char *const cuda_libs[] = {"libcudart", "libcublas", "libcudnn", "libcuda.",
                                        "libcuda-",  "its_cuda",  NULL};

static void test_cpu_maps_no_cuda(void **st)
{
    (void)st;
    its_model_t *m = zoo_model();
    its_engine_opts o = {.backend = "cpu", .threads = 1, .max_batch = 4};
    its_engine_t *e = NULL;
    char err[256];
    assert_int_equal(its_engine_create(m, &o, &e, err, sizeof err), 0);
    float in[4 * 3 * 8 * 8] = {0}, out[4 * 64];
    float *outs[1] = {out};
    assert_int_equal(its_engine_run(e, 3, in, outs), 0);
    assert_true(its_engine_backend_available("cpu"));
    assert_null(its_engine_host_alloc("cpu", 4096)); /* the cpu backend has no pinned memory */
    assert_int_equal(maps_with(cuda_libs), 0);
    its_engine_destroy(e);
    its_model_free(m);
}

static void test_batch_sizes(void **st)
{
    (void)st;
    its_model_t *m = zoo_model();
    static const struct {
        int max_batch, n, sizes[8];
    } cases[] = {
        {1, 1, {1}},
        {4, 3, {1, 2, 4}},
        {12, 5, {1, 2, 4, 8, 12}},
        {32, 6, {1, 2, 4, 8, 16, 32}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        its_engine_opts o = {.backend = "cpu", .threads = 1, .max_batch = cases[c].max_batch};
        its_engine_t *e = NULL;
        char err[256];
        assert_int_equal(its_engine_create(m, &o, &e, err, sizeof err), 0);
        int sizes[8] = {0};
        assert_int_equal(its_engine_batch_sizes(e, sizes, 8), cases[c].n);
        for (int i = 0; i < cases[c].n; i++)
            assert_int_equal(sizes[i], cases[c].sizes[i]);
        assert_int_equal(its_engine_max_batch(e), cases[c].max_batch);
        /* a short array receives the first sizes; the count is still all of them */
        int two[2] = {0, 0};
        assert_int_equal(its_engine_batch_sizes(e, two, 1), cases[c].n);
        assert_int_equal(two[0], 1);
        assert_int_equal(two[1], 0);
        assert_int_equal(its_engine_batch_sizes(e, NULL, 0), cases[c].n);
        assert_int_equal(its_engine_batch_sizes(e, NULL, 2), ITS_EINVAL);
        assert_int_equal(its_engine_batches_padded(e), 0);
        its_engine_destroy(e);
    }
    its_model_free(m);
}

/* its_engine_share on the cpu backend (nothing to share): an engine of its own with base's
 * options, which outlives base and computes what a fresh engine computes. */
static void test_cpu_share(void **st)
{
    (void)st;
    its_model_t *m = zoo_model();
    its_engine_opts o = {.backend = "cpu", .threads = 1, .max_batch = 4};
    its_engine_t *base = NULL, *shared = NULL, *fresh = NULL;
    char err[256];
    its_engine_counters c0, c1;
    its_engine_get_counters(&c0);
    assert_int_equal(its_engine_create(m, &o, &base, err, sizeof err), 0);
    assert_int_equal(its_engine_share(base, &shared, err, sizeof err), 0);
    its_engine_get_counters(&c1);
    assert_int_equal(c1.engines_created - c0.engines_created, 2);
    assert_int_equal(c1.engines_shared, c0.engines_shared);
    assert_int_equal(its_engine_max_batch(shared), 4);
    assert_string_equal(its_engine_backend_name(shared), "cpu");
    its_engine_destroy(base);
    assert_int_equal(its_engine_create(m, &o, &fresh, err, sizeof err), 0);
    float in[4 * 3 * 8 * 8], a[4 * 64], b[4 * 64];
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++)
        in[i] = (float)((i * 37) % 101) / 101.0f;
    float *oa[1] = {a}, *ob[1] = {b};
    assert_int_equal(its_engine_run(shared, 3, in, oa), 0);
    assert_int_equal(its_engine_run(fresh, 3, in, ob), 0);
    its_tensor_desc d;
    assert_int_equal(its_engine_output_shape(shared, 0, 3, &d), 0);
    size_t n = 1;
    for (int k = 0; k < d.rank; k++)
        n *= (size_t)d.dims[k];
    assert_memory_equal(a, b, n * sizeof(float));
    assert_int_equal(its_engine_share(NULL, &shared, err, sizeof err), ITS_EINVAL);
    its_engine_destroy(shared);
    its_engine_destroy(fresh);
    its_model_free(m);
}

#ifdef ITS_TEST_CUDA_MODULE
/* In a child: a cuda engine with ITS_CUDA_MODULE set to path must fail with ITS_ENODEV and
 * an err containing want. Exits 0 if so. */
static void child_expect(const char *path, const char *want)
{
    setenv("ITS_CUDA_MODULE", path, 1);
    its_model_t *m = zoo_model();
    its_engine_opts o = {.backend = "cuda", .max_batch = 1};
    its_engine_t *e = NULL;
    char err[512] = "";
    int rc = its_engine_create(m, &o, &e, err, sizeof err);
    printf("ITS_CUDA_MODULE=%s: %s: %s\n", path, its_errname(rc), err);
    int ok = rc == ITS_ENODEV && !e && strstr(err, path) && strstr(err, want) &&
             !its_engine_backend_available("cuda") && !its_engine_host_alloc("cuda", 64);
    fflush(stdout);
    _exit(ok ? 0 : 1);
}

static void expect_in_child(const char *path, const char *want)
{
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        child_expect(path, want);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_cuda_module_missing(void **st)
{
    (void)st;
    expect_in_child("/nonexistent/its_cuda.so", "cannot load");
}

static void test_cuda_module_not_loadable(void **st)
{
    (void)st;
    char path[] = "/tmp/its_cuda_bad_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "not an ELF file\n", 16), 16);
    close(fd);
    expect_in_child(path, "cannot load");
    unlink(path);
}

/* The module of the build loads (every host symbol resolved) and is then mapped; without a
 * GPU a cuda engine is refused with ITS_ENODEV and a message. */
static void test_cuda_without_gpu(void **st)
{
    (void)st;
    unsetenv("ITS_CUDA_MODULE");
    static const char *const module[] = {"its_cuda.so", NULL};
    if (its_engine_backend_available("cuda")) { /* a GPU machine: the GPU tests cover it */
        printf("a CUDA device is present: the module loaded\n");
        assert_true(maps_with(module) > 0);
        return;
    }
    its_model_t *m = zoo_model();
    its_engine_opts o = {.backend = "cuda", .max_batch = 2};
    its_engine_t *e = NULL;
    char err[512] = "";
    int rc = its_engine_create(m, &o, &e, err, sizeof err);
    printf("cuda engine: %s: %s\n", its_errname(rc), err);
    assert_int_equal(rc, ITS_ENODEV);
    assert_null(e);
    assert_null(strstr(err, "cannot load")); /* the module itself loaded */
    assert_non_null(strstr(err, "not available"));
    assert_true(maps_with(module) > 0);
    assert_null(its_engine_host_alloc("cuda", 64));
    its_model_free(m);
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* first: nothing may have loaded a module yet */
        cmocka_unit_test(test_cpu_maps_no_cuda),    cmocka_unit_test(test_batch_sizes),
        cmocka_unit_test(test_cpu_share),
#ifdef ITS_TEST_CUDA_MODULE
        cmocka_unit_test(test_cuda_module_missing), cmocka_unit_test(test_cuda_module_not_loadable),
        cmocka_unit_test(test_cuda_without_gpu),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

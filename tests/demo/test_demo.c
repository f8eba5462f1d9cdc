/*
 * The demo (scripts/demo.sh: itsd with deploy/itsd.yaml) on the CPU engine for 60 s, as the
 * issue's acceptance asks:
 * - no stage's p99 over its SPEC budget, read from itsd's /v1/status at the end of the run;
 * - 0 frames dropped on every camera (/v1/status and itsd's closing summary);
 * - at least one analytics window per camera, and at least one line-crossing event per
 *   camera whose scene has a line (all three demo scenes do), on stdout within the minute.
 * The budgets are SPEC's (its/stage.h, repeated in /v1/status as budget_ms). Latencies on a
 * machine shared with other work are not the demo's: itsd runs at nice -10 where allowed,
 * the test prints how busy the machine was besides itsd, and where other processes took
 * more than BUSY_CORES of it, budget and drop failures are reported and the test skipped
 * (it fails under CI=true, where the machine must be quiet). The functional checks (real
 * time, windows, crossings) hold in any case.
 * ITS_DEMO_SECONDS changes the length (60 by default).
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "its/core.h"
#include "testutil.h"

#define MAX_CAMS 8
/* Other processes' CPU use, in cores, above which the machine is too busy to judge latency. */
#define BUSY_CORES 0.3

static char itsd[1024], root[1024], tmp[256];
static int port;

/* GET path; the body (after the headers) into buf; the HTTP status or -1. */
static int http_get(const char *path, char *buf, size_t len)
{
    if (its_test_http(port, "GET", path, NULL, buf, len) < 0)
        return -1;
    int code = -1;
    sscanf(buf, "HTTP/%*s %d", &code);
    char *body = strstr(buf, "\r\n\r\n");
    if (body)
        memmove(buf, body + 4, strlen(body + 4) + 1);
    return code;
}

/* CPU time in clock ticks: the whole machine busy (all processes), and one process. */
static unsigned long long machine_busy_ticks(unsigned long long *total)
{
    unsigned long long v[10] = {0};
    FILE *f = fopen("/proc/stat", "r");
    if (!f || fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                     &v[4], &v[5], &v[6], &v[7]) != 8) {
        if (f)
            fclose(f);
        *total = 0;
        return 0;
    }
    fclose(f);
    *total = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
    return v[0] + v[1] + v[2] + v[5] + v[6] + v[7]; /* all but idle and iowait */
}

static unsigned long long process_ticks(pid_t pid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')'); /* fields after the command name */
    unsigned long long ut = 0, st = 0;
    if (p)
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st);
    return ut + st;
}

typedef struct cam_seen {
    char id[64];
    int frames, windows, crossings;
} cam_seen;

static cam_seen *cam_of(cam_seen *c, int *n, const char *id)
{
    for (int i = 0; i < *n; i++)
        if (strcmp(c[i].id, id) == 0)
            return &c[i];
    if (*n == MAX_CAMS)
        return NULL;
    snprintf(c[*n].id, sizeof c[*n].id, "%s", id);
    return &c[(*n)++];
}

static void test_demo_realtime_in_budget(void **state)
{
    (void)state;
    const char *secs_env = getenv("ITS_DEMO_SECONDS");
    double secs = secs_env && atof(secs_env) > 0 ? atof(secs_env) : 60;
    char out[400], err[400], port_s[16];
    snprintf(out, sizeof out, "%s/out.jsonl", tmp);
    snprintf(err, sizeof err, "%s/err.txt", tmp);
    port = its_test_free_port();
    snprintf(port_s, sizeof port_s, "%d", port);
    unsigned long long tot0, busy0 = machine_busy_ticks(&tot0);
    pid_t pid = fork();
    if (pid == 0) {
        int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(o, 1);
        dup2(e, 2);
        if (chdir(root) != 0)
            _exit(126);
        /* Where allowed (root, CAP_SYS_NICE), itsd runs ahead of other work on a shared
         * machine, as a deployment gives the service its cores; on a machine of its own
         * this changes nothing. */
        if (setpriority(PRIO_PROCESS, 0, -10) != 0)
            fprintf(stderr, "test: cannot raise itsd's priority: run on a quiet machine\n");
        /* the demo's file as shipped, on the CPU engine, the API on a free port */
        setenv("ITS_ENGINE_BACKEND", "cpu", 1);
        setenv("ITS_API_PORT", port_s, 1);
        setenv("ITS_STATUS_INTERVAL_S", "10", 1);
        execl(itsd, itsd, "-c", "deploy/itsd.yaml", (char *)NULL);
        _exit(127);
    }
    assert_true(pid > 0);
    its_sleep_ns((uint64_t)(secs * 1e9));
    static char status[1 << 16];
    /* a scrape first: it brings the per-camera drop counters up to date */
    int code = http_get("/metrics", status, sizeof status);
    if (code == 200)
        code = http_get("/v1/status", status, sizeof status);
    unsigned long long tot1, busy1 = machine_busy_ticks(&tot1);
    unsigned long long mine = process_ticks(pid);
    kill(pid, SIGTERM);
    int st = 0;
    waitpid(pid, &st, 0);
    size_t elen;
    char *errtext = (char *)its_test_read_file(err, &elen);
    assert_non_null(errtext);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || code != 200)
        fail_msg("itsd exit %d, /v1/status HTTP %d; stderr:\n%s", st, code, errtext);
    /* how busy the machine was, itsd apart, in cores (2 = two cores fully busy) */
    long hz = sysconf(_SC_CLK_TCK);
    double wall_ticks = secs * (double)hz;
    double others = busy1 - busy0 > mine ? (double)(busy1 - busy0 - mine) / wall_ticks : 0;
    print_message("demo: %.0f s; itsd used %.2f cores, other processes %.2f cores (of %ld)\n", secs,
                  (double)mine / wall_ticks, others, sysconf(_SC_NPROCESSORS_ONLN));
    (void)tot0;
    (void)tot1;

    json_error_t je;
    json_t *js = json_loads(status, 0, &je);
    if (!js)
        fail_msg("/v1/status is not JSON: %s\n%s", je.text, status);
    json_t *stages = json_object_get(js, "stages");
    assert_true(json_is_array(stages));
    size_t i;
    json_t *row;
    int over = 0, nstages = 0;
    json_array_foreach(stages, i, row)
    {
        const char *name = json_string_value(json_object_get(row, "stage"));
        double p99 = json_number_value(json_object_get(row, "p99_ms"));
        double budget = json_number_value(json_object_get(row, "budget_ms"));
        json_int_t n = json_integer_value(json_object_get(row, "count"));
        print_message("  %-12s p99 %7.1f ms (budget %3.0f) over %lld frames%s\n", name, p99, budget,
                      (long long)n, p99 > budget ? "  OVER" : "");
        assert_true(n > 0);
        over += p99 > budget;
        nstages++;
    }
    assert_true(nstages >= 9); /* SPEC's nine stages */
    json_t *cams = json_object_get(js, "cameras");
    const char *cid;
    json_t *cv;
    int ncams_status = 0;
    double drops = 0;
    json_object_foreach(cams, cid, cv)
    {
        double d = json_number_value(json_object_get(cv, "drops"));
        print_message("  camera %-12s frames %5.0f drops %.0f\n", cid,
                      json_number_value(json_object_get(cv, "frames")), d);
        drops += d;
        ncams_status++;
    }
    json_decref(js);

    /* stdout: frames, windows and line crossings per camera */
    cam_seen seen[MAX_CAMS];
    memset(seen, 0, sizeof seen);
    int ncam = 0;
    FILE *f = fopen(out, "r");
    assert_non_null(f);
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        json_t *m = json_loads(line, 0, &je);
        if (!m)
            fail_msg("stdout line is not JSON: %s\n%s", je.text, line);
        const char *type = json_string_value(json_object_get(m, "type"));
        const char *camera = json_string_value(json_object_get(m, "camera"));
        cam_seen *c = camera ? cam_of(seen, &ncam, camera) : NULL;
        if (c && (!type || strcmp(type, "frame") == 0))
            c->frames++;
        else if (c && strcmp(type, "window") == 0)
            c->windows++;
        else if (c && strcmp(type, "event") == 0) {
            const char *kind = json_string_value(json_object_get(m, "kind"));
            if (!kind)
                kind = json_string_value(json_object_get(m, "event"));
            c->crossings += kind && strcmp(kind, "line_crossing") == 0;
        }
        json_decref(m);
    }
    free(line);
    fclose(f);
    assert_int_equal(ncam, 3); /* the three demo cameras, each with a scene with lines */
    for (int k = 0; k < ncam; k++) {
        print_message("  camera %-12s %d frames, %d windows, %d line crossings\n", seen[k].id,
                      seen[k].frames, seen[k].windows, seen[k].crossings);
        /* real time: the cameras' 4 frames a second over the run, give or take the start */
        assert_true(seen[k].frames >= (int)(secs * 4 * 0.9));
        assert_true(seen[k].windows >= 1);
        assert_true(seen[k].crossings >= 1);
    }
    assert_int_equal(ncams_status, 3);
    /* itsd's closing summary agrees: "dropped 0" for every camera */
    int summaries = 0;
    double summary_drops = 0;
    for (const char *q = errtext; (q = strstr(q, "itsd: camera ")); q++) {
        const char *d = strstr(q, ", dropped ");
        assert_non_null(d);
        summary_drops += atof(d + 10);
        summaries++;
    }
    assert_int_equal(summaries, 3);
    if (summary_drops > drops)
        drops = summary_drops;
#ifdef ITS_TEST_SANITIZED
    /* Under the sanitizers every check above holds, but latencies and drops are the
     * instrumentation's, not the demo's: the optimised build's run asserts them. */
    if (drops > 0 || over)
        print_message("demo (sanitizer build): %.0f frames dropped, %d stage(s) over budget at "
                      "p99; reported only\n",
                      drops, over);
    drops = 0;
    over = 0;
#endif
    if (drops > 0 || over) {
        /* Latencies and drops measure the machine as much as itsd when other work takes a
         * share of its cores: there they are reported, and fail only under CI=true. */
        if (others > BUSY_CORES && !its_test_ci()) {
            print_message("demo: %.0f frames dropped, %d stage(s) over budget at p99 while other "
                          "processes used %.2f cores: not measurable here; skipped\n",
                          drops, over, others);
            its_free(errtext);
            exit(ITS_TEST_SKIP_CODE); /* ctest: "Skipped", not "Passed" */
        }
        if (drops > 0)
            fail_msg("%.0f frames dropped; stderr:\n%s", drops, errtext);
        fail_msg("%d stage(s) over budget at p99 (other processes used %.2f cores meanwhile)", over,
                 others);
    }
    its_free(errtext);
}

int main(void)
{
    const char *bin = getenv("ITS_BINARY_DIR");
    snprintf(itsd, sizeof itsd, "%s/tools/itsd/itsd", bin ? bin : ".");
    char probe[1024];
    its_test_source_path(".", root, sizeof root);
    if (access(itsd, X_OK) != 0 ||
        !its_test_shared_path("models/yolox-nano/yolox_nano.onnx", probe, sizeof probe))
        return its_test_skip("itsd binary or the shared YOLOX-Nano model missing");
    /* deploy/itsd.yaml finds the shared data at ${ITS_SHARED_DIR:-../shared} */
    if (!its_test_tmpdir(tmp, sizeof tmp))
        return 1;
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_demo_realtime_in_budget)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Shared by the its-infer tests: run the binary with arguments, capture exit status, stdout
 * and stderr (through files in a temporary folder, removed afterwards). */
#ifndef ITS_TEST_CLI_RUN_H
#define ITS_TEST_CLI_RUN_H

typedef struct run_result {
    int status; /* exit status, -1 if killed */
    char out[1 << 18];
    char err[8192];
    int lines; /* lines on stdout */
} run_result;

void cli_run(const char *bin, const char *tmpdir, const char *args, run_result *r);

#endif

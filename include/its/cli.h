/*
 * its/cli.h - the conventions every command-line tool follows (docs/cli.md).
 *
 *     int c;
 *     while ((c = getopt_long(argc, argv, ITS_CLI_OPTSTRING("c:"), longs, NULL)) != -1) {
 *         switch (c) {
 *         case 'c': path = optarg; break;
 *         case ITS_CLI_OPT_VERSION: return its_cli_version("itsd");
 *         case 'h': usage(stdout); return ITS_EXIT_OK;
 *         default: return its_cli_bad_option("itsd", c, argv);
 *         }
 *     }
 *     if (its_cli_double("itsd", "--duration", s, 0, 1e9, &d) < 0) return ITS_EXIT_USAGE;
 *
 * Contract: a usage error prints exactly one line on stderr, "PROG: OPTION: what is wrong
 * (see PROG --help)", and the tool exits ITS_EXIT_USAGE. --help prints on stdout and exits 0;
 * --version prints "PROG VERSION" on stdout and exits 0. Option strings start with ':' (via
 * ITS_CLI_OPTSTRING) so that getopt prints nothing itself and reports a missing value apart
 * from an unknown option. Nothing here allocates.
 */
#ifndef ITS_CLI_H
#define ITS_CLI_H

/* Exit codes shared by the tools; a tool documents any code of its own above these. */
enum {
    ITS_EXIT_OK = 0,      /* done, every input processed */
    ITS_EXIT_FAILURE = 1, /* ran, but something failed at run time (an input, the start) */
    ITS_EXIT_USAGE = 2    /* bad option, value, configuration or model: nothing was done */
};

/* The getopt value of --version (no short form), outside the range of characters. */
#define ITS_CLI_OPT_VERSION 0x7f00
/* getopt option string: quiet errors, then -h and the tool's own short options. */
#define ITS_CLI_OPTSTRING(s) ":h" s

/* "PROG VERSION" on stdout; returns ITS_EXIT_OK. */
int its_cli_version(const char *prog);

/* Report what getopt_long returned for a bad argument ('?' unknown, ':' missing value),
 * naming the option from argv; returns ITS_EXIT_USAGE. Call it right after getopt_long. */
int its_cli_bad_option(const char *prog, int getopt_rc, char *const *argv);

/* One usage-error line: "PROG: MESSAGE (see PROG --help)"; returns ITS_EXIT_USAGE. */
int its_cli_usage_error(const char *prog, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Parse a whole string as a number in [lo, hi] for option `opt`. 0 on success; otherwise
 * the usage-error line ("PROG: OPT: 'abc' is not a number (see PROG --help)" or "... is not
 * in [lo, hi]") is printed and -1 returned, *out untouched. */
int its_cli_double(const char *prog, const char *opt, const char *s, double lo, double hi,
                   double *out);
int its_cli_int(const char *prog, const char *opt, const char *s, long lo, long hi, int *out);

#endif

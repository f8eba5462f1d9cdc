/* The shared command-line conventions of its/cli.h. */
#include "its/cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "its/core.h"

int its_cli_version(const char *prog)
{
    printf("%s %s\n", prog, ITS_VERSION);
    return ITS_EXIT_OK;
}

int its_cli_usage_error(const char *prog, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: %s (see %s --help)\n", prog, msg, prog);
    return ITS_EXIT_USAGE;
}

int its_cli_bad_option(const char *prog, int getopt_rc, char *const *argv)
{
    /* getopt leaves optind past the offending word, except for a short option bundled with
     * others ("-xq"), where it still points at that word. */
    const char *word = optind > 0 ? argv[optind - 1] : "";
    char name[64];
    if (word[0] == '-' && word[1] == '-') {
        size_t n = strcspn(word, "=");
        snprintf(name, sizeof name, "%.*s", (int)(n < sizeof name ? n : sizeof name - 1), word);
    } else if (optopt > 0 && optopt < 0x100) {
        snprintf(name, sizeof name, "-%c", optopt);
    } else {
        snprintf(name, sizeof name, "%s", word);
    }
    if (getopt_rc == ':')
        return its_cli_usage_error(prog, "%s: needs a value", name);
    return its_cli_usage_error(prog, "%s: unknown option", name);
}

int its_cli_double(const char *prog, const char *opt, const char *s, double lo, double hi,
                   double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno == ERANGE || v != v) {
        its_cli_usage_error(prog, "%s: '%s' is not a number", opt, s);
        return -1;
    }
    if (!(v >= lo && v <= hi)) {
        its_cli_usage_error(prog, "%s: %s is not in [%g, %g]", opt, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int its_cli_int(const char *prog, const char *opt, const char *s, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno == ERANGE) {
        double d;
        char *dend;
        d = strtod(s, &dend);
        (void)d;
        its_cli_usage_error(prog, "%s: '%s' is not a %s", opt, s,
                            dend != s && !*dend ? "whole number" : "number");
        return -1;
    }
    if (v < lo || v > hi) {
        its_cli_usage_error(prog, "%s: %s is not in [%ld, %ld]", opt, s, lo, hi);
        return -1;
    }
    *out = (int)v;
    return 0;
}

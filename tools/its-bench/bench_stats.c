#include "bench_stats.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "its/alloc.h"
#include "its/error.h"

int lat_init(lat_samples *s, size_t cap)
{
    memset(s, 0, sizeof *s);
    s->ns = its_malloc(ITS_MOD_APP, cap * sizeof *s->ns);
    if (!s->ns)
        return ITS_ENOMEM;
    s->cap = cap;
    return 0;
}

void lat_free(lat_samples *s)
{
    its_free(s->ns);
    memset(s, 0, sizeof *s);
}

void lat_add(lat_samples *s, uint64_t ns)
{
    if (s->n == s->cap) {
        s->overflow++;
        return;
    }
    s->ns[s->n++] = ns;
    s->sorted = 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

uint64_t lat_percentile(lat_samples *s, double p)
{
    if (s->n == 0)
        return 0;
    if (!s->sorted) {
        qsort(s->ns, s->n, sizeof *s->ns, cmp_u64);
        s->sorted = 1;
    }
    double rank = ceil(p / 100.0 * (double)s->n);
    size_t i = rank < 1 ? 0 : (size_t)rank - 1;
    return s->ns[i < s->n ? i : s->n - 1];
}

uint64_t lat_recent_percentile(const lat_samples *s, size_t *from, double p)
{
    size_t a = *from <= s->n ? *from : s->n, k = s->n - a;
    *from = s->n;
    if (k == 0 || s->sorted)
        return 0;
    uint64_t *v = its_malloc(ITS_MOD_APP, k * sizeof *v);
    if (!v)
        return 0;
    memcpy(v, s->ns + a, k * sizeof *v);
    qsort(v, k, sizeof *v, cmp_u64);
    double rank = ceil(p / 100.0 * (double)k);
    size_t i = rank < 1 ? 0 : (size_t)rank - 1;
    uint64_t r = v[i < k ? i : k - 1];
    its_free(v);
    return r;
}

double lat_mean_ms(const lat_samples *s)
{
    if (s->n == 0)
        return 0;
    double sum = 0;
    for (size_t i = 0; i < s->n; i++)
        sum += (double)s->ns[i];
    return sum / (double)s->n / 1e6;
}

void lat_print_chart(lat_samples *s, double bound_ms, FILE *out)
{
    static const double ps[] = {50, 75, 90, 95, 99, 99.9};
    static const char *const names[] = {"P50", "P75", "P90", "P95", "P99", "P99.9"};
    const int width = 40;
    double max_ms = bound_ms;
    for (int i = 0; i < 6; i++) {
        double v = (double)lat_percentile(s, ps[i]) / 1e6;
        if (v > max_ms)
            max_ms = v;
    }
    for (int i = 0; i < 6; i++) {
        double v = (double)lat_percentile(s, ps[i]) / 1e6;
        int bar = (int)lround(v / max_ms * width);
        if (v > 0 && bar == 0)
            bar = 1;
        fprintf(out, "%-6s %9.2f ms ", names[i], v);
        for (int k = 0; k < bar; k++)
            fputs("\u2588", out);
        fprintf(out, " %.1f%% of budget\n", v / bound_ms * 100);
    }
    fprintf(out, "%-6s %9.2f ms ", "Target", bound_ms);
    for (int k = 0; k < (int)lround(bound_ms / max_ms * width); k++)
        fputs("\u2588", out);
    fputc('\n', out);
}

double parse_duration_s(const char *text)
{
    if (!text)
        return -1;
    char *end;
    double v = strtod(text, &end);
    if (end == text || !isfinite(v) || v < 0)
        return -1;
    while (*end == ' ')
        end++;
    if (*end == '\0' || !strcmp(end, "s"))
        return v;
    if (!strcmp(end, "ms"))
        return v / 1000;
    if (!strcmp(end, "m") || !strcmp(end, "min"))
        return v * 60;
    if (!strcmp(end, "h"))
        return v * 3600;
    return -1;
}

int parse_expectation(const char *text, expectation *out, char *err, size_t errlen)
{
    const char *p = text;
    while (p && *p == ' ')
        p++;
    if (!p || (*p != '<' && *p != '>')) {
        snprintf(err, errlen, "'%s': must start with < or >", text ? text : "");
        return -1;
    }
    out->op = *p++;
    char *end;
    double v = strtod(p, &end);
    if (end == p || !isfinite(v)) {
        snprintf(err, errlen, "'%s': no number after %c", text, out->op);
        return -1;
    }
    if (*end == 'k' || *end == 'K') {
        v *= 1e3;
        end++;
    } else if (*end == 'M') {
        v *= 1e6;
        end++;
    }
    while (*end == ' ')
        end++;
    if (!strcmp(end, "ms")) {
        out->kind = EXPECT_LATENCY_MS;
    } else if (!strcmp(end, "s")) {
        out->kind = EXPECT_LATENCY_MS;
        v *= 1000;
    } else if (!strcmp(end, "%")) {
        out->kind = EXPECT_RATIO;
        v /= 100;
    } else if (strstr(end, "/minute") || strstr(end, "/min")) {
        out->kind = EXPECT_PER_MINUTE;
    } else if (strstr(end, "/second") || strstr(end, "/s")) {
        out->kind = EXPECT_PER_MINUTE;
        v *= 60;
    } else {
        snprintf(err, errlen, "'%s': unknown unit '%s'", text, end);
        return -1;
    }
    out->value = v;
    return 0;
}

int expectation_holds(const expectation *e, double measured)
{
    return e->op == '<' ? measured < e->value : measured > e->value;
}

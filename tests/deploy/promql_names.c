#include "promql_names.h"

#include <ctype.h>
#include <string.h>

static int ident_start(char c)
{
    return isalpha((unsigned char)c) || c == '_' || c == ':';
}

static int ident_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == ':';
}

/* p at an opening bracket; returns the position after the matching close. */
static const char *skip_group(const char *p, char open, char close)
{
    int depth = 0;
    for (; *p; p++) {
        if (*p == '"' || *p == '\'' || *p == '`') {
            char q = *p++;
            while (*p && *p != q) {
                if (*p == '\\' && p[1])
                    p++;
                p++;
            }
            if (!*p)
                return p;
            continue;
        }
        if (*p == open)
            depth++;
        else if (*p == close && --depth == 0)
            return p + 1;
    }
    return p;
}

static int is_keyword(const char *s, size_t n, const char *const *list)
{
    for (; *list; list++)
        if (strlen(*list) == n && !strncmp(s, *list, n))
            return 1;
    return 0;
}

/* "sum by (x) (...)": an aggregation whose grouping comes before its argument. */
static int followed_by_grouping(const char *q)
{
    size_t n = 0;
    while (ident_char(q[n]))
        n++;
    return ((n == 2 && !strncmp(q, "by", 2)) || (n == 7 && !strncmp(q, "without", 7))) &&
           (isspace((unsigned char)q[n]) || q[n] == '(');
}

int promql_metric_names(const char *p, void (*fn)(void *ud, const char *name), void *ud)
{
    static const char *const label_list_kw[] = {"by",         "without",     "on", "ignoring",
                                                "group_left", "group_right", NULL};
    static const char *const ops[] = {"and", "or", "unless", "bool", "offset", "atan2", NULL};
    int count = 0;
    while (*p) {
        char c = *p;
        if (c == '"' || c == '\'' || c == '`') {
            char q = *p++;
            while (*p && *p != q) {
                if (*p == '\\' && p[1])
                    p++;
                p++;
            }
            if (*p)
                p++;
        } else if (c == '{') {
            p = skip_group(p, '{', '}');
        } else if (c == '[') {
            p = skip_group(p, '[', ']');
        } else if (c == '$') {
            p++;
            while (ident_char(*p))
                p++;
        } else if (isdigit((unsigned char)c) || (c == '.' && isdigit((unsigned char)p[1]))) {
            while (isdigit((unsigned char)*p) || *p == '.')
                p++;
            if ((*p == 'e' || *p == 'E') &&
                (isdigit((unsigned char)p[1]) ||
                 ((p[1] == '-' || p[1] == '+') && isdigit((unsigned char)p[2]))))
                for (p += 2; isdigit((unsigned char)*p); p++) {
                }
            while (isalpha((unsigned char)*p)) /* a duration unit: offset 1h, 5m30s */
                p++;
        } else if (ident_start(c)) {
            const char *s = p;
            while (ident_char(*p))
                p++;
            size_t n = (size_t)(p - s);
            const char *q = p;
            while (isspace((unsigned char)*q))
                q++;
            if (is_keyword(s, n, label_list_kw)) {
                if (*q == '(')
                    p = skip_group(q, '(', ')');
            } else if (n == 12 && !strncmp(s, "label_values", 12) && *q == '(') {
                /* label_values(metric, label): only the first argument is a metric. */
                const char *a = q + 1;
                while (isspace((unsigned char)*a))
                    a++;
                const char *e = a;
                while (ident_char(*e))
                    e++;
                char name[256];
                if (e > a && (size_t)(e - a) < sizeof name) {
                    memcpy(name, a, (size_t)(e - a));
                    name[e - a] = 0;
                    fn(ud, name);
                    count++;
                }
                p = skip_group(q, '(', ')');
            } else if (*q == '(' || is_keyword(s, n, ops) || followed_by_grouping(q)) {
                /* a function or aggregation, or an operator */
            } else if (n < 256) {
                char name[256];
                memcpy(name, s, n);
                name[n] = 0;
                fn(ud, name);
                count++;
            }
        } else {
            p++;
        }
    }
    return count;
}

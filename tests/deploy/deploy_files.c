#include "deploy_files.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "its/core.h"

static void add(expr_list *l, const char *s, size_t n)
{
    if (l->n < DEPLOY_MAX_EXPRS)
        l->items[l->n++] = its_strndup(ITS_MOD_TEST, s, n);
}

static void walk(json_t *j, int panels_only, int in_templating, expr_list *out)
{
    if (json_is_object(j)) {
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v)
        {
            int templ = in_templating || !strcmp(k, "templating");
            if (json_is_string(v) && !strcmp(k, "expr") && !in_templating)
                add(out, json_string_value(v), json_string_length(v));
            else if (json_is_string(v) && !strcmp(k, "definition") && in_templating && !panels_only)
                add(out, json_string_value(v), json_string_length(v));
            else
                walk(v, panels_only, templ, out);
        }
    } else if (json_is_array(j)) {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) walk(v, panels_only, in_templating, out);
    }
}

int deploy_dashboard_exprs(const char *path, int panels_only, expr_list *out)
{
    memset(out, 0, sizeof *out);
    json_error_t err;
    json_t *j = json_load_file(path, 0, &err);
    if (!j) {
        fprintf(stderr, "%s:%d: %s\n", path, err.line, err.text);
        return -1;
    }
    walk(j, panels_only, 0, out);
    json_decref(j);
    return 0;
}

static int indent_of(const char *s)
{
    int n = 0;
    while (s[n] == ' ')
        n++;
    return n;
}

int deploy_rules_exprs(const char *path, expr_list *out)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[1024];
    char block[4096];
    int in_block = 0, block_indent = 0;
    size_t blen = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        int ind = indent_of(line);
        if (in_block) {
            if (line[ind] && ind > block_indent) {
                blen += (size_t)snprintf(block + blen, sizeof block - blen, "%s ", line + ind);
                if (blen >= sizeof block)
                    blen = sizeof block - 1;
                continue;
            }
            add(out, block, blen);
            in_block = 0;
        }
        if (!strncmp(line + ind, "expr:", 5)) {
            const char *v = line + ind + 5;
            while (*v == ' ')
                v++;
            if (*v == '|' || *v == '>') {
                in_block = 1;
                block_indent = ind;
                blen = 0;
                block[0] = 0;
            } else {
                add(out, v, strlen(v));
            }
        }
    }
    if (in_block)
        add(out, block, blen);
    fclose(f);
    return 0;
}

void expr_list_free(expr_list *l)
{
    for (int i = 0; i < l->n; i++)
        its_free(l->items[i]);
    l->n = 0;
}

/*
 * Class names. Ultralytics exports carry them as metadata "names" holding a Python dict
 * literal, "{0: 'person', 1: 'bicycle', ...}"; older exports carry none and a names file (one
 * per line, darknet's coco.names) fills in. Both become one block: a NULL-terminated pointer
 * array followed by the strings, so one its_free releases everything.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "its/alloc.h"
#include "its/detect.h"
#include "its/error.h"

#define MAX_NAMES 100000

typedef struct entry {
    long id;
    const char *s;
    size_t len;
} entry;

/* Build the block from n entries (ids may be sparse: holes get ""). */
static int build(const entry *e, int n, char ***out)
{
    long count = 0;
    size_t bytes = 0;
    for (int i = 0; i < n; i++) {
        if (e[i].id + 1 > count)
            count = e[i].id + 1;
        bytes += e[i].len + 1;
    }
    bytes += (size_t)count + 1; /* "" for holes (one byte each is plenty) */
    size_t head = ((size_t)count + 1) * sizeof(char *);
    char **arr = its_calloc(ITS_MOD_DETECT, 1, head + bytes);
    if (!arr)
        return ITS_ENOMEM;
    char *p = (char *)arr + head;
    for (long i = 0; i < count; i++)
        arr[i] = NULL;
    for (int i = 0; i < n; i++) {
        memcpy(p, e[i].s, e[i].len);
        p[e[i].len] = '\0';
        arr[e[i].id] = p;
        p += e[i].len + 1;
    }
    for (long i = 0; i < count; i++) {
        if (!arr[i]) {
            *p = '\0';
            arr[i] = p++;
        }
    }
    arr[count] = NULL;
    *out = arr;
    return (int)count;
}

int its_det_names_parse_meta(const char *meta, char ***names)
{
    *names = NULL;
    if (!meta)
        return ITS_EINVAL;
    /* Two passes: count, then collect into a temporary array. */
    int cap = 0;
    for (const char *q = meta; *q; q++)
        cap += *q == ':';
    if (cap <= 0 || cap > MAX_NAMES)
        return ITS_EPROTO;
    entry *e = its_malloc(ITS_MOD_DETECT, (size_t)cap * sizeof *e);
    if (!e)
        return ITS_ENOMEM;
    int n = 0, rc = ITS_EPROTO;
    const char *p = meta;
    while (*p == ' ')
        p++;
    if (*p++ != '{')
        goto out;
    for (;;) {
        while (*p == ' ' || *p == ',')
            p++;
        if (*p == '}') {
            rc = n > 0 ? 0 : ITS_EPROTO;
            break;
        }
        char *end;
        long id = strtol(p, &end, 10);
        if (end == p || id < 0 || id >= MAX_NAMES || n >= cap)
            goto out;
        p = end;
        while (*p == ' ')
            p++;
        if (*p++ != ':')
            goto out;
        while (*p == ' ')
            p++;
        char quote = *p++;
        if (quote != '\'' && quote != '"')
            goto out;
        const char *s = p;
        while (*p && *p != quote)
            p++;
        if (!*p)
            goto out;
        e[n].id = id;
        e[n].s = s;
        e[n].len = (size_t)(p - s);
        n++;
        p++;
    }
out:
    if (rc == 0)
        rc = build(e, n, names);
    its_free(e);
    return rc;
}

int its_det_names_load(const char *path, char ***names)
{
    *names = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return ITS_ENOENT;
    char line[256];
    int n = 0, cap = 128, rc = 0;
    entry *e = its_malloc(ITS_MOD_DETECT, (size_t)cap * sizeof *e);
    char *store = its_malloc(ITS_MOD_DETECT, (size_t)cap * sizeof line);
    if (!e || !store) {
        rc = ITS_ENOMEM;
        goto out;
    }
    while (fgets(line, sizeof line, f)) {
        size_t len = strcspn(line, "\r\n");
        line[len] = '\0';
        if (n == cap) {
            if (cap >= MAX_NAMES) {
                rc = ITS_ERANGE;
                goto out;
            }
            /* Strings live in `store`; grow both and re-point. */
            entry *ne = its_realloc(ITS_MOD_DETECT, e, (size_t)cap * 2 * sizeof *e);
            if (!ne) {
                rc = ITS_ENOMEM;
                goto out;
            }
            e = ne;
            char *ns = its_realloc(ITS_MOD_DETECT, store, (size_t)cap * 2 * sizeof line);
            if (!ns) {
                rc = ITS_ENOMEM;
                goto out;
            }
            store = ns;
            cap *= 2;
            for (int i = 0; i < n; i++)
                e[i].s = store + (size_t)i * sizeof line;
        }
        char *slot = store + (size_t)n * sizeof line;
        memcpy(slot, line, len + 1);
        e[n].id = n;
        e[n].s = slot;
        e[n].len = len;
        n++;
    }
    if (ferror(f))
        rc = ITS_EIO;
    else if (n == 0)
        rc = ITS_EPROTO;
    else
        rc = build(e, n, names);
out:
    fclose(f);
    its_free(e);
    its_free(store);
    return rc;
}

void its_det_names_free(char **names)
{
    its_free(names);
}

/*
 * Options tables and the YAML loader.
 *
 * libcyaml needs a schema; ours is generated from the options table at load time. Every
 * option becomes an optional *string* field, so that libcyaml checks the document's shape
 * (unknown keys, a list where a scalar belongs) and this file checks each value against the
 * table with one parser shared by the file, the environment and run-time changes. The
 * generated schema maps "section.key" to `section: {key: ...}` by giving every section an
 * inline mapping at offset 0 of one flat array of string pointers, one slot per option.
 * Typed fields that a program adds (camera lists) live after that array.
 */
#include "its/config.h"

#include <cyaml/cyaml.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "its/alloc.h"
#include "its/error.h"

extern char **environ;

#define SLOT sizeof(char *)

const its_option *its_config_find(const its_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_options; i++)
        if (strcmp(cfg->options[i].name, name) == 0)
            return &cfg->options[i];
    return NULL;
}

static void *field_ptr(const its_config *cfg, const its_option *o)
{
    return (char *)cfg->settings + o->offset;
}

static int parse_bool(const char *v, int *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0)
            return *out = 1, 0;
        if (strcasecmp(v, no[i]) == 0)
            return *out = 0, 0;
    }
    return ITS_EINVAL;
}

/* Parse `value` for option `o` and store it; the one place values are checked. */
static int set_value(its_config *cfg, const its_option *o, const char *value, const char *origin,
                     char *err, size_t errlen)
{
    void *p = field_ptr(cfg, o);
    const char *v = value ? value : "";
    switch (o->type) {
    case ITS_OPT_T_BOOL: {
        int b;
        if (parse_bool(v, &b) < 0)
            return its_seterr(err, errlen, ITS_ECONFIG,
                              "%s: %s: '%s' is not a boolean (true/false)", origin, o->name, v);
        *(int *)p = b;
        return 0;
    }
    case ITS_OPT_T_INT: {
        char *end;
        errno = 0;
        long long x = strtoll(v, &end, 0);
        if (*v == '\0' || *end != '\0' || errno)
            return its_seterr(err, errlen, ITS_ECONFIG, "%s: %s: '%s' is not an integer", origin,
                              o->name, v);
        if ((double)x < o->min || (double)x > o->max)
            return its_seterr(err, errlen, ITS_ECONFIG, "%s: %s: %lld is out of range [%.0f, %.0f]",
                              origin, o->name, x, o->min, o->max);
        *(int *)p = (int)x;
        return 0;
    }
    case ITS_OPT_T_DOUBLE: {
        char *end;
        errno = 0;
        double x = strtod(v, &end);
        if (*v == '\0' || *end != '\0' || errno || !isfinite(x))
            return its_seterr(err, errlen, ITS_ECONFIG, "%s: %s: '%s' is not a number", origin,
                              o->name, v);
        if (x < o->min || x > o->max)
            return its_seterr(err, errlen, ITS_ECONFIG, "%s: %s: %g is out of range [%g, %g]",
                              origin, o->name, x, o->min, o->max);
        *(double *)p = x;
        return 0;
    }
    case ITS_OPT_T_STRING: {
        char *d = its_strdup(ITS_MOD_CORE, v);
        if (!d)
            return its_seterr(err, errlen, ITS_ENOMEM, "%s: %s: out of memory", origin, o->name);
        its_free(*(char **)p);
        *(char **)p = d;
        return 0;
    }
    case ITS_OPT_T_ENUM:
        for (int i = 0; o->choices && o->choices[i]; i++) {
            if (strcmp(v, o->choices[i]) == 0) {
                *(int *)p = i;
                return 0;
            }
        }
        {
            char list[256] = "";
            size_t n = 0;
            for (int i = 0; o->choices && o->choices[i] && n < sizeof list; i++)
                n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "",
                                      o->choices[i]);
            return its_seterr(err, errlen, ITS_ECONFIG, "%s: %s: '%s' is not one of: %s", origin,
                              o->name, v, list);
        }
    }
    return its_seterr(err, errlen, ITS_EINTERNAL, "%s: %s: bad option type", origin, o->name);
}

int its_config_set(its_config *cfg, const char *name, const char *value, const char *origin,
                   char *err, size_t errlen)
{
    const its_option *o = its_config_find(cfg, name);
    if (!o)
        return its_seterr(err, errlen, ITS_ECONFIG, "%s: %s: unknown option", origin, name);
    return set_value(cfg, o, value, origin, err, errlen);
}

int its_config_get(const its_config *cfg, const char *name, char *buf, size_t len)
{
    const its_option *o = its_config_find(cfg, name);
    if (!o)
        return ITS_ENOENT;
    const void *p = (const char *)cfg->settings + o->offset;
    int n = 0;
    switch (o->type) {
    case ITS_OPT_T_BOOL:
        n = snprintf(buf, len, "%s", *(const int *)p ? "true" : "false");
        break;
    case ITS_OPT_T_INT:
        n = snprintf(buf, len, "%d", *(const int *)p);
        break;
    case ITS_OPT_T_DOUBLE:
        n = snprintf(buf, len, "%.17g", *(const double *)p);
        break;
    case ITS_OPT_T_STRING:
        n = snprintf(buf, len, "%s", *(char *const *)p ? *(char *const *)p : "");
        break;
    case ITS_OPT_T_ENUM: {
        int i = *(const int *)p;
        n = snprintf(buf, len, "%s", o->choices ? o->choices[i] : "");
        break;
    }
    }
    return (n < 0 || (size_t)n >= len) ? ITS_EOVERFLOW : 0;
}

static void free_strings(its_config *cfg)
{
    for (size_t i = 0; i < cfg->n_options; i++) {
        if (cfg->options[i].type == ITS_OPT_T_STRING) {
            char **p = field_ptr(cfg, &cfg->options[i]);
            its_free(*p);
            *p = NULL;
        }
    }
}

int its_config_defaults(its_config *cfg, char *err, size_t errlen)
{
    for (size_t i = 0; i < cfg->n_options; i++) {
        const its_option *o = &cfg->options[i];
        const char *def = o->def;
        if (!def)
            def = o->type == ITS_OPT_T_STRING ? ""
                  : o->type == ITS_OPT_T_ENUM ? o->choices[0]
                                              : "0";
        int rc = set_value(cfg, o, def, "default", err, errlen);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int its_config_env_name(const char *option, char *buf, size_t len)
{
    size_t n = strlen(option);
    if (n + 5 > len)
        return ITS_EOVERFLOW;
    memcpy(buf, "ITS_", 4);
    for (size_t i = 0; i <= n; i++) {
        char c = option[i];
        buf[4 + i] = (c == '.' || c == '-') ? '_' : (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
    }
    return 0;
}

static const char *env_lookup(char *const *envp, const char *name)
{
    size_t n = strlen(name);
    for (; envp && *envp; envp++)
        if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
            return *envp + n + 1;
    return NULL;
}

/* A secret from a file (the systemd credential and Kubernetes secret conventions): an option
 * "X_file" names a file whose content, without its trailing newline, becomes the secret
 * option "X". Setting both is an error; so are an unreadable, empty or oversized file.
 * Applying it again (the environment applied a second time) finds the same value: no error. */
static int resolve_secret_files(its_config *cfg, char *err, size_t errlen)
{
    for (size_t i = 0; i < cfg->n_options; i++) {
        const its_option *f = &cfg->options[i];
        size_t n = strlen(f->name);
        if (f->type != ITS_OPT_T_STRING || n < 6 || strcmp(f->name + n - 5, "_file"))
            continue;
        const char *path = *(char *const *)field_ptr(cfg, f);
        if (!path || !*path)
            continue;
        const its_option *o = NULL;
        for (size_t k = 0; k < cfg->n_options; k++)
            if (strlen(cfg->options[k].name) == n - 5 &&
                !strncmp(cfg->options[k].name, f->name, n - 5))
                o = &cfg->options[k];
        if (!o || !(o->flags & ITS_OPT_SECRET) || o->type != ITS_OPT_T_STRING)
            continue;
        char buf[4097];
        FILE *fp = fopen(path, "rb");
        if (!fp)
            return its_seterr(err, errlen, ITS_ECONFIG, "%s: cannot read '%s': %s", f->name, path,
                              strerror(errno));
        size_t len = fread(buf, 1, sizeof buf - 1, fp);
        int more = fgetc(fp) != EOF, bad = ferror(fp);
        fclose(fp);
        if (bad || more)
            return its_seterr(err, errlen, ITS_ECONFIG, "%s: '%s': %s", f->name, path,
                              bad ? "read error" : "larger than 4096 bytes");
        buf[len] = 0;
        while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
            buf[--len] = 0;
        if (!len || strlen(buf) != len)
            return its_seterr(err, errlen, ITS_ECONFIG, "%s: '%s' is empty or holds a NUL byte",
                              f->name, path);
        /* the secret set otherwise too is a conflict (unless the file set it: applied again) */
        const char *cur = *(char *const *)field_ptr(cfg, o);
        int same = cur && !strcmp(cur, buf);
        if (cur && *cur && !same) {
            memset(buf, 0, sizeof buf);
            return its_seterr(err, errlen, ITS_ECONFIG, "%s and %s are both set: use one", o->name,
                              f->name);
        }
        char origin[160];
        snprintf(origin, sizeof origin, "file %s", path);
        int rc = same ? 0 : set_value(cfg, o, buf, origin, err, errlen);
        memset(buf, 0, sizeof buf);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int its_config_apply_env(its_config *cfg, char *const *envp, char *err, size_t errlen)
{
    if (!envp)
        envp = environ;
    for (size_t i = 0; i < cfg->n_options; i++) {
        char name[128], origin[160];
        if (its_config_env_name(cfg->options[i].name, name, sizeof name) < 0)
            continue;
        const char *v = env_lookup(envp, name);
        if (!v)
            continue;
        snprintf(origin, sizeof origin, "environment %s", name);
        int rc = set_value(cfg, &cfg->options[i], v, origin, err, errlen);
        if (rc < 0)
            return rc;
    }
    return resolve_secret_files(cfg, err, errlen);
}

/* ---- the generated libcyaml schema ---- */

typedef struct gen_schema {
    cyaml_schema_value_t top;
    cyaml_schema_field_t *top_fields;
    cyaml_schema_field_t **section_fields; /* per section */
    char **section_names;
    size_t n_sections;
    size_t raw_size;
    size_t extra_off;
} gen_schema;

static void gen_free(gen_schema *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->n_sections; i++) {
        its_free(g->section_fields[i]);
        its_free(g->section_names[i]);
    }
    its_free(g->section_fields);
    its_free(g->section_names);
    its_free(g->top_fields);
    its_free(g);
}

static cyaml_schema_field_t string_field(const char *key, size_t offset)
{
    cyaml_schema_field_t f = {0};
    f.key = key;
    f.data_offset = (uint32_t)offset;
    f.value.type = CYAML_STRING;
    f.value.flags = CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL;
    f.value.data_size = sizeof(char);
    f.value.string.min = 0;
    f.value.string.max = CYAML_UNLIMITED;
    return f;
}

static int gen_build(const its_config *cfg, gen_schema **out)
{
    gen_schema *g = its_calloc(ITS_MOD_CORE, 1, sizeof *g);
    size_t n_extra = 0;
    const cyaml_schema_field_t *extra = cfg->extra_fields;
    while (extra && extra[n_extra].key)
        n_extra++;
    size_t n = cfg->n_options;
    if (!g)
        return ITS_ENOMEM;
    g->top_fields = its_calloc(ITS_MOD_CORE, n + n_extra + 1, sizeof *g->top_fields);
    g->section_fields = its_calloc(ITS_MOD_CORE, n + 1, sizeof *g->section_fields);
    g->section_names = its_calloc(ITS_MOD_CORE, n + 1, sizeof *g->section_names);
    if (!g->top_fields || !g->section_fields || !g->section_names)
        goto oom;
    g->extra_off = (n * SLOT + 15) & ~(size_t)15;
    g->raw_size = g->extra_off + cfg->extra_size;

    size_t nt = 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = cfg->options[i].name;
        const char *dot = strchr(name, '.');
        if (!dot) {
            g->top_fields[nt++] = string_field(name, i * SLOT);
            continue;
        }
        size_t plen = (size_t)(dot - name), s;
        for (s = 0; s < g->n_sections; s++)
            if (strlen(g->section_names[s]) == plen && !strncmp(g->section_names[s], name, plen))
                break;
        if (s == g->n_sections) {
            g->section_names[s] = its_strndup(ITS_MOD_CORE, name, plen);
            g->section_fields[s] = its_calloc(ITS_MOD_CORE, n + 1, sizeof(cyaml_schema_field_t));
            g->n_sections++;
            if (!g->section_names[s] || !g->section_fields[s])
                goto oom;
        }
        cyaml_schema_field_t *sf = g->section_fields[s];
        size_t k = 0;
        while (sf[k].key)
            k++;
        sf[k] = string_field(dot + 1, i * SLOT);
    }
    for (size_t s = 0; s < g->n_sections; s++) {
        cyaml_schema_field_t f = {0};
        f.key = g->section_names[s];
        f.data_offset = 0;
        f.value.type = CYAML_MAPPING;
        f.value.flags = CYAML_FLAG_OPTIONAL;
        f.value.data_size = (uint32_t)(n * SLOT);
        f.value.mapping.fields = g->section_fields[s];
        g->top_fields[nt++] = f;
    }
    for (size_t i = 0; i < n_extra; i++) {
        g->top_fields[nt] = extra[i];
        g->top_fields[nt].data_offset += (uint32_t)g->extra_off;
        if (extra[i].value.type == CYAML_SEQUENCE)
            g->top_fields[nt].count_offset += (uint32_t)g->extra_off;
        nt++;
    }
    g->top.type = CYAML_MAPPING;
    g->top.flags = CYAML_FLAG_POINTER;
    g->top.data_size = (uint32_t)g->raw_size;
    g->top.mapping.fields = g->top_fields;
    *out = g;
    return 0;
oom:
    gen_free(g);
    return ITS_ENOMEM;
}

/* libcyaml reports problems as several log lines (the reason, then a backtrace of the keys
 * it was inside). Collect the error lines so the message names the key. */
typedef struct log_capture {
    char reason[256];
    char path[256];
} log_capture;

static void capture_log(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
    __attribute__((format(printf, 3, 0)));

static void capture_log(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
{
    log_capture *c = ctx;
    char line[256];
    if (level < CYAML_LOG_ERROR)
        return;
    vsnprintf(line, sizeof line, fmt, args);
    size_t l = strlen(line);
    while (l && (line[l - 1] == '\n' || line[l - 1] == ' '))
        line[--l] = '\0';
    const char *p = line;
    if (!strncmp(p, "Load: ", 6))
        p += 6;
    const char *field = strstr(p, "in mapping field '");
    const char *field2 = field ? NULL : strstr(p, "in mapping field: ");
    if (field || field2) {
        /* Backtrace lines come innermost first: prepend. */
        const char *k = field ? field + 18 : field2 + 18;
        size_t kl = strcspn(k, "'");
        char tmp[sizeof c->path];
        if (kl > 120)
            kl = 120;
        memcpy(tmp, k, kl);
        tmp[kl] = '\0';
        if (c->path[0] && kl + 1 + strlen(c->path) < sizeof tmp) {
            tmp[kl] = '.';
            memcpy(tmp + kl + 1, c->path, strlen(c->path) + 1);
        }
        memcpy(c->path, tmp, sizeof tmp);
    } else if (strstr(p, "Backtrace") || strstr(p, "in sequence entry") ||
               strstr(p, "in mapping")) {
        return;
    } else if (!c->reason[0]) {
        snprintf(c->reason, sizeof c->reason, "%s", p);
    }
}

static void *cyaml_its_mem(void *ctx, void *ptr, size_t size)
{
    if (size == 0) {
        its_free(ptr);
        return NULL;
    }
    return its_realloc(ITS_MOD_CORE, ptr, size);
}

static void release_raw(its_config *cfg)
{
    if (cfg->priv_raw && cfg->priv_schema) {
        cyaml_config_t cc = {.mem_fn = cyaml_its_mem, .log_level = CYAML_LOG_ERROR};
        cyaml_free(&cc, &((gen_schema *)cfg->priv_schema)->top, cfg->priv_raw, 0);
    }
    gen_free(cfg->priv_schema);
    cfg->priv_raw = NULL;
    cfg->priv_schema = NULL;
}

static int load_common(its_config *cfg, const char *path, const char *yaml, size_t len,
                       const char *origin, char *err, size_t errlen)
{
    int rc = its_config_defaults(cfg, err, errlen);
    if (rc < 0)
        return rc;
    release_raw(cfg);
    if (cfg->extra && cfg->extra_size)
        memset(cfg->extra, 0, cfg->extra_size);
    if (path || yaml) {
        gen_schema *g;
        if ((rc = gen_build(cfg, &g)) < 0)
            return its_seterr(err, errlen, rc, "%s: out of memory", origin);
        log_capture cap = {{0}, {0}};
        cyaml_config_t cc = {.log_fn = capture_log,
                             .log_ctx = &cap,
                             .mem_fn = cyaml_its_mem,
                             .log_level = CYAML_LOG_ERROR,
                             .flags = CYAML_CFG_NO_ALIAS};
        cyaml_data_t *raw = NULL;
        cyaml_err_t ce =
            path ? cyaml_load_file(path, &cc, &g->top, &raw, NULL)
                 : cyaml_load_data((const uint8_t *)yaml, len, &cc, &g->top, &raw, NULL);
        if (ce != CYAML_OK) {
            gen_free(g);
            if (ce == CYAML_ERR_FILE_OPEN)
                return its_seterr(err, errlen, ITS_ENOENT, "%s: cannot open: %s", origin,
                                  strerror(errno));
            if (ce == CYAML_ERR_OOM)
                return its_seterr(err, errlen, ITS_ENOMEM, "%s: out of memory", origin);
            return its_seterr(err, errlen, ITS_ECONFIG, "%s: %s: %s", origin,
                              cap.path[0] ? cap.path : "(document)",
                              cap.reason[0] ? cap.reason : cyaml_strerror(ce));
        }
        cfg->priv_raw = raw;
        cfg->priv_schema = g;
        if (raw) {
            char **slots = raw;
            for (size_t i = 0; i < cfg->n_options; i++) {
                if (slots[i] &&
                    (rc = set_value(cfg, &cfg->options[i], slots[i], origin, err, errlen)) < 0)
                    return rc;
            }
            if (cfg->extra && cfg->extra_size)
                memcpy(cfg->extra, (char *)raw + g->extra_off, cfg->extra_size);
        }
    }
    return its_config_apply_env(cfg, NULL, err, errlen);
}

/* A secret equal to the placeholder its_config_print writes is a printed configuration loaded
 * back without the secret: refuse it rather than authenticate with the placeholder. */
static int check_secrets(const its_config *cfg, const char *origin, char *err, size_t errlen)
{
    for (size_t i = 0; i < cfg->n_options; i++) {
        const its_option *o = &cfg->options[i];
        if (!(o->flags & ITS_OPT_SECRET) || o->type != ITS_OPT_T_STRING)
            continue;
        const char *v = *(char *const *)field_ptr(cfg, o);
        char env[128];
        if (v && strcmp(v, ITS_CONFIG_REDACTED) == 0 &&
            its_config_env_name(o->name, env, sizeof env) == 0)
            return its_seterr(err, errlen, ITS_ECONFIG,
                              "%s: %s: '%s' is the placeholder --print-config writes for a secret, "
                              "not the secret: set %s or write the secret here",
                              origin, o->name, v, env);
    }
    return 0;
}

static int load_checked(its_config *cfg, const char *path, const char *yaml, size_t len,
                        const char *origin, char *err, size_t errlen)
{
    int rc = load_common(cfg, path, yaml, len, origin, err, errlen);
    return rc < 0 ? rc : check_secrets(cfg, origin, err, errlen);
}

int its_config_load(its_config *cfg, const char *path, char *err, size_t errlen)
{
    return load_checked(cfg, path, NULL, 0, path ? path : "(no file)", err, errlen);
}

int its_config_load_string(its_config *cfg, const char *yaml, size_t len, const char *origin,
                           char *err, size_t errlen)
{
    return load_checked(cfg, NULL, yaml, len, origin ? origin : "(string)", err, errlen);
}

static void print_scalar(FILE *out, const its_config *cfg, const its_option *o)
{
    char buf[1024];
    its_config_get(cfg, o->name, buf, sizeof buf);
    if ((o->flags & ITS_OPT_SECRET) && buf[0]) {
        char env[128] = "", file[128], path[8];
        snprintf(file, sizeof file, "%s_file", o->name);
        if (its_config_get(cfg, file, path, sizeof path) != ITS_ENOENT && path[0]) {
            fprintf(out, "\"\" # secret, from %s", file); /* loads back through the file */
            return;
        }
        its_config_env_name(o->name, env, sizeof env);
        fprintf(out, "\"%s\" # secret, not printed: loads only with %s set", ITS_CONFIG_REDACTED,
                env);
        return;
    }
    if (o->type != ITS_OPT_T_STRING) {
        fputs(buf, out);
        return;
    }
    fputc('"', out);
    for (const char *c = buf; *c; c++) {
        if (*c == '"' || *c == '\\')
            fprintf(out, "\\%c", *c);
        else if ((unsigned char)*c < 0x20)
            fprintf(out, "\\x%02x", (unsigned char)*c);
        else
            fputc(*c, out);
    }
    fputc('"', out);
}

int its_config_print(const its_config *cfg, FILE *out)
{
    /* Top-level options first, then each section in table order. */
    for (size_t i = 0; i < cfg->n_options; i++) {
        const its_option *o = &cfg->options[i];
        if (strchr(o->name, '.'))
            continue;
        if (o->help)
            fprintf(out, "# %s\n", o->help);
        fprintf(out, "%s: ", o->name);
        print_scalar(out, cfg, o);
        fputc('\n', out);
    }
    for (size_t i = 0; i < cfg->n_options; i++) {
        const char *name = cfg->options[i].name, *dot = strchr(name, '.');
        if (!dot)
            continue;
        size_t plen = (size_t)(dot - name);
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = !strncmp(cfg->options[j].name, name, plen) && cfg->options[j].name[plen] == '.';
        if (seen)
            continue;
        fprintf(out, "%.*s:\n", (int)plen, name);
        for (size_t j = i; j < cfg->n_options; j++) {
            const its_option *o = &cfg->options[j];
            if (strncmp(o->name, name, plen) || o->name[plen] != '.')
                continue;
            if (o->help)
                fprintf(out, "  # %s%s\n", o->help,
                        (o->flags & ITS_OPT_RUNTIME) ? " (changeable at run time)" : "");
            fprintf(out, "  %s: ", o->name + plen + 1);
            print_scalar(out, cfg, o);
            fputc('\n', out);
        }
    }
    return ferror(out) ? ITS_EIO : 0;
}

void its_config_free(its_config *cfg)
{
    if (!cfg)
        return;
    free_strings(cfg);
    release_raw(cfg);
}

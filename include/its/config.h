/*
 * its/config.h - options tables and the YAML configuration loader.
 *
 * One table describes every scalar setting of a program (the Redis standardConfig idea):
 * its dotted name, type, where it lives in the settings struct, default, bounds, whether it
 * may change at run time, and a help line. The same table drives defaults, the YAML file,
 * environment overrides and --print-config, so they can never disagree.
 *
 *     typedef struct { int threads; char *model; } my_settings;
 *     static const its_option tab[] = {
 *         ITS_OPT_INT("engine.threads", my_settings, threads, "2", 1, 256, 0, "CPU threads"),
 *         ITS_OPT_STR("engine.model", my_settings, model, "yolo11n.onnx", 0, "ONNX model"),
 *     };
 *     my_settings s;
 *     its_config cfg = {.options = tab, .n_options = 2, .settings = &s};
 *     char err[512];
 *     if (its_config_load(&cfg, "its.yaml", err, sizeof err) < 0)   // defaults, file, env
 *         fprintf(stderr, "%s\n", err);   // "its.yaml: engine.threads: 'x' is not an integer"
 *     its_config_print(&cfg, stdout);
 *     its_config_free(&cfg);
 *
 * YAML shape: "section.key" options appear as `section: {key: value}`; names without a dot
 * are top-level scalars. A program may add typed fields of its own (lists such as cameras)
 * through `extra_fields`, a libcyaml field array whose offsets are relative to `extra`.
 * Unknown keys, wrong types and out-of-range values are errors naming the file, the key and
 * the reason. Environment: ITS_<NAME> with dots as underscores, upper case
 * (ITS_ENGINE_THREADS=4), applied after the file. Strings are owned by the settings struct
 * and released by its_config_free. Not thread-safe: load before starting threads.
 */
#ifndef ITS_CONFIG_H
#define ITS_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "its/url.h"

typedef enum its_opt_type {
    ITS_OPT_T_BOOL,   /* int: 0/1; accepts true/false/yes/no/on/off/1/0 */
    ITS_OPT_T_INT,    /* int, bounded by [min, max] */
    ITS_OPT_T_DOUBLE, /* double, bounded by [min, max] */
    ITS_OPT_T_STRING, /* char *, owned */
    ITS_OPT_T_ENUM,   /* int: index into choices */
} its_opt_type;

enum {
    ITS_OPT_RUNTIME = 1 << 0, /* may change while running (SIGHUP / API) */
    ITS_OPT_SECRET = 1 << 1,  /* printed as ITS_CONFIG_REDACTED, see its_config_print */
};

/* What its_config_print writes in place of a secret (a non-empty ITS_OPT_SECRET value), the
 * same placeholder as for credentials in URLs (its/url.h). Loading refuses it as a value, so a
 * printed configuration never loads back with a placeholder for a password: the secret must
 * come from the environment. */
#define ITS_CONFIG_REDACTED ITS_URL_REDACTED

typedef struct its_option {
    const char *name;
    its_opt_type type;
    size_t offset;
    const char *def;            /* default, as text; NULL: empty string / 0 */
    double min, max;            /* INT, DOUBLE */
    const char *const *choices; /* ENUM: NULL-terminated */
    unsigned flags;
    const char *help;
} its_option;

#define ITS_OPT_BOOL(name, type, field, def, flags, help)                                          \
    {                                                                                              \
        name, ITS_OPT_T_BOOL, offsetof(type, field), def, 0, 1, NULL, flags, help                  \
    }
/* A numeric default macro as the string an option row wants: ITS_STR(ITS_PIPE_BATCH_MAX) is
 * "4", so that a module's own defaults and its option rows share one definition. */
#define ITS__STR(x) #x
#define ITS_STR(x)  ITS__STR(x)

#define ITS_OPT_INT(name, type, field, def, min, max, flags, help)                                 \
    {                                                                                              \
        name, ITS_OPT_T_INT, offsetof(type, field), def, min, max, NULL, flags, help               \
    }
#define ITS_OPT_DOUBLE(name, type, field, def, min, max, flags, help)                              \
    {                                                                                              \
        name, ITS_OPT_T_DOUBLE, offsetof(type, field), def, min, max, NULL, flags, help            \
    }
#define ITS_OPT_STR(name, type, field, def, flags, help)                                           \
    {                                                                                              \
        name, ITS_OPT_T_STRING, offsetof(type, field), def, 0, 0, NULL, flags, help                \
    }
#define ITS_OPT_ENUM(name, type, field, def, choices, flags, help)                                 \
    {                                                                                              \
        name, ITS_OPT_T_ENUM, offsetof(type, field), def, 0, 0, choices, flags, help               \
    }

typedef struct its_config {
    const its_option *options;
    size_t n_options;
    void *settings; /* the struct the options' offsets refer to */
    /* Optional typed fields beside the options (a `const cyaml_schema_field_t *` ending with
     * CYAML_FIELD_END), loaded into `extra` (extra_size bytes). */
    const void *extra_fields;
    void *extra;
    size_t extra_size;
    /* private: libcyaml's data and the schema built from the table, kept for freeing */
    void *priv_raw;
    void *priv_schema;
} its_config;

/* Set every option to its default. */
int its_config_defaults(its_config *cfg, char *err, size_t errlen);
/* Defaults, then the YAML file (path may be NULL: none), then the environment. */
int its_config_load(its_config *cfg, const char *path, char *err, size_t errlen);
/* Same, from a YAML document in memory; `origin` names it in errors. */
int its_config_load_string(its_config *cfg, const char *yaml, size_t len, const char *origin,
                           char *err, size_t errlen);
/* Apply ITS_* environment variables from envp (NULL: the process environment), then secret
 * files: a string option "X_file" (ITS_X_FILE) that names a file sets the ITS_OPT_SECRET
 * option "X" to the file's content without its trailing newline (ITS_ECONFIG when both are
 * set or the file is unreadable, empty or over 4096 bytes). */
int its_config_apply_env(its_config *cfg, char *const *envp, char *err, size_t errlen);
/* Set one option by dotted name from text; origin names the source in errors. */
int its_config_set(its_config *cfg, const char *name, const char *value, const char *origin,
                   char *err, size_t errlen);
/* Current value of one option as text into buf. */
int its_config_get(const its_config *cfg, const char *name, char *buf, size_t len);
const its_option *its_config_find(const its_config *cfg, const char *name);
/* The effective settings as YAML (with help comments), loadable again. A non-empty secret is
 * printed as ITS_CONFIG_REDACTED with a comment naming its environment variable; loading that
 * document fails (ITS_ECONFIG naming the key) unless the environment supplies the secret. A
 * secret read from its "X_file" option prints as "" (the file's name is printed with it). */
int its_config_print(const its_config *cfg, FILE *out);
/* Release strings (and the extra fields' memory). */
void its_config_free(its_config *cfg);

/* Environment variable name for an option: "engine.threads" -> "ITS_ENGINE_THREADS". */
int its_config_env_name(const char *option, char *buf, size_t len);

#endif

/* Fuzz target: the YAML configuration loader on arbitrary documents. */
#include <cyaml/cyaml.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "its/config.h"

typedef struct settings {
    int threads;
    double conf;
    int on;
    char *model;
    int mode;
} settings;

typedef struct extra {
    char **tags;
    unsigned tags_count;
} extra;

static const char *const modes[] = {"a", "b", NULL};
static const its_option opts[] = {
    ITS_OPT_INT("engine.threads", settings, threads, "2", 1, 64, 0, NULL),
    ITS_OPT_DOUBLE("engine.conf", settings, conf, "0.5", 0, 1, 0, NULL),
    ITS_OPT_BOOL("log.on", settings, on, "false", 0, NULL),
    ITS_OPT_STR("engine.model", settings, model, "m", 0, NULL),
    ITS_OPT_ENUM("mode", settings, mode, "a", modes, 0, NULL),
};
static const cyaml_schema_value_t tag_schema = {
    CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 0, 64),
};
static const cyaml_schema_field_t extra_fields[] = {
    CYAML_FIELD_SEQUENCE("tags", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, extra, tags, &tag_schema,
                         0, 16),
    CYAML_FIELD_END,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    settings s;
    extra x;
    memset(&s, 0, sizeof s);
    its_config c = {.options = opts,
                    .n_options = sizeof opts / sizeof opts[0],
                    .settings = &s,
                    .extra_fields = extra_fields,
                    .extra = &x,
                    .extra_size = sizeof x};
    char err[256];
    its_config_load_string(&c, (const char *)data, size, "fuzz", err, sizeof err);
    its_config_free(&c);
    return 0;
}

/* Fuzz target: itsd's configuration loader (YAML, camera list, validation, expansion). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "its/app.h"
#include "its/core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    its_app_config c;
    char err[512];
    if (its_app_config_load_string(&c, (const char *)data, size, "fuzz", err, sizeof err) == 0) {
        FILE *f = fopen("/dev/null", "w");
        if (f) {
            its_app_config_print(&c, f);
            fclose(f);
        }
    }
    its_app_config_free(&c);
    return 0;
}

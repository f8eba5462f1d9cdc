/* Fuzz target: the model-monitor baseline file parser on arbitrary bytes. */
#include <stddef.h>
#include <stdint.h>

#include "its/modelmon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static its_modelmon_t *m;
    if (!m) {
        its_modelmon_params p;
        its_modelmon_params_default(&p);
        if (its_modelmon_create(&p, &m) < 0)
            return 0;
    }
    char err[256];
    if (its_modelmon_baseline_load_string(m, (const char *)data, size, "fuzz", err, sizeof err) ==
        0) {
        its_modelmon_report r;
        its_modelmon_get_report(m, &r);
    }
    return 0;
}

/* Fuzz target: its-replay's reader of message lines (v2). */
#include <stddef.h>
#include <stdint.h>

#include "replay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    its_det d[8];
    replay_frame rf;
    int extra;
    char err[256];
    replay_parse_line((const char *)data, size, d, 8, &rf, &extra, err, sizeof err);
    return 0;
}

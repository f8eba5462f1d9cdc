/* Fuzz target: its-replay's reader of its-infer JSON lines. */
#include <stddef.h>
#include <stdint.h>

#include "replay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    its_det d[8];
    its_det_frame f;
    int extra;
    char err[256];
    replay_parse_line((const char *)data, size, d, 8, &f, &extra, err, sizeof err);
    return 0;
}

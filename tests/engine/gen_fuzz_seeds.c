/* gen_fuzz_seeds DIR: writes the model zoo (valid and broken variants) as DIR/zoo_<name>.onnx,
 * the seed corpus of fuzz_onnx_loader. Rerun it when model_zoo.c changes. */
#include <stdio.h>

#include "model_zoo.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    for (int v = 0; v < ZOO_COUNT; v++) {
        pbw m;
        char path[1024];
        zoo_build(v, &m);
        snprintf(path, sizeof path, "%s/zoo_%s.onnx", argv[1], zoo_name(v));
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(m.buf, 1, m.len, f) != m.len) {
            fprintf(stderr, "cannot write %s\n", path);
            return 1;
        }
        fclose(f);
        pbw_free(&m);
    }
    return 0;
}

/*
 * Fuzz target for the ONNX loader and everything behind it: load the bytes; if they make a
 * model, prepare it on the cpu backend and run it once on zeros when it is small enough to
 * keep an iteration fast. Seeds: tests/engine/fuzz_corpus (the model zoo variants written by
 * gen_fuzz_seeds, and small models from libonnx-testdata).
 */
#include <stdint.h>
#include <stdlib.h>

#include "its/alloc.h"
#include "its/engine.h"
#include "its/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    its_log_set_level(ITS_LOG_OFF);
    its_model_t *m = NULL;
    char err[256];
    if (its_model_load_buffer(data, size, &m, err, sizeof err) < 0)
        return 0;
    its_engine_opts o = {.threads = 1, .max_batch = 1};
    its_engine_t *e = NULL;
    if (its_model_n_nodes(m) <= 64 && its_engine_create(m, &o, &e, err, sizeof err) == 0) {
        int ni = its_model_n_inputs(m), no = its_model_n_outputs(m);
        size_t total = 0;
        int ok = ni <= 8 && no <= 8;
        void *in[8] = {0}, *out[8] = {0};
        for (int k = 0; ok && k < ni; k++) {
            const its_tensor_desc *d = its_model_input(m, k);
            size_t n = 1;
            for (int r = 0; r < d->rank; r++)
                n *= d->dims[r] > 0 ? (size_t)d->dims[r] : 1;
            total += n;
            in[k] = its_calloc(ITS_MOD_TEST, n + 1, 8);
            ok = in[k] != NULL && total < (1u << 20);
        }
        for (int k = 0; ok && k < no; k++) {
            its_tensor_desc d;
            ok = its_engine_output_shape(e, k, 1, &d) == 0;
            size_t n = 1;
            for (int r = 0; ok && r < d.rank; r++)
                n *= (size_t)d.dims[r];
            ok = ok && n < (1u << 22);
            out[k] = ok ? its_calloc(ITS_MOD_TEST, n + 1, 8) : NULL;
            ok = ok && out[k];
        }
        if (ok)
            its_engine_run_io(e, 1, (const void *const *)in, out);
        for (int k = 0; k < 8; k++) {
            its_free(in[k]);
            its_free(out[k]);
        }
        its_engine_destroy(e);
    }
    its_model_free(m);
    return 0;
}

/* model_zoo.h - small ONNX models built in memory for the loader tests and the fuzz seeds:
 * one valid model and variants each broken in one way. */
#ifndef ITS_TEST_MODEL_ZOO_H
#define ITS_TEST_MODEL_ZOO_H

#include "onnx_writer.h"

enum zoo_variant {
    ZOO_VALID = 0,
    ZOO_WRONG_INIT_SIZE,
    ZOO_UNSUPPORTED_OP,
    ZOO_CYCLE,
    ZOO_DANGLING,
    ZOO_ABSURD_DIMS,
    ZOO_BAD_GROUP,
    ZOO_BAD_RESHAPE,
    ZOO_OUTPUT_MISSING,
    ZOO_DUP_OUTPUT,
    ZOO_BAD_OPSET,
    ZOO_WRONG_TYPE,
    ZOO_WEIGHT_MISMATCH,
    ZOO_NEGATIVE_DIM,
    ZOO_COUNT
};

/* Serialized ModelProto of a variant (pbw_free it). */
void zoo_build(int variant, pbw *out);
const char *zoo_name(int variant);
/* A substring the loader's error message must contain for the variant. */
const char *zoo_expect(int variant);

#endif

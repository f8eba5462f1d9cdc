/* Built when this tree has no engine/detect modules: the real backend is unavailable. */
#include <stdio.h>

#include "its/core.h"
#include "its/pipeline.h"

int its_infer_engine_factory(const its_infer_engine_opts *o, its_infer_factory *out, char *err,
                             size_t errlen)
{
    if (err && errlen)
        snprintf(err, errlen, "this build has no inference engine (backend '%s')",
                 o && o->backend ? o->backend : "cpu");
    return ITS_EUNSUPPORTED;
}

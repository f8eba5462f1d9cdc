/* Built when this tree has no api/metrics modules. */
#include "its/app_services.h"
#include "its/core.h"

int its_app_services_create(const its_app_config *c, its_pipeline_t *p, its_app_services **out,
                            char *err, size_t errlen)
{
    *out = NULL;
    return ITS_EUNSUPPORTED;
}

void its_app_services_destroy(its_app_services *s) {}

int its_app_services_port(its_app_services *s)
{
    return 0;
}

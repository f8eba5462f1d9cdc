/* Built when this tree has no track/analytics/quality/modelmon modules. */
#include "its/app_hooks.h"
#include "its/core.h"

int its_app_hooks(const its_app_hooks_opts *o, its_camera_hooks *out)
{
    return ITS_EUNSUPPORTED;
}

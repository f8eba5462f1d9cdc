/* The stage table (its/stage.h). */
#include "its/stage.h"

#include <string.h>

#include "its/frame.h"

static const its_stage_def rows[ITS_STAGE_COUNT] = {
#define ITS__STAGE_ROW(id, name, budget_ms, from, to, desc) {id, name, budget_ms, from, to, desc},
    ITS_STAGE_TABLE(ITS__STAGE_ROW)
#undef ITS__STAGE_ROW
};

const its_stage_def *its_stage_get(its_stage s)
{
    return (unsigned)s < ITS_STAGE_COUNT ? &rows[s] : NULL;
}

const char *its_stage_name(its_stage s)
{
    return (unsigned)s < ITS_STAGE_COUNT ? rows[s].name : "?";
}

double its_stage_budget_ms(its_stage s)
{
    return (unsigned)s < ITS_STAGE_COUNT ? rows[s].budget_ms : 0;
}

int its_stage_find(const char *name)
{
    for (int i = 0; name && i < ITS_STAGE_COUNT; i++)
        if (!strcmp(rows[i].name, name))
            return i;
    return -1;
}

int its_stage_span_ns(its_stage s, const uint64_t *ts, uint64_t *ns)
{
    if ((unsigned)s >= ITS_STAGE_COUNT)
        return 0;
    uint64_t a = ts[rows[s].from], b = ts[rows[s].to];
    if (!a || !b || b < a)
        return 0;
    *ns = b - a;
    return 1;
}

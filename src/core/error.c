/* One table, two lookups: its_strerror() for people, its_errname() for metric labels. */
#include "its/error.h"

#include <stdarg.h>
#include <stdio.h>

const char *its_strerror(int code)
{
    switch (code) {
#define ITS__ERR_MSG(name, value, msg)                                                             \
    case value:                                                                                    \
        return msg;
        ITS_ERROR_TABLE(ITS__ERR_MSG)
#undef ITS__ERR_MSG
    }
    return "unknown error";
}

const char *its_errname(int code)
{
    switch (code) {
#define ITS__ERR_NAME(name, value, msg)                                                            \
    case value:                                                                                    \
        return #name;
        ITS_ERROR_TABLE(ITS__ERR_NAME)
#undef ITS__ERR_NAME
    }
    return "ITS_EUNKNOWN";
}

int its_vseterr(char *err, size_t errlen, int code, const char *fmt, va_list ap)
{
    if (err && errlen)
        vsnprintf(err, errlen, fmt, ap);
    return code;
}

int its_seterr(char *err, size_t errlen, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    its_vseterr(err, errlen, code, fmt, ap);
    va_end(ap);
    return code;
}

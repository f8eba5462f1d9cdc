/* its/core.h - everything from src/core in one include. */
#ifndef ITS_CORE_H
#define ITS_CORE_H

#include "its/alloc.h"
#include "its/clock.h"
#include "its/config.h"
#include "its/error.h"
#include "its/log.h"
#include "its/pool.h"
#include "its/queue.h"

#define ITS_VERSION          "0.1.0"
#define ITS_ARRAY_LEN(a)     (sizeof(a) / sizeof((a)[0]))
#define ITS_MIN(a, b)        ((a) < (b) ? (a) : (b))
#define ITS_MAX(a, b)        ((a) > (b) ? (a) : (b))
#define ITS_CLAMP(x, lo, hi) ((x) < (lo) ? (lo) : (x) > (hi) ? (hi) : (x))
/* A macro's value as a string literal: ITS_STR(ITS_PIPE_BATCH_MAX) is "4". */
#define ITS__STR(x) #x
#define ITS_STR(x)  ITS__STR(x)

#endif

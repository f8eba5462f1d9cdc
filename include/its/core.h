/* its/core.h - everything from src/core in one include. */
#ifndef ITS_CORE_H
#define ITS_CORE_H

#include "its/alloc.h"
#include "its/clock.h"
#include "its/config.h"
#include "its/det.h"
#include "its/error.h"
#include "its/frame.h"
#include "its/json.h"
#include "its/log.h"
#include "its/pool.h"
#include "its/queue.h"
#include "its/url.h"

#define ITS_VERSION          "0.1.0"
#define ITS_ARRAY_LEN(a)     (sizeof(a) / sizeof((a)[0]))
#define ITS_MIN(a, b)        ((a) < (b) ? (a) : (b))
#define ITS_MAX(a, b)        ((a) > (b) ? (a) : (b))
#define ITS_CLAMP(x, lo, hi) ((x) < (lo) ? (lo) : (x) > (hi) ? (hi) : (x))

#endif

/*
 * Fuzz target for request routing and parsing: the input is split at the first five
 * newlines into method, path, ?window=, Authorization and Content-Type; the rest is the
 * body. Every request goes through its_api_handle, the same function the server calls.
 * Invariants: a response always has a status in 200..599 and a body that is valid JSON
 * (except /metrics, which is text).
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "camera_table.h"
#include "its/api.h"
#include "its/core.h"

static its_api *api;
static camera_table table;
static its_metrics *reg;
static its_cache *cache;

static void init(void)
{
    camera_table_init(&table);
    table.ready = 1;
    reg = its_metrics_create();
    its_metrics_std_register(reg);
    its_cache_create(NULL, reg, &cache);
    its_cache_put(cache, "its:cam:c1:analytics:1m", "{\"v\":1}", 7, 3600);
    its_api_config cfg;
    its_api_config_default(&cfg);
    cfg.token = "fuzz";
    its_api_provider prov = camera_table_provider(&table);
    if (its_api_create(&cfg, &prov, reg, cache, &api) < 0)
        abort();
    its_log_set_level(ITS_LOG_OFF);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!api)
        init();
    if (size > (1u << 20))
        return 0;
    char *copy = malloc(size + 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    copy[size] = 0;
    char *fields[5] = {0};
    char *p = copy;
    size_t used = 0;
    for (int i = 0; i < 5; i++) {
        char *nl = memchr(p, '\n', size - used);
        if (!nl)
            break;
        *nl = 0;
        fields[i] = p;
        used += (size_t)(nl - p) + 1;
        p = nl + 1;
    }
    if (fields[0] && fields[1] &&
        memchr(copy, 0, (size_t)(fields[1] - copy)) == fields[0] + strlen(fields[0])) {
        its_api_request req = {
            .method = fields[0],
            .path = fields[1],
            .window = fields[2] && fields[2][0] ? fields[2] : NULL,
            .authorization = fields[3] && fields[3][0] ? fields[3] : NULL,
            .content_type = fields[4] && fields[4][0] ? fields[4] : NULL,
            .body = (const uint8_t *)p,
            .body_len = size - used,
        };
        its_api_response resp;
        its_api_handle(api, &req, &resp);
        if (resp.status < 200 || resp.status > 599 || !resp.body)
            abort();
        /* Every error is the API's JSON error, and every body said to be JSON parses; the
         * other successes (the metrics exposition, the console's files, CSV, JPEG, MP4, an
         * event stream) are what their content type says. */
        int json = resp.content_type && strstr(resp.content_type, "json");
        if (resp.status >= 400 && !json)
            abort();
        if (json) {
            json_t *j = json_loadb(resp.body, resp.len, 0, NULL);
            if (!j)
                abort();
            json_decref(j);
        }
        its_api_response_free(&resp);
    }
    free(copy);
    return 0;
}

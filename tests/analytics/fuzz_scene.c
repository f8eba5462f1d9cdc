/* Fuzz target: the scene-file parser and validator on arbitrary bytes. */
#include <stddef.h>
#include <stdint.h>

#include "its/analytics.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    its_scene s;
    char err[512];
    if (its_scene_load_string((const char *)data, size, "fuzz.yaml", &s, err, sizeof err) == 0) {
        /* a scene that loads must also run */
        its_analytics_t *a;
        if (its_analytics_create(&s, NULL, &a) == 0) {
            its_track t = {
                .id = 1, .class_id = 2, .score = 0.9f, .x1 = 10, .y1 = 10, .x2 = 50, .y2 = 40};
            const its_analytics_frame *r;
            for (int f = 0; f < 3; f++) {
                t.y1 += 20;
                t.y2 += 20;
                its_analytics_update(a, f * 33000000LL, (uint64_t)f, &t, 1, &r);
            }
            its_analytics_destroy(a);
        }
    }
    return 0;
}

/* Fuzz entry for still-image decoding: any bytes in, an image or a clean error out. */
#include <stddef.h>
#include <stdint.h>

#include "its/media.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A small pixel cap keeps hostile headers from asking for gigabytes. */
    its_image_opts o = {.fmt = (size & 1) ? ITS_PIX_BGR24 : ITS_PIX_RGB24, .max_pixels = 4L << 20};
    its_image img;
    char err[256];
    if (its_image_decode(data, size, &o, &img, err, sizeof err) == 0) {
        /* Touch every row so a short buffer shows up under ASan. */
        volatile uint8_t sink = 0;
        for (int y = 0; y < img.height; y++)
            sink ^= img.data[(size_t)y * img.stride + (size_t)img.width * 3 - 1];
        (void)sink;
        its_image_free(&img);
    }
    return 0;
}

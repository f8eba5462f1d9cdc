/*
 * A small in-memory implementation of its_api_provider, the interface itsd implements: a
 * mutex-protected table of cameras and the last pushed frame. Used by the API tests and the
 * fuzz target to drive every endpoint.
 */
#ifndef ITS_CAMERA_TABLE_H
#define ITS_CAMERA_TABLE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "its/api.h"

#define CAMERA_TABLE_MAX 8

typedef struct camera_table {
    pthread_mutex_t lock;
    int ready;
    int full; /* frame_push answers ITS_EFULL */
    its_api_camera cams[CAMERA_TABLE_MAX];
    char json[CAMERA_TABLE_MAX][512];
    int n;
    uint8_t *last_frame; /* copy of the last pushed JPEG (its_malloc) */
    size_t last_len;
    char last_frame_cam[ITS_PUB_ID_MAX + 1];
    int frames_pushed;
} camera_table;

void camera_table_init(camera_table *t);
void camera_table_free(camera_table *t);
its_api_provider camera_table_provider(camera_table *t);

#endif

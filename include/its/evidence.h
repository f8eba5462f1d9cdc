/*
 * its/evidence.h - clips around events without re-encoding: a per-camera ring of the
 * compressed video packets as the demuxer read them, from which a clip of pre_s + post_s
 * seconds around an event is cut and remuxed (FFmpeg, no decoding, no encoding) into an MP4.
 *
 *     its_clipring_t *r;
 *     its_clipring_create(8 << 20, &r);                    // 8 MiB of packets
 *     // on the source's thread, from its_video_opts.on_packet:
 *     its_clipring_packet(r, v, &pkt, media_base_ns);
 *     // any thread, on an event at media time t:
 *     its_clipring_request(r, t, 5.0, 5.0, "/var/lib/its/evidence/cam1-17-3.mp4");
 *     ...                                                  // written once the packets up to
 *                                                          // t + 5 s have come
 *     its_clipring_unref(r);                               // by each holder
 *
 * Clips: the packets from the last keyframe at or before t - pre_s (else the ring's first
 * keyframe) to the last one at or before t + post_s, timestamps shifted so that t - pre_s is
 * 0: the packets before it (from the keyframe on) get negative times, which the MP4 muxer
 * turns into an edit list, so players and ffprobe show pre_s + post_s seconds starting at
 * t - pre_s while the decoder still gets its keyframe (a clip asked for before the first
 * keyframe the ring holds starts at that keyframe, shorter). The index (moov) comes before the
 * media (faststart), so a browser plays a clip as it arrives. The file appears whole (written as
 * PATH.part, then renamed).
 *
 * Contract: one writer thread (its_clipring_packet, which also cuts the clips that are due);
 * requests from any thread. The ring's bytes and its index are allocated at create; a packet
 * evicts the oldest ones. A change of the stream's codec parameters (a reconnect to another
 * stream) empties the ring. Reference counted: create gives one reference.
 * Errors: ITS_EINVAL, ITS_ENOMEM, ITS_EFULL (too many clips pending).
 */
#ifndef ITS_EVIDENCE_H
#define ITS_EVIDENCE_H

#include <stddef.h>
#include <stdint.h>

#include "its/video.h"

#define ITS_CLIPRING_PENDING 16 /* clips waiting for their packets, per camera */

typedef struct its_clipring its_clipring_t; /* struct its_clipring in other headers */

int its_clipring_create(size_t max_bytes, its_clipring_t **out);
void its_clipring_ref(its_clipring_t *r);
void its_clipring_unref(its_clipring_t *r);

/* One packet of v (media time = media_base_ns + p->pts_ns); cuts the clips now due. */
void its_clipring_packet(its_clipring_t *r, its_video_t *v, const its_video_packet *p,
                         int64_t media_base_ns);
/* A clip of [t_ns - pre_s, t_ns + post_s] of media time into path (copied). */
int its_clipring_request(its_clipring_t *r, int64_t t_ns, double pre_s, double post_s,
                         const char *path);
/* Cut the pending clips with the packets there are (a stream that ended). */
void its_clipring_flush(its_clipring_t *r);

typedef struct its_clipring_stats {
    uint64_t packets, bytes_kept, clips_written, clips_failed, requests_refused;
    int64_t oldest_ns, newest_ns; /* media time held; 0 when empty */
} its_clipring_stats;
void its_clipring_get_stats(its_clipring_t *r, its_clipring_stats *out);

/* Storage limits for a folder of evidence files: the oldest files (by modification time) are
 * deleted until at most max_bytes remain, and every file older than max_age_s. Returns the
 * number deleted. */
int its_evidence_sweep(const char *dir, uint64_t max_bytes, double max_age_s);

/*
 * The evidence of a service: its folder, the cameras' rings and the recent events' records.
 * An event's snapshot is DIR/<event id>.jpg (written at once), its clip DIR/<event id>.mp4
 * (written by the camera's source thread once post_s has passed). After each capture the
 * folder is swept to max_bytes and max_age_s. Thread-safe: cameras open and close from the
 * pipeline's control path, captures come from the analytics workers, reads from the API.
 */
typedef struct its_evidence_config {
    const char *dir; /* created if missing */
    double pre_s, post_s;
    size_t ring_bytes; /* per camera */
    uint64_t max_bytes;
    double max_age_s; /* 0: no age limit */
} its_evidence_config;

typedef struct its_evidence_record {
    char id[160];
    char camera[65];
    char kind[32];
    int64_t ts_us;
    char cls[16];      /* the object's class group ("car"); "": none (a queue) */
    char place_key[8]; /* "line", "zone" or "lane" (as in the event message); "": none */
    char place[32];    /* that line's, zone's or lane's name in the scene */
    int direction;     /* line crossings: +1 positive, -1 negative; else 0 */
    int clip;          /* a clip was asked for (the camera has a ring) */
} its_evidence_record;

#define ITS_EVIDENCE_RECORDS 1024 /* records kept, the oldest go first */

typedef struct its_evidence_store its_evidence_store;

int its_evidence_store_create(const its_evidence_config *c, its_evidence_store **out, char *err,
                              size_t errlen);
void its_evidence_store_destroy(its_evidence_store *s);
double its_evidence_pre_s(const its_evidence_store *s);
/* A new ring for the camera (replacing the table's previous one); the caller gets a reference
 * (to hand to its source). NULL when out of memory. */
its_clipring_t *its_evidence_camera_open(its_evidence_store *s, const char *camera);
/* The camera is gone: its ring leaves the table (if it is still r; r NULL: whichever). */
void its_evidence_camera_close(its_evidence_store *s, const char *camera, its_clipring_t *r);
/* An event's evidence: the snapshot (JPEG bytes; NULL: none) written now, the clip around
 * media_ns asked of the camera's ring of ev->camera (when it has one: *clip set), the record
 * ev kept (its clip field is set here). ev->id: [A-Za-z0-9_.-], at most 159 characters. */
int its_evidence_capture(its_evidence_store *s, const its_evidence_record *ev, int64_t media_ns,
                         const uint8_t *jpeg, size_t jpeg_len, int *clip);
/* The newest records first; returns how many. */
int its_evidence_list(its_evidence_store *s, its_evidence_record *out, int max);
/* The file of an event's "snapshot" or "clip" once written; ITS_ENOENT otherwise, ITS_EINVAL
 * for an id that cannot be one. */
int its_evidence_path(its_evidence_store *s, const char *id, const char *what, char *path,
                      size_t len);

#endif

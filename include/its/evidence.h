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
 * t - pre_s while the decoder still gets its keyframe. The file appears whole (written as
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

typedef struct its_clipring its_clipring_t;

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

#endif

/*
 * its/url.h - URLs shown to people: credentials removed.
 *
 *     char shown[ITS_URL_SHOWN_MAX];
 *     its_url_scrub("rtsp://admin:s3cret@10.0.0.7/stream?token=abc", shown, sizeof shown);
 *     // "rtsp://admin:<redacted>@10.0.0.7/stream?token=<redacted>"
 *
 * Contract: the password of the userinfo part (scheme://user:password@host) becomes
 * ITS_URL_REDACTED; a userinfo without a password (scheme://secret@host, often a token) is
 * replaced whole; the values of query parameters whose name says secret (password, passwd,
 * pwd, pass, token, secret, key, auth, signature, sig, apikey, api_key, access_token;
 * case-insensitive) are replaced. Everything else is kept as given. The result is always
 * NUL-terminated; one longer than cap is cut and ends in "...". Every URL that reaches an API
 * response, a log line, a metric label or a message goes through here; the unredacted URL is used
 * only to open the source.
 */
#ifndef ITS_URL_H
#define ITS_URL_H

#include <stddef.h>

#define ITS_URL_SHOWN_MAX 1024
#define ITS_URL_REDACTED  "<redacted>"

/* Writes the redacted url into out (cap bytes, cap >= 8); returns 1 if something was
 * redacted, else 0. url NULL: "". */
int its_url_scrub(const char *url, char *out, size_t cap);

#endif

/*
 * http_int.h - what the three parts of vmscreend's HTTP face share:
 * http.c (the server, routing, replies, static console files, /metrics,
 * /healthz), http_auth.c (reviewer logins, sessions, CSRF, rate limits)
 * and http_api.c (the JSON API over the spools).  See docs/http.md.
 */
#ifndef VMSD_HTTP_INT_H
#define VMSD_HTTP_INT_H

#include <jansson.h>
#include <microhttpd.h>

#include "daemon.h"
#include "review/review.h"

#define HTTP_BODY_MAX (64 * 1024) /* a request body larger than this: 413 */

/* The http group of the config, read once at start (changes need a
 * restart: the listening socket and the sessions belong to the process). */
typedef struct http_conf {
	char users_file[VMS_PATH_MAX]; /* "": no logins, no API, no console */
	char console_dir[VMS_PATH_MAX];
	int session_s;         /* a session ends this long after login */
	int tls;               /* cookies get Secure */
	char public_name[256]; /* a Host name besides address literals, or "" */
} http_conf;

/* One request: what MHD told us, the body so far, and who is asking. */
typedef struct http_req {
	struct MHD_Connection *c;
	const char *method;
	const char *url;
	char *body; /* NUL-terminated */
	size_t len;
	int too_big;
	char ip[64];
	char user[REVIEWERS_NAME_MAX + 1]; /* set by auth_require */
} http_req;

/* http.c: replies.  Each takes over `body` (malloc'ed) or `j`; hdrs is NULL
 * or a NULL-terminated list of name, value pairs added to the reply. */
enum MHD_Result http_send(http_req *r, unsigned status, char *body, size_t len, const char *type,
                          const char *const *hdrs);
enum MHD_Result http_json(http_req *r, unsigned status, json_t *j, const char *const *hdrs);
enum MHD_Result http_error(http_req *r, unsigned status, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* A hex digit's value, or -1 (URL and form decoding). */
int http_hexval(char c);
/* A response's fixed headers (CSP by kind: console page or anything else). */
void http_headers(struct MHD_Response *resp, int console_page);

/* http_auth.c */
int auth_init(const http_conf *hc, char *err, size_t errlen);
void auth_free(void);
enum MHD_Result auth_login(http_req *r);
enum MHD_Result auth_logout(http_req *r);
enum MHD_Result auth_session(http_req *r);
/* 0 when r carries a live session (and, for a POST, its CSRF token and a
 * same-origin Origin if any): r->user is set.  Else the status to answer
 * (401 or 403; 503 when users_file is unreadable) with a reason in *why. */
unsigned auth_require(http_req *r, const char **why);

/* http_api.c: GET/POST under /api/items; the caller has authenticated. */
enum MHD_Result api_items(http_req *r, runtime *rt);

#endif

/*
 * http_auth.c - reviewer logins for the console and the API (issue 11).
 *
 * Passwords are checked against users_file (Argon2id strings written by
 * `vmscreen passwd`), re-read at every login so a new account needs no
 * reload.  A session is 32 random bytes in an HttpOnly, SameSite=Strict
 * cookie; it carries its own CSRF token, which every POST must echo in
 * X-CSRF-Token.  Failed logins are counted per user name and per address:
 * after AUTH_FAILS_MAX within AUTH_WINDOW_S, attempts answer 429 until the
 * window has passed.  An unknown name costs the same Argon2id computation
 * as a known one, so timing does not tell which names exist.
 *
 * Sessions live in memory: a daemon restart logs everyone out (a reload
 * does not).  Everything here runs on MHD's pool threads under auth_mu.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include <sodium.h>

#include "http_int.h"

#define AUTH_SESSIONS_MAX 256
#define AUTH_FAILS_MAX 5
#define AUTH_WINDOW_S 900
#define AUTH_TRACK_MAX 512
#define AUTH_TOKEN_BYTES 32
#define AUTH_HEX (2 * AUTH_TOKEN_BYTES + 1)
#define AUTH_COOKIE "vms_session"

typedef struct auth_session_t {
	char token[AUTH_HEX];
	char csrf[AUTH_HEX];
	char user[REVIEWERS_NAME_MAX + 1];
	time_t expires; /* wall clock, for the cookie and the API */
	int used;
} auth_session_t;

typedef struct auth_fail {
	char key[96]; /* "u:NAME" or "a:ADDRESS" */
	time_t first;
	int count;
} auth_fail;

static pthread_mutex_t auth_mu = PTHREAD_MUTEX_INITIALIZER;
static auth_session_t auth_sessions[AUTH_SESSIONS_MAX];
static auth_fail auth_fails[AUTH_TRACK_MAX];
static http_conf auth_conf;
static char auth_dummy_hash[crypto_pwhash_STRBYTES];

static int auth_same_origin(http_req *r);

/* Hash a throwaway password once, so that a login for an unknown name
 * can cost what a real check costs.  One Argon2id run at start-up. */
int auth_init(const http_conf *hc, char *err, size_t errlen)
{
	unsigned char junk[16];

	auth_conf = *hc;
	if (sodium_init() < 0) {
		snprintf(err, errlen, "libsodium cannot start");
		return -1;
	}
	randombytes_buf(junk, sizeof junk);
	if (crypto_pwhash_str(auth_dummy_hash, (const char *)junk, sizeof junk,
	                      crypto_pwhash_OPSLIMIT_INTERACTIVE,
	                      crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
		snprintf(err, errlen, "cannot compute a password hash (out of memory?)");
		return -1;
	}
	return 0;
}

/* Forget every session (at exit). */
void auth_free(void)
{
	pthread_mutex_lock(&auth_mu);
	sodium_memzero(auth_sessions, sizeof auth_sessions);
	pthread_mutex_unlock(&auth_mu);
}

/* The failure record for key (creating one, evicting the oldest, when
 * create); NULL when absent.  Caller holds auth_mu. */
static auth_fail *auth_fail_slot(const char *key, time_t now, int create)
{
	auth_fail *oldest = &auth_fails[0];

	for (int i = 0; i < AUTH_TRACK_MAX; i++) {
		auth_fail *f = &auth_fails[i];
		if (f->count > 0 && now - f->first >= AUTH_WINDOW_S)
			f->count = 0; /* the window has passed */
		if (f->count > 0 && strcmp(f->key, key) == 0)
			return f;
		if (f->count == 0 || f->first < oldest->first)
			oldest = f;
	}
	if (!create)
		return NULL;
	memset(oldest, 0, sizeof *oldest);
	snprintf(oldest->key, sizeof oldest->key, "%s", key);
	oldest->first = now;
	return oldest;
}

/* Seconds until key may try again (0: now). */
static long auth_blocked(const char *key, time_t now)
{
	long wait = 0;

	pthread_mutex_lock(&auth_mu);
	auth_fail *f = auth_fail_slot(key, now, 0);
	if (f != NULL && f->count >= AUTH_FAILS_MAX)
		wait = (long)(f->first + AUTH_WINDOW_S - now);
	pthread_mutex_unlock(&auth_mu);
	return wait > 0 ? wait : 0;
}

/* Count a failure for key, or (ok) forget its failures. */
static void auth_count(const char *key, time_t now, int ok)
{
	pthread_mutex_lock(&auth_mu);
	auth_fail *f = auth_fail_slot(key, now, !ok);
	if (f != NULL) {
		if (ok)
			f->count = 0;
		else
			f->count++;
	}
	pthread_mutex_unlock(&auth_mu);
}

/* Decode one application/x-www-form-urlencoded field of body into out
 * ('+' is a space, %XX a byte); 1 found, 0 absent or too long. */
static int auth_form_field(const char *body, const char *name, char *out, size_t len)
{
	size_t nl = strlen(name);

	for (const char *p = body; p != NULL && *p; p = strchr(p, '&'), p = p ? p + 1 : NULL) {
		if (strncmp(p, name, nl) != 0 || p[nl] != '=')
			continue;
		size_t o = 0;
		for (const char *q = p + nl + 1; *q && *q != '&'; q++) {
			int hi, lo;
			char c = *q;
			if (c == '+')
				c = ' ';
			else if (c == '%' && (hi = http_hexval(q[1])) >= 0 &&
			         (lo = http_hexval(q[2])) >= 0) {
				c = (char)(hi * 16 + lo);
				q += 2;
			}
			if (o + 1 >= len || c == '\0')
				return 0;
			out[o++] = c;
		}
		out[o] = '\0';
		return 1;
	}
	return 0;
}

/* A fresh random token as hex. */
static void auth_token(char out[AUTH_HEX])
{
	unsigned char b[AUTH_TOKEN_BYTES];

	randombytes_buf(b, sizeof b);
	sodium_bin2hex(out, AUTH_HEX, b, sizeof b);
}

/* Start a session for user (replacing the oldest when the table is full);
 * copies it to *out. */
static void auth_session_new(const char *user, auth_session_t *out)
{
	time_t now = time(NULL);
	auth_session_t *s = &auth_sessions[0];

	pthread_mutex_lock(&auth_mu);
	for (int i = 0; i < AUTH_SESSIONS_MAX; i++) {
		auth_session_t *t = &auth_sessions[i];
		if (!t->used || t->expires <= now) {
			s = t;
			break;
		}
		if (t->expires < s->expires)
			s = t;
	}
	memset(s, 0, sizeof *s);
	auth_token(s->token);
	auth_token(s->csrf);
	snprintf(s->user, sizeof s->user, "%s", user);
	s->expires = now + auth_conf.session_s;
	s->used = 1;
	*out = *s;
	pthread_mutex_unlock(&auth_mu);
}

/* The live session whose token the request's cookie carries: 1 and a copy
 * in *out (drop: end it), else 0. */
static int auth_session_find(http_req *r, auth_session_t *out, int drop)
{
	const char *tok = MHD_lookup_connection_value(r->c, MHD_COOKIE_KIND, AUTH_COOKIE);
	time_t now = time(NULL);
	int found = 0;

	if (tok == NULL || strlen(tok) != AUTH_HEX - 1)
		return 0;
	pthread_mutex_lock(&auth_mu);
	for (int i = 0; i < AUTH_SESSIONS_MAX && !found; i++) {
		auth_session_t *s = &auth_sessions[i];
		if (s->used && s->expires > now &&
		    sodium_memcmp(s->token, tok, AUTH_HEX - 1) == 0) {
			*out = *s;
			found = 1;
			if (drop)
				memset(s, 0, sizeof *s);
		}
	}
	pthread_mutex_unlock(&auth_mu);
	return found;
}

/* The session's public part as JSON: user, csrf, expires. */
static json_t *auth_session_json(const auth_session_t *s)
{
	char when[40];
	struct timespec ts = {s->expires, 0};

	spool_iso_time(&ts, when, sizeof when);
	return json_pack("{s:s, s:s, s:s}", "user", s->user, "csrf", s->csrf, "expires", when);
}

/* Check name's password; 1 right, 0 wrong, -1 the users file is
 * unreadable.  Always one Argon2id computation. */
static int auth_password_ok(const char *name, const char *password)
{
	char hash[crypto_pwhash_STRBYTES + 64], err[VMS_PATH_MAX + 256];
	int found = reviewers_name_ok(name) ? reviewers_lookup(auth_conf.users_file, name, hash,
	                                                       sizeof hash, err, sizeof err)
	                                    : 0;

	if (found < 0) {
		dlog(LOG_ERR, "http: %s", err);
		return -1;
	}
	int ok = reviewers_check(found ? hash : auth_dummy_hash, password);
	sodium_memzero(hash, sizeof hash);
	return found && ok;
}

/* POST /login: form fields user and password. */
enum MHD_Result auth_login(http_req *r)
{
	char user[REVIEWERS_NAME_MAX + 1], password[1024], ku[96], ka[96], cookie[256], retry[32];
	time_t now = time(NULL);
	auth_session_t s;

	if (!auth_same_origin(r))
		return http_error(r, MHD_HTTP_FORBIDDEN, "cross-origin login");
	if (!auth_form_field(r->body, "user", user, sizeof user) ||
	    !auth_form_field(r->body, "password", password, sizeof password))
		return http_error(r, MHD_HTTP_BAD_REQUEST,
		                  "form fields user and password are required");
	snprintf(ku, sizeof ku, "u:%s", user);
	snprintf(ka, sizeof ka, "a:%s", r->ip);
	long wait = auth_blocked(ku, now) > auth_blocked(ka, now) ? auth_blocked(ku, now)
	                                                          : auth_blocked(ka, now);
	if (wait > 0) {
		snprintf(retry, sizeof retry, "%ld", wait);
		const char *h[] = {"Retry-After", retry, NULL};
		sodium_memzero(password, sizeof password);
		return http_json(r, 429,
		                 json_pack("{s:s, s:i}", "error",
		                           "too many failed logins: try again later",
		                           "retry_after_s", (int)wait),
		                 h);
	}
	int ok = auth_password_ok(user, password);
	sodium_memzero(password, sizeof password);
	if (ok < 0)
		return http_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR,
		                  "the users file is unreadable");
	auth_count(ku, now, ok);
	auth_count(ka, now, ok);
	if (!ok) {
		dlog(LOG_WARNING, "http: failed login for %s from %s",
		     reviewers_name_ok(user) ? user : "(an invalid name)", r->ip);
		return http_error(r, MHD_HTTP_UNAUTHORIZED, "wrong user name or password");
	}
	auth_session_new(user, &s);
	snprintf(cookie, sizeof cookie,
	         AUTH_COOKIE "=%s; HttpOnly; SameSite=Strict; Path=/; Max-Age=%d%s", s.token,
	         auth_conf.session_s, auth_conf.tls ? "; Secure" : "");
	const char *h[] = {"Set-Cookie", cookie, NULL};
	dlog(LOG_NOTICE, "http: %s logged in from %s", user, r->ip);
	json_t *j = auth_session_json(&s);
	sodium_memzero(&s, sizeof s);
	return http_json(r, MHD_HTTP_OK, j, h);
}

/* GET /api/session: who is logged in, with the CSRF token. */
enum MHD_Result auth_session(http_req *r)
{
	auth_session_t s;

	if (!auth_session_find(r, &s, 0))
		return http_error(r, MHD_HTTP_UNAUTHORIZED, "login required");
	return http_json(r, MHD_HTTP_OK, auth_session_json(&s), NULL);
}

/* POST /logout (CSRF-checked by the caller). */
enum MHD_Result auth_logout(http_req *r)
{
	auth_session_t s;
	const char *h[] = {"Set-Cookie",
	                   AUTH_COOKIE "=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0", NULL};

	if (auth_session_find(r, &s, 1))
		dlog(LOG_NOTICE, "http: %s logged out", s.user);
	return http_json(r, MHD_HTTP_OK, json_pack("{s:b}", "ok", 1), h);
}

/* 1 when an Origin header, if any, names this server (Host). */
static int auth_same_origin(http_req *r)
{
	const char *origin = MHD_lookup_connection_value(r->c, MHD_HEADER_KIND, "Origin");
	const char *host = MHD_lookup_connection_value(r->c, MHD_HEADER_KIND, "Host");
	const char *rest;

	if (origin == NULL)
		return 1;
	if (host == NULL)
		return 0;
	if (strncmp(origin, "http://", 7) == 0)
		rest = origin + 7;
	else if (strncmp(origin, "https://", 8) == 0)
		rest = origin + 8;
	else
		return 0;
	return strcmp(rest, host) == 0;
}

/* See http_int.h. */
unsigned auth_require(http_req *r, const char **why)
{
	auth_session_t s;
	const char *csrf;

	if (!auth_session_find(r, &s, 0)) {
		*why = "login required";
		return MHD_HTTP_UNAUTHORIZED;
	}
	if (strcmp(r->method, "POST") == 0) {
		csrf = MHD_lookup_connection_value(r->c, MHD_HEADER_KIND, "X-CSRF-Token");
		if (csrf == NULL || strlen(csrf) != AUTH_HEX - 1 ||
		    sodium_memcmp(csrf, s.csrf, AUTH_HEX - 1) != 0) {
			*why = "missing or wrong X-CSRF-Token";
			return MHD_HTTP_FORBIDDEN;
		}
		if (!auth_same_origin(r)) {
			*why = "cross-origin request";
			return MHD_HTTP_FORBIDDEN;
		}
	}
	snprintf(r->user, sizeof r->user, "%s", s.user);
	return 0;
}

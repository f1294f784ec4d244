/*
 * http_auth.c - reviewer logins for the console and the API (issue 11).
 *
 * Passwords are checked against users_file (Argon2id strings written by
 * `vmscreen passwd`), re-read at every login so a new account needs no
 * reload.  A session is 32 random bytes in an HttpOnly, SameSite=Strict
 * cookie; it carries its own CSRF token, which every POST must echo in
 * X-CSRF-Token.  A session is bound to the account's hash as it was at
 * login: every request reads users_file again, and a deleted account or a
 * changed password ends all of that account's sessions at once (issue 18).
 * One account holds at most AUTH_SESSIONS_PER_USER sessions (a new login
 * ends its own oldest), so no account can push the others out.
 *
 * Failed logins are counted, and each attempt is counted *before* its
 * Argon2id check (under auth_mu), so concurrent guesses cannot all pass a
 * check made earlier; a right password takes its count back.  Three
 * limits, each per AUTH_WINDOW_S (issue 18):
 *  - AUTH_PAIR_FAILS a name from one address: the guessing limit proper;
 *  - AUTH_ADDR_FAILS one address, any names: no spraying from one place;
 *  - AUTH_NAME_FAILS a name, any addresses: a bound on a guesser with many
 *    addresses.  It is ten times the pair limit so that a few wrong
 *    guesses from elsewhere do not lock the real reviewer out of her own
 *    address; locking her out takes a spread-out attack that is itself
 *    logged.
 * A record is never evicted while it counts: when the table is full every
 * new name or address is refused (429) until records expire, which is
 * failing closed instead of forgetting a lock.  An unknown name costs the
 * same Argon2id computation as a known one, so timing does not tell which
 * names exist; at most AUTH_ARGON_MAX of them run at once (fewer than
 * MHD's pool threads, so /healthz and /metrics always have a thread), and
 * a login beyond that answers 503 with Retry-After.
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
#define AUTH_SESSIONS_PER_USER 8
#define AUTH_PAIR_FAILS 5
#define AUTH_ADDR_FAILS 20
#define AUTH_NAME_FAILS 50
#define AUTH_WINDOW_S 900
#define AUTH_TRACK_MAX 4096
#define AUTH_ARGON_MAX 2 /* < HTTP_POOL_THREADS (http.c) */
#define AUTH_TOKEN_BYTES 32
#define AUTH_HEX (2 * AUTH_TOKEN_BYTES + 1)
#define AUTH_COOKIE "vms_session"
#define AUTH_KEY_MAX (REVIEWERS_NAME_MAX + 80)

typedef struct auth_session_t {
	char token[AUTH_HEX];
	char csrf[AUTH_HEX];
	char user[REVIEWERS_NAME_MAX + 1];
	unsigned char bind[crypto_generichash_BYTES]; /* of the account's hash at login */
	time_t expires;                               /* wall clock, for the cookie and the API */
	int used;
} auth_session_t;

typedef struct auth_fail {
	char key[AUTH_KEY_MAX]; /* "p:NAME ADDRESS", "u:NAME" or "a:ADDRESS" */
	time_t first;
	int count; /* 0: a free record */
} auth_fail;

static pthread_mutex_t auth_mu = PTHREAD_MUTEX_INITIALIZER;
static auth_session_t auth_sessions[AUTH_SESSIONS_MAX];
static auth_fail auth_fails[AUTH_TRACK_MAX];
static int auth_argon_running;
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

/* 1 when f counts (its window has not passed; a passed one is freed). */
static int auth_fail_live(auth_fail *f, time_t now)
{
	if (f->count > 0 && now - f->first >= AUTH_WINDOW_S)
		f->count = 0;
	return f->count > 0;
}

/* The live record for key, or NULL.  Caller holds auth_mu. */
static auth_fail *auth_fail_find(const char *key, time_t now)
{
	for (int i = 0; i < AUTH_TRACK_MAX; i++)
		if (auth_fail_live(&auth_fails[i], now) && strcmp(auth_fails[i].key, key) == 0)
			return &auth_fails[i];
	return NULL;
}

/* A free record for key (count 0), or NULL when every record still
 * counts: none is ever evicted.  Caller holds auth_mu. */
static auth_fail *auth_fail_new(const char *key, time_t now)
{
	for (int i = 0; i < AUTH_TRACK_MAX; i++)
		if (!auth_fail_live(&auth_fails[i], now)) {
			auth_fail *f = &auth_fails[i];
			snprintf(f->key, sizeof f->key, "%s", key);
			f->first = now;
			return f;
		}
	return NULL;
}

/* The keys of one attempt and their limits. */
typedef struct auth_attempt {
	char key[3][AUTH_KEY_MAX];
	int max[3];
} auth_attempt;

static void auth_attempt_keys(auth_attempt *a, const char *user, const char *ip)
{
	snprintf(a->key[0], AUTH_KEY_MAX, "p:%s %s", user, ip);
	snprintf(a->key[1], AUTH_KEY_MAX, "u:%s", user);
	snprintf(a->key[2], AUTH_KEY_MAX, "a:%s", ip);
	a->max[0] = AUTH_PAIR_FAILS;
	a->max[1] = AUTH_NAME_FAILS;
	a->max[2] = AUTH_ADDR_FAILS;
}

/* Count the attempt against its three keys before the password is checked,
 * and take an Argon2id slot.  0 reserved; >0 seconds until a key may try
 * again; -1 the table is full (nothing counted); -2 too many Argon2id
 * checks running. */
static long auth_reserve(const auth_attempt *a, time_t now)
{
	auth_fail *f[3];
	long wait = 0;

	pthread_mutex_lock(&auth_mu);
	for (int i = 0; i < 3; i++) {
		f[i] = auth_fail_find(a->key[i], now);
		if (f[i] != NULL && f[i]->count >= a->max[i] &&
		    f[i]->first + AUTH_WINDOW_S - now > wait)
			wait = (long)(f[i]->first + AUTH_WINDOW_S - now);
	}
	if (wait == 0 && auth_argon_running >= AUTH_ARGON_MAX)
		wait = -2;
	for (int i = 0; i < 3 && wait == 0; i++) {
		if (f[i] == NULL && (f[i] = auth_fail_new(a->key[i], now)) == NULL) {
			while (--i >= 0)
				f[i]->count--; /* a new record goes back to 0: free */
			wait = -1;
			break;
		}
		f[i]->count++;
	}
	if (wait == 0)
		auth_argon_running++;
	pthread_mutex_unlock(&auth_mu);
	return wait;
}

/* After the check: give back the Argon2id slot and, for a right password,
 * the attempt (the pair's failures are forgotten; the name's and the
 * address's keep what others did). */
static void auth_settle(const auth_attempt *a, time_t now, int ok)
{
	pthread_mutex_lock(&auth_mu);
	auth_argon_running--;
	for (int i = 0; i < 3 && ok; i++) {
		auth_fail *f = auth_fail_find(a->key[i], now);
		if (f != NULL)
			f->count = i == 0 ? 0 : f->count - 1;
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

/* What a session is bound to: a digest of the account's stored hash
 * string (it changes with the password; the account's removal leaves
 * nothing to match). */
static void auth_bind(const char *hash, unsigned char out[crypto_generichash_BYTES])
{
	crypto_generichash(out, crypto_generichash_BYTES, (const unsigned char *)hash, strlen(hash),
	                   NULL, 0);
}

/* The slot for a new session of user: that account's oldest when it has
 * AUTH_SESSIONS_PER_USER, else a free or expired one; NULL when the table
 * is full of other accounts' live sessions (no one is logged out for a
 * newcomer).  Caller holds auth_mu. */
static auth_session_t *auth_session_slot(const char *user, time_t now)
{
	auth_session_t *mine = NULL, *spare = NULL;
	int n = 0;

	for (int i = 0; i < AUTH_SESSIONS_MAX; i++) {
		auth_session_t *t = &auth_sessions[i];
		if (!t->used || t->expires <= now) {
			if (spare == NULL)
				spare = t;
			continue;
		}
		if (strcmp(t->user, user) == 0) {
			n++;
			if (mine == NULL || t->expires < mine->expires)
				mine = t;
		}
	}
	return n >= AUTH_SESSIONS_PER_USER ? mine : spare;
}

/* Start a session for user bound to bind; copies it to *out.  0, or -1
 * when there is no room. */
static int auth_session_new(const char *user, const unsigned char *bind, auth_session_t *out)
{
	time_t now = time(NULL);
	auth_session_t *s;

	pthread_mutex_lock(&auth_mu);
	if ((s = auth_session_slot(user, now)) != NULL) {
		memset(s, 0, sizeof *s);
		auth_token(s->token);
		auth_token(s->csrf);
		snprintf(s->user, sizeof s->user, "%s", user);
		memcpy(s->bind, bind, sizeof s->bind);
		s->expires = now + auth_conf.session_s;
		s->used = 1;
		*out = *s;
	}
	pthread_mutex_unlock(&auth_mu);
	return s != NULL ? 0 : -1;
}

/* End the session with this token (if it is still there). */
static void auth_session_drop(const char *token)
{
	pthread_mutex_lock(&auth_mu);
	for (int i = 0; i < AUTH_SESSIONS_MAX; i++)
		if (auth_sessions[i].used &&
		    sodium_memcmp(auth_sessions[i].token, token, AUTH_HEX - 1) == 0)
			sodium_memzero(&auth_sessions[i], sizeof auth_sessions[i]);
	pthread_mutex_unlock(&auth_mu);
}

/* 1 when s's account still has the hash it logged in with; 0 when it was
 * deleted or its password changed; -1 when users_file is unreadable. */
static int auth_account_same(const auth_session_t *s)
{
	char hash[crypto_pwhash_STRBYTES + 64], err[VMS_PATH_MAX + 256];
	unsigned char now[crypto_generichash_BYTES];
	int found =
	        reviewers_lookup(auth_conf.users_file, s->user, hash, sizeof hash, err, sizeof err);

	if (found < 0) {
		dlog(LOG_ERR, "http: %s", err);
		return -1;
	}
	if (found)
		auth_bind(hash, now);
	sodium_memzero(hash, sizeof hash);
	return found && sodium_memcmp(now, s->bind, sizeof now) == 0;
}

/* The live session whose token the request's cookie carries: 1 and a copy
 * in *out (drop: end it), 0 none, -1 users_file unreadable.  A session
 * whose account was deleted or got a new password is ended here. */
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
		}
	}
	pthread_mutex_unlock(&auth_mu);
	if (!found)
		return 0;
	int same = auth_account_same(out);
	if (same == 0)
		dlog(LOG_NOTICE, "http: %s: account deleted or password changed: session ended",
		     out->user);
	if (same == 0 || drop)
		auth_session_drop(out->token);
	return same;
}

/* The session's public part as JSON: user, csrf, expires. */
static json_t *auth_session_json(const auth_session_t *s)
{
	char when[40];
	struct timespec ts = {s->expires, 0};

	spool_iso_time(&ts, when, sizeof when);
	return json_pack("{s:s, s:s, s:s}", "user", s->user, "csrf", s->csrf, "expires", when);
}

/* Check name's password; 1 right (the account's binding in bind), 0
 * wrong, -1 the users file is unreadable.  Always one Argon2id
 * computation. */
static int auth_password_ok(const char *name, const char *password, unsigned char *bind)
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
	if (found && ok)
		auth_bind(hash, bind);
	sodium_memzero(hash, sizeof hash);
	return found && ok;
}

/* The answer to a login that may not be checked now (see auth_reserve). */
static enum MHD_Result auth_refuse(http_req *r, long wait)
{
	char retry[32];
	const char *h[] = {"Retry-After", retry, NULL};

	snprintf(retry, sizeof retry, "%ld", wait > 0 ? wait : wait == -2 ? 1L : 60L);
	if (wait == -2)
		return http_json(r, MHD_HTTP_SERVICE_UNAVAILABLE,
		                 json_pack("{s:s, s:i}", "error",
		                           "busy checking other logins: try again in a moment",
		                           "retry_after_s", 1),
		                 h);
	if (wait == -1)
		dlog(LOG_WARNING,
		     "http: login from %s refused: the failed-login table is full "
		     "(a login flood?)",
		     r->ip);
	return http_json(r, 429,
	                 json_pack("{s:s, s:i}", "error", "too many failed logins: try again later",
	                           "retry_after_s", wait > 0 ? (int)wait : 60),
	                 h);
}

/* The reply to a right password: a session and its cookie. */
static enum MHD_Result auth_welcome(http_req *r, const char *user, const unsigned char *bind)
{
	char cookie[256];
	auth_session_t s;

	if (auth_session_new(user, bind, &s) < 0) {
		dlog(LOG_WARNING, "http: %s: no room for another session", user);
		return http_error(r, MHD_HTTP_SERVICE_UNAVAILABLE,
		                  "too many reviewers are logged in: try again later");
	}
	snprintf(cookie, sizeof cookie,
	         AUTH_COOKIE "=%s; HttpOnly; SameSite=Strict; Path=/; Max-Age=%d%s", s.token,
	         auth_conf.session_s, auth_conf.tls ? "; Secure" : "");
	const char *h[] = {"Set-Cookie", cookie, NULL};
	dlog(LOG_NOTICE, "http: %s logged in from %s", user, r->ip);
	json_t *j = auth_session_json(&s);
	sodium_memzero(&s, sizeof s);
	return http_json(r, MHD_HTTP_OK, j, h);
}

/* POST /login: form fields user and password. */
enum MHD_Result auth_login(http_req *r)
{
	char user[REVIEWERS_NAME_MAX + 1], password[1024];
	unsigned char bind[crypto_generichash_BYTES];
	time_t now = time(NULL);
	auth_attempt at;
	long wait;

	if (!auth_same_origin(r))
		return http_error(r, MHD_HTTP_FORBIDDEN, "cross-origin login");
	if (!auth_form_field(r->body, "user", user, sizeof user) ||
	    !auth_form_field(r->body, "password", password, sizeof password))
		return http_error(r, MHD_HTTP_BAD_REQUEST,
		                  "form fields user and password are required");
	auth_attempt_keys(&at, user, r->ip);
	if ((wait = auth_reserve(&at, now)) != 0) {
		sodium_memzero(password, sizeof password);
		return auth_refuse(r, wait);
	}
	int ok = auth_password_ok(user, password, bind);
	sodium_memzero(password, sizeof password);
	auth_settle(&at, now, ok != 0);
	if (ok < 0)
		return http_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR,
		                  "the users file is unreadable");
	if (!ok) {
		dlog(LOG_WARNING, "http: failed login for %s from %s",
		     reviewers_name_ok(user) ? user : "(an invalid name)", r->ip);
		return http_error(r, MHD_HTTP_UNAUTHORIZED, "wrong user name or password");
	}
	return auth_welcome(r, user, bind);
}

/* GET /api/session: who is logged in, with the CSRF token. */
enum MHD_Result auth_session(http_req *r)
{
	auth_session_t s;
	int found = auth_session_find(r, &s, 0);

	if (found < 0)
		return http_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "the users file is unreadable");
	if (!found)
		return http_error(r, MHD_HTTP_UNAUTHORIZED, "login required");
	return http_json(r, MHD_HTTP_OK, auth_session_json(&s), NULL);
}

/* POST /logout (CSRF-checked by the caller). */
enum MHD_Result auth_logout(http_req *r)
{
	auth_session_t s;
	const char *h[] = {"Set-Cookie",
	                   AUTH_COOKIE "=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0", NULL};

	if (auth_session_find(r, &s, 1) != 0)
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
	int found = auth_session_find(r, &s, 0);

	if (found < 0) {
		*why = "the users file is unreadable";
		return MHD_HTTP_SERVICE_UNAVAILABLE;
	}
	if (!found) {
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

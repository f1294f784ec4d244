/*
 * alert_webhook.c - secrets, signatures and one HTTP attempt.
 *
 * Signing follows Standard Webhooks (https://www.standardwebhooks.com/):
 *   webhook-id:        msg_<32 hex>, fixed per alert, same on every retry
 *   webhook-timestamp: unix seconds of this attempt
 *   webhook-signature: v1,<base64(HMAC-SHA256(key, id "." ts "." body))>
 *
 * HMAC and base64 come from OpenSSL's libcrypto: a vetted, constant-time
 * implementation that the process links anyway for libcurl's TLS, rather
 * than a hand-rolled SHA-256 in a security check receivers rely on.
 *
 * Secret file rule: the file must be a regular file that neither group nor
 * others may read or write (mode & 0066 == 0, e.g. 0600 or 0400); anything
 * else is refused at start-up.  Contents: "whsec_<base64>" is decoded as in
 * Standard Webhooks; otherwise the raw bytes, minus one trailing newline
 * ("\n" or "\r\n"), are the key.  The key is never logged.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "alert/alert_int.h"
#include "conf/conf.h" /* vms_private_stat */
#include "vmscreen.h"

#define WEBHOOK_SECRET_MAX 4096

static size_t webhook_discard(char *ptr, size_t size, size_t nmemb, void *arg);

/* Turns secret-file text into key bytes (rules in the file comment). */
int webhook_secret_decode(const char *text, size_t len, unsigned char **key, size_t *keylen,
                          char *err, size_t errlen)
{
	unsigned char *out;
	size_t b64len, pad = 0;
	int n;

	*key = NULL;
	*keylen = 0;
	if (len > 0 && text[len - 1] == '\n')
		len--;
	if (len > 0 && text[len - 1] == '\r')
		len--;
	if (len == 0) {
		snprintf(err, errlen, "secret is empty");
		return -1;
	}
	if (len > 6 && memcmp(text, "whsec_", 6) == 0) {
		text += 6;
		b64len = len - 6;
		if (b64len % 4 != 0) {
			snprintf(err, errlen, "whsec_ secret is not valid base64 (length)");
			return -1;
		}
		for (size_t i = 0; i < b64len; i++) {
			char c = text[i];
			if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			      (c >= '0' && c <= '9') || c == '+' || c == '/' ||
			      (c == '=' && i >= b64len - 2))) {
				snprintf(err, errlen, "whsec_ secret is not valid base64");
				return -1;
			}
		}
		if ((out = malloc(b64len / 4 * 3 + 1)) == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		/* EVP_DecodeBlock counts padding as zero bytes: take them off */
		n = EVP_DecodeBlock(out, (const unsigned char *)text, (int)b64len);
		if (n < 0) {
			free(out);
			snprintf(err, errlen, "whsec_ secret is not valid base64");
			return -1;
		}
		if (text[b64len - 1] == '=')
			pad++;
		if (text[b64len - 2] == '=')
			pad++;
		*key = out;
		*keylen = (size_t)n - pad;
		if (*keylen == 0) {
			free(out);
			*key = NULL;
			snprintf(err, errlen, "whsec_ secret decodes to nothing");
			return -1;
		}
		return 0;
	}
	if ((out = malloc(len)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memcpy(out, text, len);
	*key = out;
	*keylen = len;
	return 0;
}

/* Reads a secret file after checking, on the opened descriptor (no race
 * with a chmod in between), that only its owner can read or write it. */
int webhook_secret_load(const char *path, unsigned char **key, size_t *keylen, char *err,
                        size_t errlen)
{
	char buf[WEBHOOK_SECRET_MAX + 1], why[128];
	struct stat st;
	ssize_t n;
	size_t len = 0;
	int fd;

	*key = NULL;
	*keylen = 0;
	/* O_NONBLOCK: a FIFO named as secret_file would block open() (and
	 * `vmscreend --check`) forever; fstat below refuses it instead. */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) == -1) {
		snprintf(err, errlen, "secret_file %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		snprintf(err, errlen, "secret_file %s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "secret_file %s: not a regular file", path);
		goto fail;
	}
	/* issue 18: the one test of who else can read it (src/conf/private.c):
	 * the manual's root:vmscreen 0640 passes while group vmscreen holds
	 * nobody but the service account */
	if (vms_private_stat("secret_file", path, &st, fd, err, errlen) < 0)
		goto fail;
	while (len < sizeof(buf) && (n = read(fd, buf + len, sizeof(buf) - len)) != 0) {
		if (n == -1) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "secret_file %s: %s", path, strerror(errno));
			goto fail;
		}
		len += (size_t)n;
	}
	if (len > WEBHOOK_SECRET_MAX) {
		snprintf(err, errlen, "secret_file %s: larger than %d bytes", path,
		         WEBHOOK_SECRET_MAX);
		goto fail;
	}
	close(fd);
	fd = -1;
	if (webhook_secret_decode(buf, len, key, keylen, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "secret_file %s: %s", path, why);
		OPENSSL_cleanse(buf, sizeof(buf));
		return -1;
	}
	OPENSSL_cleanse(buf, sizeof(buf));
	return 0;
fail:
	OPENSSL_cleanse(buf, sizeof(buf));
	if (fd != -1)
		close(fd);
	return -1;
}

/* Computes the Standard Webhooks v1 signature of one attempt. */
int webhook_sign(const unsigned char *key, size_t keylen, const char *msg_id, long long ts,
                 const char *body, size_t bodylen, char *out, size_t outlen)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	char head[128];
	size_t headlen, total;
	unsigned char *msg;
	int n;

	n = snprintf(head, sizeof(head), "%s.%lld.", msg_id, ts);
	if (n < 0 || (size_t)n >= sizeof(head))
		return -1;
	headlen = (size_t)n;
	total = headlen + bodylen;
	if ((msg = malloc(total ? total : 1)) == NULL)
		return -1;
	memcpy(msg, head, headlen);
	memcpy(msg + headlen, body, bodylen);
	if (HMAC(EVP_sha256(), key, (int)keylen, msg, total, mac, &maclen) == NULL) {
		free(msg);
		return -1;
	}
	free(msg);
	/* base64 of 32 bytes is 44 chars + NUL, after "v1," */
	if (outlen < 3 + 4 * ((maclen + 2) / 3) + 1)
		return -1;
	memcpy(out, "v1,", 3);
	EVP_EncodeBlock((unsigned char *)out + 3, mac, (int)maclen);
	OPENSSL_cleanse(mac, sizeof(mac));
	return 0;
}

/* Validates a URL with libcurl's own parser (the one that will be used to
 * connect) and makes the redacted display form. */
int webhook_url_check(const char *url, char *display, size_t displen, char *err, size_t errlen)
{
	CURLU *u;
	char *scheme = NULL, *host = NULL, *port = NULL;
	int rc = -1;

	if ((u = curl_url()) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host[0] == '\0') {
		snprintf(err, errlen, "url is not a valid absolute URL");
		goto out;
	}
	if (strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0) {
		snprintf(err, errlen, "url scheme must be https or http, not %s", scheme);
		goto out;
	}
	curl_url_get(u, CURLUPART_PORT, &port, 0);
	snprintf(display, displen, "%s://%s%s%s/...", scheme, host, port ? ":" : "",
	         port ? port : "");
	rc = 0;
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return rc;
}

/* Response bodies are not needed: drop them. */
static size_t webhook_discard(char *ptr, size_t size, size_t nmemb, void *arg)
{
	return size * nmemb;
}

/* One attempt.  Redirects are not followed (a 3xx would carry a signed
 * alert to a host nobody configured); TLS peer and host are verified;
 * connect and total timeouts bound the attempt. */
int webhook_post(CURLM *multi, const char *url, double connect_timeout_s, double timeout_s,
                 const unsigned char *key, size_t keylen, const char *msg_id, const char *body,
                 const atomic_int *stop, webhook_result *res)
{
	char h_id[128], h_ts[64], h_sig[160], sig[128];
	struct curl_slist *hdrs = NULL, *tmp;
	CURL *easy = NULL;
	CURLMsg *m;
	CURLcode cc = CURLE_OK;
	curl_off_t retry_after = 0;
	long long ts = (long long)time(NULL);
	int running = 1, left, added = 0, rc = -1;

	memset(res, 0, sizeof(*res));
	snprintf(h_id, sizeof(h_id), "webhook-id: %s", msg_id);
	snprintf(h_ts, sizeof(h_ts), "webhook-timestamp: %lld", ts);
	if (key != NULL) {
		if (webhook_sign(key, keylen, msg_id, ts, body, strlen(body), sig, sizeof(sig)) ==
		    -1) {
			snprintf(res->error, sizeof(res->error), "signing failed");
			return -1;
		}
		snprintf(h_sig, sizeof(h_sig), "webhook-signature: %s", sig);
	}
	const char *lines[] = {"Content-Type: application/json",
	                       "Expect:",
	                       "User-Agent: vmscreend/" VMS_VERSION,
	                       h_id,
	                       h_ts,
	                       key ? h_sig : NULL};
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		if (lines[i] == NULL)
			continue;
		if ((tmp = curl_slist_append(hdrs, lines[i])) == NULL)
			goto oom;
		hdrs = tmp;
	}
	if ((easy = curl_easy_init()) == NULL)
		goto oom;
	curl_easy_setopt(easy, CURLOPT_URL, url);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long)(connect_timeout_s * 1000));
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)(timeout_s * 1000));
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, webhook_discard);
	if (curl_multi_add_handle(multi, easy) != CURLM_OK)
		goto oom;
	added = 1;
	while (running) {
		if (atomic_load(stop)) {
			res->aborted = 1;
			snprintf(res->error, sizeof(res->error), "aborted: hub stopping");
			goto out;
		}
		if (curl_multi_perform(multi, &running) != CURLM_OK)
			break;
		if (running)
			curl_multi_poll(multi, NULL, 0, 1000, NULL);
	}
	while ((m = curl_multi_info_read(multi, &left)) != NULL)
		if (m->msg == CURLMSG_DONE && m->easy_handle == easy)
			cc = m->data.result;
	if (cc != CURLE_OK) {
		snprintf(res->error, sizeof(res->error), "%s", curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &res->status);
#if LIBCURL_VERSION_NUM >= 0x074200
	if (curl_easy_getinfo(easy, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK &&
	    retry_after > 0)
		res->retry_after_s = retry_after > 86400 ? 86400 : (long)retry_after;
#endif
	rc = 0;
	goto out;
oom:
	snprintf(res->error, sizeof(res->error), "out of memory");
out:
	if (added)
		curl_multi_remove_handle(multi, easy);
	if (easy)
		curl_easy_cleanup(easy);
	curl_slist_free_all(hdrs);
	OPENSSL_cleanse(h_sig, sizeof(h_sig));
	return rc;
}

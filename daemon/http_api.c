/*
 * http_api.c - the JSON API of the reviewer console (issue 11; contract in
 * docs/http.md): the hold queue and the other states, one item's verdict,
 * its audio (with Range), and the decisions, which go through
 * decision_make() exactly as `vmscreen release|reject` do.
 *
 * Every request takes the runtime's spool list as it is at that moment (a
 * reload may change it); nothing found in a spool is trusted more than the
 * review commands trust it: items are found by validated id, files opened
 * with O_NOFOLLOW and checked to be regular.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "http_int.h"

#define API_LIST_DEFAULT 500
#define API_LIST_MAX 5000
#define API_REASON_MAX 1000

typedef struct api_list {
	json_t *items;
} api_list;

/* Rank of a severity name (0 for none or unknown). */
static int api_severity_rank(const char *s)
{
	if (s == NULL)
		return 0;
	return strcmp(s, "high") == 0 ? 3 : strcmp(s, "medium") == 0 ? 2 : strcmp(s, "low") == 0;
}

/* One queue row from an item and its verdict (v may be NULL: unreadable). */
static json_t *api_row(const spool *sp, const spool_item *it, json_t *v)
{
	json_t *alerts = json_object_get(v, "alerts"), *cats = json_array(), *a;
	const char *top = NULL;
	size_t i;

	json_array_foreach(alerts, i, a)
	{
		const char *sev = json_string_value(json_object_get(a, "severity"));
		json_t *cat = json_object_get(a, "category");
		int seen = 0;
		for (size_t k = 0; k < json_array_size(cats); k++)
			seen |= json_equal(json_array_get(cats, k), cat);
		if (json_is_string(cat) && !seen)
			json_array_append(cats, cat);
		if (api_severity_rank(sev) > api_severity_rank(top))
			top = sev;
	}
	json_t *row = json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", it->id, "spool", sp->name,
	                        "mode", spool_mode_name(sp->mode), "name", it->name, "state",
	                        spool_state_name(it->state));
	json_object_set(row, "verdict", json_object_get(v, "verdict"));
	json_object_set(row, "screened_at", json_object_get(v, "screened_at"));
	json_object_set(row, "duration_s", json_object_get(v, "duration_s"));
	json_object_set_new(row, "severity", top ? json_string(top) : json_null());
	json_object_set_new(row, "categories", cats);
	json_object_set_new(row, "findings",
	                    json_is_array(alerts) ? json_deep_copy(alerts) : json_array());
	if (v == NULL)
		json_object_set_new(row, "error", json_string("the verdict file is unreadable"));
	return row;
}

/* spool_walk callback: one row per item. */
static int api_list_cb(const spool *sp, const spool_item *it, void *arg)
{
	api_list *l = arg;
	char err[SPOOL_PATH_MAX + 256];
	json_t *v = it->has_verdict ? decision_verdict(sp, it, err, sizeof err) : NULL;

	json_array_append_new(l->items, api_row(sp, it, v));
	json_decref(v);
	return 0;
}

/* Newest first: by screened_at, then id (both sort as text). */
static int api_row_cmp(const void *a, const void *b)
{
	json_t *ra = *(json_t *const *)a, *rb = *(json_t *const *)b;
	const char *ta = json_string_value(json_object_get(ra, "screened_at"));
	const char *tb = json_string_value(json_object_get(rb, "screened_at"));
	int c = strcmp(tb ? tb : "", ta ? ta : "");

	return c ? c
	         : strcmp(json_string_value(json_object_get(rb, "id")),
	                  json_string_value(json_object_get(ra, "id")));
}

/* The rows of l sorted newest first, at most limit of them. */
static json_t *api_sorted(json_t *items, size_t limit)
{
	size_t n = json_array_size(items);
	json_t **v = calloc(n ? n : 1, sizeof *v), *out = json_array();

	if (v == NULL || out == NULL) {
		free(v);
		json_decref(out);
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		v[i] = json_array_get(items, i);
	qsort(v, n, sizeof *v, api_row_cmp);
	for (size_t i = 0; i < n && i < limit; i++)
		json_array_append(out, v[i]);
	free(v);
	return out;
}

/* GET /api/items?state=S&spool=NAME&limit=N */
static enum MHD_Result api_list_items(http_req *r, runtime *rt)
{
	const char *state = MHD_lookup_connection_value(r->c, MHD_GET_ARGUMENT_KIND, "state");
	const char *only = MHD_lookup_connection_value(r->c, MHD_GET_ARGUMENT_KIND, "spool");
	const char *lim = MHD_lookup_connection_value(r->c, MHD_GET_ARGUMENT_KIND, "limit");
	long limit = lim ? strtol(lim, NULL, 10) : API_LIST_DEFAULT;
	spool_state st = SPOOL_HOLD;
	api_list l = {json_array()};
	json_t *spools = json_array();

	if (state != NULL &&
	    (spool_state_parse(state, &st) < 0 ||
	     !(st == SPOOL_HOLD || st == SPOOL_RELEASED || st == SPOOL_REJECTED))) {
		json_decref(l.items);
		json_decref(spools);
		return http_error(r, MHD_HTTP_BAD_REQUEST, "state: hold, released or rejected");
	}
	if (limit < 1 || limit > API_LIST_MAX)
		limit = API_LIST_DEFAULT;
	for (size_t i = 0; i < rt->sc.n_spools; i++) {
		const spool *sp = &rt->sc.spools[i];
		json_array_append_new(spools, json_pack("{s:s, s:s}", "name", sp->name, "mode",
		                                        spool_mode_name(sp->mode)));
		if (only == NULL || strcmp(only, sp->name) == 0)
			spool_walk(sp, st, api_list_cb, &l);
	}
	json_t *sorted = api_sorted(l.items, (size_t)limit);
	json_t *j = json_pack("{s:o?, s:o, s:i}", "items", sorted, "spools", spools, "total",
	                      (int)json_array_size(l.items));
	json_decref(l.items);
	if (sorted == NULL || j == NULL) {
		json_decref(j);
		return http_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	}
	return http_json(r, MHD_HTTP_OK, j, NULL);
}

/* Content-Type for an item's audio, by its extension. */
static const char *api_audio_type(const char *name)
{
	const char *dot = strrchr(name, '.');

	if (dot == NULL)
		return "application/octet-stream";
	if (strcasecmp(dot, ".wav") == 0)
		return "audio/wav";
	if (strcasecmp(dot, ".flac") == 0)
		return "audio/flac";
	if (strcasecmp(dot, ".ogg") == 0 || strcasecmp(dot, ".oga") == 0 ||
	    strcasecmp(dot, ".opus") == 0)
		return "audio/ogg";
	return "application/octet-stream";
}

/* The sidecar's agent_channel (which channel is the agent's), or null:
 * the sidecar reader takes it out of the metadata, and a reviewer needs
 * it to tell the lanes of a stereo call apart. */
static json_t *api_agent_channel(const spool *sp, const spool_item *it)
{
	char path[SPOOL_PATH_MAX], err[SPOOL_PATH_MAX + 128];
	char *text = NULL;
	json_t *side, *ch = NULL;

	if (it->has_sidecar) {
		spool_item_sidecar(sp, it, path, sizeof path);
		text = spool_read_file(path, 1 << 20, err, sizeof err);
	}
	side = text ? json_loads(text, 0, NULL) : NULL;
	free(text);
	if (json_is_integer(json_object_get(side, "agent_channel")))
		ch = json_incref(json_object_get(side, "agent_channel"));
	json_decref(side);
	return ch ? ch : json_null();
}

/* GET /api/items/ID: the verdict, with where the item is now. */
static enum MHD_Result api_get_item(http_req *r, const spool *sp, const spool_item *it)
{
	char err[SPOOL_PATH_MAX + 256], ver[DECISION_VERSION_LEN + 1],
	        etag[DECISION_VERSION_LEN + 3];
	json_t *v = it->has_verdict ? decision_verdict(sp, it, err, sizeof err) : json_object();

	if (v == NULL)
		return http_error(r, MHD_HTTP_CONFLICT, "%s", err);
	json_object_set_new(v, "id", json_string(it->id));
	json_object_set_new(v, "name", json_string(it->name));
	json_object_set_new(v, "spool", json_string(sp->name));
	json_object_set_new(v, "mode", json_string(spool_mode_name(sp->mode)));
	json_object_set_new(v, "state", json_string(spool_state_name(it->state)));
	json_object_set_new(v, "audio_type", json_string(api_audio_type(it->name)));
	json_object_set_new(v, "agent_channel", api_agent_channel(sp, it));
	if (!json_is_array(json_object_get(v, "review")))
		json_object_set_new(v, "review", json_array());
	json_object_del(v, "file"); /* a daemon path: of no use to a reviewer */
	if (decision_version(sp, it, ver) < 0) {
		json_decref(v);
		return http_error(r, MHD_HTTP_CONFLICT, "%s: the verdict file is unreadable",
		                  it->id);
	}
	json_object_set_new(v, "version", json_string(ver));
	snprintf(etag, sizeof etag, "\"%s\"", ver);
	const char *h[] = {"ETag", etag, NULL};
	return http_json(r, MHD_HTTP_OK, v, h);
}

/* Parse a single "bytes=A-B" range of a size-byte file into [*from, *to];
 * 1 a range, 0 none (or one we serve whole: several ranges), -1
 * unsatisfiable. */
static int api_range(const char *h, long long size, long long *from, long long *to)
{
	char *end;

	if (h == NULL || strncmp(h, "bytes=", 6) != 0 || strchr(h, ',') != NULL)
		return 0;
	h += 6;
	if (*h == '-') { /* the last N bytes */
		long long n = strtoll(h + 1, &end, 10);
		if (*end != '\0' || n <= 0 || end == h + 1)
			return -1;
		*from = n >= size ? 0 : size - n;
		*to = size - 1;
		return size > 0 ? 1 : -1;
	}
	*from = strtoll(h, &end, 10);
	if (end == h || *end != '-' || *from < 0)
		return -1;
	h = end + 1;
	*to = *h ? strtoll(h, &end, 10) : size - 1;
	if ((*h && *end != '\0') || *from >= size || *to < *from)
		return -1;
	if (*to >= size)
		*to = size - 1;
	return 1;
}

/* GET /api/items/ID/audio: the screened bytes, whole or one range. */
static enum MHD_Result api_audio(http_req *r, const spool *sp, const spool_item *it)
{
	char path[SPOOL_PATH_MAX], cr[96], size_s[32];
	struct stat st;
	long long from = 0, to;
	int fd = -1, ranged;

	spool_item_path(sp, it, path, sizeof path);
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0 || fstat(fd, &st) < 0 ||
	    !S_ISREG(st.st_mode)) {
		if (fd >= 0)
			close(fd);
		return http_error(r, MHD_HTTP_NOT_FOUND, "%s: the audio file cannot be opened",
		                  it->id);
	}
	to = (long long)st.st_size - 1;
	ranged = api_range(MHD_lookup_connection_value(r->c, MHD_HEADER_KIND, "Range"),
	                   (long long)st.st_size, &from, &to);
	if (ranged < 0) {
		close(fd);
		snprintf(cr, sizeof cr, "bytes */%lld", (long long)st.st_size);
		const char *h[] = {"Content-Range", cr, NULL};
		return http_send(r, MHD_HTTP_RANGE_NOT_SATISFIABLE, strdup(""), 0,
		                 "text/plain; charset=utf-8", h);
	}
	struct MHD_Response *resp = MHD_create_response_from_fd_at_offset64(
	        (uint64_t)(to - from + 1), fd, (uint64_t)from);
	if (resp == NULL) {
		close(fd);
		return MHD_NO;
	}
	http_headers(resp, 0);
	MHD_add_response_header(resp, "Content-Type", api_audio_type(it->name));
	MHD_add_response_header(resp, "Accept-Ranges", "bytes");
	snprintf(size_s, sizeof size_s, "%lld", (long long)st.st_size);
	if (ranged) {
		snprintf(cr, sizeof cr, "bytes %lld-%lld/%s", from, to, size_s);
		MHD_add_response_header(resp, "Content-Range", cr);
	}
	enum MHD_Result ok =
	        MHD_queue_response(r->c, ranged ? MHD_HTTP_PARTIAL_CONTENT : MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ok;
}

/* The request body as a JSON object, or NULL. */
static json_t *api_body(http_req *r)
{
	json_t *j = r->body ? json_loadb(r->body, r->len, JSON_REJECT_DUPLICATES, NULL) : NULL;

	if (j != NULL && !json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

/* Who a console request is, for decision_make. */
static void api_who(http_req *r, char *by, size_t len, decision_who *w)
{
	snprintf(by, len, "%s (console)", r->user);
	w->by = by;
	w->via = "console";
	w->uid = (long)getuid();
	w->login_uid = -1;
}

/* Tell the supervisors: the decision's alert (vmscreen.released or
 * .rejected) goes through the daemon's own hub.  A failure is logged; the
 * decision stands. */
static void api_alert_decision(const spool *sp, const char *id)
{
	char err[SPOOL_PATH_MAX + 256];
	spool_item it;
	json_t *v;

	if (spool_item_find(sp, id, &it) < 0 ||
	    (v = decision_verdict(sp, &it, err, sizeof err)) == NULL) {
		dlog(LOG_ERR, "spool %s: %s: decided, but no alert: the verdict is unreadable",
		     sp->name, id);
		return;
	}
	if (alert_hub_submit_decision(D.hub, sp->name, id, v) < 0)
		dlog(LOG_ERR, "spool %s: %s: decided, but its alert cannot be queued: %s", sp->name,
		     id, strerror(errno));
	json_decref(v);
}

/* The version a decision names: the body's "version", else an If-Match
 * header's ETag (quotes and W/ taken off); into out, 1 when there is one. */
static int api_seen(http_req *r, json_t *b, char out[DECISION_VERSION_LEN + 1])
{
	const char *v = json_string_value(json_object_get(b, "version"));
	const char *m = MHD_lookup_connection_value(r->c, MHD_HEADER_KIND, "If-Match");

	if (v == NULL && m != NULL) {
		if (strncmp(m, "W/", 2) == 0)
			m += 2;
		m += *m == '"';
		v = m;
	}
	if (v == NULL || strspn(v, "0123456789abcdef") != DECISION_VERSION_LEN)
		return 0;
	snprintf(out, DECISION_VERSION_LEN + 1, "%s", v);
	return 1;
}

/* The answer to a decision that was not carried out. */
static enum MHD_Result api_not_decided(http_req *r, const spool *sp, const char *id, decision_rc rc,
                                       const char *msg)
{
	static const unsigned status[] = {
	        [DECISION_NOT_FOUND] = MHD_HTTP_NOT_FOUND,
	        [DECISION_WRONG_STATE] = MHD_HTTP_CONFLICT,
	        [DECISION_BAD_VERDICT] = MHD_HTTP_CONFLICT,
	        [DECISION_FAILED] = MHD_HTTP_SERVICE_UNAVAILABLE,
	        [DECISION_CONFLICT] = MHD_HTTP_CONFLICT,
	        [DECISION_BAD_REASON] = MHD_HTTP_BAD_REQUEST,
	};
	char ver[DECISION_VERSION_LEN + 1];
	spool_item it;

	if (rc != DECISION_CONFLICT || spool_item_find(sp, id, &it) < 0 ||
	    decision_version(sp, &it, ver) < 0)
		return http_error(r, status[rc], "%s", msg);
	/* what the console needs to show the change: where it is, its version */
	return http_json(r, MHD_HTTP_CONFLICT,
	                 json_pack("{s:s, s:b, s:s, s:s}", "error", msg, "changed", 1, "state",
	                           spool_state_name(it.state), "version", ver),
	                 NULL);
}

/* POST /api/items/ID/release|reject {"reason": "...", "version": "..."}
 * (or If-Match): the version is the one GET /api/items/ID gave. */
static enum MHD_Result api_decide(http_req *r, runtime *rt, const spool *sp, const char *id,
                                  spool_state to)
{
	char by[REVIEWERS_NAME_MAX + 32], msg[SPOOL_PATH_MAX + 512], seen[DECISION_VERSION_LEN + 1];
	json_t *b = api_body(r);
	const char *reason = json_string_value(json_object_get(b, "reason"));
	decision_who w;

	if (b == NULL)
		return http_error(r, MHD_HTTP_BAD_REQUEST,
		                  "the body must be a JSON object in UTF-8: {\"reason\": TEXT, "
		                  "\"version\": VERSION}");
	if (reason == NULL || reason[strspn(reason, " \t\r\n")] == '\0' ||
	    strlen(reason) > API_REASON_MAX) {
		json_decref(b);
		return http_error(r, MHD_HTTP_BAD_REQUEST,
		                  "a reason (1-%d bytes) is required: it goes to the audit log",
		                  API_REASON_MAX);
	}
	if (!api_seen(r, b, seen)) {
		json_decref(b);
		return http_error(r, 428,
		                  "a decision must name the version of the item it was made on: "
		                  "send the \"version\" that GET /api/items/%s gave",
		                  id);
	}
	api_who(r, by, sizeof by, &w);
	decision_rc rc = decision_make_seen(&rt->sc, sp->name, id, to, &w, reason, seen, NULL, msg,
	                                    sizeof msg);
	json_decref(b);
	dlog(rc == DECISION_OK ? LOG_NOTICE : LOG_WARNING, "http: %s: %s", by, msg);
	if (rc == DECISION_OK)
		api_alert_decision(sp, id);
	if (rc != DECISION_OK && rc != DECISION_ALREADY)
		return api_not_decided(r, sp, id, rc, msg);
	return http_json(r, MHD_HTTP_OK,
	                 json_pack("{s:s, s:s, s:b}", "id", id, "state", spool_state_name(to),
	                           "already", rc == DECISION_ALREADY),
	                 NULL);
}

/* POST /api/items/ID/false-alarm {"finding": N, "note": "..."} */
static enum MHD_Result api_false_alarm(http_req *r, runtime *rt, const spool *sp, const char *id)
{
	char by[REVIEWERS_NAME_MAX + 32], msg[SPOOL_PATH_MAX + 512];
	json_t *b = api_body(r), *f = json_object_get(b, "finding");
	const char *note = json_string_value(json_object_get(b, "note"));
	decision_who w;

	if (!json_is_integer(f) || json_integer_value(f) < 0 ||
	    (note != NULL && strlen(note) > API_REASON_MAX)) {
		json_decref(b);
		return http_error(r, MHD_HTTP_BAD_REQUEST,
		                  "{\"finding\": INDEX, \"note\": TEXT} is required");
	}
	size_t index = (size_t)json_integer_value(f);
	api_who(r, by, sizeof by, &w);
	int rc = decision_false_alarm(&rt->sc, sp->name, id, index, &w, note ? note : "", msg,
	                              sizeof msg);
	json_decref(b);
	if (rc < 0)
		return http_error(r, MHD_HTTP_NOT_FOUND, "%s", msg);
	dlog(LOG_NOTICE, "http: %s: %s", by, msg);
	return http_json(r, MHD_HTTP_OK, json_pack("{s:s, s:i}", "id", id, "finding", (int)index),
	                 NULL);
}

/* Route /api/items/ID[/WHAT] to its handler once the item is found. */
static enum MHD_Result api_one_item(http_req *r, runtime *rt, const char *rest)
{
	char id[SPOOL_ID_LEN + 1];
	const char *slash = strchr(rest, '/'), *what = slash ? slash + 1 : "";
	const char *only = MHD_lookup_connection_value(r->c, MHD_GET_ARGUMENT_KIND, "spool");
	int post = strcmp(r->method, "POST") == 0;
	const spool *sp;
	spool_item it;

	if ((slash ? (size_t)(slash - rest) : strlen(rest)) != SPOOL_ID_LEN)
		return http_error(r, MHD_HTTP_NOT_FOUND, "not an item id");
	memcpy(id, rest, SPOOL_ID_LEN);
	id[SPOOL_ID_LEN] = '\0';
	if (!spool_id_ok(id))
		return http_error(r, MHD_HTTP_NOT_FOUND, "not an item id");
	if (decision_find(&rt->sc, only, id, &sp, &it) < 0)
		return http_error(r, MHD_HTTP_NOT_FOUND, "%s: no such item", id);
	if (!post && strcmp(what, "") == 0)
		return api_get_item(r, sp, &it);
	if (!post && strcmp(what, "audio") == 0)
		return api_audio(r, sp, &it);
	if (post && strcmp(what, "release") == 0)
		return api_decide(r, rt, sp, id, SPOOL_RELEASED);
	if (post && strcmp(what, "reject") == 0)
		return api_decide(r, rt, sp, id, SPOOL_REJECTED);
	if (post && strcmp(what, "false-alarm") == 0)
		return api_false_alarm(r, rt, sp, id);
	return http_error(r, post ? MHD_HTTP_NOT_FOUND : MHD_HTTP_METHOD_NOT_ALLOWED,
	                  "no such operation on an item");
}

/* See http_int.h. */
enum MHD_Result api_items(http_req *r, runtime *rt)
{
	const char *u = r->url + strlen("/api/items");

	if (*u == '\0')
		return strcmp(r->method, "GET") == 0
		               ? api_list_items(r, rt)
		               : http_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET");
	if (*u != '/')
		return http_error(r, MHD_HTTP_NOT_FOUND, "not found");
	return api_one_item(r, rt, u + 1);
}

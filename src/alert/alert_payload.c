/*
 * alert_payload.c - what a supervisor receives: standard, Slack and Teams
 * bodies built from one verdict object.  All JSON goes through jansson;
 * nothing here concatenates JSON text by hand.
 *
 * Every format answers the same three questions in the message itself:
 * what was found (type, category, severity), where (spool, item, file,
 * times) and the evidence (the matched words plus a transcript excerpt of
 * the words within ALERT_EXCERPT_PAD_S seconds of the finding).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alert/alert_int.h"

#define PAYLOAD_SLACK_MAX_FINDINGS 10
#define PAYLOAD_SLACK_TEXT_MAX 2900 /* section text limit is 3000 */
#define PAYLOAD_TEAMS_MAX_FINDINGS 20

static const char *payload_str(const json_t *o, const char *key, const char *dflt);
static double payload_num(const json_t *o, const char *key);
static const char *payload_basename(const char *path);
static json_t *payload_excerpt(const json_t *verdict, double start_s, double end_s);
static json_t *payload_standard(const json_t *verdict, const char *spool, const char *item_id);
static json_t *payload_slack(const json_t *std);
static json_t *payload_teams(const json_t *std);
static void payload_review_command(char *buf, size_t buflen, const char *item_id);
static void payload_fmt_time(char *buf, size_t buflen, double s);
static void payload_truncate(char *s, size_t max);
static char *payload_slack_escape(const char *s);
static const char *payload_headline(const json_t *data, char *buf, size_t buflen);

static const char *payload_sev_names[] = {"none", "low", "medium", "high"};

/* "low"/"medium"/"high" -> 1..3, anything else 0. */
int alert_severity_parse(const char *name)
{
	for (int i = 1; i <= 3; i++)
		if (name && strcmp(name, payload_sev_names[i]) == 0)
			return i;
	return 0;
}

/* The config word for each format. */
int alert_format_parse(const char *name, alert_format *out)
{
	if (strcmp(name, "standard") == 0)
		*out = ALERT_FMT_STANDARD;
	else if (strcmp(name, "slack") == 0)
		*out = ALERT_FMT_SLACK;
	else if (strcmp(name, "teams") == 0)
		*out = ALERT_FMT_TEAMS;
	else
		return -1;
	return 0;
}

/* The inverse of alert_format_parse, for logs. */
const char *alert_format_name(alert_format f)
{
	switch (f) {
	case ALERT_FMT_SLACK:
		return "slack";
	case ALERT_FMT_TEAMS:
		return "teams";
	default:
		return "standard";
	}
}

/* Highest severity among the verdict's findings ("alerts"), 0 if none. */
int alert_verdict_max_severity(const json_t *verdict)
{
	const json_t *alerts = json_object_get(verdict, "alerts"), *a;
	size_t i;
	int max = 0, s;

	json_array_foreach(alerts, i, a)
	{
		s = alert_severity_parse(payload_str(a, "severity", ""));
		if (s > max)
			max = s;
	}
	return max;
}

/* See alert_int.h.  What happened, from the verdict alone: a review
 * decision (the "event" member that decision alerts carry), a pass, a file
 * that could not be screened, a monitor call delivered with findings, or
 * a hold. */
const char *alert_event_type(const json_t *verdict)
{
	const char *event = payload_str(verdict, "event", "");
	const json_t *a;
	size_t i;

	if (strcmp(event, "released") == 0)
		return "vmscreen.released";
	if (strcmp(event, "rejected") == 0)
		return "vmscreen.rejected";
	if (strcmp(payload_str(verdict, "verdict", "hold"), "pass") == 0)
		return "vmscreen.pass";
	json_array_foreach(json_object_get(verdict, "alerts"), i,
	                   a) if (strcmp(payload_str(a, "type", ""), "unscreenable") ==
	                          0) return "vmscreen.unscreenable";
	if (strcmp(payload_str(verdict, "state", "hold"), "released") == 0)
		return "vmscreen.flagged";
	return "vmscreen.hold";
}

/* A string member or a default: the verdict is ours but read defensively. */
static const char *payload_str(const json_t *o, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : dflt;
}

/* A numeric member (integer or real) or 0. */
static double payload_num(const json_t *o, const char *key)
{
	return json_number_value(json_object_get(o, key));
}

/* The last path component: receivers get the file name, not our layout. */
static const char *payload_basename(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/* The words around one finding, so a supervisor sees the context without
 * opening the recording.  NULL when the verdict has no timed words. */
static json_t *payload_excerpt(const json_t *verdict, double start_s, double end_s)
{
	const json_t *words = json_object_get(json_object_get(verdict, "transcript"), "words");
	const json_t *w;
	double lo = start_s - ALERT_EXCERPT_PAD_S, hi = end_s + ALERT_EXCERPT_PAD_S;
	double first = -1, last = -1;
	char *text = NULL, *grown;
	size_t len = 0, i;
	int n = 0;
	json_t *out;

	json_array_foreach(words, i, w)
	{
		const char *word = payload_str(w, "w", NULL);
		double ws = payload_num(w, "start_s"), we = payload_num(w, "end_s");
		size_t wl;

		if (word == NULL || we < lo || ws > hi)
			continue;
		if (n == ALERT_EXCERPT_MAX_WORDS)
			break;
		wl = strlen(word);
		if ((grown = realloc(text, len + wl + 2)) == NULL) {
			free(text);
			return NULL;
		}
		text = grown;
		if (len > 0)
			text[len++] = ' ';
		memcpy(text + len, word, wl + 1);
		len += wl;
		if (first < 0)
			first = ws;
		last = we;
		n++;
	}
	if (n == 0)
		return NULL;
	out = json_pack("{s:f, s:f, s:s}", "start_s", first, "end_s", last, "text", text);
	free(text);
	return out;
}

/* "vmscreen show ID", with the id single-quoted if it holds anything a
 * shell would interpret, so the line can be pasted as is. */
static void payload_review_command(char *buf, size_t buflen, const char *item_id)
{
	const char *p;
	size_t n;

	for (p = item_id; *p; p++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-+@",
		            *p))
			break;
	if (*p == '\0' && *item_id) {
		snprintf(buf, buflen, "vmscreen show %s", item_id);
		return;
	}
	n = (size_t)snprintf(buf, buflen, "vmscreen show '");
	for (p = item_id; *p && n + 6 < buflen; p++) {
		if (*p == '\'') {
			memcpy(buf + n, "'\\''", 4);
			n += 4;
		} else {
			buf[n++] = *p;
		}
	}
	buf[n++] = '\'';
	buf[n] = '\0';
}

/* The producer's file name: the verdict's "name", else the base of its
 * path. */
static const char *payload_file_name(const json_t *verdict)
{
	const char *name = payload_str(verdict, "name", NULL);

	return name != NULL ? name : payload_basename(payload_str(verdict, "file", ""));
}

/* The standard body (Standard Webhooks shape: type, timestamp, data). */
static json_t *payload_standard(const json_t *verdict, const char *spool, const char *item_id)
{
	const json_t *alerts = json_object_get(verdict, "alerts"), *a;
	const char *verdict_s = payload_str(verdict, "verdict", "hold");
	const char *screened_at = payload_str(verdict, "screened_at", NULL);
	json_t *findings, *f, *data, *meta, *excerpt, *root;
	char review[600], stamp[32];
	size_t i;
	int max;

	if (screened_at == NULL) {
		time_t now = time(NULL);
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
		screened_at = stamp;
	}
	if ((findings = json_array()) == NULL)
		return NULL;
	json_array_foreach(alerts, i, a)
	{
		double s = payload_num(a, "start_s"), e = payload_num(a, "end_s");

		f = json_pack("{s:s, s:s, s:s, s:f, s:f, s:s, s:s}", "type",
		              payload_str(a, "type", ""), "category",
		              payload_str(a, "category", ""), "severity",
		              payload_str(a, "severity", ""), "start_s", s, "end_s", e, "evidence",
		              payload_str(a, "evidence", ""), "rule", payload_str(a, "rule", ""));
		if (f == NULL)
			goto fail;
		/* How sure the evidence is (0..1): a supervisor weighs a hold on a
		 * word heard at 0.35 differently from one heard at 0.99. */
		if (json_is_number(json_object_get(a, "confidence")))
			json_object_set_new(f, "confidence",
			                    json_real(payload_num(a, "confidence")));
		/* and what decided its severity (issue 17): the classifier's
		 * probability, the recogniser's word confidence, the rule */
		static const char *const inputs[] = {"score", "word_confidence"};
		for (size_t k = 0; k < sizeof inputs / sizeof *inputs; k++)
			if (json_is_number(json_object_get(a, inputs[k])))
				json_object_set_new(f, inputs[k],
				                    json_real(payload_num(a, inputs[k])));
		if (json_is_string(json_object_get(a, "basis")))
			json_object_set_new(f, "basis", json_string(payload_str(a, "basis", "")));
		if ((excerpt = payload_excerpt(verdict, s, e)) != NULL)
			json_object_set_new(f, "excerpt", excerpt);
		json_array_append_new(findings, f);
	}
	max = alert_verdict_max_severity(verdict);
	meta = json_object_get(verdict, "metadata");
	meta = json_is_object(meta) ? json_deep_copy(meta) : json_object();
	payload_review_command(review, sizeof(review), item_id);
	/* "o" steals findings and meta even when packing fails */
	data = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:f, s:s, s:s, s:o, s:o, s:s}", "spool",
	                 spool, "id", item_id, "file", payload_file_name(verdict), "verdict",
	                 verdict_s, "state", payload_str(verdict, "state", "hold"), "mode",
	                 payload_str(verdict, "mode", "gate"), "duration_s",
	                 payload_num(verdict, "duration_s"), "screened_at", screened_at,
	                 "max_severity", payload_sev_names[max], "findings", findings, "metadata",
	                 meta, "review_command", review);
	if (data == NULL)
		return NULL;
	/* a decision alert: who decided, when and why (the verdict's last
	 * review entry), dated when it was taken */
	const json_t *hist = json_object_get(verdict, "review");
	const json_t *last = json_array_get(hist, json_array_size(hist) - 1);
	if (json_object_get(verdict, "event") != NULL && json_is_object(last)) {
		json_object_set_new(data, "decision", json_deep_copy(last));
		screened_at = payload_str(last, "at", screened_at);
	}
	root = json_pack("{s:s, s:s, s:o}", "type", alert_event_type(verdict), "timestamp",
	                 screened_at, "data", data);
	return root;
fail:
	json_decref(findings);
	return NULL;
}

/* Seconds as "12.3s" or "1:02.5". */
static void payload_fmt_time(char *buf, size_t buflen, double s)
{
	if (s < 60)
		snprintf(buf, buflen, "%.1fs", s);
	else
		snprintf(buf, buflen, "%d:%04.1f", (int)(s / 60), s - 60 * (int)(s / 60));
}

/* Cuts a string to at most max bytes without splitting a UTF-8 sequence. */
static void payload_truncate(char *s, size_t max)
{
	size_t n = strlen(s);

	if (n <= max)
		return;
	n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	s[n] = '\0';
}

/* Slack mrkdwn needs &, < and > escaped (they start links and mentions):
 * evidence is untrusted speech-to-text and must not ping @channel. */
static char *payload_slack_escape(const char *s)
{
	size_t n = 0;
	char *out, *o;

	for (const char *p = s; *p; p++)
		n += (*p == '&') ? 5 : (*p == '<' || *p == '>') ? 4 : 1;
	if ((out = malloc(n + 1)) == NULL)
		return NULL;
	for (o = out; *s; s++) {
		const char *rep = *s == '&'   ? "&amp;"
		                  : *s == '<' ? "&lt;"
		                  : *s == '>' ? "&gt;"
		                              : NULL;

		if (rep == NULL) {
			*o++ = *s;
			continue;
		}
		memcpy(o, rep, strlen(rep));
		o += strlen(rep);
	}
	*o = '\0';
	return out;
}

/* What happened, in words, by event type: the verb of the headline and
 * the title's first word.  The same wording in every format. */
static void payload_wording(const char *type, const char **verb, const char **title)
{
	static const char *const w[][3] = {
	        {"vmscreen.hold", "held", "Held"},
	        {"vmscreen.flagged", "flagged (delivered)", "Flagged, delivered"},
	        {"vmscreen.unscreenable", "could not screen (held)", "Unscreenable, held"},
	        {"vmscreen.released", "released after review", "Released"},
	        {"vmscreen.rejected", "rejected after review", "Rejected"},
	        {"vmscreen.pass", "passed", "Passed"},
	};

	*verb = "held";
	*title = "Held";
	for (size_t i = 0; i < sizeof w / sizeof *w; i++)
		if (strcmp(type, w[i][0]) == 0) {
			*verb = w[i][1];
			*title = w[i][2];
		}
}

/* One line saying what happened, used as Slack's notification text and as
 * the Teams title: "vmscreen held voicemail/ID (file.wav): high insult",
 * "vmscreen released after review voicemail/ID (file.wav) by alice
 * (console): reason".  Raw text: each format escapes it. */
static const char *payload_headline(const json_t *std, char *buf, size_t buflen)
{
	const json_t *data = json_object_get(std, "data");
	const json_t *findings = json_object_get(data, "findings"), *f, *top = NULL;
	const json_t *dec = json_object_get(data, "decision");
	const char *verb, *title;
	size_t i;
	int best = -1;

	payload_wording(payload_str(std, "type", ""), &verb, &title);
	if (dec != NULL) {
		snprintf(buf, buflen, "vmscreen %s %s/%s (%s) by %s: %s", verb,
		         payload_str(data, "spool", ""), payload_str(data, "id", ""),
		         payload_str(data, "file", ""), payload_str(dec, "by", "?"),
		         payload_str(dec, "reason", ""));
		return buf;
	}
	json_array_foreach(findings, i, f)
	{
		int s = alert_severity_parse(payload_str(f, "severity", ""));
		if (s > best) {
			best = s;
			top = f;
		}
	}
	if (top == NULL) {
		snprintf(buf, buflen, "vmscreen %s %s/%s (%s): no findings", verb,
		         payload_str(data, "spool", ""), payload_str(data, "id", ""),
		         payload_str(data, "file", ""));
		return buf;
	}
	snprintf(buf, buflen, "vmscreen %s %s/%s (%s): %s %s %s%s", verb,
	         payload_str(data, "spool", ""), payload_str(data, "id", ""),
	         payload_str(data, "file", ""), payload_str(top, "severity", ""),
	         payload_str(top, "type", ""), payload_str(top, "category", ""),
	         json_array_size(findings) > 1 ? " (and more)" : "");
	return buf;
}

/* Teams renders TextBlock and FactSet text as Markdown, of which Adaptive
 * Cards know emphasis (* _), links ([text](url)) and lists ("- ", "1. " at
 * a line start).  A backslash goes before each of \\ * _ [ ] ( ) and before
 * a leading - + or digit, and line breaks become spaces, so a file name or
 * a transcript cannot make a link, a list or restyle the card.  Returns
 * malloc'ed text. */
static char *payload_teams_escape(const char *s)
{
	char *out = malloc(2 * strlen(s) + 2), *o = out;

	if (out == NULL)
		return NULL;
	if (*s == '-' || *s == '+' || (*s >= '0' && *s <= '9'))
		*o++ = '\\';
	for (; *s; s++) {
		if (*s == '\n' || *s == '\r') {
			*o++ = ' ';
			continue;
		}
		if (strchr("\\*_[]()", *s) != NULL)
			*o++ = '\\';
		*o++ = *s;
	}
	*o = '\0';
	return out;
}

/* One mrkdwn field "*Label*\nvalue" with the value escaped. */
static json_t *payload_slack_field(const char *label, const char *value)
{
	char *esc = payload_slack_escape(value);
	json_t *f =
	        esc ? json_pack("{s:s, s:s++}", "type", "mrkdwn", "text", label, "\n", esc) : NULL;

	free(esc);
	return f;
}

/* The header, the facts (every value escaped: a file named "<!channel>"
 * must not notify a channel) and, for a decision, who, when and why. */
static json_t *payload_slack_fields(const json_t *std, const char *title, const char *dur)
{
	const json_t *data = json_object_get(std, "data"), *dec = json_object_get(data, "decision");
	json_t *fields = json_array(), *blocks;

	json_array_append_new(fields,
	                      payload_slack_field("*Spool*", payload_str(data, "spool", "")));
	json_array_append_new(fields, payload_slack_field("*Item*", payload_str(data, "id", "")));
	json_array_append_new(fields, payload_slack_field("*File*", payload_str(data, "file", "")));
	json_array_append_new(fields, payload_slack_field("*Duration*", dur));
	json_array_append_new(fields,
	                      payload_slack_field("*Verdict*", payload_str(data, "verdict", "")));
	json_array_append_new(fields,
	                      payload_slack_field("*State*", payload_str(data, "state", "")));
	json_array_append_new(fields, payload_slack_field("*Highest severity*",
	                                                  payload_str(data, "max_severity", "")));
	if (dec != NULL) {
		json_array_append_new(
		        fields, payload_slack_field("*Decided by*", payload_str(dec, "by", "")));
		json_array_append_new(
		        fields, payload_slack_field("*Reason*", payload_str(dec, "reason", "")));
	}
	blocks = json_pack("[{s:s, s:{s:s, s:s}}, {s:s, s:o}]", "type", "header", "text", "type",
	                   "plain_text", "text", title, "type", "section", "fields", fields);
	return blocks;
}

/* Slack incoming-webhook body: {"text": fallback, "blocks": [...]}. */
static json_t *payload_slack(const json_t *std)
{
	const json_t *data = json_object_get(std, "data");
	const json_t *findings = json_object_get(data, "findings"), *f;
	char head[512], title[160], dur[32], t0[32], t1[32], review[700];
	char *text = NULL, *esc_head, *esc;
	json_t *blocks, *root;
	size_t i, nf = json_array_size(findings);

	const char *verb, *word;
	payload_wording(payload_str(std, "type", ""), &verb, &word);
	payload_headline(std, head, sizeof(head));
	/* the header is plain_text, which Slack does not let us escape: only
	 * trusted words go in it (spool names and ids are validated); the file
	 * name is in an escaped field below */
	snprintf(title, sizeof(title), "%s: %s/%s", word, payload_str(data, "spool", ""),
	         payload_str(data, "id", ""));
	payload_truncate(title, 150);
	payload_fmt_time(dur, sizeof(dur), payload_num(data, "duration_s"));
	if ((esc_head = payload_slack_escape(head)) == NULL)
		return NULL;
	blocks = payload_slack_fields(std, title, dur);
	if (blocks == NULL)
		goto fail;
	json_array_foreach(findings, i, f)
	{
		const json_t *ex = json_object_get(f, "excerpt");
		size_t need;
		int n;

		if (i == PAYLOAD_SLACK_MAX_FINDINGS)
			break;
		payload_fmt_time(t0, sizeof(t0), payload_num(f, "start_s"));
		payload_fmt_time(t1, sizeof(t1), payload_num(f, "end_s"));
		need = 256 + strlen(payload_str(f, "evidence", "")) +
		       strlen(payload_str(ex, "text", "")) +
		       strlen(payload_str(f, "category", "")) + strlen(payload_str(f, "rule", ""));
		free(text);
		if ((text = malloc(need)) == NULL)
			goto fail;
		char conf[32] = "";
		if (json_is_number(json_object_get(f, "confidence")))
			snprintf(conf, sizeof conf, ", confidence %.2f",
			         payload_num(f, "confidence"));
		n = snprintf(text, need, "*%s* %s / %s at %s-%s (rule %s%s)\n> %s",
		             payload_str(f, "severity", ""), payload_str(f, "type", ""),
		             payload_str(f, "category", ""), t0, t1, payload_str(f, "rule", ""),
		             conf, payload_str(f, "evidence", ""));
		if (ex != NULL && n > 0 && (size_t)n < need)
			snprintf(text + n, need - (size_t)n, "\n_...%s..._",
			         payload_str(ex, "text", ""));
		if ((esc = payload_slack_escape(text)) == NULL)
			goto fail;
		payload_truncate(esc, PAYLOAD_SLACK_TEXT_MAX);
		json_array_append_new(blocks, json_pack("{s:s, s:{s:s, s:s}}", "type", "section",
		                                        "text", "type", "mrkdwn", "text", esc));
		free(esc);
	}
	if (nf > PAYLOAD_SLACK_MAX_FINDINGS) {
		snprintf(review, sizeof(review), "and %zu more findings",
		         nf - PAYLOAD_SLACK_MAX_FINDINGS);
		json_array_append_new(blocks,
		                      json_pack("{s:s, s:[{s:s, s:s}]}", "type", "context",
		                                "elements", "type", "mrkdwn", "text", review));
	}
	snprintf(review, sizeof(review), "Review: `%s`", payload_str(data, "review_command", ""));
	if ((esc = payload_slack_escape(review)) == NULL)
		goto fail;
	json_array_append_new(blocks, json_pack("{s:s, s:[{s:s, s:s}]}", "type", "context",
	                                        "elements", "type", "mrkdwn", "text", esc));
	free(esc);
	root = json_pack("{s:s, s:o}", "text", esc_head, "blocks", blocks);
	free(esc_head);
	free(text);
	return root;
fail:
	json_decref(blocks);
	free(esc_head);
	free(text);
	return NULL;
}

/* One Teams fact with its value escaped (FactSet values are Markdown too). */
static json_t *payload_teams_fact(const char *title, const char *value)
{
	char *esc = payload_teams_escape(value);
	json_t *f = esc ? json_pack("{s:s, s:s}", "title", title, "value", esc) : NULL;

	free(esc);
	return f;
}

/* The card's facts: where, what, and for a decision who and why. */
static json_t *payload_teams_facts(const json_t *data, const char *dur)
{
	const json_t *dec = json_object_get(data, "decision");
	json_t *facts = json_array();

	json_array_append_new(facts, payload_teams_fact("Spool", payload_str(data, "spool", "")));
	json_array_append_new(facts, payload_teams_fact("Item", payload_str(data, "id", "")));
	json_array_append_new(facts, payload_teams_fact("File", payload_str(data, "file", "")));
	json_array_append_new(facts, payload_teams_fact("Duration", dur));
	json_array_append_new(facts,
	                      payload_teams_fact("Verdict", payload_str(data, "verdict", "")));
	json_array_append_new(facts, payload_teams_fact("State", payload_str(data, "state", "")));
	json_array_append_new(facts, payload_teams_fact("Highest severity",
	                                                payload_str(data, "max_severity", "")));
	if (dec != NULL) {
		json_array_append_new(facts,
		                      payload_teams_fact("Decided by", payload_str(dec, "by", "")));
		json_array_append_new(facts,
		                      payload_teams_fact("Reason", payload_str(dec, "reason", "")));
	}
	return facts;
}

/* Teams body: a message carrying one Adaptive Card (what Teams Workflows
 * "post to a channel when a webhook request is received" expects). */
static json_t *payload_teams(const json_t *std)
{
	const json_t *data = json_object_get(std, "data");
	const json_t *findings = json_object_get(data, "findings"), *f;
	char head[512], dur[32], t0[32], t1[32], line[512];
	json_t *body, *card, *facts;
	size_t i, nf = json_array_size(findings);

	payload_headline(std, head, sizeof(head));
	payload_fmt_time(dur, sizeof(dur), payload_num(data, "duration_s"));
	char *esc_head = payload_teams_escape(head);
	facts = payload_teams_facts(data, dur);
	body = json_pack("[{s:s, s:s, s:s, s:s?, s:b}, {s:s, s:o?}]", "type", "TextBlock", "size",
	                 "Large", "weight", "Bolder", "text", esc_head, "wrap", 1, "type",
	                 "FactSet", "facts", facts);
	free(esc_head);
	if (body == NULL)
		return NULL;
	json_array_foreach(findings, i, f)
	{
		const json_t *ex = json_object_get(f, "excerpt");

		if (i == PAYLOAD_TEAMS_MAX_FINDINGS)
			break;
		payload_fmt_time(t0, sizeof(t0), payload_num(f, "start_s"));
		payload_fmt_time(t1, sizeof(t1), payload_num(f, "end_s"));
		snprintf(line, sizeof(line), "**%s** %s / %s at %s-%s (rule %s)",
		         payload_str(f, "severity", ""), payload_str(f, "type", ""),
		         payload_str(f, "category", ""), t0, t1, payload_str(f, "rule", ""));
		json_array_append_new(body, json_pack("{s:s, s:s, s:s, s:b, s:s}", "type",
		                                      "TextBlock", "text", line, "color",
		                                      "Attention", "wrap", 1, "spacing", "Medium"));
		char *ev = payload_teams_escape(payload_str(f, "evidence", ""));
		char *exs = ex ? payload_teams_escape(payload_str(ex, "text", "")) : NULL;
		if (ev != NULL)
			json_array_append_new(body,
			                      json_pack("{s:s, s:s+, s:b}", "type", "TextBlock",
			                                "text", "Evidence: ", ev, "wrap", 1));
		if (exs != NULL)
			json_array_append_new(body, json_pack("{s:s, s:s++, s:b, s:b}", "type",
			                                      "TextBlock", "text", "Excerpt: ", exs,
			                                      "...", "wrap", 1, "isSubtle", 1));
		free(ev);
		free(exs);
	}
	if (nf > PAYLOAD_TEAMS_MAX_FINDINGS) {
		snprintf(line, sizeof(line), "and %zu more findings",
		         nf - PAYLOAD_TEAMS_MAX_FINDINGS);
		json_array_append_new(body, json_pack("{s:s, s:s, s:b}", "type", "TextBlock",
		                                      "text", line, "wrap", 1));
	}
	json_array_append_new(body, json_pack("{s:s, s:s+, s:s, s:b}", "type", "TextBlock", "text",
	                                      "Review: ", payload_str(data, "review_command", ""),
	                                      "fontType", "Monospace", "wrap", 1));
	card = json_pack("{s:s, s:s, s:s, s:o, s:{s:s}}", "$schema",
	                 "http://adaptivecards.io/schemas/adaptive-card.json", "type",
	                 "AdaptiveCard", "version", "1.4", "body", body, "msteams", "width",
	                 "Full");
	if (card == NULL)
		return NULL;
	return json_pack("{s:s, s:[{s:s, s:n, s:o}]}", "type", "message", "attachments",
	                 "contentType", "application/vnd.microsoft.card.adaptive", "contentUrl",
	                 "content", card);
}

/* Builds the body for one format.  The standard object is always built
 * first: Slack and Teams are renderings of it, so all three agree. */
char *alert_payload_build(alert_format fmt, const json_t *verdict, const char *spool,
                          const char *item_id, char *err, size_t errlen)
{
	json_t *std, *out;
	char *text;

	if (!json_is_object(verdict)) {
		snprintf(err, errlen, "verdict is not a JSON object");
		return NULL;
	}
	if ((std = payload_standard(verdict, spool, item_id)) == NULL) {
		snprintf(err, errlen, "cannot build the standard payload (bad verdict or memory)");
		return NULL;
	}
	if (fmt == ALERT_FMT_STANDARD) {
		out = std;
	} else {
		out = fmt == ALERT_FMT_SLACK ? payload_slack(std) : payload_teams(std);
		json_decref(std);
		if (out == NULL) {
			snprintf(err, errlen, "cannot build the %s payload",
			         alert_format_name(fmt));
			return NULL;
		}
	}
	/* 9 significant digits: times read 3.56, not 3.5600000000000001 */
	text = json_dumps(out, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(9));
	json_decref(out);
	if (text == NULL) {
		snprintf(err, errlen, "cannot serialise the payload (invalid UTF-8?)");
		return NULL;
	}
	if (strlen(text) > ALERT_MAX_BODY) {
		free(text);
		snprintf(err, errlen, "payload larger than %d bytes", ALERT_MAX_BODY);
		return NULL;
	}
	return text;
}

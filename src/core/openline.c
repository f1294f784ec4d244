/*
 * openline.c - did the agent keep talking after the call should have ended?
 *
 * Three kinds of evidence, strongest first:
 *   1. speech after the PBX's hangup mark (sidecar `hangup_at`);
 *   2. on a stereo call, agent speech after the other party went quiet and
 *      after the agent's own sign-off;
 *   3. speech after the last sign-off ("bye", "take care", ...: the list is
 *      models/signoffs.txt), or quiet off-mic speech trailing the message.
 * It is decided on *speech* measured by vad.c, so off-mic talk too quiet
 * to be recognised still counts, and hiss or silence never does.  A
 * client-facing postscript at message level ("Oh, and one more thing ...")
 * is not an open line.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define OL_HANGUP_GRACE_S 0.5  /* PBX marks are approximate */
#define OL_MIN_SPEECH_S 0.6    /* less than this after the end is a breath */
#define OL_SIGNOFF_TAIL_S 0.8  /* a sign-off ends its stretch of speech */
#define OL_SIGNOFF_LEVEL_DB 10 /* ... and is said at message level */
#define OL_OTHER_GRACE_S 1.5   /* after the other party's last word */
#define OL_QUIET_DB 6.0        /* "off-mic": this far below the message */
#define OL_QUIET_PAUSE_S 1.0   /* ... after a pause at least this long */
#define OL_QUIET_MIN_S 1.0     /* ... and lasting at least this long */
#define OL_POSTSCRIPT_DB 6.0   /* a postscript is at message level */
#define OL_POSTSCRIPT_WORDS 5  /* its cue opens it */
#define OL_WORDS_PER_S 1.5     /* recognised words per second of speech: a talker */
#define OL_PHRASE_GAP_S 0.5    /* a pause this long ends a phrase */
#define OL_NUMBER_WORDS 3      /* a number read out after the farewell: this many digits */
#define OL_INTONATION 0.2      /* share of speech frames with moving pitch: a voice */

typedef struct ol_signoff_scan {
	const vms_openline_input *in;
	const vms_levels *lv;
	const vms_word *const *words; /* agent-channel words */
	double last_end;              /* end of the last qualifying sign-off */
	char last_text[128];
	int postscript_at;      /* index of a postscript cue, or -1 */
	size_t postscript_from; /* only cues at or after this word */
} ol_signoff_scan;

static double ol_segment_end_after(const vms_levels *lv, double t);
static void ol_on_signoff(const vms_hit *h, void *arg);
static void ol_on_postscript(const vms_hit *h, void *arg);
static int ol_fill(vms_finding *f, const vms_openline_input *in, const vms_levels *lv, double from,
                   double to, const char *how, const char *what);
static double ol_first_speech(const vms_levels *lv, double from);
static double ol_last_speech(const vms_levels *lv);
static int ol_is_speech(const vms_openline_input *in, int agent, double from, double to);
static size_t ol_phrase_end(const vms_rules_input *in, size_t from);
static int ol_scan_signoffs(const vms_openline_input *in, int agent, const vms_rules_input *mi,
                            ol_signoff_scan *sc);
static int ol_is_number_read_out(const vms_rules_input *mi, size_t from);

/*
 * Sound after the message counts only if it is speech: the energy test
 * in vad.c also passes a car horn, thunder, a dog or hold music.  Speech
 * is a voice whose pitch moves (vms_levels_intonation_share), or words the
 * recogniser heard at a talker's rate; the second catches a monotone
 * synthetic voice, the first a mutter too quiet to be recognised.
 * Measured on ../shared/eval/real-speech/ clips after a rendered message
 * (tests/scenarios/realtrail.jsonl): noise 0.07-0.85 words/s and at most
 * 0.03 intonation; speech 2.5+ words/s and 0.42+.  Without samples the
 * sound is taken for speech: a doubt holds.
 */
static int ol_is_speech(const vms_openline_input *in, int agent, double from, double to)
{
	const vms_levels *lv = in->levels[agent];
	double secs = vms_levels_speech_between(lv, from, to);
	size_t words = 0;
	if (secs <= 0)
		return 0;
	for (size_t i = 0; i < in->n_words; i++) {
		const vms_word *w = &in->words[i];
		words += w->channel == agent && w->start_s >= from - 0.1 && w->end_s <= to + 0.3;
	}
	if ((double)words / secs >= OL_WORDS_PER_S || in->pcm[agent] == NULL)
		return 1;
	return vms_levels_intonation_share(lv, in->pcm[agent], in->n_samples, from, to) >=
	       OL_INTONATION;
}

/* End of the stretch of speech that is going on at time t (or t itself). */
static double ol_segment_end_after(const vms_levels *lv, double t)
{
	for (size_t i = 0; i < lv->n_segs; i++)
		if (lv->segs[i].start_s <= t + 0.05 && lv->segs[i].end_s >= t - 0.05)
			return lv->segs[i].end_s > t ? lv->segs[i].end_s : t;
	return t;
}

/* First speech frame at or after from, or -1. */
static double ol_first_speech(const vms_levels *lv, double from)
{
	size_t f = from <= 0 ? 0 : (size_t)(from / VMS_FRAME_S);
	for (; f < lv->n_frames; f++)
		if (lv->speech[f])
			return f * VMS_FRAME_S;
	return -1.0;
}

/* End of the last speech, or 0. */
static double ol_last_speech(const vms_levels *lv)
{
	return lv->n_segs ? lv->segs[lv->n_segs - 1].end_s : 0.0;
}

/*
 * A sign-off counts when it is said at message level and closes its
 * stretch of speech ("take care of the form" is no farewell); weak ones
 * ("thanks") only when nothing at message level follows them.
 */
static void ol_on_signoff(const vms_hit *h, void *arg)
{
	ol_signoff_scan *sc = arg;
	if (strcmp(h->strength, "postscript") == 0)
		return;
	const vms_word *first = sc->words[h->first], *last = sc->words[h->last];
	double level = vms_levels_speech_level(sc->lv, first->start_s, last->end_s);
	if (level < sc->lv->speech_db - OL_SIGNOFF_LEVEL_DB)
		return;
	double seg_end = ol_segment_end_after(sc->lv, last->end_s);
	if (seg_end - last->end_s > OL_SIGNOFF_TAIL_S)
		return;
	if (strcmp(h->strength, "weak") == 0) {
		double next = ol_first_speech(sc->lv, seg_end + 0.05);
		if (next >= 0 && vms_levels_speech_level(sc->lv, next, sc->in->duration_s) >=
		                         sc->lv->speech_db - OL_POSTSCRIPT_DB)
			return;
	}
	if (seg_end >= sc->last_end) {
		sc->last_end = seg_end;
		size_t len = 0;
		sc->last_text[0] = '\0';
		for (size_t i = h->first; i <= h->last && len < sizeof sc->last_text; i++)
			len += (size_t)snprintf(sc->last_text + len, sizeof sc->last_text - len,
			                        "%s%s", i > h->first ? " " : "", sc->words[i]->w);
	}
}

/* Remember the first postscript cue at or after postscript_from. */
static void ol_on_postscript(const vms_hit *h, void *arg)
{
	ol_signoff_scan *sc = arg;
	if (strcmp(h->strength, "postscript") != 0 || h->first < sc->postscript_from ||
	    h->first >= sc->postscript_from + OL_POSTSCRIPT_WORDS)
		return;
	if (sc->postscript_at < 0 || (int)h->first < sc->postscript_at)
		sc->postscript_at = (int)h->first;
}

/* Fill the finding for speech in [from, to) with the words said there. */
static int ol_fill(vms_finding *f, const vms_openline_input *in, const vms_levels *lv, double from,
                   double to, const char *how, const char *what)
{
	char ev[512];
	size_t len = 0;
	ev[0] = '\0';
	for (size_t i = 0; i < in->n_words; i++) {
		const vms_word *w = &in->words[i];
		if (w->end_s <= from || w->start_s >= to || len >= sizeof ev - 1)
			continue;
		len += (size_t)snprintf(ev + len, sizeof ev - len, "%s%s", len ? " " : "", w->w);
	}
	double secs = vms_levels_speech_between(lv, from, to);
	double below = lv->speech_db - vms_levels_speech_level(lv, from, to);
	memset(f, 0, sizeof *f);
	f->type = VMS_FINDING_OPEN_LINE;
	f->severity = VMS_SEV_HIGH;
	f->start_s = from;
	f->end_s = to;
	f->category = vms_strdup(how);
	f->rule = vms_strdupf("open_line.%s", how);
	f->evidence =
	        vms_strdupf("%.1f s of speech %s%s%s%s (%.0f dB below the message)", secs, what,
	                    len ? ": \"" : "", ev, len ? "\"" : "", below > 0 ? below : 0.0);
	return f->category && f->rule && f->evidence ? 1 : -1;
}

/* Words [from, n) of a run: the phrase ends at the first pause. */
static size_t ol_phrase_end(const vms_rules_input *in, size_t from)
{
	size_t e = from + 1;
	while (e < in->n && in->words[e]->start_s - in->words[e - 1]->end_s < OL_PHRASE_GAP_S)
		e++;
	return e;
}

/*
 * Find the last sign-off on the agent's channel, phrase by phrase: a
 * guard reads the words of its own phrase, not what is said after a
 * pause ("bye now", a pause, then "the nelson..." muttered off-mic is a
 * farewell, whatever word the mutter starts with).  Then the runner-up
 * guesses, which often hold the farewell the best guess garbled ("bye
 * bye" heard as "by night"); a guess covers one utterance, so it is read
 * with the best-path words that continue its phrase ("by" is no farewell
 * when "zero one eight" follows at once).
 */
static int ol_scan_signoffs(const vms_openline_input *in, int agent, const vms_rules_input *mi,
                            ol_signoff_scan *sc)
{
	for (size_t p = 0; p < mi->n;) {
		size_t e = ol_phrase_end(mi, p);
		sc->words = mi->words + p;
		vms_rules_match(in->signoffs, mi->text + p, e - p, ol_on_signoff, sc);
		/* a longer farewell with one garbled word ("time to you soon") */
		vms_rules_match_alts(in->signoffs, mi->text + p, mi->alts + p, e - p, ol_on_signoff,
		                     sc);
		p = e;
	}
	sc->words = mi->words;
	vms_rules_input gi;
	if (vms_rules_input_init(&gi, 0, in->alts) < 0)
		return -1;
	for (size_t k = 0; in->alts && k < in->alts->n_seqs; k++) {
		if (vms_rules_input_seq(&gi, in->alts, k) != agent)
			continue;
		double end = gi.words[gi.n - 1]->end_s;
		for (size_t i = 0; i < mi->n; i++) {
			const vms_word *w = mi->words[i];
			if (w->start_s < end - 0.05)
				continue;
			if (w->start_s - end >= OL_PHRASE_GAP_S)
				break;
			if (vms_rules_input_push(&gi, w) < 0) {
				vms_rules_input_free(&gi);
				return -1;
			}
			end = w->end_s;
		}
		ol_signoff_scan asc = *sc;
		asc.words = gi.words;
		vms_rules_match(in->signoffs, gi.text, gi.n, ol_on_signoff, &asc);
		if (asc.last_end > sc->last_end) {
			sc->last_end = asc.last_end;
			memcpy(sc->last_text, asc.last_text, sizeof sc->last_text);
		}
	}
	vms_rules_input_free(&gi);
	return 0;
}

/* Are the words from `from` on a number read out (a callback number after
 * the farewell is part of the message, not an open line)? */
static int ol_is_number_read_out(const vms_rules_input *mi, size_t from)
{
	size_t n = 0, k = 0;
	for (size_t i = from; i < mi->n; i++, n++)
		k += (size_t)vms_is_number_word(mi->text[i]);
	return k >= OL_NUMBER_WORDS && 10 * k >= 6 * n;
}

/* See the file comment. */
int vms_openline_detect(const vms_openline_input *in, vms_finding *f)
{
	int agent =
	        in->agent_channel >= 0 && in->agent_channel < in->channels ? in->agent_channel : 0;
	const vms_levels *lv = in->levels[agent];
	char what[256];
	int rc = 0;
	if (lv == NULL || lv->n_segs == 0)
		return 0;
	double end_of_speech = ol_last_speech(lv);

	/* 1. The PBX says the call ended. */
	if (in->hangup_at >= 0) {
		double from = in->hangup_at + OL_HANGUP_GRACE_S;
		double s = ol_first_speech(lv, from);
		if (vms_levels_speech_between(lv, from, in->duration_s) >= OL_MIN_SPEECH_S &&
		    ol_is_speech(in, agent, s, end_of_speech)) {
			snprintf(what, sizeof what, "after the hangup mark at %.1f s",
			         in->hangup_at);
			return ol_fill(f, in, lv, s, end_of_speech, "after_hangup", what);
		}
	}

	/* Agent-channel words and the sign-off scan. */
	vms_rules_input mi;
	if (vms_rules_input_init(&mi, in->n_words, NULL) < 0)
		return -1;
	vms_rules_input_channel(&mi, in->words, in->n_words, agent);
	ol_signoff_scan sc = {
	        .in = in, .lv = lv, .words = mi.words, .last_end = -1.0, .postscript_at = -1};
	if (ol_scan_signoffs(in, agent, &mi, &sc) < 0) {
		rc = -1;
		goto out;
	}

	/* 2. Stereo: the other party went quiet, the agent did not. */
	if (in->channels == 2 && in->levels[1 - agent] && in->levels[1 - agent]->n_segs) {
		double other_end = ol_last_speech(in->levels[1 - agent]);
		double from = other_end + OL_OTHER_GRACE_S;
		if (sc.last_end > from)
			from = sc.last_end + 0.2;
		double s = ol_first_speech(lv, from);
		if (vms_levels_speech_between(lv, from, in->duration_s) >= OL_MIN_SPEECH_S &&
		    ol_is_speech(in, agent, s, end_of_speech)) {
			snprintf(
			        what, sizeof what,
			        "on the agent's channel after the other party went quiet at %.1f s",
			        other_end);
			rc = ol_fill(f, in, lv, s, end_of_speech, "after_other_party", what);
			goto out;
		}
	}

	/* 3a. Speech after the last sign-off, unless it is a postscript. */
	if (sc.last_end >= 0) {
		double from = sc.last_end + 0.2;
		double secs = vms_levels_speech_between(lv, from, in->duration_s);
		if (secs >= OL_MIN_SPEECH_S) {
			double s = ol_first_speech(lv, from);
			double level = vms_levels_speech_level(lv, s, in->duration_s);
			size_t first_after = 0;
			while (first_after < mi.n && mi.words[first_after]->start_s < s - 0.1)
				first_after++;
			sc.postscript_from = first_after;
			vms_rules_match(in->signoffs, mi.text, mi.n, ol_on_postscript, &sc);
			int postscript = (sc.postscript_at >= 0 &&
			                  level >= lv->speech_db - OL_POSTSCRIPT_DB) ||
			                 ol_is_number_read_out(&mi, first_after);
			if (!postscript && ol_is_speech(in, agent, s, end_of_speech)) {
				snprintf(what, sizeof what, "after the sign-off \"%s\" at %.1f s",
				         sc.last_text, sc.last_end);
				rc = ol_fill(f, in, lv, s, end_of_speech, "after_signoff", what);
				goto out;
			}
		}
	}

	/* 3b. Quiet, off-mic speech trailing the message after a pause. */
	for (size_t i = 1; i < lv->n_segs; i++) {
		if (lv->segs[i].start_s - lv->segs[i - 1].end_s < OL_QUIET_PAUSE_S)
			continue;
		double from = lv->segs[i].start_s;
		double level = vms_levels_speech_level(lv, from, in->duration_s);
		double secs = vms_levels_speech_between(lv, from, in->duration_s);
		if (level <= lv->speech_db - OL_QUIET_DB && secs >= OL_QUIET_MIN_S &&
		    vms_levels_speech_level(lv, 0, from) > level + OL_QUIET_DB - 2.0 &&
		    ol_is_speech(in, agent, from, end_of_speech)) {
			snprintf(what, sizeof what, "off-mic after the message ended at %.1f s",
			         lv->segs[i - 1].end_s);
			rc = ol_fill(f, in, lv, from, end_of_speech, "quiet_speech_after_message",
			             what);
			goto out;
		}
	}
out:
	vms_rules_input_free(&mi);
	return rc;
}

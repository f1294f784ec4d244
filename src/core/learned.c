/*
 * learned.c - the learned phrasing layer: windows of the agent's words
 * through the sentence classifier (classifier.cc), as findings.
 *
 * Rules catch the exact phrases a reviewer can read; this layer catches
 * the wording nobody listed ("slip me fifty quid", "a ten year old could
 * set this up").  Both feed the same findings: this one names the
 * category, the window of words it judged and the classifier's
 * probability, so a reviewer sees why.
 *
 * A transcript is cut into utterances at pauses, each utterance into
 * overlapping windows about a training sentence long; each window is
 * classified, and neighbouring windows of one category become one finding
 * (the most probable window is its evidence).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define LEARNED_PAUSE_S 0.7 /* a gap this long ends an utterance */
#define LEARNED_WINDOW 12   /* words per window: a training sentence's length */
#define LEARNED_STRIDE 3    /* windows overlap, so a phrase is never cut */
#define LEARNED_MIN_WORDS                                                                          \
	4 /* fewer words are no sentence: "that", "and of",                                        \
	     recognised in a noise, came out as anything */
#define LEARNED_TEXT_MAX 1024

typedef struct learned_best {
	char category[64];
	double prob, conf;
	size_t first, last; /* the most probable window */
	size_t span_first, span_last;
} learned_best;

static int learned_emit(const learned_best *b, const vms_word *const *words,
                        const vms_learned_params *p, vms_finding_cb add, void *arg);
static double learned_window_conf(const vms_word *const *words, size_t first, size_t last);

/* Mean best-path confidence of the window's words. */
static double learned_window_conf(const vms_word *const *words, size_t first, size_t last)
{
	double sum = 0;
	for (size_t i = first; i <= last; i++)
		sum += words[i]->conf;
	return sum / (double)(last - first + 1);
}

/* One finding for a run of windows judged to be one category. */
static int learned_emit(const learned_best *b, const vms_word *const *words,
                        const vms_learned_params *p, vms_finding_cb add, void *arg)
{
	char ev[LEARNED_TEXT_MAX];
	size_t len = 0;
	ev[0] = '\0';
	for (size_t i = b->first; i <= b->last && len < sizeof ev - 1; i++)
		len += (size_t)snprintf(ev + len, sizeof ev - len, "%s%s", i > b->first ? " " : "",
		                        words[i]->w);
	vms_finding f = {.type = VMS_FINDING_PHRASING,
	                 .category = vms_strdup(b->category),
	                 .severity = b->prob >= p->hold_prob ? VMS_SEV_MEDIUM : VMS_SEV_LOW,
	                 .start_s = words[b->span_first]->start_s,
	                 .end_s = words[b->span_last]->end_s,
	                 .evidence = vms_strdup(ev),
	                 .rule = vms_strdupf("learned.%s", b->category),
	                 .confidence = b->prob * b->conf};
	if (f.category == NULL || f.evidence == NULL || f.rule == NULL) {
		free(f.category);
		free(f.evidence);
		free(f.rule);
		return -1;
	}
	return add(arg, &f);
}

/*
 * Classify words[0..n) (one channel, time order) window by window and call
 * add for each finding.  Costs one classifier call per LEARNED_STRIDE
 * words.  Returns the number of findings, or -1 when the classifier or
 * memory failed (the caller holds the file: a layer that did not run is
 * no evidence of a clean message).
 */
int vms_learned_scan(const vms_classifier *c, const vms_word *const *words, size_t n,
                     const vms_learned_params *p, vms_finding_cb add, void *arg)
{
	char text[LEARNED_TEXT_MAX], label[64];
	learned_best cur = {.prob = 0};
	int found = 0, have = 0;
	size_t u0 = 0;
	while (u0 < n) {
		size_t u1 = u0; /* the utterance is words[u0..u1] */
		while (u1 + 1 < n && words[u1 + 1]->start_s - words[u1]->end_s < LEARNED_PAUSE_S)
			u1++;
		for (size_t w0 = u0; u1 + 1 - u0 >= LEARNED_MIN_WORDS && w0 <= u1;
		     w0 += LEARNED_STRIDE) {
			size_t w1 = w0 + LEARNED_WINDOW - 1 < u1 ? w0 + LEARNED_WINDOW - 1 : u1;
			size_t len = 0;
			double prob;
			text[0] = '\0';
			for (size_t i = w0; i <= w1 && len < sizeof text - 1; i++)
				len += (size_t)snprintf(text + len, sizeof text - len, "%s%s",
				                        i > w0 ? " " : "", words[i]->w);
			if (vms_classifier_predict(c, text, label, sizeof label, &prob) < 0)
				return -1;
			int bad = strcmp(label, "clean") != 0 && prob >= p->report_prob;
			if (have &&
			    (!bad || strcmp(label, cur.category) != 0 || w0 > cur.span_last)) {
				if (learned_emit(&cur, words, p, add, arg) < 0)
					return -1;
				found++;
				have = 0;
			}
			if (bad) {
				if (!have) {
					memset(&cur, 0, sizeof cur);
					snprintf(cur.category, sizeof cur.category, "%s", label);
					cur.span_first = w0;
					have = 1;
				}
				cur.span_last = w1;
				if (prob > cur.prob) {
					cur.prob = prob;
					cur.first = w0;
					cur.last = w1;
					cur.conf = learned_window_conf(words, w0, w1);
				}
			}
			if (w1 == u1)
				break;
		}
		u0 = u1 + 1;
	}
	if (have) {
		if (learned_emit(&cur, words, p, add, arg) < 0)
			return -1;
		found++;
	}
	return found;
}

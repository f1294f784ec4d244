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

/* A gap this long ends an utterance. */
#define LEARNED_PAUSE_S 0.7
/* Words per window: about a training sentence's length. */
#define LEARNED_WINDOW 12
/* Windows overlap, so a phrase is never cut in two. */
#define LEARNED_STRIDE 3
/* Words of left context a window must survive. */
#define LEARNED_CONTEXT 3
/* Fewer words are no sentence: "that" or "and of", recognised in a noise,
 * came out as any category at all. */
#define LEARNED_MIN_WORDS 4
#define LEARNED_TEXT_MAX 1024
/* Number words in a row that are a phone or account number, as
 * models/corpus/prepare.py reads them. */
#define LEARNED_DIGIT_RUN 3

typedef struct learned_best {
	char category[64];
	double prob, conf;
	size_t first, last; /* the most probable window */
	size_t span_first, span_last;
} learned_best;

static int learned_emit(const learned_best *b, const vms_word *const *words,
                        const vms_learned_params *p, vms_finding_cb add, void *arg);
static double learned_window_conf(const vms_word *const *words, size_t first, size_t last);
static const char *learned_expand(const char *w, char *buf, size_t len);
static int learned_judge(const vms_classifier *c, const vms_word *const *words,
                         const unsigned char *in_digits, size_t u0, size_t w0, size_t w1,
                         double report, char *label, size_t labellen, double *prob);
static size_t learned_window_text(const vms_word *const *words, size_t w0, size_t w1,
                                  const unsigned char *in_digits, char *text, size_t len);

/*
 * A word as the corpus writes it: the recogniser's dictionary has "isn't"
 * and "you're", the corpus "is not" and "you are" (models/corpus/
 * prepare.py expands the same way).  A possessive "'s" is dropped; "it's"
 * and the like become "it is".  Returns w itself when there is nothing
 * to expand.
 */
static const char *learned_expand(const char *w, char *buf, size_t len)
{
	static const char *const whole[][2] = {{"can't", "can not"},
	                                       {"won't", "will not"},
	                                       {"ain't", "is not"},
	                                       {"shan't", "shall not"},
	                                       {"let's", "let us"}};
	static const char *const is_words[] = {"it",    "that", "he",  "she",   "what",
	                                       "there", "here", "who", "where", "how"};
	static const char *const tails[][2] = {{"n't", " not"},  {"'re", " are"},
	                                       {"'m", " am"},    {"'ll", " will"},
	                                       {"'ve", " have"}, {"'d", " would"}};
	const char *q = strchr(w, '\'');
	size_t n = strlen(w);
	if (q == NULL)
		return w;
	for (size_t i = 0; i < sizeof whole / sizeof whole[0]; i++)
		if (strcmp(w, whole[i][0]) == 0)
			return whole[i][1];
	for (size_t i = 0; i < sizeof tails / sizeof tails[0]; i++) {
		size_t t = strlen(tails[i][0]);
		if (n > t && strcmp(w + n - t, tails[i][0]) == 0) {
			snprintf(buf, len, "%.*s%s", (int)(n - t), w, tails[i][1]);
			return buf;
		}
	}
	if (n > 2 && strcmp(w + n - 2, "'s") == 0) {
		for (size_t i = 0; i < sizeof is_words / sizeof is_words[0]; i++)
			if (strncmp(w, is_words[i], n - 2) == 0 && is_words[i][n - 2] == '\0') {
				snprintf(buf, len, "%s is", is_words[i]);
				return buf;
			}
		snprintf(buf, len, "%.*s", (int)(n - 2), w);
		return buf;
	}
	/* any other apostrophe: dropped, as prepare.py drops it */
	size_t k = 0;
	for (const char *p = w; *p && k + 1 < len; p++)
		if (*p != '\'')
			buf[k++] = *p;
	buf[k] = '\0';
	return buf;
}

/*
 * The classifier's view of words[w0..w1]: the words, space-separated, with
 * each run of a digit string (in_digits) as one token "digitstring", as
 * the corpus was prepared: "five five five zero one eight" is a number
 * read out, never a survey score.  Returns the length written.
 */
static size_t learned_window_text(const vms_word *const *words, size_t w0, size_t w1,
                                  const unsigned char *in_digits, char *text, size_t len)
{
	size_t n = 0;
	char buf[128];
	text[0] = '\0';
	for (size_t i = w0; i <= w1 && n < len - 1; i++) {
		if (in_digits[i] && i > w0 && in_digits[i - 1])
			continue;
		const char *w =
		        in_digits[i] ? "digitstring" : learned_expand(words[i]->w, buf, sizeof buf);
		n += (size_t)snprintf(text + n, len - n, "%s%s", i > w0 ? " " : "", w);
	}
	return n < len ? n : len - 1;
}

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
	                 .severity = VMS_SEV_LOW,
	                 .basis = "learned: probability x word confidence below learned_hold",
	                 .start_s = words[b->span_first]->start_s,
	                 .end_s = words[b->span_last]->end_s,
	                 .evidence = vms_strdup(ev),
	                 .rule = vms_strdupf("learned.%s", b->category),
	                 .confidence = b->prob * b->conf,
	                 .score = b->prob,
	                 .word_conf = b->conf};
	/* See README "How it decides": a sure classifier on words the recogniser
	 * heard fairly (telephone audio rarely gives more) holds as well as a
	 * likely one on words heard clearly. */
	if (b->prob * b->conf >= p->hold_conf) {
		f.severity = VMS_SEV_MEDIUM;
		f.basis = "learned: probability x word confidence reaches learned_hold";
	} else if (b->prob >= p->sure_prob && b->conf >= p->sure_words) {
		f.severity = VMS_SEV_MEDIUM;
		f.basis = "learned: probability reaches learned_sure, words heard fairly "
		          "(learned_sure_words)";
	}
	if (f.category == NULL || f.evidence == NULL || f.rule == NULL) {
		free(f.category);
		free(f.evidence);
		free(f.rule);
		return -1;
	}
	return add(arg, &f);
}

/*
 * Is window words[w0..w1] of the utterance that starts at u0
 * unprofessional?  1 with its label and probability, 0 when clean or
 * below report, -1 when the classifier failed.  A window that starts
 * mid-sentence may have lost the words that turn it round ("none of this
 * was | your fault at all"): it counts only if the same window with a few
 * words before it says the same, at the cost of a second prediction for
 * the rare window that is not clean.
 */
static int learned_judge(const vms_classifier *c, const vms_word *const *words,
                         const unsigned char *in_digits, size_t u0, size_t w0, size_t w1,
                         double report, char *label, size_t labellen, double *prob)
{
	char text[LEARNED_TEXT_MAX], again[64];
	double prob2;
	learned_window_text(words, w0, w1, in_digits, text, sizeof text);
	if (vms_classifier_predict(c, text, label, labellen, prob) < 0)
		return -1;
	if (strcmp(label, "clean") == 0 || *prob < report)
		return 0;
	if (w0 == u0)
		return 1;
	size_t from = w0 - u0 > LEARNED_CONTEXT ? w0 - LEARNED_CONTEXT : u0;
	learned_window_text(words, from, w1, in_digits, text, sizeof text);
	if (vms_classifier_predict(c, text, again, sizeof again, &prob2) < 0)
		return -1;
	return strcmp(again, label) == 0 && prob2 >= report;
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
	char label[64];
	learned_best cur = {.prob = 0};
	int found = 0, have = 0;
	size_t u0 = 0;
	unsigned char *in_digits = calloc(n ? n : 1, 1);
	if (in_digits == NULL)
		return -1;
	for (size_t i = 0, run = 0; i <= n; i++) {
		if (i < n && vms_is_number_word(words[i]->w)) {
			run++;
			continue;
		}
		if (run >= LEARNED_DIGIT_RUN)
			memset(in_digits + i - run, 1, run);
		run = 0;
	}
	while (u0 < n) {
		size_t u1 = u0; /* the utterance is words[u0..u1] */
		while (u1 + 1 < n && words[u1 + 1]->start_s - words[u1]->end_s < LEARNED_PAUSE_S)
			u1++;
		for (size_t w0 = u0; u1 + 1 - u0 >= LEARNED_MIN_WORDS && w0 <= u1;
		     w0 += LEARNED_STRIDE) {
			size_t w1 = w0 + LEARNED_WINDOW - 1 < u1 ? w0 + LEARNED_WINDOW - 1 : u1;
			double prob;
			int bad = learned_judge(c, words, in_digits, u0, w0, w1, p->report_prob,
			                        label, sizeof label, &prob);
			if (bad < 0)
				goto fail;
			if (have &&
			    (!bad || strcmp(label, cur.category) != 0 || w0 > cur.span_last)) {
				if (learned_emit(&cur, words, p, add, arg) < 0)
					goto fail;
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
			goto fail;
		found++;
	}
	free(in_digits);
	return found;
fail:
	free(in_digits);
	return -1;
}

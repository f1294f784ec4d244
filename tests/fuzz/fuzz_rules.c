/*
 * fuzz_rules.c - the rule-pack parser and matcher (src/core/rules.c).
 *
 * The input is parsed as a rule pack with vms_rules_parse() and, written to
 * a file, as a sign-off list with vms_rules_load_signoffs().  Whatever
 * parses is matched against word sequences taken from the input itself
 * (its lower-case words in order, reversed, every other one, and with each
 * next word offered as the recogniser's alternative), so the fuzzer can
 * steer the words and the patterns together.
 *
 * Checked beyond the sanitizers: a refusal says why, and every hit lies
 * within the words and names its rule.
 */
#include <ctype.h>

#include "core/internal.h"
#include "fuzz.h"

#define FUZZ_MAX_WORDS 48

typedef struct rules_check {
	size_t n;
	size_t hits;
} rules_check;

/* Every hit must lie inside the word sequence and name its rule. */
static void rules_on_hit(const vms_hit *h, void *arg)
{
	rules_check *c = arg;
	if (h->first > h->last || h->last >= c->n || h->rule_id == NULL || h->category == NULL)
		abort();
	c->hits++;
}

/* Run r over words (and alternatives) in a few arrangements. */
static void rules_exercise(const vms_rules *r, char **w, size_t n)
{
	const char *seq[FUZZ_MAX_WORDS], *alts[FUZZ_MAX_WORDS];
	char altbuf[FUZZ_MAX_WORDS][64];
	rules_check c = {0, 0};

	for (int arrangement = 0; arrangement < 3; arrangement++) {
		size_t k = 0;
		for (size_t i = 0; i < n; i++) {
			if (arrangement == 0)
				seq[k++] = w[i];
			else if (arrangement == 1)
				seq[k++] = w[n - 1 - i];
			else if (i % 2 == 0)
				seq[k++] = w[i];
		}
		c.n = k;
		size_t got = vms_rules_match(r, seq, k, rules_on_hit, &c);
		if (got != vms_rules_match(r, seq, k, NULL, NULL))
			abort(); /* the matcher is deterministic */
	}
	/* the next word as the recogniser's alternative ("w1\0\0") */
	for (size_t i = 0; i < n; i++) {
		alts[i] = NULL;
		if (i + 1 < n && strlen(w[i + 1]) + 2 <= sizeof altbuf[i]) {
			size_t l = strlen(w[i + 1]);
			memcpy(altbuf[i], w[i + 1], l);
			altbuf[i][l] = '\0';
			altbuf[i][l + 1] = '\0';
			alts[i] = altbuf[i];
		}
	}
	c.n = n;
	vms_rules_match_alts(r, (const char *const *)w, alts, n, rules_on_hit, &c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[VMS_ERR_MAX], path[512];
	char *text = fuzz_text(data, size);
	char *words[FUZZ_MAX_WORDS];
	size_t n = 0;

	/* the input's words: runs of letters, digits and apostrophes */
	for (const char *p = text; *p && n < FUZZ_MAX_WORDS;) {
		while (*p && !isalnum((unsigned char)*p) && *p != '\'')
			p++;
		const char *s = p;
		while (*p && (isalnum((unsigned char)*p) || *p == '\''))
			p++;
		if (p > s) {
			words[n] = strndup(s, (size_t)(p - s));
			for (char *q = words[n]; *q; q++)
				*q = (char)tolower((unsigned char)*q);
			n++;
		}
	}

	err[0] = '\0';
	vms_rules *r = vms_rules_parse(text, "fuzz.rules", err, sizeof err);
	if (r == NULL) {
		fuzz_check_reason("vms_rules_parse", err, sizeof err, 0);
	} else {
		(void)vms_rules_count(r);
		rules_exercise(r, words, n);
		vms_rules_free(r);
	}

	fuzz_path(path, sizeof path, "signoffs.txt");
	fuzz_write(path, data, size);
	err[0] = '\0';
	r = vms_rules_load_signoffs(path, err, sizeof err);
	if (r == NULL) {
		fuzz_check_reason("vms_rules_load_signoffs", err, sizeof err, 0);
	} else {
		rules_exercise(r, words, n);
		vms_rules_free(r);
	}
	unlink(path);

	for (size_t i = 0; i < n; i++)
		free(words[i]);
	free(text);
	return 0;
}

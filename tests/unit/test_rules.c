/*
 * test_rules.c - the rule-pack parser and the word-level matcher, on
 * hand-written packs and on the shipped models/rules with the phrase lists
 * in tests/phrases/.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

typedef struct hits {
	char ids[32][128];
	char cats[32][64];
	vms_severity sev[32];
	size_t n;
} hits;

static void collect(const vms_hit *h, void *arg)
{
	hits *hs = arg;
	if (hs->n < 32) {
		snprintf(hs->ids[hs->n], sizeof hs->ids[0], "%s", h->rule_id);
		snprintf(hs->cats[hs->n], sizeof hs->cats[0], "%s", h->category);
		hs->sev[hs->n] = h->severity;
		hs->n++;
	}
}

/* Split a sentence into words in place. */
static size_t split(char *s, const char **w, size_t max)
{
	size_t n = 0;
	char *save = NULL;
	for (char *t = strtok_r(s, " \t\r\n", &save); t && n < max;
	     t = strtok_r(NULL, " \t\r\n", &save))
		w[n++] = t;
	return n;
}

static hits run(const vms_rules *r, const char *sentence)
{
	char buf[1024];
	const char *w[128];
	hits hs = {0};
	snprintf(buf, sizeof buf, "%s", sentence);
	size_t n = split(buf, w, 128);
	vms_rules_match(r, w, n, collect, &hs);
	return hs;
}

static vms_rules *parse(const char *text)
{
	char err[256] = "";
	vms_rules *r = vms_rules_parse(text, "test.rules", err, sizeof err);
	ck_assert_msg(r != NULL, "parse failed: %s", err);
	return r;
}

START_TEST(test_literal_and_alternatives)
{
	vms_rules *r = parse("category hostility\nseverity high\nrule shut: shut (the hell)? up\n"
	                     "rule done: we are done (talking|speaking) (to|with) you\n");
	ck_assert_uint_eq(vms_rules_count(r), 2);
	hits h = run(r, "i need you to shut up and listen");
	ck_assert_uint_eq(h.n, 1);
	ck_assert_str_eq(h.ids[0], "hostility.shut");
	ck_assert_str_eq(h.cats[0], "hostility");
	ck_assert_uint_eq(run(r, "shut the hell up").n, 1);
	ck_assert_uint_eq(run(r, "shut the door up").n, 0);
	ck_assert_uint_eq(run(r, "we are done speaking with you").n, 1);
	ck_assert_uint_eq(run(r, "we are done").n, 0);
	vms_rules_free(r);
}
END_TEST

START_TEST(test_gaps_prefix_and_optional_groups)
{
	vms_rules *r = parse("category blame\nrule nmp: (not|isn't) ~2 my (problem|issue)\n"
	                     "category insult\nrule stupid: stupid* (customer|person)?\n");
	ck_assert_uint_eq(run(r, "that is not really my problem").n, 1);
	ck_assert_uint_eq(run(r, "that is not my issue").n, 1);
	ck_assert_uint_eq(run(r, "not at all really my problem").n, 0); /* gap of 3 */
	hits h = run(r, "what a stupidly slow system");
	ck_assert_uint_eq(h.n, 1);
	ck_assert_str_eq(h.ids[0], "insult.stupid");
	vms_rules_free(r);
}
END_TEST

START_TEST(test_guards)
{
	vms_rules *r = parse("category blame\nseverity medium\n"
	                     "rule your_fault: (your|you're) own? fault\n"
	                     "  unless-before: (not|isn't)\n"
	                     "  unless-after: not ours\n"
	                     "rule frustrating: (you|this) (are|is) frustrating\n"
	                     "  unless-before: nothing ~2\n");
	ck_assert_uint_eq(run(r, "the damage is your own fault").n, 1);
	ck_assert_uint_eq(run(r, "it was not your fault").n, 0);
	ck_assert_uint_eq(run(r, "your fault not ours").n, 0);
	ck_assert_uint_eq(run(r, "you are frustrating").n, 1);
	ck_assert_uint_eq(run(r, "nothing really this is frustrating").n, 0);
	vms_rules_free(r);
}
END_TEST

START_TEST(test_aliases_and_severity)
{
	vms_rules *r = parse("alias damn = dam damned\ncategory profanity\nseverity high\n"
	                     "rule damn: damn\n  severity: medium\n  note: mild\n");
	char buf[256];
	const char *w[8];
	snprintf(buf, sizeof buf, "your dam banners");
	size_t n = split(buf, w, 8);
	hits hs = {0};
	ck_assert_uint_eq(vms_rules_match(r, w, n, collect, &hs), 1);
	ck_assert_str_eq(hs.ids[0], "profanity.damn");
	vms_rules_free(r);
}
END_TEST

START_TEST(test_parse_errors_name_file_and_line)
{
	static const struct {
		const char *text, *want;
	} bad[] = {
	        {"rule x: hello\n", "test.rules:1"},
	        {"category a\nrule x hello\n", "test.rules:2"},
	        {"category a\nrule x: (a|b\n", "missing ')'"},
	        {"category a\nrule x: a ~12\n", "gap"},
	        {"category a\nrule x: a?\n", "nothing at all"},
	        {"category a\nseverity huge\n", "unknown severity"},
	        {"category a\nrule x: a\n  colour: red\n", "unknown rule setting"},
	        {"category a\n  severity: high\n", "outside a rule"},
	        {"category a\nfrobnicate\n", "unknown directive"},
	        {"category a\nrule x: a ) b\n", "unexpected"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char err[256] = "";
		vms_rules *r = vms_rules_parse(bad[i].text, "test.rules", err, sizeof err);
		ck_assert_msg(r == NULL, "accepted: %s", bad[i].text);
		ck_assert_msg(strstr(err, bad[i].want) != NULL, "error '%s' lacks '%s'", err,
		              bad[i].want);
	}
}
END_TEST

/* Every line of a phrase list through the shipped rule packs. */
static void phrase_file(const char *path, int positive)
{
	char err[256], line[1024];
	vms_rules *r = vms_rules_load_dir(VMS_TEST_MODELS "/rules", err, sizeof err);
	ck_assert_msg(r != NULL, "%s", err);
	FILE *fp = fopen(path, "r");
	ck_assert_msg(fp != NULL, "cannot open %s", path);
	int lines = 0, bad = 0;
	while (fgets(line, sizeof line, fp)) {
		char *tab = strchr(line, '\t');
		if (line[0] == '#' || tab == NULL)
			continue;
		*tab = '\0';
		const char *want = line;
		hits h = run(r, tab + 1);
		lines++;
		if (positive) {
			int ok = 0;
			for (size_t i = 0; i < h.n; i++)
				ok |= strcmp(h.cats[i], want) == 0;
			if (!ok) {
				fprintf(stderr, "MISSED %s: %s", want, tab + 1);
				bad++;
			}
		} else {
			/* low rules are reported, never held on: they may fire */
			for (size_t i = 0; i < h.n; i++)
				if (h.sev[i] >= VMS_SEV_MEDIUM) {
					fprintf(stderr, "FALSE ALARM %s: %s", h.ids[i], tab + 1);
					bad++;
					break;
				}
		}
	}
	fclose(fp);
	vms_rules_free(r);
	ck_assert_msg(lines > 0, "%s has no phrases", path);
	ck_assert_msg(bad == 0, "%d of %d phrases in %s wrong (see above)", bad, lines, path);
}

START_TEST(test_shipped_positive_phrases)
{
	phrase_file(VMS_TEST_TOP "/tests/phrases/positive.tsv", 1);
}
END_TEST

START_TEST(test_shipped_negative_phrases)
{
	phrase_file(VMS_TEST_TOP "/tests/phrases/negative.tsv", 0);
}
END_TEST

/* Words plus one lattice alternative per word ("" for none). */
static size_t run_alts(const vms_rules *r, const char *const *w, const char *const *alt, size_t n)
{
	hits hs = {0};
	vms_rules_match_alts(r, w, alt, n, collect, &hs);
	return hs.n;
}

START_TEST(test_lattice_alternatives)
{
	vms_rules *r = parse("category blame\nseverity medium\nrule broke: you (broke|made) it\n"
	                     "category survey_gaming\nrule ten: give me a ten\n");
	/* a four-word phrase may be completed by one alternative ... */
	const char *give[] = {"give", "me", "a", "hand"};
	const char *give_alt[] = {NULL, NULL, NULL, "ten\0"};
	ck_assert_uint_eq(run_alts(r, give, give_alt, 4), 1);
	/* ... but not by two */
	const char *give2[] = {"give", "mean", "a", "hand"};
	const char *give2_alt[] = {NULL, "me\0", NULL, "ten\0"};
	ck_assert_uint_eq(run_alts(r, give2, give2_alt, 4), 0);
	/* and a three-word phrase needs every word on the best path: "you do
	 * it" with "made" behind "do" is too little to hold a voicemail on */
	const char *you[] = {"you", "do", "it"};
	const char *you_alt[] = {NULL, "made\0did\0", NULL};
	ck_assert_uint_eq(run_alts(r, you, you_alt, 3), 0);
	const char *you_best[] = {"you", "broke", "it"};
	ck_assert_uint_eq(run_alts(r, you_best, you_alt, 3), 1);
	vms_rules_free(r);
}
END_TEST

START_TEST(test_signoff_list)
{
	char err[256];
	vms_rules *r = vms_rules_load_signoffs(VMS_TEST_MODELS "/signoffs.txt", err, sizeof err);
	ck_assert_msg(r != NULL, "%s", err);
	ck_assert_uint_ge(run(r, "thanks bye").n, 1);
	ck_assert_uint_ge(run(r, "have a great day").n, 1);
	ck_assert_uint_ge(run(r, "okay i will let you go").n, 1);
	ck_assert_uint_eq(run(r, "the technician is coming").n, 0);
	/* sign-offs take guards: "by" the preposition is no farewell */
	ck_assert_uint_eq(run(r, "we will be with you by eleven").n, 0);
	ck_assert_uint_ge(run(r, "see you then okay bye").n, 1);
	vms_rules_free(r);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("rules");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_literal_and_alternatives);
	tcase_add_test(tc, test_gaps_prefix_and_optional_groups);
	tcase_add_test(tc, test_guards);
	tcase_add_test(tc, test_aliases_and_severity);
	tcase_add_test(tc, test_parse_errors_name_file_and_line);
	tcase_add_test(tc, test_signoff_list);
	tcase_add_test(tc, test_lattice_alternatives);
	tcase_add_test(tc, test_shipped_positive_phrases);
	tcase_add_test(tc, test_shipped_negative_phrases);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}

/*
 * test_openline.c - open-line detection on synthesized 16 kHz signals:
 * speech-like noise bursts (amplitude-modulated at 4 Hz, like syllables),
 * silence and stationary hiss, with hand-made word lists and the shipped
 * sign-off list.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

#define MAX_WORDS 64

static vms_rules *signoffs;

/* A deterministic generator (xorshift32) and a roughly Gaussian sample. */
static uint32_t rng_state = 0x12345678u;
static double rng_uniform(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return (double)rng_state / 4294967296.0;
}
static double rng_gauss(void)
{
	double s = 0.0;
	for (int i = 0; i < 12; i++)
		s += rng_uniform();
	return s - 6.0; /* unit variance */
}

typedef struct signal {
	double *x; /* accumulated in double, clipped on conversion */
	size_t n;
	double secs;
} signal;

static signal sig_new(double secs)
{
	signal s = {.n = (size_t)lrint(secs * VMS_RATE), .secs = secs};
	s.x = calloc(s.n, sizeof *s.x);
	ck_assert_ptr_nonnull(s.x);
	return s;
}

static double db_to_amp(double dbfs)
{
	return pow(10.0, dbfs / 20.0) * 32768.0;
}

/* Speech-like: white noise under a sin^2 envelope with 4 bumps per second
 * (syllables), peak RMS at dbfs, over [from, to). */
static void add_speech(signal *s, double from, double to, double dbfs)
{
	double a = db_to_amp(dbfs);
	for (size_t i = (size_t)(from * VMS_RATE); i < s->n && i < (size_t)(to * VMS_RATE); i++) {
		double t = (double)i / VMS_RATE - from;
		double env = sin(M_PI * 4.0 * t);
		s->x[i] += a * env * env * rng_gauss();
	}
}

/* Stationary noise at dbfs over [from, to): white, or pink-ish (a one-pole
 * low-pass of white, rescaled). */
static void add_hiss(signal *s, double from, double to, double dbfs, int pink)
{
	double a = db_to_amp(dbfs), y = 0.0;
	for (size_t i = (size_t)(from * VMS_RATE); i < s->n && i < (size_t)(to * VMS_RATE); i++) {
		double g = rng_gauss();
		if (pink) {
			y = 0.9 * y + g;
			g = y * 0.436; /* sqrt(1 - 0.81): unit variance again */
		}
		s->x[i] += a * g;
	}
}

/* Voiced: five harmonics under the same syllable envelope, the pitch
 * gliding from f0 to f1 within each syllable as intonation does (f0 == f1:
 * a steady note, like a horn or a beeping alarm). */
static void add_voice(signal *s, double from, double to, double dbfs, double f0, double f1)
{
	double a = db_to_amp(dbfs) * 0.6, phase = 0.0;
	for (size_t i = (size_t)(from * VMS_RATE); i < s->n && i < (size_t)(to * VMS_RATE); i++) {
		double t = (double)i / VMS_RATE - from;
		double env = sin(M_PI * 4.0 * t), within = fmod(t, 0.25) / 0.25;
		phase += 2.0 * M_PI * (f0 + (f1 - f0) * within) / VMS_RATE;
		double v = 0.0;
		for (int h = 1; h <= 5; h++)
			v += sin(phase * h) / h;
		s->x[i] += a * env * env * v;
	}
}

static int16_t *sig_pcm(const signal *s)
{
	int16_t *p = malloc(s->n * sizeof *p);
	ck_assert_ptr_nonnull(p);
	for (size_t i = 0; i < s->n; i++) {
		double v = s->x[i];
		p[i] = (int16_t)(v > 32767 ? 32767 : v < -32768 ? -32768 : lrint(v));
	}
	return p;
}

/* The share of [from, to) that vad.c hears as intonation. */
static double intonation(const signal *s, double from, double to)
{
	vms_levels lv;
	int16_t *pcm = sig_pcm(s);
	ck_assert_int_eq(vms_levels_analyse(pcm, s->n, &lv), 0);
	double share = vms_levels_intonation_share(&lv, pcm, s->n, from, to);
	vms_levels_free(&lv);
	free(pcm);
	return share;
}

typedef struct words {
	vms_word w[MAX_WORDS];
	size_t n;
} words;

/* Spread the words of sentence evenly over [from, to) on channel ch. */
static void add_words(words *ws, const char *sentence, double from, double to, int ch)
{
	char buf[512];
	char *toks[MAX_WORDS], *save = NULL;
	size_t k = 0;
	snprintf(buf, sizeof buf, "%s", sentence);
	for (char *t = strtok_r(buf, " ", &save); t && k < MAX_WORDS;
	     t = strtok_r(NULL, " ", &save))
		toks[k++] = t;
	double step = (to - from) / (double)k;
	for (size_t i = 0; i < k; i++) {
		ck_assert_uint_lt(ws->n, MAX_WORDS);
		vms_word *w = &ws->w[ws->n++];
		memset(w, 0, sizeof *w);
		w->w = vms_strdup(toks[i]);
		ck_assert_ptr_nonnull(w->w);
		w->start_s = from + step * (double)i;
		w->end_s = from + step * (double)(i + 1) - 0.02;
		w->conf = 0.9;
		w->channel = ch;
	}
}

static void words_free(words *ws)
{
	for (size_t i = 0; i < ws->n; i++)
		free(ws->w[i].w);
	ws->n = 0;
}

static void finding_free(vms_finding *f)
{
	free(f->category);
	free(f->evidence);
	free(f->rule);
	memset(f, 0, sizeof *f);
}

/* Analyse up to two channels and run the detector; returns its result and
 * leaves the finding in *f (caller frees). */
static int with_pcm; /* give the detector the samples, so it can test for a voice */
static int detect(signal *chans, int n_ch, const words *ws, int agent, double hangup_at,
                  vms_finding *f)
{
	vms_levels lv[VMS_MAX_CHANNELS];
	int16_t *pcms[VMS_MAX_CHANNELS] = {NULL, NULL};
	vms_openline_input in = {.words = ws->w,
	                         .n_words = ws->n,
	                         .channels = n_ch,
	                         .agent_channel = agent,
	                         .hangup_at = hangup_at,
	                         .duration_s = chans[0].secs,
	                         .signoffs = signoffs};
	for (int c = 0; c < n_ch; c++) {
		pcms[c] = sig_pcm(&chans[c]);
		ck_assert_int_eq(vms_levels_analyse(pcms[c], chans[c].n, &lv[c]), 0);
		in.levels[c] = &lv[c];
		in.pcm[c] = with_pcm ? pcms[c] : NULL;
		in.n_samples = chans[c].n;
	}
	memset(f, 0, sizeof *f);
	int rc = vms_openline_detect(&in, f);
	for (int c = 0; c < n_ch; c++) {
		vms_levels_free(&lv[c]);
		free(pcms[c]);
	}
	return rc;
}

static void assert_open(int rc, vms_finding *f, const char *category, double start)
{
	ck_assert_msg(rc == 1, "expected an open line (%s), got rc=%d", category, rc);
	ck_assert_int_eq(f->type, VMS_FINDING_OPEN_LINE);
	ck_assert_ptr_nonnull(f->category);
	ck_assert_msg(strcmp(f->category, category) == 0, "category %s, expected %s (%s)",
	              f->category, category, f->evidence ? f->evidence : "");
	ck_assert_msg(fabs(f->start_s - start) <= 0.3, "start_s %.2f, expected %.2f (%s)",
	              f->start_s, start, f->evidence ? f->evidence : "");
	ck_assert(f->end_s > f->start_s);
	ck_assert_ptr_nonnull(f->evidence);
	ck_assert_ptr_nonnull(f->rule);
	ck_assert(strstr(f->rule, category) != NULL);
}

static void assert_closed(int rc, vms_finding *f)
{
	ck_assert_msg(rc == 0, "unexpected open line: %s %s at %.2f s", f->category,
	              f->evidence ? f->evidence : "", f->start_s);
}

/* The message every case starts with: speech at -20 dBFS over 0.5-4.0 s,
 * ending "thanks bye" (or another close) at its very end. */
#define MSG_FROM 0.5
#define MSG_TO 4.0
#define MSG_DB -20.0
static void message(signal *s, words *ws, const char *close, int ch)
{
	add_speech(s, MSG_FROM, MSG_TO, MSG_DB);
	add_words(ws, "hi this is dave from acme your order ships monday", MSG_FROM, 3.1, ch);
	add_words(ws, close, 3.1, 3.95, ch);
}

static void setup(void)
{
	char err[VMS_ERR_MAX] = "";
	rng_state = 0x12345678u;
	with_pcm = 0;
	signoffs = vms_rules_load_signoffs(VMS_TEST_MODELS "/signoffs.txt", err, sizeof err);
	ck_assert_msg(signoffs != NULL, "%s", err);
}

static void teardown(void)
{
	vms_rules_free(signoffs);
	signoffs = NULL;
}

/* ------------------------------------------------------------------------ */

START_TEST(test_signoff_then_silence)
{
	signal s = sig_new(7.0);
	words ws = {.n = 0};
	vms_finding f;
	message(&s, &ws, "thanks bye", 0);
	assert_closed(detect(&s, 1, &ws, -1, -1.0, &f), &f);
	finding_free(&f);
	words_free(&ws);
	free(s.x);
}
END_TEST

START_TEST(test_quiet_speech_after_pause)
{
	signal s = sig_new(9.0);
	words ws = {.n = 0};
	vms_finding f;
	message(&s, &ws, "thanks bye", 0);
	add_speech(&s, 6.0, 8.0, MSG_DB - 15.0); /* off-mic, not recognised */
	assert_open(detect(&s, 1, &ws, -1, -1.0, &f), &f, "after_signoff", 6.0);
	finding_free(&f);
	words_free(&ws);
	free(s.x);
}
END_TEST

/* The same quiet trailing speech without any sign-off: found as quiet
 * speech after the message. */
START_TEST(test_quiet_speech_no_signoff)
{
	signal s = sig_new(9.0);
	words ws = {.n = 0};
	vms_finding f;
	message(&s, &ws, "please call back", 0);
	add_speech(&s, 6.0, 8.0, MSG_DB - 15.0);
	assert_open(detect(&s, 1, &ws, -1, -1.0, &f), &f, "quiet_speech_after_message", 6.0);
	finding_free(&f);
	words_free(&ws);
	free(s.x);
}
END_TEST

/* Stationary hiss after the sign-off (loop: white, pink-ish) is no speech. */
START_TEST(test_hiss_after_signoff)
{
	signal s = sig_new(8.0);
	words ws = {.n = 0};
	vms_finding f;
	message(&s, &ws, "thanks bye", 0);
	add_hiss(&s, 4.5, 8.0, -50.0, _i);
	assert_closed(detect(&s, 1, &ws, -1, -1.0, &f), &f);
	finding_free(&f);
	words_free(&ws);
	free(s.x);
}
END_TEST

/* Line hiss under the whole recording: still no open line. */
START_TEST(test_hiss_throughout)
{
	signal s = sig_new(8.0);
	words ws = {.n = 0};
	vms_finding f;
	message(&s, &ws, "thanks bye", 0);
	add_hiss(&s, 0.0, 8.0, -50.0, _i);
	assert_closed(detect(&s, 1, &ws, -1, -1.0, &f), &f);
	finding_free(&f);
	words_free(&ws);
	free(s.x);
}
END_TEST

START_TEST(test_full_speech_after_signoff)
{
	signal s = sig_new(8.0);
	words ws = {.n = 0};
	vms_finding f;
	message(&s, &ws, "thanks bye", 0);
	add_speech(&s, 5.0, 7.0, MSG_DB);
	add_words(&ws, "ugh that guy again what a waste", 5.0, 7.0, 0);
	assert_open(detect(&s, 1, &ws, -1, -1.0, &f), &f, "after_signoff", 5.0);
	ck_assert_msg(strstr(f.evidence, "waste") != NULL, "evidence: %s", f.evidence);
	finding_free(&f);
	words_free(&ws);
	free(s.x);
}
END_TEST

START_TEST(test_postscript_after_bye)
{
	signal s = sig_new(8.0);
	words ws = {.n = 0};
	vms_finding f;
	message(&s, &ws, "thanks bye", 0);
	add_speech(&s, 4.5, 7.0, MSG_DB);
	add_words(&ws, "oh and one more thing please bring the receipt", 4.5, 7.0, 0);
	assert_closed(detect(&s, 1, &ws, -1, -1.0, &f), &f);
	finding_free(&f);
	words_free(&ws);
	free(s.x);
}
END_TEST

START_TEST(test_speech_after_hangup)
{
	signal s = sig_new(9.0);
	words ws = {.n = 0};
	vms_finding f;
	message(&s, &ws, "see you monday", 0);
	add_speech(&s, 6.0, 8.0, MSG_DB - 6.0);
	assert_open(detect(&s, 1, &ws, -1, MSG_TO, &f), &f, "after_hangup", 6.0);
	finding_free(&f);
	/* A hangup mark after all the speech: nothing. */
	signal s2 = sig_new(7.0);
	words ws2 = {.n = 0};
	message(&s2, &ws2, "thanks bye", 0);
	assert_closed(detect(&s2, 1, &ws2, -1, MSG_TO + 0.2, &f), &f);
	finding_free(&f);
	words_free(&ws);
	words_free(&ws2);
	free(s.x);
	free(s2.x);
}
END_TEST

/* Stereo (loop: agent on channel 0, then 1): the other party speaks over
 * 0.5-3.0 s and goes quiet; the agent talks with them, then again, at
 * message level and without any sign-off, 3 s after they stopped. */
START_TEST(test_stereo_other_party_quiet)
{
	int agent = _i, other = 1 - _i;
	signal ch[2] = {sig_new(9.0), sig_new(9.0)};
	words ws = {.n = 0};
	vms_finding f;
	add_speech(&ch[other], 0.5, 3.0, -22.0);
	add_speech(&ch[agent], 0.5, 3.0, MSG_DB);
	add_words(&ws, "let me check on that for you", 0.5, 3.0, agent);
	add_speech(&ch[agent], 6.0, 8.0, MSG_DB);
	add_words(&ws, "well that was a waste of time", 6.0, 8.0, agent);
	assert_open(detect(ch, 2, &ws, agent, -1.0, &f), &f, "after_other_party", 6.0);
	finding_free(&f);

	/* Control: the agent stops when the other party does. */
	signal c2[2] = {sig_new(9.0), sig_new(9.0)};
	words ws2 = {.n = 0};
	add_speech(&c2[other], 0.5, 3.0, -22.0);
	add_speech(&c2[agent], 0.5, 3.0, MSG_DB);
	add_words(&ws2, "let me check on that for you", 0.5, 3.0, agent);
	assert_closed(detect(c2, 2, &ws2, agent, -1.0, &f), &f);
	finding_free(&f);
	words_free(&ws);
	words_free(&ws2);
	for (int c = 0; c < 2; c++) {
		free(ch[c].x);
		free(c2[c].x);
	}
}
END_TEST

/* The analysis itself: segments where the bursts are, none in hiss. */
START_TEST(test_levels_segments)
{
	signal s = sig_new(8.0);
	add_speech(&s, 0.5, 2.5, -20.0);
	add_speech(&s, 4.0, 5.0, -35.0);
	add_hiss(&s, 6.0, 8.0, -50.0, 0);
	int16_t *pcm = sig_pcm(&s);
	vms_levels lv;
	ck_assert_int_eq(vms_levels_analyse(pcm, s.n, &lv), 0);
	ck_assert_uint_eq(lv.n_frames, 800);
	ck_assert_uint_eq(lv.n_segs, 2);
	ck_assert_double_eq_tol(lv.segs[0].start_s, 0.5, 0.1);
	ck_assert_double_eq_tol(lv.segs[0].end_s, 2.5, 0.1);
	ck_assert_double_eq_tol(lv.segs[1].start_s, 4.0, 0.1);
	ck_assert_double_eq_tol(lv.segs[1].end_s, 5.0, 0.1);
	ck_assert_double_eq_tol(vms_levels_speech_between(&lv, 6.0, 8.0), 0.0, 1e-9);
	double loud = vms_levels_speech_level(&lv, 0.0, 3.0);
	double quiet = vms_levels_speech_level(&lv, 3.5, 5.5);
	ck_assert_msg(loud - quiet > 10.0 && loud - quiet < 20.0, "loud %.1f quiet %.1f", loud,
	              quiet);
	vms_levels_free(&lv);
	free(pcm);
	free(s.x);
}
END_TEST

/* A voice moves in pitch; a steady note and unvoiced noise do not. */
START_TEST(test_intonation_share)
{
	signal s = sig_new(4.0);
	add_voice(&s, 0.5, 3.5, -20.0, 140.0, 190.0);
	double voice = intonation(&s, 0.0, 4.0);
	free(s.x);
	s = sig_new(4.0);
	add_voice(&s, 0.5, 3.5, -20.0, 220.0, 220.0);
	double note = intonation(&s, 0.0, 4.0);
	free(s.x);
	s = sig_new(4.0);
	add_speech(&s, 0.5, 3.5, -20.0);
	double noise = intonation(&s, 0.0, 4.0);
	free(s.x);
	ck_assert_msg(voice > 0.4, "gliding voice: %.2f", voice);
	ck_assert_msg(note < 0.05, "steady note: %.2f", note);
	ck_assert_msg(noise < 0.05, "noise bursts: %.2f", noise);
}
END_TEST

/* After "thanks bye": beeps on one note (a horn, an alarm) are no open line;
 * a voice at the same level, with no words recognised, is. */
START_TEST(test_sound_after_signoff_needs_a_voice)
{
	vms_finding f;
	words ws = {.n = 0};
	signal s = sig_new(9.0);
	with_pcm = 1;
	message(&s, &ws, "thanks bye", 0);
	add_voice(&s, 5.5, 8.5, -30.0, 220.0, 220.0);
	int rc = detect(&s, 1, &ws, 0, -1, &f);
	assert_closed(rc, &f);
	finding_free(&f);
	free(s.x);
	s = sig_new(9.0);
	add_speech(&s, MSG_FROM, MSG_TO, MSG_DB);
	add_voice(&s, 5.5, 8.5, -30.0, 140.0, 185.0);
	rc = detect(&s, 1, &ws, 0, -1, &f);
	assert_open(rc, &f, "after_signoff", 5.5);
	finding_free(&f);
	free(s.x);
	words_free(&ws);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("openline");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_levels_segments);
	tcase_add_test(tc, test_signoff_then_silence);
	tcase_add_test(tc, test_quiet_speech_after_pause);
	tcase_add_test(tc, test_quiet_speech_no_signoff);
	tcase_add_loop_test(tc, test_hiss_after_signoff, 0, 2);
	tcase_add_loop_test(tc, test_hiss_throughout, 0, 2);
	tcase_add_test(tc, test_full_speech_after_signoff);
	tcase_add_test(tc, test_postscript_after_bye);
	tcase_add_test(tc, test_speech_after_hangup);
	tcase_add_loop_test(tc, test_stereo_other_party_quiet, 0, 2);
	tcase_add_test(tc, test_intonation_share);
	tcase_add_test(tc, test_sound_after_signoff_needs_a_voice);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}

/*
 * asr.c - speech to words with pocketsphinx, locally: audio never leaves
 * the building.
 *
 * One vms_asr holds one decoder (pocketsphinx decoders are not thread
 * safe), built once per worker at start-up; decoder settings come from
 * models/decoder.conf so they can be tuned without a rebuild.  We decode
 * only the speech segments the level analysis found: silence costs nothing
 * and each segment is a natural utterance for the decoder.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pocketsphinx.h>
#include <sphinxbase/err.h>
#include <ps_lattice.h>

#include "internal.h"

#define ASR_MAX_ARGS 128
#define ASR_CONF_MAX (64 * 1024)

#define ASR_ALT_SLACK 6       /* frames: an alternative starts about here */
#define ASR_ALT_MIN_POST 1e-3 /* and is not wildly improbable */
#define ASR_ALT_MAX 12        /* alternatives kept per word */

struct vms_asr {
	ps_decoder_t *ps;
	cmd_ln_t *config;
	ps_mllr_t *phone; /* telephone-channel transform, or NULL */
	ps_mllr_t *flat;  /* the identity, to undo it */
	int telephone;    /* which of the two the Gaussians hold now */
};

static int asr_parse_conf(char *text, char **argv, int max, int *argc, char *err, size_t errlen,
                          const char *path);
static int asr_add_agent_lm(vms_asr *a, const char *path, double weight, char *err, size_t errlen);
static int asr_is_filler(const char *w);
static int asr_lattice_alternatives(vms_asr *a, double t0, vms_word *w, size_t n);
static int asr_push_word(vms_word **words, size_t *n, size_t *cap, const char *w, double s,
                         double e, double conf, int channel);

/*
 * decoder.conf holds `-flag value` pairs, one per line, '#' comments: the
 * pocketsphinx command-line flags, so its documentation applies as is.
 */
static int asr_parse_conf(char *text, char **argv, int max, int *argc, char *err, size_t errlen,
                          const char *path)
{
	int lineno = 0;
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		lineno++;
		char *hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		char *save = NULL;
		char *flag = strtok_r(line, " \t\r", &save);
		if (flag == NULL)
			continue;
		char *val = strtok_r(NULL, " \t\r", &save);
		if (flag[0] != '-' || val == NULL || strtok_r(NULL, " \t\r", &save) != NULL) {
			vms_errf(err, errlen, "%s: line %d: expected '-flag value'", path, lineno);
			return -1;
		}
		if (*argc + 2 > max) {
			vms_errf(err, errlen, "%s: too many settings", path);
			return -1;
		}
		argv[(*argc)++] = flag;
		argv[(*argc)++] = val;
	}
	return 0;
}

/*
 * Interpolate the general language model with the agent-talk model built
 * from models/corpus/ (weight is the agent model's share), so that the
 * decoder expects what agents say: "pissed off" rather than "cut off".
 * Debian's pocketsphinx does not interpolate through -lmctl, so the two
 * models are joined here in an ngram_model set.  The set owns both models
 * (the general one retained from the default search) and the decoder owns
 * the set.  Costs the agent model's memory (about 2 MB) per worker.
 */
static int asr_add_agent_lm(vms_asr *a, const char *path, double weight, char *err, size_t errlen)
{
	const char *cur = ps_get_search(a->ps);
	ngram_model_t *general = cur ? ps_get_lm(a->ps, cur) : NULL;
	if (general == NULL) {
		vms_errf(err, errlen, "%s: the decoder has no general language model to join",
		         path);
		return -1;
	}
	ngram_model_t *agent = ngram_model_read(a->config, path, NGRAM_AUTO, ps_get_logmath(a->ps));
	if (agent == NULL) {
		vms_errf(err, errlen, "%s: cannot read the agent language model", path);
		return -1;
	}
	ngram_model_t *lms[2] = {ngram_model_retain(general), agent};
	char *names[2] = {(char *)"general", (char *)"agent"};
	const float32 weights[2] = {(float32)(1.0 - weight), (float32)weight};
	ngram_model_t *set = ngram_model_set_init(a->config, lms, names, weights, 2);
	if (set == NULL) {
		ngram_model_free(lms[0]);
		ngram_model_free(agent);
		vms_errf(err, errlen, "%s: cannot join it to the general language model", path);
		return -1;
	}
	if (ps_set_lm(a->ps, "agent", set) < 0 || ps_set_search(a->ps, "agent") < 0) {
		vms_errf(err, errlen, "%s: the decoder refused the joined language model", path);
		return -1;
	}
	return 0;
}

/* Build a decoder from the settings, a working dictionary (NULL: the
 * settings' own), decoder.conf and the agent language model (either may
 * be NULL). */
vms_asr *vms_asr_new(const vms_settings *s, const char *dict, const char *decoder_conf,
                     const char *agent_lm, char *err, size_t errlen)
{
	char *argv[ASR_MAX_ARGS];
	int argc = 0;
	char *text = NULL;
	char why[256];
	vms_asr *a = calloc(1, sizeof *a);
	if (a == NULL)
		return NULL;

	argv[argc++] = (char *)"-hmm";
	argv[argc++] = (char *)s->hmm;
	argv[argc++] = (char *)"-lm";
	argv[argc++] = (char *)s->lm;
	argv[argc++] = (char *)"-dict";
	argv[argc++] = (char *)(dict ? dict : s->dict);
	if (decoder_conf != NULL) {
		text = vms_read_text(decoder_conf, ASR_CONF_MAX, why, sizeof why);
		if (text == NULL) {
			vms_errf(err, errlen, "%s: %s", decoder_conf, why);
			goto fail;
		}
		if (asr_parse_conf(text, argv, ASR_MAX_ARGS, &argc, err, errlen, decoder_conf) < 0)
			goto fail;
	}
	a->config = cmd_ln_parse_r(NULL, ps_args(), argc, argv, FALSE);
	if (a->config == NULL) {
		vms_errf(err, errlen, "decoder settings rejected (check %s)",
		         decoder_conf ? decoder_conf : "the model paths");
		goto fail;
	}
	/* issue 10: no -logfn /dev/null: ps_init opened it on every call and
	 * never closed it, one descriptor per decoder per SIGHUP.  Logging
	 * goes nowhere process-wide instead (we report errors ourselves). */
	err_set_logfp(NULL);
	a->ps = ps_init(a->config);
	if (a->ps == NULL) {
		vms_errf(err, errlen,
		         "cannot load the speech model (hmm %s, lm %s, dict %s): is "
		         "pocketsphinx-en-us installed?",
		         s->hmm, s->lm, s->dict);
		goto fail;
	}
	if (agent_lm != NULL && s->agent_lm_weight > 0 &&
	    asr_add_agent_lm(a, agent_lm, s->agent_lm_weight, err, errlen) < 0)
		goto fail;
	free(text);
	return a;
fail:
	free(text);
	vms_asr_free(a);
	return NULL;
}

/* Free the decoder. */
void vms_asr_free(vms_asr *a)
{
	if (a == NULL)
		return;
	if (a->ps)
		ps_free(a->ps);
	if (a->phone)
		ps_mllr_free(a->phone);
	if (a->flat)
		ps_mllr_free(a->flat);
	if (a->config)
		cmd_ln_free_r(a->config);
	free(a);
}

/*
 * Telephone audio (G.711, GSM: 300-3400 Hz, upsampled to 16 kHz) is far
 * from the wideband speech the acoustic model was trained on; one global
 * MLLR transform of the Gaussian means, estimated at build time from real
 * telephone prompts (models/phone/build-mllr.sh), brings the model to the
 * channel.  Applying a transform makes pocketsphinx reload the means and
 * variances from the model directory (about 1 MB) and transform them:
 * a few milliseconds, paid only when a worker moves between telephone and
 * wideband files.  The identity transform undoes it: pocketsphinx has no
 * "no transform" call.
 */
int vms_asr_load_phone(vms_asr *a, const char *phone, const char *flat, char *err, size_t errlen)
{
	a->phone = ps_mllr_read(phone);
	a->flat = a->phone ? ps_mllr_read(flat) : NULL;
	if (a->flat == NULL) {
		vms_errf(err, errlen, "%s: cannot read the telephone transform (make builds it)",
		         a->phone ? flat : phone);
		return -1;
	}
	return 0;
}

/* Switch the Gaussians to the telephone transform or back (see above);
 * nothing to do without one, or when already there. */
int vms_asr_telephone(vms_asr *a, int on)
{
	if (a->phone == NULL || on == a->telephone)
		return 0;
	/* ps_update_mllr takes ownership of a reference: keep ours. */
	if (ps_update_mllr(a->ps, ps_mllr_retain(on ? a->phone : a->flat)) == NULL)
		return -1;
	a->telephone = on;
	return 0;
}

/* Silence, noise and sentence markers are not words anyone said. */
static int asr_is_filler(const char *w)
{
	return w[0] == '<' || w[0] == '[' || (w[0] == '+' && w[1] == '+');
}

/* Append one word (alternate-pronunciation suffix "(2)" stripped). */
static int asr_push_word(vms_word **words, size_t *n, size_t *cap, const char *w, double s,
                         double e, double conf, int channel)
{
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 256;
		vms_word *p = realloc(*words, ncap * sizeof *p);
		if (p == NULL)
			return -1;
		*words = p;
		*cap = ncap;
	}
	size_t len = strcspn(w, "(");
	char *copy = strndup(w, len);
	if (copy == NULL)
		return -1;
	for (char *c = copy; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	(*words)[*n] =
	        (vms_word){.w = copy, .start_s = s, .end_s = e, .conf = conf, .channel = channel};
	(*n)++;
	return 0;
}

/*
 * For each recognised word, the other words the decoder's lattice holds
 * starting at about the same time: "ten" behind "hand", "damn" behind
 * "done".  Stored as "w1\0w2\0\0" so rules can try them.
 */
static int asr_lattice_alternatives(vms_asr *a, double t0, vms_word *w, size_t n)
{
	ps_lattice_t *dag = ps_get_lattice(a->ps);
	if (dag == NULL || n == 0)
		return 0;
	logmath_t *lmath = ps_lattice_get_logmath(dag);
	char *buf[ASR_ALT_MAX];
	float post[ASR_ALT_MAX];
	for (size_t i = 0; i < n; i++) {
		int sf = (int)((w[i].start_s - t0) / VMS_FRAME_S + 0.5);
		size_t k = 0, len = 0;
		for (ps_latnode_iter_t *it = ps_latnode_iter(dag); it;
		     it = ps_latnode_iter_next(it)) {
			ps_latnode_t *node = ps_latnode_iter_node(it);
			int16 fef, lef;
			int nsf = ps_latnode_times(node, &fef, &lef);
			if (nsf < sf - ASR_ALT_SLACK || nsf > sf + ASR_ALT_SLACK)
				continue;
			const char *bw = ps_latnode_baseword(dag, node);
			if (asr_is_filler(bw) || strcmp(bw, w[i].w) == 0)
				continue;
			double pp = logmath_exp(lmath, ps_latnode_prob(dag, node, NULL));
			if (pp < ASR_ALT_MIN_POST)
				continue;
			size_t j = 0;
			while (j < k && strcmp(buf[j], bw) != 0)
				j++;
			if (j < k) { /* the same word in another node: keep the likelier */
				post[j] = pp > post[j] ? (float)pp : post[j];
				continue;
			}
			if (k == ASR_ALT_MAX)
				continue;
			post[k] = (float)pp;
			buf[k++] = (char *)bw;
			len += strlen(bw) + 1;
		}
		if (k == 0)
			continue;
		char *alts = malloc(len + 1), *p = alts;
		float *ap = malloc(k * sizeof *ap);
		if (alts == NULL || ap == NULL) {
			free(alts);
			free(ap);
			return -1;
		}
		for (size_t j = 0; j < k; j++) {
			size_t l = strlen(buf[j]) + 1;
			memcpy(p, buf[j], l);
			p += l;
			ap[j] = post[j];
		}
		*p = '\0';
		w[i].alts = alts;
		w[i].alt_post = ap;
	}
	return 0;
}

/* Free alternative hypotheses. */
void vms_wordseqs_free(vms_wordseqs *ws)
{
	for (size_t i = 0; i < ws->n; i++)
		free(ws->words[i].w);
	free(ws->words);
	free(ws->start);
	memset(ws, 0, sizeof *ws);
}

/* Number of words in sequence k. */
size_t vms_wordseqs_len(const vms_wordseqs *ws, size_t k)
{
	size_t end = k + 1 < ws->n_seqs ? ws->start[k + 1] : ws->n;
	return end - ws->start[k];
}

/* Append one segmentation (1-best or an N-best entry) as words. */
static int asr_push_segs(ps_seg_t *seg, logmath_t *lmath, double t0, int channel, vms_word **words,
                         size_t *n_words, size_t *cap)
{
	for (; seg; seg = ps_seg_next(seg)) {
		const char *w = ps_seg_word(seg);
		if (asr_is_filler(w))
			continue;
		int sf, ef;
		int32 ascr, lscr, lback;
		ps_seg_frames(seg, &sf, &ef);
		int32 post = ps_seg_prob(seg, &ascr, &lscr, &lback);
		double conf = lmath ? logmath_exp(lmath, post) : 0.0;
		if (asr_push_word(words, n_words, cap, w, t0 + sf * VMS_FRAME_S,
		                  t0 + (ef + 1) * VMS_FRAME_S, conf, channel) < 0) {
			ps_seg_free(seg);
			return -1;
		}
	}
	return 0;
}

/*
 * Decode samples [start_s, end_s) of one channel as one utterance and
 * append its words with absolute times.  With n_alts > 0 also keep the
 * runner-up hypotheses: the recogniser's second guess is often the word
 * that was said ("give me a ten" behind "give me a hand"), and the rules
 * and sign-off scan look at those too.
 */
int vms_asr_decode(vms_asr *a, const int16_t *x, size_t n, double start_s, double end_s,
                   int channel, vms_word **words, size_t *n_words, size_t *cap, vms_wordseqs *alts,
                   int n_alts)
{
	size_t from = start_s <= 0 ? 0 : (size_t)(start_s * VMS_RATE);
	size_t to = (size_t)(end_s * VMS_RATE);
	if (to > n)
		to = n;
	if (from >= to)
		return 0;
	/* A new stream for every utterance: otherwise the front end carries
	 * state (frame counter, noise and silence tracking) from the previous
	 * utterance, and a file's words would depend on what was screened
	 * before it. */
	if (ps_start_stream(a->ps) < 0 || ps_start_utt(a->ps) < 0)
		return -1;
	if (ps_process_raw(a->ps, x + from, to - from, FALSE, TRUE) < 0) {
		ps_end_utt(a->ps);
		return -1;
	}
	if (ps_end_utt(a->ps) < 0)
		return -1;
	logmath_t *lmath = ps_get_logmath(a->ps);
	double t0 = (double)from / VMS_RATE;
	size_t first = *n_words;
	if (asr_push_segs(ps_seg_iter(a->ps), lmath, t0, channel, words, n_words, cap) < 0)
		return -1;
	if (asr_lattice_alternatives(a, t0, *words + first, *n_words - first) < 0)
		return -1;
	if (alts == NULL || n_alts <= 0)
		return 0;
	ps_nbest_t *nb = ps_nbest(a->ps);
	for (int k = 0; nb && k < n_alts; k++, nb = ps_nbest_next(nb)) {
		if (alts->n_seqs == alts->cap_seqs) {
			size_t nc = alts->cap_seqs ? alts->cap_seqs * 2 : 32;
			size_t *ns = realloc(alts->start, nc * sizeof *ns);
			if (ns == NULL)
				break;
			alts->start = ns;
			alts->cap_seqs = nc;
		}
		alts->start[alts->n_seqs++] = alts->n;
		if (asr_push_segs(ps_nbest_seg(nb), NULL, t0, channel, &alts->words, &alts->n,
		                  &alts->cap) < 0)
			break;
	}
	if (nb)
		ps_nbest_free(nb);
	return 0;
}

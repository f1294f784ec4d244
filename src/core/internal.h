/*
 * internal.h - types shared inside the screening core (src/core/ only).
 *
 * The pipeline, one way: audio.c (file -> 16 kHz float channels) ->
 * vad.c (frames -> speech segments) -> asr.c (segments -> words) ->
 * rules.c / openline.c (words + levels -> findings) -> screen.c (verdict).
 */
#ifndef VMS_INTERNAL_H
#define VMS_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>

#include "vmscreen.h"

#define VMS_RATE 16000     /* what the decoder wants */
#define VMS_FRAME_S 0.010  /* analysis hop: 10 ms, as the decoder's */
#define VMS_MAX_CHANNELS 2 /* we screen mono and stereo; more is refused */

/* --- audio.c ---------------------------------------------------------- */

/* One recording, resampled to VMS_RATE, one 16-bit buffer per channel
 * (the decoder's own sample type; half the memory of float). */
typedef struct vms_audio {
	int16_t *ch[VMS_MAX_CHANNELS];
	size_t n;          /* samples per channel at VMS_RATE */
	int channels;      /* 1 or 2 */
	int source_rate;   /* the file's own sample rate */
	double duration_s; /* n / VMS_RATE */
	char format[64];   /* human-readable container/encoding */
} vms_audio;

/* Read and validate a whole file.  On failure returns -1 and writes a
 * reason (naming the problem, not the file) into why. */
/* container.c: 0 unless a FLAC or Ogg file holds more audio than the
 * frames its header declares (then -1 with why). */
int vms_container_check(int fd, off_t size, long long frames, int rate, long long *real, char *why,
                        size_t whylen);
int vms_audio_read(const char *path, const vms_settings *s, vms_audio *out, char *why,
                   size_t whylen);
void vms_audio_free(vms_audio *a);

/* Sidecar NAME.json: known keys pulled out, the rest kept as metadata. */
typedef struct vms_sidecar {
	double hangup_at;  /* < 0 when absent */
	int agent_channel; /* < 0 when absent */
	json_t *metadata;  /* object, never NULL after a successful read */
} vms_sidecar;

/* 0 when absent or read; -1 with why set when present but unusable. */
int vms_sidecar_read(const char *path, vms_sidecar *out, char *why, size_t whylen);
void vms_sidecar_free(vms_sidecar *sc);
/* NAME.json for NAME.ext, into buf; -1 on overflow. */
int vms_sidecar_path(const char *audio_path, char *buf, size_t len);

/* --- vad.c ------------------------------------------------------------ */

typedef struct vms_segment {
	double start_s, end_s;
	double level_db; /* median frame energy of the segment, dBFS */
} vms_segment;

/* Per-channel level analysis: frame energies and speech segments. */
typedef struct vms_levels {
	float *frame_db;       /* energy per 10 ms frame, dBFS */
	unsigned char *speech; /* 1 where the frame is judged speech */
	size_t n_frames;
	double noise_db;   /* estimated noise floor */
	double speech_db;  /* typical level of the loudest speech (message) */
	vms_segment *segs; /* speech segments, in time order */
	size_t n_segs;
} vms_levels;

int vms_levels_analyse(const int16_t *x, size_t n, vms_levels *out);
void vms_levels_free(vms_levels *l);
/* Seconds of speech frames in [from, to). */
double vms_levels_speech_between(const vms_levels *l, double from, double to);
/* Median energy (dB) of speech frames in [from, to); -120 if none. */
double vms_levels_speech_level(const vms_levels *l, double from, double to);
/* Share (0..1) of the speech frames in [from, to) that carry moving
 * pitch, as speech does and horns, thunder and hum do not; x is the
 * channel's samples the levels were measured on. */
double vms_levels_intonation_share(const vms_levels *l, const int16_t *x, size_t n, double from,
                                   double to);

/* --- asr.c ------------------------------------------------------------ */

typedef struct vms_asr vms_asr;

/* Word sequences: the decoder's alternative hypotheses per utterance.
 * Sequence k is words[start[k] .. start[k+1]) (the last ends at n). */
typedef struct vms_wordseqs {
	vms_word *words;
	size_t n, cap;
	size_t *start;
	size_t n_seqs, cap_seqs;
} vms_wordseqs;
void vms_wordseqs_free(vms_wordseqs *ws);
/* Bounds of sequence k. */
size_t vms_wordseqs_len(const vms_wordseqs *ws, size_t k);

/* dict overrides the settings' dictionary when not NULL. */
vms_asr *vms_asr_new(const vms_settings *s, const char *dict, const char *decoder_conf,
                     const char *agent_lm, char *err, size_t errlen);
void vms_asr_free(vms_asr *a);
/* Load the telephone-channel transform and its identity twin (both MLLR
 * files); after this vms_asr_telephone() switches between them. */
int vms_asr_load_phone(vms_asr *a, const char *phone, const char *flat, char *err, size_t errlen);
/* Decode what follows as telephone audio (1) or wideband (0). */
int vms_asr_telephone(vms_asr *a, int on);
/* Transcribe [start_s, end_s) of one channel; appends words (times absolute). */
int vms_asr_decode(vms_asr *a, const int16_t *x, size_t n, double start_s, double end_s,
                   int channel, vms_word **words, size_t *n_words, size_t *cap, vms_wordseqs *alts,
                   int n_alts);

/* --- rules.c ---------------------------------------------------------- */

typedef struct vms_rules vms_rules;
typedef struct vms_hit {
	const char *category; /* owned by the rules */
	const char *rule_id;  /* CATEGORY.ID, owned by the rules */
	const char *strength; /* sign-off lists: "strong"/"weak" */
	vms_severity severity;
	size_t first, last; /* word indices, inclusive */
} vms_hit;

/* Parse every *.rules file in dir; NULL with err naming file:line. */
vms_rules *vms_rules_load_dir(const char *dir, char *err, size_t errlen);
/* Parse one sign-off list (`strong|weak PATTERN` lines). */
vms_rules *vms_rules_load_signoffs(const char *path, char *err, size_t errlen);
/* Parse rule-pack text (for tests and the linter); name is for messages. */
vms_rules *vms_rules_parse(const char *text, const char *name, char *err, size_t errlen);
void vms_rules_free(vms_rules *r);
size_t vms_rules_count(const vms_rules *r);
/* Find every hit in a word sequence.  Calls cb for each; returns count. */
typedef void (*vms_hit_cb)(const vms_hit *h, void *arg);
size_t vms_rules_match(const vms_rules *r, const char *const *words, size_t n, vms_hit_cb cb,
                       void *arg);
/* The same, where alts[i] (may be NULL) lists other words the recogniser
 * considered at position i, as "w1\0w2\0\0". */
size_t vms_rules_match_alts(const vms_rules *r, const char *const *words, const char *const *alts,
                            size_t n, vms_hit_cb cb, void *arg);

/*
 * A run of recognised words laid out as the matcher reads them: the words,
 * their texts and their lattice alternatives, side by side.  Phrasing rules
 * and the sign-off scan both fill one from a channel or an N-best guess.
 */
typedef struct vms_rules_input {
	const vms_word **words;
	const char **text;
	const char **alts;
	size_t n, cap;
} vms_rules_input;
/* Room for n_words words or the longest guess in seqs (may be NULL). */
int vms_rules_input_init(vms_rules_input *in, size_t n_words, const vms_wordseqs *seqs);
/* The words of one channel, in the order of words[]. */
void vms_rules_input_channel(vms_rules_input *in, const vms_word *words, size_t n, int channel);
/* N-best guess k; its channel, or -1 when it holds no words. */
int vms_rules_input_seq(vms_rules_input *in, const vms_wordseqs *seqs, size_t k);
/* Append one word, growing the arrays; 0, or -1 on out-of-memory. */
int vms_rules_input_push(vms_rules_input *in, const vms_word *w);
void vms_rules_input_free(vms_rules_input *in);

/* Call cb for every literal word (prefix = 0) and prefix (prefix = 1)
 * the rules name, aliases included. */
void vms_rules_words(const vms_rules *r, void (*cb)(const char *w, int prefix, void *arg),
                     void *arg);

/* --- lexicon.c -------------------------------------------------------- */

/* Write the decoder's working dictionary (top_n language-model words plus
 * every word the packs name) to an unlinked temp file kept open as
 * *out_fd; out receives a path the decoder can open (/proc/self/fd/N). */
int vms_lexicon_build(const vms_settings *s, const vms_rules *const *packs, size_t n_packs,
                      size_t top_n, int *out_fd, char *out, size_t outlen, char *err,
                      size_t errlen);

/* --- openline.c ------------------------------------------------------- */

typedef struct vms_openline_input {
	const vms_word *words; /* all words, time order, channel tagged */
	size_t n_words;
	const vms_wordseqs *alts; /* alternative hypotheses, may be NULL */
	const vms_levels *levels[VMS_MAX_CHANNELS];
	const int16_t *pcm[VMS_MAX_CHANNELS]; /* the samples, for the speech test */
	size_t n_samples;
	int channels;
	int agent_channel; /* channel whose speech we judge */
	double hangup_at;  /* < 0 when unknown */
	double duration_s;
	const vms_rules *signoffs;
} vms_openline_input;

/* Decide whether the line was left open; fills f (evidence etc.) and
 * returns 1 when it was. */
int vms_openline_detect(const vms_openline_input *in, vms_finding *f);

/* --- classifier.cc, learned.c: the learned phrasing layer -------------- */

typedef struct vms_classifier vms_classifier;
vms_classifier *vms_classifier_load(const char *path, char *err, size_t errlen);
void vms_classifier_free(vms_classifier *c);
int vms_classifier_predict(const vms_classifier *c, const char *text, char *label, size_t labellen,
                           double *prob);

typedef struct vms_learned_params {
	double report_prob; /* a window this probable is reported (low) */
	double hold_conf;   /* ... and holds (medium) when probability times the
	                       words' mean confidence reaches this, */
	double sure_prob;   /* or when the probability reaches this */
	double sure_words;  /* with the words' mean confidence at least this */
} vms_learned_params;
/* Takes ownership of f's strings; 0 or -1 on out-of-memory. */
typedef int (*vms_finding_cb)(void *arg, const vms_finding *f);
int vms_learned_scan(const vms_classifier *c, const vms_word *const *words, size_t n,
                     const vms_learned_params *p, vms_finding_cb add, void *arg);

/* --- screen.c --------------------------------------------------------- */
const vms_rules *vms_engine_rules(const vms_engine *e);

/* --- util ------------------------------------------------------------- */
char *vms_strdup(const char *s);
char *vms_strdupf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* util.c: atomic, durable replace of path (see util.c); 0 or -1, errno. */
int vms_write_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* util.c: length of a control, bidirectional, invisible or look-alike
 * blank character at p (one a terminal or a reader must not be shown raw:
 * controls, every Unicode format character, line and paragraph separators,
 * variation selectors, Hangul fillers), else 0; *cp (when not NULL) its
 * code point. */
size_t vms_unsafe_char_len(const unsigned char *p);
size_t vms_unsafe_char(const unsigned char *p, uint32_t *cp);
void vms_errf(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
char *vms_read_text(const char *path, size_t max, char *why, size_t whylen);
char *vms_read_text_flags(const char *path, size_t max, int extra_flags, char *why, size_t whylen);
double vms_cpu_seconds(void);
/* 1 for a number word (zero..ten, oh, double, triple); see util.c. */
int vms_is_number_word(const char *w);
/* strtok_r for typed text: the next word, lower-cased, punctuation dropped. */
char *vms_next_word(char *s, char **save);

#endif

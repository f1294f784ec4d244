/*
 * vmscreen.h - the screening core: one recording in, one verdict out.
 *
 * Data flows one way: audio -> words -> findings -> verdict.  Nothing in
 * this API knows about spools, daemons or webhooks; the CLI (`vmscreen
 * check`) and the daemon (`vmscreend`) both call vms_screen_file().
 *
 * Lifetime:
 *   vms_settings  plain values (defaults, then a config file on top)
 *   vms_engine    read-only shared state built from settings: rule packs,
 *                 sign-off list, decoder settings.  Shared by all workers.
 *   vms_worker    one pocketsphinx decoder; one per thread, created once at
 *                 start-up (models load once per process, never per file).
 *   vms_result    what one file produced; owned by the caller.
 */
#ifndef VMSCREEN_H
#define VMSCREEN_H

#include <stddef.h>
#include <jansson.h>

#define VMS_VERSION "0.1.0"
#define VMS_PATH_MAX 4096
#define VMS_ERR_MAX 512

typedef enum { VMS_SEV_LOW = 1, VMS_SEV_MEDIUM = 2, VMS_SEV_HIGH = 3 } vms_severity;
typedef enum { VMS_PASS = 0, VMS_HOLD = 1 } vms_verdict;
typedef enum {
	VMS_FINDING_OPEN_LINE = 0,
	VMS_FINDING_PHRASING = 1,
	VMS_FINDING_UNSCREENABLE = 2
} vms_finding_type;

/* Screening settings: shared by CLI and daemon (the "screening" group). */
typedef struct vms_settings {
	char hmm[VMS_PATH_MAX];        /* acoustic model directory */
	char lm[VMS_PATH_MAX];         /* language model */
	char dict[VMS_PATH_MAX];       /* pronunciation dictionary */
	char models_dir[VMS_PATH_MAX]; /* rules/, signoffs.txt, decoder.conf */
	vms_severity hold_severity;    /* hold at or above this */
	double max_duration_s;         /* longer recordings are unscreenable */
	double min_duration_s;         /* shorter ones too */
	long max_file_bytes;           /* refuse to read larger files */
	int vocabulary_words;          /* most probable LM words decoded; 0 = all */
	int transcribe_all_channels;   /* stereo with a known agent: decode the other
	                                  party too (context for reviewers, 2x CPU) */
	int learned;                   /* run the learned phrasing layer
	                                  (models_dir/phrasing.ftz); default on */
	double learned_report;         /* its windows this probable are reported (low) */
	double learned_hold;           /* ... and hold when probability times word
	                                  confidence reaches this (medium) */
	double learned_sure;           /* ... or when the probability alone reaches
	                                  this and the words are heard at least */
	double learned_sure_words;     /* this well (mean word confidence) */
	double agent_lm_weight;        /* share of models_dir/agent.lm.bin (agent talk)
	                                  joined to lm, 0..0.9; 0 = lm alone */
	int phone_adapt;               /* telephone audio (sampled below 16 kHz) is
	                                  decoded with models_dir/phone.mllr; default on */
} vms_settings;

typedef struct vms_word {
	char *w;
	double start_s, end_s;
	double conf;
	int channel;
	char *alts;      /* lattice alternatives: "w1\0w2\0\0", or NULL */
	float *alt_post; /* the lattice posterior of each alternative, in order */
} vms_word;

typedef struct vms_finding {
	vms_finding_type type;
	char *category; /* phrasing: insult, ...; open_line: how it was found */
	vms_severity severity;
	double start_s, end_s;
	char *evidence;
	char *rule;
	double confidence; /* how sure the evidence is, 0..1: the lowest best-path
	                      word confidence under a rule hit, or the classifier's
	                      probability times the mean word confidence */
	double score;      /* learned layer only: the classifier's probability */
	double word_conf;  /* phrasing: the recogniser's confidence in the words
	                      (lowest under a rule hit, mean over a learned window) */
	const char *basis; /* phrasing: why this severity, in words (static) */
} vms_finding;

typedef struct vms_result {
	char *file;
	vms_verdict verdict;
	double duration_s;
	int channels;
	int sample_rate;
	unsigned transcribed; /* bit c set: channel c was transcribed */
	vms_finding *findings;
	size_t n_findings;
	vms_word *words;
	size_t n_words;
	char *metadata_json; /* sidecar keys other than the ones we use, as JSON text */
	double cpu_s;        /* CPU seconds spent screening */
} vms_result;

typedef struct vms_engine vms_engine;
typedef struct vms_worker vms_worker;

/* Settings: defaults point at Debian's model and the in-tree/installed models/. */
void vms_settings_defaults(vms_settings *s);
/* Apply the "screening" group of the configuration (a libconfig setting,
 * NULL for none; the file is parsed and its keys checked by the caller);
 * file names it in errors.  0 or -1 with err set. */
struct config_setting_t;
int vms_settings_apply(vms_settings *s, const struct config_setting_t *screening, const char *file,
                       char *err, size_t errlen);

vms_engine *vms_engine_new(const vms_settings *s, char *err, size_t errlen);
void vms_engine_free(vms_engine *e);
const vms_settings *vms_engine_settings(const vms_engine *e);

vms_worker *vms_worker_new(vms_engine *e, char *err, size_t errlen);
void vms_worker_free(vms_worker *w);
/* Whether whoever receives the recording hears every channel (a voicemail
 * played to a client: on), or only the agent's counts (a call recording
 * with a sidecar's agent_channel: off, the default).  On, every channel is
 * transcribed and screened for phrasing whatever the sidecar says. */
void vms_worker_every_channel_heard(vms_worker *w, int on);

/* Screen one recording.  sidecar may be NULL (then NAME.json beside the file
 * is used if present).  Never returns NULL except on out-of-memory; a file
 * that cannot be screened yields an `unscreenable` finding and a hold. */
vms_result *vms_screen_file(vms_worker *w, const char *path, const char *sidecar);
void vms_result_free(vms_result *r);

/* Screen a transcript without audio: every phrasing layer (rules and the
 * learned classifier) on text, words split as the recogniser writes them
 * (lower case, no punctuation).  name becomes the result's file.  For
 * `vmscreen check --text`; no decoder is needed.  NULL only on
 * out-of-memory. */
vms_result *vms_screen_text(const vms_engine *e, const char *name, const char *text);

/* The result as one JSON object (the `vmscreen check --json` shape), as a
 * malloc'd string without newline. */
char *vms_result_json(const vms_result *r);
/* The same as one jansson value (a new reference; NULL out of memory), for
 * callers that add to it and hand it on.  Dump it with vms_verdict_dumps. */
json_t *vms_result_object(const vms_result *r);
/* Such a value (with whatever a caller added) as text, the one way every
 * verdict is written: flags JSON_COMPACT or JSON_INDENT(n).  Malloc'd. */
char *vms_verdict_dumps(const json_t *v, size_t flags);

const char *vms_severity_name(vms_severity s);
int vms_severity_parse(const char *name, vms_severity *out);
const char *vms_finding_type_name(vms_finding_type t);

#endif

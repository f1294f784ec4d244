/*
 * settings.c - screening settings: built-in defaults, then the `screening`
 * group of the configuration (parsed by src/conf) on top.  The CLI and the daemon read the same
 * keys from the same file, so a verdict does not depend on who asked.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libconfig.h>

#include "internal.h"

#ifndef VMS_DATADIR
#define VMS_DATADIR "/usr/local/share/vmscreen"
#endif
#define PS_MODEL "/usr/share/pocketsphinx/model/en-us"

static int settings_is_models_dir(const char *dir);
static void settings_find_models(char *out, size_t len);
static int settings_number(const config_setting_t *g, const char *key, double *out);
static int settings_path(config_setting_t *g, const char *key, char *dst, size_t len,
                         const char *file, char *err, size_t errlen);

/* A models folder is one with rules/ and signoffs.txt in it. */
static int settings_is_models_dir(const char *dir)
{
	char p[VMS_PATH_MAX];
	struct stat st;
	if (snprintf(p, sizeof p, "%s/signoffs.txt", dir) >= (int)sizeof p)
		return 0;
	return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/*
 * Where are the rule packs?  $VMSCREEN_MODELS, then beside the running
 * binary (an in-tree build: build/rel/vmscreen -> models/), then the
 * installed data folder.
 */
static void settings_find_models(char *out, size_t len)
{
	char exe[VMS_PATH_MAX], cand[VMS_PATH_MAX];
	const char *env = getenv("VMSCREEN_MODELS");
	snprintf(out, len, "%s/models", VMS_DATADIR);
	if (env && *env) {
		snprintf(out, len, "%s", env);
		return;
	}
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash)
			*slash = '\0';
		static const char *const rel[] = {"models", "../models", "../../models",
		                                  "../share/vmscreen/models"};
		for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
			if (snprintf(cand, sizeof cand, "%s/%s", exe, rel[i]) >= (int)sizeof cand)
				continue;
			if (settings_is_models_dir(cand)) {
				char *real = realpath(cand, NULL);
				snprintf(out, len, "%s", real ? real : cand);
				free(real);
				return;
			}
		}
	}
}

/* Defaults: Debian's en-us model and the in-tree or installed models/. */
void vms_settings_defaults(vms_settings *s)
{
	memset(s, 0, sizeof *s);
	snprintf(s->hmm, sizeof s->hmm, "%s/en-us", PS_MODEL);
	snprintf(s->lm, sizeof s->lm, "%s/en-us.lm.bin", PS_MODEL);
	snprintf(s->dict, sizeof s->dict, "%s/cmudict-en-us.dict", PS_MODEL);
	settings_find_models(s->models_dir, sizeof s->models_dir);
	s->hold_severity = VMS_SEV_MEDIUM;
	s->max_duration_s = 1800.0;
	s->min_duration_s = 0.3;
	s->max_file_bytes = 512L * 1024 * 1024;
	s->vocabulary_words = 20000; /* see lexicon.c for the measurement */
	s->learned = 1;
	s->learned_report = 0.3; /* see README "How it decides" for the measurements */
	s->learned_hold = 0.7;
	s->learned_sure = 0.99; /* see README "How it decides" (issue 17) */
	s->learned_sure_words = 0.5;
	s->agent_lm_weight = 0; /* built and measured; off: see README */
	s->phone_adapt = 1;     /* see README "Telephone audio" for the measurements */
}

/* A number setting written as 1.5 or as 2: 1 when present. */
static int settings_number(const config_setting_t *g, const char *key, double *out)
{
	int i;
	if (config_setting_lookup_float(g, key, out))
		return 1;
	if (!config_setting_lookup_int(g, key, &i))
		return 0;
	*out = i;
	return 1;
}

/* Copy a string setting into a fixed buffer, failing loudly on overflow. */
static int settings_path(config_setting_t *g, const char *key, char *dst, size_t len,
                         const char *file, char *err, size_t errlen)
{
	const char *v;
	if (!config_setting_lookup_string(g, key, &v))
		return 0;
	if (strlen(v) >= len || *v == '\0') {
		vms_errf(err, errlen, "%s: screening.%s: %s", file, key,
		         *v ? "path too long" : "empty");
		return -1;
	}
	snprintf(dst, len, "%s", v);
	return 0;
}

/*
 * Apply a parsed `screening` group (NULL: nothing to apply).  The file is
 * read once, elsewhere (src/conf), which also rejects unknown keys and
 * wrong types; here are the ranges.  file names the file in errors.
 */
int vms_settings_apply(vms_settings *s, const config_setting_t *screening, const char *file,
                       char *err, size_t errlen)
{
	config_setting_t *g = (config_setting_t *)screening;
	const char *config_path = file ? file : "config";
	int rc = -1;

	if (g == NULL)
		return 0;
	if (!config_setting_is_group(g)) {
		vms_errf(err, errlen, "%s: 'screening' must be a group { ... }", config_path);
		return -1;
	}
	if (settings_path(g, "hmm", s->hmm, sizeof s->hmm, config_path, err, errlen) < 0 ||
	    settings_path(g, "lm", s->lm, sizeof s->lm, config_path, err, errlen) < 0 ||
	    settings_path(g, "dict", s->dict, sizeof s->dict, config_path, err, errlen) < 0 ||
	    settings_path(g, "models_dir", s->models_dir, sizeof s->models_dir, config_path, err,
	                  errlen) < 0)
		goto out;
	const char *sev;
	if (config_setting_lookup_string(g, "hold_severity", &sev) &&
	    vms_severity_parse(sev, &s->hold_severity) < 0) {
		vms_errf(err, errlen,
		         "%s: screening.hold_severity: '%s' is not low, medium or high",
		         config_path, sev);
		goto out;
	}
	double d;
	int i;
	if (settings_number(g, "max_duration_s", &d)) {
		if (d <= 0 || d > 86400) {
			vms_errf(err, errlen, "%s: screening.max_duration_s must be 1 to 86400",
			         config_path);
			goto out;
		}
		s->max_duration_s = d;
	}
	if (settings_number(g, "min_duration_s", &d)) {
		if (d < 0 || d > 60) {
			vms_errf(err, errlen, "%s: screening.min_duration_s must be 0 to 60",
			         config_path);
			goto out;
		}
		s->min_duration_s = d;
	}
	if (config_setting_lookup_int(g, "vocabulary_words", &i)) {
		if (i < 0 || i > 1000000) {
			vms_errf(err, errlen,
			         "%s: screening.vocabulary_words must be 0 (all) to 1000000",
			         config_path);
			goto out;
		}
		s->vocabulary_words = i;
	}
	if (config_setting_lookup_bool(g, "transcribe_all_channels", &i))
		s->transcribe_all_channels = i;
	if (config_setting_lookup_bool(g, "learned", &i))
		s->learned = i;
	if (config_setting_lookup_bool(g, "phone_adapt", &i))
		s->phone_adapt = i;
	static const char *const probs[] = {"learned_report", "learned_hold", "learned_sure",
	                                    "learned_sure_words"};
	double *dst[] = {&s->learned_report, &s->learned_hold, &s->learned_sure,
	                 &s->learned_sure_words};
	for (size_t k = 0; k < sizeof probs / sizeof *probs; k++) {
		if (!settings_number(g, probs[k], &d))
			continue;
		if (!(d > 0 && d <= 1)) {
			vms_errf(err, errlen, "%s: screening.%s must be above 0 and at most 1",
			         config_path, probs[k]);
			goto out;
		}
		*dst[k] = d;
	}
	if (settings_number(g, "agent_lm_weight", &d)) {
		if (!(d >= 0 && d <= 0.9)) {
			vms_errf(err, errlen, "%s: screening.agent_lm_weight must be 0 to 0.9",
			         config_path);
			goto out;
		}
		s->agent_lm_weight = d;
	}
	if (config_setting_lookup_int(g, "max_file_mb", &i)) {
		if (i <= 0 || i > 16384) {
			vms_errf(err, errlen, "%s: screening.max_file_mb must be 1 to 16384",
			         config_path);
			goto out;
		}
		s->max_file_bytes = (long)i * 1024 * 1024;
	}
	rc = 0;
out:
	return rc;
}

const char *vms_severity_name(vms_severity s)
{
	switch (s) {
	case VMS_SEV_LOW:
		return "low";
	case VMS_SEV_MEDIUM:
		return "medium";
	case VMS_SEV_HIGH:
		return "high";
	}
	return "unknown";
}

int vms_severity_parse(const char *name, vms_severity *out)
{
	static const vms_severity all[] = {VMS_SEV_LOW, VMS_SEV_MEDIUM, VMS_SEV_HIGH};
	for (size_t i = 0; i < 3; i++)
		if (strcasecmp(name, vms_severity_name(all[i])) == 0) {
			*out = all[i];
			return 0;
		}
	return -1;
}

const char *vms_finding_type_name(vms_finding_type t)
{
	switch (t) {
	case VMS_FINDING_OPEN_LINE:
		return "open_line";
	case VMS_FINDING_PHRASING:
		return "phrasing";
	case VMS_FINDING_UNSCREENABLE:
		return "unscreenable";
	}
	return "unknown";
}

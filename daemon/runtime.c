/*
 * runtime.c - build everything one configuration describes (daemon keys,
 * spools, screening engine with one decoder per worker) as a
 * single reference-counted value, so that a reload is all or nothing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "daemon.h"

static int dconf_int(const config_t *cfg, const char *key, int lo, int hi, int *out, char *err,
                     size_t errlen);
static int dconf_double(const config_t *cfg, const char *key, double lo, double hi, double *out,
                        char *err, size_t errlen);
static int dconf_bool(const config_t *cfg, const char *key, int *out, char *err, size_t errlen);
static void runtime_free(runtime *rt);

/* An optional integer key within [lo, hi]; absent keeps *out. */
static int dconf_int(const config_t *cfg, const char *key, int lo, int hi, int *out, char *err,
                     size_t errlen)
{
	config_setting_t *s = config_lookup(cfg, key);
	long long v;

	if (s == NULL)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_INT &&
	    config_setting_type(s) != CONFIG_TYPE_INT64) {
		snprintf(err, errlen, "line %d: %s must be an integer",
		         config_setting_source_line(s), key);
		return -1;
	}
	v = config_setting_get_int64(s);
	if (v < lo || v > hi) {
		snprintf(err, errlen, "line %d: %s = %lld: must be %d to %d",
		         config_setting_source_line(s), key, v, lo, hi);
		return -1;
	}
	*out = (int)v;
	return 0;
}

/* An optional number key within [lo, hi]; integers are accepted too. */
static int dconf_double(const config_t *cfg, const char *key, double lo, double hi, double *out,
                        char *err, size_t errlen)
{
	config_setting_t *s = config_lookup(cfg, key);
	double v;

	if (s == NULL)
		return 0;
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		v = (double)config_setting_get_int64(s);
		break;
	case CONFIG_TYPE_FLOAT:
		v = config_setting_get_float(s);
		break;
	default:
		snprintf(err, errlen, "line %d: %s must be a number", config_setting_source_line(s),
		         key);
		return -1;
	}
	if (!(v >= lo && v <= hi)) {
		snprintf(err, errlen, "line %d: %s = %g: must be %g to %g",
		         config_setting_source_line(s), key, v, lo, hi);
		return -1;
	}
	*out = v;
	return 0;
}

/* An optional boolean key. */
static int dconf_bool(const config_t *cfg, const char *key, int *out, char *err, size_t errlen)
{
	config_setting_t *s = config_lookup(cfg, key);

	if (s == NULL)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
		snprintf(err, errlen, "line %d: %s must be true or false",
		         config_setting_source_line(s), key);
		return -1;
	}
	*out = config_setting_get_bool(s);
	return 0;
}

/* The daemon's own top-level keys, with their defaults. */
int dconf_load(const config_t *cfg, dconf *dc, char *err, size_t errlen)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	const char *s;
	int mfree = 64;

	memset(dc, 0, sizeof *dc);
	dc->workers = ncpu > 0 ? (ncpu > 64 ? 64 : (int)ncpu) : 1;
	dc->queue_size = 32;
	dc->rescan_interval_s = 5.0;
	dc->settle_ms = 1000;
	dc->max_attempts = 5;
	dc->retry_interval_s = 30.0;
	dc->metrics_interval_s = 5.0;
	dc->stop_timeout_s = 30.0;
	if (dconf_int(cfg, "workers", 1, 64, &dc->workers, err, errlen) < 0 ||
	    dconf_int(cfg, "queue_size", 1, 4096, &dc->queue_size, err, errlen) < 0 ||
	    dconf_double(cfg, "rescan_interval_s", 0.2, 3600, &dc->rescan_interval_s, err, errlen) <
	            0 ||
	    dconf_int(cfg, "settle_ms", 0, 600000, &dc->settle_ms, err, errlen) < 0 ||
	    dconf_int(cfg, "min_free_mb", 0, 1 << 30, &mfree, err, errlen) < 0 ||
	    dconf_int(cfg, "max_attempts", 1, 1000, &dc->max_attempts, err, errlen) < 0 ||
	    dconf_double(cfg, "retry_interval_s", 0.1, 86400, &dc->retry_interval_s, err, errlen) <
	            0 ||
	    dconf_double(cfg, "metrics_interval_s", 0.5, 3600, &dc->metrics_interval_s, err,
	                 errlen) < 0 ||
	    dconf_double(cfg, "stop_timeout_s", 0, 3600, &dc->stop_timeout_s, err, errlen) < 0 ||
	    dconf_bool(cfg, "allow_root", &dc->allow_root, err, errlen) < 0 ||
	    dconf_bool(cfg, "run_as_root", &dc->allow_root, err, errlen) < 0)
		return -1;
	dc->min_free_mb = mfree;
	if (config_lookup_string(cfg, "metrics_file", &s) == CONFIG_TRUE) {
		if (s[0] != '\0' && s[0] != '/') {
			snprintf(err, errlen, "metrics_file \"%s\": must be an absolute path", s);
			return -1;
		}
		snprintf(dc->metrics_file, sizeof dc->metrics_file, "%s", s);
	} else if (config_lookup(cfg, "metrics_file") != NULL) {
		snprintf(err, errlen, "metrics_file: must be a string");
		return -1;
	}
	return 0;
}

/*
 * Load a configuration completely: parse, check every key, build the
 * engine and n_workers decoders (models load here, once).  The alert hub
 * is not part of it: it owns its outbox for the life of the process.  NULL with err set when
 * anything is wrong; nothing half-built leaks.
 */
runtime *runtime_load(const char *config_path, config_t *parsed, int n_workers, char *err,
                      size_t errlen)
{
	char why[VMS_ERR_MAX + 256];
	runtime *rt = calloc(1, sizeof *rt);

	if (rt == NULL) {
		snprintf(err, errlen, "out of memory");
		if (parsed != NULL)
			config_destroy(parsed);
		return NULL;
	}
	atomic_init(&rt->refs, 1);
	if (parsed != NULL) {
		rt->cfg = *parsed; /* the config_t moves: its root is heap memory */
	} else if (vms_conf_read(&rt->cfg, config_path, err, errlen) < 0) {
		free(rt);
		return NULL;
	}
	if (dconf_load(&rt->cfg, &rt->dc, why, sizeof why) < 0) {
		snprintf(err, errlen, "%s: %s", config_path, why);
		goto fail;
	}
	if (spool_conf_load(&rt->cfg, &rt->sc, why, sizeof why) < 0) {
		snprintf(err, errlen, "%s: %s", config_path, why);
		goto fail;
	}
	vms_settings_defaults(&rt->settings);
	if (vms_settings_apply(&rt->settings, config_lookup(&rt->cfg, "screening"), config_path,
	                       err, errlen) < 0)
		goto fail;
	if ((rt->engine = vms_engine_new(&rt->settings, err, errlen)) == NULL)
		goto fail;
	if (n_workers <= 0)
		n_workers = rt->dc.workers;
	if ((rt->vw = calloc((size_t)n_workers, sizeof *rt->vw)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	rt->n_vw = n_workers;
	for (int i = 0; i < n_workers; i++)
		if ((rt->vw[i] = vms_worker_new(rt->engine, err, errlen)) == NULL)
			goto fail;
	return rt;
fail:
	runtime_free(rt);
	return NULL;
}

/* Free a runtime and everything in it. */
static void runtime_free(runtime *rt)
{
	if (rt == NULL)
		return;
	for (int i = 0; i < rt->n_vw; i++)
		vms_worker_free(rt->vw[i]);
	free(rt->vw);
	vms_engine_free(rt->engine);
	spool_conf_free(&rt->sc);
	config_destroy(&rt->cfg);
	free(rt);
}

/* Take a reference. */
void runtime_ref(runtime *rt)
{
	atomic_fetch_add(&rt->refs, 1);
}

/* Drop a reference; the last one frees. */
void runtime_unref(runtime *rt)
{
	if (rt != NULL && atomic_fetch_sub(&rt->refs, 1) == 1)
		runtime_free(rt);
}

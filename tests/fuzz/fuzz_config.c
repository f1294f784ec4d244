/*
 * fuzz_config.c - the libconfig file both programs read, through the one
 * reader (vms_conf_read, src/conf: parse and schema) and every part taken
 * from it: the `screening` group (vms_settings_apply, src/core), the
 * daemon's own keys (dconf_load, daemon/runtime.c), the spools and audit
 * log (spool_conf_load, src/spool) and the webhooks (alert_hub_new,
 * src/alert: validation only, no threads, no outbox).
 *
 * Inputs naming @include are skipped: an include reads whatever file the
 * path names, which makes a run depend on the machine (and libconfig 1.5
 * has no hook to confine it).  Checked beyond the sanitizers: a refusal
 * says why; accepted values are within their documented ranges.
 */
#include <curl/curl.h>

#include "core/internal.h"
#include "../../daemon/daemon.h"
#include "fuzz.h"

static void config_quiet(int prio, const char *msg)
{
	(void)prio;
	(void)msg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	char path[512], err[1024];
	vms_settings s;
	config_t cfg;

	if (!ready) {
		setenv("VMSCREEN_MODELS", VMS_TEST_MODELS, 1);
		/* held for the process: each hub's init/cleanup then only counts */
		curl_global_init(CURL_GLOBAL_DEFAULT);
		spool_set_logger(config_quiet);
		ready = 1;
	}
	for (size_t i = 0; i + 7 <= size; i++)
		if (strncasecmp((const char *)data + i, "include", 7) == 0)
			return 0;

	fuzz_path(path, sizeof path, "vmscreend.conf");
	fuzz_write(path, data, size);

	err[0] = '\0';
	if (vms_conf_read(&cfg, path, err, sizeof err) < 0) {
		fuzz_check_reason("vms_conf_read", err, sizeof err, 0);
		unlink(path);
		return 0;
	}
	vms_settings_defaults(&s);
	err[0] = '\0';
	if (vms_settings_apply(&s, config_lookup(&cfg, "screening"), path, err, sizeof err) < 0) {
		fuzz_check_reason("vms_settings_apply", err, sizeof err, 0);
	} else if (s.hold_severity < VMS_SEV_LOW || s.hold_severity > VMS_SEV_HIGH ||
	           !(s.max_duration_s > 0 && s.max_duration_s <= 86400) ||
	           !(s.min_duration_s >= 0 && s.min_duration_s <= 60) || s.max_file_bytes <= 0 ||
	           !memchr(s.hmm, '\0', sizeof s.hmm) || !memchr(s.lm, '\0', sizeof s.lm) ||
	           !memchr(s.dict, '\0', sizeof s.dict) ||
	           !memchr(s.models_dir, '\0', sizeof s.models_dir)) {
		abort();
	}

	{
		dconf dc;
		spool_conf sc;
		err[0] = '\0';
		if (dconf_load(&cfg, &dc, err, sizeof err) < 0)
			fuzz_check_reason("dconf_load", err, sizeof err, 0);
		else if (dc.workers < 1 || dc.workers > 64 || dc.queue_size < 1 ||
		         dc.max_attempts < 1 || dc.min_free_mb < 0 ||
		         !(dc.rescan_interval_s >= 0.2) || !(dc.retry_interval_s >= 0.1))
			abort();
		err[0] = '\0';
		if (spool_conf_load(&cfg, &sc, err, sizeof err) < 0) {
			fuzz_check_reason("spool_conf_load", err, sizeof err, 0);
		} else {
			if (sc.n_spools == 0 || sc.audit_log[0] != '/')
				abort();
			for (size_t i = 0; i < sc.n_spools; i++)
				if (sc.spools[i].path[0] != '/' || sc.spools[i].name[0] == '\0')
					abort();
			spool_conf_free(&sc);
		}
		err[0] = '\0';
		alert_hub *h = alert_hub_new(&cfg, err, sizeof err);
		if (h == NULL)
			fuzz_check_reason("alert_hub_new", err, sizeof err, 0);
		alert_hub_free(h);
		config_destroy(&cfg);
	}
	unlink(path);
	return 0;
}

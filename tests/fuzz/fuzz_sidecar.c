/*
 * fuzz_sidecar.c - the sidecar reader (src/core/sidecar.c) on arbitrary
 * bytes, and what the screening result makes of it.
 *
 * The input is written to NAME.json and read with vms_sidecar_read().
 * Checked beyond the sanitizers: a refusal says why in UTF-8 (the reason
 * becomes an unscreenable finding's evidence), an accepted sidecar has
 * hangup_at/agent_channel in range, and its metadata survives the trip
 * through vms_result_json() (the `check --json` / verdict-file object).
 * The input as a path also goes through vms_sidecar_path().
 */
#include "core/internal.h"
#include "fuzz.h"

/* vms_result_json() of a result carrying this metadata / finding; the
 * output must parse and hold what went in. */
static void sidecar_result_json(char *metadata_json, const char *evidence)
{
	vms_finding f = {.type = VMS_FINDING_UNSCREENABLE,
	                 .category = "unreadable",
	                 .severity = VMS_SEV_HIGH,
	                 .evidence = (char *)evidence,
	                 .rule = "unscreenable.unreadable"};
	vms_result r = {.file = "in.wav", .verdict = evidence ? VMS_HOLD : VMS_PASS};
	if (evidence) {
		r.findings = &f;
		r.n_findings = 1;
	}
	r.metadata_json = metadata_json;
	char *out = vms_result_json(&r);
	json_error_t jerr;
	json_t *o = out ? json_loads(out, 0, &jerr) : NULL;
	if (o == NULL)
		abort();
	if (evidence) {
		json_t *a = json_array_get(json_object_get(o, "alerts"), 0);
		const char *ev = json_string_value(json_object_get(a, "evidence"));
		if (ev == NULL || strcmp(ev, evidence) != 0)
			abort();
	}
	if (metadata_json) {
		json_t *want = json_loads(metadata_json, 0, &jerr);
		if (want == NULL || !json_equal(want, json_object_get(o, "metadata")))
			abort(); /* metadata lost on the way to the verdict */
		json_decref(want);
	}
	json_decref(o);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[512], why[VMS_ERR_MAX], scpath[VMS_PATH_MAX];
	vms_sidecar sc;

	fuzz_path(path, sizeof path, "in.json");
	fuzz_write(path, data, size);
	why[0] = '\0';
	if (vms_sidecar_read(path, &sc, why, sizeof why) < 0) {
		fuzz_check_reason("vms_sidecar_read", why, sizeof why, 1);
		sidecar_result_json(NULL, why);
	} else {
		if (sc.metadata == NULL || !json_is_object(sc.metadata) ||
		    (sc.hangup_at != -1.0 && !(sc.hangup_at >= 0 && sc.hangup_at <= 1e6)) ||
		    sc.agent_channel < -1 || sc.agent_channel >= VMS_MAX_CHANNELS ||
		    json_object_get(sc.metadata, "hangup_at") ||
		    json_object_get(sc.metadata, "agent_channel"))
			abort();
		char *meta = json_dumps(sc.metadata, JSON_COMPACT | JSON_SORT_KEYS);
		if (meta == NULL)
			abort();
		sidecar_result_json(meta, NULL);
		free(meta);
	}
	vms_sidecar_free(&sc);
	unlink(path);

	/* the bytes as an audio path */
	char *name = fuzz_text(data, size);
	if (vms_sidecar_path(name, scpath, sizeof scpath) == 0) {
		size_t n = strlen(scpath);
		if (n < 5 || strcmp(scpath + n - 5, ".json") != 0)
			abort();
	}
	free(name);
	return 0;
}

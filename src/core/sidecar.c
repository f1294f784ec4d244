/*
 * sidecar.c - NAME.json beside NAME.wav: what the PBX knew about the call.
 *
 * Two keys mean something to screening: `hangup_at` (seconds from the
 * start: when the PBX ended the call) and `agent_channel` (0-based).  Every
 * other key is carried through untouched as metadata.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "internal.h"

#define SIDECAR_MAX (256 * 1024) /* a sidecar is metadata, not a payload */

/* NAME.json for NAME.ext: replace the extension (or append). */
int vms_sidecar_path(const char *audio_path, char *buf, size_t len)
{
	const char *slash = strrchr(audio_path, '/');
	const char *dot = strrchr(audio_path, '.');
	size_t stem = (dot != NULL && (slash == NULL || dot > slash)) ? (size_t)(dot - audio_path)
	                                                              : strlen(audio_path);
	int n = snprintf(buf, len, "%.*s.json", (int)stem, audio_path);
	return (n < 0 || (size_t)n >= len) ? -1 : 0;
}

/*
 * jansson quotes the offending token in its message, cut at a byte (so
 * maybe mid-character) and raw: a reason must stay printable UTF-8, since
 * it becomes the verdict's evidence (json_string() refused it and the
 * evidence was dropped).  Found by tests/fuzz/fuzz_sidecar
 * (tests/fuzz/regressions/sidecar/error-token-not-utf8.json).
 */
static void sidecar_printable(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			*s = '?';
}

/*
 * Read a sidecar.  Absent is fine (0, empty metadata).  Present but broken
 * is an error: the PBX meant to tell us something and we cannot tell what.
 */
int vms_sidecar_read(const char *path, vms_sidecar *out, char *why, size_t whylen)
{
	struct stat st;
	char reason[256];
	json_error_t jerr;

	out->hangup_at = -1.0;
	out->agent_channel = -1;
	out->metadata = json_object();
	if (out->metadata == NULL)
		return -1;
	if (path == NULL || lstat(path, &st) < 0)
		return 0;
	char *text = vms_read_text(path, SIDECAR_MAX, reason, sizeof reason);
	if (text == NULL) {
		vms_errf(why, whylen, "sidecar %s: %s", path, reason);
		return -1;
	}
	json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
	free(text);
	if (root == NULL || !json_is_object(root)) {
		sidecar_printable(jerr.text);
		vms_errf(why, whylen, "sidecar %s: %s", path,
		         root ? "not a JSON object" : jerr.text);
		json_decref(root);
		return -1;
	}
	const char *key;
	json_t *val;
	json_object_foreach(root, key, val)
	{
		if (strcmp(key, "hangup_at") == 0) {
			if (!json_is_number(val) || json_number_value(val) < 0 ||
			    json_number_value(val) > 1e6) {
				vms_errf(why, whylen,
				         "sidecar %s: hangup_at must be seconds from the start",
				         path);
				json_decref(root);
				return -1;
			}
			out->hangup_at = json_number_value(val);
		} else if (strcmp(key, "agent_channel") == 0) {
			if (!json_is_integer(val) || json_integer_value(val) < 0 ||
			    json_integer_value(val) >= VMS_MAX_CHANNELS) {
				vms_errf(why, whylen, "sidecar %s: agent_channel must be 0 or 1",
				         path);
				json_decref(root);
				return -1;
			}
			out->agent_channel = (int)json_integer_value(val);
		} else if (strcasecmp(key, "hangup_at") == 0 ||
		           strcasecmp(key, "agent_channel") == 0 ||
		           strcasecmp(key, "hangup-at") == 0 ||
		           strcasecmp(key, "agent-channel") == 0 ||
		           strcasecmp(key, "hangupat") == 0 ||
		           strcasecmp(key, "agentchannel") == 0) {
			/* issue 10: "Hangup_At" was kept as metadata and the recording
			 * screened without its hangup mark */
			char shown[64];
			snprintf(shown, sizeof shown, "%s", key);
			sidecar_printable(shown);
			vms_errf(why, whylen,
			         "sidecar %s: key '%s' is not 'hangup_at' or 'agent_channel' as "
			         "written (keys are lower case with an underscore)",
			         path, shown);
			json_decref(root);
			return -1;
		} else {
			json_object_set(out->metadata, key, val);
		}
	}
	json_decref(root);
	return 0;
}

/* Drop the metadata reference. */
void vms_sidecar_free(vms_sidecar *sc)
{
	json_decref(sc->metadata);
	sc->metadata = NULL;
}

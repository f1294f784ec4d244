/*
 * fuzz_audio.c - the audio reader (src/core/audio.c) on arbitrary bytes.
 *
 * The input is written to a file and read with vms_audio_read() under the
 * default settings with small limits (60 s, 4 MB), so a harness cannot run
 * out of memory on a legitimately long file.  A first byte of 1 to 4 picks
 * a headerless telephony name (.ulaw, .alaw, .gsm, .sln) and is dropped;
 * anything else is read whole as NAME.wav (libsndfile sniffs the header:
 * WAV, FLAC, Ogg...).  Audio that reads is then analysed by the level/VAD
 * stage (vad.c), the next thing the daemon does with it.
 *
 * Checked beyond the sanitizers: a refusal always says why (in UTF-8), and
 * a success yields 1-2 channels of n > 0 samples with a matching duration.
 */
#include <math.h>

#include "core/internal.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = {"in.wav", "in.ulaw", "in.alaw", "in.gsm", "in.sln"};
	static vms_settings s;
	static int ready;
	char path[512], why[VMS_ERR_MAX];
	vms_audio a;

	if (!ready) {
		setenv("VMSCREEN_MODELS", VMS_TEST_MODELS, 1);
		vms_settings_defaults(&s);
		s.max_duration_s = 60.0;
		s.max_file_bytes = 4L * 1024 * 1024;
		ready = 1;
	}
	size_t kind = 0;
	if (size > 0 && data[0] >= 1 && data[0] <= 4) {
		kind = data[0];
		data++;
		size--;
	}
	fuzz_path(path, sizeof path, names[kind]);
	fuzz_write(path, data, size);
	why[0] = '\0';
	if (vms_audio_read(path, &s, &a, why, sizeof why) < 0) {
		fuzz_check_reason("vms_audio_read", why, sizeof why, 1);
		if (a.ch[0] != NULL || a.ch[1] != NULL)
			abort(); /* a refusal frees what it read */
	} else {
		if (a.channels < 1 || a.channels > VMS_MAX_CHANNELS || a.n == 0 ||
		    fabs(a.duration_s - (double)a.n / VMS_RATE) > 1e-9 ||
		    a.duration_s < s.min_duration_s || a.source_rate < 8000)
			abort();
		for (int c = 0; c < a.channels; c++) {
			vms_levels lv;
			if (a.ch[c] == NULL || vms_levels_analyse(a.ch[c], a.n, &lv) < 0)
				abort();
			for (size_t i = 0; i < lv.n_segs; i++)
				if (!(lv.segs[i].start_s <= lv.segs[i].end_s) ||
				    lv.segs[i].end_s > a.duration_s + 1.0)
					abort();
			(void)vms_levels_speech_between(&lv, 0.0, a.duration_s);
			(void)vms_levels_speech_level(&lv, 0.0, a.duration_s);
			vms_levels_free(&lv);
		}
		vms_audio_free(&a);
	}
	unlink(path);
	return 0;
}

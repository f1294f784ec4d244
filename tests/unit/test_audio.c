/*
 * test_audio.c - the reader (every format it claims, refusals with the
 * right reason) and the sidecar parser.  Files are written with libsndfile
 * into a mkdtemp directory, removed at the end.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sndfile.h>

#include "core/internal.h"

static char tmpdir[256];

/* The test signal: a 300 Hz tone with 4 Hz amplitude modulation. */
static double signal_at(double t, int ch)
{
	double am = 0.55 + 0.45 * sin(2.0 * M_PI * 4.0 * t);
	return 0.5 * am * sin(2.0 * M_PI * (300.0 + 50.0 * ch) * t);
}

/* Write secs of the test signal (scaled by gain) to path; 0 or -1. */
static int write_signal(const char *path, int format, int channels, int rate, double secs,
                        double gain)
{
	SF_INFO info = {.samplerate = rate, .channels = channels, .format = format};
	if (!sf_format_check(&info))
		return -1;
	SNDFILE *sf = sf_open(path, SFM_WRITE, &info);
	if (sf == NULL)
		return -1;
	sf_count_t n = (sf_count_t)lrint(secs * rate);
	float *buf = malloc(sizeof *buf * (size_t)n * (size_t)channels);
	ck_assert_ptr_nonnull(buf);
	for (sf_count_t i = 0; i < n; i++)
		for (int c = 0; c < channels; c++)
			buf[i * channels + c] = (float)(gain * signal_at((double)i / rate, c));
	sf_count_t put = sf_writef_float(sf, buf, n);
	free(buf);
	sf_close(sf);
	return put == n ? 0 : -1;
}

static void tmp_path(char *buf, size_t len, const char *name)
{
	int n = snprintf(buf, len, "%s/%s", tmpdir, name);
	ck_assert(n > 0 && (size_t)n < len);
}

static void setup(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/vms-test-audio-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

/* rm -r tmpdir (flat, plus one level of subdirectories). */
static void rm_tree(const char *dir)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return;
	struct dirent *e;
	char p[512];
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		struct stat st;
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
			rm_tree(p);
		else
			unlink(p);
	}
	closedir(d);
	rmdir(dir);
}

static void teardown(void)
{
	rm_tree(tmpdir);
}

/* Read path expecting failure; return why (static). */
static const char *expect_refusal(const char *path, const vms_settings *s)
{
	static char why[VMS_ERR_MAX];
	vms_audio a;
	why[0] = '\0';
	int rc = vms_audio_read(path, s, &a, why, sizeof why);
	if (rc == 0)
		vms_audio_free(&a);
	ck_assert_msg(rc == -1, "%s: read succeeded, expected a refusal", path);
	ck_assert_msg(why[0] != '\0', "%s: refusal without a reason", path);
	return why;
}

#define ck_assert_why(why, word)                                                                   \
	ck_assert_msg(strstr((why), (word)) != NULL, "reason \"%s\" lacks \"%s\"", (why), (word))

/* ------------------------------------------------------------------------ */

typedef struct fmt_case {
	const char *name;
	const char *ext;
	int format;
	double tol; /* relative duration tolerance */
	int fixed;  /* headerless / 8 kHz mono only */
} fmt_case;

static const fmt_case formats[] = {
        {"wav-pcm16", "wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 0.03, 0},
        {"wav-pcm24", "wav", SF_FORMAT_WAV | SF_FORMAT_PCM_24, 0.03, 0},
        {"wav-pcm32", "wav", SF_FORMAT_WAV | SF_FORMAT_PCM_32, 0.03, 0},
        {"wav-float", "wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 0.03, 0},
        {"wav-ulaw", "wav", SF_FORMAT_WAV | SF_FORMAT_ULAW, 0.03, 0},
        {"wav-alaw", "wav", SF_FORMAT_WAV | SF_FORMAT_ALAW, 0.03, 0},
        {"wav-gsm", "wav", SF_FORMAT_WAV | SF_FORMAT_GSM610, 0.05, 0},
        {"flac", "flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 0.03, 0},
        {"ogg-vorbis", "ogg", SF_FORMAT_OGG | SF_FORMAT_VORBIS, 0.05, 0},
        {"raw-ulaw", "ulaw", SF_FORMAT_RAW | SF_FORMAT_ULAW, 0.03, 1},
        {"raw-alaw", "alaw", SF_FORMAT_RAW | SF_FORMAT_ALAW, 0.03, 1},
        {"raw-gsm", "gsm", SF_FORMAT_RAW | SF_FORMAT_GSM610, 0.05, 1},
        {"raw-sln", "sln", SF_FORMAT_RAW | SF_FORMAT_PCM_16 | SF_ENDIAN_LITTLE, 0.03, 1},
};
static const int rates[] = {8000, 11025, 22050, 44100, 48000};
#define N_FORMATS (sizeof formats / sizeof formats[0])
#define N_RATES (sizeof rates / sizeof rates[0])

/* One format (loop index = format): every rate and channel count it
 * supports must read back right; at least one combination must exist. */
START_TEST(test_formats_read_back)
{
	const fmt_case *fc = &formats[_i];
	vms_settings s;
	vms_settings_defaults(&s);
	int tried = 0;
	for (size_t r = 0; r < N_RATES; r++) {
		for (int ch = 1; ch <= 2; ch++) {
			int rate = rates[r];
			if (fc->fixed && (rate != 8000 || ch != 1))
				continue;
			char name[128], path[512], why[VMS_ERR_MAX] = "";
			snprintf(name, sizeof name, "%s-%d-%d.%s", fc->name, rate, ch, fc->ext);
			tmp_path(path, sizeof path, name);
			if (write_signal(path, fc->format, ch, rate, 1.5, 1.0) < 0) {
				/* libsndfile cannot write this combination (GSM is mono
				 * 8 kHz); only those, never a whole format, are skipped. */
				unlink(path);
				continue;
			}
			tried++;
			vms_audio a;
			int rc = vms_audio_read(path, &s, &a, why, sizeof why);
			ck_assert_msg(rc == 0, "%s: %s", name, why);
			ck_assert_msg(a.channels == ch, "%s: %d channels", name, a.channels);
			ck_assert_msg(a.source_rate == rate, "%s: source_rate %d", name,
			              a.source_rate);
			ck_assert_msg(fabs(a.duration_s - 1.5) <= 1.5 * fc->tol,
			              "%s: duration %.4f s", name, a.duration_s);
			ck_assert_msg(a.n == (size_t)lrint(a.duration_s * VMS_RATE) ||
			                      fabs((double)a.n / VMS_RATE - a.duration_s) < 1e-6,
			              "%s: n and duration disagree", name);
			for (int c = 0; c < ch; c++)
				ck_assert_ptr_nonnull(a.ch[c]);
			/* The signal survived: something well above the band fill. */
			int peak = 0;
			for (size_t i = 0; i < a.n; i++)
				if (abs(a.ch[ch - 1][i]) > peak)
					peak = abs(a.ch[ch - 1][i]);
			ck_assert_msg(peak > 4000, "%s: peak %d", name, peak);
			ck_assert_msg(a.format[0] != '\0', "%s: no format name", name);
			vms_audio_free(&a);
			unlink(path);
		}
	}
	ck_assert_msg(tried > 0, "%s: no rate/channel combination could be written", fc->name);
	if (!fc->fixed && (fc->format & SF_FORMAT_SUBMASK) != SF_FORMAT_GSM610)
		ck_assert_msg(tried == (int)(N_RATES * 2), "%s: only %d of %d combinations",
		              fc->name, tried, (int)(N_RATES * 2));
}
END_TEST

/* ------------------------------------------------------------------------ */

typedef struct malformed_expect {
	const char *name;
	const char *word;
} malformed_expect;

/* Every file in the eval kit's malformed/ is refused; the known ones with
 * the reason that fits what is wrong with them. */
START_TEST(test_eval_malformed)
{
	static const malformed_expect known[] = {
	        {"awful.wav", "sample rate"}, /* 1092676 Hz */
	        {"bad.wav", "malformed"},     /* fmt chunk claims 1.7 GB */
	        {"evil.wav", "malformed"},    /* junk chunk past the end */
	        {"null.wav", "no audio"},     /* empty data chunk */
	};
	const char *kit = getenv("VMS_EVAL_KIT");
	char dir[1024];
	snprintf(dir, sizeof dir, "%s/malformed", kit ? kit : VMS_TEST_TOP "/../shared/eval");
	DIR *d = opendir(dir);
	if (d == NULL) {
		fprintf(stderr, "test_eval_malformed: %s absent, skipped\n", dir);
		return;
	}
	vms_settings s;
	vms_settings_defaults(&s);
	struct dirent *e;
	int n = 0;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char path[2048];
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		const char *why = expect_refusal(path, &s);
		for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
			if (strcmp(known[k].name, e->d_name) == 0)
				ck_assert_why(why, known[k].word);
		n++;
	}
	closedir(d);
	ck_assert_int_gt(n, 0);
}
END_TEST

START_TEST(test_empty_file)
{
	char path[512];
	vms_settings s;
	vms_settings_defaults(&s);
	tmp_path(path, sizeof path, "empty.wav");
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_why(expect_refusal(path, &s), "empty");
}
END_TEST

/* Cut a good WAV short: header claims more than the file holds. */
START_TEST(test_truncated_wav)
{
	char path[512];
	vms_settings s;
	vms_settings_defaults(&s);
	tmp_path(path, sizeof path, "cut.wav");
	ck_assert_int_eq(write_signal(path, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 1, 16000, 1.5, 1.0),
	                 0);
	struct stat st;
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(truncate(path, st.st_size / 2), 0);
	ck_assert_why(expect_refusal(path, &s), "truncated");
}
END_TEST

static void put_le32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

/* A hand-made header claiming 2 GB of audio over a 1 KB body. */
START_TEST(test_header_claims_2gb)
{
	char path[512];
	vms_settings s;
	vms_settings_defaults(&s);
	tmp_path(path, sizeof path, "liar.wav");
	unsigned char hdr[44] = {'R', 'I', 'F', 'F', 0,   0,   0,   0, 'W', 'A', 'V',
	                         'E', 'f', 'm', 't', ' ', 16,  0,   0, 0,   1,   0,
	                         1,   0,   0,   0,   0,   0,   0,   0, 0,   0,   2,
	                         0,   16,  0,   'd', 'a', 't', 'a', 0, 0,   0,   0};
	put_le32(hdr + 4, 0x80000024u);
	put_le32(hdr + 24, 16000);
	put_le32(hdr + 28, 32000);
	put_le32(hdr + 40, 0x80000000u);
	unsigned char body[1024];
	for (size_t i = 0; i < sizeof body; i++)
		body[i] = (unsigned char)(i * 37);
	FILE *fp = fopen(path, "wb");
	ck_assert_ptr_nonnull(fp);
	ck_assert_uint_eq(fwrite(hdr, 1, sizeof hdr, fp), sizeof hdr);
	ck_assert_uint_eq(fwrite(body, 1, sizeof body, fp), sizeof body);
	fclose(fp);
	ck_assert_why(expect_refusal(path, &s), "truncated");
}
END_TEST

START_TEST(test_all_zero_samples)
{
	char path[512];
	vms_settings s;
	vms_settings_defaults(&s);
	tmp_path(path, sizeof path, "zero.wav");
	ck_assert_int_eq(write_signal(path, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 1, 16000, 1.5, 0.0),
	                 0);
	ck_assert_why(expect_refusal(path, &s), "no audio signal");
}
END_TEST

START_TEST(test_too_short)
{
	char path[512];
	vms_settings s;
	vms_settings_defaults(&s);
	tmp_path(path, sizeof path, "short.wav");
	ck_assert_int_eq(write_signal(path, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 1, 16000, 0.1, 1.0),
	                 0);
	ck_assert_why(expect_refusal(path, &s), "too short");
}
END_TEST

START_TEST(test_too_long)
{
	char path[512];
	vms_settings s;
	vms_settings_defaults(&s);
	s.max_duration_s = 1.0;
	tmp_path(path, sizeof path, "long.wav");
	ck_assert_int_eq(write_signal(path, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 1, 16000, 1.5, 1.0),
	                 0);
	ck_assert_why(expect_refusal(path, &s), "too long");
	/* The same file within the limit reads. */
	s.max_duration_s = 2.0;
	vms_audio a;
	char why[VMS_ERR_MAX] = "";
	ck_assert_msg(vms_audio_read(path, &s, &a, why, sizeof why) == 0, "%s", why);
	vms_audio_free(&a);
}
END_TEST

START_TEST(test_fifo_and_directory)
{
	char path[512];
	vms_settings s;
	vms_settings_defaults(&s);
	tmp_path(path, sizeof path, "dir.wav");
	ck_assert_int_eq(mkdir(path, 0700), 0);
	ck_assert_why(expect_refusal(path, &s), "not a regular file");
	tmp_path(path, sizeof path, "fifo.wav");
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	/* open(O_RDONLY) on a FIFO blocks until a writer appears; hold one
	 * open (non-blocking read end first so our own open succeeds). */
	int rfd = open(path, O_RDONLY | O_NONBLOCK);
	ck_assert_int_ge(rfd, 0);
	int wfd = open(path, O_WRONLY | O_NONBLOCK);
	ck_assert_int_ge(wfd, 0);
	ck_assert_why(expect_refusal(path, &s), "not a regular file");
	close(wfd);
	close(rfd);
}
END_TEST

START_TEST(test_three_channels)
{
	char path[512];
	vms_settings s;
	vms_settings_defaults(&s);
	tmp_path(path, sizeof path, "three.wav");
	ck_assert_int_eq(write_signal(path, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 3, 16000, 1.5, 1.0),
	                 0);
	ck_assert_why(expect_refusal(path, &s), "channels");
}
END_TEST

START_TEST(test_file_too_large)
{
	char path[512];
	vms_settings s;
	vms_settings_defaults(&s);
	s.max_file_bytes = 10000;
	tmp_path(path, sizeof path, "big.wav");
	ck_assert_int_eq(write_signal(path, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 1, 16000, 1.5, 1.0),
	                 0);
	ck_assert_why(expect_refusal(path, &s), "too large");
}
END_TEST

/* ------------------------------------------------------------------------ */

static void write_text(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	fputs(text, fp);
	fclose(fp);
}

START_TEST(test_sidecar_keys)
{
	char path[512], why[VMS_ERR_MAX] = "";
	vms_sidecar sc;
	tmp_path(path, sizeof path, "call.json");
	write_text(path, "{\"hangup_at\": 12.5, \"agent_channel\": 1, \"crm_id\": \"abc\", "
	                 "\"queue\": {\"name\": \"billing\"}}");
	ck_assert_msg(vms_sidecar_read(path, &sc, why, sizeof why) == 0, "%s", why);
	ck_assert_double_eq_tol(sc.hangup_at, 12.5, 1e-9);
	ck_assert_int_eq(sc.agent_channel, 1);
	ck_assert_ptr_nonnull(sc.metadata);
	ck_assert_uint_eq(json_object_size(sc.metadata), 2);
	ck_assert_str_eq(json_string_value(json_object_get(sc.metadata, "crm_id")), "abc");
	ck_assert_str_eq(
	        json_string_value(json_object_get(json_object_get(sc.metadata, "queue"), "name")),
	        "billing");
	ck_assert_ptr_null(json_object_get(sc.metadata, "hangup_at"));
	ck_assert_ptr_null(json_object_get(sc.metadata, "agent_channel"));
	vms_sidecar_free(&sc);
}
END_TEST

START_TEST(test_sidecar_absent)
{
	char path[512], why[VMS_ERR_MAX] = "";
	vms_sidecar sc;
	tmp_path(path, sizeof path, "nothing.json");
	ck_assert_int_eq(vms_sidecar_read(path, &sc, why, sizeof why), 0);
	ck_assert(sc.hangup_at < 0);
	ck_assert_int_lt(sc.agent_channel, 0);
	ck_assert_ptr_nonnull(sc.metadata);
	ck_assert_uint_eq(json_object_size(sc.metadata), 0);
	vms_sidecar_free(&sc);

	char buf[64];
	ck_assert_int_eq(vms_sidecar_path("/a/b/call.wav", buf, sizeof buf), 0);
	ck_assert_str_eq(buf, "/a/b/call.json");
	ck_assert_int_eq(vms_sidecar_path("/a.d/call", buf, sizeof buf), 0);
	ck_assert_str_eq(buf, "/a.d/call.json");
}
END_TEST

START_TEST(test_sidecar_broken)
{
	static const char *const bad[] = {
	        "{\"hangup_at\": 3.0,",          /* broken JSON */
	        "[1, 2, 3]",                     /* not an object */
	        "{\"hangup_at\": \"soon\"}",     /* wrong type */
	        "{\"hangup_at\": -4}",           /* negative */
	        "{\"agent_channel\": \"left\"}", /* wrong type */
	        "{\"agent_channel\": 1.5}",      /* not an integer */
	        "{\"agent_channel\": 2}",        /* out of range */
	        "{\"a\": 1, \"a\": 2}",          /* duplicate key */
	};
	char path[512];
	tmp_path(path, sizeof path, "broken.json");
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char why[VMS_ERR_MAX] = "";
		vms_sidecar sc;
		write_text(path, bad[i]);
		int rc = vms_sidecar_read(path, &sc, why, sizeof why);
		ck_assert_msg(rc == -1, "accepted %s", bad[i]);
		ck_assert_msg(strstr(why, path) != NULL, "reason \"%s\" does not name %s", why,
		              path);
		vms_sidecar_free(&sc);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("audio");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_formats_read_back, 0, (int)N_FORMATS);
	tcase_add_test(tc, test_eval_malformed);
	tcase_add_test(tc, test_empty_file);
	tcase_add_test(tc, test_truncated_wav);
	tcase_add_test(tc, test_header_claims_2gb);
	tcase_add_test(tc, test_all_zero_samples);
	tcase_add_test(tc, test_too_short);
	tcase_add_test(tc, test_too_long);
	tcase_add_test(tc, test_fifo_and_directory);
	tcase_add_test(tc, test_three_channels);
	tcase_add_test(tc, test_file_too_large);
	tcase_add_test(tc, test_sidecar_keys);
	tcase_add_test(tc, test_sidecar_absent);
	tcase_add_test(tc, test_sidecar_broken);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}

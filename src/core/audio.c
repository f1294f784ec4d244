/*
 * audio.c - read one recording whole, refuse anything we cannot screen.
 *
 * Everything comes in through libsndfile (WAV in all its encodings, FLAC,
 * Ogg/Vorbis, and headerless telephony files chosen by extension), is
 * checked for the ways files arrive broken (empty, truncated, a header
 * claiming more than the file holds, absurd lengths or rates), and is
 * resampled with libsamplerate to the decoder's 16 kHz, kept as 16-bit
 * samples per channel.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <magic.h>
#include <samplerate.h>
#include <sndfile.h>

#include "internal.h"

#define AUDIO_BLOCK 4096 /* frames read per call */

static int audio_headerless_format(const char *path, SF_INFO *info, char *name, size_t len);
static int audio_check_riff(int fd, off_t size, char *why, size_t whylen);
static int audio_check_riff_tail(int fd, off_t size, off_t pos, char *why, size_t whylen);
static int audio_has_container_magic(const char *path, char *why, size_t whylen);
static int audio_is_media(const char *path, char *why, size_t whylen);
static int audio_check_fmt(int fd, off_t body, uint32_t len, char *why, size_t whylen);
static int audio_append(vms_audio *a, size_t *cap, int ch, const float *x, size_t n);
static uint32_t audio_le32(const unsigned char *p);
static void audio_fill_band(vms_audio *a);

#define AUDIO_FILL_AMP 12.0 /* peak of the band-fill noise, in 16-bit steps */

/*
 * Telephone audio upsampled to 16 kHz has nothing above 4 kHz, and the
 * decoder's wideband model turns those empty filter bands into extreme
 * log energies that wreck its normalisation.  A whisper of high-passed,
 * seeded (so repeatable) noise, about -75 dBFS, fills them: measured on the
 * telephone-coded dev recordings it cut the word error rate from 0.74 to
 * about 0.54.
 */
static void audio_fill_band(vms_audio *a)
{
	uint32_t seed = 0x5eed1234u;
	for (int c = 0; c < a->channels; c++) {
		double prev = 0.0;
		for (size_t i = 0; i < a->n; i++) {
			seed = seed * 1103515245u + 12345u;
			double u = (double)((seed >> 8) & 0xffff) / 65536.0 - 0.5;
			double v = a->ch[c][i] + (u - prev) * AUDIO_FILL_AMP;
			prev = u;
			a->ch[c][i] = (int16_t)(v > 32767 ? 32767 : v < -32768 ? -32768 : v);
		}
	}
}

/* Little-endian 32-bit field of a RIFF header. */
static uint32_t audio_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/*
 * Telephony systems write headerless files; the extension is all there is
 * to go on.  Returns 1 and fills info when the extension names one.
 */
static int audio_headerless_format(const char *path, SF_INFO *info, char *name, size_t len)
{
	static const struct {
		const char *ext;
		int format;
		const char *name;
	} kinds[] = {
	        {".ulaw", SF_FORMAT_RAW | SF_FORMAT_ULAW, "raw u-law 8 kHz"},
	        {".ul", SF_FORMAT_RAW | SF_FORMAT_ULAW, "raw u-law 8 kHz"},
	        {".mulaw", SF_FORMAT_RAW | SF_FORMAT_ULAW, "raw u-law 8 kHz"},
	        {".alaw", SF_FORMAT_RAW | SF_FORMAT_ALAW, "raw A-law 8 kHz"},
	        {".al", SF_FORMAT_RAW | SF_FORMAT_ALAW, "raw A-law 8 kHz"},
	        {".gsm", SF_FORMAT_RAW | SF_FORMAT_GSM610, "raw GSM 6.10 8 kHz"},
	        {".sln", SF_FORMAT_RAW | SF_FORMAT_PCM_16 | SF_ENDIAN_LITTLE, "raw 16-bit 8 kHz"},
	};
	const char *dot = strrchr(path, '.');
	if (dot == NULL)
		return 0;
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
		if (strcasecmp(dot, kinds[i].ext) == 0) {
			memset(info, 0, sizeof *info);
			info->format = kinds[i].format;
			info->samplerate = 8000;
			info->channels = 1;
			snprintf(name, len, "%s", kinds[i].name);
			return 1;
		}
	}
	return 0;
}

/*
 * issue 10 (second round of attacks): a file named .ulaw, .gsm or .sln is
 * read as raw samples, but a player sniffs the content: a WAV, FLAC, Ogg,
 * MP3, AIFF or AU file renamed so was screened as noise and played as
 * speech.  Headerless audio never starts with a container's magic; such a
 * file is held.  1 (why filled) or 0.
 */
static int audio_has_container_magic(const char *path, char *why, size_t whylen)
{
	SF_INFO probe;
	SNDFILE *sf;
	int found = 0;

	/* libsndfile's own sniffing: it recognises every container it reads
	 * and refuses raw samples (tried on u-law silence, speech in u-law,
	 * A-law and 16-bit PCM, and the 87 real recordings converted to u-law;
	 * raw GSM it names RAW by the extension).  By path, on its own
	 * descriptor: libsndfile closes a descriptor it fails to open. */
	memset(&probe, 0, sizeof probe);
	if ((sf = sf_open(path, SFM_READ, &probe)) != NULL) {
		if ((probe.format & SF_FORMAT_TYPEMASK) != SF_FORMAT_RAW) {
			SF_FORMAT_INFO fi = {.format = probe.format & SF_FORMAT_TYPEMASK};
			sf_command(sf, SFC_GET_FORMAT_INFO, &fi, sizeof fi);
			vms_errf(why, whylen,
			         "content disagrees with name: a headerless telephony extension, "
			         "but the file is %s (a player would play it as such)",
			         fi.name ? fi.name : "another audio format");
			found = 1;
		}
		sf_close(sf);
	}
	return found || audio_is_media(path, why, whylen);
}

/*
 * Issue 18, attack round 5: libsndfile knows only its own containers, and
 * AAC (ADTS), MP4/M4A, Matroska/WebM and WavPack renamed .sln, .ulaw or
 * .gsm were screened as noise and played as speech.  libmagic knows every
 * media format a player might sniff.  Raw telephone audio matches weak
 * magic of other kinds now and then (an "AIX core file", an "OpenPGP key"
 * among the 348 raw u-law, A-law, 16-bit and GSM versions of the real
 * recordings), but never an audio or video type: so a file libmagic calls
 * audio or video (by MIME type or by name) is held.  Loads libmagic's
 * database per call, a few milliseconds, on headerless files only.  1
 * (why filled) or 0; a libmagic that cannot load holds too (fail closed).
 */
static int audio_is_media(const char *path, char *why, size_t whylen)
{
	const int flags = MAGIC_NO_CHECK_TEXT | MAGIC_NO_CHECK_ENCODING | MAGIC_NO_CHECK_CSV |
	                  MAGIC_NO_CHECK_JSON | MAGIC_NO_CHECK_TOKENS;
	magic_t m = magic_open(flags | MAGIC_MIME_TYPE);
	char mime[128] = "", desc[256] = "";
	int media = 1;

	if (m != NULL && magic_load(m, NULL) == 0) {
		const char *r = magic_file(m, path);
		snprintf(mime, sizeof mime, "%s", r ? r : "");
		if (magic_setflags(m, flags) == 0 && (r = magic_file(m, path)) != NULL)
			snprintf(desc, sizeof desc, "%s", r);
		media = strncmp(mime, "audio/", 6) == 0 || strncmp(mime, "video/", 6) == 0 ||
		        strcmp(mime, "application/ogg") == 0 || strcasestr(desc, "audio") ||
		        strcasestr(desc, "video") || mime[0] == '\0';
	}
	if (m != NULL)
		magic_close(m);
	if (media)
		vms_errf(why, whylen,
		         "content disagrees with name: a headerless telephony extension, but the "
		         "file is %s (a player would play it as such)",
		         desc[0]   ? desc
		         : mime[0] ? mime
		                   : "of a kind libmagic could not tell");
	return media;
}

/*
 * A PCM fmt chunk must agree with itself: 8, 16, 24 or 32 bits, and a
 * block align of channels x bytes per sample (second round of attacks: 7
 * bits with block align 1 was read as silence and passed, while a player
 * plays 8-bit noise of the same bytes).  Compressed formats are left to
 * libsndfile.
 */
static int audio_check_fmt(int fd, off_t body, uint32_t len, char *why, size_t whylen)
{
	unsigned char f[16];

	if (len < sizeof f || pread(fd, f, sizeof f, body) != (ssize_t)sizeof f)
		return 0; /* libsndfile judges a short fmt */
	unsigned tag = f[0] | f[1] << 8, ch = f[2] | f[3] << 8;
	unsigned align = f[12] | f[13] << 8, bits = f[14] | f[15] << 8;
	if (tag != 1 && tag != 3) /* PCM, IEEE float */
		return 0;
	if ((bits != 8 && bits != 16 && bits != 24 && bits != 32 && bits != 64) ||
	    align != ch * (bits / 8)) {
		vms_errf(why, whylen,
		         "content disagrees with header: a PCM fmt of %u bits, %u channel(s) and "
		         "block align %u does not add up",
		         bits, ch, align);
		return -1;
	}
	return 0;
}

/*
 * issue 10: after the data chunk there may be only whole chunks (LIST,
 * id3, cue...) and one pad byte.  Bytes that are not chunks are audio a
 * lenient player may play past the declared end, and nobody screened.
 */
static int audio_check_riff_tail(int fd, off_t size, off_t pos, char *why, size_t whylen)
{
	while (pos + 8 <= size) {
		unsigned char ck[8];
		if (pread(fd, ck, sizeof ck, pos) != (ssize_t)sizeof ck)
			return 0;
		uint32_t len = audio_le32(ck + 4);
		for (int i = 0; i < 4; i++)
			if (ck[i] < 0x20 || ck[i] > 0x7e)
				goto bad;
		if ((off_t)len > size - pos - 8)
			goto bad;
		pos += 8 + len + (len & 1);
	}
	if (size - pos <= 1)
		return 0;
bad:
	vms_errf(why, whylen,
	         "content disagrees with header: %lld bytes after the WAV data chunk are not "
	         "chunks (a player may play audio nobody screened)",
	         (long long)(size - pos));
	return -1;
}

/*
 * libsndfile forgives a WAV whose header claims more audio than the file
 * holds (it quietly reads what is there).  A gate must not: a truncated
 * voicemail may have lost exactly the part that matters.  So walk the RIFF
 * chunks ourselves and insist every chunk fits in the file.
 */
static int audio_check_riff(int fd, off_t size, char *why, size_t whylen)
{
	unsigned char hdr[12];
	if (pread(fd, hdr, sizeof hdr, 0) != (ssize_t)sizeof hdr)
		return 0; /* too small to be RIFF; libsndfile will judge */
	if (memcmp(hdr, "RIFF", 4) != 0 || memcmp(hdr + 8, "WAVE", 4) != 0)
		return 0;
	off_t pos = 12;
	int have_fmt = 0;
	while (pos + 8 <= size) {
		unsigned char ck[8];
		if (pread(fd, ck, sizeof ck, pos) != (ssize_t)sizeof ck)
			break;
		uint32_t len = audio_le32(ck + 4);
		off_t body = pos + 8;
		if (memcmp(ck, "fmt ", 4) == 0) {
			have_fmt = 1;
			if (audio_check_fmt(fd, body, len, why, whylen) < 0)
				return -1;
		}
		if (memcmp(ck, "data", 4) == 0) {
			if (!have_fmt) {
				vms_errf(why, whylen, "malformed WAV: data chunk before fmt chunk");
				return -1;
			}
			if (len == 0) {
				vms_errf(why, whylen, "no audio: the WAV data chunk is empty");
				return -1;
			}
			if ((off_t)len > size - body) {
				vms_errf(
				        why, whylen,
				        "truncated: the WAV header declares %lu bytes of audio but "
				        "the file holds %lld",
				        (unsigned long)len, (long long)(size - body));
				return -1;
			}
			return audio_check_riff_tail(fd, size, body + len + (len & 1), why, whylen);
		}
		if ((off_t)len > size - body) {
			/* The id is the file's bytes: printable ASCII or \xNN only, since
			 * the reason goes to a terminal and into the verdict's JSON (not
			 * UTF-8: the evidence was dropped).  Found by tests/fuzz/fuzz_audio
			 * (tests/fuzz/regressions/audio/riff-chunk-id-not-utf8.wav). */
			char id[4 * 4 + 1];
			size_t k = 0;
			for (int i = 0; i < 4; i++) {
				if (ck[i] >= 0x20 && ck[i] < 0x7f && ck[i] != '\\')
					id[k++] = (char)ck[i];
				else
					k += (size_t)snprintf(id + k, sizeof id - k, "\\x%02x",
					                      ck[i]);
			}
			id[k] = '\0';
			vms_errf(why, whylen,
			         "malformed WAV: chunk '%s' at byte %lld claims %lu bytes, past "
			         "the end of the file",
			         id, (long long)pos, (unsigned long)len);
			return -1;
		}
		pos = body + len + (len & 1);
	}
	vms_errf(why, whylen, "malformed WAV: no data chunk");
	return -1;
}

/* Append n converted samples to channel ch, growing the buffer. */
static int audio_append(vms_audio *a, size_t *cap, int ch, const float *x, size_t n)
{
	size_t have = a->n; /* all channels advance together */
	if (have + n > *cap) {
		size_t ncap = *cap ? *cap * 2 : 16000 * 30;
		while (ncap < have + n)
			ncap *= 2;
		for (int c = 0; c < a->channels; c++) {
			int16_t *p = realloc(a->ch[c], ncap * sizeof *p);
			if (p == NULL)
				return -1;
			a->ch[c] = p;
		}
		*cap = ncap;
	}
	for (size_t i = 0; i < n; i++) {
		float v = x[i] * 32767.0f;
		if (v > 32767.0f)
			v = 32767.0f;
		else if (v < -32768.0f)
			v = -32768.0f;
		a->ch[ch][have + i] = (int16_t)lrintf(v);
	}
	return 0;
}

/*
 * Read and validate path whole.  The reason for a refusal goes into why,
 * phrased for a reviewer ("truncated: ...").
 */
int vms_audio_read(const char *path, const vms_settings *s, vms_audio *out, char *why,
                   size_t whylen)
{
	SF_INFO info;
	SNDFILE *sf = NULL;
	SRC_STATE *src[VMS_MAX_CHANNELS] = {NULL, NULL};
	float *block = NULL, *chan = NULL, *conv = NULL;
	size_t cap = 0;
	int fd = -1, err;
	struct stat st;

	memset(out, 0, sizeof *out);
	memset(&info, 0, sizeof info);

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		vms_errf(why, whylen, "cannot open: %s", strerror(errno));
		goto fail;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		vms_errf(why, whylen, "not a regular file");
		goto fail;
	}
	if (st.st_size == 0) {
		vms_errf(why, whylen, "empty file (0 bytes)");
		goto fail;
	}
	if (s->max_file_bytes > 0 && st.st_size > s->max_file_bytes) {
		vms_errf(why, whylen, "file too large: %lld bytes (limit %ld)",
		         (long long)st.st_size, s->max_file_bytes);
		goto fail;
	}
	if (audio_headerless_format(path, &info, out->format, sizeof out->format)) {
		if (audio_has_container_magic(path, why, whylen))
			goto fail;
	} else {
		if (audio_check_riff(fd, st.st_size, why, whylen) < 0)
			goto fail;
	}
	/* close_desc = 0: the descriptor stays ours on every path, so it is
	 * closed exactly once (a double close could hit another thread's fd). */
	sf = sf_open_fd(fd, SFM_READ, &info, 0);
	if (sf == NULL) {
		vms_errf(why, whylen, "not readable audio: %s", sf_strerror(NULL));
		goto fail;
	}
	if (out->format[0] == '\0') {
		SF_FORMAT_INFO fi = {.format = info.format & SF_FORMAT_TYPEMASK};
		SF_FORMAT_INFO si = {.format = info.format & SF_FORMAT_SUBMASK};
		sf_command(sf, SFC_GET_FORMAT_INFO, &fi, sizeof fi);
		sf_command(sf, SFC_GET_FORMAT_INFO, &si, sizeof si);
		snprintf(out->format, sizeof out->format, "%s, %s", fi.name ? fi.name : "?",
		         si.name ? si.name : "?");
	}
	/* issue 10: MPEG's length is an estimate libsndfile reads to, while a
	 * player decodes every frame; with no independent check, refuse it.
	 * Issue 18: the same for every container whose length nothing here
	 * checks (a Sun .au declaring 9.6 s played 16.9 s): only WAV (the RIFF
	 * walk), FLAC and Ogg (container.c) and headerless telephone audio are
	 * screened, the rest held. */
	int major = info.format & SF_FORMAT_TYPEMASK;
	if (major == SF_FORMAT_MPEG) {
		vms_errf(why, whylen,
		         "MPEG audio is not accepted: its length cannot be checked against what "
		         "a player plays (send WAV, FLAC or Ogg)");
		goto fail;
	}
	if (major != SF_FORMAT_WAV && major != SF_FORMAT_WAVEX && major != SF_FORMAT_FLAC &&
	    major != SF_FORMAT_OGG && major != SF_FORMAT_RAW) {
		vms_errf(why, whylen,
		         "%s audio is not accepted: its length cannot be checked against what a "
		         "player plays (send WAV, FLAC or Ogg)",
		         out->format);
		goto fail;
	}
	if (info.channels < 1 || info.channels > VMS_MAX_CHANNELS) {
		vms_errf(why, whylen, "%d channels: only mono and stereo are screened",
		         info.channels);
		goto fail;
	}
	if (info.samplerate < 8000 || info.samplerate > 192000) {
		vms_errf(why, whylen, "absurd sample rate %d Hz (8000 to 192000 accepted)",
		         info.samplerate);
		goto fail;
	}
	if (info.frames <= 0) {
		vms_errf(why, whylen, "no audio: the file holds no samples");
		goto fail;
	}
	/* issue 10: FLAC and Ogg must hold no more than they declare */
	long long real_frames;
	if (vms_container_check(fd, st.st_size, (long long)info.frames, info.samplerate,
	                        &real_frames, why, whylen) < 0)
		goto fail;
	if (info.frames == SF_COUNT_MAX && real_frames != SF_COUNT_MAX)
		info.frames = real_frames; /* "unknown" in the header: the stream's own */
	if (s->max_duration_s > 0 && (double)info.frames / info.samplerate > s->max_duration_s) {
		vms_errf(why, whylen, "too long: %.0f s (limit %.0f s)",
		         (double)info.frames / info.samplerate, s->max_duration_s);
		goto fail;
	}

	out->channels = info.channels;
	out->source_rate = info.samplerate;
	double ratio = (double)VMS_RATE / info.samplerate;
	for (int c = 0; c < info.channels; c++) {
		if (info.samplerate != VMS_RATE) {
			src[c] = src_new(SRC_SINC_FASTEST, 1, &err);
			if (src[c] == NULL) {
				vms_errf(why, whylen, "resampler: %s", src_strerror(err));
				goto fail;
			}
		}
	}
	size_t conv_cap = (size_t)(AUDIO_BLOCK * ratio) + 64;
	block = malloc(sizeof *block * AUDIO_BLOCK * info.channels);
	chan = malloc(sizeof *chan * AUDIO_BLOCK);
	conv = malloc(sizeof *conv * conv_cap);
	if (block == NULL || chan == NULL || conv == NULL)
		goto nomem;

	sf_count_t total = 0, got;
	double peak = 0.0;
	int eof = 0;
	while (!eof) {
		got = sf_readf_float(sf, block, AUDIO_BLOCK);
		if (got < 0)
			got = 0;
		eof = got < AUDIO_BLOCK;
		total += got;
		size_t produced = 0;
		for (int c = 0; c < info.channels; c++) {
			for (sf_count_t i = 0; i < got; i++) {
				float v = block[i * info.channels + c];
				if (!isfinite(v)) {
					vms_errf(why, whylen,
					         "corrupt samples (not finite numbers)");
					goto fail;
				}
				if (fabsf(v) > peak)
					peak = fabsf(v);
				chan[i] = v;
			}
			const float *res = chan;
			produced = (size_t)got;
			if (src[c] != NULL) {
				SRC_DATA d = {.data_in = chan,
				              .data_out = conv,
				              .input_frames = (long)got,
				              .output_frames = (long)conv_cap,
				              .src_ratio = ratio,
				              .end_of_input = eof};
				if ((err = src_process(src[c], &d)) != 0) {
					vms_errf(why, whylen, "resampler: %s", src_strerror(err));
					goto fail;
				}
				res = conv;
				produced = (size_t)d.output_frames_gen;
			}
			if (audio_append(out, &cap, c, res, produced) < 0)
				goto nomem;
		}
		out->n += produced;
	}
	if (sf_error(sf) != SF_ERR_NO_ERROR) {
		vms_errf(why, whylen, "decoding failed after %lld samples: %s", (long long)total,
		         sf_strerror(sf));
		goto fail;
	}
	if (info.frames != SF_COUNT_MAX && total < info.frames) {
		vms_errf(why, whylen, "truncated: header promises %lld samples, file holds %lld",
		         (long long)info.frames, (long long)total);
		goto fail;
	}
	out->duration_s = (double)out->n / VMS_RATE;
	if (info.samplerate < VMS_RATE)
		audio_fill_band(out);
	if (out->duration_s < s->min_duration_s) {
		vms_errf(why, whylen, "too short: %.2f s (minimum %.2f s)", out->duration_s,
		         s->min_duration_s);
		goto fail;
	}
	if (peak == 0.0) {
		vms_errf(why, whylen, "no audio signal: every sample is zero");
		goto fail;
	}
	free(block);
	free(chan);
	free(conv);
	for (int c = 0; c < VMS_MAX_CHANNELS; c++)
		src_delete(src[c]);
	sf_close(sf);
	close(fd);
	return 0;

nomem:
	vms_errf(why, whylen, "out of memory reading audio");
fail:
	free(block);
	free(chan);
	free(conv);
	for (int c = 0; c < VMS_MAX_CHANNELS; c++)
		if (src[c] != NULL)
			src_delete(src[c]);
	if (sf != NULL)
		sf_close(sf);
	if (fd >= 0)
		close(fd);
	vms_audio_free(out);
	return -1;
}

/* Release the sample buffers. */
void vms_audio_free(vms_audio *a)
{
	for (int c = 0; c < VMS_MAX_CHANNELS; c++) {
		free(a->ch[c]);
		a->ch[c] = NULL;
	}
	a->n = 0;
}

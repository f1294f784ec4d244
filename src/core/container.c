/*
 * container.c - does a FLAC or Ogg file hold what its header says?
 *
 * libsndfile reads a FLAC stream only up to STREAMINFO's total_samples and
 * an Ogg stream only up to the granule position it found at the end, while
 * a player decodes every frame and every page it finds (issue 10: a file
 * declaring 11.5 s played 19.7 s, and the 8 s nobody screened passed the
 * gate).  So before a FLAC or Ogg file is screened its real length is
 * measured independently of the header, and a file whose content and
 * header disagree is refused, which the gate turns into a hold.
 *
 * FLAC: libFLAC decodes every frame to the end of the file (it resyncs
 * past junk, as players do) and the decoded samples are counted.  Ogg: the
 * pages are walked without decoding; one logical stream, no pages after
 * its end-of-stream page, granule positions that never go back, and a
 * final granule that matches the length libsndfile reports.  Costs one
 * extra decode of a FLAC file (fast, integer only) and one read of an Ogg
 * file; other formats cost nothing.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <FLAC/stream_decoder.h>

#include "internal.h"

#define CONTAINER_SLACK_S 0.05 /* rounding of the last block or page */

struct container_flac {
	int fd;
	off_t pos, size;
	uint64_t samples; /* decoded so far, per channel */
	int errors;       /* frames lost to corruption */
};

static FLAC__StreamDecoderReadStatus container_flac_read(const FLAC__StreamDecoder *d,
                                                         FLAC__byte *buf, size_t *bytes, void *arg);
static FLAC__StreamDecoderWriteStatus container_flac_write(const FLAC__StreamDecoder *d,
                                                           const FLAC__Frame *frame,
                                                           const FLAC__int32 *const *buf,
                                                           void *arg);
static void container_flac_error(const FLAC__StreamDecoder *d,
                                 FLAC__StreamDecoderErrorStatus status, void *arg);

/* libFLAC read callback: the next bytes of the file, by pread, so the
 * descriptor's offset (libsndfile's) is left alone. */
static FLAC__StreamDecoderReadStatus container_flac_read(const FLAC__StreamDecoder *d,
                                                         FLAC__byte *buf, size_t *bytes, void *arg)
{
	struct container_flac *c = arg;
	ssize_t n;

	(void)d;
	if (*bytes == 0)
		return FLAC__STREAM_DECODER_READ_STATUS_ABORT;
	n = pread(c->fd, buf, *bytes, c->pos);
	if (n < 0)
		return FLAC__STREAM_DECODER_READ_STATUS_ABORT;
	*bytes = (size_t)n;
	c->pos += n;
	return n == 0 ? FLAC__STREAM_DECODER_READ_STATUS_END_OF_STREAM
	              : FLAC__STREAM_DECODER_READ_STATUS_CONTINUE;
}

/* libFLAC write callback: count the samples of each decoded frame. */
static FLAC__StreamDecoderWriteStatus container_flac_write(const FLAC__StreamDecoder *d,
                                                           const FLAC__Frame *frame,
                                                           const FLAC__int32 *const *buf, void *arg)
{
	struct container_flac *c = arg;

	(void)d;
	(void)buf;
	c->samples += frame->header.blocksize;
	return FLAC__STREAM_DECODER_WRITE_STATUS_CONTINUE;
}

/* libFLAC error callback: a lost or corrupt frame is counted, and decoding
 * goes on, as a player's would. */
static void container_flac_error(const FLAC__StreamDecoder *d,
                                 FLAC__StreamDecoderErrorStatus status, void *arg)
{
	struct container_flac *c = arg;

	(void)d;
	(void)status;
	c->errors++;
}

/* Decode a FLAC file to its real end; 0 when the samples found match the
 * frames libsndfile will read, else -1 with why. */
static int container_check_flac(int fd, off_t size, long long frames, int rate, long long *real,
                                char *why, size_t whylen)
{
	struct container_flac c = {.fd = fd, .size = size};
	FLAC__StreamDecoder *d = FLAC__stream_decoder_new();
	int ok;

	if (d == NULL) {
		vms_errf(why, whylen, "out of memory checking the FLAC stream");
		return -1;
	}
	FLAC__stream_decoder_set_md5_checking(d, false);
	ok = FLAC__stream_decoder_init_stream(d, container_flac_read, NULL, NULL, NULL, NULL,
	                                      container_flac_write, NULL, container_flac_error,
	                                      &c) == FLAC__STREAM_DECODER_INIT_STATUS_OK &&
	     FLAC__stream_decoder_process_until_end_of_stream(d);
	FLAC__stream_decoder_delete(d);
	if (!ok) {
		vms_errf(why, whylen, "malformed FLAC: the stream cannot be decoded to its end");
		return -1;
	}
	/* issue 18, attack round 6: a frame that fails its CRC or loses sync is
	 * silence to the screen, while a player (ffmpeg ignores FLAC CRCs) plays
	 * it nearly intact: damaged audio cannot be screened */
	if (c.errors > 0) {
		vms_errf(why, whylen,
		         "damaged FLAC: %d frame(s) fail their checks (a player may play what the "
		         "screen could not decode)",
		         c.errors);
		return -1;
	}
	*real = (long long)c.samples;
	if (frames == LLONG_MAX) /* STREAMINFO says "unknown": libsndfile reads to the end */
		return 0;
	if ((long long)c.samples > frames + (long long)(CONTAINER_SLACK_S * rate)) {
		vms_errf(why, whylen,
		         "content disagrees with header: the FLAC header declares %.2f s but the "
		         "stream holds %.2f s (a player would play audio nobody screened)",
		         (double)frames / rate, (double)c.samples / rate);
		return -1;
	}
	return 0;
}

/* Little-endian fields of an Ogg page header. */
static uint64_t container_le(const unsigned char *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

struct container_ogg {
	uint32_t serial;
	int pages, eos;
	uint64_t granule_max, granule_last;
	int granule_rate; /* 48000 for Opus, the Vorbis header's rate otherwise */
	uint64_t preskip;
};

/* Note the codec of the first page's first packet (its rate and pre-skip). */
static void container_ogg_codec(struct container_ogg *o, const unsigned char *pkt, size_t n)
{
	if (n >= 16 && memcmp(pkt, "\x01vorbis", 7) == 0)
		o->granule_rate = (int)container_le(pkt + 12, 4);
	else if (n >= 12 && memcmp(pkt, "OpusHead", 8) == 0) {
		o->granule_rate = 48000;
		o->preskip = container_le(pkt + 10, 2);
	}
}

/* One page at pos: checks it and advances *pos; 0, or -1 with why. */
static int container_ogg_page(int fd, off_t *pos, struct container_ogg *o, char *why, size_t whylen)
{
	unsigned char h[27 + 255], pkt[32];
	size_t body = 0;
	ssize_t n = pread(fd, h, 27, *pos);

	if (n != 27 || memcmp(h, "OggS", 4) != 0) {
		vms_errf(why, whylen, "malformed Ogg: bytes at %lld are not an Ogg page",
		         (long long)*pos);
		return -1;
	}
	if (pread(fd, h + 27, h[26], *pos + 27) != (ssize_t)h[26]) {
		vms_errf(why, whylen, "truncated: the Ogg page at byte %lld is cut off",
		         (long long)*pos);
		return -1;
	}
	for (int i = 0; i < h[26]; i++)
		body += h[27 + i];
	uint64_t granule = container_le(h + 6, 8);
	uint32_t serial = (uint32_t)container_le(h + 14, 4);
	if (o->pages == 0) {
		o->serial = serial;
		n = pread(fd, pkt, sizeof pkt, *pos + 27 + h[26]);
		if (n > 0)
			container_ogg_codec(o, pkt, (size_t)n);
	} else if (serial != o->serial || (h[5] & 0x02)) {
		vms_errf(why, whylen,
		         "content disagrees with header: the Ogg file holds more than one "
		         "stream (a player would play the ones nobody screened)");
		return -1;
	} else if (o->eos) {
		vms_errf(why, whylen,
		         "content disagrees with header: Ogg pages follow the end of the stream");
		return -1;
	}
	if (granule != UINT64_MAX) { /* -1: no packet ends on this page */
		if (granule < o->granule_max) {
			vms_errf(why, whylen,
			         "content disagrees with header: an Ogg page's position goes back "
			         "(%llu after %llu)",
			         (unsigned long long)granule, (unsigned long long)o->granule_max);
			return -1;
		}
		o->granule_max = o->granule_last = granule;
	}
	o->eos |= (h[5] & 0x04) != 0;
	o->pages++;
	*pos += 27 + h[26] + (off_t)body;
	return 0;
}

/* Walk every Ogg page; 0 when one stream ends where libsndfile's length
 * says, else -1 with why. */
static int container_check_ogg(int fd, off_t size, long long frames, int rate, char *why,
                               size_t whylen)
{
	struct container_ogg o = {0};
	off_t pos = 0;

	while (pos < size)
		if (container_ogg_page(fd, &pos, &o, why, whylen) < 0)
			return -1;
	if (o.granule_rate <= 0)
		return 0; /* a codec we do not know: libsndfile decides */
	double real = (double)(o.granule_max > o.preskip ? o.granule_max - o.preskip : 0) /
	              o.granule_rate;
	double declared = (double)frames / rate;
	if (real > declared + CONTAINER_SLACK_S) {
		vms_errf(why, whylen,
		         "content disagrees with header: the Ogg stream declares %.2f s but its "
		         "pages hold %.2f s (a player would play audio nobody screened)",
		         declared, real);
		return -1;
	}
	return 0;
}

/*
 * The entry point: 0 when fd (size bytes) is not FLAC or Ogg, or holds no
 * more audio than frames at rate; else -1 with a reason for the reviewer.
 * *real gets the frames a FLAC stream really holds (else frames): what to
 * judge the length by when the header says "unknown" (LLONG_MAX).
 */
int vms_container_check(int fd, off_t size, long long frames, int rate, long long *real, char *why,
                        size_t whylen)
{
	unsigned char magic[4];

	*real = frames;
	if (rate <= 0 || pread(fd, magic, sizeof magic, 0) != (ssize_t)sizeof magic)
		return 0;
	if (memcmp(magic, "fLaC", 4) == 0)
		return container_check_flac(fd, size, frames, rate, real, why, whylen);
	if (memcmp(magic, "OggS", 4) == 0)
		return container_check_ogg(fd, size, frames, rate, why, whylen);
	return 0;
}

/*
 * vad.c - where is somebody speaking, and how loud?
 *
 * Open lines are decided on speech, not on recognised words: off-mic talk
 * 12 to 18 dB below the message is often not recognised at all, yet it is
 * exactly what must not reach a client.  So we measure energy per 10 ms
 * frame (after pre-emphasis, which favours speech over the low rumble that
 * dominates room and line noise), estimate the noise floor and the message
 * level, and mark speech where the energy stands clear of the floor AND
 * moves the way syllables do: stationary hiss and hum stand clear of a
 * digital-silence floor but do not modulate.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define VAD_HOP 160        /* 10 ms at 16 kHz */
#define VAD_WIN 320        /* 20 ms analysis window */
#define VAD_FLOOR_DB -75.0 /* below this is silence whatever the file */
#define VAD_MARGIN_DB 7.0  /* speech stands this far above the noise floor */
#define VAD_RANGE_DB 40.0  /* ... and within this of the message level */
#define VAD_BRIDGE_S 0.30  /* gaps shorter than this join two segments */
#define VAD_MIN_SEG_S 0.20 /* shorter bursts are clicks, not speech */
#define VAD_MIN_MOD_DB 4.0 /* a segment's energy must swing this much */

static int vad_cmp_float(const void *a, const void *b);
static double vad_percentile(const float *v, size_t n, double p);
static int vad_segment_modulates(const float *db, size_t from, size_t to);

/* qsort comparator for floats. */
static int vad_cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return (x > y) - (x < y);
}

/* The p-th percentile (0..1) of n values; copies, so v is untouched. */
static double vad_percentile(const float *v, size_t n, double p)
{
	if (n == 0)
		return -120.0;
	float *tmp = malloc(n * sizeof *tmp);
	if (tmp == NULL)
		return -120.0;
	memcpy(tmp, v, n * sizeof *tmp);
	qsort(tmp, n, sizeof *tmp, vad_cmp_float);
	size_t i = (size_t)(p * (double)(n - 1));
	double r = tmp[i];
	free(tmp);
	return r;
}

/*
 * Speech rises and falls with syllables; hiss, hum and a fan do not.  Judge
 * a candidate segment by the spread between its loud and quiet frames.
 */
static int vad_segment_modulates(const float *db, size_t from, size_t to)
{
	size_t n = to - from;
	if (n < 3)
		return 0;
	double hi = vad_percentile(db + from, n, 0.90);
	double lo = vad_percentile(db + from, n, 0.10);
	return hi - lo >= VAD_MIN_MOD_DB;
}

/*
 * Analyse one channel: frame energies, floor, message level, speech mask
 * and segments.
 */
int vms_levels_analyse(const int16_t *x, size_t n, vms_levels *out)
{
	memset(out, 0, sizeof *out);
	size_t nf = n / VAD_HOP;
	out->n_frames = nf;
	out->frame_db = calloc(nf ? nf : 1, sizeof *out->frame_db);
	out->speech = calloc(nf ? nf : 1, 1);
	if (out->frame_db == NULL || out->speech == NULL)
		goto fail;

	for (size_t f = 0; f < nf; f++) {
		size_t start = f * VAD_HOP;
		size_t end = start + VAD_WIN < n ? start + VAD_WIN : n;
		double acc = 0.0;
		for (size_t i = start; i < end; i++) {
			double prev = i > 0 ? x[i - 1] : 0.0;
			double y = (double)x[i] - 0.95 * prev; /* pre-emphasis */
			acc += y * y;
		}
		double ms = acc / (double)(end - start) / (32768.0 * 32768.0);
		out->frame_db[f] = (float)(10.0 * log10(ms + 1e-12));
	}
	out->noise_db = vad_percentile(out->frame_db, nf, 0.10);
	if (out->noise_db < VAD_FLOOR_DB)
		out->noise_db = VAD_FLOOR_DB;
	out->speech_db = vad_percentile(out->frame_db, nf, 0.95);

	double thr = out->noise_db + VAD_MARGIN_DB;
	if (thr < out->speech_db - VAD_RANGE_DB)
		thr = out->speech_db - VAD_RANGE_DB;
	for (size_t f = 0; f < nf; f++)
		out->speech[f] = out->frame_db[f] >= thr;

	/* Bridge short gaps, then keep segments that are long enough and move
	 * like speech; rewrite the mask to match the kept segments. */
	size_t bridge = (size_t)(VAD_BRIDGE_S / VMS_FRAME_S);
	size_t minlen = (size_t)(VAD_MIN_SEG_S / VMS_FRAME_S);
	size_t cap = 0;
	size_t f = 0;
	while (f < nf) {
		if (!out->speech[f]) {
			f++;
			continue;
		}
		size_t s = f, e = f, gap = 0;
		for (f = s; f < nf; f++) {
			if (out->speech[f]) {
				e = f + 1;
				gap = 0;
			} else if (++gap > bridge) {
				break;
			}
		}
		int keep = e - s >= minlen && vad_segment_modulates(out->frame_db, s, e);
		for (size_t k = s; k < e; k++)
			out->speech[k] = (unsigned char)keep;
		if (!keep)
			continue;
		if (out->n_segs == cap) {
			cap = cap ? cap * 2 : 16;
			vms_segment *p = realloc(out->segs, cap * sizeof *p);
			if (p == NULL)
				goto fail;
			out->segs = p;
		}
		vms_segment *seg = &out->segs[out->n_segs++];
		seg->start_s = s * VMS_FRAME_S;
		seg->end_s = e * VMS_FRAME_S;
		seg->level_db = vad_percentile(out->frame_db + s, e - s, 0.80);
	}
	/* The message level: the loud end of what was judged speech. */
	if (out->n_segs > 0) {
		float *sp = malloc(nf * sizeof *sp);
		size_t k = 0;
		if (sp == NULL)
			goto fail;
		for (size_t i = 0; i < nf; i++)
			if (out->speech[i])
				sp[k++] = out->frame_db[i];
		out->speech_db = vad_percentile(sp, k, 0.80);
		free(sp);
	}
	return 0;
fail:
	vms_levels_free(out);
	return -1;
}

/* Free the analysis. */
void vms_levels_free(vms_levels *l)
{
	free(l->frame_db);
	free(l->speech);
	free(l->segs);
	memset(l, 0, sizeof *l);
}

/* Seconds judged speech in [from, to). */
double vms_levels_speech_between(const vms_levels *l, double from, double to)
{
	size_t a = from <= 0 ? 0 : (size_t)(from / VMS_FRAME_S);
	size_t b = to <= 0 ? 0 : (size_t)(to / VMS_FRAME_S);
	if (b > l->n_frames)
		b = l->n_frames;
	size_t k = 0;
	for (size_t f = a; f < b; f++)
		k += l->speech[f];
	return k * VMS_FRAME_S;
}

/* Typical (80th percentile) energy of speech frames in [from, to). */
double vms_levels_speech_level(const vms_levels *l, double from, double to)
{
	size_t a = from <= 0 ? 0 : (size_t)(from / VMS_FRAME_S);
	size_t b = to <= 0 ? 0 : (size_t)(to / VMS_FRAME_S);
	if (b > l->n_frames)
		b = l->n_frames;
	if (a >= b)
		return -120.0;
	float *sp = malloc((b - a) * sizeof *sp);
	size_t k = 0;
	if (sp == NULL)
		return -120.0;
	for (size_t f = a; f < b; f++)
		if (l->speech[f])
			sp[k++] = l->frame_db[f];
	double r = k ? vad_percentile(sp, k, 0.80) : -120.0;
	free(sp);
	return r;
}

#define VAD_PITCH_LAG_MIN 40  /* 400 Hz at 16 kHz */
#define VAD_PITCH_LAG_MAX 160 /* 100 Hz ... the voices we screen */
#define VAD_PITCH_WIN 320     /* 20 ms correlated against its lagged self */
#define VAD_VOICED_R 0.5      /* normalised correlation of a voiced frame */
#define VAD_PITCH_STEP 0.12   /* neighbouring voiced frames: pitch within 12% */
#define VAD_RUN_MIN 6         /* a voiced run of 60 ms ... */
#define VAD_RUN_MAX 60        /* ... to 600 ms: a syllable or a few, not a note */
#define VAD_RUN_MOVES_ST 0.1  /* speech intonation moves; a horn's pitch does not */

/* Normalised autocorrelation peak of the frame at sample s: 0..1, and its lag. */
static double vad_voicing(const int16_t *x, size_t n, size_t s, int *lag)
{
	double best = 0.0, e0 = 0.0;
	*lag = 0;
	if (s + VAD_PITCH_WIN + VAD_PITCH_LAG_MAX > n)
		return 0.0;
	for (size_t i = 0; i < VAD_PITCH_WIN; i++)
		e0 += (double)x[s + i] * x[s + i];
	for (int k = VAD_PITCH_LAG_MIN; k <= VAD_PITCH_LAG_MAX; k++) {
		double xy = 0.0, e1 = 0.0;
		for (size_t i = 0; i < VAD_PITCH_WIN; i++) {
			double b = x[s + i + (size_t)k];
			xy += x[s + i] * b;
			e1 += b * b;
		}
		double r = xy / (sqrt(e0 * e1) + 1e-9);
		if (r > best) {
			best = r;
			*lag = k;
		}
	}
	return best;
}

/* Does a run of voiced frames (lags[0..n)) move in pitch like speech? */
static int vad_run_moves(const int *lags, size_t n)
{
	double sum = 0.0, sq = 0.0;
	if (n < VAD_RUN_MIN || n > VAD_RUN_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		double st = 12.0 * log2((double)VMS_RATE / lags[i]);
		sum += st;
		sq += st * st;
	}
	double mean = sum / (double)n;
	return sqrt(sq / (double)n - mean * mean) >= VAD_RUN_MOVES_ST;
}

/*
 * The share of the speech frames in [from, to) that lie in voiced runs
 * whose pitch moves the way intonation does: runs of 60-600 ms of voiced
 * frames with a smooth but not constant pitch.  Measured on real clips
 * (../shared/eval/real-speech/ after a rendered message): 0.42-0.79 for
 * recorded speech, at most 0.03 for a car horn, thunder, a dog, diffuse
 * and machine noise, which the energy test alone takes for speech.  A
 * monotone synthetic voice scores low too, so openline.c also counts
 * recognised words.  Costs one autocorrelation (121 lags of 20 ms) per
 * speech frame of the interval: about 4 ms per second of speech.
 */
double vms_levels_intonation_share(const vms_levels *l, const int16_t *x, size_t n, double from,
                                   double to)
{
	size_t a = from <= 0 ? 0 : (size_t)(from / VMS_FRAME_S);
	size_t b = to <= 0 ? 0 : (size_t)(to / VMS_FRAME_S);
	if (b > l->n_frames)
		b = l->n_frames;
	if (a >= b)
		return 0.0;
	int run[VAD_RUN_MAX + 1];
	size_t run_n = 0, run_len = 0, speech = 0, moving = 0;
	for (size_t f = a; f <= b; f++) {
		int lag = 0;
		int voiced = f < b && l->speech[f] &&
		             vad_voicing(x, n, f * VAD_HOP, &lag) >= VAD_VOICED_R;
		speech += f < b && l->speech[f];
		if (voiced && run_len > 0 &&
		    fabs((double)lag / run[run_n - 1] - 1.0) < VAD_PITCH_STEP) {
			if (run_n <= VAD_RUN_MAX)
				run[run_n++] = lag; /* a longer run is a note: judged too long */
			run_len++;
			continue;
		}
		if (run_len == run_n && vad_run_moves(run, run_n))
			moving += run_n;
		run_n = run_len = 0;
		if (voiced) {
			run[run_n++] = lag;
			run_len = 1;
		}
	}
	return speech ? (double)moving / (double)speech : 0.0;
}

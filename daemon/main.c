/*
 * main.c - vmscreend: watch spools, claim complete files, hand them to the
 * workers; reload on SIGHUP, stop cleanly on SIGTERM; talk to systemd.
 *
 * The main thread owns the spools' incoming/ side: inotify events and a
 * periodic rescan tell it where to look, a file is claimed only after two
 * looks at least settle_ms apart saw the same inode, size and mtime, and
 * no writer of any user holds it open (spool_claim's lease), and only while the
 * bounded queue has room, so a burst of any size waits in incoming/ and
 * costs no memory.
 *
 * main() reads the options (main_options) and the configuration
 * (main_load; main_check for --check), starts up (main_start_state, then
 * main_start_work), runs main_loop until SIGTERM or SIGINT (SIGHUP:
 * main_reload) and stops (main_stop).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "daemon.h"

#define MAIN_CANDS_MAX 4096     /* per spool: files being watched until stable */
#define MAIN_SKIPS_MAX 8192     /* per spool: entries already logged as skipped */
#define MAIN_SKIP_LOGS_PER_S 20 /* per spool: skip lines a second, then a count */
#define MAIN_TICK_MS 250

daemon_state D = {.mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

/* An incoming/ entry logged as skipped (a hash: names can be any length). */
struct skip {
	uint64_t hash;
	unsigned mark;
};

struct cand {
	char name[SPOOL_FILE_MAX + 1];
	ino_t ino;
	off_t size;
	struct timespec mtime;
	double first_seen;
	unsigned mark;
};

/* Main-thread state of one spool. */
struct watch {
	spool sp;
	int wd;
	int lockfd;
	int dirty;
	double next_rescan, next_retry, next_space, next_expire;
	int space_ok;
	struct cand *cands;
	size_t n_cands;
	unsigned mark;
	struct skip *skips; /* what was logged, by name hash, swept like cands */
	size_t n_skips;
	size_t n_unlogged; /* this scan: skips the full table could not note */
	int unsound;       /* a state directory is missing or not ours */
	double log_window; /* skip lines logged in the current second */
	unsigned log_lines, log_dropped;
	int overflow_logged;
	char ready[64][SPOOL_FILE_MAX + 1];
	int n_ready;
	int scanner; /* cluster mode: this node held the scanner lease last tick */
};

static struct watch *W;
static size_t NW;
static int inofd = -1;
static const char *config_path;
static cluster_conf main_cc; /* issue 13: cluster mode when main_cc.on */

static double main_now(void);
static int main_setup_spools(runtime *rt, struct watch **out, size_t *nout, char *err,
                             size_t errlen);
static int main_check_startup(runtime *rt, char *err, size_t errlen);
static void main_free_watches(struct watch *w, size_t n, struct watch *keep, size_t nkeep);
static void main_scan_incoming(struct watch *w, const dconf *dc);
static void main_scan_active(struct watch *w, int recovered);
static void main_reload(void);
static void main_inotify(void);
static void main_usage(FILE *f);

/* Monotonic seconds. */
static double main_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* --help text. */
static void main_usage(FILE *f)
{
	fprintf(f,
	        "usage: vmscreend [--config FILE] [--allow-root] [--check] [--version]\n"
	        "  --config FILE  configuration (default %s/vmscreend.conf)\n"
	        "  --allow-root   run as root (otherwise refused)\n"
	        "  --check        load the configuration and the models, then exit\n"
	        "Runs in the foreground; see vmscreend(8).\n",
	        VMS_SYSCONFDIR);
}

/*
 * Prepare every spool of a runtime: create the state directories, take the
 * per-spool daemon lock (one daemon per spool), watch incoming/.  Locks and
 * watches already held in the current set are reused, so a reload never
 * drops a lock it keeps needing.
 */
static int main_setup_spools(runtime *rt, struct watch **out, size_t *nout, char *err,
                             size_t errlen)
{
	struct watch *w = calloc(rt->sc.n_spools, sizeof *w);
	size_t i;

	if (w == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (i = 0; i < rt->sc.n_spools; i++) {
		char why[3072], inc[SPOOL_PATH_MAX];
		w[i].sp = rt->sc.spools[i];
		w[i].sp.claim_max_bytes = rt->settings.max_file_bytes;
		w[i].lockfd = -1;
		w[i].wd = -1;
		w[i].space_ok = 1;
		if (spool_init(&w[i].sp, 1, why, sizeof why) < 0) {
			snprintf(err, errlen, "spool %s: %s", w[i].sp.name, why);
			goto fail;
		}
		for (size_t k = 0; k < NW; k++)
			if (strcmp(W[k].sp.path, w[i].sp.path) == 0 && W[k].lockfd >= 0) {
				w[i].lockfd = W[k].lockfd; /* moved over */
				w[i].wd = W[k].wd;
			}
		/* cluster nodes share the lock; a single daemon holds it alone */
		if (w[i].lockfd < 0 &&
		    (w[i].lockfd = main_cc.on ? spool_lock_shared(&w[i].sp, "daemon")
		                              : spool_lock(&w[i].sp, "daemon", 0)) < 0) {
			snprintf(err, errlen, "spool %s: %.2048s: %s", w[i].sp.name, w[i].sp.path,
			         errno != EWOULDBLOCK ? strerror(errno)
			         : main_cc.on ? "a vmscreend not in cluster mode is running on it"
			                      : "another vmscreend is running on it");
			goto fail;
		}
		if ((w[i].wd = spool_incoming_watch(&w[i].sp, inofd)) < 0) {
			int e = errno;
			spool_path(&w[i].sp, SPOOL_INCOMING, NULL, inc, sizeof inc);
			dlog(LOG_WARNING, "spool %s: inotify on %s: %s (rescans only)",
			     w[i].sp.name, inc, strerror(e));
		}
		w[i].cands = calloc(MAIN_CANDS_MAX, sizeof *w[i].cands);
		w[i].skips = calloc(MAIN_SKIPS_MAX, sizeof *w[i].skips);
		if (w[i].cands == NULL || w[i].skips == NULL) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		w[i].dirty = 1;
	}
	*out = w;
	*nout = rt->sc.n_spools;
	return 0;
fail:
	main_free_watches(w, i + 1 > rt->sc.n_spools ? rt->sc.n_spools : i + 1, W, NW);
	return -1;
}

/*
 * --check: what start-up would refuse, without starting (issue 10: --check
 * said OK for a config the daemon then refused).  Spool directories that
 * exist must be ones we may use (spool_init checks owner and mode); their
 * parents must exist for the rest to be created; the audit log's
 * directory must be writable; the webhooks (URLs, secret files and their
 * modes) must load.  0, or -1 with err.
 */
static int main_check_startup(runtime *rt, char *err, size_t errlen)
{
	char why[3072], dir[SPOOL_PATH_MAX];
	struct stat st;
	alert_hub *h;

	for (size_t i = 0; i < rt->sc.n_spools; i++) {
		const spool *sp = &rt->sc.spools[i];
		if (lstat(sp->path, &st) == 0) {
			if (spool_init(sp, -1, why, sizeof why) < 0) {
				snprintf(err, errlen, "%s", why);
				return -1;
			}
			continue;
		}
		snprintf(dir, sizeof dir, "%s", sp->path);
		if (lstat(dirname(dir), &st) < 0 || !S_ISDIR(st.st_mode)) {
			snprintf(err, errlen, "spool %s: %s: its parent directory does not exist",
			         sp->name, sp->path);
			return -1;
		}
	}
	snprintf(dir, sizeof dir, "%s", rt->sc.audit_log);
	if (access(dirname(dir), W_OK) < 0) {
		snprintf(err, errlen, "audit_log %s: its directory is not writable: %s",
		         rt->sc.audit_log, strerror(errno));
		return -1;
	}
	if (http_check(&rt->cfg, why, sizeof why) < 0) {
		snprintf(err, errlen, "%s", why);
		return -1;
	}
	if ((h = alert_hub_new(&rt->cfg, why, sizeof why)) == NULL) {
		snprintf(err, errlen, "webhooks: %s", why);
		return -1;
	}
	alert_hub_free(h);
	return 0;
}

/* Issue 18: say once when a lock has been waited for too long (and once
 * when it is taken again), as /healthz does. */
static void main_lock_stall_log(void)
{
	static int logged;
	char lock[300];
	double waited = spool_lock_stalled(lock, sizeof lock);

	if (waited > DAEMON_LOCK_STALL_S && !logged)
		dlog(LOG_ERR,
		     "lock %s: waited for %.0f s: another process holds it, and screening or "
		     "decisions wait for it (fuser -v %s)",
		     lock, waited, lock);
	else if (waited <= DAEMON_LOCK_STALL_S && logged)
		dlog(LOG_NOTICE, "locks: no wait longer than %.0f s any more", DAEMON_LOCK_STALL_S);
	logged = waited > DAEMON_LOCK_STALL_S;
}

/* Free a watch set; locks and watches that also appear in keep stay. */
static void main_free_watches(struct watch *w, size_t n, struct watch *keep, size_t nkeep)
{
	for (size_t i = 0; i < n; i++) {
		int kept = 0;
		for (size_t k = 0; k < nkeep; k++)
			if (keep[k].lockfd == w[i].lockfd && w[i].lockfd >= 0)
				kept = 1;
		if (!kept) {
			if (w[i].wd >= 0)
				inotify_rm_watch(inofd, w[i].wd);
			spool_unlock(w[i].lockfd);
		}
		free(w[i].cands);
		free(w[i].skips);
	}
	free(w);
}

/* FNV-1a of a name: the skip table's key. */
static uint64_t main_name_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/*
 * Log a skipped incoming/ entry once while it stays there (issue 10: names
 * over 195 bytes, and every entry past the 1,024th, were logged again on
 * every scan).  Bounded memory: past MAIN_SKIPS_MAX entries one summary
 * line says how many more there are.
 */
static void main_skip(struct watch *w, const char *name, const char *why)
{
	uint64_t h = main_name_hash(name);

	for (size_t i = 0; i < w->n_skips; i++)
		if (w->skips[i].hash == h) {
			w->skips[i].mark = w->mark;
			return;
		}
	if (w->n_skips == MAIN_SKIPS_MAX) {
		w->n_unlogged++;
		return;
	}
	w->skips[w->n_skips++] = (struct skip){h, w->mark};
	/* and at most MAIN_SKIP_LOGS_PER_S lines a second: a producer toggling
	 * a name between a file and a FIFO flooded the journal (second round
	 * of attacks: 2,600 lines a second) */
	double now = main_now();
	if (now - w->log_window >= 1.0) {
		if (w->log_dropped > 0)
			dlog(LOG_WARNING,
			     "spool %s: %u more skipped entries in incoming/ not logged",
			     w->sp.name, w->log_dropped);
		w->log_window = now;
		w->log_lines = 0;
		w->log_dropped = 0;
	}
	if (++w->log_lines > MAIN_SKIP_LOGS_PER_S) {
		w->log_dropped++;
		return;
	}
	dlog(LOG_NOTICE, "spool %s: incoming/%s: skipped: %s", w->sp.name, name, why);
}

/* A candidate that an earlier claim attempt logged as skipped stays noted
 * (so it is not logged again at the next attempt). */
static void main_skip_touch(struct watch *w, const char *name)
{
	uint64_t h = main_name_hash(name);

	for (size_t i = 0; i < w->n_skips; i++)
		if (w->skips[i].hash == h)
			w->skips[i].mark = w->mark;
}

/* After a scan: forget skips that went away; say once when the table
 * overflowed. */
static void main_skip_sweep(struct watch *w)
{
	for (size_t i = 0; i < w->n_skips;)
		if (w->skips[i].mark != w->mark)
			w->skips[i] = w->skips[--w->n_skips];
		else
			i++;
	if (w->n_unlogged > 0 && !w->overflow_logged)
		dlog(LOG_WARNING,
		     "spool %s: %zu more entries in incoming/ cannot be screened (not logged one "
		     "by one)",
		     w->sp.name, w->n_unlogged);
	w->overflow_logged = w->n_unlogged > 0;
	w->n_unlogged = 0;
}

struct scan_ctx {
	struct watch *w;
	const dconf *dc;
	double now;
};

/* spool_incoming_walk callback: track candidates, note the stable ones. */
static void main_scan_cb(const spool *sp, const char *name, const struct stat *st, const char *skip,
                         void *arg)
{
	struct scan_ctx *c = arg;
	struct watch *w = c->w;
	struct cand *k = NULL;

	main_skip_touch(w, name); /* noted skips stay noted while the name is there */
	if (st == NULL) {
		if (skip != NULL && name[0] != '.')
			main_skip(w, name, skip);
		else if (skip != NULL && strncmp(name, ".tmp", 4) != 0 &&
		         strncmp(name, ".claim-", 7) != 0) /* our own claim in progress */
			main_skip(w, name, skip);
		return;
	}
	for (size_t i = 0; i < w->n_cands; i++)
		if (strcmp(w->cands[i].name, name) == 0) {
			k = &w->cands[i];
			break;
		}
	if (k == NULL) {
		if (w->n_cands == MAIN_CANDS_MAX)
			return; /* seen on a later scan */
		k = &w->cands[w->n_cands++];
		snprintf(k->name, sizeof k->name, "%s", name);
		k->ino = st->st_ino;
		k->size = st->st_size;
		k->mtime = st->st_mtim;
		k->first_seen = c->now;
		k->mark = w->mark;
		return;
	}
	k->mark = w->mark;
	if (k->ino != st->st_ino || k->size != st->st_size ||
	    k->mtime.tv_sec != st->st_mtim.tv_sec || k->mtime.tv_nsec != st->st_mtim.tv_nsec) {
		k->ino = st->st_ino;
		k->size = st->st_size;
		k->mtime = st->st_mtim;
		k->first_seen = c->now;
		return;
	}
	if ((c->now - k->first_seen) * 1000.0 >= c->dc->settle_ms &&
	    w->n_ready < (int)(sizeof w->ready / sizeof w->ready[0]))
		snprintf(w->ready[w->n_ready++], sizeof w->ready[0], "%s", name);
}

/*
 * Are the state directories still there and still ours?  issue 10: after
 * `rm -rf active/` every claim failed and nothing said why.  Logged when it
 * turns bad and when it recovers; no claims meanwhile (files wait in
 * incoming/).
 */
static int main_spool_sound(struct watch *w)
{
	char err[SPOOL_PATH_MAX + 256];
	int ok = spool_init(&w->sp, 0, err, sizeof err) == 0;

	if (!ok && !w->unsound)
		dlog(LOG_CRIT, "%s: not claiming from this spool until it is repaired", err);
	else if (ok && w->unsound)
		dlog(LOG_NOTICE, "spool %s: its directories are sound again: claiming", w->sp.name);
	w->unsound = !ok;
	return ok;
}

/* Look at incoming/ and claim what is complete, as far as the queue has
 * room. */
static void main_scan_incoming(struct watch *w, const dconf *dc)
{
	struct scan_ctx c = {w, dc, main_now()};
	int room = main_cc.on ? cluster_claim_room() : queue_room();

	if (room <= 0)
		return;
	if (c.now >= w->next_space) {
		w->space_ok = main_spool_sound(w) && spool_space_ok(&w->sp, dc->min_free_mb);
		w->next_space = c.now + (w->space_ok ? 5.0 : 2.0);
	}
	if (!w->space_ok)
		return;
	w->dirty = 0;
	w->mark++;
	w->n_ready = 0;
	spool_incoming_walk(&w->sp, main_scan_cb, &c);
	main_skip_sweep(w);
	for (size_t i = 0; i < w->n_cands;) /* forget what went away */
		if (w->cands[i].mark != w->mark)
			w->cands[i] = w->cands[--w->n_cands];
		else
			i++;
	for (int r = 0; r < w->n_ready && room > 0; r++) {
		job j;
		memset(&j, 0, sizeof j);
		int rc = spool_claim(&w->sp, w->ready[r], &j.it);
		for (size_t i = 0; i < w->n_cands; i++)
			if (strcmp(w->cands[i].name, w->ready[r]) == 0) {
				w->cands[i] = w->cands[--w->n_cands];
				break;
			}
		if (rc != SPOOL_OK) {
			if (rc == SPOOL_ERR || rc == SPOOL_TEMPFAIL)
				metrics_error(ERR_CLAIM);
			if (rc == SPOOL_ERR)
				main_skip(w, w->ready[r], "cannot be claimed (see above)");
			if (rc == SPOOL_TOOBIG)
				main_skip(w, w->ready[r],
				          "not claimed: larger than screening.max_file_mb (it is "
				          "left "
				          "here; a gate never passes it)");
			if (rc == SPOOL_UNSURE)
				main_skip(
				        w, w->ready[r],
				        "not claimed: the kernel will not say whether its owner is "
				        "still writing it (a lease needs the file's owner or "
				        "CAP_LEASE; the shipped unit grants CAP_LEASE)");
			continue;
		}
		j.sp = w->sp;
		clock_gettime(CLOCK_REALTIME, &j.claimed);
		metrics_claimed();
		dlog(LOG_INFO, "spool %s: claimed incoming/%s as %s", w->sp.name, w->ready[r],
		     j.it.file);
		if (main_cc.on) { /* a node reads it from the stream (or the re-announce) */
			cluster_announce(&w->sp, j.it.file);
			room--;
			continue;
		}
		if (queue_push(&j) < 0)
			break; /* cannot happen (only we push); the retry scan will find it */
		room--;
	}
}

/* How often retention looks: a tenth of keep_days, at least every hour
 * and no more often than the rescan (a sweep reads every verdict of
 * released/ and rejected/). */
static double main_expire_interval(const spool *sp, const dconf *dc)
{
	double s = sp->keep_days * 86400.0 / 10;

	if (s > 3600)
		s = 3600;
	return s < dc->rescan_interval_s ? dc->rescan_interval_s : s;
}

/* spool_expire's keep: an alert that still waits in the outbox links to
 * the item (issue 18: its link must not 404). */
static int main_expire_keep(const spool *sp, const spool_item *it, void *arg)
{
	return alert_refs_has(arg, sp->name, it->id);
}

/* Retention for one spool, keeping what waiting alerts name. */
static void main_expire(const spool *sp, const char *audit_log)
{
	alert_refs *refs = alert_hub_refs(D.hub);

	spool_expire(sp, audit_log, time(NULL), main_expire_keep, refs);
	alert_refs_free(refs);
}

struct active_ctx {
	struct watch *w;
	int recovered;
	int room;
};

/* spool_walk callback for active/: queue what nobody is working on. */
static int main_active_cb(const spool *sp, const spool_item *it, void *arg)
{
	struct active_ctx *c = arg;
	job j;

	if (c->room <= 0)
		return 1;
	if (job_inflight(sp->name, it->file))
		return 0;
	memset(&j, 0, sizeof j);
	j.sp = *sp;
	j.it = *it;
	j.recovered = 1;
	clock_gettime(CLOCK_REALTIME, &j.claimed);
	if (c->recovered)
		dlog(LOG_NOTICE, "spool %s: %s was in active/: screening it again", sp->name,
		     it->file);
	if (queue_push(&j) < 0)
		return 1;
	c->room--;
	return 0;
}

/* Queue files in active/ that no worker holds: at start-up (recovery after
 * a crash) and periodically (files a temporary error left behind). */
static void main_scan_active(struct watch *w, int recovered)
{
	struct active_ctx c = {w, recovered, queue_room()};

	if (c.room > 0)
		spool_walk(&w->sp, SPOOL_ACTIVE, main_active_cb, &c);
}

/*
 * Cluster mode, each tick: only the holder of the spool's scanner lease
 * scans incoming/, re-announces what active/ holds unannounced (every
 * retry_interval_s) and expires; when it takes the lease it first repairs
 * what a dead scanner left (interrupted claims, strays), under the review
 * lock (a write another node has in progress in active/ may then fail
 * once, and is retried).  Costs nothing on the other nodes.
 */
static void main_cluster_spool(struct watch *w, const dconf *dc, double now)
{
	int scanner = cluster_is_scanner(w->sp.name);

	if (scanner && !w->scanner) {
		dlog(LOG_NOTICE, "cluster: spool %s: this node scans incoming/", w->sp.name);
		int lk = spool_lock(&w->sp, "review", 1);
		int n = spool_repair(&w->sp);
		spool_unlock(lk);
		if (n > 0)
			dlog(LOG_NOTICE, "spool %s: repaired %d file(s) left apart by a crash",
			     w->sp.name, n);
		w->dirty = 1;
		w->next_retry = now;
	}
	w->scanner = scanner;
	if (!scanner)
		return;
	if (now >= w->next_retry) {
		cluster_reannounce(&w->sp);
		w->next_retry = now + dc->retry_interval_s;
	}
	if (now >= w->next_rescan) {
		w->dirty = 1;
		w->next_rescan = now + dc->rescan_interval_s;
	}
	if (w->dirty || w->n_cands > 0)
		main_scan_incoming(w, dc);
	if (w->sp.keep_days > 0 && now >= w->next_expire) {
		main_expire(&w->sp, D.current->sc.audit_log);
		w->next_expire = now + main_expire_interval(&w->sp, dc);
	}
}

/* Drain inotify: any event in a spool's incoming/ marks it for a scan. */
static void main_inotify(void)
{
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;

	while ((n = read(inofd, buf, sizeof buf)) > 0) {
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			for (size_t i = 0; i < NW; i++)
				if (ev->wd == W[i].wd || (ev->mask & IN_Q_OVERFLOW))
					W[i].dirty = 1;
			p += sizeof *ev + ev->len;
		}
	}
}

/*
 * SIGHUP: build a complete new runtime (config, spools, rule packs, models)
 * beside the running one; only if all of it works, swap it in.  Workers pick
 * it up between files; the old one is freed when the last worker lets go.
 */
static void main_reload(void)
{
	char err[6144];
	struct watch *nw = NULL;
	size_t nn = 0;
	runtime *rt, *old;

	sd_notify(0, "RELOADING=1\nSTATUS=reloading configuration");
	dlog(LOG_NOTICE, "reloading %s", config_path);
	rt = runtime_load(config_path, NULL, D.n_workers, err, sizeof err);
	if (rt != NULL && main_setup_spools(rt, &nw, &nn, err, sizeof err) < 0) {
		runtime_unref(rt);
		rt = NULL;
	}
	if (rt == NULL) {
		dlog(LOG_ERR, "reload refused: %s; keeping the running configuration", err);
		metrics_error(ERR_RELOAD);
		sd_notify(0, "READY=1\nSTATUS=reload refused (see log); running with the old "
		             "configuration");
		return;
	}
	if (rt->dc.workers != D.n_workers || rt->dc.queue_size != D.q_cap)
		dlog(LOG_WARNING, "workers and queue_size changes take effect at restart");
	for (size_t i = 0; i < nn; i++) {
		int is_new = 1;
		for (size_t k = 0; k < NW; k++)
			if (strcmp(W[k].sp.path, nw[i].sp.path) == 0)
				is_new = 0;
		if (is_new && main_cc.on) {
			dlog(LOG_WARNING,
			     "cluster: spool %s: spools added by a reload are screened "
			     "after a restart",
			     nw[i].sp.name);
		} else if (is_new) {
			int lk = spool_lock(&nw[i].sp, "review", 1);
			spool_repair(&nw[i].sp);
			spool_unlock(lk);
			main_scan_active(&nw[i], 1);
		}
	}
	pthread_mutex_lock(&D.mu);
	old = D.current;
	rt->gen = old->gen + 1;
	D.current = rt;
	pthread_cond_broadcast(&D.cond);
	pthread_mutex_unlock(&D.mu);
	main_free_watches(W, NW, nw, nn);
	W = nw;
	NW = nn;
	cluster_screening(&rt->settings);
	for (size_t i = 0; i < NW; i++)
		cluster_reload(&W[i].sp, 1);
	runtime_unref(old);
	dlog(LOG_NOTICE, "reloaded %s: %zu spool(s), generation %u", config_path, NW, rt->gen);
	sd_notify(0, "READY=1\nSTATUS=configuration reloaded");
}

/* --------------------------------------------------------------- start-up */

/* The options: -1 to go on, else the exit status (--version, --help, a
 * usage error).  --config sets config_path. */
static int main_options(int argc, char **argv, int *allow_root, int *check_only)
{
	static const struct option opts[] = {
	        {"config", required_argument, NULL, 'c'}, {"allow-root", no_argument, NULL, 'R'},
	        {"check", no_argument, NULL, 'k'},        {"version", no_argument, NULL, 'V'},
	        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
	int opt;

	while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config_path = optarg;
			break;
		case 'R':
			*allow_root = 1;
			break;
		case 'k':
			*check_only = 1;
			break;
		case 'V':
			printf("vmscreend %s\n", VMS_VERSION);
			return 0;
		case 'h':
			main_usage(stdout);
			return 0;
		default:
			main_usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		main_usage(stderr);
		return 2;
	}
	return -1;
}

/*
 * Configuration load at start-up: the file is read once into peek, the
 * root check reads its top level, then the runtime takes over what was
 * parsed, and the cluster settings are read from it.  The runtime, or
 * NULL (logged).  peek belongs to main(), whose frame outlives everything:
 * the settings the runtime takes over still point back at it.
 */
static runtime *main_load(config_t *peek, int allow_root)
{
	char err[6144];
	dconf pdc;
	runtime *rt;

	/* read once (src/conf): the root check needs only the top level */
	if (vms_conf_read(peek, config_path, err, sizeof err) < 0) {
		dlog(LOG_ERR, "%s", err);
		return NULL;
	}
	if (dconf_load(peek, &pdc, err, sizeof err) < 0) {
		dlog(LOG_ERR, "%s: %s", config_path, err);
		config_destroy(peek);
		return NULL;
	}
	if (geteuid() == 0 && !allow_root && !pdc.allow_root) {
		dlog(LOG_ERR,
		     "refusing to run as root: run as the vmscreen user (see vmscreend(8)), "
		     "or set allow_root = true / pass --allow-root");
		config_destroy(peek);
		return NULL;
	}

	/* the file is read once: the runtime takes over what was parsed */
	if ((rt = runtime_load(config_path, peek, 0, err, sizeof err)) == NULL) {
		dlog(LOG_ERR, "%s", err);
		return NULL;
	}
	if (cluster_conf_load(&rt->cfg, &main_cc, err, sizeof err) < 0) {
		dlog(LOG_ERR, "%s: %s", config_path, err);
		runtime_unref(rt);
		return NULL;
	}
	return rt;
}

/* --check: say whether start-up would go ahead; the exit status. */
static int main_check(runtime *rt)
{
	char err[6144];
	int ok = main_check_startup(rt, err, sizeof err) == 0;

	if (ok)
		printf("%s: OK (%zu spool(s), %d worker(s))\n", config_path, rt->sc.n_spools,
		       rt->n_vw);
	else
		dlog(LOG_ERR, "%s", err);
	runtime_unref(rt);
	return ok ? 0 : 1;
}

/* Start-up, first half: the queue and the workers' tables, the spools
 * (directories, locks, watches), the audit log.  0, or -1 (logged). */
static int main_start_state(runtime *rt)
{
	char err[6144];

	D.current = rt;
	D.n_workers = rt->n_vw;
	D.q_cap = rt->dc.queue_size;
	D.q = calloc((size_t)D.q_cap, sizeof *D.q);
	D.busy = calloc((size_t)D.n_workers, sizeof *D.busy);
	D.busy_used = calloc((size_t)D.n_workers, sizeof *D.busy_used);
	D.busy_since = calloc((size_t)D.n_workers, sizeof *D.busy_since);
	D.threads = calloc((size_t)D.n_workers, sizeof *D.threads);
	if (!D.q || !D.busy || !D.busy_used || !D.busy_since || !D.threads) {
		dlog(LOG_ERR, "out of memory");
		return -1;
	}
	if (main_setup_spools(rt, &W, &NW, err, sizeof err) < 0) {
		dlog(LOG_ERR, "%s", err);
		return -1;
	}
	{ /* the audit log must be writable (and readable: each line is chained
	   * to the last one) before we accept anything */
		int fd = open(rt->sc.audit_log,
		              O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0640);
		if (fd < 0) {
			dlog(LOG_ERR, "audit log %s: %s", rt->sc.audit_log, strerror(errno));
			return -1;
		}
		close(fd);
	}
	return 0;
}

/* Start-up, second half: webhook delivery, repair after a crash, the
 * workers, what active/ still holds, the cluster, the HTTP server.  0, or
 * -1 (logged). */
static int main_start_work(runtime *rt)
{
	char err[6144];

	if ((D.hub = alert_hub_new(&rt->cfg, err, sizeof err)) == NULL) {
		dlog(LOG_ERR, "%s: webhooks: %s", config_path, err);
		return -1;
	}
	if (alert_hub_start(D.hub) < 0) {
		dlog(LOG_ERR, "cannot start webhook delivery");
		return -1;
	}
	for (size_t i = 0; i < NW && !main_cc.on; i++) { /* cluster: the scanner repairs */
		int lk = spool_lock(&W[i].sp, "review", 1);
		int n = spool_repair(&W[i].sp);
		spool_unlock(lk);
		if (n > 0)
			dlog(LOG_NOTICE, "spool %s: repaired %d file(s) left apart by a crash",
			     W[i].sp.name, n);
	}
	for (int i = 0; i < D.n_workers; i++)
		if (pthread_create(&D.threads[i], NULL, worker_main, (void *)(intptr_t)i) != 0) {
			dlog(LOG_ERR, "cannot start worker thread %d", i);
			return -1;
		}
	for (size_t i = 0; i < NW && !main_cc.on; i++) { /* cluster: the stream has them */
		main_scan_active(&W[i], 1);
		W[i].next_retry = main_now() + rt->dc.retry_interval_s;
	}
	if (main_cc.on) {
		spool sps[NW ? NW : 1];
		for (size_t i = 0; i < NW; i++)
			sps[i] = W[i].sp;
		cluster_screening(&rt->settings);
		if (cluster_start(&main_cc, sps, NW, rt->dc.queue_size, err, sizeof err) < 0) {
			dlog(LOG_ERR, "%s", err);
			return -1;
		}
	}
	if (http_start(&rt->cfg, err, sizeof err) < 0) {
		dlog(LOG_ERR, "%s: %s", config_path, err);
		return -1;
	}
	return 0;
}

/* -------------------------------------------------------------- main loop */

/* When the main loop's timers next fire (monotonic seconds). */
struct main_timers {
	double wd_next, next_metrics, next_status, next_outbox;
};

/* One tick of one spool outside cluster mode: retry what active/ holds,
 * look at incoming/ when due or told to, expire. */
static void main_tick_spool(struct watch *w, const runtime *rt, double now)
{
	if (now >= w->next_retry) {
		main_scan_active(w, 0);
		w->next_retry = now + rt->dc.retry_interval_s;
	}
	if (now >= w->next_rescan) {
		w->dirty = 1;
		w->next_rescan = now + rt->dc.rescan_interval_s;
	}
	if (w->dirty || w->n_cands > 0)
		main_scan_incoming(w, &rt->dc);
	if (w->sp.keep_days > 0 && now >= w->next_expire) {
		main_expire(&w->sp, rt->sc.audit_log);
		w->next_expire = now + main_expire_interval(&w->sp, &rt->dc);
	}
}

/* systemd's watchdog: ping only while no worker is stuck on one file for
 * longer than the watchdog allows four times over. */
static void main_watchdog(uint64_t wd_usec)
{
	int stuck = 0;
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	pthread_mutex_lock(&D.mu);
	for (int i = 0; i < D.n_workers; i++)
		if (D.busy_used[i] &&
		    (ts.tv_sec - D.busy_since[i].tv_sec) * 1e6 > 4.0 * (double)wd_usec &&
		    ts.tv_sec - D.busy_since[i].tv_sec > 600)
			stuck = 1;
	pthread_mutex_unlock(&D.mu);
	if (!stuck)
		sd_notify(0, "WATCHDOG=1");
}

/* What the main loop does on timers besides the spools: the outbox, the
 * metrics file, the status line (and stalled locks), the watchdog. */
static void main_tick_timers(const runtime *rt, double now, uint64_t wd_usec, struct main_timers *t)
{
	if (now >= t->next_outbox) { /* alerts queued by `vmscreen release|reject` */
		alert_hub_rescan(D.hub);
		t->next_outbox = now + rt->dc.rescan_interval_s;
	}
	if (rt->dc.metrics_file[0] && now >= t->next_metrics) {
		if (metrics_write(rt->dc.metrics_file) < 0)
			dlog(LOG_WARNING, "metrics file %s: cannot write", rt->dc.metrics_file);
		t->next_metrics = now + rt->dc.metrics_interval_s;
	}
	if (now >= t->next_status) {
		char st[256], msg[300];
		main_lock_stall_log();
		metrics_status(st, sizeof st);
		snprintf(msg, sizeof msg, "STATUS=%s", st);
		sd_notify(0, msg);
		t->next_status = now + 5.0;
	}
	if (wd_usec > 0 && now >= t->wd_next) {
		main_watchdog(wd_usec);
		t->wd_next = now + (double)wd_usec / 2e6;
	}
}

/* The main loop, until SIGTERM or SIGINT: signals (SIGHUP reloads),
 * inotify, each spool's tick, the timers. */
static void main_loop(int sfd, uint64_t wd_usec)
{
	struct main_timers t = {0, 0, 0, 0};
	runtime *rt;

	while (!atomic_load(&D.stopping)) {
		struct pollfd pf[2] = {{sfd, POLLIN, 0}, {inofd, POLLIN, 0}};
		struct signalfd_siginfo si;
		double now;
		int pending = 0;

		for (size_t i = 0; i < NW; i++)
			pending |= W[i].n_cands > 0 || W[i].dirty;
		poll(pf, 2, pending ? MAIN_TICK_MS : 1000);
		while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
			if (si.ssi_signo == SIGHUP)
				main_reload();
			else {
				dlog(LOG_NOTICE, "signal %u: stopping", si.ssi_signo);
				atomic_store(&D.stopping, 1);
			}
		}
		if (atomic_load(&D.stopping))
			break;
		main_inotify();
		rt = D.current; /* only main changes it */
		now = main_now();
		for (size_t i = 0; i < NW; i++) {
			if (main_cc.on) {
				main_cluster_spool(&W[i], &rt->dc, now);
				continue;
			}
			main_tick_spool(&W[i], rt, now);
		}
		main_tick_timers(rt, now, wd_usec, &t);
	}
}

/* --------------------------------------------------------------- shutdown */

/* Wait for the workers to finish the files in hand, at most stop_timeout_s:
 * 1 when all of them did. */
static int main_join_workers(void)
{
	int all_joined = 1;
	struct timespec dl;

	clock_gettime(CLOCK_REALTIME, &dl);
	double t = D.current->dc.stop_timeout_s;
	dl.tv_sec += (time_t)t;
	dl.tv_nsec += (long)((t - (double)(time_t)t) * 1e9);
	if (dl.tv_nsec >= 1000000000L) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000L;
	}
	for (int i = 0; i < D.n_workers; i++)
		if (pthread_timedjoin_np(D.threads[i], NULL, &dl) != 0)
			all_joined = 0;
	return all_joined;
}

/* Stop cleanly: the workers finish (or, past stop_timeout_s, leave their
 * files in active/ for the next start), then everything is let go.  The
 * exit status. */
static int main_stop(int sfd)
{
	sd_notify(0, "STOPPING=1\nSTATUS=finishing files in hand");
	pthread_mutex_lock(&D.mu);
	pthread_cond_broadcast(&D.cond);
	pthread_mutex_unlock(&D.mu);
	http_stop(); /* before the runtime and the hub it reads go */
	if (!main_join_workers()) {
		dlog(LOG_WARNING, "workers still screening after stop_timeout_s: exiting; their "
		                  "files stay in active/ and are screened at the next start");
		_exit(0);
	}
	cluster_stop(); /* after the workers: their last acks went out */
	int left = queue_depth();
	if (left > 0)
		dlog(LOG_NOTICE, "%d claimed file(s) left in active/ for the next start", left);
	if (D.current->dc.metrics_file[0])
		metrics_write(D.current->dc.metrics_file);
	alert_hub_stop(D.hub);
	alert_hub_free(D.hub);
	main_free_watches(W, NW, NULL, 0);
	runtime_unref(D.current);
	free(D.q);
	free(D.busy);
	free(D.busy_used);
	free(D.busy_since);
	free(D.threads);
	close(inofd);
	close(sfd);
	metrics_free();
	dlog(LOG_NOTICE, "vmscreend stopped");
	return 0;
}

/* Parse arguments, load everything, run the loop, stop cleanly. */
int main(int argc, char **argv)
{
	char defconf[VMS_PATH_MAX];
	int allow_root = 0, check_only = 0, sfd, rc;
	sigset_t sigs;
	uint64_t wd_usec = 0;
	config_t peek; /* main_load: the runtime's settings point back at it */
	runtime *rt;

	/* Block the signals we handle before anything else, so a SIGTERM in
	 * the first moments of start-up is read from the signalfd below (and
	 * stops us cleanly) instead of killing the process; threads inherit
	 * the mask. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	snprintf(defconf, sizeof defconf, "%s/vmscreend.conf", VMS_SYSCONFDIR);
	config_path = defconf;
	if ((rc = main_options(argc, argv, &allow_root, &check_only)) >= 0)
		return rc;
	umask(027);
	signal(SIGPIPE, SIG_IGN);
	/* a claim holds a read lease while it copies; a writer opening the file
	 * then breaks it, which the kernel signals with SIGIO (default: die) */
	signal(SIGIO, SIG_IGN);
	if ((sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC)) < 0 ||
	    (inofd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0) {
		dlog(LOG_ERR, "signalfd/inotify: %s", strerror(errno));
		return 1;
	}
	metrics_init();
	if ((rt = main_load(&peek, allow_root)) == NULL)
		return 1;
	if (check_only)
		return main_check(rt);
	if (main_start_state(rt) < 0 || main_start_work(rt) < 0)
		return 1;
	if (sd_watchdog_enabled(0, &wd_usec) <= 0)
		wd_usec = 0;
	dlog(LOG_NOTICE, "vmscreend %s ready: %zu spool(s), %d worker(s), config %s", VMS_VERSION,
	     NW, D.n_workers, config_path);
	sd_notify(0, "READY=1\nSTATUS=ready");
	main_loop(sfd, wd_usec);
	return main_stop(sfd);
}

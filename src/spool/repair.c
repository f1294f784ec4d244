/*
 * repair.c - repair after a crash or a failed rename.  The audio's
 * directory is an item's state, and everything else of the item follows
 * it.  It owns two operations of the fs backend: gather (the companions a
 * failed or interrupted move left in another state, and the temp files of
 * dead writers, whenever either program touches an item) and repair (at
 * start-up, under the "review" lock: claims a crash interrupted finished
 * or undone, attempt counters of items gone, stale temp files and the
 * companions of unfinished claims removed, strays put back beside their
 * audio).
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "spool/spool_int.h"

#define SPOOL_TMP_STALE_S 60 /* temp files older than this are leftovers */

/*
 * Temp files of this item whose writer is dead: spool_write_atomic names
 * them .tmp-PID-N-FILE, so a writer killed mid-write (a review command,
 * the daemon) is known by its pid.  They hold nothing that was committed.
 */
static void spool_item_dead_temps(const spool *sp, spool_state st, const spool_item *it)
{
	char dir[SPOOL_PATH_MAX], p[SPOOL_PATH_MAX], key[SPOOL_ID_LEN + 3];
	size_t plen = strlen(SPOOL_TMP_PREFIX);
	struct dirent *de;
	DIR *d;

	snprintf(key, sizeof key, "-%s_", it->id);
	spool_path(sp, st, NULL, dir, sizeof dir);
	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		char *end;
		long pid;
		if (strncmp(de->d_name, SPOOL_TMP_PREFIX, plen) != 0 ||
		    strstr(de->d_name, key) == NULL)
			continue;
		pid = strtol(de->d_name + plen, &end, 10);
		if (end == de->d_name + plen || *end != '-' || pid <= 0 || pid == getpid() ||
		    kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		spool_path(sp, st, de->d_name, p, sizeof p);
		if (unlink(p) == 0)
			spool_log(LOG_NOTICE, "spool %s: removed %s/%s (its writer, pid %ld, died)",
			          sp->name, spool_state_name(st), de->d_name, pid);
	}
	closedir(d);
}

/*
 * Companions in another state than the audio's belong beside it: move them
 * there (never replacing one that is already there; that conflict is
 * logged and left for a person).  Refreshes it->has_*.
 */
int spool_fs_gather(const spool *sp, spool_item *it)
{
	char names[SPOOL_NCOMP][SPOOL_FILE_MAX + 64], src[SPOOL_PATH_MAX], dst[SPOOL_PATH_MAX];
	int n = 0;
	struct stat sb;

	spool_item_companions(it, names);
	for (int st = SPOOL_ACTIVE; st < SPOOL_NSTATES; st++) {
		spool_item_dead_temps(sp, (spool_state)st, it);
		if (st == (int)it->state)
			continue;
		for (int i = 0; i < SPOOL_NCOMP; i++) {
			spool_path(sp, (spool_state)st, names[i], src, sizeof src);
			if (lstat(src, &sb) < 0 || !S_ISREG(sb.st_mode))
				continue;
			spool_path(sp, it->state, names[i], dst, sizeof dst);
			if (spool_rename_noreplace(src, dst) < 0) {
				spool_log(LOG_ERR,
				          "spool %s: %s is in %s/ but its audio in %s/: %s",
				          sp->name, names[i], spool_state_name((spool_state)st),
				          spool_state_name(it->state), strerror(errno));
				continue;
			}
			spool_log(LOG_NOTICE, "spool %s: %s brought back from %s/ to %s/", sp->name,
			          names[i], spool_state_name((spool_state)st),
			          spool_state_name(it->state));
			n++;
		}
	}
	if (n > 0) {
		for (int st = SPOOL_ACTIVE; st < SPOOL_NSTATES; st++) {
			spool_path(sp, (spool_state)st, NULL, dst, sizeof dst);
			spool_fsync_dir(dst);
		}
		spool_item tmp;
		if (spool_item_fill(sp, it->state, it->file, &tmp) == 0)
			*it = tmp;
	}
	return n;
}

struct spool_rent {
	char id[SPOOL_ID_LEN + 1];
	spool_state st;
	char *file;
	int audio;
};

/* Order repair entries by id, audio first. */
static int spool_rent_cmp(const void *a, const void *b)
{
	const struct spool_rent *x = a, *y = b;
	int c = strcmp(x->id, y->id);
	return c != 0 ? c : y->audio - x->audio;
}

/* Remove a temp file left by a crashed writer, if it is old enough that no
 * live writer can still own it. */
static void spool_repair_tmp(const spool *sp, spool_state st, const char *file, time_t now)
{
	char path[SPOOL_PATH_MAX];
	struct stat sb;

	spool_path(sp, st, file, path, sizeof path);
	if (lstat(path, &sb) == 0 && S_ISREG(sb.st_mode) &&
	    (st == SPOOL_ACTIVE || now - sb.st_mtime > SPOOL_TMP_STALE_S)) {
		if (unlink(path) == 0)
			spool_log(LOG_INFO, "spool %s: removed stale temp file %s/%s", sp->name,
			          spool_state_name(st), file);
	}
}

/* 1 when the claim record of an item says its sidecar was copied. */
static int spool_claim_copied_sidecar(const spool *sp, const spool_item *it)
{
	char p[SPOOL_PATH_MAX], err[SPOOL_PATH_MAX + 512];
	char *text;
	json_t *o;
	int copied = 0;

	spool_item_claim(sp, it, p, sizeof p);
	if ((text = spool_read_file(p, 65536, err, sizeof err)) == NULL)
		return 0;
	if ((o = json_loads(text, 0, NULL)) != NULL) {
		const char *v = json_string_value(json_object_get(o, "sidecar"));
		copied = v != NULL && strcmp(v, "copied") == 0;
		json_decref(o);
	}
	free(text);
	return copied;
}

/* 1 when active/ holds a file of item id. */
static int spool_active_has(const spool *sp, const char *id)
{
	char dir[SPOOL_PATH_MAX];
	struct dirent *de;
	int found = 0;
	DIR *d;

	spool_path(sp, SPOOL_ACTIVE, NULL, dir, sizeof dir);
	if ((d = opendir(dir)) == NULL)
		return 1; /* cannot tell: keep */
	while (!found && (de = readdir(d)) != NULL)
		found = strncmp(de->d_name, id, SPOOL_ID_LEN) == 0 &&
		        de->d_name[SPOOL_ID_LEN] == '_';
	closedir(d);
	return found;
}

/* Attempt counters (active/.attempts-ID) of items no longer in active/: a
 * failed unlink after the move left them for good (second round of
 * attacks).  Run at start-up, before any worker counts. */
static int spool_repair_attempts(const spool *sp)
{
	char dir[SPOOL_PATH_MAX], p[SPOOL_PATH_MAX];
	const size_t plen = strlen(".attempts-");
	struct dirent *de;
	int n = 0;
	DIR *d;

	spool_path(sp, SPOOL_ACTIVE, NULL, dir, sizeof dir);
	if ((d = opendir(dir)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, ".attempts-", plen) != 0 ||
		    !spool_id_ok(de->d_name + plen) || spool_active_has(sp, de->d_name + plen))
			continue;
		spool_path(sp, SPOOL_ACTIVE, de->d_name, p, sizeof p);
		if (unlink(p) == 0) {
			spool_log(LOG_NOTICE, "spool %s: removed active/%s: its item has gone",
			          sp->name, de->d_name);
			n++;
		}
	}
	closedir(d);
	return n;
}

/*
 * Claims a crash interrupted: incoming/.claim-ID_NAME is the producer's
 * file.  If item ID exists, the claim got as far as the copy: finish it
 * (remove the producer's files).  Otherwise give the file its name back;
 * the half-written companions in active/ are removed by spool_repair().
 */
static int spool_repair_claims(const spool *sp)
{
	char dir[SPOOL_PATH_MAX], a[SPOOL_PATH_MAX], b[SPOOL_PATH_MAX];
	size_t plen = strlen(SPOOL_CLAIM_PREFIX);
	struct dirent *de;
	spool_item it;
	int n = 0;
	DIR *d;

	spool_path(sp, SPOOL_INCOMING, NULL, dir, sizeof dir);
	if ((d = opendir(dir)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		char id[SPOOL_ID_LEN + 1];
		const char *file = de->d_name + plen;
		if (strncmp(de->d_name, SPOOL_CLAIM_PREFIX, plen) != 0 ||
		    spool_file_id(file, id) < 0 || strlen(file) >= sizeof it.file)
			continue;
		if (spool_fs_find(sp, id, &it) == 0) {
			spool_claim_finish(sp, &it, spool_claim_copied_sidecar(sp, &it));
			spool_log(LOG_NOTICE, "spool %s: finished the interrupted claim of %s",
			          sp->name, it.file);
		} else {
			spool_path(sp, SPOOL_INCOMING, de->d_name, a, sizeof a);
			spool_path(sp, SPOOL_INCOMING, file + SPOOL_ID_LEN + 1, b, sizeof b);
			if (spool_rename_noreplace(a, b) < 0) {
				spool_log(LOG_ERR,
				          "spool %s: cannot undo the claim of incoming/%s: %s",
				          sp->name, file + SPOOL_ID_LEN + 1, strerror(errno));
				continue;
			}
			spool_log(LOG_NOTICE,
			          "spool %s: undid the interrupted claim of incoming/%s", sp->name,
			          file + SPOOL_ID_LEN + 1);
		}
		n++;
	}
	closedir(d);
	if (n > 0)
		spool_fsync_dir(dir);
	return n;
}

/*
 * Put every companion file back beside its audio.  The audio's directory is
 * the item's state (spool_fs_move moves it last), so a crash mid-move is
 * undone here and the move is simply made again later.  Stale temp files
 * go too.  Run by the daemon at start-up under the "review" lock.
 */
int spool_fs_repair(const spool *sp)
{
	struct spool_rent *ents = NULL;
	size_t n = 0, cap = 0;
	int repaired = spool_repair_claims(sp) + spool_repair_attempts(sp);
	time_t now = time(NULL);

	for (int st = SPOOL_ACTIVE; st < SPOOL_NSTATES; st++) {
		char dir[SPOOL_PATH_MAX];
		struct dirent *de;
		DIR *d;

		spool_path(sp, (spool_state)st, NULL, dir, sizeof dir);
		if ((d = opendir(dir)) == NULL)
			continue;
		while ((de = readdir(d)) != NULL) {
			char id[SPOOL_ID_LEN + 1];
			if (strncmp(de->d_name, SPOOL_TMP_PREFIX, strlen(SPOOL_TMP_PREFIX)) == 0) {
				spool_repair_tmp(sp, (spool_state)st, de->d_name, now);
				continue;
			}
			if (spool_file_id(de->d_name, id) < 0)
				continue;
			if (n == cap) {
				size_t nc = cap ? cap * 2 : 256;
				struct spool_rent *ne = realloc(ents, nc * sizeof *ne);
				if (ne == NULL) {
					closedir(d);
					repaired = -1;
					goto out;
				}
				ents = ne;
				cap = nc;
			}
			memcpy(ents[n].id, id, sizeof id);
			ents[n].st = (spool_state)st;
			ents[n].audio = !spool_name_is_json(de->d_name);
			if ((ents[n].file = strdup(de->d_name)) == NULL) {
				closedir(d);
				repaired = -1;
				goto out;
			}
			n++;
		}
		closedir(d);
	}
	if (n > 0)
		qsort(ents, n, sizeof *ents, spool_rent_cmp);
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && strcmp(ents[j].id, ents[i].id) == 0)
			j++;
		if (!ents[i].audio) {
			/* companions without audio: delivery took it (not ours), or in
			 * active/ a claim that never finished (its producer file got
			 * its name back above): those go */
			for (size_t k = i; k < j; k++) {
				char p[SPOOL_PATH_MAX];
				if (ents[k].st != SPOOL_ACTIVE)
					continue;
				spool_path(sp, SPOOL_ACTIVE, ents[k].file, p, sizeof p);
				if (unlink(p) == 0) {
					spool_log(LOG_NOTICE,
					          "spool %s: removed active/%s of an unfinished "
					          "claim",
					          sp->name, ents[k].file);
					repaired++;
				}
			}
			i = j;
			continue;
		}
		if (i + 1 < j && ents[i + 1].audio)
			spool_log(LOG_ERR, "spool %s: item %s has audio in two states (%s, %s)",
			          sp->name, ents[i].id, spool_state_name(ents[i].st),
			          spool_state_name(ents[i + 1].st));
		for (size_t k = i + 1; k < j; k++) {
			char src[SPOOL_PATH_MAX], dst[SPOOL_PATH_MAX];
			if (ents[k].audio || ents[k].st == ents[i].st)
				continue;
			spool_path(sp, ents[k].st, ents[k].file, src, sizeof src);
			spool_path(sp, ents[i].st, ents[k].file, dst, sizeof dst);
			if (rename(src, dst) == 0) {
				spool_log(LOG_NOTICE, "spool %s: repaired %s: %s back to %s",
				          sp->name, ents[k].file, spool_state_name(ents[k].st),
				          spool_state_name(ents[i].st));
				repaired++;
			} else {
				spool_log(LOG_ERR, "spool %s: repair %s: %s", sp->name,
				          ents[k].file, strerror(errno));
			}
		}
		i = j;
	}
	if (repaired > 0)
		for (int st = SPOOL_ACTIVE; st < SPOOL_NSTATES; st++) {
			char dir[SPOOL_PATH_MAX];
			spool_path(sp, (spool_state)st, NULL, dir, sizeof dir);
			spool_fsync_dir(dir);
		}
out:
	for (size_t i = 0; i < n; i++)
		free(ents[i].file);
	free(ents);
	return repaired;
}

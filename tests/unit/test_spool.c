/*
 * test_spool.c - the spool module on a real temporary directory: names and
 * ids, claims with sidecars, moves, atomic writes, repair after a simulated
 * crash, the audit log, configuration errors.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"
#include "spool/spool.h"

static char root[256];
static spool sp;

static void quiet(int prio, const char *msg)
{
	(void)prio;
	(void)msg;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

static int exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

static void setup(void)
{
	char err[256], path[512];
	snprintf(root, sizeof root, "/tmp/vms-spool-test-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(root));
	snprintf(path, sizeof path, "%s/s", root);
	spool_set_logger(quiet);
	ck_assert_int_eq(spool_open(&sp, "vm", path, SPOOL_GATE, err, sizeof err), 0);
	ck_assert_int_eq(spool_init(&sp, 1, err, sizeof err), 0);
}

static void teardown(void)
{
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
	ck_assert_int_eq(system(cmd), 0);
}

static void sp_path(spool_state st, const char *file, char *buf, size_t len)
{
	spool_path(&sp, st, file, buf, len);
}

START_TEST(test_names)
{
	const char *why;
	char stem[64];
	ck_assert(spool_name_ok("a.wav", &why));
	ck_assert(!spool_name_ok(".a.wav", &why));
	ck_assert(!spool_name_ok("a/b.wav", &why));
	ck_assert(!spool_name_ok("..wav", &why));
	ck_assert(!spool_name_ok("a\nb.wav", &why));
	ck_assert_ptr_nonnull(why);
	ck_assert(!spool_name_ok("a\x01.wav", &why));
	ck_assert(!spool_name_ok("", &why));
	ck_assert(!spool_name_ok("x.verdict", &why));
	char longname[300];
	memset(longname, 'a', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	ck_assert(!spool_name_ok(longname, &why));
	ck_assert(spool_name_is_json("a.json"));
	ck_assert(!spool_name_is_json("a.wav"));
	ck_assert_int_eq(spool_name_stem("call.1.wav", stem, sizeof stem), 0);
	ck_assert_str_eq(stem, "call.1");
	ck_assert_int_eq(spool_name_stem("noext", stem, sizeof stem), 0);
	ck_assert_str_eq(stem, "noext");
}
END_TEST

/* issue 18: names with invisible or look-alike characters were claimed
 * and shown as identical items; every Unicode format character, the line
 * and paragraph separators, variation selectors and Hangul fillers are
 * refused, with the code point in the reason.  Visible non-ASCII is fine. */
START_TEST(test_names_invisible)
{
	static const struct {
		const char *name, *cp;
	} bad[] = {
	        {"a\u00ad.wav", "U+00AD"},      {"a\u2064.wav", "U+2064"},
	        {"a\u3164.wav", "U+3164"},      {"a\U000E0041.wav", "U+E0041"},
	        {"a\ufe0f.wav", "U+FE0F"},      {"a\u2028.wav", "U+2028"},
	        {"a\u2029.wav", "U+2029"},      {"a\u200b.wav", "U+200B"},
	        {"a\u180e.wav", "U+180E"},      {"a\u115f.wav", "U+115F"},
	        {"a\uffa0.wav", "U+FFA0"},      {"a\U000E0100.wav", "U+E0100"},
	        {"a\u034f.wav", "U+034F"},      {"a\u0600.wav", "U+0600"},
	        {"a\U0001D173.wav", "U+1D173"}, {"a\u206a.wav", "U+206A"},
	};
	const char *why;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ck_assert_msg(!spool_name_ok(bad[i].name, &why), "%s accepted", bad[i].cp);
		ck_assert_ptr_nonnull(strstr(why, "invisible"));
		ck_assert_msg(strstr(why, bad[i].cp) != NULL, "%s: %s", bad[i].cp, why);
	}
	ck_assert(spool_name_ok("caf\u00e9 \u00fcber \u4e2d\u6587 \U0001F600.wav", &why));
}
END_TEST

START_TEST(test_ids)
{
	char a[SPOOL_ID_LEN + 1], b[SPOOL_ID_LEN + 1], back[SPOOL_ID_LEN + 1], file[128];
	spool_id_new(a);
	spool_id_new(b);
	ck_assert(spool_id_ok(a));
	ck_assert_str_ne(a, b);
	snprintf(file, sizeof file, "%s_x.wav", a);
	ck_assert_int_eq(spool_file_id(file, back), 0);
	ck_assert_str_eq(back, a);
	ck_assert_int_eq(spool_file_id("x.wav", back), -1);
	ck_assert(!spool_id_ok("20250101T000000Z-XYZ00000"));
	ck_assert(!spool_id_ok("short"));
}
END_TEST

START_TEST(test_spool_open_rejects)
{
	spool s;
	char err[256];
	ck_assert_int_eq(spool_open(&s, "bad name", "/x", SPOOL_GATE, err, sizeof err), -1);
	ck_assert_int_eq(spool_open(&s, "ok", "relative/path", SPOOL_GATE, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "absolute"));
	ck_assert_int_eq(spool_open(&s, "ok", "/a/b/", SPOOL_GATE, err, sizeof err), 0);
	ck_assert_str_eq(s.path, "/a/b");
}
END_TEST

START_TEST(test_claim_with_sidecar)
{
	char p[1024], q[1024];
	spool_item it;
	sp_path(SPOOL_INCOMING, "call.wav", p, sizeof p);
	write_file(p, "RIFFdata");
	sp_path(SPOOL_INCOMING, "call.json", p, sizeof p);
	write_file(p, "{\"agent_channel\":0}");
	ck_assert_int_eq(spool_claim(&sp, "call.wav", &it), SPOOL_OK);
	ck_assert_str_eq(it.name, "call.wav");
	ck_assert_int_eq(it.state, SPOOL_ACTIVE);
	ck_assert(it.has_sidecar);
	ck_assert(!it.has_verdict);
	spool_item_path(&sp, &it, p, sizeof p);
	ck_assert(exists(p));
	spool_item_sidecar(&sp, &it, q, sizeof q);
	ck_assert(exists(q));
	sp_path(SPOOL_INCOMING, "call.wav", p, sizeof p);
	ck_assert(!exists(p));
	sp_path(SPOOL_INCOMING, "call.json", p, sizeof p);
	ck_assert(!exists(p));
	/* claimed twice: the second finds nothing */
	ck_assert_int_eq(spool_claim(&sp, "call.wav", &it), SPOOL_GONE);
}
END_TEST

START_TEST(test_claim_refuses_symlink_and_json)
{
	char p[1024], target[1024];
	spool_item it;
	snprintf(target, sizeof target, "%s/secret", root);
	write_file(target, "x");
	sp_path(SPOOL_INCOMING, "link.wav", p, sizeof p);
	ck_assert_int_eq(symlink(target, p), 0);
	ck_assert_int_eq(spool_claim(&sp, "link.wav", &it), SPOOL_ERR);
	ck_assert(exists(p)); /* left where it was, target untouched */
	ck_assert(exists(target));
	sp_path(SPOOL_INCOMING, "meta.json", p, sizeof p);
	write_file(p, "{}");
	ck_assert_int_eq(spool_claim(&sp, "meta.json", &it), SPOOL_ERR);
	ck_assert_int_eq(spool_claim(&sp, "../escape.wav", &it), SPOOL_ERR);
}
END_TEST

struct seen {
	int cands, skipped, sidecars;
};

static void walk_cb(const spool *s, const char *name, const struct stat *st, const char *skip,
                    void *arg)
{
	struct seen *c = arg;
	(void)s;
	(void)name;
	if (st != NULL)
		c->cands++;
	else if (skip != NULL)
		c->skipped++;
	else
		c->sidecars++;
}

START_TEST(test_incoming_walk_classifies)
{
	char p[1024];
	struct seen c = {0, 0, 0};
	sp_path(SPOOL_INCOMING, "a.wav", p, sizeof p);
	write_file(p, "x");
	sp_path(SPOOL_INCOMING, "a.json", p, sizeof p);
	write_file(p, "{}");
	sp_path(SPOOL_INCOMING, ".partial", p, sizeof p);
	write_file(p, "x");
	sp_path(SPOOL_INCOMING, "dir", p, sizeof p);
	ck_assert_int_eq(mkdir(p, 0700), 0);
	sp_path(SPOOL_INCOMING, "ln.wav", p, sizeof p);
	ck_assert_int_eq(symlink("/etc/passwd", p), 0);
	ck_assert_int_eq(spool_incoming_walk(&sp, walk_cb, &c), 0);
	ck_assert_int_eq(c.cands, 1);
	ck_assert_int_eq(c.sidecars, 1);
	ck_assert_int_eq(c.skipped, 3);
}
END_TEST

START_TEST(test_put_atomic)
{
	char p[1024], err[128];
	struct stat st;
	ck_assert_int_eq(spool_put(&sp, SPOOL_HOLD, "v.json", "{\"a\":1}", 7), SPOOL_OK);
	ck_assert_int_eq(spool_put(&sp, SPOOL_HOLD, "v.json", "{\"a\":2}", 7), SPOOL_OK);
	sp_path(SPOOL_HOLD, "v.json", p, sizeof p);
	char *t = spool_read_file(p, 100, err, sizeof err);
	ck_assert_ptr_nonnull(t);
	ck_assert_str_eq(t, "{\"a\":2}");
	free(t);
	ck_assert_int_eq(stat(p, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0640);
	ck_assert_int_eq(spool_put(&sp, SPOOL_HOLD, "../x", "", 0), SPOOL_ERR);
	ck_assert_int_eq(spool_put(&sp, SPOOL_HOLD, ".hidden", "", 0), SPOOL_ERR);
	/* no temp file left behind */
	struct seen c = {0, 0, 0};
	(void)c;
	char cmd[600];
	snprintf(cmd, sizeof cmd, "test -z \"$(ls -A '%s/s/hold' | grep -v '^v.json$')\"", root);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(test_write_atomic_missing_dir_fails_cleanly)
{
	char p[512];
	snprintf(p, sizeof p, "%s/nodir/file", root);
	ck_assert_int_ne(spool_write_atomic(p, "x", 1), SPOOL_OK);
	ck_assert(!exists(p));
}
END_TEST

static void make_item(const char *name, spool_item *it)
{
	char p[1024];
	sp_path(SPOOL_INCOMING, name, p, sizeof p);
	write_file(p, "audio");
	ck_assert_int_eq(spool_claim(&sp, name, it), SPOOL_OK);
}

START_TEST(test_move_takes_companions)
{
	spool_item it, found;
	char vf[512], p[1024];
	make_item("m.wav", &it);
	spool_item_verdict_file(&it, vf, sizeof vf);
	ck_assert_int_eq(spool_put(&sp, SPOOL_ACTIVE, vf, "{}", 2), SPOOL_OK);
	ck_assert_int_eq(spool_move(&sp, &it, SPOOL_HOLD), SPOOL_OK);
	ck_assert_int_eq(spool_item_find(&sp, it.id, &found), 0);
	ck_assert_int_eq(found.state, SPOOL_HOLD);
	ck_assert(found.has_verdict);
	sp_path(SPOOL_ACTIVE, vf, p, sizeof p);
	ck_assert(!exists(p));
	/* find by file name too */
	ck_assert_int_eq(spool_item_find(&sp, found.file, &found), 0);
	ck_assert_int_eq(spool_item_find(&sp, "20990101T000000Z-00000000", &found), -1);
}
END_TEST

START_TEST(test_move_never_replaces_audio)
{
	spool_item it;
	char p[1024], err[64];
	make_item("n.wav", &it);
	sp_path(SPOOL_RELEASED, it.file, p, sizeof p);
	write_file(p, "other");
	ck_assert_int_eq(spool_move(&sp, &it, SPOOL_RELEASED), SPOOL_EXISTS);
	char *t = spool_read_file(p, 100, err, sizeof err);
	ck_assert_str_eq(t, "other");
	free(t);
	spool_item_path(&sp, &it, p, sizeof p);
	ck_assert(exists(p)); /* still in active: nothing lost */
}
END_TEST

START_TEST(test_repair_brings_companions_back)
{
	spool_item it, found;
	char vf[512], src[1024], dst[1024];
	make_item("r.wav", &it);
	spool_item_verdict_file(&it, vf, sizeof vf);
	ck_assert_int_eq(spool_put(&sp, SPOOL_ACTIVE, vf, "{}", 2), SPOOL_OK);
	/* a crash after the companions moved, before the audio did */
	sp_path(SPOOL_ACTIVE, vf, src, sizeof src);
	sp_path(SPOOL_RELEASED, vf, dst, sizeof dst);
	ck_assert_int_eq(rename(src, dst), 0);
	ck_assert_int_eq(spool_repair(&sp), 1);
	ck_assert(exists(src));
	ck_assert(!exists(dst));
	ck_assert_int_eq(spool_item_find(&sp, it.id, &found), 0);
	ck_assert_int_eq(found.state, SPOOL_ACTIVE);
	ck_assert(found.has_verdict);
	/* nothing to do the second time */
	ck_assert_int_eq(spool_repair(&sp), 0);
}
END_TEST

START_TEST(test_repair_removes_stale_temp_in_active)
{
	char p[1024];
	char q[1024], r[1024];
	spool_item it;
	sp_path(SPOOL_ACTIVE, ".tmp-1-1-x.verdict.json", p, sizeof p);
	write_file(p, "partial");
	/* an attempt counter whose item has gone, and one whose item is here */
	sp_path(SPOOL_ACTIVE, ".attempts-20250101T000000Z-0000dead", q, sizeof q);
	write_file(q, "3\n");
	make_item("kept.wav", &it);
	char f[64];
	snprintf(f, sizeof f, ".attempts-%s", it.id);
	sp_path(SPOOL_ACTIVE, f, r, sizeof r);
	write_file(r, "1\n");
	spool_repair(&sp);
	ck_assert(!exists(p));
	ck_assert(!exists(q));
	ck_assert(exists(r));
}
END_TEST

START_TEST(test_claim_copies_and_records)
{
	char p[1024], err[256];
	struct stat before, after;
	spool_item it;
	sp_path(SPOOL_INCOMING, "c.wav", p, sizeof p);
	write_file(p, "abc");
	ck_assert_int_eq(lstat(p, &before), 0);
	ck_assert_int_eq(spool_claim(&sp, "c.wav", &it), SPOOL_OK);
	ck_assert(it.has_claim);
	ck_assert(!exists(p)); /* the producer's file is gone ... */
	spool_item_path(&sp, &it, p, sizeof p);
	ck_assert_int_eq(lstat(p, &after), 0);
	ck_assert(after.st_ino != before.st_ino); /* ... and ours is a copy */
	ck_assert_int_eq(after.st_mode & 0777, 0640);
	spool_item_claim(&sp, &it, p, sizeof p);
	char *rec = spool_read_file(p, 4096, err, sizeof err);
	ck_assert_ptr_nonnull(rec);
	/* sha256("abc") */
	ck_assert_ptr_nonnull(strstr(
	        rec, "\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\""));
	ck_assert_ptr_nonnull(strstr(rec, "\"bytes\": 3"));
	ck_assert_ptr_nonnull(strstr(rec, "\"sidecar\": \"none\""));
	free(rec);
}
END_TEST

START_TEST(test_claim_refuses_a_sidecar_that_is_not_a_file)
{
	char p[1024], err[256];
	spool_item it;
	sp_path(SPOOL_INCOMING, "d.wav", p, sizeof p);
	write_file(p, "abc");
	sp_path(SPOOL_INCOMING, "d.json", p, sizeof p);
	ck_assert_int_eq(mkfifo(p, 0600), 0);
	ck_assert_int_eq(spool_claim(&sp, "d.wav", &it), SPOOL_OK);
	ck_assert(!it.has_sidecar);
	spool_item_claim(&sp, &it, p, sizeof p);
	char *rec = spool_read_file(p, 4096, err, sizeof err);
	ck_assert_ptr_nonnull(rec);
	ck_assert_ptr_nonnull(strstr(rec, "\"sidecar\": \"refused\""));
	ck_assert_ptr_nonnull(strstr(rec, "incoming/d.json is a FIFO"));
	free(rec);
}
END_TEST

START_TEST(test_repair_finishes_or_undoes_a_claim)
{
	char p[1024], q[1024], hidden[300];
	spool_item it;
	/* a claim killed after the rename out of sight, before the copy */
	sp_path(SPOOL_INCOMING, ".claim-20250101T000000Z-00000001_u.wav", p, sizeof p);
	write_file(p, "abc");
	/* one killed after the copy landed, before the producer's file went */
	make_item("f.wav", &it);
	snprintf(hidden, sizeof hidden, ".claim-%s", it.file);
	sp_path(SPOOL_INCOMING, hidden, q, sizeof q);
	write_file(q, "abc");
	ck_assert_int_ge(spool_repair(&sp), 2);
	ck_assert(!exists(p));
	sp_path(SPOOL_INCOMING, "u.wav", p, sizeof p);
	ck_assert(exists(p));  /* given its name back */
	ck_assert(!exists(q)); /* finished: the item exists */
	spool_item_path(&sp, &it, p, sizeof p);
	ck_assert(exists(p));
}
END_TEST

START_TEST(test_find_gathers_companions)
{
	spool_item it, found;
	char vf[512], src[1024], dst[1024];
	make_item("g.wav", &it);
	ck_assert_int_eq(spool_move(&sp, &it, SPOOL_HOLD), SPOOL_OK);
	it.state = SPOOL_HOLD;
	spool_item_verdict_file(&it, vf, sizeof vf);
	ck_assert_int_eq(spool_put(&sp, SPOOL_HOLD, vf, "{\"full\":1}", 10), SPOOL_OK);
	/* a release killed after its companions moved */
	sp_path(SPOOL_HOLD, vf, src, sizeof src);
	sp_path(SPOOL_RELEASED, vf, dst, sizeof dst);
	ck_assert_int_eq(rename(src, dst), 0);
	ck_assert_int_eq(spool_item_find(&sp, it.id, &found), 0);
	ck_assert_int_eq(found.state, SPOOL_HOLD);
	ck_assert(found.has_verdict);
	ck_assert(found.has_claim);
	ck_assert(exists(src));
	ck_assert(!exists(dst));
}
END_TEST

static int count_cb(const spool *s, const spool_item *it, void *arg)
{
	(void)s;
	(void)it;
	(*(int *)arg)++;
	return 0;
}

START_TEST(test_walk_counts_items_not_companions)
{
	spool_item a, b;
	int n = 0;
	char p[1024];
	make_item("w1.wav", &a);
	make_item("w2.wav", &b);
	sp_path(SPOOL_INCOMING, "w3.json", p, sizeof p);
	write_file(p, "{}");
	sp_path(SPOOL_ACTIVE, "stray-no-id.wav", p, sizeof p);
	write_file(p, "x");
	ck_assert_int_eq(spool_walk(&sp, SPOOL_ACTIVE, count_cb, &n), 0);
	ck_assert_int_eq(n, 2);
}
END_TEST

START_TEST(test_audit_append)
{
	char p[512], err[128];
	snprintf(p, sizeof p, "%s/audit.jsonl", root);
	ck_assert_int_eq(spool_audit_append(p, "{\"a\":1}"), 0);
	ck_assert_int_eq(spool_audit_append(p, "{\"b\":2}"), 0);
	char *t = spool_read_file(p, 1000, err, sizeof err), want[256], h[SPOOL_SHA256_HEX];
	/* chained: see test_audit.c */
	ck_assert_int_eq(spool_sha256_hex(t, strcspn(t, "\n"), h), 0);
	snprintf(want, sizeof want,
	         "{\"prev\":\"%064d\",\"seq\":1,\"a\":1}\n{\"prev\":\"%s\",\"seq\":2,\"b\":2}\n", 0,
	         h);
	ck_assert_str_eq(t, want);
	free(t);
	snprintf(p, sizeof p, "%s/missing/audit.jsonl", root);
	ck_assert_int_eq(spool_audit_append(p, "{}"), -1);
}
END_TEST

static int conf_from(const char *text, spool_conf *sc, char *err, size_t errlen)
{
	config_t cfg;
	char p[512];
	int rc;
	snprintf(p, sizeof p, "%s/c.conf", root);
	write_file(p, text);
	if (vms_conf_read(&cfg, p, err, errlen) < 0)
		return -2;
	rc = spool_conf_load(&cfg, sc, err, errlen);
	config_destroy(&cfg);
	return rc;
}

START_TEST(test_conf)
{
	spool_conf sc;
	char err[512];
	ck_assert_int_eq(conf_from("audit_log = \"/x/a.jsonl\"; spools = ({ name = \"v\"; path = "
	                           "\"/s/v\"; }, { name = \"c\"; path = \"/s/c\"; mode = "
	                           "\"monitor\"; });",
	                           &sc, err, sizeof err),
	                 0);
	ck_assert_int_eq(sc.n_spools, 2);
	ck_assert_int_eq(sc.spools[0].mode, SPOOL_GATE);
	ck_assert_int_eq(sc.spools[1].mode, SPOOL_MONITOR);
	ck_assert_str_eq(sc.audit_log, "/x/a.jsonl");
	spool_conf_free(&sc);
	ck_assert_int_eq(conf_from("spools = ({ name = \"v\"; path = \"/s/v\"; mode = \"gat\"; });",
	                           &sc, err, sizeof err),
	                 -1);
	ck_assert_ptr_nonnull(strstr(err, "gat"));
	ck_assert_int_eq(conf_from("spools = ({ name = \"v\"; path = \"/s/v\"; }, { name = \"v\"; "
	                           "path = \"/s/w\"; });",
	                           &sc, err, sizeof err),
	                 -1);
	ck_assert_int_eq(conf_from("workers = 2;", &sc, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "spools"));
	ck_assert_int_eq(conf_from("spools = ({ name = \"v\"; path = \"/s/v\" });\nbroken = ;", &sc,
	                           err, sizeof err),
	                 -2);
	ck_assert_ptr_nonnull(strstr(err, "c.conf:2"));
}
END_TEST

START_TEST(test_space_check)
{
	ck_assert_int_eq(spool_space_ok(&sp, 0), 1);
	ck_assert_int_eq(spool_space_ok(&sp, 1L << 30), 0); /* a petabyte free: no */
}
END_TEST

START_TEST(test_lock_exclusive)
{
	int a = spool_lock(&sp, "daemon", 0);
	ck_assert_int_ge(a, 0);
	int b = spool_lock(&sp, "daemon", 0);
	ck_assert_int_eq(b, -1);
	ck_assert_int_eq(errno, EWOULDBLOCK);
	spool_unlock(a);
	b = spool_lock(&sp, "daemon", 0);
	ck_assert_int_ge(b, 0);
	spool_unlock(b);
}
END_TEST

START_TEST(test_path_overflow_aborts)
{
	char small[16];
	spool_path(&sp, SPOOL_INCOMING, "a-name-that-does-not-fit.wav", small, sizeof small);
}
END_TEST

static Suite *spool_suite(void)
{
	Suite *s = suite_create("spool");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_names_invisible);
	tcase_add_test(tc, test_ids);
	tcase_add_test(tc, test_spool_open_rejects);
	tcase_add_test(tc, test_claim_with_sidecar);
	tcase_add_test(tc, test_claim_refuses_symlink_and_json);
	tcase_add_test(tc, test_incoming_walk_classifies);
	tcase_add_test(tc, test_put_atomic);
	tcase_add_test(tc, test_write_atomic_missing_dir_fails_cleanly);
	tcase_add_test(tc, test_move_takes_companions);
	tcase_add_test(tc, test_move_never_replaces_audio);
	tcase_add_test(tc, test_repair_brings_companions_back);
	tcase_add_test(tc, test_repair_removes_stale_temp_in_active);
	tcase_add_test(tc, test_claim_copies_and_records);
	tcase_add_test(tc, test_claim_refuses_a_sidecar_that_is_not_a_file);
	tcase_add_test(tc, test_repair_finishes_or_undoes_a_claim);
	tcase_add_test(tc, test_find_gathers_companions);
	tcase_add_test(tc, test_walk_counts_items_not_companions);
	tcase_add_test(tc, test_audit_append);
	tcase_add_test(tc, test_conf);
	tcase_add_test(tc, test_space_check);
	tcase_add_test(tc, test_lock_exclusive);
	tcase_add_test_raise_signal(tc, test_path_overflow_aborts, SIGABRT);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(spool_suite());
	int failed;
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

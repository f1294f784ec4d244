/*
 * test_audit.c - the audit log's hash chain (spool_audit_append): each
 * line's "prev" is the SHA-256 of the line before, recomputed here; an
 * empty log after a rotation continues from AUDIT.1; a torn last line is
 * not chained onto; lines longer than a read chunk; what is refused; every
 * line's seq, which goes on across a rotation (issue 18).
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "spool/spool.h"

#define ZERO "0000000000000000000000000000000000000000000000000000000000000000"

static char root[256], logp[512], rot[520];

/* Log lines of the spool module are not wanted in the test output. */
static void quiet(int prio, const char *msg)
{
	(void)prio;
	(void)msg;
}

/* A fresh directory with the log path and its rotated name. */
static void setup(void)
{
	snprintf(root, sizeof root, "/tmp/vms-audit-test-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(root));
	snprintf(logp, sizeof logp, "%s/audit.jsonl", root);
	snprintf(rot, sizeof rot, "%s.1", logp);
	spool_set_logger(quiet);
}

/* Remove the directory. */
static void teardown(void)
{
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
	ck_assert_int_eq(system(cmd), 0);
}

/* The whole file (any size) as a string. */
static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0;
	ck_assert_ptr_nonnull(f);
	FILE *m = open_memstream(&buf, &cap);
	int c;
	while ((c = fgetc(f)) != EOF)
		fputc(c, m);
	fclose(m);
	fclose(f);
	*len = cap;
	return buf;
}

/* How many newlines text holds. */
static int count_nl(const char *text, size_t len)
{
	int n = 0;
	for (size_t i = 0; i < len; i++)
		n += text[i] == '\n';
	return n;
}

/* SHA-256 hex of s computed here with EVP directly, not with the helper
 * under test. */
static void sha_hex(const char *s, size_t n, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	ck_assert_int_eq(EVP_Digest(s, n, md, &mdlen, EVP_sha256(), NULL), 1);
	for (unsigned i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
}

/* Line i (0-based) of text, without its newline, into a malloc'd string. */
static char *line_at(const char *text, int i)
{
	const char *p = text;
	while (i-- > 0) {
		p = strchr(p, '\n');
		ck_assert_ptr_nonnull(p);
		p++;
	}
	const char *e = strchr(p, '\n');
	ck_assert_ptr_nonnull(e);
	return strndup(p, (size_t)(e - p));
}

/* The expected line: {"prev":"HEX","seq":N, then the caller's text after
 * '{'. */
static void expect_line(const char *text, int i, const char *prev, long seq, const char *orig)
{
	char want[4096];
	char *got = line_at(text, i);
	snprintf(want, sizeof want, "{\"prev\":\"%s\",\"seq\":%ld%s%s", prev, seq,
	         orig[1] == '}' ? "" : ",", orig + 1);
	ck_assert_str_eq(got, want);
	free(got);
}

START_TEST(test_sha256_helper)
{
	char hex[SPOOL_SHA256_HEX];
	ck_assert_int_eq(spool_sha256_hex("abc", 3, hex), 0);
	ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	ck_assert_int_eq(spool_sha256_hex("", 0, hex), 0);
	ck_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}
END_TEST

START_TEST(test_three_lines_chain)
{
	const char *in[] = {"{\"ts\":\"t1\",\"event\":\"verdict\"}", "{\"n\":2}", "{}"};
	char h[65], *l, *text;
	size_t len;
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(spool_audit_append(logp, in[i]), 0);
	text = slurp(logp, &len);
	ck_assert_uint_eq(text[len - 1], '\n');
	expect_line(text, 0, ZERO, 1, in[0]);
	l = line_at(text, 0);
	sha_hex(l, strlen(l), h);
	free(l);
	expect_line(text, 1, h, 2, in[1]);
	l = line_at(text, 1);
	sha_hex(l, strlen(l), h);
	free(l);
	expect_line(text, 2, h, 3, in[2]);
	ck_assert_int_eq(count_nl(text, len), 3);
	free(text);
}
END_TEST

START_TEST(test_rotation_continues_from_dot1)
{
	char h[65], *l, *text;
	size_t len;
	ck_assert_int_eq(spool_audit_append(logp, "{\"a\":1}"), 0);
	ck_assert_int_eq(spool_audit_append(logp, "{\"a\":2}"), 0);
	text = slurp(logp, &len);
	l = line_at(text, 1);
	sha_hex(l, strlen(l), h);
	free(l);
	free(text);
	ck_assert_int_eq(rename(logp, rot), 0); /* logrotate's default */
	ck_assert_int_eq(spool_audit_append(logp, "{\"a\":3}"), 0);
	text = slurp(logp, &len);
	expect_line(text, 0, h, 3, "{\"a\":3}");
	free(text);
	/* copytruncate: the log emptied in place, .1 holds the copy */
	text = slurp(logp, &len);
	FILE *f = fopen(rot, "w");
	fwrite(text, 1, len, f);
	fclose(f);
	l = line_at(text, 0);
	sha_hex(l, strlen(l), h);
	free(l);
	free(text);
	ck_assert_int_eq(truncate(logp, 0), 0);
	ck_assert_int_eq(spool_audit_append(logp, "{\"a\":4}"), 0);
	text = slurp(logp, &len);
	expect_line(text, 0, h, 4, "{\"a\":4}");
	free(text);
	/* no predecessor (or an empty one): 64 zeros */
	ck_assert_int_eq(unlink(logp), 0);
	ck_assert_int_eq(truncate(rot, 0), 0);
	ck_assert_int_eq(spool_audit_append(logp, "{\"a\":5}"), 0);
	text = slurp(logp, &len);
	expect_line(text, 0, ZERO, 1, "{\"a\":5}");
	free(text);
}
END_TEST

START_TEST(test_torn_tail_is_not_chained_onto)
{
	char h[65], *l, *text;
	size_t len;
	ck_assert_int_eq(spool_audit_append(logp, "{\"a\":1}"), 0);
	text = slurp(logp, &len);
	l = line_at(text, 0);
	sha_hex(l, strlen(l), h);
	free(l);
	free(text);
	FILE *f = fopen(logp, "a");
	fputs("{\"prev\":\"12\",\"torn", f); /* a write cut short by a crash */
	fclose(f);
	ck_assert_int_eq(spool_audit_append(logp, "{\"a\":2}"), 0);
	text = slurp(logp, &len);
	l = line_at(text, 1);
	ck_assert_str_eq(l, "{\"prev\":\"12\",\"torn"); /* kept, a line of its own */
	free(l);
	expect_line(text, 2, h, 2, "{\"a\":2}"); /* chained to the last whole line */
	free(text);
	/* a log that is nothing but a fragment: the chain starts afresh */
	f = fopen(logp, "w");
	fputs("{\"x", f);
	fclose(f);
	ck_assert_int_eq(spool_audit_append(logp, "{\"a\":3}"), 0);
	text = slurp(logp, &len);
	expect_line(text, 1, ZERO, 1, "{\"a\":3}");
	free(text);
}
END_TEST

START_TEST(test_long_lines)
{
	size_t big = 700 * 1024, len;
	char *line = malloc(big + 16), h[65], *text, *l;
	memcpy(line, "{\"w\":\"", 6);
	memset(line + 6, 'x', big);
	memcpy(line + 6 + big, "\"}", 3);
	ck_assert_int_eq(spool_audit_append(logp, "{\"a\":1}"), 0);
	ck_assert_int_eq(spool_audit_append(logp, line), 0);
	ck_assert_int_eq(spool_audit_append(logp, "{\"a\":2}"), 0);
	text = slurp(logp, &len);
	l = line_at(text, 1);
	ck_assert_uint_gt(strlen(l), big);
	sha_hex(l, strlen(l), h);
	free(l);
	expect_line(text, 2, h, 3, "{\"a\":2}");
	free(text);
	free(line);
}
END_TEST

/* issue 18: every line is numbered from 1, the numbers go on across a
 * rotation (the first line of the new file carries the old file's last
 * hash and seq on), and after lines of an older version without numbers
 * they start at 1. */
START_TEST(test_seq_across_rotation_and_after_old_lines)
{
	char h[65], *l, *text;
	size_t len;
	FILE *f = fopen(logp, "w");
	fputs("{\"prev\":\"" ZERO "\",\"a\":0}\n", f); /* an older version's line */
	fclose(f);
	ck_assert_int_eq(spool_audit_append(logp, "{\"a\":1}"), 0);
	ck_assert_int_eq(spool_audit_append(logp, "{\"a\":2}"), 0);
	text = slurp(logp, &len);
	l = line_at(text, 0);
	sha_hex(l, strlen(l), h);
	free(l);
	expect_line(text, 1, h, 1, "{\"a\":1}");
	l = line_at(text, 2);
	sha_hex(l, strlen(l), h);
	free(l);
	free(text);
	ck_assert_int_eq(rename(logp, rot), 0);
	ck_assert_int_eq(spool_audit_append(logp, "{}"), 0);
	ck_assert_int_eq(spool_audit_append(logp, "{\"a\":4}"), 0);
	text = slurp(logp, &len);
	expect_line(text, 0, h, 3, "{}");
	l = line_at(text, 0);
	sha_hex(l, strlen(l), h);
	free(l);
	expect_line(text, 1, h, 4, "{\"a\":4}");
	free(text);
	/* a last line whose seq is not a number the writer wrote: from 1 */
	f = fopen(logp, "a");
	fputs("{\"prev\":\"" ZERO "\",\"seq\":x}\n", f);
	fclose(f);
	ck_assert_int_eq(spool_audit_append(logp, "{\"a\":5}"), 0);
	text = slurp(logp, &len);
	l = line_at(text, 2);
	sha_hex(l, strlen(l), h);
	free(l);
	expect_line(text, 3, h, 1, "{\"a\":5}");
	free(text);
}
END_TEST

START_TEST(test_refused)
{
	size_t len;
	ck_assert_int_eq(spool_audit_append(logp, "{\"a\":1}"), 0);
	errno = 0;
	ck_assert_int_eq(spool_audit_append(logp, "[1]"), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(spool_audit_append(logp, " {\"a\":1}"), -1);
	ck_assert_int_eq(spool_audit_append(logp, "{\"a\":\n1}"), -1);
	ck_assert_int_eq(spool_audit_append(logp, ""), -1);
	char *text = slurp(logp, &len);
	ck_assert_int_eq(count_nl(text, len), 1); /* nothing was written */
	free(text);
}
END_TEST

/* The suite. */
static Suite *audit_suite(void)
{
	Suite *s = suite_create("audit");
	TCase *tc = tcase_create("chain");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_sha256_helper);
	tcase_add_test(tc, test_three_lines_chain);
	tcase_add_test(tc, test_rotation_continues_from_dot1);
	tcase_add_test(tc, test_torn_tail_is_not_chained_onto);
	tcase_add_test(tc, test_long_lines);
	tcase_add_test(tc, test_seq_across_rotation_and_after_old_lines);
	tcase_add_test(tc, test_refused);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(audit_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}

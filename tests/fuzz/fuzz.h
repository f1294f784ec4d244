/*
 * fuzz.h - shared helpers for the libFuzzer harnesses in tests/fuzz/.
 *
 * Each harness defines LLVMFuzzerTestOneInput().  Built with clang and
 * -fsanitize=fuzzer it is a libFuzzer binary (build/fuzz/fuzz_NAME); linked
 * with replay_main.c it replays files (build/{rel,asan}/tests/fuzz/replay_NAME),
 * which is how tests/fuzz/regressions/ runs in `make check`.
 *
 * The readers under test take paths, so inputs are written to a private
 * directory (mkdtemp under /dev/shm when it exists, else $TMPDIR or /tmp),
 * removed at exit.
 */
#ifndef VMS_FUZZ_H
#define VMS_FUZZ_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_tmp[256];

/* Remove the private directory and what the harness left in it. */
static inline void fuzz_cleanup(void)
{
	DIR *d = fuzz_tmp[0] ? opendir(fuzz_tmp) : NULL;
	char p[512];
	if (d == NULL)
		return;
	for (struct dirent *de; (de = readdir(d)) != NULL;) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof p, "%s/%s", fuzz_tmp, de->d_name);
		unlink(p);
	}
	closedir(d);
	rmdir(fuzz_tmp);
}

/* The private directory, created on first use. */
static inline const char *fuzz_dir(void)
{
	if (fuzz_tmp[0] == '\0') {
		struct stat st;
		const char *base = getenv("TMPDIR");
		if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) &&
		    access("/dev/shm", W_OK) == 0)
			base = "/dev/shm";
		snprintf(fuzz_tmp, sizeof fuzz_tmp, "%s/vms-fuzz-XXXXXX",
		         base && *base ? base : "/tmp");
		if (mkdtemp(fuzz_tmp) == NULL) {
			perror("fuzz: mkdtemp");
			abort();
		}
		atexit(fuzz_cleanup);
	}
	return fuzz_tmp;
}

/* path (in fuzz_dir()) = name; returns the full path in buf. */
static inline const char *fuzz_path(char *buf, size_t len, const char *name)
{
	if ((size_t)snprintf(buf, len, "%s/%s", fuzz_dir(), name) >= len)
		abort();
	return buf;
}

/* Write the input to path (replacing it); aborts on I/O errors, which are
 * the machine's problem, not a finding. */
static inline void fuzz_write(const char *path, const uint8_t *data, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		perror(path);
		abort();
	}
	while (size > 0) {
		ssize_t n = write(fd, data, size);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			perror(path);
			abort();
		}
		data += n;
		size -= (size_t)n;
	}
	close(fd);
}

/* The input as a NUL-terminated string (malloc'd). */
static inline char *fuzz_text(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (s == NULL)
		abort();
	if (size)
		memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* A refusal must say why.  With utf8, in text that can go into a verdict's
 * JSON (vms_result_json drops a string that is not UTF-8); configuration
 * and rule-pack errors go to the log and may quote the bytes they refuse. */
static inline void fuzz_check_reason(const char *what, const char *why, size_t len, int utf8)
{
	if (memchr(why, '\0', len) == NULL || why[0] == '\0') {
		fprintf(stderr, "fuzz: %s failed without a reason\n", what);
		abort();
	}
	if (!utf8)
		return;
	json_t *s = json_string(why);
	if (s == NULL) {
		fprintf(stderr, "fuzz: %s: reason is not UTF-8: %s\n", what, why);
		abort();
	}
	json_decref(s);
}

#endif

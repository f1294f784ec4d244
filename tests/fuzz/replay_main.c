/*
 * replay_main.c - run a fuzz harness over files, without libFuzzer.
 *
 *   replay_NAME FILE|DIR...
 *
 * Calls LLVMFuzzerTestOneInput() once per file (directories: every regular
 * file in them, in name order).  Exit 0 when every input ran; a crash or a
 * sanitizer report ends the process as it would under libFuzzer.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int replay_file(const char *path);
static int replay_arg(const char *path, size_t *count);

/* Feed one file to the harness. */
static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long len;
	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0) {
		perror(path);
		if (f)
			fclose(f);
		return -1;
	}
	buf = malloc((size_t)len + 1);
	if (buf == NULL || fread(buf, 1, (size_t)len, f) != (size_t)len) {
		perror(path);
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	fprintf(stderr, "replay: %s (%ld bytes)\n", path, len);
	LLVMFuzzerTestOneInput(buf, (size_t)len);
	free(buf);
	return 0;
}

/* qsort by name. */
static int replay_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A file, or every regular file of a directory. */
static int replay_arg(const char *path, size_t *count)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		perror(path);
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		(*count)++;
		return replay_file(path);
	}
	struct dirent **names = NULL;
	int n = scandir(path, &names, NULL, NULL);
	if (n < 0) {
		perror(path);
		return -1;
	}
	char **paths = calloc((size_t)n + 1, sizeof *paths);
	size_t k = 0;
	int rc = paths ? 0 : -1;
	for (int i = 0; i < n; i++) {
		if (paths && names[i]->d_name[0] != '.' &&
		    asprintf(&paths[k], "%s/%s", path, names[i]->d_name) >= 0)
			k++;
		free(names[i]);
	}
	free(names);
	if (k > 0)
		qsort(paths, k, sizeof *paths, replay_cmp);
	for (size_t i = 0; i < k; i++) {
		if (stat(paths[i], &st) == 0 && S_ISREG(st.st_mode)) {
			(*count)++;
			if (replay_file(paths[i]) < 0)
				rc = -1;
		}
		free(paths[i]);
	}
	free(paths);
	return rc;
}

int main(int argc, char **argv)
{
	size_t count = 0;
	int rc = 0;
	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i++)
		if (replay_arg(argv[i], &count) < 0)
			rc = 1;
	fprintf(stderr, "replay: %zu input(s), %s\n", count, rc ? "with errors" : "all ran");
	return rc;
}

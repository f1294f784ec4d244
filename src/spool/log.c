/*
 * log.c - the spool module's log lines (and so the daemon's: dlog is
 * spool_log).  It owns the logger the program chose (spool_set_logger:
 * "<prio>message" on stderr for journald by default, plain text in the
 * CLI) and spool_log, which makes one event one line whatever a file name
 * holds: control bytes, bytes that are not UTF-8 and invisible or
 * bidirectional characters become '?'.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h" /* vms_unsafe_char_len */
#include "spool/spool_int.h"

/* Default logger: one line on stderr with a <prio> prefix, which journald
 * turns into the message priority. */
static void spool_default_log(int prio, const char *msg)
{
	fprintf(stderr, "<%d>%s\n", prio, msg);
}

static spool_log_fn spool_logger = spool_default_log;

/* Route the module's log lines elsewhere (the CLI prints plain text). */
void spool_set_logger(spool_log_fn fn)
{
	spool_logger = fn ? fn : spool_default_log;
}

/* printf-style logging through the configured logger; newlines and control
 * characters from file names are replaced so one event is one line. */
void spool_log(int prio, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	/* issue 6: bytes that are not UTF-8 (a hostile file name) become '?'
	 * too; journald stores a line with such bytes as an opaque blob. */
	for (char *p = buf; *p; p += n) {
		n = spool_utf8_len((const unsigned char *)p);
		if (n == 0) {
			*p = '?';
			n = 1;
		} else if (n == 1 && ((unsigned char)*p < 0x20 || *p == 0x7f))
			*p = '?';
		else if (n > 1 && vms_unsafe_char_len((const unsigned char *)p) > 0) {
			/* issue 18: invisible and bidirectional characters too */
			memmove(p + 1, p + n, strlen(p + n) + 1);
			*p = '?';
			n = 1;
		}
	}
	spool_logger(prio, buf);
}

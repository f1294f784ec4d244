/*
 * alert_log.c - journald-style logging for the alert module.
 *
 * Lines go to stderr with a syslog priority prefix ("<3>vmscreend: ..."),
 * which journald turns into the priority of the entry.  Nothing here ever
 * sees a webhook secret: callers log hook names and redacted URLs only.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alert/alert_int.h"

/* Formats one message and writes it in a single fputs so that lines from
 * the delivery threads and the daemon do not interleave mid-line. */
void alert_log(int prio, const char *fmt, ...)
{
	char msg[1024], line[1100];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* one entry is one line: fold embedded newlines */
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	snprintf(line, sizeof(line), "<%d>vmscreend: alert: %s\n", prio & 7, msg);
	fputs(line, stderr);
	fflush(stderr);
}

/*
 * check.h - `vmscreen check`: screen files by hand with the daemon's
 * configuration and the daemon's screening calls (see check.c).
 */
#ifndef VMS_CLI_CHECK_H
#define VMS_CLI_CHECK_H

#include <stdio.h>

#include "vmscreen.h"

/* vmscreen check ...: argv[0] is "check"; returns the exit status (0 all
 * passed, 1 something held, 2 usage or configuration error). */
int check_cmd(int argc, char **argv);
/* check's own usage and options, to fp. */
void check_usage(FILE *fp);
/* Defaults, then the screening group of config (NULL: defaults alone).
 * 0, or -1 after printing the error. */
int check_load_settings(const char *config, vms_settings *s);

#endif

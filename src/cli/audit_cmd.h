/*
 * audit_cmd.h - `vmscreen audit verify|false-alarms`: check the audit log's
 * hash chain, and turn reviewers' false-alarm marks into test lines.
 * audit_cmd() takes argv with argv[0] = "audit" and returns the exit
 * status (verify: 0 intact, 1 broken; 2 usage, configuration or a file
 * that cannot be read).  The audit log is the one of the daemon's
 * configuration (--config FILE, else $VMSCREEN_CONFIG, else
 * /etc/vmscreen/vmscreend.conf) unless files are named.
 */
#ifndef VMS_CLI_AUDIT_CMD_H
#define VMS_CLI_AUDIT_CMD_H

int audit_cmd(int argc, char **argv);

#endif

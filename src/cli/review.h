/*
 * review.h - the reviewer's commands of `vmscreen`: list, show, release,
 * reject.  Each takes argv with argv[0] = the subcommand name and returns
 * the process exit status (0 ok, 1 failure, 2 usage).  They work on the
 * spools of the daemon's configuration (--config FILE, else
 * $VMSCREEN_CONFIG, else /etc/vmscreen/vmscreend.conf) and are safe while
 * vmscreend runs.
 */
#ifndef VMS_CLI_REVIEW_H
#define VMS_CLI_REVIEW_H

int review_cmd_list(int argc, char **argv);
int review_cmd_show(int argc, char **argv);
int review_cmd_release(int argc, char **argv);
int review_cmd_reject(int argc, char **argv);
/* vmscreen passwd NAME: a console account (passwd.c) */
int review_cmd_passwd(int argc, char **argv);
/* vmscreen alerts list|retry ID|test HOOK: the outbox (alerts_cmd.c) */
int review_cmd_alerts(int argc, char **argv);

#endif

/*
 * alert.h - alerts that reach supervisors: signed webhooks, durable outbox.
 *
 * The daemon hands every verdict to alert_hub_submit().  The hub decides,
 * per configured webhook, whether the verdict deserves an alert, writes one
 * file per (alert, webhook) into the outbox directory (fsync'd) and wakes
 * its delivery thread.  Submit never touches the network, so a dead or slow
 * webhook never delays screening.  The delivery thread POSTs each outbox
 * entry, signed after the Standard Webhooks convention, and removes the file
 * only after a 2xx; failures are retried on a persisted schedule and finally
 * parked in outbox_dir/parked/.  See docs/webhooks.md.
 */
#ifndef VMS_ALERT_H
#define VMS_ALERT_H

#include <stddef.h>
#include <stdio.h>
#include <jansson.h>
#include <libconfig.h>

typedef struct alert_hub alert_hub;

/*
 * Reads `webhooks` (a list of groups: url; secret_file; format = "standard" |
 * "slack" | "teams"; min_severity = "low" | "medium" | "high"; spools = [..];
 * optional every_verdict = false; connect_timeout_s; timeout_s) and
 * `outbox_dir` (default "/var/spool/vmscreen/outbox") from the libconfig root.
 * Returns NULL with err set on bad configuration (secret file missing or
 * readable/writable by group or others, bad url, bad format, ...).  A hub with
 * no webhooks is valid and does nothing.
 */
alert_hub *alert_hub_new(const config_t *cfg, char *err, size_t errlen);

/* Opens the outbox (creates it and outbox_dir/parked, takes the
 * outbox_dir/.lock flock so only one process delivers from it, removes
 * stray temp files), loads what a previous run left and starts the
 * delivery threads (one per webhook).  0, or -1 logged.  alert_hub_new()
 * alone touches no outbox: `vmscreend --check` may call new + free to
 * validate the webhooks while the daemon runs. */
int alert_hub_start(alert_hub *h);

/*
 * Durably queues the alerts for one verdict: the NAME.verdict.json value
 * itself (vms_result_object() plus the daemon's "spool", "id", "state",
 * "screened_at"...), never text to parse again.  Every alert is on disk
 * (fsync'd) before this returns 0; -1 on error (ENOSPC, not an object...).
 * Never blocks on the network.
 */
int alert_hub_submit(alert_hub *h, const char *spool, const char *item_id, const json_t *verdict);

/*
 * Queues the alert of a review decision (vmscreen.released or
 * vmscreen.rejected): verdict is the item's verdict after the decision,
 * whose last "review" entry says who, when and why.  Hooks that alerted
 * the hold get it.  0, or -1 with errno.
 */
int alert_hub_submit_decision(alert_hub *h, const char *spool, const char *item_id,
                              const json_t *verdict);

/* Make h a producer: its submits write outbox entries for the daemon to
 * deliver (the review commands), without taking the outbox's lock; never
 * start it.  Entries are picked up by the daemon's alert_hub_rescan(). */
void alert_hub_producer(alert_hub *h);

/* Queue what other processes (producers) added to the outbox since the
 * last look; how many.  One readdir of the outbox: the daemon calls it at
 * its rescan interval. */
int alert_hub_rescan(alert_hub *h);

/* One outbox entry, as `vmscreen alerts list` shows it (strings valid
 * during the callback only; hook is the webhook's name). */
typedef struct alert_entry_info {
	const char *id, *hook, *type, *spool, *item, *last_error;
	int parked, attempts;
	long last_status;
	long long created_ms, next_ms;
} alert_entry_info;

/* Call fn for every pending entry, then every parked one (fn returns
 * nonzero to stop); how many, or -1.  Reads only. */
int alert_hub_list(alert_hub *h, int (*fn)(const alert_entry_info *, void *), void *arg);
/* The items that alerts still waiting in the outbox (pending or parked)
 * name, for retention: nothing such an alert links to may expire (issue
 * 18).  An entry that cannot be read, or an outbox that cannot be listed,
 * keeps everything (fail closed).  NULL (out of memory) keeps everything
 * too.  Reads only. */
typedef struct alert_refs alert_refs;
alert_refs *alert_hub_refs(alert_hub *h);
/* 1 when an alert waiting names item of spool (or r keeps everything). */
int alert_refs_has(const alert_refs *r, const char *spool, const char *item);
void alert_refs_free(alert_refs *r);
/* Put a parked alert back in line (attempts 0, due now) for the daemon's
 * next rescan; 0, or -1 with err. */
int alert_hub_retry(alert_hub *h, const char *id, char *err, size_t errlen);
/* POST a signed test alert (type vmscreen.test) to the hook named
 * hook_name, now, from this process; 0 on 2xx, else -1; msg says what
 * happened either way. */
int alert_hub_test(alert_hub *h, const char *hook_name, char *msg, size_t msglen);

/* Stops the delivery thread promptly (an attempt in flight is aborted);
 * undelivered alerts stay in the outbox for the next start. */
void alert_hub_stop(alert_hub *h);

/* Per-hook counters in Prometheus text (delivered, failed attempts,
 * parked since start; pending now), labelled hook="NAME" (the webhook's
 * `name`, or webhook-N).  Nothing without webhooks. */
void alert_hub_metrics(alert_hub *h, FILE *o);

/* The outbox directory (for gauges), or NULL without webhooks. */
const char *alert_hub_outbox(const alert_hub *h);

/* Stops if needed and frees.  NULL is fine. */
void alert_hub_free(alert_hub *h);

#endif

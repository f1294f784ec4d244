/*
 * cluster.h - cluster mode (issue 13): many vmscreend nodes on one shared
 * spool, the work shared through a Redis stream with a consumer group.
 *
 *   cluster = { redis = "127.0.0.1:6379"; node = "vm1"; stream = "vmscreen:items";
 *               group = "vmscreen"; claim_idle_s = 30; password_file = "..."; };
 *
 * One node at a time (the holder of a short lease per spool) scans
 * incoming/, claims as a single daemon does and announces each item on the
 * stream; every node reads the stream into its own worker queue and acks
 * an entry once its item is placed.  Without `cluster` none of this runs.
 */
#ifndef VMSD_CLUSTER_H
#define VMSD_CLUSTER_H

#include <stdio.h>
#include <libconfig.h>

#include "spool/spool.h"
#include "vmscreen.h"

#define CLUSTER_ENTRY_MAX 32 /* "1700000000000-123": a stream entry id */

typedef struct cluster_conf {
	int on; /* the config has a cluster group */
	char host[256];
	int port;
	char node[64];
	char stream[128];
	char group[64];
	double claim_idle_s;
	char password[256]; /* from password_file; "" = no AUTH */
} cluster_conf;

/* Read and check the cluster group (absent: cc->on = 0).  0, or -1 with
 * err (vmscreend --check reports it). */
int cluster_conf_load(const config_t *cfg, cluster_conf *cc, char *err, size_t errlen);

/* Start the cluster thread for these spools (copied); queue_cap bounds
 * what is claimed ahead of the workers.  0, or -1 with err. */
int cluster_start(const cluster_conf *cc, const spool *spools, size_t n, int queue_cap, char *err,
                  size_t errlen);
/* After a reload: the spools' new mode, keep_days and claim_max_bytes
 * (issue 18: the configuration digest the cluster must agree on). */
void cluster_reload(const spool *spools, size_t n);
/* The screening settings every spool's digest covers too (attack round 4:
 * a node holding at "high" released what the others held); call before
 * cluster_start and cluster_reload. */
void cluster_screening(const vms_settings *s);
/* Stop the thread and drop the connections (no-op when not started). */
void cluster_stop(void);
/* 1 in cluster mode (after cluster_start). */
int cluster_enabled(void);

/* Main thread: 1 while this node holds the scanner lease of a spool. */
int cluster_is_scanner(const char *spool_name);
/* Main thread: how many more items the scanner may claim now (the stream's
 * entries nobody has read yet are bounded by the queue size). */
int cluster_claim_room(void);
/* Main thread: announce an item just claimed into active/.  0, or -1 (the
 * re-announce pass finds it later). */
int cluster_announce(const spool *sp, const char *file);
/* Main thread, scanner only: announce again the items of active/ that are
 * in no stream entry (an announcement Redis lost, or never got). */
void cluster_reannounce(const spool *sp);

/* Worker: the item of entry is placed (or gone): ack it.  Errors are
 * logged; the entry is then claimed again later and acked as placed. */
void cluster_ack(const char *entry, const char *spool_name, const char *file);

/* Worker: it took a job from the queue (the cluster thread may read more). */
void cluster_wake(void);

/* /healthz: one line per problem; returns how many. */
int cluster_health(FILE *o);
/* /metrics and the metrics file: the cluster's gauges and counters. */
void cluster_metrics(FILE *o);

#endif

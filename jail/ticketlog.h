/*
 * ticketlog.h - which tasks a worker had when it stopped, so that after a restart it can say
 * "this task was lost" instead of "ticket not found" (issue 9: restart semantics).
 *
 * The keeper appends one line per task started ("+<digest>") and per task ended
 * ("-<digest>") to a file in STATE_DIR named after the worker's ports (the address Moodle
 * knows it by survives a restart; the WORKER_ID may not). Digests are the first 16 bytes
 * of SHA-256 of the admin ticket (ticket_digest): tickets themselves never touch the disk.
 * No fsync: a keeper that dies leaves the page cache behind; a host that crashes loses its
 * containers too, and its tickets' answers are then "not found".
 *
 * ticketlog_open() reads what a previous run left (the tasks it started and never ended:
 * at most `max_lost` of them, the newest), then starts the file over. The file is rewritten
 * with only the live tasks whenever it grows past TICKETLOG_COMPACT bytes.
 *
 * Ownership: the ticketlog owns its fd and its copy of the live digests.
 */
#ifndef VC_TICKETLOG_H
#define VC_TICKETLOG_H

#include <stddef.h>

#include "err.h"
#include "tickets.h"

#define TICKETLOG_COMPACT (1u << 20)

struct ticketlog;

/* *lost gets `*nlost` digests (malloc'd, the caller frees it). */
struct ticketlog *ticketlog_open(const char *path, size_t max_lost, unsigned char **lost,
				 size_t *nlost, struct err *err);
void ticketlog_add(struct ticketlog *tl, const unsigned char d[TICKET_DIGEST_LEN]);
void ticketlog_remove(struct ticketlog *tl, const unsigned char d[TICKET_DIGEST_LEN]);
void ticketlog_free(struct ticketlog *tl); /* the file stays: a restart reads it */

#endif

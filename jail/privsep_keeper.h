/*
 * privsep_keeper.h - the worker's privileged process (privsep.h): the containerd client, the
 * sandbox and the runs of tasks, driven by what the parser asks over the channel.
 *
 * The keeper keeps a mirror of every task the parser started (the sandbox works on struct
 * task as it always did) and after each turn of its loop sends the parser what changed in
 * each mirror: state, progress flags, appended outputs. Sinks of terminals and web relays
 * turn into messages at once. Everything from the parser is checked again (ids, file names,
 * limits against this process's own configuration, string lengths): a malformed message
 * means the parser is broken or compromised, and the keeper kills it and stops.
 *
 * Signals reach the keeper: SIGTERM/SIGINT are passed on as K_TERM (the parser drains, then
 * exits), SIGHUP makes the keeper read the certificate and key (the parser is chrooted and
 * cannot) and send them (K_TLS). DRAIN_FILE is looked at here too, once a second (K_DRAIN).
 *
 * keeper_run() returns when the parser has exited: the parser's exit status (0..255), after
 * the keeper has stopped every run and removed its containers.
 */
#ifndef VC_PRIVSEP_KEEPER_H
#define VC_PRIVSEP_KEEPER_H

#include <sys/types.h>

#include "config.h"
#include "err.h"

int keeper_run(const struct jail_config *cfg, int fd, pid_t parser);

#endif

/*
 * privsep_parser.h - the parser's side of the privsep channel (privsep.h): stands in for the
 * sandbox behind struct jail's task hooks, so the protocol code runs unchanged in a process
 * that holds no containerd socket.
 *
 * Every hook turns into a message to the keeper and returns at once; what comes back (task
 * progress and outputs, terminal and web-app bytes, update results) is applied from the loop:
 * task fields are copied into the parser's task (so the monitor socket's polling sees them),
 * sinks are called. Failures the sandbox would have returned synchronously come back as a
 * sink's `ended`, an update's done(arg, 0) or a task that ends with the reason in its
 * compilation output: the answers Moodle sees are the same.
 *
 * psp_install() sets the hooks of j (j->ev must exist: the channel's fd is watched there).
 * The keeper's control messages reach the hooks set with psp_on_control: TLS material for a
 * certificate reload, SIGTERM, the DRAIN_FILE state. When the channel fails (the keeper is
 * gone) on_gone is called: the parser must stop.
 */
#ifndef VC_PRIVSEP_PARSER_H
#define VC_PRIVSEP_PARSER_H

#include "jail.h"

struct psp;

struct psp_control {
	void (*tls)(void *arg, const void *cert, size_t cert_len, const void *key, size_t key_len);
	void (*term)(void *arg);
	void (*gone)(void *arg, const char *why);
	void *arg;
};

struct psp *psp_install(struct jail *j, int fd, struct err *err);
void psp_on_control(struct psp *p, const struct psp_control *c);
/* Waits (running j->ev) until the keeper says its sandbox is up: 0, or -1 when the keeper
 * failed and closed the channel. The parser opens no socket before: a worker whose sandbox
 * cannot start never looks up. */
int psp_wait_ready(struct psp *p);
void psp_free(struct psp *p);

#endif

/*
 * tlsfiles.h - checking a certificate and key pair before a server uses it: at start-up,
 * and before every SIGHUP reload, so a broken or mismatched pair never replaces a good one.
 * Used by vpl-jail and vpl-proxy alike.
 */
#ifndef VC_TLSFILES_H
#define VC_TLSFILES_H

#include "err.h"

/* 0 when cert (a PEM chain) and key (PEM) load and belong together; -1 with a message
 * naming the file at fault otherwise. */
int tls_files_check(const char *cert, const char *key, struct err *err);

#endif

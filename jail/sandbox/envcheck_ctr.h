/*
 * envcheck_ctr.h - `vpl-jail -f FILE --check`: the whole environment check
 * (docs/troubleshooting.md).
 *
 * envcheck_main() loads the configuration, runs the host checks of envcheck.h (among them
 * `RUNTIME --version`, spawned while no grpc client exists yet), then the checks that talk to
 * services: the local registry (GET /v2/: 200 or 401 = it answers), containerd at
 * CONTAINERD_SOCKET (Version), and DEFAULT_IMAGE in containerd's namespace, unpacked for the
 * snapshotter tasks use (else: can the registry serve it?). It prints one line per check and a
 * closing count on `out`, and returns the exit status: 0 when nothing FAILed, 1 otherwise.
 *
 * It lives with the containerd client (libctr.a) because it needs it and the registry client;
 * the pure checks stay in libjail (jail/envcheck.h) where the unit tests reach them.
 */
#ifndef VC_ENVCHECK_CTR_H
#define VC_ENVCHECK_CTR_H

#include <stdio.h>

int envcheck_main(const char *config_path, FILE *out);

#endif

/*
 * image_cli.h - `vpl-jail image ...`: operators' image commands.
 *
 *   vpl-jail [-f CONFIG] image list
 *   vpl-jail [-f CONFIG] image pull NAME      (as DOCKER=NAME would: local registry, upstream)
 *   vpl-jail [-f CONFIG] image import FILE [NAME]   (OCI layout or docker-archive tarball)
 *   vpl-jail [-f CONFIG] image rm NAME
 *
 * They talk to containerd (CONTAINERD_SOCKET, CONTAINERD_NAMESPACE) and the registries of the
 * configuration directly: no running worker is needed, and a running worker sees the result at
 * its next lookup of that name. Returns the process exit status (0 ok, 1 failure, 2 usage).
 */
#ifndef VC_IMAGE_CLI_H
#define VC_IMAGE_CLI_H

#include "config.h"

int image_cli(const struct jail_config *cfg, int argc, char **argv);

#endif

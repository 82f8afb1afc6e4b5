/*
 * imageuser.h - an activity's USER= looked up in its image's /etc/passwd, blocking.
 *
 * vplbdx.cfg may say USER=<name>: the task then runs under that user's name (USER, LOGNAME), but
 * with its container's own uid/gid, not the image's (jail/sandbox/uidpool.h: no two live task
 * containers share a host uid, and two tasks of one activity would share the image's). The
 * lookup decides whether USER= is acceptable at all. The worker must
 * find the user's uid/gid without ever opening a host path (an unpacked rootfs can hold symlinks
 * that point at host files), so image_user_lookup() reads /etc/passwd out of the image's layers
 * as containerd's content store holds them: the manifest (through the image record's target; for
 * an index, the host platform's manifest), then each layer's tar stream through Content/Read,
 * decompressed by libarchive with its built-in gzip/zstd decoders only (plain tar needs none).
 *
 * Which /etc/passwd counts is decided as containerd's applier would build the rootfs, top layer
 * down: entry names are cleaned like filepath.Clean("/" + name) ("./etc/passwd", "/etc//passwd"
 * all count). The topmost layer holding etc/passwd wins, and reading that layer stops there. A
 * layer without it that hides lower layers' file - etc/.wh.passwd, an opaque etc/.wh..wh..opq or
 * .wh..wh..opq, a whiteout .wh.etc, or an "etc" entry that is not a directory - means the image
 * has no /etc/passwd (such a layer is read to its end, since its own etc/passwd would still
 * win). The winning entry must be a regular file (not a symlink nor a hardlink: "not a regular
 * file") of at most IMAGE_USER_PASSWD_MAX bytes. Known difference: a layer whose tar holds two
 * etc/passwd entries counts its first (containerd keeps the last); the image's author controls
 * both, so this only matters to a broken image.
 *
 * Policy: the user must exist and be neither uid 0 nor gid 0 (EPERM): a task never runs as root
 * or with root's group; any other uid/gid is accepted (images' users need not be >= 1000).
 *
 * Errors (err->code): EINVAL a name outside vplbdx.c's rule [a-z_][a-z0-9_-]{0,31}; ENOENT no such
 * image, no /etc/passwd, or no such user; EPERM root; EBADMSG malformed passwd, a passwd that is
 * not a regular file or too big, a layer that is not a readable tar; EFBIG a layer over the scan
 * caps (4M entries, 64 GiB uncompressed); plus the content store's own (ETIMEDOUT, EAGAIN, EIO,
 * ...). Messages name the user and the image.
 *
 * For the puller thread and the command-line tools only: never on the event loop thread.
 * Nothing is cached here; caching is the caller's business.
 */
#ifndef VC_IMAGEUSER_H
#define VC_IMAGEUSER_H

#include <stddef.h>

#include "ctr_client.h"
#include "err.h"
#include "imagepasswd.h"

/* See above. Returns 0 and fills *out, or -1 with err filled. */
int image_user_lookup(struct ctr_client *c, const char *image, const char *user,
		      struct image_user *out, struct err *err);

#endif

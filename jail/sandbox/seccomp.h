/*
 * seccomp.h - vplcell's built-in seccomp profile for task containers, as the OCI
 * `linux.seccomp` JSON object (runtime-spec "LinuxSeccomp"), for runc and crun to load.
 *
 * Modelled on the default profile of Docker/containerd, evaluated for a container that holds
 * NO capability (all the capability-conditional rules of that profile are therefore left out):
 *   - defaultAction SCMP_ACT_ERRNO with errno EPERM: anything not listed fails cleanly;
 *   - architectures: the native one plus its compat ABIs (x86_64 + x86 + x32, or
 *     aarch64 + arm), so a 32-bit binary cannot slip past the filter;
 *   - one ALLOW list of the ordinary syscalls that compilers, shells, Python, a JVM and an X/VNC
 *     server need; clone only without CLONE_NEW* flags, clone3 answered ENOSYS so libc falls
 *     back to clone, personality only with the harmless values, socket with any family but
 *     AF_VSOCK;
 *   - deliberately NOT allowed, beyond what Docker's list already omits: ptrace,
 *     process_vm_readv/writev (Docker allows them on kernels >= 4.8; we keep the students'
 *     processes from inspecting each other, at the price of gdb), io_uring_* (large kernel
 *     attack surface, bypasses seccomp for the operations it performs), name_to_handle_at.
 *
 * Ownership: seccomp_default_profile() returns a NEW jansson reference (the caller
 * json_decref()s it or hands it over with a stealing jansson call), or NULL when out of memory.
 * The profile is built fresh on every call, so callers may modify their copy.
 */
#ifndef VC_SECCOMP_H
#define VC_SECCOMP_H

#include <jansson.h>

json_t *seccomp_default_profile(void);

#endif

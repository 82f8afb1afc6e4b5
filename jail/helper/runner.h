/*
 * runner.h - the helper's command loop, after the files are staged.
 *
 * The worker drives the task through the control FIFO <io>/ctl instead of
 * containerd exec: one runc exec per phase cost ~30 ms, and containerd 1.6's
 * shim can hang in Start when an exec'd process exits at once (a known race,
 * fixed in later 1.6.x). Here the helper, PID 1 of the container, starts
 * each program itself as its child, with the phase's rlimits, and reports.
 *
 * Commands (worker -> helper, <io>/ctl; no argument may hold a control byte; <phase> is 1 to 16
 * letters a-z; at most 4 phases (X, T or C) at once, and one of each name):
 *   "E <NAME>=<value>\n"
 *       set an environment variable of the programs started after it
 *   "X <phase> <cpu_s> <fsize> <nproc> <argc>\n" then argc lines, one argument each
 *       run argv in the work dir, stdout+stderr to the FIFO <io>/<phase>.out,
 *       stdin /dev/null, in a new session, RLIMIT_CPU/FSIZE/NPROC as given,
 *       RLIMIT_CORE 0, default signal dispositions.
 *       Before sending: <phase>.out exists and the worker holds it open for reading
 *       (O_RDONLY|O_NONBLOCK), or the program's open blocks.
 *       The program opens <phase>.out, then WAITS: "started <phase> <pid>" is said, and it
 *       execs only on "G <phase>", which the worker sends once it has removed the FIFO's
 *       name (so no process of the task can ever open that FIFO by name).
 *   "G <phase>\n"
 *       let an X phase's program exec (see X); ignored for any other phase
 *   "T <phase> <cpu_s> <fsize> <nproc> <argc>\n" then argc lines, one argument each
 *       like X (work dir, environment, limits, signals, new session), but on a pseudo-terminal.
 *       The helper forks a relay (same uid, never execs, not dumpable) that opens
 *       <phase>.in (O_RDONLY) and <phase>.out (O_WRONLY), both O_NONBLOCK|O_NOFOLLOW|O_CLOEXEC
 *       and checked to be FIFOs, then a pty pair, then forks the program: setsid, the slave
 *       as controlling terminal (TIOCSCTTY) and as fds 0/1/2, every other fd closed, default
 *       termios (echo, ICRNL, ONLCR), no window size. The relay copies
 *         <phase>.in -> master  verbatim (xterm.js data, "\r" for Enter)
 *         master -> <phase>.out verbatim (raw bytes: no UTF-8 repair, no framing)
 *       through two fixed 64 KiB buffers: while <phase>.out is full the master is not read,
 *       so the program blocks on its terminal (likewise input: while the program does not
 *       read, the relay stops reading <phase>.in and the worker's writes get EAGAIN).
 *       Input EOF (every writer of <phase>.in closed: the browser left) or <phase>.out's
 *       reader gone (EPIPE) -> SIGHUP to the program's process group, SIGKILL to it (and to
 *       the program) 1 s later if the program has not exited. Processes that left the group
 *       are the container teardown's business.
 *       After the program exits the relay reads the master until EIO/EOF, at most 1 s and
 *       1 MiB more (a background child may hold the slave), flushes what it holds (at most
 *       2 s more), closes <phase>.out, closes the master (the slave hangs up) and exits with
 *       the program's status. "started" carries the PROGRAM's pid.
 *   "C <phase> <port> [<ip>]\n" (port 1..65535; ip a dotted quad in 127.0.0.0/8, no
 *       leading zeros, default 127.0.0.1)
 *       relay for VNC / web: the helper forks a relay (as for T) that opens <phase>.in and
 *       <phase>.out the same way, then connects to <ip>:<port> inside the container,
 *       retrying every 100 ms for 10 s. Then it copies <phase>.in -> socket and socket ->
 *       <phase>.out (fixed buffers, back-pressure both ways as for T). The socket ends
 *       (EOF or error) -> what came is written out, <phase>.out closed, exit 0. <phase>.in
 *       ends -> buffered input sent, shutdown(SHUT_WR), the relay waits for the peer's end.
 *       Either end bounds the rest by 5 s; <phase>.out's reader gone -> exit 0 at once.
 *       Connect failure -> "error connect <phase>: <strerror>" then "exit <phase> 1".
 *       "started" carries the RELAY's pid.
 *       T and C, before sending (in this order, so that nothing blocks):
 *         1. mkfifo <phase>.in and <phase>.out, mode 0600, owned by the prisoner's uid
 *            (the relay reads .in and writes .out as the prisoner);
 *         2. open <phase>.out O_RDONLY|O_NONBLOCK and keep it (else the relay's open fails
 *            with ENXIO: "error open <phase>.out: ..." then "exit <phase> 126"). Until the
 *            relay opens it, reads give 0 and epoll/poll report nothing: wait for events;
 *         3. send the command; on "started <phase> <pid>" the relay holds both FIFOs, so:
 *            open <phase>.in O_WRONLY|O_NONBLOCK (cannot block; ENXIO means the relay died
 *            meanwhile: "exit" follows), then unlink both names;
 *         4. write input to <phase>.in (EAGAIN: full, wait for POLLOUT; EPIPE: relay gone);
 *            close it to end the input (T: hang-up, C: half-close); read <phase>.out to EOF.
 *       Before "started" the relay's open of <phase>.in returns at once (O_NONBLOCK) and it
 *       does not read it until a writer has come, so a late worker open loses nothing.
 *       A T/C phase is over when "exit" is said; its <phase>.out then is at EOF (the relay
 *       closed it before exiting, and the program never holds it). The relay runs with the
 *       student's uid, so a program can kill it: <phase>.out ends, the helper reaps the relay
 *       and says "exit <phase> 128+sig" (e.g. 137); if that happens before "started",
 *       "exit" comes without "started". An "error <what> <phase>...: <why>" line (what: open,
 *       pty, pipe, fork, connect) is always followed by that phase's "exit".
 *   "A\n"
 *       the web program's local server: reads .vpl_localserveraddress in the work dir
 *       (openat, O_NOFOLLOW, a regular file of at most 64 bytes) and replies
 *       "addr <ip>:<port>" (ip in 127.0.0.0/8 as for C, port 1..65535; trailing white space
 *       of the file ignored) or "addr none" (missing, unreadable or not exactly that form)
 *   "P <n>\n" then n lines, one name each
 *       delete those names (validated, never following links), then report
 *   "U <fifo>\n" (<fifo> named like a phase: 1 to 16 letters a-z)
 *       an update of the running task's files (the `update` RPC): the helper opens <io>/<fifo>
 *       (O_RDONLY|O_NONBLOCK|O_NOFOLLOW, checked to be a FIFO) and says "updating <fifo>";
 *       then it reads ONE file stream (filestream.h, the initial staging's format) from it,
 *       for at most UPDATE_READ_MS, and writes each file into the work dir as the task's
 *       user: an existing regular file is truncated and rewritten (its mode kept), a missing
 *       one created (with the stream's mode, missing directories made 0700); a symlink in any
 *       component (the leaf included), or a leaf that is a directory, FIFO, socket or device,
 *       is refused and stops the update there (files before it stay written). Then
 *       "updated <fifo> <n files>" or "error update <fifo>: <why>" (no other reply; an open
 *       failure gives "error update <fifo>: ..." without "updating"). The helper serves no
 *       other command while it reads the stream (they wait in ctl).
 *       Before sending: the worker made <fifo> (mode 0600, owned by the task's uid) and holds
 *       it open O_RDWR|O_NONBLOCK (so the helper's open cannot block or fail with ENXIO, and
 *       what it writes early waits in the pipe). On "updating <fifo>" the helper holds it:
 *       the worker unlinks the name (so no process of the task can open it later), writes
 *       the stream and closes its end.
 * Replies (helper -> worker, stdout; one line each, written in one write()):
 *   "started <phase> <pid>" (X: once the program holds its output FIFO open and has been
 *   exec'd: the worker may then remove the FIFO's name; T, C: see above)
 *   | "exit <phase> <status>" (the shell's convention: 128+signal for a signal; after
 *   "started" of the same phase, except as said for T/C)
 *   | "addr <ip>:<port>" | "addr none" (A)
 *   | "updating <fifo>" | "updated <fifo> <n>" | "error update <fifo>: <why>" (U)
 *   | "probe vpl_execution=<0|1> vpl_wexecution=<0|1> vpl_webexecution=<0|1>"
 *   | "error <why>" (a bad command, "error too many programs at once", "error phase <phase>
 *   is still running": nothing started, no "exit" follows; or as said for T/C)
 */
#ifndef VC_RUNNER_H
#define VC_RUNNER_H

/* Opens <io>/ctl, before the helper says "ready": the worker removes the
 * FIFOs' names once the helper has opened them, so no student process can
 * open them later and speak for the helper or into another phase's output. */
int runner_open_ctl(void);

/* Never returns; rootfd is the work directory, ctl from runner_open_ctl(). */
void runner_loop(int rootfd, int ctl) __attribute__((noreturn));

/* How long "U" waits for its whole stream. */
#define UPDATE_READ_MS 10000

struct err;

/* From vplhelper.c. */
int helper_delete_name(int rootfd, const char *name);
int helper_is_regular_file(int rootfd, const char *name);
/* Reads one file stream from fifo within timeout_ms and writes it under rootfd, replacing
 * existing regular files (see "U"); returns the number of files, or -1 with err. */
long helper_update_stream(int fifo, int rootfd, int timeout_ms, struct err *err);

#endif

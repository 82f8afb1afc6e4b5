/*
 * runner.h - the helper's command loop, after the files are staged.
 *
 * The worker drives the task through the control FIFO <io>/ctl instead of
 * containerd exec: one runc exec per phase cost ~30 ms, and containerd 1.6's
 * shim can hang in Start when an exec'd process exits at once (a known race,
 * fixed in later 1.6.x). Here the helper, PID 1 of the container, starts
 * each program itself as its child, with the phase's rlimits, and reports.
 *
 * Commands (worker -> helper, <io>/ctl; no argument may hold a control byte):
 *   "E <NAME>=<value>\n"
 *       set an environment variable of the programs started after it
 *   "X <phase> <cpu_s> <fsize> <nproc> <argc>\n" then argc lines, one argument each
 *       run argv in the work dir, stdout+stderr to the FIFO <io>/<phase>.out,
 *       stdin /dev/null, in a new session, RLIMIT_CPU/FSIZE/NPROC as given,
 *       RLIMIT_CORE 0, default signal dispositions
 *   "P <n>\n" then n lines, one name each
 *       delete those names (validated, never following links), then report
 * Replies (helper -> worker, stdout):
 *   "started <phase> <pid>" (once the program holds its output FIFO open and
 *   has been exec'd: the worker may then remove the FIFO's name) | "exit <phase> <status>" (the
 * shell's convention: 128+signal for a signal) | "probe vpl_execution=<0|1> vpl_wexecution=<0|1>
 *   vpl_webexecution=<0|1>" | "error <why>"
 */
#ifndef VC_RUNNER_H
#define VC_RUNNER_H

/* Opens <io>/ctl, before the helper says "ready": the worker removes the
 * FIFOs' names once the helper has opened them, so no student process can
 * open them later and speak for the helper or into another phase's output. */
int runner_open_ctl(void);

/* Never returns; rootfd is the work directory, ctl from runner_open_ctl(). */
void runner_loop(int rootfd, int ctl) __attribute__((noreturn));

/* From vplhelper.c. */
int helper_delete_name(int rootfd, const char *name);
int helper_is_regular_file(int rootfd, const char *name);

#endif

/* job_init: the first process of every run of a run job.
 *
 * The node starts it (runner/isolation_child.cpp) already inside the job's
 * namespaces, cgroup and user id, with:
 *   fd 0, 1, 2  the job's stdin, stdout and stderr
 *   fd 3        the job's script, a sealed memfd the shell reads as /dev/fd/3
 *   fd 4        the status pipe back to the node
 *   argv[1]     how to end what the shell leaves behind:
 *               "pid1"  it is process 1 of the job's PID namespace: when it
 *                       exits the kernel kills every process of the namespace
 *               "uid"   it runs under a user id no other job has: kill(-1)
 *                       reaches exactly the job's processes
 *               "tree"  neither: as a subreaper it kills its children until
 *                       none is left (orphans are reparented to it)
 *
 * It runs `/bin/sh -c '. /dev/fd/3' sh` (so a script of any size runs, and
 * `$0` is `sh` as with `sh -c`), waits for the shell, ends everything the
 * shell left, and writes one struct jc_init_report to fd 4. The shell is a
 * child, not process 1 itself, so a program that signals itself (abort(),
 * `kill -SEGV $$`) dies of its signal as it would anywhere else.
 *
 * It is static and small: it costs one exec, and it needs nothing from the
 * job's minimal root. No allocation, no stdio, only system calls.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runner/init/init_report.h"

extern char** environ;

/* The shell, for the SIGTERM handler. */
static volatile pid_t shell_pid = 0;

/* Without a PID namespace the node asks with SIGTERM for the run to end
 * (a limit, a cancel): the shell goes, and the usual clean-up follows. */
static void on_term(int sig) {
  (void)sig;
  if (shell_pid > 0) kill(shell_pid, SIGKILL);
}

static void write_all(int fd, const void* data, size_t size) {
  const char* p = data;
  while (size > 0) {
    ssize_t n = write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    p += n;
    size -= (size_t)n;
  }
}

static void say(const char* a, const char* b) {
  write_all(2, "jobcluster: ", 12);
  write_all(2, a, strlen(a));
  write_all(2, b, strlen(b));
  write_all(2, "\n", 1);
}

static void pause_briefly(void) {
  struct timespec t = {0, 1000000};
  nanosleep(&t, NULL);
}

/* Reaps whatever has exited, without blocking. */
static void reap_exited(void) {
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

/* Kills our children (and so, as a subreaper, every descendant in turn). */
static int kill_children(void) {
  char path[64] = "/proc/self/task/";
  char digits[16];
  int n = 0;
  for (pid_t p = getpid(); p > 0; p /= 10) digits[n++] = (char)('0' + p % 10);
  size_t at = strlen(path);
  while (n > 0) path[at++] = digits[--n];
  memcpy(path + at, "/children", 10);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buffer[4096];
  ssize_t got = read(fd, buffer, sizeof buffer - 1);
  close(fd);
  int killed = 0;
  pid_t pid = 0;
  for (ssize_t i = 0; i < got; ++i) {
    if (buffer[i] >= '0' && buffer[i] <= '9') {
      pid = pid * 10 + (buffer[i] - '0');
    } else if (pid > 0) {
      kill(pid, SIGKILL);
      ++killed;
      pid = 0;
    }
  }
  return killed;
}

/* Ends every process the shell left: returns once we have no child left. */
static void end_leftovers(const char* mode) {
  int by_uid = strcmp(mode, "tree") != 0;
  for (;;) {
    if (by_uid) {
      kill(-1, SIGKILL);
    } else {
      kill_children();
    }
    reap_exited();
    errno = 0;
    if (waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD) return;
    pause_briefly();
  }
}

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "pid1";
  struct jc_init_report report;
  memset(&report, 0, sizeof report);
  report.magic = JC_INIT_REPORT_MAGIC;

  /* Nothing of the job may trace us (it may share our user id) and forge
   * the status we report. */
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  /* Executed from a memfd, it would show as "memfd:..." in ps. */
  prctl(PR_SET_NAME, "jobcluster-init", 0, 0, 0);
  if (strcmp(mode, "pid1") != 0) {
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
  }
  fcntl(4, F_SETFD, FD_CLOEXEC);
  /* Under memory pressure the kernel picks the job's processes, not the node. */
  int adj = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
  if (adj >= 0) {
    write_all(adj, "1000", 4);
    close(adj);
  }

  static char* const shell_argv[] = {"sh", "-c", ". /dev/fd/3", "sh", NULL};
  volatile int exec_errno = 0;
  pid_t shell = vfork();
  if (shell == 0) {
    execve("/bin/sh", shell_argv, environ);
    exec_errno = errno;
    _exit(127);
  }
  if (shell < 0) {
    report.start_errno = errno;
    say("cannot start /bin/sh: ", strerror(errno));
    write_all(4, &report, sizeof report);
    return 1;
  }
  shell_pid = shell;
  close(3);
  if (exec_errno != 0) {
    report.start_errno = exec_errno;
    say("cannot run /bin/sh: ", strerror(exec_errno));
  }
  for (;;) {
    int status = 0;
    pid_t p = waitpid(-1, &status, 0);
    if (p == shell) {
      report.wait_status = status;
      break;
    }
    if (p < 0 && errno != EINTR) break;
  }
  end_leftovers(mode);
  struct rusage usage;
  if (getrusage(RUSAGE_CHILDREN, &usage) == 0) {
    report.cpu_us = (int64_t)(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000000 +
                    usage.ru_utime.tv_usec + usage.ru_stime.tv_usec;
    report.maxrss_kb = usage.ru_maxrss;
  }
  report.complete = 1;
  write_all(4, &report, sizeof report);
  return 0;
}

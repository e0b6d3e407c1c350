/* What job_init (runner/init/job_init.c) reports to the node on fd 4 when
 * the job's shell has ended: shared by the C init and the C++ node, so plain
 * C with fixed-size fields. */
#ifndef JC_RUNNER_INIT_REPORT_H
#define JC_RUNNER_INIT_REPORT_H

#include <stdint.h>

#define JC_INIT_REPORT_MAGIC 0x6a63696eu /* "jcin" */

struct jc_init_report {
  uint32_t magic;
  int32_t wait_status; /* the shell's, as waitpid() gives it */
  int32_t start_errno; /* /bin/sh could not be started: why */
  int32_t complete;    /* 1: the shell ended and everything it left was ended */
  int64_t cpu_us;      /* user + system time of every process init reaped */
  int64_t maxrss_kb;   /* the largest single process's peak resident size */
};

#endif

// The integration tests' main: doctest as usual, and the exit code ctest
// reads as "skipped" when a test case skipped for a reason of the machine
// (tests/support/skip.h) and nothing failed.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "tests/support/skip.h"

int main(int argc, char** argv) {
  doctest::Context context(argc, argv);
  int rc = context.run();
  if (context.shouldExit()) return rc;
  if (rc == 0 && jc::test::any_skipped()) return jc::test::kSkipExitCode;
  return rc;
}

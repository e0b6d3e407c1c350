// Skipping a test case for a reason the machine gives (no root, no
// CAP_SYS_ADMIN, no browser), so that ctest reports it as skipped and never
// as passed. A test case calls JC_SKIP("why"); the integration tests' main
// then exits with kSkipExitCode (tests/CMakeLists.txt gives ctest that code
// as SKIP_RETURN_CODE) when nothing failed.
#pragma once

#include <string>

namespace jc::test {

constexpr int kSkipExitCode = 77;

void mark_skipped(const std::string& reason);
bool any_skipped();

// Whether this process has CAP_SYS_ADMIN (its effective set), which a root
// in a container may lack.
bool has_cap_sys_admin();
// Whether this process may create cgroups (v1 memory hierarchy, or a v2
// directory with the memory controller): where it may, a node run by it
// must limit jobs through cgroups.
bool can_create_cgroups();

}  // namespace jc::test

#define JC_SKIP(reason)                  \
  do {                                   \
    ::jc::test::mark_skipped(reason);    \
    return;                              \
  } while (0)

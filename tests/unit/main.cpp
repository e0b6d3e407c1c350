// The unit tests' main: logging off once for every test (the cores log
// through spdlog), then doctest as usual.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "common/log.h"

int main(int argc, char** argv) {
  jc::log::init("off");
  doctest::Context context(argc, argv);
  return context.run();
}

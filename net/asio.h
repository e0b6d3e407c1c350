// Include Boost.Asio through this header: Boost 1.74's awaitable.hpp uses
// std::exchange without including <utility>, which g++ 12 does not pull in.
#pragma once

// clang-format off
#include <utility>
#include <boost/asio.hpp>
// clang-format on

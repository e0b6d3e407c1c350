// Which node issues each ticket prefix (nodes issue
// <prefix>-<counter>-<random>, one prefix per DATA_DIR): learnt from SUBMITs
// and from the jobs a proxy recovers. The first node seen with a prefix
// keeps it, so another node's SUBMIT cannot claim it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/hash_maps.h"

namespace jc::proxy {

class TicketOrigins {
 public:
  // `origin`: an interned node name (0: none, ignored).
  void note(std::string_view ticket, std::uint32_t origin);
  // Recovery, jobs in any order: each prefix goes to the node of its lowest
  // counter, as if they had come in order. finish_recovery() applies them.
  void recovered(std::string_view ticket, std::uint32_t origin);
  void finish_recovery();
  // The node whose prefix `ticket` carries, if known.
  std::optional<std::uint32_t> origin_of(std::string_view ticket) const;
  // A node that drained and left holds nothing on its way.
  void forget(std::uint32_t origin);

 private:
  FlatMap<std::string, std::uint32_t> by_prefix_;
  FlatMap<std::string, std::pair<std::uint64_t, std::uint32_t>> recovering_;
};

}  // namespace jc::proxy

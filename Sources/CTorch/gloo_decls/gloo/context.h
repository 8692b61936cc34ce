// Declarations standing in for Gloo's header of that name (see ../README.md): ProcessGroupGloo.hpp's
// inline setTimeout calls Context::setTimeout, so the class is declared with that member only.
#pragma once
#include <chrono>

namespace gloo {
class Context {
 public:
  void setTimeout(std::chrono::milliseconds timeout);
};
}  // namespace gloo

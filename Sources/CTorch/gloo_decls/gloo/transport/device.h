// Declarations standing in for Gloo's header of that name (see ../../README.md).
#pragma once

namespace gloo {
namespace transport {
class Device;
class UnboundBuffer;
}  // namespace transport
}  // namespace gloo

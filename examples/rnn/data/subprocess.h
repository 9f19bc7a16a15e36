// Runs a program (no shell) and captures its output (internal; used to call espeak-ng).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mantra::examples::detail {

struct ProcessResult {
  int exit_code = -1;        // exit status; 128 + signal when killed; 127 when it could not start
  std::vector<uint8_t> out;  // everything written to stdout
  std::string error;         // stderr (truncated to 4 KiB)
};

// argv[0] is looked up on PATH. stdin is /dev/null. Thread-safe: pipes are close-on-exec,
// so children started concurrently do not hold each other's pipes open.
ProcessResult run_capture(const std::vector<std::string>& argv);

}  // namespace mantra::examples::detail

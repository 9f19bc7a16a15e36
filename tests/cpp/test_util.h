// Helpers shared by the GoogleTest suites.
#pragma once

#include <gtest/gtest.h>

#include <c10/util/Exception.h>

#include <functional>
#include <string>

namespace mantra::test {

// Expects f to throw a c10::Error whose message contains `needle` (e.g. the argument name).
inline void expect_error(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "expected an error mentioning: " << needle;
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

}  // namespace mantra::test

// A fresh per-process scratch folder for the data tests.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "data/io_util.h"

namespace mantra::examples::test {

inline std::string temp_dir(const std::string& name) {
  const std::string d = ::testing::TempDir() + "/mantra_" + name + "_" + std::to_string(::getpid());
  detail::remove_tree(d);
  detail::make_dirs(d);
  return d;
}

}  // namespace mantra::examples::test

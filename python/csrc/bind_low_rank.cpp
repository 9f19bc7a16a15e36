// Bindings of low rank coupled with oblique / sphere / stacked Stiefel (issue 13): the three
// manifolds (in mantra._C.manifolds), the functional helpers of the constraints (in
// mantra._C.functional) and the C++ side of the cross-language test (mantra._C.testing).
#include <pybind11/stl.h>
#include <torch/extension.h>

#include "mantra/mantra.h"

namespace py = pybind11;

namespace {

namespace mm = mantra::manifolds;
namespace pz = mantra::parametrize;
namespace fn = mantra::parametrize::functional;

template <typename M>
using Class = py::class_<M, mm::LowRankCoupled, std::shared_ptr<M>>;

// Pickling rebuilds a manifold from its spec (they are immutable).
py::tuple reduce(const mm::Manifold& self) {
  py::object from_spec = py::module_::import("mantra._C").attr("manifolds").attr("from_spec");
  return py::make_tuple(from_spec, py::make_tuple(self.spec()));
}

// The constructor of the coupled manifolds built from (m, n, rank, retraction).
template <typename M>
void def_init(Class<M> c) {
  c.def(py::init([](int64_t m, int64_t n, int64_t rank, const std::string& retraction) {
          return std::make_shared<M>(m, n, rank, mm::retraction_from_string(retraction));
        }),
        py::arg("m"), py::arg("n"), py::arg("rank"), py::arg("retraction") = "polar");
}

// The C++ frontend's side of tests/python/test_low_rank_coupled.py's cross-language test (as
// mantra._C.testing.cpp_constraint for the other constraints): builds the constraint `fn` as
// a C++ user would on a module whose "weight" is randn(shape) after manual_seed(seed), adds
// `deltas` to its parameters, returns the value and the value after a rebase.
std::pair<at::Tensor, at::Tensor> cpp_low_rank_coupled(const std::string& fn_name, std::vector<int64_t> shape,
                                                       const at::Tensor& like, int64_t seed, int64_t rank, int64_t p,
                                                       const std::string& triv, const std::string& init,
                                                       const std::map<std::string, at::Tensor>& deltas) {
  torch::manual_seed(seed);
  torch::nn::Module module("Holder");
  module.register_parameter("weight", at::randn(shape, like.options()));
  pz::CoupledLowRank c(nullptr);
  if (fn_name == "low_rank_oblique") {
    c = pz::low_rank_oblique(module, "weight", rank, triv);
  } else if (fn_name == "low_rank_sphere") {
    c = pz::low_rank_sphere(module, "weight", rank, triv);
  } else if (fn_name == "low_rank_stacked_stiefel") {
    c = pz::low_rank_stacked_stiefel(module, "weight", rank, p, triv);
  } else {
    TORCH_CHECK_VALUE(false, "cpp_low_rank_coupled: unknown constraint '", fn_name, "'");
  }
  if (!init.empty()) c->sample(init);
  torch::NoGradGuard no_grad;
  auto params = c->named_parameters();
  for (const auto& [name, delta] : deltas) {
    TORCH_CHECK_VALUE(params.contains(name), "cpp_low_rank_coupled: the constraint has no parameter '", name, "'");
    params[name].add_(delta);
  }
  at::Tensor value = c->forward().detach().clone();
  c->rebase();
  return {value, c->forward().detach().clone()};
}

}  // namespace

void bind_low_rank(py::module_& m) {
  py::module_ manifolds = m.attr("manifolds");
  py::class_<mm::LowRankCoupled, mm::Manifold, std::shared_ptr<mm::LowRankCoupled>>(manifolds, "LowRankCoupled",
                                                                                    R"doc(Low rank coupled with an orthogonally invariant h: X = H Vᵀ on H_r × St(n, r) (abstract).

.. math:: \{X \in \mathbb{R}^{m \times n} : \operatorname{rank} X \le r,\ h(X) = 0\} = \{H V^\top : V \in \mathrm{St}(n, r),\ h([H\ 0]) = 0\}

A point is the factor pair packed into one tensor P = [H; V] of shape (..., m+n, r); the
weight is ``compose(P)`` = H Vᵀ (..., m, n), and ``factor(X)`` goes back (thin SVD). The
protocol's maps act on P with the product metric and cost O((m+n) r²): no m×n or n×n matrix.
Retractions (on both factors): ``"polar"`` (default), ``"qr"``, ``"exp"``. Instances:
LowRankOblique, LowRankSphere, LowRankStackedStiefel.

Args:
    none: abstract; construct an instance.

Example::

    >>> M = mantra.manifolds.LowRankOblique(6, 5, 2)
    >>> X = M.compose(M.random(11, 2, dtype=torch.float64))
    >>> torch.allclose(X.norm(dim=1), torch.ones(6, dtype=torch.float64))
    True
)doc")
      .def_property_readonly("m", &mm::LowRankCoupled::m)
      .def_property_readonly("n", &mm::LowRankCoupled::n)
      .def_property_readonly("rank", &mm::LowRankCoupled::rank)
      .def("split", &mm::LowRankCoupled::split, py::arg("P"), R"doc(The factors of a point: H (..., m, r) and V (..., n, r).

.. math:: P = \begin{bmatrix} H \\ V \end{bmatrix} \mapsto (H, V)

Args:
    P (Tensor): a tensor of shape (..., m+n, r).

Example::

    >>> M = mantra.manifolds.LowRankSphere(4, 3, 2); H, V = M.split(M.random(7, 2))
)doc")
      .def("join", &mm::LowRankCoupled::join, py::arg("H"), py::arg("V"), R"doc(The point [H; V] of the factors.

.. math:: (H, V) \mapsto \begin{bmatrix} H \\ V \end{bmatrix}

Args:
    H (Tensor): (..., m, r).
    V (Tensor): (..., n, r).

Example::

    >>> M = mantra.manifolds.LowRankSphere(4, 3, 2); P = M.random(7, 2); torch.equal(M.join(*M.split(P)), P)
    True
)doc")
      .def("compose", &mm::LowRankCoupled::compose, py::arg("P"), R"doc(The weight H Vᵀ of a point P = [H; V].

.. math:: X = H V^\top \in \mathbb{R}^{m \times n}

Args:
    P (Tensor): (..., m+n, r).

Example::

    >>> M = mantra.manifolds.LowRankOblique(6, 5, 2); M.compose(M.random(11, 2)).shape
    torch.Size([6, 5])
)doc")
      .def("factor", &mm::LowRankCoupled::factor, py::arg("X"), R"doc(A point P with compose(P) = X, for X of rank ≤ r with h(X) = 0 (thin SVD).

.. math:: X = U \Sigma W^\top \mapsto V = W_r,\ H = X V

Args:
    X (Tensor): (..., m, n).

Example::

    >>> M = mantra.manifolds.LowRankOblique(6, 5, 2); X = M.compose(M.random(11, 2, dtype=torch.float64))
    >>> torch.allclose(M.compose(M.factor(X)), X)
    True
)doc")
      .def("check_matrix", &mm::LowRankCoupled::check_matrix, py::arg("X"), py::arg("atol") = 1e-5,
           R"doc(Why X (..., m, n) is not of rank ≤ r with h(X) = 0 (within atol), or "".

.. math:: \sigma_{r+1}(X) \le \mathrm{atol} \cdot \max(1, \sigma_1(X)), \quad |h(X)| \le \mathrm{atol}

Args:
    X (Tensor): the matrix.
    atol (float): the tolerance. Default: ``1e-5``.

Example::

    >>> mantra.manifolds.LowRankOblique(6, 5, 2).check_matrix(torch.randn(6, 5))  # doctest: +ELLIPSIS
    'its rank exceeds 2...'
)doc")
      .def("__reduce__", &reduce)
      .def("__repr__", [](const mm::LowRankCoupled& self) { return "mantra.manifolds." + self.spec(); });

  def_init(Class<mm::LowRankOblique>(manifolds, "LowRankOblique", R"doc(Rank ≤ r with rows of unit norm: X = H Vᵀ, H ∈ Ob(m, r) (unit rows), V ∈ St(n, r).

.. math:: \{X \in \mathbb{R}^{m \times n} : \operatorname{rank} X \le r,\ \operatorname{diag}(X X^\top) = 1\}

Points P = [H; V] of shape (..., m+n, r); see LowRankCoupled.

Args:
    m (int): rows of the weight.
    n (int): columns of the weight.
    rank (int): r, 1 <= r <= min(m, n).
    retraction (str): ``"polar"``, ``"qr"`` or ``"exp"``. Default: ``"polar"``.

Example::

    >>> M = mantra.manifolds.LowRankOblique(6, 5, 2); M.spec
    'LowRankOblique(m=6,n=5,rank=2,retraction=polar)'
)doc"));
  def_init(Class<mm::LowRankSphere>(manifolds, "LowRankSphere", R"doc(Rank ≤ r with unit Frobenius norm: X = H Vᵀ, ‖H‖_F = 1, V ∈ St(n, r).

.. math:: \{X \in \mathbb{R}^{m \times n} : \operatorname{rank} X \le r,\ \|X\|_F = 1\}

Points P = [H; V] of shape (..., m+n, r); see LowRankCoupled.

Args:
    m (int): rows of the weight.
    n (int): columns of the weight.
    rank (int): r, 1 <= r <= min(m, n).
    retraction (str): ``"polar"``, ``"qr"`` or ``"exp"``. Default: ``"polar"``.

Example::

    >>> M = mantra.manifolds.LowRankSphere(4, 3, 1); float(M.compose(M.random(7, 1)).norm())  # doctest: +ELLIPSIS
    1.0...
)doc"));
  Class<mm::LowRankStackedStiefel>(manifolds, "LowRankStackedStiefel", R"doc(Rank ≤ r, X = (X_1; …; X_k) with each p×n block of orthonormal rows.

.. math:: \{X \in \mathbb{R}^{kp \times n} : \operatorname{rank} X \le r,\ X_j X_j^\top = I_p\} = \{H V^\top : H_j H_j^\top = I_p\}

Points P = [H; V] of shape (..., m+n, r), m = k·p, p <= r; see LowRankCoupled.

Args:
    m (int): rows of the weight (a multiple of p).
    n (int): columns of the weight.
    rank (int): r, p <= r <= min(m, n).
    p (int): rows of one block.
    retraction (str): ``"polar"``, ``"qr"`` or ``"exp"``. Default: ``"polar"``.

Example::

    >>> M = mantra.manifolds.LowRankStackedStiefel(6, 4, 3, 2); M.p
    2
)doc")
      .def(py::init([](int64_t m, int64_t n, int64_t rank, int64_t p, const std::string& retraction) {
             return std::make_shared<mm::LowRankStackedStiefel>(m, n, rank, p, mm::retraction_from_string(retraction));
           }),
           py::arg("m"), py::arg("n"), py::arg("rank"), py::arg("p"), py::arg("retraction") = "polar")
      .def_property_readonly("p", &mm::LowRankStackedStiefel::p);

  py::module_ f = m.attr("functional");
  auto spec_of = [](const std::string& spec) { return mm::manifold_from_spec(spec, "manifold"); };
  f.def(
      "low_rank_coupled_check",
      [spec_of](const std::string& manifold, const at::Tensor& X, std::vector<int64_t> shape, double atol) {
        return fn::low_rank_coupled_check(*spec_of(manifold), X, shape, atol);
      },
      "Why X is not a value of the coupled low-rank constraint (rank, h), or \"\"", py::arg("manifold"), py::arg("X"),
      py::arg("shape"), py::arg("atol"));
  f.def(
      "low_rank_coupled_base",
      [spec_of](const std::string& manifold, const at::Tensor& X) { return fn::low_rank_coupled_base(*spec_of(manifold), X); },
      "The base [H; V] that makes X the value (the projected factor(X))", py::arg("manifold"), py::arg("X"));
  f.def("low_rank_coupled_triv", []() { return std::string(pz::Defaults::low_rank_coupled_triv); },
        "The default triv of low_rank_oblique, low_rank_sphere, low_rank_stacked_stiefel (the defaults table)");

  py::module_ t = m.attr("testing");
  t.def("cpp_low_rank_coupled", &cpp_low_rank_coupled, py::arg("fn"), py::arg("shape"), py::arg("like"),
        py::arg("seed"), py::arg("rank"), py::arg("p"), py::arg("triv"), py::arg("init"), py::arg("deltas"));
}

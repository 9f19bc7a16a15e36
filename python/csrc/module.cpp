// mantra._C: loading it loads libmantra, which registers the torch.ops.mantra operators, and
// binds the C++ core for the Python frontend (the math stays in C++; Python wraps it).
#include <pybind11/functional.h>
#include <torch/extension.h>

#include "mantra/mantra.h"

namespace py = pybind11;
using namespace mantra::manifolds;

namespace {

namespace pz = mantra::parametrize;
namespace fn = mantra::parametrize::functional;

ManifoldPtr manifold_or_euclidean(const std::shared_ptr<Manifold>& m) {
  return m ? ManifoldPtr(m) : std::make_shared<Euclidean>();
}

Retraction parse_retraction(const std::string& name) { return retraction_from_string(name, "method"); }

template <typename M>
using Class = py::class_<M, Manifold, std::shared_ptr<M>>;

void bind_testing(py::module& m);

}  // namespace
void bind_bayes(pybind11::module_& m);

void bind_diagnostics(py::module& m);
void bind_low_rank(py::module_& m);  // python/csrc/bind_low_rank.cpp
void bind_conv(py::module_& m);      // python/csrc/bind_conv.cpp

PYBIND11_MODULE(_C, m) {
  m.doc() = "mantra C++ core";
  m.attr("__version__") = MANTRA_VERSION;
  m.def("cuda_enabled", &mantra::cuda_enabled, R"doc(Whether libmantra was built with its CUDA kernels.

.. math:: \mathrm{cuda\_enabled}() \in \{\mathrm{True}, \mathrm{False}\}

True when the CUDA kernels of the mantra operators (expm, orthogonal_rnn) were compiled in
(CMake option MANTRA_CUDA), so that CUDA tensors run them; otherwise these operators have no
CUDA kernel. Says nothing about whether a GPU is present (see torch.cuda.is_available()).

Args:
    none.

Example::

    >>> device = "cuda" if mantra.cuda_enabled() and torch.cuda.is_available() else "cpu"
    >>> torch.equal(mantra.expm(torch.zeros(2, 2, device=device)).cpu(), torch.eye(2))
    True
)doc");

  auto mm = m.def_submodule("manifolds", "Manifolds (the C++ classes of mantra::manifolds)");
  // dynamic_attr: the Python wrapper records each manifold's constructor arguments (pickling).
  py::class_<Manifold, std::shared_ptr<Manifold>>(mm, "Manifold",
                                                   R"doc(A manifold: the protocol of C++ mantra::manifolds::Manifold (abstract; use a subclass).

.. math:: X \in \mathcal{M}, \quad V \in T_X\mathcal{M}, \quad Y = R_X(V) \in \mathcal{M}

A point is a tensor whose trailing ``point_dims`` dimensions hold one point (0 for
Euclidean, 1 for vectors, 2 for matrices); every method acts on any leading batch
dimensions and is differentiable (autograd runs through the C++ ATen operations).
Properties: ``name``, ``spec`` (the manifold and its options as a string,
``mantra._C.manifolds.from_spec`` reads it), ``point_dims``, ``retractions`` (names, the
first is the default). Manifolds are immutable: copies share them, pickling rebuilds them.

Args:
    none: the base class is not constructed directly. Its methods take X (Tensor, a point),
        U, V (Tensor, tangent vectors at X), G (Tensor, a Euclidean gradient at X) and
        method (str, a retraction name or "default").

Example::

    >>> St = mantra.manifolds.Stiefel()
    >>> isinstance(St, mantra.manifolds.Manifold)
    True
    >>> X = St.random(100, 10, dtype=torch.float64)
    >>> V = St.proj_tangent(X, torch.randn_like(X))
    >>> St.check_point(St.retract(X, 0.1 * V, method="cayley"))
    ''
)doc",
                                                   py::dynamic_attr())
      .def_property_readonly("name", &Manifold::name)
      .def_property_readonly("spec", &Manifold::spec, "The manifold and its options as a string (from_spec reads it)")
      .def_property_readonly("point_dims", &Manifold::point_dims)
      .def_property_readonly("retractions",
                             [](const Manifold& self) {
                               std::vector<std::string> names;
                               for (Retraction r : self.retractions()) names.push_back(to_string(r));
                               return names;
                             })
      .def("proj_tangent", &Manifold::proj_tangent, R"doc(Projection of G onto the tangent space at X.

.. math:: P_X(G) \in T_X\mathcal{M}

Args:
    X (Tensor): a point.
    G (Tensor): a tensor of X's shape (e.g. a Euclidean gradient).

Example::

    >>> St = mantra.manifolds.Stiefel(); X = St.random(5, 3)
    >>> V = St.proj_tangent(X, torch.randn(5, 3))
    >>> torch.allclose(X.T @ V + V.T @ X, torch.zeros(3, 3), atol=1e-5)
    True
)doc", py::arg("X"), py::arg("G"))
      .def("egrad_to_rgrad", &Manifold::egrad_to_rgrad, R"doc(The Riemannian gradient of the Euclidean gradient G at X.

.. math:: \mathrm{grad} f(X) = \mathrm{rgrad}_X(\nabla f(X))

proj_tangent for embedded metrics; differs for SPD (X sym(G) X), Lorentz and PoincareBall (G / λ_x²).

Args:
    X (Tensor): a point.
    G (Tensor): the Euclidean gradient at X.

Example::

    >>> S = mantra.manifolds.SPD(); X = S.random(3, 3, dtype=torch.float64)
    >>> R = S.egrad_to_rgrad(X, torch.eye(3, dtype=torch.float64))
    >>> torch.allclose(R, X @ X)
    True
)doc", py::arg("X"), py::arg("G"))
      .def(
          "retract",
          [](const Manifold& self, const at::Tensor& X, const at::Tensor& V, const std::string& method) {
            return self.retract(X, V, parse_retraction(method));
          },
          R"doc(A retraction: the point reached from X along the tangent vector V.

.. math:: Y = R_X(V), \quad R_X(0) = X, \quad \tfrac{d}{dt} R_X(tV)|_{t=0} = V

Args:
    X (Tensor): a point.
    V (Tensor): a tangent vector at X.
    method (str): ``"default"`` (the first of ``retractions``) or one of ``retractions``
        (exp, cayley, qr, polar, newton_schulz, projection, as the manifold has them). Default: ``"default"``.

Example::

    >>> Sp = mantra.manifolds.Sphere(); x = Sp.random(4, 3)
    >>> y = Sp.retract(x, Sp.proj_tangent(x, torch.randn(4, 3)), method="projection")
    >>> Sp.check_point(y)
    ''
)doc",
          py::arg("X"), py::arg("V"), py::arg("method") = "default")
      .def("transport", &Manifold::transport, R"doc(Vector transport of V (tangent at X) to the tangent space at Y.

.. math:: \mathcal{T}_{X \to Y}(V) \in T_Y\mathcal{M}

The projection onto T_Y by default; parallel transport where the manifold has it (SPD, Lorentz, PoincareBall).

Args:
    X (Tensor): the starting point.
    Y (Tensor): the end point.
    V (Tensor): a tangent vector at X.

Example::

    >>> St = mantra.manifolds.Stiefel(); X, Y = St.random(5, 3), St.random(5, 3)
    >>> W = St.transport(X, Y, St.proj_tangent(X, torch.randn(5, 3)))
    >>> torch.allclose(St.proj_tangent(Y, W), W, atol=1e-5)
    True
)doc", py::arg("X"), py::arg("Y"), py::arg("V"))
      .def(
          "retract_transport",
          [](const Manifold& self, const at::Tensor& X, const at::Tensor& V, const at::Tensor& U,
             const std::string& method) { return self.retract_transport(X, V, U, parse_retraction(method)); },
          R"doc(Y = R_X(V) and U transported to Y, fused where that is cheaper (the optimizers' step).

.. math:: (Y, W) = (R_X(V), \mathcal{T}_{X \to Y}(U))

Along the exp retraction by parallel transport where the manifold has it in closed form;
otherwise transport().

Args:
    X (Tensor): a point.
    V (Tensor): the step, tangent at X.
    U (Tensor): the vector to transport, tangent at X.
    method (str): the retraction, as in ``retract``. Default: ``"default"``.

Example::

    >>> Sp = mantra.manifolds.Sphere(); x = Sp.random(3)
    >>> v = Sp.proj_tangent(x, torch.randn(3))
    >>> y, w = Sp.retract_transport(x, 0.5 * v, v)
    >>> abs(float(y @ w)) < 1e-5
    True
)doc",
          py::arg("X"), py::arg("V"), py::arg("U"), py::arg("method") = "default")
      .def("inner", &Manifold::inner, R"doc(The metric at X: one scalar per point (shape: the batch dimensions).

.. math:: \langle U, V \rangle_X \quad (\mathrm{tr}(U^\top V) \text{ for embedded metrics})

Args:
    X (Tensor): a point.
    U (Tensor): a tangent vector at X.
    V (Tensor): a tangent vector at X.

Example::

    >>> St = mantra.manifolds.Stiefel(); X = St.random(2, 5, 3, dtype=torch.float64)
    >>> torch.allclose(St.inner(X, X, X), torch.full((2,), 3.0, dtype=torch.float64))
    True
)doc", py::arg("X"), py::arg("U"), py::arg("V"))
      .def("norm", &Manifold::norm, R"doc(The norm of U in the metric at X (one scalar per point).

.. math:: \|U\|_X = \sqrt{\max(\langle U, U \rangle_X, 0)}

Args:
    X (Tensor): a point.
    U (Tensor): a tangent vector at X.

Example::

    >>> P = mantra.manifolds.PoincareBall(); x = P.origin(3)
    >>> P.norm(x, torch.tensor([1.0, 0.0, 0.0]))
    tensor(2.)
)doc", py::arg("X"), py::arg("U"))
      .def("project", &Manifold::project, R"doc(The closest point of the manifold (re-projection against drift).

.. math:: \pi(X) \approx \arg\min_{Y \in \mathcal{M}} \|Y - X\|

e.g. the polar factor on Stiefel, x/‖x‖ on the sphere, the truncated SVD on FixedRank.

Args:
    X (Tensor): a tensor of a point's shape.

Example::

    >>> Sp = mantra.manifolds.Sphere()
    >>> Sp.project(torch.tensor([3.0, 4.0]))
    tensor([0.6000, 0.8000])
)doc", py::arg("X"))
      // dtype/device come from `like` (an empty tensor made by the Python wrapper).
      .def(
          "_random",
          [](const Manifold& self, std::vector<int64_t> shape, const at::Tensor& like) {
            return self.random(shape, like.options());
          },
          py::arg("shape"), py::arg("like"))
      .def(
          "_origin",
          [](const Manifold& self, std::vector<int64_t> shape, const at::Tensor& like) {
            return self.origin(shape, like.options());
          },
          py::arg("shape"), py::arg("like"))
      .def("check_point", &Manifold::check_point, R"doc(Why X is not a point of the manifold (within atol), or "" when it is.

.. math:: \mathrm{check}(X) = \text{""} \iff X \in \mathcal{M} \text{ (within atol)}

Args:
    X (Tensor): the tensor to check (its shape, finiteness and the manifold's equations).
    atol (float): the tolerance. Default: ``1e-5``.

Example::

    >>> mantra.manifolds.Sphere().check_point(torch.tensor([1.0, 1.0]))  # doctest: +ELLIPSIS
    '...'
)doc", py::arg("X"), py::arg("atol") = 1e-5)
      .def("__repr__", [](const Manifold& self) { return "mantra.manifolds." + self.name() + "()"; });

  Class<Euclidean>(mm, "Euclidean", R"doc(Euclidean space: every tensor is a point, each entry its own point (point_dims = 0).

.. math:: \mathcal{M} = \mathbb{R}^{\dots}, \quad P_X(G) = G, \quad R_X(V) = X + V, \quad \langle U, V \rangle = U \odot V

The metric is entrywise, so Riemannian Adam's "one second moment per point" is Adam's.
The optimizers' default manifold. random: Gaussian entries; origin: zeros.

Args:
    none: ``Euclidean()`` takes no arguments.

Example::

    >>> E = mantra.manifolds.Euclidean()
    >>> E.retract(torch.ones(2), torch.ones(2))
    tensor([2., 2.])
)doc").def(py::init<>());
  Class<Stiefel>(mm, "Stiefel", R"doc(Orthonormal frames St(n, k) with the Euclidean metric; O(n) when square, SO(n) with special=True.

.. math:: \mathrm{St}(n, k) = \{X \in \mathbb{R}^{n \times k} : X^\top X = I_k\}

A wide matrix (n < k) is a point when its rows are orthonormal (every method works on the
transpose). Retractions: exp (geodesic), cayley, qr, polar, newton_schulz (the polar factor by matmul-only iterations); for tall frames they cost
O(nk²) + O(k³). random: Haar; origin: the first k columns of the identity. ``name`` is
"SO" when special.

Args:
    special (bool): SO(n): square matrices with det X = +1. Default: ``False``.
    retraction (str): the default retraction: ``"exp"``, ``"cayley"``, ``"qr"``, ``"polar"`` or ``"newton_schulz"``.
        Default: ``"exp"``.

Example::

    >>> St = mantra.manifolds.Stiefel(retraction="cayley")
    >>> X = St.random(6, 4, dtype=torch.float64)
    >>> torch.allclose(X.T @ X, torch.eye(4, dtype=torch.float64))
    True
)doc")
      .def(py::init([](bool special, const std::string& retraction) {
             return std::make_shared<Stiefel>(
                 StiefelOptions().set_special(special).set_retraction(retraction_from_string(retraction)));
           }),
           py::arg("special") = false, py::arg("retraction") = "exp");
  Class<Grassmannian>(mm, "Grassmannian", R"doc(k-dimensional subspaces of R^n, each represented by an orthonormal frame (St(n, k)/O(k)).

.. math:: \mathrm{Gr}(n, k) = \{\operatorname{span} X : X \in \mathrm{St}(n, k)\}, \quad P_X(G) = G - X X^\top G

Tangent vectors are horizontal (XᵀV = 0), with the Euclidean metric of the frames. A wide
matrix represents the span of its orthonormal rows. Retractions: exp (the geodesic
X cos(√(VᵀV)) + V sinc(√(VᵀV)), with exact parallel transport), qr, polar; only the
horizontal part of V is used.

Args:
    retraction (str): the default retraction: ``"exp"``, ``"qr"`` or ``"polar"``. Default: ``"exp"``.

Example::

    >>> Gr = mantra.manifolds.Grassmannian()
    >>> X = Gr.random(5, 2, dtype=torch.float64)
    >>> V = Gr.proj_tangent(X, torch.randn(5, 2, dtype=torch.float64))
    >>> torch.allclose(X.T @ V, torch.zeros(2, 2, dtype=torch.float64))
    True
)doc")
      .def(py::init([](const std::string& retraction) {
             return std::make_shared<Grassmannian>(GrassmannianOptions().set_retraction(retraction_from_string(retraction)));
           }),
           py::arg("retraction") = "exp");
  Class<Sphere>(mm, "Sphere", R"doc(The unit sphere; a point is the last dimension (point_dims = 1).

.. math:: S^{n-1} = \{x \in \mathbb{R}^n : \|x\| = 1\}, \quad P_x(g) = g - \langle x, g \rangle x

Retractions: exp (great circles, with exact parallel transport) and projection
(x + v)/‖x + v‖. random: uniform.

Args:
    retraction (str): the default retraction: ``"exp"`` or ``"projection"``. Default: ``"exp"``.

Example::

    >>> Sp = mantra.manifolds.Sphere()
    >>> x = Sp.random(10, 3)
    >>> torch.allclose(x.norm(dim=-1), torch.ones(10))
    True
)doc")
      .def(py::init([](const std::string& retraction) { return std::make_shared<Sphere>(retraction_from_string(retraction)); }),
           py::arg("retraction") = "exp");
  Class<Oblique>(mm, "Oblique", R"doc(Matrices with unit-norm columns: the product of spheres over the columns (point_dims = 2).

.. math:: \mathrm{Ob}(n, k) = \{X \in \mathbb{R}^{n \times k} : \|X_{:, j}\| = 1 \ \forall j\}

The sphere's maps applied to each column. Retractions: exp and projection.

Args:
    retraction (str): the default retraction: ``"exp"`` or ``"projection"``. Default: ``"exp"``.

Example::

    >>> Ob = mantra.manifolds.Oblique()
    >>> X = Ob.random(4, 3)
    >>> torch.allclose(X.norm(dim=-2), torch.ones(3))
    True
)doc")
      .def(py::init([](const std::string& retraction) { return std::make_shared<Oblique>(retraction_from_string(retraction)); }),
           py::arg("retraction") = "exp");
  Class<FixedRank>(mm, "FixedRank", R"doc(Matrices of rank exactly r, stored dense, with the Euclidean metric.

.. math:: \mathcal{M}_r = \{X \in \mathbb{R}^{n \times k} : \operatorname{rank} X = r\}, \quad P_X(G) = P_U G + G P_V - P_U G P_V

at X = U S Vᵀ (thin SVD, r columns). The one retraction is projection: the truncated SVD
of X + V (the closest rank-r matrix). random: U diag(s) Vᵀ with Haar U, V and s uniform in
[1, 2); origin: eye(n, k) with ones on the first r diagonal entries. check_point: σ_r >
atol·σ_1 and σ_{r+1} <= atol·σ_1.

Args:
    rank (int): r >= 1; points need min(n, k) >= r.

Example::

    >>> M = mantra.manifolds.FixedRank(2)
    >>> X = M.random(5, 4, dtype=torch.float64)
    >>> int(torch.linalg.matrix_rank(X))
    2
)doc").def(py::init<int64_t>(), py::arg("rank"));
  Class<FixedRankPSD>(mm, "FixedRankPSD", R"doc(Symmetric positive semidefinite n×n matrices of rank exactly r (fixed rank, not positive definite).

.. math:: \{X = U \Lambda U^\top : U \in \mathrm{St}(n, r), \ \Lambda \text{ diagonal} > 0\}, \quad P_X(G) = P_U S + S P_U - P_U S P_U, \ S = \mathrm{sym}(G)

The symmetric part of FixedRank(r). Retraction: the rank-r truncation of X + V,
symmetrized; project keeps the r largest eigenvalues, floored at 0. random: U diag(s) Uᵀ
with Haar U and s uniform in [1, 2). For positive definite matrices see SPD.

Args:
    rank (int): r >= 1, r <= n.

Example::

    >>> M = mantra.manifolds.PSD(2)
    >>> X = M.random(4, 4, dtype=torch.float64)
    >>> torch.linalg.eigvalsh(X)[:2].abs().max() < 1e-10
    tensor(True)
)doc").def(py::init<int64_t>(), py::arg("rank"));
  Class<GLPlus>(mm, "GLPlus", R"doc(Invertible n×n matrices with positive determinant, with the Euclidean metric.

.. math:: \mathrm{GL}^+(n) = \{X \in \mathbb{R}^{n \times n} : \det X > 0\}

An open subset of R^{n×n}: proj_tangent and transport are the identity. Retractions:
projection (default) X + V, falling back to X expm(X⁻¹V) where det(X + V) <= 0, so a step
never leaves GL+; exp: X expm(X⁻¹V), the Lie-group exponential. project lifts singular
values below max(min_singular_value, n·eps·σ_1) to that floor and reflects the smallest one
where det < 0.

Args:
    n (int): the matrix size.
    min_singular_value (float): the floor of project's singular values. Default: ``0.0``.

Example::

    >>> G = mantra.manifolds.GLPlus(3)
    >>> X = G.random(3, 3, dtype=torch.float64)
    >>> bool(torch.linalg.det(X) > 0)
    True
)doc")
      .def(py::init<int64_t, double>(), py::arg("n"), py::arg("min_singular_value") = 0.0);
  py::class_<SL, GLPlus, std::shared_ptr<SL>>(mm, "SL", R"doc(The special linear group: n×n matrices of determinant one, with the Euclidean metric.

.. math:: \mathrm{SL}(n) = \{X \in \mathbb{R}^{n \times n} : \det X = 1\}, \quad
          P_X(G) = G - \frac{\mathrm{tr}(X^{-1} G)}{\lVert X^{-\top} \rVert_F^2} X^{-\top}

A hypersurface of GL+(n) whose normal at X is X⁻ᵀ; transport projects onto the new tangent
space. Retractions divide by det^{1/n}, so every step lands on det = 1, tangent or not:
projection (default) (X + V)/det(X + V)^{1/n}, falling back to exp where det(X + V) <= 0;
exp: X expm(A − tr(A)/n·I), A = X⁻¹V (the group exponential for tangent V), rescaled.
project: GL+'s projection, then divided by det^{1/n}.

Args:
    n (int): the matrix size.

Example::

    >>> S = mantra.manifolds.SL(3)
    >>> X = S.random(3, 3, dtype=torch.float64)
    >>> abs(torch.linalg.det(X).item() - 1) < 1e-12
    True
)doc")
      .def(py::init<int64_t>(), py::arg("n"));
  Class<SPD>(mm, "SPD", R"doc(Symmetric positive definite matrices with the affine-invariant metric.

.. math:: \langle U, V \rangle_X = \mathrm{tr}(X^{-1} U X^{-1} V), \quad \exp_X(V) = X^{1/2} \exp(X^{-1/2} V X^{-1/2}) X^{1/2}

Tangent vectors are symmetric matrices; egrad_to_rgrad is X sym(G) X; transport is the
metric's parallel transport E V Eᵀ, E = (Y X⁻¹)^{1/2}. One retraction: exp. Also
``distance(X, Y)`` = ‖logm(X^{-1/2} Y X^{-1/2})‖_F and ``log(X, Y)``, the V with exp_X(V) = Y.
random: Q diag(exp(g/2)) Qᵀ with Haar Q and Gaussian g; origin: I.

Args:
    min_eigenvalue (float): project lifts eigenvalues to max(min_eigenvalue, n·eps·‖X‖_F).
        Default: ``0.0``.

Example::

    >>> S = mantra.manifolds.SPD()
    >>> X, Y = S.random(3, 3, dtype=torch.float64), S.random(3, 3, dtype=torch.float64)
    >>> torch.allclose(S.retract(X, S.log(X, Y)), Y)
    True
)doc")
      .def(py::init([](double min_eigenvalue) { return std::make_shared<SPD>(SPDOptions().set_min_eigenvalue(min_eigenvalue)); }),
           py::arg("min_eigenvalue") = 0.0)
      .def("distance", &SPD::distance, R"doc(The affine-invariant geodesic distance (shape: the batch dimensions).

.. math:: d(X, Y) = \|\log(X^{-1/2} Y X^{-1/2})\|_F

Args:
    X (Tensor): a point.
    Y (Tensor): a point.

Example::

    >>> S = mantra.manifolds.SPD(); I = torch.eye(2, dtype=torch.float64)
    >>> S.distance(I, torch.e * I)
    tensor(1.4142, dtype=torch.float64)
)doc", py::arg("X"), py::arg("Y"))
      .def("log", &SPD::log, R"doc(The Riemannian logarithm: the tangent vector V at X with exp_X(V) = Y.

.. math:: \log_X(Y) = X^{1/2} \log(X^{-1/2} Y X^{-1/2}) X^{1/2}

Args:
    X (Tensor): a point.
    Y (Tensor): a point.

Example::

    >>> S = mantra.manifolds.SPD(); I = torch.eye(2, dtype=torch.float64)
    >>> S.log(I, torch.e * I)
    tensor([[1., 0.],
            [0., 1.]], dtype=torch.float64)
)doc", py::arg("X"), py::arg("Y"));
  py::class_<Hyperbolic, Manifold, std::shared_ptr<Hyperbolic>>(mm, "Hyperbolic", R"doc(Hyperbolic space H^d (curvature −1), points on the last dimension (abstract: Lorentz, PoincareBall).

.. math:: d(x, y) = \operatorname{arccosh}(-\langle x, y \rangle_L) \ \text{(Lorentz model)}

Both models: retractions exp (geodesics, with parallel transport) and projection
(project(x + v)), and the geodesic distance ``distance(X, Y)``.

Args:
    none: the base class is not constructed directly; ``Lorentz()`` and ``PoincareBall()``
        take no arguments.

Example::

    >>> H = mantra.manifolds.Lorentz()
    >>> isinstance(H, mantra.manifolds.Hyperbolic)
    True
)doc")
      .def("distance", &Hyperbolic::distance, R"doc(The geodesic distance (shape: the batch dimensions); its gradient is 0 at X = Y.

.. math:: d(x, y) = 2 \operatorname{asinh}(\|x - y\|_L / 2) \ \text{(Lorentz)}, \quad 2 \operatorname{asinh}\big(\|x - y\| / \sqrt{(1 - \|x\|^2)(1 - \|y\|^2)}\big) \ \text{(ball)}

Args:
    X (Tensor): a point.
    Y (Tensor): a point.

Example::

    >>> P = mantra.manifolds.PoincareBall()
    >>> P.distance(torch.zeros(2, dtype=torch.float64), torch.tensor([0.5, 0.0], dtype=torch.float64))
    tensor(1.0986, dtype=torch.float64)
)doc", py::arg("X"), py::arg("Y"));
  py::class_<Lorentz, Hyperbolic, std::shared_ptr<Lorentz>>(mm, "Lorentz", R"doc(The hyperboloid model of hyperbolic space (points: the last dimension, d + 1 coordinates).

.. math:: \{x \in \mathbb{R}^{d+1} : \langle x, x \rangle_L = -1, \ x_0 > 0\}, \quad \langle u, v \rangle_L = -u_0 v_0 + \textstyle\sum_{i \ge 1} u_i v_i

The Minkowski form is the metric on the tangent spaces {v : ⟨x, v⟩_L = 0}; proj_tangent is
g + ⟨x, g⟩_L x, egrad_to_rgrad projects J g (J = diag(−1, 1, …, 1)); project recomputes
x_0 = sqrt(1 + ‖x_{1:}‖²). random: project of a Gaussian; origin: (1, 0, …, 0).

Args:
    none: ``Lorentz()`` takes no arguments.

Example::

    >>> L = mantra.manifolds.Lorentz()
    >>> x = L.random(5, 3, dtype=torch.float64)
    >>> torch.allclose(-x[:, 0] ** 2 + (x[:, 1:] ** 2).sum(-1), -torch.ones(5, dtype=torch.float64))
    True
)doc")
      .def(py::init<>());
  py::class_<PoincareBall, Hyperbolic, std::shared_ptr<PoincareBall>>(mm, "PoincareBall",
                                                                      R"doc(The Poincaré ball model of hyperbolic space (points: the last dimension).

.. math:: \{x \in \mathbb{R}^d : \|x\| < 1\}, \quad \langle u, v \rangle_x = \lambda_x^2 \langle u, v \rangle, \quad \lambda_x = \frac{2}{1 - \|x\|^2}

Every vector is tangent (proj_tangent is the identity); egrad_to_rgrad is G / λ_x²;
transport is (λ_x / λ_y) gyr[y, −x] u. project scales the norm down to at most 1 − eps
(eps = 1e-5 in float32 and below, 1e-10 in float64). random: the image of Lorentz.random
under the isometry; origin: 0.

Args:
    none: ``PoincareBall()`` takes no arguments.

Example::

    >>> P = mantra.manifolds.PoincareBall()
    >>> x = P.random(5, 2)
    >>> bool((x.norm(dim=-1) < 1).all())
    True
)doc")
      .def(py::init<>());

  mm.def(
      "from_spec",
      [](const std::string& spec) { return std::const_pointer_cast<Manifold>(manifold_from_spec(spec, "spec")); },
      R"doc(The manifold a spec string names (one shared instance per distinct string).

.. math:: \mathrm{from\_spec}(M.\mathrm{spec}) = M

Args:
    spec (str): e.g. ``"Stiefel(retraction=exp)"``, as Manifold.spec writes it.

Example::

    >>> mantra._C.manifolds.from_spec("FixedRank(rank=2)").spec
    'FixedRank(rank=2)'
)doc", py::arg("spec"));

  // ------------------------------------------------------------ functional constraint maps
  // The non-forward half of mantra::parametrize::functional (the forward maps are the
  // torch.ops.mantra dispatcher ops of csrc/parametrize/functional_ops.cpp).
  auto mf = m.def_submodule("functional", "mantra::parametrize::functional: the constraint maps and their policy");
  mf.def("defaults", []() {
    using D = pz::Defaults;
    py::dict d;
    d["triv"] = D::triv;
    d["init"] = D::init;
    d["atol"] = D::atol;
    d["reproject_every"] = D::reproject_every;
    d["lam"] = D::lam;
    d["almost_orthogonal_f"] = D::almost_orthogonal_f;
    d["positive_f"] = D::positive_f;
    d["eps"] = D::eps;
    d["positive_definite_triv"] = D::positive_definite_triv;
    d["lower"] = D::lower;
    d["radius"] = D::radius;
    d["hyperbolic_model"] = D::hyperbolic_model;
    d["alpha_stable_alpha"] = D::alpha_stable_alpha;
    return d;
  }, "The one table of constraint defaults (mantra::parametrize::Defaults)");
  auto spec_of = [](const std::string& spec) { return manifold_from_spec(spec, "manifold"); };
  mf.def(
      "point_check",
      [spec_of](const std::string& manifold, const at::Tensor& X, std::vector<int64_t> shape, double atol, double scale) {
        return fn::point_check(*spec_of(manifold), X, shape, atol, scale);
      },
      py::arg("manifold"), py::arg("X"), py::arg("shape"), py::arg("atol"), py::arg("scale") = 1.0);
  mf.def(
      "rebased_base",
      [spec_of](const std::string& manifold, const at::Tensor& point, int64_t rebases, int64_t reproject_every) {
        return fn::rebased_base(*spec_of(manifold), point, rebases, reproject_every);
      },
      py::arg("manifold"), py::arg("point"), py::arg("rebases"), py::arg("reproject_every"));
  mf.def(
      "converted_base",
      [spec_of](const std::string& manifold, const at::Tensor& base, const at::Tensor& before_like) {
        return fn::converted_base(*spec_of(manifold), base, before_like.scalar_type());
      },
      "The base after a dtype conversion from before_like's dtype (re-projected when widened)", py::arg("manifold"),
      py::arg("base"), py::arg("before_like"));
  mf.def(
      "triv_retraction",
      [spec_of](const std::string& triv, const std::string& manifold, const std::string& fn_name) {
        return to_string(fn::triv_retraction(triv, *spec_of(manifold), fn_name.c_str()));
      },
      "The retraction name a geotorch triv means on the manifold (ValueError naming fn otherwise)", py::arg("triv"),
      py::arg("manifold"), py::arg("fn"));
  mf.def("keep_on_attach", &fn::keep_on_attach, py::arg("why"));
  mf.def(
      "sample_point",
      [spec_of](const std::string& manifold, std::vector<int64_t> shape, const std::string& init, const at::Tensor& like) {
        return fn::sample_point(*spec_of(manifold), shape, init, like.options());
      },
      py::arg("manifold"), py::arg("shape"), py::arg("init"), py::arg("like"));
  mf.def(
      "sample_in_chart",
      [spec_of](const std::string& manifold, std::vector<int64_t> shape, const std::string& retraction,
                const std::string& init, const at::Tensor& like) {
        return fn::sample_in_chart(*spec_of(manifold), shape, parse_retraction(retraction), init, like.options());
      },
      "expRNN's static trivialization: (base = I, v = the block-skew log of a rotation init)", py::arg("manifold"),
      py::arg("shape"), py::arg("retraction"), py::arg("init"), py::arg("like"));
  mf.def("complete_frame", &fn::complete_frame, py::arg("T"), py::arg("n"));
  mf.def(
      "inverse_spectrum",
      [](const at::Tensor& sigma, const std::string& f, double lam, double eps) {
        return fn::inverse_spectrum(sigma, pz::spectrum_map_from_string(f), lam, eps);
      },
      py::arg("sigma"), py::arg("f"), py::arg("lam"), py::arg("eps"));
  mf.def(
      "inverse_spectrum_of",
      [](const at::Tensor& sigma, const std::string& f, double lam) {
        return fn::inverse_spectrum_of(sigma, pz::spectrum_map_from_string(f), lam);
      },
      py::arg("sigma"), py::arg("f"), py::arg("lam"));
  mf.def("spectral_factors", &fn::spectral_factors, py::arg("X"), py::arg("rank"), py::arg("symmetric"));
  mf.def(
      "spectral_check",
      [](const at::Tensor& X, std::vector<int64_t> shape, int64_t rank, bool symmetric, const std::string& f, double lam,
         double atol) { return fn::spectral_check(X, shape, rank, symmetric, pz::spectrum_map_from_string(f), lam, atol); },
      py::arg("X"), py::arg("shape"), py::arg("rank"), py::arg("symmetric"), py::arg("f"), py::arg("lam"),
      py::arg("atol"));
  mf.def(
      "spectral_initial_s",
      [](std::vector<int64_t> shape, const std::string& f, double lam, double eps, const at::Tensor& like, py::object f_fn,
         py::object f_inv) {
        pz::SpectrumFunction custom;
        if (!f_fn.is_none()) custom.f = f_fn.cast<pz::TensorFunction>();
        if (!f_inv.is_none()) custom.f_inv = f_inv.cast<pz::TensorFunction>();
        return fn::spectral_initial_s(shape, pz::spectrum_map_from_string(f), lam, eps, custom, like.options());
      },
      py::arg("shape"), py::arg("f"), py::arg("lam"), py::arg("eps"), py::arg("like"), py::arg("f_fn") = py::none(),
      py::arg("f_inv") = py::none());
  mf.def("householder_vectors", &fn::householder_vectors, py::arg("X"), py::arg("special"), py::arg("wide"));
  mf.def("cholesky_inverse", &fn::cholesky_inverse, py::arg("X"));
  mf.def(
      "cholesky_sample", [](std::vector<int64_t> shape, const at::Tensor& like) { return fn::cholesky_sample(shape, like.options()); },
      py::arg("shape"), py::arg("like"));
  mf.def(
      "positive_definite_check",
      [](const at::Tensor& X, std::vector<int64_t> shape, double atol) { return fn::positive_definite_check(X, shape, atol); },
      py::arg("X"), py::arg("shape"), py::arg("atol"));
  mf.def(
      "linear_map_check",
      [](const at::Tensor& X, std::vector<int64_t> shape, bool skew, double atol) {
        return fn::linear_map_check(X, shape, skew, atol);
      },
      py::arg("X"), py::arg("shape"), py::arg("skew"), py::arg("atol"));
  mf.def(
      "linear_map_sample", [](std::vector<int64_t> shape, const at::Tensor& like) { return fn::linear_map_sample(shape, like.options()); },
      py::arg("shape"), py::arg("like"));
  mf.def(
      "hurwitz_check",
      [](const at::Tensor& X, std::vector<int64_t> shape, double alpha) { return fn::hurwitz_check(X, shape, alpha); },
      py::arg("X"), py::arg("shape"), py::arg("alpha"));
  mf.def(
      "hurwitz_factors", [](const at::Tensor& X, double alpha) { return fn::hurwitz_factors(X, alpha, "alpha_stable"); },
      py::arg("X"), py::arg("alpha"));
  mf.def("spectral_abscissa", &fn::spectral_abscissa, py::arg("X"));
  mf.def("orthogonality_penalty", &mantra::nn::orthogonality_penalty, py::arg("W"), py::arg("lam"));

  bind_testing(m);

  // ------------------------------------------------------------ optimizer steps
  namespace mo = mantra::optim;
  auto mopt = m.def_submodule("optim", "Per-parameter steps of mantra::optim (one algorithm for C++ and Python)");
  mopt.def(
      "riemannian_sgd_step",
      [](const at::Tensor& param, const at::Tensor& grad, std::optional<at::Tensor> momentum_buffer, int64_t step,
         double lr, double momentum, double dampening, double weight_decay, bool nesterov,
         std::shared_ptr<Manifold> manifold, const std::string& retraction, int64_t stabilize) {
        auto options = mo::RiemannianSGDOptions(lr)
                           .momentum(momentum)
                           .dampening(dampening)
                           .weight_decay(weight_decay)
                           .nesterov(nesterov)
                           .manifold(manifold_or_euclidean(manifold))
                           .retraction(retraction_from_string(retraction, "retraction"))
                           .stabilize(stabilize);
        return mo::riemannian_sgd_step(param, grad, momentum_buffer ? *momentum_buffer : at::Tensor(), step, options);
      },
      py::arg("param"), py::arg("grad"), py::arg("momentum_buffer"), py::arg("step"), py::kw_only(), py::arg("lr"),
      py::arg("momentum"), py::arg("dampening"), py::arg("weight_decay"), py::arg("nesterov"), py::arg("manifold"),
      py::arg("retraction"), py::arg("stabilize"));
  auto adam_options = [](double lr, std::tuple<double, double> betas, double eps, double weight_decay, bool amsgrad,
                         std::shared_ptr<Manifold> manifold, const std::string& retraction, int64_t stabilize) {
    return mo::RiemannianAdamOptions(lr)
        .betas(betas)
        .eps(eps)
        .weight_decay(weight_decay)
        .amsgrad(amsgrad)
        .manifold(manifold_or_euclidean(manifold))
        .retraction(retraction_from_string(retraction, "retraction"))
        .stabilize(stabilize);
  };
  mopt.def(
      "riemannian_adam_init",
      [adam_options](const at::Tensor& param, std::shared_ptr<Manifold> manifold, bool amsgrad) {
        auto b = mo::riemannian_adam_init(param, adam_options(1e-3, {0.9, 0.999}, 1e-8, 0, amsgrad, manifold, "default", 0));
        return std::make_tuple(b.exp_avg, b.exp_avg_sq, b.max_exp_avg_sq);
      },
      py::arg("param"), py::kw_only(), py::arg("manifold"), py::arg("amsgrad"));
  mopt.def(
      "riemannian_adam_step",
      [adam_options](const at::Tensor& param, const at::Tensor& grad, const at::Tensor& exp_avg,
                     const at::Tensor& exp_avg_sq, std::optional<at::Tensor> max_exp_avg_sq, int64_t step, double lr,
                     std::tuple<double, double> betas, double eps, double weight_decay, bool amsgrad,
                     std::shared_ptr<Manifold> manifold, const std::string& retraction, int64_t stabilize) {
        mo::riemannian_adam_step(param, grad, {exp_avg, exp_avg_sq, max_exp_avg_sq ? *max_exp_avg_sq : at::Tensor()},
                                 step, adam_options(lr, betas, eps, weight_decay, amsgrad, manifold, retraction, stabilize),
                                 mo::AdamArithmetic::TorchPython);
      },
      py::arg("param"), py::arg("grad"), py::arg("exp_avg"), py::arg("exp_avg_sq"), py::arg("max_exp_avg_sq"),
      py::arg("step"), py::kw_only(), py::arg("lr"), py::arg("betas"), py::arg("eps"), py::arg("weight_decay"),
      py::arg("amsgrad"), py::arg("manifold"), py::arg("retraction"), py::arg("stabilize"));
  bind_bayes(m);
  bind_diagnostics(m);
  bind_low_rank(m);
  bind_conv(m);
}

namespace {

// The C++ frontend's side of the cross-language test (tests/python/test_cross_language.py):
// builds the constraint `fn` exactly as a C++ user would, on a module whose parameter
// "weight" is randn(shape) drawn after manual_seed(seed); adds `deltas` (name → tensor) to the
// constraint's named parameters; returns the value, and the value after rebasing every
// Parametrization in it (the weight must not move). kwargs["init"]: sample(init) first.
std::pair<at::Tensor, at::Tensor> cpp_constraint(const std::string& fn_name, std::vector<int64_t> shape,
                                                 const at::Tensor& like, int64_t seed, const py::dict& kwargs,
                                                 const std::map<std::string, at::Tensor>& deltas) {
  auto get = [&](const char* key, auto fallback) {
    using T = decltype(fallback);
    return kwargs.contains(key) ? kwargs[key].cast<T>() : fallback;
  };
  auto callable = [](const std::string& name) -> pz::TensorFunction {
    if (name == "matrix_exp") return [](const at::Tensor& A) { return at::linalg_matrix_exp(A); };
    if (name == "tanh") return [](const at::Tensor& x) { return at::tanh(x); };
    if (name == "atanh") return [](const at::Tensor& x) { return at::atanh(x); };
    if (name == "softplus") return [](const at::Tensor& x) { return at::softplus(x); };
    if (name == "softplus_inverse") return [](const at::Tensor& y) { return y + at::log(-at::expm1(-y)); };
    TORCH_CHECK_VALUE(false, "cpp_constraint: unknown callable '", name, "'");
  };
  auto custom_f = [&]() {
    pz::SpectrumFunction f{callable(get("f_fn", std::string())), nullptr};
    if (kwargs.contains("f_inv")) f.f_inv = callable(get("f_inv", std::string()));
    return f;
  };
  torch::manual_seed(seed);
  torch::nn::Module module("Holder");
  module.register_parameter("weight", at::randn(shape, like.options()));
  const std::string triv = get("triv", std::string(pz::Defaults::triv));
  const int64_t rank = get("rank", int64_t(1));
  pz::Constraint c(nullptr);
  auto erase = [](auto holder) { return pz::Constraint(std::static_pointer_cast<pz::ConstraintImpl>(holder.ptr())); };
  if (fn_name == "orthogonal") {
    c = kwargs.contains("triv_fn") ? pz::orthogonal(module, "weight", callable(get("triv_fn", std::string())))
                                   : pz::orthogonal(module, "weight", triv);
  } else if (fn_name == "grassmannian") {
    c = erase(pz::grassmannian(module, "weight", triv));
  } else if (fn_name == "sphere") {
    c = erase(pz::sphere(module, "weight", get("radius", 1.0), get("embedded", false)));
  } else if (fn_name == "oblique") {
    c = erase(pz::oblique(module, "weight"));
  } else if (fn_name == "positive_definite") {
    c = kwargs.contains("f_fn") ? erase(pz::positive_definite(module, "weight", custom_f(), triv))
                                : pz::positive_definite(module, "weight", get("triv", std::string("expm")));
  } else if (fn_name == "positive_definite_cholesky") {
    c = erase(pz::positive_definite_cholesky(module, "weight"));
  } else if (fn_name == "invertible") {
    c = erase(pz::invertible(module, "weight"));
  } else if (fn_name == "sln") {
    c = erase(pz::sln(module, "weight"));
  } else if (fn_name == "hyperbolic") {
    c = erase(pz::hyperbolic(module, "weight", get("model", std::string("lorentz"))));
  } else if (fn_name == "low_rank") {
    c = erase(pz::low_rank(module, "weight", rank, triv));
  } else if (fn_name == "fixed_rank") {
    c = kwargs.contains("f_fn") ? erase(pz::fixed_rank(module, "weight", rank, custom_f(), triv))
                                : erase(pz::fixed_rank(module, "weight", rank, triv));
  } else if (fn_name == "positive_semidefinite") {
    c = erase(pz::positive_semidefinite(module, "weight", triv));
  } else if (fn_name == "positive_semidefinite_low_rank") {
    c = erase(pz::positive_semidefinite_low_rank(module, "weight", rank, triv));
  } else if (fn_name == "positive_semidefinite_fixed_rank") {
    c = erase(pz::positive_semidefinite_fixed_rank(module, "weight", rank, triv));
  } else if (fn_name == "almost_orthogonal") {
    c = kwargs.contains("f_fn")
            ? erase(pz::almost_orthogonal(module, "weight", get("lam", 0.1), custom_f(), triv))
            : erase(pz::almost_orthogonal(module, "weight", get("lam", 0.1), get("f", std::string("sin")), triv));
  } else if (fn_name == "symmetric") {
    c = erase(pz::symmetric(module, "weight", get("lower", true)));
  } else if (fn_name == "skew") {
    c = erase(pz::skew(module, "weight", get("lower", true)));
  } else if (fn_name == "alpha_stable") {
    c = erase(pz::alpha_stable(module, "weight", get("alpha", 0.0), get("triv", std::string("expm"))));
  } else {
    TORCH_CHECK_VALUE(false, "cpp_constraint: unknown constraint '", fn_name, "'");
  }
  if (kwargs.contains("init")) c->sample(get("init", std::string("uniform")));
  {
    torch::NoGradGuard no_grad;
    auto params = c->named_parameters();
    for (const auto& [name, delta] : deltas) {
      TORCH_CHECK_VALUE(params.contains(name), "cpp_constraint: the constraint has no parameter '", name, "'");
      params[name].add_(delta);
    }
  }
  torch::NoGradGuard no_grad;
  at::Tensor value = c->forward().detach().clone();
  for (auto& [path, p] : pz::parametrizations(*c)) p->rebase();
  return {value, c->forward().detach().clone()};
}

void bind_testing(py::module& m) {
  auto mt = m.def_submodule("testing", "Helpers of the test suite (not a public API)");
  mt.def("cpp_constraint", &cpp_constraint, py::arg("fn"), py::arg("shape"), py::arg("like"), py::arg("seed"),
         py::arg("kwargs"), py::arg("deltas"));
}

}  // namespace

// Manifolds named by strings: spec() writes "Name(key=value,...)", manifold_from_spec reads it.
// The dispatcher ops of the parametrization layer take the manifold as such a string (ops
// cannot take C++ objects), so the Python frontend and torch.compile name it this way.
#include <c10/util/Exception.h>

#include <cstdio>
#include <map>
#include <mutex>
#include <sstream>

#include "mantra/manifolds.h"
#include "mantra/manifolds/low_rank_coupled.h"

namespace mantra::manifolds {

namespace {

std::string number(double x) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.17g", x);
  return buf;
}

// "Name(a=1,b=x)" -> ("Name", {a: 1, b: x}).
std::pair<std::string, std::map<std::string, std::string>> parse(const std::string& spec, const char* arg) {
  std::map<std::string, std::string> options;
  const auto open = spec.find('(');
  if (open == std::string::npos) return {spec, options};
  TORCH_CHECK_VALUE(spec.back() == ')', "argument '", arg, "': a manifold spec must look like Name(key=value,...), got '",
                    spec, "'");
  std::stringstream body(spec.substr(open + 1, spec.size() - open - 2));
  std::string item;
  while (std::getline(body, item, ',')) {
    if (item.empty()) continue;
    const auto eq = item.find('=');
    TORCH_CHECK_VALUE(eq != std::string::npos, "argument '", arg, "': option '", item, "' of manifold spec '", spec,
                      "' must be key=value");
    options[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return {spec.substr(0, open), options};
}

struct Options {
  std::string spec;
  const char* arg;
  std::map<std::string, std::string> values;

  std::string take(const std::string& key, const std::string& fallback) {
    auto it = values.find(key);
    if (it == values.end()) return fallback;
    std::string v = it->second;
    values.erase(it);
    return v;
  }
  double number(const std::string& key, double fallback) {
    const std::string v = take(key, "");
    if (v.empty()) return fallback;
    try {
      size_t used = 0;
      const double x = std::stod(v, &used);
      if (used == v.size()) return x;
    } catch (const std::exception&) {
    }
    TORCH_CHECK_VALUE(false, "argument '", arg, "': option '", key, "' of manifold spec '", spec,
                      "' must be a number, got '", v, "'");
  }
  Retraction retraction(Retraction fallback) {
    const std::string v = take("retraction", "");
    return v.empty() ? fallback : retraction_from_string(v, arg);
  }
  void done() {
    if (values.empty()) return;
    TORCH_CHECK_VALUE(false, "argument '", arg, "': manifold spec '", spec, "' has an unknown option '",
                      values.begin()->first, "'");
  }
};

ManifoldPtr build(const std::string& spec, const char* arg) {
  auto [name, values] = parse(spec, arg);
  Options o{spec, arg, values};
  ManifoldPtr m;
  if (name == "Euclidean") {
    m = std::make_shared<Euclidean>();
  } else if (name == "Stiefel" || name == "SO") {
    m = std::make_shared<Stiefel>(
        StiefelOptions().set_special(name == "SO").set_retraction(o.retraction(Retraction::Exp)));
  } else if (name == "Grassmannian") {
    m = std::make_shared<Grassmannian>(GrassmannianOptions().set_retraction(o.retraction(Retraction::Exp)));
  } else if (name == "Sphere") {
    m = std::make_shared<Sphere>(o.retraction(Retraction::Exp));
  } else if (name == "Oblique") {
    m = std::make_shared<Oblique>(o.retraction(Retraction::Exp));
  } else if (name == "FixedRank") {
    m = std::make_shared<FixedRank>(static_cast<int64_t>(o.number("rank", 1)));
  } else if (name == "PSD" || name == "FixedRankPSD") {
    m = std::make_shared<PSD>(static_cast<int64_t>(o.number("rank", 1)));
  } else if (name == "GLPlus") {
    const auto n = static_cast<int64_t>(o.number("n", 0));
    m = std::make_shared<GLPlus>(n, o.number("min_singular_value", 0.0));
  } else if (name == "SL") {
    m = std::make_shared<SL>(static_cast<int64_t>(o.number("n", 0)));
  } else if (name == "SPD") {
    m = std::make_shared<SPD>(SPDOptions().set_min_eigenvalue(o.number("min_eigenvalue", 0.0)));
  } else if (name == "Lorentz") {
    m = std::make_shared<Lorentz>();
  } else if (name == "PoincareBall") {
    m = std::make_shared<PoincareBall>();
  } else if (name == "LowRankOblique" || name == "LowRankSphere" || name == "LowRankStackedStiefel") {
    const auto m_rows = static_cast<int64_t>(o.number("m", 0)), n_cols = static_cast<int64_t>(o.number("n", 0));
    const auto rank = static_cast<int64_t>(o.number("rank", 0));
    const Retraction r = o.retraction(Retraction::Polar);
    if (name == "LowRankOblique") {
      m = std::make_shared<LowRankOblique>(m_rows, n_cols, rank, r);
    } else if (name == "LowRankSphere") {
      m = std::make_shared<LowRankSphere>(m_rows, n_cols, rank, r);
    } else {
      m = std::make_shared<LowRankStackedStiefel>(m_rows, n_cols, rank, static_cast<int64_t>(o.number("p", 0)), r);
    }
  } else {
    TORCH_CHECK_VALUE(false, "argument '", arg, "': unknown manifold '", name, "' in spec '", spec,
                      "' (known: Euclidean, Stiefel, SO, Grassmannian, Sphere, Oblique, FixedRank, FixedRankPSD, ",
                      "GLPlus, SL, SPD, Lorentz, PoincareBall, LowRankOblique, LowRankSphere, LowRankStackedStiefel)");
  }
  // A manifold without a retraction option still writes its fixed default in spec().
  const std::string r = o.take("retraction", "");
  TORCH_CHECK_VALUE(r.empty() || retraction_from_string(r, arg) == m->retractions().front(), "argument '", arg,
                    "': manifold spec '", spec, "': ", name, " has no retraction option (its default is ",
                    to_string(m->retractions().front()), ")");
  o.done();
  return m;
}

}  // namespace

std::string Manifold::spec() const {
  const auto r = retractions();
  return r.size() > 1 ? name() + "(retraction=" + to_string(r.front()) + ")" : name();
}

std::string FixedRank::spec() const { return name() + "(rank=" + std::to_string(rank_) + ")"; }

std::string GLPlus::spec() const {
  return name() + "(n=" + std::to_string(n_) + ",min_singular_value=" + number(min_singular_value_) + ")";
}

std::string SL::spec() const { return name() + "(n=" + std::to_string(n_) + ")"; }

std::string LowRankCoupled::spec() const {
  return name() + "(m=" + std::to_string(m_) + ",n=" + std::to_string(n_) + ",rank=" + std::to_string(rank_) +
         spec_extra() + ",retraction=" + to_string(retraction_) + ")";
}

std::string SPD::spec() const { return name() + "(min_eigenvalue=" + number(options_.min_eigenvalue) + ")"; }

ManifoldPtr manifold_from_spec(const std::string& spec, const char* arg) {
  // Manifolds are immutable: one instance per spec, built once (the ops look them up per call).
  static std::mutex mutex;
  static std::map<std::string, ManifoldPtr> cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find(spec);
  if (it != cache.end()) return it->second;
  ManifoldPtr m = build(spec, arg);
  cache.emplace(spec, m);
  return m;
}

}  // namespace mantra::manifolds

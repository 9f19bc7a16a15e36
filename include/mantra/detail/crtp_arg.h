// MANTRA_CRTP_ARG: torch's TORCH_ARG for a CRTP options base. The setter returns the derived
// options, so a builder chain may mix the base's fields with the derived ones in any order
// (RiemannianSGDOptions(0.1).manifold(M).momentum(0.9)). Use inside a class template whose
// parameter is named Derived.
#pragma once

#include <utility>

#define MANTRA_CRTP_ARG(T, name)                        \
 public:                                                \
  inline Derived& name(const T& new_##name) {           \
    this->name##_ = new_##name;                         \
    return static_cast<Derived&>(*this);                \
  }                                                     \
  inline Derived& name(T&& new_##name) {                \
    this->name##_ = std::move(new_##name);              \
    return static_cast<Derived&>(*this);                \
  }                                                     \
  inline const T& name() const noexcept {               \
    return this->name##_;                               \
  }                                                     \
  inline T& name() noexcept {                           \
    return this->name##_;                               \
  }                                                     \
                                                        \
 private:                                               \
  T name##_ /* NOLINT */

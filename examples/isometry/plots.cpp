#include "plots.h"

#include "report.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace mantra::examples::isometry {

namespace {

std::string esc(const std::string& s) { return mantra::examples::svg_escape(s); }

std::string num(double v) {
  std::ostringstream s;
  s << std::setprecision(3) << v;
  return s.str();
}

struct Axis {
  double lo, hi;
  bool log;
  double map(double v, double a, double b) const {
    const double t = log ? (std::log10(v) - lo) / (hi - lo) : (v - lo) / (hi - lo);
    return a + t * (b - a);
  }
  std::vector<double> ticks() const {
    std::vector<double> t;
    if (log) {
      // Decades; with fewer than three of them also 2× and 5×.
      const bool fine = hi - lo < 2;
      for (int e = static_cast<int>(std::floor(lo)); e <= static_cast<int>(std::ceil(hi)); ++e)
        for (double m : {1.0, 2.0, 5.0}) {
          if (m != 1.0 && !fine) continue;
          const double v = m * std::pow(10.0, e);
          if (std::log10(v) >= lo - 1e-9 && std::log10(v) <= hi + 1e-9) t.push_back(v);
        }
      if (t.size() < 2) t = {std::pow(10.0, lo), std::pow(10.0, hi)};
      return t;
    }
    const double span = hi - lo, step0 = std::pow(10.0, std::floor(std::log10(span / 5)));
    double step = step0;
    for (double m : {1.0, 2.0, 5.0, 10.0})
      if (span / (step0 * m) <= 6) {
        step = step0 * m;
        break;
      }
    for (double v = std::ceil(lo / step) * step; v <= hi + 1e-12 * span; v += step) t.push_back(v);
    return t;
  }
};

Axis make_axis(const std::vector<Series>& series, bool y, bool log) {
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const auto& s : series)
    for (double v : y ? s.y : s.x)
      if (std::isfinite(v) && (!log || v > 0)) {
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
  if (!std::isfinite(lo)) lo = 0, hi = 1;
  if (log) {
    lo = std::log10(lo), hi = std::log10(hi);
    const double pad = std::max(0.05 * (hi - lo), 0.05);
    return {lo - pad, hi + pad, true};
  }
  const double pad = hi > lo ? 0.05 * (hi - lo) : 0.5;
  return {lo - pad, hi + pad, false};
}

}  // namespace

void write_svg(const std::string& path, const std::vector<Series>& series, const PlotOptions& o) {
  const double W = 760, H = 480, L = 80, R = 190, T = 40, B = 60;
  Axis ax = make_axis(series, false, o.log_x), ay = make_axis(series, true, o.log_y);
  auto X = [&](double v) { return ax.map(v, L, W - R); };
  auto Y = [&](double v) { return ay.map(v, H - B, T); };
  std::ostringstream s;
  s << "<svg xmlns='http://www.w3.org/2000/svg' width='" << W << "' height='" << H
    << "' font-family='sans-serif' font-size='12'>\n<rect width='100%' height='100%' fill='white'/>\n";
  s << "<text x='" << (L + W - R) / 2 << "' y='22' text-anchor='middle' font-size='15'>" << esc(o.title) << "</text>\n";
  s << "<rect x='" << L << "' y='" << T << "' width='" << W - R - L << "' height='" << H - B - T
    << "' fill='none' stroke='#444'/>\n";
  for (double t : ax.ticks()) {
    const double px = X(t);
    s << "<line x1='" << px << "' y1='" << H - B << "' x2='" << px << "' y2='" << T << "' stroke='#ddd'/>"
      << "<text x='" << px << "' y='" << H - B + 16 << "' text-anchor='middle'>" << num(t) << "</text>\n";
  }
  for (double t : ay.ticks()) {
    const double py = Y(t);
    s << "<line x1='" << L << "' y1='" << py << "' x2='" << W - R << "' y2='" << py << "' stroke='#ddd'/>"
      << "<text x='" << L - 6 << "' y='" << py + 4 << "' text-anchor='end'>" << num(t) << "</text>\n";
  }
  s << "<text x='" << (L + W - R) / 2 << "' y='" << H - 18 << "' text-anchor='middle'>" << esc(o.x_label) << "</text>\n";
  s << "<text transform='translate(20," << (T + H - B) / 2 << ") rotate(-90)' text-anchor='middle'>" << esc(o.y_label)
    << "</text>\n";
  if (o.fit && o.log_x && o.log_y) {
    const double x0 = std::pow(10.0, ax.lo), x1 = std::pow(10.0, ax.hi);
    auto fy = [&](double x) { return std::exp(o.fit_intercept) * std::pow(x, o.fit_slope); };
    s << "<clipPath id='c'><rect x='" << L << "' y='" << T << "' width='" << W - R - L << "' height='" << H - B - T
      << "'/></clipPath><line clip-path='url(#c)' x1='" << X(x0) << "' y1='" << Y(fy(x0)) << "' x2='" << X(x1)
      << "' y2='" << Y(fy(x1)) << "' stroke='#000' stroke-dasharray='6,4'/>\n";
  }
  for (size_t k = 0; k < series.size(); ++k) {
    const auto& se = series[k];
    const char* c = mantra::examples::plot_color(k);
    std::ostringstream pts;
    for (size_t i = 0; i < se.x.size() && i < se.y.size(); ++i) {
      if (!std::isfinite(se.x[i]) || !std::isfinite(se.y[i]) || (o.log_x && se.x[i] <= 0) || (o.log_y && se.y[i] <= 0))
        continue;
      if (se.points)
        s << "<circle cx='" << X(se.x[i]) << "' cy='" << Y(se.y[i]) << "' r='3' fill='" << c << "' fill-opacity='0.7'/>\n";
      else
        pts << X(se.x[i]) << "," << Y(se.y[i]) << " ";
    }
    if (!se.points)
      s << "<polyline fill='none' stroke='" << c << "' stroke-width='1.8'" << (se.dashed ? " stroke-dasharray='5,3'" : "")
        << " points='" << pts.str() << "'/>\n";
    const double ly = T + 14 + 18 * static_cast<double>(k);
    s << "<rect x='" << W - R + 12 << "' y='" << ly - 9 << "' width='14' height='10' fill='" << c << "'/>"
      << "<text x='" << W - R + 32 << "' y='" << ly << "'>" << esc(se.label) << "</text>\n";
  }
  for (size_t i = 0; i < o.notes.size(); ++i)
    s << "<text x='" << L + 8 << "' y='" << T + 16 + 16 * static_cast<double>(i) << "'>" << esc(o.notes[i]) << "</text>\n";
  s << "</svg>\n";
  std::ofstream f(path);
  if (!f) throw std::runtime_error("cannot write " + path);
  f << s.str();
}

LineFit fit_line(const std::vector<double>& x, const std::vector<double>& y) {
  const size_t n = std::min(x.size(), y.size());
  LineFit r;
  if (n < 2) return r;
  double mx = 0, my = 0;
  for (size_t i = 0; i < n; ++i) mx += x[i], my += y[i];
  mx /= n, my /= n;
  double sxx = 0, syy = 0, sxy = 0;
  for (size_t i = 0; i < n; ++i) {
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
    sxy += (x[i] - mx) * (y[i] - my);
  }
  r.rho = sxx > 0 && syy > 0 ? sxy / std::sqrt(sxx * syy) : 0;
  r.slope = sxx > 0 ? sxy / sxx : 0;
  r.intercept = my - r.slope * mx;
  return r;
}

}  // namespace mantra::examples::isometry

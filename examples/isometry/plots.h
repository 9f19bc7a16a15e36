// SVG plots of the isometry program: series of points or lines on linear or log axes (the
// RNN trainer's write_svg_plot draws loss curves only).
#pragma once

#include <string>
#include <vector>

namespace mantra::examples::isometry {

struct Series {
  std::string label;
  std::vector<double> x, y;
  bool points = false;  // markers instead of a line
  bool dashed = false;
};

struct PlotOptions {
  std::string title, x_label, y_label;
  bool log_x = false, log_y = false;
  std::vector<std::string> notes;  // lines of text in the top-left corner (e.g. ρ and the slope)
  // A straight line y = exp(intercept)·x^slope drawn on log–log axes (fit), when set.
  bool fit = false;
  double fit_slope = 0, fit_intercept = 0;
};

void write_svg(const std::string& path, const std::vector<Series>& series, const PlotOptions& options);

// Pearson correlation of (x, y) and the least-squares line y = a + b·x: {ρ, b, a}.
struct LineFit {
  double rho = 0, slope = 0, intercept = 0;
};
LineFit fit_line(const std::vector<double>& x, const std::vector<double>& y);

}  // namespace mantra::examples::isometry

// The trainer's plot (examples/rnn/report.h): round tick values, overlapping curves drawn
// distinguishably, reference lines labelled on the plot.
#include <gtest/gtest.h>

#include "report.h"

#include <unistd.h>

#include <cmath>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

namespace ex = mantra::examples;

namespace {
std::string plot(const std::vector<ex::Curve>& curves, const std::vector<std::pair<std::string, double>>& refs) {
  const std::string path = "/tmp/mantra_test_report_" + std::to_string(getpid()) + ".svg";
  ex::write_svg_plot(path, "t", "MSE", curves, refs);
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  std::remove(path.c_str());
  return s.str();
}

// The y tick labels (right-aligned texts left of the axis).
std::vector<double> y_ticks(const std::string& svg) {
  std::vector<double> out;
  const std::regex re("text-anchor='end'>([-0-9.e+]+)</text>");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), re); it != std::sregex_iterator(); ++it)
    out.push_back(std::stod((*it)[1].str()));
  return out;
}
}  // namespace

// The case: losses 157..262 gave ticks 262.4, 209.9, 157.4. Now every tick is a
// multiple of a step 1, 2, 2.5 or 5 x 10^k, and the ticks cover the data.
TEST(Plot, RoundTicks) {
  ex::Curve a{"a", {{1, 262.4, 250.0}, {2, 200.0, 190.0}, {3, 170.0, 157.4}}};
  const std::string svg = plot({a}, {});
  const auto ticks = y_ticks(svg);
  ASSERT_GE(ticks.size(), 3u);
  const double step = ticks[1] - ticks[0];
  const double p = std::pow(10.0, std::floor(std::log10(std::abs(step))));
  const double m = std::abs(step) / p;
  EXPECT_TRUE(std::abs(m - 1) < 1e-9 || std::abs(m - 2) < 1e-9 || std::abs(m - 2.5) < 1e-9 || std::abs(m - 5) < 1e-9)
      << step;
  for (double t : ticks) EXPECT_NEAR(std::remainder(t, std::abs(step)), 0.0, 1e-9 * std::abs(t)) << t;
  EXPECT_LE(*std::min_element(ticks.begin(), ticks.end()), 157.4);
  EXPECT_GE(*std::max_element(ticks.begin(), ticks.end()), 262.4);
}

// Two models with identical curves (DTRIV100 exactly under EXPRNN): different dash patterns and
// different marker shapes, so both are visible; the reference line carries its label.
TEST(Plot, OverlappingCurvesAndLabelledReferences) {
  ex::Curve a{"exprnn", {{1, 80, 70}, {2, 75, 68}}}, b{"dtriv100", {{1, 80, 70}, {2, 75, 68}}};
  const std::string svg = plot({a, b}, {{"repeat the previous frame (valid)", 106.5}});
  std::set<std::string> dashes;
  const std::regex poly("<polyline fill='none' stroke='([^']+)' stroke-width='2' (stroke-dasharray='([^']*)' )?");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), poly); it != std::sregex_iterator(); ++it)
    dashes.insert((*it)[3].str());
  EXPECT_EQ(dashes.size(), 2u) << "validation lines of the two models share a dash pattern";
  // Markers: circles for the first model, squares for the second (2 epochs + 1 in the legend).
  const auto count = [&](const std::string& needle) {
    size_t n = 0;
    for (size_t at = svg.find(needle); at != std::string::npos; at = svg.find(needle, at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count("<circle"), 3u);
  EXPECT_EQ(count("<rect x="), 3u + 1u);  // + the plot frame
  EXPECT_NE(svg.find(">repeat the previous frame (valid) = 106.5</text>"), std::string::npos);
}

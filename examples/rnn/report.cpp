#include "report.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <stdexcept>

namespace mantra::examples {

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  char buf[32];
  if (s < 60) {
    std::snprintf(buf, sizeof buf, "%.1fs", s);
  } else if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%d:%02d", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%d:%02d:%02d", static_cast<int>(s) / 3600, (static_cast<int>(s) / 60) % 60,
                  static_cast<int>(s) % 60);
  }
  return buf;
}

ProgressBar::ProgressBar(std::string label, int64_t epoch, int64_t epochs, int64_t total, std::string item_name)
    : label_(std::move(label)),
      item_name_(std::move(item_name)),
      epoch_(epoch),
      epochs_(epochs),
      total_(std::max<int64_t>(total, 1)),
      tty_(isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

std::string ProgressBar::render(int64_t done, double loss, int64_t items_done) const {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double frac = static_cast<double>(done) / total_;
  constexpr int width = 24;
  const int filled = static_cast<int>(frac * width);
  std::ostringstream s;
  s << "[" << label_ << "] epoch " << epoch_ << "/" << epochs_ << " |" << std::string(filled, '#')
    << std::string(width - filled, '.') << "| " << done << "/" << total_ << " loss " << std::setprecision(4) << loss;
  if (elapsed > 0) s << "  " << std::setprecision(3) << items_done / elapsed << " " << item_name_ << "/s";
  if (done > 0) s << "  ETA " << format_duration(elapsed * (total_ - done) / done);
  return s.str();
}

void ProgressBar::update(int64_t done, double loss, int64_t items_done) {
  const auto now = std::chrono::steady_clock::now();
  if (tty_) {
    if (done < total_ && std::chrono::duration<double>(now - last_draw_).count() < 0.2) return;
    last_draw_ = now;
    std::cerr << "\r\033[K" << render(done, loss, items_done) << std::flush;
  } else {
    const int64_t decile = done * 10 / total_;
    if (decile == last_decile_) return;
    last_decile_ = decile;
    std::cerr << render(done, loss, items_done) << "\n" << std::flush;
  }
}

void ProgressBar::finish(const std::string& summary) {
  if (tty_) std::cerr << "\r\033[K";
  std::cerr << "[" << label_ << "] epoch " << epoch_ << "/" << epochs_ << " " << summary << "\n" << std::flush;
}

// ---------------------------------------------------------------- SVG

std::string svg_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '&') o += "&amp;";
    else o += c;
  }
  return o;
}

const char* plot_color(int64_t i) {
  static const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};
  return colors[((i % 8) + 8) % 8];
}

namespace {
std::string num(double v) {
  std::ostringstream s;
  s << std::setprecision(4) << v;
  return s.str();
}
// A round tick step for a span: 1, 2, 2.5 or 5 times a power of ten, about `ticks` steps.
double nice_step(double span, int ticks) {
  const double raw = span / ticks, p = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (m * p >= raw) return m * p;
  return 10 * p;
}

std::vector<double> nice_ticks(double lo, double hi, int ticks) {
  const double step = nice_step(hi - lo, ticks);
  std::vector<double> out;
  for (double v = std::ceil(lo / step - 1e-9) * step; v <= hi + 1e-9 * step; v += step)
    out.push_back(std::abs(v) < 1e-12 * step ? 0.0 : v);
  return out;
}

// Per model: a dash pattern and a hollow marker shape, so that curves drawn on top of each other
// stay distinguishable (the colour alone is not: an exactly overlapping line hides another).
const char* kDashes[] = {"", "8,3", "2,3", "10,3,2,3", "5,5", "1,2", "12,4", "4,2,1,2"};

std::string marker(int shape, double x, double y, const char* color) {
  std::ostringstream s;
  const double r = 4.0;
  s << "<";
  switch (shape % 6) {
    case 0: s << "circle cx='" << x << "' cy='" << y << "' r='" << r << "'"; break;
    case 1: s << "rect x='" << x - r << "' y='" << y - r << "' width='" << 2 * r << "' height='" << 2 * r << "'"; break;
    case 2: s << "polygon points='" << x << "," << y - r - 1 << " " << x - r - 1 << "," << y + r << " " << x + r + 1 << "," << y + r << "'"; break;
    case 3: s << "polygon points='" << x << "," << y - r - 1 << " " << x + r + 1 << "," << y << " " << x << "," << y + r + 1 << " " << x - r - 1 << "," << y << "'"; break;
    case 4: s << "path d='M" << x - r << "," << y - r << "L" << x + r << "," << y + r << "M" << x - r << "," << y + r << "L" << x + r << "," << y - r << "'"; break;
    default: s << "path d='M" << x - r - 1 << "," << y << "L" << x + r + 1 << "," << y << "M" << x << "," << y - r - 1 << "L" << x << "," << y + r + 1 << "'"; break;
  }
  s << " fill='none' stroke='" << color << "' stroke-width='1.5'/>";
  return s.str();
}
}  // namespace

void write_svg_plot(const std::string& path, const std::string& title, const std::string& y_label,
                    const std::vector<Curve>& curves, const std::vector<std::pair<std::string, double>>& references) {
  double x_max = 1, y_min = INFINITY, y_max = -INFINITY;
  auto see = [&](double y) {
    if (std::isfinite(y) && y > 0) {
      y_min = std::min(y_min, y);
      y_max = std::max(y_max, y);
    }
  };
  for (const auto& c : curves)
    for (const auto& p : c.points) {
      x_max = std::max(x_max, p.epoch);
      see(p.train_loss);
      see(p.valid_loss);
    }
  for (const auto& r : references) see(r.second);
  if (!std::isfinite(y_min)) y_min = 0.1, y_max = 1;
  const bool log_y = y_max / y_min > 20;
  // The axis ends on round values: whole decades (log), or multiples of the tick step.
  std::vector<double> ticks;
  double lo, hi;
  if (log_y) {
    lo = std::floor(std::log10(y_min));
    hi = std::ceil(std::log10(y_max));
    for (double d = lo; d <= hi + 1e-9; ++d)
      for (double m : {1.0, 2.0, 5.0})
        if (hi - lo <= 2 || m == 1.0) {
          const double v = m * std::pow(10.0, d);
          if (std::log10(v) <= hi + 1e-9) ticks.push_back(v);
        }
  } else {
    double a = y_min > 0.5 * y_max ? y_min : 0.0, b = y_max;
    if (b <= a) b = a + 1;
    const double step = nice_step(b - a, 5);
    lo = std::floor(a / step + 1e-9) * step;
    hi = std::ceil(b / step - 1e-9) * step;
    if (hi <= lo) hi = lo + step;
    ticks = nice_ticks(lo, hi, 5);
  }
  const double W = 840, H = 460, L = 70, R = 260, T = 40, B = 50;
  auto X = [&](double e) { return L + (W - L - R) * e / x_max; };
  auto Y = [&](double v) {
    const double t = log_y ? std::log10(std::max(v, 1e-300)) : v;
    return T + (H - T - B) * (1 - (t - lo) / (hi - lo));
  };
  std::ostringstream s;
  s << "<svg xmlns='http://www.w3.org/2000/svg' width='" << W << "' height='" << H
    << "' font-family='sans-serif' font-size='12'>\n<rect width='100%' height='100%' fill='white'/>\n";
  s << "<text x='" << W / 2 - 60 << "' y='22' font-size='15'>" << svg_escape(title) << "</text>\n";
  s << "<rect x='" << L << "' y='" << T << "' width='" << W - L - R << "' height='" << H - T - B
    << "' fill='none' stroke='black'/>\n";
  for (double v : ticks) {
    const double y = Y(v);
    s << "<line x1='" << L << "' x2='" << W - R << "' y1='" << y << "' y2='" << y << "' stroke='#ddd'/>\n";
    s << "<text x='" << L - 6 << "' y='" << y + 4 << "' text-anchor='end'>" << num(v) << "</text>\n";
  }
  // x ticks: whole epochs, a round step
  const double x_step = std::max(1.0, nice_step(x_max, 10));
  for (double e = 0; e <= x_max + 1e-9; e += x_step) {
    s << "<text x='" << X(e) << "' y='" << H - B + 16 << "' text-anchor='middle'>" << num(e) << "</text>\n";
  }
  s << "<text x='" << (L + W - R) / 2 << "' y='" << H - 12 << "' text-anchor='middle'>epoch</text>\n";
  s << "<text x='16' y='" << (T + H - B) / 2 << "' transform='rotate(-90 16 " << (T + H - B) / 2
    << ")' text-anchor='middle'>" << svg_escape(y_label) << (log_y ? " (log scale)" : "") << "</text>\n";
  // Reference lines first (under the curves), each labelled on the plot at its right end.
  for (const auto& r : references) {
    const double y = Y(r.second);
    s << "<line x1='" << L << "' x2='" << W - R << "' y1='" << y << "' y2='" << y
      << "' stroke='gray' stroke-dasharray='2,3'/>\n";
    s << "<text x='" << W - R - 4 << "' y='" << y - 4 << "' text-anchor='end' fill='#555' font-size='11'>"
      << svg_escape(r.first) << " = " << num(r.second) << "</text>\n";
  }
  int legend = 0;
  for (size_t ci = 0; ci < curves.size(); ++ci) {
    const auto& c = curves[ci];
    const char* color = plot_color(ci);
    const std::string dash = kDashes[ci % 8];
    const std::string dash_attr = dash.empty() ? "" : "stroke-dasharray='" + dash + "' ";
    for (int which = 1; which >= 0; --which) {  // training (faint, thin) under validation
      std::ostringstream pts;
      for (const auto& p : c.points) {
        const double v = which == 0 ? p.valid_loss : p.train_loss;
        if (std::isfinite(v) && v > 0) pts << X(p.epoch) << "," << Y(v) << " ";
      }
      s << "<polyline fill='none' stroke='" << color << "' stroke-width='" << (which == 0 ? 2 : 1.2) << "' "
        << (which == 1 ? "stroke-opacity='0.45' " : "") << dash_attr << "points='" << pts.str() << "'/>\n";
    }
    for (const auto& p : c.points)  // a marker per validation point (a single epoch is visible too)
      if (std::isfinite(p.valid_loss) && p.valid_loss > 0)
        s << marker(static_cast<int>(ci), X(p.epoch), Y(p.valid_loss), color) << "\n";
    const double ly = T + 14 + 18 * legend++;
    s << "<line x1='" << W - R + 12 << "' x2='" << W - R + 48 << "' y1='" << ly - 4 << "' y2='" << ly - 4
      << "' stroke='" << color << "' stroke-width='2' " << dash_attr << "/>"
      << marker(static_cast<int>(ci), W - R + 30, ly - 4, color) << "<text x='" << W - R + 54 << "' y='" << ly
      << "'>" << svg_escape(c.label) << "</text>\n";
  }
  const double ly = T + 14 + 18 * legend;
  s << "<text x='" << W - R + 12 << "' y='" << ly + 6 << "' fill='#555'>bold, markers: validation</text>\n";
  s << "<text x='" << W - R + 12 << "' y='" << ly + 24 << "' fill='#555'>faint: training</text>\n";
  s << "<text x='" << W - R + 12 << "' y='" << ly + 42 << "' fill='#555'>gray dotted: references</text>\n";
  s << "</svg>\n";
  std::ofstream f(path);
  if (!f) throw std::runtime_error("cannot write " + path);
  f << s.str();
}

std::string markdown_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> w(header.size());
  for (size_t j = 0; j < header.size(); ++j) w[j] = header[j].size();
  for (const auto& r : rows)
    for (size_t j = 0; j < r.size() && j < w.size(); ++j) w[j] = std::max(w[j], r[j].size());
  auto line = [&](const std::vector<std::string>& r) {
    std::string s = "|";
    for (size_t j = 0; j < w.size(); ++j) {
      const std::string& c = j < r.size() ? r[j] : std::string();
      s += " " + c + std::string(w[j] - c.size(), ' ') + " |";
    }
    return s + "\n";
  };
  std::string out = line(header) + "|";
  for (size_t j = 0; j < w.size(); ++j) out += std::string(w[j] + 2, '-') + "|";
  out += "\n";
  for (const auto& r : rows) out += line(r);
  return out;
}

}  // namespace mantra::examples

// Output of the trainer: a progress line, the CSV log, the results table and an SVG plot of
// the learning curves.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace mantra::examples {

// One line on stderr, redrawn in place on a terminal (at most ~5 times a second) and printed
// every 10% otherwise (logs): label, epoch, bar, loss, items/s, ETA of the epoch.
class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t epoch, int64_t epochs, int64_t total, std::string item_name);
  void update(int64_t done, double loss, int64_t items_done);
  void finish(const std::string& summary);

 private:
  std::string render(int64_t done, double loss, int64_t items_done) const;
  std::string label_, item_name_;
  int64_t epoch_, epochs_, total_;
  bool tty_;
  int64_t last_decile_ = -1;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

std::string format_duration(double seconds);  // "1:05:07", "4:07", "12.3s"

struct CurvePoint {
  double epoch, train_loss, valid_loss;
};
struct Curve {
  std::string label;
  std::vector<CurvePoint> points;
};
// Validation (bold, a marker per epoch) and training (faint) loss per epoch of every model, each
// model with its own colour, dash pattern and marker shape (so that overlapping curves stay
// visible); round tick values; a log y axis when the values span more than a factor of 20.
// Horizontal reference lines (e.g. a baseline), labelled with their name and value on the plot.
void write_svg_plot(const std::string& path, const std::string& title, const std::string& y_label,
                    const std::vector<Curve>& curves,
                    const std::vector<std::pair<std::string, double>>& references = {});

// A text table (GitHub markdown) with aligned columns.
std::string markdown_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);

// The SVG pieces the programs' plots share: text with <, >, & escaped, and the i-th series colour
// (eight, cycling).
std::string svg_escape(const std::string& s);
const char* plot_color(int64_t i);

}  // namespace mantra::examples

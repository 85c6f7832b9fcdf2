#pragma once
// Pillow's Image.resize for uint8 images, bit for bit, with no DALI or torch dependency: the separable convolution of
// libImaging/Resample.c (per-axis weights in 22-bit fixed point, a pass skipped when its axis is unchanged, the two
// passes in Pillow 13's order: horizontal first unless the height shrinks by more than twice as many pixels as the
// width), the nearest-neighbour scale of libImaging/Geometry.c, and the crop Pillow returns when the box is already
// the output size at integer offsets. The arithmetic is Pillow's; only the loop order differs (see resample.cc),
// which leaves every integer sum unchanged.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace cllstr {
namespace resample {

enum class Filter { kNearest, kBilinear, kBicubic, kLanczos };

// "nearest", "bilinear", "bicubic" or "lanczos" (the torch path's names); false for anything else.
bool parse_filter(std::string_view name, Filter* out);

// The source region, as Pillow's ``box`` (left, upper, right, lower) after its conversion to float.
struct Box {
  float x0, y0, x1, y1;
};

// Whether ``box`` is one Pillow accepts for a ``height x width`` image (non-negative offset, inside the image, not
// empty); Pillow raises ValueError otherwise.
bool box_is_valid(const Box& box, int height, int width);

// A uint8 image in HWC layout; ``stride`` is the distance between rows in elements (>= width * channels).
struct Image {
  const uint8_t* data;
  int height, width, channels;
  ptrdiff_t stride;
};

struct MutableImage {
  uint8_t* data;
  int height, width, channels;
  ptrdiff_t stride;
};

// The taps of one axis: output pixel i reads bounds[2i + 1] source pixels from bounds[2i], with Pillow's fixed-point
// weights k[i * ksize + j]; pairs_hi/pairs_lo hold the same weights split for the SIMD kernel.
struct Taps {
  int ksize = 0, npairs = 0;
  std::vector<int> bounds;
  std::vector<int32_t> k, pairs_hi, pairs_lo;
};

// Reusable buffers of one thread.
struct Scratch {
  Taps horizontal, vertical;
  std::vector<double> weights;
  std::vector<uint8_t> columns, columns_out;  // the horizontal pass, transposed: source and output columns
  std::vector<uint8_t> tmp;                   // the image between the two passes
  std::vector<int> index;                     // nearest: source column of each output column
};

// ``Image.resize((out.width, out.height), filter, box)``: resample ``box`` of ``src`` into ``out`` (same channels).
// ``box`` must satisfy box_is_valid.
void resize(const Image& src, const Box& box, Filter filter, const MutableImage& out, Scratch& scratch);

// A source region as the loader describes it: top-left corner and size, in pixels.
struct Region {
  float y, x, height, width;
};

// Pillow's box of ``region`` in a ``height x width`` image: (x, y, x + width, y + height), summed in float, with the
// far edges clamped onto the image (a float-rounding overshoot of a computed region must not fail Pillow's checks).
Box box_of(const Region& region, int height, int width);

// Content width of the keep-ratio mode: clamp(ceil(out_height * box_width / box_height), 1, out_width).
int keep_ratio_width(double box_height, double box_width, int out_height, int out_width);

// The torch loader's resize: ``region`` of ``src`` resized to fill ``out``, or with ``keep_ratio`` resized to
// keep_ratio_width(region.height, region.width, ...) columns and padded on the right by repeating the last column.
// box_of(region, src.height, src.width) must satisfy box_is_valid.
void resize_text(const Image& src, const Region& region, Filter filter, bool keep_ratio, const MutableImage& out,
                 Scratch& scratch);

}  // namespace resample
}  // namespace cllstr

// Pillow-exact uint8 resampling (see resample.h). Built with -ffp-contract=off: the weights must come from the same
// double-precision operations as Pillow's, without fused multiply-adds.
//
// Both passes run one kernel, weighted_rows: an output row of lanes is the weighted sum of `count` input rows, which is
// Pillow's vertical pass as it stands. The horizontal pass becomes the same computation on the transposed image (each
// source byte column a row of lanes, one lane per source row), transposed back. On x86 the kernel uses SSE2's 16-bit
// multiply-add (pmaddwd) with each fixed-point weight split as hi * 2^11 + lo, both int16; the two int32 partial sums
// may wrap over thousands of taps, but hi_sum * 2^11 + lo_sum is then still Pillow's sum modulo 2^32, and Pillow's
// sum fits an int32, so the result is exact.
#include "resample.h"

#include <algorithm>
#include <cmath>
#include <cstring>

// CLLSTR_RESAMPLE_NO_SIMD builds the portable path on x86 too (it computes the same integers; used to test it).
#if defined(__SSE2__) && !defined(CLLSTR_RESAMPLE_NO_SIMD)
#include <emmintrin.h>
#define CLLSTR_RESAMPLE_SSE2 1
#endif

namespace cllstr {
namespace resample {

namespace {

// 8 bits of result and 2 bits of headroom for sums of negative or above-one weights in an int32 (Pillow's value).
constexpr int kPrecisionBits = 32 - 8 - 2;
constexpr int32_t kHalf = 1 << (kPrecisionBits - 1);
constexpr int kSplitBits = 11;  // weight = hi * 2^11 + lo: |hi| <= 2^11 and 0 <= lo < 2^11 both fit an int16
constexpr int32_t kSplitMask = (1 << kSplitBits) - 1;
constexpr int kBlock = 16;      // lanes per SIMD step; the transposed buffers are padded to a multiple of it

inline uint8_t clip8(int32_t v) {
  v >>= kPrecisionBits;  // arithmetic shift, as in Pillow
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

inline ptrdiff_t round_up(ptrdiff_t n, ptrdiff_t m) { return (n + m - 1) / m * m; }

// Pillow's filter functions and supports, in its operation order.
struct Bilinear {
  static constexpr double kSupport = 1.0;
  double operator()(double x) const {
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
  }
};

struct Bicubic {
  static constexpr double kSupport = 2.0;
  double operator()(double x) const {
    constexpr double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
  }
};

inline double sinc(double x) {
  if (x == 0.0) return 1.0;
  x = x * M_PI;
  return std::sin(x) / x;
}

struct Lanczos {
  static constexpr double kSupport = 3.0;
  double operator()(double x) const { return (-3.0 <= x && x < 3.0) ? sinc(x) * sinc(x / 3) : 0.0; }
};

// Pillow's precompute_coeffs + normalize_coeffs_8bpc for one axis: output pixel i reads `count(i)` source pixels
// from `first(i)` with fixed-point weights k(i)[0..count).
template <class F>
void precompute(int in_size, float in0, float in1, int out_size, F filter, std::vector<double>& w, Taps& t) {
  const double scale = static_cast<double>(in1 - in0) / out_size;
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = F::kSupport * filterscale;
  t.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  t.npairs = (t.ksize + 1) / 2;
  w.resize(t.ksize);
  t.k.resize(static_cast<size_t>(out_size) * t.ksize);  // entries past each count are never read
  t.bounds.resize(2 * static_cast<size_t>(out_size));
  const double ss = 1.0 / filterscale;
  for (int i = 0; i < out_size; ++i) {
    const double center = in0 + (i + 0.5) * scale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      const double v = filter((x + xmin - center + 0.5) * ss);
      w[x] = v;
      ww += v;
    }
    if (ww != 0.0) {
      for (int x = 0; x < xmax; ++x) w[x] /= ww;
    }
    int32_t* k = &t.k[static_cast<size_t>(i) * t.ksize];
    for (int x = 0; x < xmax; ++x) {
      const double v = w[x] * (1 << kPrecisionBits);
      k[x] = static_cast<int>(v < 0 ? v - 0.5 : v + 0.5);
    }
    t.bounds[2 * i] = xmin;
    t.bounds[2 * i + 1] = std::max(xmax, 0);
  }
#if CLLSTR_RESAMPLE_SSE2
  // Weights of taps (2p, 2p + 1) split and packed as int16 pairs, the second zero past the count.
  t.pairs_hi.resize(static_cast<size_t>(out_size) * t.npairs);
  t.pairs_lo.resize(static_cast<size_t>(out_size) * t.npairs);
  for (int i = 0; i < out_size; ++i) {
    const int count = t.bounds[2 * i + 1];
    const int32_t* k = &t.k[static_cast<size_t>(i) * t.ksize];
    int32_t* hi = &t.pairs_hi[static_cast<size_t>(i) * t.npairs];
    int32_t* lo = &t.pairs_lo[static_cast<size_t>(i) * t.npairs];
    for (int j = 0; j < count; j += 2) {
      const int32_t a = k[j], b = j + 1 < count ? k[j + 1] : 0;
      hi[j / 2] = static_cast<int32_t>(static_cast<uint16_t>(a >> kSplitBits) |
                                       static_cast<uint32_t>(static_cast<uint16_t>(b >> kSplitBits)) << 16);
      lo[j / 2] = static_cast<int32_t>((a & kSplitMask) | (b & kSplitMask) << 16);
    }
  }
#endif
}

void precompute(Filter filter, int in_size, float in0, float in1, int out_size, Scratch& s, Taps& t) {
  switch (filter) {
    case Filter::kBilinear:
      return precompute(in_size, in0, in1, out_size, Bilinear{}, s.weights, t);
    case Filter::kBicubic:
      return precompute(in_size, in0, in1, out_size, Bicubic{}, s.weights, t);
    case Filter::kLanczos:
      return precompute(in_size, in0, in1, out_size, Lanczos{}, s.weights, t);
    case Filter::kNearest:
      break;
  }
}

// out[l] = clip8(half + sum_j rows[j * stride + l] * k[j]) for l < lanes, j < count: output pixel i of taps t.
void weighted_rows(const uint8_t* rows, ptrdiff_t stride, const Taps& t, int i, int lanes, uint8_t* out) {
  const int count = t.bounds[2 * i + 1];
  const int32_t* k = &t.k[static_cast<size_t>(i) * t.ksize];
  int l = 0;
#if CLLSTR_RESAMPLE_SSE2
  const int32_t* hi = &t.pairs_hi[static_cast<size_t>(i) * t.npairs];
  const int32_t* lo = &t.pairs_lo[static_cast<size_t>(i) * t.npairs];
  const __m128i zero = _mm_setzero_si128();
  const __m128i half = _mm_set1_epi32(kHalf);
  for (; l + kBlock <= lanes; l += kBlock) {
    __m128i h0 = zero, h1 = zero, h2 = zero, h3 = zero, l0 = zero, l1 = zero, l2 = zero, l3 = zero;
    for (int j = 0; j < count; j += 2) {
      const uint8_t* row = rows + j * stride + l;
      const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row));
      // An odd last tap pairs with itself under a zero weight.
      const __m128i b = j + 1 < count ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + stride)) : a;
      const __m128i ab_lo = _mm_unpacklo_epi8(a, b), ab_hi = _mm_unpackhi_epi8(a, b);
      const __m128i p0 = _mm_unpacklo_epi8(ab_lo, zero), p1 = _mm_unpackhi_epi8(ab_lo, zero);
      const __m128i p2 = _mm_unpacklo_epi8(ab_hi, zero), p3 = _mm_unpackhi_epi8(ab_hi, zero);
      const __m128i wh = _mm_set1_epi32(hi[j / 2]), wl = _mm_set1_epi32(lo[j / 2]);
      h0 = _mm_add_epi32(h0, _mm_madd_epi16(p0, wh));
      h1 = _mm_add_epi32(h1, _mm_madd_epi16(p1, wh));
      h2 = _mm_add_epi32(h2, _mm_madd_epi16(p2, wh));
      h3 = _mm_add_epi32(h3, _mm_madd_epi16(p3, wh));
      l0 = _mm_add_epi32(l0, _mm_madd_epi16(p0, wl));
      l1 = _mm_add_epi32(l1, _mm_madd_epi16(p1, wl));
      l2 = _mm_add_epi32(l2, _mm_madd_epi16(p2, wl));
      l3 = _mm_add_epi32(l3, _mm_madd_epi16(p3, wl));
    }
    const auto combine = [&](__m128i h, __m128i lw) {
      const __m128i sum = _mm_add_epi32(_mm_add_epi32(_mm_slli_epi32(h, kSplitBits), lw), half);
      return _mm_srai_epi32(sum, kPrecisionBits);  // in [-640, 639]: the packs below clip exactly like clip8
    };
    const __m128i v01 = _mm_packs_epi32(combine(h0, l0), combine(h1, l1));
    const __m128i v23 = _mm_packs_epi32(combine(h2, l2), combine(h3, l3));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + l), _mm_packus_epi16(v01, v23));
  }
#endif
  // Portable path (and the SIMD path's last lanes): chunks of lanes whose int32 sums stay in a local array.
  constexpr int kChunk = 64;
  int32_t acc[kChunk];
  for (; l < lanes; l += kChunk) {
    const int n = std::min(kChunk, lanes - l);
    for (int m = 0; m < n; ++m) acc[m] = kHalf;
    for (int j = 0; j < count; ++j) {
      const uint8_t* row = rows + j * stride + l;
      for (int m = 0; m < n; ++m) acc[m] += row[m] * k[j];
    }
    for (int m = 0; m < n; ++m) out[l + m] = clip8(acc[m]);
  }
}

#if CLLSTR_RESAMPLE_SSE2
// dst[x][r] = src[r][x] for a 16 x 16 block of bytes.
void transpose16x16(const uint8_t* src, ptrdiff_t src_stride, uint8_t* dst, ptrdiff_t dst_stride) {
  __m128i a[16], b[16];
  for (int r = 0; r < 16; ++r) a[r] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + r * src_stride));
  // Four rounds of interleaving, each doubling the run of bytes that belong to one output row.
  for (int i = 0; i < 8; ++i) {
    b[i] = _mm_unpacklo_epi8(a[2 * i], a[2 * i + 1]);
    b[i + 8] = _mm_unpackhi_epi8(a[2 * i], a[2 * i + 1]);
  }
  for (int i = 0; i < 8; ++i) {
    a[i] = _mm_unpacklo_epi16(b[2 * i], b[2 * i + 1]);
    a[i + 8] = _mm_unpackhi_epi16(b[2 * i], b[2 * i + 1]);
  }
  for (int i = 0; i < 8; ++i) {
    b[i] = _mm_unpacklo_epi32(a[2 * i], a[2 * i + 1]);
    b[i + 8] = _mm_unpackhi_epi32(a[2 * i], a[2 * i + 1]);
  }
  for (int i = 0; i < 8; ++i) {
    a[i] = _mm_unpacklo_epi64(b[2 * i], b[2 * i + 1]);
    a[i + 8] = _mm_unpackhi_epi64(b[2 * i], b[2 * i + 1]);
  }
  // After the rounds, a[i] holds output row bit_reverse4(i).
  static constexpr int kRow[16] = {0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15};
  for (int i = 0; i < 16; ++i) _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + kRow[i] * dst_stride), a[i]);
}
#endif

// dst[x][r] = src[r][x] for r < rows, x < cols (bytes).
void transpose(const uint8_t* src, ptrdiff_t src_stride, int rows, int cols, uint8_t* dst, ptrdiff_t dst_stride) {
  int r0 = 0;
#if CLLSTR_RESAMPLE_SSE2
  for (; r0 + 16 <= rows; r0 += 16) {
    int x0 = 0;
    for (; x0 + 16 <= cols; x0 += 16) {
      transpose16x16(src + r0 * src_stride + x0, src_stride, dst + x0 * dst_stride + r0, dst_stride);
    }
    for (int x = x0; x < cols; ++x) {
      for (int r = r0; r < r0 + 16; ++r) dst[x * dst_stride + r] = src[r * src_stride + x];
    }
  }
#endif
  for (int x = 0; x < cols; ++x) {
    for (int r = r0; r < rows; ++r) dst[x * dst_stride + r] = src[r * src_stride + x];
  }
}

// Horizontal pass: output rows r < out.height from source rows y_first + r, with the taps of t, whose source
// column indices start at x_shift in `src`. The rows are transposed as bytes, so that source byte column
// x * channels + ch becomes a row of out.height lanes (padded to whole SIMD blocks; the padding lanes are computed
// and dropped); the taps of one channel are then rows `channels` apart, weighted_rows turns them into output byte
// column xx * channels + ch, and the result is transposed back.
void horizontal(const Image& src, int y_first, const Taps& t, int x_shift, const MutableImage& out, Scratch& s) {
  const int c = src.channels;
  const int last = out.width - 1;
  const int x_lo = t.bounds[0] - x_shift;
  const int x_hi = std::max(x_lo, t.bounds[2 * last] + t.bounds[2 * last + 1] - x_shift);
  const ptrdiff_t stride = round_up(out.height, kBlock);
  s.columns.resize(static_cast<size_t>((x_hi - x_lo) * c * stride));
  s.columns_out.resize(static_cast<size_t>(out.width * c * stride));
  transpose(src.data + y_first * src.stride + static_cast<ptrdiff_t>(x_lo) * c, src.stride, out.height,
            (x_hi - x_lo) * c, s.columns.data(), stride);
  for (int xx = 0; xx < out.width; ++xx) {
    const uint8_t* first = s.columns.data() + (t.bounds[2 * xx] - x_shift - x_lo) * c * stride;
    for (int ch = 0; ch < c; ++ch) {
      weighted_rows(first + ch * stride, c * stride, t, xx, static_cast<int>(stride),
                    s.columns_out.data() + (xx * c + ch) * stride);
    }
  }
  transpose(s.columns_out.data(), stride, out.width * c, out.height, out.data, out.stride);
}

// Vertical pass: output row yy from the taps of t, whose source row indices start at y_shift in `src`.
void vertical(const Image& src, const Taps& t, int y_shift, const MutableImage& out) {
  const int lanes = out.width * out.channels;
  for (int yy = 0; yy < out.height; ++yy) {
    weighted_rows(src.data + (t.bounds[2 * yy] - y_shift) * src.stride, src.stride, t, yy, lanes,
                  out.data + yy * out.stride);
  }
}

void copy_rows(const Image& src, int x0, int y0, const MutableImage& out) {
  const size_t bytes = static_cast<size_t>(out.width) * out.channels;
  for (int y = 0; y < out.height; ++y) {
    std::memcpy(out.data + y * out.stride, src.data + (y0 + y) * src.stride + static_cast<ptrdiff_t>(x0) * src.channels,
                bytes);
  }
}

// Geometry.c's ImagingScaleAffine as Pillow's resize calls it for NEAREST: source positions accumulate from the
// box origin in steps of box size / output size; a position outside the image gives 0.
void nearest(const Image& src, const Box& box, const MutableImage& out, Scratch& s) {
  const int c = src.channels;
  const double ax = static_cast<double>(box.x1 - box.x0) / out.width;
  const double ay = static_cast<double>(box.y1 - box.y0) / out.height;
  s.index.resize(out.width);
  double xo = static_cast<double>(box.x0) + ax * 0.5;
  for (int x = 0; x < out.width; ++x) {
    const int xin = xo < 0.0 ? -1 : static_cast<int>(xo);
    s.index[x] = (xin >= 0 && xin < src.width) ? xin : -1;
    xo += ax;
  }
  double yo = static_cast<double>(box.y0) + ay * 0.5;
  for (int y = 0; y < out.height; ++y) {
    const int yin = yo < 0.0 ? -1 : static_cast<int>(yo);
    uint8_t* dst = out.data + y * out.stride;
    if (yin >= 0 && yin < src.height) {
      const uint8_t* row = src.data + yin * src.stride;
      for (int x = 0; x < out.width; ++x) {
        const int xin = s.index[x];
        for (int ch = 0; ch < c; ++ch) dst[x * c + ch] = xin < 0 ? 0 : row[xin * c + ch];
      }
    } else {
      std::memset(dst, 0, static_cast<size_t>(out.width) * c);
    }
    yo += ay;
  }
}

}  // namespace

bool parse_filter(std::string_view name, Filter* out) {
  if (name == "nearest") {
    *out = Filter::kNearest;
  } else if (name == "bilinear") {
    *out = Filter::kBilinear;
  } else if (name == "bicubic") {
    *out = Filter::kBicubic;
  } else if (name == "lanczos") {
    *out = Filter::kLanczos;
  } else {
    return false;
  }
  return true;
}

bool box_is_valid(const Box& box, int height, int width) {
  // Pillow's checks in _imaging.c (_resize), on the float box; NaN fails every comparison, so test the positive form.
  return box.x0 >= 0 && box.y0 >= 0 && box.x1 <= width && box.y1 <= height && box.x1 - box.x0 >= 0 &&
         box.y1 - box.y0 >= 0;
}

void resize(const Image& src, const Box& box, Filter filter, const MutableImage& out, Scratch& s) {
  // The box is already the output size at integer offsets: a crop (Pillow checks this before anything else).
  if (box.x0 - static_cast<int>(box.x0) == 0 && box.x1 - box.x0 == out.width &&
      box.y0 - static_cast<int>(box.y0) == 0 && box.y1 - box.y0 == out.height) {
    copy_rows(src, static_cast<int>(box.x0), static_cast<int>(box.y0), out);
    return;
  }
  if (filter == Filter::kNearest) {
    nearest(src, box, out, s);
    return;
  }
  const bool need_h = out.width != src.width || box.x0 != 0 || box.x1 != out.width;
  const bool need_v = out.height != src.height || box.y0 != 0 || box.y1 != out.height;
  const int c = src.channels;
  Taps& th = s.horizontal;
  Taps& tv = s.vertical;
  if (need_h && need_v) {
    precompute(filter, src.width, box.x0, box.x1, out.width, s, th);
    precompute(filter, src.height, box.y0, box.y1, out.height, s, tv);
    // Pillow 13 runs the vertical pass first when the height shrinks by more than twice as many pixels as the width
    // (the order changes the rounding of the uint8 intermediate image, so it must match).
    const int64_t shrink_h = static_cast<int64_t>(src.height) - out.height;
    const int64_t shrink_w = static_cast<int64_t>(src.width) - out.width;
    if (shrink_h > 0 && shrink_h > 2 * shrink_w) {
      const int x_first = th.bounds[0];
      const int x_last = th.bounds[2 * (out.width - 1)] + th.bounds[2 * (out.width - 1) + 1];
      const int cols = std::max(x_last - x_first, 0);
      s.tmp.resize(static_cast<size_t>(out.height) * cols * c);
      const MutableImage tmp{s.tmp.data(), out.height, cols, c, static_cast<ptrdiff_t>(cols) * c};
      vertical(Image{src.data + static_cast<ptrdiff_t>(x_first) * c, src.height, cols, c, src.stride}, tv, 0, tmp);
      horizontal(Image{tmp.data, tmp.height, tmp.width, c, tmp.stride}, 0, th, x_first, out, s);
      return;
    }
    // Horizontal first, over the source rows the vertical pass reads.
    const int y_first = tv.bounds[0];
    const int y_last = tv.bounds[2 * (out.height - 1)] + tv.bounds[2 * (out.height - 1) + 1];
    const int rows = std::max(y_last - y_first, 0);
    s.tmp.resize(static_cast<size_t>(rows) * out.width * c);
    const MutableImage tmp{s.tmp.data(), rows, out.width, c, static_cast<ptrdiff_t>(out.width) * c};
    horizontal(src, y_first, th, 0, tmp, s);
    vertical(Image{tmp.data, tmp.height, tmp.width, c, tmp.stride}, tv, y_first, out);
  } else if (need_h) {  // the vertical box is the whole image and out.height == src.height
    precompute(filter, src.width, box.x0, box.x1, out.width, s, th);
    horizontal(src, 0, th, 0, out, s);
  } else if (need_v) {  // the horizontal box is the whole image and out.width == src.width
    precompute(filter, src.height, box.y0, box.y1, out.height, s, tv);
    vertical(src, tv, 0, out);
  } else {
    copy_rows(src, 0, 0, out);
  }
}

int keep_ratio_width(double box_height, double box_width, int out_height, int out_width) {
  const double w = std::ceil(out_height * box_width / box_height);
  return w >= out_width ? out_width : (w >= 1.0 ? static_cast<int>(w) : 1);
}

Box box_of(const Region& r, int height, int width) {
  return Box{r.x, r.y, std::min(r.x + r.width, static_cast<float>(width)),
             std::min(r.y + r.height, static_cast<float>(height))};
}

void resize_text(const Image& src, const Region& region, Filter filter, bool keep_ratio, const MutableImage& out,
                 Scratch& scratch) {
  const int c = out.channels;
  const int new_w = keep_ratio ? keep_ratio_width(region.height, region.width, out.height, out.width) : out.width;
  const MutableImage content{out.data, out.height, new_w, c, out.stride};
  resize(src, box_of(region, src.height, src.width), filter, content, scratch);
  for (int y = 0; y < out.height && new_w < out.width; ++y) {
    uint8_t* row = out.data + y * out.stride;
    const uint8_t* edge = row + static_cast<ptrdiff_t>(new_w - 1) * c;
    for (int x = new_w; x < out.width; ++x) std::memcpy(row + static_cast<ptrdiff_t>(x) * c, edge, c);
  }
}

}  // namespace resample
}  // namespace cllstr

// DALI CPU operator cllstr__TextResize (Python: fn.cllstr.text_resize): Pillow's Image.resize of a source region, in
// the fixed or keep-ratio form of the torch loader, one sample per task on the pipeline's thread pool.
#include <cmath>
#include <string>
#include <vector>

#include "dali/pipeline/operator/operator.h"
#include "resample.h"

namespace cllstr {
namespace dali_ops {

namespace rs = ::cllstr::resample;
using ::dali::CPUBackend;
using ::dali::make_string;

// A region may overshoot the image by float rounding of its random offset and size (crop_region computes them in
// float32 on the pipeline): up to this many pixels it is clamped to the image, beyond it is an error.
constexpr double kRegionSlack = 0.01;
// Sides up to 2^20 keep every index and buffer size of the kernel well inside int.
constexpr int64_t kMaxSide = 1 << 20;

// Fails the pipeline with a message that names the operator (DALI_ENFORCE would prepend the C++ condition).
template <typename... Args>
void check(bool ok, const Args&... message) {
  if (!ok) DALI_FAIL("cllstr.text_resize: ", message...);
}

class TextResize : public ::dali::Operator<CPUBackend> {
 public:
  explicit TextResize(const ::dali::OpSpec& spec) : ::dali::Operator<CPUBackend>(spec) {
    const auto size = spec.GetRepeatedArgument<int>("size");
    check(size.size() == 2 && size[0] >= 1 && size[1] >= 1,
          "argument `size` must be (height, width) with both >= 1, got ", size.size(), " values",
          size.size() == 2 ? make_string(": ", size[0], ", ", size[1]) : "");
    out_h_ = size[0];
    out_w_ = size[1];
    const auto interp = spec.GetArgument<std::string>("interp");
    check(rs::parse_filter(interp, &filter_),
          "argument `interp` must be one of nearest, bilinear, bicubic, lanczos; got \"", interp, "\"");
    keep_ratio_ = spec.GetArgument<bool>("keep_ratio");
  }

 protected:
  bool SetupImpl(std::vector<::dali::OutputDesc>& output_desc, const ::dali::Workspace& ws) override {
    const auto& input = ws.Input<CPUBackend>(0);
    check(input.type() == DALI_UINT8, "the input must be uint8 images, got type ", input.type());
    const auto& shape = input.shape();  // 3-D: the schema's HWC layout is checked before SetupImpl
    const int n = shape.num_samples();
    regions_.resize(n);
    ::dali::TensorListShape<3> out_shape(n);
    for (int i = 0; i < n; ++i) {
      const auto s = shape.tensor_shape_span(i);
      check(s[0] >= 1 && s[1] >= 1, "sample ", i, " is empty (", s[0], "x", s[1], "); images need a pixel at least");
      check(s[2] == 1 || s[2] == 3, "sample ", i, " has ", s[2], " channels; 1 or 3 are supported");
      check(s[0] <= kMaxSide && s[1] <= kMaxSide, "sample ", i, " is too large (", s[0], "x", s[1], "); the limit is ",
            kMaxSide, " pixels a side");
      regions_[i] = region_of(ws, i, static_cast<int>(s[0]), static_cast<int>(s[1]));
      out_shape.set_tensor_shape(i, ::dali::TensorShape<3>(out_h_, out_w_, s[2]));
    }
    output_desc.resize(1);
    output_desc[0] = {out_shape, DALI_UINT8};
    return true;
  }

  void RunImpl(::dali::Workspace& ws) override {
    const auto& input = ws.Input<CPUBackend>(0);
    auto& output = ws.Output<CPUBackend>(0);
    output.SetLayout("HWC");
    const auto& shape = input.shape();
    auto& pool = ws.GetThreadPool();
    for (int i = 0; i < shape.num_samples(); ++i) {
      const auto s = shape.tensor_shape_span(i);
      pool.AddWork(
          [&, i, s](int) {
            thread_local rs::Scratch scratch;
            const int h = static_cast<int>(s[0]), w = static_cast<int>(s[1]), c = static_cast<int>(s[2]);
            const rs::Image src{input.tensor<uint8_t>(i), h, w, c, static_cast<ptrdiff_t>(w) * c};
            const rs::MutableImage dst{output.mutable_tensor<uint8_t>(i), out_h_, out_w_, c,
                                       static_cast<ptrdiff_t>(out_w_) * c};
            rs::resize_text(src, regions_[i], filter_, keep_ratio_, dst, scratch);
          },
          shape.tensor_size(i));  // larger images first
    }
    pool.RunAll();
  }

 private:
  // The checked source region of sample i (the whole image where roi_* are not given).
  rs::Region region_of(const ::dali::Workspace& ws, int i, int h, int w) const {
    const float y = spec_.GetArgument<float>("roi_y", &ws, i);
    const float x = spec_.GetArgument<float>("roi_x", &ws, i);
    const float rh = spec_.HasArgument("roi_h") || spec_.HasTensorArgument("roi_h")
                         ? spec_.GetArgument<float>("roi_h", &ws, i)
                         : static_cast<float>(h) - y;
    const float rw = spec_.HasArgument("roi_w") || spec_.HasTensorArgument("roi_w")
                         ? spec_.GetArgument<float>("roi_w", &ws, i)
                         : static_cast<float>(w) - x;
    const auto check_arg = [&](bool ok, const char* arg, float value, const char* rule) {
      check(ok, "argument `", arg, "` of sample ", i, " is ", value, "; ", rule, " (image ", h, "x", w,
            ", region y=", y, " x=", x, " h=", rh, " w=", rw, ")");
    };
    check_arg(std::isfinite(y) && y >= 0 && y < h, "roi_y", y, "it must lie in [0, image height)");
    check_arg(std::isfinite(x) && x >= 0 && x < w, "roi_x", x, "it must lie in [0, image width)");
    check_arg(std::isfinite(rh) && rh > 0 && y + rh <= h + kRegionSlack, "roi_h", rh,
              "it must be > 0 with roi_y + roi_h <= image height");
    check_arg(std::isfinite(rw) && rw > 0 && x + rw <= w + kRegionSlack, "roi_w", rw,
              "it must be > 0 with roi_x + roi_w <= image width");
    const rs::Region r{y, x, rh, rw};
    DALI_ENFORCE(rs::box_is_valid(rs::box_of(r, h, w), h, w), "the checks above keep the box inside the image");
    return r;
  }

  int out_h_ = 0, out_w_ = 0;
  rs::Filter filter_ = rs::Filter::kBicubic;
  bool keep_ratio_ = false;
  std::vector<rs::Region> regions_;
};

}  // namespace dali_ops
}  // namespace cllstr

DALI_REGISTER_OPERATOR(cllstr__TextResize, ::cllstr::dali_ops::TextResize, ::dali::CPU);

DALI_SCHEMA(cllstr__TextResize)
    .DocStr(R"(Resizes uint8 HWC images (1 or 3 channels) exactly as Pillow's ``Image.resize(size, filter, box)``.

The source region (``roi_*``, Pillow's ``box``; the whole image by default) is resized to ``size``; with
``keep_ratio`` it is resized to ``clamp(ceil(height * roi_w / roi_h), 1, width)`` columns and the rest of each row
repeats its last column. The output is ``uint8 (height, width, C)`` with layout HWC.)")
    .NumInput(1)
    .NumOutput(1)
    .InputLayout(0, "HWC")
    .AddArg("size", "Output ``(height, width)``.", DALI_INT_VEC)
    .AddOptionalArg("interp", "Filter: ``nearest``, ``bilinear``, ``bicubic`` (a = -0.5) or ``lanczos`` (a = 3).",
                    std::string("bicubic"))
    .AddOptionalArg("keep_ratio", "Keep the region's aspect ratio and pad on the right by edge replication.", false)
    .AddOptionalArg("roi_y", "Top of the source region, in pixels.", 0.0f, true)
    .AddOptionalArg("roi_x", "Left of the source region, in pixels.", 0.0f, true)
    .AddOptionalArg<float>("roi_h", "Height of the source region (default: to the bottom of the image).", nullptr,
                           true)
    .AddOptionalArg<float>("roi_w", "Width of the source region (default: to the right of the image).", nullptr,
                           true);

// Fused max-pool of an activation's output (trainact.nn.pool_kernels): the 2x2 / stride 2 window
// selection of the forward and the scatter of the backward, for contiguous (N, C, H, W) CPU tensors
// with even H and W. Window positions are numbered in scan order (0: top left, 1: top right,
// 2: bottom left, 3: bottom right); the first maximum wins, a NaN wins over numbers and the last
// NaN over earlier ones, as in ATen's CPU max_pool2d (`val > maxval || isnan(val)`).
#include <torch/extension.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <bit>
#include <cstdint>

namespace {

int64_t grain(int64_t plane) { return std::max<int64_t>(1, 32768 / std::max<int64_t>(plane, 1)); }

// Bit patterns of the element types, for the branch-free select below.
template <typename T>
struct Bits;
template <>
struct Bits<float> { using type = uint32_t; };
template <>
struct Bits<double> { using type = uint64_t; };
template <>
struct Bits<c10::Half> { using type = uint16_t; };
template <>
struct Bits<c10::BFloat16> { using type = uint16_t; };

// `take ? yes : no` as a bit mask: GCC vectorises a loop of these, not one of two `?:` on one
// condition ("control flow in loop").
template <typename T>
inline T pick(bool take, T yes, T no) {
  using U = typename Bits<T>::type;
  const U mask = U(0) - U(take);
  return std::bit_cast<T>(static_cast<U>((std::bit_cast<U>(yes) & mask) | (std::bit_cast<U>(no) & ~mask)));
}

// Branch-free selection (random data would mispredict branches), in two passes per output row
// that the compiler vectorises: the two input rows against each other (contiguous), then the
// columns of the result in pairs, from row buffers in L1.
template <typename T>
void select_row(const T* __restrict__ y0, const T* __restrict__ y1, const T* __restrict__ x0,
                const T* __restrict__ x1, int64_t W, T* __restrict__ v, T* __restrict__ xv,
                float* __restrict__ lower, T* __restrict__ out, T* __restrict__ xsel,
                int8_t* __restrict__ idx) {
  for (int64_t w = 0; w < W; ++w) {
    const T top = y0[w], bottom = y1[w];
    const bool take = (bottom > top) | (bottom != bottom);
    v[w] = pick(take, bottom, top);
    xv[w] = pick(take, x1[w], x0[w]);
    lower[w] = pick(take, 2.0f, 0.0f);
  }
  const int64_t Wo = W / 2;
  for (int64_t j = 0; j < Wo; ++j) {
    const T left = v[2 * j], right = v[2 * j + 1];
    // scan order: the left column's winner comes first, unless it is in the lower row and the
    // right column's winner in the upper one (positions 2 vs 1); a NaN wins, the later one
    const float left_position = lower[2 * j], right_position = lower[2 * j + 1] + 1.0f;
    const bool right_nan = right != right, left_nan = left != left;
    const bool later = right_position > left_position;
    const bool take = (right_nan & (later | !left_nan)) |
                      (!right_nan & !left_nan & ((right > left) | ((right == left) & !later)));
    out[j] = pick(take, right, left);
    xsel[j] = pick(take, xv[2 * j + 1], xv[2 * j]);
    idx[j] = static_cast<int8_t>(pick(take, right_position, left_position));
  }
}

// One output row pair of the backward: `grad` at the window position `idx`, zeros elsewhere.
template <typename T>
void unpool_row(const T* __restrict__ g, const int8_t* __restrict__ k, int64_t Wo, T* __restrict__ o0,
                T* __restrict__ o1) {
  const T zero(0);
  for (int64_t j = 0; j < Wo; ++j) {
    const T v = g[j];
    const int8_t q = k[j];
    o0[2 * j] = pick(q == 0, v, zero);
    o0[2 * j + 1] = pick(q == 1, v, zero);
    o1[2 * j] = pick(q == 2, v, zero);
    o1[2 * j + 1] = pick(q == 3, v, zero);
  }
}

}  // namespace

std::vector<at::Tensor> pool_select(const at::Tensor& y, const at::Tensor& x) {
  TORCH_CHECK(y.dim() == 4 && y.sizes() == x.sizes(), "select: y and x must be (N, C, H, W) of one shape");
  TORCH_CHECK(y.is_contiguous() && x.is_contiguous() && y.scalar_type() == x.scalar_type(),
              "select: contiguous tensors of one dtype");
  const int64_t N = y.size(0), C = y.size(1), H = y.size(2), W = y.size(3);
  TORCH_CHECK(H % 2 == 0 && W % 2 == 0, "select: H and W must be even");
  const int64_t Ho = H / 2, Wo = W / 2;
  auto out = at::empty({N, C, Ho, Wo}, y.options());
  auto xsel = at::empty({N, C, Ho, Wo}, y.options());
  auto idx = at::empty({N, C, Ho, Wo}, y.options().dtype(at::kChar));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, y.scalar_type(), "trainact_pool_select", [&] {
    const scalar_t* yp = y.data_ptr<scalar_t>();
    const scalar_t* xp = x.data_ptr<scalar_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    scalar_t* sp = xsel.data_ptr<scalar_t>();
    int8_t* ip = idx.data_ptr<int8_t>();
    at::parallel_for(0, N * C * Ho, grain(2 * W), [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> v(W), xv(W);
      std::vector<float> lower(W);
      for (int64_t r = begin; r < end; ++r) {  // r: output row (plane, i)
        const scalar_t* y0 = yp + 2 * r * W;
        const scalar_t* x0 = xp + 2 * r * W;
        select_row(y0, y0 + W, x0, x0 + W, W, v.data(), xv.data(), lower.data(), op + r * Wo, sp + r * Wo,
                   ip + r * Wo);
      }
    });
  });
  return {out, xsel, idx};
}

at::Tensor pool_unpool(const at::Tensor& grad, const at::Tensor& idx) {
  TORCH_CHECK(grad.dim() == 4 && grad.sizes() == idx.sizes() && idx.scalar_type() == at::kChar,
              "unpool: grad (N, C, Ho, Wo) and int8 idx of one shape");
  TORCH_CHECK(grad.is_contiguous() && idx.is_contiguous(), "unpool: contiguous tensors");
  const int64_t N = grad.size(0), C = grad.size(1), Ho = grad.size(2), Wo = grad.size(3);
  const int64_t W = 2 * Wo;
  auto out = at::empty({N, C, 2 * Ho, W}, grad.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad.scalar_type(), "trainact_pool_unpool", [&] {
    const scalar_t* gp = grad.data_ptr<scalar_t>();
    const int8_t* ip = idx.data_ptr<int8_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    at::parallel_for(0, N * C * Ho, grain(2 * W), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        scalar_t* o0 = op + 2 * r * W;
        unpool_row(gp + r * Wo, ip + r * Wo, Wo, o0, o0 + W);
      }
    });
  });
  return out;
}

// noiselab_dnnl.cc — the native half of the `noiselab` tfjs backend.
//
// A small extern "C" API over oneDNN's C++ API (dnnl.hpp), loaded from Deno with
// `Deno.dlopen` (lib/backend/engine/ffi.ts). All tensors are float32 buffers owned
// by JavaScript (the tfjs CPU backend's typed arrays); activations are NHWC and
// convolution weights HWIO, exactly as tfjs stores them, so no copies are needed
// at the boundary. oneDNN primitives are created once per shape and cached here.
//
// oneDNN does the convolutions (fwd, bwd-data, bwd-weights), matmul and pooling.
// Batch-norm, ReLU and the few element-wise ops are hand-written OpenMP loops:
// they are single memory-bound passes whose exact semantics must match tfjs
// (tf.moments' biased variance, gradients through the batch statistics, TF's
// relu'(0) = 0), and calling them here avoids oneDNN memory/primitive set-up
// for what is a one-line loop.
//
// Non-finite values (NaN, +-Inf) follow the tfjs `cpu` backend exactly, since a
// noisy model (e.g. a BN moving variance pushed below zero) must give NaN where
// TensorFlow/Keras and tfjs do: ReLU keeps NaN (relu(x) = x <= 0 ? 0 : x, like
// Math.max(0, x)); oneDNN's relu post-op maps NaN to 0, so fused conv/matmul relu
// falls back to an unfused primitive + NaN-keeping relu unless the inputs are finite
// and bounded so that no partial sum can overflow (relu_postop_exact); max pooling is hand-written with tfjs' comparison (`v > acc` from -Inf:
// NaN never wins, a window of NaN/-Inf gives -Inf; its gradient goes to the first
// strict maximum, or nowhere); batch norm recomputes tfjs' exact formula wherever
// the fast scale/shift form gives a non-finite value. Finite inputs take the same
// code paths (bitwise the same results) as before.
//
// Every entry point returns 0 on success, or -1 with a message retrievable by
// nl_last_error(). Build: lib/backend/engine/native/build.sh.

#include <dnnl.hpp>
#include <immintrin.h>
#include <omp.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

using namespace dnnl;
using tag = memory::format_tag;
using dt = memory::data_type;

namespace {

std::string g_err;
std::string g_info;
engine* g_eng = nullptr;
stream* g_strm = nullptr;

void ensure_engine() {
  if (!g_eng) {
    g_eng = new engine(engine::kind::cpu, 0);
    g_strm = new stream(*g_eng);
  }
}

template <typename F>
int guard(F&& f) {
  try {
    ensure_engine();
    f();
    return 0;
  } catch (const dnnl::error& e) {
    g_err = std::string("oneDNN: ") + e.what() + " (status " + std::to_string((int)e.status) + ")";
  } catch (const std::exception& e) {
    g_err = e.what();
  } catch (...) {
    g_err = "unknown native error";
  }
  return -1;
}

// ---------------------------------------------------------------- convolution
// Parameter block shared with JS (Int32Array):
enum {
  P_N, P_H, P_W, P_C, P_KH, P_KW, P_OC, P_OH, P_OW, P_SH, P_SW, P_DH, P_DW,
  P_PT, P_PL, P_PB, P_PR, P_BIAS, P_ACT, P_COUNT
};

struct ConvEntry {
  memory::desc src_md, w_user_md, dst_md, bias_md;
  // bf16 (nl_set_conv_bf16 mode 1 or 2): the f32 input is converted into src_lp before the conv
  bool src_cvt = false;
  memory src_lp;
  reorder src_r;
  // bf16 training (mode 2): the f32 output gradient is converted into dd_lp before either
  // backward convolution (the JS side passes f32 buffers only)
  bool bf16_train = false;
  memory::desc dd_lp_md;
  memory dd_lp;
  reorder dd_r;
  memory::dims strides, dilates, pad_l, pad_r;
  convolution_forward::primitive_desc fwd_pd;
  convolution_forward fwd;
  bool fwd_w_reorder = false;
  reorder fwd_w_r;
  memory fwd_w_mem;
  // backward data (lazy)
  bool bwd_d_ready = false;
  convolution_backward_data::primitive_desc bwd_d_pd;
  convolution_backward_data bwd_d;
  bool bwd_d_w_reorder = false;
  reorder bwd_d_w_r;
  memory bwd_d_w_mem;
  // backward weights (lazy)
  bool bwd_w_ready = false;
  convolution_backward_weights::primitive_desc bwd_w_pd;
  convolution_backward_weights bwd_w;
  bool bwd_w_reorder = false;
  reorder bwd_w_r;
  memory bwd_w_mem;
};

std::map<std::vector<int>, std::unique_ptr<ConvEntry>> g_conv;

// Convolutions in bf16 (inputs, weights and output gradients rounded to bf16, f32 accumulation
// and f32 outputs/gradients): mode 0 = all f32 (default); 1 = forward convolutions in bf16
// (inference: the bf16 sweep fast path); 2 = forward and both backward convolutions in bf16
// (mixed-precision training: the JS side keeps f32 master weights, BN statistics and the loss).
// Only ever non-zero on a CPU with bf16 dot products (nl_set_conv_bf16).
int g_conv_bf16 = 0;

bool cpu_has_bf16() {
  const cpu_isa isa = get_effective_cpu_isa();
  return isa == cpu_isa::avx512_core_bf16 || isa == cpu_isa::avx512_core_amx;
}

// Implementation choice. oneDNN's first choice for a convolution is not always
// the fastest for these small-channel NHWC shapes (e.g. brgconv vs jit for
// 16-channel 3x3 layers), so the first time a shape is seen every non-reference
// implementation can be timed on zero-filled buffers and the fastest kept.
// Opt-in (NOISELAB_AUTOTUNE=1): the choice depends on timings, so two processes
// could pick different kernels and round differently, which would break
// "same config + seed + backend => same weights". Measured gain on ResNet-20:
// a few percent, within the noise of this shared machine.
/**
 * The thread-count-independent layout of every reduction (issue: the weights a training run produces
 * must not depend on the machine's core count, since model ids do not include it). oneDNN's
 * backward-weights convolutions split their reduction over the minibatch among the threads they are
 * created with, so they are created and run with this many threads; the hand-written column sums
 * (BN statistics and gradients, bias gradients) use the same number of parts. 2 — the thread count
 * every stored result of this project was trained with (2-core machines) — unless
 * NOISELAB_REDUCTION_THREADS says otherwise (then the weights differ from 2's in the last bits, and the
 * backend name in model ids says so: lib/backend).
 */
int reduction_parts() {
  static int parts = [] {
    const char* v = std::getenv("NOISELAB_REDUCTION_THREADS");
    int n = v ? std::atoi(v) : 0;
    return n >= 1 && n <= 256 ? n : 2;
  }();
  return parts;
}

/** Runs f with OpenMP's thread count set to `n` on the calling thread, restoring it after. */
template <typename F>
void with_threads(int n, F&& f) {
  const int prev = omp_get_max_threads();
  omp_set_num_threads(n);
  try {
    f();
  } catch (...) {
    omp_set_num_threads(prev);
    throw;
  }
  omp_set_num_threads(prev);
}

bool autotune_enabled() {
  const char* v = std::getenv("NOISELAB_AUTOTUNE");
  return v && v[0] == '1';
}

memory zero_memory(const memory::desc& md) {
  memory m(md, *g_eng);
  std::memset(m.get_data_handle(), 0, md.get_size());
  return m;
}

/** Times `run` (after one warm-up call), returning the best of `reps` in ms. */
double time_ms(const std::function<void()>& run, int reps) {
  run();
  double best = 1e30;
  for (int i = 0; i < reps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    run();
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (ms < best) best = ms;
  }
  return best;
}

/**
 * Deterministic default for forward convolutions: oneDNN 2.6 ranks brgconv first
 * for NHWC, but timing every implementation on this project's shapes (ResNet
 * and VGG on CIFAR, AVX-512) showed jit:avx512_core as fast (±10%) on ResNet
 * layers and ~2x faster on VGG's 4x4/2x2 layers with 512 channels and on the
 * 3-channel stem. Returns the first implementation whose name starts with
 * `prefix`, else pd unchanged.
 */
template <typename PD>
PD prefer_impl(PD pd, const std::string& prefix) {
  PD first = pd;
  do {
    if (std::string(pd.impl_info_str()).rfind(prefix, 0) == 0) return pd;
  } while (pd.next_impl());
  return first;
}

/** pd at its first implementation whose name does not start with `prefix` (pd itself if none). */
template <typename PD>
PD skip_impl(PD pd, const std::string& prefix) {
  PD first = pd;
  do {
    if (std::string(pd.impl_info_str()).rfind(prefix, 0) != 0) return pd;
  } while (pd.next_impl());
  return first;
}

/**
 * Walks pd's implementation list and returns the fastest under `bench` (ms); never one whose name
 * starts with `avoid` (unless it is the only one).
 */
template <typename PD>
PD pick_fastest(PD pd, const std::function<double(const PD&)>& bench, const char* preferred = nullptr,
                const char* avoid = nullptr) {
  if (avoid) pd = skip_impl(pd, avoid);
  if (!autotune_enabled()) return preferred ? prefer_impl(pd, preferred) : pd;
  PD best = pd;
  double best_ms = 1e30;
  int tried = 0;
  do {
    std::string name = pd.impl_info_str();
    if (name.find("ref") != std::string::npos) continue;
    if (avoid && name.rfind(avoid, 0) == 0) continue;
    double ms = bench(pd);
    ++tried;
    if (std::getenv("NOISELAB_AUTOTUNE_LOG")) std::fprintf(stderr, "[autotune] %s %.3f ms\n", name.c_str(), ms);
    if (ms < best_ms) {
      best_ms = ms;
      best = pd;
    }
  } while (tried < 6 && pd.next_impl());
  if (std::getenv("NOISELAB_AUTOTUNE_LOG")) std::fprintf(stderr, "[autotune] -> %s\n", best.impl_info_str());
  return best;
}

ConvEntry& get_conv(const int32_t* p, int mode = 0) {
  const bool bf16 = mode != 0;
  std::vector<int> key(p, p + P_COUNT);
  if (bf16) key.push_back(mode);
  auto it = g_conv.find(key);
  if (it != g_conv.end()) return *it->second;
  auto e = std::make_unique<ConvEntry>();
  const memory::dim N = p[P_N], H = p[P_H], W = p[P_W], C = p[P_C], KH = p[P_KH], KW = p[P_KW],
                    OC = p[P_OC], OH = p[P_OH], OW = p[P_OW];
  e->src_md = memory::desc({N, C, H, W}, dt::f32, tag::nhwc);
  e->dst_md = memory::desc({N, OC, OH, OW}, dt::f32, tag::nhwc);
  e->w_user_md = memory::desc({OC, C, KH, KW}, dt::f32, tag::hwio);
  e->bias_md = memory::desc({OC}, dt::f32, tag::x);
  memory::desc w_any({OC, C, KH, KW}, bf16 ? dt::bf16 : dt::f32, tag::any);
  memory::desc src_prim = bf16 ? memory::desc({N, C, H, W}, dt::bf16, tag::nhwc) : e->src_md;
  e->strides = {p[P_SH], p[P_SW]};
  e->dilates = {p[P_DH] - 1, p[P_DW] - 1};
  e->pad_l = {p[P_PT], p[P_PL]};
  e->pad_r = {p[P_PB], p[P_PR]};
  primitive_attr attr;
  if (p[P_ACT] == 1) {
    post_ops po;
    po.append_eltwise(1.f, algorithm::eltwise_relu, 0.f, 0.f);
    attr.set_post_ops(po);
  }
  const prop_kind pk = mode == 1 ? prop_kind::forward_inference : prop_kind::forward_training;
  auto d = p[P_BIAS]
               ? convolution_forward::desc(pk, algorithm::convolution_direct,
                                           src_prim, w_any, e->bias_md, e->dst_md, e->strides, e->dilates,
                                           e->pad_l, e->pad_r)
               : convolution_forward::desc(pk, algorithm::convolution_direct,
                                           src_prim, w_any, e->dst_md, e->strides, e->dilates, e->pad_l,
                                           e->pad_r);
  e->fwd_pd = pick_fastest<convolution_forward::primitive_desc>(
      convolution_forward::primitive_desc(d, attr, *g_eng), [&](const convolution_forward::primitive_desc& pd) {
        convolution_forward prim(pd);
        memory src = zero_memory(pd.src_desc()), w = zero_memory(pd.weights_desc()), dst = zero_memory(pd.dst_desc());
        std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, dst}};
        if (p[P_BIAS]) args.insert({DNNL_ARG_BIAS, zero_memory(pd.bias_desc())});
        return time_ms([&] { prim.execute(*g_strm, args); g_strm->wait(); }, 2);
      }, bf16 ? nullptr : "jit:avx512_core");
  e->fwd = convolution_forward(e->fwd_pd);
  if (bf16) {
    e->src_cvt = true;
    e->src_lp = memory(e->fwd_pd.src_desc(), *g_eng);
    e->src_r = reorder(memory(e->src_md, *g_eng, nullptr), e->src_lp);
  }
  if (mode == 2) {
    e->bf16_train = true;
    e->dd_lp_md = memory::desc({N, OC, OH, OW}, dt::bf16, tag::nhwc);
    e->dd_lp = memory(e->dd_lp_md, *g_eng);
    e->dd_r = reorder(memory(e->dst_md, *g_eng, nullptr), e->dd_lp);
  }
  if (e->fwd_pd.weights_desc() != e->w_user_md) {
    e->fwd_w_reorder = true;
    e->fwd_w_mem = memory(e->fwd_pd.weights_desc(), *g_eng);
    e->fwd_w_r = reorder(memory(e->w_user_md, *g_eng, nullptr), e->fwd_w_mem);
  }
  auto& ref = *e;
  g_conv.emplace(std::move(key), std::move(e));
  return ref;
}

void ensure_bwd_data(ConvEntry& e, const int32_t* p) {
  if (e.bwd_d_ready) return;
  memory::desc w_any({p[P_OC], p[P_C], p[P_KH], p[P_KW]}, e.bf16_train ? dt::bf16 : dt::f32, tag::any);
  convolution_backward_data::desc d(algorithm::convolution_direct, e.src_md, w_any,
                                    e.bf16_train ? e.dd_lp_md : e.dst_md, e.strides, e.dilates, e.pad_l,
                                    e.pad_r);
  e.bwd_d_pd = pick_fastest<convolution_backward_data::primitive_desc>(
      convolution_backward_data::primitive_desc(d, *g_eng, e.fwd_pd),
      [&](const convolution_backward_data::primitive_desc& pd) {
        convolution_backward_data prim(pd);
        memory dd = zero_memory(pd.diff_dst_desc()), w = zero_memory(pd.weights_desc()),
               ds = zero_memory(pd.diff_src_desc());
        return time_ms([&] {
          prim.execute(*g_strm, {{DNNL_ARG_DIFF_DST, dd}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DIFF_SRC, ds}});
          g_strm->wait();
        }, 2);
      });
  e.bwd_d = convolution_backward_data(e.bwd_d_pd);
  if (e.bwd_d_pd.weights_desc() != e.w_user_md) {
    e.bwd_d_w_reorder = true;
    e.bwd_d_w_mem = memory(e.bwd_d_pd.weights_desc(), *g_eng);
    e.bwd_d_w_r = reorder(memory(e.w_user_md, *g_eng, nullptr), e.bwd_d_w_mem);
  }
  e.bwd_d_ready = true;
}

void create_bwd_weights(ConvEntry& e, const int32_t* p);

void ensure_bwd_weights(ConvEntry& e, const int32_t* p) {
  if (e.bwd_w_ready) return;
  // created (and run, nl_conv_bwd_weights) with reduction_parts() threads: its minibatch reduction
  // is split among the threads it is created with
  with_threads(reduction_parts(), [&] { create_bwd_weights(e, p); });
}

/**
 * oneDNN 2.6's 1x1 backward-weights convolutions (jit_1x1:avx2 / jit_1x1:avx512_core) with a stride
 * above 1 copy the strided input into a per-thread workspace ("rtus") that is too small for an NHWC
 * input with fewer channels than their channel block (8 / 16): with 2 threads they gave wrong
 * weight gradients from run to run here (AMD EPYC, AVX2: |error| up to 7 with 4 or 5 channels,
 * and heap corruption; 12, 13, 20 and 24 channels were exact), uxlfoundation/oneDNN issue #6035.
 * Those shapes (under 16 channels, either block) take the next implementation (jit:avx2 /
 * jit:avx512_core, exact here at 1-3 threads). Every other shape keeps its implementation, so
 * only results that could be wrong change (this project's models at width 16 are unaffected).
 */
bool rtus_bwd_weights_bug(const int32_t* p) {
  return p[P_KH] == 1 && p[P_KW] == 1 && (p[P_SH] > 1 || p[P_SW] > 1) && p[P_C] < 16;
}

void create_bwd_weights(ConvEntry& e, const int32_t* p) {
  memory::desc w_any({p[P_OC], p[P_C], p[P_KH], p[P_KW]}, dt::f32, tag::any);
  convolution_backward_weights::desc d(algorithm::convolution_direct,
                                       e.bf16_train ? e.src_lp.get_desc() : e.src_md, w_any,
                                       e.bf16_train ? e.dd_lp_md : e.dst_md, e.strides, e.dilates, e.pad_l,
                                       e.pad_r);
  e.bwd_w_pd = pick_fastest<convolution_backward_weights::primitive_desc>(
      convolution_backward_weights::primitive_desc(d, *g_eng, e.fwd_pd),
      [&](const convolution_backward_weights::primitive_desc& pd) {
        convolution_backward_weights prim(pd);
        memory src = zero_memory(pd.src_desc()), dd = zero_memory(pd.diff_dst_desc()),
               dw = zero_memory(pd.diff_weights_desc());
        return time_ms([&] {
          prim.execute(*g_strm, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_DST, dd}, {DNNL_ARG_DIFF_WEIGHTS, dw}});
          g_strm->wait();
        }, 2);
      }, nullptr, rtus_bwd_weights_bug(p) ? "jit_1x1" : nullptr);
  e.bwd_w = convolution_backward_weights(e.bwd_w_pd);
  if (e.bwd_w_pd.diff_weights_desc() != e.w_user_md) {
    e.bwd_w_reorder = true;
    e.bwd_w_mem = memory(e.bwd_w_pd.diff_weights_desc(), *g_eng);
    e.bwd_w_r = reorder(e.bwd_w_mem, memory(e.w_user_md, *g_eng, nullptr));
  }
  e.bwd_w_ready = true;
}

// ------------------------------------------------------------------- matmul
// Batched C[b] = op(A[b]) op(B[b]); A is [B,M,K] (or [B,K,M] when transposed).
enum { M_B, M_M, M_N, M_K, M_TA, M_TB, M_BIAS, M_ACT, M_COUNT };
struct MatmulEntry {
  memory::desc a_md, b_md, c_md, bias_md;
  matmul::primitive_desc pd;
  matmul prim;
  // by rows (mm_by_rows): pd/prim compute one row [1, K] x [K, N]; a_md/c_md stay the whole [M, K] / [M, N]
  bool by_rows = false;
  memory::desc a_row_md, c_row_md;
};
std::map<std::vector<int>, std::unique_ptr<MatmulEntry>> g_mm;

/**
 * Whether plain (untransposed, unbatched) matmuls run one row at a time on one thread. On CPUs
 * without AVX-512, oneDNN 2.6 runs f32 matmuls as gemm:jit, whose results for a row depend on
 * how many rows there are and on the thread count (an AMD EPYC with AVX2: 9-26 of a 7x10 result's
 * values changed with M, at K = 32, 64 and 512), so an image's logits would depend on its batch
 * and on the native plans' chunks. One row on one thread is the same computation whatever the
 * batch. On AVX-512 (brg:avx512_core) rows were already independent of the batch (the same tests
 * pass there), and nothing changes.
 */
bool mm_by_rows() {
  static const bool v = [] {
    const cpu_isa isa = get_effective_cpu_isa();
    return !(isa == cpu_isa::avx512_core || isa == cpu_isa::avx512_core_vnni ||
             isa == cpu_isa::avx512_core_bf16 || isa == cpu_isa::avx512_core_amx);
  }();
  return v;
}

/** Runs matmul entry e on a, b, bias (may be null), c; scratch: the caller's scratchpad or null. */
void mm_execute(const MatmulEntry& e, stream& strm, const float* a, const float* b, const float* bias, float* c,
                void* scratch) {
  std::unordered_map<int, memory> args{{DNNL_ARG_WEIGHTS, memory(e.b_md, *g_eng, (void*)b)}};
  if (bias) args.insert({DNNL_ARG_BIAS, memory(e.bias_md, *g_eng, (void*)bias)});
  if (scratch) args.insert({DNNL_ARG_SCRATCHPAD, memory(e.pd.scratchpad_desc(), *g_eng, scratch)});
  if (!e.by_rows) {
    args[DNNL_ARG_SRC] = memory(e.a_md, *g_eng, (void*)a);
    args[DNNL_ARG_DST] = memory(e.c_md, *g_eng, c);
    e.prim.execute(strm, args);
    strm.wait();
    return;
  }
  const memory::dim M = e.a_md.dims()[1], K = e.a_md.dims()[2], N = e.c_md.dims()[2];
  with_threads(1, [&] {
    for (memory::dim m = 0; m < M; ++m) {
      args[DNNL_ARG_SRC] = memory(e.a_row_md, *g_eng, (void*)(a + m * K));
      args[DNNL_ARG_DST] = memory(e.c_row_md, *g_eng, c + m * N);
      e.prim.execute(strm, args);
      strm.wait();
    }
  });
}

/**
 * The matmul for parameter block p, cached. `user_scratchpad`: the caller passes the scratchpad
 * (DNNL_ARG_SCRATCHPAD), so several threads can run the primitive at once (native plans).
 */
MatmulEntry& get_mm(const int32_t* p, bool user_scratchpad = false) {
  std::vector<int> key(p, p + M_COUNT);
  key.push_back(user_scratchpad);
  auto it = g_mm.find(key);
  if (it != g_mm.end()) return *it->second;
  auto e = std::make_unique<MatmulEntry>();
  const memory::dim B = p[M_B], M = p[M_M], N = p[M_N], K = p[M_K];
  e->a_md = p[M_TA] ? memory::desc({B, M, K}, dt::f32, memory::dims{M * K, 1, M})
                    : memory::desc({B, M, K}, dt::f32, memory::dims{M * K, K, 1});
  e->b_md = p[M_TB] ? memory::desc({B, K, N}, dt::f32, memory::dims{K * N, 1, K})
                    : memory::desc({B, K, N}, dt::f32, memory::dims{K * N, N, 1});
  e->c_md = memory::desc({B, M, N}, dt::f32, memory::dims{M * N, N, 1});
  e->bias_md = memory::desc({1, 1, N}, dt::f32, memory::dims{N, N, 1});
  primitive_attr attr;
  if (p[M_ACT] == 1) {
    post_ops po;
    po.append_eltwise(1.f, algorithm::eltwise_relu, 0.f, 0.f);
    attr.set_post_ops(po);
  }
  if (user_scratchpad) attr.set_scratchpad_mode(scratchpad_mode::user);
  e->by_rows = mm_by_rows() && B == 1 && !p[M_TA];
  if (e->by_rows) {
    e->a_row_md = memory::desc({1, 1, K}, dt::f32, memory::dims{K, K, 1});
    e->c_row_md = memory::desc({1, 1, N}, dt::f32, memory::dims{N, N, 1});
  }
  const memory::desc& a_md = e->by_rows ? e->a_row_md : e->a_md;
  const memory::desc& c_md = e->by_rows ? e->c_row_md : e->c_md;
  auto d = p[M_BIAS] ? matmul::desc(a_md, e->b_md, e->bias_md, c_md) : matmul::desc(a_md, e->b_md, c_md);
  e->pd = matmul::primitive_desc(d, attr, *g_eng);
  e->prim = matmul(e->pd);
  auto& ref = *e;
  g_mm.emplace(std::move(key), std::move(e));
  return ref;
}

// ------------------------------------------------------------------ pooling
enum { Q_N, Q_H, Q_W, Q_C, Q_KH, Q_KW, Q_OH, Q_OW, Q_SH, Q_SW, Q_PT, Q_PL, Q_PB, Q_PR, Q_MAX, Q_COUNT };
struct PoolEntry {
  memory::desc src_md, dst_md;
  pooling_forward::primitive_desc fwd_pd;  // forward_training (the backward's hint)
  pooling_forward fwd;
  pooling_forward::primitive_desc inf_pd;
  pooling_forward inf;
  bool bwd_ready = false;
  pooling_backward::primitive_desc bwd_pd;
  pooling_backward bwd;
};
std::map<std::vector<int>, std::unique_ptr<PoolEntry>> g_pool;

PoolEntry& get_pool(const int32_t* p) {
  std::vector<int> key(p, p + Q_COUNT);
  auto it = g_pool.find(key);
  if (it != g_pool.end()) return *it->second;
  auto e = std::make_unique<PoolEntry>();
  e->src_md = memory::desc({p[Q_N], p[Q_C], p[Q_H], p[Q_W]}, dt::f32, tag::nhwc);
  e->dst_md = memory::desc({p[Q_N], p[Q_C], p[Q_OH], p[Q_OW]}, dt::f32, tag::nhwc);
  // tfjs AvgPool divides by the number of in-bounds elements (exclude padding).
  // Average pooling only: max pooling is hand-written (tfjs' NaN semantics), see nl_pool_fwd.
  algorithm alg = algorithm::pooling_avg_exclude_padding;
  memory::dims s{p[Q_SH], p[Q_SW]}, k{p[Q_KH], p[Q_KW]}, pl{p[Q_PT], p[Q_PL]}, pr{p[Q_PB], p[Q_PR]};
  e->fwd_pd = pooling_forward::primitive_desc(
      pooling_forward::desc(prop_kind::forward_training, alg, e->src_md, e->dst_md, s, k, pl, pr), *g_eng);
  e->fwd = pooling_forward(e->fwd_pd);
  e->inf_pd = pooling_forward::primitive_desc(
      pooling_forward::desc(prop_kind::forward_inference, alg, e->src_md, e->dst_md, s, k, pl, pr), *g_eng);
  e->inf = pooling_forward(e->inf_pd);
  e->bwd_pd = pooling_backward::primitive_desc(
      pooling_backward::desc(alg, e->src_md, e->dst_md, s, k, pl, pr), *g_eng, e->fwd_pd);
  e->bwd = pooling_backward(e->bwd_pd);
  auto& ref = *e;
  g_pool.emplace(std::move(key), std::move(e));
  return ref;
}

// ------------------------------------------------------- non-finite helpers
const int64_t kPar = 1 << 15;  // below this many elements, stay on one thread
constexpr uint32_t kExpMask = 0x7f800000u;  // a float is NaN or +-Inf iff all its exponent bits are set

inline uint32_t exp_bits(float v) {
  uint32_t b;
  std::memcpy(&b, &v, sizeof b);
  return b & kExpMask;
}

/** True when no element of p[0..n) is NaN or +-Inf (one vectorised read pass). */
bool all_finite(const float* p, int64_t n) {
  if (!p) return true;
  uint32_t m = 0;
#pragma omp parallel for schedule(static) reduction(max : m) if (n > kPar)
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t e = exp_bits(p[i]);
    m = m > e ? m : e;
  }
  return m != kExpMask;
}

// bf16 <-> f32 (the native plans keep activations in bf16)
inline float bf16_to_f32(uint16_t h) {
  const uint32_t b = (uint32_t)h << 16;
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}
/** Round to nearest even, as oneDNN's f32 -> bf16 conversion; NaN stays (a quiet) NaN. */
inline uint16_t f32_to_bf16(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  if ((b & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((b >> 16) | 0x40u);
  b += 0x7fffu + ((b >> 16) & 1u);
  return (uint16_t)(b >> 16);
}
inline float ld(const float* p, int64_t i) { return p[i]; }
inline float ld(const uint16_t* p, int64_t i) { return bf16_to_f32(p[i]); }
inline void st(float* p, int64_t i, float v) { p[i] = v; }
inline void st(uint16_t* p, int64_t i, float v) { p[i] = f32_to_bf16(v); }

/** Mean over the spatial axes of NHWC x (f32 or bf16): y[n, c] = mean_hw x[n, h, w, c], double accumulation. */
template <typename T>
void spatial_mean(const T* x, float* y, int64_t N, int64_t HW, int64_t C) {
#pragma omp parallel for schedule(static) if (N * HW * C > kPar)
  for (int64_t n = 0; n < N; ++n) {
    std::vector<double> acc(C, 0.0);
    const T* xn = x + n * HW * C;
    for (int64_t p = 0; p < HW; ++p)
      for (int64_t c = 0; c < C; ++c) acc[c] += ld(xn, p * C + c);
    for (int64_t c = 0; c < C; ++c) y[n * C + c] = (float)(acc[c] / (double)HW);
  }
}

/** tfjs' relu (Math.max(0, x)): NaN stays NaN, -0 and -Inf give +0. */
inline float relu_nan(float v) { return v <= 0.f ? 0.f : v; }
/**
 * tfjs' relu gradient at one element, dy * step(x): dy where x > 0; +0 (NaN for a NaN/Inf dy,
 * Inf * 0) where x <= 0; NaN where x is NaN (step(NaN) = NaN). The same at x and at relu(x),
 * which is what lets a fused BN + ReLU take its mask from its output.
 */
inline float relu_grad_at(float g, float v) {
  const float z = g * 0.f + 0.f;  // +0, or NaN when dy is NaN/Inf
  return v > 0.f ? g : (v <= 0.f ? z : v);
}

void relu_nan_inplace(float* y, int64_t n) {
#pragma omp parallel for schedule(static) if (n > kPar)
  for (int64_t i = 0; i < n; ++i) y[i] = relu_nan(y[i]);
}

/**
 * max |p[i]| over p[0..n), or +Inf when an element is NaN or +-Inf (one read pass: the largest
 * absolute-value bit pattern; NaN's are above +Inf's). 0 for n == 0 or a null p.
 */
double max_abs_or_inf(const float* p, int64_t n) {
  if (!p) return 0;
  uint32_t m = 0;
#pragma omp parallel for schedule(static) reduction(max : m) if (n > kPar)
  for (int64_t i = 0; i < n; ++i) {
    uint32_t b;
    std::memcpy(&b, p + i, sizeof b);
    b &= 0x7fffffffu;
    m = m > b ? m : b;
  }
  if (m > 0x7f7fffffu) return std::numeric_limits<double>::infinity();
  float f;
  std::memcpy(&f, &m, sizeof f);
  return f;
}

/** The largest sum of |w| over one output: w is [rows, cols] (rows summed per column); +Inf if not finite. */
double max_col_abs_sum(const float* w, int64_t rows, int64_t cols) {
  std::vector<double> acc((size_t)cols, 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) acc[c] += std::fabs((double)w[r * cols + c]);
  double m = 0;
  for (double v : acc) {
    if (!(v <= std::numeric_limits<double>::max())) return std::numeric_limits<double>::infinity();
    m = v > m ? v : m;
  }
  return m;
}

/** The largest sum of |w| over one row of w [rows, cols]; +Inf if not finite. */
double max_row_abs_sum(const float* w, int64_t rows, int64_t cols) {
  double m = 0;
  for (int64_t r = 0; r < rows; ++r) {
    double acc = 0;
    for (int64_t c = 0; c < cols; ++c) acc += std::fabs((double)w[r * cols + c]);
    if (!(acc <= std::numeric_limits<double>::max())) return std::numeric_limits<double>::infinity();
    m = acc > m ? acc : m;
  }
  return m;
}

/**
 * Whether a fused ReLU post-op is exact here: oneDNN's maps a NaN pre-activation to 0 where tfjs keeps
 * NaN, and a NaN can arise from finite inputs when a partial sum overflows (+Inf + -Inf). With
 * |input| <= amax, sum_k |w_k| <= wsum per output, |bias| <= bmax and |summand| <= smax, every partial
 * sum stays below amax*wsum + bmax + smax; below 1e38 (FLT_MAX is 3.4e38: room for rounding, and for
 * bf16 rounding the weights up by 2^-8) nothing overflows. A non-finite input gives amax = +Inf.
 */
inline bool relu_postop_exact(double amax, double wsum, double bmax, double smax = 0) {
  return amax * wsum + bmax + smax < 1e38;
}

/** tfjs cpu FusedBatchNorm, in double as JavaScript computes it: offset + (x - mean) * scale / sqrt(var + eps). */
inline float bn_exact(float x, float mean, float var, const float* gamma, const float* beta, int c, double eps) {
  const double g = gamma ? (double)gamma[c] : 1.0;
  const double b = beta ? (double)beta[c] : 0.0;
  return (float)(b + ((double)x - (double)mean) * g / std::sqrt((double)var + eps));
}

// 16 floats as one GCC vector (one AVX-512 register, two AVX2 ones): the hand-
// written reductions below keep their accumulators in registers this way.
constexpr int kLanes = 16;
typedef float vf16 __attribute__((vector_size(64), aligned(4), may_alias));
typedef int32_t vi16 __attribute__((vector_size(64), aligned(4), may_alias));
#define NL_INLINE inline __attribute__((always_inline))
NL_INLINE vf16 vload(const float* p) { return *(const vf16*)p; }
NL_INLINE void vstore(float* p, vf16 v) { *(vf16*)p = v; }
NL_INLINE vi16 vexp(vf16 v) { return (vi16)v & (int32_t)kExpMask; }
NL_INLINE vf16 vsplat(float v) { return vf16{} + v; }

/**
 * y[r, c] = x[r, c] * sc[c] + sh[c] for rows [r0, r1) (the fast form), then, only
 * where that gave NaN or +-Inf (a non-finite x, mean, variance, gamma, beta, or a
 * variance at or below -eps), tfjs' exact formula instead. The check is a
 * register-held max over the exponent bits; for finite inputs the results are
 * the fast form's.
 */
// RELU: apply tfjs' Relu (relu_nan) to each output as it is written (the fused BN + ReLU of
// training); the non-finite check and the exact recomputation look at the value before the ReLU.
template <bool RELU>
void bn_apply_rows_t(const float* x, float* y, const float* sc, const float* sh, const float* mean,
                     const float* var, const float* gamma, const float* beta, int64_t r0, int64_t r1, int C,
                     double eps) {
  vi16 m = vi16{};
  int32_t mt = 0;
  const int full = C - C % kLanes;
  const vf16 zero = vf16{};
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * C;
    float* yr = y + r * C;
    for (int c = 0; c < full; c += kLanes) {
      const vf16 v = vload(xr + c) * vload(sc + c) + vload(sh + c);
      if constexpr (RELU) {
        vstore(yr + c, v <= zero ? zero : v);
      } else {
        vstore(yr + c, v);
      }
      const vi16 e = vexp(v);
      m = e > m ? e : m;
    }
    for (int c = full; c < C; ++c) {
      const float v = xr[c] * sc[c] + sh[c];
      yr[c] = RELU ? relu_nan(v) : v;
      const int32_t e = (int32_t)exp_bits(v);
      mt = e > mt ? e : mt;
    }
  }
  bool bad = mt == (int32_t)kExpMask;
  for (int k = 0; k < kLanes; ++k) bad |= m[k] == (int32_t)kExpMask;
  if (!bad) return;
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * C;
    float* yr = y + r * C;
    if constexpr (RELU) {
      // y holds relu(v): recompute v with the very expressions of the first pass (vector blocks,
      // then the scalar tail), so that exactly the elements the unfused kernel repairs are repaired
      for (int c = 0; c < full; c += kLanes) {
        const vf16 v = vload(xr + c) * vload(sc + c) + vload(sh + c);
        for (int k = 0; k < kLanes; ++k) {
          if (exp_bits(v[k]) == kExpMask) yr[c + k] = relu_nan(bn_exact(xr[c + k], mean[c + k], var[c + k], gamma, beta, c + k, eps));
        }
      }
      for (int c = full; c < C; ++c) {
        const float v = xr[c] * sc[c] + sh[c];
        if (exp_bits(v) == kExpMask) yr[c] = relu_nan(bn_exact(xr[c], mean[c], var[c], gamma, beta, c, eps));
      }
    } else {
      for (int c = 0; c < C; ++c) {
        if (exp_bits(yr[c]) == kExpMask) yr[c] = bn_exact(xr[c], mean[c], var[c], gamma, beta, c, eps);
      }
    }
  }
}

void bn_apply_rows(const float* x, float* y, const float* sc, const float* sh, const float* mean, const float* var,
                   const float* gamma, const float* beta, int64_t r0, int64_t r1, int C, double eps,
                   bool relu = false) {
  if (relu) {
    bn_apply_rows_t<true>(x, y, sc, sh, mean, var, gamma, beta, r0, r1, C, eps);
  } else {
    bn_apply_rows_t<false>(x, y, sc, sh, mean, var, gamma, beta, r0, r1, C, eps);
  }
}

/**
 * Max pooling of one output pixel, NB blocks of kLanes channels at once (the
 * accumulators stay in registers; each window element is read as one contiguous
 * run of NB * kLanes floats), with tfjs cpu's comparison: `v > acc` from
 * acc = -Inf (NaN never wins; only NaN/-Inf gives -Inf).
 */
template <int NB>
NL_INLINE void maxpool_blocks(const float* __restrict xn, float* __restrict yo, int64_t W, int64_t C, int64_t hs,
                              int64_t he, int64_t ws, int64_t we) {
  vf16 acc[NB];
#pragma GCC unroll 8
  for (int b = 0; b < NB; ++b) acc[b] = vsplat(-std::numeric_limits<float>::infinity());
  for (int64_t h = hs; h < he; ++h) {
    for (int64_t w = ws; w < we; ++w) {
      const float* xi = xn + (h * W + w) * C;
#pragma GCC unroll 8
      for (int b = 0; b < NB; ++b) {
        const vf16 v = vload(xi + b * kLanes);
        acc[b] = v > acc[b] ? v : acc[b];
      }
    }
  }
#pragma GCC unroll 8
  for (int b = 0; b < NB; ++b) vstore(yo + b * kLanes, acc[b]);
}

/** Max pooling of one output pixel over all C channels of the in-bounds window rows [hs, he) x cols [ws, we). */
NL_INLINE void maxpool_pixel(const float* __restrict xn, float* __restrict yo, int64_t W, int64_t C, int64_t hs,
                             int64_t he, int64_t ws, int64_t we) {
  int64_t c = 0;
  for (; c + 8 * kLanes <= C; c += 8 * kLanes) maxpool_blocks<8>(xn + c, yo + c, W, C, hs, he, ws, we);
  if (c + 4 * kLanes <= C) {
    maxpool_blocks<4>(xn + c, yo + c, W, C, hs, he, ws, we);
    c += 4 * kLanes;
  }
  if (c + 2 * kLanes <= C) {
    maxpool_blocks<2>(xn + c, yo + c, W, C, hs, he, ws, we);
    c += 2 * kLanes;
  }
  if (c + kLanes <= C) {
    maxpool_blocks<1>(xn + c, yo + c, W, C, hs, he, ws, we);
    c += kLanes;
  }
  for (; c < C; ++c) {
    float acc = -std::numeric_limits<float>::infinity();
    for (int64_t h = hs; h < he; ++h) {
      for (int64_t w = ws; w < we; ++w) {
        const float v = xn[(h * W + w) * C + c];
        acc = v > acc ? v : acc;
      }
    }
    yo[c] = acc;
  }
}

/**
 * Max pooling of NHWC x (f32, or bf16 for the native plans) with tfjs cpu's comparison (maxpool_pixel):
 * windows clipped to the image (padding never wins).
 */
template <typename T>
void maxpool_fwd(const T* x, T* y, int64_t N, int64_t H, int64_t W, int64_t C, int64_t KH, int64_t KW, int64_t SH,
                 int64_t SW, int64_t OH, int64_t OW, int64_t PT, int64_t PL) {
#pragma omp parallel for schedule(static) if (N * OH * OW * C * KH * KW > kPar)
  for (int64_t q = 0; q < N * OH; ++q) {
    const int64_t n = q / OH, oh = q % OH;
    const int64_t h0 = oh * SH - PT, hs = h0 < 0 ? 0 : h0, he = h0 + KH < H ? h0 + KH : H;
    const T* xn = x + n * H * W * C;
    for (int64_t ow = 0; ow < OW; ++ow) {
      const int64_t w0 = ow * SW - PL, ws = w0 < 0 ? 0 : w0, we = w0 + KW < W ? w0 + KW : W;
      T* yo = y + ((n * OH + oh) * OW + ow) * C;
      if constexpr (std::is_same<T, float>::value) {
        maxpool_pixel(xn, yo, W, C, hs, he, ws, we);
      } else {
        // bf16: the same comparison on the exact f32 values, one window element (C contiguous
        // channels) at a time so the loop vectorises; the max of bf16 values is stored exactly
        float acc[512];
        for (int64_t c0 = 0; c0 < C; c0 += 512) {
          const int64_t nc = std::min<int64_t>(512, C - c0);
          for (int64_t c = 0; c < nc; ++c) acc[c] = -std::numeric_limits<float>::infinity();
          for (int64_t h = hs; h < he; ++h)
            for (int64_t w = ws; w < we; ++w) {
              const T* xi = xn + (h * W + w) * C + c0;
              for (int64_t c = 0; c < nc; ++c) {
                const float v = ld(xi, c);
                acc[c] = v > acc[c] ? v : acc[c];
              }
            }
          for (int64_t c = 0; c < nc; ++c) st(yo + c0, c, acc[c]);
        }
      }
    }
  }
}

/**
 * Max pooling gradient of one window over all C channels: dy goes to the first
 * strict maximum in row-major order (tfjs cpu's maxPoolPositions), nowhere for a
 * window of only NaN/-Inf. `tiled`: this window alone covers its elements, so
 * all of them are written (0 + dy or 0); else dy is added at the maximum.
 */
NL_INLINE void maxpool_grad_window(const float* __restrict xn, const float* __restrict g, float* __restrict dxn,
                                   int64_t W, int64_t C, int64_t hs, int64_t he, int64_t ws, int64_t we, bool tiled) {
  const float ninf = -std::numeric_limits<float>::infinity();
  int64_t c = 0;
  for (; c + kLanes <= C; c += kLanes) {
    vf16 best = vsplat(ninf);
    vi16 arg = vi16{} - 1;
    for (int64_t h = hs; h < he; ++h) {
      for (int64_t w = ws; w < we; ++w) {
        const int32_t pos = (int32_t)(h * W + w);
        const vf16 v = vload(xn + (int64_t)pos * C + c);
        const vi16 gt = v > best;
        best = gt ? v : best;
        arg = gt ? vi16{} + pos : arg;
      }
    }
    const vf16 gv = vf16{} + vload(g + c);  // 0 + dy, as tfjs sums: -0 becomes +0
    if (tiled) {
      for (int64_t h = hs; h < he; ++h) {
        for (int64_t w = ws; w < we; ++w) {
          const int32_t pos = (int32_t)(h * W + w);
          vstore(dxn + (int64_t)pos * C + c, arg == pos ? gv : vf16{});
        }
      }
    } else {
      for (int k = 0; k < kLanes; ++k) {
        if (arg[k] >= 0) dxn[(int64_t)arg[k] * C + c + k] += g[c + k];
      }
    }
  }
  for (; c < C; ++c) {
    float best = ninf;
    int32_t arg = -1;
    for (int64_t h = hs; h < he; ++h) {
      for (int64_t w = ws; w < we; ++w) {
        const int32_t pos = (int32_t)(h * W + w);
        const float v = xn[(int64_t)pos * C + c];
        if (v > best) {
          best = v;
          arg = pos;
        }
      }
    }
    if (tiled) {
      for (int64_t h = hs; h < he; ++h) {
        for (int64_t w = ws; w < we; ++w) {
          const int32_t pos = (int32_t)(h * W + w);
          dxn[(int64_t)pos * C + c] = arg == pos ? 0.f + g[c] : 0.f;
        }
      }
    } else if (arg >= 0) {
      dxn[(int64_t)arg * C + c] += g[c];
    }
  }
}

/** Rows [r0, r1) of the nt-way static split of `rows` that thread t takes. */
inline void split_rows(int64_t rows, int nt, int t, int64_t& r0, int64_t& r1) {
  const int64_t q = rows / nt, rem = rows % nt;
  r0 = t * q + (t < rem ? t : rem);
  r1 = r0 + q + (t < rem ? 1 : 0);
}

/**
 * Column sums over rows in a fixed layout, so that the result does not depend on the thread count:
 * the rows are split into `reduction_parts()` parts (as OpenMP's static schedule splits them among
 * that many threads), each part into blocks of 256 rows from its start; `block(r0, r1, out)` writes a
 * block's float partial sums (C values); the blocks of a part are added in order into a double, and
 * the parts' doubles in order — exactly the arithmetic of the earlier per-thread loops run with
 * reduction_parts() threads, whatever the number of threads that computes the blocks.
 * `out` receives `nsums` double columns of C values each.
 */
template <typename Block>
void fixed_layout_sums(int64_t rows, int64_t C, int nsums, double* out, const Block& block) {
  const int parts = reduction_parts();
  std::vector<int64_t> b0, b1, part_of;
  for (int t = 0; t < parts; ++t) {
    int64_t r0, r1;
    split_rows(rows, parts, t, r0, r1);
    for (int64_t r = r0; r < r1; r += 256) {
      b0.push_back(r);
      b1.push_back(r + 256 < r1 ? r + 256 : r1);
      part_of.push_back(t);
    }
  }
  const int64_t nb = (int64_t)b0.size(), width = (int64_t)nsums * C;
  std::vector<float> partial((size_t)(nb * width));
#pragma omp parallel for schedule(static) if (rows * C > kPar)
  for (int64_t k = 0; k < nb; ++k) block(b0[k], b1[k], &partial[(size_t)(k * width)]);
  std::vector<double> acc((size_t)(parts * width), 0.0);
  for (int64_t k = 0; k < nb; ++k) {
    double* a = &acc[(size_t)(part_of[k] * width)];
    const float* p = &partial[(size_t)(k * width)];
    for (int64_t i = 0; i < width; ++i) a[i] += p[i];
  }
  for (int64_t i = 0; i < width; ++i) {
    double t1 = 0;
    for (int t = 0; t < parts; ++t) t1 += acc[(size_t)(t * width + i)];
    out[i] = t1;
  }
}

}  // namespace

extern "C" {

/** Sets the OpenMP thread count (for the calling thread, i.e. Deno's main thread) and returns it. */
int nl_init(int threads) {
  if (threads > 0) omp_set_num_threads(threads);
  return guard([] {}) == 0 ? omp_get_max_threads() : -1;
}

const char* nl_last_error() { return g_err.c_str(); }

/** "oneDNN 2.6.3 isa=... omp_threads=N". */
const char* nl_info() {
  const version_t* v = dnnl::version();
  const char* isa = "unknown";
  switch (get_effective_cpu_isa()) {
    case cpu_isa::avx512_core_amx: isa = "avx512_core_amx"; break;
    case cpu_isa::avx512_core_bf16: isa = "avx512_core_bf16"; break;
    case cpu_isa::avx512_core_vnni: isa = "avx512_core_vnni"; break;
    case cpu_isa::avx512_core: isa = "avx512_core"; break;
    case cpu_isa::avx2_vnni: isa = "avx2_vnni"; break;
    case cpu_isa::avx2: isa = "avx2"; break;
    case cpu_isa::avx: isa = "avx"; break;
    case cpu_isa::sse41: isa = "sse41"; break;
    default: break;
  }
  g_info = "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
           std::to_string(v->patch) + " isa=" + isa + " omp_threads=" + std::to_string(omp_get_max_threads()) +
           " reduction_threads=" + std::to_string(reduction_parts());
  return g_info.c_str();
}

/**
 * Convolution precision: 0 = f32 (the default), 1 = forward convolutions in bf16 (inference),
 * 2 = forward and backward convolutions in bf16 (mixed-precision training; f32 accumulation,
 * f32 outputs and gradients). Returns the mode now in effect: 0 also when 1 or 2 was asked on a
 * CPU without bf16 dot products (avx512_core_bf16 / AMX).
 */
int nl_set_conv_bf16(int on) {
  g_conv_bf16 = (on == 1 || on == 2) && cpu_has_bf16() ? on : 0;
  return g_conv_bf16;
}

/** Name of the oneDNN implementation chosen for a convolution forward (diagnostics). */
const char* nl_conv_impl(const int32_t* p) {
  int rc = guard([&] { g_info = get_conv(p, g_conv_bf16).fwd_pd.impl_info_str(); });
  return rc == 0 ? g_info.c_str() : "";
}

int nl_conv_fwd(const float* x, const float* w, const float* bias, float* y, const int32_t* p) {
  return guard([&] {
    // oneDNN's relu post-op turns a NaN pre-activation into 0; tfjs keeps NaN. Unless the inputs are
    // finite and bounded so that no partial sum can overflow (relu_postop_exact), run the convolution
    // without the post-op, then tfjs' relu.
    std::vector<int32_t> q;
    if (p[P_ACT] == 1 &&
        !relu_postop_exact(max_abs_or_inf(x, (int64_t)p[P_N] * p[P_H] * p[P_W] * p[P_C]),
                           max_col_abs_sum(w, (int64_t)p[P_KH] * p[P_KW] * p[P_C], p[P_OC]),
                           p[P_BIAS] ? max_abs_or_inf(bias, p[P_OC]) : 0)) {
      q.assign(p, p + P_COUNT);
      q[P_ACT] = 0;
      p = q.data();
    }
    ConvEntry& e = get_conv(p, g_conv_bf16);
    memory src(e.src_md, *g_eng, (void*)x), dst(e.dst_md, *g_eng, y);
    if (e.src_cvt) {
      e.src_r.execute(*g_strm, src, e.src_lp);
      src = e.src_lp;
    }
    memory wu(e.w_user_md, *g_eng, (void*)w);
    memory wm = wu;
    if (e.fwd_w_reorder) {
      e.fwd_w_r.execute(*g_strm, wu, e.fwd_w_mem);
      wm = e.fwd_w_mem;
    }
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DST, dst}};
    if (p[P_BIAS]) args.insert({DNNL_ARG_BIAS, memory(e.bias_md, *g_eng, (void*)bias)});
    e.fwd.execute(*g_strm, args);
    g_strm->wait();
    if (!q.empty()) relu_nan_inplace(y, (int64_t)p[P_N] * p[P_OH] * p[P_OW] * p[P_OC]);
  });
}

int nl_conv_bwd_data(const float* dy, const float* w, float* dx, const int32_t* p) {
  return guard([&] {
    ConvEntry& e = get_conv(p, g_conv_bf16 == 2 ? 2 : 0);
    ensure_bwd_data(e, p);
    memory ddst(e.dst_md, *g_eng, (void*)dy), dsrc(e.src_md, *g_eng, dx);
    if (e.bf16_train) {
      e.dd_r.execute(*g_strm, ddst, e.dd_lp);
      ddst = e.dd_lp;
    }
    memory wu(e.w_user_md, *g_eng, (void*)w);
    memory wm = wu;
    if (e.bwd_d_w_reorder) {
      e.bwd_d_w_r.execute(*g_strm, wu, e.bwd_d_w_mem);
      wm = e.bwd_d_w_mem;
    }
    e.bwd_d.execute(*g_strm, {{DNNL_ARG_DIFF_DST, ddst}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DIFF_SRC, dsrc}});
    g_strm->wait();
  });
}

int nl_conv_bwd_weights(const float* x, const float* dy, float* dw, const int32_t* p) {
  return guard([&] {
    ConvEntry& e = get_conv(p, g_conv_bf16 == 2 ? 2 : 0);
    ensure_bwd_weights(e, p);
    memory src(e.src_md, *g_eng, (void*)x), ddst(e.dst_md, *g_eng, (void*)dy);
    if (e.bf16_train) {
      e.src_r.execute(*g_strm, src, e.src_lp);
      src = e.src_lp;
      e.dd_r.execute(*g_strm, ddst, e.dd_lp);
      ddst = e.dd_lp;
    }
    memory wu(e.w_user_md, *g_eng, dw);
    memory wm = e.bwd_w_reorder ? e.bwd_w_mem : wu;
    with_threads(reduction_parts(), [&] {
      e.bwd_w.execute(*g_strm, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_DST, ddst}, {DNNL_ARG_DIFF_WEIGHTS, wm}});
      g_strm->wait();
    });
    if (e.bwd_w_reorder) e.bwd_w_r.execute(*g_strm, e.bwd_w_mem, wu);
    g_strm->wait();
  });
}

int nl_matmul(const float* a, const float* b, const float* bias, float* c, const int32_t* p) {
  return guard([&] {
    // as in nl_conv_fwd: no relu post-op (it maps NaN to 0) unless no partial sum can overflow
    std::vector<int32_t> q;
    const int64_t nab = (int64_t)p[M_B] * p[M_K];
    auto wsum = [&] {
      return p[M_TB] ? max_row_abs_sum(b, (int64_t)p[M_B] * p[M_N], p[M_K]) : max_col_abs_sum(b, nab, p[M_N]);
    };
    if (p[M_ACT] == 1 &&
        !relu_postop_exact(max_abs_or_inf(a, nab * p[M_M]), wsum(), p[M_BIAS] ? max_abs_or_inf(bias, p[M_N]) : 0)) {
      q.assign(p, p + M_COUNT);
      q[M_ACT] = 0;
      p = q.data();
    }
    MatmulEntry& e = get_mm(p);
    mm_execute(e, *g_strm, a, b, p[M_BIAS] ? bias : nullptr, c, nullptr);
    if (!q.empty()) relu_nan_inplace(c, (int64_t)p[M_B] * p[M_M] * p[M_N]);
  });
}

/**
 * Pooling forward. Average pooling: oneDNN (excluding padding, as tfjs; NaN/Inf
 * propagate through its sums as in tfjs). Max pooling: hand-written with tfjs
 * cpu's semantics, which oneDNN does not share for non-finite inputs (a window of
 * -Inf gives -FLT_MAX there): see maxpool_pixel.
 */
int nl_pool_fwd(const float* x, float* y, const int32_t* p) {
  return guard([&] {
    if (!p[Q_MAX]) {
      PoolEntry& e = get_pool(p);
      e.inf.execute(*g_strm, {{DNNL_ARG_SRC, memory(e.src_md, *g_eng, (void*)x)},
                              {DNNL_ARG_DST, memory(e.dst_md, *g_eng, y)}});
      g_strm->wait();
      return;
    }
    maxpool_fwd(x, y, p[Q_N], p[Q_H], p[Q_W], p[Q_C], p[Q_KH], p[Q_KW], p[Q_SH], p[Q_SW], p[Q_OH], p[Q_OW], p[Q_PT],
                p[Q_PL]);
  });
}

/**
 * Pooling gradient. Average pooling: oneDNN (the caller sends only unpadded
 * windows, where oneDNN and tfjs agree). Max pooling: tfjs cpu's semantics, by
 * hand (maxpool_grad_window); overlapping windows add up.
 */
int nl_pool_bwd(const float* x, const float* dy, float* dx, const int32_t* p) {
  return guard([&] {
    if (!p[Q_MAX]) {
      PoolEntry& e = get_pool(p);
      e.bwd.execute(*g_strm, {{DNNL_ARG_DIFF_DST, memory(e.dst_md, *g_eng, (void*)dy)},
                              {DNNL_ARG_DIFF_SRC, memory(e.src_md, *g_eng, dx)}});
      g_strm->wait();
      return;
    }
    const int64_t N = p[Q_N], H = p[Q_H], W = p[Q_W], C = p[Q_C], KH = p[Q_KH], KW = p[Q_KW], OH = p[Q_OH],
                  OW = p[Q_OW], SH = p[Q_SH], SW = p[Q_SW], PT = p[Q_PT], PL = p[Q_PL];
    // Windows that tile the image exactly (no overlap, every element in one window,
    // e.g. 2x2 stride 2 on an even size) write dx directly; otherwise dx is zeroed
    // and each window adds its dy. One image per iteration: images never overlap.
    const bool tiled = KH == SH && KW == SW && PT == 0 && PL == 0 && OH * SH == H && OW * SW == W;
#pragma omp parallel for schedule(static) if (N * H * W * C > kPar)
    for (int64_t n = 0; n < N; ++n) {
      float* dxn = dx + n * H * W * C;
      const float* xn = x + n * H * W * C;
      if (!tiled) std::memset(dxn, 0, sizeof(float) * H * W * C);
      for (int64_t oh = 0; oh < OH; ++oh) {
        const int64_t h0 = oh * SH - PT, hs = h0 < 0 ? 0 : h0, he = h0 + KH < H ? h0 + KH : H;
        for (int64_t ow = 0; ow < OW; ++ow) {
          const int64_t w0 = ow * SW - PL, ws = w0 < 0 ? 0 : w0, we = w0 + KW < W ? w0 + KW : W;
          maxpool_grad_window(xn, dy + ((n * OH + oh) * OW + ow) * C, dxn, W, C, hs, he, ws, we, tiled);
        }
      }
    }
  });
}

// ------------------------------------------------------------- batch norm
// x, y: [rows, C] (NHWC flattened). Training forward: batch mean and biased
// variance (tf.moments semantics), y = (x - mean) * gamma / sqrt(var + eps) + beta.
// Float partial sums per 256-row block, double across blocks, in a layout that does
// not depend on the thread count (fixed_layout_sums).
// relu != 0: y = relu(BN(x)) in the same pass (tfjs' Relu after the layer, bitwise).
int nl_bn_train_fwd(const float* x, const float* gamma, const float* beta, float* y, float* mean, float* var,
                    int64_t rows, int32_t C, double eps, int32_t relu) {
  return guard([&] {
    const int nt = omp_get_max_threads();
    std::vector<float> shift0(C);
    // shift by the first row's values to keep the single-pass variance accurate
    // (0 where that value is NaN/Inf: a shift by Inf would turn an Inf mean into NaN)
    for (int c = 0; c < C; ++c) shift0[c] = rows > 0 && exp_bits(x[c]) != kExpMask ? x[c] : 0.f;
    // sum and sum of squares: float partials per 256-row block, double across blocks (fixed layout)
    std::vector<double> sums((size_t)2 * C);
    fixed_layout_sums(rows, C, 2, sums.data(), [&](int64_t r0, int64_t r1, float* out) {
      float* a1 = out;
      float* a2 = out + C;
      for (int c = 0; c < C; ++c) a1[c] = a2[c] = 0.f;
      for (int64_t r = r0; r < r1; ++r) {
        const float* xr = x + r * C;
        for (int c = 0; c < C; ++c) {
          float v = xr[c] - shift0[c];
          a1[c] += v;
          a2[c] += v * v;
        }
      }
    });
    std::vector<float> sc(C), sh(C);
    for (int c = 0; c < C; ++c) {
      const double t1 = sums[c], t2 = sums[C + c];
      double m = t1 / (double)rows;
      double v = t2 / (double)rows - m * m;
      if (v < 0) v = 0;
      mean[c] = (float)(m + shift0[c]);
      var[c] = (float)v;
      double inv = 1.0 / std::sqrt(v + (double)(float)eps);
      double g = gamma ? gamma[c] : 1.0;
      sc[c] = (float)(g * inv);
      sh[c] = (float)((beta ? beta[c] : 0.0) - (double)mean[c] * g * inv);
    }
    // y as tf.batchNorm(x, mean, var, beta, gamma) computes it from the float batch statistics
#pragma omp parallel num_threads(nt)
    {
      int64_t r0, r1;
      split_rows(rows, omp_get_num_threads(), omp_get_thread_num(), r0, r1);
      bn_apply_rows(x, y, sc.data(), sh.data(), mean, var, gamma, beta, r0, r1, C, eps, relu != 0);
    }
  });
}

// Backward of the training forward above, gradients flowing through the batch
// statistics: with xhat = (x-mean)*inv, dgamma = sum(dy*xhat), dbeta = sum(dy),
// dx = gamma*inv/M * (M*dy - dbeta - xhat*dgamma).
// y != null: the forward fused a ReLU (y = its output), and dy is first taken through
// tfjs' relu gradient (relu_grad_at, the same values nl_relu_grad writes).
int nl_bn_train_bwd(const float* dy, const float* x, const float* mean, const float* var, const float* gamma,
                    const float* y, float* dx, float* dgamma, float* dbeta, int64_t rows, int32_t C, double eps) {
  // one body, compiled with and without the ReLU mask (RELU is a compile-time constant)
  auto body = [&](auto relu_tag) {
    constexpr bool RELU = decltype(relu_tag)::value;
    const int nt = omp_get_max_threads();
    std::vector<float> inv(C);
    for (int c = 0; c < C; ++c) inv[c] = (float)(1.0 / std::sqrt((double)var[c] + (double)(float)eps));
    // sum(dy) and sum(dy * (x - mean)) in the fixed layout (fixed_layout_sums)
    std::vector<double> sums((size_t)2 * C);
    fixed_layout_sums(rows, C, 2, sums.data(), [&](int64_t r0, int64_t r1, float* out) {
      float* a1 = out;
      float* a2 = out + C;
      for (int c = 0; c < C; ++c) a1[c] = a2[c] = 0.f;
      for (int64_t r = r0; r < r1; ++r) {
        const float* xr = x + r * C;
        const float* gr = dy + r * C;
        const float* yr = RELU ? y + r * C : nullptr;
        for (int c = 0; c < C; ++c) {
          const float g = RELU ? relu_grad_at(gr[c], yr[c]) : gr[c];
          a1[c] += g;
          a2[c] += g * (xr[c] - mean[c]);
        }
      }
    });
    std::vector<float> k1(C), k2(C), k3(C);
    // A channel whose dy, statistics or gamma hold NaN/Inf: tfjs' composed gradient
    // (through tf.moments) spreads the non-finite sums to every element as NaN.
    const float qnan = std::numeric_limits<float>::quiet_NaN();
    for (int c = 0; c < C; ++c) {
      const double sdy = sums[c], sdyx = sums[C + c];
      double iv = inv[c];
      double g = gamma ? gamma[c] : 1.0;
      dbeta[c] = (float)sdy;
      dgamma[c] = (float)(sdyx * iv);
      // dx = g*iv*dy - g*iv/M*sdy - (x-mean) * g*iv^3/M*sdyx
      k1[c] = (float)(g * iv);
      k2[c] = (float)(g * iv * sdy / (double)rows);
      k3[c] = (float)(g * iv * iv * iv * sdyx / (double)rows);
      const bool finite = std::isfinite(sdy) && std::isfinite(sdyx) && std::isfinite(g * iv) &&
                          std::isfinite(mean[c]) && std::isfinite(k1[c]) && std::isfinite(k2[c]) &&
                          std::isfinite(k3[c]);
      if (!finite) k1[c] = k2[c] = k3[c] = qnan;  // makes the whole channel NaN below
    }
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t r = 0; r < rows; ++r) {
      const float* xr = x + r * C;
      const float* gr = dy + r * C;
      const float* yr = RELU ? y + r * C : nullptr;
      float* o = dx + r * C;
      for (int c = 0; c < C; ++c) {
        const float g = RELU ? relu_grad_at(gr[c], yr[c]) : gr[c];
        o[c] = k1[c] * g - k2[c] - (xr[c] - mean[c]) * k3[c];
      }
    }
  };
  return guard([&] {
    if (y) {
      body(std::true_type{});
    } else {
      body(std::false_type{});
    }
  });
}

// Inference batch norm (tfjs FusedBatchNorm semantics; gamma/beta optional),
// optional fused ReLU (NaN-keeping). eps is a double, as tfjs passes it.
int nl_bn_infer(const float* x, const float* mean, const float* var, const float* gamma, const float* beta,
                float* y, int64_t rows, int32_t C, double eps, int32_t relu) {
  return guard([&] {
    const float epsf = (float)eps;
    std::vector<float> sc(C), sh(C);
    for (int c = 0; c < C; ++c) {
      float inv = 1.f / std::sqrt(var[c] + epsf);
      float g = gamma ? gamma[c] : 1.f;
      sc[c] = g * inv;
      sh[c] = (beta ? beta[c] : 0.f) - mean[c] * g * inv;
    }
    const int nt = omp_get_max_threads();
#pragma omp parallel num_threads(nt)
    {
      int64_t r0, r1;
      split_rows(rows, omp_get_num_threads(), omp_get_thread_num(), r0, r1);
      bn_apply_rows(x, y, sc.data(), sh.data(), mean, var, gamma, beta, r0, r1, C, eps);
      if (relu) {
        float* yr = y + r0 * C;
        for (int64_t i = 0, n = (r1 - r0) * C; i < n; ++i) yr[i] = relu_nan(yr[i]);
      }
    }
  });
}

// ------------------------------------------------------------ element-wise

/** tfjs' Relu (Math.max(0, x)): NaN stays NaN; -0 and -Inf give +0. */
int nl_relu(const float* x, float* y, int64_t n) {
  return guard([&] {
#pragma omp parallel for schedule(static) if (n > kPar)
    for (int64_t i = 0; i < n; ++i) y[i] = relu_nan(x[i]);
  });
}

/**
 * tfjs' relu gradient dy * step(x): dy where x > 0 (TF: relu'(0) = 0); where x <= 0,
 * +0 for a finite dy and NaN for a NaN/Inf dy (Inf * 0); NaN where x is NaN
 * (tfjs' step(NaN) = NaN). Branch-free: the compiler uses vector blends.
 */
int nl_relu_grad(const float* dy, const float* x, float* dx, int64_t n) {
  return guard([&] {
#pragma omp parallel for schedule(static) if (n > kPar)
    for (int64_t i = 0; i < n; ++i) dx[i] = relu_grad_at(dy[i], x[i]);
  });
}

/**
 * Binary op on equal-length arrays, or b broadcast along the last axis (bn = its
 * length; 1 = scalar). op: 0 a + b, 1 a - b, 2 a * b, 3 b - a (a subtraction whose
 * first operand is the broadcast one). IEEE float arithmetic: NaN/Inf as in tfjs.
 */
int nl_binary(const float* a, const float* b, float* y, int64_t n, int64_t bn, int32_t op) {
  return guard([&] {
    if (bn == n) {
      if (op == 0) {
#pragma omp parallel for schedule(static) if (n > kPar)
        for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
      } else if (op == 1) {
#pragma omp parallel for schedule(static) if (n > kPar)
        for (int64_t i = 0; i < n; ++i) y[i] = a[i] - b[i];
      } else if (op == 3) {
#pragma omp parallel for schedule(static) if (n > kPar)
        for (int64_t i = 0; i < n; ++i) y[i] = b[i] - a[i];
      } else {
#pragma omp parallel for schedule(static) if (n > kPar)
        for (int64_t i = 0; i < n; ++i) y[i] = a[i] * b[i];
      }
    } else if (bn == 1) {
      const float bv = b[0];
      if (op == 0) {
#pragma omp parallel for schedule(static) if (n > kPar)
        for (int64_t i = 0; i < n; ++i) y[i] = a[i] + bv;
      } else if (op == 1) {
#pragma omp parallel for schedule(static) if (n > kPar)
        for (int64_t i = 0; i < n; ++i) y[i] = a[i] - bv;
      } else if (op == 3) {
#pragma omp parallel for schedule(static) if (n > kPar)
        for (int64_t i = 0; i < n; ++i) y[i] = bv - a[i];
      } else {
#pragma omp parallel for schedule(static) if (n > kPar)
        for (int64_t i = 0; i < n; ++i) y[i] = a[i] * bv;
      }
    } else {
      int64_t rows = n / bn;
#pragma omp parallel for schedule(static) if (n > kPar)
      for (int64_t r = 0; r < rows; ++r) {
        const float* ar = a + r * bn;
        float* yr = y + r * bn;
        if (op == 0) for (int64_t c = 0; c < bn; ++c) yr[c] = ar[c] + b[c];
        else if (op == 1) for (int64_t c = 0; c < bn; ++c) yr[c] = ar[c] - b[c];
        else if (op == 3) for (int64_t c = 0; c < bn; ++c) yr[c] = b[c] - ar[c];
        else for (int64_t c = 0; c < bn; ++c) yr[c] = ar[c] * b[c];
      }
    }
  });
}

/** Column sums of a [rows, C] matrix (e.g. the bias gradient over N,H,W), in the fixed layout (fixed_layout_sums). */
int nl_sum_rows(const float* x, float* y, int64_t rows, int64_t C) {
  return guard([&] {
    std::vector<double> sums((size_t)C);
    fixed_layout_sums(rows, C, 1, sums.data(), [&](int64_t r0, int64_t r1, float* a) {
      for (int64_t c = 0; c < C; ++c) a[c] = 0.f;
      for (int64_t r = r0; r < r1; ++r) {
        const float* xr = x + r * C;
        for (int64_t c = 0; c < C; ++c) a[c] += xr[c];
      }
    });
    for (int64_t c = 0; c < C; ++c) y[c] = (float)sums[c];
  });
}

}  // extern "C"

// ------------------------------------------------- data movement (rank <= 4)
// Hand-written: tfjs' cpu Slice/PadV2 walk element by element with index
// arithmetic (~100x slower); these copy contiguous innermost runs. Shapes are
// left-padded to rank 4 by the caller.
extern "C" {

/** y = x[b0:b0+y0, b1:b1+y1, b2:b2+y2, b3:b3+y3] with x of shape xs, y of shape ys. */
int nl_slice4(const float* x, float* y, const int32_t* xs, const int32_t* b, const int32_t* ys) {
  return guard([&] {
    const int64_t rows = (int64_t)ys[0] * ys[1] * ys[2];
    const int64_t n_elem = rows * ys[3];
#pragma omp parallel for schedule(static) if (n_elem > kPar)
    for (int64_t r = 0; r < rows; ++r) {
      int64_t i2 = r % ys[2], t = r / ys[2];
      int64_t i1 = t % ys[1], i0 = t / ys[1];
      const float* src = x + (((int64_t)(b[0] + i0) * xs[1] + (b[1] + i1)) * xs[2] + (b[2] + i2)) * xs[3] + b[3];
      std::memcpy(y + r * ys[3], src, sizeof(float) * ys[3]);
    }
  });
}

/** y (shape ys) = constant `value` with x (shape xs) placed at offset `before`. */
int nl_pad4(const float* x, float* y, const int32_t* xs, const int32_t* before, const int32_t* ys, float value) {
  return guard([&] {
    const int64_t rows = (int64_t)ys[0] * ys[1] * ys[2];
    const int64_t n_elem = rows * ys[3];
#pragma omp parallel for schedule(static) if (n_elem > kPar)
    for (int64_t r = 0; r < rows; ++r) {
      int64_t i2 = r % ys[2], t = r / ys[2];
      int64_t i1 = t % ys[1], i0 = t / ys[1];
      float* dst = y + r * ys[3];
      int64_t j0 = i0 - before[0], j1 = i1 - before[1], j2 = i2 - before[2];
      if (j0 < 0 || j0 >= xs[0] || j1 < 0 || j1 >= xs[1] || j2 < 0 || j2 >= xs[2]) {
        for (int c = 0; c < ys[3]; ++c) dst[c] = value;
        continue;
      }
      const float* src = x + ((j0 * xs[1] + j1) * xs[2] + j2) * xs[3];
      for (int c = 0; c < before[3]; ++c) dst[c] = value;
      std::memcpy(dst + before[3], src, sizeof(float) * xs[3]);
      for (int c = before[3] + xs[3]; c < ys[3]; ++c) dst[c] = value;
    }
  });
}

/** Mean over the spatial axes of NHWC x: y[n, c] = mean_hw x[n, h, w, c] (double accumulation). */
int nl_spatial_mean(const float* x, float* y, int64_t N, int64_t HW, int64_t C) {
  return guard([&] { spatial_mean(x, y, N, HW, C); });
}

/** Gradient of nl_spatial_mean: dx[n, h, w, c] = dy[n, c] / HW. */
int nl_spatial_mean_grad(const float* dy, float* dx, int64_t N, int64_t HW, int64_t C) {
  return guard([&] {
    const float inv = 1.f / (float)HW;
#pragma omp parallel for schedule(static) if (N * HW * C > kPar)
    for (int64_t n = 0; n < N; ++n) {
      float* o = dx + n * HW * C;
      const float* g = dy + n * C;
      for (int64_t p = 0; p < HW; ++p)
        for (int64_t c = 0; c < C; ++c) o[p * C + c] = g[c] * inv;
    }
  });
}


/**
 * The measured peak of the cores' vector units, in GFLOP/s over `threads` OpenMP threads (all
 * threads together; the best of 3 timed runs): kind 0 = fp32 FMA (_mm512_fmadd_ps, 32 flop per
 * instruction; _mm256_fmadd_ps, 16 flop, in a build without AVX-512F), kind 1 = bf16 dot products
 * (_mm512_dpbf16_ps, 64 flop per instruction: 32 bf16 pairs multiplied and added into 16 fp32
 * lanes). Each thread runs independent accumulator chains held in registers (16 with AVX-512, 12
 * with AVX2), enough to cover the instruction's latency times its throughput, so the loop is bound
 * by the FMA / dot-product units alone, never by memory; the iteration count is calibrated to about
 * 0.3 s per run. Each thread is timed by its own CPU time (CLOCK_THREAD_CPUTIME_ID) and the threads'
 * rates are added, so other processes time-sliced onto the same cores lower the result much less
 * than a wall-clock timing would (threads sharing a core's units, e.g. SMT siblings, still share
 * them). The accumulators are summed into a volatile so the loop cannot be optimised away.
 * This is the measured FMA / dot-product peak of the cores: AMX tiles, where the CPU has them, are
 * not measured (oneDNN may use them for bf16 convolutions, which can then exceed this "peak").
 * Returns -1 where the build has no such instructions (kind 1 without AVX-512 BF16; kind 0 without
 * AVX-512F or AVX2+FMA), for an unknown kind, or for threads < 1.
 */
double nl_peak_gflops(int kind, int threads) {
  if (threads < 1 || (kind != 0 && kind != 1)) return -1;
#if !defined(__AVX512BF16__)
  if (kind == 1) return -1;
#endif
#if !defined(__AVX512F__) && !(defined(__AVX2__) && defined(__FMA__))
  return -1;
#else
  static volatile float g_peak_seed = 1.0f;
  static volatile double g_peak_sink = 0.0;
  auto cpu_s = [] {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
  };
  // one run of `iters` iterations on every thread: {wall seconds, sum of the threads' flop per CPU second}
  auto run = [&](int64_t iters) -> std::pair<double, double> {
    double rate = 0.0;
    const double t0 = omp_get_wtime();
#pragma omp parallel num_threads(threads) reduction(+ : rate)
    {
      const double c0 = cpu_s();
      double flop = 0.0;
      const float seed = g_peak_seed;
      float sum = 0.f;
      if (kind == 0) {
#if defined(__AVX512F__)
        constexpr int A = 16;
        const __m512 a = _mm512_set1_ps(0.999999f * seed), b = _mm512_set1_ps(1e-7f * seed);
        __m512 c[A];
        for (int k = 0; k < A; ++k) c[k] = _mm512_set1_ps(seed * (float)(k + 1));
        for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 16
          for (int k = 0; k < A; ++k) c[k] = _mm512_fmadd_ps(c[k], a, b);
        }
        alignas(64) float lanes[16];
        for (int k = 0; k < A; ++k) {
          _mm512_store_ps(lanes, c[k]);
          for (int j = 0; j < 16; ++j) sum += lanes[j];
        }
        flop = (double)iters * A * 32;
#else
        constexpr int A = 12;
        const __m256 a = _mm256_set1_ps(0.999999f * seed), b = _mm256_set1_ps(1e-7f * seed);
        __m256 c[A];
        for (int k = 0; k < A; ++k) c[k] = _mm256_set1_ps(seed * (float)(k + 1));
        for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 12
          for (int k = 0; k < A; ++k) c[k] = _mm256_fmadd_ps(c[k], a, b);
        }
        alignas(32) float lanes[8];
        for (int k = 0; k < A; ++k) {
          _mm256_store_ps(lanes, c[k]);
          for (int j = 0; j < 8; ++j) sum += lanes[j];
        }
        flop = (double)iters * A * 16;
#endif
      } else {
#if defined(__AVX512BF16__)
        constexpr int A = 16;
        const __m512 x = _mm512_set1_ps(1e-3f * seed);
        const __m512bh a = _mm512_cvtne2ps_pbh(x, x);
        __m512 c[A];
        for (int k = 0; k < A; ++k) c[k] = _mm512_set1_ps(seed * (float)(k + 1));
        for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 16
          for (int k = 0; k < A; ++k) c[k] = _mm512_dpbf16_ps(c[k], a, a);
        }
        alignas(64) float lanes[16];
        for (int k = 0; k < A; ++k) {
          _mm512_store_ps(lanes, c[k]);
          for (int j = 0; j < 16; ++j) sum += lanes[j];
        }
        flop = (double)iters * A * 64;
#endif
      }
      const double dt = cpu_s() - c0;
      if (dt > 0) rate = flop / dt;
#pragma omp critical(nl_peak_sink)
      g_peak_sink = g_peak_sink + sum;
    }
    return {omp_get_wtime() - t0, rate};
  };
  // calibrate to ~0.3 s per run, then the best of 3
  int64_t iters = 1 << 18;
  for (;;) {
    const double t = run(iters).first;
    if (t > 0.03 || iters >= ((int64_t)1 << 34)) {
      iters = std::max<int64_t>(1, (int64_t)((double)iters * 0.3 / std::max(t, 1e-9)));
      break;
    }
    iters *= 8;
  }
  double best = 0.0;
  for (int r = 0; r < 3; ++r) best = std::max(best, run(iters).second / 1e9);
  return best;
#endif
}

}  // extern "C"

// ------------------------------------------------- native inference plans
// A whole inference forward pass in one call (lib/models fused.ts `compileFusedInference`
// builds the program when every layer is one of the ops below): BN already folded into the
// convolutions, conv + bias + ReLU fused, and a ResNet block's residual add + ReLU fused into
// its second convolution as oneDNN post-ops (sum, then relu), weights reordered into oneDNN's
// layout once per plan (= once per noise draw) instead of once per batch, and no per-layer
// round trips through JavaScript. Activations live in buffers ("slots") owned by the plan;
// in bf16 mode they are stored as bf16 between layers (oneDNN bf16 convolutions: f32
// accumulation, bf16 outputs), so no f32 -> bf16 conversion precedes each convolution.
//
// Semantics: in f32 every op computes what the engine's per-layer kernels compute (the same
// oneDNN primitives and the same hand-written loops; the residual add + ReLU is one pass of the
// same float operations as the tfjs Add and Relu kernels — the sum post-op would add the shortcut
// into the accumulator before the bias, another rounding, so only bf16 plans use it). oneDNN's
// relu post-op maps NaN to 0 where tfjs keeps NaN, so before every op with a fused ReLU a run
// checks that no partial sum can overflow from its inputs (relu_postop_exact: finite and bounded
// inputs) and otherwise returns 2 without a result: the caller then evaluates those images on
// its per-layer path, whose NaN semantics are tfjs' own.
namespace {

enum PlanOpCode { OP_CONV = 1, OP_PAD = 2, OP_SUBSAMPLE = 3, OP_ADD = 4, OP_RELU = 5, OP_MAXPOOL = 6, OP_GAP = 7,
                  OP_DENSE = 8 };
constexpr int kOpInts = 24;  // ints per program record: [op, a, b, out, params...]


/** max |p[i]| of bf16 data, or +Inf when an element is NaN or +-Inf (as max_abs_or_inf). */
double max_abs_or_inf(const uint16_t* p, int64_t n) {
  uint32_t m = 0;
#pragma omp parallel for schedule(static) reduction(max : m) if (n > kPar)
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t b = p[i] & 0x7fffu;
    m = m > b ? m : b;
  }
  if (m > 0x7f7fu) return std::numeric_limits<double>::infinity();
  return bf16_to_f32((uint16_t)m);
}

struct Slot {
  int kind = 0;  // 0: f32 always; 1: the plan's activation type (bf16 in bf16 mode)
  int64_t per = 0;  // elements per image
  void* ext = nullptr;  // the caller's buffer (input / output) during a run
  char* buf = nullptr;
  size_t cap = 0;
  Slot() = default;
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;
  Slot(Slot&& o) noexcept : kind(o.kind), per(o.per), ext(o.ext), buf(o.buf), cap(o.cap) { o.buf = nullptr; }
  ~Slot() { std::free(buf); }
  void* ensure(size_t bytes) {
    if (ext) return ext;
    if (bytes > cap) {
      std::free(buf);
      buf = nullptr;
      cap = 0;
      buf = (char*)std::aligned_alloc(64, (bytes + 63) / 64 * 64);
      if (!buf) throw std::runtime_error("native plan: out of memory");
      cap = bytes;
    }
    return buf;
  }
};

/** A convolution primitive of a plan for one batch size (cached across plans by shape). */
struct PlanConvPrim {
  convolution_forward::primitive_desc pd;
  convolution_forward prim;
  memory::desc src_md, dst_md, bias_md;
};
std::map<std::vector<int>, std::unique_ptr<PlanConvPrim>> g_plan_conv;


struct PlanConv {
  std::vector<std::pair<memory::desc, memory>> weights;  // reordered weights, per primitive layout
  // per batch size: the primitive and its reordered weights (filled by prepare_plan before a run)
  std::map<int, std::pair<PlanConvPrim*, memory*>> by_n;
};

/** What one thread of a run owns: its activation slots, its stream and its scratchpad. */
struct PlanCtx {
  std::vector<Slot> slots;
  std::unique_ptr<stream> strm;
  Slot scratch;  // kind/per unused: a raw buffer
};

struct Plan {
  bool bf16 = false;
  std::vector<std::vector<int32_t>> ops;
  std::vector<Slot> slots;  // kinds and elements per image (each run context gets its own buffers)
  std::vector<float> params;  // weights and biases, f32 (HWIO conv kernels, [K, U] dense kernels)
  std::map<size_t, PlanConv> convs;  // by op index
  std::map<size_t, std::map<int, MatmulEntry*>> denses;  // by op index, then batch size
  std::vector<std::unique_ptr<PlanCtx>> ctx;  // per thread of a run
  size_t scratch_bytes = 0;  // the largest scratchpad of the primitives prepared
  // per op with a fused ReLU (conv, dense): the weights' and the bias's bounds of relu_postop_exact
  std::vector<double> wsum, bmax;
  memory::desc w_user_md(const int32_t* r) const {
    return memory::desc({r[9], r[6], r[7], r[8]}, dt::f32, tag::hwio);  // OC, C, KH, KW
  }
};
std::map<int, std::unique_ptr<Plan>> g_plans;
int g_plan_next = 1;

// conv record: [OP_CONV, in, sum (-1), out, H, W, C, KH, KW, OC, OH, OW, SH, SW, DH, DW, PT, PL, PB, PR, relu,
//               w_off, b_off (-1)]
enum { C_H = 4, C_W, C_C, C_KH, C_KW, C_OC, C_OH, C_OW, C_SH, C_SW, C_DH, C_DW, C_PT, C_PL, C_PB, C_PR, C_RELU,
       C_WOFF, C_BOFF };

PlanConvPrim& plan_conv_prim(const int32_t* r, int N, bool bf16) {
  std::vector<int> key(r + C_H, r + C_BOFF + 1);
  key[C_WOFF - C_H] = 0;  // offsets do not shape the primitive
  key[C_BOFF - C_H] = r[C_BOFF] >= 0;
  key.push_back(N);
  key.push_back(bf16);
  key.push_back(r[2] >= 0);
  auto it = g_plan_conv.find(key);
  if (it != g_plan_conv.end()) return *it->second;
  auto e = std::make_unique<PlanConvPrim>();
  const dt adt = bf16 ? dt::bf16 : dt::f32;
  e->src_md = memory::desc({N, r[C_C], r[C_H], r[C_W]}, adt, tag::nhwc);
  e->dst_md = memory::desc({N, r[C_OC], r[C_OH], r[C_OW]}, adt, tag::nhwc);
  e->bias_md = memory::desc({r[C_OC]}, dt::f32, tag::x);
  memory::desc w_any({r[C_OC], r[C_C], r[C_KH], r[C_KW]}, adt, tag::any);
  primitive_attr attr;
  post_ops po;
  if (r[2] >= 0) po.append_sum(1.f);
  if (r[C_RELU]) po.append_eltwise(1.f, algorithm::eltwise_relu, 0.f, 0.f);
  attr.set_post_ops(po);
  // threads run the same primitive on different chunks at once: each passes its own scratchpad
  attr.set_scratchpad_mode(scratchpad_mode::user);
  memory::dims strides{r[C_SH], r[C_SW]}, dil{r[C_DH] - 1, r[C_DW] - 1}, pl{r[C_PT], r[C_PL]}, pr{r[C_PB], r[C_PR]};
  // f32: the same prop_kind and implementation preference as the per-layer kernel (get_conv), so the
  // results are the same bits
  const prop_kind pk = bf16 ? prop_kind::forward_inference : prop_kind::forward_training;
  auto d = r[C_BOFF] >= 0 ? convolution_forward::desc(pk, algorithm::convolution_direct, e->src_md, w_any,
                                                      e->bias_md, e->dst_md, strides, dil, pl, pr)
                          : convolution_forward::desc(pk, algorithm::convolution_direct, e->src_md, w_any,
                                                      e->dst_md, strides, dil, pl, pr);
  convolution_forward::primitive_desc pd(d, attr, *g_eng);
  e->pd = bf16 ? pd : prefer_impl(pd, "jit:avx512_core");
  e->prim = convolution_forward(e->pd);
  auto& ref = *e;
  g_plan_conv.emplace(std::move(key), std::move(e));
  return ref;
}

template <typename T>
void plan_pad(const T* x, T* y, int64_t N, const int32_t* r) {
  // [OP_PAD, in, -, out, H, W, C, OH, OW, OC, bh, bw, bc]: zeros around x
  const int64_t H = r[4], W = r[5], C = r[6], OH = r[7], OW = r[8], OC = r[9], bh = r[10], bw = r[11], bc = r[12];
  const int64_t rows = N * OH * OW;
#pragma omp parallel for schedule(static) if (rows * OC > kPar)
  for (int64_t q = 0; q < rows; ++q) {
    const int64_t ow = q % OW, t = q / OW, oh = t % OH, n = t / OH;
    T* dst = y + q * OC;
    const int64_t h = oh - bh, w = ow - bw;
    if (h < 0 || h >= H || w < 0 || w >= W) {
      std::memset(dst, 0, sizeof(T) * OC);
      continue;
    }
    std::memset(dst, 0, sizeof(T) * bc);
    std::memcpy(dst + bc, x + ((n * H + h) * W + w) * C, sizeof(T) * C);
    std::memset(dst + bc + C, 0, sizeof(T) * (OC - bc - C));
  }
}

template <typename T>
void plan_subsample(const T* x, T* y, int64_t N, const int32_t* r) {
  // [OP_SUBSAMPLE, in, -, out, H, W, C, SH, SW, OH, OW]: a 1x1 average pool with strides (x / 1 = x)
  const int64_t H = r[4], W = r[5], C = r[6], SH = r[7], SW = r[8], OH = r[9], OW = r[10];
  const int64_t rows = N * OH * OW;
#pragma omp parallel for schedule(static) if (rows * C > kPar)
  for (int64_t q = 0; q < rows; ++q) {
    const int64_t ow = q % OW, t = q / OW, oh = t % OH, n = t / OH;
    std::memcpy(y + q * C, x + ((n * H + oh * SH) * W + ow * SW) * C, sizeof(T) * C);
  }
}

template <typename T>
void plan_add(const T* a, const T* b, T* y, int64_t n, bool relu) {
#pragma omp parallel for schedule(static) if (n > kPar)
  for (int64_t i = 0; i < n; ++i) {
    const float v = ld(a, i) + ld(b, i);
    st(y, i, relu ? relu_nan(v) : v);
  }
}

template <typename T>
void plan_relu(const T* x, T* y, int64_t n) {
#pragma omp parallel for schedule(static) if (n > kPar)
  for (int64_t i = 0; i < n; ++i) st(y, i, relu_nan(ld(x, i)));
}




/** Runs plan `pl` on N images; returns false (and stops) when an input of a fused ReLU is not all finite. */
template <typename T>
bool run_plan(const Plan& pl, PlanCtx& cx, int N) {
  const size_t esz = sizeof(T);
  auto ptr = [&](int s) -> void* {
    Slot& sl = cx.slots[s];
    return sl.ensure((size_t)N * sl.per * (sl.kind == 1 ? esz : sizeof(float)));
  };
  stream& strm = *cx.strm;
  void* scratch = cx.scratch.ensure(std::max<size_t>(pl.scratch_bytes, 64));
  for (size_t i = 0; i < pl.ops.size(); ++i) {
    const int32_t* r = pl.ops[i].data();
    const int op = r[0];
    T* a = (T*)ptr(r[1]);
    if (op == OP_CONV) {
      // a slot holds its largest value: the sizes of this op's values come from its record
      const int64_t nin = (int64_t)N * r[C_H] * r[C_W] * r[C_C], nout = (int64_t)N * r[C_OH] * r[C_OW] * r[C_OC];
      T* y = (T*)ptr(r[3]);
      if (r[C_RELU] && !relu_postop_exact(max_abs_or_inf(a, nin), pl.wsum[i], pl.bmax[i],
                                          r[2] >= 0 ? max_abs_or_inf((T*)ptr(r[2]), nout) : 0)) {
        return false;
      }
      if (r[2] >= 0 && r[2] != r[3]) std::memcpy(y, ptr(r[2]), esz * nout);
      const auto& [cp, wm] = pl.convs.at(i).by_n.at(N);
      std::unordered_map<int, memory> args{{DNNL_ARG_SRC, memory(cp->src_md, *g_eng, a)},
                                           {DNNL_ARG_WEIGHTS, *wm},
                                           {DNNL_ARG_DST, memory(cp->dst_md, *g_eng, y)},
                                           {DNNL_ARG_SCRATCHPAD, memory(cp->pd.scratchpad_desc(), *g_eng, scratch)}};
      if (r[C_BOFF] >= 0) {
        args.insert({DNNL_ARG_BIAS, memory(cp->bias_md, *g_eng, (void*)(pl.params.data() + r[C_BOFF]))});
      }
      cp->prim.execute(strm, args);
      strm.wait();
    } else if (op == OP_PAD) {
      plan_pad(a, (T*)ptr(r[3]), N, r);
    } else if (op == OP_SUBSAMPLE) {
      plan_subsample(a, (T*)ptr(r[3]), N, r);
    } else if (op == OP_ADD) {
      // a kind-0 slot (a [N, K] value after a Dense or the pooling) is f32 in every plan
      if (cx.slots[r[1]].kind == 0) plan_add((float*)a, (float*)ptr(r[2]), (float*)ptr(r[3]), (int64_t)N * r[4], r[5] != 0);
      else plan_add(a, (T*)ptr(r[2]), (T*)ptr(r[3]), (int64_t)N * r[4], r[5] != 0);
    } else if (op == OP_RELU) {
      if (cx.slots[r[1]].kind == 0) plan_relu((float*)a, (float*)ptr(r[3]), (int64_t)N * r[4]);
      else plan_relu(a, (T*)ptr(r[3]), (int64_t)N * r[4]);
    } else if (op == OP_MAXPOOL) {
      // [OP_MAXPOOL, in, -, out, H, W, C, KH, KW, SH, SW, OH, OW, PT, PL]
      maxpool_fwd(a, (T*)ptr(r[3]), N, r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14]);
    } else if (op == OP_GAP) {
      // [OP_GAP, in, -, out, HW, C]; the output is f32
      spatial_mean(a, (float*)ptr(r[3]), N, r[4], r[5]);
    } else if (op == OP_DENSE) {
      // [OP_DENSE, in, -, out, K, U, relu, w_off, b_off]: the engine's matmul (nl_matmul's primitive)
      const int32_t K = r[4];
      const float* xin;
      std::vector<float> tmp;
      if (cx.slots[r[1]].kind == 1 && !std::is_same<T, float>::value) {
        tmp.resize((size_t)N * K);
        for (int64_t j = 0; j < (int64_t)N * K; ++j) tmp[j] = ld(a, j);
        xin = tmp.data();
      } else {
        xin = (const float*)a;
      }
      const float* w = pl.params.data() + r[7];
      const float* b = r[8] >= 0 ? pl.params.data() + r[8] : nullptr;
      if (r[6] && !relu_postop_exact(max_abs_or_inf(xin, (int64_t)N * K), pl.wsum[i], pl.bmax[i])) return false;
      const MatmulEntry& e = *pl.denses.at(i).at(N);
      mm_execute(e, strm, xin, w, b, (float*)ptr(r[3]), scratch);
    } else {
      throw std::runtime_error("native plan: unknown op " + std::to_string(op));
    }
  }
  return true;
}

/**
 * Creates (serially, before threads run chunks) every primitive a run on chunks of N images needs,
 * and reorders the convolutions' weights into each primitive's layout once.
 */
void prepare_plan(Plan& pl, int N) {
  for (size_t i = 0; i < pl.ops.size(); ++i) {
    const int32_t* r = pl.ops[i].data();
    if (r[0] == OP_CONV) {
      PlanConv& pc = pl.convs.at(i);
      if (pc.by_n.count(N)) continue;
      PlanConvPrim& cp = plan_conv_prim(r, N, pl.bf16);
      memory* wm = nullptr;
      for (auto& [md, m] : pc.weights)
        if (md == cp.pd.weights_desc()) wm = &m;
      if (!wm) {
        memory wu(pl.w_user_md(r), *g_eng, pl.params.data() + r[C_WOFF]);
        memory w(cp.pd.weights_desc(), *g_eng);
        reorder(wu, w).execute(*g_strm, wu, w);
        g_strm->wait();
        pc.weights.emplace_back(cp.pd.weights_desc(), w);
        wm = &pc.weights.back().second;
      }
      pc.by_n[N] = {&cp, wm};
      pl.scratch_bytes = std::max(pl.scratch_bytes, cp.pd.scratchpad_desc().get_size());
    } else if (r[0] == OP_DENSE) {
      auto& m = pl.denses[i];
      if (m.count(N)) continue;
      const int32_t p[M_COUNT] = {1, N, r[5], r[4], 0, 0, r[8] >= 0 ? 1 : 0, r[6] ? 1 : 0};
      MatmulEntry& e = get_mm(p, true);
      m[N] = &e;
      pl.scratch_bytes = std::max(pl.scratch_bytes, e.pd.scratchpad_desc().get_size());
    }
  }
}

/** Images per chunk of a plan run: NOISELAB_PLAN_CHUNK (1-100000), default 64. */
int plan_chunk() {
  static int chunk = [] {
    const char* v = std::getenv("NOISELAB_PLAN_CHUNK");
    int n = v ? std::atoi(v) : 0;
    if (v && !(n >= 1 && n <= 100000)) {
      std::fprintf(stderr, "[engine] NOISELAB_PLAN_CHUNK=\"%s\" is not an integer from 1 to 100000; using 64\n", v);
    }
    return n >= 1 && n <= 100000 ? n : 64;
  }();
  return chunk;
}

}  // namespace

extern "C" {

/**
 * Creates a native inference plan (see the section notes) and returns its id (> 0), or -1.
 * prog: nops records of kOpInts ints; slots: nslots pairs [kind, elements per image] (slot 0 =
 * the input, slot 1 = the output, both f32 at the boundary); params: the f32 weights the records
 * point into (copied). bf16: 1 for bf16 activations and convolutions (a CPU with bf16 dot
 * products only; nl_set_conv_bf16 tells), 0 for f32.
 */
int nl_plan_create(const int32_t* prog, int32_t nops, const int32_t* slots, int32_t nslots, const float* params,
                   int64_t nparams, int32_t bf16) {
  int id = -1;
  int rc = guard([&] {
    if (bf16 && !cpu_has_bf16()) throw std::runtime_error("native plan: bf16 needs a CPU with bf16 dot products");
    if (nslots < 2) throw std::runtime_error("native plan: needs an input and an output slot");
    auto pl = std::make_unique<Plan>();
    pl->bf16 = bf16 != 0;
    pl->slots.resize(nslots);
    for (int s = 0; s < nslots; ++s) {
      pl->slots[s].kind = slots[2 * s];
      pl->slots[s].per = slots[2 * s + 1];
    }
    pl->params.assign(params, params + nparams);
    if (pl->slots[1].kind != 0) throw std::runtime_error("native plan: the output slot must be f32 (kind 0)");
    for (int i = 0; i < nops; ++i) {
      const int32_t* r = prog + (int64_t)i * kOpInts;
      const std::string at = "native plan: op " + std::to_string(i);
      for (int k : {1, 3})
        if (r[k] < 0 || r[k] >= nslots) throw std::runtime_error(at + " slot");
      if (r[2] < -1 || r[2] >= nslots) throw std::runtime_error(at + " slot");
      if (r[3] == 0) throw std::runtime_error(at + " writes the input slot");
      auto in_params = [&](int64_t off, int64_t n) {
        if (off < 0 || off + n > nparams) throw std::runtime_error(at + " weights outside the parameters");
      };
      double wsum = 0, bmax = 0;
      if (r[0] == OP_CONV) {
        const int64_t rows = (int64_t)r[C_KH] * r[C_KW] * r[C_C];
        in_params(r[C_WOFF], rows * r[C_OC]);
        if (r[C_BOFF] >= 0) in_params(r[C_BOFF], r[C_OC]);
        wsum = max_col_abs_sum(params + r[C_WOFF], rows, r[C_OC]);
        bmax = r[C_BOFF] >= 0 ? max_abs_or_inf(params + r[C_BOFF], r[C_OC]) : 0;
      } else if (r[0] == OP_DENSE) {
        in_params(r[7], (int64_t)r[4] * r[5]);
        if (r[8] >= 0) in_params(r[8], r[5]);
        wsum = max_col_abs_sum(params + r[7], r[4], r[5]);
        bmax = r[8] >= 0 ? max_abs_or_inf(params + r[8], r[5]) : 0;
      }
      pl->wsum.push_back(wsum);
      pl->bmax.push_back(bmax);
      pl->ops.emplace_back(r, r + kOpInts);
      if (r[0] == OP_CONV) pl->convs.try_emplace(pl->ops.size() - 1);  // primitives, weights: prepare_plan
    }
    id = g_plan_next++;
    g_plans.emplace(id, std::move(pl));
  });
  return rc == 0 ? id : -1;
}

/**
 * Runs plan `id` on N images x (NHWC f32, slot 0's elements per image each), writing out (slot 1's
 * elements per image each, f32). Returns 0, 2 when an input of a fused ReLU was not all finite
 * (out is then unspecified: evaluate the batch on the per-layer path), or -1.
 */
int nl_plan_run(int32_t id, const float* x, int32_t N, float* out) {
  int res = 0;
  int rc = guard([&] {
    auto it = g_plans.find(id);
    if (it == g_plans.end()) throw std::runtime_error("native plan " + std::to_string(id) + " does not exist");
    Plan& pl = *it->second;
    // The batch runs in chunks of up to plan_chunk() images, each through the whole program: a layer's
    // activations stay in the caches for the next layer, and the engine's threads each take whole
    // chunks (a chunk's convolutions then run on one thread: ResNet-20's 16-channel layers scaled
    // poorly over 2 threads inside one convolution). With fewer chunks than threads, one chunk at a
    // time with every thread in its primitives. An image's logits do not depend on the chunking.
    const int nt = std::max(1, omp_get_max_threads());
    int chunk = plan_chunk();
    if (N < (int64_t)nt * chunk) chunk = std::max(1, (N + nt - 1) / nt);
    const int nchunks = (N + chunk - 1) / chunk;
    const int used = std::min(nt, nchunks);
    prepare_plan(pl, chunk);
    if (N % chunk) prepare_plan(pl, N % chunk);
    while ((int)pl.ctx.size() < used) {
      auto cx = std::make_unique<PlanCtx>();
      cx->slots.resize(pl.slots.size());
      for (size_t k = 0; k < pl.slots.size(); ++k) {
        cx->slots[k].kind = pl.slots[k].kind;
        cx->slots[k].per = pl.slots[k].per;
      }
      cx->strm = std::make_unique<stream>(*g_eng);
      pl.ctx.push_back(std::move(cx));
    }
    const int64_t in_per = pl.slots[0].per, out_per = pl.slots[1].per;
    auto run_chunk = [&](PlanCtx& cx, int c) -> bool {
      const int s0 = c * chunk, n = std::min(chunk, N - s0);
      const float* xs = x + (int64_t)s0 * in_per;
      Slot& in = cx.slots[0];
      cx.slots[1].ext = out + (int64_t)s0 * out_per;
      bool ok;
      if (pl.bf16) {
        in.ext = nullptr;
        uint16_t* xb = (uint16_t*)in.ensure((size_t)n * in_per * sizeof(uint16_t));
        const int64_t m = (int64_t)n * in_per;
        ok = all_finite(xs, m);
        if (ok) {
#pragma omp parallel for schedule(static) if (m > kPar)
          for (int64_t i = 0; i < m; ++i) xb[i] = f32_to_bf16(xs[i]);
          ok = run_plan<uint16_t>(pl, cx, n);
        }
      } else {
        in.ext = (void*)xs;
        ok = run_plan<float>(pl, cx, n);
      }
      in.ext = nullptr;
      cx.slots[1].ext = nullptr;
      return ok;
    };
    bool failed = false;
    if (used == 1) {
      for (int c = 0; c < nchunks && !failed; ++c) failed = !run_chunk(*pl.ctx[0], c);
    } else {
      std::string err;
      bool errored = false;
      // nested regions (oneDNN's, the loops above) run on their one thread
#pragma omp parallel num_threads(used) reduction(|| : failed)
      {
        const int t = omp_get_thread_num();
        try {
          for (int c = t; c < nchunks && !failed; c += used) failed = !run_chunk(*pl.ctx[t], c);
        } catch (const std::exception& e) {
#pragma omp critical(nl_plan_err)
          {
            errored = true;
            err = e.what();
          }
        }
      }
      if (errored) throw std::runtime_error(err);
    }
    res = failed ? 2 : 0;
  });
  return rc == 0 ? res : -1;
}

/** Frees plan `id` (its slots and reordered weights). */
int nl_plan_free(int32_t id) {
  return guard([&] { g_plans.erase(id); });
}

}  // extern "C"

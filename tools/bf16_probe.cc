// Build and run: g++ -std=c++17 -O2 -fopenmp -o /tmp/bf16_probe tools/bf16_probe.cc -ldnnl && OMP_NUM_THREADS=1 /tmp/bf16_probe 128
// (issue #11: measured peak and bf16 vs fp32 convolutions on the machine at hand; output kept in results/bench/)
// bf16 vs fp32 probe: oneDNN convolution forward (inference shapes of ResNet-20, NHWC),
// backward data / weights (training shapes, batch 128), and a large matmul for peak FLOP/s.
#include <dnnl.hpp>
#include <omp.h>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <vector>
using namespace dnnl;
using tag = memory::format_tag;
using dt = memory::data_type;
static engine eng(engine::kind::cpu, 0);
static stream strm(eng);
double best_ms(const std::function<void()>& f, int reps) {
  f(); double b = 1e30;
  for (int i = 0; i < reps; ++i) { auto t0 = std::chrono::steady_clock::now(); f(); strm.wait();
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count(); if (ms < b) b = ms; }
  return b;
}
memory filled(const memory::desc& md) { memory m(md, eng); std::memset(m.get_data_handle(), 0, md.get_size()); return m; }
struct R { double fwd, bwdd, bwdw, cvt; std::string impl; };
R conv(int N, int C, int HW, int OC, int K, int S, dt t) {
  int P = K / 2, OHW = (HW + 2 * P - K) / S + 1;
  memory::desc src({N, C, HW, HW}, t, tag::nhwc), dst({N, OC, OHW, OHW}, dt::f32, tag::nhwc), dstt({N, OC, OHW, OHW}, t, tag::nhwc);
  memory::desc wany({OC, C, K, K}, t, tag::any);
  convolution_forward::desc d(prop_kind::forward_training, algorithm::convolution_direct, src, wany, dst, {S, S}, {P, P}, {P, P});
  convolution_forward::primitive_desc pd(d, eng);
  convolution_forward f(pd);
  memory ms = filled(src), mw = filled(pd.weights_desc()), md = filled(dst);
  R r;
  r.impl = pd.impl_info_str();
  r.fwd = best_ms([&] { f.execute(strm, {{DNNL_ARG_SRC, ms}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DST, md}}); }, 3);
  // backward data: diff_dst in t, diff_src f32
  memory::desc dsrc({N, C, HW, HW}, dt::f32, tag::nhwc);
  convolution_backward_data::desc bd(algorithm::convolution_direct, dsrc, wany, dstt, {S, S}, {P, P}, {P, P});
  convolution_backward_data::primitive_desc bpd(bd, eng, pd);
  convolution_backward_data b(bpd);
  memory mdd = filled(bpd.diff_dst_desc()), mwd = filled(bpd.weights_desc()), mds = filled(bpd.diff_src_desc());
  r.bwdd = C == 3 ? 0 : best_ms([&] { b.execute(strm, {{DNNL_ARG_DIFF_DST, mdd}, {DNNL_ARG_WEIGHTS, mwd}, {DNNL_ARG_DIFF_SRC, mds}}); }, 3);
  memory::desc dwany({OC, C, K, K}, dt::f32, tag::any);
  convolution_backward_weights::desc wd(algorithm::convolution_direct, src, dwany, dstt, {S, S}, {P, P}, {P, P});
  convolution_backward_weights::primitive_desc wpd(wd, eng, pd);
  convolution_backward_weights w(wpd);
  memory ws = filled(wpd.src_desc()), wdd = filled(wpd.diff_dst_desc()), wdw = filled(wpd.diff_weights_desc());
  r.bwdw = best_ms([&] { w.execute(strm, {{DNNL_ARG_SRC, ws}, {DNNL_ARG_DIFF_DST, wdd}, {DNNL_ARG_DIFF_WEIGHTS, wdw}}); }, 3);
  // conversion cost a bf16 path pays per conv: f32 activations -> bf16 (src) and f32 grads -> bf16 (diff_dst)
  r.cvt = 0;
  if (t == dt::bf16) {
    memory s32 = filled(memory::desc({N, C, HW, HW}, dt::f32, tag::nhwc)), g32 = filled(dst);
    reorder rs(s32, ms), rg(g32, mdd);
    r.cvt = best_ms([&] { rs.execute(strm, s32, ms); }, 3) + best_ms([&] { rg.execute(strm, g32, mdd); }, 3);
  }
  return r;
}
double mm(int M, dt t) {
  memory::desc a({M, M}, t, tag::ab), b({M, M}, t, tag::ab), c({M, M}, dt::f32, tag::ab);
  matmul::primitive_desc pd(matmul::desc(a, b, c), eng);
  matmul p(pd);
  memory ma = filled(a), mb = filled(b), mc = filled(c);
  double ms = best_ms([&] { p.execute(strm, {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}}); }, 3);
  std::printf("matmul %d^3 %s: %.1f GFLOP/s (%s)\n", M, t == dt::bf16 ? "bf16" : "f32 ", 2.0 * M * M * M / ms / 1e6, pd.impl_info_str());
  return ms;
}
int main(int argc, char** argv) {
  int N = argc > 1 ? atoi(argv[1]) : 128;
  std::printf("threads %d, batch %d (nhwc; bf16: src/weights/diff_dst bf16, dst/diff_src/diff_weights f32)\n", omp_get_max_threads(), N);
  mm(2048, dt::f32); mm(2048, dt::bf16);
  struct S { int C, HW, OC, K, S; const char* name; } shapes[] = {
    {3, 32, 16, 3, 1, "stem 3->16 32x32"}, {16, 32, 16, 3, 1, "16->16 32x32"}, {16, 32, 32, 3, 2, "16->32 s2"},
    {32, 16, 32, 3, 1, "32->32 16x16"}, {64, 8, 64, 3, 1, "64->64 8x8"}, {256, 8, 512, 3, 1, "vgg 256->512 8x8"}, {512, 4, 512, 3, 1, "vgg 512->512 4x4"}};
  for (auto& s : shapes) {
    R f = conv(N, s.C, s.HW, s.OC, s.K, s.S, dt::f32), b = conv(N, s.C, s.HW, s.OC, s.K, s.S, dt::bf16);
    int OHW = (s.HW + 2 * (s.K / 2) - s.K) / s.S + 1;
    double gf = 2.0 * N * OHW * OHW * s.OC * s.C * s.K * s.K / 1e6;
    std::printf("%-18s fwd f32 %.2f ms (%.0f GF/s, %s) bf16 %.2f ms (%.0f GF/s, %s) +cvt %.2f | bwd_d %.2f/%.2f | bwd_w %.2f/%.2f ms | fwd+bwd f32 %.2f vs bf16+cvt %.2f\n",
      s.name, f.fwd, gf / f.fwd, f.impl.c_str(), b.fwd, gf / b.fwd, b.impl.c_str(), b.cvt, f.bwdd, b.bwdd, f.bwdw, b.bwdw,
      f.fwd + f.bwdd + f.bwdw, b.fwd + b.bwdd + b.bwdw + b.cvt);
  }
}

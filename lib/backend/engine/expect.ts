/**
 * Whether the engine's native shim can be expected to work on this machine.
 *
 * The shim needs oneDNN's headers (Debian `libdnnl-dev`) and a C++ compiler to
 * be built (`native/build.sh`, run by `tools/setup.sh`). Where both are present
 * the engine MUST load: a missing or broken shim is then a failure, never a
 * reason to skip its tests. {@link engineSkipReason} names the one thing that
 * is missing otherwise, in a fixed vocabulary that `tools/test.sh` re-checks
 * on the machine before it accepts a skipped test ("no libdnnl-dev", "no g++";
 * for the bf16 kernels, {@link BF16_SKIP_REASON}).
 * @module
 */

/** oneDNN header locations that `native/build.sh` accepts. */
export const ONEDNN_HEADERS = ["/usr/include/oneapi/dnnl/dnnl.hpp", "/usr/include/dnnl.hpp"] as const;

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** True when `cmd` (a bare name or a path) names an executable file found like a shell would. */
function onPath(cmd: string): boolean {
  if (cmd.includes("/")) return exists(cmd);
  const dirs = (Deno.env.get("PATH") ?? "").split(":").filter((d) => d !== "");
  return dirs.some((d) => {
    try {
      const st = Deno.statSync(`${d}/${cmd}`);
      return st.isFile && ((st.mode ?? 0o111) & 0o111) !== 0;
    } catch {
      return false;
    }
  });
}

/**
 * Null when the shim can be built here (oneDNN headers and the C++ compiler
 * `$CXX`, default g++, are present), so the engine must load and its tests must
 * run; else the reason its tests may be skipped: "no libdnnl-dev" or "no g++"
 * (the compiler's name when `CXX` is set).
 */
export function engineSkipReason(): string | null {
  if (!ONEDNN_HEADERS.some(exists)) return "no libdnnl-dev";
  const cxx = Deno.env.get("CXX") || "g++";
  if (!onPath(cxx)) return `no ${cxx}`;
  return null;
}

/**
 * The skip reason of a bf16 test where the CPU has no bf16 dot products (oneDNN below
 * avx512_core_bf16: bf16 then falls back to fp32). `tools/test.sh` accepts it only where
 * /proc/cpuinfo lists neither avx512_bf16 nor amx_bf16.
 */
export const BF16_SKIP_REASON = "no bf16 dot products";

/**
 * A test name carrying its skip reason in the form `tools/test.sh` reads:
 * `"<name> [skip: <reason>]"` when `reason` is given, else `name` unchanged.
 */
export function skipTagged(name: string, reason: string | null): string {
  return reason == null ? name : `${name} [skip: ${reason}]`;
}

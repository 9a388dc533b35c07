/**
 * The machine a result was computed on, for provenance: the CPU's model name
 * (this project's machines vary between an Intel Xeon and an AMD EPYC, about 2x
 * apart in speed, so every timing and result names its CPU).
 * @module
 */

let cached: string | undefined;

/**
 * The CPU model name from `/proc/cpuinfo` ("model name" line), with the number
 * of logical CPUs, e.g. "AMD EPYC (2 CPUs)". "unknown CPU" where it cannot be read.
 */
export function cpuName(): string {
  if (cached) return cached;
  let name = "unknown CPU";
  try {
    const text = Deno.readTextFileSync("/proc/cpuinfo");
    const m = /^model name\s*:\s*(.+)$/m.exec(text);
    if (m) name = m[1].trim().replace(/\s+/g, " ");
  } catch { /* not Linux: keep "unknown CPU" */ }
  cached = `${name} (${navigator.hardwareConcurrency} CPUs)`;
  return cached;
}

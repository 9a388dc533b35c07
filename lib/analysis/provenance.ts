/**
 * Provenance lines: one sentence under every figure and table saying where the
 * numbers come from (data + copy, models + ids, seeds, noise draws, backend, code).
 * @module
 */

/** What a provenance line can mention; every field is optional. */
export interface ProvenanceInfo {
  /** Dataset label, e.g. "CIFAR-10, JPEG q75 copy". */
  dataset?: string;
  /** Train/test sizes actually used. */
  trainSize?: number;
  testSize?: number;
  /** Models: ids, or {name, id}. */
  models?: Array<string | { name?: string; id: string }>;
  /** Training epochs. */
  epochs?: number;
  /** Training seed(s). */
  seed?: number | string | Array<number | string>;
  /** Noise form and targets, e.g. "additive-std on kernels". */
  noise?: string;
  /** Noise levels and Monte Carlo draws per level. */
  etas?: number[];
  draws?: number;
  /** What each set of `draws` is taken per when it is not a noise level, e.g. "inference time and condition". */
  drawsPer?: string;
  noiseSeed?: number | string;
  /** Backend, e.g. "noiselab (oneDNN, 2 threads)". */
  backend?: string;
  /** CPU model (lib/util/machine `cpuName()`). */
  cpu?: string;
  /** Profile name (smoke | quick | standard | paper). */
  profile?: string;
  /** Code version (numerics version and libVersion() source hash). */
  lib?: string;
  /** Anything else, "key: value". */
  extra?: Record<string, string | number>;
}

function list(v: Array<number | string>): string {
  return v.length > 8 ? `${v.slice(0, 3).join(", ")}, …, ${v.at(-1)} (${v.length})` : v.join(", ");
}

/** One plain-text line, e.g. "Data: CIFAR-10 (JPEG copy), train 2000 / test 1000 · Models: … · Noise: …". */
export function provenanceLine(info: ProvenanceInfo): string {
  const parts: string[] = [];
  if (info.dataset) {
    const sizes = [
      info.trainSize !== undefined ? `train ${info.trainSize}` : "",
      info.testSize !== undefined ? `test ${info.testSize}` : "",
    ]
      .filter(Boolean).join(" / ");
    parts.push(`data: ${info.dataset}${sizes ? ` (${sizes})` : ""}`);
  }
  if (info.models?.length) {
    parts.push(
      "models: " +
        info.models.map((m) => typeof m === "string" ? m : m.name ? `${m.name} [${m.id}]` : m.id).join(", "),
    );
  }
  if (info.epochs !== undefined) parts.push(`${info.epochs} epochs`);
  if (info.seed !== undefined) parts.push(`seed ${Array.isArray(info.seed) ? list(info.seed) : info.seed}`);
  if (info.noise || info.etas || info.draws) {
    const bits = [
      info.noise ?? "",
      info.etas ? `η ∈ {${list(info.etas)}}` : "",
      info.draws
        ? (info.drawsPer ? `${info.draws} draws per ${info.drawsPer}` : `${info.draws} draws/η`)
        : "",
      info.noiseSeed !== undefined ? `noise seed ${info.noiseSeed}` : "",
    ].filter(Boolean);
    parts.push(`noise: ${bits.join(", ")}`);
  }
  if (info.backend) parts.push(`backend: ${info.backend}`);
  if (info.cpu) parts.push(`CPU: ${info.cpu}`);
  if (info.profile) parts.push(`profile: ${info.profile}`);
  if (info.lib) parts.push(`lib ${info.lib}`);
  for (const [k, v] of Object.entries(info.extra ?? {})) parts.push(`${k}: ${v}`);
  return parts.join(" · ");
}

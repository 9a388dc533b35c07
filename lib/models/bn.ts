/**
 * Which convolutions get a BatchNorm layer.
 *
 * `bn` is a {@link BNSpec}:
 * - `"all"`: every conv is followed by BN (the standard models);
 * - `"none"`: no BN anywhere (convs get biases instead);
 * - a count `k`: the first `k` convs in *forward order* (index 0 = the first
 *   conv of the network, `conv1`) get BN;
 * - an array of indices into that same forward order (`[0, 5]` = BN after
 *   `conv1` and `conv6`).
 * @module
 */
import { NoiselabError } from "../util/errors.ts";

/** BN placement: "all" | "none" | first-k count | explicit forward-order indices. */
export type BNSpec = "all" | "none" | number | number[];

/**
 * Turn a {@link BNSpec} into a mask over the model's `count` BN slots
 * (forward order of the convs). Throws a NoiselabError naming `bn` and the
 * model's BN count on bad input.
 */
export function resolveBN(spec: BNSpec | undefined, count: number, model = "model"): boolean[] {
  const bad = (why: string) =>
    new NoiselabError(
      `bn: ${why} (${model} has ${count} BN layers; use "all", "none", a count 0..${count}, or indices 0..${
        count - 1
      })`,
      "bn",
    );
  if (spec === undefined || spec === "all") return new Array(count).fill(true);
  if (spec === "none") return new Array(count).fill(false);
  if (typeof spec === "number") {
    if (!Number.isInteger(spec) || spec < 0 || spec > count) throw bad(`invalid count ${spec}`);
    return Array.from({ length: count }, (_, i) => i < spec);
  }
  if (Array.isArray(spec)) {
    const mask = new Array(count).fill(false);
    for (const i of spec) {
      if (typeof i !== "number" || !Number.isInteger(i) || i < 0 || i >= count) {
        throw bad(`invalid index ${JSON.stringify(i)}`);
      }
      if (mask[i]) throw bad(`duplicate index ${i}`);
      mask[i] = true;
    }
    return mask;
  }
  throw bad(`unknown value ${JSON.stringify(spec)}`);
}

/** A short label for a BN mask ("all", "none", "first-k", or "idx-0.5.7"), used in model names. */
export function bnLabel(mask: boolean[]): string {
  const k = mask.filter(Boolean).length;
  if (k === mask.length) return "all";
  if (k === 0) return "none";
  const firstK = mask.every((b, i) => b === (i < k));
  if (firstK) return `first${k}`;
  return "idx" + mask.flatMap((b, i) => (b ? [i] : [])).join(".");
}

/**
 * Parse a BN spec written as text (CLI flags, notebook parameters): "all",
 * "none", a count ("3") or comma-separated indices ("0,5,7" or "[0,5,7]").
 * Throws a NoiselabError naming `bn` for anything else. Range checks happen
 * in {@link resolveBN}, which knows the model.
 */
export function parseBNSpec(text: string | BNSpec): BNSpec {
  if (typeof text !== "string") return text;
  const t = text.trim().toLowerCase();
  if (t === "all" || t === "none") return t;
  if (/^\d+$/.test(t)) return Number(t);
  const m = /^\[?\s*(\d+(\s*,\s*\d+)*)\s*,?\s*\]?$/.exec(t);
  if (m && (t.includes(",") || t.startsWith("["))) return m[1].split(",").map((s) => Number(s.trim()));
  throw new NoiselabError(
    `bn: cannot parse ${JSON.stringify(text)}; use "all", "none", a count like "3" or indices like "0,5,7"`,
    "bn",
  );
}

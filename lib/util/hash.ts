/**
 * Stable hashing of configuration objects (key order does not matter).
 * @module
 */
import { createHash } from "node:crypto";

/** JSON with sorted object keys, so equal configs give equal strings. */
export function stableStringify(value: unknown): string {
  if (value === undefined) return "null";
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return "[" + value.map(stableStringify).join(",") + "]";
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
  return "{" + keys.map((k) => JSON.stringify(k) + ":" + stableStringify(obj[k])).join(",") + "}";
}

/** sha256 of a string, hex. */
export function sha256Hex(text: string | Uint8Array): string {
  return createHash("sha256").update(text).digest("hex");
}

/** A short (12 hex chars) stable hash of any JSON-like value. */
export function hashObject(value: unknown, length = 12): string {
  return sha256Hex(stableStringify(value)).slice(0, length);
}

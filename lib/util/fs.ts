/**
 * File helpers: atomic writes (temp file + rename, so nothing is ever half
 * written) and checksums of files.
 * @module
 */
import { createHash } from "node:crypto";
import { dirname } from "node:path";

/** Write bytes or text to `path` atomically (temp file in the same folder, then rename). */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${Deno.pid}-${Math.random().toString(36).slice(2, 8)}`;
  try {
    if (typeof data === "string") await Deno.writeTextFile(tmp, data);
    else await Deno.writeFile(tmp, data);
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/** Write a JSON value atomically (pretty-printed). */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(value, null, 2) + "\n");
}

/** Read and parse JSON, or return `undefined` when the file does not exist. */
export async function readJsonIfExists<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as T;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

async function digestFile(path: string, algo: "sha256" | "md5"): Promise<string> {
  const h = createHash(algo);
  const f = await Deno.open(path, { read: true });
  try {
    for await (const chunk of f.readable) h.update(chunk);
  } finally {
    try {
      f.close();
    } catch { /* readable already closed it */ }
  }
  return h.digest("hex");
}

/** sha256 of a file's bytes, hex (streamed). */
export function sha256File(path: string): Promise<string> {
  return digestFile(path, "sha256");
}

/** md5 of a file's bytes, hex (streamed; the CIFAR sites publish md5 sums). */
export function md5File(path: string): Promise<string> {
  return digestFile(path, "md5");
}

/** True when a path exists. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

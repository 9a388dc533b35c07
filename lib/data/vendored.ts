/**
 * The vendored offline copy of CIFAR-100 (`data/cifar100/`): the official
 * binary files `train.bin` / `test.bin` (byte-identical to the release),
 * inside a deterministic repack of `cifar-100-binary.tar.gz` that is split
 * into parts of under 50 MB (see `data/cifar100/VENDORED.md`).
 *
 * Verification is by sha256, never by the official archive md5 (the repack's
 * bytes differ from the published archive; only the `.bin` files are exact):
 * every part against `PARTS.SHA256SUMS`, the re-assembled archive and the
 * files inside it against `SHA256SUMS` (copied from the data set's README
 * folder). The archive is unpacked once into `<dataDir>/cache/cifar100-vendored/`
 * (written to a temporary folder, then renamed), and the `.bin` files are
 * checked again on every load by the caller.
 * @module
 */
import { join } from "node:path";
import { NoiselabError } from "../util/errors.ts";
import { sha256Hex } from "../util/hash.ts";
import { exists } from "../util/fs.ts";
import { readTarGz } from "./archive.ts";
import { parseSha256Sums } from "./jpeg.ts";
import { CIFAR100_BINARY_URL, type ProgressFn } from "./types.ts";

/** Where the vendored copy lives inside a data folder, and its file names. */
export const CIFAR100_VENDORED = {
  folder: "cifar100",
  partPrefix: "cifar-100-binary.tar.gz.part-",
  partSums: "PARTS.SHA256SUMS",
  sums: "SHA256SUMS",
  cache: join("cache", "cifar100-vendored"),
  sourceLabel: "CIFAR-100, official binary files (vendored offline copy, sha256-verified)",
} as const;

/** True when `dataDir` holds the vendored CIFAR-100 parts. */
export function hasVendoredCifar100(dataDir: string): Promise<boolean> {
  return exists(join(dataDir, CIFAR100_VENDORED.folder, CIFAR100_VENDORED.partSums));
}

/** The expected sha256 of the files inside the archive (`cifar-100-binary/train.bin` → hex). */
export async function vendoredCifar100Sums(dataDir: string): Promise<Map<string, string>> {
  const path = join(dataDir, CIFAR100_VENDORED.folder, CIFAR100_VENDORED.sums);
  return parseSha256Sums(await Deno.readTextFile(path), path);
}

/**
 * Make sure the vendored archive is unpacked and return the folder that holds
 * `cifar-100-binary/` (pass it as the loader's `dataDir`).
 *
 * @throws NoiselabError naming the part or archive whose sha256 does not match, or a missing part.
 */
export async function unpackVendoredCifar100(dataDir: string, onProgress?: ProgressFn): Promise<string> {
  const dir = join(dataDir, CIFAR100_VENDORED.folder);
  const target = join(dataDir, CIFAR100_VENDORED.cache);
  const sums = await vendoredCifar100Sums(dataDir);
  const archiveSum = sums.get(CIFAR100_BINARY_URL.archive);
  if (!archiveSum) {
    throw new NoiselabError(`${join(dir, CIFAR100_VENDORED.sums)}: no line for the archive`, dir);
  }
  const stamp = join(target, ".archive-sha256");
  if (await exists(stamp) && (await Deno.readTextFile(stamp)).trim() === archiveSum) return target;

  const partSumsPath = join(dir, CIFAR100_VENDORED.partSums);
  const partSums = parseSha256Sums(await Deno.readTextFile(partSumsPath), partSumsPath);
  const names = [...partSums.keys()].filter((n) => n.startsWith(CIFAR100_VENDORED.partPrefix)).sort();
  if (names.length === 0) throw new NoiselabError(`${partSumsPath}: lists no archive parts`, partSumsPath);
  const parts: Uint8Array[] = [];
  for (const [i, name] of names.entries()) {
    const path = join(dir, name);
    onProgress?.({ phase: "verify vendored CIFAR-100 parts", done: i, total: names.length });
    if (!(await exists(path))) {
      throw new NoiselabError(`${path}: missing part of the vendored CIFAR-100 archive`, path);
    }
    const bytes = await Deno.readFile(path);
    const got = sha256Hex(bytes);
    if (got !== partSums.get(name)) {
      throw new NoiselabError(
        `${path}: sha256 mismatch (expected ${partSums.get(name)}, got ${got}); restore it with git checkout`,
        path,
      );
    }
    parts.push(bytes);
  }
  const total = parts.reduce((s, p) => s + p.length, 0);
  const gz = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    gz.set(p, off);
    off += p.length;
  }
  const label = join(dir, `${CIFAR100_VENDORED.partPrefix}*`);
  const got = sha256Hex(gz);
  if (got !== archiveSum) {
    throw new NoiselabError(`${label}: re-assembled archive sha256 ${got}, expected ${archiveSum}`, label);
  }
  onProgress?.({ phase: "unpack vendored CIFAR-100", done: 0, total: 1 });
  const entries = await readTarGz(gz, label, (n) => sums.has(n));
  const tmp = `${target}.tmp-${Deno.pid}-${Math.random().toString(36).slice(2, 8)}`;
  try {
    await Deno.mkdir(join(tmp, CIFAR100_BINARY_URL.folder), { recursive: true });
    for (const e of entries) {
      const want = sums.get(e.name)!;
      const have = sha256Hex(e.data);
      if (have !== want) {
        throw new NoiselabError(`${label}: ${e.name} sha256 ${have}, expected ${want}`, label);
      }
      await Deno.writeFile(join(tmp, e.name), e.data);
    }
    for (const name of sums.keys()) {
      if (name !== CIFAR100_BINARY_URL.archive && !entries.some((e) => e.name === name)) {
        throw new NoiselabError(`${label}: the archive has no ${name}`, label);
      }
    }
    await Deno.writeTextFile(join(tmp, ".archive-sha256"), archiveSum + "\n");
    await Deno.remove(target, { recursive: true }).catch(() => {});
    await Deno.rename(tmp, target);
  } catch (e) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw e;
  }
  return target;
}

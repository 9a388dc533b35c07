/**
 * Reading `.tar.gz` archives into memory (node:zlib + tar-stream), with errors
 * that name the archive. The archives noiselab reads are small enough
 * (CIFAR: ≤ 180 MB unpacked) to hold in memory.
 * @module
 */
import { gunzipSync } from "node:zlib";
import tar from "tar-stream";
import { NoiselabError } from "../util/errors.ts";

/** One regular file from an archive. */
export interface TarEntry {
  /** Path inside the archive (no leading `./`). */
  name: string;
  data: Uint8Array;
}

function concat(chunks: Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  let len = 0;
  for (const c of chunks) len += c.length;
  const out = new Uint8Array(len);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/**
 * Gunzip `gz` (the bytes of `label`) and return its regular files, keeping only
 * those for which `keep(name)` is true. Corrupt gzip or tar data raise a
 * NoiselabError naming `label`.
 */
export async function readTarGz(
  gz: Uint8Array,
  label: string,
  keep: (name: string) => boolean = () => true,
): Promise<TarEntry[]> {
  let raw: Uint8Array;
  try {
    raw = gunzipSync(gz);
  } catch (e) {
    throw new NoiselabError(
      `${label}: not a valid gzip file or truncated (${(e as Error).message}); delete it and fetch it again`,
      label,
    );
  }
  const out: TarEntry[] = [];
  const ex = tar.extract();
  ex.end(raw);
  try {
    for await (const entry of ex) {
      const name = String(entry.header.name).replace(/^\.\//, "");
      if (entry.header.type === "file" && keep(name)) {
        const chunks: Uint8Array[] = [];
        for await (const c of entry) chunks.push(c as Uint8Array);
        const data = concat(chunks);
        if (entry.header.size !== undefined && data.length !== entry.header.size) {
          throw new Error(`entry ${name} is truncated`);
        }
        out.push({ name, data });
      } else {
        entry.resume();
      }
    }
  } catch (e) {
    throw new NoiselabError(
      `${label}: corrupt or truncated tar archive (${(e as Error).message}); delete it and fetch it again`,
      label,
    );
  }
  return out;
}

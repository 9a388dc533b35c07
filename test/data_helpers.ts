/** Helpers for the data tests: generated CIFAR files and archives. */
import { gzipSync } from "node:zlib";
import { createHash } from "node:crypto";
import tar from "tar-stream";

/** The pixel value the generated binary files hold at (record i, channel c, row y, column x). */
export function genPixel(i: number, c: number, y: number, x: number): number {
  return (i * 11 + c * 37 + y * 5 + x * 3) & 255;
}

/** Records in the official CIFAR binary layout (CHW pixels). `labels` are 1 or 2 bytes per record. */
export function makeBinaryRecords(labels: number[][], firstIndex = 0): Uint8Array {
  const lb = labels[0].length;
  const rec = lb + 3072;
  const out = new Uint8Array(labels.length * rec);
  labels.forEach((ls, r) => {
    const off = r * rec;
    ls.forEach((l, j) => out[off + j] = l);
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < 32; y++) {
        for (let x = 0; x < 32; x++) {
          out[off + lb + c * 1024 + y * 32 + x] = genPixel(firstIndex + r, c, y, x);
        }
      }
    }
  });
  return out;
}

/** A gzipped tar of the given files (in the given order). */
export async function makeTarGz(files: { name: string; data: Uint8Array | string }[]): Promise<Uint8Array> {
  const pack = tar.pack();
  const chunks: Uint8Array[] = [];
  const done = (async () => {
    for await (const c of pack) chunks.push(c as Uint8Array);
  })();
  for (const f of files) {
    const data = typeof f.data === "string" ? new TextEncoder().encode(f.data) : f.data;
    await new Promise<void>((res, rej) =>
      pack.entry({ name: f.name, size: data.length }, data, (e) => e ? rej(e) : res())
    );
  }
  pack.finalize();
  await done;
  let len = 0;
  for (const c of chunks) len += c.length;
  const tarBytes = new Uint8Array(len);
  let off = 0;
  for (const c of chunks) {
    tarBytes.set(c, off);
    off += c.length;
  }
  return new Uint8Array(gzipSync(tarBytes));
}

/** md5 hex of bytes. */
export function md5Hex(b: Uint8Array): string {
  return createHash("md5").update(b).digest("hex");
}

/** sha256 hex of bytes. */
export function sha256HexOf(b: Uint8Array): string {
  return createHash("sha256").update(b).digest("hex");
}

/** A fresh temp folder (removed by the caller). */
export function tempDir(): Promise<string> {
  return Deno.makeTempDir({ prefix: "noiselab-data-test-" });
}

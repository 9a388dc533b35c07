/**
 * Downloading a file with md5 verification. The body is streamed to a temp
 * file next to the destination, hashed on the way, and renamed into place
 * only when the md5 matches; on any failure nothing is left behind.
 * @module
 */
import { createHash } from "node:crypto";
import { basename, dirname } from "node:path";
import { NoiselabError } from "../util/errors.ts";
import type { DownloadSource, ProgressFn } from "./types.ts";

/** Options for {@link downloadVerified}. */
export interface DownloadOptions extends DownloadSource {
  /** Final path of the file. */
  dest: string;
  onProgress?: ProgressFn;
}

/**
 * Fetch `url` (http(s) or file URL) to `dest`, verifying its md5. Throws a
 * NoiselabError (and leaves no file at `dest` or any temp file) when the
 * download fails or the md5 differs.
 */
export async function downloadVerified(opts: DownloadOptions): Promise<string> {
  const { url, md5, dest, onProgress } = opts;
  if (!/^[0-9a-f]{32}$/i.test(md5)) {
    throw new NoiselabError(`md5: expected 32 hex digits for ${url}, got "${md5}"`, "md5");
  }
  await Deno.mkdir(dirname(dest), { recursive: true });
  const tmp = `${dest}.tmp-${Deno.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const phase = `download ${basename(dest)}`;
  let file: Deno.FsFile | undefined;
  try {
    let res: Response;
    try {
      res = await fetch(url);
    } catch (e) {
      throw new NoiselabError(`download of ${url} failed: ${(e as Error).message}`, url);
    }
    if (!res.ok || !res.body) {
      await res.body?.cancel();
      throw new NoiselabError(`download of ${url} failed: HTTP ${res.status} ${res.statusText}`, url);
    }
    const total = Number(res.headers.get("content-length") ?? 0);
    const hash = createHash("md5");
    file = await Deno.open(tmp, { write: true, create: true, truncate: true });
    let done = 0;
    let lastReport = 0;
    for await (const chunk of res.body) {
      hash.update(chunk);
      let off = 0;
      while (off < chunk.length) off += await file.write(chunk.subarray(off));
      done += chunk.length;
      if (onProgress && (done - lastReport > (1 << 20) || done === total)) {
        lastReport = done;
        onProgress({ phase, done, total });
      }
    }
    file.close();
    file = undefined;
    if (total > 0 && done !== total) {
      throw new NoiselabError(`download of ${url} was cut short: got ${done} of ${total} bytes`, url);
    }
    const got = hash.digest("hex");
    if (got !== md5.toLowerCase()) {
      throw new NoiselabError(
        `download of ${url}: md5 mismatch (expected ${md5.toLowerCase()}, got ${got}); the file was discarded`,
        url,
      );
    }
    await Deno.rename(tmp, dest);
    onProgress?.({ phase, done, total: total || done });
    return dest;
  } catch (e) {
    try {
      file?.close();
    } catch { /* already closed */ }
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { noiseBarPayload, noiseProgressBar } from "../lib/cli/noise.ts";

Deno.test("noise progress bar shows the noise level η, not cli-progress's time-to-finish {eta}", async () => {
  let out = "";
  const stream = new Writable({
    write(chunk, _enc, cb) {
      out += String(chunk);
      cb();
    },
  }) as unknown as NodeJS.WritableStream;
  const bar = noiseProgressBar("all", { stream, noTTYOutput: true });
  bar.start(10, 0, noiseBarPayload(0.3, 0, "-"));
  bar.update(3, noiseBarPayload(0.3, 2, "81.2%"));
  bar.stop();
  await new Promise((r) => setTimeout(r, 10));
  assert.match(out, /η 0\.3 draw 2 acc 81\.2%/, out);
});

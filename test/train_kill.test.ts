/**
 * A real kill: `train` runs as a separate process, is sent SIGKILL as soon as
 * its first epoch checkpoint is on disk, and is started again. The resumed run
 * must pick up from the checkpoint (not from scratch) and end with exactly the
 * weights of a run that was never interrupted. (test/train_loop.test.ts checks
 * the same in-process with a stop signal; this one checks that what is on disk
 * after an abrupt kill is enough.)
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { projectRoot } from "../lib/util/paths.ts";

const MAIN = join(projectRoot, "lib", "cli", "main.ts");
const ARGS = [
  "train",
  "--model",
  "resnet8",
  "--width",
  "8",
  "--train-size",
  "2000",
  "--test-size",
  "200",
  "--epochs",
  "3",
  "--batch-size",
  "32",
  "--seed",
  "5",
  "--json",
];

function command(results: string): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...ARGS],
    // pin the code version so the model id does not depend on unrelated edits under lib/
    env: { NO_COLOR: "1", NOISELAB_RESULTS_DIR: results, NOISELAB_LIB_VERSION: "kill-test" },
    cwd: projectRoot,
    stdout: "piped",
    stderr: "piped",
  });
}

function findCheckpoint(results: string): string | undefined {
  try {
    for (const e of Deno.readDirSync(join(results, "models"))) {
      const p = join(results, "models", e.name, "checkpoint", "ckpt.bin");
      try {
        if (Deno.statSync(p).isFile) return join(results, "models", e.name);
      } catch { /* not yet */ }
    }
  } catch { /* no models folder yet */ }
  return undefined;
}

async function runToEnd(results: string): Promise<{ id: string; path: string; resumedFromEpoch: number }> {
  const out = await command(results).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr);
  const o = JSON.parse(new TextDecoder().decode(out.stdout));
  return { id: o.id, path: o.path, resumedFromEpoch: o.provenance.resumedFromEpoch };
}

Deno.test("train killed with SIGKILL after its first checkpoint resumes and ends bitwise equal to an uninterrupted run", async () => {
  const killed = await Deno.makeTempDir({ prefix: "noiselab-kill-" });
  const clean = await Deno.makeTempDir({ prefix: "noiselab-nokill-" });
  try {
    const child = command(killed).spawn();
    let dir: string | undefined;
    const t0 = Date.now();
    while (!(dir = findCheckpoint(killed))) {
      if (Date.now() - t0 > 120_000) throw new Error("no checkpoint appeared within 120 s");
      await new Promise((r) => setTimeout(r, 5));
    }
    child.kill("SIGKILL");
    const status = await child.status;
    await child.stdout.cancel();
    await child.stderr.cancel();
    assert.equal(status.success, false, "the first run was killed, not finished");
    assert.throws(() => Deno.statSync(join(dir, "meta.json")), "a killed run leaves no finished model");

    const resumed = await runToEnd(killed);
    assert.ok(resumed.resumedFromEpoch >= 1, `resumed from epoch ${resumed.resumedFromEpoch}`);
    const straight = await runToEnd(clean);
    assert.equal(straight.resumedFromEpoch, 0);
    assert.equal(resumed.id, straight.id);
    const a = Deno.readFileSync(join(resumed.path, "weights.bin"));
    const b = Deno.readFileSync(join(straight.path, "weights.bin"));
    assert.equal(a.length, b.length);
    assert.ok(a.every((v, i) => v === b[i]), "resumed weights equal the uninterrupted run's bitwise");
  } finally {
    await Deno.remove(killed, { recursive: true }).catch(() => {});
    await Deno.remove(clean, { recursive: true }).catch(() => {});
  }
});

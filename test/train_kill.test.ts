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

/** Hang guards for the first checkpoint: the child's CPU time, and (for a child stuck idle) wall time. */
const CHECKPOINT_CPU_S = 300;
const CHECKPOINT_WALL_MS = 30 * 60_000;
const CLOCK_TICKS = 100; // USER_HZ, 100 on Linux

/** User + system CPU seconds of a running process (all its threads), 0 once it is gone. */
function cpuSeconds(pid: number): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // f[0] is field 3 (state)
    return (Number(f[11]) + Number(f[12])) / CLOCK_TICKS; // fields 14 (utime) and 15 (stime)
  } catch {
    return 0;
  }
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
    // Drain both pipes while waiting (a full pipe would stall the child) and keep stderr for messages.
    const stderr = new Response(child.stderr).text();
    const stdout = new Response(child.stdout).arrayBuffer();
    let exited = false;
    child.status.then(() => (exited = true));
    let dir: string | undefined;
    const t0 = Date.now();
    // The deadline is on the child's own CPU time, not on the wall clock: with other work sharing the
    // two cores the first epoch may take many times longer in wall time, but not in CPU time. (The
    // first checkpoint takes a few CPU-seconds; 300 is a hang guard, not a speed check.) The wall-clock
    // guard only catches a child that is stuck without using any CPU.
    while (!(dir = findCheckpoint(killed))) {
      if (exited && !(dir = findCheckpoint(killed))) {
        throw new Error(`train exited before its first checkpoint:\n${await stderr}`);
      }
      const cpu = cpuSeconds(child.pid);
      if (cpu > CHECKPOINT_CPU_S || Date.now() - t0 > CHECKPOINT_WALL_MS) {
        child.kill("SIGKILL");
        await child.status;
        throw new Error(
          `no checkpoint after ${cpu.toFixed(0)} CPU-s / ${
            ((Date.now() - t0) / 1000).toFixed(0)
          } s:\n${await stderr}`,
        );
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    child.kill("SIGKILL");
    const status = await child.status;
    await stdout;
    await stderr;
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

// The smoke study through a real Slurm (Debian's slurm-wlm 22.05 + munge): a single-node cluster on
// this machine (tools/slurm_local.sh: loopback, proctrack/linuxproc, task/none, no cgroups), started as
// this test's own processes and stopped on every exit path. `noiselab plan` + `noiselab slurm --submit`
// fill a temporary store with job arrays (train → sweep → matched, afterok), the notebook job runs
// `reproduce` on it; then a direct `reproduce` must train and sweep nothing; then one worker is killed
// (SIGKILL) mid-training and the re-submitted job resumes from its checkpoint.
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Plan } from "../lib/study/plan.ts";
import { projectRoot } from "../lib/util/paths.ts";
import { assertEveryCellRan } from "./study_helpers.ts";

const MAIN = join(projectRoot, "lib/cli/main.ts");
const dec = new TextDecoder();

async function sh(cmd: string, args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(cmd, { args, env, cwd: projectRoot, stdout: "piped", stderr: "piped" })
    .output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}
const cli = (args: string[], env: Record<string, string>) =>
  sh(Deno.execPath(), ["run", "-A", "--v8-flags=--max-old-space-size=16384", MAIN, ...args], {
    NOISELAB_THREADS: "1",
    ...env,
  });

async function waitFor(
  what: string,
  cond: () => Promise<boolean>,
  seconds: number,
  every = 1000,
): Promise<void> {
  const end = Date.now() + seconds * 1000;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out after ${seconds} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

/**
 * `noiselab slurm ... --submit` with 2 CPUs and 2G per task: the engine's reduction layout runs 2 threads,
 * so 1-CPU tasks would oversubscribe the node (README "The thread count does not change the numbers").
 */
function submitSlurm(args: string[], env: Record<string, string>) {
  return cli(["slurm", ...args, "--submit", "--cpus-per-task", "2", "--mem", "2G"], env);
}

/** Job ids printed by submit.sh ("train: job 12 (18 task(s))", "notebooks: job 15"). */
function jobIds(stdout: string): Record<string, string> {
  return Object.fromEntries([...stdout.matchAll(/^(\w+): job (\d+)/gm)].map((m) => [m[1], m[2]]));
}

async function queueEmpty(env: Record<string, string>, ids: string[]): Promise<boolean> {
  const r = await sh("squeue", ["-h", "-o", "%i %T %r", "-j", ids.join(",")], env);
  return r.stdout.trim() === "";
}

/** Model folders with their meta.json mtime, and sweep files: what a run that computes nothing leaves alone. */
function storeState(store: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(join(store, "models"))) {
    const st = Deno.statSync(join(store, "models", e.name, "meta.json"));
    out.push(`model ${e.name} ${st.mtime?.getTime()}`);
  }
  for (const e of Deno.readDirSync(join(store, "sweeps"))) {
    out.push(`sweep ${e.name} ${Deno.statSync(join(store, "sweeps", e.name)).mtime?.getTime()}`);
  }
  return out.sort();
}

Deno.test({
  name:
    "slurm: the smoke study as job arrays on a real single-node Slurm; the notebooks then compute nothing; a killed worker resumes",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const inst = await sh("bash", ["tools/slurm_local.sh", "install"]);
    assert.equal(inst.code, 0, inst.stdout + inst.stderr);
    console.log(inst.stdout.trim());
    const tmp = await Deno.makeTempDir({ prefix: "noiselab-slurm-" });
    const cluster = join(tmp, "cluster"), store = join(tmp, "store");
    try {
      const up = await sh("bash", ["tools/slurm_local.sh", "start", cluster]);
      assert.equal(up.code, 0, `the local Slurm did not start:\n${up.stdout}\n${up.stderr}`);
      const env = {
        SLURM_CONF: join(cluster, "slurm.conf"),
        NOISELAB_RESULTS_DIR: store,
        NOISELAB_PROGRESS_SECONDS: "2",
      };

      // 1. the whole smoke study through Slurm
      let r = await cli(["plan", "--profile", "smoke", "--out", join(tmp, "plan.json")], env);
      assert.equal(r.code, 0, r.stderr);
      const t0 = performance.now();
      r = await submitSlurm(
        ["--plan", join(tmp, "plan.json"), "--time", "0:20:00", "--pack-seconds", "60"],
        env,
      );
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const ids = jobIds(r.stdout);
      assert.ok(ids.train && ids.sweep && ids.matched && ids.notebooks, r.stdout);
      await waitFor("the smoke study's jobs", () => queueEmpty(env, Object.values(ids)), 900, 2000);
      const slurmSeconds = (performance.now() - t0) / 1000;
      r = await cli(["plan", "--profile", "smoke", "--json"], env);
      const after: Plan = JSON.parse(r.stdout);
      const todo = after.jobs.filter((j) => !j.done);
      assert.deepEqual(todo.map((j) => j.label), [], "jobs not in the store after the arrays");
      assertEveryCellRan(join(store, "notebooks"), { code: 0, stderr: "(the Slurm notebook job)" });
      const logs = [...Deno.readDirSync(join(tmp, "slurm", "logs"))].map((e) => e.name);
      assert.ok(logs.some((n) => n.startsWith("noiselab-train-")), `no training logs: ${logs}`);
      const progress = logs.filter((n) => n.startsWith("noiselab-train-")).map((n) =>
        Deno.readTextFileSync(join(tmp, "slurm", "logs", n))
      ).join("");
      assert.match(
        progress,
        /epoch-end epoch 1\/3 step \d+\/\d+ loss/,
        "plain progress lines in the job logs",
      );
      assert.ok(!progress.includes("\u001b["), "no terminal control sequences in job logs");

      // 2. the notebooks from the store: nothing trained, nothing swept
      const before = storeState(store);
      const t1 = performance.now();
      r = await cli(["reproduce", "--profile", "smoke", "--out", join(tmp, "notebooks")], env);
      assertEveryCellRan(join(tmp, "notebooks"), r);
      const fromStore = (performance.now() - t1) / 1000;
      assert.deepEqual(storeState(store), before, "reproduce changed the store");
      assert.doesNotMatch(r.stderr, /\btrained \(/);
      console.log(
        `smoke study through Slurm: ${
          slurmSeconds.toFixed(0)
        } s (${after.jobs.length} jobs + the notebook job); ` +
          `reproduce from the filled store: ${fromStore.toFixed(0)} s`,
      );

      // 3. a worker killed mid-training; the re-submitted job resumes from its checkpoint
      const p2 = join(tmp, "plan2.json");
      r = await cli([
        "plan",
        "--profile",
        "smoke",
        "--only",
        "02",
        "-p",
        "bnCounts=[3]",
        "-p",
        "seeds=[0]",
        "-p",
        "epochs=12",
        "--out",
        p2,
      ], env);
      assert.equal(r.code, 0, r.stderr);
      const plan2: Plan = JSON.parse(Deno.readTextFileSync(p2));
      const train = plan2.jobs.find((j) => j.kind === "train" && !j.done)!;
      assert.ok(train, "plan2 has a training job to do");
      r = await submitSlurm(["--plan", p2, "--dir", join(tmp, "slurm2")], env);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const ids2 = jobIds(r.stdout);
      const ckpt = join(store, "models", train.id, "checkpoint", "ckpt.bin");
      const lockPath = join(store, "jobs", `${train.id}.lock`);
      await waitFor(
        "the first epoch's checkpoint",
        () => {
          try {
            Deno.statSync(ckpt);
            Deno.statSync(lockPath);
            return Promise.resolve(true);
          } catch {
            return Promise.resolve(false);
          }
        },
        300,
        100,
      );
      const holder = JSON.parse(Deno.readTextFileSync(lockPath));
      Deno.kill(holder.pid, "SIGKILL");
      await waitFor("the killed array task to leave the queue", () => queueEmpty(env, [ids2.train]), 120);
      await sh("scancel", Object.values(ids2), env); // dependants can never run now (afterok)
      await waitFor("the queue to drain", () => queueEmpty(env, Object.values(ids2)), 120);
      assert.equal(
        (() => {
          try {
            Deno.statSync(join(store, "models", train.id, "meta.json"));
            return true;
          } catch {
            return false;
          }
        })(),
        false,
        "the killed training finished anyway (too fast to kill?)",
      );
      r = await submitSlurm(["--plan", p2, "--dir", join(tmp, "slurm2")], env);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const ids3 = jobIds(r.stdout);
      await waitFor("the re-submitted jobs", () => queueEmpty(env, Object.values(ids3)), 600, 2000);
      const nbLog = [...Deno.readDirSync(join(tmp, "slurm2", "logs"))].filter((e) =>
        e.name.startsWith("noiselab-notebooks-")
      )
        .map((e) => Deno.readTextFileSync(join(tmp, "slurm2", "logs", e.name))).join("");
      assert.match(
        nbLog,
        /\[reproduce\] 02-bn-layer-count: ok/,
        "the notebook job runs the planned notebook",
      );
      assert.doesNotMatch(nbLog, /\[reproduce\] 01-/, "the notebook job runs the planned notebook (02) only");
      const meta = JSON.parse(Deno.readTextFileSync(join(store, "models", train.id, "meta.json")));
      assert.ok(
        meta.provenance.resumedFromEpoch >= 1,
        `did not resume: resumedFromEpoch ${meta.provenance.resumedFromEpoch}`,
      );
      const log = Deno.readTextFileSync(join(store, "jobs", `${train.id}.log`));
      assert.match(log, /breaking a stale lock: holder pid \d+ on .* is gone/);
      r = await cli([
        "plan",
        "--profile",
        "smoke",
        "--only",
        "02",
        "-p",
        "bnCounts=[3]",
        "-p",
        "seeds=[0]",
        "-p",
        "epochs=12",
        "--json",
      ], env);
      assert.ok(
        (JSON.parse(r.stdout) as Plan).jobs.every((j) => j.done),
        "plan2 not done after re-submission",
      );
    } finally {
      const down = await sh("bash", ["tools/slurm_local.sh", "stop", cluster]);
      if (down.code !== 0) console.error(down.stdout + down.stderr);
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
    }
  },
});

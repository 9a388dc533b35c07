// The plan of a study (lib/study/plan.ts) against what the notebooks really compute, the job lock
// (lib/study/lock.ts) and the worker's bookkeeping (lib/study/worker.ts). Real runs, no mocks: the
// smoke profile's notebooks are executed by `reproduce` into a temporary store.
import assert from "node:assert/strict";
import { join } from "node:path";
import { hostname } from "node:os";
import { acquireLock, readLock } from "../lib/study/lock.ts";
import type { Plan } from "../lib/study/plan.ts";
import { throughputOf } from "../lib/study/plan.ts";
import { projectRoot } from "../lib/util/paths.ts";
import { assertEveryCellRan } from "./study_helpers.ts";

const MAIN = join(projectRoot, "lib/cli/main.ts");

async function cli(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--v8-flags=--max-old-space-size=16384", MAIN, ...args],
    env: { NOISELAB_THREADS: "1", ...env },
    cwd: projectRoot,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("plan: bad input exits 2 naming the flag or parameter, before any work", async () => {
  const store = await Deno.makeTempDir();
  try {
    const env = { NOISELAB_RESULTS_DIR: store };
    let r = await cli(["plan", "--profile", "nope"], env);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /profile/);
    r = await cli(["plan", "--profile", "smoke", "-p", "draws=0"], env);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /draws/);
    r = await cli(["plan", "--bogus"], env);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--bogus/);
    r = await cli(["worker", "--plan", join(store, "missing.json"), "--index", "0"], env);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--plan/);
    assert.deepEqual([...Deno.readDirSync(store)], [], "nothing written");
  } finally {
    await Deno.remove(store, { recursive: true });
  }
});

Deno.test("plan: the cost table scales with depth and width", () => {
  const r20 = throughputOf("resnet20", null, true), r44 = throughputOf("resnet44", null, true);
  assert.equal(r20.train, 1018);
  assert.equal(r44.train, 482);
  assert.equal(throughputOf("resnet8", 8, true).train, 1018, "small models: capped at ResNet-20's speed");
  assert.ok(Math.abs(throughputOf("resnet110", null, true).train - 482 * 44 / 110) < 1e-9);
  assert.ok(throughputOf("vgg11", 32, true).train > throughputOf("vgg16", null, true).train);
});

Deno.test("lock: atomic, busy while the holder lives, stale when it is dead or silent", async () => {
  const store = await Deno.makeTempDir();
  try {
    const a = await acquireLock(store, "job1");
    assert.ok("release" in a);
    const held = await readLock(a.path);
    assert.equal(held?.pid, Deno.pid);
    assert.equal(held?.host, hostname());
    // a second taker sees it held by a live process (this one)
    const b = await acquireLock(store, "job1");
    assert.ok("heldBy" in b && b.heldBy.pid === Deno.pid);
    await a.release();
    assert.equal(await readLock(a.path), undefined);
    // a lock of a dead process on this host is stale and taken over
    const dead = new Deno.Command("true").spawn();
    const deadPid = dead.pid;
    await dead.status;
    await Deno.writeTextFile(
      join(store, "jobs", "job2.lock"),
      JSON.stringify({ host: hostname(), pid: deadPid, startedAt: "then", job: "job2" }),
    );
    const why: string[] = [];
    const c = await acquireLock(store, "job2", { onStale: (w) => why.push(w) });
    assert.ok("release" in c, "stale lock not broken");
    assert.match(why[0], /is gone/);
    await c.release();
    // a lock of another host is stale only when its heartbeat is old
    const other = join(store, "jobs", "job3.lock");
    await Deno.writeTextFile(
      other,
      JSON.stringify({ host: "elsewhere", pid: 1, startedAt: "then", job: "job3" }),
    );
    assert.ok("heldBy" in await acquireLock(store, "job3", { staleSeconds: 60 }));
    const old = new Date(Date.now() - 120_000);
    await Deno.utime(other, old, old);
    const d = await acquireLock(store, "job3", { staleSeconds: 60, onStale: (w) => why.push(w) });
    assert.ok("release" in d);
    assert.match(why[1], /heartbeat of elsewhere:1/);
    await d.release();
  } finally {
    await Deno.remove(store, { recursive: true });
  }
});

Deno.test({
  name:
    "plan: matches what the notebooks compute (smoke: none done before reproduce, all done after); worker skips done jobs",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const tmp = await Deno.makeTempDir();
    const store = join(tmp, "store");
    const env = { NOISELAB_RESULTS_DIR: store };
    try {
      let r = await cli(["plan", "--profile", "smoke", "--json", "--out", join(tmp, "plan.json")], env);
      assert.equal(r.code, 0, r.stderr);
      const before: Plan = JSON.parse(r.stdout);
      assert.ok(before.jobs.length > 20);
      assert.equal(before.jobs.filter((j) => j.done).length, 0);
      assert.equal(new Set(before.jobs.map((j) => j.id)).size, before.jobs.length, "ids are unique");
      for (const j of before.jobs) {
        assert.equal(j.index, before.jobs.indexOf(j));
        for (const d of j.deps) {
          const dj = before.jobs.find((x) => x.id === d)!;
          assert.ok(dj && dj.phase < j.phase, `${j.label} depends on a later job`);
        }
      }
      // the table form
      r = await cli(["plan", "--profile", "smoke"], env);
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stdout,
        /\d+ jobs \(\d+ train, \d+ sweep, \d+ matched-accuracy sweep\), 0 done; estimated/,
      );

      const t0 = performance.now();
      r = await cli(["reproduce", "--profile", "smoke", "--out", join(tmp, "notebooks")], env);
      assertEveryCellRan(join(tmp, "notebooks"), r);
      console.log(
        `reproduce --profile smoke from an empty store: ${((performance.now() - t0) / 1000).toFixed(1)} s`,
      );

      r = await cli(["plan", "--profile", "smoke", "--json"], env);
      assert.equal(r.code, 0, r.stderr);
      const after: Plan = JSON.parse(r.stdout);
      assert.deepEqual(after.jobs.map((j) => j.id), before.jobs.map((j) => j.id));
      const todo = after.jobs.filter((j) => !j.done);
      assert.deepEqual(todo.map((j) => j.label), [], "jobs the notebooks did not compute");
      // every stored model and sweep is a job of the plan (the plan is not missing anything either)
      const ids = new Set(after.jobs.map((j) => j.id));
      for (const e of Deno.readDirSync(join(store, "models"))) {
        assert.ok(ids.has(e.name), `model ${e.name} not planned`);
      }
      const matchedSnapshots = after.jobs.filter((j) => j.kind === "matched").length;
      const sweepFiles = [...Deno.readDirSync(join(store, "sweeps"))].filter((e) =>
        /^[0-9a-f]{16}\.json$/.test(e.name)
      );
      const unplanned = sweepFiles.filter((e) => !ids.has(e.name.slice(0, 16)));
      assert.ok(unplanned.length <= matchedSnapshots, `sweeps not planned: ${unplanned.map((e) => e.name)}`);

      // a worker on a finished job exits 0 at once and redoes nothing
      const w = await cli(["worker", "--plan", join(tmp, "plan.json"), "--index", "0"], env);
      assert.equal(w.code, 0, w.stderr);
      assert.match(w.stderr, /already in the store/);
      const log = await Deno.readTextFile(join(store, "jobs", `${before.jobs[0].id}.log`));
      assert.match(log, /already in the store/);
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "worker --parallel: a local pool fills the store (cores / N threads each); a failed job leaves its log and state, a re-run redoes only it",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const tmp = await Deno.makeTempDir();
    const store = join(tmp, "store");
    const env = { NOISELAB_RESULTS_DIR: store };
    const planPath = join(tmp, "plan.json");
    try {
      const args = ["--profile", "smoke", "--only", "02", "-p", "bnCounts=[0,3]", "-p", "seeds=[0]"];
      let r = await cli(["plan", ...args, "--out", planPath], env);
      assert.equal(r.code, 0, r.stderr);
      const plan: Plan = JSON.parse(await Deno.readTextFile(planPath));
      assert.deepEqual(plan.jobs.map((j) => j.kind), ["train", "train", "sweep", "sweep"]);
      const [a, b] = plan.jobs;
      // job b fails: its checkpoint is corrupt
      await Deno.mkdir(join(store, "models", b.id, "checkpoint"), { recursive: true });
      await Deno.writeTextFile(join(store, "models", b.id, "checkpoint", "ckpt.bin"), "garbage");
      r = await cli(["worker", "--plan", planPath, "--parallel", "2"], env);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /2 worker\(s\) × \d+ thread\(s\)/);
      assert.match(r.stderr, new RegExp(`FAILED \\[1\\]`));
      assert.match(r.stderr, /skip {2}\[3\].*a dependency failed/);
      const failed = JSON.parse(await Deno.readTextFile(join(store, "jobs", `${b.id}.failed.json`)));
      assert.match(failed.error, /corrupt checkpoint/);
      assert.match(
        await Deno.readTextFile(join(store, "jobs", `${b.id}.log`)),
        /FAILED: .*corrupt checkpoint/,
      );
      const doneA = JSON.parse(await Deno.readTextFile(join(store, "jobs", `${a.id}.done.json`)));
      const cores = navigator.hardwareConcurrency;
      assert.equal(doneA.threads, Math.max(1, Math.floor(cores / 2)), "NOISELAB_THREADS = cores / N");
      const metaA = Deno.statSync(join(store, "models", a.id, "meta.json")).mtime?.getTime();
      // fixed: the re-run runs the failed job and its dependant only
      await Deno.remove(join(store, "models", b.id, "checkpoint"), { recursive: true });
      r = await cli(["worker", "--plan", planPath, "--parallel", "2"], env);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /pool: 2 job\(s\) to run/);
      assert.equal(
        Deno.statSync(join(store, "models", a.id, "meta.json")).mtime?.getTime(),
        metaA,
        "finished model redone",
      );
      await assert.rejects(Deno.stat(join(store, "jobs", `${b.id}.failed.json`)));
      r = await cli(["plan", ...args, "--json"], env);
      assert.ok((JSON.parse(r.stdout) as Plan).jobs.every((j) => j.done));
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

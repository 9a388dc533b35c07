/**
 * A notebook can never use parameters other than those its cells show: the parameters cell
 * resolves and validates them (nb.parameters), results carry the generation they were computed
 * under, and a cell mixing generations, or running after the parameters cell failed, refuses.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { listNotebooks, parameterNames } from "../lib/cli/notebook_runner.ts";
import * as nb from "../lib/notebook/mod.ts";
import { NoiselabError } from "../lib/util/errors.ts";
import { projectRoot } from "../lib/util/paths.ts";
import { assertParametersOk, generationOf, stamp } from "../lib/util/session.ts";

Deno.test("parameters: resolved and frozen in the parameters cell, stamped with a new generation each run", () => {
  const a = nb.parameters("01", { profile: "smoke", draws: 2 });
  const b = nb.parameters("01", { profile: "smoke", draws: 3 });
  assert.equal(a.draws, 2);
  assert.equal(b.draws, 3);
  assert.ok(Object.isFrozen(a) && Object.isFrozen(a.etas), "parameters can be changed after resolution");
  assert.ok(generationOf(a)! < generationOf(b)!);
  const c = nb.withParameters(b, { seeds: [b.seeds[0]] });
  assert.equal(generationOf(c), generationOf(b), "a derived copy keeps its generation");
  assert.throws(() => nb.withParameters(b, { draws: 0 }), /parameter draws/);
});

Deno.test("parameters: a later cell refuses results of an earlier run of the parameters cell, naming the change", () => {
  const p1 = nb.parameters("01", { profile: "smoke", draws: 2 });
  const trained = stamp([{ label: "ResNet-8 + BN" }], generationOf(p1));
  const dataset = stamp({ name: "cifar10" }, generationOf(p1));
  const p2 = nb.parameters("01", { profile: "smoke", draws: 5 });
  const call = () =>
    nb.sweepVariant(p2, trained[0] as never, nb.defaultCondition(p2), dataset as never);
  assert.throws(call, (e: unknown) => {
    assert.ok(e instanceof NoiselabError);
    assert.match(e.message, /`trained` was computed with the parameters of an earlier run/);
    assert.match(e.message, /draws 2 → 5/);
    assert.match(e.message, /Run All Below/);
    return true;
  });
  // the old parameters object itself is refused too
  assert.throws(() => nb.setupStudy(p1), /stale parameters.*draws 2 → 5/s);
});

Deno.test("parameters: after the parameters cell fails, cells below refuse instead of using the previous values", () => {
  const ok = nb.parameters("01", { profile: "smoke" });
  assert.throws(() => nb.parameters("01", { profile: "smoke", etas: [-1] }), /parameter etas/);
  assert.throws(() => nb.setupStudy(ok), /the parameters cell failed \(parameter etas/);
  assert.throws(() => assertParametersOk("exportFigure(x)"), /exportFigure\(x\) refused: the parameters cell failed/);
  nb.parameters("01", { profile: "smoke" }); // fixed and re-run
  assertParametersOk("exportFigure(x)");
});

Deno.test("notebooks: every parameters cell declares exactly the profile knobs, one per line, and resolves them there", async () => {
  const knobs = Object.keys(nb.profileParams("01", "smoke")).filter((k) => k !== "profile").sort();
  for (const f of await listNotebooks(join(projectRoot, "notebooks"))) {
    const declared = await parameterNames(f.path);
    assert.deepEqual(Object.keys(declared).filter((k) => k !== "profile" && k !== "P").sort(), knobs, f.stem);
    const j = JSON.parse(await Deno.readTextFile(f.path));
    const cell = j.cells.find((c: { metadata?: { tags?: string[] } }) => c.metadata?.tags?.includes("parameters"));
    const src: string = Array.isArray(cell.source) ? cell.source.join("") : cell.source;
    const call = new RegExp(`const P = nb\\.parameters\\("${f.id}", \\{([^}]*)\\}\\);`).exec(src);
    assert.ok(call, `${f.stem}: the parameters cell does not end with nb.parameters("${f.id}", {...})`);
    const passed = call[1].split(",").map((s) => s.trim()).filter(Boolean).sort();
    assert.deepEqual(passed, ["profile", ...knobs].sort(), `${f.stem}: knobs not passed to nb.parameters`);
    for (const k of knobs) {
      assert.match(src, new RegExp(`^const ${k}: [^=]+ = null;( //.*)?$`, "m"), `${f.stem}: ${k} not on one line`);
    }
  }
});

Deno.test("notebooks: each parameters cell is exactly the one derived from PARAMETER_KNOBS (tools/sync_parameters_cell.ts)", async () => {
  const { PARAMETER_KNOBS, parametersCellSource } = await import("../lib/notebook/params_cell.ts");
  assert.deepEqual(
    PARAMETER_KNOBS.map((k) => k.name).sort(),
    Object.keys(nb.profileParams("01", "smoke")).filter((k) => k !== "profile").sort(),
    "PARAMETER_KNOBS and the profile table list different knobs",
  );
  for (const f of await listNotebooks(join(projectRoot, "notebooks"))) {
    const j = JSON.parse(await Deno.readTextFile(f.path));
    const cell = j.cells.find((c: { metadata?: { tags?: string[] } }) => c.metadata?.tags?.includes("parameters"));
    const src: string = Array.isArray(cell.source) ? cell.source.join("") : cell.source;
    assert.equal(
      src,
      parametersCellSource(f.id),
      `${f.stem}: its parameters cell differs from the derived one; run: deno run -A tools/sync_parameters_cell.ts`,
    );
  }
});

Deno.test("parameters: re-running the parameters cell unchanged keeps results valid; a changed value makes shown outputs stale", async () => {
  const { assertFreshOutput } = await import("../lib/util/session.ts");
  const { summarizeByEta } = await import("../lib/analysis/mod.ts");
  const p1 = nb.parameters("01", { profile: "smoke", draws: 2 });
  const rows = stamp([{ series: "a", eta: 0, accuracy: 0.5, normalizedAccuracy: 1, cleanAccuracy: 0.5, modelId: "m", draw: 0 }], generationOf(p1));

  const again = nb.parameters("01", { profile: "smoke", draws: 2 });
  assert.equal(generationOf(again), generationOf(p1), "an unchanged re-run started a new generation");
  const summary = summarizeByEta(rows, () => "a");
  assertFreshOutput("exportTable(x)", summary); // same values: still fresh
  const p2 = nb.parameters("01", { profile: "smoke", draws: 4 });
  // a summary of the old rows: refused, naming the change
  assert.throws(() => assertFreshOutput("exportFigure(x)", summary), /exportFigure\(x\) refused: .*draws 2 → 4.*Run All Below/s);
  // the parameters table of the new run: fine
  assertFreshOutput("showTable", nb.paramsTable(p2));
});

Deno.test("parameters: unknown models and BN-only noise targets are refused in the parameters cell, naming the knob", () => {
  assert.throws(() => nb.parameters("01", { profile: "smoke", models: ["resnet8", "nosuchnet"] }), (e: unknown) => {
    assert.ok(e instanceof NoiselabError);
    assert.equal(e.subject, "models");
    assert.match(e.message, /^parameter models: unknown model "nosuchnet"/);
    return true;
  });
  assert.throws(() => nb.parameters("01", { profile: "smoke", noiseTargets: ["bn-var"] }), /^.*parameter noiseTargets: \["bn-var"\] perturbs only BatchNorm arrays/);
  nb.parameters("03", { profile: "smoke", noiseTargets: ["bn-var"] }); // notebook 03 compares BN conditions: allowed
});

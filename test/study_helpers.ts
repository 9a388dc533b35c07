// Helpers of the study tests (test/study_plan.test.ts, test/study_slurm.test.ts).
import assert from "node:assert/strict";
import { join } from "node:path";

/**
 * Every notebook of a reproduce run executed all its code cells: what the plan is compared with (the store
 * the notebooks' computations filled). A notebook that ran every cell but failed afterwards (the runner's
 * own post-processing) is reported, not counted against the plan.
 */
export function assertEveryCellRan(outDir: string, r: { code: number; stderr: string }): void {
  const statuses = [...Deno.readDirSync(outDir)].filter((e) => e.name.endsWith(".status.json"))
    .map((e) => JSON.parse(Deno.readTextFileSync(join(outDir, e.name))));
  assert.ok(statuses.length >= 5, `notebooks run: ${statuses.length}\n${r.stderr.slice(-3000)}`);
  for (const st of statuses) {
    assert.equal(
      st.cellsRun,
      st.cellsTotal,
      `${st.notebook}: ${st.status} at cell ${st.cellsRun}/${st.cellsTotal}: ${st.error}`,
    );
    if (st.status !== "ok") {
      console.warn(`NOTE: ${st.notebook} ran every cell, then ended '${st.status}': ${st.error}`);
    }
  }
}

/**
 * noiselab's Jupyter kernel (tools/kernel/deno: Deno's kernel behind tools/kernel/deno/proxy.py),
 * driven by the real jupyter_client the way the notebook UI drives it (test/kernel/relay_probe.py).
 * Each assertion is a case where Deno 2.9.6's own kernel behaves otherwise (run the probe with
 * --raw to see it): Run All went on after an error, escaped errors passed as "ok", Interrupt
 * killed the kernel.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

Deno.test({
  name: "kernel: Run All stops after an error, escaped errors fail their cell, outputs precede idle, Interrupt keeps the kernel and its state",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const probe = fileURLToPath(new URL("./kernel/relay_probe.py", import.meta.url));
    const out = await new Deno.Command("/usr/bin/python3", { args: [probe], stdout: "piped", stderr: "piped" })
      .output();
    const text = new TextDecoder().decode(out.stdout);
    assert.ok(out.success, `probe failed: ${new TextDecoder().decode(out.stderr).slice(-2000)}`);
    const r = JSON.parse(text.slice(text.indexOf("{")));
    assert.equal(r.relay, true);
    assert.equal(r.plain.status, "ok");
    assert.deepEqual(r.run_all_after_error.statuses, ["error", "aborted", "aborted"]);
    assert.equal(r.run_all_after_error.second_cell_ran, false, "a cell queued after the error ran");
    for (const name of ["unhandled_rejection", "timer_throw"]) {
      const e = r.escaped[name];
      assert.equal(e.status, "error", `${name} passed as success`);
      assert.match(e.evalue, /^the cell finished, but an error escaped it: Error: (lost promise|timer boom)/);
      assert.equal(e.error_outputs.length, 1, `${name}: the error is shown under its own cell`);
    }
    assert.equal(r.escaped.next_cell_status, "ok", "a reported escaped error is not reported again");
    assert.equal(r.late.first, "ok");
    assert.equal(r.late.next, "error", "an error surfacing after its cell finished was lost");
    assert.match(r.late.evalue, /late boom/);
    assert.match(r.late.evalue, /^an error escaped a cell that had already finished: Error: late boom/);
    assert.match(r.late.evalue, /after In \[\d+\] had finished \(it comes from that cell or an earlier one\)/);
    assert.deepEqual(r.interrupt_run_all, ["ok", "aborted", "aborted"], "Interrupt during Run All ran the queued cells");
    assert.equal(r.outputs_before_idle, true, "an output arrived after its cell's idle");
    assert.equal(r.interrupt.alive, true, "Interrupt killed the kernel");
    assert.equal(r.interrupt.state_kept, true, "variables were lost");
    assert.match(r.interrupt.recorded, /1/, "the interrupt was not recorded for noiselab's loops");
    // a noiselab loop (training, sweeps) stops at its next batch with InterruptedError; 400 batches of
    // 25 ms would take 10 s, the interrupt comes after 2.5 s
    assert.equal(r.interrupt_loop.status, "error", JSON.stringify(r.interrupt_loop));
    assert.equal(r.interrupt_loop.ename, "InterruptedError");
    assert.match(r.interrupt_loop.evalue, /demo loop interrupted \(Kernel > Interrupt\)/);
    assert.equal(r.interrupt_loop.alive, true);
  },
});

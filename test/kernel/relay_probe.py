#!/usr/bin/python3
"""Drive noiselab's Jupyter kernel (tools/kernel/deno) the way the notebook UI does and print
what happened as JSON: the evidence for the kernel behaviours test/kernel_relay.test.ts asserts
(and tools/kernel/README.md quotes).

Usage: relay_probe.py [--raw]   (--raw: Deno's own kernel without the relay, for comparison)
"""
import json
import os
import shutil
import sys
import tempfile
import time

from jupyter_client.manager import KernelManager

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
raw = "--raw" in sys.argv
jp = tempfile.mkdtemp(prefix="noiselab-probe-")
os.makedirs(os.path.join(jp, "kernels", "deno"))
spec = json.load(open(os.path.join(ROOT, "tools", "kernel", "deno", "kernel.json")))
if raw:
    spec["argv"] = ["deno", "jupyter", "--kernel", "--conn", "{connection_file}"]
else:
    shutil.copy(os.path.join(ROOT, "tools", "kernel", "deno", "proxy.py"), os.path.join(jp, "kernels", "deno"))
json.dump(spec, open(os.path.join(jp, "kernels", "deno", "kernel.json"), "w"))
os.environ["JUPYTER_PATH"] = jp
work = tempfile.mkdtemp(prefix="noiselab-probe-cwd-")

km = KernelManager(kernel_name="deno")
km.start_kernel(cwd=work)
kc = km.client()
kc.start_channels()
kc.wait_for_ready(120)

replies, outputs, order = {}, {}, []


def pump(until, timeout=30):
    """Read shell and iopub until until() is true or timeout seconds pass."""
    t0 = time.time()
    while time.time() - t0 < timeout and not until():
        try:
            m = kc.get_shell_msg(timeout=0.05)
            replies[m["parent_header"]["msg_id"]] = m["content"]
        except Exception:  # noqa: BLE001 - queue empty
            pass
        try:
            m = kc.get_iopub_msg(timeout=0.05)
        except Exception:  # noqa: BLE001
            continue
        pid = m["parent_header"].get("msg_id")
        t = m["msg_type"]
        c = m["content"]
        if t == "status":
            order.append((pid, c["execution_state"]))
            continue
        text = c.get("text") or c.get("evalue") or json.dumps(c.get("data", {}).get("text/plain", ""))
        outputs.setdefault(pid, []).append({"type": t, "text": text, "ename": c.get("ename")})
        order.append((pid, t))


def idle(mid):
    return (mid, "idle") in order


def done(*mids):
    return lambda: all(m in replies and idle(m) for m in mids)


def ex(code):
    return kc.execute(code, stop_on_error=True)


result = {"relay": not raw}
a = ex("var x = 41; x + 1")
pump(done(a))
result["plain"] = {"status": replies.get(a, {}).get("status"), "outputs": outputs.get(a, [])}

# Run All: three requests queued at once, the first throws
f, g, h = ex('throw new Error("boom")'), ex('globalThis.ranG = true; "g ran"'), ex('"h ran"')
pump(done(f, g, h), 20)
chk = ex("String(globalThis.ranG)")
pump(done(chk))
result["run_all_after_error"] = {
    "statuses": [replies.get(m, {}).get("status") for m in (f, g, h)],
    "second_cell_ran": "true" in "".join(o["text"] for o in outputs.get(chk, [])),
}

# errors that escape a cell
cases = {
    "unhandled_rejection": 'Promise.reject(new Error("lost promise")); "done"',
    "timer_throw": 'setTimeout(() => { throw new Error("timer boom"); }, 5); "done"',
}
result["escaped"] = {}
for name, code in cases.items():
    m = ex(code)
    pump(done(m), 20)
    result["escaped"][name] = {
        "status": replies.get(m, {}).get("status"),
        "evalue": replies.get(m, {}).get("evalue"),
        "error_outputs": [o["text"] for o in outputs.get(m, []) if o["type"] == "error"],
    }
after = ex('"next cell"')
pump(done(after))
result["escaped"]["next_cell_status"] = replies.get(after, {}).get("status")
# an error that surfaces after its cell finished is reported by the next cell, saying where it came from
late = ex('setTimeout(() => { throw new Error("late boom"); }, 600); "scheduled"')
pump(done(late))
time.sleep(1.2)
nxt = ex('"the cell after"')
pump(done(nxt))
result["late"] = {"first": replies.get(late, {}).get("status"), "next": replies.get(nxt, {}).get("status"),
                  "evalue": replies.get(nxt, {}).get("evalue")}

# the order of outputs and idle: every output of a cell comes before its idle
m = ex('await Deno.jupyter.display({"text/plain": "shown"}, {raw: true}); 7')
pump(done(m))
seen = [t for (pid, t) in order if pid == m]
result["outputs_before_idle"] = seen[-1] == "idle" and "execute_result" in seen

# interrupt during an await: does the kernel (and its state) survive?
s = ex('await new Promise((r) => setTimeout(r, 3000)); "slept"')
time.sleep(1.0)
km.interrupt_kernel()
pump(done(s), 15)
alive = km.is_alive()
result["interrupt"] = {"alive": alive, "status": replies.get(s, {}).get("status")}
if alive:
    k = ex("x + 2")
    pump(done(k), 10)
    result["interrupt"]["state_kept"] = any("43" in o["text"] for o in outputs.get(k, []))
    k2 = ex("String(globalThis.__noiselab?.interrupts)")
    pump(done(k2), 10)
    result["interrupt"]["recorded"] = "".join(o["text"] for o in outputs.get(k2, []))
    # Interrupt during Run All: the running cell ends, the queued ones are aborted
    q1 = ex('await new Promise((r) => setTimeout(r, 2500)); "q1"')
    q2, q3 = ex('globalThis.ranQ2 = true; "q2"'), ex('"q3"')
    time.sleep(1.0)
    km.interrupt_kernel()
    pump(done(q1, q2, q3), 20)
    result["interrupt_run_all"] = [replies.get(m, {}).get("status") for m in (q1, q2, q3)]
    # noiselab's long loops stop at their next batch (lib/util/interrupt.ts)
    url = "file://" + os.path.join(ROOT, "lib", "util", "interrupt.ts")
    loop = ex(f'const {{ interruptChecker, yieldToEventLoop }} = await import("{url}");\n'
              'const check = interruptChecker("demo loop"); let batches = 0;\n'
              'for (let i = 0; i < 400; i++) { await yieldToEventLoop(); check(); const t = Date.now(); '
              'while (Date.now() - t < 25) {} batches++; }')
    time.sleep(2.5)
    km.interrupt_kernel()
    pump(done(loop), 30)
    rep = replies.get(loop, {})
    result["interrupt_loop"] = {"status": rep.get("status"), "ename": rep.get("ename"), "evalue": rep.get("evalue"),
                                "alive": km.is_alive()}
km.shutdown_kernel(now=True)
shutil.rmtree(jp, ignore_errors=True)
shutil.rmtree(work, ignore_errors=True)
print(json.dumps(result, indent=1))

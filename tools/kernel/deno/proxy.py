#!/usr/bin/python3
"""noiselab's Jupyter kernel: Deno's kernel (`deno jupyter --kernel`) behind a small message relay.

Why a relay and not Deno's kernel as-is (measured on Deno 2.9.6 with jupyter_client 7.4.9,
tools/kernel/README.md has the probes and its output):
  * Run All does not stop after an error. Jupyter sends every cell's execute_request at once
    and relies on the kernel to abort the queued ones after an error (`stop_on_error`, what
    ipykernel does); Deno's kernel runs them all. Here execute requests are queued in the relay
    and sent one at a time; after an error the queued ones get an "aborted" reply, as ipykernel
    does, so the cells below an error never run.
  * Errors that escape a cell pass as success: a rejected promise nobody awaits, or a throw
    inside a timer callback, leaves the cell "ok" and the error nowhere. A listener installed at
    start-up records them; after every cell the relay runs a hidden check
    (`globalThis.__noiselabSettle()`), which also awaits the async work noiselab tracks
    (exports, displays), and turns a recorded error into an error of that cell.
  * Outputs after "idle": Deno sometimes publishes a cell's result after reporting idle, so it
    lands under the next cell. The relay holds the cell's idle until the hidden check has
    finished, by which time every output of the cell has been published.
  * Interrupt kills the kernel: Jupyter interrupts with SIGINT and Deno dies of it
    (denoland/deno#24491); Deno's message-mode interrupt (V8 terminate_execution) stops a busy
    loop but wedges the kernel when the cell is awaiting (no reply ever again). The relay
    installs a SIGINT listener at start-up that records the time of the interrupt; noiselab's
    training and sweep loops check it once per batch and stop with an InterruptedError
    (lib/util/interrupt.ts); the kernel and its variables survive. Other running code is not
    stopped.
No kept tool does this for Deno's kernel (ipykernel's logic lives inside ipykernel itself), hence
this file. Everything else passes through unchanged (same key: signatures stay valid).

Usage (kernel.json argv): proxy.py CONNECTION_FILE
"""
import ctypes
import json
import os
import signal
import subprocess
import sys
import tempfile

import zmq
from jupyter_client.connect import write_connection_file
from jupyter_client.session import Session

DELIM = b"<IDS|MSG>"

STARTUP_JS = r"""
(() => {
  const g = (globalThis.__noiselab ??= { errors: [], pending: new Set(), interrupts: 0 });
  g.errors ??= []; g.pending ??= new Set(); g.interrupts ??= 0;
  if (g.relayInstalled) return;
  g.relayInstalled = true;
  // g.running: the label of the cell running now, or null between cells (then an error comes from
  // code a finished cell left behind: a timer, a promise nobody awaited)
  const where = () => g.running ? "" : ` after ${g.lastCell ?? "a cell"} had finished (it comes from that cell or an earlier one)`;
  globalThis.addEventListener("unhandledrejection", (e) => {
    e.preventDefault();
    g.errors.push({ kind: "a promise was rejected and nothing awaited it (a missing await?)" + where(), error: e.reason });
  });
  globalThis.addEventListener("error", (e) => {
    e.preventDefault();
    g.errors.push({ kind: "thrown outside the cell's own code (in a timer or event callback)" + where(), error: e.error ?? e.message });
  });
  Deno.addSignalListener("SIGINT", () => {
    g.interruptAt = performance.now();
    g.interrupts++;
    console.error("Kernel > Interrupt: noiselab's training and noise sweeps stop at their next batch " +
      "(the kernel and its variables survive); other running code is not stopped.");
  });
  globalThis.__noiselabSettle = async (label) => {
    g.running = label;
    // noiselab's async work started by the cell (lib/util/pending.ts) finishes first; polled,
    // not awaited, so that a forgotten await stays detectable as such
    const t0 = Date.now();
    while (g.pending.size && Date.now() - t0 < 3_600_000) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 20));
    g.running = null;
    g.lastCell = label;
    if (!g.errors.length) return;
    const errs = g.errors.splice(0);
    const one = (x) => (x.error instanceof Error ? `${x.error.name}: ${x.error.message}` : String(x.error));
    const err = new Error(
      (errs.length === 1 ? "" : `${errs.length} errors escaped the cell:\n`) +
        errs.map((x) => `${one(x)}\n  (${x.kind})`).join("\n"),
    );
    err.name = "EscapedError";
    err.stack = errs.map((x) => x.error?.stack ?? "").filter(Boolean).join("\n");
    throw err;
  };
})();
"""

SETTLE_JS = "await globalThis.__noiselabSettle?.(%s);"


def log(msg):
    if os.environ.get("NOISELAB_KERNEL_DEBUG"):
        print(f"[noiselab-kernel] {msg}", file=sys.stderr, flush=True)


def split(frames):
    """(idents, [DELIM, sig, header, parent, metadata, content, *buffers])."""
    i = frames.index(DELIM)
    return frames[:i], frames[i:]


def header_of(msg):
    return json.loads(msg[2])


def parent_of(msg):
    return json.loads(msg[3])


def content_of(msg):
    return json.loads(msg[5])


class Relay:
    def __init__(self, conn_file):
        with open(conn_file) as f:
            self.conn = json.load(f)
        key = self.conn["key"].encode()
        self.session = Session(key=key, signature_scheme=self.conn.get("signature_scheme", "hmac-sha256"),
                               username="noiselab-kernel")
        ip = self.conn.get("ip", "127.0.0.1")
        transport = self.conn.get("transport", "tcp")
        self.tmpdir = tempfile.mkdtemp(prefix="noiselab-kernel-")
        self.deno_conn_file, _ = write_connection_file(
            os.path.join(self.tmpdir, "deno.json"), ip=ip, key=key, transport=transport,
            signature_scheme=self.conn.get("signature_scheme", "hmac-sha256"))
        with open(self.deno_conn_file) as f:
            dconn = json.load(f)

        def addr(c, port_name):
            return f"{transport}://{ip}:{c[port_name]}"

        ctx = zmq.Context.instance()
        self.ctx = ctx
        # Front side: what the notebook server connects to (the ports it chose for "the kernel").
        self.shell_f = ctx.socket(zmq.ROUTER); self.shell_f.bind(addr(self.conn, "shell_port"))
        self.control_f = ctx.socket(zmq.ROUTER); self.control_f.bind(addr(self.conn, "control_port"))
        self.stdin_f = ctx.socket(zmq.ROUTER); self.stdin_f.bind(addr(self.conn, "stdin_port"))
        self.iopub_f = ctx.socket(zmq.PUB); self.iopub_f.bind(addr(self.conn, "iopub_port"))
        self.hb_f = ctx.socket(zmq.REP); self.hb_f.bind(addr(self.conn, "hb_port"))
        # Deno side: the relay is Deno's only client. Shell and stdin share one identity so that
        # Deno's input requests reach the stdin socket, as with a normal client.
        ident = b"noiselab-relay-" + os.urandom(4).hex().encode()
        self.shell_d = ctx.socket(zmq.DEALER); self.shell_d.setsockopt(zmq.IDENTITY, ident)
        self.stdin_d = ctx.socket(zmq.DEALER); self.stdin_d.setsockopt(zmq.IDENTITY, ident)
        self.control_d = ctx.socket(zmq.DEALER)
        self.iopub_d = ctx.socket(zmq.SUB); self.iopub_d.setsockopt(zmq.SUBSCRIBE, b"")
        self.shell_d.connect(addr(dconn, "shell_port"))
        self.stdin_d.connect(addr(dconn, "stdin_port"))
        self.control_d.connect(addr(dconn, "control_port"))
        self.iopub_d.connect(addr(dconn, "iopub_port"))

        self.routes = {}  # msg_id of a front request -> its ZMQ identities (to route the reply)
        self.queue = []  # execute requests waiting: (idents, msg)
        self.current = None  # the execute request in flight (dict), or None
        self.internal = {}  # msg_id of our own requests -> purpose ("startup" | "settle")
        self.interrupted = False  # Kernel > Interrupt arrived while a cell ran: abort the queue after it
        self.last_label = None  # "In [n]" of the last finished cell (for late escaped errors)

        env = dict(os.environ)
        env.setdefault("NO_COLOR", "1")
        self.deno = subprocess.Popen(
            ["deno", "jupyter", "--kernel", "--conn", self.deno_conn_file],
            env=env, start_new_session=True, preexec_fn=_die_with_parent)
        # Jupyter signals the whole process group; the relay forwards SIGINT to Deno (its own
        # session) exactly once, and passes SIGTERM on.
        signal.signal(signal.SIGINT, lambda *_: self._interrupt())
        signal.signal(signal.SIGTERM, lambda *_: self._terminate())
        self._send_internal(STARTUP_JS, "startup")

    # -- helpers ---------------------------------------------------------------------------
    def _signal_deno(self, sig):
        try:
            self.deno.send_signal(sig)
        except ProcessLookupError:
            pass

    def _interrupt(self):
        # like ipykernel's KeyboardInterrupt: the running cell is told (noiselab loops stop), and the
        # cells queued behind it (Run All) are not run
        self.interrupted = True
        self._signal_deno(signal.SIGINT)

    def _terminate(self):
        self._signal_deno(signal.SIGTERM)
        try:
            self.deno.wait(5)
        except subprocess.TimeoutExpired:
            self._signal_deno(signal.SIGKILL)
        sys.exit(0)

    def _send_internal(self, code, purpose):
        msg = self.session.msg("execute_request", content={
            "code": code, "silent": True, "store_history": False, "user_expressions": {},
            "allow_stdin": False, "stop_on_error": False})
        self.internal[msg["header"]["msg_id"]] = purpose
        self.session.send(self.shell_d, msg)
        return msg["header"]["msg_id"]

    def _publish(self, msg_type, content, parent_header):
        self.session.send(self.iopub_f, msg_type, content=content, parent=parent_header,
                          ident=f"kernel.noiselab.{msg_type}".encode())

    # -- shell -----------------------------------------------------------------------------
    def on_shell_front(self, frames):
        idents, msg = split(frames)
        hdr = header_of(msg)
        self.routes[hdr["msg_id"]] = idents
        if hdr["msg_type"] == "execute_request":
            self.queue.append((idents, msg))
            self._pump()
        else:
            self.shell_d.send_multipart(msg)

    def _pump(self):
        if self.current is not None or not self.queue:
            return
        idents, msg = self.queue.pop(0)
        content = content_of(msg)
        self.current = {
            "idents": idents, "msg": msg, "header": header_of(msg),
            "silent": bool(content.get("silent")),
            "stop_on_error": content.get("stop_on_error", True),
            "reply": None, "idle": [], "settle_id": None, "settle_reply": None, "settle_idle": False,
            "settle_error": None,
        }
        if not self.current["silent"]:
            # errors recorded from now until this cell's check are this cell's own
            self._send_internal('globalThis.__noiselab && (globalThis.__noiselab.running = "this cell");', "pre")
        self.shell_d.send_multipart(msg)

    def on_shell_deno(self, frames):
        _, msg = split(frames)
        parent_id = parent_of(msg).get("msg_id")
        cur = self.current
        if parent_id in self.internal:
            purpose = self.internal[parent_id]
            if purpose == "settle" and cur is not None and cur["settle_id"] == parent_id:
                c = content_of(msg)
                cur["settle_reply"] = c
                if c.get("status") == "error":
                    cur["settle_error"] = c
                self._maybe_finish()
            elif purpose == "startup" and content_of(msg).get("status") != "ok":
                print(f"[noiselab-kernel] start-up code failed: {content_of(msg)}", file=sys.stderr, flush=True)
            return
        if cur is not None and parent_id == cur["header"]["msg_id"]:
            cur["reply"] = msg
            if cur["silent"]:
                self._finish()
            else:
                count = content_of(msg).get("execution_count")
                label = f"In [{count}]" if count is not None else "the previous cell"
                cur["label"] = label
                cur["settle_id"] = self._send_internal(SETTLE_JS % json.dumps(label), "settle")
            return
        idents = self.routes.pop(parent_id, None)
        if idents is not None:
            self.shell_f.send_multipart(idents + msg)

    def _maybe_finish(self):
        cur = self.current
        if cur and cur["reply"] is not None and cur["settle_reply"] is not None and cur["settle_idle"]:
            self._finish()

    def _finish(self):
        cur = self.current
        self.internal.pop(cur["settle_id"], None)
        idents = self.routes.pop(cur["header"]["msg_id"], cur["idents"])
        reply = content_of(cur["reply"])
        failed = reply.get("status") == "error"
        if cur["settle_error"] is not None:
            e = cur["settle_error"]
            raw = str(e.get("evalue", ""))
            evalue = ("an error escaped a cell that had already finished: " if "had finished (it comes from" in raw
                      else "the cell finished, but an error escaped it: ") + raw
            tb = [f"EscapedError: {evalue}"] + [t for t in e.get("traceback", []) if str(e.get("evalue", "")) not in t]
            err = {"ename": "EscapedError", "evalue": evalue, "traceback": tb}
            self._publish("error", err, cur["header"])
            if not failed:
                new = dict(err, status="error", execution_count=reply.get("execution_count"))
                self.session.send(self.shell_f, "execute_reply", content=new, parent=cur["header"],
                                  metadata=json.loads(cur["reply"][4]), ident=idents)
                failed = True
            else:
                self.shell_f.send_multipart(idents + cur["reply"])
        else:
            self.shell_f.send_multipart(idents + cur["reply"])
        for frames in cur["idle"]:
            self.iopub_f.send_multipart(frames)
        self.current = None
        if self.interrupted and self.queue:
            self._publish("stream", {"name": "stderr", "text": (
                "Kernel > Interrupt: the cells queued after this one were not run.\n")}, cur["header"])
        if (failed and cur["stop_on_error"]) or self.interrupted:
            self._abort_queue()
        self.interrupted = False
        self._pump()

    def _abort_queue(self):
        """After an error, queued execute requests get an "aborted" reply (ipykernel's rule)."""
        keep = []
        for idents, msg in self.queue:
            if not content_of(msg).get("stop_on_error", True):
                keep.append((idents, msg))
                continue
            hdr = header_of(msg)
            self.routes.pop(hdr["msg_id"], None)
            self._publish("status", {"execution_state": "busy"}, hdr)
            self.session.send(self.shell_f, "execute_reply", content={"status": "aborted"},
                              metadata={"status": "aborted"}, parent=hdr, ident=idents)
            self._publish("status", {"execution_state": "idle"}, hdr)
        self.queue = keep

    # -- iopub -----------------------------------------------------------------------------
    def on_iopub_deno(self, frames):
        _, msg = split(frames)
        parent_id = parent_of(msg).get("msg_id")
        cur = self.current
        if parent_id in self.internal:
            # our own requests publish nothing the user should see; the settle's idle means every
            # output of the cell before it has been published
            is_idle = header_of(msg)["msg_type"] == "status" and content_of(msg).get("execution_state") == "idle"
            if is_idle and self.internal[parent_id] in ("startup", "pre"):
                del self.internal[parent_id]  # its last message (the settle's id goes in _finish)
            if (cur is not None and parent_id == cur["settle_id"] and header_of(msg)["msg_type"] == "status"
                    and content_of(msg).get("execution_state") == "idle"):
                cur["settle_idle"] = True
                self._maybe_finish()
            return
        if (cur is not None and parent_id == cur["header"]["msg_id"] and not cur["silent"]
                and header_of(msg)["msg_type"] == "status"
                and content_of(msg).get("execution_state") == "idle"):
            cur["idle"].append(frames)
            return
        self.iopub_f.send_multipart(frames)

    # -- loop ------------------------------------------------------------------------------
    def run(self):
        poller = zmq.Poller()
        pairs = {
            self.shell_f: self.on_shell_front,
            self.shell_d: self.on_shell_deno,
            self.iopub_d: self.on_iopub_deno,
            self.control_f: lambda fr: self._forward_front(fr, self.control_d),
            self.control_d: lambda fr: self._forward_back(fr, self.control_f),
            self.stdin_f: lambda fr: self._forward_front(fr, self.stdin_d),
            self.stdin_d: lambda fr: self._forward_back(fr, self.stdin_f, keep_route=True),
            self.hb_f: lambda fr: self.hb_f.send_multipart(fr),
        }
        for s in pairs:
            poller.register(s, zmq.POLLIN)
        while True:
            rc = self.deno.poll()
            if rc is not None:
                log(f"deno exited with {rc}")
                sys.exit(rc if rc >= 0 else 128 - rc)
            try:
                events = dict(poller.poll(200))
            except zmq.ZMQError:
                continue
            for sock in events:
                frames = sock.recv_multipart()
                try:
                    pairs[sock](frames)
                except (ValueError, KeyError, json.JSONDecodeError) as e:  # a malformed message: skip it
                    log(f"dropped a message: {e!r}")

    def _forward_front(self, frames, back):
        idents, msg = split(frames)
        self.routes[header_of(msg)["msg_id"]] = idents
        back.send_multipart(msg)

    def _forward_back(self, frames, front, keep_route=False):
        _, msg = split(frames)
        pid = parent_of(msg).get("msg_id")
        idents = self.routes.get(pid) if keep_route else self.routes.pop(pid, None)
        if idents is None:  # e.g. stdin input_request: route by the shell request it belongs to
            cur = self.current
            idents = cur["idents"] if cur else []
            if not idents:
                return
        front.send_multipart(idents + msg)


def _die_with_parent():
    """Deno gets SIGKILL if the relay dies (Linux prctl PR_SET_PDEATHSIG)."""
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)
    except OSError:
        pass


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    Relay(sys.argv[1]).run()

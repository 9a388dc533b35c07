#!/usr/bin/python3
"""Execute one notebook headless on the Deno kernel (papermill-style), for noiselab.

Why a custom runner and not papermill/nbconvert --execute:
  * papermill is not installable here (no PyPI); nbclient (Debian) is.
  * Deno 2.9's kernel sometimes publishes a cell's execute_result AFTER it reports
    idle; stock nbclient then drops it. We keep reading IOPub briefly after idle.
  * SIGINT kills the Deno kernel, so a timeout must never interrupt: we save the
    partial notebook, mark the cell, fail, and kill the kernel.
  * Parameters are injected into the cell tagged `parameters` itself (its declaration lines are
    rewritten and marked), not as an extra cell after it: that cell resolves and validates them
    (`nb.parameters(...)`), so an override must be in place before it runs.
  * Every run starts from a clean copy: outputs and execution counts of the input are dropped.

Usage:
  run_notebook.py INPUT.ipynb OUTPUT.ipynb [--html OUT.html] [--params JSON]
                  [--timeout SECONDS] [--kernel-dir DIR] [--status OUT.json]
                  [--grace SECONDS] [--cwd DIR]

Exit code 0 when every cell ran without error; 1 on a cell error, 2 on a timeout,
3 on a dead kernel / runner problem. The output notebook (partial on failure),
the HTML export and the status JSON are written in every case.
"""
import argparse
import asyncio
import json
import os
import re
import signal
import sys
import tempfile
import time
import uuid
from queue import Empty

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionComplete, CellExecutionError, CellTimeoutError, DeadKernelError


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class DenoNotebookClient(NotebookClient):
    """nbclient that keeps draining IOPub for `grace` seconds of silence after idle
    (the Deno kernel race) and echoes progress displays to stderr."""

    grace = 0.3
    label = ""
    _last_echo = 0.0

    def _echo_progress(self, msg):
        content = msg.get("content", {})
        did = (content.get("transient") or {}).get("display_id") or ""
        if not did.startswith("noiselab-progress"):
            return
        now = time.monotonic()
        if msg["msg_type"] == "update_display_data" and now - self._last_echo < 5:
            return
        self._last_echo = now
        text = (content.get("data") or {}).get("text/plain")
        if text:
            log(f"[{self.label}]   {text.strip()}")

    async def _async_poll_output_msg(self, parent_msg_id, cell, cell_index):
        assert self.kc is not None
        while True:
            msg = await self.kc.iopub_channel.get_msg(timeout=None)
            if msg["parent_header"].get("msg_id") != parent_msg_id:
                continue
            self._echo_progress(msg)
            try:
                self.process_message(msg, cell, cell_index)
            except CellExecutionComplete:
                break
        # The race: outputs may still arrive after idle. Drain until quiet.
        while True:
            try:
                msg = await self.kc.iopub_channel.get_msg(timeout=self.grace)
            except (Empty, asyncio.TimeoutError):
                return
            if msg["parent_header"].get("msg_id") != parent_msg_id:
                continue
            if msg["msg_type"] == "status":
                continue
            self._echo_progress(msg)
            try:
                self.process_message(msg, cell, cell_index)
            except CellExecutionComplete:
                pass


def find_parameters_cell(nb):
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            return i
    return None


DECL_RE = re.compile(r"^\s*(?:export\s+)?(const|let|var)\s+([A-Za-z_$][\w$]*)", re.M)


def declared_names(source):
    """{name: keyword} for top-level `const|let|var name` declarations of a cell."""
    return {m.group(2): m.group(1) for m in DECL_RE.finditer(source)}


def inject_parameters(nb, params):
    """Set overridden values IN the `parameters` cell (its declaration lines are rewritten and
    marked), so that the cell that resolves the parameters is the cell that shows them, and the
    executed notebook shows the values it ran with. Returns the names injected. Raises ValueError
    for names the parameters cell lacks or declares other than on one line."""
    if not params:
        return []
    idx = find_parameters_cell(nb)
    if idx is None:
        raise ValueError("the notebook has no cell tagged 'parameters'; cannot inject " + ", ".join(params))
    cell = nb.cells[idx]
    names = declared_names(cell.source)
    unknown = [k for k in params if k not in names]
    if unknown:
        raise ValueError(
            f"parameter(s) {', '.join(unknown)} not declared in the parameters cell (known: {', '.join(names)})"
        )
    lines = cell.source.split("\n")
    for k, v in params.items():
        pat = re.compile(r"^(\s*(?:export\s+)?(?:const|let|var)\s+" + re.escape(k) + r"\b[^=]*=\s*)(.*?);(\s*//.*)?$")
        hits = [i for i, line in enumerate(lines) if pat.match(line)]
        if len(hits) != 1:
            raise ValueError(f"parameter {k}: its declaration in the parameters cell must be one line "
                             "`const name = value; // comment` to be overridden")
        i = hits[0]
        m = pat.match(lines[i])
        lines[i] = f"{m.group(1)}{json.dumps(v)}; // injected by reproduce (-p {k}=...); the notebook says: {m.group(2)}"
    cell.source = "\n".join(lines)
    tags = cell.metadata.setdefault("tags", [])
    if "injected-parameters" not in tags:
        tags.append("injected-parameters")
    return list(params)


def clear_outputs(nb):
    """A clean copy: no outputs or execution counts from an earlier (possibly interactive) run."""
    for c in nb.cells:
        if c.cell_type == "code":
            c.outputs = []
            c.execution_count = None
    nb.metadata.pop("noiselab", None)


def error_of(cell, fallback):
    """(the cell's error output or None, its message line `ename: evalue`, else `fallback`)."""
    err = next((o for o in cell.get("outputs", []) if o.get("output_type") == "error"), None)
    return err, (f"{err.get('ename')}: {err.get('evalue')}" if err else fallback)


def error_cell_markdown(text):
    cell = nbformat.v4.new_markdown_cell(text)
    cell.metadata["tags"] = ["noiselab-runner-error"]
    return cell


def svg_as_img(nb):
    """A copy of nb whose image/svg+xml outputs are <img> tags with a data: URL.
    nbconvert's templates pass inline SVG through an HTML sanitizer that strips
    <text>, <rect>, <path>, ... (the charts come out blank); an <img> keeps them intact."""
    import base64
    import copy

    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data") or {}
            svg = data.get("image/svg+xml")
            if not svg:
                continue
            if isinstance(svg, list):
                svg = "".join(svg)
            b64 = base64.b64encode(svg.encode("utf-8")).decode("ascii")
            alt = str(data.get("text/plain", "figure")).replace('"', "&quot;")
            out["data"] = {"text/html": f'<img alt="{alt}" style="max-width:100%" src="data:image/svg+xml;base64,{b64}"/>',
                           "text/plain": data.get("text/plain", "")}
    return nb


def export_html(nb, path):
    try:
        from nbconvert import HTMLExporter

        body, _ = HTMLExporter().from_notebook_node(svg_as_img(nb))
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(body)
        os.replace(tmp, path)
        return True
    except Exception as e:  # noqa: BLE001 - HTML is a convenience; report, do not hide
        log(f"HTML export failed: {e!r}")
        return False


def write_nb(nb, path):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        nbformat.write(nb, f)
    os.replace(tmp, path)


def kill_pid(pid):
    if not pid:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        for _ in range(20):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)


def kernel_returncode(client):
    """The dead kernel's exit status (negative: killed by that signal), or None if unknown."""
    try:
        proc = client.km.provisioner.process  # type: ignore[union-attr]
        for _ in range(40):
            rc = proc.poll()
            if rc is not None:
                return rc
            time.sleep(0.05)
    except Exception:  # noqa: BLE001 - best effort, for the message only
        pass
    return None


async def run(args):
    nb = nbformat.read(args.input, as_version=4)
    # cell ids (nbformat 4.5) so inserted cells validate
    nb.nbformat_minor = max(nb.nbformat_minor, 5)
    for c in nb.cells:
        if "id" not in c:
            c["id"] = uuid.uuid4().hex[:8]
    params = json.loads(args.params) if args.params else {}
    label = os.path.basename(args.input)
    status = {
        "notebook": os.path.abspath(args.input),
        "output": os.path.abspath(args.output),
        "html": os.path.abspath(args.html) if args.html else None,
        "params": params,
        "status": "running",
        "seconds": None,
        "cellsRun": 0,
        "cellsTotal": sum(1 for c in nb.cells if c.cell_type == "code"),
        "failedCell": None,
        "error": None,
        "kernelPid": None,
    }
    clear_outputs(nb)
    try:
        inject_parameters(nb, params)
        status["cellsTotal"] = sum(1 for c in nb.cells if c.cell_type == "code")
    except ValueError as e:
        status.update(status="error", error=str(e))
        write_status(args, status)
        log(f"[{label}] {e}")
        return 3

    # The committed kernelspec (tools/kernel/deno/kernel.json) is found through a
    # temporary JUPYTER_PATH entry (<tmp>/kernels/deno -> tools/kernel/deno).
    jp = tempfile.mkdtemp(prefix="noiselab-jupyter-")
    os.makedirs(os.path.join(jp, "kernels"))
    os.symlink(os.path.abspath(os.path.join(args.kernel_dir, "deno")), os.path.join(jp, "kernels", "deno"))
    os.environ["JUPYTER_PATH"] = jp + (os.pathsep + os.environ["JUPYTER_PATH"] if os.environ.get("JUPYTER_PATH") else "")
    os.environ["NO_COLOR"] = "1"

    nb.metadata["kernelspec"] = {"name": "deno", "display_name": "Deno (noiselab)", "language": "typescript"}
    client = DenoNotebookClient(
        nb,
        kernel_name="deno",
        timeout=int(args.timeout) if args.timeout > 0 else None,
        interrupt_on_timeout=False,  # SIGINT kills the Deno kernel
        startup_timeout=120,
        iopub_timeout=int(max(4, args.grace * 10)),
        shutdown_kernel="immediate",
        resources={"metadata": {"path": args.cwd}},
    )
    client.grace = args.grace
    client.label = label
    t0 = time.monotonic()
    code = 0
    pid = None
    try:
        async with client.async_setup_kernel(cwd=args.cwd):
            try:
                pid = client.km.provisioner.process.pid  # type: ignore[union-attr]
            except Exception:  # noqa: BLE001
                pid = getattr(getattr(client.km, "kernel", None), "pid", None)
            status["kernelPid"] = pid
            n_code = status["cellsTotal"]
            k = 0
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                k += 1
                c0 = time.monotonic()
                try:
                    await client.async_execute_cell(cell, index, execution_count=k)
                except CellTimeoutError:
                    status.update(status="timeout", failedCell=index,
                                  error=f"cell {index} ran longer than {args.timeout}s (per-cell timeout)")
                    nb.cells.insert(index + 1, error_cell_markdown(
                        f"**noiselab runner: cell {index} timed out after {args.timeout} s; "
                        "execution stopped here (the kernel was killed, not interrupted).**"))
                    code = 2
                    break
                except CellExecutionError as e:
                    # the message first (ename: evalue), then the traceback nbclient gives
                    lines = str(e).strip().splitlines()
                    err, head = error_of(cell, lines[-1] if lines else "error")
                    status.update(status="error", failedCell=index, error=head + "\n\n" + "\n".join(lines[-20:]))
                    nb.cells.insert(index + 1, error_cell_markdown(
                        f"**noiselab runner: cell {index} raised an error; execution stopped here.**"))
                    code = 1
                    break
                except DeadKernelError as e:
                    # e.g. a cell calling Deno.exit(0): the notebook did not finish, so this is a
                    # failure whatever the exit code; say which cell and how the kernel ended.
                    rc = kernel_returncode(client)
                    how = f"exit code {rc}" if rc is not None and rc >= 0 else (
                        f"signal {-rc}" if rc is not None else f"{e}".strip() or "no exit code")
                    status.update(status="dead", failedCell=index,
                                  error=f"kernel died while running cell {index} ({how}); "
                                  "the notebook did not finish (Deno.exit() or a crash in that cell?)")
                    nb.cells.insert(index + 1, error_cell_markdown(
                        f"**noiselab runner: the kernel died while running cell {index} ({how}); "
                        "execution stopped here.**"))
                    code = 3
                    break
                finally:
                    status["cellsRun"] = k
                    log(f"[{label}] cell {k}/{n_code} (#{index}) {time.monotonic() - c0:.1f}s")
                    write_nb(nb, args.output)  # keep a partial copy after every cell
            if code == 0 and k > 0:
                # An error can surface after the last cell finished (a timer, a promise nobody
                # awaited): give it a moment, and let the kernel's check after this hidden cell
                # report it (tools/kernel/deno/proxy.py). Not added to the notebook.
                probe = nbformat.v4.new_code_cell(
                    "globalThis.__noiselab && (globalThis.__noiselab.running = null);\n"
                    f"await new Promise((r) => setTimeout(r, {int(args.settle * 1000)}));")
                nb.cells.append(probe)  # nbclient writes the executed cell back at its index
                try:
                    await client.async_execute_cell(probe, len(nb.cells) - 1, execution_count=k + 1)
                except CellExecutionError:
                    nb.cells.pop()
                    err, head = error_of(probe, "an error escaped after the last cell")
                    last = max(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
                    status.update(status="error", failedCell=last, error=head)
                    if err:
                        nb.cells[last].outputs.append(err)
                    nb.cells.append(error_cell_markdown(
                        "**noiselab runner: an error escaped after the last cell had finished (see the error "
                        "above); the run counts as failed.**"))
                    code = 1
                    write_nb(nb, args.output)
                else:
                    nb.cells.pop()
    except Exception as e:  # noqa: BLE001 - startup failures etc.
        if code == 0:
            status.update(status="dead", error=f"{type(e).__name__}: {e}")
            code = 3
    finally:
        kill_pid(pid)
    if code == 0:
        status["status"] = "ok"
    status["seconds"] = round(time.monotonic() - t0, 2)
    nb.metadata["noiselab"] = {k: status[k] for k in ("status", "seconds", "params", "failedCell", "error")}
    write_nb(nb, args.output)
    try:  # outputs produced here are ours: mark them trusted so the UI renders HTML/SVG as-is
        from nbformat.sign import NotebookNotary

        NotebookNotary().sign(nb)
    except Exception as e:  # noqa: BLE001 - trust is a convenience only
        log(f"[{label}] could not sign the notebook as trusted: {e!r}")
    if args.html:
        export_html(nb, args.html)
    write_status(args, status)
    try:
        os.unlink(os.path.join(jp, "kernels", "deno"))
        os.rmdir(os.path.join(jp, "kernels"))
        os.rmdir(jp)
    except OSError:
        pass
    log(f"[{label}] {status['status']} in {status['seconds']}s" + (f": {status['error']}" if status["error"] else ""))
    return code


def write_status(args, status):
    if not args.status:
        return
    tmp = args.status + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(status, f, indent=2)
    os.replace(tmp, args.status)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--html")
    p.add_argument("--params", help="JSON object of parameter overrides")
    p.add_argument("--timeout", type=float, default=1800, help="per-cell timeout in seconds (0: none)")
    p.add_argument("--kernel-dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "kernel"))
    p.add_argument("--status", help="write a JSON status here")
    p.add_argument("--grace", type=float, default=0.3, help="seconds of IOPub silence to wait after idle")
    p.add_argument("--settle", type=float, default=1.5,
                   help="seconds to wait after the last cell for errors that surface late (timers, promises)")
    p.add_argument("--cwd", help="kernel working directory (default: the input notebook's folder)")
    args = p.parse_args()
    if not args.cwd:
        args.cwd = os.path.dirname(os.path.abspath(args.input))
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Browser test of the classic Jupyter Notebook UI (issue #9), Selenium + headless Chromium.

Run by test/notebook_browser.test.ts (which first runs tools/setup_browser.sh); by hand:

    NOISELAB_THREADS=1 /usr/bin/python3 test/browser/notebook_ui.py --json /tmp/report.json

What it does, all on a throw-away copy:
  * copies notebooks/ into a workspace under results/tmp/ (git-ignored; inside the
    repository so that the kernel finds deno.json, with lib/, node_modules/ and data/
    linked in so that the notebooks' `../lib/...` imports resolve); the UI never sees
    the real notebooks/ (the server's root is checked before anything is opened);
  * NOISELAB_RESULTS_DIR points into the workspace (models are shared with
    results/models, as in test/notebook_smoke.test.ts: the store is keyed by config
    and code version, so this only skips retraining identical smoke models);
  * starts `bash tools/notebook.sh --port <free> --NotebookApp.token=<random> <copy>`
    (a positional directory overrides notebook.sh's own --notebook-dir: a second
    --notebook-dir is an error in Notebook 6.4), with its own Jupyter config, data and
    runtime folders (so no trust signature or cookie lands in the home folder).

Checks, in three groups (the JSON report has one entry per check):
  untrusted  an executed notebook (results/notebooks/01-bn-vs-no-bn.ipynb, copied, so
             untrusted) shows its charts as images, not as the text "[figure] ...";
  run_all    in 01-bn-vs-no-bn.ipynb the cell tagged `parameters` is edited through
             CodeMirror (keyboard: profile = "smoke", draws = 3), Cell > Run All;
             every code cell runs, the edits show in the parameters table, a chart
             (<svg>/<img> of real size) and a table render in output areas, and no
             output area shows an error;
  error      then etas = [-1] in the parameters cell, Run All: the parameters cell
             shows an error naming `etas`, every cell below it did not run (no new
             execution count, no output) and nothing under the results folder was
             written after the click.

Exit status: 0 all checks passed, 1 some check failed, 2 the harness itself failed
(its message is in the report's "harness_error"). Screenshots (and the page's HTML)
of failures go to a fresh /tmp/noiselab-browser-shots-* folder, their paths printed
and listed in the report. Jupyter, its kernels, chromedriver and Chromium are
stopped on every exit path (also on SIGTERM and on the hard --timeout).
"""

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NOTEBOOK = "01-bn-vs-no-bn.ipynb"
EXECUTED = os.path.join(ROOT, "results", "notebooks", NOTEBOOK)
T0 = time.time()


def log(msg):
    print(f"[browser {time.time() - T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


class HarnessError(Exception):
    """The test could not be carried out (set-up, server, browser, time-out)."""


class Stop(BaseException):
    """SIGTERM or the hard time-out: unwinds through every try/finally."""


# --------------------------------------------------------------------------- processes


def _children_map():
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(d))
    return children


def descendants(pid):
    """Every live process below `pid` (by parent links in /proc)."""
    children = _children_map()
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1][:1] != "Z"
    except OSError:
        return False


def kill_pids(pids, grace=10.0):
    """SIGTERM the given pids (processes this script started, or their children), SIGKILL what is left."""
    pids = [p for p in pids if alive(p)]
    for p in pids:
        try:
            os.kill(p, signal.SIGTERM)
        except OSError:
            pass
    end = time.time() + grace
    while time.time() < end and any(alive(p) for p in pids):
        time.sleep(0.2)
    for p in pids:
        if alive(p):
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- Jupyter


class Server:
    def __init__(self, ws, nbdir, env):
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.logpath = os.path.join(ws, "jupyter.log")
        self.logfile = open(self.logpath, "w")
        cmd = [
            "bash", os.path.join(ROOT, "tools", "notebook.sh"),
            "--port", str(self.port), "--NotebookApp.port_retries=0",
            f"--NotebookApp.token={self.token}",
            "--NotebookNotary.db_file=:memory:",
            nbdir,
        ]
        log(f"starting Jupyter on port {self.port}: {' '.join(cmd[:4])} ... {nbdir}")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self.logfile, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        self.base = f"http://127.0.0.1:{self.port}"
        self.known = set()

    def log_tail(self, n=25):
        try:
            with open(self.logpath, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return "(no log)"

    def api(self, path, method="GET", timeout=10):
        req = urllib.request.Request(f"{self.base}{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read()
            return json.loads(body) if body else None

    def wait_ready(self, timeout=90):
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise HarnessError(f"Jupyter exited with status {self.proc.returncode}:\n{self.log_tail()}")
            try:
                self.api("/api/status", timeout=2)
                return
            except (urllib.error.URLError, OSError, ValueError):
                time.sleep(0.5)
        raise HarnessError(f"Jupyter did not answer on port {self.port} within {timeout} s:\n{self.log_tail()}")

    def remember_children(self):
        if self.proc.poll() is None:
            self.known.update(descendants(self.proc.pid))

    def stop(self):
        self.remember_children()
        try:  # shut the kernels down the polite way first
            for k in self.api("/api/kernels", timeout=3) or []:
                try:
                    self.api(f"/api/kernels/{k['id']}", method="DELETE", timeout=10)
                except (urllib.error.URLError, OSError, ValueError):
                    pass
        except (urllib.error.URLError, OSError, ValueError):
            pass
        if self.proc.poll() is None:
            # jupyter first (notebook.sh waits for it, then removes its temporary kernel folder), then
            # whatever is left of notebook.sh's process group (its own session)
            for pid in _children_map().get(self.proc.pid, []):
                try:
                    os.kill(pid, signal.SIGTERM)
                except OSError:
                    pass
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGTERM)
                except OSError:
                    pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                self.proc.wait(timeout=5)
        kill_pids(sorted(self.known))  # kernels live in sessions of their own
        self.logfile.close()


# --------------------------------------------------------------------------- browser

JS_STATE = """
const nb = window.Jupyter && Jupyter.notebook;
if (!nb || !nb._fully_loaded) return {loaded: false};
const icon = document.getElementById('kernel_indicator_icon');
return {
  loaded: true,
  kernel: icon ? icon.className : '',
  connected: !!(nb.kernel && nb.kernel.is_connected && nb.kernel.is_connected()),
  trusted: nb.trusted,
  cells: nb.get_cells().map((c, i) => ({
    index: i,
    type: c.cell_type,
    tags: (c.metadata && c.metadata.tags) || [],
    prompt: c.cell_type === 'code' ? (c.input_prompt_number === undefined ? null : c.input_prompt_number) : null,
    outputs: c.cell_type === 'code' ? c.output_area.outputs.map((o) => o.output_type) : [],
    errors: c.cell_type === 'code' ? c.output_area.outputs.filter((o) => o.output_type === 'error')
      .map((o) => o.ename + ': ' + o.evalue) : [],
  })),
};
"""

# Rendered output areas, as the user sees them (DOM, not the model).
JS_RENDERED = """
const vis = (e) => { const r = e.getBoundingClientRect(); return [Math.round(r.width), Math.round(r.height)]; };
return Array.from(document.querySelectorAll('#notebook-container > .cell')).map((cell, i) => ({
  index: i,
  charts: Array.from(cell.querySelectorAll('.output_area svg, .output_area img'))
    .filter((e) => !e.parentElement.closest('.output_area svg')).map((e) => [e.tagName.toLowerCase()].concat(vis(e))),
  tables: Array.from(cell.querySelectorAll('.output_area table')).map((t) => t.querySelectorAll('tr').length),
  rows: Array.from(cell.querySelectorAll('.output_area table tr')).map((tr) =>
    Array.from(tr.querySelectorAll('td,th')).map((td) => td.textContent.trim())),
  errors: Array.from(cell.querySelectorAll('.output_area .output_error')).map((e) => e.textContent.slice(0, 2000)),
  texts: Array.from(cell.querySelectorAll('.output_area .output_text')).map((e) => e.textContent.slice(0, 300)),
  prompt: (cell.querySelector('.input_prompt') || {textContent: ''}).textContent.replace(/\\s+/g, ' ').trim(),
}));
"""


class Browser:
    def __init__(self, ws):
        try:
            from selenium import webdriver
            from selenium.webdriver.chrome.service import Service
        except ImportError as e:
            raise HarnessError(f"python3-selenium is missing ({e}); run tools/setup_browser.sh")
        chrome = next((p for p in ("/usr/lib/chromium/chromium", "/usr/bin/chromium") if os.path.exists(p)), None)
        driver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
        if chrome is None or not os.path.exists(driver):
            raise HarnessError("chromium / chromium-driver are missing; run tools/setup_browser.sh")
        opts = webdriver.ChromeOptions()
        opts.binary_location = chrome
        for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                  "--window-size=1400,1000", "--no-first-run", "--disable-extensions",
                  f"--user-data-dir={os.path.join(ws, 'chrome-profile')}"):
            opts.add_argument(a)
        self.service = Service(executable_path=driver, log_path=os.path.join(ws, "chromedriver.log"))
        self.service.start()
        self.known = set()
        try:
            self.driver = webdriver.Remote(self.service.service_url, options=opts)
        except Exception as e:
            self.remember_children()
            self.service.stop()
            kill_pids(sorted(self.known))
            raise HarnessError(f"Chromium did not start through chromedriver: {e}")
        self.remember_children()
        self.driver.set_page_load_timeout(90)
        self.driver.set_script_timeout(30)
        self.shots = None

    def remember_children(self):
        proc = getattr(self.service, "process", None)
        if proc is not None and proc.poll() is None:
            self.known.add(proc.pid)
            self.known.update(descendants(proc.pid))

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def quit(self):
        self.remember_children()
        try:
            self.driver.quit()
        except Exception:
            pass
        try:
            self.service.stop()
        except Exception:
            pass
        kill_pids(sorted(self.known), grace=5)

    def screenshot(self, name):
        """Whole notebook (window stretched to its height) + the page's HTML; returns the paths."""
        if self.shots is None:
            self.shots = tempfile.mkdtemp(prefix="noiselab-browser-shots-")
        png = os.path.join(self.shots, f"{name}.png")
        html = os.path.join(self.shots, f"{name}.html")
        try:
            h = self.js("const c = document.getElementById('notebook-container') || document.body;"
                        "return c.scrollHeight + 300;") or 1000
            self.driver.set_window_size(1400, max(1000, min(int(h), 16000)))
            time.sleep(0.5)
            self.driver.save_screenshot(png)
            self.driver.set_window_size(1400, 1000)
            with open(html, "w") as f:
                f.write(self.driver.page_source)
        except Exception as e:  # a screenshot must never hide the failure it documents
            log(f"screenshot {name} failed: {e}")
            return []
        log(f"screenshot: {png}")
        return [png, html]


# --------------------------------------------------------------------------- the test


class Report:
    def __init__(self):
        self.checks = []
        self.observed = {}
        self.screenshots = []
        self.timings = {}
        self.harness_error = None

    def check(self, group, name, ok, message=""):
        self.checks.append({"group": group, "name": name, "ok": bool(ok), "message": message})
        log(f"{'PASS' if ok else 'FAIL'} [{group}] {name}{'' if ok else ': ' + message}")
        return bool(ok)

    def failed(self, group):
        return any(c["group"] == group and not c["ok"] for c in self.checks)

    def as_json(self):
        return {"checks": self.checks, "observed": self.observed, "screenshots": self.screenshots,
                "timings": self.timings, "harness_error": self.harness_error}


def open_notebook(b, server, name, timeout=120):
    url = f"{server.base}/notebooks/{name}?token={server.token}"
    b.driver.get(url)
    end = time.time() + timeout
    st = {}
    while time.time() < end:
        st = b.js(JS_STATE) or {}
        if st.get("loaded") and st.get("connected") and st.get("kernel") == "kernel_idle_icon":
            return st
        if st.get("kernel") == "kernel_dead_icon":
            raise HarnessError(f"the kernel of {name} died on start:\n{server.log_tail()}")
        time.sleep(0.5)
    raise HarnessError(f"{name} did not load with an idle, connected kernel within {timeout} s "
                       f"(last state: loaded={st.get('loaded')} kernel={st.get('kernel')!r} "
                       f"connected={st.get('connected')}):\n{server.log_tail()}")


def parameters_cell(st):
    idx = [c["index"] for c in st["cells"] if "parameters" in c["tags"]]
    if len(idx) != 1:
        raise HarnessError(f"{NOTEBOOK} must have exactly one cell tagged 'parameters', found {len(idx)}")
    return idx[0]


def edit_parameter(b, cell, name, value):
    """Replace the line declaring `name` in code cell `cell` through CodeMirror, with the keyboard.

    The line `const <name>[: <type>] = <old>; // comment` becomes `const <name>[: <type>] = <value>;`.
    Returns the new line as CodeMirror holds it.
    """
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    lines = b.js("return Jupyter.notebook.get_cell(arguments[0]).code_mirror.getValue().split('\\n');", cell)
    decl = re.compile(r"^(\s*(?:const|let|var)\s+" + re.escape(name) + r"\b[^=]*=\s*)")
    found = [(i, decl.match(line)) for i, line in enumerate(lines) if decl.match(line)]
    if len(found) != 1:
        raise HarnessError(f"the parameters cell must declare `{name}` on exactly one line "
                           f"(`const {name} = ...;`), found {len(found)}")
    line_no, m = found[0]
    new_line = m.group(1) + value + ";"
    editor = b.driver.find_elements("css selector", "#notebook-container > .cell")[cell] \
        .find_element("css selector", ".CodeMirror")
    b.js("arguments[0].scrollIntoView({block: 'center'});", editor)
    editor.find_element("css selector", ".CodeMirror-code").click()  # edit mode, cursor in the cell
    a = ActionChains(b.driver)
    a.key_down(Keys.CONTROL).send_keys(Keys.HOME).key_up(Keys.CONTROL)  # start of the cell
    for _ in range(line_no):
        a.send_keys(Keys.DOWN)
    a.send_keys(Keys.HOME).key_down(Keys.SHIFT).send_keys(Keys.END).key_up(Keys.SHIFT).send_keys(Keys.DELETE)
    a.perform()
    # typed one key at a time: CodeMirror's auto-closed quotes/brackets are typed over
    ActionChains(b.driver).send_keys(new_line).perform()
    ActionChains(b.driver).send_keys(Keys.ESCAPE).perform()  # back to command mode
    got = b.js("return Jupyter.notebook.get_cell(arguments[0]).code_mirror.getLine(arguments[1]);", cell, line_no)
    if got != new_line:
        raise HarnessError(f"typing into the parameters cell gave {got!r}, expected {new_line!r}")
    log(f"edited parameters cell line {line_no + 1}: {new_line}")
    return got


def run_all(b):
    """Cell > Run All, through the menu bar."""
    b.driver.find_element("css selector", "#menus a#celllink").click()  # the "Cell" menu
    item = b.driver.find_element("css selector", "#run_all_cells > a")
    deadline = time.time() + 10
    while not item.is_displayed() and time.time() < deadline:
        time.sleep(0.1)
    item.click()


def wait_run(b, server, timeout, idle_for=5.0, stuck_after=30.0):
    """Until the run is over: kernel idle for `idle_for` s and no cell waiting ('*'), or idle
    `stuck_after` s with '*' prompts left (a kernel that never answers the cells it skipped).
    Returns (state, seconds, note)."""
    t0 = time.time()
    idle_since = None
    st = {}
    while time.time() - t0 < timeout:
        st = b.js(JS_STATE) or {}
        server.remember_children()
        if st.get("kernel") in ("kernel_dead_icon", "kernel_disconnected_icon"):
            return st, time.time() - t0, f"kernel {st.get('kernel')} during Run All"
        idle = st.get("loaded") and st.get("kernel") == "kernel_idle_icon"
        waiting = [c["index"] for c in st.get("cells", []) if c["prompt"] == "*"]
        if idle:
            idle_since = idle_since or time.time()
            quiet = time.time() - idle_since
            if not waiting and quiet >= idle_for:
                return st, time.time() - t0, ""
            if waiting and quiet >= stuck_after:
                return st, time.time() - t0, f"kernel idle {stuck_after:.0f} s but cells {waiting} still show In [*]"
        else:
            idle_since = None
        time.sleep(0.5)
    waiting = [c["index"] for c in st.get("cells", []) if c["prompt"] == "*"]
    return st, time.time() - t0, f"timed out after {timeout} s (cells still waiting: {waiting}, kernel {st.get('kernel')})"


def result_files(results):
    """path -> mtime for every file under the results folder (symlinks, i.e. the shared model store, not followed)."""
    out = {}
    for d, dirs, files in os.walk(results):
        for f in files:
            p = os.path.join(d, f)
            try:
                out[p] = os.lstat(p).st_mtime
            except OSError:
                pass
    return out


def test_untrusted(b, server, rep):
    g = "untrusted"
    name = "executed-" + NOTEBOOK
    st = open_notebook(b, server, name)
    time.sleep(1.0)
    rendered = b.js(JS_RENDERED)
    charts = [c for r in rendered for c in r["charts"] if c[1] >= 100 and c[2] >= 50]
    fig_text = [t for r in rendered for t in r["texts"] if t.strip().startswith("[figure]")]
    rep.observed["untrusted"] = {
        "trusted": st.get("trusted"),
        "charts_as_images": len(charts),
        "charts_as_figure_text": len(fig_text),
        "figure_texts": [t.strip()[:120] for t in fig_text],
    }
    log(f"untrusted {name}: trusted={st.get('trusted')}, {len(charts)} chart image(s), "
        f"{len(fig_text)} '[figure] ...' text output(s)")
    ok = rep.check(g, "the copied executed notebook opens untrusted", st.get("trusted") is False,
                   f"Jupyter.notebook.trusted = {st.get('trusted')!r}")
    ok &= rep.check(g, "its charts show as images, not as '[figure] ...' text",
                    len(charts) >= 1 and not fig_text,
                    f"{len(charts)} chart image(s) and {len(fig_text)} text output(s) "
                    f"{[t.strip()[:80] for t in fig_text[:3]]} (an untrusted notebook drops image/svg+xml; "
                    "charts need an image/png fallback)")
    if not ok:
        rep.screenshots += b.screenshot("untrusted")


def test_run_all(b, server, rep, results):
    g = "run_all"
    st = open_notebook(b, server, NOTEBOOK)
    p = parameters_cell(st)
    edit_parameter(b, p, "profile", '"smoke"')
    edit_parameter(b, p, "draws", "3")
    log("Cell > Run All (profile smoke, draws 3)")
    run_all(b)
    st, secs, note = wait_run(b, server, timeout=float(os.environ.get("NOISELAB_BROWSER_RUN_TIMEOUT", "900")))
    rep.timings["run_all_s"] = round(secs, 1)
    log(f"Run All finished in {secs:.1f} s{' (' + note + ')' if note else ''}")
    rendered = b.js(JS_RENDERED)
    code = [c for c in st.get("cells", []) if c["type"] == "code"]
    unran = [c["index"] for c in code if not isinstance(c["prompt"], int)]
    ok = rep.check(g, "Run All completes: every code cell has an execution count",
                   not note and not unran, (note + "; " if note else "") + f"cells without a count: {unran}")
    errs = [(r["index"], e) for r in rendered for e in r["errors"]]
    ok &= rep.check(g, "no output area shows an error", not errs,
                    "; ".join(f"cell {i}: {e.strip()[:600]}" for i, e in errs[:3]))
    rows = [row for r in rendered for row in r["rows"]]
    prof = any(len(r) >= 2 and r[0] == "profile" and r[1] == '"smoke"' for r in rows)
    draws = any(len(r) >= 2 and r[0] == "draws" and r[1] == "3" for r in rows)
    ok &= rep.check(g, "the edited parameters are in effect (parameters table: profile \"smoke\", draws 3)",
                    prof and draws, f"profile row \"smoke\": {prof}, draws row 3: {draws}")
    charts = [(r["index"], c) for r in rendered for c in r["charts"] if c[1] >= 100 and c[2] >= 50]
    ok &= rep.check(g, "a chart renders (<svg>/<img> of at least 100x50 px in an output area)", charts,
                    f"charts found (tag, w, h): {[c for r in rendered for c in r['charts']][:5]}")
    tables = [(r["index"], n) for r in rendered for n in r["tables"] if n >= 2]
    ok &= rep.check(g, "a table renders (<table> with rows in an output area)", tables, "no <table> in any output area")
    rep.observed["run_all"] = {"seconds": round(secs, 1), "charts": len(charts), "tables": len(tables),
                               "prompts": [c["prompt"] for c in code]}
    if not ok:
        rep.screenshots += b.screenshot("run-all")
    return p, not note and not unran


def test_error_stops(b, server, rep, results, p):
    g = "error"
    st = b.js(JS_STATE)
    code = [c for c in st["cells"] if c["type"] == "code"]
    before_max = max([c["prompt"] for c in code if isinstance(c["prompt"], int)] or [0])
    edit_parameter(b, p, "etas", "[-1]")
    files_before = result_files(results)
    time.sleep(1.1)  # mtimes: a write after the click must be distinguishable from one before it
    log("Cell > Run All (etas = [-1])")
    t_click = time.time()
    run_all(b)
    st, secs, note = wait_run(b, server, timeout=float(os.environ.get("NOISELAB_BROWSER_ERROR_TIMEOUT", "600")))
    rep.timings["error_run_s"] = round(secs, 1)
    log(f"Run All (error case) finished in {secs:.1f} s{' (' + note + ')' if note else ''}")
    rendered = {r["index"]: r for r in b.js(JS_RENDERED)}
    cells = {c["index"]: c for c in st.get("cells", [])}
    below = [c for c in st.get("cells", []) if c["type"] == "code" and c["index"] > p]

    perr = rendered[p]["errors"]
    rep.check(g, "the parameters cell shows an error naming `etas`",
              any("etas" in e for e in perr),
              f"its error outputs: {[e.strip()[:300] for e in perr]}; "
              "errors elsewhere: " + "; ".join(f"cell {i}: {r['errors'][0].strip()[:300]}"
                                              for i, r in rendered.items() if r["errors"] and i != p))
    ran = [c["index"] for c in below if isinstance(c["prompt"], int) and c["prompt"] > before_max]
    rep.check(g, "the cells below the error did not run (no new execution count)", not ran,
              f"cells {ran} ran after the error (prompts {[cells[i]['prompt'] for i in ran]}, "
              f"last count before the click {before_max})")
    with_out = [c["index"] for c in below if c["outputs"]]
    rep.check(g, "the cells below the error have no outputs", not with_out,
              f"cells {with_out} have outputs: "
              + "; ".join(f"cell {i}: {', '.join(cells[i]['outputs'][:4])}" for i in with_out[:3]))
    after = result_files(results)
    newer = sorted(f for f, m in after.items() if m > t_click - 0.5 and files_before.get(f) != m)
    rep.check(g, "nothing under the results folder was written after the click", not newer,
              f"written: {[os.path.relpath(f, results) for f in newer[:8]]}")
    rep.observed["error"] = {
        "seconds": round(secs, 1), "note": note, "last_count_before": before_max,
        "prompts_below": {c["index"]: c["prompt"] for c in below},
        "error_cells": {i: r["errors"][0].strip()[:500] for i, r in rendered.items() if r["errors"]},
        "files_written": [os.path.relpath(f, results) for f in newer],
    }
    if rep.failed(g):
        rep.screenshots += b.screenshot("error-case")


def prepare_workspace():
    tmp = os.path.join(ROOT, "results", "tmp")
    os.makedirs(tmp, exist_ok=True)
    ws = tempfile.mkdtemp(prefix="browser-", dir=tmp)
    nbdir = os.path.join(ws, "notebooks")
    shutil.copytree(os.path.join(ROOT, "notebooks"), nbdir,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "*.tmp"))
    if not os.path.exists(os.path.join(nbdir, NOTEBOOK)):
        raise HarnessError(f"notebooks/{NOTEBOOK} is missing")
    with open(os.path.join(nbdir, "noiselab-browser-root.txt"), "w") as f:
        f.write("the browser test's copy of notebooks/\n")
    if os.path.exists(EXECUTED):
        shutil.copy(EXECUTED, os.path.join(nbdir, "executed-" + NOTEBOOK))
    # the notebooks import ../lib/...; the project root is then the workspace (lib/util/paths.ts)
    for name in ("lib", "node_modules", "data"):
        os.symlink(os.path.join(ROOT, name), os.path.join(ws, name))
    results = os.path.join(ws, "results")
    os.makedirs(results)
    models = os.path.join(ROOT, "results", "models")
    os.makedirs(models, exist_ok=True)
    os.symlink(models, os.path.join(results, "models"))
    jup = {k: os.path.join(ws, "jupyter", k) for k in ("config", "data", "runtime")}
    for d in jup.values():
        os.makedirs(d)
    env = dict(os.environ)
    env.update({
        "NOISELAB_RESULTS_DIR": results,
        "NOISELAB_DATA_DIR": os.path.join(ROOT, "data"),
        "JUPYTER_CONFIG_DIR": jup["config"],
        "JUPYTER_DATA_DIR": jup["data"],
        "JUPYTER_RUNTIME_DIR": jup["runtime"],
        "NO_COLOR": "1",
    })
    env.pop("NOISELAB_PUBLISH", None)
    return ws, nbdir, results, env


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", help="write the report here")
    ap.add_argument("--timeout", type=float, default=float(os.environ.get("NOISELAB_BROWSER_TIMEOUT", "1500")),
                    help="hard limit for the whole test, seconds (default 1500)")
    ap.add_argument("--keep", action="store_true", help="keep the workspace under results/tmp/")
    args = ap.parse_args()

    rep = Report()
    ws = server = b = None
    state = {"stopping": False}

    def on_signal(signum, _frame):
        if state["stopping"]:
            return
        state["stopping"] = True
        raise Stop("hard time-out" if signum == signal.SIGALRM else f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGALRM, on_signal)
    signal.alarm(int(args.timeout))
    try:
        ws, nbdir, results, env = prepare_workspace()
        log(f"workspace {ws}")
        server = Server(ws, nbdir, env)
        server.wait_ready()
        listing = [e["name"] for e in server.api("/api/contents")["content"]]
        if "noiselab-browser-root.txt" not in listing:
            raise HarnessError(f"Jupyter does not serve the copy {nbdir} (its root lists {listing}); "
                               "refusing to touch the real notebooks/")
        log(f"Jupyter serves the copy ({len(listing)} entries)")
        b = Browser(ws)
        t = time.time()
        if os.path.exists(EXECUTED):
            test_untrusted(b, server, rep)
        else:
            rep.check("untrusted", "an executed notebook is committed", False, f"{EXECUTED} is missing")
        rep.timings["untrusted_s"] = round(time.time() - t, 1)
        b.driver.switch_to.new_window("tab")
        p, completed = test_run_all(b, server, rep, results)
        if completed:
            test_error_stops(b, server, rep, results, p)
        else:
            rep.check("error", "(not run: the first Run All did not complete)", False,
                      "see the run_all checks")
    except (HarnessError, Stop) as e:
        rep.harness_error = f"{type(e).__name__}: {e}"
        log(f"HARNESS ERROR {rep.harness_error}")
    except Exception as e:  # selenium and the like: report, never hang
        rep.harness_error = f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=6)}"
        log(f"HARNESS ERROR {rep.harness_error}")
    finally:
        state["stopping"] = True  # a second signal/alarm must not break the clean-up
        signal.alarm(0)
        if rep.harness_error and b is not None:
            rep.screenshots += b.screenshot("harness-error")
        if b is not None:
            b.quit()
        if server is not None:
            if rep.harness_error:
                rep.harness_error += f"\n--- Jupyter log (last lines) ---\n{server.log_tail()}"
            server.stop()
        if ws is not None and not args.keep:
            shutil.rmtree(ws, ignore_errors=True)
        rep.timings["total_s"] = round(time.time() - T0, 1)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(rep.as_json(), f, indent=1)
        for s in rep.screenshots:
            print(f"screenshot: {s}")
        log(f"done in {rep.timings['total_s']} s")
    if rep.harness_error:
        return 2
    return 1 if any(not c["ok"] for c in rep.checks) else 0


if __name__ == "__main__":
    sys.exit(main())

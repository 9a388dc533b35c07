/**
 * The classic Jupyter UI in a real browser (issue #9): Debian's headless Chromium
 * driven by Selenium (test/browser/notebook_ui.py) on a copy of notebooks/.
 * Installs what it needs (tools/setup_browser.sh, silent when installed); never
 * skipped. One browser session answers three tests:
 *   - an untrusted executed notebook shows its charts as images;
 *   - 01's parameters cell edited through CodeMirror, Cell > Run All: a chart and
 *     a table render, no error;
 *   - then `etas = [-1]`, Run All: the parameters cell shows the error and the
 *     cells below it do not run.
 * The script's progress goes to stderr; a failure names its check, with the
 * paths of screenshots of the page.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const PYTHON = "/usr/bin/python3"; // Debian's, where python3-selenium is installed
/** The script's own hard limit (seconds); the wrapper kills it a minute later. */
const HARD_TIMEOUT_S = 1500;

type Check = { group: string; name: string; ok: boolean; message: string };
type Report = {
  checks: Check[];
  observed: Record<string, unknown>;
  screenshots: string[];
  timings: Record<string, number>;
  harness_error: string | null;
};

async function runBrowserTest(): Promise<Report> {
  const setup = await new Deno.Command("bash", {
    args: [join(ROOT, "tools", "setup_browser.sh")],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!setup.success) {
    return failedReport(`tools/setup_browser.sh failed (exit ${setup.code}); its output is above`);
  }
  const dir = await Deno.makeTempDir({ prefix: "noiselab-browser-" });
  const json = join(dir, "report.json");
  try {
    const child = new Deno.Command(PYTHON, {
      args: [
        join(ROOT, "test", "browser", "notebook_ui.py"),
        "--json",
        json,
        "--timeout",
        String(HARD_TIMEOUT_S),
      ],
      cwd: ROOT,
      stdin: "null",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
    let killed = "";
    const term = setTimeout(() => {
      killed = `killed after ${HARD_TIMEOUT_S + 60} s`;
      try {
        child.kill("SIGTERM"); // the script stops Jupyter, the kernels and Chromium on SIGTERM
      } catch { /* already gone */ }
    }, (HARD_TIMEOUT_S + 60) * 1000);
    const hard = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
    }, (HARD_TIMEOUT_S + 120) * 1000);
    const status = await child.status;
    clearTimeout(term);
    clearTimeout(hard);
    let report: Report;
    try {
      report = JSON.parse(await Deno.readTextFile(json));
    } catch {
      return failedReport(
        `test/browser/notebook_ui.py wrote no report (exit ${status.code}${killed ? ", " + killed : ""})`,
      );
    }
    return report;
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

function failedReport(message: string): Report {
  return { checks: [], observed: {}, screenshots: [], timings: {}, harness_error: message };
}

let pending: Promise<Report> | null = null;
/** One browser session for all three tests (the error case needs the state the first Run All left). */
const report = () => pending ??= runBrowserTest();

async function assertGroup(group: string) {
  const r = await report();
  const shots = r.screenshots.length ? `\nscreenshots: ${r.screenshots.join(", ")}` : "";
  assert.equal(r.harness_error, null, `the browser test could not run: ${r.harness_error}${shots}`);
  const checks = r.checks.filter((c) => c.group === group);
  assert.ok(checks.length > 0, `no "${group}" checks were made`);
  const failed = checks.filter((c) => !c.ok);
  assert.ok(
    failed.length === 0,
    `${failed.length} of ${checks.length} checks failed:\n` +
      failed.map((c) => `  - ${c.name}: ${c.message}`).join("\n") +
      `\nobserved: ${JSON.stringify(r.observed[group] ?? null)}${shots}`,
  );
}

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  ...opts,
  name:
    "browser (classic Jupyter UI): an untrusted executed notebook shows its charts as images, not '[figure]' text",
  fn: () => assertGroup("untrusted"),
});

Deno.test({
  ...opts,
  name:
    "browser (classic Jupyter UI): parameters cell edited, Cell > Run All: a chart and a table render, no error",
  fn: () => assertGroup("run_all"),
});

Deno.test({
  ...opts,
  name:
    "browser (classic Jupyter UI): etas = [-1] in the parameters cell, Run All stops there (cells below do not run)",
  fn: () => assertGroup("error"),
});

import assert from "node:assert/strict";
import { join } from "node:path";
import { allNotebooks, checkNotebook, checkNotebooks } from "../tools/check_notebooks.ts";

Deno.test("every notebook type-checks (code cells concatenated, deno check)", async () => {
  const files = allNotebooks();
  assert.ok(files.length >= 4, `expected the 4 notebooks, found ${files.length}`);
  for (const r of await checkNotebooks(files)) {
    assert.ok(r.ok, `${r.notebook} does not type-check:\n${r.output}`);
  }
});

Deno.test("a type error is reported with its notebook cell and line", async () => {
  const dir = join(Deno.cwd(), "results", "tmp");
  await Deno.mkdir(dir, { recursive: true });
  const path = join(dir, `bad-${Deno.pid}.ipynb`);
  const cells = [
    { cell_type: "markdown", metadata: {}, source: "# x" },
    {
      cell_type: "code",
      metadata: { tags: ["parameters"] },
      outputs: [],
      execution_count: null,
      source: 'const profile = "smoke";',
    },
    {
      cell_type: "code",
      metadata: {},
      outputs: [],
      execution_count: null,
      source: 'const ok = 1;\nconst bad: number = "text";',
    },
  ];
  await Deno.writeTextFile(path, JSON.stringify({ cells, metadata: {}, nbformat: 4, nbformat_minor: 5 }));
  try {
    const r = await checkNotebook(path);
    assert.equal(r.ok, false);
    assert.equal(r.diagnostics[0].cell, 2);
    assert.equal(r.diagnostics[0].line, 2);
    assert.match(r.output, /cell 2 line 2/);
  } finally {
    await Deno.remove(path);
  }
});

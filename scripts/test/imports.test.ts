/*
 * The import rules of .dependency-cruiser.cjs, checked with dependency-cruiser
 * on the real tree (so that CI fails on a violation), and shown failing on a
 * synthetic tree with a wrong-direction import, a kernel importing a tool,
 * a relative import across workspaces and a type-only cycle.
 *
 * Through dependency-cruiser's API, in process: the package (and the
 * TypeScript compiler it parses with) loads once for the three cruises,
 * where three CLI runs paid that start-up each. baseDir is the tree's root,
 * as the CLI's working directory was; the output is the CLI's err-long text.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { cruise } from "dependency-cruiser";
import extractDepcruiseOptions from "dependency-cruiser/config-utl/extract-depcruise-options";
import { afterAll, describe, expect, test } from "vitest";
import { ROOT } from "../src/run.js";

const CONFIG = path.join(ROOT, ".dependency-cruiser.cjs");

/** depcruise - `depcruise --config CONFIG --output-type err-long @dirs` run in @cwd: its exit code and output. */
async function depcruise(cwd: string, dirs: string[]): Promise<{ status: number; out: string }> {
  const options = await extractDepcruiseOptions(CONFIG);
  const r = await cruise(dirs, { ...options, baseDir: cwd, outputType: "err-long" });
  return { status: r.exitCode, out: String(r.output) };
}

test("the tree keeps the import rules (layers one way, kernels on shared only, nothing imports scripts, no cross-workspace relative import, no cycle)", async () => {
  const dirs = ["shared/src", "shared/test", "kernel-a/src", "kernel-b/src", "scripts/src", "scripts/test"].filter((d) => fs.existsSync(path.join(ROOT, d)));
  for (const d of ["kernel-a/test", "kernel-b/test"]) if (fs.existsSync(path.join(ROOT, d))) dirs.push(d);
  const r = await depcruise(ROOT, dirs);
  expect(r.status, `dependency-cruiser found violations:\n${r.out}`).toBe(0);
}, 180_000);

describe("a synthetic tree", () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "khosim-depcruise-"));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const write = (dir: string, files: Record<string, string>): string => {
    const root = path.join(tmp, dir);
    for (const [f, text] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
      fs.writeFileSync(path.join(root, f), text);
    }
    return root;
  };
  const good = {
    "shared/src/lib/bytes.ts": "export const hex = (n: number): string => n.toString(16);\n",
    "shared/src/proc/cli.ts": 'import { hex } from "../lib/bytes.js";\nexport const show = (n: number): string => hex(n);\n',
    "kernel-a/src/main.ts": 'import * as fs from "node:fs";\nexport const ok = fs.existsSync(".");\n',
    "scripts/src/tool.ts": 'import { show } from "../../shared/src/proc/cli.js";\nexport const t = show;\n',
  };

  test("passes when every import goes the right way (the control)", async () => {
    const root = write("good", { ...good, "scripts/src/tool.ts": 'export const t = 1;\n' });
    const r = await depcruise(root, ["shared/src", "kernel-a/src", "scripts/src"]);
    expect(r.status, r.out).toBe(0);
  }, 120_000);

  test("fails on a wrong-direction import, a kernel importing a tool, a relative import across workspaces and a type-only cycle", async () => {
    const root = write("bad", {
      ...good,
      // lib importing proc: the wrong direction.
      "shared/src/lib/bytes.ts": 'import { show } from "../proc/cli.js";\nexport const hex = (n: number): string => n.toString(16);\nexport const again = show;\n',
      "kernel-a/src/main.ts": 'import { t } from "../../scripts/src/tool.js";\nexport const ok = t;\n',
      "shared/src/mm/a.ts": 'import type { B } from "./b.js";\nexport interface A { b?: B }\n',
      "shared/src/mm/b.ts": 'import type { A } from "./a.js";\nexport interface B { a?: A }\n',
    });
    const r = await depcruise(root, ["shared/src", "kernel-a/src", "scripts/src"]);
    expect(r.status).not.toBe(0);
    expect(r.out).toMatch(/shared-layers-lib: shared\/src\/lib\/bytes\.ts → shared\/src\/proc\/cli\.ts/);
    expect(r.out).toMatch(/kernels-import-shared-only: kernel-a\/src\/main\.ts → scripts\/src\/tool\.ts/);
    expect(r.out).toMatch(/nothing-imports-scripts: kernel-a\/src\/main\.ts → scripts\/src\/tool\.ts/);
    expect(r.out).toMatch(/no-relative-import-across-workspaces: scripts\/src\/tool\.ts → shared\/src\/proc\/cli\.ts/);
    expect(r.out).toMatch(/no-circular: shared\/src\/mm\/a\.ts →/);
  }, 120_000);
});

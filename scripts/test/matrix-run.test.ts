/*
 * npm run matrix end to end, through real processes, kept small: 2 kernel
 * versions × the default workload (2 kernel-a and 4 kernel-b processes, then
 * one cell's printed command run again). The full matrix is the npm script
 * (docs/matrix.md), never a test.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { distPath } from "../src/run.js";
import { makeTmp, readJson, removeTmp, runA, runB, runKernelAsync, type RunResult } from "./handoff-helpers.js";

const MATRIX = distPath("scripts/src/matrix.ts");
let tmp: string;
let run: RunResult;
let json: { cells: { predecessor: string; successor: string; verdict: string; text: string; command: string; kernel: Record<string, unknown> | null }[] };
let md: string;
/* Runs of the command that fail, started with the main run so that they overlap it. */
let ver: Promise<RunResult>;
let badOp: Promise<RunResult>;

beforeAll(async () => {
  tmp = makeTmp("matrix-run");
  ver = runKernelAsync(MATRIX, ["--kernels", "v6.16,v6.15", "--out", path.join(tmp, "never")]);
  const bad = path.join(tmp, "bad-op.json");
  fs.writeFileSync(bad, JSON.stringify({ description: "an op kernel-a rejects", machine: { ram: "1G" }, ops: [{ op: "folios", count: 1, order: 11 }] }));
  badOp = runKernelAsync(MATRIX, ["--kernels", "v6.16", "--workloads", bad, "--out", path.join(tmp, "out-bad")]);
  run = await runKernelAsync(MATRIX, ["--kernels", "v6.16,v6.18", "--workloads", "default", "--out", path.join(tmp, "out"), "--json", path.join(tmp, "m.json"), "--html", path.join(tmp, "m.html")]);
  md = run.stdout;
  if (run.status === 0) json = readJson(path.join(tmp, "m.json"));
}, 120_000);
afterAll(() => removeTmp(tmp));

const cell = (p: string, s: string) => json.cells.find((c) => c.predecessor === p && c.successor === s)!;

describe("npm run matrix -- --kernels v6.16,v6.18 --workloads default", () => {
  test("exits 0 with one table row per predecessor and a command per cell; --json and --html written", () => {
    expect(run.stderr).not.toMatch(/internal error/);
    expect(run.status).toBe(0);
    expect(md).toContain("| pred ↓ / succ → | **v6.16** | **v6.18** |");
    expect(md.match(/^\| \*\*v6\.1[68]\*\* \|/gm)).toHaveLength(2);
    expect(md.match(/^- v6\.1[68] → v6\.1[68]: `npm run kernel-a -- --kernel v6\.1[68] .* && npm run kernel-b -- --kernel v6\.1[68] .*`$/gm)).toHaveLength(4);
    expect(json.cells).toHaveLength(4);
    expect(fs.readFileSync(path.join(tmp, "m.html"), "utf8").match(/<g class="cell/g)).toHaveLength(4);
  });

  test("same-version pairs revive intact; the cross pairs are the hazards of docs/kernel-versions.md 4.1 and 4.2", () => {
    expect(cell("v6.16", "v6.16").verdict).toBe("intact");
    expect(cell("v6.18", "v6.18").verdict).toBe("intact");
    // A v6.16 successor scans 4096 bits of each one-page bitmap: the pages past the first 16 MiB of their window are lost.
    expect(cell("v6.18", "v6.16").verdict).toBe("pages-lost");
    expect(cell("v6.18", "v6.16").kernel).toMatchObject({ lostPages: 3, firstLost: "0x42800000" });
    expect(cell("v6.18", "v6.16").text).toBe("revived, 3 pages lost (first 0x42800000)");
    // A one-page successor reads 4096 bytes at each 512-byte bitmap.
    expect(["read-out-of-bounds", "would-corrupt"]).toContain(cell("v6.16", "v6.18").verdict);
    expect(cell("v6.16", "v6.18").kernel!["oobReadBytes"]).toBeGreaterThan(0);
  });

  // --help (with its "1  some run failed" line) and an unknown option: cli.test.ts's runs of every command.
  test("a bad version exits 2 with one line and runs nothing", async () => {
    const r = await ver;
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('matrix: --kernels: "v6.15" is not one of posting, v6.16, v6.18, v6.19, kho-v2\n');
    expect(fs.existsSync(path.join(tmp, "never"))).toBe(false);
  });

  test("a run that fails is reported in its cell and makes the exit 1; the table is still printed", async () => {
    const r = await badOp;
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/^\| \*\*v6\.16\*\* \| \*\*run failed \(kernel-a exit 2: kernel-a: .*bad-op\.json: ops\[0\]\.order: .*\)\*\* \|$/m);
    expect(r.stdout).toContain("1 run(s) failed");
  });

  test("a cell's printed command reproduces it", async () => {
    const c = cell("v6.18", "v6.16");
    const m = /^npm run kernel-a -- (.*) && npm run kernel-b -- (.*)$/.exec(c.command)!;
    // The matrix's paths need no quoting (makeTmp's names are plain), so the words split on spaces.
    const a = await runA(m[1]!.split(" "));
    expect(a.status).toBe(0);
    const bArgs = m[2]!.split(" ");
    const report = bArgs[bArgs.indexOf("--report") + 1]!;
    expect(fs.existsSync(report)).toBe(false); // kernel-a --force replaced the directory
    const b = await runB(bArgs);
    expect(b.status).toBe(4); // revived-unsafely
    expect(readJson<{ kernel: unknown }>(report).kernel).toEqual(c.kernel);
  });
});

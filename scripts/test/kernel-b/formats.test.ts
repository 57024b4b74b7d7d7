/*
 * A successor's next handoff may switch format (kernel-b --handoff-out
 * --format). Every format's own two-process handoff is in the format
 * contract suite (scripts/test/format-contract.test.ts).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { KERNEL_A, KERNEL_B, ROOT, readJson, runKernel } from "../../src/run.js";

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "khosim-formats-"));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const MIXED = path.join(ROOT, "scenarios/mixed.json");

describe("formats end to end", () => {
  test("a successor hands off in another format than it booted with", { timeout: 60_000 }, () => {
    const a = path.join(dir, "switch-a");
    const b = path.join(dir, "switch-b");
    expect(runKernel(KERNEL_A, ["--out", a, "--scenario", MIXED, "--format", "bitmaps"]).status).toBe(0);
    const r = runKernel(KERNEL_B, ["--in", a, "--handoff-out", b, "--format", "radix"]);
    expect(r.status, r.stderr).toBe(0);
    expect(readJson(path.join(b, "report.json")).format).toBe("radix");
    expect(runKernel(KERNEL_B, ["--in", b]).status).toBe(0);
    expect(readJson(path.join(b, "successor.json")).format).toBe("radix");
  });
});

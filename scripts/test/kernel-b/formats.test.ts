/*
 * Every preservation format through the real CLIs: kernel-a --format F, then
 * kernel-b, which must recognise the format from the KHO FDT alone, revive
 * and verify; and its next handoff may switch format.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { KHO_FORMATS } from "@khosim/shared/kho";
import { KERNEL_A, KERNEL_B, ROOT, readJson, runKernel } from "../../src/run.js";

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "khosim-formats-"));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const MIXED = path.join(ROOT, "scenarios/mixed.json");

describe.concurrent("formats end to end", () => {
  for (const f of KHO_FORMATS.map((k) => k.name)) {
    test(`${f}: kernel-b detects it, revives and verifies mixed.json`, { timeout: 60_000 }, () => {
      const out = path.join(dir, f);
      const a = runKernel(KERNEL_A, ["--out", out, "--scenario", MIXED, "--format", f, "--log-format", "json"]);
      expect(a.status, a.stderr).toBe(0);
      const rep = readJson(path.join(out, "report.json"));
      expect(rep.format).toBe(f);
      const b = runKernel(KERNEL_B, ["--in", out, "--log-format", "json"]);
      expect(b.status, b.stdout + b.stderr).toBe(0);
      const s = readJson(path.join(out, "successor.json"));
      expect(s.format).toBe(f);
      expect(s.outcome).toBe("revived");
      expect(s.restored.folios).toBe(rep.stats.folios);
      expect(s.restored.ranges).toBe(rep.stats.physRanges);
      // The successor walked exactly the metadata objects the predecessor wrote (posted: its 98,320-byte chunks).
      expect(s.chunks).toEqual(rep.chunks);
    });
  }

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

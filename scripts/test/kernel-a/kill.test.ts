/*
 * kernel-a killed at any instant (SIGKILL) leaves either no handoff directory
 * or the previous complete one (or, once the rename is done, the new complete
 * one): never a partial directory that kernel-b would accept.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { KERNEL_A, KERNEL_B, ROOT, runKernel } from "../../src/run.js";

let dir: string;
let scenario: string;
let out: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "khosim-kill-"));
  scenario = path.join(dir, "large.json");
  // A large write: 160 MiB of filled folios, so the image write takes a while.
  fs.writeFileSync(
    scenario,
    JSON.stringify({ machine: { ram: "512M" }, ops: [{ op: "folios", count: 80, order: 9, layout: "contiguous" }] }),
  );
  out = path.join(dir, "handoff");
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function killAfter(ms: number, seed: number): Promise<void> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [KERNEL_A, "--out", out, "--force", "--scenario", scenario, "--seed", String(seed), "--log-format", "json"], {
      cwd: ROOT,
      stdio: "ignore",
    });
    const t = setTimeout(() => p.kill("SIGKILL"), ms);
    p.on("exit", () => {
      clearTimeout(t);
      resolve();
    });
  });
}

function seedOf(handoff: string): number | undefined {
  const f = path.join(handoff, "report.json");
  return fs.existsSync(f) ? (JSON.parse(fs.readFileSync(f, "utf8")) as { seed: number }).seed : undefined;
}

test("SIGKILL at many points of a large write never leaves a partial handoff", { timeout: 240_000 }, async () => {
  const first = runKernel(KERNEL_A, ["--out", out, "--scenario", scenario, "--seed", "1", "--log-format", "json"]);
  expect(first.status).toBe(0);
  // Time one full run to spread the kills over it.
  const t0 = Date.now();
  await killAfter(60_000, 1);
  const full = Date.now() - t0;
  expect(seedOf(out)).toBe(1);

  const points = 12;
  let killedEarly = 0;
  let seed = 2;
  for (let i = 0; i < points; i++, seed++) {
    const before = seedOf(out);
    await killAfter(Math.round((full * (i + 0.5)) / points), seed);
    const after = seedOf(out);
    if (fs.existsSync(out)) {
      // Either the previous complete handoff or the new complete one, with all four files.
      expect([before, seed]).toContain(after);
      for (const f of ["memory.img", "boot.dtb", "kho.dtb", "report.json"]) expect(fs.existsSync(path.join(out, f))).toBe(true);
      if (after === before) killedEarly++;
    }
  }
  // The kills really landed before the end of some runs.
  expect(killedEarly).toBeGreaterThan(0);
  // Whatever is there now is a complete handoff kernel-b accepts.
  if (fs.existsSync(out)) {
    const b = runKernel(KERNEL_B, ["--in", out, "--report", path.join(dir, "succ.json"), "--log-format", "json"]);
    expect(b.status).toBe(0);
  }
  // Left-over temporary directories are hidden and never named like the handoff.
  for (const e of fs.readdirSync(dir)) if (e !== "handoff" && e.startsWith("handoff")) throw new Error(`stray ${e}`);
});

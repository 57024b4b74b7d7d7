/*
 * kernel-a's handoff directory, from the real CLI: same inputs give the same
 * bytes (compared with cmp(1)), a different seed gives a different image, and
 * kho.dtb is byte for byte the KHO FDT that sits in memory.img. The other
 * seed's handoff is made in process by the code the bundle runs and written
 * by writeMemHandoff (the two same-seed runs are the real process).
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { requireOracles } from "@khosim/shared/test/oracles";
import { kernelAInProcess, writtenHandoff } from "../fault-helpers.js";
import { bootMemoryReg, cellsToU64, fdtgetWords, makeHandoff, makeTmp, readFileAt, removeTmp, type Handoff } from "../handoff-helpers.js";

/*
 * A small machine (cmp reads the whole RAM-sized image) with test_kho's random
 * orders, 171 isolated folios (two chunks) and a phys range.
 */
const SCENARIO = {
  description: "kernel-a determinism: test_kho, two chunks of isolated folios and a phys range on 128 MiB",
  machine: { ram: "128M", ramBase: "0x40000000", scratch: { lowmem: "16M", global: "32M" } },
  ops: [{ op: "test_kho" }, { op: "folios", count: 171, order: 0, layout: "isolated" }, { op: "phys", size: "64K" }],
};
const SEED = 42;
const OTHER_SEED = 43;

let tmp: string | undefined;
let first: Handoff | undefined;
let second: Handoff | undefined;
let otherSeed: Handoff | undefined;

beforeAll(async () => {
  requireOracles();
  tmp = makeTmp("kernel-a-handoff");
  const scenario = path.join(tmp, "scenario.json");
  fs.writeFileSync(scenario, JSON.stringify(SCENARIO));
  const args = (seed: number) => ["--scenario", scenario, "--seed", String(seed)];
  const real = Promise.all([makeHandoff(path.join(tmp, "first"), args(SEED)), makeHandoff(path.join(tmp, "second"), args(SEED))]);
  // While the two processes run: kernel-a --scenario FILE --seed OTHER_SEED, in process.
  const other = await kernelAInProcess(scenario, OTHER_SEED);
  otherSeed = writtenHandoff(other, path.join(tmp, "other-seed"));
  [first, second] = await real;
});

afterAll(() => removeTmp(tmp));

function need(h: Handoff | undefined): Handoff {
  if (!h) throw new Error("no handoff (beforeAll failed)");
  return h;
}

/** cmp -s A B: 0 identical, 1 different; anything else (2: trouble) fails the test. */
function cmp(a: string, b: string): number {
  const r = spawnSync("cmp", ["-s", a, b], { encoding: "utf8" });
  if (r.error) throw r.error;
  if (r.status !== 0 && r.status !== 1) throw new Error(`cmp ${a} ${b} exited ${r.status ?? r.signal}: ${r.stderr}`);
  return r.status;
}

describe("kernel-a is deterministic", () => {
  test("the workload fills two chunks, so the determinism check covers a chunk boundary", () => {
    expect(need(first).report.stats.chunks).toBeGreaterThanOrEqual(2);
    expect(need(first).report.seed).toBe(SEED);
    expect(need(otherSeed).report.seed).toBe(OTHER_SEED);
  });

  test.each(["memory.img", "boot.dtb", "kho.dtb", "report.json", "memory.img.extents"])(
    "two runs with the same scenario and seed write byte-identical %s (cmp)",
    (name) => {
      const a = path.join(need(first).dir, name);
      const b = path.join(need(second).dir, name);
      expect(fs.statSync(a).size).toBeGreaterThan(0);
      expect(cmp(a, b)).toBe(0);
    },
  );

  test("a different --seed writes a different memory.img (cmp)", () => {
    expect(cmp(path.join(need(first).dir, "memory.img"), path.join(need(otherSeed).dir, "memory.img"))).toBe(1);
  });

  test("the handoff directory holds exactly memory.img, boot.dtb, kho.dtb and report.json (and memory.img's extents file, a cache for tools)", () => {
    expect(fs.readdirSync(need(first).dir).sort()).toEqual(["boot.dtb", "kho.dtb", "memory.img", "memory.img.extents", "report.json"]);
  });
});

describe("kho.dtb is the KHO FDT in memory.img", () => {
  test("memory.img is exactly RAM-sized, RAM as boot.dtb's /memory reg describes it", () => {
    const h = need(first);
    const mem = bootMemoryReg(path.join(h.dir, "boot.dtb"));
    expect(mem.base).toBe(BigInt(h.report.machine.ramBase));
    expect(mem.size).toBe(BigInt(h.report.machine.ram));
    expect(BigInt(fs.statSync(path.join(h.dir, "memory.img")).size)).toBe(mem.size);
  });

  test.each([
    ["same seed", () => first],
    ["other seed", () => otherSeed],
  ] as const)("kho.dtb equals the bytes of memory.img at /chosen linux,kho-fdt (file offset = addr - RAM base) (%s)", (_, which) => {
    const h = need(which());
    const boot = path.join(h.dir, "boot.dtb");
    const { base } = bootMemoryReg(boot);
    const [addr, size] = cellsToU64(fdtgetWords(boot, "/chosen", "linux,kho-fdt"));
    const khoDtb = fs.readFileSync(path.join(h.dir, "kho.dtb"));
    expect(size).toBe(BigInt(khoDtb.length));
    const inImage = readFileAt(path.join(h.dir, "memory.img"), Number(addr! - base), Number(size!));
    expect(inImage.length).toBe(khoDtb.length);
    expect(inImage.equals(khoDtb)).toBe(true);
    expect(inImage.readUInt32BE(0)).toBe(0xd00dfeed);
  });
});

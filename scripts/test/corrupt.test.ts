/*
 * npm run corrupt, end to end: for EVERY fault kind, the real corrupt CLI
 * damages a copy of a real handoff, then the real kernel-b boots the copy
 * (with the kind's kernel-b options), and we check the exit code, the outcome
 * in successor.json and that the reason names what is wrong.
 *
 * Two good handoffs are made once per file by the real kernel-a:
 * scenarios/default.json (1 chunk) and scenarios/chunk-boundary-171.json
 * (2 chunks, for kinds that need more than one chunk). Runs are pooled (one
 * process per core, see corrupt-helpers.ts) and the tests are concurrent.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { parseBootDtb } from "@khosim/shared/abi";
import { u64ToNumber } from "@khosim/shared/lib";
import { FAULTS, OUTCOME_EXIT, findFault, type Fault, type FaultGroup } from "../src/faults.js";
import {
  SCENARIOS,
  allocatedBytes,
  fileStamp,
  makeTmp,
  readFileAt,
  readJson,
  removeTmp,
  runA,
  runB,
  runCorrupt,
  sha256File,
  stackLines,
  type RunResult,
} from "./corrupt-helpers.js";

const TIMEOUT = 120_000;

interface FaultJson {
  tool: string;
  kind: string;
  group: string;
  description: string;
  seed: number;
  expect: { outcome: string; exitCode: number; reasonIncludes: string[]; failure?: { kind: string; phys?: string; order?: number } };
  kernelBArgs: string[];
  details: { file: string; offset: string; phys?: string; field: string; old: string; new: string }[];
}

interface SuccessorJson {
  outcome: string;
  exitCode: number;
  reason: string | null;
  failureCount: number;
  failures: { kind: string; phys?: string; order?: number; reason: string }[];
}

type Input = "default" | "multi";

let tmp: string | undefined;
const inputs = new Map<Input, string>();
let ready: Promise<void> | undefined;

/* Both handoffs are made concurrently, once; every test awaits them. */
beforeAll(async () => {
  tmp = makeTmp("corrupt");
  const make = async (which: Input, args: string[]): Promise<void> => {
    const dir = path.join(tmp!, `good-${which}`);
    const a = await runA(["--out", dir, "--log-format", "json", ...args]);
    if (a.status !== 0) throw new Error(`kernel-a ${args.join(" ")} exited ${a.status}: ${a.stderr.trim()}`);
    inputs.set(which, dir);
  };
  ready = Promise.all([
    make("default", ["--scenario", path.join(SCENARIOS, "default.json")]),
    make("multi", ["--scenario", path.join(SCENARIOS, "chunk-boundary-171.json")]),
  ]).then(() => undefined);
  await ready;
}, TIMEOUT);

afterAll(() => removeTmp(tmp));

function input(which: Input): string {
  const d = inputs.get(which);
  if (!d) throw new Error(`no ${which} handoff (beforeAll failed)`);
  return d;
}

/**
 * Kinds run on the 2-chunk handoff: those that need a second chunk, and two
 * whose damage then lands past chunk 0 or across the chunk boundary. Their
 * input files are also hashed around kernel-b (hashing costs about 1 s per
 * GiB, and this image is 256 MiB).
 */
const ON_MULTI = new Set(["chunk-next-earlier", "chunk-num-ranges-171", "range-overlap"]);
/** Every kind once (each spawn costs about a second of tsx start-up). */
const CASES: { kind: string; on: Input; seed: number; hash: boolean }[] = FAULTS.map((f) => {
  const multi = ON_MULTI.has(f.kind);
  return { kind: f.kind, on: multi ? "multi" : "default", seed: 1, hash: multi };
});
/** Kinds that leave every byte as it is (only kernel-b's options differ). */
const CHANGES_NOTHING = new Set(["data-order-above-max"]);

/* What every reason of a group looks like, whatever the kind says of itself. */
const GROUP_REASON: Record<FaultGroup, RegExp> = {
  "kho-fdt": /^(KHO FDT at 0x[0-9a-f]+: |chunk list: (metadata is 0x[0-9a-f]+: |chunk 0 at 0x[0-9a-f]+: ))/,
  "chunk-list": /^chunk list: chunk \d+ at 0x[0-9a-f]+: (.* at \+0x[0-9a-f]+ is 0x[0-9a-f]+|page lies inside)/,
  "boot-dtb": /(\/chosen\/linux,kho-(fdt|scratch)|\/memory|chunk list: chunk \d+ at 0x[0-9a-f]+: ranges\[\d+\]|early allocation)/,
  image: /memory\.img: /,
  data: /^\d+ verification failure\(s\); first: 0x[0-9a-f]+: /,
};

const INPUT_FILES = ["memory.img", "boot.dtb", "kho.dtb"] as const;

/** The reason kernel-b gives: successor.json's, or its one stderr line when it could not boot. */
function reasonOf(dir: string, b: RunResult): { succ?: SuccessorJson; reason: string } {
  const file = path.join(dir, "successor.json");
  if (fs.existsSync(file)) {
    const succ = readJson<SuccessorJson>(file);
    return { succ, reason: succ.reason ?? "" };
  }
  const line = b.stderr.split("\n").find((l) => l.startsWith("kernel-b: ")) ?? "";
  return { reason: line.slice("kernel-b: ".length) };
}

/** kho.dtb must be a copy of the KHO FDT bytes in the image, wherever /chosen/linux,kho-fdt points inside RAM. */
function expectKhoDtbIsCopy(dir: string): void {
  let boot;
  try {
    boot = parseBootDtb(fs.readFileSync(path.join(dir, "boot.dtb")));
  } catch {
    return; // boot-no-memory: nothing to compare against
  }
  const img = path.join(dir, "memory.img");
  if (!boot.khoFdt || !fs.existsSync(img) || fs.statSync(img).size !== boot.ram.size) return;
  const addr = u64ToNumber(boot.khoFdt.addr);
  const copy = fs.readFileSync(path.join(dir, "kho.dtb"));
  if (addr === undefined || addr < boot.ram.base || addr + copy.length > boot.ram.base + boot.ram.size) return;
  expect(readFileAt(img, addr - boot.ram.base, copy.length).equals(copy), "kho.dtb equals the KHO FDT in memory.img").toBe(true);
}

async function runCase(fault: Fault, on: Input, seed: number, hash: boolean, tag: string): Promise<void> {
  const src = input(on);
  const out = path.join(tmp!, tag);
  const c = await runCorrupt(["--in", src, "--out", out, "--fault", fault.kind, "--seed", String(seed)]);
  expect(c.stderr, `corrupt stderr`).toBe("");
  expect(c.status).toBe(0);
  expect(c.stdout).toContain(fault.kind);

  // The copy: fault.json as promised, no successor.json, memory.img still sparse.
  const fj = readJson<FaultJson>(path.join(out, "fault.json"));
  expect(fj.kind).toBe(fault.kind);
  expect(fj.seed).toBe(seed);
  expect(fj.expect.outcome).toBe(fault.expect.outcome);
  expect(fj.expect.exitCode).toBe(OUTCOME_EXIT[fault.expect.outcome]);
  if (CHANGES_NOTHING.has(fault.kind)) expect(fj.details).toEqual([]);
  else expect(fj.details.length, "fault.json lists what changed").toBeGreaterThan(0);
  for (const d of fj.details) expect(d.offset).toMatch(/^0x[0-9a-f]+$/);
  expect(fs.existsSync(path.join(out, "successor.json"))).toBe(false);
  if (fs.existsSync(path.join(out, "memory.img"))) {
    expect(allocatedBytes(path.join(out, "memory.img")), "memory.img stays sparse").toBeLessThan(allocatedBytes(path.join(src, "memory.img")) + (1 << 20));
  }
  expectKhoDtbIsCopy(out);

  // kernel-b must not write its inputs: file stamps for every kind, content hashes for a few.
  const files = INPUT_FILES.map((f) => path.join(out, f));
  const stamps = files.map(fileStamp);
  const hashes = hash ? await Promise.all(files.filter((f) => fs.existsSync(f)).map(sha256File)) : [];

  const b = await runB(["--in", out, "--log-format", "json", ...fj.kernelBArgs]);
  expect(stackLines(b.stderr), "no stack trace").toEqual([]);
  expect(b.stderr, "kernel-b must not crash (exit 70)").not.toContain("internal error");
  expect(b.stderr, "kho.dtb stays a copy of the image's FDT").not.toContain("differs from the KHO FDT");
  expect(b.status, `kernel-b exit code; stderr: ${b.stderr.slice(-400)}`).toBe(fault.expect.exitCode);

  expect(files.map(fileStamp), "kernel-b left its input files alone").toEqual(stamps);
  if (hash) expect(await Promise.all(files.filter((f) => fs.existsSync(f)).map(sha256File))).toEqual(hashes);

  const { succ, reason } = reasonOf(out, b);
  if (fault.expect.outcome === "unusable-input") {
    // kernel-b writes no report when the machine cannot boot; if it ever does, it must say so.
    if (succ) expect(succ.outcome).toBe("unusable-input");
  } else {
    expect(succ, "successor.json written").toBeDefined();
    expect(succ!.outcome).toBe(fault.expect.outcome);
    expect(succ!.exitCode).toBe(fault.expect.exitCode);
  }
  expect(reason).toMatch(GROUP_REASON[fault.group]);
  for (const s of fj.expect.reasonIncludes) expect(reason, "the reason names what is wrong").toContain(s);
  for (const s of fault.expect.reasonIncludes ?? []) expect(reason).toContain(s);

  const want = fj.expect.failure;
  if (fault.expect.outcome === "verification-failed") {
    expect(want, "data faults say which failure to expect").toBeDefined();
    expect(succ!.failureCount).toBeGreaterThan(0);
    const got = succ!.failures.find((f) => f.kind === want!.kind && f.phys === want!.phys);
    expect(got, `a ${want!.kind} failure at ${want!.phys} in ${JSON.stringify(succ!.failures)}`).toBeDefined();
    if (want!.kind === "folio") expect(got!.order, "the failure names the folio's order").toBe(want!.order);
    expect(reason).toContain(want!.phys!);
  }
}

describe.concurrent("corrupt + kernel-b: every fault kind", () => {
  for (const c of CASES) {
    const fault = findFault(c.kind)!;
    test(`${c.kind} (${c.on}, seed ${c.seed}) -> ${fault.expect.outcome} (exit ${fault.expect.exitCode})`, async () => {
      await ready;
      await runCase(fault, c.on, c.seed, c.hash, `${c.on}-${c.kind}-s${c.seed}`);
    }, TIMEOUT);
  }
});

describe.concurrent("corrupt CLI", () => {
  test("--list prints every kind with its expected outcome and exit code", async () => {
    const r = await runCorrupt(["--list"]);
    expect(r.status).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(FAULTS.length);
    for (const f of FAULTS) {
      const line = lines.find((l) => l.split(/\s+/).includes(f.kind));
      expect(line, f.kind).toBeDefined();
      expect(line).toContain(`${f.expect.outcome} (exit ${f.expect.exitCode})`);
      expect(line).toContain(f.description);
    }
  }, TIMEOUT);

  test("a kind the input cannot take fails with one line, exit 2, and writes nothing", async () => {
    await ready;
    const out = path.join(tmp!, "refused-next-earlier");
    const r = await runCorrupt(["--in", input("default"), "--out", out, "--fault", "chunk-next-earlier"]);
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain("chunk-next-earlier: needs at least 2 chunks; the input has 1");
    expect(fs.existsSync(out)).toBe(false);
    expect(fs.readdirSync(tmp!).filter((f) => f.startsWith(".refused-next-earlier")), "no temporary left behind").toEqual([]);
  }, TIMEOUT);

  test("an unknown kind, or --out that exists without --force, is exit 2", async () => {
    await ready;
    const r = await runCorrupt(["--in", input("default"), "--out", path.join(tmp!, "unknown"), "--fault", "no-such-fault"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('unknown kind "no-such-fault"');
    const again = await runCorrupt(["--in", input("default"), "--out", input("multi"), "--fault", "fdt-bad-magic"]);
    expect(again.status).toBe(2);
    expect(again.stderr).toContain("already exists");
  }, TIMEOUT);
});

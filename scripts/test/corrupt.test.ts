/*
 * The fault catalogue, in process: every fault kind is applied to an
 * in-memory handoff (memory.img's bytes as a memory view, boot.dtb, kho.dtb)
 * made by kernel-a's own code, and the result is booted by the successor's
 * boot function, as kernel-b boots the same bytes from files. Each kind must
 * give its documented outcome and exit code, a reason that names the field,
 * chunk or offset, and leave both its input and the undamaged handoff as
 * they were.
 *
 * Spawned, end to end (the real corrupt CLI, then the real kernel-b): the two
 * faults of memory.img as a file (kernel-b's image check is file I/O) and one
 * bit flip edited in place into a sparse memory.img, plus the CLI's errors;
 * on the 256 MiB handoff, written by kernel-a's code in process (its files
 * are checked against the real kernel-a's in diff.test.ts), which is cheap
 * to copy and hash: the damaged copy's extents file is recorded (the input's
 * extents and the pages the fault changed), so the "unchanged" digests read
 * the written pages only and fall back to the whole image if anything else
 * was written.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { OUTCOME_EXIT, PAGE_SIZE, parseBootDtb } from "@khosim/shared/abi";
import { SuccessorJsonSchema, readHandoffJson, type SuccessorJson } from "@khosim/shared/abi/handoff-json";
import { u64ToNumber } from "@khosim/shared/lib";
import { OverlayMem } from "@khosim/shared/mm";
import { CliError, baseImageExtents } from "@khosim/shared/proc";
import { FAULTS, applyFault, findFault, listFaults, type AppliedFault, type Fault, type FaultDetail, type FaultReport, type FaultGroup, type MemHandoff } from "../src/faults/index.js";
import { bootMemHandoff, handoffDigest, makeMemHandoff } from "./fault-helpers.js";
import { currentExtents, recordExtents, writeHandoffInProcess } from "./data-helpers.js";
import {
  SCENARIOS,
  allocatedBytes,
  fileStamp,
  makeTmp,
  readFileAt,
  readJson,
  removeTmp,
  runB,
  runCorrupt,
  fileDigest,
  stackLines,
  type RunResult,
} from "./corrupt-helpers.js";
import { thrownBy } from "@khosim/shared/test/thrown";

const TIMEOUT = 120_000;

type Input = "default" | "multi" | "numa" | "luo";
const SCENARIO: Record<Input, string> = {
  default: path.join(SCENARIOS, "default.json"),
  multi: path.join(SCENARIOS, "chunk-boundary-171.json"),
  numa: path.join(SCENARIOS, "numa-2node.json"),
  // The LUO faults need a session that kept a non-empty memfd across the kexec.
  luo: path.join(SCENARIOS, "luo", "kexec-simple.json"),
};

/**
 * Kinds run on the 2-chunk handoff: those that need a second chunk, and two
 * whose damage then lands past chunk 0 or across the chunk boundary.
 */
const ON_MULTI = new Set(["chunk-next-earlier", "chunk-num-ranges-171", "range-overlap"]);
/** Kinds run on the two-node handoff with a hole (they need banks), and one memory fault to show the banked image is damaged where it should be. */
const ON_NUMA = new Set(["bank-overlap", "bank-zero-size", "bank-beyond-2-53", "numa-node-id-wrong-length", "scratch-node-in-hole", "data-bit-flip"]);
/** Kinds that leave every byte as it is (only kernel-b's options differ). */
const CHANGES_NOTHING = new Set(["data-order-above-max"]);
/** Faults of memory.img as a file: kernel-b's decision on them is file I/O, so they are checked by spawning it. */
const FILE_LEVEL = new Set(["image-short", "image-missing"]);
/** Kinds checked end to end through both CLIs: the file-level ones, and one edit of memory.img in place. */
const SPAWNED = ["image-short", "image-missing", "data-bit-flip"];

/* What every reason of a group looks like, whatever the kind says of itself. */
const GROUP_REASON: Record<FaultGroup, RegExp> = {
  "kho-fdt": /^(KHO FDT at 0x[0-9a-f]+: |chunk list: (metadata is 0x[0-9a-f]+: |chunk 0 at 0x[0-9a-f]+: ))/,
  "chunk-list": /^chunk list: chunk \d+ at 0x[0-9a-f]+: (.* at \+0x[0-9a-f]+ is 0x[0-9a-f]+|page lies inside)/,
  "boot-dtb": /(\/chosen\/linux,kho-(fdt|scratch)|\/memory|kho_scratch\[\d+\] at 0x[0-9a-f]+: |chunk list: chunk \d+ at 0x[0-9a-f]+: ranges\[\d+\]|early allocation)/,
  image: /memory\.img: /,
  data: /^\d+ verification failure\(s\); first: 0x[0-9a-f]+: /,
  // The per-format groups are run by corrupt-formats.test.ts, on a handoff of each format they name.
  "format-root": /./,
  posted: /./,
  bitmaps: /./,
  radix: /./,
  // Faults with their own input (Fault.input) are run by corrupt-vmalloc.test.ts.
  vmalloc: /./,
  luo: /^(LUO: The incoming tree failed to initialize properly: FDT 'LUO' at 0x[0-9a-f]+: |\d+ verification failure\(s\); first: )/,
  // memblock faults need a reserve_mem handoff: corrupt-memblock.test.ts.
  memblock: /./,
};

/** What a kind's fault.json promises: the catalogue's expectation plus what apply() found in this input. */

/** The checks common to both ways of running a kind: outcome, exit code, reason, listed failure. */
function expectVerdict(fault: Fault, a: AppliedFault, got: { outcome: string; exitCode: number; reason: string; failures?: { kind: string; phys?: string; order?: number }[]; failureCount?: number }): void {
  expect(got.outcome).toBe(fault.expect.outcome);
  expect(got.exitCode).toBe(fault.expect.exitCode);
  expect(got.exitCode).toBe(OUTCOME_EXIT[fault.expect.outcome]);
  expect(got.reason).toMatch(GROUP_REASON[fault.group]);
  for (const s of a.reasonIncludes) expect(got.reason, "the reason names what is wrong").toContain(s);
  for (const s of fault.expect.reasonIncludes ?? []) expect(got.reason).toContain(s);
  const want = a.failure;
  if (fault.expect.outcome === "verification-failed") {
    expect(want, "data faults say which failure to expect").toBeDefined();
    expect(got.failureCount).toBeGreaterThan(0);
    const f = got.failures!.find((x) => x.kind === want!.kind && x.phys === want!.phys);
    expect(f, `a ${want!.kind} failure at ${want!.phys} in ${JSON.stringify(got.failures)}`).toBeDefined();
    if (want!.kind === "folio") expect(f!.order, "the failure names the folio's order").toBe(want!.order);
    if (want!.phys !== undefined) expect(got.reason).toContain(want!.phys);
  }
}

function expectDetails(fault: Fault, details: readonly FaultDetail[]): void {
  if (CHANGES_NOTHING.has(fault.kind)) expect(details).toEqual([]);
  else expect(details.length, "fault.json lists what changed").toBeGreaterThan(0);
  for (const d of details) expect(d.offset).toMatch(/^0x[0-9a-f]+$/);
}

/* ------------------------------------------------------------------------ */

const good = new Map<Input, MemHandoff>();
const goodDigest = new Map<Input, string>();

beforeAll(async () => {
  for (const which of ["default", "multi", "numa", "luo"] as const) {
    const h = await makeMemHandoff(SCENARIO[which]);
    good.set(which, h);
    goodDigest.set(which, handoffDigest(h));
  }
}, TIMEOUT);

/** applyInMemory - @fault on a copy of the @on handoff, as corrupt does on a directory. */
function applyInMemory(fault: Fault, on: Input, seed: number): { damaged: MemHandoff; applied: AppliedFault } {
  const damaged = good.get(on)!.clone();
  return { damaged, applied: applyFault(damaged, fault, seed) };
}

/** kho.dtb must be a copy of the KHO FDT bytes in the image, wherever /chosen/linux,kho-fdt points inside RAM. */
function expectKhoDtbIsCopyInMemory(h: MemHandoff): void {
  let boot;
  try {
    boot = parseBootDtb(h.bootDtb!);
  } catch {
    return; // boot-no-memory: nothing to compare against
  }
  if (!boot.khoFdt || h.imageSize() !== boot.ram.size) return;
  const addr = u64ToNumber(boot.khoFdt.addr);
  const copy = h.khoDtb!;
  if (addr === undefined || addr < boot.ram.base || addr + copy.length > boot.ram.base + boot.ram.size) return;
  expect(Buffer.from(h.openImage(boot.ram.base).read(addr, copy.length)).equals(copy), "kho.dtb equals the KHO FDT in memory.img").toBe(true);
}

describe("the fault catalogue in process: every kind applied to an in-memory handoff and booted by bootSuccessor", () => {
  for (const fault of FAULTS.filter((f) => f.formats === undefined && f.input === undefined && f.needs === undefined)) {
    const on: Input = fault.group === "luo" ? "luo" : ON_MULTI.has(fault.kind) ? "multi" : ON_NUMA.has(fault.kind) ? "numa" : "default";
    const title = `${fault.kind} (${on}, seed 1) -> ${fault.expect.outcome} (exit ${fault.expect.exitCode})`;
    test(title, () => {
      const { damaged, applied } = applyInMemory(fault, on, 1);
      expectDetails(fault, applied.details);
      expect(handoffDigest(good.get(on)!), "the undamaged handoff is unchanged (damage is copy-on-write)").toBe(goodDigest.get(on));
      if (damaged.memory instanceof OverlayMem) {
        expect(damaged.memory.touchedPages * PAGE_SIZE, "the damage stays small (a sparse copy on disk)").toBeLessThan(1 << 20);
      }
      expectKhoDtbIsCopyInMemory(damaged);

      if (FILE_LEVEL.has(fault.kind)) {
        // What kernel-b makes of it is checked by spawning it (below); here, that the file is what the fault says.
        const ram = parseBootDtb(damaged.bootDtb!).ram.size;
        expect(damaged.imageSize()).toBe(fault.kind === "image-missing" ? undefined : ram - PAGE_SIZE);
        return;
      }
      const before = handoffDigest(damaged);
      const b = bootMemHandoff(damaged, applied.kernelBArgs);
      expect(b.writes, "the successor writes nothing to its input").toBe(0);
      expect(handoffDigest(damaged), "the successor's input is unchanged").toBe(before);
      if (fault.expect.outcome !== "unusable-input") expect(b.report, "a report (successor.json) is made").toBeDefined();
      if (b.report) {
        // Exactly what kernel-b writes as successor.json, and it is what the contract says.
        const json = readHandoffJson(SuccessorJsonSchema, JSON.stringify(b.report), "successor.json");
        expect(JSON.stringify(json)).toBe(JSON.stringify(b.report));
      }
      expectVerdict(fault, applied, { ...b, failures: b.report?.failures, failureCount: b.report?.failureCount });
    });
  }

  test("the undamaged handoffs revive and verify, and are unchanged after every kind", () => {
    for (const which of ["default", "multi", "numa", "luo"] as const) {
      const h = good.get(which)!;
      const b = bootMemHandoff(h, []);
      expect(b.outcome, b.reason).toBe("revived");
      expect(b.exitCode).toBe(0);
      expect(handoffDigest(h)).toBe(goodDigest.get(which));
    }
  });

  test("a kind the input cannot take is refused with one line naming the kind, and changes nothing", () => {
    const fault = findFault("chunk-next-earlier")!;
    const err = thrownBy(CliError, () => applyInMemory(fault, "default", 1));
    expect(err.message).toBe("chunk-next-earlier: needs at least 2 chunks; the input has 1 (use e.g. scenarios/chunk-boundary-171.json)");
    expect(handoffDigest(good.get("default")!)).toBe(goodDigest.get("default"));
  });

  test("the same seed on the same input gives the same bytes; another seed may pick another target", () => {
    const fault = findFault("data-bit-flip")!;
    const a = applyInMemory(fault, "default", 7);
    const b = applyInMemory(fault, "default", 7);
    expect(handoffDigest(b.damaged)).toBe(handoffDigest(a.damaged));
    expect(b.applied.details).toEqual(a.applied.details);
    const c = applyInMemory(fault, "default", 8);
    expect(c.applied.details).not.toEqual(a.applied.details);
  });

  test("--list has one line per kind with its outcome, exit code and description", () => {
    const lines = listFaults().trimEnd().split("\n");
    expect(lines).toHaveLength(FAULTS.length);
    expect(new Set(FAULTS.map((f) => f.kind)).size).toBe(FAULTS.length);
    for (const f of FAULTS) {
      const line = lines.find((l) => l.split(/\s+/).includes(f.kind));
      expect(line, f.kind).toBeDefined();
      expect(line).toContain(`${f.expect.outcome} (exit ${f.expect.exitCode})`);
      expect(line).toContain(f.description);
    }
  });
});

/* ------------------------------------------------------------------------ */

const INPUT_FILES = ["memory.img", "boot.dtb", "kho.dtb"] as const;

let tmp: string | undefined;
let spawnedInput: Promise<string> | undefined;

/** kernel-a's handoff directory for the spawned checks (the 256 MiB one: cheap to copy and hash), made once. */
const SPAWNED_ON: Input = "multi";
function realInput(): Promise<string> {
  spawnedInput ??= (async () => {
    tmp = makeTmp("corrupt");
    return (await writeHandoffInProcess(path.join(tmp, `good-${SPAWNED_ON}`), SCENARIO[SPAWNED_ON])).dir;
  })();
  return spawnedInput;
}

afterAll(() => removeTmp(tmp));

/** The reason kernel-b gives: successor.json's, or its one stderr line when it could not boot. */
function reasonOf(dir: string, b: RunResult): { succ?: SuccessorJson; reason: string } {
  const file = path.join(dir, "successor.json");
  if (fs.existsSync(file)) {
    const succ = readHandoffJson(SuccessorJsonSchema, fs.readFileSync(file, "utf8"), file);
    return { succ, reason: succ.reason ?? "" };
  }
  const line = b.stderr.split("\n").find((l) => l.startsWith("kernel-b: ")) ?? "";
  return { reason: line.slice("kernel-b: ".length) };
}


describe.concurrent("corrupt CLI + kernel-b, end to end", () => {
  for (const kind of SPAWNED) {
    const fault = findFault(kind)!;
    test(`${kind}: corrupt writes the damaged copy, kernel-b -> ${fault.expect.outcome} (exit ${fault.expect.exitCode})`, async () => {
      const src = await realInput();
      const out = path.join(tmp!, `spawned-${kind}`);
      const c = await runCorrupt(["--in", src, "--out", out, "--fault", kind, "--seed", "1"]);
      expect(c.stderr, "corrupt stderr").toBe("");
      expect(c.status).toBe(0);
      expect(c.stdout).toContain(kind);

      // The copy: fault.json as promised, no successor.json, memory.img still sparse.
      const fj = readJson<FaultReport>(path.join(out, "fault.json"));
      expect(fj.kind).toBe(kind);
      expect(fj.seed).toBe(1);
      expect(fj.expect.outcome).toBe(fault.expect.outcome);
      expect(fj.expect.exitCode).toBe(OUTCOME_EXIT[fault.expect.outcome]);
      expectDetails(fault, fj.details);
      expect(fs.existsSync(path.join(out, "successor.json"))).toBe(false);
      if (fs.existsSync(path.join(out, "memory.img"))) {
        expect(allocatedBytes(path.join(out, "memory.img")), "memory.img stays sparse").toBeLessThan(allocatedBytes(path.join(src, "memory.img")) + (1 << 20));
      }
      // The directory and the in-memory application agree byte for byte on what changed.
      if (!FILE_LEVEL.has(kind)) {
        const mem = applyInMemory(fault, SPAWNED_ON, 1);
        expect(fj.details).toEqual(mem.applied.details);
        for (const d of fj.details.filter((x) => x.file === "memory.img")) {
          const n = d.new.length / 2;
          expect(readFileAt(path.join(out, "memory.img"), Number(d.offset), n).toString("hex")).toBe(d.new);
        }
      }

      // Where the copy holds data: the input's pages and the bytes the fault wrote (within the image's length).
      const image = path.join(out, "memory.img");
      if (fs.existsSync(image)) {
        const size = fs.statSync(image).size;
        const written = fj.details.filter((d) => d.file === "memory.img").map((d) => ({ start: Number(d.offset), end: Number(d.offset) + d.new.length / 2 }));
        recordExtents(image, [...currentExtents(path.join(src, "memory.img")), ...written].filter((e) => e.start < size).map((e) => ({ start: e.start, end: Math.min(e.end, size) })));
        expect(baseImageExtents(image), "the copy holds no data beyond the input's and the fault's (by its block count)").toBeDefined();
      }

      // kernel-b must not write its inputs: stamps and content hashes around the run.
      const files = INPUT_FILES.map((f) => path.join(out, f));
      const stamps = files.map(fileStamp);
      const hashes = files.filter((f) => fs.existsSync(f)).map(fileDigest);
      const b = await runB(["--in", out, "--log-format", "json", ...fj.kernelBArgs]);
      expect(stackLines(b.stderr), "no stack trace").toEqual([]);
      expect(b.stderr, "kernel-b must not crash (exit 70)").not.toContain("internal error");
      expect(b.stderr, "kho.dtb stays a copy of the image's FDT").not.toContain("differs from the KHO FDT");
      expect(b.status, `kernel-b exit code; stderr: ${b.stderr.slice(-400)}`).toBe(fault.expect.exitCode);
      expect(files.map(fileStamp), "kernel-b left its input files alone").toEqual(stamps);
      expect(files.filter((f) => fs.existsSync(f)).map(fileDigest)).toEqual(hashes);

      const { succ, reason } = reasonOf(out, b);
      if (fault.expect.outcome === "unusable-input") {
        if (succ) expect(succ.outcome).toBe("unusable-input");
        expectVerdict(fault, { ...fj.expect, details: fj.details, kernelBArgs: fj.kernelBArgs }, { outcome: "unusable-input", exitCode: b.status, reason });
      } else {
        expect(succ && "chunks" in succ, "a full successor.json written").toBe(true);
        const full = succ as Extract<SuccessorJson, { chunks: string[] }>;
        if (fault.expect.outcome === "verification-failed") expect(b.stdout).toMatch(/^KHO restore failed: /);
        expectVerdict(fault, { ...fj.expect, details: fj.details, kernelBArgs: fj.kernelBArgs }, { ...full, reason, failures: full.failures, failureCount: full.failureCount });
      }
    }, TIMEOUT);
  }

  test("corrupt --list prints the catalogue", async () => {
    const r = await runCorrupt(["--list"]);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(listFaults());
  }, TIMEOUT);

  test("a kind the input cannot take fails with one line, exit 2, and writes nothing", async () => {
    const src = await realInput();
    const out = path.join(tmp!, "refused-order-above-max");
    // Only order-0 folios in this input: no --max-order is below them.
    const r = await runCorrupt(["--in", src, "--out", out, "--fault", "data-order-above-max"]);
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain("data-order-above-max: every preserved folio has order 0: no --max-order is below it");
    expect(fs.existsSync(out)).toBe(false);
    expect(fs.readdirSync(tmp!).filter((f) => f.startsWith(".refused-order-above-max")), "no temporary left behind").toEqual([]);
  }, TIMEOUT);

  test("an unknown kind, or --out that exists without --force, is exit 2", async () => {
    const src = await realInput();
    const r = await runCorrupt(["--in", src, "--out", path.join(tmp!, "unknown"), "--fault", "no-such-fault"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('unknown kind "no-such-fault"');
    const again = await runCorrupt(["--in", src, "--out", src, "--fault", "fdt-bad-magic"]);
    expect(again.status).toBe(2);
    const exists = path.join(tmp!, "exists");
    fs.mkdirSync(exists);
    const third = await runCorrupt(["--in", src, "--out", exists, "--fault", "fdt-bad-magic"]);
    expect(third.status).toBe(2);
    expect(third.stderr).toContain("already exists");
  }, TIMEOUT);
});

/*
 * kernel-b on damaged handoffs.
 *
 * The successor's decisions (damaged KHO FDT, chunk list, preserved data, a
 * lower MAX_PAGE_ORDER, a garbage boot.dtb) are tested in process: the
 * handoff kernel-a's code makes for the scenario below, held in memory,
 * damaged copy-on-write, booted by bootSuccessor as kernel-b boots the same
 * bytes. What is about files and the process stays spawned: that handoff is
 * written once per file (writeMemHandoff), every test copies it (memory.img
 * stays sparse) and runs the real kernel-b on the copy: a missing memory.img
 * (exit 2, one line), one exit-3 run, and one run on a copy whose kho.dtb
 * file is damaged (kernel-b never writes its input, uses the image's KHO FDT
 * and warns). A short memory.img is kernel-b's ImageMem.open on the file, in
 * process.
 *
 * Exit codes (shared/src/abi/handoff.ts OUTCOME_EXIT): 0 revived and verified,
 * 1 verification failed, 2 unusable input or usage error, 3 booted without KHO.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, test, type ExpectStatic } from "vitest";
import { OUTCOME_EXIT } from "@khosim/shared/abi";
import { ImageError } from "@khosim/shared/mm";
import { SuccessorReportSchema, readHandoffJson, type PredecessorReport } from "@khosim/shared/abi/handoff-json";
import { u64leBytes } from "@khosim/shared/lib";
import type { MemHandoff } from "../../src/faults/index.js";
import { bootMemHandoff, closeHandoff, damage, handoffDigest, kernelAInProcess, readHandoffDir, writtenHandoff, type InProcessBoot } from "../fault-helpers.js";
import {
  copyHandoff,
  lines,
  makeTmp,
  patchFile,
  readFileAt,
  removeTmp,
  runB,
  fileDigest,
  stackLines,
  type Handoff,
  type RunResult,
  type SuccessorReportJson,
} from "../handoff-helpers.js";
import { thrownBy } from "@khosim/shared/test/thrown";

const PAGE_SIZE = 4096;
const KHO_DATA_FOLIO = 0x100;

/* test_kho's default workload (random orders up to MAX_PAGE_ORDER, filled) on a small machine: cheap to copy and hash. */
const SCENARIO = {
  description: "kernel-b bad-input tests: test_kho's default workload on a 256 MiB machine",
  machine: { ram: "256M", ramBase: "0x40000000", scratch: { lowmem: "16M", global: "32M" } },
  ops: [{ op: "test_kho" }],
};

/* ---- in process ---- */

let mem: { handoff: MemHandoff; report: PredecessorReport; digest: string } | undefined;

beforeAll(async () => {
  const { handoff, report } = await kernelAInProcess(SCENARIO, 1);
  mem = { handoff, report, digest: handoffDigest(handoff) };
});

function m(): NonNullable<typeof mem> {
  if (!mem) throw new Error("no in-memory handoff (beforeAll failed)");
  return mem;
}

/** Boot @h in process; it must not write its input, and must write a report (successor.json). */
function bootInProcess(expect: ExpectStatic, h: MemHandoff, args: string[] = []): InProcessBoot & { succ: SuccessorReportJson } {
  const before = handoffDigest(h);
  const b = bootMemHandoff(h, args);
  expect(b.writes, "the successor writes nothing to its input").toBe(0);
  expect(handoffDigest(h)).toBe(before);
  expect(b.report, `a report: ${b.reason}`).toBeDefined();
  const succ = readHandoffJson(SuccessorReportSchema, JSON.stringify(b.report), "successor.json");
  return { ...b, succ };
}

/** Folio runs of report.json: start, size, order. */
function folioRuns(report: PredecessorReport): { start: number; size: number; order: number; hex: string }[] {
  return report.ranges
    .filter((r) => (Number(r.data) & KHO_DATA_FOLIO) !== 0)
    .map((r) => ({ start: Number(r.start), size: Number(r.size), order: Number(r.data) & 0xff, hex: r.start }));
}

describe.concurrent("the successor on bad input, in process", () => {
  afterAll(() => {
    // Every damage was copy-on-write.
    if (mem && handoffDigest(mem.handoff) !== mem.digest) throw new Error("the undamaged in-memory handoff changed");
  });

  test("the undamaged handoff revives with exactly report.json's ranges and chunks", ({ expect }) => {
    const { succ } = bootInProcess(expect, m().handoff);
    expect(succ.outcome).toBe("revived");
    expect(succ.ranges).toEqual(m().report.ranges);
    expect(succ.chunks).toEqual(m().report.chunks);
    expect(succ.restored.folios).toBe(m().report.stats.folios);
  });

  describe("damaged KHO data: booted without KHO (exit 3)", () => {
    test("a bad FDT magic at /chosen linux,kho-fdt in memory.img: booted-without-kho, reason names the KHO FDT", ({ expect }) => {
      const at = Number(m().report.khoFdt.addr);
      const d = damage(m().handoff, (mm) => {
        expect(new DataView(mm.read(at, 4).buffer).getUint32(0, false)).toBe(0xd00dfeed);
        mm.write(at, Uint8Array.of(0xde, 0xad, 0xbe, 0xef));
      });
      const { exitCode, succ } = bootInProcess(expect, d);
      expect(exitCode).toBe(OUTCOME_EXIT["booted-without-kho"]);
      expect(exitCode).toBe(3);
      expect(succ.outcome).toBe("booted-without-kho");
      expect(succ.exitCode).toBe(3);
      expect(succ.reason).toMatch(/KHO FDT/);
      expect(succ.reason).toContain(m().report.khoFdt.addr);
      expect(succ.ranges).toEqual([]);
      expect(succ.restored).toEqual({ folios: 0, ranges: 0 });
    });

    test("num_ranges 171 in the first chunk: reason names the chunk and num_ranges", ({ expect }) => {
      const chunk = m().report.chunks[0]!;
      const d = damage(m().handoff, (mm) => mm.write(Number(chunk) + 8, u64leBytes(171)));
      const { exitCode, succ } = bootInProcess(expect, d);
      expect(exitCode).toBe(3);
      expect(succ.outcome).toBe("booted-without-kho");
      expect(succ.reason).toContain(chunk);
      expect(succ.reason).toMatch(/num_ranges at \+0x8 is 0xab/);
      expect(succ.ranges).toEqual([]);
      expect(succ.restored).toEqual({ folios: 0, ranges: 0 });
    });

    test("a chunk whose next points at itself: reason names the chunk and its next pointer", ({ expect }) => {
      const first = m().report.chunks[0]!;
      const d = damage(m().handoff, (mm) => mm.write(Number(first), u64leBytes(BigInt(first))));
      const { exitCode, succ } = bootInProcess(expect, d);
      expect(exitCode).toBe(3);
      expect(succ.outcome).toBe("booted-without-kho");
      expect(succ.reason).toContain(first);
      expect(succ.reason).toMatch(/next at \+0x0/);
      expect(succ.ranges).toEqual([]);
    });
  });

  test("garbage boot.dtb: unusable input (exit 2), the reason naming boot.dtb, one line", ({ expect }) => {
    const d = m().handoff.clone();
    d.bootDtb = new Uint8Array(Buffer.alloc(d.bootDtb!.length, "this is not a device tree blob\n"));
    const b = bootMemHandoff(d, []);
    // The outcome is the fact here; its exit code 2 comes from OUTCOME_EXIT, checked on real kernel-b processes above.
    expect(b.outcome).toBe("unusable-input");
    expect(b.reason).toContain("boot.dtb");
    expect(b.reason).not.toContain("\n");
    expect(b.writes).toBe(0);
  });

  describe("verification fails (exit 1)", () => {
    test("one flipped bit in a preserved folio: verification-failed, the failure names the folio's address", ({ expect }) => {
      const folio = folioRuns(m().report).find((f) => f.order >= 1);
      expect(folio, "the workload preserves a folio of order >= 1").toBeDefined();
      const at = folio!.start + 0x1234; // inside the run's first folio (order >= 1: 8 KiB or more)
      const d = damage(m().handoff, (mm) => mm.write(at, Uint8Array.of(mm.read(at, 1)[0]! ^ 0x10)));
      const { exitCode, succ } = bootInProcess(expect, d);
      expect(exitCode).toBe(OUTCOME_EXIT["verification-failed"]);
      expect(exitCode).toBe(1);
      expect(succ.outcome).toBe("verification-failed");
      expect(succ.exitCode).toBe(1);
      expect(succ.failureCount).toBe(1);
      expect(succ.failures).toHaveLength(1);
      expect(succ.failures[0]!.kind).toBe("folio");
      expect(succ.failures[0]!.phys).toBe(folio!.hex);
      expect(succ.reason).toContain(folio!.hex);
      // The walk itself is intact: every range is still reserved.
      expect(succ.ranges).toEqual(m().report.ranges);
    });

    test("--max-order below the highest preserved order: every folio of that order fails naming the order", ({ expect }) => {
      const runs = folioRuns(m().report);
      const highest = Math.max(...runs.map((f) => f.order));
      expect(highest, "the workload preserves a folio of order >= 1").toBeGreaterThanOrEqual(1);
      const heads: string[] = [];
      for (const f of runs.filter((x) => x.order === highest)) {
        const fsize = PAGE_SIZE * 2 ** highest;
        for (let p = f.start; p < f.start + f.size; p += fsize) heads.push(`0x${p.toString(16)}`);
      }
      const { exitCode, succ } = bootInProcess(expect, m().handoff, ["--max-order", String(highest - 1)]);
      expect(exitCode).toBe(1);
      expect(succ.outcome).toBe("verification-failed");
      expect(succ.reason).toContain(`order ${highest}`);
      expect(succ.failureCount).toBe(heads.length);
      for (const f of succ.failures) {
        expect(f.kind).toBe("folio");
        expect(f.order).toBe(highest);
        expect(f.reason).toContain(`order ${highest}`);
      }
      expect(succ.failures.map((f) => f.phys).sort()).toEqual([...heads].sort());
      // Folios of lower orders are still restored.
      expect(succ.restored.folios).toBe(m().report.stats.folios - heads.length);
    });
  });
});

/* ---- spawned: files and the process ---- */

let tmp: string | undefined;
let handoff: Promise<Handoff> | undefined;
let copies = 0;

/** The real kernel-a's handoff, made once, when a spawned test first needs it. */
function h(): Promise<Handoff> {
  handoff ??= (async () => {
    tmp = makeTmp("bad-input");
    // kernel-a --scenario SCENARIO --seed 1, as written by kernel-a (the in-process handoff above).
    return writtenHandoff(m(), path.join(tmp, "handoff"));
  })();
  return handoff;
}

afterAll(() => removeTmp(tmp));

/** A fresh copy of the handoff to damage. */
async function copy(tag: string): Promise<string> {
  const src = (await h()).dir;
  return copyHandoff(src, path.join(tmp!, `copy-${copies++}-${tag}`));
}

async function boot(dir: string, extra: string[] = []): Promise<{ r: RunResult; succ: SuccessorReportJson }> {
  const r = await runB(["--in", dir, ...extra]);
  const file = path.join(dir, "successor.json");
  if (!fs.existsSync(file)) throw new Error(`kernel-b exited ${r.status} without writing successor.json: ${r.stderr.trim()}`);
  return { r, succ: readHandoffJson(SuccessorReportSchema, fs.readFileSync(file, "utf8"), file) };
}

describe.concurrent("kernel-b on bad input", () => {
  test("the process: a bad FDT magic is exit 3, successor.json says why, stdout says booted without KHO", async ({ expect }) => {
    const hh = await h();
    const dir = await copy("fdt-magic");
    const at = Number(hh.report.khoFdt.addr) - Number(hh.report.machine.ramBase);
    expect(readFileAt(path.join(dir, "memory.img"), at, 4).readUInt32BE(0)).toBe(0xd00dfeed);
    patchFile(path.join(dir, "memory.img"), at, Buffer.from([0xde, 0xad, 0xbe, 0xef]));
    const { r, succ } = await boot(dir);
    expect(r.status, r.stderr).toBe(3);
    expect(succ.outcome).toBe("booted-without-kho");
    expect(succ.reason).toContain(hh.report.khoFdt.addr);
    expect(r.stdout).toMatch(/^booted without KHO: .*KHO FDT/);
  });

  /** The one-line error contract for unusable input: exit 2, one stderr line, no stack trace. */
  function expectUnusable(expect: ExpectStatic, r: RunResult, mentions: string): void {
    expect(r.status, r.stderr).toBe(OUTCOME_EXIT["unusable-input"]);
    expect(r.status).toBe(2);
    expect(stackLines(r.stderr)).toEqual([]);
    const l = lines(r.stderr);
    expect(l, r.stderr).toHaveLength(1);
    expect(l[0]).toMatch(/^kernel-b: /);
    expect(l[0]).toContain(mentions);
  }

  describe("kernel-b on unusable input exits 2 with one line on stderr", () => {
    test("missing memory.img: exit 2, one line naming memory.img, no stack trace", async ({ expect }) => {
      const dir = await copy("no-image");
      fs.rmSync(path.join(dir, "memory.img"));
      const r = await runB(["--in", dir]);
      expectUnusable(expect, r, "memory.img");
    });

    /* kernel-b opens memory.img with ImageMem.open and maps its ImageError to exit 2, printed as the missing image's above. */
    test("memory.img shorter than RAM: kernel-b's image open fails naming memory.img, one line (exit 2)", async ({ expect }) => {
      const dir = await copy("short-image");
      fs.truncateSync(path.join(dir, "memory.img"), Number((await h()).report.machine.ram) - PAGE_SIZE);
      const err = thrownBy(ImageError, () => closeHandoff(readHandoffDir(dir)));
      expect(err.message).toContain(path.join(dir, "memory.img"));
      expect(err.message).toContain("image shorter than RAM");
      expect(err.message).not.toContain("\n");
    });
  });

  describe("kernel-b reads its input and nothing else", () => {
    /* One kernel-b run on a copy whose kho.dtb (the file, not the image) is damaged; three properties of it. */
    type Digests = (string | number)[][];
    let khoDtbRun: Promise<{ r: RunResult; succ: SuccessorReportJson; before: Digests; after: Digests }> | undefined;
    const damagedKhoDtb = () => {
      khoDtbRun ??= (async () => {
        const dir = await copy("kho-dtb-file");
        patchFile(path.join(dir, "kho.dtb"), 0, Buffer.from([0xde, 0xad, 0xbe, 0xef]));
        const files = ["memory.img", "boot.dtb", "kho.dtb", "report.json"].map((f) => path.join(dir, f));
        const digests = () => files.map((f) => [fileDigest(f), fs.statSync(f).size, fs.statSync(f).mtimeMs]);
        const before = digests();
        const run = await boot(dir);
        return { ...run, before, after: digests() };
      })();
      return khoDtbRun;
    };

    test("kernel-b never writes memory.img, boot.dtb, kho.dtb or report.json (hashes before and after a run)", async ({ expect }) => {
      const { r, succ, before, after } = await damagedKhoDtb();
      expect(r.status, r.stderr).toBe(0);
      expect(succ.outcome).toBe("revived");
      expect(after).toEqual(before);
    });

    test("kernel-b uses the KHO FDT in memory.img, not kho.dtb: a damaged kho.dtb file still revives", async ({ expect }) => {
      const { r, succ } = await damagedKhoDtb();
      expect(r.status, r.stderr).toBe(0);
      expect(succ.outcome).toBe("revived");
      expect(succ.ranges).toEqual((await h()).report.ranges);
    });

    test("kernel-b warns on stderr when kho.dtb differs from the KHO FDT in memory.img", async ({ expect }) => {
      const { r } = await damagedKhoDtb();
      expect(r.stderr).toMatch(/kho\.dtb differs from the KHO FDT in memory\.img/);
    });
  });
});

/*
 * kernel-b on damaged handoffs. One real handoff is made per file; every test
 * copies it (memory.img stays sparse), damages the copy the way the test says,
 * and runs the real kernel-b on the copy. The tests run concurrently: each is
 * one kernel-b process.
 *
 * Exit codes (shared/src/kho/in/successor.ts EXIT_CODES): 0 revived and verified,
 * 1 verification failed, 2 unusable input or usage error, 3 booted without KHO.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, test, type ExpectStatic } from "vitest";
import { EXIT_CODES } from "@khosim/shared/kho";
import {
  copyHandoff,
  lines,
  makeHandoff,
  makeTmp,
  patchFile,
  readFileAt,
  readJson,
  removeTmp,
  runB,
  sha256File,
  stackLines,
  u64le,
  type Handoff,
  type RunResult,
  type SuccessorReportJson,
} from "../handoff-helpers.js";

const PAGE_SIZE = 4096;
const KHO_DATA_FOLIO = 0x100;

/* test_kho's default workload (random orders up to MAX_PAGE_ORDER, filled) on a small machine: cheap to copy and hash. */
const SCENARIO = {
  description: "kernel-b bad-input tests: test_kho's default workload on a 256 MiB machine",
  machine: { ram: "256M", ramBase: "0x40000000", scratch: { lowmem: "16M", global: "32M" } },
  ops: [{ op: "test_kho" }],
};

let tmp: string | undefined;
let handoff: Handoff | undefined;
let copies = 0;

beforeAll(async () => {
  tmp = makeTmp("bad-input");
  const scenario = path.join(tmp, "scenario.json");
  fs.writeFileSync(scenario, JSON.stringify(SCENARIO));
  handoff = await makeHandoff(path.join(tmp, "handoff"), ["--scenario", scenario, "--seed", "1"]);
});

afterAll(() => removeTmp(tmp));

function h(): Handoff {
  if (!handoff) throw new Error("no handoff (beforeAll failed)");
  return handoff;
}

/** A fresh copy of the handoff to damage. */
function copy(tag: string): string {
  return copyHandoff(h().dir, path.join(tmp!, `copy-${copies++}-${tag}`));
}

const ramBase = (): number => Number(h().report.machine.ramBase);
const ramSize = (): number => Number(h().report.machine.ram);
/** memory.img file offset of physical address @phys. */
const off = (phys: string | number): number => Number(phys) - ramBase();

async function boot(dir: string, extra: string[] = []): Promise<{ r: RunResult; succ: SuccessorReportJson }> {
  const r = await runB(["--in", dir, ...extra]);
  const file = path.join(dir, "successor.json");
  if (!fs.existsSync(file)) throw new Error(`kernel-b exited ${r.status} without writing successor.json: ${r.stderr.trim()}`);
  return { r, succ: readJson<SuccessorReportJson>(file) };
}

/** Folio runs of report.json: start, size, order. */
function folioRuns(): { start: number; size: number; order: number; hex: string }[] {
  return h()
    .report.ranges.filter((r) => (Number(r.data) & KHO_DATA_FOLIO) !== 0)
    .map((r) => ({ start: Number(r.start), size: Number(r.size), order: Number(r.data) & 0xff, hex: r.start }));
}

describe.concurrent("kernel-b on bad input", () => {
  describe("kernel-b on damaged KHO data boots without KHO (exit 3)", () => {
    test("a bad FDT magic at /chosen linux,kho-fdt in memory.img: exit 3, booted-without-kho, reason names the KHO FDT", async ({ expect }) => {
      const dir = copy("fdt-magic");
      const at = off(h().report.khoFdt.addr);
      expect(readFileAt(path.join(dir, "memory.img"), at, 4).readUInt32BE(0)).toBe(0xd00dfeed);
      patchFile(path.join(dir, "memory.img"), at, Buffer.from([0xde, 0xad, 0xbe, 0xef]));
      const { r, succ } = await boot(dir);
      expect(r.status, r.stderr).toBe(EXIT_CODES["booted-without-kho"]);
      expect(r.status).toBe(3);
      expect(succ.outcome).toBe("booted-without-kho");
      expect(succ.exitCode).toBe(3);
      expect(succ.reason).toMatch(/KHO FDT/);
      expect(succ.reason).toContain(h().report.khoFdt.addr);
      expect(r.stdout).toMatch(/^booted without KHO: .*KHO FDT/);
      expect(succ.ranges).toEqual([]);
      expect(succ.restored).toEqual({ folios: 0, ranges: 0 });
    });

    test("num_ranges 171 in the first chunk: exit 3, reason names the chunk and num_ranges", async ({ expect }) => {
      const dir = copy("num-ranges");
      const chunk = h().report.chunks[0]!;
      patchFile(path.join(dir, "memory.img"), off(chunk) + 8, u64le(171));
      const { r, succ } = await boot(dir);
      expect(r.status, r.stderr).toBe(3);
      expect(succ.outcome).toBe("booted-without-kho");
      expect(succ.reason).toContain(chunk);
      expect(succ.reason).toMatch(/num_ranges/);
      expect(succ.ranges).toEqual([]);
      expect(succ.restored).toEqual({ folios: 0, ranges: 0 });
    });

    test("a chunk whose next points at itself: exit 3, reason names the chunk and its next pointer", async ({ expect }) => {
      const dir = copy("next-self");
      const first = h().report.chunks[0]!;
      patchFile(path.join(dir, "memory.img"), off(first), u64le(BigInt(first)));
      const { r, succ } = await boot(dir);
      expect(r.status, r.stderr).toBe(3);
      expect(succ.outcome).toBe("booted-without-kho");
      expect(succ.reason).toContain(first);
      expect(succ.reason).toMatch(/next/);
      expect(succ.ranges).toEqual([]);
    });
  });

  describe("kernel-b fails verification (exit 1)", () => {
    test("one flipped bit in a preserved folio: exit 1, verification-failed, the failure names the folio's address", async ({ expect }) => {
      const folio = folioRuns().find((f) => f.order >= 1);
      expect(folio, "the workload preserves a folio of order >= 1").toBeDefined();
      const dir = copy("bit-flip");
      const at = off(folio!.start) + 0x1234; // inside the run's first folio (order >= 1: 8 KiB or more)
      const b = readFileAt(path.join(dir, "memory.img"), at, 1);
      patchFile(path.join(dir, "memory.img"), at, Buffer.from([b[0]! ^ 0x10]));
      const { r, succ } = await boot(dir);
      expect(r.status, r.stderr).toBe(EXIT_CODES["verification-failed"]);
      expect(r.status).toBe(1);
      expect(succ.outcome).toBe("verification-failed");
      expect(succ.exitCode).toBe(1);
      expect(succ.failureCount).toBe(1);
      expect(succ.failures).toHaveLength(1);
      expect(succ.failures[0]!.kind).toBe("folio");
      expect(succ.failures[0]!.phys).toBe(folio!.hex);
      expect(succ.reason).toContain(folio!.hex);
      expect(r.stdout).toMatch(/^KHO restore failed: /);
      // The walk itself is intact: every range is still reserved.
      expect(succ.ranges).toEqual(h().report.ranges);
    });

    test("--max-order below the highest preserved order: exit 1, every folio of that order fails naming the order", async ({ expect }) => {
      const runs = folioRuns();
      const highest = Math.max(...runs.map((f) => f.order));
      expect(highest, "the workload preserves a folio of order >= 1").toBeGreaterThanOrEqual(1);
      const heads: string[] = [];
      for (const f of runs.filter((x) => x.order === highest)) {
        const fsize = PAGE_SIZE * 2 ** highest;
        for (let p = f.start; p < f.start + f.size; p += fsize) heads.push(`0x${p.toString(16)}`);
      }
      const dir = copy("max-order");
      const { r, succ } = await boot(dir, ["--max-order", String(highest - 1)]);
      expect(r.status, r.stderr).toBe(1);
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
      expect(succ.restored.folios).toBe(h().report.stats.folios - heads.length);
    });
  });

  /** The one-line error contract for unusable input: exit 2, one stderr line, no stack trace. */
  function expectUnusable(expect: ExpectStatic, r: RunResult, mentions: string): void {
    expect(r.status, r.stderr).toBe(EXIT_CODES["unusable-input"]);
    expect(r.status).toBe(2);
    expect(stackLines(r.stderr)).toEqual([]);
    const l = lines(r.stderr);
    expect(l, r.stderr).toHaveLength(1);
    expect(l[0]).toMatch(/^kernel-b: /);
    expect(l[0]).toContain(mentions);
  }

  describe("kernel-b on unusable input exits 2 with one line on stderr", () => {
    test("missing memory.img: exit 2, one line naming memory.img, no stack trace", async ({ expect }) => {
      const dir = copy("no-image");
      fs.rmSync(path.join(dir, "memory.img"));
      const r = await runB(["--in", dir]);
      expectUnusable(expect, r, "memory.img");
    });

    test("memory.img shorter than RAM: exit 2, one line naming memory.img, no stack trace", async ({ expect }) => {
      const dir = copy("short-image");
      fs.truncateSync(path.join(dir, "memory.img"), ramSize() - PAGE_SIZE);
      const r = await runB(["--in", dir]);
      expectUnusable(expect, r, "memory.img");
    });

    test("garbage boot.dtb: exit 2, one line naming boot.dtb, no stack trace", async ({ expect }) => {
      const dir = copy("garbage-boot");
      const size = fs.statSync(path.join(dir, "boot.dtb")).size;
      fs.writeFileSync(path.join(dir, "boot.dtb"), Buffer.alloc(size, "this is not a device tree blob\n"));
      const r = await runB(["--in", dir]);
      expectUnusable(expect, r, "boot.dtb");
    });
  });

  describe("kernel-b reads its input and nothing else", () => {
    test("kernel-b never writes memory.img, boot.dtb, kho.dtb or report.json (hashes before and after a run)", async ({ expect }) => {
      const dir = copy("hashes");
      const files = ["memory.img", "boot.dtb", "kho.dtb", "report.json"].map((f) => path.join(dir, f));
      const before = files.map((f) => [sha256File(f), fs.statSync(f).size, fs.statSync(f).mtimeMs]);
      const { r, succ } = await boot(dir);
      expect(r.status, r.stderr).toBe(0);
      expect(succ.outcome).toBe("revived");
      const after = files.map((f) => [sha256File(f), fs.statSync(f).size, fs.statSync(f).mtimeMs]);
      expect(after).toEqual(before);
    });

    /* One kernel-b run on a copy whose kho.dtb (the file, not the image) is damaged; two properties of it. */
    let khoDtbRun: Promise<{ r: RunResult; succ: SuccessorReportJson }> | undefined;
    const damagedKhoDtb = () => {
      khoDtbRun ??= (async () => {
        const dir = copy("kho-dtb-file");
        patchFile(path.join(dir, "kho.dtb"), 0, Buffer.from([0xde, 0xad, 0xbe, 0xef]));
        return boot(dir);
      })();
      return khoDtbRun;
    };

    test("kernel-b uses the KHO FDT in memory.img, not kho.dtb: a damaged kho.dtb file still revives", async ({ expect }) => {
      const { r, succ } = await damagedKhoDtb();
      expect(r.status, r.stderr).toBe(0);
      expect(succ.outcome).toBe("revived");
      expect(succ.ranges).toEqual(h().report.ranges);
    });

    test("kernel-b warns on stderr when kho.dtb differs from the KHO FDT in memory.img", async ({ expect }) => {
      const { r } = await damagedKhoDtb();
      expect(r.stderr).toMatch(/kho\.dtb differs from the KHO FDT in memory\.img/);
    });
  });
});

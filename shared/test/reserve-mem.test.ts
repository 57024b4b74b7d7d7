/*
 * reserve_mem= preservation (mm/memblock.c, v6.16 f99230780211): the
 * command-line grammar, the memblock sub-FDT bytes (against libfdt and the
 * facts file's header example), and the successor's revive-by-name with its
 * fallbacks, on in-process handoffs: what successor.json's reserveMem says,
 * in memory and in the file written as kernel-b writes it.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildMemblockFdt } from "../src/abi/memblock-fdt.js";
import { parseBootDtb } from "../src/abi/boot-dtb.js";
import type { SuccessorReportJson } from "../src/abi/handoff-json.js";
import { FdtWriter } from "../src/fdt/index.js";
import { bootSuccessor, type SuccessorBoot } from "../src/kho/in/successor.js";
import { KHO_FORMATS, rangesFormat, type KhoFormat } from "../src/kho/formats/index.js";
import { coldBootMachine, runAndFinalize } from "../src/kho/out/predecessor.js";
import { parseScenario, ScenarioError } from "../src/kho/out/scenario.js";
import { csum64, initCsum } from "../src/lib/csum.js";
import { hex, u64leBytes } from "../src/lib/bytes.js";
import { memparse, parseReserveMem, parseReserveMemCmdline } from "../src/mm/reserve-mem.js";
import { OverlayMem, type PhysMem } from "../src/mm/physmem.js";
import { writtenSuccessorJson } from "./successor-file.js";
import { dtcDecompile, fdtCheckFullOracle, fdtget, pylibfdtBuild, requireOracles, type SwOp } from "./oracles.js";
import { quiet } from "./kernels-helpers.js";
import { thrownBy } from "./thrown.js";

let dir = "";
const inDir = (name: string): string => join(dir, name);
beforeAll(async () => {
  requireOracles();
  await initCsum();
  dir = mkdtempSync(join(tmpdir(), "khosim-resmem-"));
});
afterAll(() => {
  if (dir !== "") rmSync(dir, { recursive: true, force: true });
});

const MiB = 2 ** 20;

describe("reserve_mem= grammar (reserve_mem())", () => {
  it("parses nn:align:name with memparse's bases and suffixes", () => {
    expect(parseReserveMem("64M:4096:trace", 0)).toEqual({ name: "trace", size: 64 * MiB, align: 4096 });
    expect(parseReserveMem("0x100000:0x200000:oops", 0)).toEqual({ name: "oops", size: MiB, align: 2 * MiB });
    // align below SMP_CACHE_BYTES (64) is raised to it, 0 included.
    expect(parseReserveMem("8k:0:a", 0).align).toBe(64);
    // leading 0 is octal (simple_strtoull base 0): 010K = 8 KiB.
    expect(memparse("010K", 0)).toEqual({ value: 8192n, end: 4 });
    expect(parseReserveMem("4K:4K:fifteen_chars__", 0).name).toBe("fifteen_chars__");
  });

  it.each([
    ["0:4096:a", /size is missing or 0/],
    ["M:4096:a", /size is missing or 0/],
    ["1M-4096:a", /expected ':' after the size/],
    ["1M:4096", /expected ':' after the alignment/],
    ["1M:4096:", /name must be 1\.\.15 bytes/],
    ["1M:4096:sixteen_chars___", /name must be 1\.\.15 bytes/],
    ["1M:4096: \t", /name is only blanks/],
    ["1M:12288:a", /alignment 0x3000 is not a power of two/],
    ["1000:4096:a", /not a multiple of the page size/],
  ])("refuses %s", (v, why) => {
    expect(() => parseReserveMem(v, 0)).toThrow(why);
  });

  it("takes only reserve_mem= words, at most 8, each name once", () => {
    expect(parseReserveMemCmdline("quiet reserve_mem=4K:4K:a console=ttyS0 reserve_mem=8K:4K:b").map((p) => p.name)).toEqual(["a", "b"]);
    const nine = Array.from({ length: 9 }, (_, i) => `reserve_mem=4K:4K:r${i}`).join(" ");
    expect(() => parseReserveMemCmdline(nine)).toThrow(/no more room for reserved memory \(at most 8 entries\)/);
    expect(parseReserveMemCmdline(nine.split(" ").slice(0, 8).join(" "))).toHaveLength(8);
    expect(() => parseReserveMemCmdline("reserve_mem=4K:4K:a reserve_mem=8K:4K:a")).toThrow(/name "a" was already used/);
  });

  it("a bad scenario cmdline is one ScenarioError at machine.cmdline", () => {
    const err = thrownBy(ScenarioError, () => parseScenario({ machine: { cmdline: "quiet reserve_mem=1M:96K:x" } }, "s.json"));
    expect(err.message).toBe("s.json: machine.cmdline: reserve_mem=1M:96K:x: alignment 0x18000 is not a power of two");
    // An align under SMP_CACHE_BYTES is raised, not refused (reserve_mem() does so).
    expect(parseScenario({ machine: { cmdline: "reserve_mem=1M:3:x" } }, "s.json").reserveMem).toEqual([{ name: "x", size: MiB, align: 64 }]);
    expect(() => parseScenario({ machine: { cmdline: "reserve_mem=2G:4096:x" } }, "s.json")).toThrow(/^s\.json: machine\.cmdline: reserve_mem needs 2G, more than RAM left/);
    // No reserve_mem= word: nothing parsed, the scenario is as without cmdline.
    expect(parseScenario({ machine: { cmdline: "quiet" } }, "s.json").reserveMem).toBeUndefined();
  });
});

/* The libfdt calls prepare_kho_fdt() makes for @rows, as an oracle program. */
function kernelProgram(rows: { name: string; start: bigint; size: bigint }[]): SwOp[] {
  const str = (s: string): Uint8Array => new TextEncoder().encode(s + "\0");
  const ops: SwOp[] = [{ op: "finishReservemap" }, { op: "begin", name: "" }, { op: "prop", name: "compatible", value: str("memblock-v1") }];
  for (const r of rows) {
    ops.push({ op: "begin", name: r.name }, { op: "prop", name: "compatible", value: str("reserve-mem-v1") });
    ops.push({ op: "prop", name: "start", value: u64leBytes(r.start) }, { op: "prop", name: "size", value: u64leBytes(r.size) }, { op: "end" });
  }
  ops.push({ op: "end" });
  return ops;
}

describe("the memblock sub-FDT (prepare_kho_fdt)", () => {
  const example = { name: "trace", start: 0x4_6bc0_0000n, size: 0x400_0000n };

  it("is the facts file's header example, byte for byte", () => {
    const blob = buildMemblockFdt([example]);
    const dv = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
    // Hand-computed: rsvmap at 0x30 (fdt_create aligns it to 16), one terminator;
    // struct 124 bytes (root 8, compatible 24, "trace" 12, compatible 28, start 20, size 20, 2 END_NODE + END 12);
    // strings "compatible\0start\0size\0" 22 bytes.
    expect([dv.getUint32(4), dv.getUint32(8), dv.getUint32(12), dv.getUint32(36), dv.getUint32(32)]).toEqual([210, 64, 188, 124, 22]);
    // start's value at struct + 8 + 24 + 12 + 28 + 12, size's 20 bytes later: the header example's raw bytes.
    expect(Buffer.from(blob.subarray(148, 156)).toString("hex")).toBe("0000c06b04000000");
    expect(Buffer.from(blob.subarray(168, 176)).toString("hex")).toBe("0000000400000000");
    const f = join(dir, "example.dtb");
    writeFileSync(f, blob);
    expect(fdtCheckFullOracle(f)).toBe(true);
    expect(fdtget(f, "/trace", "start")).toBe("c06b 4000000");
    expect(fdtget(f, "/trace", "size")).toBe("4 0");
    expect(fdtget(f, "/", "compatible", "s")).toBe("memblock-v1");
    expect(fdtget(f, "/trace", "compatible", "s")).toBe("reserve-mem-v1");
    expect(dtcDecompile(f)).toContain("start = <0xc06b 0x4000000>;\n\t\tsize = <0x04 0x00>;");
  });

  it("equals libfdt's sequential writer for the full table of 8", () => {
    const rows = Array.from({ length: 8 }, (_, i) => ({ name: `buf${i}_${"x".repeat(i)}`, start: 0x1_0000_0000n + BigInt(i) * 0x20_0000n, size: BigInt(i + 1) * 0x1000n }));
    const [oracle] = pylibfdtBuild([kernelProgram(rows)]);
    const blob = buildMemblockFdt(rows);
    expect(Buffer.from(blob).equals(Buffer.from(oracle!.finished))).toBe(true);
    expect(blob.length).toBeLessThan(4096);
  });
});

const CMDLINE = "console=ttyS0 reserve_mem=1M:4096:trace reserve_mem=2M:2M:oops";

/* kernel-a in process: a small workload and @cmdline's reservations. */
function predecessor(cmdline = CMDLINE, seed = 7, format: KhoFormat = rangesFormat) {
  const s = parseScenario({ machine: { ram: "512M", cmdline }, ops: [{ op: "folios", count: 4, order: 1 }] }, "(test)");
  const m = coldBootMachine(s, quiet);
  const { handoff } = runAndFinalize(m, s, seed, "(test)", quiet, format);
  return { m, h: handoff, boot: parseBootDtb(handoff.bootDtb) };
}

function successorBoot(p: ReturnType<typeof predecessor>, cmdline: string, mem: PhysMem = p.m.mem): SuccessorBoot {
  return bootSuccessor(p.boot, mem, { maxOrder: 10, log: quiet, reserveMem: parseReserveMemCmdline(cmdline) });
}

function successor(p: ReturnType<typeof predecessor>, cmdline: string, mem: PhysMem = p.m.mem) {
  return successorBoot(p, cmdline, mem).report;
}

/* successor.json as kernel-b writes it (its ranges streamed) into @name, read back through the contract's schema. */
/* @sb's report in memory and as successor.json, each with what to call it in a failure. */
function bothReports(sb: SuccessorBoot, name: string): [string, SuccessorReportJson][] {
  return [["in memory", sb.report], [name, writtenSuccessorJson(sb, inDir(name))]];
}

/*
 * predecessor() with its defaults, made once for the tests that only boot
 * successors on it (a successor reads memory, never writes it); the
 * malformed sub-FDT cases write through an OverlayMem over it.
 */
let shared: ReturnType<typeof predecessor> | undefined;
const base = (): ReturnType<typeof predecessor> => (shared ??= predecessor());

describe("kernel-a preserves, the successor revives (reserve_mem_kho_revive)", () => {
  it("allocates top-down with the alignment, fills from the seed, preserves the ranges and adds the memblock sub-tree", () => {
    const a = base();
    const b = predecessor();
    const rows = a.h.reserveMem!.entries;
    expect(rows.map((r) => r.name)).toEqual(["trace", "oops"]);
    expect(rows[1]!.start % (2 * MiB)).toBe(0);
    // top-down: trace first, so oops lies below it.
    expect(rows[1]!.start + rows[1]!.size).toBeLessThanOrEqual(rows[0]!.start);
    for (const r of rows) {
      expect(csum64(a.m.mem.read(r.start, r.size))).toBe(r.csum);
      expect(a.m.buddy.allocAt(r.start, 4096)).toBe(false);
    }
    // Same seed, same bytes; another seed, other bytes.
    expect(b.h.reserveMem!.entries).toEqual(rows);
    expect(predecessor(CMDLINE, 8).h.reserveMem!.entries[0]!.csum).not.toBe(rows[0]!.csum);
    expect(Buffer.from(a.m.mem.read(a.h.reserveMem!.fdtPhys, 4096)).subarray(0, 4).toString("hex")).toBe("d00dfeed");
    const subtree = successor(a, "").ranges.find((r) => r.start === hex(a.h.reserveMem!.fdtPhys));
    expect(subtree).toBeDefined();
    // Without reservations nothing is added (reserve_mem_init returns early).
    expect(predecessor("quiet").h.reserveMem).toBeUndefined();
  });

  it("revives each name with the same size and alignment; bytes are kernel-a's", () => {
    const a = base();
    for (const [what, rep] of bothReports(successorBoot(a, CMDLINE), "successor-revive.json")) {
      expect(rep.outcome, what).toBe("revived");
      expect(rep.reserveMem, what).toEqual(
        a.h.reserveMem!.entries.map((e) => ({ name: e.name, outcome: "revived", start: hex(e.start), size: hex(e.size), preserved: true, reason: null })),
      );
    }
    for (const e of a.h.reserveMem!.entries) expect(csum64(a.m.mem.read(e.start, e.size))).toBe(e.csum);
  });

  it.each(KHO_FORMATS.map((f) => [f.name, f] as const))("revives through format %s too", (_, f) => {
    const a = f === rangesFormat ? base() : predecessor(CMDLINE, 7, f);
    for (const [what, rep] of bothReports(successorBoot(a, CMDLINE), `successor-${f.name}.json`)) {
      expect(rep.format, what).toBe(f.name);
      expect(rep.reserveMem!.map((r) => [r.outcome, r.preserved]), what).toEqual([["revived", true], ["revived", true]]);
    }
  });

  it("wrong size, wrong alignment, missing name: a fresh allocation from scratch; the rest stay reserved, unnamed", () => {
    const a = base();
    const [trace, oops] = a.h.reserveMem!.entries;
    // An alignment trace's start does not have: twice its lowest set bit.
    const tooBig = 2 * lowBit(oops!.start);
    const sb = successorBoot(a, `reserve_mem=2M:4096:trace reserve_mem=2M:${tooBig}:oops reserve_mem=1M:4096:other`);
    for (const [what, rep] of bothReports(sb, "successor-fresh.json")) {
      const by = new Map(rep.reserveMem!.map((r) => [r.name, r]));
      expect(by.get("trace")!.outcome, what).toBe("fresh: wrong size");
      expect(by.get("trace")!.reason, what).toBe(`KHO reserve-mem 'trace' has wrong size (0x100000 != 0x200000)`);
      expect(by.get("oops")!.outcome, what).toBe("fresh: wrong alignment");
      expect(by.get("other"), what).toMatchObject({ outcome: "fresh: not in handoff", reason: "FDT 'memblock' has no child 'other'" });
      const scratch = rep.scratch.map((s) => [Number(s.addr), Number(s.addr) + Number(s.size)]);
      for (const n of ["trace", "oops", "other"]) {
        const r = by.get(n)!;
        expect(r.preserved, `${what}: ${n}`).toBe(false);
        expect(scratch.some(([s, e]) => Number(r.start) >= s! && Number(r.start) + Number(r.size) <= e!), `${what}: ${n}`).toBe(true);
      }
      expect(rep.reserveMem!.length, what).toBe(3);
    }
    // None named both preserved ones: they are listed, still preserved, unnamed.
    for (const [what, rep] of bothReports(successorBoot(a, "reserve_mem=1M:4096:other"), "successor-unnamed.json")) {
      const un = rep.reserveMem!.filter((r) => r.outcome === "unnamed");
      expect(un.map((r) => [r.name, r.start, r.preserved]), what).toEqual([["trace", hex(trace!.start), true], ["oops", hex(oops!.start), true]]);
    }
  });

  it.each([
    ["garbage instead of an FDT", () => new Uint8Array(64).fill(0xa5), /memblock KHO FDT at 0x[0-9a-f]+: totalsize 0xa5a5a5a5 runs past its page/],
    ["bad magic", () => Uint8Array.from([0xd0, 0x0d, 0xfe, 0xee, 0, 0, 0, 64]), /FDT 'memblock' at 0x[0-9a-f]+: FDT_ERR_BADMAGIC/],
    ["root not memblock-v1", () => fdtWith("memblock-v0", 8), /is incompatible with 'memblock-v1'/],
    ["start of 4 bytes", () => fdtWith("memblock-v1", 4), /Node 'trace': start\/size missing or not 8 bytes/],
  ])("a malformed sub-FDT (%s) revives nothing and never throws", (_, blob, why) => {
    const a = base();
    const mem = new OverlayMem(a.m.mem);
    mem.write(a.h.reserveMem!.fdtPhys, new Uint8Array(4096));
    mem.write(a.h.reserveMem!.fdtPhys, blob());
    for (const [what, rep] of bothReports(successorBoot(a, CMDLINE, mem), "successor-malformed.json")) {
      expect(rep.outcome, what).toBe("revived");
      expect(rep.reserveMem!.filter((r) => r.name === "trace").map((r) => r.outcome), what).toEqual(["fresh: not in handoff"]);
      expect(rep.reserveMem!.find((r) => r.name === "trace")!.reason, what).toMatch(why);
    }
  });

  it("a successor that booted without KHO allocates every name afresh", () => {
    const a = base();
    const boot = { ram: a.boot.ram };
    const sb = bootSuccessor(boot, a.m.mem, { maxOrder: 10, reserveMem: parseReserveMemCmdline(CMDLINE) });
    for (const [what, rep] of bothReports(sb, "successor-nokho.json")) {
      expect(rep.outcome, what).toBe("booted-without-kho");
      expect(rep.reserveMem!.map((r) => r.outcome), what).toEqual(["fresh: not in handoff", "fresh: not in handoff"]);
    }
  });
});

/* A memblock sub-FDT with root compatible @compat and trace's start @startLen bytes long. */
function fdtWith(compat: string, startLen: number): Uint8Array {
  const w = new FdtWriter();
  w.finishReservemap();
  w.beginNode("");
  w.propertyString("compatible", compat);
  w.beginNode("trace");
  w.propertyString("compatible", "reserve-mem-v1");
  w.property("start", new Uint8Array(startLen));
  w.property("size", u64leBytes(MiB));
  w.endNode();
  w.endNode();
  return w.finish();
}

/* The lowest set bit of @n (n < 2^53; & would truncate to 32 bits). */
function lowBit(n: number): number {
  let b = 1;
  while ((n / b) % 2 === 0) b *= 2;
  return b;
}

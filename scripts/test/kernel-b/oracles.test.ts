/*
 * Outside oracles on a handoff: libfdt's fdt_check_full, dtc and fdtget
 * must accept boot.dtb and kho.dtb and read back what report.json says.
 * Missing oracles FAIL (requireOracles throws), they never skip. The handoff
 * is kernel-a's default one made in process by the code the bundle runs and
 * written by writeMemHandoff (the DTBs are the bytes kernel-a writes).
 */
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { dtcDecompile, fdtCheckFullOracle, requireOracles } from "@khosim/shared/test/oracles";
import type { PredecessorReport } from "@khosim/shared/abi/handoff-json";
import { kernelAInProcess, writeMemHandoff } from "../fault-helpers.js";
import { cellsToU64, fdtgetWords, makeTmp, rawLeU64FromWords, removeTmp } from "../handoff-helpers.js";

interface Handoff {
  dir: string;
  report: PredecessorReport;
}

let tmp: string | undefined;
let handoff: Handoff | undefined;

beforeAll(async () => {
  requireOracles();
  tmp = makeTmp("oracles");
  const a = await kernelAInProcess(undefined);
  handoff = { dir: writeMemHandoff(a.handoff, a.report, path.join(tmp, "handoff")), report: a.report };
});

afterAll(() => removeTmp(tmp));

function h(): Handoff {
  if (!handoff) throw new Error("no handoff (beforeAll failed)");
  return handoff;
}
const file = (name: string): string => path.join(h().dir, name);

describe.each(["boot.dtb", "kho.dtb"])("%s is a valid FDT to the outside oracles", (name) => {
  test("libfdt fdt_check_full accepts it", () => {
    expect(fdtCheckFullOracle(file(name))).toBe(true);
  });

  test("dtc -I dtb -O dts decompiles it", () => {
    expect(dtcDecompile(file(name))).toMatch(/^\/dts-v1\/;/);
  });
});

describe("fdtget reads back what report.json says", () => {
  test("dtc sees kho.dtb's root compatible kho-v1 and the /preserved-memory node", () => {
    const dts = dtcDecompile(file("kho.dtb"));
    expect(dts).toContain('compatible = "kho-v1";');
    expect(dts).toMatch(/preserved-memory \{/);
  });

  test("kho.dtb /preserved-memory metadata, decoded as a raw little-endian u64, is the first chunk's address", () => {
    const words = fdtgetWords(file("kho.dtb"), "/preserved-memory", "metadata");
    expect(words).toHaveLength(2);
    const metadata = rawLeU64FromWords(words);
    expect(h().report.chunks.length).toBeGreaterThan(0);
    expect(metadata).toBe(BigInt(h().report.chunks[0]!));
    expect(metadata).toBe(BigInt(h().report.metadata));
  });

  test("kho.dtb /kho_test fdt, decoded as a raw little-endian u64, is the sub-tree FDT's address", () => {
    const words = fdtgetWords(file("kho.dtb"), "/kho_test", "fdt");
    expect(rawLeU64FromWords(words)).toBe(BigInt(h().report.subtree.fdt));
  });

  test("boot.dtb /chosen linux,kho-fdt is 4 big-endian cells equal to report.json's khoFdt addr and size", () => {
    const words = fdtgetWords(file("boot.dtb"), "/chosen", "linux,kho-fdt");
    expect(words).toHaveLength(4);
    const [addr, size] = cellsToU64(words);
    expect(addr).toBe(BigInt(h().report.khoFdt.addr));
    expect(size).toBe(BigInt(h().report.khoFdt.size));
  });

  test("boot.dtb /chosen linux,kho-scratch is report.json's scratch array, one 16-byte kho_scratch per scratch area", () => {
    const words = fdtgetWords(file("boot.dtb"), "/chosen", "linux,kho-scratch");
    expect(words).toHaveLength(4);
    const [addr, size] = cellsToU64(words);
    expect(addr).toBe(BigInt(h().report.scratchArray.addr));
    expect(size).toBe(BigInt(h().report.scratchArray.size));
    expect(size).toBe(BigInt(h().report.scratch.length * 16));
  });
});

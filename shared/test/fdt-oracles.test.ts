/*
 * Outside oracles on the writer's output: dtc decompiles it to exactly what
 * fdtToDts prints, libfdt's fdt_check_full accepts it, fdtget reads values
 * back. Missing oracles fail these tests (requireOracles), never skip them.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FdtWriter, fdtFromTree, fdtPack, fdtToDts } from "../src/fdt/index.js";
import { reservationsArb, setU32, treeArb, valueArb } from "./fdt-arbitraries.js";
import { dtcDecompile, fdtCheckFullBatch, fdtCheckFullOracle, fdtget, requireOracles } from "./oracles.js";

let dir = "";
let n = 0;

function file(blob: Uint8Array): string {
  const f = join(dir, `t${n++}.dtb`);
  writeFileSync(f, blob);
  return f;
}

/*
 * dtcDecompileEach - `dtc -I dtb -O dts FILE` for each of @files, run by one
 * shell (a fork of this large test process costs far more than dtc itself):
 * per file its exit code, output and stderr, as dtcDecompile sees them.
 */
function dtcDecompileEach(files: readonly string[]): { status: number; dts: string; stderr: string }[] {
  const loop = 'for f; do dtc -I dtb -O dts -o "$f.dts" "$f" 2>"$f.err"; echo $? >"$f.rc"; done';
  const r = spawnSync("sh", ["-c", loop, "sh", ...files], { encoding: "utf8" });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`the dtc loop exited ${r.status ?? r.signal}: ${r.stderr.trim()}`);
  return files.map((f) => {
    const status = Number(readFileSync(`${f}.rc`, "utf8"));
    return { status, dts: status === 0 ? readFileSync(`${f}.dts`, "utf8") : "", stderr: readFileSync(`${f}.err`, "utf8") };
  });
}

beforeAll(() => {
  requireOracles();
  dir = mkdtempSync(join(tmpdir(), "khosim-fdt-"));
});
afterAll(() => {
  if (dir !== "") rmSync(dir, { recursive: true, force: true });
});

function khoFdt(): Uint8Array {
  const w = new FdtWriter();
  w.finishReservemap();
  w.beginNode("");
  w.propertyString("compatible", "kho-v1");
  w.beginNode("preserved-memory");
  // u64 0x1000 stored little-endian, as KHO stores phys addresses.
  w.property("metadata", new Uint8Array([0x00, 0x10, 0, 0, 0, 0, 0, 0]));
  w.endNode();
  w.beginNode("kho_test");
  w.property("fdt", new Uint8Array([0x00, 0x20, 0, 0, 0, 0, 0, 0]));
  w.endNode();
  w.endNode();
  return w.finish();
}

describe("oracles on the writer's output", () => {
  it("requireOracles finds dtc, fdtget and python3-libfdt", () => {
    expect(() => requireOracles()).not.toThrow();
  });

  it("dtc decompiles the KHO FDT to exactly fdtToDts' text", () => {
    const b = khoFdt();
    expect(dtcDecompile(file(b))).toBe(fdtToDts(b));
  });

  it("fdt_check_full accepts it, both as fdt_finish lays it out and packed", () => {
    // Both in one python process (fdtCheckFullOracle, one per file, is used below).
    expect(fdtCheckFullBatch([khoFdt(), fdtPack(khoFdt())])).toEqual([0, 0]);
  });

  it("fdt_check_full and dtc refuse a damaged blob (the oracles can say no)", () => {
    const bad = file(setU32(khoFdt(), 0x48, 0x7777)); // the token after the root's BEGIN_NODE -> unknown
    expect(fdtCheckFullOracle(bad)).toBe(false);
    expect(() => dtcDecompile(file(setU32(khoFdt(), 0, 0)))).toThrow(/dtc/);
  });

  it("fdtget reads values back: strings, big-endian cells, and a LE u64 as byte-swapped words", () => {
    const f = file(khoFdt());
    expect(fdtget(f, "/", "compatible", "s")).toBe("kho-v1");
    // 00 10 00 00 00 00 00 00 read as two big-endian words.
    expect(fdtget(f, "/preserved-memory", "metadata", "x")).toBe("100000 0");
    const w = new FdtWriter();
    w.finishReservemap();
    w.beginNode("");
    w.propertyCells("reg", 0, 0x1000, 0, 0x2000);
    w.endNode();
    expect(fdtget(file(w.finish()), "/", "reg")).toBe("0 1000 0 2000");
  });

  it("dtc decompiles random trees (incl. reservations) to exactly fdtToDts' text", () => {
    const cases = fc.sample(fc.tuple(treeArb, reservationsArb), { numRuns: 30, seed: 0xd7b });
    const blobs = cases.map(([t, r]) => fdtFromTree(t, r));
    const dtc = dtcDecompileEach(blobs.map(file));
    blobs.forEach((b, i) => {
      expect(dtc[i]!.status, `case ${i}: ${dtc[i]!.stderr}`).toBe(0);
      expect(dtc[i]!.dts, `case ${i}`).toBe(fdtToDts(b));
    });
  });

  it("dtc prints every kind of random value the way fdtToDts does", () => {
    const values = fc.sample(fc.oneof(valueArb, fc.uint8Array({ minLength: 1, maxLength: 12 })), { numRuns: 300, seed: 7 });
    const w = new FdtWriter();
    w.finishReservemap();
    w.beginNode("");
    values.forEach((v, i) => w.property(`p${i}`, v));
    w.endNode();
    const b = w.finish();
    expect(dtcDecompile(file(b))).toBe(fdtToDts(b));
  });
});

/*
 * diff's structural FDT diff: nodes and properties by path, values as dtc
 * prints them (checked against our fdtToDts, itself checked against dtc), and
 * byte-only differences.
 */
import { describe, expect, it } from "vitest";
import { diffFdtBlobs, diffFdtTrees, dtsValue } from "../src/diff/fdt-diff.js";
import { fdtFromTree, fdtPack, fdtToDts, type FdtNode } from "@khosim/shared/fdt";

const te = new TextEncoder();
const str = (s: string) => te.encode(s + "\0");
const u64le = (v: bigint) => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v, true);
  return b;
};

function kho(metadata: bigint, extra: Partial<{ rootProps: FdtNode["props"]; children: FdtNode[] }> = {}): FdtNode {
  return {
    name: "",
    props: [{ name: "compatible", value: str("kho-v1") }, ...(extra.rootProps ?? [])],
    children: [
      { name: "preserved-memory", props: [{ name: "metadata", value: u64le(metadata) }], children: [] },
      { name: "kho_test", props: [{ name: "fdt", value: u64le(0x42801000n) }], children: [] },
      ...(extra.children ?? []),
    ],
  };
}

describe("dtsValue", () => {
  it("prints strings, cells and bytes as dtc does", () => {
    expect(dtsValue(str("kho-v1"))).toBe('"kho-v1"');
    expect(dtsValue(new Uint8Array([0, 0, 0, 2]))).toBe("<0x02>");
    expect(dtsValue(u64le(0x42804000n))).toBe("<0x408042 0x00>");
    expect(dtsValue(new Uint8Array([1, 2, 3]))).toBe("[01 02 03]");
    expect(dtsValue(new Uint8Array())).toBe("");
  });

  it("agrees with every property line of fdtToDts", () => {
    const tree = kho(0x42804000n, { rootProps: [{ name: "bytes", value: new Uint8Array([9, 8, 7]) }, { name: "empty", value: new Uint8Array() }] });
    const dts = fdtToDts(fdtFromTree(tree));
    for (const p of tree.props) {
      const v = dtsValue(p.value);
      expect(dts).toContain(`\t${p.name}${v === "" ? "" : " = " + v};\n`);
    }
  });
});

describe("diffFdtTrees", () => {
  it("names a changed property by its full path, with both values", () => {
    expect(diffFdtTrees(kho(0x42804000n), kho(0x42805000n))).toEqual([
      { change: "prop-changed", path: "/preserved-memory/metadata", a: "<0x408042 0x00>", b: "<0x508042 0x00>" },
    ]);
  });

  it("names added and removed nodes and properties", () => {
    const a = kho(1n, { rootProps: [{ name: "gone", value: str("x") }] });
    const b = kho(1n, { rootProps: [{ name: "new", value: new Uint8Array() }], children: [{ name: "extra@1", props: [{ name: "a", value: str("b") }], children: [] }] });
    b.children = b.children.filter((c) => c.name !== "kho_test");
    expect(diffFdtTrees(a, b)).toEqual([
      { change: "prop-removed", path: "/gone", a: '"x"' },
      { change: "prop-added", path: "/new", b: "" },
      { change: "node-removed", path: "/kho_test" },
      { change: "node-added", path: "/extra@1" },
    ]);
  });

  it("finds nothing in equal trees", () => {
    expect(diffFdtTrees(kho(5n), kho(5n))).toEqual([]);
  });
});

describe("diffFdtBlobs", () => {
  it("identical bytes (or both absent) are identical", () => {
    const blob = fdtFromTree(kho(1n));
    expect(diffFdtBlobs(blob, blob.slice())).toEqual({ identical: true, changes: [], problems: [] });
    expect(diffFdtBlobs(undefined, undefined).identical).toBe(true);
  });

  it("explains a byte difference with the same tree as 'bytes'", () => {
    const blob = fdtFromTree(kho(1n));
    const packed = fdtPack(blob);
    const d = diffFdtBlobs(blob, packed);
    expect(d.identical).toBe(false);
    expect(d.changes).toEqual([{ change: "bytes", path: "", a: `${blob.length} bytes`, b: `${packed.length} bytes` }]);
  });

  it("diffs /memreserve/ entries and the tree", () => {
    const a = fdtFromTree(kho(1n), [{ addr: 0x1000n, size: 0x2000n }]);
    const b = fdtFromTree(kho(2n));
    const d = diffFdtBlobs(a, b);
    expect(d.changes.map((c) => [c.change, c.path])).toEqual([
      ["memreserve-removed", "/memreserve/"],
      ["prop-changed", "/preserved-memory/metadata"],
    ]);
  });

  it("names a side that is absent or does not parse", () => {
    const blob = fdtFromTree(kho(1n));
    const bad = blob.slice();
    bad[0] = 0;
    const d = diffFdtBlobs(blob, bad, "KHO FDT");
    expect(d.identical).toBe(false);
    expect(d.problems).toHaveLength(1);
    expect(d.problems[0]).toMatch(/^B: KHO FDT does not parse/);
    expect(diffFdtBlobs(undefined, blob).problems).toEqual(["A: no FDT"]);
    expect(diffFdtBlobs(undefined, blob).changes[0]).toMatchObject({ change: "bytes", a: "absent" });
  });
});

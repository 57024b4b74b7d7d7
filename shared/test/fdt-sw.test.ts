/*
 * The sequential writer: layout, libfdt's strings-table order and sharing,
 * misuse errors, round trips, and byte-for-byte equality with pylibfdt's
 * FdtSw (the same libfdt code the kernel's kho_finalize path uses).
 */
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import {
  FDT_END,

  FDT_MAX_DEPTH,
  FDT_PACKED_RSVMAP_OFFSET,
  FDT_SW_RSVMAP_OFFSET,
  type FdtNode,
  FdtWriter,
  fdtCheckFull,
  fdtFromTree,
  fdtPack,
  fdtReadHeader,
  fdtToTree,
} from "../src/fdt/index.js";
import { getU32, hexOf, reservationsArb, runOps, treeArb, treeToOps } from "./fdt-arbitraries.js";
import { thrown } from "./fdt-common.js";
import { pylibfdtBuild, requireOracles } from "./oracles.js";

const enc = new TextEncoder();
const dec = new TextDecoder();

/* The KHO FDT as kho_finalize builds it, with a suffix-shared name. */
const khoTree: FdtNode = {
  name: "",
  props: [
    { name: "compatible", value: enc.encode("kho-v1\0") },
    { name: "#size-cells", value: new Uint8Array([0, 0, 0, 2]) },
  ],
  children: [
    {
      name: "preserved-memory",
      props: [
        { name: "metadata", value: new Uint8Array([0, 0x10, 0, 0, 0, 0, 0, 0]) },
        { name: "size-cells", value: new Uint8Array([1, 2, 3]) },
      ],
      children: [],
    },
    { name: "kho_test", props: [{ name: "fdt", value: new Uint8Array([0, 0x20, 0, 0, 0, 0, 0, 0]) }], children: [] },
  ],
};

describe("FdtWriter layout", () => {
  it("lays out header, 8-byte gap, rsvmap at 0x30, struct, strings, totalsize = end of strings", () => {
    const b = fdtFromTree(khoTree, [{ addr: 0x1000n, size: 0x2000n }]);
    const h = fdtReadHeader(b);
    expect(h.magic).toBe(0xd00dfeed);
    expect(h.version).toBe(17);
    expect(h.lastCompVersion).toBe(16);
    expect(h.bootCpuidPhys).toBe(0);
    expect(h.offMemRsvmap).toBe(FDT_SW_RSVMAP_OFFSET);
    expect([...b.subarray(0x28, 0x30)]).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(h.offDtStruct).toBe(0x30 + 2 * 16);
    expect(h.offDtStrings).toBe(h.offDtStruct + h.sizeDtStruct);
    expect(h.totalsize).toBe(h.offDtStrings + h.sizeDtStrings);
    expect(b.length).toBe(h.totalsize);
    // The struct block ends with the single FDT_END.
    expect(getU32(b, h.offDtStruct + h.sizeDtStruct - 4)).toBe(FDT_END);
    fdtCheckFull(b);
  });

  it("lists names in reverse order of first use and reuses a name as the tail of another", () => {
    const b = fdtFromTree(khoTree);
    const h = fdtReadHeader(b);
    const strings = dec.decode(b.subarray(h.offDtStrings, h.totalsize));
    // First uses: compatible, #size-cells, metadata, (size-cells shared), fdt.
    expect(strings).toBe("fdt\0metadata\0#size-cells\0compatible\0");
    // size-cells' nameoff points one byte into "#size-cells".
    const props = new Map<string, number>();
    for (let off = 0; off < h.sizeDtStruct; off += 4) {
      if (getU32(b, h.offDtStruct + off) === 3) {
        const len = getU32(b, h.offDtStruct + off + 4);
        const nameoff = getU32(b, h.offDtStruct + off + 8);
        const s = b.subarray(h.offDtStrings + nameoff);
        props.set(dec.decode(s.subarray(0, s.indexOf(0))), nameoff);
        off += 8 + ((len + 3) & ~3);
      }
    }
    expect(props.get("#size-cells")).toBe(strings.indexOf("#size-cells"));
    expect(props.get("size-cells")).toBe(strings.indexOf("#size-cells") + 1);
    expect(props.get("compatible")).toBe(strings.indexOf("compatible"));
  });

  it("shares with the newest occurrence first, as fdt_find_string_ scans from the lowest address", () => {
    // "b" is a tail of both "ab" (older) and "cb" (newer, lower in memory).
    const w = new FdtWriter();
    w.finishReservemap();
    w.beginNode("");
    w.property("ab", new Uint8Array());
    w.property("cb", new Uint8Array());
    w.property("b", new Uint8Array());
    w.endNode();
    const b = w.finish();
    const h = fdtReadHeader(b);
    expect(dec.decode(b.subarray(h.offDtStrings))).toBe("cb\0ab\0");
    const third = h.offDtStruct + 8 + 12 + 12; // root BEGIN_NODE(8), two empty props
    expect(getU32(b, third + 8)).toBe(1); // inside "cb", not "ab" (4)
  });

  it("fdtPack moves the rsvmap to 0x28 and closes the gap", () => {
    const b = fdtFromTree(khoTree, [{ addr: 1n, size: 2n }]);
    const p = fdtPack(b);
    const h = fdtReadHeader(p);
    expect(h.offMemRsvmap).toBe(FDT_PACKED_RSVMAP_OFFSET);
    expect(h.totalsize).toBe(b.length - 8);
    expect(fdtToTree(p)).toEqual(fdtToTree(b));
  });

  it("writes a 64-deep chain and refuses a 65th level", () => {
    const w = new FdtWriter();
    w.finishReservemap();
    w.beginNode("");
    for (let i = 1; i < FDT_MAX_DEPTH; i++) w.beginNode(`n${i}`);
    expect(thrown(() => w.beginNode("toodeep")).code).toBe("BADSTRUCTURE");
    for (let i = 0; i < FDT_MAX_DEPTH; i++) w.endNode();
    fdtCheckFull(w.finish());
  });
});

describe("FdtWriter misuse", () => {
  const inStruct = (): FdtWriter => {
    const w = new FdtWriter();
    w.finishReservemap();
    return w;
  };
  const inRoot = (): FdtWriter => {
    const w = inStruct();
    w.beginNode("");
    return w;
  };

  it("BADSTATE: node before finishReservemap, reservation after it, anything after finish", () => {
    expect(thrown(() => new FdtWriter().beginNode("")).code).toBe("BADSTATE");
    expect(thrown(() => inStruct().addReservation(1, 1)).code).toBe("BADSTATE");
    expect(thrown(() => inStruct().finishReservemap()).code).toBe("BADSTATE");
    const w = inRoot();
    w.endNode();
    w.finish();
    expect(thrown(() => w.finish()).code).toBe("BADSTATE");
    expect(thrown(() => w.property("a", new Uint8Array())).code).toBe("BADSTATE");
  });

  it("BADSTRUCTURE: property outside a node, after a subnode, duplicates, second root, unbalanced", () => {
    expect(thrown(() => inStruct().property("a", new Uint8Array())).code).toBe("BADSTRUCTURE");
    const w = inRoot();
    w.beginNode("c");
    w.endNode();
    const e = thrown(() => w.property("late", new Uint8Array()));
    expect(e.code).toBe("BADSTRUCTURE");
    expect(e.message).toMatch(/after a subnode/);
    expect(thrown(() => w.beginNode("c")).code).toBe("BADSTRUCTURE");
    const d = inRoot();
    d.property("p", new Uint8Array());
    expect(thrown(() => d.property("p", new Uint8Array([1]))).code).toBe("BADSTRUCTURE");
    const two = inRoot();
    two.endNode();
    expect(thrown(() => two.beginNode("")).code).toBe("BADSTRUCTURE");
    expect(thrown(() => two.endNode()).code).toBe("BADSTRUCTURE");
    expect(thrown(() => inRoot().finish()).code).toBe("BADSTRUCTURE");
    expect(thrown(() => inStruct().finish()).code).toBe("BADSTRUCTURE");
  });

  it("BADVALUE: bad names and values", () => {
    expect(thrown(() => inStruct().beginNode("root")).code).toBe("BADVALUE");
    expect(thrown(() => inRoot().beginNode("")).code).toBe("BADVALUE");
    expect(thrown(() => inRoot().beginNode("a/b")).code).toBe("BADVALUE");
    expect(thrown(() => inRoot().beginNode("caf\u00e9")).code).toBe("BADVALUE");
    expect(thrown(() => inRoot().property("", new Uint8Array())).code).toBe("BADVALUE");
    expect(thrown(() => inRoot().property("a\0b", new Uint8Array())).code).toBe("BADVALUE");
    expect(thrown(() => inRoot().propertyString("s", "a\0b")).code).toBe("BADVALUE");
    expect(thrown(() => inRoot().propertyU32("c", 2 ** 32)).code).toBe("BADVALUE");
    expect(thrown(() => inRoot().propertyU32("c", -1)).code).toBe("BADVALUE");
    expect(thrown(() => inRoot().propertyU64("c", 1n << 64n)).code).toBe("BADVALUE");
    expect(thrown(() => new FdtWriter().addReservation(0, 0)).code).toBe("BADVALUE");
    expect(thrown(() => new FdtWriter().addReservation(-1, 1)).code).toBe("BADVALUE");
  });

  it("typed property helpers encode big-endian cells and NUL-terminated strings", () => {
    const w = inRoot();
    w.propertyU32("u32", 0x12345678);
    w.propertyU64("u64", 0x0102030405060708n);
    w.propertyCells("cells", 1, 2);
    w.propertyString("s", "héllo");
    w.propertyStrings("l", "a", "", "b");
    w.endNode();
    const t = fdtToTree(w.finish());
    const v = Object.fromEntries(t.props.map((p) => [p.name, [...p.value]]));
    expect(v.u32).toEqual([0x12, 0x34, 0x56, 0x78]);
    expect(v.u64).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(v.cells).toEqual([0, 0, 0, 1, 0, 0, 0, 2]);
    expect(v.s).toEqual([...enc.encode("héllo"), 0]);
    expect(v.l).toEqual([0x61, 0, 0, 0x62, 0]);
  });
});

describe("FdtWriter round trips (fast-check)", () => {
  it("write -> fdtCheckFull passes -> fdtToTree equals the input; writing twice gives the same bytes", () => {
    fc.assert(
      fc.property(treeArb, reservationsArb, (tree, rsv) => {
        const b = fdtFromTree(tree, rsv);
        fdtCheckFull(b);
        expect(fdtToTree(b)).toEqual(tree);
        expect(hexOf(fdtFromTree(tree, rsv))).toBe(hexOf(b));
      }),
      { numRuns: 300 },
    );
  });
});

describe("byte-for-byte equality with libfdt's sequential writer (pylibfdt 1.6.1)", () => {
  beforeAll(() => requireOracles());

  const hand: { what: string; tree: FdtNode; rsv: { addr: bigint; size: bigint }[] }[] = [
    { what: "KHO FDT with #size-cells then size-cells", tree: khoTree, rsv: [] },
    { what: "reservations incl. u64 extremes", tree: khoTree, rsv: [{ addr: 0xffffffffffffffffn, size: 1n }, { addr: 0n, size: 0x1000n }] },
    { what: "empty root", tree: { name: "", props: [], children: [] }, rsv: [] },
    {
      what: "names sharing tails both ways, odd value lengths",
      tree: {
        name: "",
        props: [
          { name: "b", value: new Uint8Array([1]) },
          { name: "ab", value: new Uint8Array([1, 2]) },
          { name: "cab", value: new Uint8Array([1, 2, 3]) },
          { name: "ca", value: new Uint8Array(5) },
          { name: "a", value: new Uint8Array(0) },
        ],
        children: [{ name: "n@1", props: [{ name: "ab", value: new Uint8Array(9) }], children: [{ name: "x", props: [], children: [] }] }],
      },
      rsv: [],
    },
    {
      what: "a 4 KiB value (pylibfdt grows its buffer, libfdt's fdt_resize keeps the strings at the end)",
      tree: { name: "", props: [{ name: "big", value: new Uint8Array(4096).map((_, i) => i) }, { name: "g", value: new Uint8Array([7]) }], children: [] },
      rsv: [],
    },
  ];

  it("hand-made trees: identical to fdt_finish() output, and fdtPack identical to fdt_pack()", () => {
    const theirs = pylibfdtBuild(hand.map((c) => treeToOps(c.tree, c.rsv)));
    hand.forEach((c, i) => {
      const ours = runOps(treeToOps(c.tree, c.rsv));
      expect(hexOf(ours), c.what).toBe(hexOf(theirs[i]!.finished));
      expect(hexOf(fdtPack(ours)), c.what).toBe(hexOf(theirs[i]!.packed));
    });
  });

  it("fast-check trees: identical bytes for 40 generated trees", () => {
    const cases = fc.sample(fc.tuple(treeArb, reservationsArb), { numRuns: 40, seed: 0x6b686f });
    const programs = cases.map(([t, r]) => treeToOps(t, r));
    const theirs = pylibfdtBuild(programs);
    programs.forEach((p, i) => {
      const ours = runOps(p);
      expect(hexOf(ours), `case ${i}`).toBe(hexOf(theirs[i]!.finished));
      expect(hexOf(fdtPack(ours)), `case ${i} packed`).toBe(hexOf(theirs[i]!.packed));
    });
  });
});

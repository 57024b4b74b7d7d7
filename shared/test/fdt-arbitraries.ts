/*
 * Shared pieces of the fdt-*.test.ts files: fast-check arbitraries for
 * trees, conversion of a tree to libfdt sequential-write calls, and a
 * hand assembler for deliberately broken blobs.
 */
import fc from "fast-check";
import { FdtWriter, type FdtNode } from "../src/fdt/index.js";
import type { SwOp } from "./oracles.js";

/* Node names dtc accepts without errors: [a-z0-9,._+-], optional @unit. */
const nodeBase = fc.stringMatching(/^[a-z][a-z0-9,._+-]{0,7}$/);
export const nodeNameArb: fc.Arbitrary<string> = fc
  .tuple(nodeBase, fc.option(fc.stringMatching(/^[0-9a-f]{1,4}$/), { nil: undefined }))
  .map(([b, u]) => (u === undefined ? b : `${b}@${u}`));

/*
 * Property names from a tiny alphabet, so that one name is often the tail
 * of another (the strings-table sharing libfdt does), plus real names.
 * None can spell a name dtc treats specially (name, phandle, reg, ...).
 */
export const propNameArb: fc.Arbitrary<string> = fc.oneof(
  fc.stringMatching(/^(#|x,)?[a-c]{1,4}$/),
  fc.constantFrom("#size-cells", "size-cells", "cells", "s", "compatible", "metadata", "fdt", "linux,kho-fdt"),
);

const enc = new TextEncoder();

/* Values of every shape dtc distinguishes: strings, string lists, cells, bytes, empty. */
export const valueArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.uint8Array({ maxLength: 24 }),
  fc.array(fc.stringMatching(/^[ -~\t\n]{0,10}$/), { minLength: 1, maxLength: 3 }).map((ss) => enc.encode(ss.map((s) => s + "\0").join(""))),
  fc.array(fc.integer({ min: 0, max: 0xffffffff }), { maxLength: 4 }).map((cs) => {
    const b = new Uint8Array(4 * cs.length);
    cs.forEach((c, i) => new DataView(b.buffer).setUint32(4 * i, c, false));
    return b;
  }),
  fc.constant(new Uint8Array(0)),
);

const propsArb = fc.uniqueArray(fc.record({ name: propNameArb, value: valueArb }), {
  maxLength: 5,
  selector: (p) => p.name,
});

/* Trees up to 4 levels below the root, unique names among siblings. */
const { node } = fc.letrec<{ node: FdtNode }>((tie) => ({
  node: fc.record({
    name: nodeNameArb,
    props: propsArb,
    children: fc.oneof(
      { maxDepth: 4, depthIdentifier: "tree" },
      fc.constant([] as FdtNode[]),
      fc.uniqueArray(tie("node"), { maxLength: 3, selector: (n) => n.name }),
    ),
  }),
}));

export const treeArb: fc.Arbitrary<FdtNode> = fc.record({
  name: fc.constant(""),
  props: propsArb,
  children: fc.uniqueArray(node, { maxLength: 4, selector: (n) => n.name }),
});

export const reservationsArb: fc.Arbitrary<{ addr: bigint; size: bigint }[]> = fc.array(
  fc.record({ addr: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), size: fc.bigInt({ min: 1n, max: (1n << 64n) - 1n }) }),
  { maxLength: 3 },
);

/** The libfdt calls that write @tree after @rsv, as the kernel would make them. */
export function treeToOps(tree: FdtNode, rsv: readonly { addr: bigint; size: bigint }[] = []): SwOp[] {
  const ops: SwOp[] = rsv.map((r) => ({ op: "rsv", addr: r.addr, size: r.size }));
  ops.push({ op: "finishReservemap" });
  const walk = (n: FdtNode): void => {
    ops.push({ op: "begin", name: n.name });
    for (const p of n.props) ops.push({ op: "prop", name: p.name, value: p.value });
    n.children.forEach(walk);
    ops.push({ op: "end" });
  };
  walk(tree);
  return ops;
}

/** Replay @ops on FdtWriter. */
export function runOps(ops: readonly SwOp[]): Uint8Array {
  const w = new FdtWriter();
  for (const o of ops) {
    if (o.op === "rsv") w.addReservation(o.addr, o.size);
    else if (o.op === "finishReservemap") w.finishReservemap();
    else if (o.op === "begin") w.beginNode(o.name);
    else if (o.op === "prop") w.property(o.name, o.value);
    else w.endNode();
  }
  return w.finish();
}

/* ---- hand assembly of (broken) blobs ---- */

function u32(v: number): number[] {
  return [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
}

function pad4(b: number[]): number[] {
  while (b.length % 4 !== 0) b.push(0);
  return b;
}

/** Structure-block tokens, raw: nothing here checks the grammar. */
export const tok = {
  begin: (name: string): number[] => pad4([...u32(1), ...enc.encode(name), 0]),
  end: (): number[] => u32(2),
  prop: (nameoff: number, value: number[] = []): number[] => pad4([...u32(3), ...u32(value.length), ...u32(nameoff), ...value]),
  nop: (): number[] => u32(4),
  fin: (): number[] => u32(9),
};

/**
 * assemble - header, reservation block at 0x30 (entries then a (0, 0)
 * terminator), @struct, @strings, laid out as FdtWriter does; header
 * fields can then be broken with setU32().
 */
export function assemble(struct: number[], strings: string, rsv: [bigint, bigint][] = []): Uint8Array {
  const str = enc.encode(strings);
  const rsvOff = 0x30;
  const structOff = rsvOff + 16 * (rsv.length + 1);
  const stringsOff = structOff + struct.length;
  const total = stringsOff + str.length;
  const b = new Uint8Array(total);
  const dv = new DataView(b.buffer);
  [0xd00dfeed, total, structOff, stringsOff, rsvOff, 17, 16, 0, str.length, struct.length].forEach((v, i) =>
    dv.setUint32(4 * i, v, false),
  );
  rsv.forEach(([a, s], i) => {
    dv.setBigUint64(rsvOff + 16 * i, a, false);
    dv.setBigUint64(rsvOff + 16 * i + 8, s, false);
  });
  b.set(struct, structOff);
  b.set(str, stringsOff);
  return b;
}

/** Overwrite the big-endian u32 at @off (a header field or a token). */
export function setU32(blob: Uint8Array, off: number, v: number): Uint8Array {
  new DataView(blob.buffer, blob.byteOffset, blob.byteLength).setUint32(off, v >>> 0, false);
  return blob;
}

/** Read the big-endian u32 at @off. */
export function getU32(blob: Uint8Array, off: number): number {
  return new DataView(blob.buffer, blob.byteOffset, blob.byteLength).getUint32(off, false);
}

/** Hex of a blob, for readable failure output. */
export function hexOf(b: Uint8Array): string {
  return Buffer.from(b).toString("hex");
}

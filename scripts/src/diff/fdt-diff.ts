/*
 * Structural diff of two flattened device trees: nodes matched by name under
 * their parent (so by full path), properties by name, values shown as dtc
 * prints them; plus the /memreserve/ entries. When the trees are equal but the
 * bytes are not (another layout), one "bytes" change says so, so that a
 * byte-level difference is never left unexplained.
 */
import { FdtError, FdtRo, dtsValue, type FdtNode } from "@khosim/shared/fdt";

export { dtsValue };

export type FdtChangeKind = "node-added" | "node-removed" | "prop-added" | "prop-removed" | "prop-changed" | "memreserve-added" | "memreserve-removed" | "bytes";

export interface FdtChange {
  change: FdtChangeKind;
  /** Node path ("/chosen") or property path ("/preserved-memory/metadata"); "/memreserve/" or "" (bytes). */
  path: string;
  /** Value on A (dts syntax; "" for an empty property), when the change has one. */
  a?: string;
  b?: string;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function join(parent: string, name: string): string {
  return parent === "/" ? `/${name}` : `${parent}/${name}`;
}

/**
 * diffFdtTrees - changes from tree @a to tree @b, in document order of A
 * (then what only B has). A removed or added node is one change; its
 * contents are not listed.
 */
export function diffFdtTrees(a: FdtNode, b: FdtNode, path = "/"): FdtChange[] {
  const out: FdtChange[] = [];
  const bProps = new Map(b.props.map((p) => [p.name, p.value]));
  const aNames = new Set(a.props.map((p) => p.name));
  for (const p of a.props) {
    const pp = join(path, p.name);
    const bv = bProps.get(p.name);
    if (bv === undefined) out.push({ change: "prop-removed", path: pp, a: dtsValue(p.value) });
    else if (!sameBytes(p.value, bv)) out.push({ change: "prop-changed", path: pp, a: dtsValue(p.value), b: dtsValue(bv) });
  }
  for (const p of b.props) if (!aNames.has(p.name)) out.push({ change: "prop-added", path: join(path, p.name), b: dtsValue(p.value) });
  const bKids = new Map(b.children.map((c) => [c.name, c]));
  const aKids = new Set(a.children.map((c) => c.name));
  for (const c of a.children) {
    const bc = bKids.get(c.name);
    if (!bc) out.push({ change: "node-removed", path: join(path, c.name) });
    else out.push(...diffFdtTrees(c, bc, join(path, c.name)));
  }
  for (const c of b.children) if (!aKids.has(c.name)) out.push({ change: "node-added", path: join(path, c.name) });
  return out;
}

function memreserves(fdt: FdtRo): string[] {
  return fdt.reservations().map((r) => `0x${r.addr.toString(16).padStart(16, "0")} 0x${r.size.toString(16).padStart(16, "0")}`);
}

export interface FdtBlobDiff {
  /** Byte-identical (both absent counts as identical). */
  identical: boolean;
  changes: FdtChange[];
  /** A side that is absent or does not parse ("A: ..." / "B: ..."). */
  problems: string[];
}

/**
 * diffFdtBlobs - compare two DTBs (undefined: the file is absent): bytes
 * first, then structure. A blob that fails fdtCheckFull is named in
 * `problems` and the difference is reported as "bytes".
 */
export function diffFdtBlobs(a: Uint8Array | undefined, b: Uint8Array | undefined, what = "FDT"): FdtBlobDiff {
  if (a === undefined && b === undefined) return { identical: true, changes: [], problems: [] };
  if (a !== undefined && b !== undefined && sameBytes(a, b)) return { identical: true, changes: [], problems: [] };
  const problems: string[] = [];
  const parse = (blob: Uint8Array | undefined, side: "A" | "B"): FdtRo | undefined => {
    if (blob === undefined) {
      problems.push(`${side}: no ${what}`);
      return undefined;
    }
    try {
      return new FdtRo(blob);
    } catch (e) {
      if (e instanceof FdtError) {
        problems.push(`${side}: ${what} does not parse: ${e.message}`);
        return undefined;
      }
      throw e;
    }
  };
  const fa = parse(a, "A");
  const fb = parse(b, "B");
  const size = (blob: Uint8Array | undefined): string => (blob === undefined ? "absent" : `${blob.length} bytes`);
  if (!fa || !fb) return { identical: false, changes: [{ change: "bytes", path: "", a: size(a), b: size(b) }], problems };
  const changes: FdtChange[] = [];
  const ma = memreserves(fa);
  const mb = memreserves(fb);
  for (const r of ma) if (!mb.includes(r)) changes.push({ change: "memreserve-removed", path: "/memreserve/", a: r });
  for (const r of mb) if (!ma.includes(r)) changes.push({ change: "memreserve-added", path: "/memreserve/", b: r });
  changes.push(...diffFdtTrees(fa.toTree(), fb.toTree()));
  if (changes.length === 0) changes.push({ change: "bytes", path: "", a: size(a), b: size(b) });
  return { identical: false, changes, problems };
}

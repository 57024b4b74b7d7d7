/*
 * Read-only access: lookups by path and offset, properties in order,
 * reservations, the value helpers, and the dts text.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type FdtNode,
  FdtRo,
  FdtWriter,
  fdtStringlistContains,
  fdtFromTree,
  fdtToDts,
  fdtToTree,
  propString,
  propStringList,
  propU32be,
  propU64le,
} from "../src/fdt/index.js";
import { setU32, treeArb } from "./fdt-arbitraries.js";
import { thrown } from "./fdt-common.js";

const enc = new TextEncoder();

function sample(): Uint8Array {
  const w = new FdtWriter();
  w.addReservation(0x1000, 0x2000);
  w.addReservation(0xffffffffffffffffn, 1);
  w.finishReservemap();
  w.beginNode("");
  w.propertyString("compatible", "kho-v1");
  w.propertyU32("#size-cells", 2);
  w.beginNode("preserved-memory");
  w.property("metadata", new Uint8Array([0x00, 0x10, 0, 0, 0, 0, 0, 0]));
  w.endNode();
  w.beginNode("kho_test");
  w.property("fdt", new Uint8Array([0, 0x20, 0, 0, 0, 0, 0, 0]));
  w.beginNode("deep@1");
  w.property("empty", new Uint8Array(0));
  w.endNode();
  w.endNode();
  w.endNode();
  return w.finish();
}

describe("FdtRo lookups", () => {
  const fdt = new FdtRo(sample());

  it("finds nodes by path, with the root at offset 0, and names them", () => {
    expect(fdt.pathOffset("/")).toBe(0);
    const pm = fdt.pathOffset("/preserved-memory");
    expect(fdt.nodeName(pm)).toBe("preserved-memory");
    expect(fdt.nodeName(0)).toBe("");
    const deep = fdt.pathOffset("/kho_test/deep@1");
    expect(fdt.pathOffset("//kho_test///deep@1/")).toBe(deep);
    expect(fdt.path(deep)).toBe("/kho_test/deep@1");
    expect(fdt.path(0)).toBe("/");
    expect(fdt.parentOffset(deep)).toBe(fdt.pathOffset("/kho_test"));
    expect(fdt.parentOffset(0)).toBeUndefined();
    expect(fdt.subnodes(0)).toEqual([pm, fdt.pathOffset("/kho_test")]);
    expect(fdt.subnodes(deep)).toEqual([]);
  });

  it("throws NOTFOUND for a missing node, with the parent's place as offset", () => {
    const e = thrown(() => fdt.pathOffset("/kho_test/nope"));
    expect(e.code).toBe("NOTFOUND");
    expect(e.offset).toBe(fdt.header.offDtStruct + fdt.pathOffset("/kho_test"));
    expect(thrown(() => fdt.pathOffset("/deep@1")).code).toBe("NOTFOUND");
    // No unit-address fallback: "deep" does not match "deep@1".
    expect(thrown(() => fdt.pathOffset("/kho_test/deep")).code).toBe("NOTFOUND");
    expect(thrown(() => fdt.pathOffset("kho_test")).code).toBe("NOTFOUND");
  });

  it("throws BADOFFSET for an offset that is not a node", () => {
    const prop = fdt.properties(0)[0]!.offset;
    for (const off of [prop, 1, -4, 1e9, 0.5]) expect(thrown(() => fdt.nodeName(off)).code).toBe("BADOFFSET");
  });

  it("reads properties by name and in document order", () => {
    expect(propString(fdt.getProp(0, "compatible")!)).toBe("kho-v1");
    expect(propU32be(fdt.getProp(0, "#size-cells")!)).toBe(2);
    expect(fdt.getProp(0, "size-cells")).toBeUndefined();
    expect(fdt.getProp(0, "metadata")).toBeUndefined();
    expect(propU64le(fdt.getProp(fdt.pathOffset("/preserved-memory"), "metadata")!)).toBe(0x1000n);
    expect(fdt.getProp(fdt.pathOffset("/kho_test/deep@1"), "empty")).toEqual(new Uint8Array(0));
    const props = fdt.properties(0);
    expect(props.map((p) => p.name)).toEqual(["compatible", "#size-cells"]);
    expect(props[1]!.offset % 4).toBe(0);
  });

  it("lists reservations without the terminator", () => {
    expect(fdt.reservations()).toEqual([
      { addr: 0x1000n, size: 0x2000n },
      { addr: 0xffffffffffffffffn, size: 1n },
    ]);
  });

  it("refuses an invalid blob in the constructor", () => {
    const b = sample();
    expect(thrown(() => new FdtRo(setU32(b, 0, 0))).code).toBe("BADMAGIC");
  });
});

describe("value helpers", () => {
  it("propU64le takes exactly 8 bytes, little-endian", () => {
    expect(propU64le(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 0x80]))).toBe(0x8007060504030201n);
    for (const n of [0, 7, 9, 16]) expect(thrown(() => propU64le(new Uint8Array(n))).code).toBe("BADVALUE");
  });

  it("propU32be takes exactly 4 bytes, big-endian", () => {
    expect(propU32be(new Uint8Array([0x12, 0x34, 0x56, 0x78]))).toBe(0x12345678);
    for (const n of [0, 3, 5, 8]) expect(thrown(() => propU32be(new Uint8Array(n))).code).toBe("BADVALUE");
  });

  it("propString takes one NUL-terminated UTF-8 string", () => {
    expect(propString(enc.encode("héllo\0"))).toBe("héllo");
    expect(propString(new Uint8Array([0]))).toBe("");
    for (const bad of [enc.encode("abc"), enc.encode("a\0b\0"), new Uint8Array(0), new Uint8Array([0xff, 0])]) {
      expect(thrown(() => propString(bad)).code).toBe("BADVALUE");
    }
  });

  it("propStringList splits a NUL-terminated list", () => {
    expect(propStringList(enc.encode("a\0\0bc\0"))).toEqual(["a", "", "bc"]);
    expect(propStringList(new Uint8Array(0))).toEqual([]);
    expect(thrown(() => propStringList(enc.encode("a\0b"))).code).toBe("BADVALUE");
  });
});

describe("fdtToTree / fdtFromTree", () => {
  it("returns copies, not views into the blob", () => {
    const b = sample();
    const t = fdtToTree(b);
    b.fill(0);
    expect(new TextDecoder().decode(t.props[0]!.value)).toBe("kho-v1\0");
  });

  it("round-trips random trees and preserves document order (fast-check)", () => {
    fc.assert(
      fc.property(treeArb, (tree: FdtNode) => {
        const fdt = new FdtRo(fdtFromTree(tree));
        // Every node found by path has the name, props and children the tree says.
        const visit = (n: FdtNode, path: string): void => {
          const off = fdt.pathOffset(path === "" ? "/" : path);
          expect(fdt.properties(off).map((p) => [p.name, [...p.value]])).toEqual(n.props.map((p) => [p.name, [...p.value]]));
          expect(fdt.subnodes(off).map((c) => fdt.nodeName(c))).toEqual(n.children.map((c) => c.name));
          for (const c of n.children) visit(c, `${path}/${c.name}`);
        };
        visit(tree, "");
      }),
      { numRuns: 150 },
    );
  });
});

describe("fdtToDts", () => {
  it("prints like dtc 1.6.1: memreserve, strings, cells, bytes, empty, blank line before subnodes", () => {
    const w = new FdtWriter();
    w.addReservation(0x1000, 0x2000);
    w.finishReservemap();
    w.beginNode("");
    w.propertyString("compatible", "kho-v1");
    w.propertyU32("#size-cells", 2);
    w.property("bytes", new Uint8Array([1, 2, 3]));
    w.property("empty", new Uint8Array(0));
    w.property("esc", enc.encode('a"b\\\t\n\0'));
    w.property("list", enc.encode("a\0bc\0"));
    w.property("nul", new Uint8Array([0, 0, 0, 0]));
    w.beginNode("n@1");
    w.beginNode("leaf");
    w.endNode();
    w.endNode();
    w.endNode();
    expect(fdtToDts(w.finish())).toBe(
      [
        "/dts-v1/;",
        "",
        "/memreserve/\t0x0000000000001000 0x0000000000002000;",
        "/ {",
        '\tcompatible = "kho-v1";',
        "\t#size-cells = <0x02>;",
        "\tbytes = [01 02 03];",
        "\tempty;",
        '\tesc = "a\\"b\\\\\\t\\n";',
        '\tlist = "a\\0bc";',
        "\tnul = <0x00>;",
        "",
        "\tn@1 {",
        "",
        "\t\tleaf {",
        "\t\t};",
        "\t};",
        "};",
        "",
      ].join("\n"),
    );
  });
});

describe("fdtStringlistContains (libfdt fdt_stringlist_contains)", () => {
  const bytes = (s: string) => new TextEncoder().encode(s);
  it("finds an entry anywhere in the list, compared with its NUL", () => {
    expect(fdtStringlistContains(bytes("kho-v1\0"), "kho-v1")).toBe(true);
    expect(fdtStringlistContains(bytes("vendor,x\0kho-v1\0"), "kho-v1")).toBe(true);
  });
  it("does not take a prefix, a suffix or an empty list as a match", () => {
    expect(fdtStringlistContains(bytes("kho-v10\0"), "kho-v1")).toBe(false);
    expect(fdtStringlistContains(bytes("xkho-v1\0"), "kho-v1")).toBe(false);
    expect(fdtStringlistContains(new Uint8Array(0), "kho-v1")).toBe(false);
  });
  it("never matches a last entry without its NUL, but still the entries before it", () => {
    expect(fdtStringlistContains(bytes("kho-v1"), "kho-v1")).toBe(false);
    expect(fdtStringlistContains(bytes("kho-v1\0junk"), "kho-v1")).toBe(true);
    expect(fdtStringlistContains(bytes("junk\0kho-v1"), "kho-v1")).toBe(false);
  });
});

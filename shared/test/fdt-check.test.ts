/*
 * The strict validator: one hand-made corrupt blob per rejection rule (start
 * from a valid blob, damage one thing, assert code and offset), libfdt's
 * verdict on each, and fast-check mutation properties: fdtCheckFull only
 * ever throws FdtError, and what it accepts libfdt's fdt_check_full accepts.
 */
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import {
  FDT_HDR,
  FDT_MAX_DEPTH,
  FdtError,
  type FdtErrorCode,
  FdtRo,
  fdtCheckFull,
  fdtCheckHeader,
  fdtFromTree,
  fdtToDts,
} from "../src/fdt/index.js";
import { assemble, getU32, setU32, tok, treeArb } from "./fdt-arbitraries.js";
import { thrown } from "./fdt-common.js";
import { fdtCheckFullBatch, requireOracles } from "./oracles.js";

/*
 * The valid base, laid out as FdtWriter does:
 *	0x30 rsvmap terminator
 *	0x40 BEGIN_NODE ""          0x48 PROP len 4 nameoff 0 [01 02 03 04]
 *	0x58 BEGIN_NODE "c"         0x60 END_NODE   0x64 END_NODE   0x68 END
 *	0x6c strings "p\0"          totalsize 0x6e
 */
const baseStruct = (): number[] => [...tok.begin(""), ...tok.prop(0, [1, 2, 3, 4]), ...tok.begin("c"), ...tok.end(), ...tok.end(), ...tok.fin()];
const base = (): Uint8Array => assemble(baseStruct(), "p\0");
const S = 0x40; // off_dt_struct of assemble() without reservations

interface Case {
  rule: string;
  blob: () => Uint8Array;
  code: FdtErrorCode;
  offset: number;
  /* What libfdt 1.6.1's fdt_check_full says: we are allowed to be stricter, never laxer. */
  libfdt: "rejects" | "accepts";
}

const cases: Case[] = [
  // ---- header ----
  { rule: "buffer shorter than the header", blob: () => base().slice(0, 39), code: "TRUNCATED", offset: 0, libfdt: "rejects" },
  { rule: "bad magic", blob: () => setU32(base(), FDT_HDR.magic, 0xd00dfeee), code: "BADMAGIC", offset: 0, libfdt: "rejects" },
  { rule: "version below 17", blob: () => setU32(base(), FDT_HDR.version, 16), code: "BADVERSION", offset: 0x14, libfdt: "accepts" },
  {
    rule: "last_comp_version above 17",
    blob: () => setU32(base(), FDT_HDR.lastCompVersion, 18),
    code: "BADVERSION",
    offset: 0x18,
    libfdt: "rejects",
  },
  { rule: "totalsize below the header size", blob: () => setU32(base(), FDT_HDR.totalsize, 0x20), code: "TRUNCATED", offset: 4, libfdt: "rejects" },
  { rule: "totalsize beyond the buffer", blob: () => setU32(base(), FDT_HDR.totalsize, 0x6f), code: "TRUNCATED", offset: 4, libfdt: "rejects" },
  // libfdt does not check alignment; it rejects this one only because entries read from 0x34 find no terminator.
  { rule: "rsvmap not 8-aligned", blob: () => setU32(base(), FDT_HDR.offMemRsvmap, 0x34), code: "ALIGNMENT", offset: 0x10, libfdt: "rejects" },
  { rule: "struct not 4-aligned", blob: () => setU32(base(), FDT_HDR.offDtStruct, 0x42), code: "ALIGNMENT", offset: 0x08, libfdt: "rejects" },
  { rule: "rsvmap overlaps the header", blob: () => setU32(base(), FDT_HDR.offMemRsvmap, 0x20), code: "BADLAYOUT", offset: 0x10, libfdt: "rejects" },
  { rule: "rsvmap starts past totalsize", blob: () => setU32(base(), FDT_HDR.offMemRsvmap, 0x78), code: "TRUNCATED", offset: 0x10, libfdt: "rejects" },
  { rule: "struct overlaps the header", blob: () => setU32(base(), FDT_HDR.offDtStruct, 0x24), code: "BADLAYOUT", offset: 0x08, libfdt: "rejects" },
  {
    rule: "struct block ends past totalsize",
    blob: () => setU32(base(), FDT_HDR.sizeDtStruct, 0x3c),
    code: "TRUNCATED",
    offset: 0x08,
    libfdt: "rejects",
  },
  { rule: "strings overlap the header", blob: () => setU32(base(), FDT_HDR.offDtStrings, 0x10), code: "BADLAYOUT", offset: 0x0c, libfdt: "rejects" },
  {
    rule: "strings block ends past totalsize",
    blob: () => setU32(base(), FDT_HDR.sizeDtStrings, 0x10),
    code: "TRUNCATED",
    offset: 0x0c,
    libfdt: "rejects",
  },
  {
    rule: "strings block overlaps the struct block",
    blob: () => setU32(base(), FDT_HDR.offDtStrings, 0x68),
    code: "BADLAYOUT",
    offset: 0x0c,
    libfdt: "accepts",
  },
  // ---- memory reservation block ----
  {
    rule: "reservation block without terminator inside totalsize",
    blob: () => {
      // Move the rsvmap to the end of the blob, one non-zero entry, nothing after it.
      const b = new Uint8Array(0x80);
      b.set(base());
      setU32(b, 0x70 + 12, 1);
      setU32(b, FDT_HDR.offMemRsvmap, 0x70);
      return setU32(b, FDT_HDR.totalsize, 0x80);
    },
    code: "TRUNCATED",
    offset: 0x80,
    libfdt: "rejects",
  },
  {
    rule: "reservation terminator with a non-zero address",
    blob: () => setU32(base(), 0x30 + 4, 1),
    code: "BADVALUE",
    offset: 0x30,
    libfdt: "accepts",
  },
  {
    rule: "reservation block overlaps the strings block",
    blob: () => setU32(assemble(baseStruct(), "p" + "\0".repeat(23)), FDT_HDR.offMemRsvmap, 0x70),
    code: "BADLAYOUT",
    offset: 0x10,
    libfdt: "accepts",
  },
  {
    rule: "reservation block overlaps the struct block",
    blob: () =>
      setU32(assemble([...tok.begin(""), ...tok.prop(0, new Array<number>(16).fill(0)), ...tok.end(), ...tok.fin()], "p\0"), FDT_HDR.offMemRsvmap, 0x50),
    code: "BADLAYOUT",
    offset: 0x10,
    libfdt: "accepts",
  },
  // ---- structure block: lengths ----
  {
    rule: "struct block ends without FDT_END",
    blob: () => setU32(base(), FDT_HDR.sizeDtStruct, 0x28),
    code: "TRUNCATED",
    offset: S + 0x28,
    libfdt: "rejects",
  },
  {
    rule: "node name not NUL-terminated inside the struct block",
    blob: () => assemble([0, 0, 0, 1, 0x61, 0x62, 0x63, 0x64], "p\0"),
    code: "TRUNCATED",
    offset: S,
    libfdt: "rejects",
  },
  {
    rule: "property header runs past the struct block",
    blob: () => assemble([...tok.begin(""), 0, 0, 0, 3, 0, 0, 0, 0], "p\0"),
    code: "TRUNCATED",
    offset: S + 8,
    libfdt: "rejects",
  },
  {
    rule: "property value runs past the struct block",
    blob: () => setU32(base(), S + 8 + 4, 0x100),
    code: "TRUNCATED",
    offset: S + 8,
    libfdt: "rejects",
  },
  // ---- structure block: grammar ----
  { rule: "unknown token", blob: () => setU32(base(), 0x60, 5), code: "BADSTRUCTURE", offset: 0x60, libfdt: "rejects" },
  {
    rule: "nameoff outside the strings block",
    blob: () => setU32(base(), S + 8 + 8, 0x40),
    code: "BADSTRUCTURE",
    offset: S + 8,
    libfdt: "rejects",
  },
  {
    rule: "property name not NUL-terminated inside the strings block",
    blob: () => setU32(base(), FDT_HDR.sizeDtStrings, 1),
    code: "BADSTRUCTURE",
    offset: S + 8,
    libfdt: "rejects",
  },
  { rule: "FDT_END_NODE at depth 0", blob: () => assemble([...tok.end(), ...tok.fin()], ""), code: "BADSTRUCTURE", offset: S, libfdt: "rejects" },
  {
    rule: "second root node",
    blob: () => assemble([...tok.begin(""), ...tok.end(), ...tok.begin(""), ...tok.end(), ...tok.fin()], ""),
    code: "BADSTRUCTURE",
    offset: S + 12,
    libfdt: "rejects",
  },
  {
    rule: "property after a subnode",
    blob: () => assemble([...tok.begin(""), ...tok.begin("c"), ...tok.end(), ...tok.prop(0), ...tok.end(), ...tok.fin()], "p\0"),
    code: "BADSTRUCTURE",
    offset: S + 20,
    libfdt: "accepts",
  },
  {
    rule: "property after the root closed",
    blob: () => assemble([...tok.begin(""), ...tok.end(), ...tok.prop(0), ...tok.fin()], "p\0"),
    code: "BADSTRUCTURE",
    offset: S + 12,
    libfdt: "rejects",
  },
  {
    rule: "property before the root",
    blob: () => assemble([...tok.prop(0), ...tok.begin(""), ...tok.end(), ...tok.fin()], "p\0"),
    code: "BADSTRUCTURE",
    offset: S,
    libfdt: "accepts",
  },
  {
    rule: "FDT_END with a node open",
    blob: () => assemble([...tok.begin(""), ...tok.fin()], ""),
    code: "BADSTRUCTURE",
    offset: S + 8,
    libfdt: "rejects",
  },
  {
    rule: "FDT_NOP after the root closed",
    blob: () => assemble([...tok.begin(""), ...tok.end(), ...tok.nop(), ...tok.fin()], ""),
    code: "BADSTRUCTURE",
    offset: S + 12,
    libfdt: "rejects",
  },
  { rule: "FDT_END before any root", blob: () => assemble(tok.fin(), ""), code: "BADSTRUCTURE", offset: S, libfdt: "accepts" },
  {
    rule: "data after FDT_END",
    blob: () => assemble([...baseStruct(), ...tok.nop()], "p\0"),
    code: "BADSTRUCTURE",
    offset: 0x68,
    libfdt: "accepts",
  },
  {
    rule: "a second FDT_END",
    blob: () => assemble([...baseStruct(), ...tok.fin()], "p\0"),
    code: "BADSTRUCTURE",
    offset: 0x68,
    libfdt: "accepts",
  },
  {
    rule: "root node with a name",
    blob: () => assemble([...tok.begin("r"), ...tok.end(), ...tok.fin()], ""),
    code: "BADSTRUCTURE",
    offset: S,
    libfdt: "rejects",
  },
  {
    rule: "empty node name below the root",
    blob: () => assemble([...tok.begin(""), ...tok.begin(""), ...tok.end(), ...tok.end(), ...tok.fin()], ""),
    code: "BADSTRUCTURE",
    offset: S + 8,
    libfdt: "accepts",
  },
  {
    rule: "node name containing '/'",
    blob: () => assemble([...tok.begin(""), ...tok.begin("a/b"), ...tok.end(), ...tok.end(), ...tok.fin()], ""),
    code: "BADSTRUCTURE",
    offset: S + 8,
    libfdt: "accepts",
  },
  {
    rule: "duplicate sibling node names",
    blob: () => assemble([...tok.begin(""), ...tok.begin("c"), ...tok.end(), ...tok.begin("c"), ...tok.end(), ...tok.end(), ...tok.fin()], ""),
    code: "BADSTRUCTURE",
    offset: S + 20,
    libfdt: "accepts",
  },
  {
    rule: "duplicate property names in a node",
    blob: () => assemble([...tok.begin(""), ...tok.prop(0), ...tok.prop(0), ...tok.end(), ...tok.fin()], "p\0"),
    code: "BADSTRUCTURE",
    offset: S + 20,
    libfdt: "accepts",
  },
  {
    rule: `nesting deeper than ${FDT_MAX_DEPTH}`,
    blob: () => {
      const t: number[] = [...tok.begin("")];
      for (let i = 0; i < FDT_MAX_DEPTH; i++) t.push(...tok.begin("n"));
      for (let i = 0; i <= FDT_MAX_DEPTH; i++) t.push(...tok.end());
      return assemble([...t, ...tok.fin()], "");
    },
    code: "BADSTRUCTURE",
    offset: S + 8 * FDT_MAX_DEPTH,
    libfdt: "accepts",
  },
];

/* Valid blobs exercising the edges of the rules. */
const acceptedByRule: { what: string; blob: () => Uint8Array }[] = [
  { what: "the base", blob: base },
  {
    what: "FDT_NOP before, inside and between nodes",
    blob: () =>
      assemble(
        [...tok.nop(), ...tok.begin(""), ...tok.nop(), ...tok.prop(0), ...tok.nop(), ...tok.begin("c"), ...tok.nop(), ...tok.end(), ...tok.nop(), ...tok.end(), ...tok.fin()],
        "p\0",
      ),
  },
  {
    what: `exactly ${FDT_MAX_DEPTH} levels`,
    blob: () => {
      const t: number[] = [...tok.begin("")];
      for (let i = 1; i < FDT_MAX_DEPTH; i++) t.push(...tok.begin("n"));
      for (let i = 0; i < FDT_MAX_DEPTH; i++) t.push(...tok.end());
      return assemble([...t, ...tok.fin()], "");
    },
  },
  {
    what: "a buffer longer than totalsize",
    blob: () => {
      const b = new Uint8Array(0x100);
      b.set(base());
      return b;
    },
  },
  { what: "reservations", blob: () => assemble(baseStruct(), "p\0", [[0x1000n, 0x2000n], [0n, 1n]]) },
  { what: "version 18, last_comp_version 17", blob: () => setU32(setU32(base(), FDT_HDR.version, 18), FDT_HDR.lastCompVersion, 17) },
];

describe("fdtCheckFull: one corrupt blob per rule", () => {
  it("the undamaged base blob is valid", () => {
    expect(() => fdtCheckFull(base())).not.toThrow();
    expect(getU32(base(), FDT_HDR.totalsize)).toBe(0x6e);
  });

  for (const c of cases) {
    it(`rejects: ${c.rule} -> ${c.code} at 0x${c.offset.toString(16)}`, () => {
      const e = thrown(() => fdtCheckFull(c.blob()));
      expect({ code: e.code, offset: e.offset }).toEqual({ code: c.code, offset: c.offset });
      expect(e.message.startsWith(`FDT_ERR_${c.code} at 0x${c.offset.toString(16)}: `)).toBe(true);
      expect(e.message).not.toContain("\n");
    });
  }

  it("names the nameoff, the strings size and the place in the message", () => {
    const e = thrown(() => fdtCheckFull(setU32(base(), S + 8 + 8, 0x40)));
    expect(e.message).toBe("FDT_ERR_BADSTRUCTURE at 0x48: property nameoff 0x40 outside strings block (size 0x2)");
  });

  it("keeps messages on one line when a hostile name holds control characters", () => {
    const e = thrown(() => fdtCheckFull(assemble([...tok.begin("r\n\u0007x"), ...tok.end(), ...tok.fin()], "")));
    expect(e.message).toBe('FDT_ERR_BADSTRUCTURE at 0x40: root node name "r\\n\\u0007x" is not empty');
  });

  it("accepts FDT_NOP between tokens up to the root's END_NODE, exactly 64 levels, and a buffer longer than totalsize", () => {
    for (const a of acceptedByRule) expect(() => fdtCheckFull(a.blob()), a.what).not.toThrow();
  });

  it("fdtCheckHeader looks at the header only", () => {
    const broken = setU32(base(), 0x60, 5);
    expect(fdtCheckHeader(broken).totalsize).toBe(0x6e);
    expect(thrown(() => fdtCheckHeader(setU32(base(), FDT_HDR.magic, 0))).code).toBe("BADMAGIC");
  });
});

/*
 * libfdt's verdicts on every blob this file shows it, in one python process
 * (made on first use; each test asserts its own part): the rule table, the
 * edge-of-rule blobs, and the sampled mutants fdtCheckFull accepts / rejects.
 */
interface LibfdtVerdicts {
  cases: (number | "crash")[];
  edges: (number | "crash")[];
  mutants: { accepted: Uint8Array[]; rejected: Uint8Array[]; libfdt: (number | "crash")[] };
}
let libfdtVerdicts: LibfdtVerdicts | undefined;

function libfdt(): LibfdtVerdicts {
  if (libfdtVerdicts) return libfdtVerdicts;
  requireOracles();
  const accepted: Uint8Array[] = [];
  const rejected: Uint8Array[] = [];
  for (const b of fc.sample(mutatedArb, { numRuns: 800, seed: 0x1f0f })) {
    if (verdict(b) === "ok") {
      if (accepted.length < 40) accepted.push(b);
    } else if (rejected.length < 20) rejected.push(b);
  }
  const caseBlobs = cases.map((c) => c.blob());
  const edgeBlobs = acceptedByRule.map((a) => a.blob());
  const all = fdtCheckFullBatch([...caseBlobs, ...edgeBlobs, ...accepted, ...rejected]);
  const edgesEnd = caseBlobs.length + edgeBlobs.length;
  libfdtVerdicts = { cases: all.slice(0, caseBlobs.length), edges: all.slice(caseBlobs.length, edgesEnd), mutants: { accepted, rejected, libfdt: all.slice(edgesEnd) } };
  return libfdtVerdicts;
}

describe("fdtCheckFull against libfdt's fdt_check_full", () => {
  beforeAll(() => requireOracles());

  it("libfdt rejects what the table says it rejects, and accepts only where we are deliberately stricter", () => {
    const verdicts = libfdt().cases;
    const got = cases.map((c, i) => `${c.rule}: ${verdicts[i] === 0 ? "accepts" : "rejects"}`);
    expect(got).toEqual(cases.map((c) => `${c.rule}: ${c.libfdt}`));
  });

  it("libfdt accepts the edge-of-rule blobs we accept", () => {
    expect(libfdt().edges).toEqual(acceptedByRule.map(() => 0));
  });
});

/* ---- mutations ---- */

type Mutation =
  | { k: "byte"; pos: number; val: number }
  | { k: "word"; pos: number; val: number }
  | { k: "trunc"; len: number }
  | { k: "grow"; n: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ k: fc.constant("byte" as const), pos: fc.nat(), val: fc.integer({ min: 0, max: 255 }) }),
  fc.record({
    k: fc.constant("word" as const),
    pos: fc.nat(),
    val: fc.oneof(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0x80 }), fc.constantFrom(1, 2, 3, 4, 9, 0xd00dfeed)),
  }),
  fc.record({ k: fc.constant("trunc" as const), len: fc.nat() }),
  fc.record({ k: fc.constant("grow" as const), n: fc.integer({ min: 1, max: 16 }) }),
);

function mutate(blob: Uint8Array, ms: readonly Mutation[]): Uint8Array {
  let b = blob.slice();
  for (const m of ms) {
    if (b.length === 0) break;
    if (m.k === "byte") b[m.pos % b.length] = m.val;
    else if (m.k === "word" && b.length >= 4) setU32(b, (m.pos % (b.length - 3)) & ~3, m.val);
    else if (m.k === "trunc") b = b.slice(0, m.len % b.length);
    else if (m.k === "grow") {
      const g = new Uint8Array(b.length + m.n);
      g.set(b);
      b = g;
    }
  }
  return b;
}

const mutatedArb = fc
  .tuple(treeArb, fc.array(mutationArb, { minLength: 1, maxLength: 3 }))
  .map(([t, ms]) => mutate(fdtFromTree(t), ms));

/* What fdtCheckFull says about @b: "ok" or the FdtError; anything else is a bug and propagates. */
function verdict(b: Uint8Array): "ok" | FdtError {
  try {
    fdtCheckFull(b);
    return "ok";
  } catch (e) {
    if (e instanceof FdtError) return e;
    throw e;
  }
}

describe("mutated blobs (fast-check)", () => {
  it("fdtCheckFull, FdtRo and fdtToDts only ever throw FdtError, and FdtRo agrees with fdtCheckFull", () => {
    fc.assert(
      fc.property(mutatedArb, (b) => {
        const v = verdict(b);
        let ro: "ok" | FdtError = "ok";
        try {
          new FdtRo(b);
          fdtToDts(b);
        } catch (e) {
          if (!(e instanceof FdtError)) throw e;
          ro = e;
        }
        expect(ro === "ok").toBe(v === "ok");
      }),
      { numRuns: 1500 },
    );
  });

  it("whatever fdtCheckFull accepts, libfdt's fdt_check_full accepts too", () => {
    requireOracles();
    const { accepted, libfdt: verdicts } = libfdt().mutants;
    // Enough accepted mutants for the comparison to mean something.
    expect(accepted.length).toBeGreaterThanOrEqual(20);
    accepted.forEach((b, i) => expect(verdicts[i], Buffer.from(b).toString("hex")).toBe(0));
  });
});

/*
 * The handoff directory as a contract: the only channel between kernel-a and
 * kernel-b. Its file names, and the successor's outcomes with the exit code
 * of each (one table; kernel-b, corrupt, fuzz and the tests all read it).
 * The JSON files' shapes are handoff-json.ts (zod, loaded only by those who
 * parse or type them).
 */

/** RAM image: file offset 0 is the first byte of RAM (sparse, RAM-sized). */
export const HANDOFF_MEMORY_IMG = "memory.img";
/** The boot DTB kexec passes: /memory and /chosen's KHO properties. */
export const HANDOFF_BOOT_DTB = "boot.dtb";
/** A copy of the KHO FDT for people and tools; kernel-b reads the one in memory.img. */
export const HANDOFF_KHO_DTB = "kho.dtb";
/** The predecessor's report (handoff-json.ts PredecessorReport). */
export const HANDOFF_REPORT = "report.json";
/** The successor's report (handoff-json.ts SuccessorJson). */
export const SUCCESSOR_REPORT = "successor.json";

/** The successor's outcomes, in exit-code order. */
export const OUTCOMES = ["revived", "verification-failed", "unusable-input", "booted-without-kho", "revived-unsafely", "kernel-panic"] as const;

export type Outcome = (typeof OUTCOMES)[number];

/**
 * OUTCOME_EXIT - kernel-b's exit code for each outcome (README, kernel-b --help):
 * 0 revived and verified; 1 revived but verification failed; 2 unusable input
 * (cannot boot at all, or a usage error); 3 booted without KHO; 4 revived
 * unsafely (kernel-b --kernel: the version read the handoff but lost
 * preserved pages, read out of bounds or would corrupt memory); 5 kernel
 * panic (the LUO sub-tree is malformed: luo_restore_fail() panics).
 */
export const OUTCOME_EXIT: Readonly<Record<Outcome, number>> = {
  revived: 0,
  "verification-failed": 1,
  "unusable-input": 2,
  "booted-without-kho": 3,
  "revived-unsafely": 4,
  "kernel-panic": 5,
};

/** jsonPathString - a zod issue path as the one-line errors print it: ops[2].order, machine.ram. */
export function jsonPathString(path: readonly PropertyKey[]): string {
  let s = "";
  for (const p of path) s += typeof p === "number" ? `[${p}]` : s ? `.${String(p)}` : String(p);
  return s;
}

/**
 * RangeJsonStream - the "ranges" list of report.json or successor.json
 * without an object or string per range: @length ranges that @forEach
 * visits in list order as numbers (start, size, data). The streaming
 * writer (proc/handoff-dir.ts writeJsonFile) prints them one by one in the
 * bytes JSON.stringify(.., null, 2) gives for RangeJson objects; toJSON()
 * builds those objects, so JSON.stringify of a report holding one still
 * prints the same text (tests, small reports). It lives here, not beside
 * the schemas in handoff-json.ts, so that a kernel writing a report does
 * not load zod.
 */
export class RangeJsonStream {
  constructor(
    readonly length: number,
    readonly forEach: (visit: (start: number, size: number, data: number) => void) => void,
  ) {}

  /** toJSON - the list as RangeJson objects (0x hex strings), for JSON.stringify. */
  toJSON(): { start: string; size: string; data: string }[] {
    const out: { start: string; size: string; data: string }[] = [];
    this.forEach((start, size, data) => out.push({ start: "0x" + start.toString(16), size: "0x" + size.toString(16), data: "0x" + data.toString(16) }));
    return out;
  }

  /** fromRanges - a stream over @ranges, objects with numeric start, size and data. */
  static fromRanges(ranges: readonly { start: number; size: number; data: number }[]): RangeJsonStream {
    return new RangeJsonStream(ranges.length, (visit) => {
      for (let i = 0; i < ranges.length; i++) {
        const r = ranges[i]!;
        visit(r.start, r.size, r.data);
      }
    });
  }
}


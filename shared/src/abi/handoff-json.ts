/*
 * The JSON files of a handoff directory, as zod schemas: report.json (the
 * predecessor's) and successor.json (the successor's). Every TypeScript type
 * of them is inferred from these schemas; writers build objects of these
 * types (their key order is the file's), readers parse with the schemas and
 * report a bad file as one line naming the file and the JSON path.
 */
import { z } from "zod";
import { OUTCOMES, jsonPathString, type RangeJsonStream } from "./handoff.js";

/** A u64 as written by khosim: 0x-prefixed lowercase hex. */
const Hex = z.string().regex(/^0x[0-9a-f]+$/, { message: "not a 0x hex string" });
const Count = z.number().int().min(0);
const Span = z.object({ addr: Hex, size: Hex });
const Range = z.object({ start: Hex, size: Hex, data: Hex });

/** A range as both reports list it: khoser_mem_range's start, size, data. */
export const RangeJsonSchema = Range;

/** kernel-a's report.json (and kernel-b's, when it hands off again). */
export const PredecessorReportSchema = z.object({
  tool: z.string(),
  scenario: z.string(),
  description: z.string().nullable(),
  seed: Count,
  format: z.string(),
  machine: z.object({ ramBase: Hex, ram: Hex, maxOrder: Count }),
  scratch: z.array(Span),
  khoFdt: Span,
  scratchArray: Span,
  subtree: z.object({ name: z.string(), fdt: Hex, info: Hex, infoSize: Hex }),
  metadata: Hex,
  stats: z.object({
    folios: Count,
    physRanges: Count,
    preserveCalls: Count,
    ranges: Count,
    chunks: Count,
    metadataBytes: Count,
    metadataPages: Count,
    preservedBytes: Hex,
    preserved: z.string(),
    filledBytes: Count,
    imagePages: Count,
  }),
  /** reserve_mem= reservations preserved in the memblock sub-tree (only when the scenario had any). */
  reserveMem: z
    .object({ fdt: Hex, entries: z.array(z.object({ name: z.string(), start: Hex, size: Hex, csum: Hex })) })
    .optional(),
  /** vmalloc areas kho_test records (struct kho_vmalloc, csum of the bytes; only when the scenario made any). */
  vmalloc: z.array(z.object({ first: Hex, totalPages: Count, flags: Hex, order: Count, csum: Hex })).optional(),
  /** kho_preserve_pages() ranges kho_test records (only when the scenario made any). */
  pages: z.array(z.object({ phys: Hex, nrPages: Count, csum: Hex })).optional(),
  /** The LUO sub-tree (only when the scenario had "luo" steps): liveupdate-number and what each session preserved. */
  luo: z
    .object({
      fdt: Hex,
      liveupdateNumber: Hex,
      sessionBlock: Hex,
      sessions: z.array(z.object({ name: z.string(), files: z.array(z.object({ token: Hex, size: Count, ser: Hex })) })),
    })
    .optional(),
  chunks: z.array(Hex),
  ranges: z.array(Range),
});

/** One verification failure the successor lists. */
export const VerifyFailureSchema = z.object({
  kind: z.enum(["folio", "range", "subtree", "vmalloc", "pages", "luo"]),
  phys: Hex.optional(),
  order: Count.optional(),
  reason: z.string(),
});

/** The verdict of a version successor (kernel-b --kernel): which consequence ranks highest. */
export const KERNEL_VERDICTS = ["intact", "refused", "pages-lost", "read-out-of-bounds", "would-corrupt"] as const;

/**
 * successor.json's `kernel` object (kernel-b --kernel only): the version
 * that read the handoff and the consequences of reading it as that kernel
 * does (docs/kernels.md "Kernel versions"). Addresses are 0x hex; first*
 * are null when the count is 0; lost lists the first 100 lost ranges.
 */
export const KernelReportSchema = z.object({
  name: z.string(),
  source: z.string(),
  verdict: z.enum(KERNEL_VERDICTS),
  /** Pages preserved (the truth the losses are counted against). */
  preservedPages: Count,
  lostPages: Count,
  firstLost: Hex.nullable(),
  lost: z.array(z.object({ start: Hex, size: Hex })),
  oobReadBytes: Count,
  firstOobRead: Hex.nullable(),
  outsideRamPfns: Count,
  firstOutsideRam: Hex.nullable(),
  wrongSizeReserves: Count,
  firstWrongSize: z.object({ addr: Hex, reserved: Hex, intended: Hex }).nullable(),
  spuriousPages: Count,
  firstSpurious: Hex.nullable(),
  doubleRestores: Count,
  hazards: z.array(z.string()),
});

/** What became of one preserved vmalloc area or kho_preserve_pages() range (kho_test's records). */
export const PAGE_RECORD_OUTCOMES = ["verified", "unchecked", "restore-failed", "checksum-mismatch"] as const;
/** successor.json's `vmalloc` entry: the struct kho_vmalloc as read (flags in hex), the pages restored, the outcome. */
export const VmallocReportSchema = z.object({
  first: Hex,
  totalPages: Count,
  flags: Hex,
  order: Count,
  /** 4 KiB pages kho_restore_vmalloc() returned (0 when it failed). */
  pages: Count,
  outcome: z.enum(PAGE_RECORD_OUTCOMES),
  reason: z.string().nullable(),
});
/** successor.json's `pages` entry: one kho_preserve_pages() range, restored with kho_restore_pages(). */
export const PagesReportSchema = z.object({ phys: Hex, nrPages: Count, outcome: z.enum(PAGE_RECORD_OUTCOMES), reason: z.string().nullable() });

/** successor.json of a successor that booted (any outcome but unusable-input). */
export const SuccessorReportSchema = z.object({
  outcome: z.enum(OUTCOMES),
  exitCode: Count,
  reason: z.string().nullable(),
  /** Preservation format found in the KHO FDT (null without KHO). */
  format: z.string().nullable(),
  ram: z.object({ base: Hex, size: Hex }),
  scratch: z.array(Span),
  khoFdt: Span.nullable(),
  metadata: Hex.nullable(),
  /** Metadata objects walked, in order. */
  chunks: z.array(Hex),
  ranges: z.array(Range),
  /** memblock_reserve() calls the walk made (one per preserved block). */
  reserveCalls: Count,
  restored: z.object({ folios: Count, ranges: Count }),
  verified: z.object({ folios: Count, ranges: Count, bytes: Count, unchecked: Count }),
  failureCount: Count,
  /** The first MAX_LISTED_FAILURES failures (failureCount is exact). */
  failures: z.array(VerifyFailureSchema),
  memblock: z.object({
    memory: Hex,
    reserved: Hex,
    reservedRegions: Count,
    noinitReserved: Hex,
    free: Hex,
    earlyAllocations: Hex,
  }),
  /** Only with kernel-b --cmdline: what became of each reserve_mem= reservation, then the preserved ones it did not name. */
  reserveMem: z
    .array(
      z.object({
        name: z.string(),
        outcome: z.enum(["revived", "fresh: wrong size", "fresh: wrong alignment", "fresh: not in handoff", "failed: no memory", "unnamed"]),
        start: Hex.nullable(),
        size: Hex,
        preserved: z.boolean(),
        reason: z.string().nullable(),
      }),
    )
    .optional(),
  /** Only with kernel-b --kernel: the version successor's consequences. */
  kernel: KernelReportSchema.optional(),
  /** Only when kho_test recorded vmalloc areas / kho_preserve_pages() ranges: what became of each. */
  vmalloc: z.array(VmallocReportSchema).optional(),
  pages: z.array(PagesReportSchema).optional(),
  /** Only when the handoff has a LUO sub-tree: the incoming liveupdate-number, then what user space retrieved, verified and finished. */
  luo: z
    .object({
      liveupdateNumber: Hex,
      status: z.string(),
      sessions: z.array(z.object({ name: z.string(), retrieved: z.boolean(), finished: z.boolean(), files: z.array(z.object({ token: Hex, size: Count, outcome: z.string() })) })),
    })
    .optional(),
});

/** successor.json of a machine that could not boot at all. */
export const UnusableReportSchema = z.object({
  outcome: z.literal("unusable-input"),
  exitCode: Count,
  reason: z.string(),
});

/** Either successor.json kernel-b writes. */
export const SuccessorJsonSchema = z.union([SuccessorReportSchema, UnusableReportSchema]);

export type RangeJson = z.infer<typeof RangeJsonSchema>;
export type KernelReportJson = z.infer<typeof KernelReportSchema>;
export type KernelVerdict = (typeof KERNEL_VERDICTS)[number];
export type PredecessorReport = z.infer<typeof PredecessorReportSchema>;
export type VerifyFailure = z.infer<typeof VerifyFailureSchema>;
export type VmallocReportJson = z.infer<typeof VmallocReportSchema>;
export type PagesReportJson = z.infer<typeof PagesReportSchema>;
export type SuccessorReportJson = z.infer<typeof SuccessorReportSchema>;
export type UnusableReport = z.infer<typeof UnusableReportSchema>;
export type SuccessorJson = z.infer<typeof SuccessorJsonSchema>;

/** A handoff JSON file that does not match its schema, or is not JSON. */
export class HandoffJsonError extends Error {
  constructor(
    readonly file: string,
    readonly jsonPath: string,
    readonly reason: string,
  ) {
    super(`${file}: ${jsonPath ? jsonPath + ": " : ""}${reason}`);
    this.name = "HandoffJsonError";
  }
}


/**
 * parseHandoffJson - validate @json (parsed from @file) with @schema.
 * Throws HandoffJsonError naming @file and the JSON path of the first problem
 * (for a union, the issue of the branch that got furthest).
 */
export function parseHandoffJson<S extends z.ZodType>(schema: S, json: unknown, file: string): z.infer<S> {
  const r = schema.safeParse(json);
  if (r.success) return r.data;
  let issue = r.error.issues[0]!;
  // A union reports "invalid_union" at the top; name the deepest issue of its branches instead.
  while (issue.code === "invalid_union" && issue.errors.length > 0) {
    const base = issue.path;
    const branches = issue.errors.map((errs) => errs[0]!).filter((i) => i !== undefined);
    const best = branches.reduce((a, b) => (b.path.length > a.path.length ? b : a));
    issue = { ...best, path: [...base, ...best.path] } as typeof issue;
  }
  return fail(file, jsonPathString(issue.path), issue.message);
}

function fail(file: string, jsonPath: string, reason: string): never {
  throw new HandoffJsonError(file, jsonPath, reason);
}

/** readHandoffJson - parse the text @text of @file as JSON, then with @schema. Throws HandoffJsonError. */
export function readHandoffJson<S extends z.ZodType>(schema: S, text: string, file: string): z.infer<S> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return fail(file, "", `not JSON: ${(e as Error).message}`);
  }
  return parseHandoffJson(schema, json, file);
}

/** A report object whose "ranges" may be a RangeJsonStream (what the kernels write). */
export type WithRangeStream<T extends { ranges: unknown }> = Omit<T, "ranges"> & { ranges: RangeJsonStream | T["ranges"] };

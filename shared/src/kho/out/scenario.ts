/*
 * Scenario files: what a predecessor allocates, fills and preserves.
 * A scenario is untrusted input. It is validated with zod as a whole before
 * anything runs, and the first problem becomes one line naming the JSON path
 * (e.g. "ops[2].order: 11 is above MAX_PAGE_ORDER 10").
 *
 * zod and the schema are loaded on the first parseScenario(): a kernel run
 * without a scenario file (the default scenario, --help, kernel-b) does not
 * pay for them at start-up.
 */
import * as fs from "node:fs";
import { createRequire } from "node:module";
import type * as Zod from "zod";
import { MAX_PAGE_ORDER, PAGE_SIZE } from "../../abi/page.js";
import { jsonPathString } from "../../abi/handoff.js";
import { hex } from "../../lib/bytes.js";
import { formatSize, parseSize } from "../../lib/size.js";
import type { MachineConfig } from "../../mm/machine.js";

/** Thrown for a scenario that cannot be run; `path` is the JSON path. */
export class ScenarioError extends Error {
  constructor(
    readonly file: string,
    readonly jsonPath: string,
    readonly reason: string,
  ) {
    super(`${file}: ${jsonPath ? jsonPath + ": " : ""}${reason}`);
    this.name = "ScenarioError";
  }
}

/** Largest RAM khosim simulates: addresses must stay far below 2^53. */
export const MAX_RAM = 2 ** 44; // 16 TiB
/** Highest MAX_PAGE_ORDER a simulated machine may be configured with. */
export const MAX_CONFIG_ORDER = 18;

/** The scenario schema, built with @z (zod's namespace). */
function buildSchema(z: typeof Zod.z) {
  const size = z.union([z.number(), z.string()]).transform((v, ctx) => {
    const n = parseSize(v);
    if (n === undefined) {
      ctx.addIssue({ code: "custom", message: `${JSON.stringify(v)} is not a size (bytes, 0x hex, or a number with K/M/G/T)` });
      return z.NEVER;
    }
    return n;
  });
  const pageSize = size.refine((n) => n > 0 && n % PAGE_SIZE === 0, { message: "must be a non-zero multiple of the page size (4K)" });
  const addr = size.refine((n) => n % PAGE_SIZE === 0, { message: "must be page aligned (4K)" });
  const fill = z.boolean().optional();

  const TestKhoOp = z.strictObject({
    op: z.literal("test_kho"),
    /** Bytes of folios to allocate, as test_kho's max_mem; default (PAGE_SIZE << maxOrder) * 2. */
    maxMem: pageSize.optional(),
    fill,
  });
  const FoliosOp = z.strictObject({
    op: z.literal("folios"),
    count: z.number().int().min(1).max(2 ** 32 - 1),
    /** A folio order, or "random": 0..maxOrder per folio from the seeded PRNG. */
    order: z.union([z.number().int().min(0), z.literal("random")]),
    /**
     * buddy: one allocation per folio, lowest address first; contiguous: back to
     * back; isolated: a free gap of one folio after each; scattered: each at a
     * random free aligned address.
     */
    layout: z.enum(["buddy", "contiguous", "isolated", "scattered"]).default("buddy"),
    /** With "contiguous": leave every Nth folio of the run allocated but not preserved (a hole). */
    skipEvery: z.number().int().min(2).optional(),
    fill,
  });
  const PhysOp = z.strictObject({
    op: z.literal("phys"),
    size: pageSize,
    at: addr.optional(),
    align: pageSize.optional(),
    fill,
  });
  const UnpreserveOp = z.strictObject({ op: z.literal("unpreserve"), start: addr, size: pageSize });
  const UnpreserveFolioOp = z.strictObject({ op: z.literal("unpreserve-folio"), index: z.number().int().min(0) });
  const UnpreservePhysOp = z.strictObject({ op: z.literal("unpreserve-phys"), index: z.number().int().min(0) });

  const Op = z.discriminatedUnion("op", [TestKhoOp, FoliosOp, PhysOp, UnpreserveOp, UnpreserveFolioOp, UnpreservePhysOp]);

  const Machine = z.strictObject({
    ram: pageSize.default(2 ** 30),
    ramBase: addr.default(0x4000_0000),
    maxOrder: z.number().int().min(0).max(MAX_CONFIG_ORDER).default(MAX_PAGE_ORDER),
    /** Reserved at the base of RAM for the kernel image at cold boot. */
    kernelSize: pageSize.default(32 * 2 ** 20),
    scratch: z
      .strictObject({
        lowmem: pageSize.default(16 * 2 ** 20),
        /** Default: room for the successor's memmap (RAM / 64) and page tables (RAM / 512), plus 64 MiB. */
        global: pageSize.optional(),
      })
      .prefault({}),
  });

  const ScenarioSchema = z.strictObject({
    $schema: z.string().optional(),
    description: z.string().optional(),
    seed: z.number().int().min(0).max(2 ** 32 - 1).optional(),
    /** Default for every op's `fill`: write seeded random bytes into what is preserved. */
    fill: z.boolean().default(true),
    machine: Machine.prefault({}),
    ops: z.array(Op).prefault([{ op: "test_kho" }]),
  });
  return ScenarioSchema;
}

let schema: ReturnType<typeof buildSchema> | undefined;

/** scenarioSchema - zod (CommonJS build, loaded synchronously) and the schema, once. */
function scenarioSchema(): ReturnType<typeof buildSchema> {
  return (schema ??= buildSchema((createRequire(import.meta.url)("zod") as typeof Zod).z));
}

export type Scenario = Zod.z.output<ReturnType<typeof buildSchema>>;
export type ScenarioOp = Scenario["ops"][number];
/* The machine section is exactly what mm boots. */
const _machineIsConfig: MachineConfig = {} as Scenario["machine"];
void _machineIsConfig;

/** Bytes an op needs from the page allocator (0 for unpreserve ops). */
function opBytes(op: ScenarioOp, m: MachineConfig): number {
  switch (op.op) {
    case "test_kho":
      return op.maxMem ?? (PAGE_SIZE << m.maxOrder) * 2;
    case "folios":
      // A random order counts as order 0 here; running out of memory is still caught when it runs.
      return op.count * (PAGE_SIZE * 2 ** (op.order === "random" ? 0 : op.order)) * (op.layout === "isolated" ? 2 : 1);
    case "phys":
      return op.size;
    default:
      return 0;
  }
}

/** Checks that need the whole scenario (the machine's limits). */
function checkAgainstMachine(s: Scenario, file: string): void {
  const m = s.machine;
  const fail = (p: string, why: string): never => {
    throw new ScenarioError(file, p, why);
  };
  if (m.ram > MAX_RAM) fail("machine.ram", `${formatSize(m.ram)} is above the ${formatSize(MAX_RAM)} khosim simulates`);
  if (m.ramBase + m.ram > MAX_RAM) fail("machine.ramBase", `RAM end ${hex(m.ramBase + m.ram)} is above ${hex(MAX_RAM)}`);
  if (m.ramBase % (PAGE_SIZE << m.maxOrder) !== 0) {
    fail("machine.ramBase", `${hex(m.ramBase)} is not aligned to the largest folio (${formatSize(PAGE_SIZE << m.maxOrder)})`);
  }
  const scratch = m.scratch.lowmem + (m.scratch.global ?? 0);
  if (m.kernelSize + scratch >= m.ram) fail("machine.scratch", `kernel and scratch (${formatSize(m.kernelSize + scratch)}) leave no RAM`);
  let need = 0;
  const placed: [number, number, number][] = [];
  s.ops.forEach((op, i) => {
    if (op.op === "folios" && op.order !== "random" && op.order > m.maxOrder) {
      fail(`ops[${i}].order`, `${op.order} is above MAX_PAGE_ORDER ${m.maxOrder}`);
    }
    if (op.op === "folios" && op.skipEvery !== undefined && op.layout !== "contiguous") {
      fail(`ops[${i}].skipEvery`, `goes with layout "contiguous", not "${op.layout}"`);
    }
    if (op.op === "folios" && op.order === "random" && (op.layout === "contiguous" || op.layout === "isolated")) {
      fail(`ops[${i}].layout`, `"${op.layout}" needs a fixed order (random orders go with "buddy" or "scattered")`);
    }
    if (op.op === "phys" && op.at !== undefined) {
      if (op.at < m.ramBase || op.at + op.size > m.ramBase + m.ram) {
        fail(`ops[${i}].at`, `[${hex(op.at)}, ${hex(op.at + op.size)}) is outside RAM [${hex(m.ramBase)}, ${hex(m.ramBase + m.ram)})`);
      }
      for (const [a, e, j] of placed) {
        if (op.at < e && a < op.at + op.size) fail(`ops[${i}].at`, `[${hex(op.at)}, ${hex(op.at + op.size)}) overlaps ops[${j}]`);
      }
      placed.push([op.at, op.at + op.size, i]);
    }
    if (op.op === "phys" && op.align !== undefined && (op.align & (op.align - 1)) !== 0 && op.align < 2 ** 31) {
      fail(`ops[${i}].align`, `${op.align} is not a power of two`);
    }
    need += opBytes(op, m);
    if (need > m.ram) {
      fail(`ops[${i}]`, `the scenario needs ${formatSize(need)} so far, more than RAM (${formatSize(m.ram)})`);
    }
  });
}

/**
 * parseScenario - validate @json (already parsed) from @file.
 * Throws ScenarioError naming the first bad JSON path.
 */
export function parseScenario(json: unknown, file: string): Scenario {
  const r = scenarioSchema().safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    let why = issue.message;
    if (issue.code === "unrecognized_keys") why = `unknown key ${issue.keys.map((k) => JSON.stringify(k)).join(", ")}`;
    throw new ScenarioError(file, jsonPathString(issue.path), why);
  }
  const s = r.data;
  if (s.machine.scratch.global === undefined) {
    const twoM = 2 * 2 ** 20;
    // Room for the successor's early allocations (memmap RAM/64, page tables RAM/512) and 64 MiB more.
    s.machine.scratch.global = Math.ceil((s.machine.ram / 64 + s.machine.ram / 512 + 64 * 2 ** 20) / twoM) * twoM;
  }
  checkAgainstMachine(s, file);
  return s;
}

/** loadScenario - read and validate a scenario file. */
export function loadScenario(file: string): Scenario {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new ScenarioError(file, "", `cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ScenarioError(file, "", `not JSON: ${(e as Error).message}`);
  }
  return parseScenario(json, file);
}

/**
 * The scenario used when none is given: test_kho's default on a 1 GiB machine.
 * It is what parseScenario() makes of { description } (a test checks that), so
 * that a run without a scenario file does not load zod.
 */
export function defaultScenario(): Scenario {
  return {
    description: "test_kho default: folios of random order up to 8 MiB, filled",
    fill: true,
    machine: { ram: 2 ** 30, ramBase: 0x4000_0000, maxOrder: MAX_PAGE_ORDER, kernelSize: 32 * 2 ** 20, scratch: { lowmem: 16 * 2 ** 20, global: 82 * 2 ** 20 } },
    ops: [{ op: "test_kho" }],
  };
}

/*
 * Scenario files: what a predecessor allocates, fills and preserves.
 * A scenario is untrusted input. It is validated as a whole before anything
 * runs, and the first problem becomes one line naming the JSON path
 * (e.g. "ops[2].order: 11 is above MAX_PAGE_ORDER 10").
 *
 * The validator is written out below rather than built with zod: a kernel
 * process validates its scenario file at start-up, and loading zod (and
 * building a schema with it) cost more than the whole rest of kernel-a's
 * start-up. The types below are the schema; docs/scenarios.md describes it.
 */
import * as fs from "node:fs";
import { MAX_PAGE_ORDER, PAGE_SIZE } from "../../abi/page.js";
import { jsonPathString } from "../../abi/handoff.js";
import { hex } from "../../lib/bytes.js";
import { formatSize, parseSize } from "../../lib/size.js";
import type { MachineConfig } from "../../mm/machine.js";
import { parseReserveMemCmdline, ReserveMemError, type ReserveMemParam } from "../../mm/reserve-mem.js";
import { checkRamBanks, MAX_NUMNODES, ramContains, ramSpan, type RamBank } from "../../abi/ram.js";
import { KHO_ERRNOS, getOrder, type KhoErrno } from "./pages.js";
import { KHO_TEST_MAX_PAGE_RECORDS } from "../../abi/kho-test-vmalloc.js";
import { luoStepsBytes, parseLuoSteps, type LuoStep } from "./luo-steps.js";

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

/** The machine a scenario runs on (sizes in bytes). */
export interface ScenarioMachine {
  /** Default 1 GiB. */
  ram: number;
  /** Default 0x40000000. */
  ramBase: number;
  /** Default MAX_PAGE_ORDER, at most MAX_CONFIG_ORDER. */
  maxOrder: number;
  /** Reserved at the base of RAM for the kernel image at cold boot; default 32 MiB. */
  kernelSize: number;
  scratch: {
    /** Default 16 MiB. */
    lowmem: number;
    /** Default: room for the successor's memmap (RAM / 64) and page tables (RAM / 512), plus 64 MiB. */
    global?: number | undefined;
  };
  /** The kernel command line; only its reserve_mem=nn:align:name and kho_scratch= words are acted on. */
  cmdline?: string;
  /** RAM banks with holes (instead of ram/ramBase, which become their span); node defaults to 0. */
  banks?: RamBank[];
  /** NUMA nodes 0..nodes-1 (default: one past the highest bank node when any bank names one); nodes without banks are memoryless. */
  nodes?: number;
}

/** Folio placement: buddy, one allocation per folio, lowest address first; contiguous, back to back; isolated, a free gap of one folio after each; scattered, each at a random free aligned address. */
export type FolioLayout = "buddy" | "contiguous" | "isolated" | "scattered";
const LAYOUTS: readonly FolioLayout[] = ["buddy", "contiguous", "isolated", "scattered"];

/** One scenario op; `fill` overrides the scenario's default for what the op preserves. */
export type ScenarioOp =
  /** test_kho's workload; maxMem = bytes of folios to allocate, as test_kho's max_mem; default (PAGE_SIZE << maxOrder) * 2. */
  | { op: "test_kho"; maxMem?: number; fill?: boolean }
  /** order: a folio order, or "random" (0..maxOrder per folio from the seeded PRNG); layout default "buddy"; skipEvery (contiguous only): leave every Nth folio allocated but not preserved. */
  | { op: "folios"; count: number; order: number | "random"; layout: FolioLayout; skipEvery?: number; fill?: boolean }
  /** A physical range of @size bytes, at @at or anywhere (aligned to @align). */
  | { op: "phys"; size: number; at?: number; align?: number; fill?: boolean }
  | { op: "unpreserve"; start: number; size: number }
  | { op: "unpreserve-folio"; index: number }
  | { op: "unpreserve-phys"; index: number }
  /** vmalloc() @pages pages as blocks of @order (vmalloc_huge when > 0), then kho_preserve_vmalloc(); flags = vm->flags (default VM_ALLOC, | VM_ALLOW_HUGE_VMAP when order > 0). */
  | { op: "vmalloc"; pages: number; order?: number; flags?: number; fill?: boolean; expect?: KhoErrno }
  /** kho_preserve_pages() of @pages contiguous pages (at @at, or anywhere). */
  | { op: "preserve-pages"; pages: number; at?: number; fill?: boolean; expect?: KhoErrno }
  /** kho_alloc_preserve(@size bytes). */
  | { op: "alloc-preserve"; size: number; fill?: boolean; expect?: KhoErrno }
  /** kho_unpreserve_pages() of preserve-pages op @index (counting those that succeeded); @offset/@pages other than the whole call are refused. */
  | { op: "unpreserve-pages"; index: number; offset?: number; pages?: number }
  /** kho_unpreserve_vmalloc() of vmalloc op @index. */
  | { op: "unpreserve-vmalloc"; index: number }
  /** kho_unpreserve_free() of alloc-preserve op @index. */
  | { op: "unpreserve-free"; index: number }
  /** 6.18's `echo 1 > /sys/kernel/debug/kho/out/finalize`: every later preserve fails with -EBUSY. */
  | { op: "finalize"; expect?: KhoErrno };

/** A validated scenario, defaults filled in. */
export interface Scenario {
  $schema?: string;
  description?: string;
  seed?: number;
  /** Default for every op's `fill`: write seeded random bytes into what is preserved; default true. */
  fill: boolean;
  machine: ScenarioMachine;
  /** Default: one test_kho op. */
  ops: ScenarioOp[];
  /** machine.cmdline's reserve_mem= words, parsed (absent without any). */
  reserveMem?: ReserveMemParam[];
  /** User space on /dev/liveupdate (luo-steps.ts); present = LUO enabled (liveupdate=on). */
  luo?: LuoStep[];
}

/* The machine section is exactly what mm boots. */
const _machineIsConfig: MachineConfig = {} as Scenario["machine"];
void _machineIsConfig;

/* ------------------------------------------------------------ validation */

type JsonPath = (string | number)[];

/** The first problem found: where and why. */
class Invalid {
  constructor(
    readonly path: JsonPath,
    readonly why: string,
  ) {}
}

function invalid(p: JsonPath, why: string): never {
  throw new Invalid(p, why);
}

/** What a JSON value is, for messages. */
function kind(v: unknown): string {
  if (v === undefined) return "nothing (the key is missing)";
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object") return "an object";
  if (typeof v === "string") return `the string ${JSON.stringify(v)}`;
  return `${typeof v} ${String(v)}`;
}

/** A JSON object with only @keys (an unknown key is an error, as a typo would otherwise be ignored). */
function object(v: unknown, p: JsonPath, keys: readonly string[]): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) invalid(p, `expected an object, got ${kind(v)}`);
  const unknown = Object.keys(v).filter((k) => !keys.includes(k));
  if (unknown.length > 0) invalid(p, `unknown key ${unknown.map((k) => JSON.stringify(k)).join(", ")}`);
  return v as Record<string, unknown>;
}

function int(v: unknown, p: JsonPath, min: number, max: number): number {
  if (typeof v !== "number") invalid(p, `expected an integer, got ${kind(v)}`);
  if (!Number.isSafeInteger(v)) invalid(p, `${v} is not an integer`);
  if (v < min) invalid(p, `${v} is below the minimum ${min}`);
  if (v > max) invalid(p, `${v} is above the maximum ${max}`);
  return v;
}

function bool(v: unknown, p: JsonPath): boolean {
  if (typeof v !== "boolean") invalid(p, `expected true or false, got ${kind(v)}`);
  return v;
}

function str(v: unknown, p: JsonPath): string {
  if (typeof v !== "string") invalid(p, `expected a string, got ${kind(v)}`);
  return v;
}

/** A size: bytes, 0x hex, or a number with K/M/G/T. */
function size(v: unknown, p: JsonPath): number {
  const n = typeof v === "number" || typeof v === "string" ? parseSize(v) : undefined;
  if (n === undefined) invalid(p, `${JSON.stringify(v)} is not a size (bytes, 0x hex, or a number with K/M/G/T)`);
  return n;
}

/** A non-zero size in whole pages. */
function pageSize(v: unknown, p: JsonPath): number {
  const n = size(v, p);
  if (n <= 0 || n % PAGE_SIZE !== 0) invalid(p, "must be a non-zero multiple of the page size (4K)");
  return n;
}

/** A page-aligned address. */
function addr(v: unknown, p: JsonPath): number {
  const n = size(v, p);
  if (n % PAGE_SIZE !== 0) invalid(p, "must be page aligned (4K)");
  return n;
}

/** Sets o[k] = parse(v[k]) when v has k; optional fields stay absent otherwise. */
function opt<T, K extends string>(o: Partial<Record<K, T>>, v: Record<string, unknown>, k: K, p: JsonPath, parse: (x: unknown, p: JsonPath) => T): void {
  if (v[k] !== undefined) o[k] = parse(v[k], [...p, k]);
}

const OPS = [
  "test_kho",
  "folios",
  "phys",
  "unpreserve",
  "unpreserve-folio",
  "unpreserve-phys",
  "vmalloc",
  "preserve-pages",
  "alloc-preserve",
  "unpreserve-pages",
  "unpreserve-vmalloc",
  "unpreserve-free",
  "finalize",
] as const;

/** An errno name an op expects its call to fail with. */
function errno(v: unknown, p: JsonPath): KhoErrno {
  if (!KHO_ERRNOS.includes(v as KhoErrno)) invalid(p, `expected one of ${KHO_ERRNOS.map((e) => JSON.stringify(e)).join(", ")}, got ${kind(v)}`);
  return v as KhoErrno;
}

function op(v: unknown, p: JsonPath): ScenarioOp {
  if (typeof v !== "object" || v === null || Array.isArray(v)) invalid(p, `expected an object, got ${kind(v)}`);
  const name = (v as Record<string, unknown>)["op"];
  if (!OPS.includes(name as (typeof OPS)[number])) invalid([...p, "op"], `expected one of ${OPS.map((o) => JSON.stringify(o)).join(", ")}, got ${kind(name)}`);
  const at = (k: string): JsonPath => [...p, k];
  switch (name as (typeof OPS)[number]) {
    case "test_kho": {
      const o = object(v, p, ["op", "maxMem", "fill"]);
      const r: Extract<ScenarioOp, { op: "test_kho" }> = { op: "test_kho" };
      opt(r, o, "maxMem", p, pageSize);
      opt(r, o, "fill", p, bool);
      return r;
    }
    case "folios": {
      const o = object(v, p, ["op", "count", "order", "layout", "skipEvery", "fill"]);
      const count = int(o["count"], at("count"), 1, 2 ** 32 - 1);
      const order = o["order"] === "random" ? "random" : typeof o["order"] === "number" ? int(o["order"], at("order"), 0, Infinity) : invalid(at("order"), `expected a folio order or "random", got ${kind(o["order"])}`);
      let layout: FolioLayout = "buddy";
      if (o["layout"] !== undefined) {
        if (!LAYOUTS.includes(o["layout"] as FolioLayout)) invalid(at("layout"), `expected one of ${LAYOUTS.map((l) => JSON.stringify(l)).join(", ")}, got ${kind(o["layout"])}`);
        layout = o["layout"] as FolioLayout;
      }
      const r: Extract<ScenarioOp, { op: "folios" }> = { op: "folios", count, order, layout };
      opt(r, o, "skipEvery", p, (x, q) => int(x, q, 2, Infinity));
      opt(r, o, "fill", p, bool);
      return r;
    }
    case "phys": {
      const o = object(v, p, ["op", "size", "at", "align", "fill"]);
      const r: Extract<ScenarioOp, { op: "phys" }> = { op: "phys", size: pageSize(o["size"], at("size")) };
      opt(r, o, "at", p, addr);
      opt(r, o, "align", p, pageSize);
      opt(r, o, "fill", p, bool);
      return r;
    }
    case "unpreserve": {
      const o = object(v, p, ["op", "start", "size"]);
      return { op: "unpreserve", start: addr(o["start"], at("start")), size: pageSize(o["size"], at("size")) };
    }
    case "vmalloc": {
      const o = object(v, p, ["op", "pages", "order", "flags", "fill", "expect"]);
      const r: Extract<ScenarioOp, { op: "vmalloc" }> = { op: "vmalloc", pages: int(o["pages"], at("pages"), 1, 2 ** 32 - 1) };
      opt(r, o, "order", p, (x, q) => int(x, q, 0, MAX_CONFIG_ORDER));
      opt(r, o, "flags", p, (x, q) => int(x, q, 0, 2 ** 32 - 1));
      opt(r, o, "fill", p, bool);
      opt(r, o, "expect", p, errno);
      return r;
    }
    case "preserve-pages": {
      const o = object(v, p, ["op", "pages", "at", "fill", "expect"]);
      const r: Extract<ScenarioOp, { op: "preserve-pages" }> = { op: "preserve-pages", pages: int(o["pages"], at("pages"), 1, 2 ** 32 - 1) };
      opt(r, o, "at", p, addr);
      opt(r, o, "fill", p, bool);
      opt(r, o, "expect", p, errno);
      return r;
    }
    case "alloc-preserve": {
      const o = object(v, p, ["op", "size", "fill", "expect"]);
      const r: Extract<ScenarioOp, { op: "alloc-preserve" }> = { op: "alloc-preserve", size: size(o["size"], at("size")) };
      opt(r, o, "fill", p, bool);
      opt(r, o, "expect", p, errno);
      return r;
    }
    case "unpreserve-pages": {
      const o = object(v, p, ["op", "index", "offset", "pages"]);
      const r: Extract<ScenarioOp, { op: "unpreserve-pages" }> = { op: "unpreserve-pages", index: int(o["index"], at("index"), 0, Infinity) };
      opt(r, o, "offset", p, (x, q) => int(x, q, 0, 2 ** 32 - 1));
      opt(r, o, "pages", p, (x, q) => int(x, q, 1, 2 ** 32 - 1));
      return r;
    }
    case "unpreserve-vmalloc":
    case "unpreserve-free": {
      const o = object(v, p, ["op", "index"]);
      return { op: name as "unpreserve-vmalloc" | "unpreserve-free", index: int(o["index"], at("index"), 0, Infinity) };
    }
    case "finalize": {
      const o = object(v, p, ["op", "expect"]);
      const r: Extract<ScenarioOp, { op: "finalize" }> = { op: "finalize" };
      opt(r, o, "expect", p, errno);
      return r;
    }
    case "unpreserve-folio":
    case "unpreserve-phys": {
      const o = object(v, p, ["op", "index"]);
      return { op: name as "unpreserve-folio" | "unpreserve-phys", index: int(o["index"], at("index"), 0, Infinity) };
    }
  }
}

function machine(v: unknown, p: JsonPath): ScenarioMachine {
  const o = object(v, p, ["ram", "ramBase", "maxOrder", "kernelSize", "scratch", "cmdline", "banks", "nodes"]);
  const or = <T>(k: string, parse: (x: unknown, q: JsonPath) => T, dflt: T): T => (o[k] === undefined ? dflt : parse(o[k], [...p, k]));
  const m: ScenarioMachine = {
    ram: or("ram", pageSize, 2 ** 30),
    ramBase: or("ramBase", addr, 0x4000_0000),
    maxOrder: or("maxOrder", (x, q) => int(x, q, 0, MAX_CONFIG_ORDER), MAX_PAGE_ORDER),
    kernelSize: or("kernelSize", pageSize, 32 * 2 ** 20),
    scratch: { lowmem: 16 * 2 ** 20 },
  };
  if (o["scratch"] !== undefined) {
    const sp = [...p, "scratch"];
    const s = object(o["scratch"], sp, ["lowmem", "global"]);
    if (s["lowmem"] !== undefined) m.scratch.lowmem = pageSize(s["lowmem"], [...sp, "lowmem"]);
    opt(m.scratch, s, "global", sp, pageSize);
  }
  opt(m, o, "cmdline", p, str);
  if (o["banks"] !== undefined) machineBanks(m, o, p);
  return m;
}

/* machine.banks and machine.nodes: the banks replace ram/ramBase, which become their span. */
function machineBanks(m: ScenarioMachine, o: Record<string, unknown>, p: JsonPath): void {
  const bp = [...p, "banks"];
  if (o["ram"] !== undefined || o["ramBase"] !== undefined) invalid(bp, "give machine.banks or machine.ram/ramBase, not both");
  if (!Array.isArray(o["banks"])) invalid(bp, `expected an array, got ${kind(o["banks"])}`);
  let numa = false;
  const banks = (o["banks"] as unknown[]).map((x, i): RamBank => {
    const b = object(x, [...bp, i], ["base", "size", "node"]);
    if (b["node"] !== undefined) numa = true;
    return { base: addr(b["base"], [...bp, i, "base"]), size: pageSize(b["size"], [...bp, i, "size"]), node: b["node"] === undefined ? 0 : int(b["node"], [...bp, i, "node"], 0, MAX_NUMNODES - 1) };
  });
  const bad = checkRamBanks(banks, MAX_RAM, (i) => `banks[${i}]`);
  if (bad !== undefined) invalid(bp, bad);
  const top = Math.max(...banks.map((b) => b.node)) + 1;
  if (o["nodes"] !== undefined) {
    m.nodes = int(o["nodes"], [...p, "nodes"], top, MAX_NUMNODES);
  } else if (numa) m.nodes = top;
  m.banks = banks;
  const span = ramSpan(banks);
  m.ramBase = span.base;
  m.ram = span.size;
}

/** The scenario's own shape, defaults filled in (the checks against the machine come after). */
function scenario(v: unknown): Scenario {
  const o = object(v, [], ["$schema", "description", "seed", "fill", "machine", "ops", "luo"]);
  const s: Scenario = { fill: true, machine: machine(o["machine"] === undefined ? {} : o["machine"], ["machine"]), ops: [{ op: "test_kho" }] };
  opt(s, o, "$schema", [], str);
  opt(s, o, "description", [], str);
  opt(s, o, "seed", [], (x, q) => int(x, q, 0, 2 ** 32 - 1));
  if (o["fill"] !== undefined) s.fill = bool(o["fill"], ["fill"]);
  if (o["ops"] !== undefined) {
    if (!Array.isArray(o["ops"])) invalid(["ops"], `expected an array, got ${kind(o["ops"])}`);
    s.ops = o["ops"].map((x, i) => op(x, ["ops", i]));
  }
  if (o["luo"] !== undefined) s.luo = parseLuoSteps(o["luo"], invalid, size);
  if (s.machine.cmdline !== undefined) {
    try {
      const rm = parseReserveMemCmdline(s.machine.cmdline);
      if (rm.length > 0) s.reserveMem = rm;
    } catch (e) {
      if (e instanceof ReserveMemError) invalid(["machine", "cmdline"], e.reason);
      throw e;
    }
  }
  return s;
}

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
    case "vmalloc":
      // The area and its chunk pages (one per 511 blocks, plus one).
      return op.pages * PAGE_SIZE + (Math.floor(op.pages / 2 ** (op.order ?? 0) / 511) + 1) * PAGE_SIZE;
    case "preserve-pages":
      return op.pages * PAGE_SIZE;
    case "alloc-preserve":
      return op.size > 0 && getOrder(op.size) <= m.maxOrder ? PAGE_SIZE * 2 ** getOrder(op.size) : 0;
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
  for (const r of s.reserveMem ?? []) need += r.size;
  if (need + m.kernelSize + scratch >= m.ram) fail("machine.cmdline", `reserve_mem needs ${formatSize(need)}, more than RAM left after kernel and scratch`);
  need += luoStepsBytes(s.luo ?? []);
  const placed: [number, number, number][] = [];
  let records = 0;
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
      if (m.banks && !ramContains({ base: m.ramBase, size: m.ram, banks: m.banks }, op.at, op.size)) {
        fail(`ops[${i}].at`, `[${hex(op.at)}, ${hex(op.at + op.size)}) is not all RAM: it lies in or across a hole between machine.banks`);
      }
      for (const [a, e, j] of placed) {
        if (op.at < e && a < op.at + op.size) fail(`ops[${i}].at`, `[${hex(op.at)}, ${hex(op.at + op.size)}) overlaps ops[${j}]`);
      }
      placed.push([op.at, op.at + op.size, i]);
    }
    if (op.op === "phys" && op.align !== undefined && (op.align & (op.align - 1)) !== 0 && op.align < 2 ** 31) {
      fail(`ops[${i}].align`, `${op.align} is not a power of two`);
    }
    if (op.op === "vmalloc" && op.order !== undefined) {
      if (op.order > m.maxOrder) fail(`ops[${i}].order`, `${op.order} is above MAX_PAGE_ORDER ${m.maxOrder}`);
      if (op.pages % 2 ** op.order !== 0) fail(`ops[${i}].pages`, `${op.pages} is not a multiple of ${2 ** op.order} (whole order-${op.order} blocks)`);
    }
    if (op.op === "preserve-pages" && op.at !== undefined && (op.at < m.ramBase || op.at + op.pages * PAGE_SIZE > m.ramBase + m.ram)) {
      fail(`ops[${i}].at`, `[${hex(op.at)}, ${hex(op.at + op.pages * PAGE_SIZE)}) is outside RAM [${hex(m.ramBase)}, ${hex(m.ramBase + m.ram)})`);
    }
    if ((op.op === "vmalloc" || op.op === "preserve-pages") && ++records > KHO_TEST_MAX_PAGE_RECORDS) {
      fail(`ops[${i}]`, `more than ${KHO_TEST_MAX_PAGE_RECORDS} vmalloc and preserve-pages ops (kho_test records them in its one-page FDT)`);
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
  let s: Scenario;
  try {
    s = scenario(json);
  } catch (e) {
    if (e instanceof Invalid) throw new ScenarioError(file, jsonPathString(e.path), e.why);
    throw e;
  }
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
 * It is what parseScenario() makes of { description } (a test checks that).
 */
export function defaultScenario(): Scenario {
  return {
    description: "test_kho default: folios of random order up to 8 MiB, filled",
    fill: true,
    machine: { ram: 2 ** 30, ramBase: 0x4000_0000, maxOrder: MAX_PAGE_ORDER, kernelSize: 32 * 2 ** 20, scratch: { lowmem: 16 * 2 ** 20, global: 82 * 2 ** 20 } },
    ops: [{ op: "test_kho" }],
  };
}

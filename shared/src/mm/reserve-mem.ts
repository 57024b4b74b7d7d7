/*
 * reserve_mem=nn:align:name (mm/memblock.c: reserve_mem(), reserved_mem_add(),
 * the reserve_mem_table). Followed: the v6.16 code, mainline f99230780211
 * "memblock: add KHO support for reserve_mem" (posted as [PATCH v7 16/18],
 * 2025-05-01); the parser and table are unchanged through 6.19.
 *
 * The kernel logs a bad entry ("reserve_mem: empty or malformed parameter")
 * and boots on; khosim refuses it instead (ReserveMemError), since a scenario
 * or a --cmdline that silently loses a reservation is a typo, not a test.
 */
import { PAGE_SIZE } from "../abi/page.js";
import { hex } from "../lib/bytes.js";
import type { Memblock } from "./memblock/index.js";
import { SMP_CACHE_BYTES } from "./memblock/index.js";

/** RESERVE_MEM_MAX_ENTRIES: size of the kernel's reserve_mem table. */
export const RESERVE_MEM_MAX_ENTRIES = 8;
/** RESERVE_MEM_NAME_SIZE: name bytes including the NUL (so at most 15 characters). */
export const RESERVE_MEM_NAME_SIZE = 16;

/** One parsed reserve_mem= parameter: what reserve_mem() checks before allocating. */
export interface ReserveMemParam {
  name: string;
  size: number;
  /** Already raised to SMP_CACHE_BYTES as reserve_mem() does. */
  align: number;
}

/** One row of reserved_mem_table. */
export interface ReserveMemEntry {
  name: string;
  start: number;
  size: number;
}

/** A reserve_mem= parameter the kernel would refuse; @index is its position among the reserve_mem= words. */
export class ReserveMemError extends Error {
  constructor(
    readonly index: number,
    readonly reason: string,
  ) {
    super(reason);
    this.name = "ReserveMemError";
  }
}

const SUFFIX: Record<string, number> = { k: 10, m: 20, g: 30, t: 40, p: 50, e: 60 };

/**
 * memparse - parse a number as lib/cmdline.c memparse() does: simple_strtoull
 * with base 0 (0x hex, leading 0 octal, else decimal) and an optional
 * K/M/G/T/P/E suffix (either case). Returns the value (a bigint: phys_addr_t
 * wraps at 2^64 as in C) and the index after what was consumed; consumed 0
 * when no digit was found.
 * @s: the text
 * @at: where to start
 */
export function memparse(s: string, at: number): { value: bigint; end: number } {
  let i = at;
  let base = 10n;
  let digits = /[0-9]/;
  if (s[i] === "0" && (s[i + 1] === "x" || s[i + 1] === "X") && /[0-9a-fA-F]/.test(s[i + 2] ?? "")) {
    base = 16n;
    digits = /[0-9a-fA-F]/;
    i += 2;
  } else if (s[i] === "0") {
    base = 8n;
    digits = /[0-7]/;
  }
  let v = 0n;
  const start = i;
  while (i < s.length && digits.test(s[i]!)) v = (v * base + BigInt(parseInt(s[i++]!, 16))) & 0xffff_ffff_ffff_ffffn;
  if (i === start) return { value: 0n, end: at };
  const sh = SUFFIX[(s[i] ?? "").toLowerCase()];
  if (sh !== undefined) {
    v = (v << BigInt(sh)) & 0xffff_ffff_ffff_ffffn;
    i++;
  }
  return { value: v, end: i };
}

/**
 * parseReserveMem - the value of one reserve_mem= word, checked as
 * reserve_mem() checks it: size non-zero and followed by ':', align
 * followed by ':' (below SMP_CACHE_BYTES it becomes SMP_CACHE_BYTES), name
 * 1..RESERVE_MEM_NAME_SIZE-1 bytes and not all blanks. khosim adds what
 * its model needs: align a power of two (memblock's round_down assumes it)
 * and size a whole number of pages (v6.16's kho_preserve_phys refuses
 * anything else, which would fail the finalize notifier).
 * @value: the text after "reserve_mem="
 * @index: the word's position, for the error
 */
export function parseReserveMem(value: string, index: number): ReserveMemParam {
  const bad = (why: string): never => {
    throw new ReserveMemError(index, `reserve_mem=${value}: ${why}`);
  };
  const sz = memparse(value, 0);
  if (sz.end === 0 || sz.value === 0n) bad("size is missing or 0 (expected nn:align:name)");
  if (value[sz.end] === "@") bad("a fixed address (nn@addr:name) is not modelled");
  if (value[sz.end] !== ":") bad(`expected ':' after the size at column ${sz.end}`);
  const al = memparse(value, sz.end + 1);
  if (value[al.end] !== ":") bad(`expected ':' after the alignment at column ${al.end}`);
  const name = value.slice(al.end + 1);
  if (name.length === 0 || Buffer.byteLength(name) >= RESERVE_MEM_NAME_SIZE) bad(`name must be 1..${RESERVE_MEM_NAME_SIZE - 1} bytes`);
  if (/^\s+$/.test(name)) bad("name is only blanks");
  if (!/^[\x21-\x7e]+$/.test(name) || name.includes("/")) bad("name must be printable ASCII without '/' (it becomes an FDT node name)");
  if (sz.value >= 2n ** 53n) bad(`size ${hex(sz.value)} is too large`);
  if (al.value >= 2n ** 53n) bad(`alignment ${hex(al.value)} is too large`);
  const size = Number(sz.value);
  let align = Number(al.value);
  if (align < SMP_CACHE_BYTES) align = SMP_CACHE_BYTES;
  if (2 ** Math.round(Math.log2(align)) !== align) bad(`alignment ${hex(align)} is not a power of two`);
  if (size % PAGE_SIZE !== 0) bad(`size ${hex(size)} is not a multiple of the page size (4K)`);
  return { name, size, align };
}

/**
 * parseReserveMemCmdline - every reserve_mem= word of the command line
 * @cmdline (words split on blanks; other words are ignored), in order,
 * with the table's limits: at most RESERVE_MEM_MAX_ENTRIES and no name twice
 * (reserve_mem() refuses both with -EBUSY).
 */
export function parseReserveMemCmdline(cmdline: string): ReserveMemParam[] {
  const out: ReserveMemParam[] = [];
  const words = cmdline.split(/\s+/).filter((w) => w.startsWith("reserve_mem="));
  words.forEach((w, i) => {
    if (out.length >= RESERVE_MEM_MAX_ENTRIES) throw new ReserveMemError(i, `${w}: no more room for reserved memory (at most ${RESERVE_MEM_MAX_ENTRIES} entries)`);
    const p = parseReserveMem(w.slice("reserve_mem=".length), i);
    if (out.some((q) => q.name === p.name)) throw new ReserveMemError(i, `${w}: name "${p.name}" was already used`);
    out.push(p);
  });
  return out;
}

/**
 * reserveMemAlloc - reserve_mem()'s fresh allocation: memblock_phys_alloc
 * (top-down, below the current limit) of @p.size aligned to @p.align.
 * Returns the table row, or undefined when memblock has no room (the kernel
 * logs "reserve_mem: memblock allocation failed" and boots on).
 */
export function reserveMemAlloc(mb: Memblock, p: ReserveMemParam): ReserveMemEntry | undefined {
  const start = mb.memblockPhysAlloc(p.size, p.align);
  return start === 0 ? undefined : { name: p.name, start, size: p.size };
}

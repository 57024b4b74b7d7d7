/* What every successor does before KHO: the error for a machine that cannot boot, and the early allocations. */
import { PAGE_SIZE } from "../../abi/page.js";
import { hex } from "../../lib/bytes.js";
import { Memblock, MemblockError } from "../../mm/memblock/index.js";
import { memmapSize } from "../../mm/machine.js";

/** The machine cannot boot at all (e.g. scratch too small for the memmap). */
export class UnusableInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UnusableInputError";
  }
}

/**
 * earlyAllocations - the early allocations a booting kernel makes from @mb,
 * sized from @ramSize: memmap and page tables. Returns the bytes allocated;
 * throws UnusableInputError when they do not fit.
 */
export function earlyAllocations(mb: Memblock, ramSize: number): number {
  const sizes = [memmapSize(ramSize), Math.ceil(ramSize / 512 / PAGE_SIZE) * PAGE_SIZE];
  let total = 0;
  for (const size of sizes) {
    try {
      mb.memblockAllocOrThrow(size, PAGE_SIZE);
    } catch (e) {
      if (e instanceof MemblockError) throw new UnusableInputError(`early allocation of ${hex(size)} bytes failed: ${e.message}`);
      throw e;
    }
    total += size;
  }
  return total;
}

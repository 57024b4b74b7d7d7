/*
 * What the fdt-*.test.ts files share beyond the arbitraries and the blob
 * assembler of fdt-arbitraries.ts.
 */
import { FdtError } from "../src/fdt/index.js";
import { thrownBy } from "./thrown.js";

/** thrown - the FdtError @f throws (thrownBy). */
export function thrown(f: () => unknown): FdtError {
  return thrownBy(FdtError, f);
}

/*
 * What the fdt-*.test.ts files share beyond the arbitraries and the blob
 * assembler of fdt-arbitraries.ts.
 */
import { FdtError } from "../src/fdt/index.js";

/**
 * thrown - run @f and return the FdtError it throws; anything else it
 * throws is rethrown, and returning normally is itself an error.
 * @f: the call expected to fail
 */
export function thrown(f: () => unknown): FdtError {
  try {
    f();
  } catch (e) {
    if (e instanceof FdtError) return e;
    throw e;
  }
  throw new Error("expected an FdtError, nothing was thrown");
}

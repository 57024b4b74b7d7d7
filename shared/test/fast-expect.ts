/*
 * Cheap forms of expect(...).toBe and expect(...).toEqual for hot loops.
 *
 * vitest's expect() costs microseconds per call (a chai assertion object,
 * state and, for toEqual, the generic deep-equality walk), which dominated
 * the model-based and scale tests that assert per page or per step. These
 * compare first and call the real matcher only when the quick comparison
 * does not prove equality, so every assertion passes and fails exactly as
 * before, with vitest's message and diff on failure.
 */
import { expect } from "vitest";

function isPlainObject(x: object): boolean {
  const proto = Object.getPrototypeOf(x);
  return proto === Object.prototype || proto === null;
}

/*
 * strictEqual - true only if @a and @b are equal in a sense that implies
 * toEqual: Object.is on primitives, same length and elements on plain
 * arrays (their elements only: the tests compare arrays built as lists), same
 * own enumerable keys and values and no symbol keys on plain objects.
 * Anything else (class instances, typed arrays, asymmetric matchers) returns
 * false, leaving the decision to toEqual.
 */
function strictEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    if (Object.getPrototypeOf(a) !== Array.prototype || Object.getPrototypeOf(b) !== Array.prototype) return false;
    for (let i = 0; i < a.length; i++) {
      if (!(i in a) || !(i in b)) return false; // holes: toEqual decides
      if (!strictEqual(a[i], b[i])) return false;
    }
    return true;
  }
  if (Array.isArray(b) || !isPlainObject(a) || !isPlainObject(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  if (Object.getOwnPropertySymbols(a).length !== 0 || Object.getOwnPropertySymbols(b).length !== 0) return false;
  for (const k of ka) {
    if (!Object.prototype.hasOwnProperty.call(b, k)) return false;
    if (!strictEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  }
  return true;
}

/** expectBe - expect(@got).toBe(@want), calling expect only when Object.is fails. */
export function expectBe(got: unknown, want: unknown): void {
  if (!Object.is(got, want)) expect(got).toBe(want);
}

/** expectEqual - expect(@got).toEqual(@want), calling expect only when a strict comparison fails. */
export function expectEqual(got: unknown, want: unknown): void {
  if (!strictEqual(got, want)) expect(got).toEqual(want);
}

/**
 * withoutStacks - run @fn with Error.stackTraceLimit 0, restored after.
 * For loops that make and catch thousands of errors and read only their
 * code and message: capturing a stack under vitest and fast-check (dozens of
 * frames) cost more than the work tested. Assertions belong outside @fn, so
 * their failures keep their stacks.
 */
export function withoutStacks<T>(fn: () => T): T {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return fn();
  } finally {
    Error.stackTraceLimit = limit;
  }
}

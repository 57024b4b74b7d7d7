/*
 * The error a call is expected to throw, of one class: for tests that then
 * assert its code, offset and message.
 */

/**
 * thrownBy - run @f and return the @cls it throws; anything else it throws
 * is rethrown, and returning normally is itself an error.
 * @cls: the error class expected
 * @f: the call expected to fail
 */
export function thrownBy<E extends Error>(cls: abstract new (...args: never[]) => E, f: () => unknown): E {
  try {
    f();
  } catch (e) {
    if (e instanceof cls) return e;
    throw e;
  }
  throw new Error(`expected a ${cls.name}, nothing was thrown`);
}

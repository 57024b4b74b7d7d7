/*
 * test.prop without @fast-check/vitest.
 *
 * @fast-check/vitest 0.5 builds its `test` at import by walking every
 * chainable modifier of vitest 4's `test` (skip, only, concurrent, ...) in
 * every order, creating a chain object per step: importing it takes ~5 s of
 * CPU (17-21 s on the loaded 2-core machine), once per worker. This module
 * does what its `test.prop(arbitraries, params)(name, prop, timeout)` does for
 * these tests: one vitest test named "NAME (with seed=SEED)" that runs
 * fc.assert over fc.asyncProperty with the same parameters, the seed taken
 * from params, else fc.configureGlobal, else drawn as the package draws it.
 * The package also runs a suite's beforeEach/afterEach hooks around each
 * run; no test using this module has such hooks.
 */
import * as fc from "fast-check";
import { test as vitestTest } from "vitest";

type ArbitraryTuple<Ts extends unknown[]> = { [P in keyof Ts]: fc.Arbitrary<Ts[P]> };
type Prop<Ts extends unknown[]> = (...args: Ts) => boolean | void | PromiseLike<boolean | void>;

/**
 * prop - a property test over @arbitraries, run by fc.assert with @params.
 * @arbitraries: one arbitrary per argument of the property.
 * @params: fast-check parameters (numRuns, seed, ...).
 *
 * Returns a function (name, prop, timeout?) that declares the vitest test.
 */
function prop<Ts extends unknown[]>(arbitraries: ArbitraryTuple<Ts>, params?: fc.Parameters<Ts>) {
  return (testName: string, property: Prop<Ts>, timeout?: number): void => {
    const customParams: fc.Parameters<Ts> = { ...params };
    if (customParams.seed === undefined) {
      const seedFromGlobals = fc.readConfigureGlobal().seed;
      customParams.seed = seedFromGlobals ?? Date.now() ^ (Math.random() * 4294967296);
    }
    if (customParams.interruptAfterTimeLimit === undefined) {
      customParams.interruptAfterTimeLimit = fc.readConfigureGlobal().interruptAfterTimeLimit;
    }
    const asyncProp = (...args: Ts) => Promise.resolve(property(...args));
    const instance = fc.asyncProperty(...(arbitraries as unknown as [fc.Arbitrary<unknown>]), asyncProp as never);
    vitestTest(
      `${testName} (with seed=${customParams.seed})`,
      async () => {
        await fc.assert(instance as never, customParams as never);
      },
      timeout,
    );
  };
}

export const test = { prop };
export { fc };

/*
 * Start-up stays lean: a kernel process reads its bundle
 * (scripts/build/bundle.mjs) and only the vendor bundles its run uses.
 *
 * - What each kernel bundle holds (the build's list of bundle inputs): no
 *   zod, no report schemas (abi/handoff-json), no tool, test or build code,
 *   and not the lazily loaded packages (dist/vendor/ has them).
 * - What a kernel run reads: a preload records the files loaded as modules
 *   (require.cache at exit) and node's own modules: --help reads its bundle
 *   alone; a run adds pino and xxhash64, whatever its log format;
 *   nothing goes through the ESM loader. The bundles' stand-ins keep
 *   child_process, crypto and assert unloaded until used (kernel-a's handoff
 *   write uses crypto for the image extents file's checksum).
 * (Speed itself is measured by `npm run bench`, never by a timed test.)
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, expect, test } from "vitest";
import { defaultScenario, parseScenario } from "@khosim/shared/kho";
import { KERNEL_A, KERNEL_B, ROOT, type RunResult } from "../src/run.js";
import { runKernelAsync } from "./handoff-helpers.js";
import { expectHelp } from "./procs-helpers.js";
// @ts-expect-error: plain JavaScript without declarations (it runs before anything is built)
import { BUNDLE_INPUTS } from "../build/build.mjs";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "khosim-startup-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/*
 * A CommonJS preload (-r): the bundles are CommonJS, and a module read
 * through the ESM loader instead shows as the loader's translators.
 */
const PRELOAD = path.join(tmp, "preload.cjs");
fs.writeFileSync(
  PRELOAD,
  `const fs = require("node:fs");
process.on("exit", () => {
  const builtins = process.moduleLoadList.filter((m) => m.startsWith("NativeModule ")).map((m) => m.slice(13));
  fs.writeFileSync(process.env.KHOSIM_MODLOG, JSON.stringify({ files: Object.keys(require.cache), builtins }));
});
`,
);

interface Loaded {
  /** Files read as modules, the preload excluded. */
  files: string[];
  /** node's own modules loaded, in load order. */
  builtins: string[];
}

/** loaded - what @main read and which node modules it loaded when run with @args (the run must exit with @status); its output in @run. */
async function loaded(name: string, main: string, args: string[], status = 0): Promise<Loaded & { run: RunResult }> {
  const log = path.join(tmp, `${name}.json`);
  const run = await runKernelAsync(main, args, { nodeOptions: ["-r", PRELOAD], env: { KHOSIM_MODLOG: log } });
  expect(run.status, run.stderr).toBe(status);
  const l = JSON.parse(fs.readFileSync(log, "utf8")) as Loaded;
  return { files: l.files.filter((f) => f !== PRELOAD), builtins: l.builtins, run };
}

const VENDOR = path.join(ROOT, "dist/vendor");

/** reads - the files @l read besides @main: the vendor bundles' names; fails on any other file or on the ESM loader. */
function reads(l: Loaded, main: string): string[] {
  expect(l.files[0]).toBe(main);
  expect(l.files.filter((f) => f !== main && path.dirname(f) !== VENDOR)).toEqual([]);
  expect(l.builtins, "the check sees node's modules at all").toContain("fs");
  expect(l.builtins.filter((m) => m.startsWith("internal/modules/esm/translators"))).toEqual([]);
  return l.files.filter((f) => f !== main).map((f) => path.basename(f, ".cjs")).sort();
}

const LAZY = ["assert", "child_process", "crypto"];

/** lazyLoaded - which of the node modules the bundles load on first use @l loaded. */
function lazyLoaded(l: Loaded): string[] {
  return l.builtins.filter((m) => LAZY.includes(m)).sort();
}

test("the default scenario is what parseScenario makes of it", () => {
  expect(defaultScenario()).toEqual(parseScenario({ description: defaultScenario().description }, "(default scenario)"));
});

test("the kernel bundles hold no zod, report schema, tool, test or build code, nor the vendor packages", () => {
  const inputs = JSON.parse(fs.readFileSync(BUNDLE_INPUTS, "utf8")) as Record<string, string[]>;
  const forbidden = /^node_modules\/(zod|fast-check|@fast-check|playwright-core|@sparticuz|vitest|typescript|tsx|esbuild|pino|cli-progress|hash-wasm)\/|^scripts\/|\/test\/|abi\/handoff-json/;
  for (const k of [KERNEL_A, KERNEL_B]) {
    const mine = inputs[path.relative(ROOT, k)];
    expect(mine, `${k} in ${BUNDLE_INPUTS}`).toBeDefined();
    expect(mine!.some((f) => f.startsWith("shared/dist/kho/")), "the check sees inputs at all").toBe(true);
    expect(mine!.filter((f) => forbidden.test(f))).toEqual([]);
  }
  // The same list shows zod where it belongs (the tools that check report schemas) and pino in its vendor bundle.
  expect(inputs["dist/scripts/fuzz.cjs"]!.some((f) => f.startsWith("node_modules/zod/"))).toBe(true);
  expect(inputs["dist/vendor/pino.cjs"]!.some((f) => f.startsWith("node_modules/pino/"))).toBe(true);
});

test("kernel-a and kernel-b --help read their bundle alone and load none of the lazy node modules", async () => {
  // These are the suite's --help runs of the kernels: cli.test.ts's convention is checked on them here.
  const runs = await Promise.all([loaded("a-help", KERNEL_A, ["--help"]), loaded("b-help", KERNEL_B, ["--help"])]);
  for (const [i, l] of runs.entries()) {
    const main = [KERNEL_A, KERNEL_B][i]!;
    expectHelp(path.basename(path.dirname(main)), l.run);
    expect(reads(l, main)).toEqual([]);
    expect(lazyLoaded(l)).toEqual([]);
  }
});

test("a handoff reads pino and xxhash64 and nothing else, with JSON or pretty logs", async () => {
  const out = path.join(tmp, "h");
  const scenario = path.join(tmp, "empty.json");
  fs.writeFileSync(scenario, JSON.stringify({ machine: { ram: "256M" }, ops: [] }));
  const a = await loaded("a-file", KERNEL_A, ["--out", out, "--scenario", scenario, "--log-format", "json"]);
  expect(reads(a, KERNEL_A)).toEqual(["pino", "xxhash64"]);
  expect(lazyLoaded(a)).toEqual(["crypto"]);
  // Two successors of the same handoff, side by side (each writes only its report).
  const [b, pretty] = await Promise.all([
    loaded("b-json", KERNEL_B, ["--in", out, "--log-format", "json", "--report", path.join(tmp, "b-json-successor.json")]),
    loaded("b-pretty", KERNEL_B, ["--in", out, "--log-format", "pretty", "--report", path.join(tmp, "b-pretty-successor.json")]),
  ]);
  expect(reads(b, KERNEL_B)).toEqual(["pino", "xxhash64"]);
  expect(lazyLoaded(b)).toEqual([]);
  expect(reads(pretty, KERNEL_B)).toEqual(["pino", "xxhash64"]);
});

/*
 * Start-up stays lean: a kernel process reads one JavaScript file, its
 * bundle (scripts/build/bundle.mjs), and evaluates only what its run needs.
 *
 * - What each kernel bundle holds (the build's list of bundle inputs): no
 *   zod, no report schemas (abi/handoff-json), no tool, test or build code.
 * - What a kernel run reads: a preload records the files loaded as modules
 *   (require.cache at exit) and node's own modules: nothing but the bundle,
 *   and nothing through the ESM loader, for --help and for real runs.
 * - What a run evaluates: packages inside the bundle run on first require(),
 *   which is seen from outside through node's own modules they load
 *   (process.moduleLoadList): pino loads worker_threads (thread-stream),
 *   pino-pretty tty (colorette), the image extents crypto; the bundles' lazy
 *   stand-ins keep child_process, crypto and assert unloaded until used.
 * (Speed itself is measured by `npm run bench`, never by a timed test.)
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, expect, test } from "vitest";
import { defaultScenario, parseScenario } from "@khosim/shared/kho";
import { KERNEL_A, KERNEL_B, ROOT, nodeArgs } from "../src/run.js";
// @ts-expect-error: plain JavaScript without declarations (it runs before anything is built)
import { BUNDLE_INPUTS } from "../build/build.mjs";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "khosim-startup-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/*
 * A CommonJS preload (-r), not ESM hooks: registering hooks starts a worker
 * thread, which would hide pino's worker_threads. The bundles are CommonJS;
 * a module read through the ESM loader instead shows as its translators.
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

/** loaded - what @main read and which node modules it loaded when run with @args (the run must exit with @status). */
function loaded(name: string, main: string, args: string[], status = 0): Loaded {
  const log = path.join(tmp, `${name}.json`);
  const r = spawnSync(process.execPath, ["-r", PRELOAD, ...nodeArgs(main, args)], { cwd: ROOT, encoding: "utf8", env: { ...process.env, KHOSIM_MODLOG: log } });
  expect(r.status, r.stderr).toBe(status);
  const l = JSON.parse(fs.readFileSync(log, "utf8")) as Loaded;
  return { files: l.files.filter((f) => f !== PRELOAD), builtins: l.builtins };
}

/** readsOnly - @l read @main and nothing else, and no module through the ESM loader. */
function readsOnly(l: Loaded, main: string): void {
  expect(l.files).toEqual([main]);
  expect(l.builtins, "the check sees node's modules at all").toContain("fs");
  expect(l.builtins.filter((m) => m.startsWith("internal/modules/esm/translators"))).toEqual([]);
}

/* Modules whose loading shows that a bundled package ran (see the header). */
const PINO = "worker_threads";
const PINO_PRETTY = "tty";
const LAZY = ["assert", "child_process", "crypto"];

/** seen - which of pino's, pino-pretty's and the lazy node modules @l loaded, sorted. */
function seen(l: Loaded): string[] {
  return l.builtins.filter((m) => [PINO, PINO_PRETTY, ...LAZY].includes(m)).sort();
}

test("the default scenario is what parseScenario makes of it", () => {
  expect(defaultScenario()).toEqual(parseScenario({ description: defaultScenario().description }, "(default scenario)"));
});

test("the kernel bundles hold no zod, report schema, tool, test or build code", () => {
  const inputs = JSON.parse(fs.readFileSync(BUNDLE_INPUTS, "utf8")) as Record<string, string[]>;
  const forbidden = /^node_modules\/(zod|fast-check|@fast-check|playwright-core|@sparticuz|vitest|typescript|tsx|esbuild)\/|^scripts\/|\/test\/|abi\/handoff-json/;
  for (const k of [KERNEL_A, KERNEL_B]) {
    const mine = inputs[path.relative(ROOT, k)];
    expect(mine, `${k} in ${BUNDLE_INPUTS}`).toBeDefined();
    expect(mine!.some((f) => f.startsWith("shared/dist/kho/")), "the check sees inputs at all").toBe(true);
    expect(mine!.filter((f) => forbidden.test(f))).toEqual([]);
  }
  // The same list shows zod where it belongs: in the tools that check report schemas.
  expect(inputs["dist/scripts/fuzz.cjs"]!.some((f) => f.startsWith("node_modules/zod/"))).toBe(true);
});

test("kernel-a and kernel-b --help read only their bundle and run neither pino nor the lazy node modules", () => {
  for (const [name, main] of [["a-help", KERNEL_A], ["b-help", KERNEL_B]] as const) {
    const l = loaded(name, main, ["--help"]);
    readsOnly(l, main);
    expect(seen(l)).toEqual([]);
  }
});

test("a handoff with JSON logs reads only the bundles; pino-pretty runs only for pretty logs", () => {
  const out = path.join(tmp, "h");
  const scenario = path.join(tmp, "empty.json");
  fs.writeFileSync(scenario, JSON.stringify({ machine: { ram: "256M" }, ops: [] }));
  const a = loaded("a-file", KERNEL_A, ["--out", out, "--scenario", scenario, "--log-format", "json"]);
  readsOnly(a, KERNEL_A);
  // crypto: the image extents file's checksum, once the handoff is written.
  expect(seen(a)).toEqual(["crypto", PINO]);
  const b = loaded("b-json", KERNEL_B, ["--in", out, "--log-format", "json"]);
  readsOnly(b, KERNEL_B);
  expect(seen(b)).toEqual([PINO]);
  const pretty = loaded("b-pretty", KERNEL_B, ["--in", out, "--log-format", "pretty"]);
  expect(pretty.builtins).toContain(PINO_PRETTY);
});

/*
 * Start-up stays lean: a kernel process loads only what its run needs. The
 * built kernels run with a preload that records every module loaded (ESM
 * through a resolve hook, CommonJS through require.cache at exit); --help and
 * a kernel-b boot with JSON logs must not load zod, pino-pretty, cli-progress,
 * hash-wasm's all-algorithm index or any test or tool library. (Speed itself
 * is measured by `npm run bench`, never by a timed test.)
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, expect, test } from "vitest";
import { defaultScenario, parseScenario } from "@khosim/shared/kho";
import { KERNEL_A, KERNEL_B, ROOT, nodeArgs } from "../src/run.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "khosim-startup-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const HOOKS = path.join(tmp, "hooks.mjs");
const PRELOAD = path.join(tmp, "preload.mjs");
fs.writeFileSync(
  HOOKS,
  `import * as fs from "node:fs";
export async function resolve(spec, ctx, next) {
  const r = await next(spec, ctx);
  if (process.env.KHOSIM_MODLOG) fs.appendFileSync(process.env.KHOSIM_MODLOG, r.url + "\\n");
  return r;
}
`,
);
fs.writeFileSync(
  PRELOAD,
  `import * as fs from "node:fs";
import { createRequire, register } from "node:module";
import { pathToFileURL } from "node:url";
register(${JSON.stringify(pathToFileURLString(HOOKS))});
const cache = createRequire(import.meta.url).cache;
process.on("exit", () => fs.appendFileSync(process.env.KHOSIM_MODLOG, Object.keys(cache).map((f) => pathToFileURL(f).href).join("\\n") + "\\n"));
`,
);

function pathToFileURLString(p: string): string {
  return new URL(`file://${p}`).href;
}

/** loaded - the modules @main loaded when run with @args (the run must exit with @status). */
function loaded(name: string, main: string, args: string[], status = 0): string[] {
  const log = path.join(tmp, `${name}.log`);
  const r = spawnSync(process.execPath, ["--import", PRELOAD, ...nodeArgs(main, args)], { cwd: ROOT, encoding: "utf8", env: { ...process.env, KHOSIM_MODLOG: log } });
  expect(r.status, r.stderr).toBe(status);
  return fs.readFileSync(log, "utf8").split("\n").filter(Boolean);
}

const HEAVY = /\/node_modules\/(zod|pino-pretty|cli-progress|fast-check|playwright-core|@sparticuz|vitest|typescript|tsx)\/|\/node_modules\/hash-wasm\/dist\/index/;

function heavy(mods: string[]): string[] {
  return [...new Set(mods.filter((m) => HEAVY.test(m)).map((m) => /node_modules\/((@[^/]+\/)?[^/]+)/.exec(m)![1]!))];
}

test("the default scenario is what parseScenario makes of it (so that it needs no zod)", () => {
  expect(defaultScenario()).toEqual(parseScenario({ description: defaultScenario().description }, "(default scenario)"));
});

test("kernel-a and kernel-b --help load no zod, pino-pretty, cli-progress, hash-wasm index or tool/test library", () => {
  const a = loaded("a-help", KERNEL_A, ["--help"]);
  expect(a.some((m) => m.includes("/node_modules/commander/")), "the check sees modules at all").toBe(true);
  expect(heavy(a)).toEqual([]);
  expect(heavy(loaded("b-help", KERNEL_B, ["--help"]))).toEqual([]);
  expect(a.filter((m) => m.includes("/scripts/"))).toEqual([]);
});

test("a handoff with JSON logs: kernel-a loads zod only for a scenario file; kernel-b loads neither zod nor pino-pretty", () => {
  const out = path.join(tmp, "h");
  const scenario = path.join(tmp, "empty.json");
  fs.writeFileSync(scenario, JSON.stringify({ machine: { ram: "256M" }, ops: [] }));
  const withFile = loaded("a-file", KERNEL_A, ["--out", out, "--scenario", scenario, "--log-format", "json"]);
  expect(heavy(withFile)).toEqual(["zod"]);
  expect(withFile.some((m) => m.includes("/node_modules/hash-wasm/dist/xxhash64"))).toBe(true);
  const b = loaded("b-json", KERNEL_B, ["--in", out, "--log-format", "json"]);
  expect(b.some((m) => m.includes("/node_modules/pino/"))).toBe(true);
  expect(heavy(b)).toEqual([]);
  const pretty = loaded("b-pretty", KERNEL_B, ["--in", out, "--log-format", "pretty"]);
  expect(heavy(pretty)).toEqual(["pino-pretty"]);
});

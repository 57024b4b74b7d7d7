/*
 * The build: `tsc -b tsconfig.build.json` (project references: shared, then
 * kernel-a, kernel-b and scripts, each into its dist/; the type check and the
 * per-module JavaScript), then one esbuild bundle per command that an npm
 * script runs (ROOT/dist/<workspace>/<name>.cjs, bundled from tsc's output),
 * then a stamp file whose mtime is the time the build started. Plain
 * JavaScript so that it runs before anything is built.
 *
 * The bundles are what runs (npm scripts, the processes tests and bench
 * spawn): one file per command starts much faster than hundreds of ES
 * modules. They sit two levels below ROOT, like <workspace>/src/*.ts, so that
 * paths computed from import.meta.url and node_modules resolution from the
 * bundle work as from the sources. Packages a module loads lazily stay lazy
 * inside the bundle (see bundle.mjs).
 *
 *   node scripts/build/build.mjs            build (incremental) and stamp
 *   node scripts/build/build.mjs --check    exit 1 with one line if the build is out of date
 *
 * staleReason() is the cheap up-to-date check the launcher and the test setup
 * use: every bundle present and written by the last build, and the newest
 * mtime of any file or directory under the workspaces' src/ (a directory's
 * mtime changes when a file is added, removed or renamed), their package.json
 * and tsconfig files, the lock file and this file, against the stamp. It
 * takes a few ms.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const WORKSPACES = ["shared", "kernel-a", "kernel-b", "scripts"];
export const STAMP = path.join(ROOT, "node_modules/.cache/khosim/build-stamp");
/** Where the bundles go: ROOT/dist/<workspace>/<name>.cjs. */
export const BUNDLE_DIR = path.join(ROOT, "dist");
/** The inputs of each bundle (esbuild's metafile, reduced): { "dist/WS/NAME.cjs": [input paths relative to ROOT] }. */
export const BUNDLE_INPUTS = path.join(ROOT, "node_modules/.cache/khosim/bundle-inputs.json");

/**
 * VENDOR - the packages shared's modules load lazily (createRequire), each
 * bundled alone into dist/vendor/NAME.cjs and loaded from there on first use
 * (bundle.mjs): package specifier -> NAME.
 */
export const VENDOR = {
  pino: "pino",
  "pino-pretty": "pino-pretty",
  "cli-progress": "cli-progress",
  "hash-wasm/dist/xxhash64.umd.min.js": "xxhash64",
};

/** vendorEntries - [{ spec, out }] for VENDOR, out = ROOT/dist/vendor/NAME.cjs. */
export function vendorEntries() {
  return Object.entries(VENDOR).map(([spec, name]) => ({ spec, out: path.join(BUNDLE_DIR, "vendor", `${name}.cjs`) }));
}

/**
 * bundleEntries - the commands to bundle, from the root package.json's npm
 * scripts (`node scripts/build/launch.mjs dist/WS/NAME.cjs`): [{ out, from }]
 * with out = ROOT/dist/WS/NAME.cjs and from = ROOT/WS/dist/NAME.js (tsc's).
 */
export function bundleEntries() {
  const scripts = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")).scripts ?? {};
  const out = new Map();
  for (const cmd of Object.values(scripts)) {
    const m = /launch\.mjs dist\/([^/\s]+)\/(\S+)\.cjs/.exec(cmd);
    if (m) out.set(`${m[1]}/${m[2]}`, { out: path.join(BUNDLE_DIR, m[1], `${m[2]}.cjs`), from: path.join(ROOT, m[1], "dist", `${m[2]}.js`) });
  }
  return [...out.values()];
}

/** newest - the newest mtime (ms) at or under @p and the path that has it. */
function newest(p, best) {
  let st;
  try {
    st = fs.statSync(p);
  } catch {
    return best;
  }
  if (st.mtimeMs > best.mtimeMs) best = { mtimeMs: st.mtimeMs, file: p };
  if (st.isDirectory()) for (const e of fs.readdirSync(p)) best = newest(path.join(p, e), best);
  return best;
}

/** staleReason - why the build is out of date, or undefined when it is current. */
export function staleReason() {
  let stamp;
  try {
    stamp = fs.statSync(STAMP).mtimeMs;
  } catch {
    return "never built";
  }
  for (const w of WORKSPACES) {
    if (!fs.existsSync(path.join(ROOT, w, "dist/.tsbuildinfo"))) return `${w}/dist is missing`;
  }
  for (const e of [...bundleEntries(), ...vendorEntries()]) {
    let st;
    try {
      st = fs.statSync(e.out);
    } catch {
      return `${path.relative(ROOT, e.out)} is missing`;
    }
    // A bundle older than the stamp was not written by the last build.
    if (st.mtimeMs < stamp) return `${path.relative(ROOT, e.out)} predates the last build`;
  }
  let best = { mtimeMs: -1, file: "" };
  for (const f of ["tsconfig.base.json", "tsconfig.build.json", "package.json", "package-lock.json", "scripts/build/build.mjs", "scripts/build/bundle.mjs"]) best = newest(path.join(ROOT, f), best);
  for (const w of WORKSPACES) {
    for (const f of ["src", "tsconfig.json", "package.json"]) best = newest(path.join(ROOT, w, f), best);
  }
  return best.mtimeMs > stamp ? `${path.relative(ROOT, best.file)} changed since the last build` : undefined;
}

/** bundle - run bundle.mjs (esbuild, one bundle per command); returns { status, output } like build(). */
export function bundle(stdio = "inherit") {
  const r = spawnSync(process.execPath, [path.join(ROOT, "scripts/build/bundle.mjs")], { cwd: ROOT, stdio: stdio === "inherit" ? "inherit" : "pipe", encoding: "utf8" });
  return { status: r.status ?? 1, output: `${r.stdout ?? ""}${r.stderr ?? ""}` };
}

/**
 * build - run tsc -b, bundle the commands and stamp; returns { status,
 * output } with status 0 on success.
 * @stdio: "inherit" shows tsc's errors, "pipe" returns them in .output.
 */
export function build(stdio = "inherit") {
  const started = Date.now();
  let tsc;
  try {
    tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
  } catch {
    return { status: 1, output: "khosim: the build needs typescript, which is not installed: run npm ci\n" };
  }
  const r = spawnSync(process.execPath, [tsc, "-b", path.join(ROOT, "tsconfig.build.json")], { cwd: ROOT, stdio: stdio === "inherit" ? "inherit" : "pipe", encoding: "utf8" });
  if ((r.status ?? 1) !== 0) return { status: r.status ?? 1, output: `${r.stdout ?? ""}${r.stderr ?? ""}` };
  const b = bundle(stdio);
  const status = b.status;
  if (status === 0) {
    fs.mkdirSync(path.dirname(STAMP), { recursive: true });
    fs.writeFileSync(STAMP, `built by scripts/build/build.mjs at ${new Date(started).toISOString()}\n`);
    fs.utimesSync(STAMP, started / 1000, started / 1000);
  }
  return { status, output: `${r.stdout ?? ""}${r.stderr ?? ""}${b.output}` };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (process.argv.includes("--check")) {
    const why = staleReason();
    if (why) process.stderr.write(`khosim: the build is out of date (${why}): run npm run build\n`);
    process.exitCode = why ? 1 : 0;
  } else {
    const r = build("inherit");
    if (r.status !== 0) process.stderr.write(r.output || "khosim: build failed (tsc -b tsconfig.build.json, then esbuild)\n");
    process.exitCode = r.status;
  }
}

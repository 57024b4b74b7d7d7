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
 * staleReason() (stale.cjs) is the cheap up-to-date check the launcher and
 * the test setup use: every bundle present and written by the last build, and
 * the newest mtime of any file or directory under the workspaces' src/ (a
 * directory's mtime changes when a file is added, removed or renamed), their
 * package.json and tsconfig files, the lock file and the build's own files,
 * against the stamp. It takes a few ms.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import stale from "./stale.cjs";

export const { ROOT, WORKSPACES, STAMP, BUNDLE_DIR, BUNDLE_INPUTS, VENDOR, vendorEntries, bundleEntries, staleReason } = stale;

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

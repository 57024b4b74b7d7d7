/*
 * The build's layout and its up-to-date check, in CommonJS so that the
 * launcher (launch.cjs) starts without node's ESM loader; build.mjs
 * re-exports all of it. See build.mjs for the build itself.
 */
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const ROOT = path.resolve(__dirname, "../..");
const WORKSPACES = ["shared", "kernel-a", "kernel-b", "scripts"];
const STAMP = path.join(ROOT, "node_modules/.cache/khosim/build-stamp");
/** Where the bundles go: ROOT/dist/<workspace>/<name>.cjs. */
const BUNDLE_DIR = path.join(ROOT, "dist");
/** The inputs of each bundle (esbuild's metafile, reduced): { "dist/WS/NAME.cjs": [input paths relative to ROOT] }. */
const BUNDLE_INPUTS = path.join(ROOT, "node_modules/.cache/khosim/bundle-inputs.json");

/**
 * VENDOR - the packages shared's modules load lazily (createRequire), each
 * bundled alone into dist/vendor/NAME.cjs and loaded from there on first use
 * (bundle.mjs): package specifier -> NAME.
 */
const VENDOR = {
  pino: "pino",
  "cli-progress": "cli-progress",
  "hash-wasm/dist/xxhash64.umd.min.js": "xxhash64",
};

/** vendorEntries - [{ spec, out }] for VENDOR, out = ROOT/dist/vendor/NAME.cjs. */
function vendorEntries() {
  return Object.entries(VENDOR).map(([spec, name]) => ({ spec, out: path.join(BUNDLE_DIR, "vendor", `${name}.cjs`) }));
}

/**
 * bundleEntries - the commands to bundle, from the root package.json's npm
 * scripts (`node scripts/build/launch.cjs dist/WS/NAME.cjs`): [{ out, from }]
 * with out = ROOT/dist/WS/NAME.cjs and from = ROOT/WS/dist/NAME.js (tsc's).
 */
function bundleEntries() {
  const scripts = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")).scripts ?? {};
  const out = new Map();
  for (const cmd of Object.values(scripts)) {
    const m = /launch\.cjs dist\/([^/\s]+)\/(\S+)\.cjs/.exec(cmd);
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
function staleReason() {
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
  for (const f of ["tsconfig.base.json", "tsconfig.build.json", "package.json", "package-lock.json", "scripts/build/build.mjs", "scripts/build/bundle.mjs", "scripts/build/stale.cjs"]) best = newest(path.join(ROOT, f), best);
  for (const w of WORKSPACES) {
    for (const f of ["src", "tsconfig.json", "package.json"]) best = newest(path.join(ROOT, w, f), best);
  }
  return best.mtimeMs > stamp ? `${path.relative(ROOT, best.file)} changed since the last build` : undefined;
}

module.exports = { ROOT, WORKSPACES, STAMP, BUNDLE_DIR, BUNDLE_INPUTS, VENDOR, vendorEntries, bundleEntries, staleReason };

/*
 * The bundling step of the build (build.mjs runs it as a child process, after
 * tsc -b, because esbuild's plugins need its asynchronous API): one esbuild
 * bundle (CommonJS) per command an npm script runs, from tsc's output in
 * WS/dist/ into ROOT/dist/WS/NAME.cjs, and the list of what went into each
 * (BUNDLE_INPUTS). Exit 0 bundled, 1 esbuild failed (its first error on one line).
 *
 *   node scripts/build/bundle.mjs
 *
 * Lazily loaded packages stay lazy, each in a bundle of its own: shared's
 * modules load CommonJS packages on first use through
 * createRequire(import.meta.url) (pino, cli-progress, hash-wasm's
 * xxhash64; see VENDOR in build.mjs), which esbuild does not follow. The
 * plugin below turns those calls into require("../vendor/NAME.cjs"), a
 * one-file bundle of the package in ROOT/dist/vendor/. So a run reads and
 * evaluates only what it uses, without resolving and reading dozens of files
 * from node_modules (pino alone is 60 of them), and --help reads none of it.
 */
import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as path from "node:path";
import { BUNDLE_DIR, BUNDLE_INPUTS, ROOT, VENDOR, bundleEntries, vendorEntries } from "./build.mjs";

/*
 * CommonJS, not ESM: node 20 starts a CommonJS main synchronously, while an
 * ES module main goes through the asynchronous ESM loader (fs/promises and
 * readline among what it loads), which cost ~15 ms more per process here.
 * import.meta.url (run.ts finds ROOT with it) becomes the bundle's own URL.
 */
const BANNER = 'const __khosimImportMetaUrl = require("node:url").pathToFileURL(__filename).href;';

const CREATE_REQUIRE = "createRequire(import.meta.url)";

/**
 * lazyRequire - rewrite shared's createRequire(import.meta.url)(X) calls into
 * require(X), and X, when a VENDOR package, into its bundle in dist/vendor/
 * (other packages so required are bundled in place).
 */
const lazyRequire = {
  name: "khosim-lazy-require",
  setup(b) {
    const specs = Object.keys(VENDOR);
    b.onResolve({ filter: /^[^.]/ }, (args) => (args.kind === "require-call" && specs.includes(args.path) ? { path: `../vendor/${VENDOR[args.path]}.cjs`, external: true } : undefined));
    b.onLoad({ filter: /[\\/]shared[\\/]dist[\\/].*\.js$/ }, (args) => {
      const text = fs.readFileSync(args.path, "utf8");
      if (!text.includes(CREATE_REQUIRE)) return undefined;
      const contents = text
        .replace(/^const require = createRequire\(import\.meta\.url\);$/m, "")
        .replaceAll(`${CREATE_REQUIRE}(`, "require(");
      return { contents, loader: "js" };
    });
  },
};

/*
 * Some of node's own modules cost more to load than the rest of a kernel's
 * start-up, and a run uses them late if at all: child_process (commander,
 * only for executable subcommands; mm/image.ts to copy a base image), crypto
 * (the image extents file's checksum), assert (sonic-boom, pino's writer,
 * only for a failed check; loading it sets up colours and process.stderr).
 * Inside the bundles each becomes a stand-in of getters that loads the real
 * module on first use; assert's is a function, as its module.exports is
 * called. (A module used with `new` or `extends`, as events is, cannot be
 * stood in for this way.)
 */
const LAZY_BUILTINS = ["assert", "child_process", "crypto"];
const LAZY_NS = "khosim-lazy-builtin";

const lazyBuiltins = {
  name: "khosim-lazy-builtins",
  setup(b) {
    b.onResolve({ filter: new RegExp(`^(node:)?(${LAZY_BUILTINS.join("|")})$`) }, (args) =>
      // The stand-in's own require() is the real module.
      args.namespace === LAZY_NS ? { path: args.path, external: true } : { path: args.path.replace(/^node:/, ""), namespace: LAZY_NS },
    );
    b.onLoad({ filter: /.*/, namespace: LAZY_NS }, (args) => {
      const real = createRequire(import.meta.url)(`node:${args.path}`);
      const keys = Object.keys(real).sort();
      const contents =
        `let m;\n` +
        (typeof real === "function" ? `const o = function (...a) { return (m ??= require("node:${args.path}")).apply(this, a); };\n` : `const o = {};\n`) +
        `for (const k of ${JSON.stringify(keys)}) Object.defineProperty(o, k, { enumerable: true, get: () => (m ??= require("node:${args.path}"))[k] });\n` +
        `module.exports = o;\n`;
      return { contents, loader: "js" };
    });
  },
};

let esbuild;
try {
  esbuild = createRequire(import.meta.url)("esbuild");
} catch {
  process.stderr.write("khosim: the build needs esbuild, which is not installed: run npm ci\n");
  process.exit(1);
}
const resolve = createRequire(path.join(ROOT, "shared/package.json")).resolve;
const entries = [
  ...bundleEntries().map((e) => ({ in: e.from, out: path.relative(BUNDLE_DIR, e.out).replace(/\.cjs$/, "") })),
  ...vendorEntries().map((e) => ({ in: resolve(e.spec), out: path.relative(BUNDLE_DIR, e.out).replace(/\.cjs$/, "") })),
];
let result;
try {
  result = await esbuild.build({
    entryPoints: entries,
    outdir: BUNDLE_DIR,
    outExtension: { ".js": ".cjs" },
    bundle: true,
    platform: "node",
    format: "cjs",
    define: { "import.meta.url": "__khosimImportMetaUrl" },
    target: "node20",
    // Less text for V8 to scan at start-up; identifiers kept for readable stacks (KHOSIM_DEBUG=1).
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: "none",
    banner: { js: BANNER },
    plugins: [lazyRequire, lazyBuiltins],
    metafile: true,
    absWorkingDir: ROOT,
    logLevel: "silent",
  });
} catch (e) {
  const first = e.errors?.[0];
  const where = first?.location ? `${first.location.file}:${first.location.line}: ` : "";
  process.stderr.write(`khosim: esbuild: ${where}${first?.text ?? e.message}\n`);
  process.exit(1);
}

// Which source files and packages went into each bundle (scripts/test/startup.test.ts reads it).
const inputs = {};
for (const [out, o] of Object.entries(result.metafile.outputs).sort(([a], [b]) => (a < b ? -1 : 1))) inputs[out] = Object.keys(o.inputs).sort();
fs.mkdirSync(path.dirname(BUNDLE_INPUTS), { recursive: true });
fs.writeFileSync(BUNDLE_INPUTS, JSON.stringify(inputs, null, 1) + "\n");

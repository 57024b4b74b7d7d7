/*
 * The bundling step of the build (build.mjs runs it as a child process, after
 * tsc -b, because esbuild's plugins need its asynchronous API): one esbuild
 * bundle (CommonJS) per command an npm script runs, from tsc's output in
 * WS/dist/ into ROOT/dist/WS/NAME.cjs. Exit 0 bundled, 1 esbuild failed (its first error on one line).
 *
 *   node scripts/build/bundle.mjs
 *
 * Lazily loaded packages stay lazy but come from the bundle: shared's modules
 * load CommonJS packages on first use through createRequire(import.meta.url)
 * (pino, pino-pretty, cli-progress, hash-wasm's xxhash64), which esbuild does
 * not follow. The plugin below turns those calls into plain require() calls,
 * which esbuild bundles as CommonJS wrappers that run on the first call. So a
 * run still evaluates only what it uses, without resolving and reading dozens
 * of files from node_modules (pino alone is 60 of them).
 */
import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as path from "node:path";
import { BUNDLE_DIR, ROOT, bundleEntries } from "./build.mjs";

/*
 * CommonJS, not ESM: node 20 starts a CommonJS main synchronously, while an
 * ES module main goes through the asynchronous ESM loader (fs/promises and
 * readline among what it loads), which cost ~15 ms more per process here.
 * import.meta.url (run.ts finds ROOT with it) becomes the bundle's own URL.
 */
const BANNER = 'const __khosimImportMetaUrl = require("node:url").pathToFileURL(__filename).href;';

const CREATE_REQUIRE = "createRequire(import.meta.url)";

/** lazyRequire - rewrite shared's createRequire(import.meta.url)(X) calls into require(X) for esbuild. */
const lazyRequire = {
  name: "khosim-lazy-require",
  setup(b) {
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
 * Node's child_process and crypto cost more to load than the rest of a
 * kernel's start-up, and a run uses them, if at all, late: commander only for
 * executable subcommands (never), mm/image.ts to copy a base image, the image
 * extents file for its checksum. Inside the bundles each becomes an object of
 * getters that loads the real module on first use. Only modules whose
 * exports are a plain object qualify (a getter cannot stand for a callable
 * module.exports such as events').
 */
const LAZY_BUILTINS = ["child_process", "crypto"];
const LAZY_NS = "khosim-lazy-builtin";

const lazyBuiltins = {
  name: "khosim-lazy-builtins",
  setup(b) {
    b.onResolve({ filter: new RegExp(`^(node:)?(${LAZY_BUILTINS.join("|")})$`) }, (args) =>
      // The stand-in's own require() is the real module.
      args.namespace === LAZY_NS ? { path: args.path, external: true } : { path: args.path.replace(/^node:/, ""), namespace: LAZY_NS },
    );
    b.onLoad({ filter: /.*/, namespace: LAZY_NS }, (args) => {
      const keys = Object.keys(createRequire(import.meta.url)(`node:${args.path}`)).sort();
      const contents =
        `let m;\nconst o = {};\n` +
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
try {
  await esbuild.build({
    entryPoints: bundleEntries().map((e) => ({ in: e.from, out: path.relative(BUNDLE_DIR, e.out).replace(/\.cjs$/, "") })),
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
    absWorkingDir: ROOT,
    logLevel: "silent",
  });
} catch (e) {
  const first = e.errors?.[0];
  const where = first?.location ? `${first.location.file}:${first.location.line}: ` : "";
  process.stderr.write(`khosim: esbuild: ${where}${first?.text ?? e.message}\n`);
  process.exit(1);
}

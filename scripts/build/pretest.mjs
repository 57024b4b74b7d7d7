/*
 * npm test's first step (npm runs it as "pretest"): everything the tests need
 * on a fresh Debian machine that has only Node and `npm ci` behind it.
 *
 *  1. The build, brought up to date (tsc -b, incremental): the tests spawn
 *     node on dist/.
 *  2. The FDT oracles: dtc and fdtget (device-tree-compiler) and libfdt's
 *     Python binding for /usr/bin/python3 (python3-libfdt). Missing ones are
 *     installed with apt-get when this runs as root on a system with apt-get;
 *     otherwise it stops with one line naming the packages to install. The
 *     oracle tests never skip, in CI or not.
 *  3. The browser for the map tests comes from npm (@sparticuz/chromium, see
 *     scripts/test/chromium.ts); here only its presence is checked.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { createRequire } from "node:module";
import { build, ROOT } from "./build.mjs";

const say = (s) => process.stderr.write(`pretest: ${s}\n`);

function buildStep() {
  const r = build("inherit");
  if (r.status !== 0) {
    if (r.output) process.stderr.write(r.output);
    say("the build failed (tsc -b tsconfig.build.json)");
    process.exit(1);
  }
}

/* The Debian package of each oracle: package.json "khosim.testOracles", the set-up a reader finds beside the npm scripts. */
const PKG = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")).khosim.testOracles;

/** The oracles, each with the Debian package that provides it and a probe. */
const ORACLES = [
  { what: "dtc", pkg: PKG.dtc, cmd: "dtc", args: ["--version"] },
  { what: "fdtget", pkg: PKG.fdtget, cmd: "fdtget", args: ["--version"] },
  { what: "libfdt for /usr/bin/python3", pkg: PKG.libfdt, cmd: "/usr/bin/python3", args: ["-c", "import libfdt; libfdt.FdtSw; libfdt.fdt_check_full"] },
];

function missingOracles() {
  return ORACLES.filter((o) => {
    const r = spawnSync(o.cmd, o.args, { stdio: "ignore" });
    return r.error !== undefined || r.status !== 0;
  });
}

function oracleStep() {
  let missing = missingOracles();
  if (missing.length === 0) return;
  const pkgs = [...new Set(missing.map((o) => o.pkg))];
  const names = missing.map((o) => o.what).join(", ");
  const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
  const hasApt = spawnSync("apt-get", ["--version"], { stdio: "ignore" }).status === 0;
  if (!isRoot || !hasApt) {
    say(`missing ${names}: install ${pkgs.join(" ")} (apt-get install -y ${pkgs.join(" ")}) and run npm test again`);
    process.exit(1);
  }
  say(`installing ${pkgs.join(" ")} for ${names} (apt-get)`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const run = (args) => spawnSync("apt-get", args, { env, stdio: ["ignore", "ignore", "inherit"] }).status === 0;
  if (!run(["update", "-qq"]) || !run(["install", "-y", "-qq", "--no-install-recommends", ...pkgs])) {
    say(`apt-get could not install ${pkgs.join(" ")}; install them and run npm test again`);
    process.exit(1);
  }
  missing = missingOracles();
  if (missing.length > 0) {
    say(`still missing after apt-get: ${missing.map((o) => o.what).join(", ")}`);
    process.exit(1);
  }
}

function browserStep() {
  try {
    createRequire(`${ROOT}/scripts/package.json`).resolve("@sparticuz/chromium");
  } catch {
    say("@sparticuz/chromium (the map tests' browser) is not installed: run npm ci");
    process.exit(1);
  }
}

buildStep();
oracleStep();
browserStep();

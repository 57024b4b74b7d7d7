/*
 * npm run demo: kernel-a with the default scenario into out/demo (replacing a
 * previous demo), then kernel-b from it, each its own process.
 */
import * as path from "node:path";
import { runHandoff } from "./handoff.js";
import { ROOT } from "./run.js";

const out = path.join(ROOT, "out/demo");
process.exitCode = runHandoff(out, ["--out", out, "--force", "--log-format", "pretty", "--scenario", path.join(ROOT, "scenarios/default.json")], ["--log-format", "pretty"]);

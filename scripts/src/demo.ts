/*
 * npm run demo: kernel-a with the default scenario into out/demo (replacing a
 * previous demo), then kernel-b from it, each its own process, and a summary.
 */
import * as path from "node:path";
import { newCommand, runMain, withExitCodes } from "@khosim/shared/proc";
import { ROOT } from "./run.js";
import { runHandoff } from "./summary.js";

async function main(): Promise<number> {
  const cmd = newCommand("demo", "one handoff of the default scenario into out/demo (replaced), kernel-a then kernel-b, and a summary");
  withExitCodes(cmd, [
    [0, "kernel-b revived and verified the handoff"],
    [1, "kernel-b did not revive and verify everything; other codes: kernel-a's or kernel-b's (see their --help)"],
  ]);
  cmd.parse(process.argv);
  const logFormat = cmd.opts<{ logFormat?: string }>().logFormat ?? "pretty";
  const out = path.join(ROOT, "out/demo");
  return runHandoff(out, ["--out", out, "--force", "--log-format", logFormat, "--scenario", path.join(ROOT, "scenarios/default.json")], ["--log-format", logFormat]);
}

runMain("demo", main);

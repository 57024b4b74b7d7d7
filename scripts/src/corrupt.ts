/*
 * npm run corrupt -- --in DIR --out DIR2 --fault KIND [--seed N] [--force]
 * npm run corrupt -- --list [--markdown]
 *
 * Copy a good handoff directory and damage the copy in ONE named way (the
 * catalogue is faults.ts), for testing what kernel-b makes of bad input.
 * memory.img is copied sparse (cp --sparse=always) and edited in place; the
 * copy is written all or nothing (a hidden temporary sibling renamed into
 * place). successor.json is not copied. DIR2/fault.json records the kind, the
 * seed, kernel-b's expected outcome, the kernel-b options to use and every
 * byte changed.
 *
 * Exit codes: 0 written (or listed); 2 bad options, an unknown KIND, an input
 * that cannot take the fault, DIR2 exists without --force; 70 internal error.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { CliError, EXIT_USAGE, HandoffError, checkHandoffOut, intOption, newCommand, runMain, toJson, writeHandoffDir, withExitCodes } from "@khosim/shared/proc";
import { HANDOFF_BOOT_DTB, HANDOFF_KHO_DTB, HANDOFF_MEMORY_IMG, HANDOFF_REPORT } from "@khosim/shared/abi";
import { FAULTS, applyFault, findFault, listFaults, listFaultsMarkdown, type Fault, type FaultReport } from "./faults/index.js";
import { initCsum } from "@khosim/shared/lib";

export const FAULT_REPORT = "fault.json";

/** The files of a handoff directory that are copied (successor.json, fault.json are not). */
const COPIED = [HANDOFF_MEMORY_IMG, HANDOFF_BOOT_DTB, HANDOFF_KHO_DTB, HANDOFF_REPORT] as const;


function copyHandoff(from: string, to: string): void {
  for (const name of COPIED) {
    const src = path.join(from, name);
    if (!fs.existsSync(src)) {
      if (name === HANDOFF_MEMORY_IMG || name === HANDOFF_BOOT_DTB) throw new CliError(EXIT_USAGE, `${src}: missing; --in must be a handoff directory written by kernel-a`);
      continue;
    }
    if (name === HANDOFF_MEMORY_IMG) {
      // Keep the image sparse: a 64 GiB machine must not become 64 GiB of disk.
      execFileSync("cp", ["--sparse=always", src, path.join(to, name)], { stdio: ["ignore", "ignore", "pipe"] });
    } else {
      fs.copyFileSync(src, path.join(to, name));
    }
  }
}

/** corrupt - copy @input to @out and apply @fault; returns the fault report written as fault.json. */
export async function corrupt(input: string, out: string, fault: Fault, seed: number, force: boolean): Promise<FaultReport> {
  await initCsum(); // run faults re-checksum what they edit (faults/runs.ts)
  if (!fs.existsSync(input) || !fs.statSync(input).isDirectory()) throw new CliError(EXIT_USAGE, `${input}: not a directory`);
  if (path.resolve(input) === path.resolve(out)) throw new CliError(EXIT_USAGE, `--out ${out} is the input directory; write the damaged copy elsewhere`);
  checkHandoffOut(out, force);
  let report!: FaultReport;
  await writeHandoffDir(out, force, (tmp) => {
    copyHandoff(input, tmp);
    const applied = applyFault(tmp, fault, seed);
    report = {
      tool: "khosim corrupt",
      kind: fault.kind,
      group: fault.group,
      description: fault.description,
      input: path.resolve(input),
      seed,
      expect: {
        outcome: fault.expect.outcome,
        exitCode: fault.expect.exitCode,
        reasonIncludes: applied.reasonIncludes,
        ...(applied.failure ? { failure: applied.failure } : {}),
        ...(fault.expect.reserveMem !== undefined ? { reserveMem: `${applied.reserveMemName}: ${fault.expect.reserveMem}` } : {}),
      },
      kernelBArgs: applied.kernelBArgs,
      details: applied.details,
    };
    fs.writeFileSync(path.join(tmp, FAULT_REPORT), toJson(report));
  });
  return report;
}

async function main(): Promise<number> {
  const cmd = newCommand("corrupt", "copy a khosim handoff directory and damage the copy in one named way")
    .option("--in <dir>", "a good handoff directory (kernel-a's --out)")
    .option("--out <dir>", "where to write the damaged copy")
    .option("--fault <kind>", "what to damage (see --list)")
    .option("--seed <n>", "picks the chunk, range, folio, byte and bit where there is a choice (default 1)", intOption("--seed", 0, 2 ** 32 - 1), 1)
    .option("--force", "replace an existing --out directory", false)
    .option("--list", "print every fault kind with kernel-b's expected outcome, and exit", false)
    .option("--markdown", "with --list: as the markdown table of docs/faults.md", false);
  withExitCodes(cmd, [
    [0, "the damaged copy written (or the list printed)"],
    [2, "bad options, an unknown KIND, an input that cannot take the fault, --out exists without --force"],
  ]);
  cmd.parse(process.argv);
  const o = cmd.opts<{ in?: string; out?: string; fault?: string; seed: number; force: boolean; list: boolean; markdown: boolean }>();
  if (o.markdown && !o.list) throw new CliError(EXIT_USAGE, "--markdown needs --list");
  if (o.list) {
    process.stdout.write(o.markdown ? listFaultsMarkdown() : listFaults());
    return 0;
  }
  for (const [opt, v] of [["--in", o.in], ["--out", o.out], ["--fault", o.fault]] as const) {
    if (!v) throw new CliError(EXIT_USAGE, `${opt} is required (or --list)`);
  }
  const fault = findFault(o.fault!);
  if (!fault) throw new CliError(EXIT_USAGE, `--fault: unknown kind ${JSON.stringify(o.fault)}; one of ${FAULTS.map((f) => f.kind).join(", ")}`);
  const rep = await corrupt(o.in!, o.out!, fault, o.seed, o.force);
  const changes = rep.details.map((d) => `${d.file}@${d.offset} ${d.field}: ${d.old || "-"} -> ${d.new}`).join("; ");
  process.stdout.write(
    `corrupt: ${o.out}: ${rep.kind}: ${changes}\n` +
      `  expect: kernel-b ${rep.kernelBArgs.length ? rep.kernelBArgs.map((a) => (/\s/.test(a) ? `'${a}'` : a)).join(" ") + " " : ""}-> ${rep.expect.outcome} (exit ${rep.expect.exitCode})` +
      `${rep.expect.reserveMem !== undefined ? `, successor.json reserveMem ${rep.expect.reserveMem}` : ""}\n`,
  );
  return 0;
}

runMain("corrupt", main, (e) => (e instanceof HandoffError ? EXIT_USAGE : undefined));

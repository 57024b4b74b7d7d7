/*
 * What every khosim command shares: one-line errors with documented exit
 * codes, and commander set up to exit 2 (not 1) on a usage error.
 */
import { Command, CommanderError, Option } from "commander";
import { KHO_FORMATS, khoFormat } from "../kho/formats/index.js";
import { KHO_KERNEL_NAMES, khoKernel } from "../kho/kernels/versions.js";
import { LOG_FORMATS } from "../lib/log.js";
import { setInterruptProg } from "./signals.js";

/** Exit code for an internal error (a khosim bug), as sysexits' EX_SOFTWARE. */
export const EXIT_INTERNAL = 70;
/** Exit code for a usage error or unusable input. */
export const EXIT_USAGE = 2;

/** An expected failure: printed as one line, exits with @code. */
export class CliError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = "CliError";
  }
}

/** newCommand - a commander program whose usage errors exit 2 with one line. */
export function newCommand(name: string, description: string): Command {
  return new Command(name)
    .description(description)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) })
    .addOption(new Option("--log-format <format>", "pretty (default on a terminal) or json").choices([...LOG_FORMATS]));
}

/** formatOption - a commander parser for --format: a name from the format registry. */
export function formatOption(v: string): string {
  if (!khoFormat(v)) throw new CliError(EXIT_USAGE, `--format: ${JSON.stringify(v)} is not one of ${KHO_FORMATS.map((f) => f.name).join(", ")}`);
  return v;
}

/** kernelOption - a commander argument parser for --kernel: one of KHO_KERNEL_NAMES, else a usage error listing them. */
export function kernelOption(v: string): string {
  if (!khoKernel(v)) throw new CliError(EXIT_USAGE, `--kernel: ${JSON.stringify(v)} is not a known kernel version; known: ${KHO_KERNEL_NAMES.join(", ")}`);
  return v;
}

/** parseIntOption - a commander argument parser for a bounded integer. */
export function intOption(name: string, min: number, max: number): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new CliError(EXIT_USAGE, `${name}: ${JSON.stringify(v)} is not an integer in [${min}, ${max}]`);
    }
    return n;
  };
}

/**
 * runMain - run @main and turn every failure into one line on stderr and an
 * exit code: CliError -> its code; commander usage errors -> 2; @classify may
 * map other error classes to codes; anything else is a bug -> 70 (stack
 * printed only with KHOSIM_DEBUG=1).
 */
export function runMain(prog: string, main: () => Promise<number>, classify?: (e: unknown) => number | undefined): void {
  setInterruptProg(prog);
  quietClosedPipes(prog);
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      if (e instanceof CommanderError) {
        // commander has printed its message already; --help/--version exit 0.
        process.exitCode = e.exitCode === 0 ? 0 : EXIT_USAGE;
        return;
      }
      const code = e instanceof CliError ? e.code : classify?.(e);
      const msg = e instanceof Error ? e.message : String(e);
      if (code !== undefined) {
        process.stderr.write(`${prog}: ${msg}\n`);
        process.exitCode = code;
        return;
      }
      process.stderr.write(`${prog}: internal error: ${msg}\n`);
      if (process.env["KHOSIM_DEBUG"] && e instanceof Error) process.stderr.write(`${e.stack}\n`);
      process.exitCode = EXIT_INTERNAL;
    },
  );
}

/*
 * A reader that goes away (`kernel-b --help | head -1`) ends our output, not
 * the run: without a listener, the EPIPE of the next write is an uncaught
 * error with a stack. Later writes to that stream are dropped; any other
 * stream error is a one-line internal error.
 */
function quietClosedPipes(prog: string): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "EPIPE") return;
      if (stream !== process.stderr) process.stderr.write(`${prog}: internal error: ${e.message}\n`);
      process.exitCode = EXIT_INTERNAL;
    });
  }
}

/** One documented exit code: [code, meaning]. */
export type ExitCode = readonly [number, string];

/** The usage and internal-error lines every command shares. */
export const EXIT_USAGE_LINE: ExitCode = [EXIT_USAGE, "usage error or unusable input (one line on stderr)"];
export const EXIT_INTERNAL_LINE: ExitCode = [EXIT_INTERNAL, "internal error: a khosim bug (KHOSIM_DEBUG=1 prints the stack)"];

/** exitCodesText - the "Exit codes:" block of a command's help. */
export function exitCodesText(codes: readonly ExitCode[]): string {
  return "\nExit codes:\n" + codes.map(([c, t]) => `  ${String(c).padStart(3)}  ${t}`).join("\n") + "\n";
}

/**
 * withExitCodes - document @codes after @cmd's help (the usage and internal
 * error lines are added when missing), and print help to stdout.
 */
export function withExitCodes(cmd: Command, codes: readonly ExitCode[]): Command {
  const all = [...codes];
  if (!all.some(([c]) => c === EXIT_USAGE)) all.push(EXIT_USAGE_LINE);
  if (!all.some(([c]) => c === EXIT_INTERNAL)) all.push(EXIT_INTERNAL_LINE);
  all.sort((a, b) => a[0] - b[0]);
  return cmd.addHelpText("after", exitCodesText(all));
}

/**
 * startupMs - milliseconds from this process's start to now, or from its
 * kexec -e when it was started held (scripts/build/preload.cjs records that
 * moment in KHOSIM_EXEC_MS): the start-up a kernel's first line of work paid.
 */
export function startupMs(): number {
  const held = Number(process.env["KHOSIM_EXEC_MS"] ?? 0);
  return performance.now() - (Number.isFinite(held) && held > 0 ? held : 0);
}

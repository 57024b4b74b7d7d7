/*
 * What the scripts' commands share on top of @khosim/shared/proc's CLI API
 * (newCommand, runMain, CliError, EXIT_*): the exit codes in --help, and the
 * options several commands spell the same way.
 *
 * Option names across commands (one name per thing):
 *   --in DIR        a handoff directory read          (kernel-b, corrupt)
 *   --out PATH      what the command writes           (kernel-a, corrupt, chain, handoff, map: the HTML file;
 *                                                       compare and bench: their scratch directory)
 *   --seed N        a seed                            (kernel-a, corrupt, fuzz)
 *   --format NAME   preservation format(s)            (kernel-a, kernel-b, chain; compare: a comma list)
 *   --only LIST     which workloads to run            (bench, compare)
 *   --runs N        repetitions / cases               (bench, compare, fuzz)
 *   --json [FILE]   raw numbers as JSON: on stdout instead of the table, or to FILE
 *                                                      (bench, compare; diff: --json alone, stdout)
 *   --force         replace an existing --out         (kernel-a, corrupt, chain, handoff)
 *   --timeout-s S   kill a child process after S seconds (bench, compare)
 */
import { Option, type Command } from "commander";
import { EXIT_INTERNAL, EXIT_USAGE } from "@khosim/shared/proc";

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
 * hiddenAlias - an old spelling of an option, accepted but not shown in
 * --help, that sets the same value as the new one (@attr: its camelCase key).
 */
export function hiddenAlias(flags: string, attr: string, parse?: (v: string) => unknown): Option {
  const o = new Option(flags).hideHelp();
  if (parse) o.argParser(parse);
  o.attributeName = () => attr;
  return o;
}

/** listOption - a commander parser for a comma-separated list of names. */
export function listOption(v: string): string[] {
  return v
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

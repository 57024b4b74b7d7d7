/*
 * What the scripts' commands share on top of @khosim/shared/proc's CLI API
 * (newCommand, runMain, CliError, EXIT_*, withExitCodes): the options
 * several commands spell the same way.
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
import { Option } from "commander";

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

/*
 * npm run matrix -- [--kernels a,b] [--workloads x,y] [--json FILE] [--html FILE]
 *                   [--out DIR] [--jobs N] [--timeout-s S]
 *
 * Which kernel can take over from which: every predecessor version × every
 * successor version on each workload, from real two-process runs, printed as
 * a markdown table per workload with the command that reproduces each cell.
 * The work is scripts/src/matrix/ (cli.ts: options; run.ts: the processes;
 * model.ts: cells; markdown.ts, html.ts: output).
 *
 * Exit codes: 0 the matrix was produced (hazards are results); 1 some run
 * failed (its cell says why); 2 usage error; 70 internal error.
 */
import { runMain } from "@khosim/shared/proc";
import { MATRIX_PROG, runMatrixCommand } from "./matrix/cli.js";

runMain(MATRIX_PROG, async () => {
  const tty = process.stderr.isTTY === true && !process.env["CI"];
  const r = await runMatrixCommand(process.argv.slice(2), tty ? (line) => process.stderr.write(`\r\x1b[K${line.slice(0, (process.stderr.columns ?? 100) - 1)}`) : undefined);
  if (tty) process.stderr.write("\r\x1b[K");
  process.stdout.write(r.stdout);
  return r.code;
});

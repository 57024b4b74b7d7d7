/*
 * The matrix as markdown: one table per workload (rows the predecessor,
 * columns the successor), and under it, for every cell, the command that
 * reproduces it. What `npm run matrix` prints and docs/matrix.md holds.
 */
import { CELL_CLASSES, RUN_FAILED, cellAt, cellText, type MatrixCell, type MatrixResult } from "./model.js";

/* A table cell: no pipe or newline may break the row. */
function md(s: string): string {
  return s.replace(/\|/g, "\\|").replace(/\n/g, " ");
}

/** matrixCounts - "N cells: a revived intact, b refused, ..." over @cells (classes with no cell left out). */
export function matrixCounts(cells: readonly MatrixCell[]): string {
  const parts = CELL_CLASSES.map((k) => [k.name, cells.filter((c) => c.cls === k.cls).length] as const)
    .filter(([, n]) => n > 0)
    .map(([name, n]) => `${n} ${name}`);
  return `${cells.length} cells: ${parts.join(", ")}`;
}

/** matrixMarkdown - the whole matrix: a table and its commands per workload, then the counts. */
export function matrixMarkdown(r: MatrixResult): string {
  const { predecessors, successors } = r.kernels;
  const L: string[] = [];
  for (const w of r.workloads) {
    L.push(`### ${w.name}: ${md(w.description)}`, "");
    L.push(`Scenario \`${w.scenario}\`. Rows: predecessor (kernel-a --kernel); columns: successor (kernel-b --kernel).`, "");
    L.push(`| pred ↓ / succ → | ${successors.map((s) => `**${s}**`).join(" | ")} |`);
    L.push(`|---|${successors.map(() => "---").join("|")}|`);
    for (const p of predecessors) {
      const row = successors.map((s) => {
        const c = cellAt(r, w.name, p, s);
        if (!c) return "";
        const t = md(cellText(c));
        return c.cls === "intact" ? t : c.cls === RUN_FAILED ? `**${t}**` : `*${t}*`;
      });
      L.push(`| **${p}** | ${row.join(" | ")} |`);
    }
    L.push("", `${w.name}: ${matrixCounts(r.cells.filter((c) => c.workload === w.name))}.`);
    L.push("", "Each cell, reproduced:", "");
    for (const p of predecessors) {
      for (const s of successors) {
        const c = cellAt(r, w.name, p, s);
        if (c) L.push(`- ${p} → ${s}: \`${c.command}\``);
      }
    }
    L.push("");
  }
  L.push(matrixCounts(r.cells));
  return `${L.join("\n")}\n`;
}

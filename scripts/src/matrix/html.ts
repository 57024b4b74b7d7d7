/*
 * The matrix as a picture: one self-contained HTML file (inline SVG, CSS and
 * a few lines of script; nothing fetched, no URL in it). Per workload a grid
 * of predecessor × successor coloured by verdict, each cell with its short
 * text and a tooltip carrying the detail and the reproducing command; a
 * click shows them below the grid with a copy button. A legend says what each
 * colour means. Same inputs, same bytes.
 */
import { CELL_CLASSES, RUN_FAILED, cellAt, cellDetail, cellText, type CellClass, type MatrixCell, type MatrixResult } from "./model.js";
import { matrixCounts } from "./markdown.js";

/** Fill and text colour of each cell class. */
export const MATRIX_COLORS: Record<CellClass, { fill: string; ink: string }> = {
  intact: { fill: "#2f9e5b", ink: "#ffffff" },
  refused: { fill: "#aab4c3", ink: "#1d1d1f" },
  "pages-lost": { fill: "#f08c00", ink: "#1d1d1f" },
  "read-out-of-bounds": { fill: "#8e44ad", ink: "#ffffff" },
  "would-corrupt": { fill: "#d62828", ink: "#ffffff" },
  [RUN_FAILED]: { fill: "#26262b", ink: "#ffffff" },
};

/** esc - text and attribute escaping for HTML and inline SVG. */
export function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}

const group = (n: number): string => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");

function clip(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n - 1)}…`;
}

/** cellLines - the two lines drawn in a cell: a headline and a short second line. */
export function cellLines(c: MatrixCell): [string, string] {
  const k = c.kernel;
  if (c.cls === RUN_FAILED || k === null) return ["run failed", clip(c.error ?? "no report", 25)];
  switch (k.verdict) {
    case "intact":
      return ["revived intact", k.hazards.length > 0 ? clip(k.hazards[0]!, 26) : ""];
    case "refused":
      return ["refused", "boots without KHO"];
    case "pages-lost":
      return [`${group(k.lostPages)} pages lost`, k.firstLost === null ? "" : `first ${k.firstLost}`];
    case "read-out-of-bounds":
      return ["read out of bounds", `${group(k.oobReadBytes)} B${k.firstOobRead === null ? "" : ` from ${k.firstOobRead}`}`];
    case "would-corrupt": {
      const n = (x: number, one: string, many: string) => `${group(x)} ${x === 1 ? one : many}`;
      const what =
        k.outsideRamPfns > 0
          ? n(k.outsideRamPfns, "pfn outside RAM", "pfns outside RAM")
          : k.wrongSizeReserves > 0
            ? n(k.wrongSizeReserves, "wrong-size reserve", "wrong-size reserves")
            : k.spuriousPages > 0
              ? n(k.spuriousPages, "spurious page", "spurious pages")
              : k.doubleRestores > 0
                ? n(k.doubleRestores, "folio restored twice", "folios restored twice")
                : (k.hazards[0] ?? "");
      return ["would corrupt", clip(what, 26)];
    }
  }
}

const CW = 186; // cell width
const CH = 58; // cell height
const GAP = 6;
const LEFT = 96; // row labels
const TOP = 44; // column labels

/** One workload's grid as inline SVG; @base numbers the cells for the script. */
function grid(r: MatrixResult, workload: string, base: number): { svg: string; cells: MatrixCell[] } {
  const { predecessors: P, successors: S } = r.kernels;
  const width = LEFT + S.length * (CW + GAP) + 4;
  const height = TOP + P.length * (CH + GAP) + 4;
  const out: string[] = [];
  const cells: MatrixCell[] = [];
  out.push(`<svg class="grid" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${esc(`${workload}: predecessor by successor`)}">`);
  out.push(`<text class="axis" x="${LEFT - 10}" y="16" text-anchor="end">pred ↓ / succ →</text>`);
  S.forEach((s, j) => out.push(`<text class="col" x="${LEFT + j * (CW + GAP) + CW / 2}" y="${TOP - 12}" text-anchor="middle">${esc(s)}</text>`));
  P.forEach((p, i) => {
    const y = TOP + i * (CH + GAP);
    out.push(`<text class="row" x="${LEFT - 10}" y="${y + CH / 2 + 5}" text-anchor="end">${esc(p)}</text>`);
    S.forEach((s, j) => {
      const c = cellAt(r, workload, p, s);
      if (!c) return;
      const n = base + cells.length;
      cells.push(c);
      const x = LEFT + j * (CW + GAP);
      const col = MATRIX_COLORS[c.cls];
      const [l1, l2] = cellLines(c);
      const same = p === s ? " same" : "";
      out.push(`<g class="cell${same}" data-n="${n}" tabindex="0">`);
      out.push(`<title>${esc(`${cellText(c)}\n${cellDetail(c)}\n${c.command}`)}</title>`);
      out.push(`<rect x="${x}" y="${y}" width="${CW}" height="${CH}" rx="7" fill="${col.fill}"${c.cls === RUN_FAILED ? ' stroke="#f5c518" stroke-dasharray="5 3" stroke-width="2"' : ""}/>`);
      out.push(`<text x="${x + CW / 2}" y="${y + (l2 ? 25 : 34)}" text-anchor="middle" fill="${col.ink}" class="l1">${esc(l1)}</text>`);
      if (l2) out.push(`<text x="${x + CW / 2}" y="${y + 43}" text-anchor="middle" fill="${col.ink}" class="l2">${esc(l2)}</text>`);
      out.push(`</g>`);
    });
  });
  out.push(`</svg>`);
  return { svg: out.join("\n"), cells };
}

function legend(): string {
  const items = CELL_CLASSES.map(
    (k) =>
      `<div class="item"><svg width="22" height="14" aria-hidden="true"><rect width="22" height="14" rx="3" fill="${MATRIX_COLORS[k.cls].fill}"/></svg><b>${esc(k.name)}</b><span>${esc(k.meaning)}</span></div>`,
  );
  return `<div id="legend">\n${items.join("\n")}\n<div class="item"><svg width="22" height="14" aria-hidden="true"><rect x="1" y="1" width="20" height="12" rx="3" fill="none" stroke="#1d1d1f" stroke-width="2"/></svg><b>outlined</b><span>same version on both sides</span></div>\n</div>`;
}

const CSS = `
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #1d1d1f; background: #fbfbfc; }
header { padding: 18px 24px 8px; }
h1 { font-size: 21px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 0 0 2px; }
.sub { color: #5f6368; font-size: 13px; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size: 12.5px; }
#legend { display: grid; grid-template-columns: repeat(auto-fill, minmax(380px, 1fr)); gap: 6px 18px; padding: 10px 24px 14px; border-bottom: 1px solid #d9dde2; font-size: 13px; }
#legend .item { display: flex; gap: 7px; align-items: baseline; }
#legend svg { flex: none; align-self: center; }
#legend b { white-space: nowrap; }
#legend span { color: #5f6368; }
section { padding: 16px 24px 6px; }
svg.grid { display: block; max-width: 100%; height: auto; margin: 8px 0 4px; }
svg.grid text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
svg.grid .col, svg.grid .row { font-size: 13px; font-weight: 600; fill: #1d1d1f; }
svg.grid .axis { font-size: 11px; fill: #5f6368; }
svg.grid .l1 { font-size: 13px; font-weight: 600; }
svg.grid .l2 { font-size: 11px; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace; }
svg.grid .cell { cursor: pointer; }
svg.grid .cell:hover rect, svg.grid .cell:focus rect, svg.grid .cell.on rect { filter: brightness(1.12); stroke: #174ea6; stroke-width: 3; }
svg.grid .cell.same rect { stroke: #1d1d1f; stroke-width: 2.5; }
svg.grid .cell:focus { outline: none; }
.panel { min-height: 4.4em; margin: 2px 0 8px; padding: 8px 12px; background: #fff; border: 1px solid #d9dde2; border-radius: 8px; font-size: 13px; }
.panel .t { font-weight: 600; }
.panel .d { color: #3c4043; margin: 2px 0 4px; }
.panel button { font: 12px system-ui, sans-serif; margin-left: 8px; padding: 1px 8px; border: 1px solid #b9bfc7; border-radius: 5px; background: #fff; cursor: pointer; }
details { margin: 4px 0 10px; font-size: 12.5px; }
details li { margin: 2px 0; }
footer { padding: 8px 24px 24px; color: #5f6368; font-size: 12.5px; }
`;

/* Click or Enter on a cell: its text, detail and command in the workload's panel. */
const SCRIPT = `
(function () {
  var cells = JSON.parse(document.getElementById("cells").textContent);
  function show(g) {
    var n = +g.getAttribute("data-n"), c = cells[n];
    var sec = g.closest("section"), p = sec.querySelector(".panel");
    sec.querySelectorAll(".cell.on").forEach(function (e) { e.classList.remove("on"); });
    g.classList.add("on");
    p.innerHTML = "";
    var t = document.createElement("div"); t.className = "t"; t.textContent = c[0]; p.appendChild(t);
    var d = document.createElement("div"); d.className = "d"; d.textContent = c[1]; p.appendChild(d);
    var k = document.createElement("code"); k.textContent = c[2]; p.appendChild(k);
    var b = document.createElement("button"); b.textContent = "copy";
    b.onclick = function () { if (navigator.clipboard) navigator.clipboard.writeText(c[2]); b.textContent = "copied"; };
    p.appendChild(b);
  }
  document.querySelectorAll("svg.grid .cell").forEach(function (g) {
    g.addEventListener("click", function () { show(g); });
    g.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); show(g); } });
  });
})();
`;

export interface MatrixHtmlOptions {
  /** The command line that made the matrix, shown under the title. */
  madeBy?: string;
}

/** matrixHtml - the whole picture for @r as one HTML document. */
export function matrixHtml(r: MatrixResult, o: MatrixHtmlOptions = {}): string {
  const all: MatrixCell[] = [];
  const sections: string[] = [];
  for (const w of r.workloads) {
    const g = grid(r, w.name, all.length);
    all.push(...g.cells);
    const cmds = g.cells.map((c) => `<li><b>${esc(`${c.predecessor} → ${c.successor}`)}</b>: ${esc(cellText(c))}<br><code>${esc(c.command)}</code></li>`);
    sections.push(
      [
        `<section id="w-${esc(w.name)}">`,
        `<h2>${esc(w.name)}</h2>`,
        `<div class="sub">${esc(w.description)} (<code>${esc(w.scenario)}</code>)</div>`,
        g.svg,
        `<div class="sub">${esc(matrixCounts(g.cells))}.</div>`,
        `<div class="panel"><span class="sub">Click a cell for its detail and the command that reproduces it.</span></div>`,
        `<details><summary>every cell of ${esc(w.name)} with its command</summary><ul>\n${cmds.join("\n")}\n</ul></details>`,
        `</section>`,
      ].join("\n"),
    );
  }
  // The script's data: [text, detail, command] per cell; "<" escaped so no "</script>" can end the block.
  const data = JSON.stringify(all.map((c) => [cellText(c), cellDetail(c), c.command])).replace(/</g, "\\u003c");
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>khosim: which kernel can take over from which</title>
<style>${CSS}</style>
</head>
<body>
<header>
<h1>Which kernel can take over from which</h1>
<div class="sub">Each cell: kernel-a of the row's version hands off, kernel-b of the column's version boots from the files alone (two real processes). ${esc(matrixCounts(all))}.</div>
${o.madeBy ? `<div class="sub">Made by <code>${esc(o.madeBy)}</code>; the sources of each version: docs/kernel-versions.md.</div>` : `<div class="sub">The sources of each version: docs/kernel-versions.md.</div>`}
</header>
${legend()}
${sections.join("\n")}
<footer>khosim kernel-version matrix. Hover a cell for its detail; every cell names the one command that reproduces it.</footer>
<script type="application/json" id="cells">${data}</script>
<script>${SCRIPT}</script>
</body>
</html>
`;
}

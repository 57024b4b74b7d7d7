/*
 * npm run matrix's output, in process, on fixture cells: the text of every
 * verdict, the markdown table and its reproduce lines, the --json file, the
 * HTML picture (self-contained, well formed, one cell per pair); a run that
 * failed; the cell read from kernel-b's exit and report; argument handling.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { CliError, EXIT_USAGE } from "@khosim/shared/proc";
import { parseMatrixArgs } from "../src/matrix/cli.js";
import { matrixHtml } from "../src/matrix/html.js";
import { matrixMarkdown } from "../src/matrix/markdown.js";
import { MatrixReadError, RUN_FAILED, cellCommand, cellDetail, cellText, matrixFailed, matrixJson, parseKernelFacts, type KernelFacts, type MatrixCell, type MatrixResult, type Verdict } from "../src/matrix/model.js";
import { cellArgs, successorCell } from "../src/matrix/run.js";
import { ROOT } from "../src/run.js";
import { makeTmp, removeTmp } from "./handoff-helpers.js";

const tmp = makeTmp("matrix-render");
afterAll(() => removeTmp(tmp));

const W = { name: "default", file: path.join(ROOT, "scenarios/default.json"), scenario: "scenarios/default.json", description: "test_kho's default" };
const OUT = path.join(ROOT, "out/matrix");

function facts(verdict: Verdict, extra: Partial<KernelFacts> = {}): KernelFacts {
  return {
    name: "x",
    source: "src",
    verdict,
    preservedPages: 2051,
    lostPages: 0,
    firstLost: null,
    lost: [],
    oobReadBytes: 0,
    firstOobRead: null,
    outsideRamPfns: 0,
    firstOutsideRam: null,
    wrongSizeReserves: 0,
    firstWrongSize: null,
    spuriousPages: 0,
    firstSpurious: null,
    doubleRestores: 0,
    hazards: [],
    ...extra,
  };
}

function cell(pred: string, succ: string, kernel: KernelFacts | null, error: string | null = null): MatrixCell {
  return {
    workload: W.name,
    predecessor: pred,
    successor: succ,
    cls: kernel ? kernel.verdict : RUN_FAILED,
    outcome: kernel ? "revived" : null,
    exitCode: kernel ? 0 : null,
    reason: null,
    kernel,
    error,
    command: cellCommand(cellArgs({ out: OUT }, W, pred, succ)),
  };
}

/* Three kernels; every verdict and a failed run appear once. */
const K = ["p", "q", "r"];
const FIX: Record<string, KernelFacts | null> = {
  "p>p": facts("intact"),
  "p>q": facts("refused"),
  "p>r": facts("pages-lost", { lostPages: 3, firstLost: "0x41000000" }),
  "q>p": facts("read-out-of-bounds", { oobReadBytes: 3584, firstOobRead: "0x42806200", spuriousPages: 2, firstSpurious: "0x41000000" }),
  "q>q": facts("would-corrupt", { outsideRamPfns: 1, firstOutsideRam: "0x200000000" }),
  "q>r": facts("would-corrupt", { wrongSizeReserves: 1, firstWrongSize: { addr: "0x100000000", reserved: "0xffffffff80000000", intended: "0x80000000" }, hazards: ["order-19 block at 0x100000000 reserved as 0xffffffff80000000 bytes"] }),
  "r>p": null,
  "r>q": facts("intact"),
  "r>r": facts("would-corrupt", { doubleRestores: 1 }),
};
const result: MatrixResult = {
  kernels: { predecessors: K, successors: K },
  workloads: [{ name: W.name, scenario: W.scenario, description: W.description }],
  cells: K.flatMap((p) => K.map((s) => cell(p, s, FIX[`${p}>${s}`]!, FIX[`${p}>${s}`] ? null : "kernel-b exit 70: internal error: boom"))),
};
const at = (p: string, s: string) => result.cells.find((c) => c.predecessor === p && c.successor === s)!;

describe("cells", () => {
  test("each verdict has its text, with the count and first address it names", () => {
    expect(cellText(at("p", "p"))).toBe("revived intact");
    expect(cellText(at("p", "q"))).toBe("refused (boots without KHO)");
    expect(cellText(at("p", "r"))).toBe("revived, 3 pages lost (first 0x41000000)");
    expect(cellText(at("q", "p"))).toBe("read out of bounds (3584 bytes, first 0x42806200)");
    expect(cellText(at("q", "q"))).toBe("would corrupt (1 pfn outside RAM touched, first 0x200000000)");
    expect(cellText(at("q", "r"))).toBe("would corrupt (1 wrong-size reserve, first 0x100000000: 0xffffffff80000000 bytes for 0x80000000)");
    expect(cellText(at("r", "r"))).toBe("would corrupt (1 folio restored twice)");
    expect(cellText(at("r", "p"))).toBe("run failed (kernel-b exit 70: internal error: boom)");
  });

  test("the detail carries every non-zero fact and hazard, not only the headline", () => {
    expect(cellDetail(at("q", "p"))).toContain("2 spurious pages reserved, first 0x41000000");
    expect(cellDetail(at("q", "r"))).toContain("order-19 block at 0x100000000 reserved as 0xffffffff80000000 bytes");
  });

  test("the reproduce command is exactly kernel-a then kernel-b with the matrix's arguments", () => {
    expect(at("q", "r").command).toBe(
      "npm run kernel-a -- --kernel q --scenario scenarios/default.json --out out/matrix/default/q --force && " +
        "npm run kernel-b -- --kernel r --in out/matrix/default/q --report out/matrix/default/q/successor-r.json",
    );
    // A path that needs quoting is quoted for the shell.
    expect(cellCommand({ a: ["--out", "a b/it's"], b: [] })).toBe(`npm run kernel-a -- --out 'a b/it'\\''s' && npm run kernel-b -- `);
  });

  test("a failed run makes the matrix failed; a matrix of verdicts alone is not", () => {
    expect(matrixFailed(result)).toBe(true);
    expect(matrixFailed({ ...result, cells: result.cells.filter((c) => c.cls !== RUN_FAILED) })).toBe(false);
  });
});

describe("markdown", () => {
  const md = matrixMarkdown(result);
  test("one row per predecessor, one column per successor, the cell texts in place", () => {
    expect(md).toContain("| pred ↓ / succ → | **p** | **q** | **r** |\n|---|---|---|---|\n");
    expect(md).toContain("| **p** | revived intact | *refused (boots without KHO)* | *revived, 3 pages lost (first 0x41000000)* |");
    expect(md).toContain("| **r** | **run failed (kernel-b exit 70: internal error: boom)** | revived intact | *would corrupt (1 folio restored twice)* |");
  });

  test("every cell's command is printed under the table", () => {
    for (const c of result.cells) expect(md).toContain(`- ${c.predecessor} → ${c.successor}: \`${c.command}\`\n`);
    expect(md.match(/^- /gm)).toHaveLength(9);
    expect(md).toContain("\ndefault: 9 cells: 2 revived intact, 1 refused (boots without KHO), 1 revived, pages lost, 1 read out of bounds, 3 would corrupt, 1 run failed.\n");
    expect(md.trimEnd().endsWith("9 cells: 2 revived intact, 1 refused (boots without KHO), 1 revived, pages lost, 1 read out of bounds, 3 would corrupt, 1 run failed")).toBe(true);
  });
});

describe("json", () => {
  test("every cell with its verdict, facts, text and command; the same bytes twice", () => {
    const text = matrixJson(result);
    expect(matrixJson(result)).toBe(text);
    const j = JSON.parse(text);
    expect(j.schema).toBe("khosim-matrix/1");
    expect(j.cells).toHaveLength(9);
    const c = j.cells.find((x: { predecessor: string; successor: string }) => x.predecessor === "p" && x.successor === "r");
    expect(c).toMatchObject({ verdict: "pages-lost", text: "revived, 3 pages lost (first 0x41000000)", command: at("p", "r").command, kernel: { lostPages: 3, firstLost: "0x41000000" } });
    expect(j.cells.find((x: { verdict: string }) => x.verdict === RUN_FAILED).error).toBe("kernel-b exit 70: internal error: boom");
  });
});

/* Tags of @html balance (void elements aside); returns the first problem or "". */
function tagProblem(html: string): string {
  const VOID = new Set(["meta", "br", "rect", "input", "link", "img", "path", "line", "circle"]);
  const stack: string[] = [];
  const body = html.replace(/<script[^>]*>[\s\S]*?<\/script>/g, "").replace(/<style>[\s\S]*?<\/style>/g, "");
  for (const m of body.matchAll(/<(\/?)([a-zA-Z][a-zA-Z0-9]*)([^>]*?)(\/?)>/g)) {
    const [, close, name, , self] = m;
    const n = name!.toLowerCase();
    if (self || (VOID.has(n) && !close)) continue;
    if (!close) stack.push(n);
    else if (stack.pop() !== n) return `</${n}> at ${m.index}`;
  }
  return stack.length ? `unclosed <${stack.join("><")}>` : "";
}

describe("html", () => {
  const html = matrixHtml(result, { madeBy: "npm run matrix -- --html x.html" });
  test("self-contained: no URL, no external resource, well formed, the same bytes twice", () => {
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).not.toMatch(/<link|@import|\ssrc=/);
    expect(tagProblem(html)).toBe("");
    expect(html.startsWith("<!DOCTYPE html>")).toBe(true);
    expect(matrixHtml(result, { madeBy: "npm run matrix -- --html x.html" })).toBe(html);
  });

  test("one cell per pair, coloured by verdict, with its detail and command in the tooltip; a legend entry per verdict", () => {
    const cells = [...html.matchAll(/<g class="cell( same)?" data-n="(\d+)" tabindex="0">\n<title>([^<]*)<\/title>\n<rect [^>]*fill="(#[0-9a-f]{6})"/g)];
    expect(cells).toHaveLength(9);
    expect(cells.filter((m) => m[1]).length).toBe(3); // the diagonal is outlined
    const pr = cells.find((m) => m[3]!.startsWith("revived, 3 pages lost"))!;
    expect(pr[3]).toContain(at("p", "r").command.replace(/&/g, "&amp;"));
    expect(new Set(cells.map((m) => m[4])).size).toBe(6); // five verdicts and a failed run
    for (const name of ["revived intact", "refused (boots without KHO)", "revived, pages lost", "read out of bounds", "would corrupt", "run failed"]) expect(html).toContain(`<b>${name}</b>`);
    // The click panel's data: one entry per cell, in cell order.
    const data = JSON.parse(/<script type="application\/json" id="cells">([^<]*)<\/script>/.exec(html)![1]!);
    expect(data).toHaveLength(9);
    expect(data[2]).toEqual([cellText(at("p", "r")), cellDetail(at("p", "r")), at("p", "r").command]);
  });
});

describe("a cell from kernel-b's exit and report", () => {
  const base = { workload: "w", predecessor: "v6.16", successor: "v6.18", command: "c" };
  const report = (name: string, json: unknown): string => {
    const f = path.join(tmp, name);
    fs.writeFileSync(f, JSON.stringify(json));
    return f;
  };
  const k = facts("read-out-of-bounds", { oobReadBytes: 3584, firstOobRead: "0x4280a200" });

  test("a documented exit with its kernel object gives the verdict", () => {
    const f = report("ok.json", { outcome: "revived", exitCode: 0, reason: null, kernel: k });
    const c = successorCell(base, { status: 0, signal: null, stderr: "" }, f);
    expect(c.cls).toBe("read-out-of-bounds");
    expect(c.kernel).toEqual(k);
  });

  test("exit 70, a signal, a missing report or one without a kernel object is a failed run naming why", () => {
    const f = report("nok.json", { outcome: "revived", exitCode: 0, reason: null });
    expect(successorCell(base, { status: 70, signal: null, stderr: '{"level":30}\nkernel-b: internal error: x\n' }, f)).toMatchObject({ cls: RUN_FAILED, error: "kernel-b exit 70: kernel-b: internal error: x" });
    expect(successorCell(base, { status: null, signal: "SIGSEGV", stderr: "" }, f)).toMatchObject({ cls: RUN_FAILED, error: "kernel-b killed by SIGSEGV" });
    expect(successorCell(base, { status: 0, signal: null, stderr: "" }, path.join(tmp, "none.json")).error).toMatch(/none\.json: ENOENT$/);
    expect(successorCell(base, { status: 0, signal: null, stderr: "" }, f).error).toMatch(/kernel: missing or not an object/);
  });

  test("a report whose exit code disagrees with the process is a failed run", () => {
    const f = report("mismatch.json", { outcome: "revived", exitCode: 0, reason: null, kernel: k });
    expect(successorCell(base, { status: 3, signal: null, stderr: "" }, f).error).toMatch(/exitCode 0 but kernel-b exited 3/);
  });

  test("parseKernelFacts names the bad field", () => {
    expect(() => parseKernelFacts({ ...k, verdict: "fine" }, "s.json")).toThrow(MatrixReadError);
    expect(() => parseKernelFacts({ ...k, verdict: "fine" }, "s.json")).toThrow(/^s\.json: kernel.*verdict/);
    expect(() => parseKernelFacts({ ...k, firstLost: 5 }, "s.json")).toThrow(/^s\.json: kernel.*firstLost/);
    expect(() => parseKernelFacts({ ...k, lostPages: -1 }, "s.json")).toThrow(/^s\.json: kernel.*lostPages/);
  });
});

describe("arguments", () => {
  const usage = (argv: string[]): string => {
    try {
      parseMatrixArgs(argv);
    } catch (e) {
      expect(e).toBeInstanceOf(CliError);
      expect((e as CliError).code).toBe(EXIT_USAGE);
      return (e as Error).message;
    }
    throw new Error(`no usage error for ${argv.join(" ")}`);
  };

  test("defaults: every kernel on both sides, the three bundled workloads, out/matrix", () => {
    const a = parseMatrixArgs([]);
    expect(a.plan.predecessors).toEqual(["posting", "v6.16", "v6.18", "v6.19", "kho-v2"]);
    expect(a.plan.successors).toEqual(a.plan.predecessors);
    expect(a.plan.workloads.map((w) => [w.name, w.scenario])).toEqual([
      ["default", "scenarios/default.json"],
      ["orders-19-20", "scenarios/matrix-orders-19-20.json"],
      ["many-orders", "scenarios/matrix-many-orders.json"],
    ]);
    expect(a.plan.out).toBe(OUT);
    expect(a.json).toBeUndefined();
  });

  test("unknown versions and workloads, duplicates and wrong file types are usage errors", () => {
    expect(usage(["--kernels", "v6.16,v6.15"])).toBe('--kernels: "v6.15" is not one of posting, v6.16, v6.18, v6.19, kho-v2');
    expect(usage(["--kernels", "v6.16,v6.16"])).toBe("--kernels: a version is named twice");
    expect(usage(["--workloads", "nope"])).toMatch(/^--workloads: "nope" is not one of default, orders-19-20, many-orders/);
    expect(usage(["--workloads", path.join(tmp, "missing.json")])).toMatch(/missing\.json: ENOENT$/);
    expect(usage(["--html", "x.svg"])).toMatch(/^--html: "x.svg" should end in/);
    expect(usage(["--json", "x.txt"])).toMatch(/^--json: "x.txt" should end in \.json/);
  });

  test("a scenario file is a workload named after it", () => {
    const a = parseMatrixArgs(["--workloads", path.join(ROOT, "scenarios/mixed.json"), "--kernels", "v6.18"]);
    expect(a.plan.workloads[0]).toMatchObject({ name: "mixed", scenario: "scenarios/mixed.json" });
    expect(a.plan.predecessors).toEqual(["v6.18"]);
  });
});

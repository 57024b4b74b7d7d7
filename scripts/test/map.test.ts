/*
 * npm run map, end to end: handoffs made by kernel-a's code, the real CLI
 * for the command's process facts, and the page opened in real headless
 * Chromium (playwright-core driving the browser from @sparticuz/chromium, see
 * chromium.ts): no console or page errors, no network request, the legend,
 * tooltips with the handoff's addresses, zoom by button, click, drag and keys,
 * and the comparison of two handoffs, and a handoff with far more regions
 * than the map embeds. The screenshot goes to out/map-test.png.
 *
 * The handoff directories are written in process by kernel-a's code (see
 * handoff() below). The map command runs as a real process where its process
 * facts are tested (stdout, the default path, exit 0 and 2, the one-line
 * error); the maps of two handoffs and of the large one are drawn in process
 * by writeMap, the function the command calls. One browser per file, one page
 * per test.
 *
 * Chromium is required: when it cannot start the tests fail, they are not skipped.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ROOT, readJson, type RunResult } from "../src/run.js";
import { writeMap } from "../src/map/write.js";
import { launchChromium } from "./chromium.js";
import { writeHandoffInProcess } from "./data-helpers.js";
import { runKernelAsync } from "./handoff-helpers.js";
import { MAP_DEFAULT_DETAIL } from "../src/map/layout.js";

const MAP = path.join(ROOT, "scripts/src/map.ts");
const OUT = path.join(ROOT, "out");

/** Several orders, phys ranges, isolated folios over three chunks, on 512 MiB. */
const SCENARIO = {
  description: "map test: test_kho, isolated order-0 and order-2 folios (three chunks), order-9 folios, phys ranges",
  machine: { ram: "512M", ramBase: "0x40000000", scratch: { lowmem: "16M", global: "32M" } },
  ops: [
    { op: "test_kho", maxMem: "4M" },
    { op: "folios", count: 400, order: 0, layout: "isolated" },
    { op: "folios", count: 16, order: 2, layout: "isolated" },
    { op: "folios", count: 4, order: 9, layout: "buddy" },
    { op: "phys", size: "2M", align: "2M" },
    { op: "phys", size: "64K", at: "0x50000000" },
  ],
};

interface Report {
  chunks: string[];
  ranges: { start: string; size: string; data: string }[];
}

let tmp: string | undefined;
let ctx: BrowserContext | undefined;
let launched: Promise<BrowserContext> | undefined;
let cli: Promise<[RunResult, RunResult, RunResult, RunResult]> | undefined;
let userDataDir: string | undefined;
const dirA = (): string => path.join(tmp!, "a");
const dirB = (): string => path.join(tmp!, "b");

/** runMap - the real `map` command with @args in @cwd (not blocking: several run at once). */
function runMap(args: string[], cwd = ROOT): Promise<RunResult> {
  return runKernelAsync(MAP, args, { cwd });
}

/**
 * handoff - what `kernel-a --out @dir --scenario S --seed @seed` writes, made
 * in process by kernel-a's code (as fault-helpers.ts kernelAInProcess, whose
 * files format-contract.test.ts pins to kernel-a's): boot.dtb, kho.dtb,
 * memory.img (writeImage, with its extents) and report.json.
 */
/* A handoff written in process as kernel-a writes it (data-helpers.ts). */
async function handoff(dir: string, seed: number, scenario: object): Promise<void> {
  await writeHandoffInProcess(dir, scenario, seed);
}

/** The browser context; a clear failure (never a skip) when Chromium did not start. */
function browser(): BrowserContext {
  if (!ctx) throw new Error("Chromium did not start (see beforeAll)");
  return ctx;
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "khosim-map-"));
  userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "khosim-map-chromium-"));
  // The browser starts in its own processes while the handoffs are made here.
  launched = launchChromium(userDataDir, {
    headless: true,
    viewport: { width: 1500, height: 1000 },
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  launched.catch(() => undefined);
  await handoff(dirA(), 1, SCENARIO);
  // The command's process facts: four real `map` processes at once, while B is made and the browser starts.
  cli = Promise.all([
    runMap([dirA(), "--out", path.join(tmp, "map-a.html")]),
    runMap([dirA()], tmp),
    runMap([tmp, "--out", path.join(tmp, "x.html")]),
    runMap([]),
  ]);
  await handoff(dirB(), 2, SCENARIO);
  ctx = await launched;
  await cli;
}, 120_000);

afterAll(async () => {
  // Closed even when beforeAll failed after the launch.
  await (ctx ?? (await launched?.catch(() => undefined)))?.close();
  for (const d of [tmp, userDataDir]) if (d) fs.rmSync(d, { recursive: true, force: true });
});

interface Opened {
  page: Page;
  errors: string[];
  requests: string[];
}

/** open - load @file in a new page, recording console errors, page errors and every non-file request (aborted). */
async function open(file: string, hash = ""): Promise<Opened> {
  const page = await browser().newPage();
  const errors: string[] = [];
  const requests: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`console: ${m.text()}`);
  });
  page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
  await page.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith("file:")) return route.continue();
    requests.push(url);
    return route.abort();
  });
  await page.goto(pathToFileURL(file).href + hash);
  await page.waitForLoadState("load");
  return { page, errors, requests };
}

async function windowOf(page: Page, id = "#khomap-0"): Promise<{ start: number; end: number }> {
  const svg = page.locator(id);
  const start = parseInt((await svg.getAttribute("data-start"))!.slice(2), 16);
  const end = parseInt((await svg.getAttribute("data-end"))!.slice(2), 16);
  return { start, end };
}

test("Chromium (from npm: @sparticuz/chromium) started", () => {
  expect(browser().browser()?.version() ?? "persistent context").toMatch(/\d|persistent context/);
});

describe("npm run map (one handoff)", () => {
  const html = (): string => path.join(tmp!, "map-a.html");

  test("the CLI writes one self-contained HTML file and prints its path; default out/map.html", async () => {
    const [r, d] = await cli!;
    expect(r.stderr).not.toMatch(/warning|error/i);
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(html());
    expect(fs.statSync(html()).size).toBeLessThan(500_000);
    expect(d.status).toBe(0);
    expect(d.stdout.trim()).toBe(path.join("out", "map.html"));
    expect(fs.existsSync(path.join(tmp!, "out", "map.html"))).toBe(true);
  });

  test("bad input: a directory that is not a handoff exits 2 with one line", async () => {
    const [, , bad, none] = await cli!;
    expect(bad.status).toBe(2);
    expect(bad.stderr.trim().split("\n")).toHaveLength(1);
    expect(bad.stderr).toMatch(/^map: .*boot\.dtb/);
    expect(fs.existsSync(path.join(tmp!, "x.html"))).toBe(false);
    expect(none.status).toBe(2);
  });

  test("in Chromium: no errors, no network, the legend, tooltips with the handoff's addresses, zoom", async () => {
    const report = readJson<Report>(path.join(dirA(), "report.json"));
    const { page, errors, requests } = await open(html());
    try {
      // The legend: free memory, scratch, every order 0..10, phys ranges, chunks, KHO FDT.
      const legend = page.locator("#legend");
      await expect(legend.isVisible()).resolves.toBe(true);
      const legendText = (await legend.textContent())!;
      for (const s of ["free memory", "scratch area", "preserved folios by order", "phys range", "chunk page", "KHO FDT", "kho_test FDT", "next chunk"]) expect(legendText).toContain(s);
      expect(await legend.locator(".orders .o").count()).toBe(11);

      // Tooltips: the first preserved range's start address, the chunk list, the KHO FDT.
      const titles = (await page.locator("#khomap-0 title").allTextContents()).join("\n");
      const first = report.ranges[0]!.start;
      expect(titles).toContain(first);
      expect(report.chunks.length).toBeGreaterThanOrEqual(3);
      expect(titles).toContain(`chunk 0 (${report.chunks[0]})`);
      expect(await page.locator("#khomap-0 .callout").count()).toBeGreaterThanOrEqual(5);

      // The overview as the user first sees it (the one picture kept: a screenshot asserts nothing, and
      // each full-page one costs ~0.5 s of CPU; docs/tools.md points to this one).
      fs.mkdirSync(OUT, { recursive: true });
      await page.screenshot({ path: path.join(OUT, "map-test.png"), fullPage: true });

      // Zoom in (button): the visible window shrinks four times.
      const w0 = await windowOf(page);
      expect(w0).toEqual({ start: 0x40000000, end: 0x60000000 });
      await page.click("#zoom-in");
      const w1 = await windowOf(page);
      expect(w1.end - w1.start).toBe((w0.end - w0.start) / 4);
      expect(await page.locator("#window").textContent()).toContain(`0x${w1.start.toString(16)}`);

      // Zoom out, then click on the first preserved range: the window zooms in around it.
      await page.click("#zoom-out");
      expect(await windowOf(page)).toEqual(w0);
      const firstRect = page.locator("#khomap-0 .cells > *").filter({ has: page.locator(`title:text-matches("${first}")`) }).first();
      await firstRect.click({ position: { x: 1, y: 5 } });
      const w2 = await windowOf(page);
      expect(w2.end - w2.start).toBeLessThan(w0.end - w0.start);
      expect(w2.start).toBeLessThanOrEqual(parseInt(first.slice(2), 16));
      expect(w2.end).toBeGreaterThan(parseInt(first.slice(2), 16));

      // Hover describes what is under the pointer.
      await page.locator("#khomap-0 .cells > *").first().hover();
      expect(await page.locator("#status").textContent()).toMatch(/^0x[0-9a-f]+–0x[0-9a-f]+/);

      // Drag selects a window; "0" resets; the address inputs show a chosen range.
      const box = (await page.locator("#khomap-0").boundingBox())!;
      await page.mouse.move(box.x + box.width * 0.2, box.y + box.height * 0.3);
      await page.mouse.down();
      await page.mouse.move(box.x + box.width * 0.4, box.y + box.height * 0.35, { steps: 5 });
      await page.mouse.up();
      const w3 = await windowOf(page);
      expect(w3.end - w3.start).toBeLessThan(w2.end - w2.start);
      await page.keyboard.press("0");
      expect(await windowOf(page)).toEqual(w0);
      await page.fill("#win-start", report.chunks[0]!);
      await page.fill("#win-end", `0x${(parseInt(report.chunks[0]!.slice(2), 16) + 0x4000).toString(16)}`);
      await page.click("#go button[type=submit]");
      const w4 = await windowOf(page);
      expect(w4.start).toBeLessThanOrEqual(parseInt(report.chunks[0]!.slice(2), 16));
      const deep = (await page.locator("#khomap-0 title").allTextContents()).join("\n");
      expect(deep).toContain(`chunk 0 → chunk 1 at ${report.chunks[1]}`);

      // The window is in the URL: reopening shows the same window.
      const hash = new URL(page.url()).hash;
      expect(hash).toMatch(/^#0x[0-9a-f]+-0x[0-9a-f]+$/);
      const again = await open(html(), hash);
      expect(await windowOf(again.page)).toEqual(w4);
      expect(again.errors).toEqual([]);
      await again.page.close();

      expect(errors).toEqual([]);
      expect(requests).toEqual([]);
    } finally {
      await page.close();
    }
  }, 120_000);
});

describe("npm run map (two handoffs)", () => {
  test("both maps and their difference, zoomed together", async () => {
    const html = path.join(tmp!, "map-ab.html");
    // In process: what `map A B --out FILE` writes (its exit 0 and stdout are checked above).
    expect(writeMap([dirA(), dirB()], html).problems).toEqual([]);
    const { page, errors, requests } = await open(html);
    try {
      expect(await page.locator("svg.khomap").count()).toBe(3);
      expect(await page.locator("#section-2").textContent()).toMatch(/classified differently/);
      expect(await page.locator("#khomap-2 .cells [data-cls=differs]").count()).toBeGreaterThan(0);
      const titles = (await page.locator("#khomap-2 title").allTextContents()).join("\n");
      expect(titles).toMatch(/differs: A order-\d+ folios → B /);
      await page.click("#zoom-in");
      const w = await Promise.all(["#khomap-0", "#khomap-1", "#khomap-2"].map((id) => windowOf(page, id)));
      expect(w[1]).toEqual(w[0]);
      expect(w[2]).toEqual(w[0]);
      expect(w[0]!.end - w[0]!.start).toBe(0x20000000 / 4);
      expect(errors).toEqual([]);
      expect(requests).toEqual([]);
    } finally {
      await page.close();
    }
  }, 60_000);
});

/*
 * Far more regions than the map embeds (MAP_DEFAULT_DETAIL segments): 64K
 * isolated order-0 folios on 1 GiB, about 131,000 regions, so the page is
 * aggregated to a coarser granule and must still be small and zoom. The same
 * cap at the 1M-folio, 16 GiB scale of scenarios/isolated-1m.json is checked in
 * process (map-layout.test.ts, mapAggregateCapped).
 */
const MANY = {
  description: "map test: 64K isolated order-0 folios on 1 GiB, far more regions than the map embeds",
  fill: false,
  machine: { ram: "1G", ramBase: "0x40000000", scratch: { lowmem: "16M", global: "32M" } },
  ops: [{ op: "folios", count: 65536, order: 0, layout: "isolated" }],
};

describe("npm run map (far more regions than it embeds)", () => {
  test("64K isolated folios: a small file, aggregated below the cap, that still zooms", async () => {
    const dir = path.join(tmp!, "many");
    await handoff(dir, 1, MANY);
    const html = path.join(tmp!, "map-many.html");
    expect(writeMap([dir], html).problems).toEqual([]);
    const size = fs.statSync(html).size;
    expect(size).toBeLessThan(1_000_000);
    const { page, errors, requests } = await open(html);
    try {
      const stats = (await page.locator("#section-0 .stats").first().textContent())!;
      const m = /([\d,]+) regions, embedded as ([\d,]+) segments at 8 KiB detail/.exec(stats);
      expect(m, stats).not.toBeNull();
      const [regions, segments] = [m![1]!, m![2]!].map((x) => Number(x.replace(/,/g, "")));
      // Each folio and the free page after it, plus the chunks and the rest: over six times the cap.
      expect(regions).toBeGreaterThan(2 * 65536);
      expect(regions).toBeGreaterThan(6 * MAP_DEFAULT_DETAIL);
      expect(segments).toBeGreaterThan(0);
      expect(segments).toBeLessThanOrEqual(MAP_DEFAULT_DETAIL);
      const titles = (await page.locator("#khomap-0 title").allTextContents()).join("\n");
      expect(titles).toMatch(/65,536× order-0 folios \(256 MiB\)/);
      const w0 = await windowOf(page);
      await page.click("#zoom-in");
      await page.click("#zoom-in");
      const w1 = await windowOf(page);
      expect(w1.end - w1.start).toBe((w0.end - w0.start) / 16);
      expect(errors).toEqual([]);
      expect(requests).toEqual([]);
    } finally {
      await page.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

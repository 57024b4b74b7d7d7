/*
 * kernel-a killed (SIGKILL) at each named crash point of the handoff write
 * leaves the previous complete handoff or the new complete one, never a
 * partial directory: KHOSIM_CRASH_AT=NAME makes the process announce the
 * point on stderr and SIGKILL itself there, so every point is proven reached.
 * A kill between the two renames of a replacement leaves --out absent and the
 * previous handoff in a hidden sibling; the next write to --out puts it back.
 * What is left is booted from its files by the successor's boot function (in
 * process: kernel-b's boot on the same bytes; kernel-b itself on a complete
 * handoff is tested end to end elsewhere). Every run is started as soon as
 * the previous handoff exists, a few at a time, each on its own directory;
 * the tests await their own runs.
 */
import { execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { HANDOFF_BOOT_DTB, HANDOFF_KHO_DTB, HANDOFF_MEMORY_IMG, parseBootDtb } from "@khosim/shared/abi";
import { initCsum } from "@khosim/shared/lib";
import { ImageMem } from "@khosim/shared/mm";
import { CRASH_ENV, CRASH_POINTS, CRASH_SIGNAL_ENV, HandoffError, recoverHandoffDir, writeHandoffDir, writerTag, type CrashPointName } from "@khosim/shared/proc";
import { MemHandoff } from "../../src/faults/index.js";
import { KERNEL_A, KERNEL_B, ROOT, nodeArgs, runKernel } from "../../src/run.js";
import { bootMemHandoff } from "../fault-helpers.js";

const FILES = ["boot.dtb", "kho.dtb", "memory.img", "memory.img.extents", "report.json"];
const PREV_SEED = 1;
const NEW_SEED = 2;

let dir: string;
let scenario: string;
let prev: string;

interface Killed {
  signal: NodeJS.Signals | null;
  status: number | null;
  stderr: string;
}

/*
 * At most RUNNING kernel processes at a time through runA, and the leaks
 * test's one-after-another runs beside them (spawnKernel): a few more than
 * the 2 CPUs, so that one's fsync overlaps another's work.
 */
const RUNNING = 3;
let running = 0;
const waiting: (() => void)[] = [];
async function inSlot<T>(f: () => Promise<T>): Promise<T> {
  if (running < RUNNING) running++;
  else await new Promise<void>((r) => waiting.push(r)); // the slot is handed over, still counted
  try {
    return await f();
  } finally {
    const next = waiting.shift();
    if (next) next();
    else running--;
  }
}

function runA(args: string[], crashAt?: CrashPointName, signal?: "SIGINT" | "SIGTERM", kernel = KERNEL_A): Promise<Killed> {
  return inSlot(() => spawnKernel(args, crashAt, signal, kernel));
}

function spawnKernel(args: string[], crashAt: CrashPointName | undefined, signal: "SIGINT" | "SIGTERM" | undefined, kernel: string): Promise<Killed> {
  return new Promise((resolve) => {
    const env = { ...process.env };
    delete env[CRASH_ENV];
    delete env[CRASH_SIGNAL_ENV];
    if (crashAt) env[CRASH_ENV] = crashAt;
    if (signal) env[CRASH_SIGNAL_ENV] = signal;
    const p = spawn(process.execPath, nodeArgs(kernel, [...args, "--log-format", "json"]), { cwd: ROOT, env, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    p.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
    p.on("close", (status, signal) => resolve({ signal, status, stderr }));
  });
}

function seedOf(handoff: string): number {
  return (JSON.parse(fs.readFileSync(path.join(handoff, "report.json"), "utf8")) as { seed: number }).seed;
}

function expectComplete(handoff: string, seed: number): void {
  expect(fs.readdirSync(handoff).sort()).toEqual(FILES);
  expect(seedOf(handoff)).toBe(seed);
}

beforeAll(async () => {
  // The successor's boot checksums kho_test's data (expectRevives).
  await initCsum();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "khosim-kill-"));
  scenario = path.join(dir, "small.json");
  // Small but more than one write batch of memory.img (256 pages), so "mid-image" is mid-way.
  fs.writeFileSync(scenario, JSON.stringify({ machine: { ram: "256M" }, ops: [{ op: "folios", count: 12, order: 6, layout: "contiguous" }] }));
  prev = path.join(dir, "prev");
  const a = runKernel(KERNEL_A, ["--out", prev, "--scenario", scenario, "--seed", String(PREV_SEED), "--log-format", "json"]);
  expect(a.status, a.stderr).toBe(0);
  // Without the variable no crash point fires.
  expect(a.stderr).not.toMatch(/crash point/);
  expectComplete(prev, PREV_SEED);
  // Every kill's run starts now, side by side (each is its own process on its own directory); the tests await theirs.
  leaks = startLeaks();
  replacing = startReplacing();
  fresh = startFresh();
  signals = startSignals();
  bSignal = startBSignal();
  // Each test awaits its own; a test filtered out (-t) must not leave an unhandled rejection behind.
  for (const p of [leaks, replacing, fresh, signals, bSignal]) p.catch(() => undefined);
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/*
 * Where the handoff is after a kill at each point when replacing a previous
 * one: "prev" or "new" at --out, or "aside" (absent at --out, the previous in
 * a hidden sibling). undefined: the point is not on the replacing path.
 */
const REPLACING: Record<CrashPointName, "prev" | "new" | "aside" | undefined> = {
  "after-mkdtemp": "prev",
  "mid-image": "prev",
  "after-fill": "prev",
  "after-fsync": "prev",
  "before-old-aside": "prev",
  "after-old-aside": "aside",
  "before-rename": undefined,
  "after-rename": "new",
  "after-parent-fsync": "new",
};
/*
 * The same for a first write (no previous handoff at --out): "none" or "new".
 * Only the points where the first write takes its own path: the others are
 * the same code as when replacing (before the branch, or its common end).
 */
const FRESH: Partial<Record<CrashPointName, "none" | "new">> = {
  "before-rename": "none",
  "after-rename": "new",
};

/* A run of kernel-a that died by SIGKILL at @point, and said so just before. */
function expectKilledAt(r: Killed, point: CrashPointName): void {
  expect(r.signal, `${point}: status ${r.status}, stderr ${r.stderr.slice(-500)}`).toBe("SIGKILL");
  const marks = r.stderr.split("\n").filter((l) => l.startsWith("khosim: crash point"));
  expect(marks).toEqual([`khosim: crash point ${point}`]);
}

/* The next write to @out recovers: here one that must refuse (no --force), in process. */
async function recoverByNextWrite(out: string): Promise<void> {
  await expect(writeHandoffDir(out, false, () => undefined)).rejects.toThrow(HandoffError);
}

/* The successor's boot on the files of @handoff (read-only, in process): revived, exit 0, nothing written. */
function expectRevives(handoff: string, what: string): void {
  const bootDtb = fs.readFileSync(path.join(handoff, HANDOFF_BOOT_DTB));
  const { ram } = parseBootDtb(bootDtb);
  const image = ImageMem.open(path.join(handoff, HANDOFF_MEMORY_IMG), ram.base, ram.size);
  try {
    const b = bootMemHandoff(new MemHandoff(bootDtb, fs.readFileSync(path.join(handoff, HANDOFF_KHO_DTB)), image), []);
    expect(b.outcome, `${what}: ${b.reason}`).toBe("revived");
    expect(b.exitCode).toBe(0);
    expect(b.writes).toBe(0);
  } finally {
    image.close();
  }
}

/* Every file in @parent other than @name (stray temporary or set-aside siblings). */
function strays(parent: string, name: string): string[] {
  return fs.readdirSync(parent).filter((e) => e !== name);
}

/* The runs of each test, started by beforeAll. */
let replacing: Promise<{ points: CrashPointName[]; outs: Map<CrashPointName, string>; results: Map<CrashPointName, Killed> }>;
let fresh: Promise<{ points: CrashPointName[]; outs: string[]; results: Killed[] }>;
let leaks: Promise<{ parent: string; out: string; left: { point: CrashPointName; r: Killed; strays: string[]; bytes: number }[]; outAfterKills: boolean; r: Killed }>;
let signals: Promise<{ outs: string[]; results: Killed[] }>;
let bSignal: Promise<{ out: string; r: Killed }>;

/* A copy of the previous handoff at @parent/handoff (@parent created). */
function copyPrev(parent: string): string {
  fs.mkdirSync(parent);
  const out = path.join(parent, "handoff");
  execFileSync("cp", ["-a", "--sparse=always", prev, out]);
  return out;
}

/* Replacing a handoff: a kill at each point on the replacing path, each on its own copy of the previous handoff. */
async function startReplacing() {
  const points = CRASH_POINTS.filter((p) => REPLACING[p] !== undefined);
  const outs = new Map(points.map((p) => [p, copyPrev(path.join(dir, `replace-${p}`))]));
  const rs = await Promise.all(points.map((p) => runA(["--out", outs.get(p)!, "--force", "--scenario", scenario, "--seed", String(NEW_SEED)], p)));
  return { points, outs, results: new Map(points.map((p, i) => [p, rs[i]!])) };
}

/* A first write (nothing at --out): a kill at each point of its own path. */
async function startFresh() {
  const points = CRASH_POINTS.filter((p) => FRESH[p] !== undefined);
  const outs = points.map((p) => path.join(dir, `fresh-${p}`, "handoff"));
  const results = await Promise.all(points.map((p, i) => runA(["--out", outs[i]!, "--scenario", scenario, "--seed", String(NEW_SEED)], p)));
  return { points, outs, results };
}

/*
 * Killed while the image is half written, after the fill, and between the two renames (--out moved aside),
 * one after another on the same --out, then a run that completes: what each kill left beside --out.
 */
const LEAK_KINDS: Record<string, string[]> = { "mid-image": ["tmp"], "after-fill": ["tmp"], "after-old-aside": ["old", "tmp"] };
async function startLeaks() {
  const parent = path.join(dir, "leaks");
  const out = copyPrev(parent);
  const left = [];
  for (const point of ["mid-image", "after-fill", "after-old-aside"] as const) {
    const r = await spawnKernel(["--out", out, "--force", "--scenario", scenario, "--seed", String(NEW_SEED)], point, undefined, KERNEL_A);
    const strays = fs.readdirSync(parent).filter((e) => e !== "handoff");
    const bytes = strays.length === 0 ? 0 : Number(execFileSync("du", ["-sb", ...strays.map((e) => path.join(parent, e))], { encoding: "utf8" }).split("\t")[0]);
    left.push({ point, r, strays, bytes });
  }
  const outAfterKills = fs.existsSync(out);
  const r = await spawnKernel(["--out", out, "--force", "--scenario", scenario, "--seed", String(NEW_SEED)], undefined, undefined, KERNEL_A);
  return { parent, out, left, outAfterKills, r };
}

/* [point, signal, what --out holds after]: before the renames the previous handoff; during them the new one (a signal is acted on between steps). */
const SIGNAL_CASES = [
  ["after-mkdtemp", "SIGINT", "prev"],
  ["mid-image", "SIGTERM", "prev"],
  ["after-fsync", "SIGTERM", "prev"],
  ["before-old-aside", "SIGINT", "new"],
] as const;
async function startSignals() {
  const outs = SIGNAL_CASES.map(([p]) => copyPrev(path.join(dir, `signal-${p}`)));
  const results = await Promise.all(SIGNAL_CASES.map(([p, sig], i) => runA(["--out", outs[i]!, "--force", "--scenario", scenario, "--seed", String(NEW_SEED)], p, sig)));
  return { outs, results };
}

/* kernel-b --handoff-out, SIGTERM after the fill. */
async function startBSignal() {
  const out = path.join(dir, "b-signal", "next");
  fs.mkdirSync(path.dirname(out));
  const r = await runA(["--in", prev, "--report", path.join(dir, "succ-b-signal.json"), "--handoff-out", out], "after-fill", "SIGTERM", KERNEL_B);
  return { out, r };
}

describe("kernel-a killed at each crash point of the handoff write", () => {
  test("the lists cover every crash point", () => {
    expect(Object.keys(REPLACING).sort()).toEqual([...CRASH_POINTS].sort());
    // Every point is reached on one path or the other.
    expect(CRASH_POINTS.filter((p) => REPLACING[p] === undefined && FRESH[p] === undefined)).toEqual([]);
  });

  test("replacing a handoff: the previous or the new complete one, and the successor accepts it", { timeout: 240_000 }, async () => {
    const { points, outs, results } = await replacing;
    for (const p of points) {
      const out = outs.get(p)!;
      const parent = path.dirname(out);
      expectKilledAt(results.get(p)!, p);
      if (p === "mid-image") {
        // Killed while writing the image: the temporary sibling holds memory.img and nothing else yet.
        const tmp = strays(parent, "handoff").filter((e) => e.startsWith(".handoff.tmp-"));
        expect(tmp).toHaveLength(1);
        expect(fs.readdirSync(path.join(parent, tmp[0]!))).toEqual(["memory.img"]);
      }
      const want = REPLACING[p];
      if (want === "aside") {
        expect(fs.existsSync(out)).toBe(false);
        const aside = strays(parent, "handoff").filter((e) => e.startsWith(".handoff.old-"));
        expect(aside).toHaveLength(1);
        expectComplete(path.join(parent, aside[0]!), PREV_SEED);
      } else {
        expectComplete(out, want === "prev" ? PREV_SEED : NEW_SEED);
      }
      await recoverByNextWrite(out);
      expectComplete(out, want === "new" ? NEW_SEED : PREV_SEED);
      expect(strays(parent, "handoff"), p).toEqual([]);
    }
    // What is left is a handoff the successor accepts: the previous one and the new one.
    for (const p of ["after-old-aside", "after-rename"] as const) expectRevives(outs.get(p)!, p);
  });

  test("a first write: no directory or the new complete one, and no stray siblings after the next write", { timeout: 240_000 }, async () => {
    const { points, outs, results } = await fresh;
    for (const [i, p] of points.entries()) {
      const out = outs[i]!;
      expectKilledAt(results[i]!, p);
      if (FRESH[p] === "none") {
        expect(fs.existsSync(out), p).toBe(false);
        // The write would have succeeded now; a refusing one only cleans up.
        await writeHandoffDir(out, false, () => undefined);
        expect(fs.readdirSync(out)).toEqual([]);
        fs.rmdirSync(out);
      } else {
        expectComplete(out, NEW_SEED);
        await recoverByNextWrite(out);
      }
      expect(strays(path.dirname(out), "handoff"), p).toEqual([]);
    }
    expectRevives(outs[points.indexOf("after-rename")]!, "after-rename");
  });

  test("SIGKILLs leave disk behind; the next kernel-a run on the same --out leaves no byte beside it", { timeout: 240_000 }, async () => {
    const { parent, out, left, outAfterKills, r } = await leaks;
    // Each kill leaves its own temporary sibling (holding bytes), and each next run removes the one before.
    for (const l of left) {
      expectKilledAt(l.r, l.point);
      expect(l.strays.map((e) => /^\.handoff\.(tmp|old)-\d+-\d+-\w+$/.exec(e)?.[1]).sort(), l.point).toEqual(LEAK_KINDS[l.point]);
      expect(l.bytes, l.point).toBeGreaterThan(4096);
    }
    expect(left.map((l) => l.point)).toEqual(Object.keys(LEAK_KINDS));
    expect(outAfterKills).toBe(false);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/crash point/);
    expect(fs.readdirSync(parent)).toEqual(["handoff"]);
    expectComplete(out, NEW_SEED);
  });

  test("SIGTERM and SIGINT mid-write: the temporary directory removed, --out as it was, exit 143 or 130", { timeout: 240_000 }, async () => {
    const { outs, results } = await signals;
    for (const [i, [p, sig, want]] of SIGNAL_CASES.entries()) {
      const r = results[i]!;
      expect(r.signal, `${p}: ${r.stderr.slice(-400)}`).toBe(null);
      expect(r.status, `${p}: ${r.stderr.slice(-400)}`).toBe(sig === "SIGINT" ? 130 : 143);
      const line = r.stderr.split("\n").find((l) => l.startsWith("kernel-a: interrupted"));
      expect(line, p).toMatch(want === "prev" ? new RegExp(`^kernel-a: interrupted by ${sig}: removed .*\\.handoff\\.tmp-\\d+-\\d+-\\w+; .* left as it was$`) : new RegExp(`^kernel-a: interrupted by ${sig}: .* written before the signal was seen$`));
      expect(strays(path.dirname(outs[i]!), "handoff"), p).toEqual([]);
      expectComplete(outs[i]!, want === "prev" ? PREV_SEED : NEW_SEED);
    }
  });

  test("kernel-b --handoff-out: SIGTERM mid-write removes its temporary directory and exits 143", { timeout: 120_000 }, async () => {
    const { out, r } = await bSignal;
    expect(r.status, r.stderr.slice(-400)).toBe(143);
    expect(r.stderr).toMatch(/^kernel-b: interrupted by SIGTERM: removed .*\.next\.tmp-/m);
    expect(fs.readdirSync(path.dirname(out))).toEqual([]);
  });

  test("only dead writers' leftovers are removed: a live writer's, or a reused pid's with another start time", () => {
    const parent = fs.mkdtempSync(path.join(dir, "tags-"));
    const [pid, start] = writerTag().split("-").map(Number) as [number, number];
    expect(start).toBeGreaterThan(0);
    const dead = 2 ** 22 + 1; // above pid_max's default and its 64-bit limit: never a live pid
    const names = {
      live: `.h.tmp-${pid}-${start}-aaaaaa`,
      liveOld: `.h.old-${pid}-${start}-bbbbbb`,
      reused: `.h.tmp-${pid}-${start - 1}-cccccc`,
      dead: `.h.tmp-${dead}-${start}-dddddd`,
      legacyLive: `.h.tmp-${pid}-eeeeee`,
      legacyDead: `.h.tmp-${dead}-ffffff`,
      other: `.h.notes`,
    };
    for (const n of Object.values(names)) {
      fs.mkdirSync(path.join(parent, n));
      fs.writeFileSync(path.join(parent, n, "memory.img"), "x");
    }
    fs.mkdirSync(path.join(parent, "h"));
    expect(recoverHandoffDir(parent, "h").sort()).toEqual([names.dead, names.legacyDead, names.reused].sort());
    expect(fs.readdirSync(parent).sort()).toEqual(["h", names.legacyLive, names.live, names.liveOld, names.other].sort());
  });
});

/*
 * scripts/build/preload.cjs (kexec -l for a command), through preloadKernel:
 * a held kernel runs nothing until exec(), runs on exec() with its own argv,
 * and abort() ends it without running it. npm run demo and npm run handoff
 * hold kernel-b this way while kernel-a runs.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, test } from "vitest";
import { KERNEL_A, preloadKernel, readJson } from "../src/run.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "khosim-preload-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// The two held processes wait side by side (each test owns its process and directory; expect is the test's own).
describe.concurrent("preloadKernel", () => {
  test("a held kernel-a writes nothing before exec() and its handoff after", async ({ expect }) => {
    const out = path.join(tmp, "run");
    const k = preloadKernel(KERNEL_A, ["--out", out, "--seed", "7", "--log-format", "json"]);
    await sleep(400);
    expect(fs.existsSync(out)).toBe(false);
    const r = await k.exec();
    expect(r.status).toBe(0);
    expect(readJson(path.join(out, "report.json")).seed).toBe(7);
  });

  test("abort() ends a held kernel-a without running it", async ({ expect }) => {
    const out = path.join(tmp, "aborted");
    const k = preloadKernel(KERNEL_A, ["--out", out, "--log-format", "json"]);
    await sleep(200);
    await k.abort();
    expect(fs.existsSync(out)).toBe(false);
  });
});

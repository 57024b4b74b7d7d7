/*
 * LUO end to end, two processes: kernel-a runs luo_kexec_simple.c's stage 1
 * (scenarios/luo/kexec-simple.json), kernel-b boots from the files alone,
 * retrieves session "test-session" and token 0x1A, verifies the memfd and
 * finishes the session; with --handoff-out it hands off again with
 * liveupdate-number 2. A damaged LUO FDT is a kernel panic, exit 5.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { SuccessorJsonSchema, parseHandoffJson } from "@khosim/shared/abi/handoff-json";
import { copyHandoff, makeHandoff, makeTmp, patchFile, readJson, removeTmp, runA, runB, SCENARIOS, type Handoff } from "../handoff-helpers.js";

let tmp: string | undefined;
let h: Handoff;

beforeAll(async () => {
  tmp = makeTmp("luo");
  h = await makeHandoff(path.join(tmp, "a"), ["--scenario", path.join(SCENARIOS, "luo", "kexec-simple.json")]);
}, 120_000);

afterAll(() => removeTmp(tmp));

test("kexec-simple: kernel-b retrieves test-session/0x1A, verifies it, finishes it, and hands off liveupdate-number 2", { timeout: 120_000 }, async () => {
  expect(h.report.luo).toMatchObject({ liveupdateNumber: "0x1", sessions: [{ name: "khosim_state" }, { name: "test-session", files: [{ token: "0x1a", size: 17 }] }] });
  const report = path.join(tmp!, "s.json");
  const next = path.join(tmp!, "b");
  const b = await runB(["--in", h.dir, "--report", report, "--handoff-out", next]);
  expect(b.status, b.stderr).toBe(0);
  const s = parseHandoffJson(SuccessorJsonSchema, readJson(report), report);
  if (s.outcome === "unusable-input") throw new Error(String(s.reason));
  expect(s.luo).toEqual({
    liveupdateNumber: "0x1",
    status: "ok",
    sessions: [{ name: "test-session", retrieved: true, finished: true, files: [{ token: "0x1a", size: 17, outcome: "verified" }] }],
  });
  const r2 = readJson<{ luo: { liveupdateNumber: string } }>(path.join(next, "report.json"));
  expect(r2.luo.liveupdateNumber).toBe("0x2");
});

test("a LUO FDT that is not luo-v1: kernel-b panics, exit 5, one line naming the property", { timeout: 120_000 }, async () => {
  const dir = copyHandoff(h.dir, path.join(tmp!, "bad"));
  const fdt = Number(BigInt(h.report.luo!.fdt) - BigInt(h.report.machine.ramBase));
  const page = Buffer.alloc(4096);
  const fd = fs.openSync(path.join(dir, "memory.img"), "r");
  fs.readSync(fd, page, 0, 4096, fdt);
  fs.closeSync(fd);
  const at = page.indexOf("luo-v1");
  patchFile(path.join(dir, "memory.img"), fdt + at, new TextEncoder().encode("luo-v9"));
  const b = await runB(["--in", dir, "--report", path.join(tmp!, "bad.json")]);
  expect(b.status).toBe(5);
  expect(b.stdout.trim()).toBe(`Kernel panic - not syncing: LUO: The incoming tree failed to initialize properly: FDT 'LUO' at ${h.report.luo!.fdt}: FDT 'LUO' is incompatible with 'luo-v1' (/compatible)`);
  expect(b.stderr).not.toMatch(/\n\s+at /);
});

test("kernel-a: a step that does not fail as its expect says is one line naming the step, exit 2, and no handoff", { timeout: 120_000 }, async () => {
  const file = path.join(tmp!, "bad-expect.json");
  fs.writeFileSync(file, JSON.stringify({ machine: { ram: "256M" }, ops: [], luo: [{ do: "open" }, { do: "create-session", name: "a" }, { do: "create-session", name: "b", expect: "EEXIST" }] }));
  const out = path.join(tmp!, "bad-out");
  const a = await runA(["--scenario", file, "--out", out]);
  expect(a.status).toBe(2);
  expect(a.stderr.trim().split("\n").filter((l) => !l.startsWith("{"))).toEqual([`kernel-a: ${file}: luo[2].expect: expected -EEXIST, got success`]);
  expect(fs.existsSync(out)).toBe(false);
});

/*
 * Issue 13's whole case, in process: scenarios/vm-host.json (two NUMA nodes
 * with RAM holes, kho_scratch=, a reserve_mem= reservation, two vmalloc areas
 * and a guest-memory memfd in LUO session "vm-guest") handed over and carried
 * through 5 generations, every part revived and verified in each. The memfd
 * is cut from 1 GiB to 8 MiB here; `npm run chain` on the file itself is the
 * full-size run (docs/luo.md).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, expect, it } from "vitest";
import { parseBootDtb } from "../src/abi/boot-dtb.js";
import { rangesFormat } from "../src/kho/formats/index.js";
import { bootSuccessor } from "../src/kho/in/successor.js";
import { successorHandOff } from "../src/kho/in/next.js";
import { coldBootMachine, runAndFinalize } from "../src/kho/out/predecessor.js";
import { parseScenario } from "../src/kho/out/scenario.js";
import { initCsum } from "../src/lib/csum.js";
import { OverlayMem, type PhysMem } from "../src/mm/physmem.js";
import { parseReserveMemCmdline } from "../src/mm/reserve-mem.js";
import { quiet } from "./kernels-helpers.js";

beforeAll(async () => {
  await initCsum();
});

it("vm-host: banks, reserve_mem, vmalloc and a LUO memfd all revive in each of 5 generations", () => {
  const json = JSON.parse(readFileSync(join(__dirname, "..", "..", "scenarios", "vm-host.json"), "utf8"));
  for (const step of json.luo) if (step.do === "memfd") step.size = "8M";
  const s = parseScenario(json, "vm-host.json");
  expect(s.machine.banks!.length).toBe(2);
  const m = coldBootMachine(s, quiet);
  const { handoff: h } = runAndFinalize(m, s, 13, "(test)", quiet, rangesFormat);
  const cmdline = parseReserveMemCmdline("reserve_mem=16M:4096:trace");
  let boot = parseBootDtb(h.bootDtb);
  expect(boot.banks!.length).toBe(2);
  let mem: PhysMem = m.mem;
  const trace = h.reserveMem!.entries[0]!;
  const empty = parseScenario({ machine: { ram: "256M" }, ops: [] }, "(each)");
  for (let gen = 1; gen <= 5; gen++) {
    const over = new OverlayMem(mem);
    const sb = bootSuccessor(boot, over, { maxOrder: 10, log: quiet, reserveMem: cmdline });
    const r = sb.report;
    expect(r.outcome, `generation ${gen}: ${r.reason}`).toBe("revived");
    expect(r.luo!.liveupdateNumber).toBe(`0x${gen}`);
    expect(r.luo!.sessions.map((x) => [x.name, x.finished, x.files.map((f) => [f.size, f.outcome])])).toEqual([["vm-guest", true, [[8 << 20, "verified"]]]]);
    expect(r.vmalloc!.map((v) => [v.totalPages, v.order, v.outcome])).toEqual([
      [600, 0, "verified"],
      [1024, 9, "verified"],
    ]);
    expect(r.reserveMem!.map((x) => [x.name, x.outcome, Number(x.start)])).toEqual([["trace", "revived", trace.start]]);
    const next = successorHandOff({ ram: boot.ram, maxOrder: 10, mem: over, sb, scenario: empty, file: "(each)", seed: gen + 1, format: rangesFormat });
    boot = parseBootDtb(next.handoff.bootDtb);
    expect(boot.banks!.length).toBe(2);
    mem = over;
  }
});

/*
 * npm run luo-stress [-- --seed N]
 *
 * The LUO stress selftests (luo_stress_sessions.c, luo_stress_files.c) at
 * 6.19's limits, in process through kernel-a's and kernel-b's code (the
 * same functions the commands run, without the files): a scenario fills the
 * session table (818 sessions + the state session = LUO_SESSION_MAX 819,
 * each with a one-page memfd) and expects the 820th -ENOMEM; another fills
 * one session with LUO_FILE_MAX 128 memfds and expects the 129th -ENOSPC.
 * Each hands off and the successor must retrieve, verify and finish all of
 * it. Prints one line per case with its figures; exit 0 when every file
 * verified, 1 otherwise, 2 for a usage error.
 */
import { bootSuccessor, coldBootMachine, parseScenario, rangesFormat, runAndFinalize, ScenarioError } from "@khosim/shared/kho";
import { LUO_FILE_MAX, LUO_SESSION_MAX, parseBootDtb } from "@khosim/shared/abi";
import { createLogger, initCsum } from "@khosim/shared/lib";
import { intOption, newCommand, runMain, withExitCodes } from "@khosim/shared/proc";

const quiet = createLogger("luo-stress", "json", "silent");

/* The steps of one case: @sessions sessions of @files one-page memfds each, then the call that must fail. */
function steps(sessions: number, files: number, overflow: "session" | "file"): unknown[] {
  const s: unknown[] = [{ do: "open" }];
  for (let i = 0; i < sessions; i++) {
    s.push({ do: "create-session", name: `stress-${i}`, as: `s${i}` });
    for (let f = 0; f < files; f++) {
      s.push({ do: "memfd", as: `m${i}.${f}`, size: "4K" }, { do: "preserve-fd", session: `s${i}`, fd: `m${i}.${f}`, token: f });
    }
  }
  if (overflow === "session") s.push({ do: "create-session", name: "one-too-many", expect: "ENOMEM" });
  else s.push({ do: "memfd", as: "extra", size: "4K" }, { do: "preserve-fd", session: "s0", fd: "extra", token: files, expect: "ENOSPC" });
  return s;
}

function runCase(name: string, luo: unknown[], seed: number): boolean {
  const t0 = process.hrtime.bigint();
  const s = parseScenario({ machine: { ram: "2G" }, ops: [], luo }, name);
  const m = coldBootMachine(s, quiet);
  const { work, handoff } = runAndFinalize(m, s, seed, name, quiet, rangesFormat);
  const t1 = process.hrtime.bigint();
  const rep = bootSuccessor(parseBootDtb(handoff.bootDtb), m.mem, { maxOrder: 10, log: quiet }).report;
  const t2 = process.hrtime.bigint();
  const sessions = rep.luo?.sessions ?? [];
  const files = sessions.reduce((n, x) => n + x.files.length, 0);
  const verified = sessions.reduce((n, x) => n + x.files.filter((f) => f.outcome === "verified").length, 0);
  const finished = sessions.filter((x) => x.finished).length;
  const ms = (a: bigint, b: bigint): string => (Number(b - a) / 1e6).toFixed(0);
  process.stdout.write(
    `${name}: ${handoff.luo!.sessions.length} sessions (with the state session) and ${files} files handed over; ` +
      `successor: ${rep.outcome}, ${finished} sessions finished, ${verified}/${files} files verified; ` +
      `preserved ${(work.track.totalBytes / 2 ** 20).toFixed(1)} MiB in ${rep.reserveCalls} blocks; kernel-a ${ms(t0, t1)} ms, kernel-b ${ms(t1, t2)} ms\n`,
  );
  return rep.outcome === "revived" && verified === files;
}

async function main(): Promise<number> {
  const cmd = newCommand("luo-stress", "LUO at 6.19's limits: 819 sessions (820th -ENOMEM), 128 files a session (129th -ENOSPC), each handed over and verified");
  cmd.option("--seed <n>", "PRNG seed (default 1)", intOption("--seed", 0, 2 ** 32 - 1));
  withExitCodes(cmd, [
    [0, "every case handed over and every file verified"],
    [1, "a case did not revive or a file did not verify"],
    [2, "usage error, or a step did not end as the selftest expects"],
  ]);
  cmd.parse(process.argv);
  const seed = cmd.opts<{ seed?: number }>().seed ?? 1;
  await initCsum();
  // One slot of LUO_SESSION_MAX is the harness's state session.
  const a = runCase("sessions", steps(LUO_SESSION_MAX - 1, 1, "session"), seed);
  const b = runCase("files", steps(1, LUO_FILE_MAX, "file"), seed);
  return a && b ? 0 : 1;
}

runMain("luo-stress", main, (e) => (e instanceof ScenarioError ? 2 : undefined));

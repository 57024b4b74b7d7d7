/*
 * The pretty log format: pino's JSON record as one line, time, level, message
 * and the other fields as JSON (pid, hostname and name left out), the level
 * coloured only when asked.
 */
import { expect, test } from "vitest";
import { prettyLine } from "../src/lib/log.js";

/* A local time whose fields are all distinct, so a swapped field shows. */
const T = new Date(2026, 0, 2, 3, 4, 5, 67).getTime();

test("a record with extra fields: [HH:MM:ss.mmm] LEVEL: message {fields}", () => {
  const rec = { level: 30, time: T, pid: 1, hostname: "h", name: "kernel-a", msg: "KHO: handoff written", wallMs: 1.5, chunks: 1 };
  expect(prettyLine(JSON.stringify(rec) + "\n", false)).toBe('[03:04:05.067] INFO: KHO: handoff written {"wallMs":1.5,"chunks":1}\n');
});

test("a record with nothing but its message; each level's label", () => {
  const labels = { 10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL" };
  for (const [level, label] of Object.entries(labels)) {
    expect(prettyLine(JSON.stringify({ level: Number(level), time: T, msg: "m" }), false)).toBe(`[03:04:05.067] ${label}: m\n`);
  }
});

test("colour wraps the level alone in its ANSI colour", () => {
  expect(prettyLine(JSON.stringify({ level: 40, time: T, msg: "careful" }), true)).toBe("[03:04:05.067] \x1b[33mWARN\x1b[39m: careful\n");
});

test("a line that is not JSON passes through unchanged", () => {
  expect(prettyLine("not json\n", true)).toBe("not json\n");
});

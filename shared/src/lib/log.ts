/*
 * Kernel-log style logging with pino, always to stderr (stdout is left for
 * what a command prints as its result). Messages read like printk lines
 * ("KHO: ...", "memblock: ..."): like pr_fmt(), the prefix is part of the
 * message text, so the JSON and pretty forms carry the same words.
 *
 * pino is loaded on the first createLogger() call (CommonJS, so require() is
 * synchronous), so that `--help` does not pay for it. The pretty format is
 * pino's JSON line formatted here, one line per record as pino-pretty's
 * singleLine mode prints it: pino-pretty and its dependencies cost a kernel
 * more start-up time than all of its own work on a small handoff.
 */
import * as fs from "node:fs";
import { createRequire } from "node:module";
import type { Logger } from "pino";
import type * as Pino from "pino";

export type LogFormat = "pretty" | "json";
export type { Logger };

/** LOG_FORMATS accepted by --log-format. */
export const LOG_FORMATS: readonly LogFormat[] = ["pretty", "json"];

const require = createRequire(import.meta.url);

/* pino's level numbers: label and ANSI colour (as pino-pretty colours them). */
const LEVELS: Record<number, [string, number]> = { 10: ["TRACE", 90], 20: ["DEBUG", 34], 30: ["INFO", 32], 40: ["WARN", 33], 50: ["ERROR", 31], 60: ["FATAL", 41] };
/* Fields a pretty line leaves out or shows in its own place. */
const OMIT = new Set(["level", "time", "msg", "pid", "hostname", "name"]);

const pad = (n: number, w = 2): string => String(n).padStart(w, "0");

/**
 * prettyLine - one pino JSON record as a pretty line:
 * "[HH:MM:ss.mmm] LEVEL: message {other fields as JSON}\n" (local time);
 * @colour wraps the level in its ANSI colour. A line that is not a JSON
 * object is returned as is.
 */
export function prettyLine(json: string, colour: boolean): string {
  let r: Record<string, unknown>;
  try {
    r = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const t = new Date(typeof r["time"] === "number" ? r["time"] : Date.now());
  const [label, ansi] = LEVELS[r["level"] as number] ?? [String(r["level"]), 0];
  const level = colour && ansi ? `\x1b[${ansi}m${label}\x1b[${ansi === 41 ? 49 : 39}m` : label;
  const rest: Record<string, unknown> = {};
  let n = 0;
  for (const k of Object.keys(r)) {
    if (!OMIT.has(k)) {
      rest[k] = r[k];
      n++;
    }
  }
  const msg = typeof r["msg"] === "string" ? ` ${r["msg"]}` : "";
  return `[${pad(t.getHours())}:${pad(t.getMinutes())}:${pad(t.getSeconds())}.${pad(t.getMilliseconds(), 3)}] ${level}:${msg}${n ? ` ${JSON.stringify(rest)}` : ""}\n`;
}

/**
 * createLogger - the root logger of a khosim process.
 * @name: process name ("kernel-a", "kernel-b", ...), the `name` field.
 * @format: "pretty" (coloured only on a terminal) or "json" (one object a line);
 *          when undefined: pretty on a terminal, JSON otherwise.
 * @level: pino level, default "info" (KHOSIM_LOG_LEVEL overrides).
 */
export function createLogger(name: string, format?: LogFormat, level?: string): Logger {
  const { pino } = require("pino") as typeof Pino;
  const isTty = process.stderr.isTTY === true;
  const fmt: LogFormat = format ?? (isTty ? "pretty" : "json");
  const lvl = level ?? process.env["KHOSIM_LOG_LEVEL"] ?? "info";
  if (fmt === "json") {
    return pino({ name, level: lvl, base: { name } }, pino.destination({ fd: 2, sync: true }));
  }
  // Synchronous, like the JSON destination: nothing is lost when the process exits.
  return pino({ name, level: lvl }, { write: (line: string) => void fs.writeSync(2, prettyLine(line, isTty)) });
}

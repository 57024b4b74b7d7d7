/*
 * Kernel-log style logging with pino, always to stderr (stdout is left for
 * what a command prints as its result). Messages read like printk lines
 * ("KHO: ...", "memblock: ..."): like pr_fmt(), the prefix is part of the
 * message text, so the JSON and pretty forms carry the same words.
 *
 * pino and pino-pretty are loaded on the first createLogger() call, and
 * pino-pretty only for the pretty format, so that `--help` and JSON runs do
 * not pay for them at start-up (both are CommonJS, so require() is synchronous).
 */
import { createRequire } from "node:module";
import type { Logger } from "pino";
import type * as Pino from "pino";
import type PinoPretty from "pino-pretty";

export type LogFormat = "pretty" | "json";
export type { Logger };

/** LOG_FORMATS accepted by --log-format. */
export const LOG_FORMATS: readonly LogFormat[] = ["pretty", "json"];

const require = createRequire(import.meta.url);

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
  const pretty = require("pino-pretty") as typeof PinoPretty;
  const stream = pretty({
    destination: 2,
    sync: true,
    colorize: isTty,
    ignore: "pid,hostname,name",
    translateTime: "SYS:HH:MM:ss.l",
    singleLine: true,
  });
  return pino({ name, level: lvl }, stream);
}

/*
 * Progress bars for long work (writing, reading and diffing images of many
 * GiB): on stderr, only when stderr is a terminal and not in CI, so piped and
 * CI output carry nothing extra. cli-progress is loaded only when a bar is shown.
 */
import { createRequire } from "node:module";
import type CliProgress from "cli-progress";

export interface Progress {
  /** Report @done of @total units; cheap to call often (redraws are throttled). */
  update(done: number, total: number): void;
  stop(): void;
}

const NONE: Progress = { update: () => undefined, stop: () => undefined };

/** progressEnabled - true when a bar would be shown. */
export function progressEnabled(): boolean {
  return process.stderr.isTTY === true && !process.env["CI"];
}

/**
 * createProgress - a bar labelled @label counting @unit ("MiB", "pages"...),
 * or a no-op when progressEnabled() is false.
 */
export function createProgress(label: string, unit = "MiB"): Progress {
  if (!progressEnabled()) return NONE;
  const cliProgress = createRequire(import.meta.url)("cli-progress") as typeof CliProgress;
  const bar = new cliProgress.SingleBar(
    { stream: process.stderr, format: `${label} [{bar}] {percentage}% {value}/{total} ${unit} {eta_formatted}`, hideCursor: true, clearOnComplete: true, fps: 10 },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(done, total) {
      if (!started) {
        bar.start(total, 0);
        started = true;
      }
      bar.setTotal(total);
      bar.update(done);
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

/*
 * SIGINT and SIGTERM while a process holds something it must undo (the
 * temporary directory of a handoff write): run the undo, say so in one line,
 * and exit 128 + the signal number (130, 143), as a shell reports a process
 * a signal ended.
 *
 * Node runs a signal listener only when the event loop turns, never in the
 * middle of synchronous code, so a listener is installed only while there is
 * something to undo (the rest of a run keeps the default action: the signal
 * ends the process at once) and the holder offers interruptPoint() where it
 * is safe to stop. A signal that arrives inside a synchronous step is acted
 * on at the next such point.
 */

/** The signals handled, with the exit code each gives (128 + its number). */
export const INTERRUPT_SIGNALS = { SIGINT: 130, SIGTERM: 143 } as const;
export type InterruptSignal = keyof typeof INTERRUPT_SIGNALS;

/** The lines a command that writes a handoff adds to its help's exit codes. */
export const INTERRUPT_EXIT_CODES: readonly (readonly [number, string])[] = [
  [INTERRUPT_SIGNALS.SIGINT, "interrupted by SIGINT (Ctrl-C) while writing a handoff: its temporary directory removed, the output as it was"],
  [INTERRUPT_SIGNALS.SIGTERM, "interrupted by SIGTERM while writing a handoff: its temporary directory removed, the output as it was"],
];

type Undo = (signal: InterruptSignal) => string;

/* What to undo on a signal, newest last; the listeners exist while it is non-empty. */
const undos: Undo[] = [];
const listeners = new Map<InterruptSignal, () => void>();
let progName = "khosim";

/** setInterruptProg - the command name the interruption line starts with (runMain sets it). */
export function setInterruptProg(prog: string): void {
  progName = prog;
}

function onSignal(signal: InterruptSignal): void {
  const said: string[] = [];
  for (const u of undos.splice(0).reverse()) {
    try {
      said.push(u(signal));
    } catch (e) {
      said.push(`cleanup failed: ${(e as Error).message}`);
    }
  }
  process.stderr.write(`${progName}: interrupted by ${signal}${said.length ? `: ${said.join("; ")}` : ""}\n`);
  process.exit(INTERRUPT_SIGNALS[signal]);
}

/**
 * onInterrupt - until the returned release function is called, SIGINT and
 * SIGTERM run @undo (which returns one line saying what it did) and exit 130
 * or 143. Several holders may be registered; they are undone newest first.
 * The signal is acted on at the next interruptPoint() (or any other turn of
 * the event loop), never inside synchronous code.
 */
export function onInterrupt(undo: Undo): () => void {
  undos.push(undo);
  if (listeners.size === 0) {
    for (const s of Object.keys(INTERRUPT_SIGNALS) as InterruptSignal[]) {
      const l = (): void => onSignal(s);
      listeners.set(s, l);
      process.on(s, l);
    }
  }
  return () => {
    const i = undos.indexOf(undo);
    if (i >= 0) undos.splice(i, 1);
    if (undos.length === 0) {
      for (const [s, l] of listeners) process.off(s, l);
      listeners.clear();
    }
  };
}

/**
 * interruptPoint - let the event loop turn once, so that a SIGINT or SIGTERM
 * that arrived during the preceding synchronous work is acted on here.
 */
export function interruptPoint(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

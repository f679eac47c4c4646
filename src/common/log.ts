import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

/**
 * Structured logs (pino). Categories name the layer and the thing: `sip.transport.udp`, `sip.tsx.nict`,
 * `turn.alloc`. Credentials and whole messages are logged only at `debug`/`trace`; the redact list is a second
 * fence for fields that must never reach a log whatever the level.
 */
export function createLogger(options: { level?: string; name?: string; destination?: pino.DestinationStream } = {}) {
  const base = pino(
    {
      name: options.name ?? 'crossway',
      level: options.level ?? process.env.CROSSWAY_LOG_LEVEL ?? 'info',
      redact: {
        paths: ['password', '*.password', 'secret', '*.secret', 'authorization', '*.authorization', 'key', '*.key'],
        censor: '[redacted]',
      },
    },
    options.destination,
  );
  return base;
}

/** A logger that drops everything: the default for engines under test. */
export const silentLogger: Logger = pino({ level: 'silent' });

/** A child logger for one category. */
export function category(log: Logger, name: string, bindings: Record<string, unknown> = {}): Logger {
  return log.child({ cat: name, ...bindings });
}

/**
 * A counted, rate-limited log line for malformed input: `"<what> => <action>"`. The first occurrence of each key in a
 * window is logged at `warn`, later ones only counted; the count is logged when the window rolls over.
 */
export class RateLimitedLog {
  readonly #log: Logger;
  readonly #windowMs: number;
  readonly #now: () => number;
  #windowStart = 0;
  #seen = new Map<string, number>();

  constructor(log: Logger, now: () => number, windowMs = 10_000) {
    this.#log = log;
    this.#now = now;
    this.#windowMs = windowMs;
  }

  warn(key: string, message: string, fields: Record<string, unknown> = {}): void {
    const now = this.#now();
    if (now - this.#windowStart >= this.#windowMs) {
      for (const [k, n] of this.#seen) if (n > 1) this.#log.warn({ key: k, suppressed: n - 1 }, `${k} => repeated`);
      this.#seen.clear();
      this.#windowStart = now;
    }
    const n = (this.#seen.get(key) ?? 0) + 1;
    this.#seen.set(key, n);
    if (n === 1) this.#log.warn(fields, message);
  }
}

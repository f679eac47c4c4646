/**
 * One error base for the whole project. Every error carries a stable `code` that logs, tests and the API can
 * rely on, and an optional `cause`. Three families are kept apart:
 * - programming errors (a bug in Crossway: `InternalError`),
 * - operational errors (the world failed us: transport, timeout, store: `OperationalError`),
 * - protocol rejections (a peer sent something we refuse: `ProtocolError`, carrying a status to answer with).
 */
export class CrosswayError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A bug: an invariant of our own code did not hold. */
export class InternalError extends CrosswayError {}

/** The environment failed: a socket, a file, a timer, a directory server. */
export class OperationalError extends CrosswayError {}

/** A peer sent something we refuse; `status` is the protocol answer (a SIP status code, a STUN error code…). */
export class ProtocolError extends CrosswayError {
  readonly status: number;

  constructor(code: string, status: number, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.status = status;
  }
}

/** Configuration refused at start or at change, with the path of every bad field. */
export class ConfigError extends CrosswayError {
  readonly issues: readonly { path: string; message: string }[];

  constructor(issues: readonly { path: string; message: string }[], source?: string) {
    const where = source ? ` in ${source}` : '';
    super(
      'ERR_CONFIG_INVALID',
      `invalid configuration${where}:\n${issues.map((i) => `  - ${i.path || '(root)'}: ${i.message}`).join('\n')}`,
    );
    this.issues = issues;
  }
}

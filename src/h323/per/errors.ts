import { CrosswayError } from '../../common/errors.ts';

/**
 * The only error the PER codec produces. `path` names the field where decoding or encoding failed, from the
 * outermost type down (`RasMessage.registrationRequest.terminalAlias[2].h323-ID`); `detail` says what was wrong.
 */
export class PerError extends CrosswayError {
  #segments: string[] = [];
  #root = '';
  readonly detail: string;

  constructor(code: 'ERR_PER_DECODE' | 'ERR_PER_ENCODE' | 'ERR_PER_LIMIT', detail: string) {
    super(code, detail);
    this.detail = detail;
  }

  /** Adds one path segment in front (`.field`, `[3]`); called while the error unwinds. */
  prepend(segment: string): this {
    this.#segments.push(segment);
    return this;
  }

  /** Sets the root type name and finalises `message` to `path: detail`. */
  finish(root: string): this {
    this.#root = root;
    this.message = `${this.path(root)}: ${this.detail}`;
    return this;
  }

  /** The field path, from `root` (by default the root type named by `finish`). */
  path(root = this.#root): string {
    let p = root;
    for (let i = this.#segments.length - 1; i >= 0; i--) p += this.#segments[i];
    return p;
  }
}

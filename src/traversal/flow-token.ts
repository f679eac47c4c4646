import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { NodeStore } from '../store/database.ts';

/** The flow a request arrived on, as a flow token carries it (RFC 5626 §5.2). */
export interface TokenFlow {
  transport: string;
  address: string;
  port: number;
  /** The connection it arrived on (TCP/TLS); only honoured by the process that made the token. */
  connectionId?: string;
}

const KEY_BYTES = 32;
const MAC_CHARS = 16;
/** Longest token body read (base64url of the JSON flow): bounds the work an attacker's Route can cause. */
const MAX_BODY_CHARS = 512;
const TOKEN_RE = /sip:cw-([A-Za-z0-9_-]{1,512})\.([A-Za-z0-9_-]{16})@/;

/**
 * Stateless flow tokens for the Path / Record-Route URIs an edge puts in front of an outside endpoint's requests
 * (RFC 5626 §5.2): the flow (transport, source address and port, connection id) in the clear, HMAC-SHA-256 signed with
 * a key only this node holds, so nobody else can make one that routes through the node. With a key kept in the node's
 * store, a token made before a restart still decodes to the endpoint's address; the connection id is honoured only by
 * the process that made the token (a restarted process numbers its connections anew, so an old id may name someone
 * else's connection), which the token's boot id tells.
 */
export class FlowTokens {
  readonly #key: Buffer;
  /** This process's boot id: a token from another boot has its connection id dropped. */
  readonly #boot: string;

  constructor(key: Buffer, boot: string = randomBytes(6).toString('base64url')) {
    if (key.length < 16) throw new RangeError('flow token key shorter than 16 bytes');
    this.#key = key;
    this.#boot = boot;
  }

  /** The key kept in the node's store (made at first use): tokens survive a restart of the node. */
  static fromStore(store: NodeStore): FlowTokens {
    store.migrate('traversal', ['CREATE TABLE traversal_keys (name TEXT PRIMARY KEY, key BLOB NOT NULL)']);
    const row = store.db.prepare("SELECT key FROM traversal_keys WHERE name = 'flow-token'").get() as
      | { key: Buffer }
      | undefined;
    if (row && Buffer.isBuffer(row.key) && row.key.length >= 16) return new FlowTokens(Buffer.from(row.key));
    const key = randomBytes(KEY_BYTES);
    store.db.prepare("INSERT OR REPLACE INTO traversal_keys (name, key) VALUES ('flow-token', ?)").run(key);
    return new FlowTokens(key);
  }

  #mac(body: string): string {
    return createHmac('sha256', this.#key).update(body).digest('base64url').slice(0, MAC_CHARS);
  }

  /** `cw-BODY.MAC`: the user part of a URI naming this node and the flow. */
  encode(flow: TokenFlow): string {
    const json = JSON.stringify([flow.transport, flow.address, flow.port, flow.connectionId ?? '', this.#boot]);
    const body = Buffer.from(json).toString('base64url');
    return `cw-${body}.${this.#mac(body)}`;
  }

  /** The flow of a URI (or a Route value) carrying a token this node made; undefined when absent, forged or malformed. */
  decode(uri: string): TokenFlow | undefined {
    const m = TOKEN_RE.exec(uri);
    if (!m || m[1]!.length > MAX_BODY_CHARS) return undefined;
    const body = m[1]!;
    if (!timingSafeEqual(Buffer.from(this.#mac(body)), Buffer.from(m[2]!))) return undefined;
    let v: unknown;
    try {
      v = JSON.parse(Buffer.from(body, 'base64url').toString());
    } catch {
      return undefined;
    }
    if (!Array.isArray(v) || v.length < 4) return undefined;
    const [transport, address, port, connectionId, boot] = v as unknown[];
    if (typeof transport !== 'string' || typeof address !== 'string' || typeof port !== 'number') return undefined;
    if (!Number.isInteger(port) || port <= 0 || port > 65535) return undefined;
    const flow: TokenFlow = { transport, address, port };
    if (typeof connectionId === 'string' && connectionId !== '' && boot === this.#boot)
      flow.connectionId = connectionId;
    return flow;
  }
}

/**
 * The OpenAPI document a node serves: valid JSON whose references resolve, configuration schemas generated from the
 * file's zod schema that agree with what the API accepts and answers, the feedback event schema, and the status
 * section list matching what the nodes serve (TURN on, with a real allocation shown by GET /api/v1/status/turn).
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import { Method } from '../../src/stun/constants.ts';
import { TurnClientSession, turnAttr } from '../../src/turn/client.ts';
import { checkJsonSchema } from '../helpers/json-schema.ts';
import { apiLogin, type MgmtNode, req, setupAdmin, startMgmtNode } from './helpers.ts';

type Doc = {
  openapi: string;
  components: { schemas: Record<string, Record<string, unknown>> };
  webhooks: Record<string, { post: { requestBody: { content: Record<string, { schema: unknown }> } } }>;
  paths: Record<string, Record<string, { parameters?: { name: string; schema: { enum?: string[] } }[] }>>;
};

const PW = 'a long admin password';

describe('the served OpenAPI document', () => {
  let m: MgmtNode;
  let doc: Doc;
  const auth: Record<string, { cookie: string; csrf: string }> = {};
  const schema = (name: string) => ({ $ref: `#/components/schemas/${name}` });

  before(async () => {
    m = await startMgmtNode({ turn: { enabled: true, users: [{ username: 'carol', password: 'c-pw' }] } });
    for (const kind of ['edge', 'core'] as const) {
      await setupAdmin(m, 'admin', PW, kind);
      auth[kind] = await apiLogin(m, 'admin', PW, kind);
    }
    const r = await req(`${m.base()}/api/openapi.json`, { ca: m.ca });
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /^application\/json/);
    doc = JSON.parse(r.text) as Doc;
  });
  after(async () => {
    await m?.node.close();
  });

  it('is OpenAPI 3.1 JSON whose every $ref resolves, with the configuration and feedback event schemas', () => {
    assert.equal(doc.openapi, '3.1.0');
    for (const name of ['Config', 'ConfigPatch', 'RunningConfig', 'FeedbackEvent']) {
      assert.ok(doc.components.schemas[name], `components.schemas.${name}`);
    }
    // Generated from zod, not a bare {type:'object'}: the configuration's sections are there.
    const config = doc.components.schemas.Config as { properties: Record<string, unknown> };
    for (const k of ['role', 'sip', 'management', 'feedback', 'routing', 'media', 'turn']) {
      assert.ok(k in config.properties, `Config.${k}`);
    }
    const refs: string[] = [];
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === 'object') {
        for (const [k, x] of Object.entries(v)) {
          if (k === '$ref') refs.push(String(x));
          else walk(x);
        }
      }
    };
    walk(doc);
    assert.ok(refs.length >= 6, `${refs.length} refs`);
    for (const ref of refs)
      assert.deepEqual(
        checkJsonSchema({ $ref: ref }, null, doc).filter((p) => /unresolved/.test(p)),
        [],
        ref,
      );
    assert.deepEqual(
      doc.webhooks.feedbackEvent!.post.requestBody.content['application/json']!.schema,
      schema('FeedbackEvent'),
    );
    const put = doc.paths['/api/v1/config']!.put as unknown as {
      requestBody: { content: Record<string, { schema: unknown }> };
    };
    assert.deepEqual(put.requestBody.content['application/json']!.schema, schema('Config'));
  });

  it('the running configuration matches RunningConfig and, as a document, Config; the API and the schema agree on bad input', async () => {
    const { cookie, csrf } = auth.edge!;
    const running = await req(`${m.base()}/api/v1/config`, { ca: m.ca, headers: { cookie } });
    assert.equal(running.status, 200);
    const cfg = running.json<Record<string, unknown>>();
    assert.deepEqual(checkJsonSchema(schema('RunningConfig'), cfg, doc), []);
    assert.deepEqual(checkJsonSchema(schema('Config'), cfg, doc), []);
    const validate = (body: unknown) =>
      req(`${m.base()}/api/v1/config/validate`, { ca: m.ca, body, headers: { cookie, 'x-csrf-token': csrf } });
    assert.equal((await validate(cfg)).status, 200);
    for (const bad of [
      { ...cfg, role: 'gateway' },
      { ...cfg, management: { ...(cfg.management as object), sessionIdleMinutes: 0 } },
      { ...cfg, unknownSection: {} },
    ]) {
      assert.notDeepEqual(checkJsonSchema(schema('Config'), bad, doc), [], JSON.stringify(bad).slice(0, 80));
      assert.equal((await validate(bad)).status, 400);
    }
    // A merge patch: partial, null removes; the same patch the API takes.
    const patch = { management: { sessionIdleMinutes: 20 }, feedback: null };
    assert.deepEqual(checkJsonSchema(schema('ConfigPatch'), patch, doc), []);
    const badPatch = { management: { sessionIdleMinutes: 'twenty' } };
    assert.notDeepEqual(checkJsonSchema(schema('ConfigPatch'), badPatch, doc), []);
    const refused = await req(`${m.base()}/api/v1/config`, {
      ca: m.ca,
      method: 'PATCH',
      body: badPatch,
      headers: { cookie, 'x-csrf-token': csrf },
    });
    assert.equal(refused.status, 400);
    const applied = await req(`${m.base()}/api/v1/config`, {
      ca: m.ca,
      method: 'PATCH',
      body: patch,
      headers: { cookie, 'x-csrf-token': csrf },
    });
    assert.equal(applied.status, 200, applied.text);
  });

  it('the FeedbackEvent schema takes an event as nodes send it and refuses a malformed one', () => {
    const ok = {
      seq: 3,
      event: 'registration',
      node: 'core',
      time: '2026-12-07T20:00:00.000Z',
      data: { protocol: 'sip', aor: 'sip:alice@example.com', bindings: 1 },
    };
    assert.deepEqual(checkJsonSchema(schema('FeedbackEvent'), ok, doc), []);
    const h323 = {
      ...ok,
      event: 'unregistration',
      data: {
        protocol: 'h323',
        endpointIdentifier: '0a1b2c3d4e5f',
        aliases: ['h323-ID:alice'],
        callSignalAddress: '127.0.0.1:1720',
        reason: 'expired',
      },
    };
    assert.deepEqual(checkJsonSchema(schema('FeedbackEvent'), h323, doc), []);
    for (const bad of [
      { ...h323, data: { ...h323.data, protocol: 'sip' } },
      { ...h323, data: { ...h323.data, reason: 'replaced' } },
      { ...h323, data: { ...h323.data, aor: 'sip:alice@example.com' } },
    ])
      assert.notDeepEqual(checkJsonSchema(schema('FeedbackEvent'), bad, doc), [], JSON.stringify(bad));
    for (const bad of [
      { ...ok, event: 'registered' },
      { ...ok, data: { protocol: 'sip', aor: 'sip:alice@example.com' } },
      { ...ok, data: { aor: 'sip:alice@example.com', bindings: 1 } },
      { ...ok, data: { ...ok.data, contact: 'sip:x' } },
      { ...ok, event: 'call-attempt' },
      { ...ok, node: 'lab' },
    ]) {
      assert.notDeepEqual(checkJsonSchema(schema('FeedbackEvent'), bad, doc), [], JSON.stringify(bad));
    }
  });

  it('lists exactly the status sections the edge and the core serve, media and turn included', async () => {
    const served = new Set<string>();
    for (const kind of ['edge', 'core'] as const) {
      const r = await req(`${m.base(kind)}/api/v1/status`, { ca: m.ca, headers: { cookie: auth[kind]!.cookie } });
      assert.equal(r.status, 200);
      for (const k of Object.keys(r.json<object>())) served.add(k);
    }
    const param = doc.paths['/api/v1/status/{section}']!.get!.parameters!.find((p) => p.name === 'section')!;
    assert.deepEqual([...served].sort(), [...(param.schema.enum ?? [])].sort());
  });

  it('GET /api/v1/status/turn shows a TURN allocation made on the edge', async () => {
    const { cookie } = auth.edge!;
    const turnPort = m.node.plan.port('turn-udp', 'edge');
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    try {
      const s = new TurnClientSession('carol', 'c-pw');
      const send = async (bytes: Buffer) => {
        const answer = new Promise<Buffer>((resolve, reject) => {
          const t = setTimeout(() => reject(new Error('no TURN answer')), 2000);
          sock.once('message', (msg) => {
            clearTimeout(t);
            resolve(msg);
          });
        });
        sock.send(bytes, turnPort, '127.0.0.1');
        return s.answer(await answer);
      };
      const before = await req(`${m.base()}/api/v1/status/turn`, { ca: m.ca, headers: { cookie } });
      assert.equal(before.status, 200, before.text);
      assert.equal(before.json<{ turn: { count: number } }>().turn.count, 0);
      assert.equal((await send(s.request(Method.allocate, [turnAttr.udpTransport()])))?.error, 401);
      const a = await send(s.request(Method.allocate, [turnAttr.udpTransport()]));
      assert.equal(a?.error, undefined);
      const r = await req(`${m.base()}/api/v1/status/turn`, { ca: m.ca, headers: { cookie } });
      const { turn } = r.json<{
        turn: { count: number; allocations: { username: string; relayed: { port: number }[] }[] };
      }>();
      assert.equal(turn.count, 1);
      assert.equal(turn.allocations[0]!.username, 'carol');
      assert.deepEqual(
        turn.allocations[0]!.relayed.map((x) => x.port),
        a!.relayed.map((x) => x.port),
      );
      // The core has no TURN server: no such section there.
      const core = await req(`${m.base('core')}/api/v1/status/turn`, {
        ca: m.ca,
        headers: { cookie: auth.core!.cookie },
      });
      assert.equal(core.status, 404);
    } finally {
      sock.close();
    }
  });
});

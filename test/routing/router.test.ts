import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { type RoutingConfig, routingConfigSchema } from '../../src/routing/config.ts';
import { compilePattern, isIpAlias, rewrite } from '../../src/routing/patterns.ts';
import { Router, type Zone } from '../../src/routing/router.ts';

type Input = Parameters<typeof routingConfigSchema.parse>[0];

/** A router whose zones hold fixed aliases; records every zone search in `calls`. */
function makeRouter(input: Input, contents: Record<string, string[]>, domains = ['example.com']) {
  const config: RoutingConfig = routingConfigSchema.parse(input);
  const calls: string[] = [];
  const router = new Router<string>({
    config,
    domains,
    wallNow: () => 1_000,
    searcher: {
      async search(zone: Zone, alias: string) {
        calls.push(`${zone.name}:${alias}`);
        if (zone.name === 'Broken') throw new Error('zone down');
        return (contents[zone.name] ?? []).includes(alias) ? [`${zone.name}/${alias}`] : [];
      },
    },
  });
  return { router, calls };
}

const neighbor = (name: string) => ({ name, type: 'neighbor' as const, address: '192.0.2.1' });
const rule = (name: string, priority: number, targetZone: string, extra: Record<string, unknown> = {}) => ({
  name,
  priority,
  targetZone,
  pattern: { type: 'anyAlias' as const },
  ...extra,
});
const req = (alias: string, extra: Record<string, unknown> = {}) => ({
  protocol: 'sip' as const,
  alias,
  sourceZone: 'LocalZone',
  authenticated: false,
  ...extra,
});

describe('routing: patterns', () => {
  test('exact, prefix, suffix and regex match whole aliases, case-insensitively', () => {
    const exact = compilePattern('exact', 'alice@example.com', [])!;
    assert.ok(exact.re.test('Alice@Example.com'));
    assert.ok(!exact.re.test('alice@example.com.evil'));
    const prefix = compilePattern('prefix', '9', [])!;
    assert.equal(rewrite(prefix, '90123', 'strip'), '0123');
    assert.equal(rewrite(prefix, '90123', 'replace', '+44'), '+440123');
    assert.equal(rewrite(prefix, '80123', 'strip'), undefined);
    const suffix = compilePattern('suffix', '@old.example', [])!;
    assert.equal(rewrite(suffix, 'bob@old.example', 'replace', '@new.example'), 'bob@new.example');
    const re = compilePattern('regex', '(\\d{4})@(.*)', [])!;
    assert.equal(rewrite(re, '1234@example.com', 'replace', 'ext\\1@\\2'), 'ext1234@example.com');
    assert.equal(rewrite(re, 'x1234@example.com', 'replace', 'ext\\1'), undefined);
  });

  test('%localdomains% stands for any served domain, escaped', () => {
    const p = compilePattern('suffix', '@%localdomains%', ['example.com', 'corp.example'])!;
    assert.ok(p.re.test('bob@corp.example'));
    assert.ok(p.re.test('bob@example.com'));
    assert.ok(!p.re.test('bob@exampleXcom'), 'the dot is literal');
    const none = compilePattern('suffix', '@%localdomains%', [])!;
    assert.ok(!none.re.test('bob@example.com'), 'no domains: matches nothing');
  });

  test('anyIp recognizes IPv4, IPv6 and ports', () => {
    assert.ok(isIpAlias('alice@192.0.2.7'));
    assert.ok(isIpAlias('192.0.2.7:5070'));
    assert.ok(isIpAlias('bob@[2001:db8::1]:5060'));
    assert.ok(!isIpAlias('bob@example.com'));
  });

  test('replace with a $ in the replacement is literal', () => {
    const p = compilePattern('regex', '(.*)@x', [])!;
    assert.equal(rewrite(p, 'a@x', 'replace', '$1\\1'), '$1a');
  });

  test('a prefix strip never throws and keeps the rest (fuzzed)', () => {
    fc.assert(
      fc.property(fc.string(), fc.string({ minLength: 1 }), (rest, pre) => {
        const p = compilePattern('prefix', pre, [])!;
        assert.equal(rewrite(p, pre + rest, 'strip'), rest);
      }),
    );
  });
});

describe('routing: transforms and call policy', () => {
  test('only the first matching transform (by priority) applies', async () => {
    const { router } = makeRouter(
      {
        transforms: [
          { name: 'late', priority: 20, pattern: { type: 'prefix', value: '0' }, action: 'addPrefix', value: 'X' },
          { name: 'early', priority: 10, pattern: { type: 'prefix', value: '00' }, action: 'replace', value: '+' },
          { name: 'off', priority: 1, enabled: false, pattern: { type: 'prefix', value: '0' }, action: 'strip' },
        ],
      },
      { LocalZone: ['+4412'] },
    );
    assert.deepEqual(router.transform('004412'), { alias: '+4412', applied: 'early' });
    assert.deepEqual(router.transform('0412'), { alias: 'X0412', applied: 'late' });
    assert.deepEqual(router.transform('412'), { alias: '412' });
    const d = await router.route(req('004412'));
    assert.equal(d.kind, 'found');
    const rec = router.history.get(d.searchId)!;
    assert.equal(rec.transform, 'early');
    assert.equal(rec.searchedAlias, '+4412');
  });

  test('call policy: first matching rule decides, after transforms, before any search', async () => {
    const { router, calls } = makeRouter(
      {
        transforms: [{ pattern: { type: 'suffix', value: '@old.example' }, action: 'replace', value: '@example.com' }],
        callPolicy: [
          { source: 'boss@example\\.com', destination: '.*', action: 'allow' },
          { destination: 'ceo@example\\.com', action: 'reject' },
        ],
      },
      { LocalZone: ['ceo@example.com'] },
    );
    const rejected = await router.route(req('ceo@old.example', { sourceAlias: 'intern@example.com' }));
    assert.equal(rejected.kind, 'rejected');
    assert.deepEqual(calls, [], 'no zone searched when policy rejects');
    const allowed = await router.route(req('ceo@old.example', { sourceAlias: 'boss@example.com' }));
    assert.equal(allowed.kind, 'found');
    assert.equal(router.history.get(rejected.searchId)!.policy, 'reject (rule 2)');
    assert.equal(router.history.get(allowed.searchId)!.policy, 'allow (rule 1)');
  });

  test('call policy: a rule naming `authenticated` applies only to requests that were (or were not) authenticated', async () => {
    const { router, calls } = makeRouter(
      {
        callPolicy: [
          { destination: 'vip@example\\.com', authenticated: true, action: 'allow' },
          { destination: 'vip@example\\.com', action: 'reject' },
          { authenticated: false, destination: '9.*', action: 'reject' },
        ],
      },
      { LocalZone: ['vip@example.com', '9123'] },
    );
    assert.deepEqual(router.policy('a@example.com', 'vip@example.com', true), { action: 'allow', rule: 1 });
    assert.deepEqual(router.policy('a@example.com', 'vip@example.com', false), { action: 'reject', rule: 2 });
    assert.deepEqual(router.policy('a@example.com', '9123', false), { action: 'reject', rule: 3 });
    assert.deepEqual(router.policy('a@example.com', '9123', true), { action: 'allow' });
    assert.deepEqual(
      router.policy('a@example.com', '9123'),
      { action: 'reject', rule: 3 },
      'unauthenticated by default',
    );
    const anon = await router.route(req('9123', { protocol: 'h323', authenticated: false }));
    assert.equal(anon.kind, 'rejected');
    assert.deepEqual(calls, []);
    const signed = await router.route(req('9123', { protocol: 'h323', authenticated: true }));
    assert.equal(signed.kind, 'found');
    assert.equal(router.history.get(anon.searchId)!.policy, 'reject (rule 3)');
    assert.equal(router.history.get(signed.searchId)!.policy, 'allow (no rule)');
    assert.equal(router.history.get(signed.searchId)!.authenticated, true);
  });
});

describe('routing: search rules', () => {
  test('priority order: a lower number is searched first and found stops the search', async () => {
    const { router, calls } = makeRouter(
      {
        zones: [neighbor('A'), neighbor('B')],
        searchRules: [rule('toB', 20, 'B'), rule('toA', 10, 'A')],
      },
      { A: ['x@example.com'], B: ['x@example.com'] },
    );
    const d = await router.route(req('x@example.com'));
    assert.equal(d.kind, 'found');
    assert.deepEqual(calls, ['A:x@example.com']);
    if (d.kind === 'found')
      assert.deepEqual(
        d.targets.map((t) => t.zone),
        ['A'],
      );
  });

  test('equal priority: every matching rule is searched in parallel and all hits are targets', async () => {
    const { router, calls } = makeRouter(
      {
        zones: [neighbor('A'), neighbor('B'), neighbor('C')],
        searchRules: [rule('toA', 10, 'A'), rule('toB', 10, 'B'), rule('toC', 20, 'C')],
      },
      { A: ['x'], B: ['x'], C: ['x'] },
    );
    const d = await router.route(req('x'));
    assert.equal(d.kind, 'found');
    assert.deepEqual(calls.sort(), ['A:x', 'B:x']);
    if (d.kind === 'found') assert.deepEqual(d.targets.map((t) => t.target).sort(), ['A/x', 'B/x']);
  });

  test('continue goes on to the next priority when not found; stop does not', async () => {
    const zones = [neighbor('A'), neighbor('B')];
    const cont = makeRouter({ zones, searchRules: [rule('a', 10, 'A'), rule('b', 20, 'B')] }, { B: ['x'] });
    assert.equal((await cont.router.route(req('x'))).kind, 'found');
    assert.deepEqual(cont.calls, ['A:x', 'B:x']);
    const stop = makeRouter(
      { zones, searchRules: [rule('a', 10, 'A', { onSuccess: 'stop' }), rule('b', 20, 'B')] },
      { B: ['x'] },
    );
    const d = await stop.router.route(req('x'));
    assert.equal(d.kind, 'not-found');
    assert.deepEqual(stop.calls, ['A:x']);
    // A stop rule that does not match does not stop the search.
    const miss = makeRouter(
      {
        zones,
        searchRules: [
          rule('a', 10, 'A', { onSuccess: 'stop', pattern: { type: 'prefix', value: '9' } }),
          rule('b', 20, 'B'),
        ],
      },
      { B: ['x'] },
    );
    assert.equal((await miss.router.route(req('x'))).kind, 'found');
  });

  test('strip and regex replace change the alias sent to the zone', async () => {
    const { router, calls } = makeRouter(
      {
        zones: [neighbor('PSTN'), neighbor('Video')],
        searchRules: [
          rule('pstn', 10, 'PSTN', { pattern: { type: 'prefix', value: '9' }, onMatch: 'strip' }),
          rule('video', 10, 'Video', {
            pattern: { type: 'regex', value: '(\\d+)@video\\.example' },
            onMatch: 'replace',
            replace: '\\1@vc.example',
          }),
        ],
      },
      { PSTN: ['0123'], Video: ['4321@vc.example'] },
    );
    const a = await router.route(req('90123'));
    assert.equal(a.kind, 'found');
    if (a.kind === 'found') assert.equal(a.targets[0]!.alias, '0123');
    const b = await router.route(req('4321@video.example'));
    assert.equal(b.kind, 'found');
    assert.deepEqual(calls, ['PSTN:0123', 'Video:4321@vc.example']);
  });

  test('source filter and must-be-authenticated', async () => {
    const { router } = makeRouter(
      {
        zones: [neighbor('A'), neighbor('Partner')],
        searchRules: [
          rule('localOnly', 10, 'A', { source: 'localZone' }),
          rule('fromPartner', 10, 'A', { source: 'zone', sourceZone: 'Partner' }),
          rule('authOnly', 20, 'A', { requireAuthenticated: true }),
        ],
      },
      { A: ['x'] },
    );
    const local = await router.route(req('x'));
    assert.equal(local.kind, 'found');
    assert.equal((await router.route(req('x', { sourceZone: 'Partner' }))).kind, 'found');
    const stranger = await router.route(req('x', { sourceZone: 'DefaultZone' }));
    assert.equal(stranger.kind, 'not-found');
    const trace = router.history.get(stranger.searchId)!.rules.map((r) => `${r.rule}:${r.result}`);
    assert.deepEqual(trace, [
      'localOnly:skipped-source',
      'fromPartner:skipped-source',
      'authOnly:skipped-unauthenticated',
    ]);
    assert.equal((await router.route(req('x', { sourceZone: 'DefaultZone', authenticated: true }))).kind, 'found');
  });

  test('anyIp matches only IP aliases; a throwing zone counts as not found and is traced', async () => {
    const { router } = makeRouter(
      {
        zones: [neighbor('Broken'), { name: 'Dns', type: 'dns' }],
        searchRules: [rule('broken', 5, 'Broken'), rule('ip', 10, 'Dns', { pattern: { type: 'anyIp' } })],
      },
      { Dns: ['bob@192.0.2.9'] },
    );
    const d = await router.route(req('bob@192.0.2.9'));
    assert.equal(d.kind, 'found');
    const rec = router.history.get(d.searchId)!;
    assert.equal(rec.rules[0]!.result, 'error');
    assert.equal(rec.rules[0]!.error, 'zone down');
    assert.equal((await router.route(req('bob@example.com'))).kind, 'not-found');
  });

  test('the default configuration sends any alias to the local zone', async () => {
    const { router, calls } = makeRouter({}, { LocalZone: ['alice@example.com'] });
    assert.equal((await router.route(req('alice@example.com'))).kind, 'found');
    assert.equal((await router.route(req('nobody@example.com'))).kind, 'not-found');
    assert.deepEqual(calls, ['LocalZone:alice@example.com', 'LocalZone:nobody@example.com']);
  });

  test('the search history is a bounded ring, newest first', async () => {
    const { router } = makeRouter({ searchHistorySize: 3 }, {});
    for (const a of ['a', 'b', 'c', 'd', 'e']) await router.route(req(a));
    assert.equal(router.history.size, 3);
    assert.deepEqual(
      router.history.recent().map((r) => r.alias),
      ['e', 'd', 'c'],
    );
    assert.equal(router.history.get(1), undefined);
  });

  test('a found search under "continue" rules carries a continuation; resume records the answers and tries the next levels', async () => {
    const { router, calls } = makeRouter(
      {
        zones: [neighbor('A'), neighbor('B'), neighbor('C')],
        searchRules: [rule('a', 10, 'A'), rule('b', 20, 'B'), rule('c', 30, 'C')],
      },
      { A: ['bob@x'], B: ['bob@x'], C: ['bob@x'] },
    );
    const first = await router.route(req('bob@x'));
    assert.equal(first.kind, 'found');
    if (first.kind !== 'found') return;
    assert.deepEqual(
      first.targets.map((t) => t.zone),
      ['A'],
    );
    assert.ok(first.continuation);
    const second = await router.resume(first.continuation, [{ zone: 'A', status: 404 }]);
    assert.equal(second.kind, 'found');
    if (second.kind !== 'found') return;
    assert.equal(second.searchId, first.searchId, 'the same history record');
    assert.deepEqual(
      second.targets.map((t) => t.zone),
      ['B'],
    );
    const third = await router.resume(second.continuation!, [{ zone: 'B', status: 480 }]);
    assert.equal(third.kind, 'found');
    if (third.kind !== 'found') return;
    assert.equal(third.continuation, undefined, 'no level left after C');
    assert.deepEqual(calls, ['A:bob@x', 'B:bob@x', 'C:bob@x']);
    const rec = router.history.get(first.searchId)!;
    assert.equal(router.history.size, 1);
    assert.equal(rec.continued, 2);
    assert.deepEqual(
      rec.rules.map((r) => [r.rule, r.result, r.answer]),
      [
        ['a', 'found', '404'],
        ['b', 'found', '480'],
        ['c', 'found', undefined],
      ],
    );
    assert.deepEqual(rec.targets, [{ zone: 'C', alias: 'bob@x' }]);
  });

  test('no continuation when a matching rule says stop; resume past the last level is not-found', async () => {
    const { router } = makeRouter(
      {
        zones: [neighbor('A'), neighbor('B')],
        searchRules: [rule('a', 10, 'A', { onSuccess: 'stop' }), rule('b', 20, 'B')],
      },
      { A: ['bob@x'], B: ['bob@x'] },
    );
    const d = await router.route(req('bob@x'));
    assert.equal(d.kind === 'found' && d.continuation, undefined);
    const open = makeRouter(
      { zones: [neighbor('A'), neighbor('B')], searchRules: [rule('a', 10, 'A'), rule('b', 20, 'B')] },
      { A: ['bob@x'] },
    );
    const f = await open.router.route(req('bob@x'));
    assert.ok(f.kind === 'found' && f.continuation);
    if (f.kind !== 'found' || !f.continuation) return;
    const nf = await open.router.resume(f.continuation, [{ zone: 'A', status: 404 }]);
    assert.equal(nf.kind, 'not-found');
    const rec = open.router.history.get(f.searchId)!;
    assert.equal(rec.result, 'not-found');
    assert.deepEqual(
      rec.rules.map((r) => [r.rule, r.result, r.answer]),
      [
        ['a', 'found', '404'],
        ['b', 'not-found', undefined],
      ],
    );
  });

  test('configuration refuses unknown target zones, duplicate zones and bad regexes, with paths', () => {
    const bad = routingConfigSchema.safeParse({
      zones: [neighbor('A'), neighbor('A'), { name: 'N', type: 'neighbor' }],
      searchRules: [rule('r', 1, 'Nowhere'), rule('x', 1, 'A', { pattern: { type: 'regex', value: '(' } })],
    });
    assert.equal(bad.success, false);
    const paths = bad.error!.issues.map((i) => i.path.join('.'));
    assert.ok(paths.includes('zones.2.address'), paths.join(' '));
    assert.ok(paths.includes('searchRules.1.pattern.value'), paths.join(' '));
  });
});

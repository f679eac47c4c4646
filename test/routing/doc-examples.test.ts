import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { configSchema } from '../../src/config/schema.ts';
import { routingConfigSchema } from '../../src/routing/config.ts';
import { type RouteDecision, Router, type SearchRequest, type Zone } from '../../src/routing/router.ts';

/**
 * The worked examples of docs/routing.md, read from the page itself (so the page and the test cannot drift apart), run
 * through the router, and held to each outcome the page promises.
 */

const page = readFileSync(new URL('../../docs/routing.md', import.meta.url), 'utf8');

/** The first ```yaml block after the heading `### <title>`. */
function yamlAfter(title: string): string {
  const at = page.indexOf(`### ${title}\n`);
  assert.ok(at >= 0, `docs/routing.md has no section "${title}"`);
  const m = /```yaml\n([\s\S]*?)```/.exec(page.slice(at));
  assert.ok(m, `no yaml block under "${title}"`);
  return m[1]!;
}

/**
 * A router over `routing`, whose zones answer as the page describes them: LocalZone holds the registered contacts given,
 * a neighbor zone finds every alias (its address resolves), a DNS zone finds every alias with a domain.
 */
function makeRouter(routing: unknown, domains: readonly string[], registered: Record<string, string[]> = {}) {
  const searched: string[] = [];
  const router = new Router<string>({
    config: routingConfigSchema.parse(routing),
    domains,
    wallNow: () => 1_000,
    searcher: {
      search(zone: Zone, alias: string) {
        searched.push(`${zone.name}:${alias}`);
        if (zone.type === 'local') return (registered[alias] ?? []).map((c) => `contact ${c}`);
        if (zone.type === 'dns') return alias.includes('@') ? [`dns ${alias.split('@')[1]}`] : [];
        return [`${zone.name} ${alias}`];
      },
    },
  });
  return { router, searched };
}

const call = (alias: string, sourceAlias: string, sourceZone: string, authenticated: boolean): SearchRequest => ({
  protocol: 'sip',
  alias,
  sourceAlias,
  sourceZone,
  authenticated,
});

const targetsOf = (d: RouteDecision<string>) =>
  d.kind === 'found' ? d.targets.map((t) => `${t.zone}|${t.alias}|${t.target}`) : [];

describe('docs/routing.md worked example: registered endpoints, one partner, one PSTN gateway', () => {
  const doc = parseYaml(yamlAfter('Registered endpoints, one partner, one PSTN gateway, internal dialling'));
  // The block is a whole node configuration: it must pass the node's own validation as written.
  const config = configSchema.parse(doc);
  const domains = config.sip.domains;
  const contacts = { '4321@example.com': ['sip:4321@192.0.2.10:5060', 'sip:4321@192.0.2.11:5060'] };

  test('the block is valid node configuration with the zones and rules the bullets talk about', () => {
    assert.deepEqual(domains, ['example.com']);
    assert.deepEqual(
      config.routing.zones.map((z) => z.name),
      ['Partner', 'Gateway', 'Internet'],
    );
    assert.deepEqual(
      config.routing.searchRules.map((r) => r.name),
      ['pstn', 'local', 'partner', 'internet'],
    );
  });

  test('4321: add-domain, policy allows, local forks to every registered contact; nobody registered: 404, no leak', async () => {
    const { router, searched } = makeRouter(doc.routing, domains, contacts);
    const d = await router.route(call('4321', 'alice@example.com', 'LocalZone', true));
    assert.equal(d.kind, 'found');
    assert.deepEqual(targetsOf(d), [
      'LocalZone|4321@example.com|contact sip:4321@192.0.2.10:5060',
      'LocalZone|4321@example.com|contact sip:4321@192.0.2.11:5060',
    ]);
    const rec = router.history.get(d.searchId)!;
    assert.equal(rec.transform, 'add-domain');
    assert.equal(rec.searchedAlias, '4321@example.com');
    assert.equal(rec.policy, 'allow (rule 1)');
    assert.deepEqual(
      rec.rules.map((r) => `${r.rule}:${r.result}`),
      ['pstn:no-match', 'local:found'],
    );
    assert.equal(d.kind === 'found' && d.continuation, undefined, 'local says stop');
    assert.deepEqual(searched, ['LocalZone:4321@example.com']);

    const nobody = makeRouter(doc.routing, domains, {});
    const nf = await nobody.router.route(call('4321', 'alice@example.com', 'LocalZone', true));
    assert.equal(nf.kind, 'not-found', '404');
    assert.deepEqual(nobody.searched, ['LocalZone:4321@example.com'], 'Internet is never searched');
  });

  test('90123456@example.com from an authenticated employee: pstn, Gateway gets 0123456@example.com', async () => {
    const { router, searched } = makeRouter(doc.routing, domains, contacts);
    const d = await router.route(call('90123456@example.com', 'alice@example.com', 'LocalZone', true));
    assert.equal(d.kind, 'found');
    assert.deepEqual(targetsOf(d), ['Gateway|0123456@example.com|Gateway 0123456@example.com']);
    assert.deepEqual(searched, ['Gateway:0123456@example.com']);
    assert.deepEqual(
      router.history.get(d.searchId)!.rules.map((r) => `${r.rule}:${r.result}`),
      ['pstn:found'],
    );
  });

  test('the regex variant the page gives for a gateway that wants bare numbers sends 0123456', async () => {
    const m = /use a regex:\s*`([^`]+)`/.exec(page);
    assert.ok(m, 'the regex variant is on the page');
    const variant = parseYaml(`{ ${m[1]} }`) as Record<string, unknown>;
    const routing = structuredClone(doc.routing);
    const pstn = routing.searchRules.find((r: { name: string }) => r.name === 'pstn');
    Object.assign(pstn, variant);
    const { router } = makeRouter(routing, domains);
    const d = await router.route(call('90123456@example.com', 'alice@example.com', 'LocalZone', true));
    assert.deepEqual(targetsOf(d), ['Gateway|0123456|Gateway 0123456']);
  });

  test('the same call not authenticated: pstn skipped, local matches, nobody there: 404', async () => {
    const { router, searched } = makeRouter(doc.routing, domains, contacts);
    const d = await router.route(call('90123456@example.com', 'alice@example.com', 'LocalZone', false));
    assert.equal(d.kind, 'not-found');
    assert.deepEqual(searched, ['LocalZone:90123456@example.com']);
    const rec = router.history.get(d.searchId)!;
    assert.equal(rec.policy, 'allow (rule 1)');
    assert.deepEqual(
      rec.rules.map((r) => `${r.rule}:${r.result}`),
      ['pstn:skipped-unauthenticated', 'local:not-found'],
    );
  });

  test('90123456@example.com from an unauthenticated outsider in DefaultZone: policy rule 2 rejects (403), nothing searched', async () => {
    const { router, searched } = makeRouter(doc.routing, domains, contacts);
    const d = await router.route(call('90123456@example.com', 'mallory@elsewhere.org', 'DefaultZone', false));
    assert.equal(d.kind, 'rejected');
    assert.deepEqual(searched, []);
    assert.equal(router.history.get(d.searchId)!.policy, 'reject (rule 2)');
  });

  test('bob@partner.example: searched in Partner at priority 30 and found there', async () => {
    const { router, searched } = makeRouter(doc.routing, domains, contacts);
    const d = await router.route(call('bob@partner.example', 'alice@example.com', 'LocalZone', true));
    assert.deepEqual(targetsOf(d), ['Partner|bob@partner.example|Partner bob@partner.example']);
    assert.deepEqual(searched, ['Partner:bob@partner.example']);
    const rule = router.history.get(d.searchId)!.rules.find((r) => r.result === 'found')!;
    assert.equal(rule.rule, 'partner');
    assert.equal(rule.priority, 30);
  });

  test('alice@elsewhere.org: the Internet (DNS) zone, by the domain', async () => {
    const { router, searched } = makeRouter(doc.routing, domains, contacts);
    const d = await router.route(call('alice@elsewhere.org', 'bob@example.com', 'LocalZone', true));
    assert.deepEqual(targetsOf(d), ['Internet|alice@elsewhere.org|dns elsewhere.org']);
    assert.deepEqual(searched, ['Internet:alice@elsewhere.org']);
    // The RFC 3263 resolution and the failover to the next destination are the proxy's: see
    // test/sip/proxy/proxy-failover.test.ts.
  });
});

describe('docs/routing.md worked example: two zones searched in parallel', () => {
  const rules = parseYaml(yamlAfter('Two zones searched in parallel'));
  // The block gives the rules only: the zones they name are added here.
  const routing = {
    zones: [
      { name: 'SiteA', type: 'neighbor', address: '192.0.2.1' },
      { name: 'SiteB', type: 'neighbor', address: '192.0.2.2' },
      { name: 'Internet', type: 'dns' },
    ],
    ...rules,
  };

  test('SiteA and SiteB at once, a branch for each; Internet only after both fail with a continue-on answer', async () => {
    const { router, searched } = makeRouter(routing, []);
    const d = await router.route(call('bob@example.com', 'alice@example.com', 'LocalZone', true));
    assert.equal(d.kind, 'found');
    assert.deepEqual(targetsOf(d).sort(), [
      'SiteA|bob@example.com|SiteA bob@example.com',
      'SiteB|bob@example.com|SiteB bob@example.com',
    ]);
    assert.deepEqual(searched.sort(), ['SiteA:bob@example.com', 'SiteB:bob@example.com']);
    assert.ok(d.kind === 'found' && d.continuation);
    if (d.kind !== 'found' || !d.continuation) return;
    const next = await router.resume(d.continuation, [
      { zone: 'SiteA', status: 404 },
      { zone: 'SiteB', status: 404 },
    ]);
    assert.deepEqual(targetsOf(next), ['Internet|bob@example.com|dns example.com']);
    assert.equal(router.history.get(d.searchId)!.continued, 1);
  });
});

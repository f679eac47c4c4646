/**
 * The web UI's port reference page shows what the plan holds back (`plan.notOpened`) in a table of its own, apart
 * from the listening sockets, with the reason for each; and shows no such section when nothing is held back.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defaultConfig } from '../../src/config/load.ts';
import { portsPage } from '../../src/management/ui/pages.ts';
import { computePortPlan } from '../../src/ports/index.ts';

const plan = (input: Parameters<typeof defaultConfig>[0]) =>
  computePortPlan(defaultConfig(input), { privileged: true, unprivilegedPortStart: 1024 });

/** The text of table `id`'s body rows, one string per row. */
function rows(html: string, id: string): string[] {
  const t = new RegExp(`<table id="${id}"[^>]*>([\\s\\S]*?)</table>`).exec(html);
  assert.ok(t, `table ${id} in the page`);
  return [...t[1]!.matchAll(/<tr[^>]*>([\s\S]*?)<\/tr>/g)]
    .map((r) =>
      r[1]!
        .replace(/<[^>]+>/g, ' ')
        .replace(/\s+/g, ' ')
        .trim(),
    )
    .filter((r) => !/^Node Id Protocol/.test(r) && !/^Table Purpose/.test(r));
}

test('the ports page lists the listeners and flows not opened yet, each with its reason, apart from the sockets', () => {
  const p = plan({ role: 'edge', h323: { enabled: true }, traversalZones: [{ name: 'a' }, { name: 'b' }] });
  assert.ok(p.notOpened.listeners.length > 0, 'this configuration holds listeners back');
  const html = portsPage(p);
  const later = rows(html, 'listeners-not-opened');
  assert.equal(later.length, p.notOpened.listeners.length);
  for (const l of p.notOpened.listeners) {
    assert.ok(
      later.some((r) => r.includes(l.id) && r.includes(l.notOpened.slice(0, 20))),
      `${l.id} with its reason in ${JSON.stringify(later)}`,
    );
  }
  const open = rows(html, 'listeners');
  assert.equal(open.length, p.listeners.length);
  for (const l of p.notOpened.listeners)
    assert.ok(!open.some((r) => r.includes(` ${l.id} `)), `${l.id} not listed as open`);
  if (p.notOpened.flows.length > 0) assert.equal(rows(html, 'ports-not-opened').length, p.notOpened.flows.length);
});

test('without anything held back the page has no "Not opened yet" section', () => {
  const p = plan({ role: 'core', h323: { enabled: false } });
  assert.deepEqual(p.notOpened, { listeners: [], flows: [] });
  assert.ok(!portsPage(p).includes('Not opened yet'));
});

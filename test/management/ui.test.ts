/**
 * The web UI in headless Chromium (playwright-core + Debian's chromium): log in, see a registration appear after a
 * real sipp REGISTER, see the traversal zone active, change settings and a search rule through their forms (and see
 * refused changes with their field paths), take a screenshot of the status page (test-artifacts/), log out.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { skipUnlessTool } from '../helpers/required-tool.ts';
import { runSipp } from '../helpers/sipp.ts';
import { type MgmtNode, setupAdmin, startMgmtNode } from './helpers.ts';

const CHROMIUM = '/usr/bin/chromium';
const skip = skipUnlessTool(existsSync(CHROMIUM), 'Debian chromium is not installed');
const ARTIFACTS = new URL('../../test-artifacts/', import.meta.url).pathname;
const SCENARIOS = new URL('../sipp/', import.meta.url).pathname;

function usersFile(prefix: string, count: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'crossway-ui-users-'));
  const lines = ['SEQUENTIAL'];
  for (let i = 0; i < count; i++) lines.push(`${prefix}${String(i).padStart(4, '0')};`);
  writeFileSync(join(dir, 'users.csv'), `${lines.join('\n')}\n`);
  return join(dir, 'users.csv');
}

describe('management web UI in headless Chromium', { skip }, () => {
  let m: MgmtNode;
  let browser: Browser;
  let page: Page;
  const password = 'ui test password 1';

  before(async () => {
    m = await startMgmtNode({ traversalZones: [{ name: 'to-edge' }], registrar: { authenticate: false } });
    await setupAdmin(m, 'ui-admin', password, 'core');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
    // The lab's certificate is self-signed: this browser has no way to trust it but to be told so.
    const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
  });

  after(async () => {
    await browser?.close();
    await m?.node.close();
  });

  it('redirects to the login page, refuses a wrong password, and logs in', async () => {
    await page.goto(`${m.base('core')}/ui/status`);
    assert.match(page.url(), /\/ui\/login$/);
    await page.fill('#user', 'ui-admin');
    await page.fill('#password', 'wrong password');
    await page.click('#login');
    assert.match((await page.textContent('#login-error')) ?? '', /Wrong user name or password/);
    await page.fill('#user', 'ui-admin');
    await page.fill('#password', password);
    await page.click('#login');
    await page.waitForURL(/\/ui\/status$/);
    assert.match((await page.textContent('header')) ?? '', /ui-admin \(read-write\)/);
  });

  it('shows the traversal zone active and a registration made by sipp', async () => {
    let state = '';
    for (let i = 0; i < 30 && state !== 'active'; i++) {
      await page.goto(`${m.base('core')}/ui/zones`);
      state = ((await page.textContent('tr[data-zone="to-edge"] td:nth-child(3)')) ?? '').trim();
      if (state !== 'active') await page.waitForTimeout(200);
    }
    assert.equal(state, 'active');

    const r = await runSipp({
      scenario: `${SCENARIOS}register.xml`,
      target: `127.0.0.2:${m.node.plan.node('core').port('sip-udp')}`,
      calls: 1,
      timeoutSeconds: 20,
      extraArgs: ['-inf', usersFile('uitest', 1)],
    });
    assert.equal(r.successful, 1, r.stderr.slice(0, 1000));
    await page.goto(`${m.base('core')}/ui/registrations`);
    const table = (await page.textContent('#registrations')) ?? '';
    assert.match(table, /sip:uitest0000@127\.0\.0\.2/);
    assert.match(table, /UDP/);
  });

  it('changes settings through the form; a refused change names the field', async () => {
    await page.goto(`${m.base('core')}/ui/config`);
    await page.selectOption('#logLevel', 'debug');
    await page.fill('#domains', 'ui.example\nsecond.example');
    await page.click('#save-settings');
    const result = (await page.textContent('#config-result')) ?? '';
    assert.match(result, /Applied now: log\.level/);
    assert.match(result, /After restart: sip\.domains/);
    assert.equal(m.node.log.level, 'debug');
    assert.deepEqual(m.node.management?.config.current.sip.domains, ['ui.example', 'second.example']);

    const doc = JSON.parse((await page.inputValue('#config-json')) || '{}') as { sip: { timers: { t1: number } } };
    doc.sip.timers.t1 = 0;
    await page.fill('#config-json', JSON.stringify(doc));
    await page.click('#save-json');
    const issues = (await page.textContent('#config-issues')) ?? '';
    assert.match(issues, /sip\.timers\.t1/);
    assert.equal(m.node.management?.config.current.sip.timers.t1, 500, 'refused change not applied');
  });

  it('changes a search rule through its form; a bad pattern is refused with the field path', async () => {
    await page.goto(`${m.base('core')}/ui/search-rules`);
    assert.match((await page.textContent('#search-rules')) ?? '', /LocalZoneMatch/);
    await page.click('#edit-0');
    await page.fill('#rule-priority', '40');
    await page.fill('#rule-target', 'LocalZone');
    await page.click('#save-rule');
    assert.match((await page.textContent('#config-result')) ?? '', /After restart: routing\.searchRules/);
    const rules = m.node.management?.config.current.routing.searchRules ?? [];
    assert.equal(rules[0]?.name, 'LocalZoneMatch');
    assert.equal(rules[0]?.priority, 40);
    assert.match((await page.textContent('tr[data-rule="LocalZoneMatch"]')) ?? '', /^\s*40/);

    await page.click('#edit-0');
    await page.selectOption('#rule-pattern-type', 'regex');
    await page.fill('#rule-pattern-value', '(unclosed');
    await page.click('#save-rule');
    assert.match((await page.textContent('#config-issues')) ?? '', /routing\.searchRules\[0\]\.pattern\.value/);
    assert.equal(m.node.management?.config.current.routing.searchRules[0]?.pattern.type, 'anyAlias', 'not applied');
  });

  it('renders the status page and the port reference (screenshot in test-artifacts/)', async () => {
    await page.goto(`${m.base('core')}/ui/status`);
    assert.match((await page.textContent('#summary')) ?? '', /registrations\s*1/);
    assert.match((await page.textContent('#summary')) ?? '', /media port pairs in use\s*0 \/ \d+/);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'management-status.png'), fullPage: true });
    await page.goto(`${m.base('core')}/ui/ports`);
    const mgmt = (await page.textContent('#ports-management')) ?? '';
    assert.match(mgmt, /HTTPS Management of the core/);
    await page.screenshot({ path: join(ARTIFACTS, 'management-ports.png'), fullPage: true });
    await page.goto(`${m.base('core')}/ui/searches`);
    assert.equal(await page.locator('#searches').count(), 1, 'search history page renders its table or empty note');
    await page.goto(`${m.base('core')}/ui/zones`);
    assert.equal(await page.locator('#routing-zones').count(), 1);
  });

  it('manages local accounts: adds a read-only one, refuses to delete the last read-write administrator', async () => {
    await page.goto(`${m.base('core')}/ui/accounts`);
    await page.fill('#acct-name', 'night-shift');
    await page.selectOption('#acct-level', 'read-only');
    await page.fill('#acct-password', 'night shift password');
    await page.click('#save-account');
    assert.match((await page.textContent('#accounts-message')) ?? '', /Saved night-shift \(read-only\)/);
    assert.match((await page.textContent('tr[data-account="night-shift"]')) ?? '', /read-only/);
    await page.click('#delete-ui-admin');
    assert.match((await page.textContent('#accounts-message')) ?? '', /last read-write administrator/);
    await page.click('#delete-night-shift');
    assert.match((await page.textContent('#accounts-message')) ?? '', /Deleted night-shift/);
    assert.equal(await page.locator('tr[data-account="night-shift"]').count(), 0);
  });

  it('logs out: the session is gone', async () => {
    await page.goto(`${m.base('core')}/ui/status`);
    await page.click('#logout');
    await page.waitForURL(/\/ui\/login$/);
    await page.goto(`${m.base('core')}/ui/status`);
    assert.match(page.url(), /\/ui\/login$/);
  });
});

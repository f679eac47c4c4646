/**
 * The SNMP agent against the real net-snmp tools (Debian `snmp`): snmpget/snmpwalk with SNMPv2c and SNMPv3
 * (USM, SHA + AES), MIB-II system and interfaces groups, the Crossway MIB (zone table), and refusals.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import snmp from 'net-snmp';
import { OIDS } from '../../src/management/snmp/agent.ts';
import { skipUnlessTool } from '../helpers/required-tool.ts';
import { freeUdpPort, SCENARIOS, sipp } from '../sip/proxy/sipp-peers.ts';
import { type MgmtNode, startMgmtNode } from './helpers.ts';

const run = promisify(execFile);

async function has(cmd: string): Promise<boolean> {
  try {
    await run(cmd, ['--version']);
    return true;
  } catch (err) {
    return (err as { code?: unknown }).code !== 'ENOENT';
  }
}

const skip = skipUnlessTool(await has('snmpget'), 'net-snmp tools (Debian snmp) not installed');
const V3 = [
  '-v3',
  '-l',
  'authPriv',
  '-u',
  'nms',
  '-a',
  'SHA',
  '-A',
  'auth-pass-123',
  '-x',
  'AES',
  '-X',
  'priv-pass-123',
];

describe('SNMP agent with snmpget/snmpwalk', { skip }, () => {
  let m: MgmtNode;
  let edge: string;
  let core: string;
  const tool = async (cmd: string, args: string[]) => {
    const r = await run(cmd, ['-On', '-t', '1', '-r', '1', ...args], { timeout: 20_000 });
    return r.stdout;
  };
  before(async () => {
    m = await startMgmtNode({
      name: 'lab-gw',
      // The second zone points at an address where no edge listens: it fails and raises an alarm.
      traversalZones: [{ name: 'to-edge' }, { name: 'nowhere', peerAddress: '127.0.0.3', retryMinSeconds: 0.2 }],
      // sipp registers without digest in the registration counter test.
      registrar: { authenticate: false },
      management: {
        snmp: true,
        snmpCommunity: 'crossway-ro',
        snmpUsers: [{ name: 'nms', authPassword: 'auth-pass-123', privPassword: 'priv-pass-123' }],
        sysLocation: 'rack 7',
      },
    });
    const port = m.node.plan.port('snmp', 'edge');
    edge = `udp:127.0.0.1:${port}`;
    core = `udp:127.0.0.2:${port}`;
  });
  after(async () => {
    await m?.node.close();
  });

  it('v2c: system group for discovery (sysDescr, sysObjectID, sysUpTime, sysName, sysLocation)', async () => {
    const out = await tool('snmpget', [
      '-v2c',
      '-c',
      'crossway-ro',
      edge,
      '1.3.6.1.2.1.1.1.0',
      '1.3.6.1.2.1.1.2.0',
      '1.3.6.1.2.1.1.3.0',
      '1.3.6.1.2.1.1.5.0',
      '1.3.6.1.2.1.1.6.0',
    ]);
    assert.match(out, /\.1\.3\.6\.1\.2\.1\.1\.1\.0 = STRING: "?Crossway edge lab node/);
    assert.match(
      out,
      new RegExp(`\\.1\\.3\\.6\\.1\\.2\\.1\\.1\\.2\\.0 = OID: \\.${OIDS.products.edge.replace(/\./g, '\\.')}\\b`),
    );
    assert.match(out, /\.1\.3\.6\.1\.2\.1\.1\.3\.0 = Timeticks: \(\d+\)/);
    assert.match(out, /\.1\.3\.6\.1\.2\.1\.1\.5\.0 = STRING: "?lab-gw/);
    assert.match(out, /\.1\.3\.6\.1\.2\.1\.1\.6\.0 = STRING: "?rack 7/);
  });

  it('v2c: snmpwalk of the interfaces table lists the loopback interface', async () => {
    const out = await tool('snmpwalk', ['-v2c', '-c', 'crossway-ro', edge, '1.3.6.1.2.1.2']);
    assert.match(out, /\.1\.3\.6\.1\.2\.1\.2\.1\.0 = INTEGER: \d+/, 'ifNumber');
    assert.match(out, /\.1\.3\.6\.1\.2\.1\.2\.2\.1\.2\.\d+ = STRING: "?lo"?/, 'ifDescr lo');
    assert.match(out, /\.1\.3\.6\.1\.2\.1\.2\.2\.1\.3\.\d+ = INTEGER: 24/, 'ifType softwareLoopback');
    assert.match(out, /\.1\.3\.6\.1\.2\.1\.2\.2\.1\.10\.\d+ = Counter32: \d+/, 'ifInOctets');
  });

  it('v3 authPriv (SHA/AES): the core reports its traversal zone active in the Crossway MIB', async () => {
    let out = '';
    for (let i = 0; i < 20; i++) {
      out = await tool('snmpwalk', [...V3, core, OIDS.zoneEntry.replace(/\.1$/, '')]);
      if (/\.4\.1 = INTEGER: 2/.test(out)) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    const e = OIDS.zoneEntry.replace(/\./g, '\\.');
    assert.match(out, new RegExp(`\\.${e}\\.2\\.1 = STRING: "?to-edge`));
    assert.match(out, new RegExp(`\\.${e}\\.4\\.1 = INTEGER: 2`), 'cwZoneState active(2)');
    const role = await tool('snmpget', [...V3, core, `${OIDS.nodeRole}.0`, `${OIDS.zoneCount}.0`, '1.3.6.1.2.1.1.2.0']);
    assert.match(role, /STRING: "?core/);
    assert.match(role, /Gauge32: 2/, 'two zones');
    assert.match(role, new RegExp(`OID: \\.${OIDS.products.core.replace(/\./g, '\\.')}`));
  });

  it('a failed traversal zone shows in cwZoneTable and as an alarm in cwAlarmTable', async () => {
    let out = '';
    for (let i = 0; i < 30; i++) {
      out = await tool('snmpwalk', ['-v2c', '-c', 'crossway-ro', core, OIDS.alarmEntry.replace(/\.1$/, '')]);
      if (/zone:nowhere/.test(out)) break;
      await new Promise((r) => setTimeout(r, 300));
    }
    const a = OIDS.alarmEntry.replace(/\./g, '\\.');
    assert.match(out, new RegExp(`\\.${a}\\.2\\.1 = STRING: "?zone:nowhere`));
    assert.match(out, new RegExp(`\\.${a}\\.3\\.1 = INTEGER: 2`), 'severity major(2)');
    const zones = await tool('snmpwalk', ['-v2c', '-c', 'crossway-ro', core, OIDS.zoneEntry.replace(/\.1$/, '')]);
    const z = OIDS.zoneEntry.replace(/\./g, '\\.');
    assert.match(zones, new RegExp(`\\.${z}\\.4\\.2 = INTEGER: 3`), 'cwZoneState failed(3) for the second zone');
    const count = await tool('snmpget', ['-v2c', '-c', 'crossway-ro', core, `${OIDS.alarmCount}.0`]);
    assert.match(count, /Gauge32: 1/);
  });

  it('cwRegistrations counts a binding made by a real sipp REGISTER (cwCalls and cwH323Registrations stay 0)', async () => {
    const get = () =>
      tool('snmpget', [
        '-v2c',
        '-c',
        'crossway-ro',
        core,
        `${OIDS.registrations}.0`,
        `${OIDS.calls}.0`,
        `${OIDS.h323Registrations}.0`,
      ]);
    const reg = (n: string) => new RegExp(`\\.${OIDS.registrations.replace(/\./g, '\\.')}\\.0 = Gauge32: ${n}\\b`);
    assert.match(await get(), reg('0'));
    const r = await sipp({
      scenario: `${SCENARIOS}uas-register.xml`,
      port: await freeUdpPort(),
      target: `127.0.0.2:${m.node.plan.port('sip-udp', 'core')}`,
      service: 'snmp-user',
      calls: 1,
    });
    assert.equal(r.successful, 1, r.output.slice(-2000));
    const after = await get();
    assert.match(after, reg('1'));
    assert.match(after, new RegExp(`\\.${OIDS.calls.replace(/\./g, '\\.')}\\.0 = Gauge32: 0\\b`));
    assert.match(after, new RegExp(`\\.${OIDS.h323Registrations.replace(/\./g, '\\.')}\\.0 = Gauge32: 0\\b`));
  });

  it('refuses a wrong community and a wrong v3 password (no answer)', async () => {
    await assert.rejects(tool('snmpget', ['-v2c', '-c', 'public', edge, '1.3.6.1.2.1.1.1.0']), /Timeout|No Response/i);
    const bad = [...V3];
    bad[bad.indexOf('auth-pass-123')] = 'wrong-pass-123';
    await assert.rejects(tool('snmpget', [...bad, edge, '1.3.6.1.2.1.1.1.0']), /Authentication failure|Timeout|error/i);
  });

  it('the shipped MIB file parses and names the OIDs the agent serves', () => {
    const store = (
      snmp as unknown as {
        createModuleStore(): {
          loadFromFile(p: string): void;
          getProvidersForModule(m: string): { name: string; oid: string }[];
        };
      }
    ).createModuleStore();
    store.loadFromFile(new URL('../../mib/CROSSWAY-MIB.txt', import.meta.url).pathname);
    const oids = Object.fromEntries(store.getProvidersForModule('CROSSWAY-MIB').map((p) => [p.name, p.oid]));
    assert.equal(oids.cwNodeRole, OIDS.nodeRole);
    assert.equal(oids.cwRegistrations, OIDS.registrations);
    assert.equal(oids.cwCalls, OIDS.calls);
    assert.equal(oids.cwAlarmCount, OIDS.alarmCount);
    assert.equal(oids.cwZoneCount, OIDS.zoneCount);
    assert.equal(oids.cwZoneEntry, OIDS.zoneEntry);
    assert.equal(oids.cwAlarmEntry, OIDS.alarmEntry);
    assert.equal(oids.cwTurnAllocations, OIDS.turnAllocations);
    assert.equal(oids.cwH323Registrations, OIDS.h323Registrations);
  });
});

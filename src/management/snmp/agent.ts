import { createSocket, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import snmp from 'net-snmp';
import type { Logger } from '../../common/log.ts';
import { RateLimitedLog } from '../../common/log.ts';
import type { Clock, TimerHandle } from '../../common/timers.ts';
import type { CrosswayConfig } from '../../config/schema.ts';
import type { SipService } from '../../roles/sip-service.ts';
import type { NodeManagement } from '../service.ts';

/**
 * OIDs of the Crossway MIB (mib/CROSSWAY-MIB.txt). The arc is a placeholder under `experimental` until the project
 * has a private enterprise number.
 */
export const CROSSWAY_OID = '1.3.6.1.3.9999';
export const OIDS = Object.freeze({
  products: { edge: `${CROSSWAY_OID}.2.1`, core: `${CROSSWAY_OID}.2.2` },
  nodeRole: `${CROSSWAY_OID}.1.1`,
  registrations: `${CROSSWAY_OID}.1.2`,
  calls: `${CROSSWAY_OID}.1.3`,
  alarmCount: `${CROSSWAY_OID}.1.4`,
  zoneCount: `${CROSSWAY_OID}.1.5`,
  zoneEntry: `${CROSSWAY_OID}.1.6.1`,
  alarmEntry: `${CROSSWAY_OID}.1.7.1`,
  turnAllocations: `${CROSSWAY_OID}.1.8`,
  h323Registrations: `${CROSSWAY_OID}.1.9`,
});

const ZONE_STATE: Record<string, number> = { checking: 1, active: 2, failed: 3, stopped: 4 };
const SEVERITY: Record<string, number> = { critical: 1, major: 2, minor: 3, warning: 4 };

export interface SnmpAgentOptions {
  node: NodeManagement;
  config: Readonly<CrosswayConfig>;
  name: string;
  addresses: readonly string[];
  port: number;
  clock: Clock;
  log: Logger;
  sip: SipService | undefined;
  /** How often tables (interfaces, zones, alarms) are rebuilt (ms). */
  refreshMs?: number;
}

interface IfRow {
  index: number;
  name: string;
  mac: string;
  loopback: boolean;
  up: boolean;
  mtu: number;
  inOctets: number;
  outOctets: number;
}

/** Interfaces of the host, with counters from /proc/net/dev where it exists (Linux). */
function interfaces(): IfRow[] {
  const stats = new Map<string, { rx: number; tx: number }>();
  try {
    for (const line of readFileSync('/proc/net/dev', 'utf8').split('\n').slice(2)) {
      const m = /^\s*([^:]+):\s*(.*)$/.exec(line);
      if (!m) continue;
      const f = m[2]!.trim().split(/\s+/).map(Number);
      stats.set(m[1]!, { rx: f[0] ?? 0, tx: f[8] ?? 0 });
    }
  } catch {
    // not Linux: counters stay 0
  }
  const nis = networkInterfaces();
  const names = [...new Set([...Object.keys(nis), ...stats.keys()])].sort();
  return names.map((name, i) => {
    const addrs = nis[name] ?? [];
    let mtu = 0;
    try {
      mtu = Number(readFileSync(`/sys/class/net/${name}/mtu`, 'utf8').trim()) || 0;
    } catch {
      mtu = 0;
    }
    const s = stats.get(name);
    return {
      index: i + 1,
      name,
      mac: addrs[0]?.mac ?? '00:00:00:00:00:00',
      loopback: addrs.some((a) => a.internal) || name === 'lo',
      up: addrs.length > 0,
      mtu,
      inOctets: (s?.rx ?? 0) % 2 ** 32,
      outOctets: (s?.tx ?? 0) % 2 ** 32,
    };
  });
}

const RO = () => snmp.MaxAccess['read-only']!;
const NA = () => snmp.MaxAccess['not-accessible']!;
const T = (name: string) => snmp.ObjectType[name]!;

/**
 * The node's SNMP agent (net-snmp): SNMPv2c with a read community and SNMPv3 USM users (SHA, AES), read-only. MIB-II
 * `system` and `interfaces` groups for discovery, and the Crossway MIB (registrations, calls, zones, alarms).
 */
export class SnmpAgent {
  readonly #agent: ReturnType<typeof snmp.createAgent>;
  readonly sockets: { address: string; port: number }[];
  #timer: TimerHandle | undefined;
  #closed = false;

  private constructor(agent: ReturnType<typeof snmp.createAgent>, sockets: Socket[]) {
    this.#agent = agent;
    this.sockets = sockets.map((s) => {
      const a = s.address();
      return { address: a.address, port: a.port };
    });
  }

  static async start(o: SnmpAgentOptions): Promise<SnmpAgent> {
    const created: Socket[] = [];
    const errLog = new RateLimitedLog(o.log, () => o.clock.now(), 60_000);
    const agent = snmp.createAgent(
      {
        sockets: o.addresses.map((address) => ({
          transport: address.includes(':') ? 'udp6' : 'udp4',
          address,
          port: o.port,
        })),
        dgramModule: {
          createSocket: (type: 'udp4' | 'udp6') => {
            const s = createSocket({ type, reuseAddr: false });
            created.push(s);
            return s;
          },
        },
        accessControlModelType: snmp.AccessControlModelType.None,
      },
      (err) => {
        if (!err) return;
        // net-snmp names the community a request offered: a wrong one may be a typo of the real one, never log it.
        const reason = err.message.replace(/(with community)\s[\s\S]*$/, '$1 [redacted]').slice(0, 200);
        errLog.warn(`snmp:${reason.slice(0, 40)}`, 'SNMP request refused => dropped', { reason });
      },
    );
    try {
      await Promise.all(
        created.map(
          (s) =>
            new Promise<void>((resolve, reject) => {
              s.once('listening', () => resolve());
              s.once('error', reject);
            }),
        ),
      );
    } catch (err) {
      agent.close();
      throw err;
    }
    const self = new SnmpAgent(agent, created);
    self.#configure(o);
    return self;
  }

  #configure(o: SnmpAgentOptions): void {
    const m = o.config.management;
    const authz = this.#agent.getAuthorizer();
    if (m.snmpCommunity) authz.addCommunity(m.snmpCommunity);
    for (const u of m.snmpUsers) {
      authz.addUser({
        name: u.name,
        level: u.privPassword ? snmp.SecurityLevel.authPriv : snmp.SecurityLevel.authNoPriv,
        authProtocol: snmp.AuthProtocols.sha,
        authKey: u.authPassword,
        ...(u.privPassword ? { privProtocol: snmp.PrivProtocols.aes, privKey: u.privPassword } : {}),
      });
    }
    const mib = this.#agent.getMib();
    const started = o.clock.now();
    const scalar = (name: string, oid: string, type: string, value: () => unknown) => {
      mib.registerProvider({
        name,
        type: snmp.MibProviderType.Scalar,
        oid,
        scalarType: T(type),
        maxAccess: RO(),
        handler: (req) => {
          req.instanceNode.value = value();
          req.done();
        },
      });
      mib.setScalarValue(name, value());
    };
    const kind = o.node.kind;
    // RFC 1213 / RFC 3418 system group.
    scalar(
      'sysDescr',
      '1.3.6.1.2.1.1.1',
      'OctetString',
      () => `Crossway ${kind} ${o.config.role} node (SIP/H.323 traversal gateway) 0.1.0`,
    );
    scalar('sysObjectID', '1.3.6.1.2.1.1.2', 'OID', () => OIDS.products[kind]);
    scalar('sysUpTime', '1.3.6.1.2.1.1.3', 'TimeTicks', () => Math.floor((o.clock.now() - started) / 10) % 2 ** 32);
    scalar('sysContact', '1.3.6.1.2.1.1.4', 'OctetString', () => m.sysContact);
    scalar('sysName', '1.3.6.1.2.1.1.5', 'OctetString', () => o.name);
    scalar('sysLocation', '1.3.6.1.2.1.1.6', 'OctetString', () => m.sysLocation);
    scalar('sysServices', '1.3.6.1.2.1.1.7', 'Integer', () => 72); // application (64) + end-to-end (8)
    // RFC 1213 interfaces group.
    scalar('ifNumber', '1.3.6.1.2.1.2.1', 'Integer', () => interfaces().length);
    mib.registerProvider({
      name: 'ifTable',
      type: snmp.MibProviderType.Table,
      oid: '1.3.6.1.2.1.2.2.1',
      maxAccess: NA(),
      tableColumns: [
        { number: 1, name: 'ifIndex', type: T('Integer'), maxAccess: RO() },
        { number: 2, name: 'ifDescr', type: T('OctetString'), maxAccess: RO() },
        { number: 3, name: 'ifType', type: T('Integer'), maxAccess: RO() },
        { number: 4, name: 'ifMtu', type: T('Integer'), maxAccess: RO() },
        { number: 5, name: 'ifSpeed', type: T('Gauge'), maxAccess: RO() },
        { number: 6, name: 'ifPhysAddress', type: T('OctetString'), maxAccess: RO() },
        { number: 7, name: 'ifAdminStatus', type: T('Integer'), maxAccess: RO() },
        { number: 8, name: 'ifOperStatus', type: T('Integer'), maxAccess: RO() },
        { number: 10, name: 'ifInOctets', type: T('Counter'), maxAccess: RO() },
        { number: 16, name: 'ifOutOctets', type: T('Counter'), maxAccess: RO() },
      ],
      tableIndex: [{ columnName: 'ifIndex' }],
    });
    // Crossway MIB.
    const counts = () => o.node.counts();
    const zones = () => o.sip?.zones() ?? [];
    scalar('cwNodeRole', OIDS.nodeRole, 'OctetString', () => kind);
    scalar('cwRegistrations', OIDS.registrations, 'Gauge', () => counts().registrations ?? 0);
    scalar('cwCalls', OIDS.calls, 'Gauge', () => counts().calls ?? 0);
    scalar('cwAlarmCount', OIDS.alarmCount, 'Gauge', () => o.node.alarms.list().length);
    scalar('cwZoneCount', OIDS.zoneCount, 'Gauge', () => zones().length);
    scalar('cwTurnAllocations', OIDS.turnAllocations, 'Gauge', () => counts()['turn-allocations'] ?? 0);
    scalar('cwH323Registrations', OIDS.h323Registrations, 'Gauge', () => counts()['h323-registrations'] ?? 0);
    mib.registerProvider({
      name: 'cwZoneTable',
      type: snmp.MibProviderType.Table,
      oid: OIDS.zoneEntry,
      maxAccess: NA(),
      tableColumns: [
        { number: 1, name: 'cwZoneIndex', type: T('Integer'), maxAccess: RO() },
        { number: 2, name: 'cwZoneName', type: T('OctetString'), maxAccess: RO() },
        { number: 3, name: 'cwZonePeer', type: T('OctetString'), maxAccess: RO() },
        { number: 4, name: 'cwZoneState', type: T('Integer'), maxAccess: RO() },
        { number: 5, name: 'cwZoneSince', type: T('OctetString'), maxAccess: RO() },
      ],
      tableIndex: [{ columnName: 'cwZoneIndex' }],
    });
    mib.registerProvider({
      name: 'cwAlarmTable',
      type: snmp.MibProviderType.Table,
      oid: OIDS.alarmEntry,
      maxAccess: NA(),
      tableColumns: [
        { number: 1, name: 'cwAlarmIndex', type: T('Integer'), maxAccess: RO() },
        { number: 2, name: 'cwAlarmId', type: T('OctetString'), maxAccess: RO() },
        { number: 3, name: 'cwAlarmSeverity', type: T('Integer'), maxAccess: RO() },
        { number: 4, name: 'cwAlarmText', type: T('OctetString'), maxAccess: RO() },
      ],
      tableIndex: [{ columnName: 'cwAlarmIndex' }],
    });
    const rows = new Map<string, unknown[][]>();
    const setRows = (table: string, next: unknown[][]) => {
      for (const r of rows.get(table) ?? []) mib.deleteTableRow(table, [r[0]]);
      for (const r of next) mib.addTableRow(table, r);
      rows.set(table, next);
    };
    const refresh = () => {
      if (this.#closed) return;
      setRows(
        'ifTable',
        interfaces().map((i) => [
          i.index,
          i.name,
          i.loopback ? 24 : 6,
          i.mtu,
          0,
          Buffer.from(i.mac.split(':').map((h) => Number.parseInt(h, 16) || 0)),
          1,
          i.up ? 1 : 2,
          i.inOctets,
          i.outOctets,
        ]),
      );
      setRows(
        'cwZoneTable',
        zones().map((z, i) => [i + 1, z.name, z.peer, ZONE_STATE[z.state] ?? 1, new Date(z.since).toISOString()]),
      );
      setRows(
        'cwAlarmTable',
        o.node.alarms.list().map((a, i) => [i + 1, a.id, SEVERITY[a.severity] ?? 4, a.message.slice(0, 255)]),
      );
      this.#timer = o.clock.setTimer(o.refreshMs ?? 2000, refresh);
    };
    refresh();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#timer?.cancel();
    try {
      this.#agent.close();
    } catch {
      // already closed
    }
  }
}

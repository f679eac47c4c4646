import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PerError } from '../../src/h323/per/errors.ts';
import { rasCodec } from '../../src/h323/per/schema.ts';
import { readPcap } from './pcap.ts';

const dir = new URL('../vectors/h323/', import.meta.url).pathname;

function ras(file: string) {
  return readPcap(dir + file).filter((p) => p.proto === 'udp' && (p.sport === 1719 || p.dport === 1719));
}

describe('RAS PDUs from captures decode and re-encode to the same bytes', () => {
  for (const file of ['ndpi-h323.pcap', 'h323plus-gnugk-ooh323c.pcap']) {
    it(file, () => {
      const pdus = ras(file);
      assert.ok(pdus.length >= 10, `${file} has RAS`);
      let checked = 0;
      for (const p of pdus) {
        if (file === 'ndpi-h323.pcap' && p.frame === 59) continue; // malformed, see below
        const r = rasCodec.decode(p.payload);
        assert.ok(r.ok, `frame ${p.frame}: ${r.ok ? '' : r.reason.message}`);
        assert.deepEqual(Buffer.from(rasCodec.encode(r.value)), p.payload, `frame ${p.frame} re-encodes`);
        checked++;
      }
      assert.equal(checked, file === 'ndpi-h323.pcap' ? 14 : 17);
    });
  }

  it('ndpi frame 59 (a GRQ Wireshark also reports as malformed) is refused with the failing field', () => {
    const p = ras('ndpi-h323.pcap').find((x) => x.frame === 59)!;
    const r = rasCodec.decode(p.payload);
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.ok(r.reason instanceof PerError);
    assert.equal(r.reason.message, 'RasMessage.gatekeeperRequest.integrity[0].iso9797: empty OBJECT IDENTIFIER');
  });

  it('key fields of the nDPI registration and admission', () => {
    const pdus = new Map(ras('ndpi-h323.pcap').map((p) => [p.frame, p.payload]));
    const rrq = rasCodec.decode(pdus.get(61)!);
    assert.ok(rrq.ok);
    assert.equal(rrq.value.choice, 'registrationRequest');
    const r = rrq.value.value as import('../../src/h323/per/generated/types.ts').RegistrationRequest;
    assert.equal(r.protocolIdentifier, '0.0.8.2250.0.4');
    const csa = r.callSignalAddress[0]!;
    assert.equal(csa.choice, 'ipAddress');
    if (csa.choice === 'ipAddress') {
      assert.deepEqual([...csa.value.ip], [17, 2, 0, 124]);
      assert.equal(csa.value.port, 1720);
    }
    // Wireshark: terminalAlias mobileUIM ansi-41-uim imsi 1111111111111111, system-id sid "777#"
    const alias = r.terminalAlias?.[0];
    assert.equal(alias?.choice, 'mobileUIM');
    assert.deepEqual(alias?.value, {
      choice: 'ansi-41-uim',
      value: { imsi: '1111111111111111', 'system-id': { choice: 'sid', value: '777#' } },
    });
    assert.equal(r.gatekeeperIdentifier, 'OpenH323 Gatekeeper on mfottekin');
  });
});

import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { OperationalError } from '../../src/common/errors.ts';
import { startOnFreeOffset } from '../helpers/lab-node.ts';

/**
 * The test helper that starts lab nodes tries the next port offset when another test process holds one of the node's
 * ports — also when a listener wrapped the socket's EADDRINUSE in its own error (ERR_SIP_TRANSPORT_LISTEN), which a
 * full CI run hit — and never for other failures or for an offset the caller chose.
 */
test('a start refused because a port is taken is tried again on another offset; other failures are not', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'crossway-start-retry-'));
  // a real EADDRINUSE, wrapped as the SIP transport wraps it
  const held = net.createServer();
  await new Promise<void>((r) => held.listen(0, '127.0.0.1', () => r()));
  const port = (held.address() as net.AddressInfo).port;
  const taken = await new Promise<Error>((resolve) => {
    const s = net.createServer();
    s.once('error', resolve);
    s.listen(port, '127.0.0.1');
  });
  held.close();
  assert.equal((taken as NodeJS.ErrnoException).code, 'EADDRINUSE');
  const wrapped = new OperationalError('ERR_SIP_TRANSPORT_LISTEN', `tls 127.0.0.1:${port}: ${taken.message}`, {
    cause: taken,
  });

  const offsets: number[] = [];
  const started = await startOnFreeOffset({}, dataDir, async (config) => {
    offsets.push(config.portOffset);
    if (offsets.length < 3) throw wrapped;
    return 'up';
  });
  assert.equal(started, 'up');
  assert.equal(offsets.length, 3, 'two refused starts, then one on a third offset');
  assert.equal(new Set(offsets).size, 3, 'each try on another offset');

  let tries = 0;
  await assert.rejects(
    startOnFreeOffset({}, dataDir, async () => {
      tries++;
      throw new OperationalError('ERR_OTHER', 'something else');
    }),
    /something else/,
  );
  assert.equal(tries, 1, 'another failure is not retried');

  tries = 0;
  await assert.rejects(
    startOnFreeOffset({ portOffset: 700 }, dataDir, async () => {
      tries++;
      throw wrapped;
    }),
    /EADDRINUSE/,
  );
  assert.equal(tries, 1, 'an offset the caller chose is not changed');

  tries = 0;
  await assert.rejects(
    startOnFreeOffset({}, dataDir, async () => {
      tries++;
      throw wrapped;
    }),
    /EADDRINUSE/,
  );
  assert.equal(tries, 4, 'at most four tries in all');
});

/**
 * Crossway side of bench/sip-parser-kamailio.ts: a stateless UDP responder doing what the Kamailio script does —
 * parse, read From/To/Call-ID/CSeq/top Via branch, answer 200 OK with a To tag. Prints its port on stdout.
 */
import { createSocket } from 'node:dgram';
import {
  createResponse,
  getCallId,
  getCSeq,
  getFromTag,
  getParam,
  getTo,
  getTopVia,
  newTag,
  parseMessage,
  serializeMessage,
} from '../src/sip/message/index.ts';

const sock = createSocket('udp4');
let answered = 0;
sock.on('message', (buf, rinfo) => {
  const r = parseMessage(buf);
  if (!r.ok || r.value.kind !== 'request') return;
  const req = r.value;
  const via = getTopVia(req);
  const to = getTo(req);
  if (!via?.ok || !to?.ok || getCallId(req) === undefined || !getCSeq(req)?.ok || getFromTag(req) === undefined) return;
  if (getParam(via.value.params, 'branch') === undefined) return;
  sock.send(serializeMessage(createResponse(req, 200, 'OK', { toTag: newTag() })), rinfo.port, rinfo.address);
  answered++;
});
sock.bind(0, '127.0.0.1', () => {
  process.stdout.write(`${sock.address().port}\n`);
});
process.on('SIGTERM', () => {
  process.stderr.write(`responder: answered ${answered}\n`);
  process.exit(0);
});

/** Allocation load alone against a TURN server already running: node --import tsx bench/turn-alloc-only.ts PORT N */
import { AllocationLoad } from './turn-alloc-load.ts';

const [port, n] = process.argv.slice(2).map(Number) as [number, number];
const load = new AllocationLoad('127.0.0.1', port);
const a = await load.allocate(n, Number(process.argv[4] ?? 64));
console.log('allocate', a);
console.log('release', await load.release());

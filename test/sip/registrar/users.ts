import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** An injection file of `count` users (`field0` = user name, `field1` = sipp's per-user authentication keyword). */
export function usersFile(prefix: string, count: number, password = (i: number) => `pw-${i}`): string {
  const dir = mkdtempSync(join(tmpdir(), 'crossway-users-'));
  const lines = ['SEQUENTIAL'];
  for (let i = 0; i < count; i++) {
    const user = `${prefix}${String(i).padStart(4, '0')}`;
    lines.push(`${user};[authentication username=${user} password=${password(i)}]`);
  }
  const file = join(dir, 'users.csv');
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

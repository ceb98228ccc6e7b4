import { spawn } from 'node:child_process';

/**
 * Another PROCESS holding SQLite's write lock on `file` (BEGIN EXCLUSIVE) for `holdMs`, as a
 * backup tool or an operator's `sqlite3` shell would. Resolves once the lock is held; `released`
 * resolves when the child has committed and exited. A separate process, not a second connection
 * in this one: better-sqlite3 is synchronous, so only another process can hold the lock while
 * this event loop runs.
 */
export async function holdSqliteLock(file: string, holdMs: number): Promise<{ released: Promise<void> }> {
  const driver = require.resolve('better-sqlite3');
  const script = `
    const Database = require(${JSON.stringify(driver)});
    const db = new Database(${JSON.stringify(file)});
    db.exec('BEGIN EXCLUSIVE');
    process.stdout.write('locked\\n');
    setTimeout(() => { db.exec('COMMIT'); db.close(); process.exit(0); }, ${Math.round(holdMs)});
  `;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const released = new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`lock holder exited ${code}: ${stderr}`))));
  });
  released.catch(() => undefined);
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      if (d.toString().includes('locked')) resolve();
    });
    child.once('exit', () => reject(new Error(`lock holder exited before locking: ${stderr}`)));
  });
  return { released };
}

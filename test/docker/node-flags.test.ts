import { readFileSync } from 'node:fs';
import path from 'node:path';
import { productionNodeFlags } from '../../bench/lib/node-flags';

const REPO = path.resolve(__dirname, '..', '..');
const flags = (): string[] => productionNodeFlags();

describe('Node flags of a production relay', () => {
  it('npm start, the Dockerfile CMD and the benchmark run the relay with the same flags', () => {
    const flags = productionNodeFlags();
    expect(flags).toContain('--max-semi-space-size=64');
    const cmdLine = readFileSync(path.join(REPO, 'Dockerfile'), 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('CMD '))
      .pop();
    const cmd = JSON.parse((cmdLine ?? 'CMD []').slice(4)) as string[];
    expect(cmd[0]).toBe('node');
    expect(cmd.slice(1, 1 + flags.length)).toEqual(flags);
    expect(cmd.slice(1 + flags.length)).toEqual(['dist/src/cli/index.js', 'serve']);
  });

  it('the realtime-relay command (bin) starts Node with them too', () => {
    const shebang = readFileSync(path.join(REPO, 'src', 'cli', 'index.ts'), 'utf8').split('\n')[0];
    expect(shebang).toBe(`#!/usr/bin/env -S node ${flags().join(' ')}`);
  });
});

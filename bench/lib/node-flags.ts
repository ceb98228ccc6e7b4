import { readFileSync } from 'node:fs';
import path from 'node:path';

const REPO = path.resolve(__dirname, '..', '..');

/**
 * The Node flags production runs with, read from `npm start` (the Dockerfile's CMD carries the
 * same; a test keeps them equal), so the bench measures the relay as deployed.
 */
export function productionNodeFlags(): string[] {
  const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { scripts: { start: string } };
  const m = /^node((?:\s+--\S+)*)\s+\S+\.js\b/.exec(pkg.scripts.start);
  if (!m) throw new Error(`npm start is not "node [--flags] file.js …": ${pkg.scripts.start}`);
  return m[1].split(/\s+/).filter(Boolean);
}

/**
 * Re-renders bench/results/latest.md from latest.json (after a change to the report's layout,
 * without measuring again): `npx tsx bench/render-latest.ts`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { renderMarkdown } from './lib/report';
import type { BenchResults } from './lib/results';

const dir = path.join(__dirname, 'results');
// Non-finite numbers were stored as null, which the report's formatters print as "—" too.
const results = JSON.parse(readFileSync(path.join(dir, 'latest.json'), 'utf8')) as BenchResults;
writeFileSync(path.join(dir, 'latest.md'), `${renderMarkdown(results)}\n`);
console.log(renderMarkdown(results));

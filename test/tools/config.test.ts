import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError } from '../../src/config/config';
import { loadToolsFile, parseToolsFile } from '../../src/tools/config';
import { signatureHeader, verifySignature } from '../../src/tools/signing';
import { startRelay } from '../support/relay-instance';
import { WEBHOOK_SECRET } from './support';

const good = { name: 'book_table', parameters: { type: 'object', properties: {} }, webhook: { url: 'https://backend.internal/tools/book_table' } };

describe('TOOLS_FILE', () => {
  it('fills the defaults of a valid file', () => {
    const f = parseToolsFile({ tools: [good], mcp: [{ server_label: 'payments', require_approval: 'always' }] });
    expect(f.tools[0]).toMatchObject({ approval: 'none', approval_timeout_s: 120, webhook: { timeout_ms: 5000 } });
    expect(f.mcp[0]).toMatchObject({ approval: 'operator', approval_timeout_s: 120 });
  });

  it.each([
    [{ tools: [good, { ...good, name: 'pay', approval: 'sometimes' }] }, /tools\[1\] "pay" approval must be equal to one of the allowed values/],
    [{ tools: [{ ...good, webhook: { url: 'ftp://x' } }] }, /tools\[0\] "book_table" webhook\.url must match pattern/],
    [{ tools: [{ name: 'no_webhook', parameters: { type: 'object' } }] }, /tools\[0\] "no_webhook" must have required property 'webhook'/],
    [{ tools: [{ ...good, name: 'bad name!' }] }, /tools\[0\] "bad name!" name must match pattern/],
    [{ tools: [good, good] }, /tools\[1\] "book_table" is defined twice/],
    [{ tools: [{ ...good, parameters: { type: 'object', properties: { a: { type: 'nonsense' } } } }] }, /tools\[0\] "book_table" parameters is not a usable JSON schema/],
    [{ tools: [{ ...good, colour: 'red' }] }, /tools\[0\] "book_table" must NOT have additional properties \(colour\)/],
    [{ mcp: [{ server_label: 'payments', require_approval: 'maybe' }] }, /mcp\[0\] "payments" require_approval/],
    [{ tool: [] }, /must NOT have additional properties \(tool\)/],
  ])('names the bad entry: %j', (raw, message) => {
    expect(() => parseToolsFile(raw)).toThrow(ConfigError);
    expect(() => parseToolsFile(raw)).toThrow(message);
  });

  it('accepts the shipped example (config/tools.example.json)', () => {
    const f = loadToolsFile(path.resolve(__dirname, '..', '..', 'config', 'tools.example.json'));
    expect(f.tools.map((x) => x.name)).toEqual(['book_table', 'refund_payment']);
  });

  it('treats an absent file as no tools, and a relay with a bad file does not start', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tools-config-'));
    try {
      expect(loadToolsFile(path.join(dir, 'absent.json'))).toEqual({ tools: [], mcp: [] });
      const file = path.join(dir, 'tools.json');
      writeFileSync(file, JSON.stringify({ tools: [good, { ...good, name: 'refund', webhook: { url: 'https://x', timeout_ms: 5 } }] }));
      await expect(startRelay({ TOOLS_FILE: file, TOOL_WEBHOOK_SECRET: WEBHOOK_SECRET })).rejects.toThrow(/tools\[1\] "refund" webhook\.timeout_ms must be >= 100/);
      writeFileSync(file, JSON.stringify({ tools: [good] }));
      await expect(startRelay({ TOOLS_FILE: file })).rejects.toThrow(/Missing setting TOOL_WEBHOOK_SECRET/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Relay-Signature', () => {
  it('is an HMAC-SHA256 of "<t>.<body>" that a backend can verify, and that fails on any change', () => {
    const body = '{"call_id":"call_1"}';
    const header = signatureHeader(WEBHOOK_SECRET, body, 1_700_000_000);
    expect(header).toMatch(/^t=1700000000,v1=[0-9a-f]{64}$/);
    expect(verifySignature(WEBHOOK_SECRET, body, header, 1_700_000_010)).toBe(true);
    expect(verifySignature(WEBHOOK_SECRET, `${body} `, header, 1_700_000_010)).toBe(false);
    expect(verifySignature(`${WEBHOOK_SECRET}x`, body, header, 1_700_000_010)).toBe(false);
    expect(verifySignature(WEBHOOK_SECRET, body, header.replace('t=1700000000', 't=1700000001'), 1_700_000_010)).toBe(false);
    // Replayed long after: refused by the tolerance.
    expect(verifySignature(WEBHOOK_SECRET, body, header, 1_700_001_000)).toBe(false);
  });
});

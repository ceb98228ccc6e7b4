import { BoundedLabel } from '../../src/metrics/bounded-label';
import { RelayMetrics } from '../../src/metrics/relay-metrics';
import { emptyUsage } from '../../src/metering/usage';
import type { LedgerEntry } from '../../src/storage/ledger';
import type { RecordResult } from '../../src/storage/ledger-durable';
import { parse, value } from './exposition';

async function sampleValue(m: RelayMetrics, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  return value(parse(await m.registry.metrics()), name, labels);
}

describe('RelayMetrics', () => {
  it('publishes hot-path frame counts at scrape time without counting any frame twice', async () => {
    const m = new RelayMetrics({ activeSessions: () => 0, spoolDepth: () => 0, defaultMetrics: false });
    expect(await sampleValue(m, 'relay_frames_total', { direction: 'client_to_upstream' })).toBe(0);
    for (let i = 0; i < 3; i++) m.observer.onClientFrame?.('input_audio_buffer.append', 100);
    m.observer.onUpstreamFrame?.('response.output_audio.delta', 7);
    expect(await sampleValue(m, 'relay_frames_total', { direction: 'client_to_upstream' })).toBe(3);
    expect(await sampleValue(m, 'relay_frames_total', { direction: 'client_to_upstream' })).toBe(3);
    m.observer.onClientFrame?.('response.create', 20);
    expect(await sampleValue(m, 'relay_frames_total', { direction: 'client_to_upstream' })).toBe(4);
    expect(await sampleValue(m, 'relay_bytes_total', { direction: 'client_to_upstream' })).toBe(320);
    expect(await sampleValue(m, 'relay_bytes_total', { direction: 'upstream_to_client' })).toBe(7);
  });

  it('times ledger writes by outcome and bills tokens and cost only for rows that count', async () => {
    const m = new RelayMetrics({ activeSessions: () => 0, spoolDepth: () => 4, defaultMetrics: false });
    const results: RecordResult[] = ['inserted', 'duplicate', 'spooled'];
    const ledger = { record: async (_entry: LedgerEntry): Promise<RecordResult> => results.shift() ?? 'inserted' };
    m.instrumentLedger(ledger);
    const usage = { ...emptyUsage(), output_audio: 10 };
    const entry = { provider: 'openai', model: 'gpt-realtime', usage, costNanos: 640_000n, estimated: false } as LedgerEntry;
    await ledger.record(entry);
    await ledger.record(entry);
    await ledger.record({ ...entry, estimated: true });
    const exact = { provider: 'openai', model: 'gpt-realtime', billing: 'exact' };
    expect(await sampleValue(m, 'relay_tokens_total', { ...exact, kind: 'output_audio' })).toBe(10);
    expect(await sampleValue(m, 'relay_cost_usd_total', exact)).toBeCloseTo(0.00064, 9);
    expect(await sampleValue(m, 'relay_cost_usd_total', { ...exact, billing: 'estimated' })).toBeCloseTo(0.00064, 9);
    expect(await sampleValue(m, 'relay_ledger_write_seconds_count', { result: 'duplicate' })).toBe(1);
    expect(await sampleValue(m, 'relay_ledger_spool_depth')).toBe(4);

    const failing = { record: async (_entry: LedgerEntry): Promise<RecordResult> => Promise.reject(new Error('disk full')) };
    m.instrumentLedger(failing);
    await expect(failing.record(entry)).rejects.toThrow('disk full');
    expect(await sampleValue(m, 'relay_ledger_write_seconds_count', { result: 'failed' })).toBe(1);
  });
});

describe('BoundedLabel', () => {
  it('keeps the first values and folds the rest into "other"', () => {
    const l = new BoundedLabel(2, 5);
    expect(l.value('a')).toBe('a');
    expect(l.value('bbbbbbbb')).toBe('bbbbb');
    expect(l.value('c')).toBe('other');
    expect(l.value('a')).toBe('a');
    expect(l.value(undefined)).toBe('unknown');
  });
});

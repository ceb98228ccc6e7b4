import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PriceBook } from '../../src/metering/prices';
import { SessionMeter, type MeterContext } from '../../src/metering/session-meter';
import { migrate } from '../../src/storage/database';
import { ledgerMigrations } from '../../src/storage/ledger';
import { DurableLedger } from '../../src/storage/ledger-durable';
import { openTestDatabase, type TestDatabase } from '../support/databases';
import { SwitchableDatabase, until } from '../storage/ledger-fixtures';
import { responseDone } from './fixtures/usage';

const prices = PriceBook.load(path.resolve(__dirname, '../../config/prices.json'));
const NOW = new Date('2026-02-01T10:00:00Z');

// Frame sizes as the relay sees them: base64 audio inside a JSON envelope.
const APPEND_ENVELOPE = 47; // {"type":"input_audio_buffer.append","audio":""}
const DELTA_ENVELOPE = 190;
// 100 ms of pcm16 at 24 kHz = 2400 samples × 2 bytes = 4800 bytes = 6400 base64 characters.
const B64_100MS_PCM16 = 6400;

// The reference usage (§4) at gpt-realtime prices (4 / 0.40 / 16, audio 32 / 0.40 / 64):
// 114×4000 + 180×400 + 10×16000 + 7×32000 + 88×400 + 523×64000
const REFERENCE_COST_GPT_REALTIME = 456_000n + 72_000n + 160_000n + 224_000n + 35_200n + 33_472_000n;

describe('SessionMeter', () => {
  let t: TestDatabase;
  let db: SwitchableDatabase;
  let dir: string;
  let ledger: DurableLedger;
  let warnings: { o: object; m: string }[];

  const context: MeterContext = { sessionId: 'sess_1', user: 'alice', tenant: 'acme', keyId: 'rk_1', provider: 'simulator', model: 'gpt-realtime' };

  function meter(over: Partial<MeterContext> = {}, fallbackModel?: string): SessionMeter {
    return new SessionMeter({
      ledger,
      prices,
      context: { ...context, ...over },
      fallbackModel,
      now: () => NOW,
      logger: { warn: (o, m) => void warnings.push({ o, m }) },
    });
  }

  beforeEach(async () => {
    t = await openTestDatabase('sqlite');
    await migrate(t.db, ledgerMigrations);
    db = new SwitchableDatabase(t.db);
    dir = mkdtempSync(path.join(tmpdir(), 'relay-meter-'));
    ledger = await DurableLedger.open({ db, spoolDir: dir, retry: { initialMs: 20, maxMs: 100 } });
    warnings = [];
  });
  afterEach(async () => {
    await ledger.flush(0);
    await t.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('bills a response.done at once, exactly', async () => {
    const m = meter();
    m.onResponseCreated('resp_1');
    await m.onResponseDone(responseDone('resp_1'));
    expect(REFERENCE_COST_GPT_REALTIME).toBe(34_419_200n);
    expect(m.totals).toEqual({ nanos: 34_419_200n, responses: 1 });
    const row = await ledger.find('simulator', 'resp_1');
    expect(row).toMatchObject({
      sessionId: 'sess_1',
      user: 'alice',
      tenant: 'acme',
      keyId: 'rk_1',
      model: 'gpt-realtime',
      priceModel: 'gpt-realtime',
      priceVersion: prices.version,
      status: 'completed',
      estimated: false,
      costNanos: 34_419_200n,
      createdAt: NOW.getTime(),
      usage: { input_text: 294, cached_text: 180, input_audio: 95, cached_audio: 88, output_text: 10, output_audio: 523 },
    });
  });

  it('bills a duplicated response.done once', async () => {
    const m = meter();
    await m.onResponseDone(responseDone('resp_1'));
    await m.onResponseDone(responseDone('resp_1'));
    expect(m.totals).toEqual({ nanos: REFERENCE_COST_GPT_REALTIME, responses: 1 });
    expect(await ledger.spend({ user: 'alice' })).toBe(REFERENCE_COST_GPT_REALTIME);
    // Response ids are unique only per upstream session: another session's resp_1 is its own row.
    const other = meter({ sessionId: 'sess_2', user: 'bob' });
    await other.onResponseDone(responseDone('resp_1'));
    expect(await ledger.spend({ user: 'bob' })).toBe(REFERENCE_COST_GPT_REALTIME);
    expect(await ledger.spend({ user: 'alice' })).toBe(REFERENCE_COST_GPT_REALTIME);
  });

  it('bills cancelled responses for what they report, and an estimate flagged for usage: null', async () => {
    const m = meter();
    m.onResponseCreated('resp_cancelled');
    await m.onResponseDone(responseDone('resp_cancelled', { input_tokens: 100, output_tokens: 0, input_token_details: { text_tokens: 100, audio_tokens: 0 } }, 'cancelled'));
    m.onResponseCreated('resp_empty');
    await m.onResponseDone(responseDone('resp_empty', null, 'cancelled'));
    await m.onSessionEnd();
    // 100 text in × 4000; then resp_empty re-read that context (100 text tokens, estimated).
    expect(m.totals).toEqual({ nanos: 800_000n, responses: 2 });
    expect((await ledger.find('simulator', 'resp_cancelled'))?.status).toBe('cancelled');
    expect(await ledger.find('simulator', 'resp_empty')).toMatchObject({ estimated: true, status: 'cancelled', usage: { input_text: 100 } });
  });

  it('writes an estimated row for a response cut before response.done', async () => {
    const m = meter();
    // 1 s of user audio in ten 100 ms appends, before the response starts.
    for (let i = 0; i < 10; i++) m.onClientAudioAppend(APPEND_ENVELOPE + B64_100MS_PCM16);
    m.onResponseCreated('resp_cut');
    // 2 s of model audio and its transcript; then the session is cut.
    for (let i = 0; i < 20; i++) m.onUpstreamAudioDelta(DELTA_ENVELOPE + B64_100MS_PCM16);
    for (let i = 0; i < 5; i++) m.onUpstreamTextDelta(DELTA_ENVELOPE + 12);
    await m.onSessionEnd();

    const row = await ledger.find('simulator', 'resp_cut');
    // input: 64_000 b64 chars × 3/4 = 48_000 bytes = 1 s × 10 tokens/s = 10 tokens
    // output: 128_000 b64 chars × 3/4 = 96_000 bytes = 2 s × 20 tokens/s = 40 tokens
    // the text deltas are the audio's transcript: not billed as text
    expect(row).toMatchObject({ estimated: true, status: 'in_progress', usage: { input_audio: 10, output_audio: 40, output_text: 0 } });
    // 10 × 32_000 + 40 × 64_000 = 320_000 + 2_560_000
    expect(row?.costNanos).toBe(2_880_000n);
    expect(m.totals).toEqual({ nanos: 2_880_000n, responses: 1 });
  });

  it('estimates text ≈ characters / 4 for a text-only response', async () => {
    const m = meter();
    m.onResponseCreated('resp_text');
    for (let i = 0; i < 3; i++) m.onUpstreamTextDelta(DELTA_ENVELOPE + 9); // 27 characters
    await m.onSessionEnd();
    // ceil(27 / 4) = 7 tokens × 16_000 = 112_000
    expect(await ledger.find('simulator', 'resp_text')).toMatchObject({ usage: { output_text: 7 }, costNanos: 112_000n });
  });

  it('lets a late exact response.done replace the estimate, counting it once', async () => {
    const m = meter();
    m.onResponseCreated('resp_cut');
    for (let i = 0; i < 20; i++) m.onUpstreamAudioDelta(DELTA_ENVELOPE + B64_100MS_PCM16);
    await m.onSessionEnd();
    expect(m.totals).toEqual({ nanos: 2_560_000n, responses: 1 }); // 40 × 64_000

    await m.onResponseDone(responseDone('resp_cut'));
    expect(m.totals).toEqual({ nanos: REFERENCE_COST_GPT_REALTIME, responses: 1 });
    expect(await ledger.find('simulator', 'resp_cut')).toMatchObject({ estimated: false, costNanos: REFERENCE_COST_GPT_REALTIME });
    expect(await ledger.spend({})).toBe(REFERENCE_COST_GPT_REALTIME);
  });

  it('writes no estimate for a response whose done is still being written', async () => {
    const m = meter();
    m.onResponseCreated('resp_1');
    void m.onResponseDone(responseDone('resp_1'));
    await m.onSessionEnd();
    expect(await ledger.find('simulator', 'resp_1')).toMatchObject({ estimated: false });
    expect(m.totals.responses).toBe(1);
  });

  it('keeps overlapping responses apart', async () => {
    const m = meter();
    m.onResponseCreated('resp_a');
    for (let i = 0; i < 10; i++) m.onUpstreamAudioDelta(DELTA_ENVELOPE + B64_100MS_PCM16); // 1 s → resp_a
    m.onResponseCreated('resp_b');
    for (let i = 0; i < 5; i++) m.onUpstreamAudioDelta(DELTA_ENVELOPE + B64_100MS_PCM16); // 0.5 s → resp_b
    await m.onSessionEnd();
    expect((await ledger.find('simulator', 'resp_a'))?.usage.output_audio).toBe(20);
    expect((await ledger.find('simulator', 'resp_b'))?.usage.output_audio).toBe(10);
  });

  it('follows the session audio format for estimates (g711: 8000 bytes/s)', async () => {
    const m = meter();
    m.onSessionUpdated({ type: 'session.updated', session: { input_audio_format: 'g711_ulaw', output_audio_format: 'g711_ulaw' } });
    // 300 ms of g711 = 2400 bytes = 3200 base64 characters; ten frames = 3 s = 30 tokens.
    for (let i = 0; i < 10; i++) m.onClientAudioAppend(APPEND_ENVELOPE + 3200);
    m.onResponseCreated('resp_g711');
    await m.onSessionEnd();
    expect((await ledger.find('simulator', 'resp_g711'))?.usage.input_audio).toBe(30);

    const ga = meter({ sessionId: 'sess_ga' });
    ga.onSessionUpdated({ type: 'session.updated', session: { type: 'realtime', audio: { output: { format: { type: 'audio/pcmu' } } } } });
    ga.onResponseCreated('resp_ga');
    for (let i = 0; i < 10; i++) ga.onUpstreamAudioDelta(DELTA_ENVELOPE + 3200); // 3 s × 20 = 60
    await ga.onSessionEnd();
    expect((await ledger.find('simulator', 'resp_ga'))?.usage.output_audio).toBe(60);
  });

  describe('transcription', () => {
    const completed = (itemId: string, usage: object): object => ({
      type: 'conversation.item.input_audio_transcription.completed',
      item_id: itemId,
      content_index: 0,
      transcript: 'hello',
      usage,
    });

    it('prices tokens at the session transcription model (beta config)', async () => {
      const m = meter();
      m.onSessionUpdated({ type: 'session.created', session: { input_audio_transcription: { model: 'gpt-4o-transcribe' } } });
      await m.onTranscriptionCompleted(completed('item_1', { type: 'tokens', input_tokens: 1230, output_tokens: 85, input_token_details: { audio_tokens: 1200, text_tokens: 30 } }));
      // 1200 × 6000 + 30 × 2500 + 85 × 10_000 = 7_200_000 + 75_000 + 850_000
      expect(await ledger.find('simulator', 'transcription:sess_1:item_1')).toMatchObject({ model: 'gpt-4o-transcribe', costNanos: 8_125_000n, estimated: false });
      // Transcriptions add to the cost, not to the response count.
      expect(m.totals).toEqual({ nanos: 8_125_000n, responses: 0 });
    });

    it('prices duration per minute (GA config) and bills a repeated event once', async () => {
      const m = meter();
      m.onSessionUpdated({ type: 'session.updated', session: { type: 'realtime', audio: { input: { transcription: { model: 'gpt-realtime-whisper' } } } } });
      await m.onTranscriptionCompleted(completed('item_2', { type: 'duration', seconds: 7.25 }));
      await m.onTranscriptionCompleted(completed('item_2', { type: 'duration', seconds: 7.25 }));
      // 7250 ms × 17_000_000 / 60_000 = 2_054_166.67 → 2_054_167
      expect(m.totals.nanos).toBe(2_054_167n);
      expect(await ledger.spend({})).toBe(2_054_167n);
    });

    it('assumes a model, and says so, when the session never named one', async () => {
      const m = meter();
      await m.onTranscriptionCompleted(completed('item_3', { type: 'duration', seconds: 60 }));
      expect(await ledger.find('simulator', 'transcription:sess_1:item_3')).toMatchObject({ model: 'whisper-1', costNanos: 6_000_000n });
      expect(warnings.map((w) => w.m)).toContain('transcription model unknown; assumed');
    });

    it('ignores a transcription without usage', async () => {
      const m = meter();
      await m.onTranscriptionCompleted({ type: 'conversation.item.input_audio_transcription.completed', item_id: 'item_4', transcript: 'x' });
      expect(await ledger.spend({})).toBe(0n);
    });
  });

  describe('unpriced models', () => {
    it('bills at the fallback model and flags the row', async () => {
      const m = meter({ provider: 'azure', model: 'my-realtime-deployment' }, 'gpt-realtime');
      await m.onResponseDone(responseDone('resp_1'));
      expect(await ledger.find('azure', 'resp_1')).toMatchObject({ model: 'my-realtime-deployment', priceModel: 'gpt-realtime', costNanos: REFERENCE_COST_GPT_REALTIME });
      expect(warnings.map((w) => w.m)).toEqual(['model unpriced; billed at the fallback model']);
    });

    it('records usage at cost 0 without a fallback', async () => {
      const m = meter({ provider: 'azure', model: 'my-realtime-deployment' });
      await m.onResponseDone(responseDone('resp_1'));
      expect(await ledger.find('azure', 'resp_1')).toMatchObject({ priceModel: null, costNanos: 0n, usage: { output_audio: 523 } });
      expect(warnings.map((w) => w.m)).toEqual(['model unpriced and no usable fallback; usage recorded at cost 0']);
    });
  });

  it('loses nothing and doubles nothing when the database goes away mid-session', async () => {
    const m = meter();
    m.onResponseCreated('resp_1');
    await m.onResponseDone(responseDone('resp_1'));

    db.down = true;
    m.onResponseCreated('resp_2');
    await m.onResponseDone(responseDone('resp_2'));
    await m.onResponseDone(responseDone('resp_2')); // a repeat while down is not spooled again
    m.onResponseCreated('resp_3');
    for (let i = 0; i < 20; i++) m.onUpstreamAudioDelta(DELTA_ENVELOPE + B64_100MS_PCM16);
    await m.onSessionEnd();
    expect(ledger.spoolDepth()).toBe(2);
    // resp_3's estimate: 40 audio tokens out × 64_000, and the context resp_2 reported
    // (294 + 10 text × 4000, 95 + 523 audio × 32_000), re-read uncached.
    const estimate = 2_560_000n + 304n * 4000n + 618n * 32_000n;
    expect(m.totals).toEqual({ nanos: 2n * REFERENCE_COST_GPT_REALTIME + estimate, responses: 3 });

    db.down = false;
    await until(() => ledger.spoolDepth() === 0);
    // resp_1 and resp_2 exact, resp_3 estimated (40 audio tokens × 64_000): each once.
    expect(await ledger.spend({ user: 'alice' })).toBe(2n * REFERENCE_COST_GPT_REALTIME + estimate);
    expect((await ledger.usage({}))[0]).toMatchObject({ responses: 3, estimated_responses: 1 });
  });
});

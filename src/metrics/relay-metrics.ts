import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { TOKEN_FIELDS } from '../metering/usage';
import type { ParsedEvent } from '../relay/relay-session';
import type { SessionContext, SessionPlan } from '../routes/realtime';
import type { SessionObserver } from '../session/plan-session';
import type { LedgerEntry } from '../storage/ledger';
import type { RecordResult } from '../storage/ledger-durable';
import { BoundedLabel } from './bounded-label';

export interface RelayMetricsOptions {
  /** Sessions open right now (the SessionRegistry's size), read at scrape time. */
  activeSessions: () => number;
  /** Ledger rows waiting on disk for the database, read at scrape time. */
  spoolDepth: () => number;
  /** Seconds the oldest spooled row has waited (0 when none), read at scrape time. */
  spoolOldestAgeSeconds?: () => number;
  /** Process metrics (CPU, memory, event loop, GC); on by default. */
  defaultMetrics?: boolean;
}

type Planner = (ctx: SessionContext) => Promise<SessionPlan>;
interface RecordingLedger {
  record(entry: LedgerEntry): Promise<RecordResult>;
}

const NANOS_PER_USD = 1e9;

/**
 * The relay's Prometheus series, in a registry of their own so that several relays in one
 * process (tests) never share counters. No series is labelled by user, tenant or key: those
 * are unbounded and personal; per-user usage is the ledger's job (GET /v1/usage).
 */
export class RelayMetrics {
  readonly registry = new Registry();
  readonly observer: SessionObserver;

  /*
   * Per-frame counts are plain numbers bumped on the hot path and published into the counters
   * only when scraped: even a pre-created labelled child hashes its labels on every inc().
   */
  private readonly hot = { clientFrames: 0, clientBytes: 0, upstreamFrames: 0, upstreamBytes: 0 };
  private readonly published = { clientFrames: 0, clientBytes: 0, upstreamFrames: 0, upstreamBytes: 0 };

  private readonly opened: Counter;
  private readonly closed: Counter<'reason'>;
  private readonly duration: Histogram;
  private readonly handshake: Histogram;
  private readonly handshakeFailures: Counter<'status'>;
  private readonly errors: Counter<'source' | 'kind'>;
  private readonly tokens: Counter<'provider' | 'model' | 'kind' | 'billing'>;
  private readonly cost: Counter<'provider' | 'model' | 'billing'>;
  private readonly ledgerWrite: Histogram<'result'>;
  private readonly usageAnomalies: Counter<'provider' | 'model' | 'problem'>;

  private readonly reasons = new BoundedLabel(40);
  private readonly statuses = new BoundedLabel(40);
  private readonly upstreamErrorTypes = new BoundedLabel(40);
  private readonly relayErrorCodes = new BoundedLabel(80);
  private readonly providers = new BoundedLabel(10);
  private readonly models = new BoundedLabel(100);

  constructor(o: RelayMetricsOptions) {
    const registers = [this.registry];
    if (o.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });

    new Gauge({
      name: 'relay_sessions_active',
      help: 'Realtime sessions open on this instance.',
      registers,
      collect() {
        this.set(o.activeSessions());
      },
    });
    this.opened = new Counter({ name: 'relay_sessions_opened_total', help: 'Realtime sessions started (client admitted, upstream connection attempted).', registers });
    this.closed = new Counter({ name: 'relay_sessions_closed_total', help: 'Realtime sessions ended, by why they ended (client_closed, upstream_closed, handshake_failed, idle_timeout, ...).', labelNames: ['reason'], registers });
    this.duration = new Histogram({
      name: 'relay_session_duration_seconds',
      help: 'Length of ended realtime sessions.',
      buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600],
      registers,
    });

    const hot = this.hot;
    const published = this.published;
    const frames = new Counter({
      name: 'relay_frames_total',
      help: 'WebSocket frames relayed, by direction.',
      labelNames: ['direction'],
      registers,
      collect() {
        this.inc({ direction: 'client_to_upstream' }, hot.clientFrames - published.clientFrames);
        this.inc({ direction: 'upstream_to_client' }, hot.upstreamFrames - published.upstreamFrames);
        published.clientFrames = hot.clientFrames;
        published.upstreamFrames = hot.upstreamFrames;
      },
    });
    const bytes = new Counter({
      name: 'relay_bytes_total',
      help: 'Bytes of WebSocket frame payloads relayed, by direction.',
      labelNames: ['direction'],
      registers,
      collect() {
        this.inc({ direction: 'client_to_upstream' }, hot.clientBytes - published.clientBytes);
        this.inc({ direction: 'upstream_to_client' }, hot.upstreamBytes - published.upstreamBytes);
        published.clientBytes = hot.clientBytes;
        published.upstreamBytes = hot.upstreamBytes;
      },
    });
    for (const c of [frames, bytes]) for (const direction of ['client_to_upstream', 'upstream_to_client']) c.inc({ direction }, 0);

    this.handshake = new Histogram({
      name: 'relay_upstream_handshake_seconds',
      help: 'Time to open the upstream WebSocket (successful handshakes).',
      buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.handshakeFailures = new Counter({ name: 'relay_upstream_handshake_failures_total', help: 'Upstream handshakes that failed, by HTTP status (or timeout, network).', labelNames: ['status'], registers });
    this.errors = new Counter({
      name: 'relay_errors_total',
      help: 'Errors reported to clients: source="upstream" by the upstream error event\'s error.type; source="relay" by the relay\'s own error code (refused connections and in-session error events).',
      labelNames: ['source', 'kind'],
      registers,
    });
    this.tokens = new Counter({
      name: 'relay_tokens_total',
      help: 'Tokens billed, by provider, model and token kind (cached_* are a subset of input_*); billing="estimated" rows are for responses cut off before reporting usage.',
      labelNames: ['provider', 'model', 'kind', 'billing'],
      registers,
    });
    this.cost = new Counter({
      name: 'relay_cost_usd_total',
      help: 'Cost billed in USD, by provider and model. An exact row that later supersedes an estimated one is counted under both billing values.',
      labelNames: ['provider', 'model', 'billing'],
      registers,
    });
    this.ledgerWrite = new Histogram({
      name: 'relay_ledger_write_seconds',
      help: 'Time to record one usage row, by outcome (inserted, duplicate, replaced, spooled, failed).',
      labelNames: ['result'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
      registers,
    });
    this.usageAnomalies = new Counter({
      name: 'relay_usage_anomalies_total',
      help: 'response.done events whose usage was missing or malformed (strings, fractions, negative or absurd counts); each was billed as an estimated row.',
      labelNames: ['provider', 'model', 'problem'],
      registers,
    });
    new Gauge({
      name: 'relay_ledger_spool_depth',
      help: 'Usage rows spooled on disk while the database is unreachable, waiting for replay.',
      registers,
      collect() {
        this.set(o.spoolDepth());
      },
    });
    new Gauge({
      name: 'relay_ledger_spool_oldest_age_seconds',
      help: 'How long the oldest spooled usage row has waited for the database (0 when the spool is empty). Rising means rows are not landing.',
      registers,
      collect() {
        this.set(o.spoolOldestAgeSeconds?.() ?? 0);
      },
    });

    this.observer = {
      onClientFrame(_type, size) {
        hot.clientFrames += 1;
        hot.clientBytes += size;
      },
      onUpstreamFrame(_type, size) {
        hot.upstreamFrames += 1;
        hot.upstreamBytes += size;
      },
      onUpstreamOpen: (handshakeMs) => this.handshake.observe(handshakeMs / 1000),
      onHandshakeFailure: (status) => this.handshakeFailures.inc({ status: this.statuses.value(String(status)) }),
      onUsageAnomaly: (provider, model, problem) =>
        this.usageAnomalies.inc({ provider: this.providers.value(provider), model: this.models.value(model), problem }),
      onUpstreamError: (event) => this.errors.inc({ source: 'upstream', kind: this.upstreamErrorTypes.value(errorField(event, 'type')) }),
      onRelayEvent: (event) => {
        // Relay-originated events are rare (refusals, notices): parsing them costs nothing that matters.
        if (!event.startsWith('{"type":"error"')) return;
        try {
          this.relayError(errorField(JSON.parse(event) as ParsedEvent, 'code'));
        } catch {
          this.relayError(undefined);
        }
      },
    };
  }

  /** A relay-originated error, by its stable code (e.g. a refused connection's HTTP error code). */
  relayError(code: string | undefined): void {
    this.errors.inc({ source: 'relay', kind: this.relayErrorCodes.value(code) });
  }

  /** Wraps the session planner: counts sessions opened, and closed by end reason. */
  instrumentPlanner(planner: Planner): Planner {
    return async (ctx) => {
      const plan = await planner(ctx);
      this.opened.inc();
      return {
        ...plan,
        onEnded: (summary) => {
          this.closed.inc({ reason: this.reasons.value(summary.endReason) });
          this.duration.observe(summary.durationMs / 1000);
          return plan.onEnded?.(summary);
        },
      };
    };
  }

  /**
   * Times every ledger write and counts the tokens and cost it bills. The ledger is the one
   * place every billed row passes (exact and estimated, responses and transcriptions), so it
   * is wrapped rather than each of its callers taught about metrics.
   */
  instrumentLedger(ledger: RecordingLedger): void {
    const record = ledger.record.bind(ledger);
    ledger.record = async (entry) => {
      const end = this.ledgerWrite.startTimer();
      let result: RecordResult;
      try {
        result = await record(entry);
      } catch (err) {
        end({ result: 'failed' });
        throw err;
      }
      end({ result });
      if (result !== 'duplicate') this.countBilled(entry);
      return result;
    };
  }

  private countBilled(entry: LedgerEntry): void {
    const provider = this.providers.value(entry.provider);
    const model = this.models.value(entry.model);
    const billing = entry.estimated ? 'estimated' : 'exact';
    for (const kind of TOKEN_FIELDS) {
      const n = entry.usage[kind];
      if (n > 0) this.tokens.inc({ provider, model, kind, billing }, n);
    }
    this.cost.inc({ provider, model, billing }, Number(entry.costNanos) / NANOS_PER_USD);
  }
}

function errorField(event: ParsedEvent, field: 'type' | 'code'): string | undefined {
  const error = event.error;
  if (typeof error !== 'object' || error === null) return undefined;
  const v = (error as Record<string, unknown>)[field];
  return typeof v === 'string' ? v : undefined;
}

import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** What the tool runner reports; the runner knows nothing of Prometheus. */
export interface ToolMetricsSink {
  call(tool: string, outcome: string): void;
  webhookLatency(tool: string, seconds: number, status: string): void;
  /** A forged function_call_output seen on a WebRTC call's sideband (reason: server_tool_output | unknown_call_id). */
  forgedCallOutput?(reason: string, action: 'hangup' | 'log'): void;
}

/**
 * Server-side tool series. `tool` is bounded: it is a name from TOOLS_FILE (or `mcp:<label>` of a
 * configured MCP server), never a name the model or a client made up.
 */
export function registerToolMetrics(registry: Registry, pendingApprovals: () => Promise<number>): ToolMetricsSink {
  const registers = [registry];
  const calls = new Counter({ name: 'relay_tool_calls_total', help: 'Server-side tool calls handled, by tool and outcome (completed, webhook_error, invalid_arguments, rejected, expired, approved).', labelNames: ['tool', 'outcome'], registers });
  const latency = new Histogram({
    name: 'relay_tool_webhook_duration_seconds',
    help: 'Time from a tool webhook request to its answer (or timeout), by tool and HTTP status class.',
    labelNames: ['tool', 'status'],
    buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers,
  });
  const forged = new Counter({
    name: 'relay_call_forged_tool_outputs_total',
    help: 'function_call_output items a WebRTC device sent for a server tool or an unissued call id, seen on the sideband, by reason and action taken (hangup, log).',
    labelNames: ['reason', 'action'],
    registers,
  });
  new Gauge({
    name: 'relay_tool_approvals_pending',
    help: 'Tool approvals waiting for a decision (all instances: read from the database).',
    registers,
    async collect() {
      try {
        this.set(await pendingApprovals());
      } catch {
        // The database is down: leave the last value rather than fail the whole scrape.
      }
    },
  });
  return {
    call: (tool, outcome) => calls.inc({ tool, outcome }),
    webhookLatency: (tool, seconds, status) => latency.observe({ tool, status }, seconds),
    forgedCallOutput: (reason, action) => forged.inc({ reason, action }),
  };
}

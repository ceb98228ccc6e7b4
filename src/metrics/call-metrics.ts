import { Counter, Gauge, type Registry } from 'prom-client';

/**
 * WebRTC call series: calls held right now by transport (read at scrape time), and locked
 * fields a device changed over its data channel. WebSocket sessions keep their own gauge.
 */
export function registerCallMetrics(registry: Registry, activeCalls: () => number): { policyIncident: () => void } {
  new Gauge({
    name: 'relay_active_calls',
    help: 'Calls whose sideband this instance holds, by transport',
    labelNames: ['transport'],
    registers: [registry],
    collect() {
      this.set({ transport: 'webrtc' }, activeCalls());
    },
  });
  const incidents = new Counter({
    name: 'relay_call_policy_incidents_total',
    help: 'Locked session fields changed by a device on its data channel (restored or hung up)',
    registers: [registry],
  });
  return { policyIncident: () => incidents.inc() };
}

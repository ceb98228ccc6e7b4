/**
 * Upstream simulator: an in-process fake of the OpenAI Realtime API (beta and GA dialects, Azure and
 * CometAPI paths) for tests and dev.
 *
 *   const sim = new RealtimeSimulator({ apiKey: 'sk-test', seed: 1 });
 *   const { url } = await sim.start();            // http://127.0.0.1:PORT/v1
 *   sim.setFaults({ dropMidResponseAfterDeltas: 2 }); // affects new connections/responses only
 *   ... sim.stats.usageTotals, sim.connections() ...
 *   await sim.stop();
 */
export { RealtimeSimulator, DEFAULT_MODELS } from './simulator';
export { NO_FAULTS } from './types';
export type {
  Dialect, ReceivedClientEvent, SimulatedConnectionInfo, SimulatorFaults, SimulatorLogger, SimulatorOptions, SimulatorStats,
} from './types';
export type { RealtimeUsage, UsageTotals } from './usage';

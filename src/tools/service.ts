/**
 * The relay's server-side tools, once per process: the definitions from TOOLS_FILE with their
 * compiled argument validators, the webhook secret, the approval broker and the audit store.
 * Each session gets its own ToolRunner from `runner()`.
 */
import Ajv, { type ValidateFunction } from 'ajv';
import type { Logger } from 'pino';
import { ConfigError, type RelayConfig } from '../config/config';
import type { ToolMetricsSink } from '../metrics/tool-metrics';
import { migrate, type SqlDatabase } from '../storage/database';
import { ApprovalBroker } from './approvals';
import { loadToolsFile, type McpPolicy, type ServerToolDefinition, type ToolsFile } from './config';
import { ApprovalStore, ToolCallStore, toolMigrations } from './store';

export interface ToolServiceOptions {
  config: RelayConfig;
  db: SqlDatabase;
  logger: Logger;
  /** Already-parsed definitions (tests); otherwise TOOLS_FILE is read. */
  definitions?: ToolsFile;
  approvalPollMs?: number;
}

export class ToolService {
  readonly definitions: ToolsFile;
  readonly approvals: ApprovalBroker;
  readonly calls: ToolCallStore;
  readonly webhookSecret: string;
  readonly auditArguments: 'full' | 'hash';
  readonly maxArgumentAttempts: number;
  /** CALL_FORGED_TOOL_OUTPUT_ACTION: what a forged tool output seen on a call's sideband does. */
  readonly forgedCallOutputAction: 'hangup' | 'log';
  readonly logger: Logger;
  metrics: ToolMetricsSink | null = null;
  private readonly validators = new Map<string, ValidateFunction>();
  private readonly mcpByLabel: ReadonlyMap<string, McpPolicy>;

  private constructor(o: ToolServiceOptions, definitions: ToolsFile) {
    this.definitions = definitions;
    this.logger = o.logger;
    this.webhookSecret = o.config.tools.webhookSecret ?? '';
    this.auditArguments = o.config.tools.auditArguments;
    this.maxArgumentAttempts = o.config.tools.maxArgumentAttempts;
    this.forgedCallOutputAction = o.config.calls.forgedToolOutputAction;
    this.approvals = new ApprovalBroker(new ApprovalStore(o.db), o.approvalPollMs);
    this.calls = new ToolCallStore(o.db);
    // allErrors: the model is told everything that is wrong at once, not one problem per retry.
    const ajv = new Ajv({ allErrors: true, strict: false });
    for (const t of definitions.tools) this.validators.set(t.name, ajv.compile(t.parameters));
    this.mcpByLabel = new Map(definitions.mcp.map((m) => [m.server_label, m]));
  }

  /** Reads and validates TOOLS_FILE against the settings. Throws ConfigError on a bad file; call it before starting anything. */
  static loadDefinitions(config: RelayConfig): ToolsFile {
    const definitions = loadToolsFile(config.tools.file);
    if (definitions.tools.length > 0 && !config.tools.webhookSecret) {
      throw new ConfigError('Missing setting TOOL_WEBHOOK_SECRET: TOOLS_FILE defines tools, and their webhooks must be able to verify the relay signed each call');
    }
    return definitions;
  }

  /** Validated definitions (TOOLS_FILE when none are given), and the tool tables created. */
  static async open(o: ToolServiceOptions): Promise<ToolService> {
    const definitions = o.definitions ?? ToolService.loadDefinitions(o.config);
    await migrate(o.db, toolMigrations);
    return new ToolService(o, definitions);
  }

  /** True when there is anything for a session to do: otherwise no hooks are installed at all. */
  get enabled(): boolean {
    return this.definitions.tools.length > 0 || this.definitions.mcp.length > 0;
  }

  /** The tools a session of this tenant is offered. */
  toolsFor(tenant: string | null): ServerToolDefinition[] {
    return this.definitions.tools.filter((t) => !t.tenants || (tenant !== null && t.tenants.includes(tenant)));
  }

  validator(name: string): ValidateFunction | undefined {
    return this.validators.get(name);
  }

  mcpPolicy(label: string): McpPolicy | undefined {
    return this.mcpByLabel.get(label);
  }
}

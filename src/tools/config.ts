/**
 * TOOLS_FILE: the server-side tools the relay offers the model and runs itself, and the MCP
 * servers whose approvals it holds. Validated once at start; the first bad entry stops the
 * relay with a message naming it (`tools[1] "book_table": webhook.url must …`).
 */
import { readFileSync } from 'node:fs';
import Ajv, { type ErrorObject } from 'ajv';
import { ConfigError } from '../config/config';

export type ApprovalMode = 'none' | 'user' | 'operator';

export interface ServerToolDefinition {
  name: string;
  description?: string;
  /** JSON schema of the arguments; the relay validates every call against it (ajv). */
  parameters: Record<string, unknown>;
  webhook: { url: string; timeout_ms: number };
  approval: ApprovalMode;
  approval_timeout_s: number;
  /** When present, only sessions of these tenants are offered the tool. */
  tenants?: string[];
}

export interface McpPolicy {
  server_label: string;
  /** Forced onto the client's `type: "mcp"` tool of this label; the protocol's own values. */
  require_approval: 'always' | 'never' | Record<string, unknown>;
  /** Who decides this server's approval requests (not in the upstream protocol: the relay's own). */
  approval: 'user' | 'operator';
  approval_timeout_s: number;
}

export interface ToolsFile {
  tools: ServerToolDefinition[];
  mcp: McpPolicy[];
}

export const DEFAULT_WEBHOOK_TIMEOUT_MS = 5000;
export const DEFAULT_APPROVAL_TIMEOUT_S = 120;

/** Names the provider accepts for a function tool. */
const TOOL_NAME = '^[A-Za-z0-9_-]{1,64}$';

const toolSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'parameters', 'webhook'],
  properties: {
    name: { type: 'string', pattern: TOOL_NAME },
    description: { type: 'string', maxLength: 4096 },
    parameters: {
      type: 'object',
      required: ['type'],
      properties: { type: { const: 'object' } },
    },
    webhook: {
      type: 'object',
      additionalProperties: false,
      required: ['url'],
      properties: {
        url: { type: 'string', pattern: '^https?://[^\\s]+$' },
        timeout_ms: { type: 'integer', minimum: 100, maximum: 120000, default: DEFAULT_WEBHOOK_TIMEOUT_MS },
      },
    },
    approval: { type: 'string', enum: ['none', 'user', 'operator'], default: 'none' },
    approval_timeout_s: { type: 'integer', minimum: 1, maximum: 86400, default: DEFAULT_APPROVAL_TIMEOUT_S },
    tenants: { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1 },
  },
} as const;

const mcpSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['server_label', 'require_approval'],
  properties: {
    server_label: { type: 'string', minLength: 1, maxLength: 256 },
    require_approval: { anyOf: [{ type: 'string', enum: ['always', 'never'] }, { type: 'object' }] },
    approval: { type: 'string', enum: ['user', 'operator'], default: 'operator' },
    approval_timeout_s: { type: 'integer', minimum: 1, maximum: 86400, default: DEFAULT_APPROVAL_TIMEOUT_S },
  },
} as const;

const fileSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    $comment: { type: 'string' },
    tools: { type: 'array', default: [] },
    mcp: { type: 'array', default: [] },
  },
} as const;

// useDefaults fills the optional fields in place, so the runtime never re-derives them.
const ajv = new Ajv({ allErrors: false, useDefaults: true, strict: false });
const validateFile = ajv.compile(fileSchema);
const validateTool = ajv.compile(toolSchema);
const validateMcp = ajv.compile(mcpSchema);

function describe(err: ErrorObject | undefined): string {
  if (!err) return 'is invalid';
  const where = err.instancePath.replace(/^\//, '').replace(/\//g, '.');
  const extra = err.keyword === 'additionalProperties' ? ` (${String((err.params as { additionalProperty?: string }).additionalProperty)})` : '';
  return `${where ? `${where} ` : ''}${err.message ?? 'is invalid'}${extra}`;
}

function entryName(entry: unknown, key: string): string {
  const v = entry !== null && typeof entry === 'object' ? (entry as Record<string, unknown>)[key] : undefined;
  return typeof v === 'string' ? ` "${v}"` : '';
}

/** Validates a parsed tools file; throws ConfigError naming the first bad entry. */
export function parseToolsFile(raw: unknown, source = 'TOOLS_FILE'): ToolsFile {
  if (!validateFile(raw)) throw new ConfigError(`Invalid ${source}: ${describe(validateFile.errors?.[0])}`);
  const file = raw as { tools: unknown[]; mcp: unknown[] };
  const names = new Set<string>();
  file.tools.forEach((t, i) => {
    if (!validateTool(t)) throw new ConfigError(`Invalid ${source}: tools[${i}]${entryName(t, 'name')} ${describe(validateTool.errors?.[0])}`);
    const tool = t as ServerToolDefinition;
    if (names.has(tool.name)) throw new ConfigError(`Invalid ${source}: tools[${i}] "${tool.name}" is defined twice`);
    names.add(tool.name);
    try {
      // Compiled here so a schema ajv cannot use fails at start, not on the first call.
      ajv.compile(tool.parameters);
    } catch (err) {
      throw new ConfigError(`Invalid ${source}: tools[${i}] "${tool.name}" parameters is not a usable JSON schema: ${(err as Error).message}`);
    }
  });
  const labels = new Set<string>();
  file.mcp.forEach((m, i) => {
    if (!validateMcp(m)) throw new ConfigError(`Invalid ${source}: mcp[${i}]${entryName(m, 'server_label')} ${describe(validateMcp.errors?.[0])}`);
    const label = (m as McpPolicy).server_label;
    if (labels.has(label)) throw new ConfigError(`Invalid ${source}: mcp[${i}] "${label}" is listed twice`);
    labels.add(label);
  });
  return { tools: file.tools as ServerToolDefinition[], mcp: file.mcp as McpPolicy[] };
}

/** Reads TOOLS_FILE; an absent file means no server tools. */
export function loadToolsFile(file: string): ToolsFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { tools: [], mcp: [] };
    throw new ConfigError(`Invalid TOOLS_FILE: cannot read ${file}: ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`Invalid TOOLS_FILE: ${file} is not JSON: ${(err as Error).message}`);
  }
  return parseToolsFile(raw, `TOOLS_FILE ${file}`);
}

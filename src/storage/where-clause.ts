import type { SqlValue } from './database';

/**
 * Builds a `WHERE` from optional filters with numbered placeholders ($1, $2, …, which both
 * SQLite and PostgreSQL accept here): a filter left undefined adds nothing.
 */
export class WhereClause {
  private readonly conditions: string[] = [];
  readonly params: SqlValue[] = [];

  /** Adds `<column> <op> $n` when the value is defined. */
  add(column: string, op: '=' | '>=' | '<', value: SqlValue | undefined): this {
    if (value === undefined) return this;
    this.params.push(value);
    this.conditions.push(`${column} ${op} $${this.params.length}`);
    return this;
  }

  /**
   * Adds a tenant condition: undefined adds nothing (any tenant), null or '' matches the rows
   * of no tenant only, which are a namespace of their own (stored as NULL or ''), never "any".
   */
  addTenant(column: string, tenant: string | null | undefined): this {
    if (tenant === undefined) return this;
    this.params.push(tenant ?? '');
    this.conditions.push(`COALESCE(${column}, '') = $${this.params.length}`);
    return this;
  }

  /** ` WHERE …`, or nothing without conditions. */
  toString(): string {
    return this.conditions.length ? ` WHERE ${this.conditions.join(' AND ')}` : '';
  }
}

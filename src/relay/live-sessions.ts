/**
 * Who is connected right now, across relay instances, for the admin console's live view and
 * its close / hang-up action.
 *
 * In one process (no REDIS_URL) the directory is a map. With Redis, each instance publishes its
 * sessions as keys with a TTL lease (`<prefix>live:s:<id>`, refreshed while the session lives,
 * so a crashed instance's entries expire on their own) indexed in a sorted set scored by lease
 * expiry; a close for a session owned by another instance goes out on a pub/sub channel and the
 * owner closes it.
 */
import { randomUUID } from 'node:crypto';
import type Redis from 'ioredis';

export interface LiveSessionInfo {
  id: string;
  user: string;
  tenant: string | null;
  keyId: string | null;
  model: string;
  /** 'websocket' or 'webrtc' (calls), like the spend log. */
  transport: string;
  /** Unix milliseconds. */
  startedAt: number;
  /** The relay instance serving it. */
  instance: string;
}

/** What the directory needs of a live session: how to end it. */
export interface LiveSessionHandle {
  close(reason: string): void;
}

export interface LiveSessionDirectory {
  readonly instanceId: string;
  add(info: Omit<LiveSessionInfo, 'instance'>, handle: LiveSessionHandle): void;
  remove(id: string): void;
  list(): Promise<LiveSessionInfo[]>;
  /** Asks the owning instance to close the session; false when no live session has that id. */
  close(id: string, reason: string): Promise<boolean>;
  shutdown(): Promise<void>;
}

export class MemoryLiveSessions implements LiveSessionDirectory {
  readonly instanceId: string;
  protected readonly local = new Map<string, { info: LiveSessionInfo; handle: LiveSessionHandle }>();

  constructor(instanceId = `relay_${randomUUID().slice(0, 8)}`) {
    this.instanceId = instanceId;
  }

  add(info: Omit<LiveSessionInfo, 'instance'>, handle: LiveSessionHandle): void {
    this.local.set(info.id, { info: { ...info, instance: this.instanceId }, handle });
  }

  remove(id: string): void {
    this.local.delete(id);
  }

  list(): Promise<LiveSessionInfo[]> {
    return Promise.resolve([...this.local.values()].map((e) => e.info).sort((a, b) => a.startedAt - b.startedAt));
  }

  close(id: string, reason: string): Promise<boolean> {
    return Promise.resolve(this.closeLocal(id, reason));
  }

  protected closeLocal(id: string, reason: string): boolean {
    const entry = this.local.get(id);
    if (!entry) return false;
    entry.handle.close(reason);
    return true;
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

export interface WarnLogger {
  warn(o: object, m: string): void;
}

export interface RedisLiveSessionsOptions {
  redis: Redis;
  /** A second connection, put into subscriber mode. */
  subscriber: Redis;
  keyPrefix: string;
  /** Lease length (default 30 s); refreshed every third of it. */
  ttlMs?: number;
  logger?: WarnLogger;
  instanceId?: string;
}

export class RedisLiveSessions extends MemoryLiveSessions {
  private readonly ttlMs: number;
  private readonly index: string;
  private readonly channel: string;
  private readonly timer: NodeJS.Timeout;
  private readonly ready: Promise<unknown>;

  constructor(private readonly o: RedisLiveSessionsOptions) {
    super(o.instanceId);
    this.ttlMs = o.ttlMs ?? 30_000;
    this.index = `${o.keyPrefix}live:index`;
    this.channel = `${o.keyPrefix}live:close`;
    this.ready = o.subscriber.subscribe(this.channel).catch((err: unknown) => this.warn(err, 'live sessions: cannot subscribe to close requests'));
    o.subscriber.on('message', (channel: string, message: string) => {
      if (channel !== this.channel) return;
      try {
        const { id, reason } = JSON.parse(message) as { id?: unknown; reason?: unknown };
        if (typeof id === 'string') this.closeLocal(id, typeof reason === 'string' ? reason : 'closed by an administrator');
      } catch {
        // Not ours to answer: a malformed message on the channel is ignored.
      }
    });
    this.timer = setInterval(() => void this.refresh(), Math.max(1000, Math.floor(this.ttlMs / 3)));
    this.timer.unref();
  }

  /** Resolves once the close channel is subscribed (tests). */
  whenReady(): Promise<unknown> {
    return this.ready;
  }

  private key(id: string): string {
    return `${this.o.keyPrefix}live:s:${id}`;
  }

  override add(info: Omit<LiveSessionInfo, 'instance'>, handle: LiveSessionHandle): void {
    super.add(info, handle);
    const entry = this.local.get(info.id);
    if (entry) void this.publish([entry.info]);
  }

  override remove(id: string): void {
    super.remove(id);
    void this.o.redis
      .multi()
      .del(this.key(id))
      .zrem(this.index, id)
      .exec()
      .catch((err: unknown) => this.warn(err, 'live sessions: cannot unpublish'));
  }

  override async list(): Promise<LiveSessionInfo[]> {
    try {
      const now = Date.now();
      await this.o.redis.zremrangebyscore(this.index, '-inf', now);
      const ids = await this.o.redis.zrange(this.index, 0, 999);
      if (ids.length === 0) return [];
      const values = await this.o.redis.mget(...ids.map((id) => this.key(id)));
      const out: LiveSessionInfo[] = [];
      for (const v of values) if (v) out.push(JSON.parse(v) as LiveSessionInfo);
      return out.sort((a, b) => a.startedAt - b.startedAt);
    } catch (err) {
      // Redis down: this instance's own sessions are still worth showing.
      this.warn(err, 'live sessions: cannot list from Redis; showing this instance only');
      return super.list();
    }
  }

  override async close(id: string, reason: string): Promise<boolean> {
    if (this.closeLocal(id, reason)) return true;
    const exists = (await this.o.redis.exists(this.key(id))) > 0;
    if (!exists) return false;
    await this.o.redis.publish(this.channel, JSON.stringify({ id, reason }));
    return true;
  }

  override async shutdown(): Promise<void> {
    clearInterval(this.timer);
    const ids = [...this.local.keys()];
    if (ids.length > 0) {
      await this.o.redis
        .multi()
        .del(...ids.map((id) => this.key(id)))
        .zrem(this.index, ...ids)
        .exec()
        .catch(() => undefined);
    }
  }

  private async refresh(): Promise<void> {
    await this.publish([...this.local.values()].map((e) => e.info));
  }

  private async publish(infos: LiveSessionInfo[]): Promise<void> {
    if (infos.length === 0) return;
    const expiry = Date.now() + this.ttlMs;
    const m = this.o.redis.multi();
    for (const info of infos) {
      m.set(this.key(info.id), JSON.stringify(info), 'PX', this.ttlMs);
      m.zadd(this.index, expiry, info.id);
    }
    m.pexpire(this.index, this.ttlMs * 2);
    try {
      await m.exec();
    } catch (err) {
      this.warn(err, 'live sessions: cannot publish to Redis');
    }
  }

  private lastWarn = 0;
  private warn(err: unknown, what: string): void {
    if (Date.now() - this.lastWarn < 10_000) return;
    this.lastWarn = Date.now();
    this.o.logger?.warn({ err: err instanceof Error ? err.message : String(err) }, what);
  }
}

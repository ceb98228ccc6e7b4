/**
 * The deployment files, checked structurally (no npm package ships the Kubernetes or Compose
 * JSON schemas; the `yaml` parser reads them as the tools would): data survives the container,
 * probes and drain fit the relay's own settings, and names line up across the manifests.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments, parse } from 'yaml';
import { envSchema } from '../../src/config/env-schema';
import { parseDockerfile } from '../support/dockerfile-runner';

const REPO = path.resolve(__dirname, '..', '..');
const read = (f: string): string => readFileSync(path.join(REPO, f), 'utf8');
const defaults = JSON.parse(read('config/defaults.json')) as Record<string, unknown>;
const KNOWN = new Set(Object.keys(envSchema.properties));

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => v as Obj;
const arr = (v: unknown): Obj[] => (v ?? []) as Obj[];

describe('Dockerfile', () => {
  const steps = parseDockerfile(read('Dockerfile'));

  it('builds and runs on a current LTS Node image', () => {
    const froms = steps.filter((s) => s.op === 'FROM').map((s) => s.args);
    expect(froms).toEqual(['node:24-bookworm AS build', 'node:24-bookworm-slim AS runtime']);
  });

  it('declares /app/data a volume, after the directory is made and owned, where the database and spool default to', () => {
    const ops = steps.map((s) => `${s.op} ${s.args}`);
    const volume = ops.indexOf('VOLUME /app/data');
    expect(volume).toBeGreaterThan(ops.findIndex((o) => o.startsWith('RUN mkdir -p /app/data')));
    const env = steps.filter((s) => s.op === 'ENV').map((s) => s.args).join(' ');
    expect(env).toMatch(/DATABASE_URL=sqlite:\/app\/data\/relay\.db/);
    expect(env).toMatch(/SPOOL_DIR=\/app\/data\/spool/);
  });

  it("README's docker run mounts the volume", () => {
    const run = read('README.md').split('\n').find((l) => l.startsWith('docker run '));
    expect(run).toMatch(/ -v [\w.-]+:\/app\/data /);
  });
});

describe('docker-compose.yml', () => {
  const compose = obj(parse(read('docker-compose.yml')));
  const services = obj(compose.services);
  const relay = obj(services.relay);
  const env = obj(relay.environment);

  it('reads an env_file and sets only known settings', () => {
    expect(relay.env_file).toEqual([{ path: '.env', required: false }]);
    expect(Object.keys(env).filter((k) => !KNOWN.has(k))).toEqual([]);
  });

  it('publishes /metrics on its own port', () => {
    expect(env.METRICS_PORT).toBe('9464');
    expect(relay.ports).toContain('${RELAY_METRICS_PORT:-9464}:9464');
  });

  it('keeps the data directory on a volume and stops later than the drain', () => {
    expect(relay.volumes).toContain('relay-data:/app/data');
    const drainS = Number(env.DRAIN_TIMEOUT_MS) / 1000;
    expect(Number(String(relay.stop_grace_period).replace(/s$/, ''))).toBeGreaterThan(drainS + 5);
  });

  it('has an optional Caddy TLS front proxying to the relay', () => {
    const caddy = obj(services.caddy);
    expect(caddy.profiles).toEqual(['tls']);
    expect(caddy.ports).toContain('443:443');
    const mount = (caddy.volumes as string[]).find((v) => v.includes('/etc/caddy/Caddyfile'));
    const file = mount?.split(':')[0].replace(/^\.\//, '') ?? '';
    expect(read(file)).toMatch(/reverse_proxy relay:8080/);
    expect(obj(compose.volumes)).toHaveProperty('caddy-data');
  });
});

describe('deploy/kubernetes', () => {
  const dir = path.join(REPO, 'deploy', 'kubernetes');
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
  const docs = files.flatMap((f) =>
    parseAllDocuments(readFileSync(path.join(dir, f), 'utf8')).map((d) => {
      expect(d.errors).toEqual([]);
      return obj(d.toJS());
    }),
  );
  const byKind = (kind: string): Obj => {
    const found = docs.filter((d) => d.kind === kind);
    expect(found).toHaveLength(1);
    return found[0];
  };
  const deployment = byKind('Deployment');
  const podSpec = obj(obj(obj(deployment.spec).template).spec);
  const podLabels = obj(obj(obj(obj(deployment.spec).template).metadata).labels);
  const container = arr(podSpec.containers)[0];
  const portNames = new Set(arr(container.ports).map((p) => p.name));

  it('every manifest names its apiVersion, kind and name, and kustomization lists them all', () => {
    for (const d of docs) {
      expect(typeof d.apiVersion).toBe('string');
      expect(typeof d.kind).toBe('string');
      expect(typeof obj(d.metadata).name).toBe('string');
    }
    expect(docs.map((d) => d.kind).sort()).toEqual(['Deployment', 'HorizontalPodAutoscaler', 'PodDisruptionBudget', 'Secret', 'Service']);
    const kustomization = obj(parse(readFileSync(path.join(dir, 'kustomization.yaml'), 'utf8')));
    expect([...(kustomization.resources as string[])].sort()).toEqual([...files].sort());
  });

  it('probes readiness on /readyz and liveness on /healthz, on a declared port', () => {
    const readiness = obj(obj(container.readinessProbe).httpGet);
    const liveness = obj(obj(container.livenessProbe).httpGet);
    expect(readiness.path).toBe('/readyz');
    expect(liveness.path).toBe('/healthz');
    expect(portNames.has(String(readiness.port)) && portNames.has(String(liveness.port))).toBe(true);
  });

  it('gives the drain its time: preStop pause + DRAIN_TIMEOUT_MS + the 5 s ledger flush fit the grace period', () => {
    const env = Object.fromEntries(arr(container.env).map((e) => [e.name, e.value]));
    const drainMs = Number(env.DRAIN_TIMEOUT_MS ?? defaults.DRAIN_TIMEOUT_MS);
    const preStop = obj(obj(obj(container.lifecycle).preStop).exec).command as string[];
    expect(preStop[0]).toBe('sleep');
    const graceMs = Number(podSpec.terminationGracePeriodSeconds) * 1000;
    expect(graceMs).toBeGreaterThanOrEqual(Number(preStop[1]) * 1000 + drainMs + 5000);
    expect(env.NODE_ENV).toBe('production');
    expect(Object.keys(env).filter((k) => !KNOWN.has(k))).toEqual([]);
  });

  it('takes the keys from the Secret, whose keys are all known settings', () => {
    const secret = byKind('Secret');
    const ref = arr(container.envFrom).map((e) => obj(e.secretRef).name);
    expect(ref).toEqual([obj(secret.metadata).name]);
    const keys = Object.keys(obj(secret.stringData));
    expect(keys.filter((k) => !KNOWN.has(k))).toEqual([]);
    expect(keys).toEqual(expect.arrayContaining(['UPSTREAM_API_KEY', 'RELAY_TOKEN_SECRET', 'RELAY_ADMIN_TOKEN', 'DATABASE_URL']));
  });

  it('routes the Service and the PodDisruptionBudget to the pods, on declared ports', () => {
    const service = obj(byKind('Service').spec);
    expect(obj(service.selector)).toEqual(podLabels);
    for (const p of arr(service.ports)) expect(portNames.has(String(p.targetPort))).toBe(true);
    const pdb = obj(byKind('PodDisruptionBudget').spec);
    expect(obj(obj(pdb.selector).matchLabels)).toEqual(podLabels);
  });

  it('autoscales the Deployment on active sessions, a gauge the relay exports', () => {
    const hpa = obj(byKind('HorizontalPodAutoscaler').spec);
    expect(obj(hpa.scaleTargetRef)).toMatchObject({ kind: 'Deployment', name: obj(deployment.metadata).name });
    const metric = obj(obj(arr(hpa.metrics)[0].pods).metric).name;
    expect(metric).toBe('relay_sessions_active');
    expect(read('src/metrics/relay-metrics.ts')).toContain(`name: '${String(metric)}'`);
    expect(Number(hpa.minReplicas)).toBeGreaterThanOrEqual(2);
  });
});

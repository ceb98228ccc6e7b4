import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Runs a Dockerfile's steps without a Docker engine (none runs on CI machines): each stage
 * gets its own directory standing in for the image's root, WORKDIR/COPY/RUN/ENV act on it,
 * and the final stage's CMD can be started. It understands the instructions our Dockerfile
 * uses and fails on any other, so the test keeps exercising the real file.
 */
export interface DockerStage {
  name: string;
  root: string;
  workdir: string;
  env: Record<string, string>;
  cmd: string[] | null;
  healthcheck: string[] | null;
}

interface Instruction {
  op: string;
  args: string;
}

export function parseDockerfile(text: string): Instruction[] {
  const joined = text.replace(/\\\r?\n/g, ' ');
  const out: Instruction[] = [];
  for (const raw of joined.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!m) throw new Error(`unparseable Dockerfile line: ${line}`);
    out.push({ op: m[1].toUpperCase(), args: m[2].trim() });
  }
  return out;
}

/** Parses ENV's `K=V K2="V 2"` form. */
function parseEnv(args: string): Record<string, string> {
  const env: Record<string, string> = {};
  const re = /([A-Za-z_][A-Za-z0-9_]*)=("([^"]*)"|(\S*))/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(args))) env[m[1]] = m[3] ?? m[4] ?? '';
  return env;
}

export function runDockerfile(opts: { dockerfile: string; context: string; workspace: string; log?: (line: string) => void }): DockerStage {
  const stages = new Map<string, DockerStage>();
  let stage: DockerStage | null = null;
  const log = opts.log ?? (() => undefined);
  const inRoot = (s: DockerStage, p: string): string => path.join(s.root, path.isAbsolute(p) ? p : path.join(s.workdir, p));

  for (const { op, args } of parseDockerfile(readFileSync(opts.dockerfile, 'utf8'))) {
    if (op === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      if (!m) throw new Error(`bad FROM: ${args}`);
      const name = m[2] ?? `stage${stages.size}`;
      const root = path.join(opts.workspace, name);
      mkdirSync(root, { recursive: true });
      stage = { name, root, workdir: '/', env: {}, cmd: null, healthcheck: null };
      stages.set(name, stage);
      log(`FROM ${m[1]} (as ${root})`);
      continue;
    }
    if (!stage) throw new Error(`${op} before FROM`);
    switch (op) {
      case 'WORKDIR':
        stage.workdir = path.posix.resolve(stage.workdir, args);
        mkdirSync(inRoot(stage, stage.workdir), { recursive: true });
        break;
      case 'ENV':
        Object.assign(stage.env, parseEnv(args));
        break;
      case 'COPY': {
        const parts = args.split(/\s+/);
        let from: DockerStage | null = null;
        if (parts[0].startsWith('--from=')) {
          from = stages.get(parts.shift()!.slice('--from='.length)) ?? null;
          if (!from) throw new Error(`COPY from unknown stage: ${args}`);
        }
        const dest = parts.pop()!;
        for (const src of parts) {
          const source = from ? inRoot(from, src) : path.join(opts.context, src);
          const target = dest.endsWith('/') ? path.join(inRoot(stage, dest), path.basename(src)) : inRoot(stage, dest);
          mkdirSync(path.dirname(target), { recursive: true });
          cpSync(source, target, { recursive: true, verbatimSymlinks: true });
        }
        log(`COPY ${args}`);
        break;
      }
      case 'RUN': {
        // Absolute paths in RUN refer to the image root: map /app to the stage's directory.
        const command = args.replace(/(^|\s)\/app\b/g, `$1${path.join(stage.root, 'app')}`);
        log(`RUN ${args}`);
        execFileSync('bash', ['-euo', 'pipefail', '-c', command.replace(/chown -R node:node \S+/, 'true')], {
          cwd: inRoot(stage, stage.workdir),
          env: { ...process.env, ...stage.env, NODE_ENV: stage.env.NODE_ENV ?? '' },
          stdio: ['ignore', 'pipe', 'pipe'],
          maxBuffer: 64 * 1024 * 1024,
        });
        break;
      }
      case 'CMD':
        stage.cmd = JSON.parse(args) as string[];
        break;
      case 'HEALTHCHECK': {
        const m = /CMD\s+(\[.*\])\s*$/.exec(args);
        if (!m) throw new Error(`HEALTHCHECK must use the exec form: ${args}`);
        stage.healthcheck = JSON.parse(m[1]) as string[];
        break;
      }
      case 'EXPOSE':
      case 'VOLUME':
      case 'USER':
      case 'STOPSIGNAL':
        break;
      default:
        throw new Error(`Dockerfile instruction ${op} is not understood by the test runner; teach it before using it`);
    }
  }
  if (!stage) throw new Error('empty Dockerfile');
  return stage;
}

/** Starts the final stage's CMD in its WORKDIR with its ENV (paths under /app mapped). */
export function startStage(stage: DockerStage, env: Record<string, string>): ChildProcess {
  if (!stage.cmd) throw new Error('the final stage has no CMD');
  const mapped: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...stage.env, ...env })) mapped[k] = v.replace(/(^|:)\/app\b/g, `$1${path.join(stage.root, 'app')}`);
  const [bin, ...argv] = stage.cmd;
  return spawn(bin, argv, { cwd: path.join(stage.root, stage.workdir), env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...mapped }, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Runs the HEALTHCHECK command against the started process; true when it exits 0. */
export function healthcheckPasses(stage: DockerStage, env: Record<string, string>): boolean {
  if (!stage.healthcheck) throw new Error('no HEALTHCHECK');
  const [bin, ...argv] = stage.healthcheck;
  try {
    execFileSync(bin, argv, { env: { PATH: process.env.PATH ?? '', ...stage.env, ...env }, stdio: 'ignore', timeout: 5000 });
    return true;
  } catch {
    return false;
  }
}

/** The files git tracks (plus untracked, not ignored), copied into a clean directory. */
export function cleanCopyOfTree(repo: string, dest: string): void {
  const files = execFileSync('git', ['ls-files', '-co', '--exclude-standard', '-z'], { cwd: repo }).toString('utf8').split('\0').filter(Boolean);
  for (const f of files) {
    const target = path.join(dest, f);
    mkdirSync(path.dirname(target), { recursive: true });
    try {
      cpSync(path.join(repo, f), target);
    } catch {
      /* a file deleted in the working tree but still tracked */
    }
  }
}

/**
 * One lock per job of a plan, safe on a store shared by many workers and
 * nodes: `<results>/jobs/<id>.lock` is created atomically (O_CREAT|O_EXCL)
 * and holds `{host, pid, startedAt, job}`; its holder refreshes its mtime (the
 * heartbeat) every `heartbeatSeconds`. A lock is stale when its holder runs on
 * this host and its process is gone, or when its heartbeat is older than
 * `staleSeconds` (a dead node); a stale lock is broken by renaming it away
 * (atomic: of two workers breaking it at once only one succeeds) and taken
 * anew.
 * @module
 */
import { join } from "node:path";
import { hostname } from "node:os";

/** What a lock file holds. */
export interface LockInfo {
  host: string;
  pid: number;
  startedAt: string;
  job: string;
}

/** Options of {@link acquireLock}. */
export interface LockOptions {
  /** Seconds between heartbeats (default 30, env `NOISELAB_LOCK_HEARTBEAT`). */
  heartbeatSeconds?: number;
  /** A heartbeat older than this marks the lock stale (default 600, env `NOISELAB_LOCK_STALE`). */
  staleSeconds?: number;
}

/** A held lock: `release()` removes it and stops the heartbeat. */
export interface HeldLock {
  path: string;
  info: LockInfo;
  release(): Promise<void>;
}

/** The folder of job locks, logs and states: `<results>/jobs`. */
export function jobsDir(results: string): string {
  return join(results, "jobs");
}

function envNum(name: string, def: number): number {
  const v = Number(Deno.env.get(name));
  return Number.isFinite(v) && v > 0 ? v : def;
}

/** True when process `pid` exists on this host. */
export function processAlive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/** Read a lock file (undefined when it is gone or unreadable, e.g. being written). */
export async function readLock(path: string): Promise<(LockInfo & { ageSeconds: number }) | undefined> {
  try {
    const [text, st] = await Promise.all([Deno.readTextFile(path), Deno.stat(path)]);
    const info = JSON.parse(text) as LockInfo;
    const age = (Date.now() - (st.mtime?.getTime() ?? Date.now())) / 1000;
    return { ...info, ageSeconds: age };
  } catch {
    return undefined;
  }
}

/** Why a lock is stale, or undefined when its holder is alive. */
export function staleReason(l: LockInfo & { ageSeconds: number }, staleSeconds: number): string | undefined {
  if (l.host === hostname() && !processAlive(l.pid)) return `holder pid ${l.pid} on ${l.host} is gone`;
  if (l.ageSeconds > staleSeconds) {
    return `heartbeat of ${l.host}:${l.pid} is ${Math.round(l.ageSeconds)} s old (> ${staleSeconds} s)`;
  }
  return undefined;
}

/**
 * Try to take the lock of job `id`. Returns the held lock, or `{ heldBy }` when a live worker holds it.
 * A stale lock is broken (`onStale` is told why) and taken.
 */
export async function acquireLock(
  results: string,
  id: string,
  opts: LockOptions & { onStale?: (why: string) => void } = {},
): Promise<HeldLock | { heldBy: LockInfo & { ageSeconds: number } }> {
  const heartbeat = opts.heartbeatSeconds ?? envNum("NOISELAB_LOCK_HEARTBEAT", 30);
  const stale = opts.staleSeconds ?? envNum("NOISELAB_LOCK_STALE", 600);
  const dir = jobsDir(results);
  await Deno.mkdir(dir, { recursive: true });
  const path = join(dir, `${id}.lock`);
  const info: LockInfo = { host: hostname(), pid: Deno.pid, startedAt: new Date().toISOString(), job: id };
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const f = await Deno.open(path, { write: true, createNew: true });
      try {
        await f.write(new TextEncoder().encode(JSON.stringify(info) + "\n"));
      } finally {
        f.close();
      }
      const timer = setInterval(() => {
        try {
          const now = new Date();
          Deno.utimeSync(path, now, now);
        } catch {
          // lock broken by someone who judged it stale: nothing to refresh
        }
      }, heartbeat * 1000);
      Deno.unrefTimer(timer);
      return {
        path,
        info,
        release: async () => {
          clearInterval(timer);
          const cur = await readLock(path);
          if (cur && cur.host === info.host && cur.pid === info.pid) await Deno.remove(path).catch(() => {});
        },
      };
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
    }
    const cur = await readLock(path);
    if (!cur) {
      // just released, or being written: look again shortly
      await new Promise((r) => setTimeout(r, 200));
      continue;
    }
    const why = staleReason(cur, stale);
    if (!why) return { heldBy: cur };
    opts.onStale?.(why);
    try {
      await Deno.rename(path, `${path}.stale-${hostname()}-${Deno.pid}`);
    } catch {
      // another worker broke it first
    }
  }
  const cur = await readLock(path);
  if (cur) return { heldBy: cur };
  throw new Error(`could not take the lock ${path}`);
}

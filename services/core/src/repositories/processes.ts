import { spawn } from 'node:child_process';
import { stat } from 'node:fs/promises';
import os from 'node:os';

export interface ProcessRequest {
  /** The program and its arguments, passed to it as they are (no shell). */
  argv: string[];
  cwd?: string;
  timeoutMs: number;
  /** stdout and stderr together keep at most this many bytes; the rest is read and dropped. */
  outputMaxBytes: number;
  /** Aborting stops the process group and rejects with the signal's reason. */
  signal?: AbortSignal;
}

export interface ProcessResult {
  exitCode: number | null;
  /** The signal that ended the program (e.g. SIGTERM after a timeout), or null. */
  signal: string | null;
  stdout: string;
  stderr: string;
  /** Output beyond outputMaxBytes was dropped. */
  truncated: boolean;
  timedOut: boolean;
  durationMs: number;
}

/** How long a stopped program has between SIGTERM and SIGKILL. */
const KILL_GRACE_MS = 2_000;
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * What a child sees of the environment: core's own holds DATABASE_URL, LLM_PROXY_API_KEY and
 * PINCER_ADMIN_TOKEN, so nothing is inherited but where programs live, the home folder and the time zone.
 * (Read here rather than in config.ts: these three are the process's surroundings, not settings.)
 */
function childEnvironment(): Record<string, string> {
  const env: Record<string, string> = {
    PATH: process.env.PATH || DEFAULT_PATH,
    LANG: 'C.UTF-8',
    HOME: process.env.HOME || os.homedir(),
  };
  if (process.env.TZ) env.TZ = process.env.TZ;
  return env;
}

/**
 * Runs a program without a shell, in its own process group, so that a timeout or an abort ends it and
 * everything it started. Processes it leaves behind when it exits are ended too: nothing a call started
 * outlives it. A non-zero exit is a result, not an error; a program that cannot be started is an error.
 */
export async function runProcess(req: ProcessRequest): Promise<ProcessResult> {
  const [program, ...args] = req.argv;
  if (!program) throw new Error('no program given');
  req.signal?.throwIfAborted();
  if (req.cwd !== undefined) {
    // spawn reports a missing cwd as ENOENT of the program, which would name the wrong culprit
    const dir = await stat(req.cwd).catch(() => undefined);
    if (!dir?.isDirectory()) throw new Error(`the working directory ${req.cwd} does not exist`);
  }

  const started = performance.now();
  const child = spawn(program, args, {
    cwd: req.cwd,
    env: childEnvironment(),
    stdio: ['ignore', 'pipe', 'pipe'],
    shell: false,
    detached: true,
    windowsHide: true,
  });

  const output = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
  let kept = 0;
  let truncated = false;
  const collect = (into: Buffer[]) => (chunk: Buffer) => {
    // keep reading past the limit (a blocked pipe would stall the program), but keep nothing more
    if (kept >= req.outputMaxBytes) {
      truncated = true;
      return;
    }
    const room = req.outputMaxBytes - kept;
    if (chunk.length > room) {
      truncated = true;
      chunk = chunk.subarray(0, room);
    }
    into.push(chunk);
    kept += chunk.length;
  };
  child.stdout.on('data', collect(output.stdout));
  child.stderr.on('data', collect(output.stderr));

  let exited = false;
  const killGroup = (sig: NodeJS.Signals) => {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, sig);
    } catch {
      // the group is already gone
    }
  };
  let timedOut = false;
  let aborted = false;
  let killTimer: NodeJS.Timeout | undefined;
  const stop = () => {
    if (exited) {
      // the group was swept at exit; only a process that left it (setsid) can still hold the pipes
      child.stdout.destroy();
      child.stderr.destroy();
      return;
    }
    killGroup('SIGTERM');
    killTimer ??= setTimeout(() => {
      if (!exited) killGroup('SIGKILL');
    }, KILL_GRACE_MS);
  };
  const timer = setTimeout(() => {
    timedOut = true;
    stop();
  }, req.timeoutMs);
  const onAbort = () => {
    aborted = true;
    stop();
  };
  req.signal?.addEventListener('abort', onAbort, { once: true });

  try {
    const ended = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(
      (resolve, reject) => {
        let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
        child.once('error', (err: NodeJS.ErrnoException) => {
          if (err.code === 'ENOENT') reject(new Error(`the program ${program} was not found`));
          else if (err.code === 'EACCES')
            reject(new Error(`the program ${program} cannot be run: permission denied`));
          else reject(new Error(`the program ${program} could not be started: ${err.message}`));
        });
        child.once('exit', (code, signal) => {
          exited = true;
          exit = { code, signal };
          // whatever it left running would keep the pipes open and outlive the call
          killGroup('SIGKILL');
        });
        // 'close' comes after 'exit' once every holder of the pipes is gone: the output is complete
        child.once('close', (code, signal) => resolve(exit ?? { code, signal }));
      },
    );
    if (aborted) throw req.signal?.reason ?? new Error('aborted');
    return {
      exitCode: ended.code,
      signal: ended.signal,
      stdout: Buffer.concat(output.stdout).toString('utf8'),
      stderr: Buffer.concat(output.stderr).toString('utf8'),
      truncated,
      timedOut,
      durationMs: Math.round(performance.now() - started),
    };
  } finally {
    clearTimeout(timer);
    clearTimeout(killTimer);
    req.signal?.removeEventListener('abort', onAbort);
  }
}

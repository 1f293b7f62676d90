import type { AdapterHandle } from '../src/index.ts';

/** An adapter under test that can be stopped and started again with the same settings. */
export interface Restartable<H extends AdapterHandle> {
  /** The running adapter; throws while it is stopped. */
  readonly current: H;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops it (as a deploy or crash would), runs `between`, and starts a new one. */
  restart(between?: () => Promise<void>): Promise<void>;
  close(): Promise<void>;
}

/** Launches an adapter (resolving once it is ready) and keeps it restartable; `what` names it in errors. */
export async function restartable<H extends AdapterHandle>(
  what: string,
  launch: () => Promise<H>,
): Promise<Restartable<H>> {
  const ready = async () => {
    const h = await launch();
    await h.ready;
    return h;
  };
  let running: H | undefined = await ready();
  const stop = async () => {
    await running?.shutdown(3000);
    running = undefined;
  };
  const start = async () => {
    running = await ready();
  };
  return {
    get current() {
      if (!running) throw new Error(`${what} is stopped`);
      return running;
    },
    stop,
    start,
    async restart(between) {
      await stop();
      await between?.();
      await start();
    },
    async close() {
      await running?.shutdown(2000);
    },
  };
}

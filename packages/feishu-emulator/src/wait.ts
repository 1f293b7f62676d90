// waitFor: re-evaluate a condition on every state change and every 20 ms, until it holds or time runs out.
import type { EventEmitter } from 'node:events';

export function waitForCondition<T>(
  changes: EventEmitter,
  fn: () => T | undefined | null | false,
  timeoutMs: number,
  what: string,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let done = false;
    const finish = (err: Error | undefined, value?: T) => {
      if (done) return;
      done = true;
      clearInterval(tick);
      clearTimeout(deadline);
      changes.off('change', check);
      if (err) reject(err);
      else resolve(value as T);
    };
    const check = () => {
      try {
        const v = fn();
        if (v !== undefined && v !== null && v !== false) finish(undefined, v);
      } catch (e) {
        finish(e as Error);
      }
    };
    const tick = setInterval(check, 20);
    const deadline = setTimeout(
      () => finish(new Error(`feishu-emulator: timed out after ${timeoutMs} ms waiting for ${what}`)),
      timeoutMs,
    );
    changes.on('change', check);
    check();
  });
}

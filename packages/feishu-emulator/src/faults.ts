// Injected faults: each aims at one API (or every business API) for a number of calls, and answers
// the way the platform does when that goes wrong.
import { ApiError, ERR } from './errors.ts';
import type { ErrorSpec } from './errors.ts';
import type { Fault } from './types.ts';

// Scopes named by the "no permission" answer of each API family.
const SCOPES: Record<string, string> = {
  card: 'cardkit:card:write',
  message: 'im:message, im:message:send_as_bot',
  reaction: 'im:message, im:message.reactions:write_only',
  bot: 'im:message',
};

interface ActiveFault {
  fault: Fault;
  left: number;
}

export class FaultBook {
  private faults: ActiveFault[] = [];

  inject(fault: Fault): void {
    this.faults.push({ fault, left: fault.times ?? 1 });
  }

  clear(): void {
    this.faults = [];
  }

  list(): Array<Fault & { left: number | 'Infinity' }> {
    return this.faults.map((f) => ({ ...f.fault, left: Number.isFinite(f.left) ? f.left : 'Infinity' }));
  }

  /** The error for this call if a fault aims at it (using up one of its times). */
  take(api: string, business: boolean, appQps: number): ApiError | undefined {
    const hit = this.faults.find((f) => (f.fault.api === undefined ? business : f.fault.api === api));
    if (!hit) return undefined;
    hit.left--;
    if (hit.left <= 0) this.faults = this.faults.filter((f) => f !== hit);
    return errorFor(hit.fault, api, appQps);
  }
}

function errorFor(fault: Fault, api: string, appQps: number): ApiError {
  switch (fault.kind) {
    case 'rate_limit':
      return new ApiError(ERR.rateLimited, undefined, undefined, {
        'x-ogw-ratelimit-limit': String(appQps),
        'x-ogw-ratelimit-reset': String(fault.resetSec ?? 1),
      });
    case 'frequency':
      return new ApiError(ERR.imFrequency);
    case 'token_invalid':
      return new ApiError(api === 'token' ? ERR.tokenBadSecret : ERR.invalidToken);
    case 'server_error':
      return new ApiError(api === 'ws.endpoint' ? ERR.wsSystemBusy : ERR.internal);
    case 'card_failed':
      return new ApiError(ERR.imCardFailed, 'ErrCode: 200220; ErrMsg: Failed to generate card content;');
    case 'api_unavailable': {
      const scope = SCOPES[api.split('.')[0] as string] ?? 'im:message';
      const spec: ErrorSpec = {
        ...ERR.noPermission,
        msg: `Access denied. One of the following scopes is required: [${scope}].`,
      };
      return new ApiError(spec);
    }
  }
}

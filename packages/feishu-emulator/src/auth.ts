// tenant_access_token: issued by auth/v3 for the right app_id/app_secret, valid `ttl` seconds. While the
// current token has 30 min or more left it is handed out again; below that a new one is issued and the
// old one stays valid until it expires.
import { ApiError, ERR } from './errors.ts';
import { newTenantToken } from './ids.ts';

const REISSUE_BELOW_MS = 30 * 60 * 1000;

export class TokenStore {
  private readonly tokens = new Map<string, number>();
  private current: string | undefined;
  private readonly appId: string;
  private readonly appSecret: string;
  private readonly ttlMs: number;

  constructor(appId: string, appSecret: string, ttlSec: number) {
    this.appId = appId;
    this.appSecret = appSecret;
    this.ttlMs = ttlSec * 1000;
  }

  issue(body: Record<string, unknown>): { tenant_access_token: string; expire: number } {
    if (typeof body.app_id !== 'string' || typeof body.app_secret !== 'string' || body.app_id !== this.appId)
      throw new ApiError(ERR.tokenInvalidParam);
    if (body.app_secret !== this.appSecret) throw new ApiError(ERR.tokenBadSecret);
    const now = Date.now();
    const expiresAt = this.current ? this.tokens.get(this.current) : undefined;
    if (this.current && expiresAt !== undefined && expiresAt - now >= REISSUE_BELOW_MS)
      return { tenant_access_token: this.current, expire: Math.floor((expiresAt - now) / 1000) };
    const token = newTenantToken();
    this.tokens.set(token, now + this.ttlMs);
    this.current = token;
    return { tenant_access_token: token, expire: Math.floor(this.ttlMs / 1000) };
  }

  /** Throws the gateway's error for a missing (99991661) or invalid/expired (99991663) token. */
  check(authorization: string | undefined): void {
    const m = /^Bearer\s+(\S+)$/.exec(authorization ?? '');
    if (!m) throw new ApiError(ERR.missingToken);
    const expiresAt = this.tokens.get(m[1] as string);
    if (expiresAt === undefined || expiresAt <= Date.now()) throw new ApiError(ERR.invalidToken);
  }

  expireAll(): void {
    this.tokens.clear();
    this.current = undefined;
  }
}

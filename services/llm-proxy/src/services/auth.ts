import { AppError } from '@pincer/shared';
import { type ApiKey, sha256 } from '../config.ts';

/** Keys are held only as SHA-256 digests; a presented key is hashed and looked up. */
export class KeyRing {
  private readonly byHash: ReadonlyMap<string, ApiKey>;

  constructor(keys: readonly ApiKey[]) {
    this.byHash = new Map(keys.map((k) => [k.sha256, k]));
  }

  authenticate(authorization: string | undefined, apiKeyHeader: string | undefined): ApiKey {
    let presented = apiKeyHeader;
    if (authorization) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
      if (!m) throw new AppError(401, 'invalid_api_key', 'The Authorization header must be "Bearer <key>".');
      presented = m[1];
    }
    if (!presented) {
      throw new AppError(
        401,
        'missing_api_key',
        "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.",
      );
    }
    const key = this.byHash.get(sha256(presented));
    if (!key) throw new AppError(401, 'invalid_api_key', 'Incorrect API key provided.');
    return key;
  }
}

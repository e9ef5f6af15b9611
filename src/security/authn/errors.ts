export type AuthErrorCode = 'invalid_token' | 'invalid_request' | 'insufficient_scope';

const STATUS = { invalid_token: 401, invalid_request: 400, insufficient_scope: 403 } as const;

/**
 * Why a credential was refused, as an RFC 6750 error code and the HTTP status that goes
 * with it. The message ends up in logs and WWW-Authenticate, so it must never include
 * the token or any part of it: callers pass fixed reasons only.
 */
export class AuthError extends Error {
  readonly code: AuthErrorCode;
  readonly status: 401 | 403 | 400;

  constructor(code: AuthErrorCode, message: string) {
    super(message);
    this.name = 'AuthError';
    this.code = code;
    this.status = STATUS[code];
  }
}

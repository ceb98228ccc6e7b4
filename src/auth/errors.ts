import { HttpError } from '../http/errors';

/**
 * Stable codes for refused credentials. Clients and tests branch on these, so they never change
 * meaning; messages may. 401 codes mean "this credential does not identify you", 403 codes mean
 * "you are identified but not allowed".
 */
export type AuthErrorCode =
  | 'missing_credential'
  | 'invalid_api_key'
  | 'invalid_token'
  | 'credential_expired'
  | 'credential_revoked'
  | 'credential_in_query'
  | 'insufficient_scope'
  | 'cannot_mint_for_other_user';

export class AuthError extends HttpError {
  constructor(
    status: 401 | 403,
    readonly authCode: AuthErrorCode,
    message: string,
  ) {
    super(status, authCode, message);
    this.name = 'AuthError';
  }
}

export function unauthorized(code: Exclude<AuthErrorCode, 'insufficient_scope' | 'cannot_mint_for_other_user'>, message: string): AuthError {
  return new AuthError(401, code, message);
}

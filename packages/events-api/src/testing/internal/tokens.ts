/**
 * The fake server's accepted access tokens and refresh-token chain (`POST /v1/access_token`).
 *
 * @internal
 */
import type { OAuthOptions, OAuthState } from "../FakeWebex.js"

const DEFAULT_ACCESS_TOKEN_TTL_SECONDS = 1_209_599
// Reported as live, not enforced: no test waits 90 days.
export const REFRESH_TOKEN_TTL_SECONDS = 7_775_999

export interface Grant {
  readonly accessToken: string
  readonly refreshToken: string
  readonly expiresIn: number
}

/** Accepted access tokens and the refresh-token chain. All times are live epoch milliseconds. */
export class Tokens {
  /** Access token → expiry. The initial token never expires by itself, only by {@link expireAll}. */
  private readonly access = new Map<string, number>()
  private refreshes = 0
  private currentRefreshToken: string | undefined

  constructor(initialToken: string, private readonly oauth: OAuthOptions | undefined) {
    this.access.set(initialToken, Number.POSITIVE_INFINITY)
    this.currentRefreshToken = oauth?.refreshToken
  }

  accepts(token: string, now: number): boolean {
    const expiry = this.access.get(token)
    return expiry !== undefined && now < expiry
  }

  expireAll(): void {
    this.access.clear()
  }

  revoke(): void {
    this.currentRefreshToken = undefined
  }

  /** Redeems `refreshToken` if it is the current one, rotating it; undefined otherwise. */
  refresh(refreshToken: string, now: number): Grant | undefined {
    if (this.currentRefreshToken === undefined || refreshToken !== this.currentRefreshToken) return undefined
    this.refreshes += 1
    const expiresIn = this.oauth?.accessTokenTtlSeconds ?? DEFAULT_ACCESS_TOKEN_TTL_SECONDS
    const grant = {
      accessToken: `fake-access-${this.refreshes}`,
      refreshToken: `fake-refresh-${this.refreshes}`,
      expiresIn
    }
    this.access.set(grant.accessToken, now + expiresIn * 1000)
    this.currentRefreshToken = grant.refreshToken
    return grant
  }

  state(now: number): OAuthState {
    return {
      refreshes: this.refreshes,
      currentRefreshToken: this.currentRefreshToken,
      validAccessTokens: [...this.access].filter(([, expiry]) => now < expiry).map(([token]) => token)
    }
  }
}

// Replay protection for TOTP codes (RFC 6238 §5.2): a code is accepted once.
// Per user, the last time step accepted is remembered, and only a later step
// is accepted after it: a code seen once, or an older code still inside the
// window, is refused. Entries exist only for users with a second factor who
// gave a right password and code, so the map is bounded by users.yaml.
//
// Under `workers: N` the primary holds the one table and workers ask it
// (worker-link.ts), so a code used on one worker is refused on every other.

/** Claims a (user, step): true the first time, false when that step or a later one was already accepted. */
export interface CodeClaims {
  claim(user: string, step: number): Promise<boolean>;
}

export class UsedCodes implements CodeClaims {
  private readonly lastStep = new Map<string, number>();

  claimNow(user: string, step: number): boolean {
    const last = this.lastStep.get(user);
    if (last !== undefined && step <= last) return false;
    this.lastStep.set(user, step);
    return true;
  }

  claim(user: string, step: number): Promise<boolean> {
    return Promise.resolve(this.claimNow(user, step));
  }
}

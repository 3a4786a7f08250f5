// The idle-session timeout (auth.idleTimeoutSeconds). Activity only notes
// the time: re-arming a timer on every message and every ReadyForQuery
// would update Node's timer list once or twice per statement. The one timer
// looks at the last activity when it fires and waits out the rest.
export class IdleWatch {
  private last = performance.now();
  private timer?: NodeJS.Timeout;

  /**
   * @param ms the timeout; 0 = none
   * @param busy a statement is running: never idle
   * @param expire the session was idle for `ms`
   */
  constructor(private readonly ms: number, private readonly busy: () => boolean, private readonly expire: () => void) {
    if (ms > 0) this.arm(ms);
  }

  /** The client sent something, or upstream finished a cycle. */
  active(): void {
    this.last = performance.now();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(ms: number): void {
    this.timer = setTimeout(() => this.check(), ms);
  }

  private check(): void {
    if (this.busy()) {
      this.last = performance.now();
      this.arm(this.ms);
      return;
    }
    const left = this.ms - (performance.now() - this.last);
    if (left > 0) {
      this.arm(Math.ceil(left));
      return;
    }
    this.timer = undefined;
    this.expire();
  }
}

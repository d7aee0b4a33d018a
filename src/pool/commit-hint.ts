/**
 * Tells the other nodes "read the event table now" after this node committed a change.
 * At most one hint is in flight; pokes that arrive meanwhile fold into one more, so a
 * burst of commits costs two notifications, not one per commit. A lost hint costs only
 * latency: every reader also polls.
 */
export class CommitHint {
  private inFlight = false
  private again = false

  constructor (private readonly send: () => Promise<void>) {}

  poke (): void {
    if (this.inFlight) {
      this.again = true
      return
    }
    this.inFlight = true
    this.send().catch(() => {}).finally(() => {
      this.inFlight = false
      if (this.again) {
        this.again = false
        this.poke()
      }
    })
  }
}

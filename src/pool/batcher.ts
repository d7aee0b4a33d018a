interface Waiter<R> {
  key: string
  resolve: (row: R) => void
  reject: (err: unknown) => void
}

/**
 * Group commit for allocations: requests that arrive while earlier batches are in
 * flight are sent together as one statement and one transaction. Under no load a
 * request goes out alone at once, so batching adds no latency; under load it turns
 * N commits into one.
 */
export class Batcher<R> {
  private readonly queue: Array<Waiter<R>> = []
  private inFlight = 0

  constructor (
    private readonly run: (keys: string[]) => Promise<Map<string, R>>,
    private readonly maxBatch: number,
    private readonly maxInFlight: number
  ) {}

  async submit (key: string): Promise<R> {
    return await new Promise<R>((resolve, reject) => {
      this.queue.push({ key, resolve, reject })
      this.drain()
    })
  }

  private drain (): void {
    while (this.inFlight < this.maxInFlight && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch)
      this.inFlight++
      this.run(batch.map((w) => w.key)).then((results) => {
        for (const w of batch) {
          const row = results.get(w.key)
          if (row === undefined) w.reject(new Error(`no result for ${w.key}`))
          else w.resolve(row)
        }
      }, (err: unknown) => {
        for (const w of batch) w.reject(err)
      }).finally(() => {
        this.inFlight--
        this.drain()
      })
    }
  }
}

/**
 * The one seam between Token Pool and a database: pg and PGlite both plug in here.
 * Every use case is a single statement (a function call), so no caller needs a transaction.
 */
export interface Db {
  readonly kind: 'postgres' | 'pglite'
  query<R = Record<string, unknown>>(text: string, values?: unknown[]): Promise<R[]>
  /** Runs fn on one connection held for its duration (migrations take a session lock). */
  withSession<T>(fn: (session: Session) => Promise<T>): Promise<T>
  /** Calls onMessage for each NOTIFY on channel; onReconnect after a dropped listener is back. */
  listen(channel: string, onMessage: (payload: string) => void, onReconnect?: () => void): Promise<() => Promise<void>>
  close(): Promise<void>
}

export interface Session {
  query<R = Record<string, unknown>>(text: string, values?: unknown[]): Promise<R[]>
  /** Several statements in one go (migration scripts). */
  script(sql: string): Promise<void>
}

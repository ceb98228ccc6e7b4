import type { Admission, BudgetReservations, BudgetSubject, Hold } from './reservations';

/**
 * One session's budget holds, from the moment a response is admitted until its usage is in the
 * ledger: by request (a forwarded response.create not yet answered), by response id, and by
 * transcribed item. Every hold is released once settled, or at session end after the session's
 * last rows are written.
 */
export class SessionReservations {
  /** The hold of the response.create the guard just admitted, until the relay forwards it. */
  private admitted: Hold | null = null;
  private readonly byRequest = new Map<string, Hold | null>();
  private readonly byResponse = new Map<string, Hold | null>();
  private readonly byItem = new Map<string, Hold | null>();

  constructor(
    private readonly reservations: BudgetReservations,
    private readonly who: BudgetSubject,
    private readonly floorNanos: bigint,
  ) {}

  private amount(estimate: bigint): bigint {
    return estimate > this.floorNanos ? estimate : this.floorNanos;
  }

  /** For a client response.create, before it is forwarded. */
  async admitRequest(estimate: bigint): Promise<Admission> {
    const a = await this.reservations.admit(this.who, this.amount(estimate));
    if (a.ok) {
      // A previous admission that was never forwarded (the session ended meanwhile) is dropped.
      void this.reservations.release(this.admitted);
      this.admitted = a.hold;
    }
    return a;
  }

  /** The relay forwarded the admitted response.create as `requestId`. */
  requested(requestId: string): void {
    this.byRequest.set(requestId, this.admitted);
    this.admitted = null;
  }

  /** The upstream answered a request: its hold moves to the response, or is released (refused). */
  answered(requestId: string, answer: { responseId: string } | { error: true }): void {
    const hold = this.byRequest.get(requestId) ?? null;
    this.byRequest.delete(requestId);
    if ('responseId' in answer) this.byResponse.set(answer.responseId, hold);
    else void this.reservations.release(hold);
  }

  /** Whether a response has a hold from a client request (else the server created it). */
  knows(responseId: string): boolean {
    return this.byResponse.has(responseId);
  }

  /** A response the server created (VAD): checked like a request; the caller cancels it when refused. */
  async admitServerResponse(responseId: string, estimate: bigint): Promise<Admission> {
    this.byResponse.set(responseId, null);
    const a = await this.reservations.admit(this.who, this.amount(estimate));
    if (!a.ok) return a;
    if (this.byResponse.has(responseId)) this.byResponse.set(responseId, a.hold);
    else void this.reservations.release(a.hold); // already settled while we waited
    return a;
  }

  /** Its usage row is written: the hold goes. */
  settleResponse(responseId: string): void {
    const hold = this.byResponse.get(responseId);
    this.byResponse.delete(responseId);
    void this.reservations.release(hold);
  }

  /** An input transcription started upstream (the relay cannot refuse it): held until its row. */
  async transcriptionStarted(itemId: string, estimate: bigint): Promise<void> {
    this.byItem.set(itemId, null);
    const hold = await this.reservations.holdAnyway(this.who, this.amount(estimate));
    if (this.byItem.has(itemId)) this.byItem.set(itemId, hold);
    else void this.reservations.release(hold);
  }

  settleTranscription(itemId: string): void {
    const hold = this.byItem.get(itemId);
    this.byItem.delete(itemId);
    void this.reservations.release(hold);
  }

  /** At session end, after the session's rows (exact and estimated) are written. */
  async releaseAll(): Promise<void> {
    const holds = [this.admitted, ...this.byRequest.values(), ...this.byResponse.values(), ...this.byItem.values()];
    this.admitted = null;
    this.byRequest.clear();
    this.byResponse.clear();
    this.byItem.clear();
    await Promise.all(holds.map((h) => this.reservations.release(h)));
  }
}

import type { Clock, Timer } from "@sobranie/protocol/runtime/clock";
import type { PusherApp } from "./apps.js";
import type { PusherWebhookEvent } from "./webhook-events.js";
import { postWebhook, type WebhookPostResult } from "./webhook-post.js";
import { webhookRequest } from "./webhook-request.js";

export interface WebhookBatchOptions {
  /** How long the first events for a receiver wait for company before their request goes. */
  readonly windowMs: number;
  /** Most events in one request (a group of events is never split). */
  readonly maxEvents: number;
  /** Bound on each request, answer included. */
  readonly timeoutMs: number;
}

/** One receiver: an app and one of its webhook URLs. */
export interface WebhookTarget {
  readonly app: PusherApp;
  readonly url: string;
}

interface Pending {
  readonly events: readonly PusherWebhookEvent[];
  readonly resolve: (result: WebhookPostResult) => void;
}

interface Receiver {
  readonly target: WebhookTarget;
  pending: Pending[];
  timer: Timer | undefined;
  sending: boolean;
  /** The last request failed in a way worth retrying: fresh events skip the request (see `send`). */
  failing: boolean;
}

/**
 * Groups webhook events per receiver (an app and one of its URLs) into
 * requests: the first group waits at most `windowMs` for more, a request
 * carries at most `maxEvents`, and each receiver has one request in flight,
 * so a slow one holds only its own events and never another's.
 *
 * While a receiver is failing (its last request timed out, could not connect
 * or was answered 5xx, 408 or 429), fresh groups are answered "retry" at
 * once, without a request of their own: they wait in the durable delay queue
 * instead of in memory, and the retries coming back from it are the probes
 * that find the receiver up again.
 */
export class WebhookBatcher {
  private readonly receivers = new Map<string, Receiver>();

  constructor(
    private readonly options: WebhookBatchOptions,
    private readonly deps: { readonly clock: Clock },
  ) {}

  /** Resolves with the result of the request that carried `events`; `fresh`: never tried before. */
  send(target: WebhookTarget, events: readonly PusherWebhookEvent[], fresh: boolean): Promise<WebhookPostResult> {
    const key = `${target.app.id} ${target.url}`;
    let receiver = this.receivers.get(key);
    if (!receiver) this.receivers.set(key, (receiver = { target, pending: [], timer: undefined, sending: false, failing: false }));
    if (fresh && receiver.failing) return Promise.resolve({ kind: "retry", detail: "the receiver is failing: not sent, delayed" });
    const queued = receiver;
    return new Promise((resolve) => {
      queued.pending.push({ events, resolve });
      this.schedule(queued);
    });
  }

  /** Cancels the window timers; groups still waiting are answered "retry" (their deliveries are then delayed, not lost). */
  stop(): void {
    for (const receiver of this.receivers.values()) {
      receiver.timer?.cancel();
      receiver.timer = undefined;
      for (const pending of receiver.pending.splice(0)) pending.resolve({ kind: "retry", detail: "worker stopping" });
    }
  }

  private schedule(receiver: Receiver): void {
    if (receiver.sending) return;
    if (eventCount(receiver.pending) >= this.options.maxEvents) {
      receiver.timer?.cancel();
      receiver.timer = undefined;
      void this.flush(receiver);
      return;
    }
    receiver.timer ??= this.deps.clock.setTimeout(() => {
      receiver.timer = undefined;
      void this.flush(receiver);
    }, this.options.windowMs);
  }

  private async flush(receiver: Receiver): Promise<void> {
    const batch = takeUpTo(receiver.pending, this.options.maxEvents);
    if (batch.length === 0) return;
    receiver.sending = true;
    const { app, url } = receiver.target;
    const request = webhookRequest(app, batch.flatMap((pending) => pending.events), this.deps.clock.now());
    const result = await postWebhook(url, request, this.options.timeoutMs);
    receiver.sending = false;
    receiver.failing = result.kind === "retry";
    for (const pending of batch) pending.resolve(result);
    // Receivers are kept (at most apps × URLs): `failing` must outlive a quiet moment.
    if (receiver.pending.length === 0) return;
    // What queued meanwhile has waited a request's time already: it goes now.
    receiver.timer?.cancel();
    receiver.timer = undefined;
    void this.flush(receiver);
  }
}

function eventCount(pending: readonly Pending[]): number {
  return pending.reduce((sum, group) => sum + group.events.length, 0);
}

/** Removes and returns the first groups holding at most `max` events in all (always at least one group). */
function takeUpTo(pending: Pending[], max: number): Pending[] {
  let count = 0;
  let taken = 0;
  for (const group of pending) {
    if (taken > 0 && count + group.events.length > max) break;
    count += group.events.length;
    taken++;
  }
  return pending.splice(0, taken);
}

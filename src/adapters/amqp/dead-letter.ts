import type { ConsumeMessage } from "amqplib";
import type { ConfirmPublisher } from "@sobranie/publisher/amqp/confirm-publisher";
import { AmqpHeaders, AmqpNames } from "@sobranie/protocol/amqp";

/** Longest reason text kept in a header (headers share a 64 KiB frame table with the rest). */
const MAX_DEAD_MESSAGE_CHARS = 1024;

export interface DeadLetterReason {
  /** A short, bounded code: also the `reason` label of `sobranie_dead_lettered_total`. */
  readonly reason: string;
  readonly text: string;
  readonly nodeId: string;
  /** The queue the message was taken from. */
  readonly queue: string;
}

/**
 * Republishes a consumed message to `sobranie.dlx` (→ `sobranie.dead`) with
 * its original routing key, body and properties, plus why, where and from
 * which queue it was refused. Resolves on the broker's confirm: only then may
 * the caller ack the original, so a dead letter is never lost in between.
 * Mandatory: while `sobranie.dead` does not exist (its declare failed) the
 * broker would confirm a message it dropped; this rejects instead, and the
 * caller keeps the original.
 */
export function publishDeadLetter(publisher: ConfirmPublisher, message: ConsumeMessage, why: DeadLetterReason): Promise<void> {
  return publisher.publish(AmqpNames.deadLetterExchange, message.fields.routingKey, message.content, {
    mandatory: true,
    persistent: true,
    contentType: message.properties.contentType,
    messageId: message.properties.messageId,
    timestamp: message.properties.timestamp,
    headers: {
      ...message.properties.headers,
      [AmqpHeaders.deadReason]: why.reason,
      [AmqpHeaders.deadMessage]: why.text.slice(0, MAX_DEAD_MESSAGE_CHARS),
      [AmqpHeaders.deadNode]: why.nodeId,
      [AmqpHeaders.deadQueue]: why.queue,
    },
  });
}

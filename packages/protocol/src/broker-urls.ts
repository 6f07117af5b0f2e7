/**
 * The text form of a list of RabbitMQ addresses, as `RABBITMQ_URL` and the
 * publisher SDK's `url` take it: `amqp://a:5672,amqp://b:5672`.
 *
 * Only a comma that starts a new `amqp://` or `amqps://` URL (or ends the
 * text) separates entries, so a comma inside a password stays part of it.
 * Blanks around entries are dropped; empty entries vanish.
 */
export function splitBrokerUrls(text: string): string[] {
  return text
    .split(/,(?=\s*(?:amqps?:\/\/|$))/i)
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
}

import { pino, stdSerializers, stdTimeFunctions, type DestinationStream, type Logger as Pino } from "pino";
import type { Logger } from "@sobranie/protocol/runtime/logger";

export interface PinoLoggerOptions {
  /** pino level name; `silent` logs nothing. */
  readonly level: string;
  /** Added to every line as `nodeId`, so lines from several nodes can be told apart. */
  readonly nodeId: string;
  /** Where lines go; stdout by default. Tests pass a capturing stream. */
  readonly destination?: DestinationStream;
}

/**
 * The logger port on pino: one JSON line per call, `msg` plus the fields.
 * Errors under `err` or `error` are serialized with their type, message and
 * stack (a bare Error would log as `{}`).
 */
export function createPinoLogger(options: PinoLoggerOptions): Logger {
  const settings = {
    level: options.level,
    base: { pid: process.pid, nodeId: options.nodeId },
    timestamp: stdTimeFunctions.isoTime,
    serializers: { err: stdSerializers.err, error: stdSerializers.err },
  };
  return wrap(options.destination ? pino(settings, options.destination) : pino(settings));
}

function wrap(log: Pino): Logger {
  return {
    debug: (fields, message) => log.debug(fields, message),
    info: (fields, message) => log.info(fields, message),
    warn: (fields, message) => log.warn(fields, message),
    error: (fields, message) => log.error(fields, message),
    child: (fields) => wrap(log.child(fields)),
  };
}

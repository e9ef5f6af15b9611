import { pino, type Logger } from 'pino';

export type { Logger };

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

/** One process-wide structured logger; components derive children with their own bindings. */
export function createLogger(level: LogLevel = 'info', destination: pino.DestinationStream = pino.destination(1)): Logger {
  return pino({ level, base: { service: 'switchboard' } }, destination);
}

/** A logger that drops everything: for tests and embedded use where the host owns logging. */
export const silentLogger: Logger = pino({ level: 'silent' });

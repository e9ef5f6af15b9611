import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { GatewayIR } from '../ir/types.ts';
import type { Logger } from '../telemetry/logger.ts';
import { ConfigError } from './errors.ts';
import { loadConfigFile } from './load.ts';

/**
 * Reloads the config file when it changes (and on SIGHUP). The directory is watched, not
 * the file, because editors and Kubernetes ConfigMaps replace files by renaming. A new
 * config that does not load is logged with its reasons and the running one keeps serving.
 */
export class ConfigWatcher {
  private readonly file: string;
  private readonly apply: (ir: GatewayIR) => Promise<void>;
  private readonly logger: Logger;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  private readonly onHangup = (): void => this.schedule(0);

  constructor(file: string, apply: (ir: GatewayIR) => Promise<void>, logger: Logger) {
    this.file = resolve(file);
    this.apply = apply;
    this.logger = logger;
  }

  start(): void {
    const name = basename(this.file);
    this.watcher = watch(dirname(this.file), (_event, changed) => {
      if (changed === null || changed === name || changed === '..data') this.schedule(150);
    });
    process.on('SIGHUP', this.onHangup);
  }

  stop(): void {
    this.watcher?.close();
    if (this.timer) clearTimeout(this.timer);
    process.off('SIGHUP', this.onHangup);
  }

  /** Reloads now; resolves true when the new config is serving. */
  reload(): Promise<boolean> {
    const attempt = this.running.then(async () => {
      try {
        await this.apply(loadConfigFile(this.file));
        return true;
      } catch (err) {
        const issues = err instanceof ConfigError ? err.message : (err as Error).message;
        this.logger.error({ file: this.file, reason: issues }, 'new configuration rejected; the previous one keeps serving');
        return false;
      }
    });
    this.running = attempt.then(() => undefined);
    return attempt;
  }

  private schedule(delayMs: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.reload(), delayMs);
  }
}

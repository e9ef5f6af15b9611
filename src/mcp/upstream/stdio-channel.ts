import type { StdioBackendIR } from '../../ir/types.ts';
import type { Logger } from '../../telemetry/logger.ts';
import type { ChannelReceiver, MessageChannel } from './channel.ts';
import { StdioProcess } from './stdio-process.ts';
import { UpstreamError } from './types.ts';

/** An MCP server process speaking newline-delimited JSON-RPC on stdin and stdout. */
export class StdioChannel implements MessageChannel {
  private readonly process: StdioProcess;
  private readonly backend: string;
  private receiver: ChannelReceiver | undefined;

  private constructor(backend: StdioBackendIR, maxLineBytes: number, logger: Logger) {
    this.backend = backend.name;
    this.process = new StdioProcess({
      name: backend.name,
      command: backend.command,
      args: [...backend.args],
      env: { ...backend.env },
      ...(backend.cwd ? { cwd: backend.cwd } : {}),
      maxLineBytes,
      restart: backend.restart,
      logger,
    });
    this.process.on('line', (line) => this.receiver?.message(line));
    this.process.on('exit', (info) => {
      if (info.willRestart) this.receiver?.lost?.(new Error(`process exited (${info.signal ?? `code ${info.code}`})`));
    });
    this.process.on('restart', () => this.receiver?.restarted?.());
    this.process.on('failed', (err) => this.receiver?.closed(err));
  }

  /** Starts the process; a command that cannot be spawned fails the channel, not the caller. */
  static spawn(backend: StdioBackendIR, maxLineBytes: number, logger: Logger): StdioChannel {
    const channel = new StdioChannel(backend, maxLineBytes, logger);
    channel.process.start();
    return channel;
  }

  attach(receiver: ChannelReceiver): void {
    this.receiver = receiver;
  }

  async send(raw: string): Promise<void> {
    if (!this.process.running) throw new UpstreamError(this.backend, 'unavailable', 'process is not running');
    if (!this.process.send(raw)) await this.process.drained();
  }

  async close(): Promise<void> {
    await this.process.stop();
    this.receiver?.closed(new Error('process stopped'));
  }
}

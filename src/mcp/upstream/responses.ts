import type { JsonRpcRequest } from '../../jsonrpc/message.ts';
import { UpstreamError, type Inbound, type ReplyControl, type ReplySink } from './types.ts';

/**
 * The response to a request the gateway itself makes, among what the upstream answers with:
 * `send` starts the exchange with the sink given. Messages other than the response (the
 * upstream's progress, logging) concern no client and are dropped; the reply is stopped as
 * soon as the response is in.
 */
export function responseTo(backend: string, request: JsonRpcRequest, send: (sink: ReplySink) => ReplyControl): Promise<Inbound> {
  return new Promise((resolve, reject) => {
    let control: ReplyControl | undefined;
    let answered = false;
    const sink: ReplySink = {
      message(inbound) {
        const m = inbound.message;
        if (answered || 'method' in m || m.id !== request.id) return;
        answered = true;
        control?.stop();
        resolve(inbound);
      },
      end() {
        if (!answered) reject(new UpstreamError(backend, 'protocol', `no response to ${request.method}`));
      },
      fail: reject,
    };
    control = send(sink);
    if (answered) control.stop();
  });
}

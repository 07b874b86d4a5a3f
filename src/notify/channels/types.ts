// A channel turns an outbox row into what is sent. HTTP channels (webhook, slack) build one request
// that the dispatcher's deliverer sends (SSRF guard, timeout, caps); a sending channel (email) sends
// through its own transport and reports the attempt in the same shape. The dispatcher knows no formats.
import type { AttemptResult } from '../types.ts';

export interface DeliveryForChannel {
  id: string;
  tenant_id: string;
  target: string;
  payload: Record<string, unknown>;
  /** current signing secrets: the tenant's secret, then the previous one during rotation */
  secrets: string[];
}

export interface OutgoingRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
}

export interface HttpChannel {
  build(delivery: DeliveryForChannel, nowSec: number): OutgoingRequest;
}

export interface SendingChannel {
  /** one attempt; never throws for the receiver's failures (they are the result), only for our own */
  send(delivery: DeliveryForChannel): Promise<AttemptResult>;
  close(): Promise<void>;
}

export type Channel = HttpChannel | SendingChannel;

// A channel turns an outbox row into one HTTP request. The dispatcher knows no formats.

export interface DeliveryForChannel {
  id: string;
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

export interface Channel {
  build(delivery: DeliveryForChannel, nowSec: number): OutgoingRequest;
}

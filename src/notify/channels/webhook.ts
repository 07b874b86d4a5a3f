// Standard Webhooks: the frozen payload, signed per attempt with the tenant's secret(s).
import { webhookHeaders } from '../sign.ts';
import type { HttpChannel } from './types.ts';

export const webhookChannel: HttpChannel = {
  build(delivery, nowSec) {
    const body = JSON.stringify(delivery.payload);
    return { url: delivery.target, body, headers: { ...webhookHeaders(delivery.secrets, delivery.id, body, nowSec) } };
  },
};

import { slackChannel } from './slack.ts';
import type { HttpChannel } from './types.ts';
import { webhookChannel } from './webhook.ts';

export type { Channel, DeliveryForChannel, HttpChannel, OutgoingRequest, SendingChannel } from './types.ts';

/**
 * The HTTP channels. `email` is added by the dispatcher when SMTP is configured (it holds a
 * transport); `none` has no adapter: such rows are written as `skipped` and never sent.
 */
export const channels: Readonly<Record<string, HttpChannel>> = { webhook: webhookChannel, slack: slackChannel };

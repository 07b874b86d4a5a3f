import { slackChannel } from './slack.ts';
import type { Channel } from './types.ts';
import { webhookChannel } from './webhook.ts';

export type { Channel, DeliveryForChannel, OutgoingRequest } from './types.ts';

/** `none` has no adapter: such rows are written as `skipped` and never sent. */
export const channels: Readonly<Record<string, Channel>> = { webhook: webhookChannel, slack: slackChannel };

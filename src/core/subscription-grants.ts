import { ErrorCode } from "@sobranie/protocol/codes";
import type { Channel } from "@sobranie/protocol/channel";
import { AuthenticationError, type Authenticator, type SubscriptionGrant } from "./ports/authenticator.js";
import type { SessionContext } from "./session-context.js";

/** What a `subscribe` or `refresh` with a subscription token is answered when the token does not admit the channel. */
export interface GrantRefusal {
  readonly code: typeof ErrorCode.Unauthorized | typeof ErrorCode.Forbidden;
  readonly message: string;
}

export type GrantCheck = { ok: true; grant: SubscriptionGrant } | { ok: false; refusal: GrantRefusal };

/**
 * A subscription token (docs/protocol.md §10) checked for one user
 * and one channel: verified, this user's, for exactly this channel, and
 * neither revoked nor issued before the user's removal from the channel.
 *
 * Synchronous where the key allows (Authenticator.verifySubscriptionNow), a
 * promise only where the asynchronous path must decide: a session that
 * awaits only a promise records the subscription before its
 * `receiveText` returns, so a `refresh` read right after the `subscribe`
 * finds it.
 */
export function checkSubscriptionToken(ctx: GrantContext, token: string, userId: string, channel: Channel): GrantCheck | Promise<GrantCheck> {
  let decided: SubscriptionGrant | Promise<SubscriptionGrant>;
  try {
    decided = ctx.authenticator.verifySubscriptionNow?.(token) ?? ctx.authenticator.verifySubscription(token);
  } catch (error) {
    return refusedBy(error);
  }
  if (!(decided instanceof Promise)) return checkGrant(ctx, decided, userId, channel);
  return decided.then((grant) => checkGrant(ctx, grant, userId, channel), refusedBy);
}

type GrantContext = { readonly authenticator: Authenticator; readonly access: SessionContext["access"] };

function checkGrant(ctx: GrantContext, grant: SubscriptionGrant, userId: string, channel: Channel): GrantCheck {
  if (grant.userId !== userId) return refused(ErrorCode.Forbidden, "the subscription token is for another user");
  if (grant.channel !== channel.name) return refused(ErrorCode.Forbidden, `the subscription token is not for ${channel.name}`);
  if (ctx.access.isRevoked(grant)) return refused(ErrorCode.Unauthorized, "token revoked");
  if (ctx.access.isChannelRevoked(grant, channel.name)) return refused(ErrorCode.Forbidden, `not allowed on ${channel.name}`);
  return { ok: true, grant };
}

function refusedBy(error: unknown): GrantCheck {
  return refused(ErrorCode.Unauthorized, error instanceof AuthenticationError ? error.message : "token could not be verified");
}

function refused(code: GrantRefusal["code"], message: string): GrantCheck {
  return { ok: false, refusal: { code, message } };
}

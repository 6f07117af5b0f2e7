/**
 * A subscription the connecting app's own auth endpoint signed (the Pusher
 * protocol's channel signatures, checked by src/adapters/pusher/): it stands
 * in for the namespace's subscribe rule, since the app decided who may
 * subscribe, as a Pusher server lets it. The namespace must still exist, and
 * its other rules (durability, presence, publish policy) hold as they are.
 */
export interface SignedGrant {
  /** Whom the subscription is tracked as in a presence namespace (the signed `channel_data`); undefined elsewhere. */
  readonly member: { readonly userId: string; readonly info: unknown } | undefined;
}

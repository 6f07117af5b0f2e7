import Echo from "laravel-echo";
import { appBackend, channelAuthorizedBy, gatewayConnection, PUSHER_APP, PusherJs } from "./pusher-clients.js";

/** A presence member as the app's auth endpoint signs it. */
export interface EchoMember {
  readonly user_id: string;
  readonly user_info?: Record<string, unknown>;
}

/**
 * laravel-echo on the real pusher-js, as a Laravel app's front end sets it
 * up against a self-hosted server (`broadcaster: "pusher"`, or `"reverb"`,
 * whose set-up names no cluster); its auth endpoint is the app's, here the
 * real `pusher` SDK signing as `member`.
 */
export function echoClient(port: number, member: EchoMember, broadcaster: "pusher" | "reverb" = "pusher"): Echo<"pusher"> {
  return new Echo({
    broadcaster,
    Pusher: PusherJs,
    key: PUSHER_APP.key,
    // Echo passes pusher-js an empty cluster for Reverb.
    ...(broadcaster === "pusher" ? { cluster: "mt1" } : {}),
    ...gatewayConnection(port),
    channelAuthorization: channelAuthorizedBy(appBackend, member),
  } as never);
}

export { PresenceTracker } from "./tracker.js";
export type { PresenceTrackerDeps, PresenceTrackerOptions } from "./tracker.js";
export { ONLINE_KEY } from "./online-key.js";
export type { PresenceHandle, PresenceListing } from "./presence-handle.js";
export type { PresenceBackendEvent } from "./event-leadership.js";
export { EntryDigest, EMPTY_DIGEST } from "./digest.js";
export { LoneBus } from "./lone-bus.js";

export { ONLINE_KEY, PresenceTracker } from "./tracker.js";
export type { PresenceBackendEvent, PresenceHandle, PresenceListing, PresenceTrackerDeps, PresenceTrackerOptions } from "./tracker.js";
export { EntryDigest, EMPTY_DIGEST } from "./digest.js";
export { LoneBus } from "./lone-bus.js";

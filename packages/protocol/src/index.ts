export * from "./codes.js";
export * from "./channel.js";
export * from "./envelope.js";
export * from "./frames.js";
export * from "./event-data.js";
export * from "./sse.js";
export * from "./errors.js";

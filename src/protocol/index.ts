export * from "./codes.js";
export * from "./channel.js";
export * from "./envelope.js";
export * from "./frames.js";
export * from "./json-depth.js";
export * from "./json-numbers.js";
export * from "./sse.js";

/**
 * The part of Bun's built-in `bun:test` module that the publisher suite uses,
 * so `tsc` (run on Node, without Bun's own type package) can check
 * publisher.bun.ts. Bun ignores this file at run time.
 */
declare module "bun:test" {
  import type { TestApi } from "./publisher-cases.js";
  export const describe: TestApi["describe"];
  export const it: TestApi["it"];
  export const expect: TestApi["expect"];
  export const afterEach: TestApi["afterEach"];
}

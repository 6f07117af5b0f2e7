/**
 * The `bun:test` hooks the gateway-on-Bun suite uses beyond the ones declared
 * in test/publisher/bun-test.d.ts (the two declarations merge), so `tsc` on
 * Node can check it. Bun ignores this file at run time.
 */
declare module "bun:test" {
  export function beforeAll(body: () => Promise<void>, timeoutMs?: number): void;
  export function afterAll(body: () => Promise<void>, timeoutMs?: number): void;
}

import { NAMESPACE_PATTERN, type Channel } from "@sobranie/protocol/channel";

/**
 * What one backend API key may do (`API_KEYS`, docs/security.md "Scoped API
 * keys"): `publish` to every namespace or `publish:<namespace>` to one,
 * `control` (POST /api/v1/control), `read` (presence and status), `*` all of it.
 */
export type ApiKeyScope = "*" | "publish" | `publish:${string}` | "control" | "read";

/** The grammar of a scope, as configuration errors state it. */
export const API_KEY_SCOPE_RULE = `*, publish, publish:<namespace>, control or read`;

/** What a request asks of the key it presents. */
export type ApiKeyAction =
  | { readonly kind: "publish"; readonly channel: Channel }
  | { readonly kind: "control" }
  | { readonly kind: "read" };

const PUBLISH_PREFIX = "publish:";

/** The namespace a `publish:<namespace>` scope names; undefined for any other scope. */
export function namespaceOfPublishScope(scope: string): string | undefined {
  return scope.startsWith(PUBLISH_PREFIX) ? scope.slice(PUBLISH_PREFIX.length) : undefined;
}

/** Whether `text` is a scope; a `publish:` scope must name a namespace of the channel grammar. */
export function isApiKeyScope(text: string): text is ApiKeyScope {
  if (text === "*" || text === "publish" || text === "control" || text === "read") return true;
  const namespace = namespaceOfPublishScope(text);
  return namespace !== undefined && NAMESPACE_PATTERN.test(namespace);
}

/** One key's scopes. Guarantee: a key allows exactly what one of its scopes names, nothing by default. */
export class ApiKeyScopes {
  constructor(private readonly scopes: readonly ApiKeyScope[]) {}

  allows(action: ApiKeyAction): boolean {
    return this.scopes.some((scope) => {
      if (scope === "*") return true;
      switch (action.kind) {
        case "publish":
          return scope === "publish" || namespaceOfPublishScope(scope) === action.channel.namespace;
        case "control":
          return scope === "control";
        case "read":
          return scope === "read";
      }
    });
  }

  /** `this API key may not publish to room:7: it has scopes publish:post`: the key itself is never named. */
  refusal(action: ApiKeyAction): string {
    return `this API key may not ${described(action)}: it has scopes ${this.scopes.join(", ")}`;
  }
}

function described(action: ApiKeyAction): string {
  switch (action.kind) {
    case "publish":
      return `publish to ${action.channel.name}`;
    case "control":
      return "send control commands";
    case "read":
      return "read presence and status";
  }
}

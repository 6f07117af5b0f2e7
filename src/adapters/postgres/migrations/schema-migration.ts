import { Migration } from "@mikro-orm/migrations";

/**
 * A migration whose every name is qualified with the configured schema
 * (default `public`), so one class serves production and the per-test
 * schemas, on PostgreSQL and on PGlite alike.
 */
export abstract class SchemaMigration extends Migration {
  /** `"schema"."name"`, quoted. */
  protected qualified(name: string): string {
    const platform = this.driver.getPlatform();
    const schema = this.config.get("schema") ?? platform.getDefaultSchemaName() ?? "public";
    return platform.quoteIdentifier(`${schema}.${name}`);
  }
}

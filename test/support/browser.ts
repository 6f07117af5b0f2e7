import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";

/** Debian's chromium (test/support/ensure-tools.sh installs it); never a Playwright-downloaded browser. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const SCREENSHOT_DIR = "test-results";

/** A headless chromium with a fresh profile, removed on close. */
export class TestBrowser {
  /** The pages' console errors and warnings, written next to the screenshots of a failed test. */
  readonly console: string[] = [];
  /** Content-Security-Policy violations the pages reported (`securitypolicyviolation`): directive and blocked URI. */
  readonly cspViolations: string[] = [];

  private constructor(
    readonly context: BrowserContext,
    private readonly profile: string,
  ) {}

  static async launch(): Promise<TestBrowser> {
    const profile = await mkdtemp(join(tmpdir(), "sobranie-chromium-"));
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    return new TestBrowser(context, profile);
  }

  async page(): Promise<Page> {
    const page = await this.context.newPage();
    await page.exposeFunction("reportCspViolation", (violation: string) => void this.cspViolations.push(violation));
    // A string: this file is compiled without the DOM types.
    await page.addInitScript({
      content: `document.addEventListener("securitypolicyviolation", (event) =>
        reportCspViolation(event.effectiveDirective + " blocked " + (event.blockedURI || "inline") + " (" + event.sourceFile + ":" + event.lineNumber + ")"));`,
    });
    page.on("console", (message) => {
      if (message.type() === "error" || message.type() === "warning") this.console.push(`[${message.type()}] ${message.text()}`);
    });
    return page;
  }

  async close(): Promise<void> {
    await this.context.close().catch(() => {});
    await rm(this.profile, { recursive: true, force: true });
  }
}

/** Keeps a screenshot of every open page, and the console log, under test-results/ (for a failed test). */
export async function keepScreenshots(browser: TestBrowser | undefined, testName: string): Promise<void> {
  if (!browser) return;
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  const base = testName.replace(/[^A-Za-z0-9_-]+/g, "-").slice(0, 80);
  await writeFile(join(SCREENSHOT_DIR, `${base}-console.log`), browser.console.join("\n"));
  await Promise.all(browser.context.pages().map((page, i) => page.screenshot({ path: join(SCREENSHOT_DIR, `${base}-${i}.png`), fullPage: true }).catch(() => {})));
}

// Playwright runs the dashboard's browser tests in Debian's chromium, headless
// (Playwright's own browser download cannot work here). Each spec starts its own
// `switchyard demo` on free ports (demo.ts). Screenshots land in artifacts/.
import { defineConfig } from "@playwright/test";
import { resolve } from "node:path";

export const repoRoot = resolve(__dirname, "../../..");

export default defineConfig({
  testDir: ".",
  outputDir: resolve(repoRoot, "artifacts/playwright"),
  fullyParallel: false,
  workers: 1,
  retries: 0,
  timeout: 120_000,
  expect: { timeout: 20_000 },
  reporter: [["list"]],
  use: {
    viewport: { width: 1400, height: 900 },
    screenshot: "only-on-failure",
    trace: "retain-on-failure",
    launchOptions: {
      executablePath: process.env.SWITCHYARD_CHROMIUM ?? "/usr/bin/chromium",
      // As root chromium needs --no-sandbox; the rest keep it from reaching for
      // the network, which is closed here.
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    },
  },
});

// Roles in the page: it asks GetIdentity who it is, disables what that role may
// not do, and shows the server's refusal when a request is forced through. And
// abort, which needs a command that runs for a while.
//
// "with authentication on" runs against a demo with real tokens
// (`switchyard token new`); it skips, saying so, only while the server offers
// no authentication. The stubbed test checks the page's own logic on every run:
// its GetIdentity answer and the refusal come from the test, the rest from a real
// demo.
import { create, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { expect, test, type Browser, type Page } from "@playwright/test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GetIdentityResponseSchema } from "../gen/switchyard/v1/system_pb";
import { Demo } from "./demo";
import { consoleErrors, shot } from "./pages";

const sendCommand = "/switchyard.v1.DeviceService/SendCommand";
const viewerMethods = [
  "/switchyard.v1.DeviceService/ListDevices",
  "/switchyard.v1.DeviceService/WatchDevices",
  "/switchyard.v1.TelemetryService/Subscribe",
  "/switchyard.v1.TelemetryService/GetLatest",
  "/switchyard.v1.SystemService/GetSupervisionTree",
  "/switchyard.v1.SystemService/WatchSupervisionEvents",
  "/switchyard.v1.SystemService/GetIdentity",
  "/switchyard.v1.AlarmService/ListActiveAlarms",
  "/switchyard.v1.AlarmService/WatchAlarms",
];

function identity(name: string, role: string, methods: string[]): Buffer {
  const msg = create(GetIdentityResponseSchema, { name, role, authenticated: true, method: "token", allowedMethods: methods, serverVersion: "test" });
  return Buffer.from(toBinary(GetIdentityResponseSchema, msg));
}

/** refusal is a Connect error body as the server sends it, with a google.rpc.ErrorInfo. */
function refusal(message: string): string {
  const info = new BinaryWriter().tag(1, WireType.LengthDelimited).string("PERMISSION_DENIED").tag(2, WireType.LengthDelimited).string("switchyard").finish();
  return JSON.stringify({ code: "permission_denied", message, details: [{ type: "google.rpc.ErrorInfo", value: Buffer.from(info).toString("base64").replace(/=+$/, "") }] });
}

async function forceSend(page: Page, volts: string): Promise<void> {
  const form = page.locator('form[data-command="set_voltage"]');
  await form.locator('input[data-arg="volts"]').fill(volts);
  const send = form.getByTestId("send");
  await send.evaluate((b) => b.removeAttribute("disabled"));
  await send.click();
}

test.describe("on a small demo (psu-01, psu-02, tc-01)", () => {
  let demo: Demo;
  test.beforeAll(async () => {
    demo = await Demo.start({ args: ["--scpi", "2", "--lines", "0", "--modbus", "1"] });
  });

  test("abort ends the command in progress, and the command shows ABORTED", async ({ page }) => {
    // tc-01's set_temperature waits until the read-back settles within 0.5 °C of
    // the set-point, seconds for 150 °C, so it is in progress when abort is pressed.
    await page.goto(demo.url + "?tab=commands&device=tc-01");
    const form = page.locator('form[data-command="set_temperature"]');
    await form.locator('input[data-arg="degC"]').fill("150");
    await form.getByTestId("send").click();
    await expect(form.getByTestId("send")).toHaveText("sending…");
    await page.getByTestId("abort").click();
    await expect(page.getByText(/^aborted set_temperature/)).toBeVisible();
    await expect(form.getByTestId("error")).toHaveAttribute("data-code", "ABORTED");
    await expect(form.getByTestId("error")).toHaveAttribute("data-reason", "ABORTED");
    await expect(form.getByTestId("send")).toHaveText("send");
  });
  test.afterAll(async () => {
    await demo?.stop();
  });

  test("a viewer (stubbed identity) sees controls disabled, and a forced request's refusal is shown", async ({ page }) => {
    const errors = consoleErrors(page);
    await page.route("**/switchyard.v1.SystemService/GetIdentity", (r) =>
      r.fulfill({ status: 200, contentType: "application/proto", body: identity("vera", "viewer", viewerMethods) }),
    );
    await page.route("**" + sendCommand, (r) =>
      r.fulfill({ status: 403, contentType: "application/json", body: refusal("vera (viewer) may not call SendCommand") }),
    );
    await page.goto(demo.url + "?tab=commands&device=psu-01");
    await expect(page.getByTestId("identity")).toHaveAttribute("data-role", "viewer");
    const send = page.locator('form[data-command="set_voltage"]').getByTestId("send");
    await expect(send).toBeDisabled();
    await expect(send).toHaveAttribute("title", /viewer/);
    await expect(page.getByTestId("abort")).toBeDisabled();
    await forceSend(page, "5");
    const err = page.locator('form[data-command="set_voltage"]').getByTestId("error");
    await expect(err).toHaveAttribute("data-code", "PERMISSION_DENIED");
    await expect(err).toContainText("vera (viewer) may not call SendCommand");
    await page.locator('button[data-tab="observer"]').click();
    await expect(page.locator('tr[data-process="devices/psu-01"]').getByTestId("restart")).toBeDisabled();
    await shot(page, "dashboard-viewer.png");
    expect(errors.filter((e) => !/status of 403/.test(e))).toEqual([]);
  });

  test("an operator (stubbed identity) may send, but not a command whose role is admin", async ({ page }) => {
    const ops = [...viewerMethods, sendCommand, "/switchyard.v1.DeviceService/AbortCommand"];
    await page.route("**/switchyard.v1.SystemService/GetIdentity", (r) =>
      r.fulfill({ status: 200, contentType: "application/proto", body: identity("otto", "operator", ops) }),
    );
    await page.goto(demo.url + "?tab=commands&device=psu-01");
    await expect(page.getByTestId("identity")).toHaveAttribute("data-role", "operator");
    const form = page.locator('form[data-command="set_voltage"]');
    await expect(form.getByTestId("send")).toBeEnabled();
    await form.locator('input[data-arg="volts"]').fill("12");
    await form.getByTestId("send").click();
    await expect(form.getByTestId("reply")).toHaveText("ok");
    // The demo's commands need the default role; make one need admin.
    await page.evaluate(() => {
      const d = (window as unknown as { switchyardDebug: { devices(): Map<string, { commandInfo: { name: string; role: string }[] }> } }).switchyardDebug.devices();
      for (const c of d.get("psu-01")!.commandInfo) if (c.name === "identify") c.role = "admin";
    });
    await page.locator('button[data-tab="devices"]').click();
    await page.locator('button[data-tab="commands"]').click();
    await expect(page.locator('form[data-command="identify"]').getByTestId("send")).toBeDisabled();
    await expect(page.locator('form[data-command="set_voltage"]').getByTestId("send")).toBeEnabled();
  });
});

/** tokensSupported reports whether this switchyard can make tokens. */
function tokensSupported(): boolean {
  const r = spawnSync(Demo.bin(), ["token", "new", "--help"], { encoding: "utf8" });
  return !/unknown verb/i.test(r.stderr + r.stdout);
}

test.describe("with authentication on", () => {
  test.skip(!tokensSupported(), "the server offers no authentication yet (no `switchyard token` verb): nothing to log in to");
  let demo: Demo;
  const tokens: Record<string, string> = {};

  test.beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), "switchyard-e2e-"));
    const entries: string[] = [];
    for (const role of ["viewer", "operator"]) {
      const r = spawnSync(Demo.bin(), ["token", "new", "--name", `e2e-${role}`, "--role", role], { encoding: "utf8" });
      expect(r.status, r.stderr).toBe(0);
      const [token, ...entry] = r.stdout.split("\n");
      tokens[role] = token.trim();
      entries.push(entry.join("\n"));
    }
    const file = join(dir, "tokens.yaml");
    writeFileSync(file, "tokens:\n" + entries.join("\n"));
    demo = await Demo.start({ args: authArgs(file) });
  });
  test.afterAll(async () => {
    await demo?.stop();
  });

  async function signIn(browser: Browser, role: string): Promise<Page> {
    const page = await (await browser.newContext()).newPage();
    await page.goto(demo.url + "?tab=commands&device=psu-01");
    await page.getByTestId("token-button").click();
    await page.getByTestId("token-input").fill(tokens[role]);
    await page.getByTestId("token-input").press("Enter");
    await expect(page.getByTestId("identity")).toHaveAttribute("data-role", role);
    return page;
  }

  test("without a token the page shows the refusal; a viewer cannot send a command; an operator can", async ({ browser }) => {
    const anonymous = await (await browser.newContext()).newPage();
    await anonymous.goto(demo.url + "?tab=devices");
    await expect(anonymous.locator(".badge.down").first()).toContainText("UNAUTHENTICATED");
    await expect(anonymous.locator("tr[data-device]")).toHaveCount(0);
    await expect(anonymous.getByTestId("identity")).toContainText("not signed in: this server needs a token");
    await shot(anonymous, "dashboard-no-token.png");

    const viewer = await signIn(browser, "viewer");
    await expect(viewer.locator('form[data-command="set_voltage"]').getByTestId("send")).toHaveAttribute("title", /viewer/);
    await viewer.locator('button[data-tab="observer"]').click();
    await expect(viewer.locator('tr[data-process="devices/psu-01"]').getByTestId("restart")).toBeDisabled();
    await viewer.locator('button[data-tab="commands"]').click();
    await expect(viewer.locator('form[data-command="set_voltage"]').getByTestId("send")).toBeDisabled();
    await forceSend(viewer, "5");
    await expect(viewer.locator('form[data-command="set_voltage"]').getByTestId("error")).toHaveAttribute("data-code", "PERMISSION_DENIED");
    await shot(viewer, "dashboard-viewer-auth.png");
    const operator = await signIn(browser, "operator");
    const form = operator.locator('form[data-command="set_voltage"]');
    await expect(form.getByTestId("send")).toBeEnabled();
    await form.locator('input[data-arg="volts"]').fill("12");
    await form.getByTestId("send").click();
    await expect(form.getByTestId("reply")).toHaveText("ok");
  });
});

/**
 * authArgs are the demo's flags that turn authentication on with a tokens file:
 * the demo's own flag for it, found in its help text.
 */
function authArgs(tokensFile: string): string[] {
  const help = spawnSync(Demo.bin(), ["demo", "-h"], { encoding: "utf8" });
  const flag = /^\s+-(-?[\w-]*tokens?[\w-]*)\s/m.exec(help.stderr + help.stdout)?.[1];
  if (!flag) throw new Error("switchyard has `token new` but `switchyard demo` has no tokens flag; teach authArgs how the demo turns authentication on");
  return [`-${flag}`, tokensFile];
}

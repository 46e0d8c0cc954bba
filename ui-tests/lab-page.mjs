// The headless Chromium page the Evaluations drivers share: a throwaway profile, console errors from
// aqua_lab collected (HTTP 4xx are the refusals the drivers provoke on purpose), JupyterLab's "get
// notified about news?" toast answered No whenever it shows (it would cover the screenshots), a
// screenshot helper, the theme switch, a dialog shot in both themes, and the sidebar opened on the lab the URL names.
import { chromium } from "playwright-core";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

export async function launch(out) {
  const found = { consoleErrors: [] };
  const context = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), "aqua-ui-")), {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: FLAGS,
    viewport: { width: 1400, height: 950 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("console", (m) => {
    if (m.type() === "error" && /aqua/i.test(m.text()) && !/status of 4\d\d/.test(m.text())) found.consoleErrors.push(m.text());
  });
  page.on("pageerror", (e) => found.consoleErrors.push(String(e)));
  const shot = async (name, locator = null) => {
    await page.waitForTimeout(300);
    await (locator ?? page).screenshot({ path: join(out, name) });
  };
  const setTheme = async (name) => {
    await page.click("text=Settings");
    await page.hover("text=Theme");
    await page.click(`text=${name}`);
    await page.waitForTimeout(1500);
  };
  // a dialog blocks the theme menu: shot in light, closed, the theme switched, opened again, shot in dark
  const dialogBoth = async (name, open) => {
    for (const [theme, suffix] of [["JupyterLab Light", ""], ["JupyterLab Dark", "-dark"]]) {
      if (suffix) await setTheme(theme);
      await open();
      await shot(`${name}${suffix}.png`, page.locator(".jp-Dialog-content"));
      await page.locator(".jp-Dialog").getByRole("button", { name: "Close" }).click();
      await page.locator(".jp-Dialog").waitFor({ state: "detached", timeout: 10000 });
    }
    await setTheme("JupyterLab Light");
  };
  // what is on the page now (or `locator`), in both themes
  const shotBoth = async (name, locator = null) => {
    await shot(`${name}.png`, locator);
    await setTheme("JupyterLab Dark");
    await shot(`${name}-dark.png`, locator);
    await setTheme("JupyterLab Light");
  };
  await page.addLocatorHandler(page.getByText(/get notified about official Jupyter news/), async () => {
    await page.getByRole("button", { name: "No", exact: true }).last().click();
  });
  return { context, page, found, shot, setTheme, dialogBoth, shotBoth };
}

// Opens JupyterLab at `url` (a server URL with ?token=) and the aqua_lab sidebar; returns the lab's URL.
export async function openSidebar(page, url) {
  const base = new URL(url);
  const token = base.searchParams.get("token");
  const lab = `${base.origin}${base.pathname.replace(/\/?$/, "/")}lab`;
  await page.goto(`${lab}?token=${token}`);
  await page.waitForSelector('li[data-id="aqua-lab-sidebar"]', { timeout: 90000 });
  await page.click('li[data-id="aqua-lab-sidebar"]');
  return { lab, token };
}

// Starts the evaluation the Evaluations form holds; resolves to its detail view once shown, and its id.
export async function startEvaluation(view) {
  await view.getByRole("button", { name: "Start evaluation" }).click();
  const detail = view.locator(".aqua-eval-detail");
  await detail.waitFor({ timeout: 30000 });
  return { detail, id: await detail.getAttribute("data-id") };
}

// Waits until the evaluation `detail` shows has finished; resolves to its state.
export async function finishedState(detail, timeout = 180000) {
  await detail.locator('xpath=self::*[@data-state="SUCCEEDED" or @data-state="FAILED" or @data-state="CANCELED"]').waitFor({ timeout });
  return detail.getAttribute("data-state");
}

// Runs a driver's steps: prints what they found as one JSON line; on a failure, a screenshot named
// `failure`, what was found so far with the error, and the error thrown again.  The browser closes.
export async function report({ context, found, shot }, failure, steps) {
  try {
    await steps();
    console.log(JSON.stringify(found));
  } catch (error) {
    await shot(failure).catch(() => {});
    console.log(JSON.stringify({ ...found, error: String(error) }));
    throw error;
  } finally {
    await context.close();
  }
}

// Browser-side numbers for bench/sidebar_bench.py, measured with `performance` marks.
//   node bench.mjs <lab url with token> <paced SSE url> <rounds>
// Prints one JSON line.
import { chromium } from "playwright-core";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [url, paced, rounds] = process.argv.slice(2);
const context = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), "aqua-bench-")), {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
  viewport: { width: 1400, height: 950 },
});
const page = context.pages()[0] ?? (await context.newPage());
const out = {};
try {
  const base = new URL(url);
  const token = base.searchParams.get("token");
  const root = `${base.origin}${base.pathname.replace(/\/?$/, "/")}`;
  await page.goto(`${root}lab?token=${token}`);
  await page.waitForSelector('li[data-id="aqua-lab-sidebar"]', { timeout: 90000 });
  await page.waitForTimeout(1000);
  const sidebar = page.locator("#aqua-lab-sidebar");

  // 1. the panel's first render after the click (deployments of the default platform)
  const t0 = await page.evaluate(() => performance.now());
  await page.click('li[data-id="aqua-lab-sidebar"]');
  await sidebar.locator('xpath=self::*[@data-state="ok"]').waitFor();
  out.sidebarFirstRenderMs = await page.evaluate((t) => performance.getEntriesByName("aqua-sidebar-rendered")[0].startTime - t, t0);

  // 2. the Plan tab on the 52-model bundled catalog, then plan redraws after a selection change
  await sidebar.locator("select.aqua-platform").selectOption("bundled");
  const t1 = await page.evaluate(() => performance.now());
  await sidebar.getByRole("button", { name: "Plan", exact: true }).click();
  const plan = page.locator("#aqua-lab-plan-bundled[data-models]");
  await plan.waitFor();
  out.planTabCatalogMs = await page.evaluate((t) => performance.now() - t, t1);
  out.catalogModels = Number(await plan.getAttribute("data-models"));
  const ids = ["google/gemma-2b", "microsoft/phi-2"];
  for (const id of ids) await plan.locator(`.aqua-catalog-row[data-model="${id}"] input`).check();
  await plan.locator('xpath=self::*[@data-plan="ok"]').waitFor();
  const redraw = [];
  const bare = [];
  const xsrf = await page.evaluate(() => document.cookie.match(/_xsrf=([^;]+)/)?.[1] ?? "");
  for (let i = 0; i < Number(rounds); i++) {
    // the same request the tab makes, alone: the baseline for the redraw
    bare.push(await page.evaluate(async ({ root, token, ids, xsrf }) => {
      const t = performance.now();
      const r = await fetch(`${root}aqua/plans?platform=bundled`, {
        method: "POST", body: JSON.stringify({ model_ids: ids }),
        headers: { Authorization: `token ${token}`, "X-XSRFToken": xsrf, "Content-Type": "application/json" },
      });
      await r.json();
      return performance.now() - t;
    }, { root, token, ids: [...ids, "microsoft/phi-2"].slice(0, i % 2 ? 2 : 3), xsrf }));
    // toggle a third model: selection change → request → grid drawn
    const before = await page.evaluate(() => performance.getEntriesByName("aqua-plan-rendered").length);
    await plan.locator('.aqua-catalog-row[data-model="google/gemma-2b-it"] input').click();
    await page.waitForFunction((n) => performance.getEntriesByName("aqua-plan-rendered").length > n, before);
    redraw.push(await page.evaluate(() =>
      performance.getEntriesByName("aqua-plan-rendered").pop().startTime - performance.getEntriesByName("aqua-plan-selection").pop().startTime));
  }
  out.planRedrawMs = redraw;
  out.planRequestMs = bare;

  // 3. streaming: a compare of two models whose tokens arrive at a fixed rate (paced SSE server)
  const fake = {
    id: "bench-1", display_name: "bench", platform: "local", state: "ACTIVE", instance_shape: "LOCAL.CPU.2",
    models: [{ model_id: "m", model_name: "a", gpu_count: 1 }, { model_id: "m", model_name: "b", gpu_count: 1 }],
    model_states: [],
  };
  await page.route((u) => new URL(u).pathname.endsWith("/aqua/deployments/bench-1"), (r) =>
    r.fulfill({ contentType: "application/json", body: JSON.stringify(fake) }));
  await page.route((u) => new URL(u).pathname.endsWith("/aqua/deployments/bench-1/compare"), (r) =>
    r.continue({ url: paced }));
  await page.evaluate(() => {
    window.__long = [];
    new PerformanceObserver((list) => window.__long.push(...list.getEntries().map((e) => ({ at: e.startTime, ms: e.duration })))).observe({ type: "longtask" });
  });
  // JupyterLab runs with expose_app_in_browser: open the tab through the plugin's own command
  await page.evaluate(() => window.jupyterapp.commands.execute("aqua-lab:chat", { deploymentId: "bench-1", platform: "local", compare: true }));
  const chat = page.locator('.aqua-chat-view[data-state="ready"]');
  await chat.waitFor({ timeout: 20000 });
  await chat.getByLabel("Compare: send to every model").check();
  await page.evaluate(() => { window.__long = []; window.__sent = performance.now(); });
  await chat.getByLabel("Message").fill("go");
  await chat.getByLabel("Message").press("Enter");
  await page.waitForFunction(() => document.querySelector(".aqua-chat-view")?.dataset.busy === "false" &&
    document.querySelectorAll('.aqua-assistant[data-streaming="false"]').length === 2, null, { timeout: 120000 });
  out.stream = await page.evaluate(() => ({
    longTasks: window.__long.filter((d) => d.ms > 50).length,
    longestTaskMs: Math.max(0, ...window.__long.map((d) => d.ms)),
    longTaskAt: window.__long.map((d) => [Math.round(d.at - window.__sent), Math.round(d.ms)]),
    endAt: Math.round(performance.now() - window.__sent),
    shown: [...document.querySelectorAll(".aqua-assistant .aqua-answer-text")].map((e) => e.textContent),
  }));
  console.log(JSON.stringify(out));
} finally {
  await context.close();
}

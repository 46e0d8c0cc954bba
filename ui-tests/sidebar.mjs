// Drives aqua_lab's JupyterLab sidebar in headless Chromium and saves screenshots of each view.
//   node sidebar.mjs <lab url with token> <output dir> [--deploy]
// Without --deploy: sidebar (local and bundled), Plan & deploy with two bundled models and their GPU
// split, a bad GPU override's error in place, the empty deployments list, reload → tabs restored.
// With --deploy: also a real local two-model deployment made from the Plan tab, chat with each model
// (streamed text grows, Stop works), compare, delete with the confirmation.
// Prints one JSON line: what was found on the page.
import { chromium } from "playwright-core";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [url, out, ...flags] = process.argv.slice(2);
const deploy = flags.includes("--deploy");
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const found = { consoleErrors: [] };

const context = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), "aqua-ui-")), {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: FLAGS,
  viewport: { width: 1400, height: 950 },
});
const page = context.pages()[0] ?? (await context.newPage());
page.on("console", (m) => {
  if (m.type() === "error" && /aqua/i.test(m.text())) found.consoleErrors.push(m.text());
});
page.on("pageerror", (e) => found.consoleErrors.push(String(e)));
const shot = async (name, locator = null) => {
  await page.waitForTimeout(300);
  await (locator ?? page).screenshot({ path: join(out, name) });
};
const sidebar = page.locator("#aqua-lab-sidebar");
const setTheme = async (name) => {
  await page.click("text=Settings");
  await page.hover("text=Theme");
  await page.click(`text=${name}`);
  await page.waitForTimeout(1500);
};

try {
  const base = new URL(url);
  const token = base.searchParams.get("token");
  const lab = `${base.origin}${base.pathname.replace(/\/?$/, "/")}lab`;
  await page.goto(`${lab}?token=${token}`);
  await page.waitForSelector(".jp-SideBar.jp-mod-left", { timeout: 90000 });
  await page.waitForSelector('li[data-id="aqua-lab-sidebar"]', { timeout: 30000 });

  // 1. the sidebar from its icon: the default platform (local), then the bundled one
  await page.click('li[data-id="aqua-lab-sidebar"]');
  await sidebar.locator('xpath=self::*[@data-state="ok"]').waitFor({ timeout: 30000 });
  found.sidebarMs = await page.evaluate(() => {
    const show = performance.getEntriesByName("aqua-sidebar-show").pop();
    const done = performance.getEntriesByName("aqua-sidebar-rendered").pop();
    return show && done ? Math.round(done.startTime - show.startTime) : null;
  });
  found.platforms = await sidebar.locator("select.aqua-platform option").allTextContents();
  found.defaultPlatform = await sidebar.locator("select.aqua-platform").inputValue();
  found.localEmpty = (await sidebar.locator(".aqua-empty").textContent().catch(() => "")) ?? "";
  await shot("sidebar-local.png", sidebar);
  await sidebar.locator("select.aqua-platform").selectOption("bundled");
  await sidebar.locator(".aqua-empty").waitFor({ timeout: 20000 });
  found.bundledEmpty = await sidebar.locator(".aqua-empty").textContent();

  // 2. Plan & deploy on the bundled catalog: two models, their GPU split
  await sidebar.getByRole("button", { name: "Plan", exact: true }).click();
  const plan = page.locator(".aqua-plan-view[data-models]").last();
  await plan.waitFor({ timeout: 30000 });
  found.catalogModels = Number(await plan.getAttribute("data-models"));
  const pick = async (text, id) => {
    await plan.locator('input[type="search"]').fill(text);
    await plan.locator(`.aqua-catalog-row[data-model="${id}"] input[type="checkbox"]`).check();
  };
  await pick("gemma-2b", "google/gemma-2b");
  await pick("phi-2", "microsoft/phi-2");
  await plan.locator('input[type="search"]').fill("");
  await plan.locator('xpath=self::*[@data-plan="ok"]').waitFor({ timeout: 30000 });
  await plan.locator('.aqua-deploy[data-models="2"][data-valid="true"]').waitFor({ timeout: 30000 });
  found.plan = await plan.evaluate((el) => ({
    shapes: [...el.querySelectorAll(".aqua-shape-row")].map((r) => r.dataset.shape),
    chosen: el.querySelector(".aqua-shape-row.aqua-chosen")?.dataset.shape ?? null,
    gpuCells: el.querySelectorAll(".aqua-shape-row .aqua-gpu").length,
    owners: [...new Set([...el.querySelectorAll(".aqua-gpu[data-owner]")].map((c) => c.dataset.owner).filter(Boolean))],
    colours: [...new Set([...el.querySelectorAll(".aqua-gpu[data-owner]:not(.aqua-free)")].map((c) => c.style.background))],
    incompatible: el.querySelectorAll(".aqua-incompatible li").length,
    firstReason: el.querySelector(".aqua-incompatible li")?.textContent ?? "",
    valid: el.querySelector(".aqua-validation")?.textContent ?? "",
  }));
  await shot("plan-bundled.png");
  // a GPU override the shape cannot hold: the server's error appears next to that field
  await plan.locator(".aqua-gpu-count").first().fill("64");
  const fieldError = plan.locator('.aqua-field-error[data-field="models[0].gpu_count"]');
  await fieldError.filter({ hasText: /\S/ }).waitFor({ timeout: 20000 });
  found.overrideError = await fieldError.textContent();
  await plan.locator(".aqua-deploy-form").scrollIntoViewIfNeeded();
  await shot("plan-override-error.png");
  await plan.locator(".aqua-gpu-count").first().fill("1");
  await plan.locator('.aqua-deploy[data-valid="true"]').waitFor({ timeout: 20000 });
  await setTheme("JupyterLab Dark");
  await shot("plan-bundled-dark.png");
  await setTheme("JupyterLab Light");

  // 3. the deployments list of the local platform
  await sidebar.locator("select.aqua-platform").selectOption("local");
  await sidebar.locator(".aqua-empty, .aqua-card").first().waitFor({ timeout: 20000 });
  found.localDeployments = await sidebar.locator(".aqua-card").count();
  // it polls while visible, never while hidden
  let polls = 0;
  const count = (request) => {
    if (new URL(request.url()).pathname.endsWith("/aqua/deployments")) polls++;
  };
  page.on("request", count);
  // a poll comes within the interval (5 s): waited for, not counted over a window barely longer
  await page.waitForRequest((r) => new URL(r.url()).pathname.endsWith("/aqua/deployments"), { timeout: 15000 });
  found.pollsVisible = Math.max(polls, 1);
  await page.click('li[data-id="aqua-lab-sidebar"]'); // collapses the left area
  await page.waitForTimeout(300);
  polls = 0;
  await page.waitForTimeout(6000);
  found.pollsHidden = polls;
  page.off("request", count);
  await page.click('li[data-id="aqua-lab-sidebar"]');
  await sidebar.waitFor({ state: "visible" });

  found.faults = await faults();
  if (deploy) {
    found.deploy = await deployChatCompareDelete();
  }

  // 4. reload: the sidebar and the Plan tab come back
  await page.reload();
  const restored = page.locator('#aqua-lab-plan-bundled[data-plan="ok"]');
  await restored.waitFor({ state: "attached", timeout: 60000 });
  found.restoredPlan = await page.locator("#aqua-lab-plan-bundled").count();
  found.restoredSelection = await restored.locator(".aqua-chip").evaluateAll((chips) => chips.map((c) => c.dataset.model));
  found.restoredChat = await page.locator(".aqua-chat-view").count();
  found.restoredSidebarVisible = await sidebar.isVisible();
  await shot("restored.png");
  console.log(JSON.stringify(found));
} finally {
  await context.close();
}

/** A server answering 5xx, a stream ending with `event: error` for one model, HTML in names and answers. */
async function faults() {
  const result = {};
  const isList = (u) => new URL(u).pathname.endsWith("/aqua/deployments");
  await page.route(isList, (route) =>
    route.fulfill({ status: 503, contentType: "application/json", body: JSON.stringify({ message: "the platform is down" }) }),
  );
  await sidebar.getByRole("button", { name: "Refresh deployments" }).click();
  const error = sidebar.locator(".aqua-status .aqua-error");
  await error.waitFor({ timeout: 20000 });
  result.downMessage = await error.textContent();
  await shot("sidebar-server-down.png", sidebar);
  // it comes back: the panel recovers on its own retry (or "Retry now")
  const longName = `<img src=x onerror="window.__xss=1">${"very-long-model-name-".repeat(8)}`;
  const fake = {
    id: "fake-1", display_name: "<b>html</b> in a name", platform: "local", state: "ACTIVE",
    endpoint: "http://127.0.0.1:1/v1", instance_shape: "LOCAL.CPU.2", deployment_type: "MULTI",
    models: [{ model_id: "m", model_name: longName, gpu_count: 1 }, { model_id: "m", model_name: "second", gpu_count: 1 }],
    model_states: [{ model_name: longName, model_id: "m", state: "ACTIVE" }, { model_name: "second", model_id: "m", state: "ACTIVE" }],
  };
  // the fake answer is routed before the failing one goes (the last routed answers first): no request
  // in between reaches the real server
  await page.route(isList, (route) => route.fulfill({ contentType: "application/json", body: JSON.stringify({ data: [fake] }) }));
  await page.route((u) => new URL(u).pathname.endsWith("/aqua/deployments/fake-1"), (route) =>
    route.fulfill({ contentType: "application/json", body: JSON.stringify(fake) }),
  );
  const chunk = (model, content) => `data: ${JSON.stringify({ model, chunk: { choices: [{ delta: { content } }] } })}\n\n`;
  const sse = [
    chunk(longName, "<img src=x onerror=\"window.__xss=1\"> **bold** "),
    `event: error\ndata: ${JSON.stringify({ model: "second", message: "second model failed: boom" })}\n\n`,
    chunk(longName, "and more"),
    `event: done\ndata: ${JSON.stringify({ model: longName, tokens: 2, ttft_ms: 5, tokens_per_s: 10 })}\n\n`,
    "data: [DONE]\n\n",
  ].join("");
  await page.route((u) => new URL(u).pathname.endsWith("/aqua/deployments/fake-1/compare"), (route) =>
    route.fulfill({ contentType: "text/event-stream", body: sse }),
  );
  // "Retry now", unless the panel's own retry (5 s after the error) came first and the button went with it
  await sidebar.getByRole("button", { name: "Retry now" }).click({ timeout: 3000 }).catch(() => {});
  const card = sidebar.locator('.aqua-card[data-id="fake-1"]');
  await card.waitFor({ timeout: 20000 });
  result.recovered = (await sidebar.locator(".aqua-status .aqua-error").count()) === 0;
  result.cardName = await card.locator(".aqua-card-name").textContent();
  await card.getByRole("button", { name: /^Compare / }).click();
  const chat = page.locator('.aqua-chat-view[data-state="ready"][data-mode="compare"]');
  await chat.waitFor({ timeout: 20000 });
  await chat.getByLabel("Message").fill("hi");
  await chat.getByLabel("Message").press("Enter");
  await page.waitForFunction(() => {
    const view = document.querySelector('.aqua-chat-view[data-mode="compare"]');
    return view && view.dataset.busy === "false" && view.querySelectorAll(".jp-RenderedMarkdown").length >= 1;
  }, null, { timeout: 20000 });
  result.fake = await chat.evaluate((el) => ({
    xss: window.__xss ?? null,
    handlers: el.querySelectorAll("[onerror]").length,
    bold: el.querySelector(".aqua-column .jp-RenderedMarkdown strong")?.textContent ?? null,
    firstAnswer: el.querySelector(".aqua-column .aqua-answer-text")?.textContent ?? "",
    secondError: el.querySelectorAll(".aqua-column")[1]?.querySelector(".aqua-error")?.textContent ?? "",
    columnWidths: [...el.querySelectorAll(".aqua-column")].map((c) => Math.round(c.getBoundingClientRect().width)),
    viewWidth: Math.round(el.getBoundingClientRect().width),
  }));
  await shot("chat-faults.png");
  await page.unrouteAll({ behavior: "wait" });
  await page.locator(".lm-TabBar-tab.jp-mod-current .lm-TabBar-tabCloseIcon").click(); // close the fake chat
  await sidebar.getByRole("button", { name: "Refresh deployments" }).click();
  await sidebar.locator('.aqua-card[data-id="fake-1"]').waitFor({ state: "detached", timeout: 20000 });
  return result;
}

/** A real local two-model deployment (two copies of SmolLM2) made, used and deleted from the UI. */
async function deployChatCompareDelete() {
  const result = {};
  await sidebar.locator("select.aqua-platform").selectOption("local");
  await sidebar.getByRole("button", { name: "New deployment" }).click();
  const plan = page.locator("#aqua-lab-plan-local");
  await plan.locator('xpath=self::*[@data-models]').waitFor({ timeout: 30000 });
  const row = plan.locator('.aqua-catalog-row[data-model="smollm2-135m-instruct"]');
  await row.locator('input[type="checkbox"]').check();
  await row.locator(".aqua-add-copy").click();
  await plan.locator('.aqua-deploy[data-models="2"][data-valid="true"]').waitFor({ timeout: 30000 });
  // the two copies' fields have one label: a re-plan keeps each copy's own served name, in its own row
  const names = plan.getByLabel(/^Served name for /);
  const first = await names.nth(0).inputValue();
  await names.nth(0).fill("smol-a");
  const whatIf = plan.getByLabel("Concurrency", { exact: true });
  for (const value of ["1", ""]) {
    const before = await plan.locator(".aqua-deploy-form").elementHandle();
    await whatIf.fill(value);
    await whatIf.dispatchEvent("change");
    await page.waitForFunction((form) => !form.isConnected, before, { timeout: 30000 });
    await plan.locator('.aqua-deploy[data-models="2"][data-valid="true"]').waitFor({ timeout: 30000 });
  }
  result.copiesKept = [await names.nth(0).inputValue(), await names.nth(1).inputValue()];
  await names.nth(0).fill(first);
  await plan.locator('.aqua-deploy[data-models="2"][data-valid="true"]').waitFor({ timeout: 30000 });
  await plan.getByLabel("Display name").fill("ui <b>sidebar</b>");
  await plan.getByRole("button", { name: "Deploy" }).click();
  const progress = plan.locator(".aqua-progress");
  await progress.locator('xpath=self::*[@data-state="ACTIVE" or @data-state="FAILED"]').waitFor({ timeout: 240000 });
  result.state = await progress.getAttribute("data-state");
  result.modelStates = await progress.locator(".aqua-model-states li").allTextContents();
  await shot("deploy-active.png");
  if (result.state !== "ACTIVE") {
    result.failure = await progress.textContent();
    return result;
  }
  const card = sidebar.locator('.aqua-card[data-state="ACTIVE"]');
  await card.waitFor({ timeout: 30000 });
  result.cardName = await card.locator(".aqua-card-name").textContent();
  result.cardBoldTags = await card.locator("b").count(); // HTML in a display name stays text
  await shot("sidebar-deployment.png", sidebar);
  // logs, then deactivate and activate again
  await card.getByRole("button", { name: /^Logs / }).click();
  const logText = page.locator(".jp-Dialog .aqua-log-text");
  await logText.filter({ hasNotText: "Loading…" }).waitFor({ timeout: 20000 });
  // the first model's log, once drawn for it (not the runtime's, not a sleep)
  const [picked] = await page.locator(".jp-Dialog select").selectOption({ index: 1 });
  result.logPicked = picked;
  await page.locator(`.jp-Dialog .aqua-log-text[data-state="ok"][data-model="${picked}"]`).waitFor({ timeout: 20000 });
  result.modelLog = ((await logText.textContent()) ?? "").slice(0, 4000);
  await shot("logs-dialog.png");
  await page.locator(".jp-Dialog").getByRole("button", { name: "Close" }).click();
  await card.getByRole("button", { name: /^Deactivate / }).click();
  const inactive = sidebar.locator('.aqua-card[data-state="INACTIVE"]');
  await inactive.waitFor({ timeout: 90000 });
  result.deactivated = true;
  await inactive.getByRole("button", { name: /^Activate / }).click();
  await sidebar.locator('.aqua-card[data-state="ACTIVE"]').waitFor({ timeout: 180000 });
  result.reactivated = true;

  await progress.getByRole("button", { name: "Open chat" }).click();
  const chat = page.locator('.aqua-chat-view[data-state="ready"]');
  await chat.waitFor({ timeout: 30000 });
  await chat.getByLabel("Temperature").fill("0");
  await chat.getByLabel("Max tokens").fill("40");
  const models = await chat.locator(".aqua-column").evaluateAll((cols) => cols.map((c) => c.dataset.model));
  result.columns = models;
  // streamed text grows while the answer streams (sampled from the page itself)
  const ask = async (text) => {
    await chat.getByLabel("Message").fill(text);
    const sampling = page.evaluate(async () => {
      const sizes = [];
      const t0 = performance.now();
      while (performance.now() - t0 < 60000) {
        const live = document.querySelector('.aqua-chat-view .aqua-assistant[data-streaming="true"]');
        if (live) sizes.push(Number(live.dataset.chars || 0));
        else if (sizes.length) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      return [...new Set(sizes)];
    });
    await chat.getByLabel("Message").press("Enter");
    const sizes = await sampling;
    await chat.locator('.aqua-assistant[data-streaming="true"]').waitFor({ state: "detached", timeout: 60000 }).catch(() => {});
    return sizes;
  };
  result.answers = [];
  for (const model of models) {
    await chat.getByLabel("Send to model").selectOption(model);
    const sizes = await ask("Name three colours.");
    const column = chat.locator(`.aqua-column[data-model="${model}"]`);
    result.answers.push({
      model,
      sizes: sizes.length,
      text: (await column.locator(".aqua-assistant .aqua-answer-text").last().textContent()) ?? "",
      stats: (await column.locator(".aqua-stats").textContent()) ?? "",
    });
  }
  // Stop (Escape) ends a long answer early
  await chat.getByLabel("Max tokens").fill("1500");
  await chat.getByLabel("Message").fill("Write a very long story about the sea, with many chapters.");
  await chat.getByLabel("Message").press("Enter");
  const live = chat.locator('.aqua-assistant[data-streaming="true"]');
  await live.waitFor({ timeout: 30000 });
  await page.waitForFunction(() => Number(document.querySelector('.aqua-assistant[data-streaming="true"]')?.dataset.chars || 0) > 0, null, { timeout: 30000 });
  await chat.getByLabel("Message").press("Escape");
  await chat.locator('.aqua-assistant[data-streaming="true"]').waitFor({ state: "detached", timeout: 20000 });
  result.stopped = (await chat.locator(".aqua-answer-note").last().textContent()) ?? "";
  // compare: one prompt to both models, side by side with TTFT and tokens/s
  await chat.getByLabel("Max tokens").fill("40");
  await chat.getByLabel("Compare: send to every model").check();
  await chat.getByLabel("Message").fill("Say hello in French.");
  await chat.getByLabel("Message").press("Enter");
  await page.waitForTimeout(300);
  await chat.locator('.aqua-assistant[data-streaming="true"]').first().waitFor({ state: "detached", timeout: 90000 });
  await page.waitForFunction(() => !document.querySelector('.aqua-assistant[data-streaming="true"]'), null, { timeout: 90000 });
  result.compare = await chat.locator(".aqua-column").evaluateAll((cols) =>
    cols.map((c) => ({
      model: c.dataset.model,
      answer: c.querySelector(".aqua-assistant:last-of-type .aqua-answer-text")?.textContent ?? "",
      stats: c.querySelector(".aqua-stats")?.textContent ?? "",
    })),
  );
  await shot("chat-compare.png");
  await setTheme("JupyterLab Dark");
  await shot("chat-compare-dark.png");
  await setTheme("JupyterLab Light");

  // delete with the confirmation dialog
  await card.getByRole("button", { name: /^Delete / }).click();
  await page.locator(".jp-Dialog").waitFor({ timeout: 10000 });
  result.dialog = await page.locator(".jp-Dialog-body").textContent();
  await shot("delete-dialog.png");
  await page.locator(".jp-Dialog .jp-mod-warn").click();
  await sidebar.locator(".aqua-card").waitFor({ state: "detached", timeout: 60000 });
  result.deleted = true;
  // the chat tab would be restored after reload too: close it so the reload check stays simple
  return result;
}

// The sidebar on a CPU machine where a running deployment ('holder', one model on core 0) holds a
// core: the Plan tab speaks of cores and RAM, draws the held core, says "valid" only when a create
// would go ahead, names the held core as the cause when nothing fits, re-plans when the holder is
// deactivated or activated from the deployments list, and pauses/activates it from the plan. The
// holder's card: key snippets, per-model metrics with plots (one poll loop however the window is switched),
// scaling refused as the CLI refuses it.
// On bundled: Deploy disabled with its reason, names that do not wrap mid-word, warnings folded.
//   node sidebar-truth.mjs <lab url with token> <output dir>
// Prints one JSON line: what was found on the page.
import { launch, openSidebar } from "./lab-page.mjs";

const [url, out] = process.argv.slice(2);
const { context, page, found, shot, setTheme, dialogBoth } = await launch(out);
const sidebar = page.locator("#aqua-lab-sidebar");
const plan = page.locator("#aqua-lab-plan-local");
const planText = async () => (await plan.locator(".aqua-plan").textContent()) ?? "";
const both = async (name, locator = null) => {
  await shot(`${name}.png`, locator);
  await setTheme("JupyterLab Dark");
  await shot(`${name}-dark.png`, locator);
  await setTheme("JupyterLab Light");
};
// what a plan shows once it settled after `action` (a re-plan counts when its request was sent)
const replanned = async (action) => {
  const asked = page.waitForRequest((r) => r.url().includes("/aqua/plans") && r.method() === "POST", { timeout: 30000 });
  await action();
  await asked;
  await plan.locator('xpath=self::*[@data-plan="ok"]').waitFor({ timeout: 30000 });
  await page.waitForTimeout(500);
};

try {
  await openSidebar(page, url);
  const card = sidebar.locator('.aqua-card[data-state="ACTIVE"]');
  await card.waitFor({ timeout: 60000 });

  // 0. the holder's card (before it restarts: its router's numbers start again then): disabled buttons say why, the key snippets, metrics, scaling
  const active = sidebar.locator('.aqua-card[data-state="ACTIVE"]');
  await active.waitFor({ timeout: 60000 });
  found.disabled = await active.locator("button:disabled").evaluateAll((bs) =>
    bs.map((b) => ({ label: b.textContent, title: b.title, opacity: Number(getComputedStyle(b).opacity) })),
  );
  await dialogBoth("truth-usage-dialog", async () => {
    await active.getByRole("button", { name: /^Use from code / }).click();
    await page.locator(".jp-Dialog .aqua-snippet").first().waitFor({ timeout: 10000 });
    found.snippets = await page.locator(".jp-Dialog .aqua-snippet").evaluateAll((ps) =>
      Object.fromEntries(ps.map((p) => [p.dataset.snippet, p.textContent])),
    );
  });
  await dialogBoth("truth-metrics-dialog", async () => {
    await active.getByRole("button", { name: /^Metrics / }).click();
    const metrics = page.locator('.jp-Dialog .aqua-metrics[data-state="ok"]');
    await metrics.waitFor({ timeout: 20000 });
    found.metrics = await metrics.evaluate((el) =>
      [...el.querySelectorAll(".aqua-model-metrics")].map((m) => ({
        model: m.dataset.model,
        figures: Object.fromEntries([...m.querySelectorAll(".aqua-figure")].map((f) => [f.dataset.figure, f.querySelector("strong").textContent])),
        plots: [...m.querySelectorAll(".aqua-spark")].map((s) => ({ metric: s.dataset.metric, lines: s.querySelectorAll("polyline").length })),
      })),
    );
  });

  // the window switched three times while loads are in flight (the first switch answers last): the
  // last one picked is drawn and polled by one loop, the figures patched in place
  await active.getByRole("button", { name: /^Metrics / }).click();
  const metricsDialog = page.locator(".jp-Dialog .aqua-metrics");
  await metricsDialog.locator('xpath=self::*[@data-state="ok"]').waitFor({ timeout: 20000 });
  const section = await metricsDialog.locator(".aqua-model-metrics").first().elementHandle();
  const isMetrics = (u) => new URL(u).pathname.endsWith("/metrics");
  await page.route(isMetrics, async (route) => {
    const slow = new URL(route.request().url()).searchParams.get("window") === "5m";
    await new Promise((r) => setTimeout(r, slow ? 2000 : 300));
    await route.continue();
  });
  const asked = [];
  const onRequest = (r) => isMetrics(r.url()) && asked.push(new URL(r.url()).searchParams.get("window"));
  page.on("request", onRequest);
  for (const w of ["5m", "15m", "1h"]) await metricsDialog.getByLabel("Window").selectOption(w);
  await page.waitForTimeout(8000);
  page.off("request", onRequest);
  await page.unroute(isMetrics);
  found.metricsSwitched = {
    asked,
    window: await metricsDialog.getAttribute("data-window"),
    drawn: await metricsDialog.locator("p.aqua-muted").first().textContent(),
    sectionKept: await section.evaluate((el) => el.isConnected),
  };
  await page.locator(".jp-Dialog").getByRole("button", { name: "Close" }).click();
  await page.locator(".jp-Dialog").waitFor({ state: "detached", timeout: 10000 });
  const afterClose = [];
  const onLate = (r) => isMetrics(r.url()) && afterClose.push(r.url());
  page.on("request", onLate);
  await page.waitForTimeout(6000); // more than one refresh period
  page.off("request", onLate);
  found.metricsSwitched.afterClose = afterClose.length;

  await active.getByRole("button", { name: /^Scale / }).click();
  await active.getByLabel(/^Instance count of /).fill("2");
  // the card is drawn again from the next poll (a local model's memory moves every poll; here the answer
  // is changed so that it surely does): the Scale form stays open, with what was typed and the focus
  const typed = await active.getByLabel(/^Instance count of /).elementHandle();
  let polled = 0;
  const redrawCards = async () => {
    const renders = Number(await sidebar.locator(".aqua-deployments").getAttribute("data-render"));
    const mark = ` (polled ${++polled})`;
    await page.route(/\/aqua\/deployments\?/, async (route) => {
      const response = await route.fetch();
      const body = await response.json();
      body.data.forEach((d) => (d.lifecycle_details = `${d.lifecycle_details ?? ""}${mark}`));
      await route.fulfill({ response, json: body });
    });
    await page.waitForFunction(
      ([list, n]) => Number(list.dataset.render) > n,
      [await sidebar.locator(".aqua-deployments").elementHandle(), renders],
      { timeout: 30000 },
    );
    await page.unroute(/\/aqua\/deployments\?/);
  };
  await redrawCards();
  found.scaleKept = {
    redrawn: !(await typed.evaluate((el) => el.isConnected)),
    open: await active.locator("form.aqua-scaling").isVisible(),
    value: await active.getByLabel(/^Instance count of /).inputValue(),
    focused: await active.getByLabel(/^Instance count of /).evaluate((el) => el === document.activeElement),
  };
  await active.getByRole("button", { name: "Apply" }).click();
  await active.locator(".aqua-card-message .aqua-error").waitFor({ timeout: 30000 });
  found.scaleRefused = await active.locator(".aqua-card-message .aqua-error").textContent();
  await both("truth-card-scale-refused", sidebar);
  // closed and opened again, the form shows the deployment's count, not the refused one typed before
  await active.getByRole("button", { name: /^Scale / }).click();
  await active.getByRole("button", { name: /^Scale / }).click();
  found.scaleReopened = await active.getByLabel(/^Instance count of /).inputValue();
  // a keyboard user on a card's buttons keeps the focus through a redraw
  await active.getByRole("button", { name: /^Metrics / }).focus();
  const button = await active.getByRole("button", { name: /^Metrics / }).elementHandle();
  await redrawCards();
  found.buttonFocus = {
    redrawn: !(await button.evaluate((el) => el.isConnected)),
    focused: await page.evaluate(() => document.activeElement?.getAttribute("aria-label") ?? ""),
  };

  // 1. one model while 'holder' holds core 0: cores, the held cell, valid on the free core
  await sidebar.getByRole("button", { name: "New deployment" }).click();
  await plan.locator("xpath=self::*[@data-models]").waitFor({ timeout: 30000 });
  await plan.locator('.aqua-catalog-row[data-model="smollm2-135m-instruct"] input[type="checkbox"]').check();
  await plan.locator('.aqua-deploy[data-valid="true"]').waitFor({ timeout: 30000 });
  found.one = await plan.evaluate((el) => ({
    text: el.querySelector(".aqua-plan").textContent,
    legend: el.querySelector(".aqua-legend")?.textContent ?? "",
    units: el.querySelector(".aqua-shape-row")?.dataset.units ?? "",
    held: [...el.querySelectorAll(".aqua-gpu.aqua-held")].map((c) => c.dataset.heldBy),
    valid: el.querySelector(".aqua-validation")?.textContent ?? "",
    header: [...el.querySelectorAll(".aqua-override th")].map((t) => t.textContent),
    options: [...el.querySelectorAll(".aqua-advanced-grid label")].map((l) => l.textContent),
    deployDisabled: el.querySelector(".aqua-deploy-form button[type=submit]").disabled,
  }));
  await both("truth-plan-held-core");

  // 2. two cores asked while one is free: valid as a request, but a create would be refused
  await plan.locator(".aqua-gpu-count").first().fill("2");
  await plan.locator('.aqua-deploy[data-valid="refused"]').waitFor({ timeout: 30000 });
  found.refused = await plan.evaluate((el) => {
    const button = el.querySelector(".aqua-deploy-form button[type=submit]");
    return {
      validation: el.querySelector(".aqua-validation")?.textContent ?? "",
      ok: el.querySelectorAll(".aqua-validation .aqua-ok").length,
      disabled: button.disabled,
      title: button.title,
      opacity: Number(getComputedStyle(button).opacity),
    };
  });
  await plan.locator(".aqua-deploy-form").scrollIntoViewIfNeeded();
  await both("truth-plan-refused");

  // 3. a second copy: nothing fits what is free, and the headline says why (the held core)
  await plan.locator('.aqua-catalog-row[data-model="smollm2-135m-instruct"] .aqua-add-copy').click();
  await plan.locator('.aqua-headline[data-cause="held"]').waitFor({ timeout: 30000 });
  found.full = {
    headline: await plan.locator(".aqua-headline").textContent(),
    text: await planText(),
    holders: await plan.locator(".aqua-holders li").allTextContents(),
    rows: await plan.locator(".aqua-shape-row").count(),
  };
  await both("truth-plan-full");

  // 4. the holder deactivated from its card: the plan is asked again and the two copies fit
  await replanned(() => card.getByRole("button", { name: /^Deactivate / }).click());
  await plan.locator(".aqua-shape-row").first().waitFor({ timeout: 30000 });
  await plan.locator('.aqua-deploy[data-valid="true"]').waitFor({ timeout: 30000 });
  found.afterDeactivate = {
    text: await planText(),
    headlines: await plan.locator(".aqua-headline").count(),
    valid: await plan.locator(".aqua-validation").textContent(),
  };
  await shot("truth-plan-after-deactivate.png");

  // 5. activated again from its card: the plan names it as the holder again, with a Pause button
  const inactive = sidebar.locator('.aqua-card[data-state="INACTIVE"]');
  await inactive.waitFor({ timeout: 60000 });
  await replanned(() => inactive.getByRole("button", { name: /^Activate / }).click());
  await plan.locator('.aqua-headline[data-cause="held"]').waitFor({ timeout: 90000 });
  found.afterActivate = { headline: await plan.locator(".aqua-headline").textContent() };

  // 6. Pause from the plan: the plan fits again, and offers to activate it back
  await plan.getByRole("button", { name: "Pause holder" }).click();
  await plan.locator('.aqua-deploy[data-valid="true"]').waitFor({ timeout: 60000 });
  found.paused = {
    headlines: await plan.locator(".aqua-headline").count(),
    offers: await plan.locator(".aqua-holders li").allTextContents(),
  };
  await shot("truth-plan-paused.png");
  await plan.getByRole("button", { name: "Activate holder" }).click();
  await plan.locator('.aqua-headline[data-cause="held"]').waitFor({ timeout: 90000 });
  found.reactivated = true;

  // 8. bundled: Deploy disabled with its reason, names whole, config warnings once and folded
  await sidebar.locator("select.aqua-platform").selectOption("bundled");
  await sidebar.getByRole("button", { name: "Plan", exact: true }).click();
  const bundled = page.locator("#aqua-lab-plan-bundled");
  await bundled.locator("xpath=self::*[@data-models]").waitFor({ timeout: 30000 });
  await bundled.locator('input[type="search"]').fill("codellama");
  found.wrapped = await bundled.locator(".aqua-catalog-row .aqua-model-name").evaluateAll((spans) =>
    spans.map((s) => {
      // a name may wrap after "/" or "-", never inside a run of letters and digits ("C odeLlama"):
      // such a run broken across lines has boxes on two lines
      const text = [...s.childNodes].filter((n) => n.nodeType === 3);
      return text.every((node) =>
        [...node.textContent.matchAll(/[A-Za-z0-9_.]+/g)].every((m) => {
          const range = document.createRange();
          range.setStart(node, m.index);
          range.setEnd(node, m.index + m[0].length);
          return new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size <= 1;
        }),
      );
    }),
  );
  await shot("truth-bundled-names.png", bundled.locator(".aqua-plan-left"));
  const pick = async (text, id) => {
    await bundled.locator('input[type="search"]').fill(text);
    await bundled.locator(`.aqua-catalog-row[data-model="${id}"] input[type="checkbox"]`).check();
  };
  await pick("phi-4", "microsoft/phi-4");
  await pick("gemma-2b", "google/gemma-2b");
  await bundled.locator('input[type="search"]').fill("");
  await bundled.locator('.aqua-deploy[data-models="2"][data-valid="true"]').waitFor({ timeout: 30000 });
  found.bundled = await bundled.evaluate((el) => {
    const button = el.querySelector(".aqua-deploy-form button[type=submit]");
    return {
      disabled: button.disabled,
      title: button.title,
      opacity: Number(getComputedStyle(button).opacity),
      options: el.querySelectorAll(".aqua-advanced-grid label").length,
      folded: [...el.querySelectorAll(".aqua-plan details.aqua-warnings")].map((d) => d.open),
      looseWarnings: el.querySelectorAll(".aqua-plan > .aqua-warning").length,
    };
  });
  await both("truth-bundled-plan");
  console.log(JSON.stringify(found));
} finally {
  await context.close();
}

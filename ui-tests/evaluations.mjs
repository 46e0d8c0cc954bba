// Drives the Evaluations tab of aqua_lab's JupyterLab sidebar in headless Chromium against a live
// local two-model deployment: bad datasets are refused in place, an evaluation of the bundled sample
// runs with per-model progress, then the comparison table, the charts and the reports; a second one
// is canceled; both are deleted.  Screenshots in light and dark.
//   node evaluations.mjs <lab url with token> <output dir>
// Prints one JSON line: what was found on the page.
import { launch, openSidebar } from "./lab-page.mjs";

const [url, out] = process.argv.slice(2);
const { context, page, found, shot, setTheme } = await launch(out);
const sidebar = page.locator("#aqua-lab-sidebar");
const view = page.locator(".aqua-eval-view").first();
const fieldError = (field) => view.locator(`.aqua-field-error[data-field="${field}"]`);

try {
  await openSidebar(page, url);
  const card = sidebar.locator('.aqua-card[data-state="ACTIVE"]');
  await card.waitFor({ timeout: 60000 });

  // 1. from the deployment's card to the form, on that deployment with both models checked
  await card.getByRole("button", { name: /^Evaluate / }).click();
  await view.locator(".aqua-eval-form").waitFor({ timeout: 30000 });
  found.formModels = await view.locator(".aqua-eval-models input[data-model]").evaluateAll((boxes) =>
    boxes.map((b) => ({ model: b.dataset.model, checked: b.checked })),
  );
  found.metricChoices = await view.locator(".aqua-eval-metrics label").allTextContents();
  found.emptyList = (await view.locator(".aqua-eval-list .aqua-empty").textContent()) ?? "";

  // 2. bad input is refused where the user acted, naming the field (and the line) and the fix
  await view.getByLabel("Dataset path").fill("/no/such/dataset.jsonl");
  await view.getByRole("button", { name: "Start evaluation" }).click();
  await fieldError("dataset_path").filter({ hasText: /\S/ }).waitFor({ timeout: 20000 });
  found.pathError = await fieldError("dataset_path").textContent();
  const bad = '{"prompt": "a", "completion": "b"}\nnot json\n{"completion": "c"}\n';
  await view.getByLabel("Dataset file").setInputFiles({ name: "bad.jsonl", mimeType: "application/json", buffer: Buffer.from(bad) });
  await fieldError("dataset_path").filter({ hasText: "line 3" }).waitFor({ timeout: 20000 });
  found.uploadError = await fieldError("dataset_path").textContent();
  await shot("evaluations-dataset-error.png");
  const good = ['{"prompt": "2+2?", "completion": "4", "category": "math"}', '{"prompt": "Sky colour?", "completion": "blue"}'].join("\n");
  await view.getByLabel("Dataset file").setInputFiles({ name: "mine.jsonl", mimeType: "application/json", buffer: Buffer.from(good) });
  await view.locator(".aqua-eval-dataset .aqua-ok").waitFor({ timeout: 20000 });
  found.uploadOk = await view.locator(".aqua-eval-dataset").evaluate((el) => el.lastElementChild.textContent);
  // a subset of two of two is "all": uncheck one and the request names that model only; uncheck both: refused
  const boxes = view.locator(".aqua-eval-models input[data-model]");
  await boxes.nth(0).uncheck();
  await boxes.nth(1).uncheck();
  await view.getByRole("button", { name: "Start evaluation" }).click();
  found.noModelError = await fieldError("models").textContent();
  await boxes.nth(0).check();
  await boxes.nth(1).check();

  // 3. the bundled sample, small answers: progress per model while it runs
  await view.locator('input[type="radio"][value="sample"]').check();
  await view.getByLabel("Max tokens").fill("8");
  await view.getByLabel("Evaluation name").fill("sidebar <b>eval</b>");
  await shot("evaluations-form.png");
  const sampling = page.evaluate(async () => {
    const seen = {};
    const t0 = performance.now();
    while (performance.now() - t0 < 240000) {
      const detail = document.querySelector(".aqua-eval-detail");
      for (const row of document.querySelectorAll(".aqua-eval-progress-row")) {
        (seen[row.dataset.model] ??= new Set()).add(`${row.dataset.done}/${row.dataset.total}`);
      }
      if (detail && ["SUCCEEDED", "FAILED", "CANCELED"].includes(detail.dataset.state)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    return Object.fromEntries(Object.entries(seen).map(([k, v]) => [k, [...v]]));
  });
  await view.getByRole("button", { name: "Start evaluation" }).click();
  const detail = view.locator(".aqua-eval-detail");
  await detail.waitFor({ timeout: 30000 });
  found.evaluationId = await detail.getAttribute("data-id");
  await view.locator(".aqua-eval-progress-row").first().waitFor({ timeout: 30000 });
  await page.waitForFunction(() => [...document.querySelectorAll(".aqua-eval-progress-row")].some((r) => Number(r.dataset.done) > 0), null, { timeout: 120000 }).catch(() => {});
  found.progressText = await view.locator(".aqua-eval-progress-row").allTextContents();
  await shot("evaluations-progress.png");
  await detail.locator('xpath=self::*[@data-state="SUCCEEDED" or @data-state="FAILED" or @data-state="CANCELED"]').waitFor({ timeout: 240000 });
  found.progressSeen = await sampling;
  found.state = await detail.getAttribute("data-state");
  found.details = await detail.locator('[data-role="details"]').textContent();
  if (found.state === "SUCCEEDED") {
    await view.locator(".aqua-eval-table").waitFor({ timeout: 30000 });
    found.table = await view.locator(".aqua-eval-table").evaluate((t) => ({
      headers: [...t.querySelectorAll("thead th")].map((th) => th.textContent),
      rows: [...t.querySelectorAll("tbody tr")].map((tr) => ({
        model: tr.dataset.model,
        name: tr.querySelector("th").textContent.trim(),
        cells: [...tr.querySelectorAll("td")].map((td) => td.textContent),
      })),
    }));
    found.charts = await view.locator(".aqua-eval-chart").evaluateAll((figs) =>
      figs.map((f) => ({ key: f.dataset.key, bars: f.querySelectorAll(".aqua-bar-fill").length, values: [...f.querySelectorAll(".aqua-chart-value")].map((v) => v.textContent) })),
    );
    found.listItem = await view.locator(`.aqua-eval-item[data-id="${found.evaluationId}"]`).textContent();
    found.boldTags = await view.locator(".aqua-eval-detail b, .aqua-eval-list b").count();
    await shot("evaluations-comparison.png");
    await setTheme("JupyterLab Dark");
    await shot("evaluations-comparison-dark.png");
    await setTheme("JupyterLab Light");
    // the new-tab link is a plain URL of the server (the session cookie authenticates it)
    const href = await view.getByRole("link", { name: /^Comparison report in a new browser tab/ }).getAttribute("href");
    found.reportLink = await page.evaluate(async (u) => {
      const r = await fetch(u);
      return { status: r.status, type: r.headers.get("content-type"), csp: r.headers.get("content-security-policy"), href: u };
    }, href);
    await view.getByRole("button", { name: "Open Comparison report" }).click();
    const frame = page.locator(".aqua-report-frame").last();
    await frame.waitFor({ timeout: 20000 });
    found.reportSandbox = await frame.getAttribute("sandbox");
    found.reportText = ((await page.frameLocator(".aqua-report-frame").last().locator("body").textContent()) ?? "").slice(0, 3000);
    await shot("evaluations-report.png");
    await page.locator(".lm-TabBar-tab.jp-mod-current .lm-TabBar-tabCloseIcon").click(); // close the report tab

    // 4. reload: the tab comes back on the same evaluation
    await page.reload();
    await page.locator(`.aqua-eval-detail[data-id="${found.evaluationId}"][data-state="SUCCEEDED"]`).waitFor({ timeout: 60000 });
    await view.locator(".aqua-eval-table").waitFor({ timeout: 30000 });
    found.restored = true;
  }

  // 5. a second evaluation, canceled while it runs
  await view.getByRole("button", { name: "New evaluation" }).click();
  await view.locator(".aqua-eval-form").waitFor({ timeout: 30000 });
  await view.getByLabel("Max tokens").fill("200");
  await view.getByLabel("Evaluation name").fill("to cancel");
  await view.getByRole("button", { name: "Start evaluation" }).click();
  const second = view.locator(".aqua-eval-detail");
  await second.locator('xpath=self::*[@data-state="IN_PROGRESS"]').waitFor({ timeout: 60000 });
  await second.getByRole("button", { name: /^Cancel / }).click();
  await second.locator('xpath=self::*[@data-state="CANCELED"]').waitFor({ timeout: 60000 });
  found.canceled = await second.getAttribute("data-state");

  // 6. delete both with the confirmation
  found.deleted = [];
  for (let i = 0; i < 2; i++) {
    await view.locator(".aqua-eval-item").first().click();
    const shown = view.locator(".aqua-eval-detail");
    await shown.waitFor({ timeout: 20000 });
    await shown.getByRole("button", { name: /^Delete / }).click();
    await page.locator(".jp-Dialog").waitFor({ timeout: 10000 });
    found.dialog = await page.locator(".jp-Dialog-body").textContent();
    await page.locator(".jp-Dialog .jp-mod-warn").click();
    await view.locator(".aqua-eval-form").waitFor({ timeout: 20000 });
    found.deleted.push(true);
  }
  await view.locator(".aqua-eval-list .aqua-empty").waitFor({ timeout: 20000 });
  found.finalList = await view.locator(".aqua-eval-list").textContent();
  console.log(JSON.stringify(found));
} catch (error) {
  await shot("evaluations-failure.png").catch(() => {});
  console.log(JSON.stringify({ ...found, error: String(error) }));
  throw error;
} finally {
  await context.close();
}

// Drives the Evaluations tab of aqua_lab's JupyterLab sidebar on a JupyterLab whose platform is OCI
// (the emulator, whose evaluation job runs score for real) with a two-model deployment ACTIVE:
// the OCI form (job shape, storage, experiment, an oci:// report path asked for), a local folder
// refused under the report path, then the evaluation of both models with each model's job-run state
// (no made-up percentage), the comparison table once both SUCCEEDED, and the reports opened.
// Screenshots in light and dark.
//   node evaluations-oci.mjs <lab url with token> <output dir> <report path> <dataset path>
// Prints one JSON line: what was found on the page.
import { launch, openSidebar } from "./lab-page.mjs";

const [url, out, reportPath, datasetPath] = process.argv.slice(2);
const { context, page, found, shot, setTheme } = await launch(out);
const sidebar = page.locator("#aqua-lab-sidebar");
const view = page.locator(".aqua-eval-view").first();
const fieldError = (field) => view.locator(`.aqua-field-error[data-field="${field}"]`);

try {
  await openSidebar(page, url);
  const card = sidebar.locator('.aqua-card[data-state="ACTIVE"]');
  await card.waitFor({ timeout: 60000 });

  // 1. the OCI form: the fields only OCI takes, its defaults, the report path asked for in the oci:// form
  await card.getByRole("button", { name: /^Evaluate / }).click();
  await view.locator(".aqua-eval-form").waitFor({ timeout: 30000 });
  found.title = await page.locator(".lm-TabBar-tab.jp-mod-current").textContent();
  found.formModels = await view.locator(".aqua-eval-models input[data-model]").evaluateAll((boxes) =>
    boxes.map((b) => ({ model: b.dataset.model, checked: b.checked })),
  );
  found.shape = await view.getByLabel("Job shape").inputValue();
  found.shapes = await view.getByLabel("Job shape").locator("option").allTextContents();
  found.storage = await view.getByLabel("Block storage (GB)").inputValue();
  found.experimentField = await view.getByLabel("Experiment name").count();
  found.reportValue = await view.getByLabel("Report folder").inputValue();
  found.reportPlaceholder = await view.getByLabel("Report folder").getAttribute("placeholder");
  found.datasetPlaceholder = await view.getByLabel("Dataset path").getAttribute("placeholder");
  found.datasetNote = (await view.locator('[data-role="dataset-note"]').textContent()) ?? "";
  await shot("evaluations-oci-form.png");

  // 2. a folder of this machine is no report path on OCI: refused under that field
  await view.getByLabel("Report folder").fill("/tmp/reports");
  await view.getByRole("button", { name: "Start evaluation" }).click();
  await fieldError("report_path").filter({ hasText: /\S/ }).waitFor({ timeout: 20000 });
  found.reportError = await fieldError("report_path").textContent();
  await shot("evaluations-oci-error.png");

  // 3. both models on a dataset in Object Storage: each model's state while its job runs
  await view.getByLabel("Report folder").fill(reportPath);
  await view.getByLabel("Dataset path").fill(datasetPath);
  await view.getByLabel("Experiment name").fill("sidebar experiments");
  await view.getByLabel("Max tokens").fill("8");
  await view.getByLabel("Evaluation name").fill("oci <b>eval</b>");
  const sampling = page.evaluate(async () => {
    const seen = {};
    let indeterminate = 0;
    let counts = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < 180000) {
      const detail = document.querySelector(".aqua-eval-detail");
      for (const row of document.querySelectorAll(".aqua-eval-progress-row")) {
        (seen[row.dataset.model] ??= new Set()).add(row.dataset.state);
        indeterminate += row.querySelectorAll(".aqua-indeterminate").length;
        counts += /\d+\s*\/\s*\d+|%/.test(row.textContent) ? 1 : 0;
      }
      if (detail && ["SUCCEEDED", "FAILED", "CANCELED"].includes(detail.dataset.state)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    return { seen: Object.fromEntries(Object.entries(seen).map(([k, v]) => [k, [...v]])), indeterminate, counts };
  });
  await view.getByRole("button", { name: "Start evaluation" }).click();
  const detail = view.locator(".aqua-eval-detail");
  await detail.waitFor({ timeout: 30000 });
  found.evaluationId = await detail.getAttribute("data-id");
  await view.locator(".aqua-eval-progress-row .aqua-indeterminate").first().waitFor({ timeout: 30000 }).catch(() => {});
  found.progressText = await view.locator(".aqua-eval-progress-row").allTextContents();
  await shot("evaluations-oci-progress.png");
  await detail.locator('xpath=self::*[@data-state="SUCCEEDED" or @data-state="FAILED" or @data-state="CANCELED"]').waitFor({ timeout: 180000 });
  found.progress = await sampling;
  found.state = await detail.getAttribute("data-state");
  found.details = await detail.locator('[data-role="details"]').textContent();
  found.ociMeta = (await detail.locator('[data-role="oci"]').textContent()) ?? "";
  found.finalRows = await view.locator(".aqua-eval-progress-row").evaluateAll((rows) => rows.map((r) => ({ model: r.dataset.model, state: r.dataset.state, bars: r.querySelectorAll(".aqua-indeterminate").length })));
  if (found.state === "SUCCEEDED") {
    await view.locator(".aqua-eval-table").waitFor({ timeout: 30000 });
    found.table = await view.locator(".aqua-eval-table").evaluate((t) => ({
      headers: [...t.querySelectorAll("thead th")].map((th) => th.textContent),
      rows: [...t.querySelectorAll("tbody tr")].map((tr) => ({
        model: tr.dataset.model,
        cells: [...tr.querySelectorAll("td")].map((td) => td.textContent),
      })),
    }));
    found.charts = await view.locator(".aqua-eval-chart").evaluateAll((figs) => figs.map((f) => f.querySelectorAll(".aqua-bar-fill").length));
    found.boldTags = await view.locator(".aqua-eval-detail b, .aqua-eval-list b").count();
    await shot("evaluations-oci-comparison.png");
    await setTheme("JupyterLab Dark");
    await view.locator(".aqua-eval-table").waitFor({ timeout: 30000 });
    found.tableAfterTheme = true;
    await shot("evaluations-oci-comparison-dark.png");
    await setTheme("JupyterLab Light");
    // the reports: the comparison built from both members' report.json, and one model's own report.html
    await view.getByRole("button", { name: "Open Comparison report" }).click();
    await page.locator(".aqua-report-frame").last().waitFor({ timeout: 30000 });
    found.comparisonText = ((await page.frameLocator(".aqua-report-frame").last().locator("body").textContent()) ?? "").slice(0, 4000);
    await shot("evaluations-oci-report.png");
    await page.locator(".lm-TabBar-tab.jp-mod-current .lm-TabBar-tabCloseIcon").click();
    const model = found.table.rows[1].model;
    await view.getByRole("button", { name: `Open ${model} report` }).click();
    await page.locator(".aqua-report-frame").last().waitFor({ timeout: 30000 });
    found.modelReportText = ((await page.frameLocator(".aqua-report-frame").last().locator("body").textContent()) ?? "").slice(0, 4000);
    await page.locator(".lm-TabBar-tab.jp-mod-current .lm-TabBar-tabCloseIcon").click();
    found.listItem = await view.locator(`.aqua-eval-item[data-id="${found.evaluationId}"]`).textContent();
  }
  console.log(JSON.stringify(found));
} catch (error) {
  await shot("evaluations-oci-failure.png").catch(() => {});
  console.log(JSON.stringify({ ...found, error: String(error) }));
  throw error;
} finally {
  await context.close();
}

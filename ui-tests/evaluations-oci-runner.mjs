// Drives the Evaluations tab's runner choice on a JupyterLab whose platform is OCI (the emulator) with a
// two-model deployment ACTIVE: "Run on" offers AQUA's job (its fields shown, the judge metrics disabled
// with the reason) or this notebook (the job's fields hidden, the judge metrics enabled); the notebook
// runner evaluates both models with the pairwise judge, its progress counted in rows like a local run.
// Screenshots in light and dark.
//   node evaluations-oci-runner.mjs <lab url with token> <output dir> <report folder on the server>
// Prints one JSON line: what was found on the page.
import { finishedState, launch, openSidebar, report, startEvaluation } from "./lab-page.mjs";

const [url, out, reportPath] = process.argv.slice(2);
const browser = await launch(out);
const { page, found, shot, setTheme } = browser;
const sidebar = page.locator("#aqua-lab-sidebar");
const view = page.locator(".aqua-eval-view").first();
const runner = view.getByRole("radiogroup", { name: "Run on" });
const judge = view.locator('input[data-metric="pairwise_judge"]');

const formState = async () => ({
  runner: await runner.locator('input[type="radio"]:checked').getAttribute("value"),
  judgeDisabled: await judge.isDisabled(),
  judgeScoreDisabled: await view.locator('input[data-metric="judge_score"]').isDisabled(),
  judgeTitle: (await judge.locator("xpath=..").getAttribute("title")) ?? "",
  note: (await runner.locator('[data-role="judge-note"]').textContent()) ?? "",
  jobShapeVisible: await view.getByLabel("Job shape").isVisible(),
  logGroupVisible: await view.getByLabel("Log group OCID").isVisible(),
  datasetNoteVisible: await view.locator('[data-role="dataset-note"]').isVisible(),
  report: await view.getByLabel("Report folder").inputValue(),
  reportPlaceholder: await view.getByLabel("Report folder").getAttribute("placeholder"),
  datasetPlaceholder: await view.getByLabel("Dataset path").getAttribute("placeholder"),
});

// both themes of what is on the page now
const shots = async (name) => {
  await shot(`${name}.png`);
  await setTheme("JupyterLab Dark");
  await shot(`${name}-dark.png`);
  await setTheme("JupyterLab Light");
};

await report(browser, "evaluations-oci-runner-failure.png", async () => {
  await openSidebar(page, url);
  const card = sidebar.locator('.aqua-card[data-state="ACTIVE"]');
  await card.waitFor({ timeout: 60000 });
  await card.getByRole("button", { name: /^Evaluate / }).click();
  await view.locator(".aqua-eval-form").waitFor({ timeout: 30000 });

  // 1. AQUA's job by default: its fields, the judge metrics disabled with the reason
  found.runnerLabels = (await runner.locator("label").allTextContents()).map((t) => t.trim());
  found.job = await formState();
  await shots("evaluations-oci-runner-job");

  // 2. this notebook: the job's fields hidden, the judge metrics enabled, a folder here for the reports
  await runner.getByLabel(/this notebook/).check();
  found.notebook = await formState();
  await judge.check();
  await view.locator('input[data-metric="bertscore"]').uncheck(); // rouge and the judge: quick
  await view.getByLabel("Report folder").fill(reportPath);
  await view.getByLabel("Max tokens").fill("8");
  await view.getByLabel("Evaluation name").fill("judged in the notebook");
  await shots("evaluations-oci-runner-notebook");

  // 3. started: rows counted per model, as a local evaluation's
  const sampling = page.evaluate(async () => {
    const done = {};
    let indeterminate = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < 180000) {
      const detail = document.querySelector(".aqua-eval-detail");
      for (const row of document.querySelectorAll(".aqua-eval-progress-row")) {
        (done[row.dataset.model] ??= new Set()).add(`${row.dataset.done}/${row.dataset.total}`);
        indeterminate += row.querySelectorAll(".aqua-indeterminate").length;
      }
      if (detail && ["SUCCEEDED", "FAILED", "CANCELED"].includes(detail.dataset.state)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    return { done: Object.fromEntries(Object.entries(done).map(([k, v]) => [k, [...v]])), indeterminate };
  });
  const { detail, id } = await startEvaluation(view);
  found.evaluationId = id;
  await view.locator('.aqua-eval-progress-row[data-done]:not([data-done="0"])').first().waitFor({ timeout: 60000 }).catch(() => {});
  found.progressText = await view.locator(".aqua-eval-progress-row").allTextContents();
  await shot("evaluations-oci-runner-progress.png");
  found.state = await finishedState(detail);
  found.progress = await sampling;
  found.details = await detail.locator('[data-role="details"]').textContent();
  found.meta = await detail.locator(".aqua-card-meta").allTextContents();
  if (found.state === "SUCCEEDED") {
    await view.locator(".aqua-eval-table").waitFor({ timeout: 30000 });
    found.headers = await view.locator(".aqua-eval-table thead th").allTextContents();
    await shots("evaluations-oci-runner-done");
  }
});

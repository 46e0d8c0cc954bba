// Drives the Evaluations form's Judge section on a local two-model deployment: hidden until a judge
// metric is ticked; the rubric prefilled with the server's default and its byte count live against the
// 8 KiB limit; the server's refusals (a rubric too long, an endpoint not reachable, one refusing the key)
// under their fields; then the second model as the judge with an edited rubric, the self-preference
// warning the create answered with, and the evaluation finished.  Screenshots in light and dark.
//   node evaluations-judge.mjs <lab url with token> <output dir> <dataset path> <unreachable url> <401 url>
// Prints one JSON line: what was found on the page.
import { finishedState, launch, openSidebar, report, startEvaluation } from "./lab-page.mjs";

const [url, out, datasetPath, deadUrl, refusingUrl] = process.argv.slice(2);
const browser = await launch(out);
const { page, found, shotBoth: shots } = browser;
const sidebar = page.locator("#aqua-lab-sidebar");
const view = page.locator(".aqua-eval-view").first();
const section = view.locator(".aqua-eval-judge");
const rubric = view.getByLabel("Rubric", { exact: true });
const slot = (field) => view.locator(`.aqua-field-error[data-field="${field}"]`);

// Start, and wait until the server's refusal is shown under `field`; the refusal's text.
const refused = async (field) => {
  await view.getByRole("button", { name: "Start evaluation" }).click();
  await slot(field).locator("div").first().waitFor({ timeout: 30000 });
  return slot(field).textContent();
};

// what each create sent as the judge metric's args
found.sent = [];
page.on("request", (r) => {
  if (r.method() === "POST" && /\/aqua\/evaluations(\?|$)/.test(r.url())) {
    found.sent.push((JSON.parse(r.postData()).metrics ?? []).find((m) => m.name === "pairwise_judge")?.args ?? null);
  }
});

await report(browser, "evaluations-judge-failure.png", async () => {
  await openSidebar(page, url);
  await sidebar.locator('.aqua-card[data-state="ACTIVE"]').nth(1).waitFor({ timeout: 60000 });
  const card = sidebar.locator('.aqua-card[data-state="ACTIVE"]', { hasText: "judged" });
  await card.getByRole("button", { name: /^Evaluate / }).click();
  await view.locator(".aqua-eval-form").waitFor({ timeout: 30000 });

  found.hiddenBefore = !(await section.isVisible());
  await view.locator('input[data-metric="pairwise_judge"]').check();
  found.shownAfter = await section.isVisible();
  found.hereOptions = await view.getByLabel("Judge model of this deployment").locator("option").allTextContents();
  found.otherOptions = await view.getByLabel("Judge model of another deployment").locator("option").allTextContents();
  found.keyType = await view.getByLabel("Judge API key variable").getAttribute("type");
  found.defaultRubric = await rubric.inputValue();
  found.countDefault = await view.locator('[data-role="rubric-count"]').textContent();

  await view.getByLabel("Dataset path").fill(datasetPath);
  await view.locator('input[data-metric="bleu"]').uncheck();
  await view.getByLabel("Max tokens").fill("8");
  await view.getByLabel("Evaluation name").fill("judged by smol-b");

  // the server's refusals, each under its field; a model of the other deployment meanwhile
  await view.getByLabel("Judge model of another deployment").selectOption({ index: 0 });
  found.otherChoice = await view.locator('input[type="radio"][aria-label="a model of another deployment"]').isChecked();
  await rubric.fill("x".repeat(9000));
  found.countTooLong = await view.locator('[data-role="rubric-count"]').textContent();
  found.rubricError = await refused("rubric");
  await shots("evaluations-judge-rubric-too-long", view.locator(".aqua-eval-form"));
  await rubric.fill(found.defaultRubric);
  await view.getByLabel("Judge URL").fill(deadUrl);
  await view.getByLabel("Judge endpoint model").fill("gpt-judge");
  found.urlError = await refused("judge.url");
  await view.getByLabel("Judge URL").fill(refusingUrl);
  found.keyError = await refused("judge.api_key_env");
  found.urlErrorAfterFix = await slot("judge.url").textContent();

  // the second model judges, with an edited rubric
  await view.getByLabel("Judge model of this deployment").selectOption({ index: 1 });
  found.judgeChoice = await view.locator('input[type="radio"][aria-label="a model of this deployment"]').isChecked();
  await rubric.fill(`${found.defaultRubric} Prefer the shorter answer when both are correct.`);
  found.countEdited = await view.locator('[data-role="rubric-count"]').textContent();
  await shots("evaluations-judge-form", view.locator(".aqua-eval-form"));

  const { detail, id } = await startEvaluation(view);
  found.evaluationId = id;
  const warning = detail.locator('[data-role="warning"]');
  await warning.waitFor({ timeout: 30000 });
  found.warning = await warning.textContent();
  found.state = await finishedState(detail, 400000);
  found.warningAtEnd = (await warning.isVisible()) ? await warning.textContent() : "";
  if (found.state === "SUCCEEDED") {
    await view.locator(".aqua-eval-table").waitFor({ timeout: 30000 });
    found.headers = await view.locator(".aqua-eval-table thead th").allTextContents();
    await shots("evaluations-judge-done", view.locator(".aqua-eval-detail"));
  } else {
    found.failed = await detail.textContent();
  }
});

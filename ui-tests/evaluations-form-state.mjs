// Drives what the Evaluations tab keeps while the user works in it, on two local stand-in deployments:
// a half-filled form is only focused by its own deployment's Evaluate and kept unless the user agrees to
// replace it for another; of two quick Evaluate clicks the later wins, and of two quick uploads the file
// chosen later, whichever answer comes last (answers held back with page.route); a refused Cancel stays
// said when the evaluation then finishes and is drawn again; the focus on a list item survives the polls.
//   node evaluations-form-state.mjs <lab url with token> <output dir> <deployment id> <other id> <dataset path>
// Prints one JSON line: what was found on the page.
import { finishedState, launch, openSidebar, report, startEvaluation } from "./lab-page.mjs";

const [url, out, first, second, datasetPath] = process.argv.slice(2);
const browser = await launch(out);
const { page, found } = browser;
const sidebar = page.locator("#aqua-lab-sidebar");
const view = page.locator(".aqua-eval-view").first();
const form = view.locator(".aqua-eval-form");
const name = view.getByLabel("Evaluation name");
const dialog = page.locator(".jp-Dialog");
const evaluate = (id) => sidebar.locator(`.aqua-card[data-id="${id}"]`).getByRole("button", { name: /^Evaluate / });
const formDeployment = () => view.getByLabel("Deployment", { exact: true }).inputValue();
const focusedLabel = () => page.evaluate(() => document.activeElement?.getAttribute("aria-label") ?? document.activeElement?.tagName);
const later = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const rows = (n, tag) => Array.from({ length: n }, (_, i) => JSON.stringify({ prompt: `${tag} ${i}?`, completion: "unknown" })).join("\n");

// what each create sent as its dataset
found.sentDatasets = [];
page.on("request", (r) => {
  if (r.method() === "POST" && /\/aqua\/evaluations(\?|$)/.test(r.url())) found.sentDatasets.push(JSON.parse(r.postData()).dataset_path);
});

await report(browser, "evaluations-form-state-failure.png", async () => {
  await openSidebar(page, url);
  await evaluate(second).waitFor({ timeout: 60000 });
  await evaluate(first).click();
  await form.waitFor({ timeout: 30000 });
  found.opened = await formDeployment();

  // 1. a half-filled form: its own deployment's Evaluate focuses it; another's asks before replacing it
  await name.fill("half filled");
  await view.locator('input[data-metric="bleu"]').uncheck();
  await evaluate(first).click();
  await page.waitForTimeout(1000);
  found.same = { name: await name.inputValue(), dialogs: await dialog.count(), focused: await focusedLabel() };
  await evaluate(second).click();
  await dialog.waitFor({ timeout: 10000 });
  found.dialogTitle = await dialog.locator(".jp-Dialog-header").textContent();
  await dialog.getByRole("button", { name: "Keep my form" }).click();
  await dialog.waitFor({ state: "detached", timeout: 10000 });
  found.kept = {
    name: await name.inputValue(),
    deployment: await formDeployment(),
    bleu: await view.locator('input[data-metric="bleu"]').isChecked(),
  };
  await evaluate(second).click();
  await dialog.waitFor({ timeout: 10000 });
  await dialog.getByRole("button", { name: "Replace" }).click();
  await page.waitForFunction((id) => document.querySelector('.aqua-eval-form select[aria-label="Deployment"]')?.value === id, second, { timeout: 20000 });
  found.replaced = { name: await name.inputValue(), deployment: await formDeployment() };

  // 2. two quick Evaluate clicks (the form untouched: no question): the first one's deployments come last
  let holding = true;
  await page.route(/\/aqua\/deployments(\?|$)/, async (route) => {
    if (holding) await later(3000);
    await route.continue();
  });
  await evaluate(first).click();
  await view.getByText("Loading deployments…").waitFor({ timeout: 10000 });
  holding = false;
  await evaluate(second).click();
  await later(4500); // the first click's answer has come meanwhile
  await form.waitFor({ timeout: 20000 });
  found.twoClicks = await formDeployment();
  await page.unroute(/\/aqua\/deployments(\?|$)/);

  // 4. two files chosen quickly: the first one's check answers last; the second is shown and evaluated
  let checks = 0;
  await page.route(/\/aqua\/evaluations\/datasets(\?|$)/, async (route) => {
    if (checks++ === 0) await later(3000);
    await route.continue();
  });
  const file = view.getByLabel("Dataset file");
  await file.setInputFiles({ name: "first.jsonl", mimeType: "application/json", buffer: Buffer.from(rows(2, "first")) });
  await file.setInputFiles({ name: "second.jsonl", mimeType: "application/json", buffer: Buffer.from(rows(3, "second")) });
  await later(4500);
  found.uploadNote = await view.locator(".aqua-eval-dataset .aqua-ok").textContent();
  await page.unroute(/\/aqua\/evaluations\/datasets(\?|$)/);
  const uploaded = await startEvaluation(view);
  found.uploadedState = await finishedState(uploaded.detail, 60000);

  // 3 and 5. a longer run: the server refuses the Cancel (routed: the platform is down), the keyboard rests
  // on its list item; the evaluation finishes by itself, the list and the view are drawn again
  await view.getByRole("button", { name: "New evaluation" }).click();
  await form.waitFor({ timeout: 30000 });
  await name.fill("long run");
  await view.getByLabel("Dataset path").fill(datasetPath);
  const { detail, id } = await startEvaluation(view);
  await detail.locator('xpath=self::*[@data-state="IN_PROGRESS"]').waitFor({ timeout: 30000 });
  await page.route(/\/cancel(\?|$)/, (route) =>
    route.fulfill({ status: 503, contentType: "application/json", body: JSON.stringify({ message: "the platform is down: try again in a minute" }) }),
  );
  await detail.getByRole("button", { name: /^Cancel / }).click();
  await detail.locator(".aqua-card-message .aqua-error").waitFor({ timeout: 10000 });
  found.refusal = await detail.locator(".aqua-card-message").textContent();
  const item = view.locator(`.aqua-eval-item[data-id="${id}"]`);
  await item.focus();
  found.focusedWhile = await item.getAttribute("data-state");
  found.longState = await finishedState(detail, 120000);
  await view.locator(`.aqua-eval-item[data-id="${id}"][data-state="${found.longState}"]`).waitFor({ timeout: 20000 });
  await view.locator(".aqua-eval-detail .aqua-eval-result > *").first().waitFor({ timeout: 20000 }); // drawn again, finished
  found.refusalAfter = await view.locator(".aqua-eval-detail .aqua-card-message").textContent();
  found.focusAfter = await page.evaluate(() => document.activeElement?.dataset?.id ?? document.activeElement?.tagName);
  found.longId = id;
});

// Issue 26 items 7-9 in the sidebar, on a JupyterLab whose platform is the OCI emulator: a deployment
// updated once has two model-group versions; its card's Versions opens the history, "Roll back to this
// version" asks to confirm, then shows the LIVE update and why, and the table marks v1 live; a stale offer
// (another front moved it meanwhile) is refused beside its button.  The deploy form offers HETEROGENEOUS,
// whose container fields show, the server's refusal under the image field.
//   node sidebar-versions.mjs <lab url with token> <output dir> <deployment name> <model OCID> <model OCID>
// Prints one JSON line: what was found on the page.
import { launch, openSidebar, report } from "./lab-page.mjs";

const [url, out, name, firstModel, secondModel] = process.argv.slice(2);
const browser = await launch(out);
const { page, found, shot, setTheme, dialogBoth } = browser;
const sidebar = page.locator("#aqua-lab-sidebar");
const dialog = page.locator(".jp-Dialog");
const view = dialog.locator(".aqua-versions");
const rows = () =>
  view.locator("tbody tr").evaluateAll((trs) => trs.map((tr) => ({ version: tr.dataset.version, live: tr.dataset.live })));
const open = async () => {
  await sidebar.getByRole("button", { name: `Versions ${name}` }).click();
  await view.locator('xpath=self::*[@data-state="ok" or @data-state="error"]').waitFor({ timeout: 30000 });
};

await report(browser, "versions-failure.png", async () => {
  const { token } = await openSidebar(page, url);
  await sidebar.locator(`.aqua-card[data-state="ACTIVE"]`).waitFor({ timeout: 60000 });
  found.platform = await sidebar.locator("select.aqua-platform").inputValue();

  await open();
  found.before = await rows();
  found.offered = await view.getByRole("button", { name: /^Roll back to version / }).evaluateAll((bs) => bs.map((b) => b.getAttribute("aria-label")));
  await page.locator(".jp-Dialog").getByRole("button", { name: "Close" }).click();
  await dialog.waitFor({ state: "detached", timeout: 10000 });
  await dialogBoth("versions-history", open);

  // roll back: a confirm first, then the server's answer (update type, reason) and the table read again
  await open();
  await view.getByRole("button", { name: "Roll back to version 1" }).click();
  found.confirm = await view.locator('tr[data-version="1"] .aqua-version-action').textContent();
  await view.getByRole("button", { name: "Roll back", exact: true }).click();
  await view.locator(".aqua-version-answer .aqua-ok").waitFor({ timeout: 30000 });
  await view.locator('tr[data-version="1"][data-live="true"]').waitFor({ timeout: 30000 });
  found.answer = await view.locator(".aqua-version-answer").textContent();
  found.after = await rows();
  await shot("versions-rolled-back.png", page.locator(".jp-Dialog-content"));
  await dialog.getByRole("button", { name: "Close" }).click();
  await dialog.waitFor({ state: "detached", timeout: 10000 });

  // a stale offer: the view is open when another front moves the deployment to v2 itself
  await setTheme("JupyterLab Dark");
  await open();
  const id = await sidebar.locator(".aqua-card").first().getAttribute("data-id");
  found.otherFront = await page.evaluate(
    async ({ id, token }) => {
      const r = await fetch(`/aqua/deployments/${encodeURIComponent(id)}/rollback?platform=oci`, {
        method: "POST",
        headers: { Authorization: `token ${token}`, "Content-Type": "application/json" },
        body: JSON.stringify({ version: 2 }),
      });
      return r.status;
    },
    { id, token }
  );
  await view.getByRole("button", { name: "Roll back to version 2" }).click();
  await view.getByRole("button", { name: "Roll back", exact: true }).click();
  const refusal = view.locator('tr[data-version="2"] .aqua-field-error');
  await refusal.filter({ hasText: /./ }).waitFor({ timeout: 30000 });
  found.refused = await refusal.textContent();
  found.refusedRows = await rows(); // read again: what the other front did shows
  await shot("versions-refused-dark.png", page.locator(".jp-Dialog-content"));
  await dialog.getByRole("button", { name: "Close" }).click();
  await dialog.waitFor({ state: "detached", timeout: 10000 });
  await setTheme("JupyterLab Light");

  // the deploy form on OCI: HETEROGENEOUS shows the container's fields; no image is refused under that field
  await sidebar.getByRole("button", { name: "New deployment" }).click();
  const plan = page.locator("#aqua-lab-plan-oci");
  for (const model of [firstModel, secondModel]) {
    await plan.locator(`.aqua-catalog-row[data-model="${model}"] input[type="checkbox"]`).check({ timeout: 60000 });
  }
  // the form of both models, not the one-model form drawn while the second was being planned
  await plan.locator('.aqua-deploy[data-models="2"][data-valid="true"]').waitFor({ timeout: 60000 });
  found.containerHidden = await plan.locator("fieldset.aqua-container-fields").isHidden();
  await plan.getByLabel("Deployment type").selectOption("HETEROGENEOUS");
  found.containerFields = await plan.locator(".aqua-container-fields label").evaluateAll((ls) => ls.map((l) => l.firstChild.textContent));
  // a digest that is no sha256 is refused by validation, under the digest field
  await plan.getByLabel("Image digest (sha256:…)").fill("sha256:zz");
  const digestError = plan.locator('.aqua-field-error[data-field="image_digest"]');
  await digestError.filter({ hasText: /./ }).waitFor({ timeout: 30000 });
  found.digestError = await digestError.textContent();
  // a re-plan (a what-if changed) draws the form again: what the user typed stays, and is checked again
  const redrawn = async (change) => {
    const before = await plan.locator(".aqua-deploy-form").elementHandle();
    await change();
    await page.waitForFunction((form) => !form.isConnected, before, { timeout: 30000 });
    await plan.locator('.aqua-deploy[data-valid="false"]').waitFor({ timeout: 30000 });
  };
  const concurrency = plan.getByLabel("Concurrency", { exact: true });
  const served = plan.getByLabel(/^Served name for /).first();
  await served.fill("my-first");
  await redrawn(() => concurrency.fill("2").then(() => concurrency.dispatchEvent("change")));
  found.digestKept = await plan.getByLabel("Image digest (sha256:…)").inputValue();
  found.servedKept = await served.inputValue();
  found.digestErrorKept = await digestError.textContent();
  await redrawn(() => concurrency.fill("").then(() => concurrency.dispatchEvent("change")));
  await plan.getByLabel("Image digest (sha256:…)").fill("");
  // no image: validation or the create refuses it (whichever checks it), under the image field either way
  const imageError = plan.locator('.aqua-container-fields .aqua-field-error[data-field="container_image_uri"]');
  const refusedNow = imageError.filter({ hasText: /./ });
  await Promise.race([refusedNow.waitFor({ timeout: 30000 }), plan.locator('.aqua-deploy[data-valid="true"]').waitFor({ timeout: 30000 })]);
  found.refusedBy = (await refusedNow.count()) ? "validation" : "create";
  if (found.refusedBy === "create") {
    await plan.locator(".aqua-deploy-form").getByRole("button", { name: "Deploy", exact: true }).click();
    await refusedNow.waitFor({ timeout: 30000 });
    found.progress = await plan.locator(".aqua-progress").textContent();
  }
  found.imageError = await imageError.textContent();
  found.imageInvalid = await plan.getByLabel("Container image URI").getAttribute("aria-invalid");
  const form = plan.locator(".aqua-deploy-form");
  await shot("deploy-byoc.png", form);
  await setTheme("JupyterLab Dark");
  await shot("deploy-byoc-dark.png", form);
  await setTheme("JupyterLab Light");
  await plan.getByLabel("Container image URI").fill("iad.ocir.io/emunamespace/triton:24.01");
  await page.waitForFunction((e) => e.textContent === "", await imageError.elementHandle(), { timeout: 30000 });
  found.fixed = await imageError.textContent();
  found.fixedInvalid = await plan.getByLabel("Container image URI").getAttribute("aria-invalid");

  // a CPU flex shape: sized in the what-if row it is planned; its deploy form asks OCPUs and memory
  found.flexBefore = await plan.locator('.aqua-shape-row[data-shape="VM.Standard.E4.Flex"]').count();
  await plan.getByLabel("Deployment type").selectOption("MULTI");
  await plan.getByLabel("OCPUs (CPU flex shapes)").fill("8");
  await plan.getByLabel("Memory GB (CPU flex shapes)").fill("128");
  await plan.getByLabel("Memory GB (CPU flex shapes)").dispatchEvent("change");
  const flexRow = plan.locator('.aqua-shape-row[data-shape="VM.Standard.E4.Flex"]');
  await flexRow.waitFor({ timeout: 60000 });
  await shot("plan-flex-row.png", flexRow);
  await flexRow.click();
  await plan.locator('.aqua-deploy[data-flex="true"][data-valid="true"]').waitFor({ timeout: 30000 });
  const flexBox = plan.locator("fieldset.aqua-flex-fields");
  found.flexFields = await flexBox.locator("label").evaluateAll((ls) => ls.map((l) => [l.firstChild.textContent, l.querySelector("input").value]));
  await flexBox.getByLabel("OCPUs", { exact: true }).fill("2");
  const ocpuError = flexBox.locator('.aqua-field-error[data-field="ocpus"]');
  await ocpuError.filter({ hasText: /./ }).waitFor({ timeout: 30000 });
  found.ocpuError = await ocpuError.textContent();
  await shot("deploy-flex.png", form);
  await setTheme("JupyterLab Dark");
  await shot("deploy-flex-dark.png", form);
  await setTheme("JupyterLab Light");
});

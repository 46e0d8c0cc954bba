// OCI chosen from the sidebar (issue 25 item 7): on a JupyterLab started with no OCI settings, the
// oci platform's error offers "OCI settings"; the form is filled with the emulator's config file,
// compartment and endpoint, Check names a wrong compartment, then passes; Save lists the
// compartment's deployment; its Scale form sets an autoscaling policy (a bad threshold marked first).
//   node sidebar-oci.mjs <lab url with token> <output dir> <config file> <compartment> <endpoint> <service compartment>
// Prints one JSON line: what was found on the page.
import { launch, openSidebar } from "./lab-page.mjs";

const [url, out, configFile, compartment, endpoint, serviceCompartment] = process.argv.slice(2);
const { context, page, found, shot, setTheme } = await launch(out);
const sidebar = page.locator("#aqua-lab-sidebar");
const form = sidebar.locator("form.aqua-oci-settings");
const result = form.locator(".aqua-oci-result");
const both = async (name, locator) => {
  await shot(`${name}.png`, locator);
  await setTheme("JupyterLab Dark");
  await shot(`${name}-dark.png`, locator);
  await setTheme("JupyterLab Light");
};
const answered = async () => {
  await result.locator("[data-ok]").waitFor({ timeout: 30000 });
  return { ok: await result.locator("[data-ok]").getAttribute("data-ok"), text: await result.textContent() };
};

try {
  await openSidebar(page, url);
  await sidebar.locator("select.aqua-platform").selectOption("oci");
  await sidebar.locator(".aqua-status .aqua-error").waitFor({ timeout: 30000 });
  found.unconfigured = await sidebar.locator(".aqua-status").textContent();
  // the saved settings are read as the form opens: held back here, so that the user types before they land
  const slowLoad = async (route) => {
    if (route.request().method() !== "GET") {
      return route.fallback();
    }
    await new Promise((r) => setTimeout(r, 1500));
    return route.fallback();
  };
  await page.route(/\/aqua\/platforms\/oci\/settings/, slowLoad);
  await sidebar.locator(".aqua-status").getByRole("button", { name: "OCI settings" }).click();
  await form.waitFor({ state: "visible", timeout: 10000 });
  found.loadingState = await form.getAttribute("data-state");
  await form.getByLabel("Config file").fill(configFile);
  await form.getByLabel("Compartment OCID").fill(`${compartment}x`);
  await form.getByLabel("Service models compartment").fill(serviceCompartment);
  await form.getByLabel("Endpoint (emulator)").fill(endpoint);
  await form.locator('xpath=self::*[@data-state="ready"]').waitFor({ timeout: 30000 });
  await page.unroute(/\/aqua\/platforms\/oci\/settings/, slowLoad);
  found.typedKept = await form.getByLabel("Config file").inputValue();
  await form.getByRole("button", { name: "Check" }).click();
  found.wrongCompartment = await answered();
  found.invalid = await form.locator('input[aria-invalid="true"]').evaluateAll((is) => is.map((i) => i.name));
  await both("oci-settings-wrong", sidebar);
  await form.getByLabel("Compartment OCID").fill(compartment);
  await form.getByRole("button", { name: "Save" }).click();
  await result.locator('[data-ok="true"]').waitFor({ timeout: 30000 });
  found.saved = await answered();
  found.path = await form.locator(".aqua-oci-path").textContent();
  const card = sidebar.locator('.aqua-card[data-state="ACTIVE"]');
  await card.waitFor({ timeout: 30000 });
  found.cards = await sidebar.locator(".aqua-card .aqua-card-name").allTextContents();
  await both("oci-settings-saved", sidebar);
  await form.getByRole("button", { name: "Close" }).click();

  // the card's Scale form: autoscaling on OCI, its field errors marked in place
  await card.getByRole("button", { name: /^Scale / }).click();
  const scaling = card.locator("form.aqua-scaling");
  await scaling.locator("select").first().selectOption("auto");
  found.autoscalingShown = await scaling.locator('[data-role="autoscaling"]').isVisible();
  await scaling.getByLabel(/^Maximum instances /).fill("3");
  await scaling.getByLabel(/^Scale-in threshold /).fill("80");
  await scaling.getByRole("button", { name: "Apply" }).click();
  await card.locator(".aqua-card-message .aqua-error").waitFor({ timeout: 30000 });
  found.refused = await card.locator(".aqua-card-message").textContent();
  found.refusedMarked = await scaling.locator('input[aria-invalid="true"]').evaluateAll((is) => is.map((i) => i.getAttribute("aria-label")));
  await both("oci-autoscaling-refused", card);
  await scaling.getByLabel(/^Scale-in threshold /).fill("20");
  const put = page.waitForResponse((r) => r.url().includes("/scaling") && r.request().method() === "PUT", { timeout: 30000 });
  await scaling.getByRole("button", { name: "Apply" }).click();
  found.applied = (await put).status();
  found.policy = (await (await put).json()).scaling?.policy?.policyType ?? null;
} catch (error) {
  found.failure = String(error);
  await shot("oci-failure.png");
} finally {
  await context.close();
}
console.log(JSON.stringify(found));

// The Plan tab on a (faked) two-GPU machine with three models, two of them sharing a GPU: the stacked
// bar per GPU, in the light and the dark theme.
//   node gpu-sharing.mjs <lab url with token> <output dir>
// Prints one JSON line: what was found on the page.
import { launch, openSidebar } from "./lab-page.mjs";

const [url, out] = process.argv.slice(2);
const { context, page, found, shot, setTheme } = await launch(out);
const sidebar = page.locator("#aqua-lab-sidebar");
try {
  await openSidebar(page, url);
  await sidebar.locator('xpath=self::*[@data-state="ok"]').waitFor({ timeout: 30000 });
  await sidebar.getByRole("button", { name: "Plan", exact: true }).click();
  const plan = page.locator(".aqua-plan-view[data-models]").last();
  await plan.waitFor({ timeout: 30000 });
  const row = plan.locator(".aqua-catalog-row").first();
  await row.locator('input[type="checkbox"]').check();
  await row.locator(".aqua-add-copy").click();
  await row.locator(".aqua-add-copy").click();
  await plan.locator(".aqua-gpu-stack").first().waitFor({ timeout: 30000 });
  await plan.locator('xpath=self::*[@data-plan="ok"]').waitFor({ timeout: 30000 });
  found.stacks = await plan.evaluate((el) =>
    [...el.querySelectorAll(".aqua-gpu-stack")].map((s) => ({
      gpu: s.dataset.gpu,
      parts: [...s.querySelectorAll(".aqua-gpu-part")].map((p) => p.getAttribute("title")),
      widths: [...s.querySelectorAll(".aqua-gpu-part")].map((p) => Math.round(p.getBoundingClientRect().width)),
      free: s.querySelector(".aqua-gpu-free")?.textContent ?? "",
    }))
  );
  found.sharing = await plan.locator(".aqua-sharing").allTextContents();
  found.cells = await plan.locator(".aqua-shape-row .aqua-gpu:not(.aqua-held)").count();
  const shape = plan.locator(".aqua-shape-row").first();
  await shape.scrollIntoViewIfNeeded();
  await shot("gpu-sharing.png", shape);
  await setTheme("JupyterLab Dark");
  await shot("gpu-sharing-dark.png", shape);
} finally {
  console.log(JSON.stringify(found));
  await context.close();
}

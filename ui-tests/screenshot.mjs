// Opens a notebook in JupyterLab (headless Chromium), runs all cells, waits until aqua_lab's
// GPU-split and chat widgets have rendered, and saves screenshots of them.
//   node screenshot.mjs <lab url with token> <notebook path> <output dir>
// Prints one JSON line: what was found on the page.
import { chromium } from "playwright-core";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [url, notebook, out] = process.argv.slice(2);
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

const context = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), "aqua-ui-")), {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: FLAGS,
  viewport: { width: 1280, height: 1000 },
});
const page = context.pages()[0] ?? (await context.newPage());
try {
  const base = new URL(url);
  const token = base.searchParams.get("token");
  await page.goto(`${base.origin}${base.pathname.replace(/\/?$/, "/")}lab/tree/${notebook}?token=${token}`);
  await page.waitForSelector(".jp-Notebook .jp-Cell", { timeout: 90000 });
  await page.waitForSelector(".jp-Notebook-ExecutionIndicator[data-status='idle'], .jp-Notebook", { timeout: 60000 });
  await page.waitForTimeout(2000); // the kernel attaches
  await page.click("text=Run", { timeout: 15000 });
  await page.click("text=Run All Cells", { timeout: 15000 });
  await page.waitForSelector(".aqua-gpu", { timeout: 120000 });
  await page.waitForSelector(".aqua-turn.aqua-assistant", { timeout: 180000 });
  await page.waitForTimeout(1500);
  const split = page.locator(".widget-vbox:has(.aqua-shape)").first();
  await split.scrollIntoViewIfNeeded();
  await split.screenshot({ path: join(out, "gpu-split.png") });
  const chat = page.locator(".widget-vbox:has(.aqua-turn)").first();
  await chat.scrollIntoViewIfNeeded();
  await chat.screenshot({ path: join(out, "chat.png") });
  await page.waitForSelector(".aqua-held", { timeout: 60000 });
  const apps = page.locator(".jp-OutputArea-output:has(.widget-tab)");
  const shoot = async (locator, name) => {
    await page.setViewportSize({ width: 1280, height: 2800 }); // a whole app fits: no cut-off shots
    await locator.scrollIntoViewIfNeeded();
    await page.waitForTimeout(300);
    await locator.screenshot({ path: join(out, name) });
  };
  await shoot(apps.nth(0), "app.png");
  await shoot(apps.nth(1), "bundled-app.png");
  await page.setViewportSize({ width: 1280, height: 1000 });
  await split.scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(out, "lab.png"), fullPage: false });
  // the same widgets in the dark theme (they take their text colours from Jupyter's CSS variables)
  await page.click("text=Settings");
  await page.hover("text=Theme");
  await page.click("text=JupyterLab Dark");
  await page.waitForTimeout(2000);
  await page.screenshot({ path: join(out, "lab-dark.png"), fullPage: false });
  await shoot(split, "split-dark.png");
  await shoot(apps.nth(0), "app-dark.png");
  await shoot(apps.nth(1), "bundled-app-dark.png");
  const found = await page.evaluate(() => ({
    held: document.querySelectorAll(".aqua-held").length,
    heldBy: [...new Set([...document.querySelectorAll(".aqua-held")].map((e) => e.dataset.heldBy))],
    copies: [...document.querySelectorAll("label")].filter((l) => l.textContent.trim() === "copies").length,
    served: document.body.innerText,
    primary: [...document.querySelectorAll("select")]
      .map((s) => s.selectedOptions[0]?.textContent?.replace(/\u00a0/g, " ").trim())
      .find((t) => t === "no primary") ?? "",
    gpuCells: document.querySelectorAll(".aqua-gpu").length,
    owners: [...new Set([...document.querySelectorAll(".aqua-gpu")].map((e) => e.dataset.owner))],
    shapes: document.querySelectorAll(".aqua-shape").length,
    turns: document.querySelectorAll(".aqua-turn").length,
    assistant: document.querySelector(".aqua-turn.aqua-assistant")?.textContent ?? "",
  }));
  console.log(JSON.stringify(found));
} finally {
  await context.close();
}

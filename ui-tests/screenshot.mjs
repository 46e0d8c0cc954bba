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
  await page.screenshot({ path: join(out, "lab.png"), fullPage: false });
  // the same widgets in the dark theme (they take their text colours from Jupyter's CSS variables)
  await page.click("text=Settings");
  await page.hover("text=Theme");
  await page.click("text=JupyterLab Dark");
  await page.waitForTimeout(2000);
  await page.screenshot({ path: join(out, "lab-dark.png"), fullPage: false });
  const found = await page.evaluate(() => ({
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

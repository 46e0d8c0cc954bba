// A live deployment with one model asleep (issue 28): its card shows the SLEEPING badge and when it
// fell asleep, and the resident model's memory bars (planned weights / KV / other next to measured
// weights / KV / compute / rest of RSS, with the planner's error). Shots in light and dark.
//   node residency.mjs <lab url with token> <output dir>
// Prints one JSON line: what was found on the page.
import { launch, openSidebar } from "./lab-page.mjs";

const [url, out] = process.argv.slice(2);
const { context, page, found, shot, setTheme } = await launch(out);
const sidebar = page.locator("#aqua-lab-sidebar");

try {
  await openSidebar(page, url);
  const card = sidebar.locator('.aqua-card[data-state="ACTIVE"]');
  await card.waitFor({ timeout: 60000 });
  await card.locator('li[data-model="sleepy"] .aqua-state-SLEEPING').waitFor({ timeout: 60000 });
  await card.locator('li[data-model="awake"] [data-role="memory"]').waitFor({ timeout: 30000 });
  found.models = await card.locator(".aqua-model-states > li").evaluateAll((lis) =>
    lis.map((li) => ({
      model: li.dataset.model,
      badge: li.querySelector(".aqua-badge")?.textContent ?? "",
      badgeBorder: getComputedStyle(li.querySelector(".aqua-badge")).borderStyle,
      residency: li.querySelector('[data-role="residency"]')?.textContent ?? "",
      text: li.textContent,
      rows: [...li.querySelectorAll(".aqua-mem-row")].map((r) => ({
        label: r.querySelector(".aqua-mem-label")?.textContent ?? "",
        total: r.querySelector(".aqua-mem-total")?.textContent ?? "",
        height: r.getBoundingClientRect().height,
        barWidth: r.querySelector(".aqua-mem-bar").getBoundingClientRect().width,
        segments: [...r.querySelectorAll(".aqua-mem-bar > span")].map((s) => ({
          kind: s.className.replace("aqua-mem-", ""),
          width: s.getBoundingClientRect().width,
          title: s.title,
          color: getComputedStyle(s).backgroundColor,
        })),
      })),
      legend: li.querySelector(".aqua-mem-legend")?.textContent ?? "",
    })),
  );
  found.cardWidth = (await card.boundingBox())?.width ?? 0;
  await shot("residency-card.png", card);
  await setTheme("JupyterLab Dark");
  await shot("residency-card-dark.png", card);
  found.darkColors = await card.locator('li[data-model="awake"] .aqua-mem-bar > span').evaluateAll((ss) =>
    ss.map((s) => getComputedStyle(s).backgroundColor),
  );
  await setTheme("JupyterLab Light");
} finally {
  console.log(JSON.stringify(found));
  await context.close();
}

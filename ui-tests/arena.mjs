// Blind votes in the sidebar's Chat & compare on a live two-model local deployment, then its
// leaderboard: three prompts answered as A and B with the models hidden, a vote on each (A, B, tie),
// the names read before and after each vote; the leaderboard opened from the deployment's card with
// the time from the click to the drawn view, and the source switched while an answer is held back;
// screenshots in light and dark.
//   node arena.mjs <lab url with token> <output dir>
// Prints one JSON line: what was found on the page.
import { launch, openSidebar } from "./lab-page.mjs";

const [url, out] = process.argv.slice(2);
const { context, page, found, shot, setTheme, dialogBoth } = await launch(out);
const sidebar = page.locator("#aqua-lab-sidebar");


try {
  await openSidebar(page, url);
  const card = sidebar.locator('.aqua-card[data-state="ACTIVE"]');
  await card.waitFor({ timeout: 60000 });
  const models = await card.locator(".aqua-model-states li").evaluateAll((ls) => ls.map((l) => l.dataset.model));

  // 1. Compare, switched to blind: three prompts, a vote on each, the names only after it
  await card.getByRole("button", { name: /^Compare / }).click();
  const view = page.locator('.aqua-chat-view[data-state="ready"]');
  await view.waitFor({ timeout: 30000 });
  await view.getByLabel("Max tokens", { exact: true }).fill("24");
  await view.getByRole("checkbox", { name: /^Blind vote/ }).check();
  found.mode = await view.getAttribute("data-mode");
  found.columnsHidden = await view.locator(".aqua-columns").first().isHidden();
  found.rounds = [];
  const prompts = ["Name a colour.", "Say hello in French.", "What is 2 + 2?"];
  const verdicts = ["a", "b", "tie"];
  for (let i = 0; i < prompts.length; i++) {
    await view.getByLabel("Message", { exact: true }).fill(prompts[i]);
    await view.getByRole("button", { name: "Send", exact: true }).click();
    const round = view.locator(".aqua-blind-round").nth(i);
    await round.locator('xpath=self::*[@data-state="voting" or @data-state="error"]').waitFor({ timeout: 120000 });
    const before = {
      state: await round.getAttribute("data-state"),
      headers: await round.locator(".aqua-column > header").allTextContents(),
      text: (await round.textContent()) ?? "",
      answers: await round.locator(".aqua-answer-text").allTextContents(),
    };
    if (i === 0) await shot("arena-blind-before-vote.png", view);
    await round.locator(`button[data-verdict="${verdicts[i]}"]`).click();
    await round.locator('xpath=self::*[@data-state="voted"]').waitFor({ timeout: 20000 });
    found.rounds.push({
      before,
      namedBefore: models.filter((m) => before.text.includes(m)),
      revealed: await round.locator(".aqua-revealed").allTextContents(),
      message: (await round.locator(".aqua-card-message").textContent()) ?? "",
      disabled: await round.locator(".aqua-blind-verdicts button").evaluateAll((bs) => bs.every((b) => b.disabled)),
    });
  }
  await shot("arena-blind-voted.png", view);
  await setTheme("JupyterLab Dark");
  await shot("arena-blind-voted-dark.png", view);
  await setTheme("JupyterLab Light");

  // 2. the leaderboard from the deployment's card: time from the click to the drawn view
  const board = page.locator('.jp-Dialog .aqua-leaderboard');
  found.renderMs = [];
  await dialogBoth("arena-leaderboard", async () => {
    if (!(await sidebar.isVisible())) await page.click('li[data-id="aqua-lab-sidebar"]');
    await card.getByRole("button", { name: /^Leaderboard / }).click();
    await page.locator('.jp-Dialog .aqua-leaderboard[data-state="ok"]').waitFor({ timeout: 20000 });
    found.renderMs.push(Number(await board.getAttribute("data-render-ms")));
    found.leaderboard = await board.evaluate((el) => ({
      summary: el.querySelector("p.aqua-muted")?.textContent ?? "",
      strengths: [...el.querySelectorAll(".aqua-lb-row")].map((g) => ({
        model: g.dataset.model,
        interval: [...g.querySelectorAll("line[data-low]")].map((l) => [Number(l.dataset.low), Number(l.dataset.high)]),
        point: g.querySelectorAll("circle").length,
      })),
      table: [...el.querySelectorAll(".aqua-lb-table tbody tr")].map((r) => [...r.children].map((c) => c.textContent)),
      heat: [...el.querySelectorAll(".aqua-heatmap td.aqua-heat")].map((c) => ({
        rate: c.dataset.rate ?? null,
        n: Number(c.dataset.n),
        background: getComputedStyle(c).backgroundColor,
      })),
      notes: [...el.querySelectorAll(".aqua-lb-notes li")].map((l) => l.textContent),
    }));
  });

  // 3. the source switched while the first source's answer is held back: the source picked last is drawn
  const isVotesBoard = (u) => new URL(u).pathname.endsWith("/leaderboard") && new URL(u).searchParams.get("source") === "votes";
  await page.route(isVotesBoard, async (route) => {
    await new Promise((r) => setTimeout(r, 1500));
    await route.continue();
  });
  if (!(await sidebar.isVisible())) await page.click('li[data-id="aqua-lab-sidebar"]');
  await card.getByRole("button", { name: /^Leaderboard / }).click();
  await board.getByLabel("Source").selectOption("judge");
  await page.locator('.jp-Dialog .aqua-leaderboard[data-state="ok"][data-source="judge"]').waitFor({ timeout: 20000 });
  await page.waitForTimeout(2500); // the held-back answer has come back by now
  found.switchedSource = {
    source: await board.getAttribute("data-source"),
    picked: await board.getByLabel("Source").inputValue(),
    summary: (await board.locator("p.aqua-muted").first().textContent()) ?? "",
  };
  await page.unroute(isVotesBoard);
  await page.locator(".jp-Dialog").getByRole("button", { name: "Close" }).click();
} catch (error) {
  found.failure = String(error?.stack ?? error);
  await shot("arena-failure.png").catch(() => undefined);
} finally {
  await context.close();
}
console.log(JSON.stringify(found));

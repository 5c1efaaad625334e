// The web app in a real browser (Debian's chromium, driven by Playwright) against the whole
// local stack (`infra/local/web-test` starts it): a researcher exports a folder through the
// page, a blinded pair of checkers review it file by file (a flagged cell visible and
// explained), approve, and the researcher downloads it, verified. Researcher content that
// tries to run (names, cells, SVG, Markdown, comments, bidi) stays inert. axe-core checks
// every main page. Screenshots go to target/web-screenshots/.
//
// Also prints the time to the first row of a 100,000-row table against a 100-row one in the
// same run, and the bytes the page transferred.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const API = process.env.AIRLOCK_API_BASE;
if (!API) throw new Error("AIRLOCK_API_BASE is not set: run this through infra/local/web-test");
const APP = `${API}/api/app/index.html`;
const WS = "ws-gates";
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
const SHOTS = path.join(ROOT, "target/web-screenshots");
const AXE = fs.readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

let browser;
const pwned = []; // anything researcher content managed to run

before(async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
});

after(async () => {
  await browser?.close();
});

/** A person in their own browser context (own sessionStorage), signed in. */
async function person(user, roles) {
  // The local stack's TLS (storage, sign-in) is signed by its own CA.
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1360, height: 900 } });
  const page = await context.newPage();
  page.on("dialog", async (d) => {
    pwned.push(`${user}: a ${d.type()} dialog: ${d.message()}`);
    await d.dismiss();
  });
  page.on("pageerror", (e) => pwned.push(`${user}: page error ${e.message}`));
  // The address people type: it leads to the page.
  await page.goto(`${API}/api/app/`);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByLabel("User id").fill(user);
  for (const role of roles) await page.getByLabel(role).check();
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Requests", level: 1 }).waitFor();
  return { context, page };
}

async function checkAccessibility(page, name) {
  await page.evaluate(AXE);
  const result = await page.evaluate(async () =>
    // eslint-disable-next-line no-undef
    axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21aa", "wcag22aa"] } }),
  );
  const serious = result.violations.filter((v) => ["serious", "critical"].includes(v.impact));
  assert.deepEqual(
    serious.map((v) => `${v.id}: ${v.help} (${v.nodes.length}) ${v.nodes.slice(0, 2).map((n) => n.target.join(" ")).join(", ")}`),
    [],
    `${name}: serious or critical accessibility violations`,
  );
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

/** Reloads the request's page until it shows `status`. */
async function waitForStatus(page, status, seconds = 120) {
  const words = status.replace(/_/g, " ");
  for (let i = 0; i < seconds; i++) {
    await page.reload();
    const badge = page.locator("dl.facts .badge").first();
    await badge.waitFor();
    const now = (await badge.textContent()).trim();
    if (now === words) return;
    if (["rejected", "failed", "blocked by scan", "cancelled"].includes(now)) {
      throw new Error(`expected ${words}, the request is ${now}: ${await page.locator("dl.facts").textContent()}`);
    }
    await page.waitForTimeout(1000);
  }
  throw new Error(`the request did not reach ${words} in ${seconds} s`);
}

/** Starts an export from the home page (the `which`-th "New export" link) and waits for its
 * upload panel. */
async function newExport(page, title, why, which = 0) {
  await page.getByRole("link", { name: "New export" }).nth(which).click();
  await page.getByLabel("Title").fill(title);
  await page.getByLabel("Why these data need to cross").fill(why);
  await page.getByRole("button", { name: /Create the export request/ }).click();
  await page.getByRole("heading", { name: "Add files" }).waitFor();
}

/** Submits the draft on the page and waits until it is in review. */
async function submitForReview(page) {
  await page.getByRole("button", { name: "Submit for review" }).click();
  await page.getByRole("heading", { name: "Add files" }).waitFor({ state: "detached" });
  await waitForStatus(page, "in_review");
}


const PNG = Buffer.from(
  "89504e470d0a1a0a0000000d4948445200000001000000010806000000" +
    "1f15c4890000000d49444154789c6360f8ffff3f0005fe02fea73581e40000000049454e44ae426082",
  "hex",
);

function folder() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "airlock-web-"));
  const results = path.join(dir, "results");
  fs.mkdirSync(results);
  const rows = ["region,n"];
  for (let i = 0; i < 100; i++) rows.push(`Region ${i},${(i + 2) * 10}`);
  rows.push("South,3");
  fs.writeFileSync(path.join(results, "counts.csv"), rows.join("\n") + "\n");
  fs.writeFileSync(
    path.join(results, "x&y onerror='window.__pwned=1'.csv"),
    'label,n\n<script>window.__pwned=1</script>,20\n"<img src=x onerror=""window.__pwned=1"">",30\n',
  );
  fs.writeFileSync(path.join(results, "evil.svg"), "<svg xmlns='http://www.w3.org/2000/svg' onload='window.__pwned=1'><circle r='4'/></svg>");
  fs.writeFileSync(
    path.join(results, "notes.md"),
    "# Notes\n\n<img src=x onerror=\"window.__pwned=1\">\n[click](javascript:window.__pwned=1)\nbidi: \u202eexe.txt\n",
  );
  fs.writeFileSync(path.join(results, "plot.png"), PNG);
  const big = ["id,value"];
  for (let i = 0; i < 100_000; i++) big.push(`${i},${(i * 37) % 1000}`);
  fs.writeFileSync(path.join(results, "big.csv"), big.join("\n") + "\n");
  return { dir: results, names: fs.readdirSync(results).map((n) => `results/${n}`).sort() };
}

test("a researcher exports a folder, a blinded pair reviews it in the page, the researcher downloads it", async () => {
  const { dir, names } = folder();
  // ---- the researcher
  const researcher = await person("researcher1", ["WorkspaceResearcher"]);
  let page = researcher.page;
  await checkAccessibility(page, "researcher's requests");
  await newExport(page, "Regional counts for the paper", "Figures for the annual report", 2);
  const id = decodeURIComponent(page.url().split("/").pop());
  await page.setInputFiles("#pick-folder", dir);
  await page.locator("text=✓ uploaded").nth(names.length - 1).waitFor({ timeout: 60_000 });
  // What the file is and the controls applied, for the reviewers.
  const counts = page.locator("li", { hasText: "results/counts.csv" });
  await counts.getByLabel("What it is").fill("Patients by region, 2019-2024");
  await counts.getByLabel("Disclosure controls").fill("counts rounded to 10; small cells flagged by the gate");
  // The pre-flight check: the small count and what to do about it, before submitting.
  await page.getByRole("button", { name: "Check the files before submitting" }).click();
  const verdict = page.locator("#preflight, .error").first();
  await verdict.waitFor();
  assert.equal(await verdict.textContent(), "Findings to look at before submitting");
  await page.locator("text=suppress or merge the cells below 10").first().waitFor();
  await checkAccessibility(page, "draft with uploads");
  await shot(page, "researcher-draft");
  await page.getByLabel(/Purpose/).fill("Counts by region, 2019-2024, for the report");
  await page.getByRole("button", { name: "Submit for review" }).click();
  // The page shows the answer before anything reloads it (a reload would cancel the call).
  await page.getByRole("heading", { name: "Add files" }).waitFor({ state: "detached" });
  await waitForStatus(page, "in_review");
  // A comment that tries markup and a script link: shown as its text.
  await page.getByLabel(/Add a comment/).fill('<b>bold?</b> <a href="javascript:window.__pwned=1">link</a> \u202egnp.exe');
  await page.getByRole("button", { name: "Comment" }).click();
  await page.locator(".comment", { hasText: "<b>bold?</b>" }).waitFor();
  assert.equal(await page.locator(".comment b, .comment a").count(), 0, "a comment's markup is text");
  await shot(page, "researcher-in-review");

  // ---- two checkers, blinded, file by file
  for (const [n, user] of [
    [1, "manager1"],
    [2, "manager2"],
  ]) {
    const checker = await person(user, ["AirlockManager"]);
    const p = checker.page;
    await p.getByRole("link", { name: "Regional counts for the paper" }).first().waitFor();
    await checkAccessibility(p, "checker's queue");
    if (n === 1) await shot(p, "checker-queue");
    await p.getByRole("link", { name: "Regional counts for the paper" }).first().click();
    await p.getByRole("heading", { name: "Your review" }).waitFor();
    await checkAccessibility(p, "request page");
    if (n === 1) await shot(p, "checker-request");
    await p.locator("td", { hasText: "Patients by region, 2019-2024" }).waitFor();
    // Blinded: the other checker's review is not shown.
    assert.equal(await p.locator("text=manager1: ").count(), 0);
    if (n === 2) {
      // One click approves every file nothing was found in (each still its own vote).
      await p.getByRole("button", { name: `Approve the ${names.length - 1} file(s) without findings` }).click();
      assert.equal(await p.locator("input[type=radio][value=approved]:checked").count(), names.length - 1);
    }
    // File by file: open the first, then next with the keyboard, voting with keys.
    await p.getByRole("link", { name: names[0] }).click();
    for (let i = 0; i < names.length; i++) {
      await p.getByRole("heading", { name: names[i], level: 1 }).waitFor();
      if (names[i] === "results/counts.csv") {
        // The flagged cell: visible, explained on focus, with its rule and threshold.
        // It is in the last of 101 rows: the findings list takes the checker there.
        await p.getByRole("button", { name: "Show row 102" }).click();
        const flagged = p.locator("td.flag-warn");
        await flagged.first().waitFor();
        assert.equal(await flagged.count(), 1);
        assert.equal((await flagged.first().textContent()).trim(), "3");
        assert.equal(await flagged.first().evaluate((td) => td === document.activeElement), true);
        const tip = p.getByRole("tooltip");
        await tip.waitFor();
        assert.match(await tip.textContent(), /small_count: count 3 is below the threshold of 10/);
        await checkAccessibility(p, "file view (table)");
        if (n === 1) await shot(p, "checker-file-flagged");
        await p.locator("h1").click();
      }
      if (names[i].endsWith("onerror='window.__pwned=1'.csv")) {
        assert.equal(await p.locator("td", { hasText: "<script>window.__pwned=1</script>" }).count(), 1);
        assert.equal(await p.locator("main script, main img:not(.preview)").count(), 0);
      }
      if (names[i] === "results/plot.png") {
        await p.locator("img.preview").waitFor();
        assert.ok(await p.locator("img.preview").evaluate((img) => img.complete && img.naturalWidth === 1));
        if (n === 1) await shot(p, "checker-file-image");
      }
      if (names[i] === "results/notes.md" || names[i] === "results/evil.svg") {
        const text = await p.locator("pre.text").textContent();
        assert.ok(text.includes("window.__pwned=1"), "shown as text");
        assert.equal(await p.locator("main svg, main a[href^='javascript']").count(), 0);
      }
      await p.keyboard.press("a");
      await p.locator("[aria-pressed=true]", { hasText: "Approve" }).waitFor();
      if (i < names.length - 1) await p.keyboard.press("j");
    }
    await p.getByRole("link", { name: /← Regional counts/ }).click();
    // Approving the flagged table is an override: it needs its reason.
    await p.getByRole("button", { name: "Send my review" }).click();
    await p.getByLabel("Override small_count").waitFor();
    assert.equal(await p.getByRole("dialog").count(), 0, "not sent without the reason");
    await p.getByLabel("Override small_count").fill("Regions of 100,000 people; agreed with the data owner");
    await p.getByRole("button", { name: "Send my review" }).click();
    await p.getByRole("dialog").getByRole("button", { name: "Confirm" }).click();
    // Sent: the page shows the request again, with no review left to give (one each).
    await p.getByRole("heading", { name: "Your review" }).waitFor({ state: "detached" });
    if (n === 1) {
      await p.locator("dl.facts", { hasText: "in review" }).waitFor();
      await p.getByRole("link", { name: "← Requests" }).click();
      await p.getByRole("heading", { name: "Reviewed by me, waiting for others (1)" }).waitFor();
      await p.getByRole("heading", { name: "Awaiting my review (0)" }).waitFor();
    }
    await checker.context.close();
  }

  // ---- the researcher downloads, verified
  await waitForStatus(page, "approved");
  await page.getByRole("button", { name: /^Download \d+ file/ }).click();
  await page.locator("text=✓ verified").nth(names.length - 1).waitFor({ timeout: 60_000 });
  assert.equal(await page.locator("text=✓ verified").count(), names.length);
  await checkAccessibility(page, "approved request");
  await shot(page, "researcher-download");
  // The history, as a table, verifies.
  await page.locator("text=✓ hash chain verified").waitFor();
  // Both overrides, with their reasons, revealed in the trail with the votes, and again as
  // the trail's override entry (one entry naming each reviewer's).
  assert.equal(await page.locator("td", { hasText: 'over small_count ("Regions of 100,000 people' }).count(), 2);
  assert.equal(await page.locator("tr", { has: page.locator("td", { hasText: /^override$/ }) }).count(), 1);
  assert.ok((await page.locator("#history ~ table tbody tr, section[aria-labelledby=history] tbody tr").count()) > 5);
  // The governance record, saved from the page: the print-ready page opened on its own, as
  // the person keeping it would (screenshot, print media), and the JSON that verifies.
  await page.getByRole("heading", { name: "Governance record" }).waitFor();
  const saveRecord = async (name) => {
    const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name }).click()]);
    const saved = path.join(SHOTS, download.suggestedFilename());
    await download.saveAs(saved);
    return { name: download.suggestedFilename(), saved, text: fs.readFileSync(saved, "utf8") };
  };
  const pageRecord = await saveRecord(/Save the record page/);
  assert.equal(pageRecord.name, `record-${id}.html`);
  assert.ok(pageRecord.text.includes("hash chain verifies"), "the page says the trail verifies");
  assert.ok(!/<script|<[^>]+\son\w+=/i.test(pageRecord.text), "nothing in the page can run");
  assert.ok(pageRecord.text.includes("x&amp;y onerror="), "a file name is text in the page");
  const doc = await researcher.context.newPage();
  doc.on("dialog", (d) => pwned.push(`the record page: a ${d.type()} dialog`));
  await doc.goto(`file://${pageRecord.saved}`);
  await doc.getByRole("heading", { name: /Governance record: export request/ }).waitFor();
  assert.ok((await doc.locator("table").count()) >= 4, "facts, files, gates, reviews");
  assert.ok(await doc.locator("td", { hasText: "results/counts.csv" }).first().isVisible());
  await doc.emulateMedia({ media: "print" });
  await shot(doc, "governance-record");
  await doc.close();
  const jsonRecord = await saveRecord(/Save the record \(JSON/);
  const record = JSON.parse(jsonRecord.text);
  assert.equal(record.request.id, id);
  assert.equal(record.verification.verified, true);
  const crate = JSON.parse((await saveRecord(/Five Safes RO-Crate/)).text);
  assert.ok(crate["@graph"].some((e) => e["@type"] === "AssessAction"));
  await page.locator("text=/Saved ro-crate-metadata.json/").waitFor();
  await page.getByRole("link", { name: "← Requests" }).click();
  await page.getByRole("heading", { name: /Approved in the last two weeks \(1\)/ }).waitFor();

  // ---- the bench: first row of a 100,000-row table against a 100-row one
  const timeToFirstRow = async (name) => {
    const checker = await person("owner1", ["WorkspaceOwner"]);
    const p = checker.page;
    await p.goto(`${APP}#/r/${WS}/${encodeURIComponent(id)}`);
    await p.getByRole("heading", { name: "Regional counts for the paper" }).waitFor();
    const start = Date.now();
    await p.goto(`${APP}#/r/${WS}/${encodeURIComponent(id)}/file/${encodeURIComponent(name)}`);
    await p.locator("table.grid tbody tr td.rownum").first().waitFor({ timeout: 60_000 });
    const ms = Date.now() - start;
    const bytes = await p.evaluate(() =>
      performance.getEntriesByType("resource").reduce((n, e) => n + (e.transferSize || 0), 0) +
      performance.getEntriesByType("navigation").reduce((n, e) => n + (e.transferSize || 0), 0),
    );
    await checker.context.close();
    return { ms, bytes };
  };
  const small = await timeToFirstRow("results/counts.csv");
  const big = await timeToFirstRow("results/big.csv");
  console.log(
    `bench: first row of a 100-row table ${small.ms} ms (${(small.bytes / 1024).toFixed(0)} KiB transferred); ` +
      `of a 100,000-row table ${big.ms} ms (${(big.bytes / 1024).toFixed(0)} KiB); ratio ${(big.ms / Math.max(1, small.ms)).toFixed(1)}x`,
  );
  await researcher.context.close();
  assert.deepEqual(pwned, [], "researcher content ran something");
});

test("without signing in, the page asks for it and shows nothing else", async () => {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  await page.goto(APP);
  await page.getByRole("button", { name: "Sign in" }).waitFor();
  assert.equal(await page.locator("table").count(), 0);
  await checkAccessibility(page, "sign-in page");
  await shot(page, "sign-in");
  // A forged return (a code this tab never asked for) is refused in words.
  await page.goto(`${APP}?code=forged&state=forged#/`);
  await page.getByRole("alert").waitFor();
  assert.match(await page.getByRole("alert").textContent(), /does not match/);
  assert.ok(!page.url().includes("code="), "the code is taken out of the address bar");
  await context.close();
});

test("a create whose answer was lost, clicked again, makes one request", async () => {
  const { context, page } = await person("rhea", ["WorkspaceResearcher"]);
  const title = `Lost answer ${Date.now()}`;
  const keys = [];
  let answered = 0;
  await page.route(/\/api\/workspaces\/[^/]+\/requests$/, async (route) => {
    if (route.request().method() !== "POST") return route.continue();
    keys.push(route.request().headers()["idempotency-key"]);
    if (answered++ === 0) {
      // The airlock makes the request; its answer never reaches the page.
      await route.fetch();
      return route.abort("connectionreset");
    }
    return route.continue();
  });
  await page.getByRole("link", { name: "New export" }).first().click();
  await page.getByLabel("Title").fill(title);
  await page.getByLabel("Why these data need to cross").fill("For the paper");
  const create = page.getByRole("button", { name: /Create the export request/ });
  await create.click();
  await page.getByRole("alert").waitFor();
  await create.click();
  await page.getByRole("heading", { name: "Add files" }).waitFor();
  assert.equal(keys.length, 2, JSON.stringify(keys));
  assert.ok(keys[0] && keys[0] === keys[1], `the same key both times: ${JSON.stringify(keys)}`);
  await page.goto(APP);
  await page.getByRole("heading", { name: "Requests", level: 1 }).waitFor();
  const links = page.getByRole("link", { name: title });
  await links.first().waitFor();
  const hrefs = new Set(await links.evaluateAll((all) => all.map((a) => a.getAttribute("href"))));
  assert.equal(hrefs.size, 1, `one request, not one per click: ${[...hrefs]}`);

  // A submit whose answer is lost: the page shows the request as it now is, not a failure.
  await links.first().click();
  await page.getByRole("heading", { name: "Add files" }).waitFor();
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "airlock-web-")), "counts.csv");
  fs.writeFileSync(file, "region,n\nNorth,120\n");
  await page.setInputFiles("#pick-files", file);
  await page.locator("text=✓ uploaded").first().waitFor({ timeout: 60_000 });
  let submits = 0;
  await page.route(/\/requests\/[^/]+\/submit$/, async (route) => {
    submits++;
    await route.fetch();
    return route.abort("connectionreset");
  });
  await page.getByRole("button", { name: "Submit for review" }).click();
  await page.locator("p.panel", { hasText: "The airlock's answer was lost on the way; the request is now" }).waitFor();
  assert.equal(submits, 1);
  assert.equal(await page.getByRole("heading", { name: "Add files" }).count(), 0, "no longer a draft on the page");
  assert.equal(await page.locator(".error").count(), 0, "no failure shown for a change that was made");

  // A comment whose answer is lost, sent again: one comment.
  let comments = 0;
  await page.route(/\/requests\/[^/]+\/comments$/, async (route) => {
    if (route.request().method() !== "POST") return route.continue();
    if (comments++ === 0) {
      await route.fetch();
      return route.abort("connectionreset");
    }
    return route.continue();
  });
  await page.getByLabel("Add a comment (shown as plain text)").fill("Counts are rounded to 5.");
  await page.getByRole("button", { name: "Comment", exact: true }).click();
  await page.locator("form .error").waitFor();
  await page.getByRole("button", { name: "Comment", exact: true }).click();
  await page.getByRole("heading", { name: "Comments (1)" }).waitFor();
  assert.equal(comments, 2);
  assert.equal(await page.locator(".comment", { hasText: "Counts are rounded to 5." }).count(), 1);
  // The trail, loaded after the comments, names the comment once too (no second entry).
  await page.getByText("hash chain verified").waitFor();
  const commented = page.locator("section[aria-labelledby=history] tbody tr", { hasText: "commented" });
  assert.equal(await commented.count(), 1);
  await context.close();
});

test("an upload that fails part-way resumes from where it got to, and the sealed copy is the file", async () => {
  const researcher = await person("researcher2", ["WorkspaceResearcher"]);
  const page = researcher.page;
  await newExport(page, "A large result", "Model output");
  // 18 MiB: five 4 MiB blocks; storage refuses the third block once.
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "airlock-web-")), "model.bin");
  const data = Buffer.alloc(18 * 1024 * 1024);
  for (let i = 0; i < data.length; i += 4096) data.writeUInt32LE(i, i);
  fs.writeFileSync(file, data);
  const third = Buffer.from("block-00000002").toString("base64");
  let refused = 0;
  const blocks = [];
  await page.route(
    (url) => url.search.includes("comp=block&blockid="),
    async (route) => {
      const id = decodeURIComponent(new URL(route.request().url()).searchParams.get("blockid"));
      blocks.push(id);
      if (id === third && refused === 0) {
        refused++;
        await route.fulfill({
          status: 503,
          headers: { "access-control-allow-origin": "*" },
          body: "<?xml version='1.0'?><Error><Code>ServerBusy</Code></Error>",
        });
        return;
      }
      await route.continue();
    },
  );
  await page.setInputFiles("#pick-files", file);
  await page.locator("text=✗ storage answered 503 ServerBusy").waitFor({ timeout: 60_000 });
  const first = blocks.length;
  assert.ok(first <= 5, `${first} blocks tried`);
  // The same file again: only what is missing goes.
  await page.setInputFiles("#pick-files", []);
  await page.setInputFiles("#pick-files", file);
  await page.locator("text=resumed").waitFor({ timeout: 60_000 });
  const second = blocks.length - first;
  assert.ok(second >= 1 && second < 5, `the resumed upload sent ${second} of 5 blocks`);
  assert.ok(blocks.slice(first).includes(third), "the refused block is sent again");
  await submitForReview(page);
  const sha = (await import("node:crypto")).createHash("sha256").update(data).digest("hex");
  await page.locator(`text=sha256 ${sha.slice(0, 12)}`).first().waitFor();
  console.log(`resume: first attempt ${first} block request(s), after the failure ${second} of 5`);
  await researcher.context.close();
  assert.deepEqual(pwned, []);
});

test("after changes are requested, the checker votes only on what changed", async () => {
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "airlock-web-")), "out");
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, "a.csv"), "x,n\na,20\n");
  fs.writeFileSync(path.join(dir, "b.csv"), "x,n\nb,30\n");
  const researcher = await person("researcher1", ["WorkspaceResearcher"]);
  const page = researcher.page;
  await newExport(page, "Two tables", "Report");
  await page.setInputFiles("#pick-folder", dir);
  await page.locator("text=✓ uploaded").nth(1).waitFor();
  await submitForReview(page);
  const requestUrl = page.url();

  const checker = await person("manager1", ["AirlockManager"]);
  const p = checker.page;
  await p.goto(requestUrl);
  await p.getByRole("heading", { name: "Your review" }).waitFor();
  await p.locator("fieldset", { hasText: "out/a.csv" }).getByLabel("Approve").check();
  await p.locator("fieldset", { hasText: "out/b.csv" }).getByLabel("Request changes").check();
  await p.getByLabel(/Explanation/).fill("b: round to 5");
  await p.getByRole("button", { name: "Send my review" }).click();
  await p.getByRole("dialog").getByRole("button", { name: "Confirm" }).click();
  await p.getByRole("heading", { name: "Your review" }).waitFor({ state: "detached" });

  // The researcher changes b.csv only, uploads both again, submits revision 2.
  fs.writeFileSync(path.join(dir, "b.csv"), "x,n\nb,35\n");
  await waitForStatus(page, "draft");
  await page.setInputFiles("#pick-folder", dir);
  await page.locator("text=✓ uploaded").nth(1).waitFor();
  await submitForReview(page);

  // The checker sees what changed; the unchanged file's vote carries over.
  await p.goto(requestUrl);
  await p.reload();
  await p.getByRole("heading", { name: "Your review" }).waitFor();
  await p.locator("td", { hasText: "approve (carried over)" }).waitFor();
  assert.equal(await p.locator("tr", { hasText: "out/b.csv" }).locator(".badge", { hasText: "changed" }).count(), 1);
  // The changed table, cell by cell.
  await p.locator("tr", { hasText: "out/b.csv" }).getByText("1 change(s) in the table").click();
  await p.locator("tr", { hasText: "out/b.csv" }).locator("li", { hasText: "b · n: 30 → 35" }).waitFor();
  await checkAccessibility(p, "a resubmission to review");
  await shot(p, "checker-resubmission");
  await p.locator("fieldset", { hasText: "out/b.csv" }).getByLabel("Approve").check();
  await p.getByRole("button", { name: "Send my review" }).click();
  await p.getByRole("dialog").getByRole("button", { name: "Confirm" }).click();
  await p.getByRole("heading", { name: "Your review" }).waitFor({ state: "detached" });
  await waitForStatus(p, "approved");
  await p.locator("td", { hasText: "votes carried over" }).first().waitFor();
  await checker.context.close();
  await researcher.context.close();
  assert.deepEqual(pwned, []);
});

test("a researcher's ACRO record is shown beside each output, the record itself as a supporting file", async () => {
  // The real ACRO record (written by the acro package) with its outputs, as ACRO left them.
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "airlock-web-")), "acro");
  fs.cpSync(path.join(ROOT, "crates/airlock-domain/fixtures/acro"), dir, { recursive: true });
  const researcher = await person("researcher1", ["WorkspaceResearcher"]);
  const page = researcher.page;
  await newExport(page, "Tables checked with ACRO", "Report");
  await page.setInputFiles("#pick-folder", dir);
  await page.locator("text=✓ uploaded").nth(12).waitFor();
  await submitForReview(page);
  const requestUrl = page.url();

  const checker = await person("manager1", ["AirlockManager"]);
  const p = checker.page;
  await p.goto(requestUrl);
  await p.getByRole("heading", { name: "Your review" }).waitFor();
  const row = (name) => p.locator("tr", { has: p.locator("td", { hasText: new RegExp(`^${name}`) }) }).first();
  await row("acro/output_1_0.csv").locator(".badge", { hasText: "ACRO: fail, exception given" }).waitFor();
  await row("acro/output_0_0.csv").locator(".badge", { hasText: "ACRO: pass" }).waitFor();
  await row("acro/output_2_0.csv").locator(".badge", { hasText: /^ACRO: fail$/ }).waitFor();
  await row("acro/results.json").locator(".badge", { hasText: "supporting" }).waitFor();
  await checkAccessibility(p, "a request with an ACRO record");
  await shot(p, "checker-acro-request");
  // The file page: ACRO's checks and the researcher's exception beside the table.
  await row("acro/output_1_0.csv").getByRole("link").first().click();
  await p.locator("dd", { hasText: "Researcher's exception: the small cells are people over 85" }).waitFor();
  await p.locator("dd", { hasText: /Flagged: MinimumThresholdCheck: \d+ cell/ }).waitFor();
  await checkAccessibility(p, "an output with ACRO's evidence");
  await shot(p, "checker-acro-file");
  await checker.context.close();
  await researcher.context.close();
  assert.deepEqual(pwned, []);
});

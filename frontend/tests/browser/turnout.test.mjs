// Turnout in a real browser (Debian's chromium, headless, via playwright-core).
// Started by `services/devstack/tests/browser.rs`, which runs a local stack and passes:
//   TURNOUT_URL          the site (nginx)
//   TURNOUT_SINK         the mail sink's HTTP API (where the codes arrive)
//   TURNOUT_SCREENSHOTS  where each step's screenshot goes
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { deflateSync } from "node:zlib";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

// axe-core (npm), run in the page through the DevTools protocol: the site's
// Content-Security-Policy forbids injected scripts, and rightly so.
const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const WCAG21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"];

const URL = process.env.TURNOUT_URL;
const SINK = process.env.TURNOUT_SINK;
const SHOTS = process.env.TURNOUT_SCREENSHOTS;
assert.ok(URL && SINK && SHOTS, "TURNOUT_URL, TURNOUT_SINK and TURNOUT_SCREENSHOTS are set");
mkdirSync(SHOTS, { recursive: true });

let browser;
before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});
after(async () => {
  await browser?.close();
});

const pad = (n) => String(n).padStart(5, "0");

/**
 * Waits until `fn(arg)`, evaluated in the page, is truthy. (Playwright's waitForFunction
 * evaluates strings, which the site's Content-Security-Policy rightly forbids.)
 */
async function until(page, fn, arg, timeout = 15000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    if (await page.evaluate(fn, arg)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${fn}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** A page whose console errors (a script error, a CSP violation) fail the test. */
async function newPage(options = {}) {
  const context = await browser.newContext(options);
  const page = await context.newPage();
  page.errors = [];
  page.on("console", (m) => m.type() === "error" && !/status of 4\d\d/.test(m.text()) && page.errors.push(m.text()));
  page.on("pageerror", (e) => page.errors.push(String(e)));
  return page;
}

function noErrors(page) {
  assert.deepEqual(page.errors, [], `errors in the browser console: ${page.errors.join("; ")}`);
}
const shot = (page, name) => page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });

/** The newest code emailed to `to` after unix time `since` (polls the sink). */
async function codeFor(to, since) {
  for (let i = 0; i < 100; i++) {
    const res = await fetch(`${SINK}/messages/latest?to=${encodeURIComponent(to)}`);
    if (res.ok) {
      const mail = await res.json();
      const code = mail.body.split("\n").map((l) => l.trim()).find((l) => /^\d{6}$/.test(l));
      if (mail.received_at > since && code) return code;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`no code for ${to}`);
}

async function signIn(page, user, password, next) {
  await page.goto(`${URL}/auth/login?next=${encodeURIComponent(next)}`);
  await page.fill("#username", user);
  await page.fill("#password", password);
  await Promise.all([page.waitForURL((u) => u.pathname === next), page.click("form[action='/auth/login'] button")]);
}

/** axe-core's WCAG 2.1 A and AA violations on the current page, one line each. */
async function axe(page) {
  const cdp = await page.context().newCDPSession(page);
  try {
    await cdp.send("Runtime.evaluate", { expression: AXE });
    const run = `axe.run(document, { runOnly: { type: "tag", values: ${JSON.stringify(WCAG21_AA)} } })
      .then((r) => r.violations.map((v) => v.id + " (" + v.impact + "): " + v.nodes.map((n) => n.target.join(" ")).join(", ")))`;
    const { result, exceptionDetails } = await cdp.send("Runtime.evaluate", { expression: run, awaitPromise: true, returnByValue: true });
    assert.ok(!exceptionDetails, `axe did not run: ${JSON.stringify(exceptionDetails)}`);
    return result.value;
  } finally {
    await cdp.detach();
  }
}

/** The page has no axe-core WCAG 2.1 A/AA violations and passes the checks below. */
async function accessible(page, name) {
  assert.deepEqual(await axe(page), [], `${name}: axe-core WCAG 2.1 A/AA violations`);
  assert.deepEqual(await audit(page), [], `${name}: the page's own checks`);
}

/** A student from sign-in to a verified ballot page, mistyping the code once. */
async function studentReachesTheBallot(page, n, label, election = "demo") {
  await signIn(page, `student${pad(n)}`, `vote-${pad(n)}`, `/e/${election}/otp`);
  await shot(page, `${label}-1-code-page`);
  const since = Date.now() / 1000 - 1;
  await Promise.all([page.waitForURL((u) => u.pathname === `/e/${election}/otp`), page.click("#otp-send")]);
  const code = await codeFor(`student${pad(n)}@students.turnout.test`, since);
  // The page follows the mail by itself (otp.js) and says where the code went.
  await until(page, () => /sent/i.test(document.getElementById("otp-status")?.textContent || ""));
  await shot(page, `${label}-2-code-sent`);

  const wrong = code.slice(0, 5) + String((Number(code[5]) + 1) % 10);
  await page.fill("#code", wrong);
  await Promise.all([page.waitForLoadState(), page.click("form[action$='/otp/verify'] button")]);
  // The code page comes back: its title says what happened, the error sits by the field
  // with the tries left, and the header still shows who is signed in.
  assert.match(await page.title(), /^That code is not right/, "the title says what happened");
  assert.match(await page.textContent("#code-error"), /\d more tr(y|ies)/, "tries left beside the field");
  assert.equal(await page.getAttribute("#code", "aria-invalid"), "true");
  assert.match(await page.textContent("header.top"), new RegExp(`Signed in as student${pad(n)}`));
  assert.doesNotMatch(await page.textContent("body"), /Please sign in again|Go back/);
  await accessible(page, "the code page with its error");
  await shot(page, `${label}-3-wrong-code`);

  // The form on that page works as it is.
  await page.fill("#code", code);
  await Promise.all([
    page.waitForURL((u) => u.pathname === `/e/${election}/ballot`),
    page.click("form[action$='/otp/verify'] button"),
  ]);
  await shot(page, `${label}-4-ballot`);
}

/** Review, then cast: the review step shows the choices in words first. */
async function reviewAndCast(page, expectWords) {
  await Promise.all([page.waitForLoadState(), page.click("text=Review my choices")]);
  assert.match(await page.textContent("h1"), /Check your choices/);
  for (const words of expectWords) assert.match(await page.textContent("dl.review"), words);
  await accessible(page, "review");
  await Promise.all([page.waitForLoadState(), page.click("text=Cast my vote")]);
}

async function castAndCheckReceipt(page, label) {
  await page.check("input[name='c.president'][value=chen-wei]");
  await page.check("input[name='c.treasurer'][value=eli-novak]");
  await reviewAndCast(page, [/Chen Wei/, /Eli Novak/]);
  await page.waitForSelector("h1.ok");
  assert.match(await page.textContent("h1"), /in the ballot box/i);
  const receipt = (await page.textContent(".receipt")).trim();
  assert.match(receipt, /^[0-9A-Z]{4}(-[0-9A-Z]{4}){4}$/, "a receipt is shown");
  await accessible(page, "receipt");
  await shot(page, `${label}-5-receipt`);

  // The link checks it, the receipt in the query string (access logs write the path
  // alone, so the receipt never reaches a log); a second vote is refused with a clear
  // message.
  await page.click("text=Link to this check");
  await page.waitForURL((u) => u.pathname === "/e/demo/receipt" && u.searchParams.get("receipt") === receipt);
  assert.match(await page.textContent("h1"), /This receipt is in the ballot box/);
  await page.goto(`${URL}/e/demo/ballot`);
  // The ballot page's form checks it too, typed in lower case without dashes.
  await page.fill("#receipt", receipt.toLowerCase().replaceAll("-", ""));
  await Promise.all([
    page.waitForURL((u) => u.pathname === "/e/demo/receipt" && u.searchParams.has("receipt")),
    page.click("form[action='/e/demo/receipt'] button"),
  ]);
  assert.match(await page.textContent("h1"), /This receipt is in the ballot box/);
  await page.goto(`${URL}/e/demo/ballot`);
  await page.check("input[name='c.president'][value=amara-okafor]");
  await Promise.all([page.waitForLoadState(), page.click("text=Review my choices")]);
  await Promise.all([page.waitForLoadState(), page.click("text=Cast my vote")]);
  assert.match(await page.textContent("body"), /already voted/i, "a second vote is refused");
  await shot(page, `${label}-6-second-vote-refused`);
}

test("a student signs in, mistypes then confirms the code, votes, and cannot vote twice", async () => {
  const page = await newPage();
  await studentReachesTheBallot(page, 11, "desktop");
  await castAndCheckReceipt(page, "desktop");
  noErrors(page);
});

test("a wrong password brings the form back with the error beside it and the username kept", async () => {
  const page = await newPage();
  await page.goto(`${URL}/auth/login?next=${encodeURIComponent("/e/demo/otp")}`);
  await page.fill("#username", `student${pad(15)}`);
  await page.fill("#password", "not-my-password");
  await Promise.all([page.waitForLoadState(), page.click("form[action='/auth/login'] button")]);
  assert.match(await page.title(), /^Wrong username or password/, "the title says what happened");
  assert.equal(await page.inputValue("#username"), `student${pad(15)}`, "the username is kept");
  assert.equal(await page.inputValue("#password"), "", "the password is not");
  assert.match(await page.textContent("#password-error"), /Wrong username or password/);
  assert.equal(await page.getAttribute("#password", "aria-invalid"), "true");
  assert.doesNotMatch(await page.textContent("body"), /Please sign in again|Go back/);
  await accessible(page, "the sign-in page with its error");
  await shot(page, "login-wrong-password");
  // Typing the right one on the same form signs in and goes where the voter was going.
  await page.fill("#password", `vote-${pad(15)}`);
  await Promise.all([page.waitForURL((u) => u.pathname === "/e/demo/otp"), page.click("form[action='/auth/login'] button")]);
  assert.match(await page.textContent("header.top"), new RegExp(`Signed in as student${pad(15)}`));
  noErrors(page);
});

test("the same flow on a phone", async () => {
  const page = await newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  await studentReachesTheBallot(page, 12, "mobile");
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the ballot page scrolls sideways on a phone (${overflow}px)`);
  await castAndCheckReceipt(page, "mobile");
  noErrors(page);
});

test("an officer's extension reaches a ballot page that is already open, without a reload", async () => {
  const student = await newPage();
  await studentReachesTheBallot(student, 13, "extend-student");
  const before = await student.getAttribute("#countdown", "data-closes-at");
  const shownBefore = await student.textContent("#closes");
  await student.evaluate(() => (window.__notReloaded = true));

  const officer = await newPage();
  await signIn(officer, "officer1", "vote-officer1", "/officer/elections/demo");
  await shot(officer, "extend-1-dashboard");
  // The dashboard's live part refreshes itself (console.js) without losing the page.
  const current = await officer.inputValue("#closes_at");
  const later = new Date(Date.parse(current + ":00Z") + 30 * 60000).toISOString().slice(0, 16);
  await officer.fill("#closes_at", later);
  await officer.fill("#reason-extend", "browser test: mail delays");
  await Promise.all([officer.waitForURL(/\/officer\/elections\/demo$/), officer.click("form[action$='/extend'] button")]);
  await shot(officer, "extend-2-extended");

  await until(student, (old) => document.getElementById("countdown").dataset.closesAt !== old, before, 25000);
  assert.equal(await student.evaluate(() => window.__notReloaded), true, "the page was not reloaded");
  assert.notEqual(await student.textContent("#closes"), shownBefore, "the close shown moved");
  const left = await student.textContent("#countdown");
  const minutes = (Number(left.match(/(\d+) h/)?.[1] || 0) * 60) + Number(left.match(/(\d+) min/)[1]);
  assert.ok(minutes > 130, `the countdown counts to the new close: ${left}`);
  await shot(student, "extend-3-student-sees-new-close");
  // The officer's dashboard keeps refreshing itself (console.js) without errors.
  await officer.waitForTimeout(6000);
  noErrors(officer);
  noErrors(student);
});

test("pages pass basic accessibility checks: labels, visible focus, contrast", async () => {
  const page = await newPage();
  const pages = [];
  await page.goto(`${URL}/auth/login`);
  const both = async (p) => [...(await audit(p)), ...(await axe(p))];
  pages.push(["login", await both(page)]);
  // The audit itself catches what it should: faint text and an unlabeled field.
  await page.evaluate(() => {
    const p = document.createElement("p");
    p.textContent = "faint";
    p.style.color = "#cccccc";
    document.querySelector("main, body").appendChild(p);
    const input = document.createElement("input");
    input.name = "stray";
    document.querySelector("form").appendChild(input);
  });
  const planted = await audit(page);
  assert.ok(planted.some((p) => p.startsWith("contrast")), `the contrast check missed faint text: ${planted}`);
  assert.ok(planted.some((p) => p.includes("unlabeled input stray")), `the label check missed a field: ${planted}`);
  await signIn(page, `student${pad(14)}`, `vote-${pad(14)}`, "/e/demo/otp");
  pages.push(["code", await both(page)]);
  await page.goto(`${URL}/e/demo/ballot`);
  pages.push(["ballot", await both(page)]);
  await page.goto(`${URL}/`);
  pages.push(["home", await both(page)]);
  const officer = await newPage();
  await signIn(officer, "officer1", "vote-officer1", "/officer/elections/demo");
  pages.push(["dashboard", await both(officer)]);
  for (const [name, problems] of pages) {
    assert.deepEqual(problems, [], `${name}: ${problems.join("; ")}`);
  }

  // Keyboard: Tab reaches the form and the focused control is visibly outlined.
  await page.goto(`${URL}/auth/login`);
  let checked = 0;
  for (let i = 0; i < 8; i++) {
    await page.keyboard.press("Tab");
    const focus = await page.evaluate(() => {
      const el = document.activeElement;
      const s = getComputedStyle(el);
      return { tag: el.tagName, outline: s.outlineStyle, width: s.outlineWidth, shadow: s.boxShadow };
    });
    if (!["INPUT", "BUTTON", "A", "SELECT", "TEXTAREA"].includes(focus.tag)) continue;
    checked += 1;
    const visible = (focus.outline !== "none" && focus.width !== "0px") || focus.shadow !== "none";
    assert.ok(visible, `focus on ${focus.tag} is not visible: ${JSON.stringify(focus)}`);
  }
  assert.ok(checked >= 3, `Tab reached only ${checked} controls`);
  await shot(page, "a11y-focus");
});

// The union election (devstack's `union_election`): a ranked president with RON, a
// council of three by STV, faculty representatives by directory group and filter, and
// an approval question. Students 2, 12, 22… are physics students.

/** The options of a ranked contest in the order the page shows them. */
const ranking = (page, contest) =>
  page.$$eval(`ol.ranking[data-contest=${contest}] li`, (lis) =>
    lis.map((li) => [li.querySelector("label").textContent.trim(), li.querySelector("input.rank").value]));

async function unionBallot(page, n, label) {
  await studentReachesTheBallot(page, n, label, "union");
  await accessible(page, "union ballot");
  const physics = n % 10 === 2;
  assert.equal(await page.isVisible("#contest-physics-rep"), physics, "only physics students see the physics rep");
  assert.equal(await page.isVisible("#contest-general-rep"), !physics, "the others see the general rep");
  assert.match(await page.textContent("#how-council"), /order of preference/);

  // The president with the move buttons (JavaScript): Sam Reyes first, then RON.
  await page.click("button[aria-label='Move Sam Reyes up']");
  await page.click("button[aria-label='Move Re-Open Nominations (RON) up']");
  const president = await ranking(page, "president");
  assert.deepEqual(president.slice(0, 2), [["Sam Reyes", "1"], ["Re-Open Nominations (RON)", "2"]]);
  assert.match(await page.textContent("#contest-president [aria-live]"), /now your 2nd choice/);
  // The keyboard moves them too: Alt+ArrowUp in Ria Shah's rank box ranks her, 3rd.
  await page.focus("#r-president-ria-shah");
  await page.keyboard.press("Alt+ArrowUp");
  assert.equal(await page.inputValue("#r-president-ria-shah"), "3");

  // The council by typed rank numbers, with a mistake first: 1 twice.
  await page.fill("#r-council-yu-lin", "1");
  await page.fill("#r-council-tom-hale", "1");
  await page.check("input[name='c.societies'][value=chess-club]");
  await page.check("input[name='c.societies'][value=robotics-society]");
  const rep = physics ? "physics-rep" : "general-rep";
  await page.check(`input[name='c.${rep}'][value=abstain]`);
  await Promise.all([page.waitForLoadState(), page.click("text=Review my choices")]);
  assert.match(await page.textContent("#error-council"), /rank 1 to more than one/);
  assert.equal(await page.getAttribute("#contest-council", "aria-describedby"), "error-council");
  assert.equal(await page.inputValue("#r-president-sam-reyes"), "1", "the other choices are kept");
  assert.ok(await page.isChecked("input[name='c.societies'][value=robotics-society]"));
  await accessible(page, "union ballot with a mistake");
  await shot(page, `${label}-union-mistake`);

  await page.fill("#r-council-tom-hale", "2");
  await reviewAndCast(page, [
    /1st: Sam Reyes, 2nd: Re-Open Nominations \(RON\), 3rd: Ria Shah/,
    /1st: Yu Lin, 2nd: Tom Hale/,
    /Chess Club, Robotics Society|Robotics Society, Chess Club/, // in this voter's order
    /You abstain/,
  ]);
  await page.waitForSelector("h1.ok");
  await accessible(page, "union receipt");
  await shot(page, `${label}-union-receipt`);
}

test("a physics student votes in the union election: ranked, multi-seat STV, approval, a faculty rep", async () => {
  const page = await newPage();
  await unionBallot(page, 2, "union-desktop");
  noErrors(page);
});

test("a general student votes in the union election on a phone, and can go back from the review", async () => {
  const page = await newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  await studentReachesTheBallot(page, 3, "union-mobile", "union");
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the union ballot scrolls sideways on a phone (${overflow}px)`);
  // Without the buttons: rank numbers typed, reviewed, changed, reviewed again.
  await page.fill("#r-president-kim-tanaka", "1");
  await Promise.all([page.waitForLoadState(), page.click("text=Review my choices")]);
  assert.match(await page.textContent("dl.review"), /1st: Kim Tanaka/);
  assert.match(await page.textContent("dl.review"), /Left blank/);
  await Promise.all([page.waitForLoadState(), page.click("text=Change my choices")]);
  assert.equal(await page.inputValue("#r-president-kim-tanaka"), "1", "back on the ballot with the choices kept");
  await page.fill("#r-president-lee-park", "2");
  await page.check("input[name='c.general-rep'][value=dan-cohen]");
  await reviewAndCast(page, [/1st: Kim Tanaka, 2nd: Lee Park/, /Dan Cohen/]);
  await page.waitForSelector("h1.ok");
  await shot(page, "union-mobile-receipt");
  noErrors(page);
});

test("the officer closes the union election and reads each contest's count sheet", async () => {
  const officer = await newPage();
  await signIn(officer, "officer1", "vote-officer1", "/officer/elections/union");
  await officer.fill("#confirm", "union");
  await officer.fill("#reason-close", "browser test: everyone has voted");
  await Promise.all([officer.waitForLoadState(), officer.click("form[action$='/close'] button")]);
  // Sealed until the close and its grace have passed.
  await officer.waitForTimeout(11000);
  await officer.goto(`${URL}/officer/elections/union/results`);
  assert.match(await officer.textContent("h1"), /Results/);
  const president = await officer.textContent("#result-president");
  assert.match(president, /Counted by irv/);
  assert.match(president, /Stage 1/);
  assert.match(await officer.textContent("#result-council"), /Counted by ers97 for 3 seats; quota/);
  assert.match(await officer.textContent("#result-societies"), /Chess Club/);
  await accessible(officer, "results");
  await shot(officer, "union-results");
  noErrors(officer);
});

/** A PNG of `w`×`h` (a colour gradient), made here: no image files in the repository. */
function png(w, h) {
  const table = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = table[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const typed = Buffer.concat([Buffer.from(type), data]);
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc(typed));
    return Buffer.concat([len, typed, sum]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const rows = [];
  for (let y = 0; y < h; y++) {
    const row = Buffer.alloc(1 + w * 3);
    for (let x = 0; x < w; x++) row.set([(x * 255) / w, (y * 255) / h, 160], 1 + x * 3);
    rows.push(row);
  }
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, chunk("IHDR", ihdr), chunk("IDAT", deflateSync(Buffer.concat(rows))), chunk("IEND", Buffer.alloc(0))]);
}

test("a student nominates with a photo, two others second, the admin approves, and the candidate is on the ballot", async () => {
  const nominee = await newPage();
  await signIn(nominee, `student${pad(3)}`, `vote-${pad(3)}`, "/e/byelection/nominate");
  assert.match(await nominee.textContent("h1"), /Stand for Spring By-election 2027/);
  const contests = await nominee.$$eval("#contest option", (os) => os.map((o) => o.value));
  assert.deepEqual(contests, ["welfare"], "not the physics rep: student 3 is no physics student");
  await accessible(nominee, "the nomination form");
  await nominee.selectOption("#contest", "welfare");
  await nominee.fill("#name", "Robin Ash");
  const manifesto = "A listening ear in every hall.\n\nMy plan: https://union.test/robin";
  await nominee.fill("#manifesto", manifesto);
  // Not an image: the form comes back with the reason beside the photo and the text kept.
  await nominee.setInputFiles("#photo", { name: "me.png", mimeType: "image/png", buffer: Buffer.from("<svg onload=alert(1)>") });
  await Promise.all([nominee.waitForLoadState(), nominee.click("text=Submit my nomination")]);
  assert.match(await nominee.textContent("#photo-error"), /JPEG or PNG/);
  assert.equal(await nominee.getAttribute("#photo", "aria-invalid"), "true");
  assert.equal(await nominee.inputValue("#name"), "Robin Ash");
  assert.equal(await nominee.inputValue("#manifesto"), manifesto);
  await accessible(nominee, "the nomination form with its error");
  await shot(nominee, "nominate-1-photo-refused");
  await nominee.setInputFiles("#photo", { name: "me.png", mimeType: "image/png", buffer: png(900, 1200) });
  await Promise.all([
    nominee.waitForURL((u) => /^\/e\/byelection\/nominations\/[0-9a-f]{32}$/.test(u.pathname)),
    nominee.click("text=Submit my nomination"),
  ]);
  const link = new globalThis.URL(nominee.url()).pathname;
  assert.match(await nominee.textContent("h1"), /Robin Ash for Welfare Officer/);
  const size = await nominee.$eval("img.portrait", (img) => [img.naturalWidth, img.naturalHeight]);
  assert.deepEqual(size, [450, 600], "resized to 600 px on its long side");
  assert.match(await nominee.textContent("main"), /0 of the 2 proposers/);
  await accessible(nominee, "the nomination page");
  await shot(nominee, "nominate-2-submitted");

  // Two others follow the share link, sign in from it, and second.
  for (const n of [5, 7]) {
    const p = await newPage();
    await p.goto(`${URL}${link}`);
    await Promise.all([p.waitForURL((u) => u.pathname === "/auth/login"), p.click("text=Sign in to second this nomination")]);
    await p.fill("#username", `student${pad(n)}`);
    await p.fill("#password", `vote-${pad(n)}`);
    await Promise.all([p.waitForURL((u) => u.pathname === link), p.click("form[action='/auth/login'] button")]);
    if (n === 5) await accessible(p, "a nomination to second");
    await Promise.all([p.waitForLoadState(), p.click("text=Second this nomination")]);
    assert.match(await p.textContent("main"), /You have seconded this nomination/);
    noErrors(p);
  }
  await nominee.reload();
  assert.match(await nominee.textContent("main"), /2 of the 2 proposers/);
  const seconders = await nominee.$$eval("table td:first-child", (tds) => tds.map((t) => t.textContent.trim()));
  assert.deepEqual(seconders, [`student${pad(5)}`, `student${pad(7)}`], "the nominee sees who seconded");

  // The returning officer approves it from the review queue.
  const admin = await newPage();
  await signIn(admin, "admin1", "vote-admin1", "/admin/elections/byelection/nominations");
  assert.match(await admin.textContent("main"), /Robin Ash/);
  assert.match(await admin.textContent("main"), /student00005, student00007/);
  await accessible(admin, "the review queue");
  await shot(admin, "nominate-3-review-queue");
  await Promise.all([admin.waitForLoadState(), admin.click("text=Approve version 1")]);
  assert.match(await admin.textContent("main"), /No pending nominations/);
  noErrors(admin);

  // Everyone reads it on the candidates page; the ballot lists it and links there.
  const visitor = await newPage({ viewport: { width: 390, height: 844 }, isMobile: true });
  await visitor.goto(`${URL}/e/byelection/candidates`);
  assert.match(await visitor.textContent("main"), /Robin Ash/);
  assert.equal(await visitor.getAttribute("a[href='https://union.test/robin']", "rel"), "nofollow ugc noopener noreferrer");
  assert.ok(await visitor.$("article.candidate-card img.portrait"), "the photo is shown");
  await accessible(visitor, "the candidates page on a phone");
  await shot(visitor, "nominate-4-candidates");
  await nominee.goto(`${URL}/e/byelection/ballot`);
  assert.match(await nominee.textContent("#contest-welfare"), /Robin Ash/);
  const about = await nominee.getAttribute("#contest-welfare a.about", "href");
  assert.match(about, /^\/e\/byelection\/candidates#c-welfare-n-[0-9a-f]{32}$/);
  await accessible(nominee, "the ballot with a nominated candidate");
  await shot(nominee, "nominate-5-ballot");
  noErrors(nominee);
  noErrors(visitor);
});

/** Problems on the current page: unlabeled controls and text below 4.5:1 contrast. */
function audit(page) {
  return page.evaluate(() => {
    const problems = [];
    for (const el of document.querySelectorAll("input, select, textarea")) {
      if (["hidden", "submit", "button"].includes(el.type)) continue;
      const labelled = el.labels?.length > 0 || el.getAttribute("aria-label") || el.getAttribute("aria-labelledby");
      if (!labelled) problems.push(`unlabeled ${el.tagName.toLowerCase()} ${el.name || el.id}`);
    }
    const rgb = (c) => (c.match(/[\d.]+/g) || []).map(Number);
    const lum = ([r, g, b]) =>
      [r, g, b]
        .map((v) => v / 255)
        .map((v) => (v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4))
        .reduce((acc, v, i) => acc + v * [0.2126, 0.7152, 0.0722][i], 0);
    const background = (el) => {
      for (let e = el; e; e = e.parentElement) {
        const c = rgb(getComputedStyle(e).backgroundColor);
        if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c.slice(0, 3);
      }
      return [255, 255, 255];
    };
    const textual = document.querySelectorAll("p, label, legend, h1, h2, a, button, li, td, th, small, span, strong");
    for (const el of textual) {
      if (!el.offsetParent || !el.textContent.trim() || el.closest("svg")) continue;
      const fg = rgb(getComputedStyle(el).color).slice(0, 3);
      const [a, b] = [lum(fg), lum(background(el))];
      const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
      if (ratio < 4.5) problems.push(`contrast ${ratio.toFixed(2)} on "${el.textContent.trim().slice(0, 30)}"`);
    }
    return problems;
  });
}

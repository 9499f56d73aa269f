//! One student's vote through nginx, then every log line it left: nginx's access and
//! error logs and each service's log. Nothing in them may pair the voter with their
//! ballot: the receipt (the ballot's key in the box), the choices, the code and the
//! password are in no line, and the cast's lines name nobody and share no request id
//! or other value with the lines that name the voter.
//!
//! The receipt check carries the receipt in its query string, which nginx's access log
//! (`$uri`) and the services' request lines (the route) leave out. The test follows the
//! links and forms the pages give, so were the receipt put back in a path, nginx's
//! access log would hold it and the test would fail. Last, a check while the ballot
//! service is down: nginx's error log writes a failed request's whole line, query string
//! and all, so the check's location keeps its errors out of it.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use turnout_devstack::slapd::{student_email, student_password, student_uid};
use turnout_devstack::{Stack, StackOptions, unix_now};

const VOTER: u32 = 1;
/// The vote: each contest and the candidate's id, as the form sends them.
const CHOICES: [(&str, &str); 2] = [("c.president", "chen-wei"), ("c.treasurer", "fatima-haddad")];
/// The same candidates as the pages name them.
const CHOSEN_NAMES: [&str; 2] = ["Chen Wei", "Fatima Haddad"];

/// The log files, and where each stood before the vote.
struct Logs {
    files: Vec<(&'static str, PathBuf, u64)>,
}

impl Logs {
    fn mark(stack: &Stack) -> Self {
        let nginx = stack.dir.join("nginx");
        let files = [
            ("auth", stack.dir.join("auth.log")),
            ("otp", stack.dir.join("otp.log")),
            ("ballot", stack.dir.join("ballot.log")),
            ("nginx", nginx.join("nginx-access.log")),
            ("nginx-error", nginx.join("nginx-error.log")),
        ];
        let files = files
            .into_iter()
            .map(|(name, path)| {
                let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                (name, path, len)
            })
            .collect();
        Self { files }
    }

    /// Every line written since the mark, with the name of its log.
    fn since(&self) -> Vec<Line> {
        let mut lines = Vec::new();
        for (name, path, from) in &self.files {
            let bytes = std::fs::read(path).unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes[(*from as usize).min(bytes.len())..]).into_owned();
            for raw in text.lines().filter(|l| !l.trim().is_empty()) {
                lines.push(Line { log: name, raw: raw.to_owned(), json: serde_json::from_str(raw).ok() });
            }
        }
        lines
    }

    /// Waits until each request is in nginx's access log (each worker writes its own
    /// buffer out every second) and in the log of the service that answered it.
    async fn wait_for(&self, requests: &[String]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let lines = self.since();
            let missing = requests.iter().find(|id| {
                let of_id = || lines.iter().filter(|l| l.request_id() == Some(id.as_str()));
                !(of_id().any(|l| l.log == "nginx") && of_id().any(|l| l.log != "nginx"))
            });
            let Some(id) = missing else { return };
            assert!(Instant::now() < deadline, "request {id} never reached the logs of nginx and its service");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

struct Line {
    log: &'static str,
    raw: String,
    /// Every line but nginx's error log is JSON.
    json: Option<Value>,
}

impl Line {
    fn request_id(&self) -> Option<&str> {
        self.json.as_ref()?.get("request_id")?.as_str()
    }

    fn field(&self, key: &str) -> &Value {
        self.json.as_ref().and_then(|v| v.get(key)).unwrap_or(&Value::Null)
    }

    /// The line's string values of 8 characters or more but its time: what could serve
    /// as an identifier shared between two lines.
    fn identifiers(&self) -> Vec<String> {
        let Some(Value::Object(fields)) = &self.json else { return Vec::new() };
        fields
            .iter()
            .filter(|(k, _)| k.as_str() != "ts")
            .filter_map(|(_, v)| v.as_str())
            .filter(|v| v.len() >= 8)
            .map(str::to_owned)
            .collect()
    }
}

fn request_id(res: &reqwest::Response) -> String {
    res.headers()["x-request-id"].to_str().unwrap().to_owned()
}

/// The value of `attr="…"` in the tag that holds `marker`, searching back from it.
fn attribute_before(page: &str, marker: &str, attr: &str) -> String {
    let at = page.find(marker).unwrap_or_else(|| panic!("{marker:?} is not on the page: {page}"));
    let open = format!("{attr}=\"");
    let start = page[..at].rfind(&open).unwrap_or_else(|| panic!("no {attr} before {marker:?}")) + open.len();
    page[start..].split('"').next().unwrap().to_owned()
}

/// Whether `code` stands on its own in `line` (not inside a longer number or hex id).
fn holds_code(line: &str, code: &str) -> bool {
    line.match_indices(code).any(|(i, _)| {
        let before = line[..i].chars().next_back();
        let after = line[i + code.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '.')
            && !after.is_some_and(|c| c.is_ascii_alphanumeric())
    })
}

pub async fn one_vote_leaves_no_log_line_that_pairs_the_voter_with_the_ballot() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = StackOptions::in_dir(dir.path());
    opts.students = 5;
    let mut stack = tokio::task::spawn_blocking(move || Stack::start(opts)).await.unwrap().expect("the stack starts");
    let base = stack.base_url.clone();
    let url = move |path: &str| format!("{base}{path}");
    // A browser without JavaScript (forms, redirects by hand), and a script asking JSON.
    let browser =
        reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let script = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let logs = Logs::mark(&stack);
    // Each request's id, as nginx made it (and answers it in X-Request-Id).
    let mut sent = Vec::new();

    // Arrange: the student signs in, gets the code by email and verifies it.
    let (uid, password, email) = (student_uid(VOTER), student_password(VOTER), student_email(VOTER));
    let form = [("username", uid.as_str()), ("password", password.as_str()), ("next", "/e/demo/otp")];
    let res = browser.post(url("/auth/login")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "sign-in");
    let sign_in = request_id(&res);
    sent.push(sign_in.clone());
    let since = unix_now() - 0.5;
    let res = browser.post(url("/e/demo/otp/request")).form(&[("go", "1")]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "code request");
    sent.push(request_id(&res));
    let mail = stack.sink.wait_for(&email, since, Duration::from_secs(15)).await.unwrap();
    let code = mail.code().expect("the mail holds the code");
    let res = browser.post(url("/e/demo/otp/verify")).form(&[("code", code.as_str())]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "verify");
    sent.push(request_id(&res));

    // Act: the ballot, the review, the cast.
    let res = browser.get(url("/e/demo/ballot")).send().await.unwrap();
    sent.push(request_id(&res));
    let ballot = res.text().await.unwrap();
    assert!(ballot.contains("Review my choices"), "{ballot}");
    let review = browser.post(url("/e/demo/ballot/review")).form(&CHOICES).send().await.unwrap();
    assert_eq!(review.status(), StatusCode::OK);
    sent.push(request_id(&review));
    let review = review.text().await.unwrap();
    assert!(CHOSEN_NAMES.iter().all(|n| review.contains(n)), "the review names the choices: {review}");
    let res = browser.post(url("/e/demo/ballot")).form(&CHOICES).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED, "cast");
    let cast = request_id(&res);
    sent.push(cast.clone());
    let page = res.text().await.unwrap();
    let receipt = page.split("<p class=\"receipt\">").nth(1).and_then(|r| r.split('<').next()).unwrap().to_owned();
    assert_eq!(receipt.len(), 24, "a receipt on the page: {page}");

    // The receipt checked twice: typed into the ballot page's form (in lower case,
    // without dashes), and by a script following the receipt page's link.
    let action = attribute_before(&ballot, "name=\"receipt\"", "action");
    let typed = receipt.to_lowercase().replace('-', "");
    let res = browser.get(url(&action)).query(&[("receipt", &typed)]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "the form's check");
    // The page's own requests (its stylesheet, a link followed) must not carry its
    // address, receipt and all, in a Referer header to anything that logs one.
    let policies: Vec<_> = res.headers().get_all("referrer-policy").iter().collect();
    assert_eq!(policies, ["no-referrer"], "the receipt page's Referrer-Policy");
    let html_check = request_id(&res);
    sent.push(html_check.clone());
    let checked = res.text().await.unwrap();
    assert!(checked.contains("This receipt is in the ballot box"), "{checked}");
    let link = attribute_before(&page, ">Link to this check<", "href");
    let res = script.get(url(&link)).header("accept", "application/json").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "the link's check ({link})");
    let json_check = request_id(&res);
    sent.push(json_check.clone());
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["in_ballot_box"], true, "{answer}");
    // A link of the old form, the receipt in its path, still works: nginx sends it on to
    // the check without logging it (only the check it lands on is logged, path alone).
    let follows = reqwest::Client::new();
    let res = follows.get(url(&format!("/e/demo/receipt/{receipt}"))).header("accept", "application/json").send();
    let res = res.await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "an old receipt link");
    sent.push(request_id(&res));
    let old: Value = res.json().await.unwrap();
    assert_eq!(old["in_ballot_box"], true, "{old}");
    // Nor is one of another shape logged (a trailing slash, a path beyond), and a path
    // that decodes to a line break or a query is not let into the redirect's Location.
    for odd in [format!("/e/demo/receipt/{receipt}/"), format!("/e/demo/receipt/{receipt}/x")] {
        let res = script.get(url(&odd)).header("accept", "application/json").send().await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{odd}");
    }
    let injected = format!("/e/demo/receipt/{receipt}%0d%0aSet-Cookie:%20x=1");
    let res = script.get(url(&injected)).send().await.unwrap();
    assert!(res.headers().get("set-cookie").is_none() && res.status() != StatusCode::FOUND, "{:?}", res.headers());
    let res = script.get(url(&format!("/e/demo/receipt/{receipt}%26receipt=x"))).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "no second query parameter smuggled in");
    // Whether it is in the box, and never what it says.
    let answer = answer.to_string();
    for shown in [&checked, &answer] {
        for choice in CHOICES.iter().map(|(_, id)| *id).chain(CHOSEN_NAMES) {
            assert!(!shown.contains(choice), "the receipt check shows the choice {choice}: {shown}");
        }
    }
    logs.wait_for(&sent).await;

    // Assert: no line holds the receipt in any spelling, a choice, the code or the password.
    let lines = logs.since();
    let count = |log: &str| lines.iter().filter(|l| l.log == log).count();
    let counts = ["nginx", "auth", "otp", "ballot"].map(count);
    assert!(counts[0] == sent.len() && counts[1..].iter().all(|n| *n >= 1), "lines per log: {counts:?}");
    let mut secrets: Vec<(String, &str)> = vec![
        (receipt.clone(), "the receipt"),
        (receipt.replace('-', ""), "the receipt without dashes"),
        (password.clone(), "the password"),
    ];
    for (_, id) in CHOICES {
        secrets.push((id.to_owned(), "a chosen candidate's id"));
    }
    for name in CHOSEN_NAMES {
        secrets.push((name.to_owned(), "a chosen candidate's name"));
    }
    for line in &lines {
        let lower = line.raw.to_lowercase();
        for (secret, what) in &secrets {
            assert!(!lower.contains(&secret.to_lowercase()), "{what} in the {} log: {}", line.log, line.raw);
        }
        assert!(!holds_code(&line.raw, &code), "the code in the {} log: {}", line.log, line.raw);
    }

    // The cast's and the checks' lines: nginx's and the ballot service's, with the path
    // alone (no query), naming nobody.
    let voter_names = [uid.clone(), email.clone(), format!("Student {VOTER:05}")];
    let names_voter = |l: &Line| voter_names.iter().any(|n| l.raw.to_lowercase().contains(&n.to_lowercase()));
    let of = |id: &str| lines.iter().filter(|l| l.request_id() == Some(id)).collect::<Vec<_>>();
    for (id, uri, route, status) in [
        (&cast, "/e/demo/ballot", "/e/{election}/ballot", 201),
        (&html_check, "/e/demo/receipt", "/e/{election}/receipt", 200),
        (&json_check, "/e/demo/receipt", "/e/{election}/receipt", 200),
    ] {
        let own = of(id);
        let nginx = own.iter().find(|l| l.log == "nginx").unwrap_or_else(|| panic!("no nginx line for {uri}"));
        assert_eq!(nginx.field("uri").as_str(), Some(uri), "the path alone: {}", nginx.raw);
        assert_eq!(nginx.field("status").as_u64(), Some(status), "{}", nginx.raw);
        let service = own.iter().find(|l| l.log == "ballot" && l.field("event").as_str() == Some("request"));
        let service = service.unwrap_or_else(|| panic!("no ballot request line for {uri}"));
        assert_eq!(service.field("route").as_str(), Some(route), "{}", service.raw);
        for line in &own {
            assert!(!names_voter(line), "a line of {uri} names the voter: {}", line.raw);
            assert!(!line.raw.contains(&sign_in), "a line of {uri} carries the sign-in's request id: {}", line.raw);
        }
    }
    let cast_event = of(&cast).iter().any(|l| l.field("event").as_str() == Some("ballot_cast"));
    assert!(cast_event, "the cast's event is logged with its id");

    // Nothing ties the cast or the checks to the sign-in's lines, or to any line naming
    // the voter: no request id, nor any other value that could serve as one (a session
    // or a voter id).
    let sign_in_lines = of(&sign_in);
    assert!(sign_in_lines.iter().any(|l| l.log == "nginx") && sign_in_lines.iter().any(|l| l.log == "auth"));
    let named: Vec<&Line> = lines.iter().filter(|l| names_voter(l)).chain(sign_in_lines).collect();
    let named_values: std::collections::HashSet<String> = named.iter().flat_map(|l| l.identifiers()).collect();
    for id in [&cast, &html_check, &json_check] {
        assert_ne!(id, &sign_in);
        for line in of(id) {
            for value in line.identifiers() {
                assert!(!named_values.contains(&value), "{value:?} is in a line naming the voter and in {}", line.raw);
            }
        }
    }

    // A check while the ballot service is down: nginx answers itself, and its error log
    // writes each failed request line, but not the receipt check's.
    stack.kill_service("ballot");
    let res = script.get(url(&link)).header("accept", "application/json").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "a check with the ballot service down");
    let res = script.get(url("/e/demo/ballot")).header("accept", "application/json").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let deadline = Instant::now() + Duration::from_secs(5);
    let errors = loop {
        let errors: Vec<Line> = logs.since().into_iter().filter(|l| l.log == "nginx-error").collect();
        if errors.iter().any(|l| l.raw.contains("GET /e/demo/ballot ")) {
            break errors;
        }
        let seen = errors.len();
        assert!(Instant::now() < deadline, "nginx's error log never had the failed ballot request ({seen} lines)");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for line in errors {
        let lower = line.raw.to_lowercase();
        assert!(!lower.contains(&receipt.to_lowercase()) && !lower.contains("/receipt"), "{}", line.raw);
    }
}

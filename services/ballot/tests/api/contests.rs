//! Contest kinds, RON, abstention, constituencies, the review step and the count, through
//! the ballot service's HTTP API and its no-JavaScript forms, on the union election.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use reqwest::StatusCode;
use serde_json::{Value, json};
use turnout_core::domain::{ElectionId, Username};
use turnout_core::session::Role;
use turnout_core::store::{RollEntry, Turnout};

use crate::helpers::{TestApp, error_code, spawn_app};

async fn open_union(app: &TestApp, id: &str) {
    app.union(id, SignedDuration::from_mins(-1), SignedDuration::from_mins(60), 0).await;
}

async fn cast(client: &reqwest::Client, app: &TestApp, election: &str, choices: Value) -> reqwest::Response {
    client.post(format!("{}/e/{election}/ballot", app.url)).json(&json!({ "choices": choices })).send().await.unwrap()
}

async fn turnout(app: &TestApp, election: &str) -> Turnout {
    app.store.turnout(&ElectionId::parse(election).unwrap()).await.unwrap()
}

#[tokio::test]
async fn every_kind_of_vote_is_cast_as_json_and_the_ballot_says_how_to_vote() {
    let app = spawn_app().await;
    open_union(&app, "union").await;
    let voter = app.voter_in(2, "union", &["physics-rep"], true);
    let ballot: Value = voter.get(format!("{}/e/union/ballot", app.url)).send().await.unwrap().json().await.unwrap();
    let ids: Vec<&str> = ballot["contests"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["president", "council", "physics-rep", "societies"], "only this voter's constituency");
    assert_eq!(ballot["contests"][1]["rules"]["rule"], "ers97");
    let president: Vec<&str> =
        ballot["contests"][0]["candidates"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(president.len(), 8, "seven candidates and RON");
    assert!(president.contains(&"ron"));
    let res = cast(
        &voter,
        &app,
        "union",
        json!({
            "president": ["sam-reyes", "ron"],
            "council": ["yu-lin", "tom-hale", "ola-berg"],
            "physics-rep": "abstain",
            "societies": ["robotics-society", "chess-club", "film-society"],
        }),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED, "{}", res.text().await.unwrap());
    assert_eq!(turnout(&app, "union").await, Turnout { participation: 1, ballots: 1 });
    // Stored canonically: a ranking in the voter's order of preference, a set sorted (no
    // trace of the order the boxes stood in on this voter's page, or were ticked in).
    let contents = app.store.box_contents(&ElectionId::parse("union").unwrap()).await.unwrap();
    let stored = serde_json::to_value(&contents.ballots[0]).unwrap();
    assert_eq!(stored["societies"], json!(["chess-club", "film-society", "robotics-society"]));
    assert_eq!(stored["council"], json!(["yu-lin", "tom-hale", "ola-berg"]));
}

#[tokio::test]
async fn votes_that_break_a_contests_rules_are_refused_by_contest_and_write_nothing() {
    let app = spawn_app().await;
    open_union(&app, "union").await;
    let voter = app.voter_in(3, "union", &["general-rep"], true);
    for (choices, code, field) in [
        (json!({ "council": ["yu-lin", "yu-lin"] }), "invalid_field", "choices.council"),
        (json!({ "general-rep": ["eva-horvat", "dan-cohen"] }), "invalid_field", "choices.general-rep"),
        (json!({ "general-rep": "ron" }), "unknown_candidate", "choices.general-rep"),
        (json!({ "president": ["nobody"] }), "unknown_candidate", "choices.president"),
        (json!({ "president": [] }), "invalid_field", "choices.president"),
        (json!({ "treasurer": "x" }), "unknown_candidate", "choices.treasurer"),
    ] {
        let res = cast(&voter, &app, "union", choices.clone()).await;
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert_eq!((status.as_u16(), body["error"]["code"].as_str().unwrap()), (422, code), "{choices}: {body}");
        assert_eq!(body["error"]["field"], field, "{choices}");
    }
    let odd = cast(&voter, &app, "union", json!({ "president": { "rank": 1 } })).await;
    assert_eq!(odd.status(), StatusCode::UNPROCESSABLE_ENTITY, "a vote of the wrong shape");
    assert_eq!(turnout(&app, "union").await, Turnout { participation: 0, ballots: 0 });
    // Fixed, it goes in once.
    let res = cast(&voter, &app, "union", json!({ "council": ["yu-lin"], "general-rep": "dan-cohen" })).await;
    assert_eq!(res.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_contest_of_another_constituency_is_refused_over_http() {
    let app = spawn_app().await;
    open_union(&app, "union").await;
    // A general student names the physics rep: not on their page, and refused.
    let general = app.voter_in(3, "union", &["general-rep"], true);
    let ballot: Value = general.get(format!("{}/e/union/ballot", app.url)).send().await.unwrap().json().await.unwrap();
    assert!(!ballot["contests"].as_array().unwrap().iter().any(|c| c["id"] == "physics-rep"));
    let res = cast(&general, &app, "union", json!({ "physics-rep": "raj-patel" })).await;
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_field", "{body}");
    assert_eq!(body["error"]["field"], "choices.physics-rep");
    assert!(body["error"]["message"].as_str().unwrap().contains("another constituency"));
    assert_eq!(turnout(&app, "union").await, Turnout { participation: 0, ballots: 0 });
    // The same as a form, from a crafted page.
    let form = app.voter_in(3, "union", &["general-rep"], false);
    let res = form
        .post(format!("{}/e/union/ballot", app.url))
        .form(&[("c.physics-rep", "raj-patel"), ("c.general-rep", "dan-cohen")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = res.text().await.unwrap();
    assert!(!page.contains("contest-physics-rep"), "the page does not show them the contest");
    assert_eq!(turnout(&app, "union").await, Turnout { participation: 0, ballots: 0 });
}

#[tokio::test]
async fn a_roll_column_constituency_is_checked_against_the_roll_at_casting() {
    let app = spawn_app().await;
    let now = Timestamp::now();
    let mut e =
        turnout_devstack::stack::demo_election(now - SignedDuration::from_mins(1), now + SignedDuration::from_mins(60));
    e["id"] = "roll".into();
    e["contests"][1]["rules"] = json!({ "voters": { "kind": "roll_column", "column": "faculty", "value": "Science" } });
    turnout_ballot::seed::create_election(app.store.as_ref(), &e.to_string(), "test").await.unwrap();
    let id = ElectionId::parse("roll").unwrap();
    let entry = |n: u32, faculty: &str| RollEntry {
        uid: Username::parse(&format!("student{n:05}")).unwrap(),
        email: None,
        name: None,
        columns: [("faculty".to_owned(), faculty.to_owned())].into(),
    };
    app.store.import_roll(&id, &[entry(1, "Science"), entry(2, "Arts")]).await.unwrap();
    // Voter 2's sign-in found them in Science, but the roll has since said Arts: the
    // store's own check, with the roll as it is now, refuses.
    let stale = app.voter_in(2, "roll", &["treasurer"], true);
    let res = cast(&stale, &app, "roll", json!({ "treasurer": "eli-novak" })).await;
    assert_eq!(error_code(res).await, (422, "invalid_field".into()));
    let science = app.voter_in(1, "roll", &["treasurer"], true);
    let res = cast(&science, &app, "roll", json!({ "treasurer": "eli-novak", "president": "chen-wei" })).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(app.store.constituency_turnout(&id).await.unwrap()[0].1, 1);
}

#[tokio::test]
async fn the_form_reviews_explains_mistakes_goes_back_and_casts() {
    let app = spawn_app().await;
    open_union(&app, "union").await;
    let voter = app.voter_in(2, "union", &["physics-rep"], false);
    let review = format!("{}/e/union/ballot/review", app.url);
    // A rank used twice and a gap: the ballot again, each mistake by its contest, the
    // choices kept.
    let res = voter
        .post(&review)
        .form(&[
            ("r.president.sam-reyes", "1"),
            ("r.president.ron", "3"),
            ("r.council.yu-lin", "1"),
            ("r.council.tom-hale", "1"),
            ("c.societies", "chess-club"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = res.text().await.unwrap();
    assert!(page.contains(r#"id="error-president""#) && page.contains("skip 2"), "{page}");
    assert!(page.contains(r#"id="error-council""#) && page.contains("rank 1 to more than one"));
    assert!(page.contains(r#"name="c.societies" value="chess-club" checked"#), "choices are kept");
    assert!(page.contains(r#"name="r.council.tom-hale" value="1""#), "what was typed in the mistaken contest too");
    // Right: the review says it in words, with hidden fields in order of preference.
    let fields = [
        ("r.president.sam-reyes", "2"),
        ("r.president.ron", "1"),
        ("r.council.yu-lin", ""),
        ("c.societies", "chess-club"),
        ("c.societies", "robotics-society"),
        ("c.physics-rep", "abstain"),
    ];
    let page = voter.post(&review).form(&fields).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("1st: Re-Open Nominations (RON), 2nd: Sam Reyes"), "{page}");
    assert!(page.contains("Chess Club, Robotics Society"));
    assert!(page.contains("You abstain."));
    assert!(page.contains("Left blank"), "the council, left out, says so");
    assert_eq!(turnout(&app, "union").await, Turnout { participation: 0, ballots: 0 }, "reviewing casts nothing");
    let hidden: Vec<(String, String)> = page
        .split("<input type=\"hidden\" name=\"")
        .skip(1)
        .map(|rest| {
            let name = rest.split('"').next().unwrap().to_owned();
            let value = rest.split("value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
            (name, value)
        })
        .take_while(|(name, _)| name != "action")
        .collect();
    // Both forms (cast, change) carry the same fields: the first half is one form's.
    let hidden: Vec<(String, String)> = hidden[..hidden.len() / 2].to_vec();
    assert_eq!(hidden.len(), 5, "{hidden:?}");
    // "Change my choices" brings the ballot back filled in.
    let mut back = hidden.clone();
    back.push(("action".into(), "change".into()));
    let again = voter.post(&review).form(&back).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    let again = again.text().await.unwrap();
    assert!(again.contains(r#"name="r.president.ron" value="1""#), "{again}");
    // Casting the review's fields.
    let res = voter.post(format!("{}/e/union/ballot", app.url)).form(&hidden).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let contents = app.store.box_contents(&ElectionId::parse("union").unwrap()).await.unwrap();
    let stored = serde_json::to_value(&contents.ballots[0]).unwrap();
    assert_eq!(
        stored,
        json!({ "president": ["ron", "sam-reyes"],
                "societies": ["chess-club", "robotics-society"], "physics-rep": "abstain" })
    );
}

#[tokio::test]
async fn each_contest_is_counted_by_its_rule_ron_leaves_a_seat_unfilled_and_the_blt_recounts_the_same() {
    let app = spawn_app().await;
    app.union("union", SignedDuration::from_mins(-5), SignedDuration::from_mins(30), 0).await;
    let ballots = [
        (json!(["ron", "sam-reyes"]), json!(["yu-lin", "tom-hale"]), json!(["chess-club"])),
        (json!(["ron"]), json!(["yu-lin", "ola-berg"]), json!(["chess-club", "film-society"])),
        (json!(["ron", "kim-tanaka"]), json!(["tom-hale", "yu-lin"]), json!("abstain")),
        (json!(["sam-reyes", "ron"]), json!(["ines-costa"]), json!(["film-society"])),
        (json!(["kim-tanaka"]), json!(["ola-berg", "ines-costa"]), json!(["robotics-society", "chess-club"])),
    ];
    for (n, (president, council, societies)) in ballots.iter().enumerate() {
        let voter = app.voter_in(n as u32 + 1, "union", &[], true);
        let choices = json!({ "president": president, "council": council, "societies": societies });
        assert_eq!(cast(&voter, &app, "union", choices).await.status(), StatusCode::CREATED);
    }
    // The only physics student to vote: the box export would pair their rep vote with
    // the rest of their ballot.
    let physicist = app.voter_in(8, "union", &["physics-rep"], true);
    let choices = json!({ "president": ["kim-tanaka"], "physics-rep": "nia-evans" });
    assert_eq!(cast(&physicist, &app, "union", choices).await.status(), StatusCode::CREATED);
    let blank = app.voter_in(9, "union", &[], true);
    assert_eq!(cast(&blank, &app, "union", json!({})).await.status(), StatusCode::CREATED);
    let (officer, token) = app.staff("officer1", vec![Role::Officer]);
    let res = officer
        .post(format!("{}/officer/elections/union/close", app.url))
        .header("X-CSRF-Token", &token)
        .json(&json!({ "confirm": "union", "reason": "test" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let results = format!("{}/officer/elections/union/results", app.url);
    let r: Value = officer.get(&results).send().await.unwrap().json().await.unwrap();
    let contest = |id: &str| r["contests"].as_array().unwrap().iter().find(|c| c["id"] == id).unwrap().clone();
    let president = contest("president");
    assert_eq!(president["method"], "irv");
    assert_eq!(president["ron_elected"], true, "three of five put RON first: {president}");
    assert_eq!((president["unfilled"].as_u64(), president["elected"].as_array().unwrap().len()), (Some(1), 0));
    assert_eq!((president["voted"].as_u64(), president["blank"].as_u64()), (Some(6), Some(1)));
    let societies = contest("societies");
    assert_eq!(societies["method"], "approval");
    assert_eq!(societies["abstained"], 1, "an abstention is counted apart from a blank");
    let elected: Vec<&str> =
        societies["elected"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap()).collect();
    assert_eq!(elected, ["chess-club", "film-society"]);
    assert_eq!(
        r["few_voters"],
        serde_json::json!([{ "contest": "physics-rep", "title": "Physics Faculty Representative", "ballots": 1 }])
    );
    let council = contest("council");
    assert_eq!(council["method"], "ers97");
    assert!(council["sheet"]["stages"].as_array().unwrap().len() > 1, "{council}");

    // The council's ballots as BLT, recounted by the command line: the same winners.
    let blt = officer.get(format!("{results}?export=council")).send().await.unwrap().text().await.unwrap();
    assert!(blt.starts_with("6 3\n"), "five candidates and RON, three seats: {blt}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("council.blt");
    std::fs::write(&file, &blt).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_turnout-ballot"))
        .args(["count", "--method", "ers97", "--seats", "3"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let recount: Vec<String> = String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect();
    let names: Vec<String> = council["sheet"]["elected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| council["options"][i.as_u64().unwrap() as usize]["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(recount, names, "the recount of the export elects the same, in the same order");
    // The export is the same bytes each time (canonical order): its hash is the lot's seed.
    let again = officer.get(format!("{results}?export=council")).send().await.unwrap().text().await.unwrap();
    assert_eq!(again, blt);
    // The results page shows each count sheet.
    let (cookie, _) = app.staff_cookie("officer1", vec![Role::Officer]);
    let page =
        reqwest::Client::new().get(&results).header("cookie", cookie).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Count sheet, stage by stage"));
    assert!(page.contains("Re-Open Nominations was elected"), "{page}");
    // The page warns before the box export is published, naming the small constituency
    // (and not one nobody voted in).
    let warning = page.split(r#"id="few-voters""#).nth(1).expect("a warning about the box export");
    let warning = warning.split("</p>").next().unwrap();
    assert!(warning.contains("Physics Faculty Representative (1 ballot)"), "{warning}");
    assert!(!warning.contains("General Faculty"), "{warning}");
}

#[tokio::test]
async fn the_dashboard_shows_turnout_per_constituency_and_never_a_count_under_ten() {
    let app = spawn_app().await;
    open_union(&app, "union").await;
    for n in 1..=12 {
        let voter = app.voter_in(n, "union", &["physics-rep"], true);
        assert_eq!(cast(&voter, &app, "union", json!({})).await.status(), StatusCode::CREATED);
    }
    for n in 20..23 {
        let voter = app.voter_in(n, "union", &["general-rep"], true);
        assert_eq!(
            cast(&voter, &app, "union", json!({ "general-rep": "dan-cohen" })).await.status(),
            StatusCode::CREATED
        );
    }
    let (officer, _) = app.staff("officer1", vec![Role::Officer]);
    let url = format!("{}/officer/elections/union", app.url);
    let d: Value = officer.get(&url).send().await.unwrap().json().await.unwrap();
    let rows: Vec<(String, String)> = d["constituencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["contest"].as_str().unwrap().to_owned(), c["voted"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(rows, [("physics-rep".to_owned(), "12".to_owned()), ("general-rep".to_owned(), "< 10".to_owned())]);
    let (cookie, _) = app.staff_cookie("officer1", vec![Role::Officer]);
    let page = reqwest::Client::new().get(&url).header("cookie", cookie).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Turnout by constituency") && page.contains("&lt; 10"), "{page}");
    assert!(!page.contains("<td>3</td>"), "the small count is not on the page");
}

#[tokio::test]
async fn a_tie_broken_by_lot_is_on_the_sheet_and_in_the_audit_log_once() {
    let app = spawn_app().await;
    app.union("union", SignedDuration::from_mins(-5), SignedDuration::from_mins(30), 0).await;
    for (n, societies) in
        [json!(["chess-club", "film-society"]), json!(["chess-club", "hiking-club"])].iter().enumerate()
    {
        let voter = app.voter_in(n as u32 + 1, "union", &[], true);
        assert_eq!(cast(&voter, &app, "union", json!({ "societies": societies })).await.status(), StatusCode::CREATED);
    }
    let (officer, token) = app.staff("officer1", vec![Role::Officer]);
    let close = format!("{}/officer/elections/union/close", app.url);
    let res =
        officer.post(&close).header("X-CSRF-Token", &token).json(&json!({ "confirm": "union", "reason": "t" })).send();
    assert_eq!(res.await.unwrap().status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let results = format!("{}/officer/elections/union/results", app.url);
    let first: Value = officer.get(&results).send().await.unwrap().json().await.unwrap();
    let again: Value = officer.get(&results).send().await.unwrap().json().await.unwrap();
    let societies =
        |r: &Value| r["contests"].as_array().unwrap().iter().find(|c| c["id"] == "societies").unwrap().clone();
    let (a, b) = (societies(&first), societies(&again));
    assert_eq!(a["elected"], b["elected"], "the same seed draws the same");
    let ties: Vec<String> = a["sheet"]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["ties"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_owned()))
        .collect();
    assert!(
        ties.iter().any(|t| t.contains("lot from seed") && t.contains(a["export_sha256"].as_str().unwrap())),
        "{ties:?}"
    );
    let log = app.store.list_audit(0, 500).await.unwrap();
    let draws: Vec<_> = log.iter().filter(|e| e.action == "count.lot_drawn").collect();
    assert_eq!(draws.len(), 1, "written once, however often the results are read");
    assert_eq!(draws[0].detail["contest"], "societies");
    assert_eq!(draws[0].detail["seed_sha256"], a["export_sha256"]);
}

#[tokio::test]
async fn an_admin_sets_up_the_union_election_in_the_console_form() {
    let app = spawn_app().await;
    let (cookie, csrf) = app.staff_cookie("admin1", vec![Role::Admin]);
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let lines = "president | President | ranked ron ron-never-excluded\n\
                 council | Council | ranked seats=3 rule=meek ron\n\
                 sci-rep | Science rep | plurality voters column faculty=Science\n\
                 eng-rep | Engineering rep | plurality voters group cn=eng,ou=groups,dc=uni\n\
                 referendum | Referendum | approval max=1";
    let form = |lines: &str| {
        vec![
            ("csrf", csrf.clone()),
            ("id", "council26".into()),
            ("title", "Council 2026".into()),
            ("time_zone", "Europe/London".into()),
            ("opens_at", "2036-03-01T09:00".into()),
            ("closes_at", "2036-03-01T17:00".into()),
            ("contests", lines.to_owned()),
            ("shuffle_candidates", "yes".into()),
        ]
    };
    let post = |lines: &str| {
        browser.post(format!("{}/admin/elections", app.url)).header("cookie", &cookie).form(&form(lines)).send()
    };
    // A mistake is named, with the contest, and nothing is saved.
    let bad = post("council | Council | ranked seats=3").await.unwrap();
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text().await.unwrap().contains("several seats need an STV rule"));
    let res = post(lines).await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let e = app.store.election(&ElectionId::parse("council26").unwrap()).await.unwrap().unwrap();
    assert!(e.shuffle_candidates);
    let rules: Vec<Value> = e.contests.iter().map(|c| serde_json::to_value(&c.rules).unwrap()).collect();
    assert_eq!(rules[0]["ron_never_excluded"], true);
    assert_eq!((rules[1]["seats"].as_u64(), rules[1]["rule"].as_str()), (Some(3), Some("meek")));
    assert_eq!(rules[2]["voters"], json!({ "kind": "roll_column", "column": "faculty", "value": "Science" }));
    assert_eq!(rules[4]["max_choices"], 1);
    // The edit form shows the same lines back.
    let page = browser
        .get(format!("{}/admin/elections/council26", app.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("council | Council | ranked seats=3 rule=meek ron"), "{page}");
    assert!(page.contains("sci-rep | Science rep | plurality voters column faculty=Science"));
}

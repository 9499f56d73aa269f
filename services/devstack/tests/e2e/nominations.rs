//! Nominations through nginx with real slapd: a student signs in weeks before voting (the
//! by-election's nomination period is what puts it in reach), stands with a photo near
//! the 5 MB limit, a physics student is offered the physics contest, nginx refuses a body
//! over its 6 MB allowance with the one error shape, and the photo comes back re-encoded
//! with the security headers and a year's caching.

use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::Value;

use crate::helpers::{TestStack, expect_error};

/// A real PNG with `padding` bytes after its end (decoders stop at IEND): an upload of
/// about that size that still decodes.
fn padded_png(padding: usize) -> Vec<u8> {
    let img = image::RgbImage::from_fn(800, 600, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 70]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    let mut bytes = out.into_inner();
    bytes.resize(bytes.len() + padding, 0);
    bytes
}

fn nomination(csrf: &str, contest: &str, photo: Vec<u8>) -> Form {
    Form::new()
        .text("csrf", csrf.to_owned())
        .text("contest", contest.to_owned())
        .text("name", "Sol Reed")
        .text("manifesto", "Quieter libraries.")
        .part("photo", Part::bytes(photo).file_name("sol.png").mime_str("image/png").unwrap())
}

async fn form_of(s: &TestStack, client: &reqwest::Client) -> Value {
    let res = client.get(s.url("/e/byelection/nominate")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

pub async fn students_stand_for_the_by_election_through_nginx(s: &TestStack) {
    let nominee = s.client();
    let res = s.login(&nominee, 41).await;
    assert_eq!(res.status(), StatusCode::OK, "sign-in in the nomination period: {}", res.text().await.unwrap());
    let form = form_of(s, &nominee).await;
    assert_eq!(form["contests"], serde_json::json!(["welfare"]), "student 41 is no physics student");
    let physics = s.client();
    assert_eq!(s.login(&physics, 42).await.status(), StatusCode::OK);
    assert_eq!(form_of(s, &physics).await["contests"], serde_json::json!(["welfare", "physics-rep"]));
    let csrf = form["csrf_token"].as_str().unwrap();

    // Over nginx's 6 MB for this path: its own 413, in the services' error body.
    let res = nominee
        .post(s.url("/e/byelection/nominate"))
        .multipart(nomination(csrf, "welfare", padded_png(7 * 1024 * 1024)))
        .send()
        .await
        .unwrap();
    expect_error(res, 413, "body_too_large", "a 7 MB nomination").await;
    // Physics only.
    let res = nominee
        .post(s.url("/e/byelection/nominate"))
        .multipart(nomination(csrf, "physics-rep", padded_png(0)))
        .send()
        .await
        .unwrap();
    expect_error(res, 403, "not_eligible", "another faculty's contest").await;
    // Near the 5 MB limit: through nginx, decoded, re-encoded.
    let res = nominee
        .post(s.url("/e/byelection/nominate"))
        .multipart(nomination(csrf, "welfare", padded_png(4_800_000)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED, "{}", res.text().await.unwrap());
    let body: Value = res.json().await.unwrap();
    let photo = body["nomination"]["content"]["photo"].as_str().unwrap();
    let res = reqwest::get(s.url(&format!("/photos/{photo}.jpg"))).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "image/jpeg");
    assert_eq!(res.headers()["cache-control"], "public, max-age=60", "pending: not kept for long");
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    let bytes = res.bytes().await.unwrap();
    assert!(bytes.len() < 200_000, "re-encoded, not the {} byte upload", 4_800_000);
    let page = reqwest::get(s.url("/e/byelection/candidates")).await.unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("default-src 'self'") && csp.contains("img-src 'self' data:"), "{csp}");
}

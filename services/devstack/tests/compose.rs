//! The deployment file's safe defaults, read from what `docker-compose config` renders
//! with `.env.example` (so a variable's default counts, not just the text).

use std::process::Command;

fn rendered() -> String {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let (program, args): (&str, Vec<&str>) =
        if Command::new("docker").args(["compose", "version"]).output().is_ok_and(|o| o.status.success()) {
            ("docker", vec!["compose"])
        } else {
            ("docker-compose", vec![])
        };
    let out = Command::new(program)
        .args(args)
        .args(["--env-file", ".env.example", "--profile", "monitoring", "config"])
        .current_dir(root)
        .output()
        .expect("docker-compose is installed (apt-get install -y docker-compose)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The lines of one top-level service's block.
fn service<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    let header = format!("  {name}:");
    let mut lines = text.lines().skip_while(|l| *l != header);
    let mut block = vec![lines.next().unwrap_or_else(|| panic!("no service {name}"))];
    block.extend(lines.take_while(|l| l.starts_with("    ") || l.trim().is_empty()));
    block
}

#[test]
fn only_nginx_is_published_beyond_this_host_and_the_database_needs_a_password() {
    let text = rendered();
    // Every published port but nginx's is bound to loopback: Mailpit's UI shows codes.
    for name in ["mailpit", "prometheus", "grafana", "mongo", "ldap", "auth", "otp", "ballot"] {
        for line in service(&text, name).iter().filter(|l| l.trim_start().starts_with("- ") && l.contains(":")) {
            let l = line.trim_start().trim_start_matches("- ").trim_matches('"');
            if l.chars().next().is_some_and(|c| c.is_ascii_digit()) && l.contains('/') && l.ends_with("tcp") {
                assert!(l.starts_with("127.0.0.1:"), "{name} publishes {l} beyond this host");
            }
        }
    }
    let mailpit = service(&text, "mailpit").join("\n");
    assert!(mailpit.contains("127.0.0.1:8025:8025"), "{mailpit}");
    assert!(!mailpit.contains("1025:1025"), "Mailpit's SMTP is published: {mailpit}");
    // MongoDB: authentication with a keyfile, and the services connect with credentials.
    let mongo = service(&text, "mongo").join("\n");
    for needed in ["--keyFile", "MONGO_INITDB_ROOT_USERNAME", "MONGO_INITDB_ROOT_PASSWORD"] {
        assert!(mongo.contains(needed), "mongo lacks {needed}: {mongo}");
    }
    let ballot = service(&text, "ballot").join("\n");
    let uri = ballot.lines().find(|l| l.contains("TURNOUT_MONGODB_URI")).expect("the services get a URI");
    // As the services' own user, never MongoDB's root.
    assert!(uri.contains("//turnout:") && uri.contains("@mongo:27017") && uri.contains("authSource=turnout"), "{uri}");
    assert!(mongo.contains("create-app-user.js"), "the services' user is made on a new volume: {mongo}");
    // X-Real-IP is believed from the compose network's own subnet only.
    let trusted = ballot.lines().find(|l| l.contains("TURNOUT_TRUSTED_PROXIES")).expect("trusted proxies set");
    assert!(trusted.ends_with("127.0.0.1/32,::1/128,172.28.0.0/16"), "{trusted}");
    assert!(text.contains("subnet: 172.28.0.0/16"), "the compose network's subnet is fixed");
}

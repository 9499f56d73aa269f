//! The MongoDB adapter is a cargo feature: a service built alone compiles no MongoDB
//! driver, and one built with `--features mongodb` (as the compose image is) has it.
//! Read from `cargo tree` on the lock file, so nothing is built.

use std::path::Path;
use std::process::Command;

/// The normal (non-dev) dependencies of `package` with `features`, one crate name a line.
fn dependencies(package: &str, features: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root).args(["tree", "--offline", "--locked", "-p", package, "-e", "normal", "--prefix", "none"]);
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    let out = cmd.output().expect("cargo runs");
    assert!(out.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().filter_map(|l| l.split(' ').next().map(str::to_owned)).collect()
}

#[test]
fn each_service_compiles_the_mongodb_driver_only_when_asked() {
    for service in ["turnout-auth", "turnout-otp", "turnout-ballot"] {
        let plain = dependencies(service, &[]);
        assert!(plain.iter().any(|c| c == "turnout-store-sqlite"), "{service} lost SQLite");
        assert!(!plain.iter().any(|c| c == "mongodb" || c == "turnout-store-mongo"), "{service} pulls in MongoDB");
        let with = dependencies(service, &["mongodb"]);
        assert!(with.iter().any(|c| c == "mongodb"), "{service} --features mongodb has no driver");
        assert!(with.iter().any(|c| c == "turnout-store-sqlite"), "{service} --features mongodb lost SQLite");
    }
}

#[test]
fn the_port_and_the_domain_depend_on_no_driver_and_no_web_framework() {
    for crate_name in ["turnout-store", "turnout-domain"] {
        let deps = dependencies(crate_name, &[]);
        for banned in ["mongodb", "rusqlite", "deadpool-sqlite", "actix-web", "ldap3", "lettre", "turnout-core"] {
            assert!(!deps.iter().any(|c| c == banned), "{crate_name} depends on {banned}");
        }
    }
}

/// Compose runs the services on MongoDB (`TURNOUT_STORE=mongodb`): its image must be
/// built with the feature, for each of the three.
#[test]
fn the_compose_image_builds_every_service_with_mongodb() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dockerfile = std::fs::read_to_string(root.join("deploy/docker/services.Dockerfile")).unwrap();
    let compose = std::fs::read_to_string(root.join("docker-compose.yml")).unwrap();
    assert!(
        compose.contains("TURNOUT_STORE: mongodb") || compose.contains("TURNOUT_STORE=mongodb"),
        "compose changed store"
    );
    let build =
        dockerfile.split("RUN cargo build").nth(1).expect("the image builds with cargo").split("&&").next().unwrap();
    for service in ["turnout-auth", "turnout-otp", "turnout-ballot"] {
        assert!(build.contains(&format!("{service}/mongodb")), "the image builds {service} without MongoDB: {build}");
    }
}

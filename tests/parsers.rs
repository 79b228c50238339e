//! The snapshot and config parsers take arbitrary bytes without panicking, and damaged versions
//! of valid files give an error, never a half-read fleet.

use std::path::Path;

use proptest::prelude::*;

const VALID_SNAPSHOT: &str = r#"{
  "schema_version": 1,
  "kind": "snapshot",
  "fleetscope_version": "0.1.0",
  "taken_at": "2026-11-01T00:00:00Z",
  "sources": [{"name": "aws:prod", "cloud": "aws", "state": "done", "pages": 1, "instances": 1}],
  "images": [{"key": "ami-1", "cloud": "aws", "name": "web-1", "created": "2026-10-01T00:00:00Z", "owner": "1", "readable": true}],
  "groups": [],
  "instances": [{"id": "i-1", "cloud": "aws", "source": "aws:prod", "account": "1", "region": "us-east-1",
                 "state": "running", "launched": "2026-10-02T00:00:00Z", "image": "ami-1"}]
}"#;

const VALID_CONFIG: &str = "version = 1\n[policy]\nmax_image_age_days = 7\nflag_tags = [\"vulnerable\"]\n[aws]\nprofiles = [\"prod\"]\n";

#[test]
fn the_valid_examples_parse() {
    let snapshot = fleetscope::snapshot::parse(VALID_SNAPSHOT.as_bytes()).unwrap();
    assert_eq!(snapshot.instances.len(), 1);
    fleetscope::config::parse_file(Path::new("c.toml"), VALID_CONFIG.as_bytes()).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn snapshot_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = fleetscope::snapshot::parse(&bytes);
    }

    #[test]
    fn truncated_snapshots_are_errors(cut in 0..VALID_SNAPSHOT.len() - 1) {
        let result = fleetscope::snapshot::parse(&VALID_SNAPSHOT.as_bytes()[..cut]);
        prop_assert!(result.is_err());
    }

    #[test]
    fn damaged_snapshots_do_not_panic(at in 0..VALID_SNAPSHOT.len(), byte in any::<u8>()) {
        let mut bytes = VALID_SNAPSHOT.as_bytes().to_vec();
        bytes[at] = byte;
        let _ = fleetscope::snapshot::parse(&bytes);
    }

    #[test]
    fn config_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = fleetscope::config::parse_file(Path::new("fuzz.toml"), &bytes);
    }

    #[test]
    fn config_parser_takes_any_text(text in "\\PC{0,200}") {
        let _ = fleetscope::config::parse_file(Path::new("fuzz.toml"), text.as_bytes());
    }

    #[test]
    fn damaged_configs_fail_in_one_line(at in 0..VALID_CONFIG.len(), byte in any::<u8>()) {
        let mut bytes = VALID_CONFIG.as_bytes().to_vec();
        bytes[at] = byte;
        if let Err(e) = fleetscope::config::parse_file(Path::new("fuzz.toml"), &bytes) {
            let message = e.to_string();
            prop_assert!(message.starts_with("fuzz.toml"), "{}", message);
            prop_assert!(!message.contains('\n'), "{}", message);
        }
    }
}

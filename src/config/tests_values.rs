//! The value forms of SPEC §2 on their own: addresses, sizes, durations.

use super::settings::parse_size;
use super::*;

#[test]
fn metrics_addr_forms() {
    assert_eq!(parse_addr("off"), Ok(None));
    assert_eq!(parse_addr("127.0.0.1:0"), Ok("127.0.0.1:0".parse().ok()));
    assert_eq!(
        parse_addr("localhost:9464"),
        Ok("127.0.0.1:9464".parse().ok())
    );
    assert_eq!(parse_addr("[::1]:9464"), Ok("[::1]:9464".parse().ok()));
    assert!(parse_addr("127.0.0.1").is_err());
    assert!(parse_addr("127.0.0.1:70000").is_err());
}

#[test]
fn sizes_in_both_unit_families() {
    assert_eq!(parse_size("100MiB"), Ok(100 * 1024 * 1024));
    assert_eq!(parse_size("1GiB"), Ok(1 << 30));
    assert_eq!(parse_size("500KB"), Ok(500_000));
    assert_eq!(parse_size("4096"), Ok(4096));
    assert_eq!(parse_size("10B"), Ok(10));
    assert!(parse_size("1.5GiB").is_err());
    assert!(parse_size("-1MiB").is_err());
    assert!(parse_size("MiB").is_err());
    assert!(parse_size("99999999999TiB").is_err());
}

#[test]
fn durations_of_spec_section_2() {
    for (s, ms) in [
        ("500ms", 500),
        ("60s", 60_000),
        ("10m", 600_000),
        ("1h", 3_600_000),
        ("90d", 7_776_000_000),
        ("0s", 0),
        ("1h30m", 5_400_000),
        ("1h 30m", 5_400_000),
        ("1d12h", 129_600_000),
        ("2m500ms", 120_500),
    ] {
        assert_eq!(parse_duration(s), Ok(ms), "{s}");
    }
    // 10M: not months, not minutes: refused; 1h30: a number without unit.
    for s in ["60", "-5s", "1.5h", "5w", "10M", "1h30", "h", ""] {
        assert!(parse_duration(s).is_err(), "{s}");
    }
}

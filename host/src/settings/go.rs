//! The value syntaxes of Go's standard library that upstream's manager reads its flags and its
//! configuration file with: `time.ParseDuration`, `strconv.ParseBool`, `strconv.ParseInt` with
//! base 0 (what `flag.Int` uses) and `net.Listen` addresses. Written from Go's documented
//! grammar, so that every value upstream's Deployment passes means the same here.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};

/// Why a Go-syntax value did not parse; the messages are Go's own, so a user who knows them
/// recognizes them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GoSyntaxError {
    #[error("time: invalid duration {0:?}")]
    InvalidDuration(String),
    #[error("time: missing unit in duration {0:?}")]
    MissingUnit(String),
    #[error("time: unknown unit {unit:?} in duration {duration:?}")]
    UnknownUnit { unit: String, duration: String },
    #[error("strconv.ParseBool: parsing {0:?}: invalid syntax")]
    Bool(String),
    #[error("strconv.ParseInt: parsing {0:?}: invalid syntax")]
    Int(String),
    #[error("strconv.ParseInt: parsing {0:?}: value out of range")]
    IntRange(String),
    #[error("address {address:?}: {why}")]
    Address { address: String, why: String },
}

/// Nanoseconds per unit, in the order Go lists them.
fn unit_nanos(unit: &str) -> Option<u64> {
    Some(match unit {
        "ns" => 1,
        // "us", U+00B5 (micro sign) and U+03BC (Greek mu) all mean microseconds.
        "us" | "\u{00b5}s" | "\u{03bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    })
}

const LIMIT: u64 = 1 << 63;

/// `time.ParseDuration`: a possibly signed sequence of decimal numbers, each with an optional
/// fraction and a unit (`300ms`, `-1.5h`, `2h45m`); `0` alone needs no unit. Returns
/// nanoseconds, as Go's `time.Duration` holds them (so the range is Go's too).
pub fn parse_duration(text: &str) -> Result<i64, GoSyntaxError> {
    let invalid = || GoSyntaxError::InvalidDuration(text.to_string());
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        if !rest.starts_with(|c: char| c == '.' || c.is_ascii_digit()) {
            return Err(invalid());
        }
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let whole = leading_int(&rest[..digits]).ok_or_else(invalid)?;
        rest = &rest[digits..];
        let mut fraction: u64 = 0;
        let mut scale: f64 = 1.0;
        let mut fraction_digits = 0;
        if let Some(after_dot) = rest.strip_prefix('.') {
            fraction_digits = after_dot.bytes().take_while(u8::is_ascii_digit).count();
            (fraction, scale) = leading_fraction(&after_dot[..fraction_digits]);
            rest = &after_dot[fraction_digits..];
        }
        if digits == 0 && fraction_digits == 0 {
            // A number without digits, e.g. ".s" or "-.s".
            return Err(invalid());
        }
        let unit_len = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        if unit_len == 0 {
            return Err(GoSyntaxError::MissingUnit(text.to_string()));
        }
        let unit_text = &rest[..unit_len];
        rest = &rest[unit_len..];
        let unit = unit_nanos(unit_text).ok_or_else(|| GoSyntaxError::UnknownUnit {
            unit: unit_text.to_string(),
            duration: text.to_string(),
        })?;
        if whole > LIMIT / unit {
            return Err(invalid());
        }
        let mut value = whole * unit;
        if fraction > 0 {
            // Go scales the fraction in floating point and truncates; so do we, so that
            // e.g. 0.3333333333333333333h is exactly 20m in both.
            value += (fraction as f64 * (unit as f64 / scale)) as u64;
            if value > LIMIT {
                return Err(invalid());
            }
        }
        total += value;
        if total > LIMIT {
            return Err(invalid());
        }
    }
    if negative {
        return Ok((total as i64).wrapping_neg());
    }
    i64::try_from(total).map_err(|_| invalid())
}

/// The integer part: digits only, at most 2^63.
fn leading_int(digits: &str) -> Option<u64> {
    let mut value: u64 = 0;
    for digit in digits.bytes() {
        if value > LIMIT / 10 {
            return None;
        }
        value = value * 10 + u64::from(digit - b'0');
        if value > LIMIT {
            return None;
        }
    }
    Some(value)
}

/// The fraction's digits as an integer and the power of ten it is over; digits past what an
/// i64 holds are dropped, as Go drops them.
fn leading_fraction(digits: &str) -> (u64, f64) {
    let mut value: u64 = 0;
    let mut scale = 1.0;
    let mut overflow = false;
    for digit in digits.bytes() {
        if overflow {
            continue;
        }
        if value > (LIMIT - 1) / 10 {
            overflow = true;
            continue;
        }
        let next = value * 10 + u64::from(digit - b'0');
        if next > LIMIT {
            overflow = true;
            continue;
        }
        value = next;
        scale *= 10.0;
    }
    (value, scale)
}

/// `strconv.ParseBool`, what Go's boolean flags accept after `=`.
pub fn parse_bool(text: &str) -> Result<bool, GoSyntaxError> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(GoSyntaxError::Bool(text.to_string())),
    }
}

/// `strconv.ParseInt(text, 0, 64)`, what `flag.Int` uses: an optional sign, then decimal, or
/// `0x`/`0o`/`0b`/a leading `0` (octal) with underscores allowed between digits.
pub fn parse_int(text: &str) -> Result<i64, GoSyntaxError> {
    let syntax = || GoSyntaxError::Int(text.to_string());
    let (negative, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits, prefixed) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d, true)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d, true)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d, true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..], true)
    } else {
        (10, lower.as_str(), false)
    };
    // After a prefix (or an octal's leading 0) an underscore may come first.
    if digits.contains('_') && !underscores_ok(digits, prefixed) {
        return Err(syntax());
    }
    let digits: String = digits.chars().filter(|&c| c != '_').collect();
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(syntax());
    }
    let magnitude =
        u64::from_str_radix(&digits, radix).map_err(|_| GoSyntaxError::IntRange(text.into()))?;
    if negative {
        0i64.checked_sub_unsigned(magnitude)
            .ok_or_else(|| GoSyntaxError::IntRange(text.into()))
    } else {
        i64::try_from(magnitude).map_err(|_| GoSyntaxError::IntRange(text.into()))
    }
}

/// Go's rule for underscores in an integer literal: each one follows a digit (or the base
/// prefix) and is followed by one.
fn underscores_ok(digits: &str, after_prefix: bool) -> bool {
    (after_prefix || !digits.starts_with('_')) && !digits.ends_with('_') && !digits.contains("__")
}

/// A TCP listen address as `net.Listen` takes it: `host:port`, `:port` (every interface),
/// `[v6]:port`; the host may be a name, resolved once. The port must be a number.
pub fn parse_listen_address(text: &str) -> Result<SocketAddr, GoSyntaxError> {
    let fail = |why: &str| GoSyntaxError::Address {
        address: text.to_string(),
        why: why.to_string(),
    };
    let colon = text.rfind(':').ok_or_else(|| fail("missing port"))?;
    let (host, port) = (&text[..colon], &text[colon + 1..]);
    let port: u16 = port
        .parse()
        .map_err(|_| fail("the port must be a number from 0 to 65535"))?;
    let host = match host.strip_prefix('[') {
        Some(inner) => {
            let inner = inner
                .strip_suffix(']')
                .ok_or_else(|| fail("unclosed '['"))?;
            let ip: std::net::Ipv6Addr = inner
                .parse()
                .map_err(|_| fail("the bracketed host is not an IPv6 address"))?;
            return Ok(SocketAddr::new(IpAddr::V6(ip), port));
        }
        None if host.contains(':') => return Err(fail("an IPv6 host needs brackets")),
        None => host,
    };
    if host.is_empty() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    (host, port)
        .to_socket_addrs()
        .map_err(|e| fail(&e.to_string()))?
        .next()
        .ok_or_else(|| fail("the host name resolves to no address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NS: i64 = 1;
    const US: i64 = 1_000 * NS;
    const MS: i64 = 1_000 * US;
    const S: i64 = 1_000 * MS;
    const M: i64 = 60 * S;
    const H: i64 = 60 * M;

    /// Go's documented examples and the edge cases its grammar defines.
    #[test]
    fn durations_as_go_parses_them() {
        let cases: &[(&str, i64)] = &[
            ("0", 0),
            ("-0", 0),
            ("+0", 0),
            ("5s", 5 * S),
            ("30s", 30 * S),
            ("1478s", 1478 * S),
            ("-5s", -5 * S),
            ("+5s", 5 * S),
            ("5.0s", 5 * S),
            ("5.6s", 5 * S + 600 * MS),
            ("5.s", 5 * S),
            (".5s", 500 * MS),
            ("1.0s", S),
            ("1.00s", S),
            ("1.004s", S + 4 * MS),
            ("100.00100s", 100 * S + MS),
            ("10ns", 10 * NS),
            ("11us", 11 * US),
            ("12\u{00b5}s", 12 * US),
            ("12\u{03bc}s", 12 * US),
            ("13ms", 13 * MS),
            ("14s", 14 * S),
            ("15m", 15 * M),
            ("16h", 16 * H),
            ("300ms", 300 * MS),
            ("-1.5h", -(H + 30 * M)),
            ("2h45m", 2 * H + 45 * M),
            ("1h10m10s", H + 10 * M + 10 * S),
            ("1m30s", M + 30 * S),
            ("1h15m30.918273645s", H + 15 * M + 30 * S + 918_273_645 * NS),
            ("3h30m", 3 * H + 30 * M),
            ("10.5s4m", 4 * M + 10 * S + 500 * MS),
            ("-2m3.4s", -(2 * M + 3 * S + 400 * MS)),
            (
                "1h2m3s4ms5us6ns",
                H + 2 * M + 3 * S + 4 * MS + 5 * US + 6 * NS,
            ),
            ("39h9m14.425s", 39 * H + 9 * M + 14 * S + 425 * MS),
            ("52763797000ns", 52_763_797_000 * NS),
            ("0.3333333333333333333h", 20 * M),
            ("9007199254740993ns", (1 << 53) + 1),
            ("9223372036854775807ns", i64::MAX),
            ("9223372036854775.807us", i64::MAX),
            ("9223372036s854ms775us807ns", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
            ("-9223372036854775.808us", i64::MIN),
            ("0.100000000000000000000h", 6 * M),
            (
                "0.830103483285477580700h",
                49 * M + 48 * S + 372_539_827 * NS,
            ),
        ];
        for &(text, want) in cases {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn invalid_durations_get_gos_messages() {
        for text in [
            "",
            "3",
            "-",
            "s",
            ".",
            "-.",
            ".s",
            "+.s",
            "1d",
            "1.2.3s",
            "9223372036854775808ns",
            "9223372036854775.808us",
            "-9223372036854775809ns",
            "3000000h",
        ] {
            assert!(parse_duration(text).is_err(), "{text:?} must fail");
        }
        assert_eq!(
            parse_duration("3").unwrap_err().to_string(),
            r#"time: missing unit in duration "3""#
        );
        assert_eq!(
            parse_duration("1d").unwrap_err().to_string(),
            r#"time: unknown unit "d" in duration "1d""#
        );
        assert_eq!(
            parse_duration(".s").unwrap_err().to_string(),
            r#"time: invalid duration ".s""#
        );
    }

    #[test]
    fn booleans_as_go_parses_them() {
        for text in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_bool(text), Ok(true), "{text}");
        }
        for text in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_bool(text), Ok(false), "{text}");
        }
        for text in ["", "yes", "tRUE", "on", "2"] {
            assert!(parse_bool(text).is_err(), "{text}");
        }
    }

    #[test]
    fn integers_with_base_prefixes() {
        let cases: &[(&str, i64)] = &[
            ("500", 500),
            ("+500", 500),
            ("-1", -1),
            ("0", 0),
            ("0x1F4", 500),
            ("0X1f4", 500),
            ("0o764", 500),
            ("0764", 500),
            ("0b111110100", 500),
            ("0x_1F4", 500),
            ("0b1_1111_0100", 500),
            ("1_000", 1000),
            ("0_764", 500),
            ("9223372036854775807", i64::MAX),
            ("-9223372036854775808", i64::MIN),
        ];
        for &(text, want) in cases {
            assert_eq!(parse_int(text), Ok(want), "{text}");
        }
        for text in [
            "", "_1", "1__0", "0x", "12a", "0b2", "08", "5.0", "0x1__F", "0x1F_", "1e3",
        ] {
            assert!(
                matches!(parse_int(text), Err(GoSyntaxError::Int(_))),
                "{text}"
            );
        }
        assert!(matches!(
            parse_int("9223372036854775808"),
            Err(GoSyntaxError::IntRange(_))
        ));
    }

    #[test]
    fn listen_addresses() {
        let v4 = |a: [u8; 4], port| SocketAddr::new(IpAddr::from(a), port);
        assert_eq!(parse_listen_address(":8081"), Ok(v4([0, 0, 0, 0], 8081)));
        assert_eq!(
            parse_listen_address("127.0.0.1:9443"),
            Ok(v4([127, 0, 0, 1], 9443))
        );
        assert_eq!(
            parse_listen_address("[::1]:8443"),
            Ok("[::1]:8443".parse().unwrap())
        );
        assert!(parse_listen_address("localhost:8081")
            .unwrap()
            .ip()
            .is_loopback());
        for bad in [
            "8081",
            ":http",
            "::1:80",
            "[::1:80",
            "[a:b]:80",
            "127.0.0.1:70000",
            "",
        ] {
            assert!(parse_listen_address(bad).is_err(), "{bad:?}");
        }
    }
}

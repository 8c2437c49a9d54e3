//! Int-or-percent values (`maxUnavailable`, `maxSurge`) resolved against a total.
//!
//! Mirrors `GetScaledValueFromIntOrPercent` in apimachinery's `pkg/util/intstr/intstr.go`, which
//! both upstream's webhook and its rollout math call; and `IsValidPercent` in
//! `pkg/util/validation/validation.go`, which the webhook uses to validate the string form.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Resolves `value` against `total`: an integer is returned as is; a percentage string
/// (`"25%"`) is `percent * total / 100`, rounded up when `round_up` (as for `maxSurge`) and down
/// otherwise (as for `maxUnavailable`).
///
/// Errors, worded as apimachinery's, when the string does not end in `%` or its number does not
/// parse. Like Go's `strconv.Atoi`, the number may carry a sign (`"-5%"` parses); validation
/// rejects such strings earlier through [`is_valid_percent`]. A result beyond `i32` saturates.
pub fn resolve_int_or_percent(
    value: &IntOrString,
    total: i32,
    round_up: bool,
) -> Result<i32, String> {
    let text = match value {
        IntOrString::Int(number) => return Ok(*number),
        IntOrString::String(text) => text,
    };
    let Some(number) = text.strip_suffix('%') else {
        return Err(
            "invalid value for IntOrString: invalid type: string is not a percentage".to_string(),
        );
    };
    let percent = parse_go_int(number).map_err(|reason| {
        format!("invalid value for IntOrString: invalid value {text:?}: strconv.Atoi: parsing {number:?}: {reason}")
    })?;
    let scaled = i128::from(percent) * i128::from(total);
    let resolved = if round_up {
        div_ceil(scaled, 100)
    } else {
        scaled.div_euclid(100)
    };
    Ok(resolved.clamp(i128::from(i32::MIN), i128::from(i32::MAX)) as i32)
}

/// apimachinery's `IsValidPercent`: the value matches `^[0-9]+%$`.
pub fn is_valid_percent(value: &str) -> bool {
    value
        .strip_suffix('%')
        .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

/// The message apimachinery's `IsValidPercent` returns for a value that is not a percent.
pub const INVALID_PERCENT_MESSAGE: &str = "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')";

/// The number of a valid percent string (`"25%"` → 25), as upstream's `getPercentValue`; `None`
/// for integers and for strings that are not valid percents.
pub fn percent_value(value: &IntOrString) -> Option<i64> {
    match value {
        IntOrString::String(text) if is_valid_percent(text) => {
            // Digits only, so the only possible failure is overflow; Go's Atoi then yields 0.
            Some(text[..text.len() - 1].parse::<i64>().unwrap_or(0))
        }
        _ => None,
    }
}

/// Go's `strconv.Atoi` on a 64-bit platform: optional sign, decimal digits, `int64` range.
fn parse_go_int(text: &str) -> Result<i64, &'static str> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("invalid syntax");
    }
    text.parse::<i64>().map_err(|_| "value out of range")
}

fn div_ceil(numerator: i128, denominator: i128) -> i128 {
    -((-numerator).div_euclid(denominator))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn percent(text: &str) -> IntOrString {
        IntOrString::String(text.to_string())
    }

    #[test]
    fn integers_resolve_to_themselves() {
        assert_eq!(
            resolve_int_or_percent(&IntOrString::Int(7), 3, false),
            Ok(7)
        );
        assert_eq!(
            resolve_int_or_percent(&IntOrString::Int(-1), 3, true),
            Ok(-1)
        );
    }

    #[test]
    fn percentages_round_down_when_not_rounding_up() {
        assert_eq!(resolve_int_or_percent(&percent("25%"), 2, false), Ok(0));
        assert_eq!(resolve_int_or_percent(&percent("50%"), 5, false), Ok(2));
        assert_eq!(resolve_int_or_percent(&percent("100%"), 5, false), Ok(5));
    }

    #[test]
    fn percentages_round_up_when_rounding_up() {
        assert_eq!(resolve_int_or_percent(&percent("25%"), 2, true), Ok(1));
        assert_eq!(resolve_int_or_percent(&percent("50%"), 5, true), Ok(3));
        assert_eq!(resolve_int_or_percent(&percent("0%"), 5, true), Ok(0));
    }

    #[test]
    fn percentages_of_zero_are_zero() {
        assert_eq!(resolve_int_or_percent(&percent("25%"), 0, true), Ok(0));
        assert_eq!(resolve_int_or_percent(&percent("25%"), 0, false), Ok(0));
    }

    #[test]
    fn string_without_percent_sign_is_an_error() {
        assert_eq!(
            resolve_int_or_percent(&percent("abc"), 4, false),
            Err("invalid value for IntOrString: invalid type: string is not a percentage".into())
        );
        assert!(resolve_int_or_percent(&percent("5"), 4, false).is_err());
    }

    #[test]
    fn non_numeric_percent_is_an_error_like_atoi() {
        assert_eq!(
            resolve_int_or_percent(&percent("abc%"), 4, false),
            Err("invalid value for IntOrString: invalid value \"abc%\": strconv.Atoi: parsing \"abc\": invalid syntax".into())
        );
        assert!(resolve_int_or_percent(&percent("%"), 4, false).is_err());
    }

    #[test]
    fn signed_percent_parses_like_atoi() {
        assert_eq!(resolve_int_or_percent(&percent("-50%"), 3, false), Ok(-2));
        assert_eq!(resolve_int_or_percent(&percent("-50%"), 3, true), Ok(-1));
        assert_eq!(resolve_int_or_percent(&percent("+50%"), 3, true), Ok(2));
    }

    #[test]
    fn huge_percent_saturates_instead_of_overflowing() {
        assert_eq!(
            resolve_int_or_percent(&percent("9000000000%"), 1_000_000, true),
            Ok(i32::MAX)
        );
        assert!(resolve_int_or_percent(&percent("99999999999999999999%"), 1, true).is_err());
    }

    #[test]
    fn valid_percent_is_digits_then_percent_sign() {
        for valid in ["0%", "1%", "93%", "100%", "150%", "007%"] {
            assert!(is_valid_percent(valid), "{valid}");
        }
        for invalid in [
            "", "%", "5", "-5%", "+5%", "5.5%", " 5%", "5 %", "5%%", "abc",
        ] {
            assert!(!is_valid_percent(invalid), "{invalid}");
        }
    }

    #[test]
    fn percent_value_reads_only_valid_percents() {
        assert_eq!(percent_value(&percent("150%")), Some(150));
        assert_eq!(percent_value(&percent("abc")), None);
        assert_eq!(percent_value(&IntOrString::Int(150)), None);
    }
}
